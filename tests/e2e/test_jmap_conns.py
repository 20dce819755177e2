"""End-to-end: a worker keeps a JMAP account's HTTP connection between
jobs (real Cyrus 3.6 behind a TCP proxy that counts connections): later
jobs of the account open none, a connection the server side dropped is
replaced without failing the job, and --keep-connections 0 keeps none."""
import os
import socket
import subprocess
import threading
import unittest

import mailfixture as fx
from cyrus import Cyrus
from harness import BIN, Pipeline


class CountingProxy:
    """Forwards TCP connections to target; counts them and can cut every
    open one (as a server or a middlebox closing idle connections)."""

    def __init__(self, target):
        self.target = target
        self.accepted = 0
        self.open = []
        self.lock = threading.Lock()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.accepted += 1
                self.open += [c, u]
            for src, dst in ((c, u), (u, c)):
                threading.Thread(target=self.pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def cut_all(self):
        with self.lock:
            socks, self.open = self.open, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def session_url(self):
        return "http://127.0.0.1:%d/.well-known/jmap" % self.port

    def stop(self):
        self.ls.close()
        self.cut_all()


class JmapConnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cy = Cyrus()
        cls.cy.add_user("carol", "carolpw")
        cls.cy.import_messages("carol", "Inbox", [fx.make_message(900 + i)[0] for i in range(5)])

    @classmethod
    def tearDownClass(cls):
        cls.cy.stop()

    def setUp(self):
        self.proxy = CountingProxy(self.cy.http_port)
        self.p = None

    def tearDown(self):
        if self.p:
            self.p.stop()
            self.p.cleanup()
        self.proxy.stop()

    def pipeline(self, *worker_args):
        # one worker, so every job of the account meets the kept connection
        self.p = Pipeline(workers=1, lease=30, worker_args=worker_args)
        pw = self.p.password_file("carolpw")
        self.p.submit("account", "add", "jc", "--jmap", self.proxy.session_url, "--plaintext",
                      "--user", "carol", "--password-file", pw, check=0)
        self.sync()
        self.assertEqual(self.count(), 5)

    def sync(self):
        self.p.submit("sync", "jc", "--wait", "--timeout", "60", check=0)

    def count(self):
        return self.p.query("SELECT COUNT(*) AS n FROM messages")[0]["n"]

    def test_kept_between_jobs(self):
        self.pipeline()
        first = self.proxy.accepted
        for _ in range(3):
            self.sync()
        self.assertEqual(self.proxy.accepted, first, "a later job opened a connection")
        # A new Email still arrives through the kept connection.
        self.cy.import_messages("carol", "Inbox", [fx.make_message(950)[0]])
        self.sync()
        self.assertEqual(self.count(), 6)
        self.assertEqual(self.proxy.accepted, first)
        # The connection is cut while kept: the next job connects again
        # and succeeds (a sync's first request is only a read).
        self.proxy.cut_all()
        self.sync()
        self.assertEqual(self.proxy.accepted, first + 1)
        undone = self.p.query("SELECT COUNT(*) AS n FROM jobs WHERE kind = 'sync' "
                              "AND state != 'done'")[0]["n"]
        self.assertEqual(undone, 0, "a sync failed or was retried")
        # a drain goes through the kept connection too, and lands once
        row = self.p.query("SELECT id FROM messages ORDER BY id LIMIT 1")[0]["id"]
        self.p.submit("flag", "jc", str(row), "--flagged", "--wait", check=0)
        self.assertEqual(self.proxy.accepted, first + 1)
        flagged = [e for e in self.cy.emails("carol") if (e.get("keywords") or {}).get("$flagged")]
        self.assertEqual(len(flagged), 1)

    def test_keep_none(self):
        self.pipeline("--keep-connections", "0")
        first = self.proxy.accepted
        self.sync()
        self.sync()
        self.assertEqual(self.proxy.accepted, first + 2)

    def test_bad_flag(self):
        r = subprocess.run([os.path.join(BIN, "mailsync-worker"), "--keep-connections", "x"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--keep-connections must be 0..10000", r.stderr)


if __name__ == "__main__":
    unittest.main()
