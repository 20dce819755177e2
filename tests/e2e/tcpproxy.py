"""A TCP proxy on 127.0.0.1 for end-to-end tests: forwards every
connection to a target port, counts the connections and the client's IMAP
commands by name (EXAMINE, STATUS, NOOP, ...), keeps their order (the
text after the tag, credentials left out), and can cut every open
connection, as a server restart or a middlebox closing idle connections
would."""
import re
import socket
import threading

CMD = re.compile(rb"^[A-Za-z0-9.]+ (?:UID )?([A-Za-z]+)")


SECRET = ("LOGIN", "AUTHENTICATE")
MAX_LINES = 10000


class TcpProxy:
    def __init__(self, target):
        self.target = target
        self.accepted = 0  # connections so far
        self.counts = {}  # IMAP command name -> times seen
        self.lines = []  # the commands in order, at most MAX_LINES
        self.open = []
        self.lock = threading.Lock()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:  # the target is gone: so is this connection
                c.close()
                continue
            with self.lock:
                self.accepted += 1
                self.open += [c, u]
            threading.Thread(target=self.pipe, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self.pipe, args=(u, c, False), daemon=True).start()

    def pipe(self, src, dst, client):
        pending = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if client:
                    pending += data
                    *lines, pending = pending.split(b"\r\n")
                    pending = pending[-4096:]  # a literal's bytes are not commands
                    self.count(lines)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def count(self, lines):
        for line in lines:
            mo = CMD.match(line)
            if mo:
                k = mo.group(1).upper().decode()
                text = k if k in SECRET else line.split(b" ", 1)[1].decode("utf-8", "replace")
                with self.lock:
                    self.counts[k] = self.counts.get(k, 0) + 1
                    if len(self.lines) < MAX_LINES:
                        self.lines.append(text)

    def take(self):
        """The command counts since the last take."""
        with self.lock:
            c, self.counts = self.counts, {}
        return c

    def take_lines(self):
        """The commands since the last take_lines, in order."""
        with self.lock:
            c, self.lines = self.lines, []
        return c

    def cut_all(self):
        with self.lock:
            socks, self.open = self.open, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        # shutdown wakes the thread blocked in accept(); close alone would
        # leave it blocked on a socket that still listens
        try:
            self.ls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ls.close()
        self.cut_all()
