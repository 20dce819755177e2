"""End-to-end: a worker keeps a JMAP account's HTTP connection between
jobs (real Cyrus 3.6 behind tcpproxy.py, which counts connections): later
jobs of the account open none, a connection the server side dropped is
replaced without failing the job, and --keep-connections 0 keeps none."""
import os
import subprocess
import unittest

import mailfixture as fx
from cyrus import Cyrus
from harness import BIN, Pipeline
from tcpproxy import TcpProxy


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
        self.proxy = TcpProxy(self.cy.http_port)
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
        self.p.submit("account", "add", "jc", "--jmap",
                      "http://127.0.0.1:%d/.well-known/jmap" % self.proxy.port, "--plaintext",
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
