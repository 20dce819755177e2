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
    "endless_line": (r"^malformed server response: line longer than 4194304 bytes$", "queued"),
    "malformed_fetch": (r"^malformed FETCH response in 'INBOX'", "queued"),
    "unknown_tag": (r"^server answered unknown tag 'X999'$", "queued"),
    "drip_forever": (r"^job exceeded its time limit of 8 s$", "queued"),
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
        cls.p = Pipeline(workers=1, lease=30, batch_rows=50, io_timeout=2, job_timeout=8)
        time.sleep(0.3)
        cls.worker_pid = cls.p.procs["worker.1"].pid
        cls.base_rss = proc_status(cls.worker_pid, "VmRSS")

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        # Memory errors anywhere; leaks only in the worker (this file's
        # subject: the store and scheduler have their own tests).
        reports = []
        for n in cls.p.logs:
            t = cls.p.log_text(n)
            kinds = r"AddressSanitizer|LeakSanitizer" if n.startswith("worker") else r"AddressSanitizer"
            m = re.search(r"(?s)(==\d+==ERROR: (%s)|\S+: runtime error:).{0,3000}" % kinds, t)
            if m:
                reports.append("%s:\n%s" % (n, m.group(0)))
        cls.p.cleanup()
        if reports:
            raise AssertionError("sanitizer reports in\n%s" % "\n".join(reports))

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


TOKEN = "ya29.fake-token_0123456789"


class OAuthTest(unittest.TestCase):
    """XOAUTH2 / OAUTHBEARER with --token-file, exact SASL strings."""

    @classmethod
    def setUpClass(cls):
        cls.p = Pipeline(workers=1, lease=30, io_timeout=5)

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.p.cleanup()

    def add(self, name, srv, token=TOKEN):
        tf = self.p.password_file(token)
        self.p.submit("account", "add", name, "--imap", srv.url, "--user", "bob@example.com",
                      "--token-file", tf, "--plaintext", check=0)

    def last_job(self, name):
        return wait_for(lambda: (lambda r: r[0] if r and r[0]["state"] in ("done", "failed", "dead")
                                 else None)(self.p.query(
            "SELECT j.state, j.last_error FROM jobs j JOIN accounts a ON a.id = j.account_id "
            "WHERE a.name = ? ORDER BY j.id DESC LIMIT 1", name)), 30, "job of %s to end" % name)

    def check_account(self, name):
        row = self.p.query("SELECT auth, secret FROM accounts WHERE name = ?", name)[0]
        self.assertEqual(row["auth"], "oauth2")
        self.assertNotIn(TOKEN.encode(), bytes(row["secret"]))

    def test_oauthbearer_sasl_ir(self):
        srv = fakeimap.FakeImap()
        try:
            ir = fakeimap.oauthbearer_ir("bob@example.com", srv.port, TOKEN)
            srv.scenario = fakeimap.scenario(
                [(r"^AUTHENTICATE OAUTHBEARER %s$" % re.escape(ir), ["{tag} OK welcome"])],
                caps="IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER")
            self.add("ob", srv)
            job = self.last_job("ob")
            self.assertEqual(job["state"], "done", job["last_error"])
            self.assertEqual({b: set(m) for b, m in self.p.local_state("ob").items()}, GOOD_STATE)
            self.assertIn("AUTHENTICATE OAUTHBEARER " + ir, [l.partition(" ")[2] for l in srv.received])
            self.assertFalse([l for l in srv.received if " LOGIN " in l or "PLAIN" in l])
            self.check_account("ob")
        finally:
            srv.stop()

    def test_xoauth2_without_sasl_ir(self):
        ir = fakeimap.xoauth2_ir("bob@example.com", TOKEN)
        srv = fakeimap.FakeImap(fakeimap.scenario(
            [(r"^AUTHENTICATE XOAUTH2$", ["+ ", ("expect", re.escape(ir)), "{tag} OK welcome"])],
            caps="IMAP4rev1 AUTH=XOAUTH2"))
        try:
            self.add("xo", srv)
            job = self.last_job("xo")
            self.assertEqual(job["state"], "done", job["last_error"])
            self.assertIn(ir, srv.received)
            self.check_account("xo")
        finally:
            srv.stop()

    def test_oauthbearer_error_challenge(self):
        srv = fakeimap.FakeImap()
        try:
            ir = fakeimap.oauthbearer_ir("bob@example.com", srv.port, TOKEN)
            err = fakeimap.b64('{"status":"invalid_token","scope":"mail","openid-configuration":'
                               '"https://auth.example/.well-known/openid-configuration"}')
            srv.scenario = fakeimap.scenario(
                [(r"^AUTHENTICATE OAUTHBEARER %s$" % re.escape(ir),
                  ["+ " + err, ("expect", "AQ=="),
                   "{tag} NO [AUTHENTICATIONFAILED] Authentication failed"])],
                caps="IMAP4rev1 SASL-IR AUTH=OAUTHBEARER")
            self.add("obfail", srv)
            job = self.last_job("obfail")
            self.assertEqual(job["state"], "failed")
            self.assertEqual(job["last_error"], "authentication failed: [AUTHENTICATIONFAILED] "
                             "Authentication failed (invalid_token)")
            self.assertIn("AQ==", srv.received)
            self.assertNotIn(TOKEN, job["last_error"])
            for n in self.p.logs:
                self.assertNotIn(TOKEN, self.p.log_text(n), "token in the log of " + n)
            # A good token afterwards (a new account: the token is fixed at add).
        finally:
            srv.stop()

    def test_xoauth2_error_challenge_empty_reply(self):
        ir = fakeimap.xoauth2_ir("bob@example.com", TOKEN)
        err = fakeimap.b64('{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}')
        srv = fakeimap.FakeImap(fakeimap.scenario(
            [(r"^AUTHENTICATE XOAUTH2 %s$" % re.escape(ir),
              ["+ " + err, ("expect", ""), "{tag} NO [AUTHENTICATIONFAILED] Invalid credentials"])],
            caps="IMAP4rev1 SASL-IR AUTH=XOAUTH2"))
        try:
            self.add("xofail", srv)
            job = self.last_job("xofail")
            self.assertEqual(job["last_error"], "authentication failed: [AUTHENTICATIONFAILED] "
                             "Invalid credentials (401)")
        finally:
            srv.stop()

    def test_no_oauth_mechanism(self):
        srv = fakeimap.FakeImap(fakeimap.scenario([], caps="IMAP4rev1 AUTH=PLAIN"))
        try:
            self.add("nomech", srv)
            job = self.last_job("nomech")
            self.assertEqual(job["state"], "failed")
            self.assertRegex(job["last_error"], "neither AUTH=OAUTHBEARER nor AUTH=XOAUTH2")
            self.assertFalse([l for l in srv.received if "AUTHENTICATE" in l or "LOGIN" in l])
        finally:
            srv.stop()

    def test_cli_token_and_password_exclusive(self):
        tf = self.p.password_file(TOKEN)
        r = self.p.submit("account", "add", "both", "--imap", "imap://127.0.0.1:1", "--user", "u",
                          "--token-file", tf, "--password-file", tf, "--plaintext", check=2)
        self.assertIn("exclude each other", r.stderr)
        empty = self.p.password_file("")
        r = self.p.submit("account", "add", "empty", "--imap", "imap://127.0.0.1:1", "--user", "u",
                          "--token-file", empty, "--plaintext", check=2)
        self.assertIn("token file", r.stderr)
