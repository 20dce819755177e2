"""Test mail for the end-to-end tests, the demo and the benchmarks.

Builds realistic RFC 5322 messages (encoded-word subjects, multipart with
attachments, RFC 2231 file names), seeds them into a real IMAP server, and
reads a server's state back for comparison with mailsync's SQLite.
Standard library only.
"""
import base64
import email.header
import imaplib
import random
import re
import socket
import time

# -- modified UTF-7 (RFC 3501 5.1.3) ---------------------------------------


def mutf7_encode(s):
    out, buf = [], []

    def flush():
        if buf:
            b = "".join(buf).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode().rstrip("=").replace("/", ",") + "-")
            buf.clear()

    for ch in s:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "&":
            j = s.index("-", i)
            if j == i + 1:
                out.append("&")
            else:
                b64 = s[i + 1:j].replace(",", "/")
                b64 += "=" * (-len(b64) % 4)
                out.append(base64.b64decode(b64).decode("utf-16-be"))
            i = j + 1
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


# -- messages ----------------------------------------------------------------

WORDS = ("alpha beta gamma delta budget meeting report invoice travel "
         "release review draft notes quarterly planning lunch update "
         "contract offer schedule design question answer").split()


def _date(i):
    t = 1700000000 + i * 3607
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t))


def encoded_subject(text, charset="utf-8", enc="B"):
    raw = text.encode(charset)
    if enc == "B":
        return "=?%s?B?%s?=" % (charset, base64.b64encode(raw).decode())
    q = "".join(chr(c) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122)
                else ("_" if c == 32 else "=%02X" % c) for c in raw)
    return "=?%s?Q?%s?=" % (charset, q)


