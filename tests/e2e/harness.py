"""Process harness for the end-to-end tests: a real Dovecot, the real
mailsync programs, and helpers to query mailsync's SQLite."""
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.abspath(os.environ.get("MAILSYNC_BIN", os.path.join(ROOT, "bin")))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout, what, interval=0.1):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


class Dovecot:
    def __init__(self, tls=False, oauth2_url=None):
        self.lab = tempfile.mkdtemp(prefix="mailsync-dovecot-")
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        env = dict(os.environ, LAB=self.lab, PORT=str(self.port))
        if oauth2_url:
            env["OAUTH2_URL"] = oauth2_url
        if tls:
            env["TLS_PORT"] = str(self.tls_port)
        subprocess.run([os.path.join(HERE, "dovecot.sh"), "start"], env=env, check=True)
        self.env = env

    @property
    def ca_file(self):
        return os.path.join(self.lab, "etc", "ca.pem")

    def stop(self):
        subprocess.run([os.path.join(HERE, "dovecot.sh"), "stop"], env=self.env)
        shutil.rmtree(self.lab, ignore_errors=True)


class Pipeline:
    """store + scheduler + N workers, started directly so tests can kill
    any one of them."""

    def __init__(self, workers=2, lease=5, batch_rows=200, interval=3600, io_timeout=None,
                 job_timeout=None, dir_parent=None, watch=False, worker_args=()):
        self.dir = tempfile.mkdtemp(prefix="mailsync-e2e-", dir=dir_parent)
        self.metrics_port = free_port()
        self.lease = lease
        self.batch_rows = batch_rows
        self.interval = interval
        self.io_timeout = io_timeout
        self.job_timeout = job_timeout
        self.worker_args = list(worker_args)  # more mailsync-worker flags
        # push: False = the scheduler creates no watch jobs (--no-watch)
        self.watch = watch
        self.procs = {}
        self.logs = {}
        self.start("store")
        wait_for(lambda: os.path.exists(os.path.join(self.dir, "control.sock")), 10,
                 "the store to listen")
        self.start("scheduler")
        wait_for(lambda: os.path.exists(os.path.join(self.dir, "jobs.sock")), 10,
                 "the scheduler to listen")
        for i in range(workers):
            self.start("worker.%d" % (i + 1))

    def argv(self, name):
        if name == "store":
            return [os.path.join(BIN, "mailsync-store"), "--dir", self.dir,
                    "--default-interval", str(self.interval)]
        if name == "scheduler":
            return [os.path.join(BIN, "mailsync-scheduler"), "--dir", self.dir,
                    "--lease", str(self.lease)] + ([] if self.watch else ["--no-watch"]) + [
                    "--metrics-listen", "127.0.0.1:%d" % self.metrics_port]
        extra = ["--io-timeout", str(self.io_timeout)] if self.io_timeout else []
        if self.job_timeout:
            extra += ["--job-timeout", str(self.job_timeout)]
        return [os.path.join(BIN, "mailsync-worker"), "--dir", self.dir,
                "--batch-rows", str(self.batch_rows)] + extra + self.worker_args

    def start(self, name):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        self.logs[name] = log
        self.procs[name] = subprocess.Popen(self.argv(name), stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL)

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs[name]
        p.send_signal(sig)
        p.wait(timeout=10)

    def restart(self, name):
        self.start(name)

    def send_signal(self, name, sig):
        """Sends sig without waiting (SIGSTOP/SIGCONT pause a process)."""
        self.procs[name].send_signal(sig)

    def kill_all(self, sig=signal.SIGKILL):
        """Every process at once, workers first, then the scheduler, then
        the store; waits for each to exit."""
        for name in self.workers() + ["scheduler", "store"]:
            p = self.procs[name]
            if p.poll() is None:
                p.send_signal(sig)
                p.wait(timeout=10)

    def start_all(self, timeout=20):
        """Starts every process that is not running: the store first (ready
        when it answers `account list`), then the scheduler and workers."""
        if self.procs["store"].poll() is not None:
            self.start("store")
            wait_for(lambda: self.submit("account", "list", timeout=5).returncode == 0, timeout,
                     "the restarted store to answer")
        for name in ["scheduler"] + self.workers():
            if self.procs[name].poll() is not None:
                self.start(name)

    def workers(self):
        return [n for n in self.procs if n.startswith("worker.")]

    def alive(self):
        return {n: p.poll() is None for n, p in self.procs.items()}

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in self.procs.items():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self.logs.values():
            log.close()
        self.check_sanitizers()

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

    def check_sanitizers(self):
        """Under the asan flavour every daemon's report lands in its log:
        any report fails the test that owns this pipeline."""
        for name in self.logs:
            text = self.log_text(name)
            for mark in self.SANITIZER_MARKS:
                at = text.find(mark)
                if at >= 0:
                    raise AssertionError("%s: sanitizer report in %s.log:\n%s" % (
                        name, name, text[max(0, at - 200):at + 3000]))

    def log_text(self, name):
        with open(os.path.join(self.dir, name + ".log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the command line ---------------------------------------------------

    def submit(self, *args, timeout=120, check=None):
        r = subprocess.run([os.path.join(BIN, "mailsync-submit"), "--dir", self.dir] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if check is not None and r.returncode != check:
            raise AssertionError("mailsync-submit %s: exit %d (want %d)\nstdout: %s\nstderr: %s" % (
                " ".join(args), r.returncode, check, r.stdout, r.stderr))
        return r

    def password_file(self, password="pass"):
        path = os.path.join(self.dir, "pw-%d" % time.time_ns())
        with open(path, "w") as f:
            f.write(password + "\n")
        os.chmod(path, 0o600)
        return path

    # -- the database -----------------------------------------------------------

    def db(self):
        c = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.dir, "mailsync.db"),
                            uri=True, timeout=10)
        c.row_factory = sqlite3.Row
        return c

    def query(self, sql, *params):
        c = self.db()
        try:
            return c.execute(sql, params).fetchall()
        finally:
            c.close()

    def local_state(self, account):
        """{mailbox: {uid: (frozenset(flags), subject)}} from SQLite."""
        out = {}
        rows = self.query(
            "SELECT b.name AS box, m.uid, m.seen, m.flagged, m.answered, m.draft, m.deleted, "
            "m.keywords, m.subject FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
            "JOIN accounts a ON a.id = m.account_id WHERE a.name = ?", account)
        boxes = self.query("SELECT b.name FROM mailboxes b JOIN accounts a ON a.id = b.account_id "
                           "WHERE a.name = ?", account)
        for b in boxes:
            out.setdefault(b["name"], {})
        for r in rows:
            fl = set(k for k in (r["keywords"] or "").split())
            for col, flag in (("seen", "\\Seen"), ("flagged", "\\Flagged"), ("answered", "\\Answered"),
                              ("draft", "\\Draft"), ("deleted", "\\Deleted")):
                if r[col]:
                    fl.add(flag)
            out[r["box"]][r["uid"]] = (frozenset(fl), r["subject"] or "")
        return out
