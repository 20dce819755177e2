"""First-sync benchmark: N realistic messages in one Dovecot INBOX, synced
by mailsync into SQLite. Prints messages synced, wall time, rate, the
server's own emission time for the same FETCH, and the peak RSS of the
worker and the store. Figures are reported, not asserted.

Usage: python3 bench/first_sync.py [N]   (MAILSYNC_BIN selects binaries)
"""
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import mailfixture as fx  # noqa: E402
from harness import Dovecot, Pipeline, wait_for  # noqa: E402

ITEMS = b"(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)"


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def last_job(p):
    return p.query("SELECT created_at, leased_at, finished_at FROM jobs "
                   "WHERE state = 'done' ORDER BY id DESC LIMIT 1")[0]


def raw_fetch_seconds(port, user):
    """Time for a plain client to read the sync FETCH and discard it."""
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb", buffering=1 << 16)
    f.readline()
    s.sendall(b"a LOGIN %s pass\r\nb EXAMINE INBOX\r\n" % user.encode())
    while not f.readline().startswith(b"b "):
        pass
    t0 = time.perf_counter()
    s.sendall(b"c UID FETCH 1:* " + ITEMS + b"\r\n")
    nbytes = 0
    while True:
        chunk = f.read1(1 << 16)
        if not chunk:
            raise RuntimeError("server closed")
        nbytes += len(chunk)
        if b"\r\nc OK" in chunk[-200:] or chunk.startswith(b"c OK"):
            break
    dt = time.perf_counter() - t0
    s.close()
    return dt, nbytes


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    dov = Dovecot()
    p = None
    try:
        t0 = time.time()
        batch = 5000
        for start in range(0, n, batch):
            msgs = [fx.make_message(i)[0] for i in range(start, min(n, start + batch))]
            fx.fast_append(dov.port, "bench", "INBOX", msgs)
        print("seeded %d messages in %.1f s" % (n, time.time() - t0))
        # Warm Dovecot's cache so both measurements see the same server.
        cold, _ = raw_fetch_seconds(dov.port, "bench")
        warm, nbytes = raw_fetch_seconds(dov.port, "bench")
        print("raw server emission: %.2f s cold, %.2f s warm (%.1f MB)" % (cold, warm, nbytes / 1e6))

        p = Pipeline(workers=1, lease=60, batch_rows=500)
        pw = p.password_file()
        t0 = time.perf_counter()
        p.submit("account", "add", "bench", "--imap", "imap://127.0.0.1:%d" % dov.port,
                 "--user", "bench", "--password-file", pw, "--plaintext", check=0)
        # Adding an account queues its first sync: wait for that job.
        job = wait_for(lambda: (lambda r: r and r[0]["state"] in ("done", "failed", "dead") and r[0])(
            p.query("SELECT state, created_at, leased_at, finished_at FROM jobs ORDER BY id LIMIT 1")),
            600, "the first sync", interval=0.01)
        dt = time.perf_counter() - t0
        assert job["state"] == "done", job["state"]
        got = p.query("SELECT COUNT(*) AS n FROM messages")[0]["n"]
        worker_kb = max(vm_hwm_kb(p.procs[w].pid) for w in p.workers())
        store_kb = vm_hwm_kb(p.procs["store"].pid)
        run_s = (job["finished_at"] - job["leased_at"]) / 1000.0
        print("mailsync first sync: %d messages; job %.2f s from lease to commit "
              "(%.0f msg/s), %.2f s from queued; %.2f s from account add" % (
                  got, run_s, got / run_s, (job["finished_at"] - job["created_at"]) / 1000.0, dt))
        print("ratio of the job to warm raw emission: %.2fx" % (run_s / warm))
        print("peak RSS: worker %.1f MB, store %.1f MB" % (worker_kb / 1024, store_kb / 1024))
        p.submit("sync", "bench", "--wait", "--timeout", "600", check=0)
        job = last_job(p)
        print("no-change resync: job %.3f s from lease to commit" % (
            (job["finished_at"] - job["leased_at"]) / 1000.0))
    finally:
        if p:
            p.stop()
            p.cleanup()
        dov.stop()


if __name__ == "__main__":
    main()
