"""An HTTP proxy in front of Cyrus's JMAP port for the end-to-end tests, for
what a real server does not do on demand: it forwards every request and
can rewrite the session and API answers, fail or drop API requests, and
answer the EventSource itself (Cyrus 3.6 answers it 204 No Content): a
held-open text/event-stream that sends a StateChange when the test says
so, pings as the client asked, and can be cut, held back or answered 204.

    proxy = Proxy(cy.http_port)   # session URL: proxy.session_url
    proxy.es_mode = "stream"      # "forward" (to Cyrus), "stream", "204",
                                  # "close" (a stream that ends at once)
    proxy.state_change({accountId: {"Email": "s1"}})
    proxy.cut()                   # the open streams end (server closed)
    proxy.stall()                 # the open streams fall silent (no pings)
    proxy.es_gate.clear()         # new stream requests wait (set() frees)
    len(proxy.es_requests)        # EventSource requests seen
"""
import http.client
import http.server
import json
import queue
import select
import socket
import socketserver
import threading
import time
import urllib.parse

class Proxy:
    """An HTTP proxy in front of Cyrus's JMAP port for what a real server
    does not do on demand. before(calls) runs before a JMAP API request is
    forwarded (calls: its methodCalls); drop(calls) true: the request is
    forwarded, then the connection closed with no answer."""

    def __init__(self, port):
        self.target = port
        self.before = lambda calls: None
        self.drop = lambda calls: False
        self.seen = []  # the methods of every API request, in order
        self.session = lambda obj: obj  # rewrites the session object
        self.answer = lambda resps: resps  # rewrites methodResponses
        self.fail = lambda calls: False  # true: 503, nothing forwarded
        self.requests = []  # (bytes, calls, largest Email/set) per request
        # The EventSource (eventSourceUrl's path), answered here unless
        # es_mode is "forward".
        self.es_mode = "forward"
        self.es_requests = []  # the path of every EventSource request
        self.es_gate = threading.Event()  # cleared: stream requests wait
        self.es_gate.set()
        self.es_client_closed = 0  # streams the client ended
        self._streams = []  # a queue per open stream (None: end it)
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                calls = []
                if body and self.headers.get("Content-Type", "").startswith("application/json"):
                    calls = json.loads(body).get("methodCalls", [])
                    proxy.seen.append(methods(calls))
                    proxy.requests.append((len(body), len(calls), max(
                        [len(c[1].get("update") or {}) + len(c[1].get("destroy") or [])
                         for c in calls if c[0] == "Email/set"] or [0])))
                    proxy.before(calls)
                if calls and proxy.fail(calls):
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                c = http.client.HTTPConnection("127.0.0.1", proxy.target, timeout=60)
                hdrs = dict((k, v) for k, v in self.headers.items()
                            if k.lower() not in ("host", "connection"))
                c.request(self.command, self.path, body, hdrs)
                r = c.getresponse()
                data = r.read()
                c.close()
                if (self.command == "GET" and r.status == 200 and b'"capabilities"' in data[:4096]
                        and r.getheader("Content-Type", "").startswith("application/json")):
                    data = json.dumps(proxy.session(json.loads(data))).encode()
                if calls and r.status == 200:
                    obj = json.loads(data)
                    obj["methodResponses"] = proxy.answer(obj["methodResponses"])
                    data = json.dumps(obj).encode()
                if calls and proxy.drop(calls):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() in ("transfer-encoding", "connection", "content-length"):
                        continue
                    if k.lower() == "location":
                        v = v.replace(":%d" % proxy.target, ":%d" % proxy.port)
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def event_source(self):
                proxy.es_requests.append(self.path)
                if proxy.es_mode == "204":
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                proxy.es_gate.wait()
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                ping = int((q.get("ping") or ["0"])[0] or 0)
                mine = queue.Queue()
                with proxy._lock:
                    proxy._streams.append(mine)
                # no length: the stream ends when the connection does
                self.close_connection = True
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.flush()
                    last = time.time()
                    pinging = True
                    while proxy.es_mode != "close":
                        try:
                            item = mine.get(timeout=0.2)
                        except queue.Empty:
                            item = b""
                            r, _, _ = select.select([self.connection], [], [], 0)
                            if r and not self.connection.recv(1, socket.MSG_PEEK):
                                proxy.es_client_closed += 1
                                break  # the client closed the stream
                            if ping > 0 and pinging and time.time() - last >= ping:
                                item = ('event: ping\r\ndata: {"interval":%d}\r\n\r\n'
                                        % ping).encode()
                        if item is None:
                            break
                        if item == "stall":
                            pinging = False
                            continue
                        if item:
                            self.wfile.write(item)
                            self.wfile.flush()
                            last = time.time()
                except OSError:
                    pass  # the client went away
                finally:
                    with proxy._lock:
                        if mine in proxy._streams:
                            proxy._streams.remove(mine)
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass

            def do_GET(self):
                if "/eventsource" in self.path and proxy.es_mode != "forward":
                    self.event_source()
                else:
                    self.forward()

            do_POST = forward

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.srv = Server(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    @property
    def session_url(self):
        return "http://127.0.0.1:%d/.well-known/jmap" % self.port

    def open_streams(self):
        with self._lock:
            return len(self._streams)

    def state_change(self, changed):
        """Sends a StateChange ({accountId: {type: state}}) on every open
        stream."""
        data = json.dumps({"@type": "StateChange", "changed": changed})
        self.send_event("event: state\r\ndata: %s\r\n\r\n" % data)

    def send_event(self, text):
        with self._lock:
            for q in self._streams:
                q.put(text.encode())

    def stall(self):
        """The open streams stay open but send nothing more, not even
        pings (a server or path that died silently)."""
        with self._lock:
            for q in self._streams:
                q.put("stall")

    def cut(self):
        """Ends every open stream (as a server that closed it)."""
        with self._lock:
            for q in self._streams:
                q.put(None)

    def stop(self):
        self.es_gate.set()
        self.cut()
        self.srv.shutdown()
        self.srv.server_close()


def methods(calls):
    return [c[0] for c in calls]
