"""End-to-end: local changes of a JMAP account drained to a real Cyrus 3.6
by the real pipeline (pkg/sync/jmap_drain.c): flag, move, delete to Trash,
delete --expunge (also of an Email in two mailboxes), append (twice: it
lands once), send (EmailSubmission: one delivery at Cyrus's SMTP sink, Bcc
in the envelope only, the Sent copy), a move to a mailbox destroyed on the
server (dead, the row back), another client racing our changes (a move of
an Email another client moved away is dead and adds no membership),
2,000 flag changes under small session limits (split requests), and a
cannotCalculateChanges resync that keeps the rows of pending changes.
Server state through cyrus.py's JMAP client, local state in SQLite."""
import json
import os
import re
import signal
import time
import unittest

import mailfixture as fx
from cyrus import Cyrus
from harness import Pipeline, wait_for
from jmapproxy import Proxy, methods

MSGID_RE = re.compile(rb"Message-ID:\s*(<[^>]*>)", re.I)


def message_bytes(msgid, subject="JMAP drain", bcc=None):
    hdrs = ["From: Alice <alice@localhost>",
            "To: Bob <bob@example.net>, carol@example.com",
            "Cc: Dave <dave@example.com>"]
    if bcc:
        hdrs.append("Bcc: %s" % bcc)
    hdrs += ["Subject: %s" % subject, "Date: Mon, 20 Nov 2023 10:00:00 +0000",
             "Message-ID: %s" % msgid, "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8"]
    return ("\r\n".join(hdrs) + "\r\n\r\nHello Bob,\r\n.a dot line\r\nAlice\r\n").encode()


class JmapDrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cy = Cyrus()
        cls.cy.add_user("alice", "alicepw")
        msgs = [fx.make_message(500 + i)[0] for i in range(12)]
        cls.msgids = [MSGID_RE.search(m).group(1).decode() for m in msgs]
        cls.ids = cls.cy.import_messages("alice", "Inbox", msgs, [])
        cls.cy.create_mailbox("alice", "Gone")
        cls.p = Pipeline(workers=2, lease=10, batch_rows=100)
        pw = cls.p.password_file("alicepw")
        cls.p.submit("account", "add", "ja", "--jmap", cls.cy.session_url, "--plaintext",
                     "--user", "alice", "--password-file", pw, check=0)
        cls.p.submit("sync", "ja", "--wait", "--timeout", "60", check=0)
        # bob's account goes through the proxy.
        cls.cy.add_user("bob", "bobpw")
        bmsgs = [fx.make_message(700 + i)[0] for i in range(4)]
        cls.bob_msgids = [MSGID_RE.search(m).group(1).decode() for m in bmsgs]
        cls.bob_ids = cls.cy.import_messages("bob", "Inbox", bmsgs, [])
        cls.proxy = Proxy(cls.cy.http_port)
        pw = cls.p.password_file("bobpw")
        cls.p.submit("account", "add", "jp", "--jmap", cls.proxy.session_url, "--plaintext",
                     "--user", "bob", "--password-file", pw, check=0)
        cls.p.submit("sync", "jp", "--wait", "--timeout", "60", check=0)
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.proxy.stop()
            cls.cy.stop()
        cls.p.cleanup()

    def setUp(self):
        self.addCleanup(self.resume_scheduler)
        self.addCleanup(self.proxy_reset)

    def proxy_reset(self):
        self.proxy.before = lambda calls: None
        self.proxy.drop = lambda calls: False
        self.proxy.session = lambda obj: obj
        self.proxy.answer = lambda resps: resps
        self.proxy.fail = lambda calls: False

    # -- helpers -----------------------------------------------------------------

    def resume_scheduler(self):
        if self.p.procs["scheduler"].poll() is None:
            self.p.send_signal("scheduler", signal.SIGCONT)

    def pause_scheduler(self):
        self.p.send_signal("scheduler", signal.SIGSTOP)

    def sync(self):
        self.p.submit("sync", "ja", "--wait", "--timeout", "60", check=0)

    def change(self, *args, check=0):
        """A change command with --json (--wait exits 1 for dead)."""
        r = self.p.submit("--json", *args, check=check)
        return json.loads(r.stdout)["change"]

    def pc(self, cid):
        return self.p.query("SELECT * FROM pending_changes WHERE id = ?", cid)[0]

    def wait_state(self, cid, states, timeout=60):
        states = (states,) if isinstance(states, str) else states
        try:
            return wait_for(lambda: (lambda r: r if r["state"] in states else None)(self.pc(cid)),
                            timeout, "change %d to be %s" % (cid, "/".join(states)))
        except AssertionError as e:  # say where the change stands
            raise AssertionError("%s: %r" % (e, dict(self.pc(cid))))

    def rows(self, msgid):
        return self.p.query(
            "SELECT m.*, b.name AS box FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
            "WHERE m.message_id = ?", msgid)

    def one_row(self, msgid):
        r = self.rows(msgid)
        self.assertEqual(len(r), 1, [dict(x) for x in r])
        return r[0]

    def email(self, eid):
        """The Email on the server ({} when gone): mailboxes by name, keywords."""
        acc = self.cy.account_id("alice")
        got = self.cy.call1("alice", "Email/get", {"accountId": acc, "ids": [eid],
                                                   "properties": ["mailboxIds", "keywords"]})
        if not got["list"]:
            return {}
        names = dict((b["id"], n) for n, b in self.cy.mailboxes("alice").items())
        e = got["list"][0]
        return {"boxes": sorted(names[m] for m in e["mailboxIds"]),
                "keywords": sorted(k for k, v in e["keywords"].items() if v)}

    def by_msgid(self, box, msgid):
        acc = self.cy.account_id("alice")
        q = self.cy.call1("alice", "Email/query", {
            "accountId": acc, "filter": {"inMailbox": self.cy.mailbox_id("alice", box),
                                         "header": ["Message-ID", msgid]}})
        return q["ids"]

    def tmpfile(self, data):
        JmapDrainTest.n += 1
        path = os.path.join(self.p.dir, "m%d.eml" % self.n)
        with open(path, "wb") as f:
            f.write(data)
        return path

    # -- tests -----------------------------------------------------------------

    def test_01_flag(self):
        r = self.one_row(self.msgids[0])
        eid = r["remote_id"]
        c = self.change("flag", "ja", str(r["id"]), "--seen", "--flagged", "--add-keyword",
                        "$Work", "--wait", "--timeout", "60")
        self.assertEqual(c["state"], "done", c)
        self.assertEqual(self.email(eid)["keywords"], ["$flagged", "$seen", "$work"])
        c = self.change("flag", "ja", str(r["id"]), "--unseen", "--remove-keyword", "$Work",
                        "--answered", "--wait", "--timeout", "60")
        self.assertEqual(c["state"], "done", c)
        self.assertEqual(self.email(eid)["keywords"], ["$answered", "$flagged"])
        self.sync()
        r2 = self.one_row(self.msgids[0])
        self.assertEqual((r2["id"], r2["seen"], r2["flagged"], r2["answered"], r2["keywords"]),
                         (r["id"], 0, 1, 1, ""))

    def test_02_many_flags_one_email_and_many_emails(self):
        """Several changes of one Email go in successive Email/set calls;
        many Emails share one: every change answered from its own entry."""
        self.pause_scheduler()
        rows = [self.one_row(m) for m in self.msgids[1:5]]
        cids = [self.change("flag", "ja", str(r["id"]), "--seen")["id"] for r in rows]
        cids.append(self.change("flag", "ja", str(rows[0]["id"]), "--flagged")["id"])
        cids.append(self.change("flag", "ja", str(rows[0]["id"]), "--unseen")["id"])
        self.resume_scheduler()
        for cid in cids:
            self.assertEqual(self.wait_state(cid, ("done", "dead"))["state"], "done")
        self.assertEqual(self.email(rows[0]["remote_id"])["keywords"], ["$flagged"])
        for r in rows[1:]:
            self.assertEqual(self.email(r["remote_id"])["keywords"], ["$seen"])

    def test_03_move(self):
        r = self.one_row(self.msgids[5])
        c = self.change("move", "ja", str(r["id"]), "--to", "Archive", "--wait", "--timeout", "60")
        self.assertEqual((c["state"], c["result_mailbox"]), ("done", "Archive"), c)
        self.assertEqual(self.email(r["remote_id"])["boxes"], ["Archive"])
        r2 = self.one_row(self.msgids[5])
        self.assertEqual((r2["id"], r2["box"], r2["remote_id"]), (r["id"], "Archive", r["remote_id"]))
        self.sync()
        r3 = self.one_row(self.msgids[5])
        self.assertEqual((r3["id"], r3["box"]), (r["id"], "Archive"))

    def test_04_delete_to_trash_and_expunge(self):
        r = self.one_row(self.msgids[6])
        c = self.change("delete", "ja", str(r["id"]), "--wait", "--timeout", "60")
        self.assertEqual((c["state"], c["result_mailbox"]), ("done", "Trash"), c)
        self.assertEqual(self.email(r["remote_id"])["boxes"], ["Trash"])
        e = self.one_row(self.msgids[7])
        c = self.change("delete", "ja", str(e["id"]), "--expunge", "--wait", "--timeout", "60")
        self.assertEqual(c["state"], "done", c)
        self.assertEqual(self.email(e["remote_id"]), {})
        self.assertEqual(self.rows(self.msgids[7]), [])
        self.sync()
        self.assertEqual(self.rows(self.msgids[7]), [])
        self.assertEqual(self.one_row(self.msgids[6])["box"], "Trash")

    def test_05_expunge_of_an_email_in_two_mailboxes(self):
        """Only the source mailbox is left: the Email stays in the other."""
        raw = fx.make_message(900)[0]
        msgid = MSGID_RE.search(raw).group(1).decode()
        eid = self.cy.import_messages("alice", "Inbox", [raw], [])[0]
        # Cyrus: the same bytes are the same Email, now in both mailboxes.
        self.assertEqual(self.cy.import_messages("alice", "Archive", [raw], [])[0], eid)
        self.sync()
        inbox = [x for x in self.rows(msgid) if x["box"] == "Inbox"][0]
        c = self.change("delete", "ja", str(inbox["id"]), "--expunge", "--wait", "--timeout", "60")
        self.assertEqual(c["state"], "done", c)
        self.assertEqual(self.email(eid)["boxes"], ["Archive"])
        self.sync()
        self.assertEqual([x["box"] for x in self.rows(msgid)], ["Archive"])

    def test_06_append_twice_lands_once(self):
        msgid = "<jmap-append-1@example.org>"
        f = self.tmpfile(message_bytes(msgid, "Appended once"))
        c = self.change("append", "ja", "--mailbox", "Archive", "--file", f, "--flags",
                        "seen,flagged", "--wait", "--timeout", "60")
        self.assertEqual((c["state"], c["result_mailbox"]), ("done", "Archive"), c)
        ids = self.by_msgid("Archive", msgid)
        self.assertEqual(len(ids), 1)
        self.assertEqual(self.email(ids[0])["keywords"], ["$flagged", "$seen"])
        r = self.one_row(msgid)
        self.assertEqual((r["box"], r["remote_id"]), ("Archive", ids[0]))
        c2 = self.change("append", "ja", "--mailbox", "Archive", "--file", f, "--wait",
                         "--timeout", "60")
        self.assertEqual(c2["state"], "done", c2)
        self.assertEqual(self.by_msgid("Archive", msgid), ids)
        self.sync()
        self.assertEqual(self.one_row(msgid)["remote_id"], ids[0])

    def test_06b_append_of_bytes_the_server_has_elsewhere(self):
        """Cyrus answers alreadyExists (its Email ids are content hashes)
        and does not add the Email to the target: the drain adds it."""
        raw = fx.make_message(500 + 11)[0]  # the bytes of msgids[11], in Inbox
        eid = self.one_row(self.msgids[11])["remote_id"]
        c = self.change("append", "ja", "--mailbox", "Archive", "--file", self.tmpfile(raw),
                        "--flags", "flagged", "--wait", "--timeout", "60")
        self.assertEqual((c["state"], c["result_mailbox"]), ("done", "Archive"), c)
        e = self.email(eid)
        self.assertEqual(e["boxes"], ["Archive", "Inbox"])
        self.assertIn("$flagged", e["keywords"])
        self.sync()
        self.assertEqual(sorted(x["box"] for x in self.rows(self.msgids[11])),
                         ["Archive", "Inbox"])

    def test_07_send(self):
        msgid = "<jmap-send-1@example.org>"
        f = self.tmpfile(message_bytes(msgid, "Sent by JMAP", bcc="Eve <eve@example.com>"))
        before = len(self.cy.sent())
        c = self.change("send", "ja", "--file", f, "--wait", "--timeout", "60")
        self.assertEqual((c["state"], c["result_mailbox"]), ("done", "Sent"), c)
        got = [m for m in self.cy.sent()[before:]
               if MSGID_RE.search(m["data"]).group(1).decode() == msgid]
        self.assertEqual(len(got), 1, "deliveries")
        d = got[0]
        self.assertEqual(d["mail_from"], "alice@localhost")
        self.assertEqual(sorted(d["rcpt"]), ["bob@example.net", "carol@example.com",
                                             "dave@example.com", "eve@example.com"])
        self.assertNotIn(b"\nBcc:", d["data"])
        self.assertNotIn(b"eve@example.com", d["data"])
        sent = self.by_msgid("Sent", msgid)
        self.assertEqual(len(sent), 1)
        self.assertEqual(self.by_msgid("Drafts", msgid), [])
        self.assertEqual(self.email(sent[0])["keywords"], ["$seen"])
        # The Sent copy keeps the Bcc field (the original bytes).
        acc = self.cy.account_id("alice")
        blob = self.cy.call1("alice", "Email/get", {"accountId": acc, "ids": sent,
                                                    "properties": ["blobId"]})["list"][0]["blobId"]
        self.assertIn(b"Bcc: Eve <eve@example.com>", self.cy.download("alice", blob))
        self.sync()
        r = self.one_row(msgid)
        self.assertEqual((r["box"], r["remote_id"]), ("Sent", sent[0]))

    def test_08_move_to_a_mailbox_destroyed_on_the_server(self):
        r = self.one_row(self.msgids[8])
        self.cy.destroy_mailbox("alice", "Gone")  # after our sync saw it
        c = self.change("move", "ja", str(r["id"]), "--to", "Gone", "--wait", "--timeout", "60",
                        check=1)
        self.assertEqual(c["state"], "dead", c)
        self.assertIn("Gone", c["last_error"])
        self.assertEqual(self.email(r["remote_id"])["boxes"], ["Inbox"])
        self.sync()
        r2 = self.one_row(self.msgids[8])
        self.assertEqual(r2["box"], "Inbox")

    def test_09_another_client_races_our_changes(self):
        r = self.one_row(self.msgids[9])
        x = self.one_row(self.msgids[10])
        self.pause_scheduler()
        c = self.change("flag", "ja", str(r["id"]), "--seen")
        e = self.change("delete", "ja", str(x["id"]), "--expunge")
        # Meanwhile another client flags the first and moves the second.
        self.cy.set_keywords("alice", r["remote_id"], {"$flagged": True, "$other": True})
        self.cy.move("alice", x["remote_id"], "Archive")
        self.resume_scheduler()
        self.assertEqual(self.wait_state(c["id"], ("done", "dead"))["state"], "done")
        # A patch: their keywords and ours, none lost.
        self.assertEqual(self.email(r["remote_id"])["keywords"], ["$flagged", "$other", "$seen"])
        # The expunge saw a newer server state: not destroyed.
        d = self.wait_state(e["id"], ("done", "dead"))
        self.assertEqual(d["state"], "dead", d)
        self.assertIn("no longer in mailbox", d["last_error"])
        self.assertEqual(self.email(x["remote_id"])["boxes"], ["Archive"])
        self.sync()
        self.assertEqual(self.one_row(self.msgids[10])["box"], "Archive")
        self.assertEqual(self.one_row(self.msgids[9])["flagged"], 1)


    # -- through the proxy (bob, account jp) -------------------------------------

    def bob_row(self, msgid):
        r = self.p.query("SELECT m.*, b.name AS box FROM messages m JOIN mailboxes b"
                         " ON b.id = m.mailbox_id JOIN accounts a ON a.id = m.account_id"
                         " WHERE a.name = 'jp' AND m.message_id = ?", msgid)
        self.assertEqual(len(r), 1)
        return r[0]

    def another_client_change(self, times):
        """before(): another client changes an Email of bob's (so the
        account's Email state moves) before each guarded Email/set, up to
        `times` times."""
        left = [times]

        def before(calls):
            if left[0] > 0 and any(c[0] == "Email/set" and "ifInState" in c[1] for c in calls):
                left[0] -= 1
                self.cy.set_keywords("bob", self.bob_ids[3], {"$n%d" % left[0]: True})
        self.proxy.before = before

    def test_10_expunge_state_mismatch_once_reads_again_and_destroys(self):
        r = self.bob_row(self.bob_msgids[0])
        self.another_client_change(1)
        c = self.change("delete", "jp", str(r["id"]), "--expunge", "--wait", "--timeout", "60")
        self.assertEqual(c["state"], "done", c)
        self.assertEqual(c["attempts"], 1)
        acc = self.cy.account_id("bob")
        got = self.cy.call1("bob", "Email/get", {"accountId": acc, "ids": [r["remote_id"]]})
        self.assertEqual(got["list"], [])

    def test_11_expunge_state_mismatch_twice_is_retried(self):
        r = self.bob_row(self.bob_msgids[1])
        self.another_client_change(1000)
        c = self.change("delete", "jp", str(r["id"]), "--expunge")
        c = wait_for(lambda: (lambda x: x if x["attempts"] >= 1 and x["state"] == "pending"
                              else None)(self.pc(c["id"])), 60, "the expunge to be retried")
        self.assertIn("stateMismatch twice", c["last_error"])
        acc = self.cy.account_id("bob")
        got = self.cy.call1("bob", "Email/get", {"accountId": acc, "ids": [r["remote_id"]]})
        self.assertEqual(len(got["list"]), 1)  # not destroyed on a stale view
        self.proxy_reset()
        self.assertEqual(self.wait_state(c["id"], ("done", "dead"))["state"], "done")
        got = self.cy.call1("bob", "Email/get", {"accountId": acc, "ids": [r["remote_id"]]})
        self.assertEqual(got["list"], [])

    def test_12_send_cut_off_after_the_request_is_uncertain_and_sent_once(self):
        msgid = "<jmap-send-cut@example.org>"
        f = self.tmpfile(message_bytes(msgid, "Cut off").replace(b"alice@localhost",
                                                                   b"bob@localhost"))
        self.proxy.drop = lambda calls: "EmailSubmission/set" in methods(calls)
        before = len(self.cy.sent())
        c = self.change("send", "jp", "--file", f)
        c = self.wait_state(c["id"], "uncertain")
        self.assertIn("may have reached the server", c["last_error"])
        self.proxy_reset()
        got = wait_for(lambda: [m for m in self.cy.sent()[before:]
                                if MSGID_RE.search(m["data"]).group(1).decode() == msgid],
                       30, "the delivery")
        # Not sent again on a guess (nor by libcurl retrying on its own).
        time.sleep(1)
        got = [m for m in self.cy.sent()[before:]
               if MSGID_RE.search(m["data"]).group(1).decode() == msgid]
        self.assertEqual(len(got), 1)
        self.assertEqual(self.pc(c["id"])["state"], "uncertain")
        subs = [m for m in self.proxy.seen if "EmailSubmission/set" in m]
        self.assertEqual(len(subs), 1, self.proxy.seen)


    # -- the source of a move checked first ----------------------------------------

    def new_email(self, n, box="Inbox"):
        raw = fx.make_message(n)[0]
        msgid = MSGID_RE.search(raw).group(1).decode()
        eid = self.cy.import_messages("alice", box, [raw], [])[0]
        self.sync()
        return msgid, eid

    def test_13_move_of_an_email_another_client_moved_away(self):
        """Dead, nothing patched: the Email is not added to the destination
        (no membership resurrected); the row follows the server."""
        msgid, eid = self.new_email(930)
        r = self.one_row(msgid)
        self.pause_scheduler()
        c = self.change("move", "ja", str(r["id"]), "--to", "Archive")
        self.assertEqual(self.one_row(msgid)["box"], "Archive")  # the intent shows
        self.cy.move("alice", eid, "Drafts")
        self.resume_scheduler()
        d = self.wait_state(c["id"], ("done", "dead"))
        self.assertEqual(d["state"], "dead", dict(d))
        self.assertIn("no longer in mailbox 'Inbox'", d["last_error"])
        self.assertEqual(self.email(eid)["boxes"], ["Drafts"])
        self.sync()
        r2 = self.one_row(msgid)
        self.assertEqual((r2["id"], r2["box"]), (r["id"], "Drafts"))

    def test_14_move_already_in_the_destination_is_done(self):
        """Another client (or an earlier attempt) put it there: done."""
        msgid, eid = self.new_email(931)
        r = self.one_row(msgid)
        self.pause_scheduler()
        c = self.change("move", "ja", str(r["id"]), "--to", "Archive")
        self.cy.move("alice", eid, "Archive")
        self.resume_scheduler()
        d = self.wait_state(c["id"], ("done", "dead"))
        self.assertEqual((d["state"], d["result_mailbox"]), ("done", "Archive"), dict(d))
        self.assertEqual(self.email(eid)["boxes"], ["Archive"])
        self.sync()
        self.assertEqual(self.one_row(msgid)["box"], "Archive")

    def test_15_delete_to_trash_of_a_destroyed_email_is_dead(self):
        msgid, eid = self.new_email(932)
        r = self.one_row(msgid)
        self.pause_scheduler()
        c = self.change("delete", "ja", str(r["id"]))
        self.cy.destroy("alice", [eid])
        self.resume_scheduler()
        d = self.wait_state(c["id"], ("done", "dead"))
        self.assertEqual(d["state"], "dead", dict(d))
        self.assertIn("no longer exists", d["last_error"])
        self.assertEqual(self.email(eid), {})
        self.sync()
        self.assertEqual(self.rows(msgid), [])

    # -- requests within the session's limits (account jc, through the proxy) -----

    def test_16_two_thousand_flag_changes_under_small_limits(self):
        """1,000 Emails, two flag changes each: every request the drain
        sends respects the (rewritten, small) maxSizeRequest,
        maxCallsInRequest and maxObjectsInSet, and all 2,000 land."""
        limits = {"maxSizeRequest": 4000, "maxCallsInRequest": 3, "maxObjectsInSet": 40}

        def session(obj):
            obj["capabilities"]["urn:ietf:params:jmap:core"].update(limits)
            return obj
        self.proxy.session = session
        self.cy.add_user("carol", "carolpw")
        msgs = [fx.make_message(3000 + i)[0] for i in range(1000)]
        eids = self.cy.import_messages("carol", "Inbox", msgs, [])
        pw = self.p.password_file("carolpw")
        self.p.submit("account", "add", "jc", "--jmap", self.proxy.session_url, "--plaintext",
                      "--user", "carol", "--password-file", pw, check=0)
        self.p.submit("sync", "jc", "--wait", "--timeout", "120", check=0)
        ids = [r["id"] for r in self.p.query(
            "SELECT m.id FROM messages m JOIN accounts a ON a.id = m.account_id"
            " WHERE a.name = 'jc' ORDER BY m.id")]
        self.assertEqual(len(ids), 1000)
        self.pause_scheduler()
        from concurrent.futures import ThreadPoolExecutor
        args = [(str(i), "--seen") for i in ids] + [(str(i), "--flagged") for i in ids]
        with ThreadPoolExecutor(4) as ex:
            cids = list(ex.map(lambda a: self.change("flag", "jc", *a)["id"], args))
        self.assertEqual(len(cids), 2000)
        start = len(self.proxy.requests)
        self.resume_scheduler()
        q = ("SELECT state, count(*) AS n FROM pending_changes c JOIN accounts a"
             " ON a.id = c.account_id WHERE a.name = 'jc' GROUP BY state")
        wait_for(lambda: (lambda r: r if r.get("done") == 2000 or r.get("dead") else None)(
            dict((x["state"], x["n"]) for x in self.p.query(q))), 300, "2,000 changes")
        self.assertEqual(dict((x["state"], x["n"]) for x in self.p.query(q)), {"done": 2000})
        sets = [x for x in self.proxy.requests[start:] if x[2] > 0]
        self.assertGreater(len(sets), 2000 * 55 // 4000)  # split, many requests
        for size, ncalls, objs in self.proxy.requests[start:]:
            self.assertLessEqual(size, 4000)
            self.assertLessEqual(ncalls, 3)
            self.assertLessEqual(objs, 40)
        acc = self.cy.account_id("carol")
        got = self.cy.call1("carol", "Email/get", {"accountId": acc, "ids": eids,
                                                   "properties": ["keywords"]})["list"]
        self.assertEqual(len(got), 1000)
        for e in got:
            self.assertEqual(sorted(k for k, v in e["keywords"].items() if v),
                             ["$flagged", "$seen"], e["id"])


    def test_17_reset_keeps_the_rows_of_pending_changes(self):
        """cannotCalculateChanges (the proxy rewrites Email/changes) while
        a move and a flag change wait (their Email/set fails with 503):
        the resync keeps both rows (same ids, no duplicate, the user's
        flag on top) while the other rows are listed again."""
        raws = [fx.make_message(960 + i)[0] for i in range(2)]
        mids = [MSGID_RE.search(m).group(1).decode() for m in raws]
        eids = self.cy.import_messages("bob", "Inbox", raws, [])
        self.p.submit("sync", "jp", "--wait", "--timeout", "60", check=0)
        x, y = self.bob_row(mids[0]), self.bob_row(mids[1])
        other = self.bob_row(self.bob_msgids[2])
        self.proxy.fail = lambda calls: "Email/set" in methods(calls)
        self.pause_scheduler()
        m = self.change("move", "jp", str(x["id"]), "--to", "Archive")
        f = self.change("flag", "jp", str(y["id"]), "--flagged")
        self.resume_scheduler()
        for cid in (m["id"], f["id"]):
            wait_for(lambda: (lambda c: c if c["attempts"] >= 1 and c["state"] == "pending"
                              else None)(self.pc(cid)), 60, "a failed drain attempt")

        def cannot(resps):
            return [["error", {"type": "cannotCalculateChanges"}, r[2]]
                    if r[0] == "Email/changes" else r for r in resps]
        self.proxy.answer = cannot
        self.p.submit("sync", "jp", "--wait", "--timeout", "60", check=0)
        self.proxy.answer = lambda resps: resps
        self.assertNotEqual(self.bob_row(self.bob_msgids[2])["id"], other["id"])  # relisted
        x2, y2 = self.bob_row(mids[0]), self.bob_row(mids[1])
        self.assertEqual((x2["id"], x2["box"]), (x["id"], "Archive"))
        self.assertEqual((y2["id"], y2["flagged"]), (y["id"], 1))
        self.proxy.fail = lambda calls: False
        for cid in (m["id"], f["id"]):
            self.assertEqual(self.wait_state(cid, ("done", "dead"))["state"], "done")
        self.p.submit("sync", "jp", "--wait", "--timeout", "60", check=0)
        x3, y3 = self.bob_row(mids[0]), self.bob_row(mids[1])
        self.assertEqual((x3["id"], x3["box"]), (x["id"], "Archive"))
        self.assertEqual((y3["id"], y3["flagged"]), (y["id"], 1))
        acc = self.cy.account_id("bob")
        got = self.cy.call1("bob", "Email/get", {"accountId": acc, "ids": eids,
                                                 "properties": ["mailboxIds", "keywords"]})
        boxes = dict((b["id"], n) for n, b in self.cy.mailboxes("bob").items())
        e = dict((g["id"], g) for g in got["list"])
        self.assertEqual([boxes[b] for b in e[eids[0]]["mailboxIds"]], ["Archive"])
        self.assertTrue(e[eids[1]]["keywords"].get("$flagged"))


    def test_18_dead_move_row_follows_the_server(self):
        """Another client moves the Email away and our sync sees that while
        our move waits (the guard skips the Email: /changes will not list
        it again); the move then ends dead, and the next sync reads the
        Email again (EmailRefresh): the row follows the server."""
        raw = fx.make_message(970)[0]
        msgid = MSGID_RE.search(raw).group(1).decode()
        eid = self.cy.import_messages("bob", "Inbox", [raw], [])[0]
        self.p.submit("sync", "jp", "--wait", "--timeout", "60", check=0)
        x = self.bob_row(msgid)
        # the drain's first request: Mailbox/get with properties (the
        # sync's asks for every property)
        self.proxy.fail = lambda calls: (methods(calls) == ["Mailbox/get"]
                                         and "properties" in calls[0][1])
        self.pause_scheduler()
        m = self.change("move", "jp", str(x["id"]), "--to", "Archive")
        self.resume_scheduler()
        wait_for(lambda: (lambda c: c if c["attempts"] >= 1 and c["state"] == "pending"
                          else None)(self.pc(m["id"])), 60, "a failed drain attempt")
        self.cy.move("bob", eid, "Drafts")
        self.p.submit("sync", "jp", "--wait", "--timeout", "60", check=0)
        self.assertEqual(self.bob_row(msgid)["box"], "Archive")  # the intent still shows
        self.proxy.fail = lambda calls: False
        # (the failed attempts' backoff: 5 s doubling, with jitter)
        d = self.wait_state(m["id"], ("done", "dead"), timeout=180)
        self.assertEqual(d["state"], "dead", dict(d))
        self.assertIn("no longer in mailbox 'Inbox'", d["last_error"])
        self.p.submit("sync", "jp", "--wait", "--timeout", "60", check=0)
        x2 = self.bob_row(msgid)
        self.assertEqual((x2["id"], x2["box"]), (x["id"], "Drafts"))


if __name__ == "__main__":
    unittest.main()
