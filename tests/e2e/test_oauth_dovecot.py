"""End-to-end: OAuth 2.0 against a real Dovecot whose oauth2 passdb asks a
tiny local token-introspection server (http.server on 127.0.0.1)."""
import http.server
import json
import threading
import unittest
import urllib.parse

import mailfixture as fx
from harness import Dovecot, Pipeline, wait_for

TOKENS = {"good-token-carol": "carol"}


class Introspect(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = urllib.parse.parse_qs(self.rfile.read(n).decode())
        tok = (body.get("token") or [""])[0]
        Introspect.seen.append(tok)
        user = TOKENS.get(tok)
        out = json.dumps({"active": True, "username": user} if user else {"active": False})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out.encode())

    def log_message(self, *args):
        pass


class OAuthDovecotTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Introspect)
        threading.Thread(target=cls.http.serve_forever, daemon=True).start()
        url = "http://127.0.0.1:%d/introspect" % cls.http.server_address[1]
        cls.dovecot = Dovecot(oauth2_url=url)
        fx.seed_standard(cls.dovecot.port, "carol")
        cls.p = Pipeline(workers=1, lease=30)

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.dovecot.stop()
        cls.p.cleanup()
        cls.http.shutdown()

    def add(self, name, token):
        tf = self.p.password_file(token)
        self.p.submit("account", "add", name, "--imap", "imap://127.0.0.1:%d" % self.dovecot.port,
                      "--user", "carol", "--token-file", tf, "--plaintext", check=0)

    def job(self, name):
        return wait_for(lambda: (lambda r: r[0] if r and r[0]["state"] in ("done", "failed", "dead")
                                 else None)(self.p.query(
            "SELECT j.state, j.last_error FROM jobs j JOIN accounts a ON a.id = j.account_id "
            "WHERE a.name = ? ORDER BY j.id DESC LIMIT 1", name)), 60, "job of %s" % name)

    def test_good_token_syncs(self):
        self.add("carol-oauth", "good-token-carol")
        j = self.job("carol-oauth")
        self.assertEqual(j["state"], "done", j["last_error"])
        server = fx.server_state(self.dovecot.port, "carol")
        local = self.p.local_state("carol-oauth")
        self.assertEqual(sorted(server), sorted(local))
        for box in server:
            self.assertEqual(sorted(server[box]), sorted(local[box]), box)
        self.assertIn("good-token-carol", Introspect.seen)

    def test_bad_token_fails_clearly(self):
        self.add("carol-bad", "revoked-token")
        j = self.job("carol-bad")
        self.assertEqual(j["state"], "failed")
        self.assertRegex(j["last_error"], r"^authentication failed: ")
        self.assertNotIn("revoked-token", j["last_error"])
        print("  bad token: %s" % j["last_error"])


if __name__ == "__main__":
    unittest.main()
