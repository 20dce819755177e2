"""End-to-end: mailsync-watch holds a JMAP account's EventSource stream
open (RFC 8620 7.3) on its curl multi handle, against a real Cyrus 3.6
behind jmapproxy.py, which answers the eventSourceUrl itself (Cyrus gives
204) and sends a StateChange when the test says so:

  - stream mode: with --jmap-poll 3600 only push can bring a change in;
  - the stream cut by the server: one poll at once, a reconnect after a
    backoff, and a change made while no stream was up still arrives;
  - streams that die at once are reopened with a backoff, not in a loop;
  - a StateChange for another account or another type queues no sync;
  - a lost watch lease takes the stream out (closed), the re-leased job
    opens a new one;
  - a stream that falls silent (no pings) is found dead and reopened;
  - 204 (and a session without eventSourceUrl): polling, said once with
    why, and no stream retried in a loop.
"""
import os
import signal
import time
import unittest

import mailfixture as fx
from cyrus import Cyrus
from harness import BIN, Pipeline, wait_for
from jmapproxy import Proxy

POLL_PAIR = ["Email/get", "Mailbox/get"]  # the watcher's state poll


class WatchPipeline(Pipeline):
    def __init__(self, watch_args, **kw):
        self.watch_args = watch_args
        super().__init__(watch=True, **kw)
        wait_for(lambda: os.path.exists(os.path.join(self.dir, "watch.sock")), 10,
                 "the scheduler's watch socket")
        self.start("watch")

    def argv(self, name):
        if name == "watch":
            return [os.path.join(BIN, "mailsync-watch"), "--dir", self.dir,
                    "--io-timeout", "5"] + self.watch_args
        return super().argv(name)


class PushBase(unittest.TestCase):
    WATCH_ARGS = []

    @classmethod
    def setUpClass(cls):
        cls.cy = Cyrus()
        cls.p = WatchPipeline(cls.WATCH_ARGS, workers=1, lease=5, interval=3600)

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()
        cls.cy.stop()
        cls.p.cleanup()

    def account(self, name, es_mode, session=None):
        """A new Cyrus user behind a new proxy, added as JMAP account
        `name`; returns (proxy, account row id, Cyrus accountId)."""
        self.cy.add_user(name, name + "pw")
        proxy = Proxy(self.cy.http_port)
        proxy.es_mode = es_mode
        if session:
            proxy.session = session
        self.addCleanup(proxy.stop)
        pw = self.p.password_file(name + "pw")
        self.p.submit("account", "add", name, "--jmap", proxy.session_url, "--plaintext",
                      "--user", name, "--password-file", pw, check=0)
        acct = self.p.query("SELECT id FROM accounts WHERE name = ?", name)[0]["id"]
        wait_for(lambda: self.syncs(acct) >= 1, 30, "the first sync of %s" % name)
        return proxy, acct, self.cy.account_id(name)

    def syncs(self, acct):
        return self.p.query("SELECT count(*) AS n FROM jobs WHERE account_id = ? AND "
                            "kind = 'sync' AND state = 'done'", acct)[0]["n"]

    def all_syncs(self, acct):
        return self.p.query("SELECT count(*) AS n FROM jobs WHERE account_id = ? AND "
                            "kind = 'sync'", acct)[0]["n"]

    def rows(self, acct):
        return self.p.query("SELECT count(*) AS n FROM messages WHERE account_id = ?",
                            acct)[0]["n"]

    def log_lines(self, acct, what):
        mark = "account=%d %s" % (acct, what)
        return [ln for ln in self.p.log_text("watch").splitlines() if mark in ln]

    def wait_log(self, acct, what, n=1, timeout=30):
        wait_for(lambda: len(self.log_lines(acct, what)) >= n, timeout,
                 "%r %d time(s) in the watcher's log" % (what, n))


