"""A throwaway Cyrus IMAP 3.6 for the end-to-end tests: JMAP over plain HTTP
and IMAP on 127.0.0.1 (tests/e2e/cyrus.sh), a small JMAP client (standard
library only) for what "another client" does on the server, and a fast
loader of messages (IMAP MULTIAPPEND on Cyrus's own IMAP port).

    cy = Cyrus()                      # started; its SMTP sink is cy.sink
    cy.add_user("alice", "alicepw")   # INBOX + Drafts/Sent/Trash/Junk/Archive
    ids = cy.import_messages("alice", "Inbox", [raw, ...], ["$seen"])
    cy.mailboxes("alice")             # {"Inbox": {"id", "role", "parentId", ...}}
    cy.emails("alice")                # every Email
    cy.stop()

Mailboxes are named by their JMAP path: the names from the top down joined
by "/" ("Inbox", "Archive", "Work/Projects"), as mailsync stores them
(docs/schema.md, JMAP mapping). Cyrus calls INBOX "Inbox" in JMAP.

Command line (for people, not tests):
    python3 tests/e2e/cyrus.py record DIR   real JMAP answers as parser fixtures
    python3 tests/e2e/cyrus.py load N       time loading N messages
"""
import atexit
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mailfixture as fx  # noqa: E402
from harness import free_port  # noqa: E402
from smtpsink import SmtpSink  # noqa: E402

SCRIPT = os.path.join(HERE, "cyrus.sh")
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
         "urn:ietf:params:jmap:submission"]
# The roles of the folders a first IMAP login creates (autocreate_inbox_folders).
ROLES = {"Inbox": "inbox", "Drafts": "drafts", "Sent": "sent", "Trash": "trash",
         "Junk": "junk", "Archive": "archive"}
EMAIL_PROPERTIES = ["id", "threadId", "blobId", "mailboxIds", "keywords", "subject",
                    "messageId", "receivedAt", "size", "hasAttachment"]
# JMAP keywords that are IMAP system flags (RFC 8621 4.1.1).
SYSTEM_FLAGS = {"$seen": "\\Seen", "$flagged": "\\Flagged", "$answered": "\\Answered",
                "$draft": "\\Draft"}
APPEND_BATCH = 500             # messages per MULTIAPPEND command
APPEND_BATCH_BYTES = 16 << 20  # and at most this many bytes
PAGE = 1000                    # Email/query + Email/get page (maxObjectsInGet is 4096)
APPENDUID_RE = re.compile(rb"\[APPENDUID \d+ ([0-9:,]+)\]")
EMAILID_RE = re.compile(rb"UID (\d+) EMAILID \((\w+)\)|EMAILID \((\w+)\) UID (\d+)")


class JmapError(AssertionError):
    """A JMAP method answered "error", or a /set left something undone."""


def _lab_parent():
    """Where labs go: /dev/shm when it has room (loading is 5x faster
    without Cyrus's fsyncs reaching a disk), else the temp dir. Unix socket
    paths in the lab (lmtp, idle, notify) must fit 108 bytes."""
    try:
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= 2 << 30 and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    except OSError:
        pass
    t = tempfile.gettempdir()
    return t if len(t) <= 40 else "/tmp"


def _uid_set(text):
    """[uid, ...] of an IMAP sequence set such as b"5:7,9"."""
    out = []
    for part in text.split(b","):
        a, _, b = part.partition(b":")
        lo, hi = int(a), int(b or a)
        out.extend(range(min(lo, hi), max(lo, hi) + 1))
    return out


