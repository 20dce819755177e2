"""End-to-end deltas: messages expunged on the server disappear locally,
through each path a server may offer: QRESYNC (VANISHED), CONDSTORE with
ESEARCH, and plain IMAP4rev1 (UID SEARCH); an emptied mailbox empties
locally; a no-change resync leaves every row alone; a renamed folder keeps
its rows (same messages.id) under the new name; a deleted folder goes, a
new one appears; a UIDVALIDITY change resets the mailbox; a no-change
resync of ten mailboxes opens none of them (counted by a TCP proxy)."""
import os
import subprocess
import unittest

import mailfixture as fx
from harness import Dovecot, Pipeline
from tcpproxy import TcpProxy
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
        self.assertEqual(set(server), set(local), "mailboxes")
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


    def log_count(self, outcome, detail_like="%"):
        return self.p.query("SELECT COUNT(*) AS n FROM sync_log WHERE outcome = ? AND detail LIKE ?",
                            outcome, detail_like)[0]["n"]

    def ids(self, box):
        return {r["uid"]: r["id"] for r in self.p.query(
            "SELECT m.uid, m.id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
            "WHERE b.name = ?", box)}

    def test_5_renamed_folder_keeps_rows(self):
        work, proj = self.ids("Work"), self.ids("Work/Projects")
        box_id = self.p.query("SELECT id FROM mailboxes WHERE name = 'Work'")[0]["id"]
        self.assertTrue(work and proj)
        m = fx.connect(self.dovecot.port, "dee")
        typ, data = m.rename(fx.q("Work"), fx.q("Job"))
        self.assertEqual(typ, "OK", data)
        m.logout()
        self.converge()
        self.assertEqual(self.ids("Job"), work)
        self.assertEqual(self.ids("Job/Projects"), proj)
        self.assertEqual(self.p.query("SELECT id FROM mailboxes WHERE name = 'Job'")[0]["id"], box_id)
        self.assertEqual(self.log_count("mailbox_renamed", "'Work' -> 'Job'"), 1)
        self.assertEqual(self.log_count("mailbox_renamed", "'Work/Projects' -> 'Job/Projects'"), 1)
        self.assertEqual(self.log_count("mailbox_removed", "Work%"), 0)

    def test_6_deleted_folder_goes(self):
        m = fx.connect(self.dovecot.port, "dee")
        typ, data = m.delete(fx.q("Entwürfe Ünïcode"))
        self.assertEqual(typ, "OK", data)
        m.logout()
        self.converge()
        self.assertEqual(self.ids("Entwürfe Ünïcode"), {})
        self.assertEqual(self.log_count("mailbox_removed", "Entwürfe Ünïcode"), 1)

    def test_7_new_folder_appears(self):
        m = fx.connect(self.dovecot.port, "dee")
        fx.create(m, "Neu")
        m.logout()
        fx.fast_append(self.dovecot.port, "dee", "Neu",
                       [fx.make_message(200 + k)[0] for k in range(4)])
        server = self.converge()
        self.assertEqual(len(server["Neu"]), 4)
        self.assertEqual(len(self.ids("Neu")), 4)
        self.assertEqual(self.log_count("mailbox_added", "Neu"), 1)

    def test_8_uidvalidity_change_resets(self):
        m = fx.connect(self.dovecot.port, "dee")
        typ, data = m.delete(fx.q("Archive/2024"))
        self.assertEqual(typ, "OK", data)
        fx.create(m, "Archive/2024")
        m.logout()
        fx.fast_append(self.dovecot.port, "dee", "Archive/2024",
                       [fx.make_message(300 + k, subject="fresh %d" % k)[0] for k in range(3)])
        server = self.converge()
        self.assertEqual(len(server["Archive/2024"]), 3)
        subjects = sorted(r["subject"] for r in self.p.query(
            "SELECT m.subject FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
            "WHERE b.name = 'Archive/2024'"))
        self.assertEqual(subjects, ["fresh 0", "fresh 1", "fresh 2"])
        self.assertGreaterEqual(self.log_count("reset", "Archive/2024"), 1)

    def doveadm(self, *args):
        conf = os.path.join(self.dovecot.lab, "etc", "dovecot.conf")
        r = subprocess.run(["doveadm", "-c", conf] + list(args), capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("doveadm %s: %s" % (" ".join(args), r.stderr.strip()))

    def test_9_sparse_uids_many_ranges(self):
        """UIDs 1..3 and 90000..90002: without QRESYNC the old UIDs are
        scanned in 19 ranges of 5,000 (two round trips of 16)."""
        m = fx.connect(self.dovecot.port, "dee")
        fx.create(m, "Big")
        m.logout()
        fx.fast_append(self.dovecot.port, "dee", "Big", [fx.make_message(400 + k)[0] for k in range(3)])
        self.doveadm("mailbox", "update", "-u", "dee", "--min-next-uid", "90000", "Big")
        fx.fast_append(self.dovecot.port, "dee", "Big", [fx.make_message(500 + k)[0] for k in range(3)])
        server = self.converge()
        self.assertEqual(sorted(server["Big"]), [1, 2, 3, 90000, 90001, 90002])
        m = fx.connect(self.dovecot.port, "dee")
        m.select("Big")
        m.uid("STORE", "90002", "+FLAGS", "(\\Flagged)")
        m.uid("STORE", "3", "+FLAGS", "(\\Seen)")
        m.logout()
        expunge(self.dovecot.port, "dee", "Big", [2, 90001])
        server = self.converge()
        self.assertEqual(sorted(server["Big"]), [1, 3, 90000, 90002])


class DeltaQresyncTest(DeltaBase, unittest.TestCase):
    caps = None  # Dovecot's own: QRESYNC, CONDSTORE, ESEARCH, LIST-STATUS


class DeltaCondstoreTest(DeltaBase, unittest.TestCase):
    caps = NO_QRESYNC


class DeltaPlainTest(DeltaBase, unittest.TestCase):
    caps = PLAIN


class BigVanishedTest(unittest.TestCase):
    """A VANISHED answer longer than the parser's old 64 KiB line limit:
    12,000 scattered expunges among 24,000 messages (Dovecot sends them
    as one 66 KB line) still converge."""

    def test_scattered_expunges(self):
        dov = Dovecot()
        p = None
        try:
            n = 24000
            fx.fast_append(dov.port, "vee", "INBOX", [
                ("From: a@example.org\r\nSubject: %d\r\nMessage-ID: <v%d@x>\r\n\r\nx\r\n"
                 % (i, i)).encode() for i in range(n)])
            p = Pipeline(workers=1, lease=30)
            p.submit("account", "add", "vee", "--imap", "imap://127.0.0.1:%d" % dov.port,
                     "--user", "vee", "--password-file", p.password_file(), "--plaintext",
                     check=0)
            p.submit("sync", "vee", "--wait", "--timeout", "120", check=0)
            m = fx.connect(dov.port, "vee")
            m.select("INBOX")
            for start in range(1, n + 1, 4000):
                odd = ",".join(str(u) for u in range(start, min(start + 4000, n + 1), 2))
                m.uid("STORE", odd, "+FLAGS.SILENT", "(\\Deleted)")
            m.expunge()
            m.logout()
            p.submit("sync", "vee", "--wait", "--timeout", "120", check=0)
            rows = p.query("SELECT COUNT(*) AS n, SUM(uid % 2) AS odd FROM messages")[0]
            self.assertEqual((rows["n"], rows["odd"]), (n // 2, 0))
        finally:
            if p:
                p.stop()
                p.cleanup()
            dov.stop()


class NoChangeBase:
    """Ten mailboxes; a resync without changes must open none of them
    (CONDSTORE: STATUS from the LIST round trip) and keep every row."""
    caps = None

    @classmethod
    def setUpClass(cls):
        cls.dovecot = CapDovecot(cls.caps) if cls.caps else Dovecot()
        m = fx.connect(cls.dovecot.port, "ten")
        cls.boxes = ["INBOX", "Drafts", "Sent", "Trash", "Junk"] + ["F%d" % k for k in range(5)]
        for b in cls.boxes[5:]:
            fx.create(m, b)
        m.logout()
        for k, b in enumerate(cls.boxes):
            fx.fast_append(cls.dovecot.port, "ten", b, [fx.make_message(10 * k + j)[0] for j in range(3)])
        cls.proxy = TcpProxy(cls.dovecot.port)
        cls.p = Pipeline(workers=1, lease=10, batch_rows=100)
        pw = cls.p.password_file()
        cls.p.submit("account", "add", "ten", "--imap", "imap://127.0.0.1:%d" % cls.proxy.port,
                     "--user", "ten", "--password-file", pw, "--plaintext", check=0)
        cls.p.submit("sync", "ten", "--wait", "--timeout", "60", check=0)

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.proxy.stop()
        cls.dovecot.stop()
        cls.p.cleanup()

    def test_no_change_resync_opens_nothing(self):
        self.proxy.take()
        before = self.p.query("SELECT id, uid, seen FROM messages ORDER BY id")
        self.assertEqual(len(before), 30)
        self.p.submit("sync", "ten", "--wait", "--timeout", "60", check=0)
        c = self.proxy.take()
        self.assertEqual(c.get("EXAMINE", 0), 0, c)
        self.assertEqual(c.get("FETCH", 0), 0, c)
        after = self.p.query("SELECT id, uid, seen FROM messages ORDER BY id")
        self.assertEqual([tuple(r) for r in before], [tuple(r) for r in after])
        # One changed mailbox: exactly that one is opened.
        m = fx.connect(self.dovecot.port, "ten")
        m.select("F3")
        m.uid("STORE", "2", "+FLAGS", "(\\Seen)")
        m.logout()
        self.proxy.take()
        self.p.submit("sync", "ten", "--wait", "--timeout", "60", check=0)
        c = self.proxy.take()
        self.assertEqual(c.get("EXAMINE", 0), 1, c)
        n = self.p.query("SELECT m.seen FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
                         "WHERE b.name = 'F3' AND m.uid = 2")[0]["seen"]
        self.assertEqual(n, 1)


class NoChangeQresyncTest(NoChangeBase, unittest.TestCase):
    caps = None


class NoChangeCondstoreTest(NoChangeBase, unittest.TestCase):
    caps = NO_QRESYNC
