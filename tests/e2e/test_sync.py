"""End-to-end: real Dovecot, real mailsync processes, real SQLite."""
import json
import os
import signal
import subprocess
import time
import unittest
import urllib.request

import mailfixture as fx
from harness import BIN, Dovecot, Pipeline, free_port, wait_for


class SyncTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dovecot = Dovecot(tls=True)
        fx.seed_standard(cls.dovecot.port, "alice")
        cls.p = Pipeline(workers=2, lease=5, batch_rows=100)

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.dovecot.stop()
        cls.p.cleanup()

    def add_account(self, name, user, extra=None):
        pw = self.p.password_file()
        args = ["account", "add", name, "--imap", "imap://127.0.0.1:%d" % self.dovecot.port,
                "--user", user, "--password-file", pw, "--plaintext"]
        return self.p.submit(*(args + (extra or [])), check=0)

    def assert_converged(self, account, user):
        server = fx.server_state(self.dovecot.port, user)
        local = self.p.local_state(account)
        self.assertEqual(sorted(server), sorted(local), "mailbox sets differ")
        for box in server:
            self.assertEqual(sorted(server[box]), sorted(local[box]), "UIDs differ in %s" % box)
            for uid, (flags, subj) in server[box].items():
                lf, ls = local[box][uid]
                self.assertEqual(flags, lf, "flags of %s/%d" % (box, uid))
                self.assertEqual(subj, ls, "subject of %s/%d" % (box, uid))
        return server

    def test_01_first_sync_and_delta(self):
        self.add_account("alice", "alice")
        self.p.submit("sync", "alice", "--wait", "--timeout", "60", check=0)
        server = self.assert_converged("alice", "alice")
        self.assertGreaterEqual(len(server), 9)
        # Roles: SPECIAL-USE and INBOX.
        roles = dict((r["name"], r["role"]) for r in self.p.query(
            "SELECT name, role FROM mailboxes WHERE account_id = (SELECT id FROM accounts WHERE name='alice')"))
        self.assertEqual(roles["INBOX"], "inbox")
        self.assertEqual(roles["Sent"], "sent")
        self.assertEqual(roles["Trash"], "trash")
        self.assertIn("Work/Projects", roles)
        self.assertIn("Отчёты", roles)
        # Attachments and decoded addresses.
        att = self.p.query("SELECT COUNT(*) AS n FROM messages WHERE has_attachments = 1")[0]["n"]
        self.assertGreater(att, 0)
        frm = self.p.query("SELECT to_addrs FROM messages LIMIT 1")[0]["to_addrs"]
        self.assertIn("Carol Müller <carol@example.com>", frm)
        # The password is not stored in clear text.
        secret = self.p.query("SELECT secret FROM accounts WHERE name='alice'")[0]["secret"]
        self.assertNotIn(b"pass", bytes(secret))

        # Changes from another client: new mail in two folders, flags.
        raw, _, _ = fx.make_message(900)
        fx.fast_append(self.dovecot.port, "alice", "Work/Projects", [raw], ["$Urgent"])
        raw2, _, _ = fx.make_message(901)
        fx.fast_append(self.dovecot.port, "alice", "INBOX", [raw2])
        m = fx.connect(self.dovecot.port, "alice")
        m.select("INBOX")
        m.uid("STORE", "1:3", "+FLAGS", "(\\Seen \\Flagged)")
        m.uid("STORE", "4", "-FLAGS", "(\\Seen)")
        m.uid("STORE", "5", "+FLAGS", "(Important)")
        m.logout()
        self.p.submit("sync", "alice", "--wait", "--timeout", "60", check=0)
        self.assert_converged("alice", "alice")
        n = self.p.query("SELECT COUNT(*) AS n FROM sync_log WHERE outcome = 'done'")[0]["n"]
        self.assertGreaterEqual(n, 2)

    def test_02_json_and_status(self):
        r = self.p.submit("--json", "account", "list", check=0)
        doc = json.loads(r.stdout)
        text = json.dumps(doc)
        self.assertIn("alice", text)
        self.assertNotIn('"pass"', text)
        r = self.p.submit("status", check=0)
        self.assertIn("alice", r.stdout)

    def test_03_kill_worker_mid_sync(self):
        n = 3000
        msgs = [fx.make_message(5000 + i, body_kb=1)[0] for i in range(n)]
        fx.fast_append(self.dovecot.port, "bob", "INBOX", msgs)
        self.add_account("bob", "bob")

        def partial():
            c = self.p.query("SELECT COUNT(*) AS n FROM messages m JOIN accounts a ON a.id = m.account_id "
                             "WHERE a.name='bob'")[0]["n"]
            return c if 0 < c < n else None
        wait_for(partial, 60, "a partly applied first sync", interval=0.02)
        for w in self.p.workers():
            self.p.kill(w, signal.SIGKILL)
        for w in self.p.workers():
            self.p.restart(w)

        def done():
            rows = self.p.query("SELECT state, attempts FROM jobs j JOIN accounts a ON a.id = j.account_id "
                                "WHERE a.name='bob' ORDER BY j.id DESC LIMIT 1")
            return rows and rows[0]["state"] == "done" and rows[0]
        job = wait_for(done, 90, "the retried job to finish")
        self.assertGreaterEqual(job["attempts"], 2)
        self.assert_converged("bob", "bob")
        c = self.p.query("SELECT COUNT(*) AS n, COUNT(DISTINCT uid) AS d FROM messages m "
                         "JOIN accounts a ON a.id = m.account_id WHERE a.name='bob'")[0]
        self.assertEqual(c["n"], c["d"])

    def test_04_tls_verified(self):
        pw = self.p.password_file()
        url = "imaps://127.0.0.1:%d" % self.dovecot.tls_port
        self.p.submit("account", "add", "tls-ok", "--imap", url, "--user", "alice",
                      "--password-file", pw, "--tls-ca", self.dovecot.ca_file, check=0)
        self.p.submit("sync", "tls-ok", "--wait", "--timeout", "60", check=0)
        # Without the test CA the system store must refuse the certificate.
        self.p.submit("account", "add", "tls-bad", "--imap", url, "--user", "alice",
                      "--password-file", pw, check=0)
        r = self.p.submit("sync", "tls-bad", "--wait", "--timeout", "60")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("certificate", (r.stdout + r.stderr).lower())

    def test_05_bad_password_fails_clearly(self):
        pw = self.p.password_file("Wr0ng-Passw0rd-7f3a")
        # Dovecot's static passdb accepts only "pass".
        self.p.submit("account", "add", "badpw", "--imap", "imap://127.0.0.1:%d" % self.dovecot.port,
                      "--user", "alice", "--password-file", pw, "--plaintext", check=0)
        r = self.p.submit("sync", "badpw", "--wait", "--timeout", "60")
        self.assertEqual(r.returncode, 1)
        self.assertIn("authentication failed", (r.stdout + r.stderr).lower())
        for name in ("store", "scheduler"):
            self.assertTrue(self.p.alive()[name], name + " died")
        self.assertNotIn("Wr0ng-Passw0rd-7f3a", "".join(self.p.log_text(n) for n in self.p.procs))

    def test_06_metrics(self):
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.p.metrics_port,
                                      timeout=5).read().decode()
        self.assertIn("mailsync_jobs_emitted_total", body)
        self.assertIn("mailsync_job_duration_seconds_bucket", body)
        # scripts/deps.sh installs Debian's prometheus package for promtool.
        promtool = subprocess.run(["which", "promtool"], capture_output=True, text=True).stdout.strip()
        self.assertTrue(promtool, "promtool missing: run scripts/deps.sh")
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


    def test_07_store_survives_half_open_peers(self):
        # A peer that connects and leaves before the nng handshake wedges
        # an nng 1.5.2 ipc listener; the store's watchdog must recover.
        import socket as so
        for name in ("control.sock", "results.sock", "jobs.sock"):
            s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
            s.connect(os.path.join(self.p.dir, name))
            s.close()
        time.sleep(0.2)
        r = self.p.submit("--timeout", "30", "account", "list", check=0)
        self.assertIn("alice", r.stdout)
        self.p.submit("sync", "alice", "--wait", "--timeout", "60", check=0)
        # A worker started after the wedge must still be handed jobs.
        for w in self.p.workers():
            self.p.kill(w, signal.SIGKILL)
            self.p.restart(w)
        self.p.submit("sync", "alice", "--wait", "--timeout", "60", check=0)


    def test_08_account_remove_cascades(self):
        self.add_account("gone", "alice")
        self.p.submit("sync", "gone", "--wait", "--timeout", "60", check=0)
        aid = self.p.query("SELECT id FROM accounts WHERE name = 'gone'")[0]["id"]
        self.assertGreater(self.p.query("SELECT COUNT(*) AS n FROM messages WHERE account_id = ?", aid)[0]["n"], 0)
        self.p.submit("account", "remove", "gone", check=0)
        for table in ("messages", "mailboxes", "jobs"):
            n = self.p.query("SELECT COUNT(*) AS n FROM %s WHERE account_id = ?" % table, aid)[0]["n"]
            self.assertEqual(n, 0, table)
        r = self.p.submit("account", "remove", "gone")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("gone", r.stderr)
        r = self.p.submit("sync", "gone")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no account", r.stderr.lower())


