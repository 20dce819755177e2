"""End-to-end: a JMAP account on a real Cyrus 3.6, synced by the real
pipeline into SQLite: first sync, server-side changes by another client
(new, destroyed, moved, keywords, a mailbox renamed and one destroyed),
a worker killed mid-sync, bodies on demand, and push by state polling."""
import os
import re
import time
import unittest

import mailfixture as fx
from cyrus import Cyrus
from harness import BIN, Pipeline, wait_for

SYSTEM = {"$seen": "\\Seen", "$flagged": "\\Flagged", "$answered": "\\Answered",
          "$draft": "\\Draft"}


def server_state(cy, user):
    """{mailbox name: {email id: (flags, subject)}} over JMAP."""
    boxes = cy.mailboxes(user)
    by_id = {}
    for name, b in boxes.items():
        by_id[b["id"]] = name
    out = dict((name, {}) for name in boxes)
    for e in cy.emails(user):
        flags = set()
        for k, v in (e.get("keywords") or {}).items():
            if v:
                flags.add(SYSTEM.get(k, k))
        for mid in e["mailboxIds"]:
            out[by_id[mid]][e["id"]] = (frozenset(flags), e.get("subject") or "")
    return out


def local_state(p, account):
    out = {}
    for b in p.query("SELECT b.name FROM mailboxes b JOIN accounts a ON a.id = b.account_id "
                     "WHERE a.name = ?", account):
        out[b["name"]] = {}
    for r in p.query(
            "SELECT b.name AS box, m.remote_id, m.uid, m.seen, m.flagged, m.answered, m.draft, "
            "m.keywords, m.subject FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
            "JOIN accounts a ON a.id = m.account_id WHERE a.name = ?", account):
        fl = set(k for k in (r["keywords"] or "").split())
        for col, flag in (("seen", "\\Seen"), ("flagged", "\\Flagged"),
                          ("answered", "\\Answered"), ("draft", "\\Draft")):
            if r[col]:
                fl.add(flag)
        assert r["uid"] is None, "a JMAP row with a UID"
        out[r["box"]][r["remote_id"]] = (frozenset(fl), r["subject"] or "")
    return out


class JmapSyncTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cy = Cyrus()
        cls.cy.add_user("alice", "alicepw")
        cls.cy.add_user("bob", "bobpw")
        msgs = [fx.make_message(i)[0] for i in range(40)]
        cls.cy.import_messages("alice", "Inbox", msgs[:30], ["$seen"])
        cls.cy.import_messages("alice", "Archive", msgs[30:], [])
        att, _, _ = fx.make_message(99, attach=True)
        cls.cy.import_messages("alice", "Inbox", [att], [])
        cls.p = Pipeline(workers=2, lease=5, batch_rows=50)

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.cy.stop()
        cls.p.cleanup()

    def add_account(self, name, user, password, extra=None):
        pw = self.p.password_file(password)
        return self.p.submit("account", "add", name, "--jmap", self.cy.session_url,
                             "--plaintext", "--user", user, "--password-file", pw,
                             *(extra or []), check=0)

    def sync(self, name):
        self.p.submit("sync", name, "--wait", "--timeout", "60", check=0)

    def assert_converged(self, name, user):
        server = server_state(self.cy, user)
        local = local_state(self.p, name)
        self.assertEqual(sorted(server), sorted(local), "mailbox sets differ")
        for box in server:
            self.assertEqual(sorted(server[box]), sorted(local[box]), "emails differ in %s" % box)
            for eid, (flags, subj) in server[box].items():
                self.assertEqual(local[box][eid], (flags, subj), "%s/%s" % (box, eid))
        return server

    def test_01_first_sync_then_changes(self):
        self.add_account("ja", "alice", "alicepw")
        self.sync("ja")
        server = self.assert_converged("ja", "alice")
        self.assertEqual(sum(len(v) for v in server.values()), 41)
        roles = dict((r["name"], r["role"]) for r in self.p.query(
            "SELECT name, role FROM mailboxes WHERE remote_id IS NOT NULL"))
        self.assertEqual(roles.get("Inbox"), "inbox")
        self.assertEqual(roles.get("Trash"), "trash")
        # attachment metadata with the decoded name
        att = self.p.query("SELECT a.filename, a.mime_type FROM attachments a")
        self.assertIn(("Résumé99.pdf", "application/pdf"),
                      [(r["filename"], r["mime_type"]) for r in att])
        states = self.p.query("SELECT resource FROM sync_state ORDER BY resource")
        self.assertEqual([r["resource"] for r in states], ["Email", "Mailbox"])
        ids = dict((r["remote_id"], r["id"]) for r in self.p.query(
            "SELECT id, remote_id FROM messages"))

        # Another client: keywords, a move, a destroy, new mail, a new
        # mailbox, an Email in two mailboxes, a rename.
        emails = self.cy.emails("alice")
        inbox = [e for e in emails if self.cy.mailboxes("alice")["Inbox"]["id"] in e["mailboxIds"]]
        self.cy.set_keywords("alice", inbox[0]["id"], {"$flagged": True, "$seen": True})
        self.cy.set_keywords("alice", inbox[1]["id"], {"$custom": True})
        self.cy.move("alice", inbox[2]["id"], "Archive")
        self.cy.destroy("alice", inbox[3]["id"])
        self.cy.create_mailbox("alice", "Projects")
        self.cy.import_messages("alice", "Projects", [fx.make_message(200)[0]], [])
        self.sync("ja")
        self.assert_converged("ja", "alice")
        # the moved Email kept its row (and so its body and attachments)
        moved = self.p.query("SELECT id FROM messages WHERE remote_id = ?", inbox[2]["id"])
        self.assertEqual([r["id"] for r in moved], [ids[inbox[2]["id"]]])
        log = [r["outcome"] for r in self.p.query("SELECT outcome FROM sync_log")]
        self.assertIn("expunged", log)

        # a rename keeps the mailbox row; a destroyed mailbox goes
        before = self.p.query("SELECT id FROM mailboxes WHERE name = 'Projects'")[0]["id"]
        self.cy.rename_mailbox("alice", "Projects", "Projects 2026")
        self.sync("ja")
        self.assert_converged("ja", "alice")
        after = self.p.query("SELECT id FROM mailboxes WHERE name = 'Projects 2026'")[0]["id"]
        self.assertEqual(before, after)
        self.cy.destroy_mailbox("alice", "Projects 2026")
        self.sync("ja")
        self.assert_converged("ja", "alice")
        self.assertEqual(self.p.query(
            "SELECT count(*) AS n FROM mailboxes WHERE name = 'Projects 2026'")[0]["n"], 0)

    def test_02_no_change_resync_is_one_request(self):
        self.add_account("jb0", "alice", "alicepw")
        self.sync("jb0")
        jobs = self.p.query("SELECT count(*) AS n FROM jobs WHERE state = 'done'")[0]["n"]
        self.sync("jb0")
        self.assertEqual(self.p.query("SELECT count(*) AS n FROM jobs WHERE state = 'done'")[0]["n"],
                         jobs + 1)
        self.assert_converged("jb0", "alice")

    def test_03_worker_killed_mid_sync(self):
        msgs = [fx.make_message(1000 + i)[0] for i in range(2000)]
        self.cy.import_messages("bob", "Inbox", msgs, [])
        self.add_account("jb", "bob", "bobpw")
        wait_for(lambda: self.p.query(
            "SELECT count(*) AS n FROM messages m JOIN accounts a ON a.id = m.account_id "
            "WHERE a.name = 'jb'")[0]["n"] > 100, 60, "some rows", interval=0.01)
        for w in self.p.workers():
            self.p.kill(w)
        for w in self.p.workers():
            self.p.restart(w)
        self.sync("jb")
        self.assert_converged("jb", "bob")
        dup = self.p.query("SELECT count(*) AS n FROM (SELECT mailbox_id, remote_id FROM messages "
                           "GROUP BY 1, 2 HAVING count(*) > 1)")[0]["n"]
        self.assertEqual(dup, 0)

    def test_04_body_on_demand(self):
        self.add_account("jc", "alice", "alicepw")
        self.sync("jc")
        row = self.p.query("SELECT m.id FROM messages m JOIN accounts a ON a.id = m.account_id "
                           "WHERE a.name = 'jc' AND m.has_attachments = 1 LIMIT 1")[0]
        self.p.submit("fetch-body", "jc", str(row["id"]), "--wait", "--timeout", "60", check=0)
        body = self.p.query("SELECT complete, size FROM bodies WHERE message_id = ?",
                            row["id"])[0]
        self.assertEqual(body["complete"], 1)
        raw = b"".join(bytes(r["data"]) for r in self.p.query(
            "SELECT data FROM body_chunks WHERE message_id = ? ORDER BY offset", row["id"]))
        self.assertEqual(len(raw), body["size"])
        self.assertIn(b"Content-Disposition: attachment", raw)

    def test_05_bodies_all_prefetch(self):
        self.add_account("jd", "alice", "alicepw", ["--bodies", "all"])
        self.sync("jd")
        n = self.p.query("SELECT count(*) AS n FROM messages m JOIN accounts a ON "
                         "a.id = m.account_id WHERE a.name = 'jd'")[0]["n"]
        got = self.p.query("SELECT count(*) AS n FROM bodies b JOIN messages m ON m.id = "
                           "b.message_id JOIN accounts a ON a.id = m.account_id WHERE "
                           "a.name = 'jd' AND b.complete = 1")[0]["n"]
        self.assertEqual(n, got)

    def test_06_bad_password_fails_clearly(self):
        self.add_account("je", "alice", "wrong")
        self.p.submit("sync", "je", "--wait", "--timeout", "60")
        err = self.p.query("SELECT last_error FROM accounts WHERE name = 'je'")[0]["last_error"]
        self.assertIn("401", err or "")
        self.assertNotIn("wrong", err or "")


