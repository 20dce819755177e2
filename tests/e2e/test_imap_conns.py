"""End-to-end: a worker keeps an IMAP account's authenticated session
between jobs (real Dovecot behind a TCP proxy that counts connections and
commands): later syncs and drains of the account open no connection and
log in no more (one NOOP proves the session alive, UNSELECT ends each
job that opened a mailbox, without expunging), a session the server side dropped is replaced
without failing the job, --keep-connections 0 keeps none, and a server
without UNSELECT is never kept."""
import json
import unittest

import mailfixture as fx
from harness import Dovecot, Pipeline, wait_for
from tcpproxy import TcpProxy
from test_deltas import PLAIN
from test_push import CapDovecot


class ImapConnsBase:
    caps = None
    worker_args = ()

    @classmethod
    def setUpClass(cls):
        cls.dovecot = CapDovecot(cls.caps) if cls.caps else Dovecot()
        m = fx.connect(cls.dovecot.port, "kc")
        fx.create(m, "Work")
        m.logout()
        fx.fast_append(cls.dovecot.port, "kc", "INBOX", [fx.make_message(i)[0] for i in range(3)])
        cls.proxy = TcpProxy(cls.dovecot.port)
        cls.p = Pipeline(workers=1, lease=10, worker_args=cls.worker_args)
        pw = cls.p.password_file()
        cls.p.submit("account", "add", "kc", "--imap", "imap://127.0.0.1:%d" % cls.proxy.port,
                     "--user", "kc", "--password-file", pw, "--plaintext", check=0)
        cls.sync()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.proxy.stop()
            cls.dovecot.stop()
        cls.p.cleanup()

    @classmethod
    def sync(cls):
        cls.p.submit("sync", "kc", "--wait", "--timeout", "60", check=0)

    def rows(self):
        return self.p.query("SELECT count(*) AS n FROM messages")[0]["n"]


class ImapConnsKeptTest(ImapConnsBase, unittest.TestCase):
    def test_1_later_jobs_reuse_the_session(self):
        before = self.proxy.accepted
        self.proxy.take()
        for _ in range(2):
            self.sync()
        fx.fast_append(self.dovecot.port, "kc", "Work", [fx.make_message(50)[0]])
        for _ in range(2):
            self.sync()
        self.assertEqual(self.rows(), 4)
        self.assertEqual(self.proxy.accepted, before)
        c = self.proxy.take()
        self.assertEqual(c.get("LOGIN", 0) + c.get("AUTHENTICATE", 0), 0, c)
        self.assertEqual(c.get("NOOP", 0), 4, c)
        # only the sync that found new mail opened a mailbox to close
        self.assertEqual(c.get("EXAMINE", 0), 1, c)
        self.assertEqual(c.get("UNSELECT", 0), 1, c)
        self.assertEqual(c.get("LOGOUT", 0), 0, c)

    def test_2_a_drain_lands_once_on_the_kept_session(self):
        before = self.proxy.accepted
        r = self.p.query("SELECT m.id, m.uid FROM messages m JOIN mailboxes b"
                         " ON b.id = m.mailbox_id WHERE b.name = 'INBOX' ORDER BY m.uid")[0]
        out = self.p.submit("--json", "flag", "kc", str(r["id"]), "--flagged", "--wait",
                            "--timeout", "60", check=0)
        self.assertEqual(json.loads(out.stdout)["change"]["state"], "done")
        m = fx.connect(self.dovecot.port, "kc")
        m.select("INBOX", readonly=True)
        typ, data = m.uid("FETCH", str(r["uid"]), "(FLAGS)")
        m.logout()
        self.assertIn(b"\\Flagged", data[0])
        self.assertEqual(self.proxy.accepted, before)

    def test_3_a_dropped_session_is_replaced(self):
        self.sync()
        before = self.proxy.accepted
        self.proxy.cut_all()
        fx.fast_append(self.dovecot.port, "kc", "INBOX", [fx.make_message(60)[0]])
        self.sync()
        self.assertEqual(self.proxy.accepted, before + 1)
        wait_for(lambda: self.rows() == 5, 10, "the new message")
        self.assertIn("event=imap_kept_conn_closed", self.p.log_text("worker.1"))
        j = self.p.query("SELECT state, attempts FROM jobs ORDER BY id DESC LIMIT 1")[0]
        self.assertEqual((j["state"], j["attempts"]), ("done", 1))  # no failed attempt


