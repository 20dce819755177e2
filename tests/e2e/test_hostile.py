"""End-to-end: hostile and broken IMAP servers (tests/e2e/fakeimap.py).

For each fault of fakeimap.FAULTS the real pipeline (store, scheduler, one
worker) syncs an account against the fake server: the job must end with a
clear last_error, no process may die, the worker's memory must stay
bounded; then the server turns good and the next sync must converge.
"""
import os
import re
import time
import unittest

import fakeimap
from harness import Pipeline, wait_for

# fault -> (words the job's last_error must contain (regex), job state)
EXPECT = {
    "greeting_hangs": (r"^waiting for the greeting: reading from server: timed out$", "queued"),
    "greeting_garbage": (r"^waiting for the greeting: malformed server response: ", "queued"),
    "login_no": (r"^authentication failed: \[AUTHENTICATIONFAILED\] Invalid credentials \(fake\)$",
                 "failed"),
    "bye_mid_fetch": (r"^server closed the session: fake server shutting down$", "queued"),
    "huge_literal": (r"^malformed server response: literal of 10737418240 bytes exceeds limit "
                     r"8388608", "queued"),
    "literal_cut": (r"^reading from server: connection closed$", "queued"),
    "endless_line": (r"^malformed server response: line longer than 65536 bytes$", "queued"),
    "malformed_fetch": (r"^malformed FETCH response in 'INBOX'", "queued"),
    "unknown_tag": (r"^server answered unknown tag 'X999'$", "queued"),
    "examine_bad": (r"^'EXAMINE INBOX' in 'INBOX': \[SERVERBUG\] internal error \(fake\)$", "queued"),
}

GOOD_STATE = {"Archive": {1}, "INBOX": {1, 2, 3}}
MEM_SLACK = 48 << 20


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = Pipeline(workers=1, lease=30, batch_rows=50, io_timeout=2)
        time.sleep(0.3)
        cls.worker_pid = cls.p.procs["worker.1"].pid
        cls.base_rss = proc_status(cls.worker_pid, "VmRSS")

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        reports = [n for n in cls.p.logs
                   if re.search(r"Sanitizer|runtime error:", cls.p.log_text(n))]
        cls.p.cleanup()
        if reports:
            raise AssertionError("sanitizer reports in %s" % reports)

    def job_of(self, account):
        rows = self.p.query(
            "SELECT j.id, j.state, j.last_error, j.attempts FROM jobs j JOIN accounts a "
            "ON a.id = j.account_id WHERE a.name = ? ORDER BY j.id DESC LIMIT 1", account)
        return rows[0] if rows else None

    def assert_alive(self):
        alive = self.p.alive()
        self.assertTrue(all(alive.values()), "a process died: %r" % alive)

    def add_account(self, name, srv, extra=None):
        pw = self.p.password_file("secret-pw")
        args = ["account", "add", name, "--imap", srv.url, "--user", "bob",
                "--password-file", pw, "--plaintext"]
        self.p.submit(*(args + (extra or [])), check=0)

    def boxes(self, account):
        state = self.p.local_state(account)
        return {b: set(m) for b, m in state.items()}

    def run_fault(self, fault):
        words, state = EXPECT[fault]
        srv = fakeimap.FakeImap(fakeimap.FAULTS[fault])
        name = "h-" + fault.replace("_", "-")
        try:
            self.add_account(name, srv)
            job = wait_for(lambda: (lambda j: j if j and j["last_error"] else None)(
                self.job_of(name)), 30, "job of %s to fail" % fault)
            self.assertRegex(job["last_error"], words)
            print("  %s: %s" % (fault, job["last_error"]))
            self.assertNotIn("secret-pw", job["last_error"])
            if state == "failed":
                wait_for(lambda: self.job_of(name)["state"] == "failed", 10, "state failed")
            else:
                self.assertIn(self.job_of(name)["state"], ("queued", "leased"))
            self.assert_alive()
            hwm = proc_status(self.worker_pid, "VmHWM")
            self.assertLess(hwm, self.base_rss + MEM_SLACK,
                            "worker peak memory %d MiB" % (hwm >> 20))
            if fault == "endless_line":
                self.assertLess(srv.endless_sent, 64 << 20,
                                "the worker kept reading the endless line")
            # The server heals: the next sync converges.
            srv.scenario = fakeimap.good()
            r = self.p.submit("sync", name, "--wait", "--timeout", "60")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(self.boxes(name), GOOD_STATE)
            subj = self.p.query("SELECT m.subject FROM messages m JOIN accounts a ON "
                                "a.id = m.account_id WHERE a.name = ? AND m.uid = 3 AND "
                                "m.subject IS NOT NULL", name)
            self.assertEqual([r["subject"] for r in subj], ["hello three"])
            self.assert_alive()
        finally:
            srv.stop()
        return srv


def _make(fault):
    def t(self):
        self.run_fault(fault)
    t.__name__ = "test_fault_" + fault
    return t


for _f in EXPECT:
    setattr(HostileTest, "test_fault_" + _f, _make(_f))


if __name__ == "__main__":
    unittest.main()
