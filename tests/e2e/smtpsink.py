"""A small SMTP server for the end-to-end tests (standard library only).

SmtpSink(...) listens on 127.0.0.1 at a free port in a thread of the test
process. It speaks enough ESMTP for libcurl: EHLO/HELO (8BITMIME, SIZE,
AUTH PLAIN LOGIN, and STARTTLS when given a certificate), STARTTLS, AUTH
PLAIN/LOGIN (checked against user/password when given), MAIL, RCPT, DATA
(dot-unstuffed), RSET, NOOP, QUIT. Every message it accepts (answered 250
to the end of DATA) is kept as a pair of files in `dir`: NNNN.json (the
envelope) and NNNN.eml (the data, byte for byte).

Faults, from the constructor or set_fault() at any time (a test changes
them between sends):
  "reject_rcpt"      550 to every RCPT (5xx before DATA: the send is dead)
  "tempfail_rcpt"    451 to every RCPT (4xx before DATA: retried later)
  "reject_data"      554 to the end of DATA (refused after the data)
  "drop_after_data"  the connection is closed after the data arrived,
                     before any reply (the client cannot know: uncertain)
  "stall_after_data" no reply to the end of DATA until stop() or set_fault()
                     (then the connection is closed): a test kills the
                     client while it waits; `stalled` is set meanwhile
autosave=True APPENDs each accepted message to the IMAP user's Sent folder
(imaplib) before the 250, like a server that keeps sent mail itself.
"""
import base64
import imaplib
import json
import os
import re
import socketserver
import ssl
import tempfile
import threading
import time

FAULTS = (None, "reject_rcpt", "tempfail_rcpt", "reject_data", "drop_after_data",
          "stall_after_data")
MAX_LINE = 64 * 1024
MAX_SIZE = 50 * 1024 * 1024
ADDR_RE = re.compile(r"^(MAIL FROM|RCPT TO):\s*<([^>]*)>(.*)$", re.I)


