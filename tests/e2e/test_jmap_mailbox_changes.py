"""End-to-end: a later JMAP sync reads mailboxes with Mailbox/changes
(pkg/sync/jmap_sync.c) against a real Cyrus 3.6 behind a proxy that
records every API request: a no-change sync and a sync that only moves
mailbox counts are one request with no full Mailbox/get; a rename (also
of a parent, which renames its children), a created and a destroyed
mailbox read the whole table; an Email in a mailbox the table lacks makes
the worker read the table again, so no row is lost. SQLite equals the
server after each step."""
import unittest

import mailfixture as fx
from cyrus import Cyrus
from harness import Pipeline
from jmapproxy import Proxy, methods
from test_jmap_sync import local_state, server_state

# a later sync's first request when the store holds the mailbox table
FIRST = ["Mailbox/changes", "Mailbox/get", "Email/changes", "Email/get", "Email/get"]


class JmapMailboxChangesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cy = Cyrus()
        cls.cy.add_user("dana", "danapw")
        cls.cy.create_mailbox("dana", "Projects")
        cls.cy.create_mailbox("dana", "Projects/Alpha")
        cls.cy.import_messages("dana", "Inbox", [fx.make_message(800 + i)[0] for i in range(3)],
                               [])
        cls.cy.import_messages("dana", "Projects/Alpha", [fx.make_message(810)[0]], [])
        cls.proxy = Proxy(cls.cy.http_port)
        cls.p = Pipeline(workers=1, lease=10)
        pw = cls.p.password_file("danapw")
        cls.p.submit("account", "add", "jd", "--jmap", cls.proxy.session_url, "--plaintext",
                     "--user", "dana", "--password-file", pw, check=0)
        cls.sync_ok()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.proxy.stop()
            cls.cy.stop()
        cls.p.cleanup()

    @classmethod
    def sync_ok(cls):
        cls.p.submit("sync", "jd", "--wait", "--timeout", "60", check=0)

    def requests_of_sync(self):
        """The methods of each API request of one sync."""
        del self.proxy.seen[:]
        self.sync_ok()
        return list(self.proxy.seen)

    def assert_converged(self):
        self.assertEqual(local_state(self.p, "jd"), server_state(self.cy, "dana"))

    def full_gets(self, seen):
        return [m for m in seen if m[:1] == ["Mailbox/get"]]

    def test_1_no_change_is_one_request(self):
        self.assertEqual(self.requests_of_sync(), [FIRST])
        self.assert_converged()

    def test_2_counts_only_keep_the_table(self):
        self.cy.import_messages("dana", "Archive", [fx.make_message(820)[0]], ["$seen"])
        self.cy.import_messages("dana", "Projects/Alpha", [fx.make_message(821)[0]], [])
        seen = self.requests_of_sync()
        self.assertEqual(seen[0], FIRST)
        self.assertEqual(self.full_gets(seen), [], seen)
        self.assert_converged()

    def test_3_rename_of_a_parent_reads_the_table(self):
        self.cy.rename_mailbox("dana", "Projects", "Work")
        seen = self.requests_of_sync()
        self.assertEqual(seen[0], FIRST)
        self.assertEqual(len(self.full_gets(seen)), 1, seen)
        names = set(r["name"] for r in self.p.query("SELECT name FROM mailboxes"))
        self.assertIn("Work/Alpha", names)
        self.assertNotIn("Projects/Alpha", names)
        self.assert_converged()

    def test_4_created_and_destroyed_read_the_table(self):
        self.cy.create_mailbox("dana", "Later")
        seen = self.requests_of_sync()
        self.assertEqual(len(self.full_gets(seen)), 1, seen)
        self.assert_converged()
        # (Cyrus raises its deleted-modseq when a mailbox is destroyed:
        # Email/changes may then answer cannotCalculateChanges, a resync)
        self.cy.destroy_mailbox("dana", "Later")
        seen = self.requests_of_sync()
        self.assertGreaterEqual(len(self.full_gets(seen)), 1, seen)
        self.assert_converged()
        self.assertEqual(self.requests_of_sync(), [FIRST])

    def test_5_unknown_mailbox_reads_the_table(self):
        """The proxy hides a created mailbox from Mailbox/changes: the
        Email in it names a mailbox the lease's table lacks, and the
        worker reads the table again rather than lose the row."""
        self.cy.create_mailbox("dana", "Hidden")
        self.cy.import_messages("dana", "Hidden", [fx.make_message(830)[0]], [])

        def hide(resps):
            for r in resps:
                if r[0] == "Mailbox/changes":
                    r[1]["created"], r[1]["updated"] = [], []
                elif r[0] == "Mailbox/get" and r[2] == "mu":
                    r[1]["list"] = []
            return resps
        self.proxy.answer = hide
        try:
            seen = self.requests_of_sync()
        finally:
            self.proxy.answer = lambda resps: resps
        self.assertEqual(seen[0], FIRST)
        self.assertEqual(len(self.full_gets(seen)), 1, seen)
        self.assertIn("jmap_mailboxes_read why=unknown_mailbox", self.p.log_text("worker.1"))
        self.assert_converged()


if __name__ == "__main__":
    unittest.main()
