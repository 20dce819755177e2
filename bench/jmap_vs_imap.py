"""JMAP vs IMAP first sync of the same Cyrus account.

One Cyrus 3.6 user with N realistic messages (default 10,000) in its
Inbox. The same pipeline (one worker, batches of 500 rows) syncs the
account twice, into two fresh data directories: once as a JMAP account
(Email/query + Email/get pages over HTTP) and once as an IMAP account
(Cyrus's own IMAP port), alternating three times; the best of the last
two runs of each is kept. Prints both times, the ratio JMAP / IMAP, and a
no-change resync of each.

Usage: python3 bench/jmap_vs_imap.py [N]   (MAILSYNC_BIN selects binaries)
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import mailfixture as fx  # noqa: E402
from cyrus import Cyrus  # noqa: E402
from harness import Pipeline, wait_for  # noqa: E402


def job_seconds(p, last=False):
    order = "DESC" if last else "ASC"
    j = p.query("SELECT state, leased_at, finished_at FROM jobs WHERE kind = 'sync' "
                "ORDER BY id %s LIMIT 1" % order)[0]
    assert j["state"] == "done", j["state"]
    return (j["finished_at"] - j["leased_at"]) / 1000.0


def one_run(cy, proto, n):
    p = Pipeline(workers=1, lease=120, batch_rows=500)
    try:
        pw = p.password_file("benchpw")
        if proto == "jmap":
            where = ["--jmap", cy.session_url]
        else:
            where = ["--imap", "imap://127.0.0.1:%d" % cy.imap_port]
        p.submit("account", "add", "b", *where, "--plaintext", "--user", "bench",
                 "--password-file", pw, check=0)
        wait_for(lambda: (lambda r: r and r[0]["state"] in ("done", "failed", "dead"))(
            p.query("SELECT state FROM jobs ORDER BY id LIMIT 1")), 600, "the first sync",
            interval=0.01)
        first = job_seconds(p)
        got = p.query("SELECT count(*) AS n FROM messages")[0]["n"]
        assert got == n, "%s synced %d of %d" % (proto, got, n)
        p.submit("sync", "b", "--wait", "--timeout", "600", check=0)
        return first, job_seconds(p, last=True)
    finally:
        p.stop()
        p.cleanup()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    cy = Cyrus()
    try:
        cy.add_user("bench", "benchpw")
        t0 = time.time()
        for start in range(0, n, 2000):
            cy.import_messages("bench", "Inbox",
                               [fx.make_message(i)[0] for i in range(start, min(n, start + 2000))],
                               [])
        print("seeded %d messages into Cyrus in %.1f s" % (n, time.time() - t0))
        runs = {"jmap": [], "imap": []}
        for _ in range(3):
            for proto in ("jmap", "imap"):
                runs[proto].append(one_run(cy, proto, n))
        best = {}
        for proto in ("jmap", "imap"):
            keep = runs[proto][1:]
            best[proto] = (min(r[0] for r in keep), min(r[1] for r in keep))
            print("%s first sync of %d messages: %.2f s (%.0f msg/s); no-change resync %.3f s"
                  % (proto.upper(), n, best[proto][0], n / best[proto][0], best[proto][1]))
        print("JMAP / IMAP first sync on Cyrus: %.2fx" % (best["jmap"][0] / best["imap"][0]))
        print("JMAP / IMAP no-change resync: %.2fx" % (best["jmap"][1] / best["imap"][1]))
    finally:
        cy.stop()


if __name__ == "__main__":
    main()
