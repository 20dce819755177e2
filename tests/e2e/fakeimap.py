"""fakeimap: a scriptable IMAP server for fault tests (standard library only).

It listens on 127.0.0.1 (a free port) in a background thread and serves
each connection from the scenario current at the time the client connected
(`server.scenario = ...` switches scenarios between syncs). Every line a
client sends is recorded in `server.received` (list of str, CRLF stripped),
so a test can check exact SASL strings.

A scenario is data, in the spirit of curl's tests/data files:

    {
      "greeting": "* OK [CAPABILITY {caps}] fake ready",  # None: never sent
      "caps": "IMAP4rev1 LITERAL+",
      "rules": [(r"^LOGIN ", ["{tag} NO [AUTHENTICATIONFAILED] no"]), ...],
      "mailboxes": {"INBOX": [(uid, r"\\Seen", "subject"), ...]},
    }

A client command "TAG TEXT" is matched against each rule's regular
expression (re.search on TEXT, case-insensitive) in order; the first match
runs its actions; then come the default rules (CAPABILITY, LOGIN OK,
AUTHENTICATE PLAIN OK, LIST / EXAMINE / UID FETCH served from "mailboxes",
NOOP, LOGOUT), and anything else is "TAG BAD unknown command". Actions:

    "text"                    one line; {tag} {caps} {cmd} substituted,
                              CRLF appended
    ("raw", b"bytes")         bytes as they are (no CRLF added)
    ("expect", REGEX)         read the client's next line (a SASL response);
                              a mismatch answers "TAG BAD" and closes
    ("close",)                close the connection at once
    ("hang",)                 send nothing more; wait for the client to go
    ("endless", "prefix")     prefix, then an endless line of 'a' (64 KiB
                              chunks, stopped by the client's close or
                              after 1 GiB)
    ("drip", SECONDS)         "* OK still here" every SECONDS, forever
    ("literal_cut", "prefix", TOTAL, SENT)
                              prefix + "{TOTAL}\\r\\n" + SENT bytes, close
    ("list",)                 "* LIST" lines for every mailbox
    ("examine",)              EXISTS/UIDVALIDITY/UIDNEXT of the mailbox
                              named in the command, then "TAG OK"; NO for
                              an unknown mailbox
    ("fetch",)                FETCH responses for the UID range of the
                              command in the EXAMINEd mailbox (full items
                              or flags, as asked), then "TAG OK"
    ("fetch_one",)            only the first FETCH response of ("fetch",),
                              without the tagged completion
"""
import base64
import re
import socket
import threading
import time

UIDVALIDITY = 7001
ENDLESS_CAP = 1 << 30


def good(mailboxes=None, caps="IMAP4rev1 LITERAL+ SASL-IR"):
    """A well-behaved server with a small account."""
    if mailboxes is None:
        mailboxes = {
            "INBOX": [(1, "\\Seen", "hello one"), (2, "", "hello two"),
                      (3, "\\Flagged $Work", "hello three")],
            "Archive": [(1, "\\Seen", "old news")],
        }
    return {"greeting": "* OK [CAPABILITY {caps}] fake ready", "caps": caps,
            "rules": [], "mailboxes": mailboxes}


def scenario(rules, greeting="* OK [CAPABILITY {caps}] fake ready",
             caps="IMAP4rev1 LITERAL+ SASL-IR", mailboxes=None):
    s = good(mailboxes, caps)
    s["rules"] = list(rules)
    s["greeting"] = greeting
    return s


# The fault catalogue: name -> scenario. The e2e tests run each one.
FAULTS = {
    "greeting_hangs": scenario([], greeting=None),
    "greeting_garbage": scenario([], greeting="HTTP/1.1 400 Bad Request"),
    "login_no": scenario([(r"^LOGIN ", [
        "{tag} NO [AUTHENTICATIONFAILED] Invalid credentials (fake)"])]),
    "bye_mid_fetch": scenario([(r"^UID FETCH ", [
        ("fetch_one",), "* BYE [UNAVAILABLE] fake server shutting down",
        ("close",)])]),
    "huge_literal": scenario([(r"^UID FETCH ", [
        ("raw", b"* 1 FETCH (UID 1 BODY[] {10737418240}\r\n"), ("hang",)])]),
    "literal_cut": scenario([(r"^UID FETCH ", [
        ("literal_cut", "* 1 FETCH (UID 1 BODY[] ", 200000, 5000)])]),
    "endless_line": scenario([(r"^UID FETCH ", [("endless", "* OK ")])]),
    "malformed_fetch": scenario([(r"^UID FETCH ", [
        "* 1 FETCH (UID 1 FLAGS (\\Seen) ENVELOPE (\"broken\"))",
        "{tag} OK done"])]),
    "unknown_tag": scenario([(r"^LIST ", [("list",), "X999 OK LIST done"])]),
    "drip_forever": scenario([(r"^UID FETCH ", [("fetch_one",), ("drip", 0.3)])]),
    "examine_bad": scenario([(r"^EXAMINE ", [
        "{tag} BAD [SERVERBUG] internal error (fake)"])]),
}