def _quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Imap:
    """A raw IMAP connection for pipelined commands (imaplib waits for a
    continuation per literal; LITERAL+ lets a whole MULTIAPPEND go out in
    one write)."""

    def __init__(self, port, user, password):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.f = self.s.makefile("rb")
        self.n = 0
        self.f.readline()
        sasl = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
        self.command(b"AUTHENTICATE PLAIN " + sasl)

    def command(self, body):
        """Sends one command; returns (untagged lines, tagged line). Raises
        unless the server answers OK."""
        self.n += 1
        tag = b"c%d" % self.n
        self.s.sendall(tag + b" " + body + b"\r\n")
        untagged = []
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("Cyrus closed the IMAP connection")
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError("IMAP %r: %r" % (body[:60], line))
                return untagged, line
            untagged.append(line)

    def close(self):
        try:
            self.s.sendall(b"z LOGOUT\r\n")
        except OSError:
            pass
        self.f.close()
        self.s.close()


class Cyrus:
    """One Cyrus master with its own config, ports, users and SMTP sink.
    Starts in the constructor unless start=False; stop() removes it all."""

    def __init__(self, start=True, sink=None):
        self.users = {}        # name -> password
        self.sink = sink       # SmtpSink; Cyrus relays EmailSubmission here
        self._own_sink = sink is None
        self._sessions = {}    # user -> session object
        self.base = None
        self.start_seconds = self.stop_seconds = None
        if start:
            self.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- the server ------------------------------------------------------------

    def start(self, attempts=3):
        self.base = tempfile.mkdtemp(prefix="mailsync-cyrus-", dir=_lab_parent())
        atexit.register(self.stop)  # a test that dies early leaves no master behind
        if self.sink is None:
            self.sink = SmtpSink(dir=os.path.join(self.base, "sink"))
        self.lab = os.path.join(self.base, "c")
        # A port picked free may be taken before master binds it: new ports.
        for attempt in range(attempts):
            self.imap_port, self.http_port = free_port(), free_port()
            self.env = dict(os.environ, LAB=self.lab, IMAP_PORT=str(self.imap_port),
                            HTTP_PORT=str(self.http_port), SMTP_PORT=str(self.sink.port))
            t0 = time.time()
            r = subprocess.run([SCRIPT, "start"], env=self.env, stdin=subprocess.DEVNULL)
            if r.returncode == 0:
                self.start_seconds = time.time() - t0
                return
            if r.returncode != 3:  # 3: a port was taken; anything else is final
                break
        self.stop()
        raise RuntimeError("cyrus.sh start failed (exit %d; see its output above)" % r.returncode)

    def stop(self):
        if self.base is None:
            return
        t0 = time.time()
        subprocess.run([SCRIPT, "stop"], env=self.env, stdin=subprocess.DEVNULL)
        self.stop_seconds = time.time() - t0
        if self._own_sink and self.sink is not None:
            self.sink.stop()
            self.sink = None
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None

    @property
    def session_url(self):
        return "http://127.0.0.1:%d/.well-known/jmap" % self.http_port

    @property
    def imap_url(self):
        return "imap://127.0.0.1:%d" % self.imap_port

    def log_text(self):
        """master's own log (Cyrus logs the rest to syslog, absent here)."""
        out = []
        for name in ("master.log", "master.stdout"):
            try:
                with open(os.path.join(self.lab, name), "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "".join(out)

    # -- users ---------------------------------------------------------------------

    def add_user(self, name, password):
        """A SASL user, then one IMAP login: Cyrus creates the account's
        mailboxes (INBOX, Drafts, Sent, Trash, Junk, Archive) at the first
        login; before that, JMAP answers accountNotFound."""
        subprocess.run([SCRIPT, "user", name], env=self.env, input=password.encode(),
                       check=True)
        self.users[name] = password
        m = self.imap(name)
        m.logout()

    def imap(self, user):
        """A logged-in imaplib connection to Cyrus's IMAP port."""
        import imaplib
        m = imaplib.IMAP4("127.0.0.1", self.imap_port)
        m.login(user, self.users[user])
        return m

    # -- JMAP -------------------------------------------------------------------

    def _auth(self, user, password=None):
        pw = password if password is not None else self.users[user]
        return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()

    def http(self, user, url, data=None, content_type="application/json", password=None,
             method=None):
        """(status, headers, body) of one request; url may be relative to
        the session URL (Cyrus's session URLs are)."""
        req = urllib.request.Request(urllib.parse.urljoin(self.session_url, url), data=data,
                                     method=method)
        req.add_header("Authorization", self._auth(user, password))
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def session(self, user, password=None, fresh=False):
        """The session object (GET /.well-known/jmap, redirected to /jmap)."""
        if fresh or user not in self._sessions:
            status, _, body = self.http(user, self.session_url, password=password)
            if status != 200:
                raise JmapError("session for %s: HTTP %d %r" % (user, status, body[:200]))
            self._sessions[user] = json.loads(body)
        return self._sessions[user]

    def call_raw(self, user, password, method_calls, using=None):
        """The body of the answer to one JMAP request, as Cyrus sent it."""
        api = self.session(user, password)["apiUrl"]
        body = json.dumps({"using": using or USING, "methodCalls": method_calls}).encode()
        status, _, out = self.http(user, api, body, password=password)
        if status != 200:
            raise JmapError("JMAP request: HTTP %d %r" % (status, out[:300]))
        return out

    def call(self, user, password, method_calls, using=None):
        """methodResponses of one JMAP request (password None: add_user's)."""
        return json.loads(self.call_raw(user, password, method_calls, using))["methodResponses"]

    def call1(self, user, method, args):
        """The arguments of one method's answer; JmapError on "error"."""
        resp = self.call(user, None, [[method, args, "0"]])
        name, out, _ = resp[0]
        if name == "error":
            raise JmapError("%s: %r" % (method, out))
        return out

    def _set(self, user, method, args):
        out = self.call1(user, method, args)
        for k in ("notCreated", "notUpdated", "notDestroyed"):
            if out.get(k):
                raise JmapError("%s %s: %r" % (method, k, out[k]))
        return out

    def account_id(self, user):
        return self.session(user)["primaryAccounts"]["urn:ietf:params:jmap:mail"]

    def mailboxes(self, user):
        """{path: Mailbox} where path joins the names from the top down with
        "/" and each Mailbox has id, name, parentId, role, sortOrder,
        totalEmails, unreadEmails, isSubscribed and "path"."""
        out = self.call1(user, "Mailbox/get", {"accountId": self.account_id(user),
                                               "ids": None})
        by_id = dict((b["id"], b) for b in out["list"])

        def path(b):
            return b["name"] if b["parentId"] is None else path(by_id[b["parentId"]]) + "/" + b["name"]

        res = {}
        for b in out["list"]:
            b["path"] = path(b)
            res[b["path"]] = b
        return res

    def mailbox_id(self, user, path):
        boxes = self.mailboxes(user)
        if path not in boxes:
            raise KeyError("%s has no mailbox %r (has %r)" % (user, path, sorted(boxes)))
        return boxes[path]["id"]

    def emails(self, user, properties=None, filter=None):
        """Every Email (of filter), oldest id first, in pages of Email/query
        + Email/get (position and limit)."""
        acc = self.account_id(user)
        props = properties or EMAIL_PROPERTIES
        out, pos = [], 0
        while True:
            q = {"accountId": acc, "sort": [{"property": "id", "isAscending": True}],
                 "position": pos, "limit": PAGE, "calculateTotal": True}
            if filter:
                q["filter"] = filter
            resp = self.call(user, None, [
                ["Email/query", q, "q"],
                ["Email/get", {"accountId": acc, "properties": props,
                               "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}},
                 "g"]])
            for name, args, _ in resp:
                if name == "error":
                    raise JmapError("emails: %r" % args)
            query, got = resp[0][1], resp[1][1]
            out.extend(got["list"])
            pos += len(query["ids"])
            if not query["ids"] or pos >= query["total"]:
                return out

    def states(self, user):
        """{"Email": state, "Mailbox": state} now."""
        acc = self.account_id(user)
        resp = self.call(user, None, [["Email/get", {"accountId": acc, "ids": []}, "e"],
                                      ["Mailbox/get", {"accountId": acc, "ids": []}, "m"]])
        return {"Email": resp[0][1]["state"], "Mailbox": resp[1][1]["state"]}

    # -- another client's changes ------------------------------------------------

    def set_keywords(self, user, email_id, keywords):
        """Replaces the Email's keywords with keywords ({"$seen": True, ...})."""
        self._set(user, "Email/set", {"accountId": self.account_id(user),
                                      "update": {email_id: {"keywords": dict(keywords)}}})

    def move(self, user, email_id, mailbox):
        """The Email is in mailbox (a path) only afterwards."""
        self._set(user, "Email/set", {
            "accountId": self.account_id(user),
            "update": {email_id: {"mailboxIds": {self.mailbox_id(user, mailbox): True}}}})

    def destroy(self, user, email_ids):
        """Destroys one Email id or a list of them (Cyrus expunges them at
        once, from every mailbox: no move to Trash)."""
        ids = [email_ids] if isinstance(email_ids, str) else list(email_ids)
        self._set(user, "Email/set", {"accountId": self.account_id(user), "destroy": ids})

    def create_mailbox(self, user, path):
        """Creates path (its parent must exist); returns the Mailbox id."""
        parent, _, name = path.rpartition("/")
        args = {"name": name, "parentId": self.mailbox_id(user, parent) if parent else None}
        out = self._set(user, "Mailbox/set", {"accountId": self.account_id(user),
                                              "create": {"c": args}})
        return out["created"]["c"]["id"]

    def rename_mailbox(self, user, path, new_path):
        """Renames (and, when the parent differs, moves) a mailbox."""
        parent, _, name = new_path.rpartition("/")
        self._set(user, "Mailbox/set", {
            "accountId": self.account_id(user),
            "update": {self.mailbox_id(user, path): {
                "name": name, "parentId": self.mailbox_id(user, parent) if parent else None}}})

    def destroy_mailbox(self, user, path):
        """Destroys a mailbox and the Emails that are only in it."""
        self._set(user, "Mailbox/set", {"accountId": self.account_id(user),
                                        "destroy": [self.mailbox_id(user, path)],
                                        "onDestroyRemoveEmails": True})

    # -- loading mail ---------------------------------------------------------------

    @staticmethod
    def imap_name(path):
        """The IMAP name of a JMAP path (altnamespace, "/" separator)."""
        top, sep, rest = path.partition("/")
        if top.lower() == "inbox":
            top = "INBOX"
        return fx.mutf7_encode(top + sep + rest)

    def import_messages(self, user, mailbox, messages, keywords=(), received=None):
        """Appends raw messages (bytes) to mailbox (a JMAP path) through
        IMAP MULTIAPPEND (LITERAL+, up to 500 messages per command) and
        returns their Email ids in order. keywords: JMAP keywords for every
        message, or one list per message. received: None (now) or one
        time.time() value per message (receivedAt, one-second resolution).
        Byte-identical messages are one Email in Cyrus: make them unique."""
        messages = list(messages)
        keywords = list(keywords)
        if keywords and not isinstance(keywords[0], str):
            per = [list(k) for k in keywords]
        else:
            per = [list(keywords)] * len(messages)
        if len(per) != len(messages):
            raise ValueError("keywords: %d lists for %d messages" % (len(per), len(messages)))
        box = _quote(self.imap_name(mailbox)).encode()
        conn = _Imap(self.imap_port, user, self.users[user])
        try:
            uids = []
            k = 0
            while k < len(messages):
                parts, size = [b"APPEND " + box], 0
                while k < len(messages) and len(parts) <= APPEND_BATCH and (
                        size == 0 or size + len(messages[k]) <= APPEND_BATCH_BYTES):
                    flags = " ".join(SYSTEM_FLAGS.get(w.lower(), w) for w in per[k])
                    date = b""
                    if received is not None:
                        date = b' "%s"' % time.strftime(
                            "%d-%b-%Y %H:%M:%S +0000", time.gmtime(received[k])).encode()
                    parts.append(b" (%s)%s {%d+}\r\n" % (flags.encode(), date, len(messages[k]))
                                 + messages[k])
                    size += len(messages[k])
                    k += 1
                _, tagged = conn.command(b"".join(parts))
                m = APPENDUID_RE.search(tagged)
                if m is None:
                    raise RuntimeError("APPEND without APPENDUID: %r" % tagged)
                uids.extend(_uid_set(m.group(1)))
            return self._email_ids(conn, box, uids)
        finally:
            conn.close()

    def _email_ids(self, conn, box, uids):
        """Email ids of uids in box, in the order of uids."""
        if not uids:
            return []
        conn.command(b"EXAMINE " + box)
        untagged, _ = conn.command(b"UID FETCH %d:%d (EMAILID)" % (min(uids), max(uids)))
        by_uid = {}
        for line in untagged:
            m = EMAILID_RE.search(line)
            if m:
                if m.group(1):
                    by_uid[int(m.group(1))] = m.group(2).decode()
                else:
                    by_uid[int(m.group(4))] = m.group(3).decode()
        return [by_uid[u] for u in uids]

    # -- push, blobs, submission -----------------------------------------------

    def eventsource(self, user, types="*"):
        """(HTTP status, headers, body) of the session's eventSourceUrl with
        closeafter=state, ping=0. Cyrus 3.6 as Debian builds it answers 204:
        no push over JMAP; clients must poll (Email/changes)."""
        url = self.session(user)["eventSourceUrl"]
        for k, v in (("types", types), ("closeafter", "state"), ("ping", "0")):
            url = url.replace("{%s}" % k, urllib.parse.quote(v, safe="*"))
        return self.http(user, url)

    def download(self, user, blob_id, name="blob", type="application/octet-stream"):
        url = self.session(user)["downloadUrl"]
        for k, v in (("accountId", self.account_id(user)), ("blobId", blob_id),
                     ("name", name), ("type", type)):
            url = url.replace("{%s}" % k, urllib.parse.quote(v, safe=""))
        status, _, body = self.http(user, url)
        if status != 200:
            raise JmapError("download %s: HTTP %d" % (blob_id, status))
        return body

    def send(self, user, to, subject, text):
        """A draft created in Drafts and sent by EmailSubmission/set through
        Cyrus's smtp_host (self.sink), then moved to Sent. Returns the
        Email id. Identity/get's email is empty on Cyrus: the envelope is
        given."""
        acc = self.account_id(user)
        drafts, sent = self.mailbox_id(user, "Drafts"), self.mailbox_id(user, "Sent")
        me = "%s@localhost" % user
        resp = self.call(user, None, [
            ["Email/set", {"accountId": acc, "create": {"d": {
                "mailboxIds": {drafts: True}, "keywords": {"$draft": True, "$seen": True},
                "from": [{"email": me}], "to": [{"email": to}], "subject": subject,
                "bodyValues": {"b": {"value": text}},
                "textBody": [{"partId": "b", "type": "text/plain"}]}}}, "c"],
            ["EmailSubmission/set", {"accountId": acc, "create": {"s": {
                "identityId": user, "emailId": "#d",
                "envelope": {"mailFrom": {"email": me}, "rcptTo": [{"email": to}]}}},
                "onSuccessUpdateEmail": {"#s": {"mailboxIds/%s" % drafts: None,
                                                "mailboxIds/%s" % sent: True,
                                                "keywords/$draft": None}}}, "s"]])
        for name, args, _ in resp:
            if name == "error" or args.get("notCreated"):
                raise JmapError("send: %r" % resp)
        return resp[0][1]["created"]["d"]["id"]

    def sent(self):
        """What Cyrus relayed to its SMTP sink (SmtpSink.messages())."""
        return self.sink.messages()


# -- command line ------------------------------------------------------------


def record(out_dir):
    """Saves real Cyrus answers, byte for byte, for the C parser's unit
    tests: session.json, mailbox_get.json (the properties jmap_common.c
    asks for; a nested mailbox), email_get.json (the properties jmap_sync.c
    asks for; a plain Email and one with a PDF attachment named in RFC
    2231) and email_changes.json (one Email created, one updated, one
    destroyed)."""
    from email.utils import formatdate
    os.makedirs(out_dir, exist_ok=True)
    with Cyrus() as cy:
        cy.add_user("alice", "alicepw")
        cy.create_mailbox("alice", "Work")
        cy.create_mailbox("alice", "Work/Projects")
        plain = (b"From: Ann Example <ann@example.org>\r\nTo: alice@localhost\r\n"
                 b"Subject: Plain\r\nDate: " + formatdate(1700000000).encode() +
                 b"\r\nMessage-ID: <plain.1@mailsync.test>\r\n\r\nHello\r\n")
        att, _, _ = fx.make_message(4, attach=True)  # PDF, filename*=utf-8''R%C3%A9sum%C3%A9
        ids = cy.import_messages("alice", "Inbox", [plain, att], ["$seen"])
        cy.import_messages("alice", "Work/Projects", [fx.make_message(6)[0]], ["$flagged"])
        acc = cy.account_id("alice")

        def save(name, body):
            json.loads(body)
            with open(os.path.join(out_dir, name), "wb") as f:
                f.write(body)

        save("session.json", cy.http("alice", cy.session_url)[2])
        save("mailbox_get.json", cy.call_raw("alice", None, [["Mailbox/get", {
            "accountId": acc, "ids": None,
            "properties": ["id", "name", "parentId", "role", "sortOrder"]}, "m"]]))
        save("email_get.json", cy.call_raw("alice", None, [["Email/get", {
            "accountId": acc, "ids": ids,
            "properties": ["id", "blobId", "mailboxIds", "keywords", "messageId", "subject",
                           "from", "to", "cc", "receivedAt", "sentAt", "size", "hasAttachment",
                           "attachments"],
            "bodyProperties": ["partId", "size", "name", "type", "disposition", "cid"]}, "g"]]))
        since = cy.states("alice")["Email"]
        cy.set_keywords("alice", ids[0], {"$seen": True, "$flagged": True})
        cy.destroy("alice", ids[1])
        cy.import_messages("alice", "Inbox", [fx.make_message(8)[0]], [])
        save("email_changes.json", cy.call_raw("alice", None, [["Email/changes", {
            "accountId": acc, "sinceState": since}, "c"]]))


def load(n):
    """Times add_user + import_messages of n realistic messages + emails()."""
    msgs = [fx.make_message(i)[0] for i in range(n)]
    with Cyrus() as cy:
        print("start: %.3f s" % cy.start_seconds)
        cy.add_user("bench", "benchpw")
        t0 = time.time()
        ids = cy.import_messages("bench", "Inbox", msgs, ["$seen"])
        t1 = time.time()
        print("import_messages: %d messages (%.1f MB) in %.2f s (%.0f msg/s)" % (
            n, sum(map(len, msgs)) / 1e6, t1 - t0, n / (t1 - t0)))
        got = cy.emails("bench")
        print("emails(): %d Emails in %.2f s" % (len(got), time.time() - t1))
        assert len(set(ids)) == n == len(got), (len(set(ids)), len(got))
    print("stop: %.3f s" % cy.stop_seconds)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        record(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "load":
        load(int(sys.argv[2]))
    else:
        sys.exit("usage: cyrus.py record DIR | load N")