def make_message(i, rng=None, attach=None, subject=None, body_kb=1):
    """Returns (bytes, expected_decoded_subject, has_attachment)."""
    rng = rng or random.Random(i)
    kind = i % 5
    words = " ".join(rng.choice(WORDS) for _ in range(4))
    if subject is not None:
        subj_hdr, subj = subject, str(email.header.make_header(email.header.decode_header(subject)))
    elif kind == 1:
        subj = "Grüße aus Köln %d — %s" % (i, words)
        subj_hdr = encoded_subject(subj)
    elif kind == 2:
        subj = "Café résumé %d" % i
        subj_hdr = encoded_subject(subj, "iso-8859-1", "Q")
    elif kind == 3:
        subj = "Отчёт за неделю %d" % i
        subj_hdr = encoded_subject(subj, "utf-8", "Q")
    else:
        subj = "Message %d: %s" % (i, words)
        subj_hdr = subj
    has_att = attach if attach is not None else (kind == 4)
    frm = '"Ann Example %d" <ann%d@example.org>' % (i % 7, i % 7)
    to = "bob@example.net, =?utf-8?B?%s?= <carol@example.com>" % (
        base64.b64encode("Carol Müller".encode()).decode())
    hdrs = [
        "From: %s" % frm,
        "To: %s" % to,
        "Cc: dave@example.com",
        "Subject: %s" % subj_hdr,
        "Date: %s" % _date(i),
        "Message-ID: <msg%d.%d@mailsync.test>" % (i, rng.randrange(1 << 30)),
        "MIME-Version: 1.0",
    ]
    text = ("Hello,\r\n\r\n" + " ".join(rng.choice(WORDS) for _ in range(12)) + "\r\n") * max(1, body_kb * 1024 // 90)
    if has_att:
        blob = base64.b64encode(bytes(rng.randrange(256) for _ in range(600))).decode()
        body = ("Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n"
                "--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"
                "--b%d\r\nContent-Type: application/pdf; name=\"r%d.pdf\"\r\n"
                "Content-Disposition: attachment; filename*=utf-8''R%%C3%%A9sum%%C3%%A9%d.pdf\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b%d--\r\n") % (
                    i, i, text, i, i, i, blob, i)
        msg = "\r\n".join(hdrs) + "\r\n" + body
    else:
        msg = "\r\n".join(hdrs) + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text
    return msg.encode("utf-8"), subj, has_att


# -- seeding -----------------------------------------------------------------


def connect(port, user, host="127.0.0.1"):
    m = imaplib.IMAP4(host, port)
    m.login(user, "pass")
    return m


def q(name):
    return '"' + mutf7_encode(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


def create(m, name):
    typ, data = m.create(q(name))
    if typ != "OK" and b"exists" not in b" ".join(d or b"" for d in data).lower():
        raise RuntimeError("CREATE %s: %s" % (name, data))


def fast_append(port, user, mailbox, messages, flags=None, host="127.0.0.1"):
    """MULTIAPPEND (RFC 3502) with LITERAL+ literals, 500 messages per
    command: about 1,000 messages per second into a local Dovecot."""
    s = socket.create_connection((host, port))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN %s pass\r\n" % user.encode())
    line = f.readline()
    while not line.startswith(b"a "):
        line = f.readline()
    if b" OK" not in line:
        raise RuntimeError("LOGIN failed: %r" % line)
    box = q(mailbox).encode()
    messages = list(messages)
    for start in range(0, len(messages), 500):
        parts = [b"m APPEND " + box]
        for k in range(start, min(len(messages), start + 500)):
            fl = (flags[k] if flags else "").encode()
            parts.append(b" (%s) {%d+}\r\n" % (fl, len(messages[k])) + messages[k])
        s.sendall(b"".join(parts) + b"\r\n")
        line = f.readline()
        while not line.startswith(b"m "):
            if not line:
                raise RuntimeError("server closed during APPEND")
            line = f.readline()
        if b" OK" not in line:
            raise RuntimeError("APPEND failed: %r" % line)
    s.sendall(b"z LOGOUT\r\n")
    s.close()


STANDARD_FOLDERS = ["Work", "Work/Projects", "Archive", "Archive/2024",
                    "Entwürfe Ünïcode", "Отчёты", "Sent"]


def seed_standard(port, user, per_folder=12):
    """The fixture the tests share: nested and non-ASCII folders, encoded
    subjects, attachments, flags and custom keywords."""
    m = connect(port, user)
    for name in STANDARD_FOLDERS:
        if name != "Sent":
            create(m, name)
    # Dovecot creates its auto special-use folders on first access; two
    # sessions doing that at once can deadlock it (2.3.19 panics), so
    # the seeding session touches them first.
    for name in ("Drafts", "Sent", "Trash", "Junk"):
        m.select(q(name), readonly=True)
    m.logout()
    i = 0
    for name in ["INBOX"] + STANDARD_FOLDERS:
        msgs, flags = [], []
        for k in range(per_folder):
            raw, _, _ = make_message(i)
            msgs.append(raw)
            fl = []
            if k % 3 == 0:
                fl.append("\\Seen")
            if k % 4 == 1:
                fl.append("\\Flagged")
            if k % 5 == 2:
                fl.append("$Label1 Important")
            if k % 7 == 3:
                fl.append("\\Answered")
            flags.append(" ".join(fl))
            i += 1
        fast_append(port, user, name, msgs, flags)


# -- reading the server back ---------------------------------------------------

FETCH_RE = re.compile(rb"UID (\d+)")
FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")


def server_state(port, user):
    """{mailbox: {uid: (frozenset(flags), subject)}} for every selectable
    mailbox, subjects decoded the way RFC 2047 says."""
    m = connect(port, user)
    typ, data = m.list('""', '"*"')
    names = []
    for line in data:
        if line is None:
            continue
        if isinstance(line, tuple):
            attrs, rest = line[0], line[1]
            name = rest.decode()
        else:
            mo = re.match(rb'\(([^)]*)\) (NIL|"[^"]*") (.*)$', line)
            attrs, name = mo.group(1), mo.group(3).decode()
            if name.startswith('"'):
                name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if b"\\Noselect" in attrs or b"\\NonExistent" in attrs:
            continue
        names.append(mutf7_decode(name))
    state = {}
    for name in names:
        typ, _ = m.select(q(name), readonly=True)
        assert typ == "OK", name
        msgs = {}
        typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            uid = int(FETCH_RE.search(head).group(1))
            fl = FLAGS_RE.search(head).group(1).decode().split()
            fl = frozenset(f for f in fl if f != "\\Recent")
            hdr = body.decode("utf-8", "replace")
            subj = hdr.split(":", 1)[1].strip() if ":" in hdr else ""
            subj = re.sub(r"\r?\n[ \t]", " ", subj)
            subj = str(email.header.make_header(email.header.decode_header(subj))) if subj else ""
            msgs[uid] = (fl, subj)
        state[name] = msgs
    m.logout()
    return state
