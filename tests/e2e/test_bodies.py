"""End-to-end: raw message bodies against a real Dovecot.

`mailsync-submit fetch-body` stores a body equal to the server's BODY[]
byte for byte (a 5 MB one too, with the worker's peak RSS staying small);
a body over `mailsync-store --max-body` gets a clear bodies.error and
exit 1 from --wait; an account with `--bodies all` prefetches the body of
every new message during sync; and kill -9 of the worker in the middle of
a body converges to one complete body."""
import json
import os
import random
import time
import unittest

import mailfixture as fx
from harness import Pipeline, Dovecot, wait_for

BOX = "Bodies"


def message(i, body_bytes, seed):
    """A message with a body of about body_bytes of base64-looking lines,
    8-bit bytes in the text part, and CRLF line ends."""
    rng = random.Random(seed)
    head = ("From: ann@example.org\r\nTo: bob@example.net\r\n"
            "Subject: body %d\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
            "Message-ID: <body%d@mailsync.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" % (i, i)).encode()
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    lines = [("Grüße, línea %d {5}) * OK\r\n" % i).encode()]
    size = len(head) + len(lines[0])
    while size < body_bytes:
        line = bytes(rng.choice(alphabet) for _ in range(76)) + b"\r\n"
        lines.append(line)
        size += len(line)
    return head + b"".join(lines)


class BodyPipeline(Pipeline):
    """A pipeline whose store gets --max-body."""

    def __init__(self, max_body=None, **kw):
        self.max_body = max_body
        super().__init__(**kw)

    def argv(self, name):
        argv = super().argv(name)
        if name == "store" and self.max_body is not None:
            argv += ["--max-body", str(self.max_body)]
        return argv


def server_bodies(port, user):
    """{uid: BODY[] bytes} of BOX, as the server sends them."""
    m = fx.connect(port, user)
    m.select(fx.q(BOX), readonly=True)
    typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if isinstance(item, tuple):
            meta = item[0].decode()
            uid = int(meta.split("UID ")[1].split()[0])
            out[uid] = item[1]
    m.logout()
    return out


def sanitized(path):
    """True for a binary built with AddressSanitizer."""
    with open(path, "rb") as f:
        return b"AddressSanitizer" in f.read()


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


class BodiesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dovecot = Dovecot()
        for user in ("bodies", "prefetch"):
            m = fx.connect(cls.dovecot.port, user)
            fx.create(m, BOX)
            m.logout()
        # uid 1 small, 2 about 5 MB, 3 300 KB (not a multiple of a
        # chunk), 4 about 12 MB (for the kill test).
        cls.raw = [message(1, 2000, 1), message(2, 5 * 1000 * 1000, 2),
                   message(3, 300 * 1000 + 7, 3), message(4, 12 * 1000 * 1000, 4)]
        for user in ("bodies", "prefetch"):
            fx.fast_append(cls.dovecot.port, user, BOX, cls.raw)
        cls.server = server_bodies(cls.dovecot.port, "bodies")
        assert sorted(cls.server) == [1, 2, 3, 4]
        cls.p = BodyPipeline(workers=1, lease=5)
        cls.add(cls.p, "bodies")
        cls.p.submit("sync", "bodies", "--wait", "--timeout", "120", check=0)

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.dovecot.stop()
        cls.p.cleanup()

    @classmethod
    def add(cls, p, user, *extra):
        p.submit("account", "add", user, "--imap",
                 "imap://127.0.0.1:%d" % cls.dovecot.port, "--user", user,
                 "--password-file", p.password_file(), "--plaintext", *extra, check=0)

    @staticmethod
    def message_id(p, account, uid):
        return p.query("SELECT m.id FROM messages m JOIN accounts a ON a.id = m.account_id"
                       " JOIN mailboxes x ON x.id = m.mailbox_id WHERE a.name = ?"
                       " AND x.name = ? AND m.uid = ?", account, BOX, uid)[0]["id"]

    @staticmethod
    def stored(p, mid):
        """(complete, size, error, bytes) of a stored body; checks that
        the chunks are contiguous."""
        row = p.query("SELECT complete, size, error FROM bodies WHERE message_id = ?", mid)
        if not row:
            return None
        chunks = p.query('SELECT "offset" AS off, data FROM body_chunks WHERE message_id = ?'
                         ' ORDER BY "offset"', mid)
        data, off = b"", 0
        for c in chunks:
            assert c["off"] == off, "chunk at %d, expected %d" % (c["off"], off)
            assert len(c["data"]) <= 256 * 1024
            data += c["data"]
            off += len(c["data"])
        return (row[0]["complete"], row[0]["size"], row[0]["error"], data)

    def test_01_fetch_body_byte_for_byte(self):
        worker = self.p.procs["worker.1"].pid
        before = vm_hwm_kb(worker)
        for uid in (1, 3, 2):
            mid = self.message_id(self.p, "bodies", uid)
            r = self.p.submit("fetch-body", "bodies", str(mid), "--wait", "--timeout", "120",
                              check=0)
            self.assertIn("done", r.stdout)
            complete, size, error, data = self.stored(self.p, mid)
            self.assertEqual((complete, size, error), (1, len(self.server[uid]), None))
            self.assertEqual(data, self.server[uid], "uid %d differs" % uid)
        after = vm_hwm_kb(worker)
        print("worker VmHWM: %d kB before, %d kB after fetching 5 MB" % (before, after))
        # Streamed in 256 KiB chunks: the peak does not grow by the body.
        # (Under ASan freed memory stays in quarantine: RSS says nothing.)
        if not sanitized(self.p.argv("worker.1")[0]):
            self.assertLess(after - before, 3 * 1024)
            self.assertLess(after, 40 * 1024)
        # The jobs are fetch_body jobs; none of them touched the mailboxes.
        kinds = self.p.query("SELECT kind, state FROM jobs WHERE kind = 'fetch_body'")
        self.assertEqual(sorted(tuple(k) for k in kinds), [("fetch_body", "done")] * 3)
        self.assertEqual(len(self.p.local_state("bodies")[BOX]), 4)

    def test_02_refused_requests(self):
        r = self.p.submit("fetch-body", "bodies", "999999", check=1)
        self.assertIn("no message with id 999999", r.stderr)
        r = self.p.submit("fetch-body", "nobody", "1", check=1)
        r = self.p.submit("fetch-body", "bodies", "x", check=2)

    def test_03_kill_worker_mid_body(self):
        mid = self.message_id(self.p, "bodies", 4)
        r = self.p.submit("--json", "fetch-body", "bodies", str(mid), check=0)
        job = json.loads(r.stdout)["job_id"]

        def partial():
            n = self.p.query("SELECT count(*) AS n FROM body_chunks WHERE message_id = ?",
                             mid)[0]["n"]
            return n > 0
        wait_for(partial, 60, "the first chunks of the 12 MB body", interval=0.005)
        self.p.kill("worker.1")
        got = self.stored(self.p, mid)
        print("killed the worker with %d of %d bytes stored (complete=%d)" % (
            len(got[3]), len(self.server[4]), got[0]))
        self.p.restart("worker.1")

        def finished():
            st = json.loads(self.p.submit("--json", "status", str(job), check=0).stdout)
            return st["job"]["state"] in ("done", "failed", "dead")
        wait_for(finished, 120, "the fetch_body job to finish")
        st = json.loads(self.p.submit("--json", "status", str(job), check=0).stdout)["job"]
        self.assertEqual(st["state"], "done", st)
        complete, size, error, data = self.stored(self.p, mid)
        self.assertEqual((complete, size, error), (1, len(self.server[4]), None))
        self.assertEqual(data, self.server[4])
        n = self.p.query("SELECT count(*) AS n FROM body_chunks WHERE message_id = ?", mid)[0]["n"]
        self.assertEqual(n, (len(self.server[4]) + 256 * 1024 - 1) // (256 * 1024))

    def test_04_prefetch_all_and_too_large(self):
        q = BodyPipeline(workers=1, lease=5, max_body=1000 * 1000)
        try:
            self.add(q, "prefetch", "--bodies", "all")
            q.submit("sync", "prefetch", "--wait", "--timeout", "120", check=0)
            server = server_bodies(self.dovecot.port, "prefetch")
            for uid in (1, 3):
                got = self.stored(q, self.message_id(q, "prefetch", uid))
                self.assertEqual(got, (1, len(server[uid]), None, server[uid]))
            for uid in (2, 4):
                complete, size, error, data = self.stored(q, self.message_id(q, "prefetch", uid))
                self.assertEqual((complete, size, data), (0, len(server[uid]), b""))
                self.assertEqual(error, "body of %d bytes exceeds the limit of 1000000 bytes"
                                 % len(server[uid]))
            # fetch-body of a too large message: exit 1 with the reason.
            mid = self.message_id(q, "prefetch", 2)
            r = q.submit("fetch-body", "prefetch", str(mid), "--wait", "--timeout", "60",
                         check=1)
            self.assertIn("exceeds the limit of 1000000 bytes", r.stdout + r.stderr)
            # A new message is prefetched by the next sync.
            late = message(5, 40000, 5)
            fx.fast_append(self.dovecot.port, "prefetch", BOX, [late])
            q.submit("sync", "prefetch", "--wait", "--timeout", "120", check=0)
            got = self.stored(q, self.message_id(q, "prefetch", 5))
            self.assertEqual(got, (1, len(late), None, late))
            self.assertEqual(q.query("SELECT count(*) AS n FROM bodies")[0]["n"], 5)
        finally:
            q.stop()
            q.cleanup()


if __name__ == "__main__":
    unittest.main()
