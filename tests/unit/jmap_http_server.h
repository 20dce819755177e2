/*
 * jmap_http_server.h: the tiny HTTP/1.1 server the pkg/jmap client tests
 * run against, on a 127.0.0.1 socket in a thread, playing Cyrus:
 * /.well-known/jmap redirects to /jmap, which gives a session with
 * relative URLs; the API, upload, download and event source answer as
 * each test sets (jmap_client_test.c, jmap_transfer_test.c).
 */
#ifndef MAILSYNC_JMAP_HTTP_SERVER_H
#define MAILSYNC_JMAP_HTTP_SERVER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "script_server.h"
#include <curl/curl.h>

#include "jmap/jmap.h"

#define MAX_CONNS 8
#define MAX_REQS 32

/* What the server does for the API, upload, download and event source. */
enum api_mode {
	API_OK,
	API_PROBLEM,
	API_NOT_JSON,
	API_503,
	API_HUGE_LEN,
	API_HUGE_STREAM,
	API_NEW_SESSION /* API_OK's answer with another sessionState */
};
enum dl_mode { DL_CHUNKS, DL_CHUNKS_LEN, DL_404 };
enum es_mode {
	ES_204,
	ES_HTML,
	ES_STREAM_CLOSE,
	ES_STREAM_HOLD,
	ES_STREAM_TRICKLE, /* two events in small pieces, then held */
	ES_STREAM_TOOBIG, /* one data line over JMAP_SSE_MAX_EVENT */
	ES_STREAM_SILENT, /* headers only, then held: no ping ever */
};

struct req {
	char line[256]; /* "GET /jmap HTTP/1.1" */
	char auth[128]; /* the Authorization value */
	char ctype[128]; /* the Content-Type value */
	char accept[128];
	char body[2048];
	size_t body_len;
	int conn; /* which accepted connection (0, 1, ...) */
};

struct server {
	int lfd;
	uint16_t port;
	pthread_t th;
	volatile int stop;
	/* set by the test, read by the thread (between requests) */
	int session_status; /* 200, or 401 ... */
	enum api_mode api;
	enum dl_mode dl;
	enum es_mode es;
	bool no_push; /* the session has no eventSourceUrl */
	/* filled by the thread */
	int conns;
	struct req reqs[MAX_REQS];
	int nreqs;
	size_t huge_sent; /* API_HUGE_*: body bytes the client took */
};

static const char session_json[]
    = "{\"apiUrl\":\"/jmap/\","
      "\"downloadUrl\":\"/jmap/download/{accountId}/{blobId}/{name}?accept="
      "{type}\","
      "\"uploadUrl\":\"/jmap/upload/{accountId}/\","
      "\"eventSourceUrl\":\"/jmap/eventsource/?types={types}&closeafter="
      "{closeafter}&ping={ping}\","
      "\"state\":\"0\",\"capabilities\":{\"urn:ietf:params:jmap:core\":{"
      "\"maxCallsInRequest\":50},\"urn:ietf:params:jmap:mail\":{}},"
      "\"accounts\":{\"u1\":{}},"
      "\"primaryAccounts\":{\"urn:ietf:params:jmap:mail\":\"u1\"}}";

/* The same without eventSourceUrl (a server without push). */
static const char session_json_no_push[]
    = "{\"apiUrl\":\"/jmap/\","
      "\"downloadUrl\":\"/jmap/download/{accountId}/{blobId}/{name}\","
      "\"uploadUrl\":\"/jmap/upload/{accountId}/\","
      "\"state\":\"0\",\"capabilities\":{\"urn:ietf:params:jmap:core\":{},"
      "\"urn:ietf:params:jmap:mail\":{}},\"accounts\":{\"u1\":{}},"
      "\"primaryAccounts\":{\"urn:ietf:params:jmap:mail\":\"u1\"}}";

/* The blob the download serves, in 5 pieces. */
#define BLOB_PIECE 3000
#define BLOB_PIECES 5

static inline bool
send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t k;

	while (n > 0) {
		k = send(fd, c, n, MSG_NOSIGNAL);
		if (k <= 0) {
			return (false);
		}
		c += k;
		n -= (size_t)k;
	}
	return (true);
}

static inline bool
send_str(int fd, const char *s)
{
	return (send_all(fd, s, strlen(s)));
}