def b64(raw):
    return base64.b64encode(raw.encode("utf-8") if isinstance(raw, str) else raw).decode("ascii")


def oauthbearer_ir(user, port, token, host="127.0.0.1"):
    """The exact RFC 7628 initial client response mailsync must send."""
    return b64("n,a=%s,\x01host=%s\x01port=%d\x01auth=Bearer %s\x01\x01" % (
        user.replace("=", "=3D").replace(",", "=2C"), host, port, token))


def xoauth2_ir(user, token):
    return b64("user=%s\x01auth=Bearer %s\x01\x01" % (user, token))


def _envelope(uid, subject):
    return ('("Mon, 1 Jan 2024 10:%02d:00 +0000" "%s" (("Alice" NIL "alice" "example.com")) '
            '(("Alice" NIL "alice" "example.com")) (("Alice" NIL "alice" "example.com")) '
            '(("Bob" NIL "bob" "example.com")) NIL NIL NIL "<m%d@fake.example>")'
            % (uid % 60, subject, uid))


def _fetch_line(seq, uid, flags, subject, full):
    if not full:
        return "* %d FETCH (UID %d FLAGS (%s))" % (seq, uid, flags)
    return ('* %d FETCH (UID %d FLAGS (%s) INTERNALDATE "01-Jan-2024 10:00:00 +0000" '
            'RFC822.SIZE %d ENVELOPE %s BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") '
            'NIL NIL "7bit" 42 2 NIL NIL NIL NIL))'
            % (seq, uid, flags, 100 + uid, _envelope(uid, subject)))


