"""End-to-end deltas: messages expunged on the server disappear locally,
through each path a server may offer: QRESYNC (VANISHED), CONDSTORE with
ESEARCH, and plain IMAP4rev1 (UID SEARCH); an emptied mailbox empties
locally; a no-change resync leaves every row alone."""
import unittest

import mailfixture as fx
from harness import Dovecot, Pipeline
from test_push import CapDovecot

NO_QRESYNC = ("IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE UIDPLUS LIST-EXTENDED "
              "SPECIAL-USE NAMESPACE CHILDREN UNSELECT MOVE CONDSTORE ESEARCH LIST-STATUS")
PLAIN = "IMAP4rev1 SASL-IR LITERAL+ ID UIDPLUS LIST-EXTENDED SPECIAL-USE NAMESPACE CHILDREN"


def expunge(port, user, box, uids):
    m = fx.connect(port, user)
    try:
        m.select(fx.q(box))
        if uids == "all":
            m.store("1:*", "+FLAGS", "(\\Deleted)")
        else:
            m.uid("STORE", ",".join(str(u) for u in uids), "+FLAGS", "(\\Deleted)")
        m.expunge()
    finally:
        m.logout()


class DeltaBase:
    caps = None

    @classmethod
    def setUpClass(cls):
        cls.dovecot = CapDovecot(cls.caps) if cls.caps else Dovecot()
        fx.seed_standard(cls.dovecot.port, "dee", per_folder=8)
        cls.p = Pipeline(workers=1, lease=10, batch_rows=100)
        pw = cls.p.password_file()
        cls.p.submit("account", "add", "dee", "--imap", "imap://127.0.0.1:%d" % cls.dovecot.port,
                     "--user", "dee", "--password-file", pw, "--plaintext", check=0)
        cls.p.submit("sync", "dee", "--wait", "--timeout", "60", check=0)

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.dovecot.stop()
        cls.p.cleanup()

    def converge(self):
        self.p.submit("sync", "dee", "--wait", "--timeout", "60", check=0)
        server = fx.server_state(self.dovecot.port, "dee")
        local = self.p.local_state("dee")
        for box in server:
            self.assertEqual(sorted(server[box]), sorted(local.get(box, {})), "UIDs of %s" % box)
            for uid, (flags, _) in server[box].items():
                self.assertEqual(flags, local[box][uid][0], "flags of %s/%d" % (box, uid))
        return server

    def test_1_expunged_rows_go(self):
        expunge(self.dovecot.port, "dee", "INBOX", [2, 3, 7])
        expunge(self.dovecot.port, "dee", "Work/Projects", [1])
        server = self.converge()
        self.assertNotIn(2, server["INBOX"])
        n = self.p.query("SELECT COUNT(*) AS n FROM sync_log WHERE outcome = 'expunged'")[0]["n"]
        self.assertGreaterEqual(n, 2)

    def test_2_emptied_mailbox_empties(self):
        expunge(self.dovecot.port, "dee", "Archive", "all")
        server = self.converge()
        self.assertEqual(server["Archive"], {})
        n = self.p.query("SELECT COUNT(*) AS n FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
                         "WHERE b.name = 'Archive'")[0]["n"]
        self.assertEqual(n, 0)

    def test_3_flags_and_new_mail_with_expunges(self):
        m = fx.connect(self.dovecot.port, "dee")
        m.select("INBOX")
        m.uid("STORE", "4", "+FLAGS", "(\\Flagged $Later)")
        m.logout()
        fx.fast_append(self.dovecot.port, "dee", "INBOX", [fx.make_message(77)[0]])
        expunge(self.dovecot.port, "dee", "INBOX", [5])
        self.converge()

    def test_4_no_change_resync_keeps_rows(self):
        before = self.p.query("SELECT id, uid, seen, flagged, keywords FROM messages ORDER BY id")
        self.converge()
        after = self.p.query("SELECT id, uid, seen, flagged, keywords FROM messages ORDER BY id")
        self.assertEqual([tuple(r) for r in before], [tuple(r) for r in after])


class DeltaQresyncTest(DeltaBase, unittest.TestCase):
    caps = None  # Dovecot's own: QRESYNC, CONDSTORE, ESEARCH, LIST-STATUS


class DeltaCondstoreTest(DeltaBase, unittest.TestCase):
    caps = NO_QRESYNC


class DeltaPlainTest(DeltaBase, unittest.TestCase):
    caps = PLAIN
