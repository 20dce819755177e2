"""End-to-end: local changes carried to the server (docs/drain.md).

Real Dovecot, the real mailsync processes, an SMTP sink on loopback
(smtpsink.py). Each test uses its own Dovecot user and mailsync account,
and checks the server with imaplib and mailsync's SQLite directly."""
import json
import os
import re
import signal
import time
import unittest
import zlib

import mailfixture as fx
from harness import Dovecot, Pipeline, wait_for
from smtpsink import SmtpSink

ACTIVE = ("pending", "inflight")
MSGID_RE = re.compile(rb"Message-ID:\s*(<[^>]*>)", re.I)


def message_file(path, msgid, subject="Drain test", bcc=None, extra_body=""):
    """Writes a small RFC 5322 message (CRLF) with the given Message-ID."""
    hdrs = ["From: Ann Example <ann@example.org>",
            "To: Bob <bob@example.net>, carol@example.com",
            "Cc: Dave <dave@example.com>"]
    if bcc:
        hdrs.append("Bcc: %s" % bcc)
    hdrs += ["Subject: %s" % subject,
             "Date: Mon, 20 Nov 2023 10:00:00 +0000",
             "Message-ID: %s" % msgid,
             "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8"]
    body = "Hello Bob,\r\n.a line that starts with a dot\r\n..two dots\r\n" + extra_body + "Ann\r\n"
    with open(path, "wb") as f:
        f.write(("\r\n".join(hdrs) + "\r\n\r\n" + body).encode())
    return path


class DrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dovecot = Dovecot(tls=True)
        cls.p = Pipeline(workers=2, lease=10, batch_rows=100)
        cls.sinks = []

    @classmethod
    def tearDownClass(cls):
        for s in cls.sinks:
            s.stop()
        try:
            cls.p.stop()  # raises on a sanitizer report: Dovecot stops anyway
        finally:
            cls.dovecot.stop()
        cls.p.cleanup()

    def setUp(self):
        self.n = 0
        # A test that paused or killed processes leaves them running again.
        self.addCleanup(self.p.start_all)
        self.addCleanup(self.resume_scheduler)

    # -- setup helpers ----------------------------------------------------------

    def sink(self, **kw):
        s = SmtpSink(dir=os.path.join(self.p.dir, "sink-%s-%d" % (self._testMethodName, len(self.sinks))),
                     imap_port=self.dovecot.port, **kw)
        self.sinks.append(s)
        return s

    def seed(self, user, inbox=5, folders=("Archive",)):
        """A fresh Dovecot user: INBOX with `inbox` unflagged messages and
        empty folders; returns the Message-IDs in INBOX order."""
        m = fx.connect(self.dovecot.port, user)
        for name in folders:
            fx.create(m, name)
        # Dovecot's auto special-use folders: created by one session first.
        for name in ("Drafts", "Sent", "Trash", "Junk"):
            m.select(fx.q(name), readonly=True)
        m.logout()
        msgs = []
        for i in range(inbox):
            raw = fx.make_message(zlib.crc32(user.encode()) % 100000 + i, attach=False)[0]
            msgs.append(raw)
        fx.fast_append(self.dovecot.port, user, "INBOX", msgs)
        return [MSGID_RE.search(raw).group(1).decode() for raw in msgs]

    def account(self, name, smtp=None, extra=()):
        """Seeds user `name`, adds account `name` (plaintext IMAP, the
        sink's SMTP URL when given) and syncs it once."""
        ids = self.seed(name)
        pw = self.p.password_file()
        args = ["account", "add", name, "--imap", "imap://127.0.0.1:%d" % self.dovecot.port,
                "--user", name, "--password-file", pw, "--plaintext"]
        if smtp is not None:
            args += ["--smtp", smtp.url]
        self.p.submit(*(args + list(extra)), check=0)
        self.sync(name)
        return ids

    def sync(self, name):
        self.p.submit("sync", name, "--wait", "--timeout", "60", check=0)

    def resume_scheduler(self):
        if self.p.procs["scheduler"].poll() is None:
            self.p.send_signal("scheduler", signal.SIGCONT)

    def pause_scheduler(self):
        """SIGSTOP: nothing is leased until resume_scheduler()."""
        self.p.send_signal("scheduler", signal.SIGSTOP)

    def tmpfile(self, tag):
        self.n += 1
        return os.path.join(self.p.dir, "%s-%s-%d.eml" % (self._testMethodName, tag, self.n))

    # -- the command line ------------------------------------------------------

    def change(self, *args, check=0):
        """Runs a change command with --json; returns the change dict."""
        r = self.p.submit("--json", *args, check=check)
        return json.loads(r.stdout)["change"]

    # -- SQLite ----------------------------------------------------------------

    def row(self, account, msgid):
        """The local rows with this Message-ID header: [(mailbox, row)]."""
        return self.p.query(
            "SELECT m.*, b.name AS box FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
            "JOIN accounts a ON a.id = m.account_id WHERE a.name = ? AND m.message_id = ?",
            account, msgid)

    def one_row(self, account, msgid):
        rows = self.row(account, msgid)
        self.assertEqual(len(rows), 1, "rows with %s: %r" % (msgid, [dict(r) for r in rows]))
        return rows[0]

    def pc(self, cid):
        return self.p.query("SELECT * FROM pending_changes WHERE id = ?", cid)[0]

    def wait_state(self, cid, states, timeout=60):
        states = (states,) if isinstance(states, str) else states
        return wait_for(lambda: (lambda r: r if r["state"] in states else None)(self.pc(cid)),
                        timeout, "change %d to become %s" % (cid, "/".join(states)))

    def counts(self):
        return (self.p.query("SELECT COUNT(*) AS n FROM pending_changes")[0]["n"],
                self.p.query("SELECT COUNT(*) AS n FROM messages")[0]["n"],
                self.p.query("SELECT COUNT(*) AS n FROM jobs WHERE kind = 'drain'")[0]["n"])

    # -- the server --------------------------------------------------------------

    def server(self, user, mailbox):
        """{uid: (frozenset(flags), message_id, raw header bytes)}."""
        m = fx.connect(self.dovecot.port, user)
        try:
            typ, _ = m.select(fx.q(mailbox), readonly=True)
            if typ != "OK":
                return None
            typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER])")
            out = {}
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head, body = item
                uid = int(fx.FETCH_RE.search(head).group(1))
                fl = fx.FLAGS_RE.search(head).group(1).decode().split()
                mo = MSGID_RE.search(body)
                out[uid] = (frozenset(f for f in fl if f != "\\Recent"),
                            mo.group(1).decode() if mo else None, body)
            return out
        finally:
            m.logout()

    def on_server(self, user, mailbox, msgid):
        """[(uid, flags, header)] of the copies of msgid in mailbox."""
        return [(uid, fl, h) for uid, (fl, mid, h) in (self.server(user, mailbox) or {}).items()
                if mid == msgid]

    def imap(self, user, mailbox):
        m = fx.connect(self.dovecot.port, user)
        m.select(fx.q(mailbox))
        return m

    def uid_of(self, user, mailbox, msgid):
        copies = self.on_server(user, mailbox, msgid)
        self.assertEqual(len(copies), 1, "%s in %s: %r" % (msgid, mailbox, copies))
        return copies[0][0]

    # -- each command end to end ---------------------------------------------------

    def test_01_flag_lands(self):
        ids = self.account("dflag")
        r = self.one_row("dflag", ids[0])
        self.assertEqual((r["seen"], r["flagged"]), (0, 0))
        c = self.change("flag", "dflag", str(r["id"]), "--seen", "--flagged",
                        "--add-keyword", "$Work")
        self.assertEqual(c["kind"], "flag")
        # The local row shows the change at once (before the drain ran or not).
        r2 = self.one_row("dflag", ids[0])
        self.assertEqual((r2["seen"], r2["flagged"]), (1, 1))
        self.assertIn("$Work", r2["keywords"].split())
        done = self.wait_state(c["id"], "done")
        self.assertEqual(done["attempts"], 1)
        uid = r["uid"]
        fl = self.server("dflag", "INBOX")[uid][0]
        self.assertEqual(fl, frozenset(["\\Seen", "\\Flagged", "$Work"]))
        # Take them off again with --wait: exit 0 means it landed.
        c = self.change("flag", "dflag", str(r["id"]), "--unseen", "--unflagged",
                        "--remove-keyword", "$Work", "--answered", "--wait", "--timeout", "60")
        self.assertEqual(c["state"], "done")
        self.assertEqual(self.server("dflag", "INBOX")[uid][0], frozenset(["\\Answered"]))
        # messages and changes show a change while it waits, and after.
        self.pause_scheduler()
        c = self.change("flag", "dflag", str(r["id"]), "--flagged")
        msgs = json.loads(self.p.submit("--json", "messages", "dflag", "INBOX", check=0).stdout)
        m = [x for x in msgs["messages"] if x["id"] == r["id"]][0]
        self.assertTrue(m["pending"], m)
        self.assertIn("flagged", m["flags"])
        self.assertEqual(m["uid"], uid)
        pend = json.loads(self.p.submit("--json", "changes", "dflag", "--state", "pending",
                                        check=0).stdout)["changes"]
        self.assertEqual([x["id"] for x in pend], [c["id"]])
        self.assertEqual((pend[0]["kind"], pend[0]["flags_add"]), ("flag", ["flagged"]))
        self.resume_scheduler()
        self.wait_state(c["id"], "done")
        msgs = json.loads(self.p.submit("--json", "messages", "dflag", "INBOX", check=0).stdout)
        self.assertFalse([x for x in msgs["messages"] if x["id"] == r["id"]][0]["pending"])
        done = json.loads(self.p.submit("--json", "changes", "dflag", "--state", "done",
                                        check=0).stdout)["changes"]
        self.assertEqual(done[0]["id"], c["id"])  # newest first
        self.assertEqual(len(done), 3)
        self.sync("dflag")
        r3 = self.one_row("dflag", ids[0])
        self.assertEqual((r3["id"], r3["seen"], r3["flagged"], r3["answered"], r3["keywords"]),
                         (r["id"], 0, 1, 1, ""))

    def test_02_move_lands_with_new_uid_same_id(self):
        ids = self.account("dmove")
        r = self.one_row("dmove", ids[1])
        c = self.change("move", "dmove", str(r["id"]), "--to", "Archive")
        # At once: re-homed into Archive, no UID yet, same messages.id.
        r1 = self.one_row("dmove", ids[1])
        self.assertEqual((r1["id"], r1["box"]), (r["id"], "Archive"))
        if self.pc(c["id"])["state"] in ACTIVE:
            self.assertEqual((r1["uid"], r1["remote_id"]), (None, "local:%d" % c["id"]))
        c = self.wait_state(c["id"], "done")
        self.assertEqual(c["result_mailbox"], "Archive")
        uid = self.uid_of("dmove", "Archive", ids[1])
        self.assertEqual(c["result_uid"], uid)
        self.assertEqual(self.on_server("dmove", "INBOX", ids[1]), [])
        r2 = self.one_row("dmove", ids[1])
        self.assertEqual((r2["id"], r2["box"], r2["uid"], r2["remote_id"]),
                         (r["id"], "Archive", uid, None))
        # A sync afterwards neither duplicates nor brings it back.
        self.sync("dmove")
        r3 = self.one_row("dmove", ids[1])
        self.assertEqual((r3["id"], r3["box"], r3["uid"]), (r["id"], "Archive", uid))
        self.assertEqual(len(self.p.local_state("dmove")["INBOX"]), 4)

    def test_03_delete_to_trash_and_expunge(self):
        ids = self.account("ddel")
        r = self.one_row("ddel", ids[0])
        c = self.change("delete", "ddel", str(r["id"]), "--wait", "--timeout", "60")
        self.assertEqual((c["state"], c["result_mailbox"]), ("done", "Trash"))
        uid = self.uid_of("ddel", "Trash", ids[0])
        self.assertEqual(self.on_server("ddel", "INBOX", ids[0]), [])
        r2 = self.one_row("ddel", ids[0])
        self.assertEqual((r2["id"], r2["box"], r2["uid"]), (r["id"], "Trash", uid))
        # --expunge: gone everywhere, the row too, at once.
        e = self.one_row("ddel", ids[2])
        c = self.change("delete", "ddel", str(e["id"]), "--expunge")
        self.assertEqual(self.row("ddel", ids[2]), [])
        self.wait_state(c["id"], "done")
        for box in ("INBOX", "Trash"):
            self.assertEqual(self.on_server("ddel", box, ids[2]), [], box)
        # Deleting what is already in Trash expunges it.
        c = self.change("delete", "ddel", str(r["id"]), "--wait", "--timeout", "60")
        self.assertEqual(c["state"], "done")
        self.assertEqual(self.on_server("ddel", "Trash", ids[0]), [])
        self.sync("ddel")
        self.assertEqual(self.row("ddel", ids[0]), [])
        self.assertEqual(self.row("ddel", ids[2]), [])
        self.assertEqual(sorted(self.server("ddel", "INBOX")),
                         sorted(self.p.local_state("ddel")["INBOX"]))

    def test_04_append_once_and_idempotent(self):
        self.account("dapp")
        msgid = "<append-1@example.org>"
        f = message_file(self.tmpfile("a"), msgid, subject="Appended once")
        c = self.change("append", "dapp", "--mailbox", "Archive", "--file", f,
                        "--flags", "seen,flagged")
        self.assertEqual(c["kind"], "append")
        ph = self.one_row("dapp", msgid)
        self.assertEqual((ph["box"], ph["subject"]), ("Archive", "Appended once"))
        c = self.wait_state(c["id"], "done")
        copies = self.on_server("dapp", "Archive", msgid)
        self.assertEqual(len(copies), 1)
        uid, fl, _ = copies[0]
        self.assertEqual(fl, frozenset(["\\Seen", "\\Flagged"]))
        self.assertEqual(c["result_uid"], uid)
        r = self.one_row("dapp", msgid)
        self.assertEqual((r["uid"], r["remote_id"], r["seen"], r["flagged"]), (uid, None, 1, 1))
        # The same file again: found by Message-ID, not appended twice.
        c2 = self.change("append", "dapp", "--mailbox", "Archive", "--file", f, "--wait",
                         "--timeout", "60")
        self.assertEqual((c2["state"], c2["result_uid"]), ("done", uid))
        self.assertEqual(len(self.on_server("dapp", "Archive", msgid)), 1)
        self.one_row("dapp", msgid)
        self.sync("dapp")
        self.assertEqual(self.one_row("dapp", msgid)["uid"], uid)
        # A file without a Message-ID gets one (and lands once).
        f2 = self.tmpfile("nomsgid")
        with open(f2, "wb") as fh:
            fh.write(b"From: ann@example.org\r\nTo: bob@example.net\r\nSubject: no id\r\n\r\nbody\r\n")
        c3 = self.change("append", "dapp", "--mailbox", "INBOX", "--file", f2, "--wait",
                         "--timeout", "60")
        self.assertEqual(c3["state"], "done")
        self.assertTrue(c3["header_message_id"].startswith("<"), c3)
        self.assertEqual(len(self.on_server("dapp", "INBOX", c3["header_message_id"])), 1)

    def check_send(self, sink, account, msgid, bcc=True):
        """One delivery at the sink (Bcc in the envelope, not in the data)
        and one Sent copy on the server (with the Bcc)."""
        got = [m for m in sink.messages() if MSGID_RE.search(m["data"]).group(1).decode() == msgid]
        self.assertEqual(len(got), 1, "deliveries of %s" % msgid)
        d = got[0]
        self.assertEqual(d["mail_from"], "ann@example.org")
        want = ["bob@example.net", "carol@example.com", "dave@example.com"]
        if bcc:
            want.append("eve@example.com")
        self.assertEqual(sorted(d["rcpt"]), sorted(want))
        self.assertNotIn(b"\nBcc:", d["data"])
        self.assertNotIn(b"eve@example.com", d["data"])
        self.assertIn(b"\r\n.a line that starts with a dot\r\n..two dots\r\n", d["data"])
        copies = self.on_server(account, "Sent", msgid)
        self.assertEqual(len(copies), 1, "Sent copies of %s" % msgid)
        self.assertIn("\\Seen", copies[0][1])
        return d, copies[0]

    def test_05_send_one_delivery_one_sent_copy(self):
        sink = self.sink()
        self.account("dsend", smtp=sink)
        msgid = "<send-1@example.org>"
        f = message_file(self.tmpfile("s"), msgid, bcc="Eve <eve@example.com>")
        c = self.change("send", "dsend", "--file", f)
        self.assertEqual(c["kind"], "send")
        self.assertEqual(self.one_row("dsend", msgid)["box"], "Sent")
        c = self.wait_state(c["id"], "done")
        self.assertEqual(c["result_mailbox"], "Sent")
        _, (uid, _, header) = self.check_send(sink, "dsend", msgid)
        self.assertIn(b"Bcc: Eve <eve@example.com>", header)  # kept in the Sent copy
        self.assertEqual(c["result_uid"], uid)
        r = self.one_row("dsend", msgid)
        self.assertEqual((r["box"], r["uid"], r["seen"]), ("Sent", uid, 1))
        self.sync("dsend")
        self.assertEqual(self.one_row("dsend", msgid)["uid"], uid)

    def test_06_send_server_autosaves(self):
        sink = self.sink(autosave=True, imap_user="dauto")
        self.account("dauto", smtp=sink)
        msgid = "<send-auto@example.org>"
        f = message_file(self.tmpfile("s"), msgid, bcc="eve@example.com")
        c = self.change("send", "dauto", "--file", f, "--wait", "--timeout", "60")
        self.assertEqual(c["state"], "done")
        # The sink saved it before its 250; mailsync found it by Message-ID.
        self.check_send(sink, "dauto", msgid)
        self.sync("dauto")
        self.one_row("dauto", msgid)

    def test_07_send_starttls_with_auth(self):
        lab = os.path.join(self.dovecot.lab, "etc")
        sink = self.sink(cert=os.path.join(lab, "srv.pem"), key=os.path.join(lab, "srv.key"),
                         user="smtpuser", password="smtp-secret")
        self.seed("dtls")
        pw = self.p.password_file()
        spw = self.p.password_file("smtp-secret")
        # No --plaintext: imaps verified with the test CA, smtp:// must STARTTLS.
        self.p.submit("account", "add", "dtls", "--imap",
                      "imaps://127.0.0.1:%d" % self.dovecot.tls_port, "--user", "dtls",
                      "--password-file", pw, "--tls-ca", self.dovecot.ca_file,
                      "--smtp", sink.url, "--smtp-user", "smtpuser",
                      "--smtp-password-file", spw, check=0)
        self.sync("dtls")
        msgid = "<send-tls@example.org>"
        f = message_file(self.tmpfile("s"), msgid, bcc="eve@example.com")
        c = self.change("send", "dtls", "--file", f, "--wait", "--timeout", "60")
        self.assertEqual(c["state"], "done", c)
        d, _ = self.check_send(sink, "dtls", msgid)
        self.assertTrue(d["tls"] and d["authed"], d)
        self.assertIn("smtpuser", sink.auths)

    # -- failures ---------------------------------------------------------------------

    def test_08_send_rejected_is_dead_with_the_servers_words(self):
        sink = self.sink(fault="reject_rcpt")
        self.account("drej", smtp=sink)
        msgid = "<send-rej@example.org>"
        f = message_file(self.tmpfile("s"), msgid)
        r = self.p.submit("--json", "send", "drej", "--file", f, "--wait", "--timeout", "60")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        c = self.wait_state(json.loads(r.stdout)["change"]["id"], "dead", timeout=5)
        self.assertIn("550", c["last_error"])
        self.assertIn("Recipient address rejected", c["last_error"])
        self.assertEqual(sink.messages(), [])
        self.assertEqual(self.on_server("drej", "Sent", msgid), [])
        self.assertEqual(self.row("drej", msgid), [])  # the placeholder is gone
        self.assertIsNotNone(c["rfc822"])  # what the user wrote is kept

    def test_08b_send_tempfail_is_retried_later(self):
        sink = self.sink(fault="tempfail_rcpt")
        self.account("dtemp", smtp=sink)
        msgid = "<send-temp@example.org>"
        f = message_file(self.tmpfile("s"), msgid)
        cid = self.change("send", "dtemp", "--file", f)["id"]
        c = wait_for(lambda: (lambda r: r if r["state"] == "pending" and r["attempts"] >= 1
                              else None)(self.pc(cid)), 30, "the 451 to be given back")
        self.assertIn("451", c["last_error"])
        self.assertGreater(c["next_at"], c["updated_at"])  # backoff, not at once
        self.assertEqual(sink.messages(), [])
        sink.set_fault(None)
        c = self.wait_state(cid, ("done", "dead", "uncertain"), timeout=30)
        self.assertEqual(c["state"], "done", dict(c))
        self.check_send(sink, "dtemp", msgid, bcc=False)

    def test_09_send_cut_off_is_uncertain_then_retried(self):
        sink = self.sink(fault="drop_after_data")
        self.account("dunc", smtp=sink)
        msgid = "<send-unc@example.org>"
        f = message_file(self.tmpfile("s"), msgid, bcc="eve@example.com")
        r = self.p.submit("--json", "send", "dunc", "--file", f, "--wait", "--timeout", "60")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        cid = json.loads(r.stdout)["change"]["id"]
        c = self.wait_state(cid, "uncertain", timeout=5)
        self.assertTrue(c["last_error"], c)
        self.assertEqual(len(sink.dropped), 1)
        self.assertEqual(sink.messages(), [])
        # Never sent again on its own.
        time.sleep(2)
        self.assertEqual(self.pc(cid)["state"], "uncertain")
        self.assertEqual(len(sink.dropped), 1)
        sink.set_fault(None)
        c = self.change("change", "resolve", str(cid), "--retry")
        self.assertEqual(c["id"], cid)
        self.wait_state(cid, "done")
        self.check_send(sink, "dunc", msgid)

    def test_09b_workers_killed_mid_send_uncertain_then_cancelled(self):
        sink = self.sink(fault="stall_after_data")
        self.account("dmid", smtp=sink)
        msgid = "<send-mid@example.org>"
        cid = self.change("send", "dmid", "--file", message_file(self.tmpfile("s"), msgid))["id"]
        self.assertEqual(self.one_row("dmid", msgid)["box"], "Sent")
        wait_for(sink.stalled.is_set, 30, "the sink to hold the end of DATA")
        for w in self.p.workers():
            self.p.kill(w)
        for w in self.p.workers():
            self.p.restart(w)
        # The lease runs out (10 s); the send may have been delivered, so
        # it is uncertain and never sent again on a guess.
        c = self.wait_state(cid, ("uncertain", "done", "dead"), timeout=60)
        self.assertEqual(c["state"], "uncertain", dict(c))
        self.assertEqual(len(sink.dropped), 1)
        sink.set_fault(None)
        c = self.change("change", "resolve", str(cid), "--cancel")
        self.assertEqual(self.wait_state(cid, "cancelled", timeout=5)["state"], "cancelled")
        self.assertEqual(self.row("dmid", msgid), [])  # the Sent placeholder is gone
        self.assertIsNotNone(self.pc(cid)["rfc822"])
        self.sync("dmid")
        self.assertEqual(sink.messages(), [])
        self.assertEqual(self.on_server("dmid", "Sent", msgid), [])

    def test_10_kill9_everything_then_lands_once(self):
        sink = self.sink()
        ids = self.account("dkill", smtp=sink)
        before = self.server("dkill", "INBOX")
        # Nothing may lease the drain: workers and scheduler die first.
        for w in self.p.workers():
            self.p.kill(w)
        self.p.kill("scheduler")
        r0 = self.one_row("dkill", ids[0])
        r1 = self.one_row("dkill", ids[1])
        cids = [
            self.change("flag", "dkill", str(r0["id"]), "--seen", "--add-keyword", "$Kill")["id"],
            self.change("move", "dkill", str(r1["id"]), "--to", "Archive")["id"],
            self.change("append", "dkill", "--mailbox", "Archive", "--file",
                        message_file(self.tmpfile("a"), "<kill-append@example.org>"))["id"],
            self.change("send", "dkill", "--file",
                        message_file(self.tmpfile("s"), "<kill-send@example.org>",
                                     bcc="eve@example.com"))["id"],
        ]
        for cid in cids:
            self.assertEqual(self.pc(cid)["state"], "pending")
        self.p.kill_all()
        # Nothing reached the server.
        self.assertEqual(self.server("dkill", "INBOX"), before)
        self.assertEqual(sink.messages(), [])
        self.p.start_all()
        for cid in cids:
            self.assertEqual(self.wait_state(cid, ("done", "dead", "uncertain"))["state"], "done",
                             dict(self.pc(cid)))
        uid0 = r0["uid"]
        self.assertEqual(self.server("dkill", "INBOX")[uid0][0], frozenset(["\\Seen", "$Kill"]))
        self.assertEqual(self.on_server("dkill", "INBOX", ids[1]), [])
        self.uid_of("dkill", "Archive", ids[1])
        self.uid_of("dkill", "Archive", "<kill-append@example.org>")
        self.check_send(sink, "dkill", "<kill-send@example.org>")
        self.sync("dkill")
        for msgid in (ids[0], ids[1], "<kill-append@example.org>", "<kill-send@example.org>"):
            self.one_row("dkill", msgid)

    def test_11_flag_pending_while_a_sync_runs(self):
        ids = self.account("dover")
        r = self.one_row("dover", ids[3])
        uid = r["uid"]
        # Another client flags the message; the sync will bring that
        # (\Flagged, without \Seen) while our --seen is still pending.
        m = self.imap("dover", "INBOX")
        m.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)")
        m.logout()
        self.pause_scheduler()
        sync = self.p.submit("--json", "sync", "dover", check=0)  # queued first: leased first
        c = self.change("flag", "dover", str(r["id"]), "--seen")
        self.assertEqual(self.pc(c["id"])["state"], "pending")
        seen_values = []
        self.resume_scheduler()

        def landed():
            row = self.one_row("dover", ids[3])
            seen_values.append(row["seen"])
            return self.pc(c["id"])["state"] == "done" and row
        row = wait_for(landed, 60, "the flag change to land", interval=0.01)
        self.assertNotIn(0, seen_values, "the read flag flipped back")
        self.assertEqual((row["seen"], row["flagged"]), (1, 1))
        # The sync really ran while the change was pending.
        jobs = self.p.query("SELECT j.kind, j.state, j.finished_at FROM jobs j JOIN accounts a "
                            "ON a.id = j.account_id WHERE a.name = 'dover' ORDER BY j.id")
        del sync
        syncs = [j for j in jobs if j["kind"] == "sync"]
        self.assertEqual(syncs[-1]["state"], "done")
        self.assertLessEqual(syncs[-1]["finished_at"], self.pc(c["id"])["updated_at"])
        self.assertEqual(self.server("dover", "INBOX")[uid][0],
                         frozenset(["\\Seen", "\\Flagged"]))
        self.sync("dover")
        row = self.one_row("dover", ids[3])
        self.assertEqual((row["seen"], row["flagged"]), (1, 1))

    def test_12_move_and_delete_raced_by_the_server(self):
        ids = self.account("drace")
        mv = self.one_row("drace", ids[0])
        dl = self.one_row("drace", ids[1])
        self.pause_scheduler()
        cm = self.change("move", "drace", str(mv["id"]), "--to", "Archive")
        cd = self.change("delete", "drace", str(dl["id"]))
        # Meanwhile another client expunges the first and files the second.
        m = self.imap("drace", "INBOX")
        m.uid("STORE", str(mv["uid"]), "+FLAGS", "(\\Deleted)")
        m.uid("EXPUNGE", str(mv["uid"]))
        m.uid("MOVE", str(dl["uid"]), "Archive")
        m.logout()
        self.resume_scheduler()
        for cid in (cm["id"], cd["id"]):
            c = self.wait_state(cid, ("done", "dead"))
            self.assertEqual(c["state"], "dead", dict(c))
            self.assertIn("no longer in its mailbox", c["last_error"])
        self.sync("drace")
        self.assertEqual(self.row("drace", ids[0]), [])
        r = self.one_row("drace", ids[1])
        self.assertEqual((r["box"], r["uid"]), ("Archive", self.uid_of("drace", "Archive", ids[1])))
        self.assertEqual(self.on_server("drace", "Trash", ids[1]), [])
        self.assertEqual(sorted(self.server("drace", "INBOX")),
                         sorted(self.p.local_state("drace")["INBOX"]))

    def test_13_move_to_a_mailbox_gone_on_the_server(self):
        self.seed("dgone", folders=("Archive", "Gone"))
        pw = self.p.password_file()
        self.p.submit("account", "add", "dgone", "--imap",
                      "imap://127.0.0.1:%d" % self.dovecot.port, "--user", "dgone",
                      "--password-file", pw, "--plaintext", check=0)
        self.sync("dgone")
        ids = [r["message_id"] for r in self.p.query(
            "SELECT m.message_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
            "JOIN accounts a ON a.id = m.account_id WHERE a.name = 'dgone' AND b.name = 'INBOX' "
            "ORDER BY m.uid")]
        r = self.one_row("dgone", ids[0])
        m = fx.connect(self.dovecot.port, "dgone")
        self.assertEqual(m.delete(fx.q("Gone"))[0], "OK")
        m.logout()
        res = self.p.submit("--json", "move", "dgone", str(r["id"]), "--to", "Gone", "--wait",
                            "--timeout", "60")
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        c = self.wait_state(json.loads(res.stdout)["change"]["id"], "dead", timeout=5)
        err = c["last_error"]
        self.assertTrue("TRYCREATE" in err or "exist" in err.lower(), err)
        self.assertEqual(self.uid_of("dgone", "INBOX", ids[0]), r["uid"])
        self.sync("dgone")
        r2 = self.one_row("dgone", ids[0])
        self.assertEqual((r2["box"], r2["uid"]), ("INBOX", r["uid"]))
        boxes = [b["name"] for b in self.p.query(
            "SELECT b.name FROM mailboxes b JOIN accounts a ON a.id = b.account_id "
            "WHERE a.name = 'dgone'")]
        self.assertNotIn("Gone", boxes)

    def test_14_bad_input_exits_2_and_writes_nothing(self):
        sink = self.sink()
        ids = self.account("dbad", smtp=sink)
        self.account("dnosmtp")
        r = self.one_row("dbad", ids[0])
        mid = str(r["id"])
        good = message_file(self.tmpfile("g"), "<bad-good@example.org>")
        empty = self.tmpfile("empty")
        open(empty, "wb").close()
        big = message_file(self.tmpfile("big"), "<bad-big@example.org>",
                           extra_body=("x" * 998 + "\r\n") * (13 * 1024 + 20))
        cases = [
            (("flag", "nosuch", mid, "--seen"), "nosuch"),
            (("flag", "dbad", "999999", "--seen"), "999999"),
            (("flag", "dnosmtp", mid, "--seen"), mid),  # another account's message
            (("flag", "dbad", "notanumber", "--seen"), "notanumber"),
            (("flag", "dbad", mid), ""),  # nothing to change
            (("flag", "dbad", mid, "--seen", "--unseen"), ""),
            (("flag", "dbad", mid, "--add-keyword", "bad word"), "bad word"),
            (("flag", "dbad", mid, "--add-keyword", "\\Seen"), ""),
            (("flag", "dbad", mid, "--bogus"), "--bogus"),
            (("move", "dbad", mid), "--to"),
            (("move", "dbad", mid, "--to", "NoSuchFolder"), "NoSuchFolder"),
            (("delete", "nosuch", mid), "nosuch"),
            (("append", "dbad", "--mailbox", "Archive", "--file", "/nonexistent/msg.eml"),
             "/nonexistent/msg.eml"),
            (("append", "dbad", "--mailbox", "Archive", "--file", self.p.dir), ""),
            (("append", "dbad", "--mailbox", "Archive", "--file", empty), ""),
            (("append", "dbad", "--mailbox", "NoSuchFolder", "--file", good), "NoSuchFolder"),
            (("append", "dbad", "--mailbox", "Archive", "--file", big), ""),  # over 12 MiB
            (("send", "dbad", "--file", big), ""),
            (("append", "dbad", "--mailbox", "Archive", "--file", good, "--flags", "seen,bogus"),
             "bogus"),
            (("send", "dbad", "--file", "/nonexistent/msg.eml"), "/nonexistent/msg.eml"),
            (("send", "dnosmtp", "--file", good), "smtp"),
            (("change", "resolve", "999999", "--retry"), "999999"),
        ]
        before = self.counts()
        for args, word in cases:
            res = self.p.submit(*args)
            what = "mailsync-submit %s: exit %d\n%s%s" % (" ".join(args), res.returncode,
                                                          res.stdout, res.stderr)
            self.assertEqual(res.returncode, 2, what)
            self.assertTrue(res.stderr.strip(), what)
            self.assertIn(word.lower(), res.stderr.lower(), what)
            self.assertEqual(self.counts(), before, what)
        # The same through --json: one error object, exit 2.
        res = self.p.submit("--json", "flag", "dbad", "999999", "--seen")
        self.assertEqual(res.returncode, 2)
        self.assertEqual(json.loads(res.stdout)["exit"], 2)
        self.assertEqual(self.counts(), before)
        row = self.one_row("dbad", ids[0])
        self.assertEqual((row["seen"], row["box"]), (r["seen"], r["box"]))
        self.assertEqual(sink.messages(), [])


if __name__ == "__main__":
    unittest.main()