class ImapConnsNoneTest(ImapConnsBase, unittest.TestCase):
    worker_args = ("--keep-connections", "0")

    def test_every_job_connects(self):
        before = self.proxy.accepted
        for _ in range(3):
            self.sync()
        self.assertEqual(self.proxy.accepted, before + 3)


class ImapConnsNoUnselectTest(ImapConnsBase, unittest.TestCase):
    """Without UNSELECT the only way out of a mailbox is CLOSE (which
    expunges) or another SELECT: the session is not kept."""
    caps = PLAIN

    def test_every_job_connects(self):
        before = self.proxy.accepted
        for _ in range(2):
            self.sync()
        self.assertEqual(self.proxy.accepted, before + 2)
        self.assertEqual(self.rows(), 3)


if __name__ == "__main__":
    unittest.main()


class FirstSyncOrderTest(unittest.TestCase):
    """A first sync opens INBOX in the LIST's round trip, before the LIST
    (Dovecot re-scans a maildir on any open after a LIST in the session);
    a later sync lists first and leaves an unchanged INBOX closed."""

    def test_inbox_is_opened_before_the_list_only_on_a_first_sync(self):
        dov = Dovecot()
        proxy = TcpProxy(dov.port)
        p = Pipeline(workers=1, lease=10)
        try:
            m = fx.connect(dov.port, "fo")
            fx.create(m, "Work")
            m.logout()
            fx.fast_append(dov.port, "fo", "INBOX", [fx.make_message(i)[0] for i in range(5)])
            fx.fast_append(dov.port, "fo", "Work", [fx.make_message(10)[0]])
            pw = p.password_file()
            p.submit("account", "add", "fo", "--imap", "imap://127.0.0.1:%d" % proxy.port,
                     "--user", "fo", "--password-file", pw, "--plaintext", check=0)
            wait_for(lambda: p.query("SELECT 1 FROM jobs WHERE kind = 'sync' AND state = 'done'"),
                     60, "the first sync")
            first = proxy.take_lines()
            lists = [i for i, c in enumerate(first) if c.startswith("LIST ")]
            inbox = [i for i, c in enumerate(first) if c.startswith("EXAMINE INBOX")]
            self.assertEqual(len(lists), 1, first)
            self.assertEqual(len(inbox), 1, first)
            self.assertLess(inbox[0], lists[0], first)
            # INBOX is fetched while still selected: no other EXAMINE between
            fetches = [i for i, c in enumerate(first) if c.startswith("UID FETCH")]
            self.assertTrue(fetches and fetches[0] > lists[0], first)
            self.assertFalse([c for c in first[inbox[0] + 1:fetches[0]] if c.startswith("EXAMINE")], first)
            rows = p.query("SELECT b.name, count(*) AS n FROM messages m JOIN mailboxes b"
                           " ON b.id = m.mailbox_id GROUP BY b.name ORDER BY b.name")
            self.assertEqual([(r["name"], r["n"]) for r in rows], [("INBOX", 5), ("Work", 1)])

            fx.fast_append(dov.port, "fo", "Work", [fx.make_message(11)[0]])
            p.submit("sync", "fo", "--wait", "--timeout", "60", check=0)
            later = proxy.take_lines()
            lists = [i for i, c in enumerate(later) if c.startswith("LIST ")]
            examines = [c for c in later if c.startswith("EXAMINE")]
            self.assertEqual(len(lists), 1, later)
            self.assertEqual(examines, [c for c in examines if c.startswith("EXAMINE Work")], later)
            self.assertEqual(len(examines), 1, later)
            self.assertLess(lists[0], later.index(examines[0]), later)
            self.assertEqual(p.query("SELECT count(*) AS n FROM messages")[0]["n"], 7)
        finally:
            try:
                p.stop()
            finally:
                proxy.stop()
                dov.stop()
            p.cleanup()
