"""IMAP sync against the server's own limit and against mbsync.

Builds one Dovecot INBOX of N realistic messages (default 100,000) and
prints, from one run on this machine:
  1. raw server emission: a plain client reading the sync FETCH
     (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE) and
     discarding it, and likewise BODY.PEEK[];
  2. mailsync's first (header) sync of the same data, and its ratio to (1)
     (both the median of three alternating runs);
  3. full-body sync: mailsync --bodies all vs mbsync (isync) to a Maildir,
     both on tmpfs (CPU cost) and both on disk with durable commits
     (mbsync fsyncs by default; the store commits with synchronous=FULL),
     alternating the tools and dropping the first pass of each;
  4. worker and store peak RSS.
The no-change resync of many small accounts is bench/many_accounts.py.

Usage: python3 bench/imap_vs_peers.py [N] [--skip-bodies]
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import mailfixture as fx  # noqa: E402
from harness import Dovecot, Pipeline, wait_for  # noqa: E402
from first_sync import vm_hwm_kb  # noqa: E402

HEADER_ITEMS = b"(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)"
HEADER_RUNS = 3


def raw_read(port, user, items):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb", buffering=1 << 16)
    f.readline()
    s.sendall(b"a LOGIN %s pass\r\nb EXAMINE INBOX\r\n" % user.encode())
    while not f.readline().startswith(b"b "):
        pass
    t0 = time.perf_counter()
    s.sendall(b"c UID FETCH 1:* " + items + b"\r\n")
    nbytes, tail = 0, b""
    while True:
        chunk = f.read1(1 << 16)
        if not chunk:
            raise RuntimeError("server closed")
        nbytes += len(chunk)
        tail = (tail + chunk)[-64:]
        if b"\r\nc OK" in tail:
            break
    dt = time.perf_counter() - t0
    s.close()
    return dt, nbytes


def mailsync_run(port, user, base, bodies):
    """One first sync into a fresh data dir under base; returns
    (job seconds, messages, bodies, worker kB, store kB)."""
    p = Pipeline(workers=1, lease=120, batch_rows=500, dir_parent=base)
    try:
        pw = p.password_file()
        args = ["account", "add", user, "--imap", "imap://127.0.0.1:%d" % port,
                "--user", user, "--password-file", pw, "--plaintext"]
        if bodies:
            args += ["--bodies", "all"]
        p.submit(*args, check=0)
        job = wait_for(lambda: (lambda r: r and r[0]["state"] in ("done", "failed", "dead") and r[0])(
            p.query("SELECT state, leased_at, finished_at FROM jobs WHERE kind = 'sync' "
                    "ORDER BY id LIMIT 1")), 3600, "the first sync", interval=0.05)
        assert job["state"] == "done", job["state"]
        n = p.query("SELECT COUNT(*) AS n FROM messages")[0]["n"]
        nb = p.query("SELECT COUNT(*) AS n FROM bodies WHERE complete = 1")[0]["n"] if bodies else 0
        wkb = max(vm_hwm_kb(p.procs[w].pid) for w in p.workers())
        skb = vm_hwm_kb(p.procs["store"].pid)
        return (job["finished_at"] - job["leased_at"]) / 1000.0, n, nb, wkb, skb
    finally:
        p.stop()
        p.cleanup()


MBSYNC_RC = """IMAPAccount bench
Host 127.0.0.1
Port {port}
User {user}
Pass pass
SSLType None
AuthMechs LOGIN
PipelineDepth 50

IMAPStore remote
Account bench

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Create Near
SyncState *
Sync Pull
"""


def mbsync_run(port, user, base):
    d = tempfile.mkdtemp(prefix="mbsync-", dir=base)
    try:
        rc = os.path.join(d, "mbsyncrc")
        os.makedirs(os.path.join(d, "mail"))
        with open(rc, "w") as f:
            f.write(MBSYNC_RC.format(port=port, user=user, maildir=os.path.join(d, "mail")))
        t0 = time.perf_counter()
        r = subprocess.run(["/usr/bin/time", "-f", "%M", "mbsync", "-q", "-c", rc, "bench"],
                           capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError("mbsync failed: %s" % r.stderr[-500:])
        kb = int(r.stderr.strip().splitlines()[-1])
        n = len(os.listdir(os.path.join(d, "mail", "INBOX", "cur"))) + \
            len(os.listdir(os.path.join(d, "mail", "INBOX", "new")))
        return dt, n, kb
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100000
    skip_bodies = "--skip-bodies" in sys.argv
    dov = Dovecot()
    try:
        t0 = time.time()
        for start in range(0, n, 5000):
            msgs = [fx.make_message(i)[0] for i in range(start, min(n, start + 5000))]
            fx.fast_append(dov.port, "bench", "INBOX", msgs)
        print("seeded %d messages in %.0f s" % (n, time.time() - t0))
        raw_read(dov.port, "bench", HEADER_ITEMS)  # Dovecot caches on the first pass
        # Headers: the raw read and mailsync's sync alternate, HEADER_RUNS
        # times each; the medians are compared (one pass swings 10%).
        raws, jobs = [], []
        for _ in range(HEADER_RUNS):
            hdr_s, hdr_b = raw_read(dov.port, "bench", HEADER_ITEMS)
            raws.append(hdr_s)
            job_s, got, _, wkb, skb = mailsync_run(dov.port, "bench", None, False)
            jobs.append(job_s)
        hdr_s, job_s = statistics.median(raws), statistics.median(jobs)
        body_s, body_b = raw_read(dov.port, "bench", b"(UID BODY.PEEK[])")
        print("1. raw emission, warm: headers %.2f s (%.1f MB; runs %s); bodies %.2f s (%.1f MB)" % (
            hdr_s, hdr_b / 1e6, " ".join("%.2f" % x for x in raws), body_s, body_b / 1e6))
        print("2. mailsync header sync: %d messages in %.2f s (%.0f msg/s; runs %s); "
              "ratio to (1) %.2fx" % (got, job_s, got / job_s, " ".join("%.2f" % x for x in jobs),
                                      job_s / hdr_s))
        print("4. peak RSS, header sync: worker %.1f MB, store %.1f MB" % (wkb / 1024, skb / 1024))
        if skip_bodies:
            return
        for label, base in (("tmpfs", "/dev/shm"), ("disk", None)):
            ms, mb = [], []
            for i in range(3):
                s, got, nb, wkb, skb = mailsync_run(dov.port, "bench", base, True)
                d, cnt, kb = mbsync_run(dov.port, "bench", base or tempfile.gettempdir())
                if i > 0:  # the first pass of each warms caches: dropped
                    ms.append(s)
                    mb.append(d)
            print("3. full bodies on %s: mailsync %.2f s (%d bodies, worker %.1f MB, store %.1f MB), "
                  "mbsync %.2f s (%d files, %.1f MB); mailsync/mbsync %.2fx" % (
                      label, min(ms), nb, wkb / 1024, skb / 1024, min(mb), cnt, kb / 1024,
                      min(ms) / min(mb)))
    finally:
        dov.stop()


if __name__ == "__main__":
    main()
