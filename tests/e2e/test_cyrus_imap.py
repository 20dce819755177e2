"""End-to-end: an IMAP account on Cyrus 3.6 rather than Dovecot (other
UIDVALIDITY and MODSEQ habits, CONDSTORE/QRESYNC, altnamespace with "/"),
through the same pipeline: first sync, another client's changes (flags,
new mail, expunges, a rename), and local changes drained to Cyrus."""
import json
import unittest

import mailfixture as fx
from cyrus import Cyrus
from harness import Pipeline


class CyrusImapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cy = Cyrus()
        cls.cy.add_user("ci", "pass")
        fx.seed_standard(cls.cy.imap_port, "ci", per_folder=8)
        cls.p = Pipeline(workers=2, lease=5, batch_rows=50)

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.cy.stop()
        cls.p.cleanup()

    def sync(self):
        self.p.submit("sync", "ci", "--wait", "--timeout", "60", check=0)

    def assert_converged(self):
        server = fx.server_state(self.cy.imap_port, "ci")
        local = self.p.local_state("ci")
        self.assertEqual(sorted(server), sorted(local), "mailbox sets differ")
        for box in server:
            self.assertEqual(server[box], local[box], "mailbox %s differs" % box)
        return server

    def test_sync_changes_and_drain(self):
        pw = self.p.password_file("pass")
        self.p.submit("account", "add", "ci", "--imap", self.cy.imap_url, "--plaintext",
                      "--user", "ci", "--password-file", pw, check=0)
        self.sync()
        server = self.assert_converged()
        self.assertGreater(sum(len(v) for v in server.values()), 20)

        # another client: flags, new mail, expunges, a rename
        m = fx.connect(self.cy.imap_port, "ci")
        m.select("INBOX")
        m.uid("STORE", "1:2", "+FLAGS", "(\\Flagged $Work)")
        m.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
        m.expunge()
        m.rename(fx.q("Archive"), fx.q("Archive 2026"))
        m.logout()
        fx.fast_append(self.cy.imap_port, "ci", "INBOX", [fx.make_message(500)[0]])
        self.sync()
        self.assert_converged()

        # local changes carried to Cyrus
        ids = json.loads(self.p.submit("--json", "messages", "ci", "INBOX", check=0).stdout)
        first = ids["messages"][0]["id"]
        second = ids["messages"][1]["id"]
        self.p.submit("flag", "ci", str(first), "--seen", "--add-keyword", "$Done", "--wait",
                      check=0)
        self.p.submit("move", "ci", str(second), "--to", "Archive 2026", "--wait", check=0)
        self.sync()
        self.assert_converged()
        row = self.p.query("SELECT b.name, m.seen, m.keywords FROM messages m JOIN mailboxes b "
                           "ON b.id = m.mailbox_id WHERE m.id = ?", first)[0]
        self.assertEqual(row["seen"], 1)
        self.assertIn("$Done", row["keywords"])
        moved = self.p.query("SELECT b.name FROM messages m JOIN mailboxes b ON b.id = "
                             "m.mailbox_id WHERE m.id = ?", second)[0]
        self.assertEqual(moved["name"], "Archive 2026")


if __name__ == "__main__":
    unittest.main()
