"""End-to-end push: mailsync-watch holds IDLE/NOTIFY connections and a
change on the server reaches SQLite without any `mailsync-submit sync`."""
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import mailfixture as fx
from harness import BIN, HERE, Dovecot, Pipeline, free_port, wait_for

# Dovecot's capabilities without NOTIFY (forces the IDLE + STATUS path).
NO_NOTIFY = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT LITERAL+ "
             "UIDPLUS LIST-EXTENDED CONDSTORE QRESYNC ESEARCH LIST-STATUS MOVE "
             "SPECIAL-USE NAMESPACE CHILDREN UNSELECT")
# ... and without LIST-STATUS (baselines from one pipelined STATUS each).
NO_NOTIFY_NO_LIST_STATUS = NO_NOTIFY.replace(" LIST-STATUS", "")


class CapDovecot(Dovecot):
    """Dovecot with IMAP_CAPABILITY (dovecot.sh) set."""

    def __init__(self, caps):
        import tempfile
        self.lab = tempfile.mkdtemp(prefix="mailsync-dovecot-")
        self.port = free_port()
        self.tls_port = None
        env = dict(os.environ, LAB=self.lab, PORT=str(self.port), IMAP_CAPABILITY=caps)
        subprocess.run([os.path.join(HERE, "dovecot.sh"), "start"], env=env, check=True)
        self.env = env


def restart_dovecot(d, down_s=2.0):
    """Stops the master (keeping the mail) and starts it again."""
    pid = int(open(os.path.join(d.lab, "run", "master.pid")).read())
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10, "dovecot to stop")
    time.sleep(down_s)
    subprocess.run(["dovecot", "-c", os.path.join(d.lab, "etc", "dovecot.conf")], check=True)


class WatchPipeline(Pipeline):
    def __init__(self, poll=2, watch_args=("--io-timeout", "5"), **kw):
        self.poll = poll
        self.watch_args = list(watch_args)
        super().__init__(watch=True, **kw)
        wait_for(lambda: os.path.exists(os.path.join(self.dir, "watch.sock")), 10,
                 "the scheduler's watch socket")
        self.start("watch")

    def argv(self, name):
        if name == "watch":
            return [os.path.join(BIN, "mailsync-watch"), "--dir", self.dir,
                    "--poll", str(self.poll)] + self.watch_args
        return super().argv(name)


def append(port, user, box, subject):
    m = fx.connect(port, user)
    try:
        m.append(fx.q(box), None, None,
                 ("Subject: %s\r\nFrom: a@b\r\nTo: c@d\r\n\r\nhi\r\n" % subject).encode())
    finally:
        m.logout()


class PushBase:
    caps = None
    mode = "notify"

    @classmethod
    def setUpClass(cls):
        cls.dovecot = CapDovecot(cls.caps) if cls.caps else Dovecot()
        fx.seed_standard(cls.dovecot.port, "pat", per_folder=3)
        cls.p = WatchPipeline(workers=2, lease=5)
        pw = cls.p.password_file()
        cls.p.submit("account", "add", "pat", "--imap", "imap://127.0.0.1:%d" % cls.dovecot.port,
                     "--user", "pat", "--password-file", pw, "--plaintext", check=0)
        cls.p.submit("sync", "pat", "--wait", "--timeout", "60", check=0)
        wait_for(lambda: "event=watching mode=%s" % cls.mode in cls.p.log_text("watch"), 30,
                 "the watcher to watch")

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.dovecot.stop()
        cls.p.cleanup()

    def row(self, subject):
        r = self.p.query("SELECT b.name FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
                         "WHERE m.subject = ?", subject)
        return r[0]["name"] if r else None

    def push_once(self, box, subject, timeout=20):
        t0 = time.time()
        append(self.dovecot.port, "pat", box, subject)
        wait_for(lambda: self.row(subject), timeout, "row %s to appear" % subject, interval=0.02)
        self.assertEqual(self.row(subject), box)
        return time.time() - t0

    def test_01_append_non_inbox(self):
        lat = self.push_once("Sent", "push-1")
        print("\n  %s: append->row %.3f s" % (self.mode, lat))

    def test_02_inbox_and_flags(self):
        self.push_once("INBOX", "push-2")
        m = fx.connect(self.dovecot.port, "pat")
        m.select(fx.q("Sent"))
        typ, data = m.uid("SEARCH", None, "ALL")
        uid = int(data[0].split()[0])
        m.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)")
        m.logout()
        wait_for(lambda: self.p.query(
            "SELECT m.flagged FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
            "WHERE b.name = 'Sent' AND m.uid = ?", uid)[0]["flagged"] == 1, 20,
            "the flag to reach the row")

    def test_03_watcher_killed(self):
        self.p.kill("watch")
        self.p.restart("watch")
        # the old lease expires (5 s), the job is retried or re-created
        wait_for(lambda: "event=watching" in self.p.log_text("watch").split("event=started")[-1],
                 60, "a new watch after SIGKILL")
        self.push_once("Drafts", "push-3")

    def test_04_server_restart(self):
        restart_dovecot(self.dovecot)
        wait_for(lambda: self.p.log_text("watch").count("event=connection_lost") >= 1, 30,
                 "the watcher to notice")
        wait_for(lambda: self.p.log_text("watch").split("event=connection_lost")[-1]
                 .count("event=watching") >= 1, 90, "the watcher to reconnect")
        self.push_once("Junk", "push-4", timeout=30)