class _Conn:
    def __init__(self, server, sock, sc):
        self.server = server
        self.sock = sock
        self.sc = sc
        self.rbuf = b""
        self.selected = None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def readline(self):
        """One client line (CRLF stripped), literals folded in; None at EOF."""
        out = b""
        while True:
            while b"\n" not in self.rbuf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None
                self.rbuf += chunk
                if len(self.rbuf) > 1 << 20:
                    return None
            line, self.rbuf = self.rbuf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            m = re.search(rb"\{(\d+)(\+?)\}$", line)
            if not m:
                out += line
                break
            n = int(m.group(1))
            if not m.group(2):
                self.send("+ go ahead\r\n")
            while len(self.rbuf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None
                self.rbuf += chunk
            out += line + b"\r\n" + self.rbuf[:n]
            self.rbuf = self.rbuf[n:]
        text = out.decode("utf-8", "replace")
        self.server.received.append(text)
        return text

    def fmt(self, s, tag, cmd):
        return s.replace("{tag}", tag).replace("{caps}", self.sc["caps"]).replace("{cmd}", cmd)

    def serve(self):
        g = self.sc.get("greeting")
        if g is None:
            self.hang()
            return
        self.send(self.fmt(g, "*", "") + "\r\n")
        while True:
            line = self.readline()
            if line is None:
                return
            tag, _, cmd = line.partition(" ")
            actions = self.match(cmd)
            if not self.run(actions, tag, cmd):
                return

    def match(self, cmd):
        for rx, actions in list(self.sc.get("rules", [])) + DEFAULT_RULES:
            if re.search(rx, cmd, re.I):
                return actions
        return ["{tag} BAD unknown command"]

    def hang(self):
        self.sock.settimeout(None)
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass

    def run(self, actions, tag, cmd):
        """Runs actions; False when the connection is to end."""
        for a in actions:
            if isinstance(a, str):
                self.send(self.fmt(a, tag, cmd) + "\r\n")
                continue
            op = a[0]
            if op == "raw":
                self.send(a[1])
            elif op == "expect":
                got = self.readline()
                if got is None:
                    return False
                if not re.fullmatch(a[1], got):
                    self.send("%s BAD unexpected %r\r\n" % (tag, got[:80]))
                    return False
            elif op == "close":
                return False
            elif op == "hang":
                self.hang()
                return False
            elif op == "endless":
                self.send(a[1])
                chunk = b"a" * 65536
                sent = 0
                try:
                    while sent < ENDLESS_CAP:
                        self.sock.sendall(chunk)
                        sent += len(chunk)
                except OSError:
                    pass
                self.server.endless_sent = sent
                return False
            elif op == "drip":
                # A slow-loris server: a harmless line every a[1] seconds,
                # forever (until the client leaves), never completing.
                try:
                    while True:
                        self.send("* OK still here\r\n")
                        time.sleep(a[1])
                except OSError:
                    pass
                return False
            elif op == "literal_cut":
                self.send("%s{%d}\r\n" % (a[1], a[2]))
                self.send(b"x" * a[3])
                time.sleep(0.2)
                return False
            elif op == "list":
                for name in self.sc["mailboxes"]:
                    self.send('* LIST () "/" "%s"\r\n' % name)
            elif op == "examine":
                m = re.match(r'EXAMINE "?([^" ]+)"?', cmd, re.I)
                name = m.group(1) if m else ""
                msgs = self.sc["mailboxes"].get(name)
                if msgs is None:
                    self.send("%s NO [NONEXISTENT] no such mailbox\r\n" % tag)
                    continue
                self.selected = name
                nxt = max([u for u, _, _ in msgs] + [0]) + 1
                self.send("* %d EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n"
                          "* OK [UIDNEXT %d] ok\r\n%s OK [READ-ONLY] done\r\n"
                          % (len(msgs), UIDVALIDITY, nxt, tag))
            elif op in ("fetch", "fetch_one"):
                for line in self.fetch_lines(cmd):
                    self.send(line + "\r\n")
                    if op == "fetch_one":
                        break
                if op == "fetch":
                    self.send("%s OK FETCH done\r\n" % tag)
            else:
                raise ValueError("unknown action %r" % (a,))
        return True

    def fetch_lines(self, cmd):
        m = re.match(r"UID FETCH (\d+):(\d+|\*) ", cmd, re.I)
        msgs = self.sc["mailboxes"].get(self.selected, [])
        if not m or not msgs:
            return []
        lo = int(m.group(1))
        hi = max(u for u, _, _ in msgs) if m.group(2) == "*" else int(m.group(2))
        if m.group(2) == "*" and lo > hi:
            lo = hi  # "N:*" always includes the highest UID
        full = "ENVELOPE" in cmd.upper()
        out = []
        for seq, (uid, flags, subj) in enumerate(msgs, 1):
            if lo <= uid <= hi:
                out.append(_fetch_line(seq, uid, flags, subj, full))
        return out


DEFAULT_RULES = [
    (r"^CAPABILITY$", ["* CAPABILITY {caps}", "{tag} OK CAPABILITY done"]),
    (r"^LOGIN ", ["{tag} OK [CAPABILITY {caps}] logged in"]),
    (r"^AUTHENTICATE PLAIN", ["{tag} OK logged in"]),
    (r"^AUTHENTICATE ", ["{tag} NO [AUTHENTICATIONFAILED] fakeimap: unexpected SASL exchange"]),
    (r"^LIST ", [("list",), "{tag} OK LIST done"]),
    (r"^EXAMINE ", [("examine",)]),
    (r"^UID FETCH ", [("fetch",)]),
    (r"^NOOP$", ["{tag} OK NOOP done"]),
    (r"^LOGOUT$", ["* BYE bye", "{tag} OK LOGOUT done", ("close",)]),
]


class FakeImap:
    def __init__(self, sc=None):
        self.scenario = sc if sc is not None else good()
        self.received = []
        self.connections = 0
        self.endless_sent = 0
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.url = "imap://127.0.0.1:%d" % self.port
        self.stopping = False
        self.socks = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            self.connections += 1
            self.socks.append(s)
            t = threading.Thread(target=self._serve, args=(s, self.scenario), daemon=True)
            t.start()

    def _serve(self, s, sc):
        c = _Conn(self, s, sc)
        try:
            c.serve()
        except OSError:
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


if __name__ == "__main__":
    import sys
    name = sys.argv[1] if len(sys.argv) > 1 else "good"
    srv = FakeImap(good() if name == "good" else FAULTS[name])
    print("fakeimap %s on %s" % (name, srv.url), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