class JmapPushStreamTest(PushBase):
    # only a stream can bring a change in quickly: polls are an hour apart
    WATCH_ARGS = ["--jmap-poll", "3600", "--jmap-ping", "2"]

    def test_a_state_change_syncs(self):
        proxy, acct, jid = self.account("pa", "stream")
        self.wait_log(acct, "event=watching mode=jmap_push")
        self.assertEqual(len(proxy.es_requests), 1)
        self.assertIn("types=%2A&closeafter=no&ping=2", proxy.es_requests[0])
        self.cy.import_messages("pa", "Inbox", [fx.make_message(1)[0]], [])
        t0 = time.time()
        proxy.state_change({jid: {"Email": "s-new"}})
        wait_for(lambda: self.rows(acct) == 1, 15, "the pushed Email in SQLite")
        self.assertLess(time.time() - t0, 8)
        self.assertEqual(self.log_lines(acct, "event=watching mode=jmap_poll"), [])
        self.assertEqual(len(proxy.es_requests), 1, "one stream, still open")

    def test_b_cut_stream_polls_and_reconnects(self):
        proxy, acct, jid = self.account("pb", "stream")
        self.wait_log(acct, "event=watching mode=jmap_push")
        before = len(proxy.seen)
        proxy.es_gate.clear()  # the reconnect waits until the test says
        proxy.cut()
        wait_for(lambda: len(proxy.es_requests) == 2, 15, "the stream to be reopened")
        self.wait_log(acct, "event=stream_lost")
        # one poll at once when the stream died
        self.assertIn(POLL_PAIR, proxy.seen[before:])
        # a change while no stream is up: no poll due for an hour, so only
        # the poll made when the new stream comes up can find it
        self.cy.import_messages("pb", "Inbox", [fx.make_message(2)[0]], [])
        time.sleep(1.5)
        self.assertEqual(self.rows(acct), 0)
        proxy.es_gate.set()
        wait_for(lambda: self.rows(acct) == 1, 15, "the Email made while the stream was down")
        self.assertEqual(len(self.log_lines(acct, "event=watching mode=jmap_push")), 2)
        self.assertEqual(len(proxy.es_requests), 2, "no reconnect storm")
        # and the new stream works
        self.cy.import_messages("pb", "Inbox", [fx.make_message(3)[0]], [])
        proxy.state_change({jid: {"Email": "s-3"}})
        wait_for(lambda: self.rows(acct) == 2, 15, "the Email pushed on the new stream")

    def test_c_dying_streams_back_off(self):
        """Every stream the server opens ends at once (a server
        restarting): the reconnects back off (1 s doubling, jittered)
        instead of looping."""
        proxy, acct, jid = self.account("pc", "stream")
        self.wait_log(acct, "event=watching mode=jmap_push")
        start = len(proxy.es_requests)
        proxy.es_mode = "close"
        proxy.cut()
        time.sleep(8)
        during = len(proxy.es_requests) - start
        # waits of at least 0.5, 1, 2 and 4 s: 4 requests in 8 s at most
        self.assertGreaterEqual(during, 2)
        self.assertLessEqual(during, 4, "stream requests in 8 s")
        # back to a working stream: it comes up again by itself
        proxy.es_mode = "stream"
        self.wait_log(acct, "event=watching mode=jmap_push", n=2, timeout=20)

    def test_d_other_account_or_type_queues_no_sync(self):
        proxy, acct, jid = self.account("pd", "stream")
        self.wait_log(acct, "event=watching mode=jmap_push")
        queued = self.all_syncs(acct)
        # a new Email would reach SQLite if any sync ran
        self.cy.import_messages("pd", "Inbox", [fx.make_message(4)[0]], [])
        proxy.state_change({"some-other-account": {"Email": "x1", "Mailbox": "y1"}})
        proxy.state_change({jid: {"CalendarEvent": "c1", "Thread": "t1"}})
        proxy.send_event('event: state\r\ndata: {"not": "a state change"}\r\n\r\n')
        proxy.send_event('event: other\r\ndata: {}\r\n\r\n')
        time.sleep(3)
        self.assertEqual(self.all_syncs(acct), queued)
        self.assertEqual(self.rows(acct), 0)
        self.assertEqual(self.log_lines(acct, "event=changed"), [])
        self.assertEqual(len(proxy.es_requests), 1, "the stream stayed up")
        # the same stream, the right account and type: a sync
        proxy.state_change({jid: {"Mailbox": "y2"}})
        wait_for(lambda: self.rows(acct) == 1, 15, "the Email after a Mailbox StateChange")

    def test_e_lease_lost_closes_the_stream(self):
        """The watcher stalls past its lease (SIGSTOP): the store re-queues
        the watch job, the resumed watcher drops the account (its stream
        leaves the multi handle and is closed) and holds the job again
        when it comes back, with a new stream."""
        proxy, acct, jid = self.account("pe", "stream")
        self.wait_log(acct, "event=watching mode=jmap_push")
        self.p.send_signal("watch", signal.SIGSTOP)
        try:
            time.sleep(12)  # lease 5 s
        finally:
            self.p.send_signal("watch", signal.SIGCONT)
        wait_for(lambda: "event=lease_lost" in self.p.log_text("watch"), 20, "lease_lost")
        wait_for(lambda: proxy.es_client_closed >= 1, 20, "the watcher to close the stream")
        self.wait_log(acct, "event=watching mode=jmap_push", n=2, timeout=30)
        self.assertEqual(proxy.open_streams(), 1)

    def test_f_silent_stream_is_dead(self):
        """The server stops pinging: after --jmap-ping + --io-timeout
        (2 + 5 s) of silence the stream is dead, polled and reopened."""
        proxy, acct, jid = self.account("pf", "stream")
        self.wait_log(acct, "event=watching mode=jmap_push")
        time.sleep(3)  # pings every 2 s: alive
        proxy.stall()
        time.sleep(3)
        self.assertEqual(self.log_lines(acct, "event=stream_lost"), [])
        self.wait_log(acct, "event=stream_lost err=ERR_TIMEOUT", timeout=15)
        self.wait_log(acct, "event=watching mode=jmap_push", n=2, timeout=15)
        self.assertEqual(len(proxy.es_requests), 2)


class JmapNoPushTest(PushBase):
    WATCH_ARGS = ["--jmap-poll", "1", "--jmap-ping", "2"]

    def test_204_polls(self):
        proxy, acct, jid = self.account("na", "204")
        self.wait_log(acct, "event=watching mode=jmap_poll why=204")
        self.cy.import_messages("na", "Inbox", [fx.make_message(5)[0]], [])
        wait_for(lambda: self.rows(acct) == 1, 15, "the Email found by polling")
        time.sleep(2)
        self.assertEqual(len(proxy.es_requests), 1, "the stream is not retried")
        self.assertEqual(len(self.log_lines(acct, "event=watching")), 1)
        self.assertEqual(self.log_lines(acct, "event=stream_lost"), [])

    def test_no_event_source_url_polls(self):
        def no_push(session):
            session.pop("eventSourceUrl", None)
            return session

        proxy, acct, jid = self.account("nb", "stream", session=no_push)
        self.wait_log(acct, "event=watching mode=jmap_poll why=no_event_source")
        self.cy.import_messages("nb", "Inbox", [fx.make_message(6)[0]], [])
        wait_for(lambda: self.rows(acct) == 1, 15, "the Email found by polling")
        self.assertEqual(proxy.es_requests, [])


if __name__ == "__main__":
    unittest.main()