class JmapWatchPipeline(Pipeline):
    def __init__(self, **kw):
        super().__init__(watch=True, **kw)
        wait_for(lambda: os.path.exists(os.path.join(self.dir, "watch.sock")), 10,
                 "the scheduler's watch socket")
        self.start("watch")

    def argv(self, name):
        if name == "watch":
            return [os.path.join(BIN, "mailsync-watch"), "--dir", self.dir,
                    "--jmap-poll", "1", "--io-timeout", "5"]
        return super().argv(name)


class JmapPushTest(unittest.TestCase):
    """Cyrus answers its EventSource with 204: the watcher polls the
    state instead, and a change reaches SQLite without a periodic sync."""

    @classmethod
    def setUpClass(cls):
        cls.cy = Cyrus()
        cls.cy.add_user("carol", "carolpw")
        cls.p = JmapWatchPipeline(workers=1, lease=5, interval=3600)

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.cy.stop()
        cls.p.cleanup()

    def test_push_by_state_poll(self):
        pw = self.p.password_file("carolpw")
        self.p.submit("account", "add", "jp", "--jmap", self.cy.session_url, "--plaintext",
                      "--user", "carol", "--password-file", pw, check=0)
        # every query names this account: the other test of the class
        # leaves an account (and an Email) of its own behind
        acct = self.p.query("SELECT id FROM accounts WHERE name = 'jp'")[0]["id"]
        wait_for(lambda: self.p.query("SELECT count(*) AS n FROM jobs WHERE kind = 'sync' "
                                      "AND state = 'done' AND account_id = ?", acct)[0]["n"] >= 1,
                 30, "the first sync")
        wait_for(lambda: re.search(r"account=%d .*mode=jmap_poll" % acct,
                                   self.p.log_text("watch")), 30, "the watcher to poll")
        t0 = time.time()
        self.cy.import_messages("carol", "Archive", [fx.make_message(7)[0]], [])
        wait_for(lambda: self.p.query("SELECT count(*) AS n FROM messages WHERE account_id = ?",
                                      acct)[0]["n"] == 1, 30, "the new Email to reach SQLite")
        self.assertLess(time.time() - t0, 15)

    def test_poll_outage_backs_off_and_recovers(self):
        """The server answers every API request 503 for 8 s (a restart):
        the watcher backs off instead of polling each second, and once
        the server is back a change made meanwhile still reaches SQLite
        without a periodic sync."""
        from jmapproxy import Proxy
        self.cy.add_user("olga", "olgapw")
        proxy = Proxy(self.cy.http_port)
        self.addCleanup(proxy.stop)
        pw = self.p.password_file("olgapw")
        self.p.submit("account", "add", "jo", "--jmap", proxy.session_url, "--plaintext",
                      "--user", "olga", "--password-file", pw, check=0)
        acct = self.p.query("SELECT id FROM accounts WHERE name = 'jo'")[0]["id"]
        watching = "account=%d event=watching" % acct
        wait_for(lambda: watching in self.p.log_text("watch"), 30, "the watcher to poll jo")
        proxy.fail = lambda calls: True
        start = len(proxy.seen)
        time.sleep(8)
        during = len(proxy.seen) - start
        self.cy.import_messages("olga", "Archive", [fx.make_message(9)[0]], [])
        proxy.fail = lambda calls: False
        n = "SELECT count(*) AS n FROM messages WHERE account_id = ?"
        wait_for(lambda: self.p.query(n, acct)[0]["n"] == 1, 60,
                 "the Email made during the outage to reach SQLite")
        # polls every second would be 8; the backoff (1 s doubling, with
        # jitter) sends about 4
        self.assertLessEqual(during, 6, "requests during the outage")
        self.assertIn("account=%d event=connection_lost" % acct, self.p.log_text("watch"))


if __name__ == "__main__":
    unittest.main()