class PushNotifyTest(PushBase, unittest.TestCase):
    caps = None
    mode = "notify"


class PushIdleTest(PushBase, unittest.TestCase):
    caps = NO_NOTIFY
    mode = "idle"


class PushIdleStatusTest(PushBase, unittest.TestCase):
    caps = NO_NOTIFY_NO_LIST_STATUS
    mode = "idle"


class MuteServer:
    """Accepts IMAP connections and never says a word (not even the
    greeting): a server that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def stop(self):
        self.sock.close()
        for c in self.conns:
            c.close()


class SlowServerTest(unittest.TestCase):
    """An account whose server hangs during set-up does not hold up the
    others: connections are set up off the watcher's loop."""

    IO_TIMEOUT = 20

    @classmethod
    def setUpClass(cls):
        cls.mute = MuteServer()
        cls.dovecot = Dovecot()
        fx.seed_standard(cls.dovecot.port, "pat", per_folder=1)
        # the workers give up on the mute server quickly, so its syncs never
        # hold both workers (this test is about the watcher)
        cls.p = WatchPipeline(workers=2, lease=5, worker_args=("--io-timeout", "2"),
                              watch_args=("--io-timeout", str(cls.IO_TIMEOUT)))

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.dovecot.stop()
            cls.mute.stop()
        cls.p.cleanup()

    def test_a_hanging_server_blocks_no_other_account(self):
        pw = self.p.password_file()
        self.p.submit("account", "add", "mute", "--imap", "imap://127.0.0.1:%d" % self.mute.port,
                      "--user", "mute", "--password-file", pw, "--plaintext", check=0)
        wait_for(lambda: len(self.mute.conns) >= 1 and "name=mute" in self.p.log_text("watch"),
                 30, "the watcher to dial the mute server")
        t0 = time.time()
        self.p.submit("account", "add", "pat", "--imap",
                      "imap://127.0.0.1:%d" % self.dovecot.port,
                      "--user", "pat", "--password-file", pw, "--plaintext", check=0)
        wait_for(lambda: "event=watching" in self.p.log_text("watch"), 15,
                 "pat to be watched while mute's set-up hangs")
        append(self.dovecot.port, "pat", "Sent", "past-the-mute-one")
        wait_for(lambda: self.p.query("SELECT 1 FROM messages WHERE subject = ?",
                                      "past-the-mute-one"), 15, "the pushed row")
        # all of it before the mute server's set-up could time out
        self.assertLess(time.time() - t0, self.IO_TIMEOUT)
        self.assertNotIn("event=connection_lost", self.p.log_text("watch"))
        # and the mute one is retried once its greeting times out
        wait_for(lambda: "event=connection_lost" in self.p.log_text("watch"), self.IO_TIMEOUT + 15,
                 "the mute server's set-up to time out")


class WatchAuthFailsTest(unittest.TestCase):
    """A refused login on a dialer thread ends the watch job for good
    (the scheduler re-creates it later) and is said once in the log;
    another account on the same watcher is still watched."""

    @classmethod
    def setUpClass(cls):
        cls.dovecot = Dovecot()
        fx.seed_standard(cls.dovecot.port, "pat", per_folder=1)
        cls.p = WatchPipeline(workers=1, lease=5)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.dovecot.stop()
        cls.p.cleanup()

    def test_wrong_password_gives_up(self):
        url = "imap://127.0.0.1:%d" % self.dovecot.port
        self.p.submit("account", "add", "bad", "--imap", url, "--user", "pat",
                      "--password-file", self.p.password_file("wrong"), "--plaintext", check=0)
        self.p.submit("account", "add", "good", "--imap", url, "--user", "pat",
                      "--password-file", self.p.password_file(), "--plaintext", check=0)
        bad = self.p.query("SELECT id FROM accounts WHERE name = 'bad'")[0]["id"]
        good = self.p.query("SELECT id FROM accounts WHERE name = 'good'")[0]["id"]
        wait_for(lambda: re.search(r"account=%d event=watch_failed err=ERR_AUTH" % bad,
                                   self.p.log_text("watch")), 60, "the refused login to end the watch")
        wait_for(lambda: "account=%d event=watching" % good in self.p.log_text("watch"), 30,
                 "the other account to be watched")
        self.assertNotIn("account=%d event=watching" % bad, self.p.log_text("watch"))
        wait_for(lambda: self.p.query("SELECT 1 FROM jobs WHERE account_id = ? AND kind = 'watch'"
                                      " AND last_error LIKE '%authentication%'", bad),
                 30, "the watch job to carry the error")


class WatchFlagsTest(unittest.TestCase):
    """A bad mailsync-watch flag exits 2 with what was wrong."""

    def test_bad_flags(self):
        for args, want in ((["--poll", "0"], "--poll must be 1..3600 seconds"),
                           (["--jmap-poll", "x"], "--jmap-poll must be 1..3600 seconds"),
                           (["--jmap-ping", "3601"], "--jmap-ping must be 0..3600 seconds"),
                           (["--io-timeout", "-1"], "--io-timeout must be 1..3600 seconds"),
                           (["--dialers", "0"], "--dialers must be 1..64"),
                           (["--bogus"], "usage: mailsync-watch"),
                           (["stray"], "usage: mailsync-watch")):
            r = subprocess.run([os.path.join(BIN, "mailsync-watch")] + args,
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(want, r.stderr, args)


if __name__ == "__main__":
    unittest.main()