/* A whole response with a Content-Length. */
static inline bool
reply(int fd, const char *status, const char *headers, const char *body)
{
	char head[1024];

	snprintf(head, sizeof(head),
	    "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%s\r\n", status,
	    strlen(body), headers);
	return (send_all(fd, head, strlen(head))
	    && send_all(fd, body, strlen(body)));
}

/* Copies the value of header `name` from the request head. */
static inline void
header_value(const char *head, const char *name, char *out, size_t cap)
{
	const char *p = head;
	size_t n = strlen(name), len;

	out[0] = '\0';
	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ') {
				p++;
			}
			len = strcspn(p, "\r\n");
			snprintf(out, cap, "%.*s", (int)len, p);
			return;
		}
	}
}

/* Reads one request; false at EOF or on a malformed one. */
static inline bool
read_request(int fd, struct req *r)
{
	char head[8192], cl[32];
	size_t n = 0, want, got;
	ssize_t k;

	memset(r, 0, sizeof(*r));
	while (n + 1 < sizeof(head)) {
		if (read(fd, head + n, 1) != 1) {
			return (false);
		}
		n++;
		if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0) {
			break;
		}
	}
	head[n] = '\0';
	snprintf(r->line, sizeof(r->line), "%.*s", (int)strcspn(head, "\r\n"),
	    head);
	header_value(head, "Authorization", r->auth, sizeof(r->auth));
	header_value(head, "Content-Type", r->ctype, sizeof(r->ctype));
	header_value(head, "Accept", r->accept, sizeof(r->accept));
	header_value(head, "Content-Length", cl, sizeof(cl));
	want = (size_t)strtoul(cl, NULL, 10);
	for (got = 0; got < want; got += (size_t)k) {
		char tmp[4096];
		size_t take
		    = want - got < sizeof(tmp) ? want - got : sizeof(tmp);

		k = read(fd, tmp, take);
		if (k <= 0) {
			return (false);
		}
		if (r->body_len + (size_t)k < sizeof(r->body)) {
			memcpy(r->body + r->body_len, tmp, (size_t)k);
			r->body_len += (size_t)k;
		}
	}
	return (true);
}

/* Waits until the client closes fd (or 5 s). */
static inline void
wait_close(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c[256];

	while (poll(&p, 1, 5000) > 0 && read(fd, c, sizeof(c)) > 0) { }
}

/* A body of `total` bytes, sent until the client stops taking it. */
static inline void
send_huge(struct server *sv, int fd, size_t total, bool chunked)
{
	static char block[65536];
	char size_line[32];
	size_t n;

	memset(block, '[', sizeof(block));
	while (sv->huge_sent < total) {
		n = sizeof(block);
		if (chunked) {
			snprintf(size_line, sizeof(size_line), "%zx\r\n", n);
			if (!send_all(fd, size_line, strlen(size_line))) {
				return;
			}
		}
		if (!send_all(fd, block, n)
		    || (chunked && !send_all(fd, "\r\n", 2))) {
			return;
		}
		sv->huge_sent += n;
	}
}