class _Handler(socketserver.StreamRequestHandler):
    timeout = 60

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(MAX_LINE)
        if not line:
            raise EOFError()
        return line

    def handle(self):
        sink = self.server.sink
        self.tls = False
        self.authed = False
        self.reset()
        try:
            self.reply("220 sink.test ESMTP mailsync test sink")
            while True:
                line = self.readline().decode("utf-8", "replace").rstrip("\r\n")
                sink._log("C: " + (line if not line.upper().startswith("AUTH") else "AUTH ..."))
                verb = line.split(" ", 1)[0].upper()
                arg = line[len(verb) + 1:] if " " in line else ""
                if not self.dispatch(sink, verb, arg, line):
                    return
        except (EOFError, ConnectionError, ssl.SSLError, OSError):
            return

    def reset(self):
        self.mail_from = None
        self.rcpt = []

    def dispatch(self, sink, verb, arg, line):
        if verb == "EHLO":
            caps = ["sink.test", "8BITMIME", "SIZE %d" % MAX_SIZE]
            if sink.context is not None and not self.tls:
                caps.append("STARTTLS")
            caps.append("AUTH PLAIN LOGIN")
            caps.append("HELP")
            self.reply("\r\n".join("250-" + c for c in caps[:-1]) + "\r\n250 " + caps[-1])
        elif verb == "HELO":
            self.reply("250 sink.test")
        elif verb == "STARTTLS":
            if sink.context is None or self.tls:
                self.reply("502 5.5.1 STARTTLS not available")
                return True
            self.reply("220 2.0.0 Ready to start TLS")
            conn = sink.context.wrap_socket(self.request, server_side=True)
            self.request = conn
            self.rfile = conn.makefile("rb")
            self.wfile = conn.makefile("wb")
            self.tls = True
            self.authed = False
            self.reset()
        elif verb == "AUTH":
            self.auth(sink, arg)
        elif verb == "MAIL":
            m = ADDR_RE.match(line)
            if m is None or m.group(1).upper() != "MAIL FROM":
                self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
            elif sink.user is not None and not self.authed:
                self.reply("530 5.7.0 Authentication required")
            else:
                self.reset()
                self.mail_from = m.group(2)
                self.reply("250 2.1.0 Ok")
        elif verb == "RCPT":
            m = ADDR_RE.match(line)
            if self.mail_from is None:
                self.reply("503 5.5.1 Error: need MAIL command")
            elif m is None or m.group(1).upper() != "RCPT TO":
                self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
            elif sink.fault == "reject_rcpt":
                self.reply("550 5.1.1 <%s>: Recipient address rejected: User unknown in "
                           "virtual mailbox table" % m.group(2))
            elif sink.fault == "tempfail_rcpt":
                self.reply("451 4.3.0 <%s>: Temporary lookup failure" % m.group(2))
            else:
                self.rcpt.append(m.group(2))
                self.reply("250 2.1.5 Ok")
        elif verb == "DATA":
            if not self.rcpt:
                self.reply("503 5.5.1 Error: need RCPT command")
                return True
            self.reply("354 End data with <CR><LF>.<CR><LF>")
            return self.data(sink)
        elif verb == "RSET":
            self.reset()
            self.reply("250 2.0.0 Ok")
        elif verb == "NOOP":
            self.reply("250 2.0.0 Ok")
        elif verb == "QUIT":
            self.reply("221 2.0.0 Bye")
            return False
        else:
            self.reply("502 5.5.2 Error: command not recognized")
        return True

    def auth(self, sink, arg):
        parts = arg.split()
        mech = parts[0].upper() if parts else ""
        if self.authed:
            self.reply("503 5.5.1 Error: already authenticated")
            return
        if mech == "PLAIN":
            resp = parts[1] if len(parts) > 1 else None
            if resp is None:
                self.reply("334 ")
                resp = self.readline().decode().strip()
            try:
                _, user, password = base64.b64decode(resp).decode().split("\0")
            except ValueError:
                self.reply("501 5.5.2 Cannot decode response")
                return
        elif mech == "LOGIN":
            if len(parts) > 1:
                user = base64.b64decode(parts[1]).decode()
            else:
                self.reply("334 VXNlcm5hbWU6")
                user = base64.b64decode(self.readline().strip()).decode()
            self.reply("334 UGFzc3dvcmQ6")
            password = base64.b64decode(self.readline().strip()).decode()
        else:
            self.reply("504 5.5.4 Unrecognized authentication type")
            return
        sink.auths.append(user)
        if sink.user is not None and (user != sink.user or password != sink.password):
            self.reply("535 5.7.8 Error: authentication failed")
            return
        self.authed = True
        self.reply("235 2.7.0 Authentication successful")

    def data(self, sink):
        chunks, size = [], 0
        while True:
            line = self.readline()
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]  # dot-unstuffing (RFC 5321 4.5.2)
            size += len(line)
            if size <= MAX_SIZE:
                chunks.append(line)
        data = b"".join(chunks)
        fault = sink.fault
        if fault in ("drop_after_data", "stall_after_data"):
            sink.dropped.append(data)
            if fault == "stall_after_data":
                sink.stalled.set()
                sink._unstall.wait(120)
            sink._log("dropping the connection after %d bytes of data" % len(data))
            return False
        if size > MAX_SIZE:
            self.reply("552 5.3.4 Message size exceeds fixed limit")
        elif fault == "reject_data":
            self.reply("554 5.7.1 Message rejected: spam score too high")
        else:
            if sink.autosave:
                sink._save_sent(data)
            n = sink._record(self.mail_from, self.rcpt, data, self.tls, self.authed)
            self.reply("250 2.0.0 Ok: queued as SINK%04d" % n)
        self.reset()
        return True


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SmtpSink:
    """An SMTP server in a thread; stop() it at the end."""

    def __init__(self, dir=None, user=None, password=None, cert=None, key=None,
                 fault=None, autosave=False, imap_port=None, imap_user=None,
                 imap_password="pass", sent="Sent"):
        self.dir = dir or tempfile.mkdtemp(prefix="mailsync-smtpsink-")
        os.makedirs(self.dir, exist_ok=True)
        self.user, self.password = user, password
        self.context = None
        if cert is not None:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(cert, key)
        self.stalled = threading.Event()  # a DATA is held (stall_after_data)
        self._unstall = threading.Event()
        self.set_fault(fault)
        self.autosave = autosave
        self.imap = (imap_port, imap_user, imap_password, sent)
        self.auths = []    # every user name that tried AUTH
        self.dropped = []  # data of connections dropped after DATA
        self.transcript = []
        self._lock = threading.Lock()
        self._n = 0
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.sink = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def set_fault(self, fault):
        if fault not in FAULTS:
            raise ValueError("unknown fault %r (one of %r)" % (fault, FAULTS))
        self.fault = fault
        if fault == "stall_after_data":
            self._unstall.clear()
        else:
            self._unstall.set()

    def stop(self):
        self._unstall.set()
        self.server.shutdown()
        self.server.server_close()

    def _log(self, line):
        with self._lock:
            self.transcript.append(line)

    def _record(self, mail_from, rcpt, data, tls, authed):
        with self._lock:
            self._n += 1
            n = self._n
        base = os.path.join(self.dir, "%04d" % n)
        with open(base + ".eml", "wb") as f:
            f.write(data)
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": mail_from, "rcpt": list(rcpt), "size": len(data),
                       "tls": tls, "authed": authed, "at": time.time()}, f)
        return n

    def _save_sent(self, data):
        port, user, password, sent = self.imap
        if port is None:
            raise RuntimeError("autosave needs imap_port and imap_user")
        m = imaplib.IMAP4("127.0.0.1", port)
        try:
            m.login(user, password)
            typ, resp = m.append('"%s"' % sent, "(\\Seen)", None, data)
            if typ != "OK":
                raise RuntimeError("autosave APPEND: %r" % resp)
        finally:
            m.logout()

    def messages(self):
        """Every accepted message, oldest first: dicts with mail_from,
        rcpt, tls, authed and data (bytes)."""
        out = []
        for name in sorted(os.listdir(self.dir)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(self.dir, name)) as f:
                env = json.load(f)
            with open(os.path.join(self.dir, name[:-5] + ".eml"), "rb") as f:
                env["data"] = f.read()
            out.append(env)
        return out
