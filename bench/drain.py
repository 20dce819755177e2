"""Drain: how fast local changes reach a real Dovecot.

One account of N messages (default 200) on a loopback Dovecot, two
workers. Prints:
1. `flag --wait`, one change at a time: submit to confirmed (includes
   mailsync-submit's polling of the change, every 200 ms);
2. N - 20 flag changes submitted back to back (each durable in the store
   before mailsync-submit returns), and how long after the last submit
   the outbound queue is empty, with the number of drain jobs it took;
3. 50 moves to another folder, submitted and landed.

Usage: python3 bench/drain.py [N]   (MAILSYNC_BIN selects the binaries)
"""
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import mailfixture as fx  # noqa: E402
from harness import Dovecot, Pipeline  # noqa: E402


def active(p):
    return p.query("SELECT COUNT(*) AS n FROM pending_changes"
                   " WHERE state IN ('pending', 'inflight')")[0]["n"]


def wait_empty(p, limit=120):
    end = time.time() + limit
    while active(p) > 0:
        if time.time() > end:
            raise AssertionError("changes still active after %d s" % limit)
        time.sleep(0.02)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    d = Dovecot()
    fx.fast_append(d.port, "bench", "INBOX", [fx.make_message(i)[0] for i in range(n)])
    m = fx.connect(d.port, "bench")
    fx.create(m, "Archive")
    m.logout()
    p = Pipeline(workers=2, lease=10)
    try:
        p.submit("account", "add", "bench", "--imap", "imap://127.0.0.1:%d" % d.port,
                 "--user", "bench", "--password-file", p.password_file(), "--plaintext",
                 check=0)
        p.submit("sync", "bench", "--wait", check=0)
        out = p.submit("--json", "messages", "bench", "--limit", str(min(n, 1000)), check=0)
        ids = [x["id"] for x in json.loads(out.stdout)["messages"]]
        lat = []
        for i in ids[:15]:
            t = time.time()
            p.submit("flag", "bench", str(i), "--flagged", "--wait", check=0)
            lat.append(time.time() - t)
        print("flag --wait, one at a time: median %.0f ms, max %.0f ms (n=%d)" % (
            statistics.median(lat) * 1000, max(lat) * 1000, len(lat)))
        batch = ids[20:]
        t = time.time()
        for i in batch:
            p.submit("flag", "bench", str(i), "--seen", check=0)
        t_sub = time.time() - t
        t = time.time()
        wait_empty(p)
        jobs = p.query("SELECT COUNT(*) AS n FROM jobs WHERE kind = 'drain'")[0]["n"]
        print("%d flag changes: submitted in %.2f s (%.1f ms each, durable); queue empty "
              "%.2f s after the last submit; %d drain jobs in all" % (
                  len(batch), t_sub, t_sub / max(len(batch), 1) * 1000, time.time() - t, jobs))
        moves = ids[20:70]
        t = time.time()
        for i in moves:
            p.submit("move", "bench", str(i), "--to", "Archive", check=0)
        wait_empty(p)
        m = fx.connect(d.port, "bench")
        typ, data = m.select("Archive", readonly=True)
        m.logout()
        print("%d moves submitted and landed in %.2f s (Archive holds %s on the server)" % (
            len(moves), time.time() - t, data[0].decode()))
    finally:
        p.stop()
        d.stop()
        p.cleanup()


if __name__ == "__main__":
    main()