static inline bool
serve_api(struct server *sv, int fd)
{
	switch (sv->api) {
	case API_OK:
		return (reply(fd, "200 OK",
		    "Content-Type: application/json\r\n",
		    "{\"methodResponses\":[[\"Mailbox/get\",{\"state\":\"27\","
		    "\"list\":[]},\"m\"]],\"sessionState\":\"0\"}"));
	case API_NEW_SESSION:
		return (reply(fd, "200 OK",
		    "Content-Type: application/json\r\n",
		    "{\"methodResponses\":[[\"Mailbox/get\",{\"state\":\"27\","
		    "\"list\":[]},\"m\"]],\"sessionState\":\"1\"}"));
	case API_PROBLEM:
		return (reply(fd, "400 Bad Request",
		    "Content-Type: application/problem+json\r\n",
		    "{\"type\":\"urn:ietf:params:jmap:error:notRequest\","
		    "\"status\":400,\"detail\":\"methodCalls is missing\"}"));
	case API_NOT_JSON:
		return (reply(fd, "200 OK", "Content-Type: text/html\r\n",
		    "<html>hello</html>"));
	case API_503:
		return (reply(fd, "503 Service Unavailable", "", "busy"));
	case API_HUGE_LEN:
		send_str(fd,
		    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		    "Content-Length: 104857600\r\n\r\n");
		send_huge(sv, fd, 100u << 20, false);
		return (false);
	case API_HUGE_STREAM:
		send_str(fd,
		    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n");
		send_huge(sv, fd, 100u << 20, true);
		return (false);
	}
	return (false);
}

/* The blob: BLOB_PIECES pieces of BLOB_PIECE bytes ('a', 'b', ...), each
 * written apart with a pause so that curl sees several chunks. */
static inline bool
serve_download(struct server *sv, int fd)
{
	char piece[BLOB_PIECE], head[256];
	int i;

	if (sv->dl == DL_404) {
		return (reply(fd, "404 Not Found", "", "no such blob"));
	}
	if (sv->dl == DL_CHUNKS_LEN) {
		snprintf(head, sizeof(head),
		    "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
		    BLOB_PIECE * BLOB_PIECES);
	} else {
		snprintf(head, sizeof(head),
		    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
	}
	if (!send_all(fd, head, strlen(head))) {
		return (false);
	}
	for (i = 0; i < BLOB_PIECES; i++) {
		memset(piece, 'a' + i, sizeof(piece));
		if (!send_all(fd, piece, sizeof(piece))) {
			return (false);
		}
		usleep(20000);
	}
	return (sv->dl == DL_CHUNKS_LEN);
}

static const char stream_events[]
    = ": hello\r\n\r\n"
      "event: state\r\ndata: {\"@type\":\"StateChange\",\"changed\":"
      "{\"u1\":{\"Email\":\"28\"}}}\r\n\r\n";

static inline bool
serve_events(struct server *sv, int fd)
{
	static const char head[] = "HTTP/1.1 200 OK\r\n"
	                           "Content-Type: text/event-stream\r\n"
	                           "Cache-Control: no-cache\r\n\r\n";

	switch (sv->es) {
	case ES_204:
		return (send_str(fd, "HTTP/1.1 204 No Content\r\n\r\n"));
	case ES_HTML:
		return (reply(fd, "200 OK", "Content-Type: text/html\r\n",
		    "<html>no push</html>"));
	case ES_STREAM_CLOSE:
		send_all(fd, head, strlen(head));
		send_all(fd, stream_events, 40);
		usleep(20000);
		send_all(fd, stream_events + 40, strlen(stream_events) - 40);
		return (false);
	case ES_STREAM_HOLD:
		send_all(fd, head, strlen(head));
		send_all(fd, stream_events, strlen(stream_events));
		send_str(fd, ": ping\r\n\r\n");
		wait_close(fd);
		return (false);
	case ES_STREAM_TRICKLE:
		send_all(fd, head, strlen(head));
		usleep(50000); /* the headers alone first: up before any event */
		for (size_t i = 0; i < 2; i++) {
			size_t n = strlen(stream_events), k, off;

			/* 7-byte pieces: CRLFs and the blank line straddle them */
			for (off = 0; off < n; off += k) {
				k = n - off < 7 ? n - off : 7;
				send_all(fd, stream_events + off, k);
				usleep(2000);
			}
		}
		wait_close(fd);
		return (false);
	case ES_STREAM_TOOBIG: {
		static char block[65536];
		size_t sent;

		send_all(fd, head, strlen(head));
		send_str(fd, "event: state\r\ndata: ");
		memset(block, 'x', sizeof(block));
		for (sent = 0; sent <= JMAP_SSE_MAX_EVENT; sent += sizeof(block)) {
			if (!send_all(fd, block, sizeof(block))) {
				break;
			}
		}
		wait_close(fd);
		return (false);
	}
	case ES_STREAM_SILENT:
		send_all(fd, head, strlen(head));
		wait_close(fd);
		return (false);
	}
	return (false);
}

/* One request: routes by path; false closes the connection. */
static inline bool
serve_one(struct server *sv, int fd, int conn)
{
	char json_ct[] = "Content-Type: application/json\r\n";
	struct req *r, tmp;
	char loc[128];

	r = sv->nreqs < MAX_REQS ? &sv->reqs[sv->nreqs++] : &tmp;
	if (!read_request(fd, r)) {
		sv->nreqs -= r != &tmp;
		return (false);
	}
	r->conn = conn;
	if (strncmp(r->line, "GET /.well-known/jmap ", 22) == 0) {
		snprintf(loc, sizeof(loc), "Location: /jmap\r\n");
		return (reply(fd, "301 Moved Permanently", loc, ""));
	}
	if (strncmp(r->line, "GET /jmap ", 10) == 0) {
		if (sv->session_status == 401) {
			return (reply(fd, "401 Unauthorized",
			    "WWW-Authenticate: Basic realm=\"localhost\"\r\n",
			    "denied"));
		}
		return (reply(fd, "200 OK", json_ct,
		    sv->no_push ? session_json_no_push : session_json));
	}
	if (strncmp(r->line, "POST /jmap/ ", 12) == 0) {
		return (serve_api(sv, fd));
	}
	if (strncmp(r->line, "POST /jmap/upload/u1/ ", 22) == 0) {
		return (reply(fd, "201 Created", json_ct,
		    "{\"accountId\":\"u1\",\"blobId\":\"G5173b\",\"size\":5,"
		    "\"type\":\"message/rfc822\"}"));
	}
	if (strncmp(r->line,
	        "GET /jmap/download/u1/B1/blob?accept="
	        "application%2Foctet-stream ",
	        63)
	    == 0) {
		return (serve_download(sv, fd));
	}
	/* RFC 6570 level 1 encodes everything but unreserved: '*' too */
	if (strncmp(r->line,
	        "GET /jmap/eventsource/?types=%2A&closeafter=no"
	        "&ping=",
	        52)
	    == 0) {
		return (serve_events(sv, fd));
	}
	return (reply(fd, "404 Not Found", "", "unknown path"));
}

/* Accepts connections and serves their requests until stop. */
static inline void *
serve(void *arg)
{
	struct server *sv = arg;
	struct pollfd p[MAX_CONNS + 1];
	int ids[MAX_CONNS + 1];
	int n = 1, i, fd;

	p[0].fd = sv->lfd;
	p[0].events = POLLIN;
	while (!sv->stop) {
		if (poll(p, (nfds_t)n, 50) <= 0) {
			continue;
		}
		if ((p[0].revents & POLLIN) != 0 && n <= MAX_CONNS) {
			fd = accept(sv->lfd, NULL, NULL);
			if (fd >= 0) {
				p[n].fd = fd;
				p[n].events = POLLIN;
				p[n].revents = 0;
				ids[n] = sv->conns++;
				n++;
			}
		}
		for (i = 1; i < n; i++) {
			if ((p[i].revents & (POLLIN | POLLHUP)) == 0) {
				continue;
			}
			if (!serve_one(sv, p[i].fd, ids[i])) {
				close(p[i].fd);
				p[i] = p[n - 1];
				ids[i] = ids[n - 1];
				n--;
				i--;
			}
		}
	}
	for (i = 1; i < n; i++) {
		close(p[i].fd);
	}
	return (NULL);
}

static inline void
server_start(struct server *sv)
{
	sv->lfd = script_listen(&sv->port);
	if (sv->session_status == 0) {
		sv->session_status = 200;
	}
	assert_int_equal(pthread_create(&sv->th, NULL, serve, sv), 0);
}

static inline void
server_stop(struct server *sv)
{
	sv->stop = 1;
	pthread_join(sv->th, NULL);
	close(sv->lfd);
}

static inline void
conf_for(const struct server *sv, struct jmap_conf *c, char *url, size_t n)
{
	snprintf(url, n, "http://127.0.0.1:%u/.well-known/jmap", sv->port);
	memset(c, 0, sizeof(*c));
	c->url = url;
	c->username = "alice";
	c->secret = "alicepw";
	c->plaintext = true;
	c->connect_timeout_ms = 5000;
	c->io_timeout_ms = 5000;
}

/* Opens a client on a started server; fails the test if it cannot. */
static inline struct jmap_client *
open_client(struct server *sv)
{
	struct jmap_client *cl = NULL;
	struct jmap_conf c;
	struct jmap_err e;
	char url[128];

	conf_for(sv, &c, url, sizeof(url));
	if (jmap_client_open(&c, &cl, &e) != 0) {
		fail_msg("open: %s", e.text);
	}
	return (cl);
}

static inline json_t *
mailbox_get(void)
{
	return (json_pack("[[s,{s:s,s:n},s]]", "Mailbox/get", "accountId",
	    "u1", "ids", "m"));
}

#endif
