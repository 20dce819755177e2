"""No-change resync of many small accounts.

Seeds N Dovecot users (default 1,000) with a few messages each, adds them
all to one pipeline, waits for every first sync, then asks for a sync of
every account again (nothing changed on the server) and prints the
per-account job time (lease to commit, from the jobs table) next to the
floor: a plain client's connect + LOGIN + STATUS INBOX + LOGOUT, measured
one at a time and with as many clients at once as there are workers (the
workers share the machine's cores with Dovecot, so the fair floor is the
one measured under the same concurrency).

Usage: python3 bench/many_accounts.py [N] [WORKERS] [KEEP]   (KEEP: each
worker's --keep-connections; its default when absent)
"""
import os
import re
import socket
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import mailfixture as fx  # noqa: E402
from harness import Dovecot, Pipeline, wait_for  # noqa: E402


def floor_seconds(port, user):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN %s pass\r\nb STATUS INBOX (UIDNEXT UIDVALIDITY HIGHESTMODSEQ MESSAGES)\r\n"
              b"c LOGOUT\r\n" % user.encode())
    while not f.readline().startswith(b"c "):
        pass
    s.close()
    return time.perf_counter() - t0


def concurrent_floors(port, users, threads):
    """floor_seconds for every user, `threads` clients at a time: the
    floor under the same concurrency as that many workers."""
    out, lock, it = [], threading.Lock(), iter(users)

    def run():
        while True:
            with lock:
                u = next(it, None)
            if u is None:
                return
            dt = floor_seconds(port, u)
            with lock:
                out.append(dt)
    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    # sessions each worker keeps between jobs (its --keep-connections);
    # default: the worker's own default
    keep = sys.argv[3] if len(sys.argv) > 3 else None
    dov = Dovecot()
    p = None
    try:
        t0 = time.time()
        for i in range(n):
            fx.fast_append(dov.port, "u%d" % i, "INBOX", [fx.make_message(i * 7 + k)[0] for k in range(3)])
        print("seeded %d accounts in %.0f s" % (n, time.time() - t0))
        sample = ["u%d" % i for i in range(min(n, 200))]
        floors = [floor_seconds(dov.port, u) for u in sample]
        cfloors = concurrent_floors(dov.port, sample, workers)
        p = Pipeline(workers=workers, lease=120, batch_rows=500,
                     worker_args=("--keep-connections", keep) if keep else ())
        pw = p.password_file()
        for i in range(n):
            p.submit("account", "add", "u%d" % i, "--imap", "imap://127.0.0.1:%d" % dov.port,
                     "--user", "u%d" % i, "--password-file", pw, "--plaintext", check=0)
        wait_for(lambda: p.query("SELECT COUNT(*) AS n FROM jobs WHERE state = 'done'")[0]["n"] >= n,
                 3600, "every first sync", interval=0.5)
        first = p.query("SELECT MAX(id) AS m FROM jobs")[0]["m"]
        t0 = time.perf_counter()
        for i in range(n):
            p.submit("sync", "u%d" % i, check=0)
        wait_for(lambda: p.query("SELECT COUNT(*) AS n FROM jobs WHERE id > ? AND state = 'done'",
                                 first)[0]["n"] >= n, 3600, "every resync", interval=0.2)
        wall = time.perf_counter() - t0
        # The worker's own time per job (its done line), not lease to
        # commit, which also counts time queued behind other leased jobs.
        per = []
        for w in p.workers():
            for line in p.log_text(w).splitlines():
                mo = re.search(r"job=(\d+) .*event=done .* ms=(\d+)", line)
                if mo and int(mo.group(1)) > first:
                    per.append(int(mo.group(2)) / 1000.0)
        fl, cfl = statistics.median(floors), statistics.median(cfloors)
        print("floor (connect+LOGIN+STATUS+LOGOUT): median %.1f ms one at a time, "
              "%.1f ms with %d clients at once" % (fl * 1000, cfl * 1000, workers))
        print("no-change resync of %d accounts with %d workers: %.1f s wall; per account (worker) "
              "median %.1f ms, p99 %.1f ms; median/floor %.2fx (serial floor), %.2fx (same "
              "concurrency)" % (
                  n, workers, wall, statistics.median(per) * 1000, pct(per, 0.99) * 1000,
                  statistics.median(per) / fl, statistics.median(per) / cfl))
    finally:
        if p:
            p.stop()
            p.cleanup()
        dov.stop()


if __name__ == "__main__":
    main()
