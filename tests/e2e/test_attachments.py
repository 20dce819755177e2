"""End-to-end: attachment metadata from a real Dovecot's BODYSTRUCTURE into
the attachments table, row by row (part numbers, RFC 2231/2047 file
names, MIME types, encoded sizes, dispositions, Content-IDs), and
messages.has_attachments agreeing with the rows."""
import base64
import unittest

import mailfixture as fx
from harness import Dovecot, Pipeline


def b64_lines(data):
    """Base64 in 76-column lines joined by CRLF (no trailing CRLF)."""
    s = base64.b64encode(data).decode()
    return "\r\n".join(s[i:i + 76] for i in range(0, len(s), 76))


def headers(n, subject, ctype):
    return ("From: ann@example.org\r\nTo: bob@example.net\r\n"
            "Subject: %s\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
            "Message-ID: <att%d@mailsync.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: %s\r\n\r\n" % (subject, n, ctype))


PDF = b64_lines(b"%PDF-1.4\n" + bytes(range(256)) * 3)
PNG = b64_lines(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
JPG = b64_lines(b"\xff\xd8\xff\xe0" + bytes(range(100, 250)))
INNER = ("From: carol@example.com\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n"
         "--in\r\nContent-Type: text/plain\r\n\r\ninner text\r\n"
         "--in\r\nContent-Type: application/pdf; name=\"inner.pdf\"\r\n"
         "Content-Disposition: attachment; filename=\"inner.pdf\"\r\n"
         "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--in--\r\n" % PDF)

# (subject, raw message, [(part, filename, mime_type, size, disposition,
# content_id)]); sizes are the encoded octets of each part's body.
MESSAGES = [
    ("nested", headers(1, "nested", "multipart/mixed; boundary=\"m\"") +
     "--m\r\nContent-Type: multipart/alternative; boundary=\"a\"\r\n\r\n"
     "--a\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
     "--a\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--a--\r\n"
     "--m\r\nContent-Type: application/pdf\r\n"
     "Content-Disposition: attachment; filename*0*=utf-8''%C3%9Cber;"
     " filename*1*=sicht%20; filename*2=\"2024.pdf\"\r\n"
     "Content-Transfer-Encoding: base64\r\n\r\n" + PDF + "\r\n"
     "--m\r\nContent-Type: image/jpeg; name=\"=?utf-8?B?" +
     base64.b64encode("Ströme.jpg".encode()).decode() + "?=\"\r\n"
     "Content-Transfer-Encoding: base64\r\n\r\n" + JPG + "\r\n--m--\r\n",
     [("2", "Übersicht 2024.pdf", "application/pdf", len(PDF), "attachment", None),
      ("3", "Ströme.jpg", "image/jpeg", len(JPG), None, None)]),
    ("inline image", headers(2, "inline image", "multipart/alternative; boundary=\"a\"") +
     "--a\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
     "--a\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n"
     "--r\r\nContent-Type: text/html\r\n\r\n<img src=\"cid:logo@mailsync.test\">\r\n"
     "--r\r\nContent-Type: IMAGE/PNG; name=\"logo.png\"\r\n"
     "Content-ID: <logo@mailsync.test>\r\n"
     "Content-Disposition: inline; filename=\"logo.png\"\r\n"
     "Content-Transfer-Encoding: base64\r\n\r\n" + PNG + "\r\n--r--\r\n--a--\r\n",
     [("2.2", "logo.png", "image/png", len(PNG), "inline", "<logo@mailsync.test>")]),
    ("forwarded", headers(3, "forwarded", "multipart/mixed; boundary=\"f\"") +
     "--f\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
     "--f\r\nContent-Type: message/rfc822\r\n"
     "Content-Disposition: attachment; filename=\"fwd.eml\"\r\n\r\n" + INNER +
     "\r\n--f--\r\n",
     [("2", "fwd.eml", "message/rfc822", len(INNER), "attachment", None)]),
    ("single part", headers(4, "single part", "application/pdf") .replace(
        "\r\n\r\n", "\r\nContent-Disposition: attachment; filename=\"only.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n", 1) + PDF,
     [("1", "only.pdf", "application/pdf", len(PDF), "attachment", None)]),
    ("plain", headers(5, "plain", "text/plain; charset=utf-8") + "no attachments\r\n", []),
]


class AttachmentsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dovecot = Dovecot()
        m = fx.connect(cls.dovecot.port, "attach")
        fx.create(m, "Attach")
        m.logout()
        raws = [raw.encode() for _, raw, _ in MESSAGES]
        # The shared fixture's message with an RFC 2231-named PDF.
        shared, _, has = fx.make_message(4)
        assert has
        fx.fast_append(cls.dovecot.port, "attach", "Attach", raws + [shared])
        cls.p = Pipeline(workers=1, lease=5, batch_rows=2)
        pw = cls.p.password_file()
        cls.p.submit("account", "add", "attach", "--imap",
                     "imap://127.0.0.1:%d" % cls.dovecot.port, "--user", "attach",
                     "--password-file", pw, "--plaintext", check=0)

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.dovecot.stop()
        cls.p.cleanup()

    def rows(self):
        return [tuple(r) for r in self.p.query(
            "SELECT m.uid, a.part, a.filename, a.mime_type, a.size, a.disposition,"
            " a.content_id FROM attachments a JOIN messages m ON m.id = a.message_id"
            " JOIN mailboxes x ON x.id = m.mailbox_id WHERE x.name = 'Attach'"
            " ORDER BY m.uid, a.part")]

    def expected(self):
        want = []
        for uid, (_, _, atts) in enumerate(MESSAGES, start=1):
            want += [(uid,) + a for a in atts]
        shared, _, _ = fx.make_message(4)
        b64 = shared.split(b"Content-Transfer-Encoding: base64\r\n\r\n")[1].split(b"\r\n--b4--")[0]
        want.append((len(MESSAGES) + 1, "2", "Résumé4.pdf", "application/pdf", len(b64),
                     "attachment", None))
        return want

    def test_01_rows_match_what_was_sent(self):
        self.p.submit("sync", "attach", "--wait", "--timeout", "60", check=0)
        self.assertEqual(self.rows(), self.expected())
        # has_attachments is true exactly for messages with rows.
        bad = self.p.query(
            "SELECT m.uid FROM messages m WHERE m.has_attachments !="
            " EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id)")
        self.assertEqual([tuple(r) for r in bad], [])
        n = self.p.query("SELECT COUNT(*) AS n FROM messages WHERE has_attachments = 1")[0]["n"]
        self.assertEqual(n, 5)

    def test_02_resync_and_new_message(self):
        # Nothing changed: the same rows; then one more message arrives.
        self.p.submit("sync", "attach", "--wait", "--timeout", "60", check=0)
        self.assertEqual(self.rows(), self.expected())
        raw = (headers(6, "late", "multipart/mixed; boundary=\"l\"") +
               "--l\r\nContent-Type: text/plain\r\n\r\nx\r\n"
               "--l\r\nContent-Type: text/csv; name=\"data.csv\"\r\n"
               "Content-Disposition: attachment\r\n\r\na,b\r\n1,2\r\n--l--\r\n")
        fx.fast_append(self.dovecot.port, "attach", "Attach", [raw.encode()])
        self.p.submit("sync", "attach", "--wait", "--timeout", "60", check=0)
        self.assertEqual(self.rows(), self.expected() + [
            (len(MESSAGES) + 2, "2", "data.csv", "text/csv", 8, "attachment", None)])


if __name__ == "__main__":
    unittest.main()