class CliTest(unittest.TestCase):
    def run_submit(self, *args, d=None):
        d = d or "/nonexistent-mailsync-dir"
        return subprocess.run([os.path.join(BIN, "mailsync-submit"), "--dir", d] + list(args),
                              capture_output=True, text=True, timeout=30)

    def test_usage_errors_exit_2(self):
        cases = [
            [],
            ["frobnicate"],
            ["account", "add"],
            ["account", "add", "x", "--imap", "http://h", "--user", "u", "--password-file", "/etc/hostname"],
            ["account", "add", "x", "--imap", "imap://127.0.0.1", "--user", "u",
             "--password-file", "/etc/hostname"],  # clear text without --plaintext
            ["account", "add", "x", "--imap", "imaps://127.0.0.1", "--user", "u",
             "--password-file", "/nonexistent"],
            ["account", "add", "bad name!", "--imap", "imaps://h", "--user", "u",
             "--password-file", "/etc/hostname"],
            ["sync"],
            ["sync", "x", "--timeout", "abc"],
            ["status", "notanumber"],
        ]
        for args in cases:
            r = self.run_submit(*args)
            self.assertEqual(r.returncode, 2, "%r -> %d: %s" % (args, r.returncode, r.stderr))
            self.assertTrue(r.stderr.strip(), "no message for %r" % (args,))

    def test_unreachable_exit_3(self):
        import tempfile
        d = tempfile.mkdtemp()
        r = self.run_submit("--timeout", "2", "account", "list", d=d)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("mailsync-store", r.stderr)


class UpTest(unittest.TestCase):
    def test_up_restarts_children_and_stops(self):
        import tempfile
        d = tempfile.mkdtemp()
        port = free_port()
        up = subprocess.Popen([os.path.join(BIN, "mailsync-up"), "--dir", d, "--workers", "2",
                               "--metrics-listen", "127.0.0.1:%d" % port],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            def children():
                try:
                    with open(os.path.join(d, "children")) as f:
                        kids = dict(l.split() for l in f if l.strip())
                    # store, scheduler, 2 workers, watch (push)
                    return len(kids) == 5 and kids
                except (OSError, ValueError):
                    return None
            kids = wait_for(children, 10, "mailsync-up to start its children")
            old = int(kids["worker.1"])
            os.kill(old, signal.SIGKILL)
            wait_for(lambda: (children() or {}).get("worker.1") not in (None, str(old)), 15,
                     "worker.1 to be restarted")
            r = subprocess.run([os.path.join(BIN, "mailsync-submit"), "--dir", d, "account", "list"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            up.send_signal(signal.SIGTERM)
            up.wait(timeout=20)
        self.assertEqual(up.returncode, 0)
