"""Push: change-to-row latency and idle-connection capacity.

1. Latency: with mailsync-watch holding the account's push connection, a
   plain client APPENDs messages to non-INBOX folders (and INBOX), one at
   a time, and the time from the server's OK to the row in SQLite is
   recorded. Printed as p50/p99 for NOTIFY and for IDLE + STATUS polling
   (Dovecot with NOTIFY removed from its capabilities).
2. Capacity: C accounts (default 1,000) watched by one mailsync-watch
   process; prints its RSS and the CPU it uses while the connections idle.

Usage: python3 bench/push_latency.py [APPENDS] [CONNECTIONS]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import mailfixture as fx  # noqa: E402
from harness import HERE as E2E, Dovecot, free_port, wait_for  # noqa: E402
from test_push import NO_NOTIFY, WatchPipeline, append  # noqa: E402

BIG = """service imap {
  process_limit = 4000
}
service imap-login {
  process_min_avail = 4
}
default_process_limit = 4000
default_client_limit = 8000"""


def start_dovecot(caps=None):
    d = Dovecot.__new__(Dovecot)
    d.lab = tempfile.mkdtemp(prefix="mailsync-dovecot-")
    d.port = free_port()
    d.tls_port = None
    env = dict(os.environ, LAB=d.lab, PORT=str(d.port), DOVECOT_EXTRA=BIG)
    if caps:
        env["IMAP_CAPABILITY"] = caps
    subprocess.run([os.path.join(E2E, "dovecot.sh"), "start"], env=env, check=True)
    d.env = env
    return d


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def add(p, dov, name):
    pw = p.password_file()
    p.submit("account", "add", name, "--imap", "imap://127.0.0.1:%d" % dov.port,
             "--user", name, "--password-file", pw, "--plaintext", check=0)


def latency(mode, caps, n):
    dov = start_dovecot(caps)
    p = None
    try:
        fx.seed_standard(dov.port, "pat", per_folder=3)
        p = WatchPipeline(workers=2, lease=30, poll=2)
        add(p, dov, "pat")
        p.submit("sync", "pat", "--wait", "--timeout", "120", check=0)
        wait_for(lambda: "event=watching mode=%s" % mode in p.log_text("watch"), 60, "the watcher")
        boxes = ["Work/Projects", "Archive/2024", "Отчёты", "INBOX"]
        lat = []
        for i in range(n):
            subject = "push-%s-%d" % (mode, i)
            t0 = time.perf_counter()
            append(dov.port, "pat", boxes[i % len(boxes)], subject)
            wait_for(lambda: p.query("SELECT 1 FROM messages WHERE subject = ?", subject), 30,
                     subject, interval=0.005)
            lat.append(time.perf_counter() - t0)
            time.sleep(0.3)
        print("push latency, %s: %d appends, p50 %.0f ms, p99 %.0f ms, max %.0f ms" % (
            mode, n, statistics.median(lat) * 1000, pct(lat, 0.99) * 1000, max(lat) * 1000))
    finally:
        if p:
            p.stop()
            p.cleanup()
        dov.stop()


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def capacity(c):
    dov = start_dovecot()
    p = None
    try:
        for i in range(c):
            fx.fast_append(dov.port, "w%d" % i, "INBOX", [fx.make_message(i)[0]])
        p = WatchPipeline(workers=2, lease=120, poll=30)
        for i in range(c):
            add(p, dov, "w%d" % i)
        wait_for(lambda: p.log_text("watch").count("event=watching") >= c, 1800,
                 "%d watched connections" % c, interval=1)
        pid = p.procs["watch"].pid
        t0, c0 = time.time(), cpu_ticks(pid)
        time.sleep(30)
        cpu = (cpu_ticks(pid) - c0) / os.sysconf("SC_CLK_TCK") / (time.time() - t0)
        with open("/proc/%d/status" % pid) as f:
            rss = [l for l in f if l.startswith(("VmRSS", "VmHWM"))]
        print("capacity: one mailsync-watch holding %d idle connections: %s; CPU %.1f%% of a core" % (
            c, ", ".join(l.split()[0] + " " + l.split()[1] + " kB" for l in rss), cpu * 100))
    finally:
        if p:
            p.stop()
            p.cleanup()
        dov.stop()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    latency("notify", None, n)
    latency("idle", NO_NOTIFY, n)
    if c > 0:
        capacity(c)


if __name__ == "__main__":
    main()
