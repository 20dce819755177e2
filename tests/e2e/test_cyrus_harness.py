"""The Cyrus harness itself (tests/e2e/cyrus.py): a real Cyrus 3.6 starts
beside a running Dovecot, a new user has the six autocreated mailboxes
with their roles, imported messages are all visible over JMAP with their
keywords, the session advertises an eventSourceUrl whose EventSource
answers 204 (Debian's Cyrus has no JMAP push: the C client must fall back
to polling), the helpers for another client's changes and for
EmailSubmission work, and Cyrus's quirks a JMAP client must expect."""
import socket
import unittest

import mailfixture as fx
from cyrus import ROLES, Cyrus, JmapError
from harness import Dovecot


def greeting(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        return s.makefile("rb").readline()


class CyrusHarnessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dovecot = Dovecot()
        try:
            cls.cy = Cyrus()
            cls.cy.add_user("alice", "alicepw")
            cls.cy.add_user("bob", "bobpw")
        except Exception:
            cls.dovecot.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cy.stop()
        cls.dovecot.stop()

    def test_beside_dovecot(self):
        self.assertIn(b"Dovecot", greeting(self.dovecot.port))
        self.assertIn(b"Cyrus IMAP 3.6", greeting(self.cy.imap_port))
        self.assertNotEqual(self.cy.imap_port, self.dovecot.port)
        self.assertLess(self.cy.start_seconds, 5)

    def test_autocreated_mailboxes(self):
        boxes = self.cy.mailboxes("bob")
        self.assertEqual(sorted(boxes), sorted(ROLES))
        for path, role in ROLES.items():
            self.assertEqual(boxes[path]["role"], role, path)
            self.assertIsNone(boxes[path]["parentId"], path)
        self.assertEqual(len(set(b["id"] for b in boxes.values())), 6)

    def test_import_100(self):
        msgs, kws, expect = [], [], {}
        for i in range(100):
            raw, subject, att = fx.make_message(5000 + i)
            kw = (["$seen"] if i % 3 == 0 else []) + (["$flagged"] if i % 4 == 1 else []) + (
                ["$Label1"] if i % 5 == 2 else []) + (["$answered"] if i % 7 == 3 else [])
            msgs.append(raw)
            kws.append(kw)
        ids = self.cy.import_messages("alice", "Inbox", msgs, kws)
        self.assertEqual(len(set(ids)), 100)
        for i, eid in enumerate(ids):
            _, subject, att = fx.make_message(5000 + i)
            # Cyrus answers keywords in lower case
            expect[eid] = (dict((k.lower(), True) for k in kws[i]), subject, att)
        inbox = self.cy.mailboxes("alice")["Inbox"]["id"]
        got = dict((e["id"], e) for e in self.cy.emails("alice", filter={"inMailbox": inbox}))
        self.assertEqual(set(got), set(ids))
        for eid, (kw, subject, att) in expect.items():
            e = got[eid]
            self.assertEqual(e["keywords"], kw, subject)
            self.assertEqual(e["subject"], subject)
            self.assertEqual(e["hasAttachment"], att, subject)
            self.assertEqual(e["mailboxIds"], {inbox: True})
            self.assertEqual(len(e["messageId"]), 1)
            self.assertTrue(e["receivedAt"].endswith("Z"))
            self.assertGreater(e["size"], 0)
        self.assertEqual(self.cy.mailboxes("alice")["Inbox"]["totalEmails"], len(got))

    def test_session_and_eventsource(self):
        s = self.cy.session("alice", fresh=True)
        self.assertIn("urn:ietf:params:jmap:mail", s["capabilities"])
        self.assertEqual(s["primaryAccounts"]["urn:ietf:params:jmap:mail"], "alice")
        # relative URLs: clients resolve them against the session URL
        self.assertEqual(s["apiUrl"], "/jmap/")
        self.assertIn("{types}", s["eventSourceUrl"])
        # advertised, yet no push: 204 No Content at once
        status, _, body = self.cy.eventsource("alice")
        self.assertEqual((status, body), (204, b""))
        self.assertNotIn("urn:ietf:params:jmap:websocket", s["capabilities"])
        # a wrong password: 401
        status, _, _ = self.cy.http("alice", self.cy.session_url, password="wrong")
        self.assertEqual(status, 401)

    def test_server_side_changes(self):
        cy = self.cy
        cy.add_user("carol", "carolpw")
        ids = cy.import_messages("carol", "Inbox", [fx.make_message(7000 + i)[0] for i in range(4)],
                                 [["$seen"], [], [], []])
        before = cy.states("carol")
        cy.set_keywords("carol", ids[0], {"$flagged": True, "$custom": True})
        cy.move("carol", ids[1], "Archive")
        cy.destroy("carol", ids[2])
        projects = cy.create_mailbox("carol", "Work")
        sub = cy.create_mailbox("carol", "Work/Projects")
        cy.import_messages("carol", "Work/Projects", [fx.make_message(7100)[0]], [])
        boxes = cy.mailboxes("carol")
        self.assertEqual(boxes["Work/Projects"]["parentId"], projects)
        self.assertEqual(boxes["Work/Projects"]["id"], sub)
        self.assertIsNone(boxes["Work/Projects"]["role"])
        emails = dict((e["id"], e) for e in cy.emails("carol"))
        self.assertEqual(emails[ids[0]]["keywords"], {"$flagged": True, "$custom": True})
        self.assertEqual(emails[ids[1]]["mailboxIds"], {boxes["Archive"]["id"]: True})
        self.assertNotIn(ids[2], emails)
        self.assertEqual(len(emails), 4)
        changes = cy.call1("carol", "Email/changes", {"accountId": "carol",
                                                      "sinceState": before["Email"]})
        self.assertEqual(set(changes["updated"]), {ids[0], ids[1]})
        self.assertEqual(changes["destroyed"], [ids[2]])
        self.assertEqual(len(changes["created"]), 1)
        # a rename keeps the id; destroying a mailbox removes its Emails
        cy.rename_mailbox("carol", "Work/Projects", "Projects 2026")
        boxes = cy.mailboxes("carol")
        self.assertEqual(boxes["Projects 2026"]["id"], sub)
        self.assertNotIn("Work/Projects", boxes)
        cy.destroy_mailbox("carol", "Projects 2026")
        self.assertNotIn("Projects 2026", cy.mailboxes("carol"))
        self.assertEqual(len(cy.emails("carol")), 3)
        with self.assertRaises(JmapError):
            cy.set_keywords("carol", ids[2], {})  # gone: notUpdated notFound
        # Quirk: Cyrus 3.6 reports an unknown id as destroyed, not in
        # notDestroyed (RFC 8620 5.3 says notFound).
        out = cy.call1("carol", "Email/set", {"accountId": "carol", "destroy": [ids[2]]})
        self.assertEqual((out["destroyed"], out["notDestroyed"]), ([ids[2]], None))
        self.assertEqual(out["oldState"], out["newState"])

    def test_quirks(self):
        """What Cyrus 3.6 does that a JMAP client must expect."""
        cy = self.cy
        cy.add_user("erin", "erinpw")
        cy.add_user("frank", "frankpw")
        raw = [fx.make_message(8000 + i)[0] for i in range(3)]
        ids = cy.import_messages("erin", "Inbox", raw, [])
        # Email ids hash the message bytes: the same in another account
        self.assertEqual(cy.import_messages("frank", "Inbox", raw[:1], []), ids[:1])
        # IMAP \Deleted (not yet expunged) already destroys the Email over JMAP
        before = cy.states("erin")
        m = cy.imap("erin")
        m.select("INBOX")
        m.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
        m.uid("STORE", "2", "+FLAGS", "($Label1)")
        m.logout()
        ch = cy.call1("erin", "Email/changes", {"accountId": "erin",
                                                "sinceState": before["Email"]})
        self.assertEqual((ch["destroyed"], ch["updated"]), ([ids[0]], [ids[1]]))
        # keywords come back in lower case
        e = [x for x in cy.emails("erin") if x["id"] == ids[1]][0]
        self.assertEqual(e["keywords"], {"$label1": True})
        # states are decimal modseqs; query states "<modseq>:0"
        q = cy.call1("erin", "Email/query", {"accountId": "erin"})
        self.assertEqual(q["queryState"], ch["newState"] + ":0")
        # more ids than maxObjectsInGet: a request-level HTTP 400, not a
        # method-level requestTooLarge
        limit = cy.session("erin")["capabilities"]["urn:ietf:params:jmap:core"]["maxObjectsInGet"]
        with self.assertRaisesRegex(JmapError, "HTTP 400.*maxObjectsInGet"):
            cy.call("erin", None, [["Email/get", {"accountId": "erin", "properties": ["id"],
                                                  "ids": ["M%d" % i for i in range(limit + 1)]},
                                    "g"]])
        # no "/" in a Mailbox name (it is the hierarchy separator)
        with self.assertRaisesRegex(JmapError, "Invalid mailbox name"):
            cy._set("erin", "Mailbox/set", {"accountId": "erin",
                                            "create": {"c": {"name": "a/b", "parentId": None}}})

    def test_submission_reaches_sink(self):
        eid = self.cy.send("bob", "dave@example.org", "Hello Dave", "Hi from bob")
        msgs = self.cy.sent()
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0]["mail_from"], "bob@localhost")
        self.assertEqual(msgs[0]["rcpt"], ["dave@example.org"])
        self.assertIn(b"Subject: Hello Dave", msgs[0]["data"])
        e = [x for x in self.cy.emails("bob") if x["id"] == eid][0]
        self.assertEqual(e["mailboxIds"], {self.cy.mailboxes("bob")["Sent"]["id"]: True})
        self.assertNotIn("$draft", e["keywords"])


if __name__ == "__main__":
    unittest.main()
