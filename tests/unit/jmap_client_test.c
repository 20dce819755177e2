/*
 * jmap_client_test.c: pkg/jmap's client against a tiny HTTP/1.1 server
 * on a 127.0.0.1 socket (a thread) that plays Cyrus: /.well-known/jmap
 * redirects to /jmap, which gives a session with relative URLs; the API,
 * upload, download and event source answer as each test sets. Checked:
 * the Basic (or Bearer) header on every request, keep-alive (everything
 * on one TCP connection), the error mapping (401, 404, 400 problem JSON,
 * 5xx, not JSON, refused connection), http:// refused without plaintext
 * before any connection, the response bound (announced and streamed),
 * downloads streamed in chunks under a max, uploads, and the event
 * source: 204 or another type is ERR_UNSUPPORTED, a stream reaches the
 * parser until the server closes or the deadline passes.
 */
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
	API_HUGE_STREAM
};
enum dl_mode { DL_CHUNKS, DL_CHUNKS_LEN, DL_404 };
enum es_mode { ES_204, ES_HTML, ES_STREAM_CLOSE, ES_STREAM_HOLD };

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

/* The blob the download serves, in 5 pieces. */
#define BLOB_PIECE 3000
#define BLOB_PIECES 5

static bool
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

static bool
send_str(int fd, const char *s)
{
	return (send_all(fd, s, strlen(s)));
}

/* A whole response with a Content-Length. */
static bool
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
static void
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
static bool
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
static void
wait_close(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c[256];

	while (poll(&p, 1, 5000) > 0 && read(fd, c, sizeof(c)) > 0) { }
}

/* A body of `total` bytes, sent until the client stops taking it. */
static void
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

static bool
serve_api(struct server *sv, int fd)
{
	switch (sv->api) {
	case API_OK:
		return (reply(fd, "200 OK",
		    "Content-Type: application/json\r\n",
		    "{\"methodResponses\":[[\"Mailbox/get\",{\"state\":\"27\","
		    "\"list\":[]},\"m\"]],\"sessionState\":\"0\"}"));
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
static bool
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

static bool
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
	}
	return (false);
}

/* One request: routes by path; false closes the connection. */
static bool
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
		return (reply(fd, "200 OK", json_ct, session_json));
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
	        "&ping=30 ",
	        55)
	    == 0) {
		return (serve_events(sv, fd));
	}
	return (reply(fd, "404 Not Found", "", "unknown path"));
}

/* Accepts connections and serves their requests until stop. */
static void *
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

static void
server_start(struct server *sv)
{
	sv->lfd = script_listen(&sv->port);
	if (sv->session_status == 0) {
		sv->session_status = 200;
	}
	assert_int_equal(pthread_create(&sv->th, NULL, serve, sv), 0);
}

static void
server_stop(struct server *sv)
{
	sv->stop = 1;
	pthread_join(sv->th, NULL);
	close(sv->lfd);
}

static void
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
static struct jmap_client *
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

static json_t *
mailbox_get(void)
{
	return (json_pack("[[s,{s:s,s:n},s]]", "Mailbox/get", "accountId",
	    "u1", "ids", "m"));
}

static void
test_session_and_call(void **state)
{
	const struct jmap_session *s;
	struct jmap_client *cl;
	struct server sv = { 0 };
	struct jmap_err e;
	json_t *calls, *resp = NULL, *args;
	char want[128];
	int i;

	(void)state;
	server_start(&sv);
	cl = open_client(&sv);
	s = jmap_client_session(cl);
	/* relative URLs against where the redirect led */
	snprintf(want, sizeof(want), "http://127.0.0.1:%u/jmap/", sv.port);
	assert_string_equal(s->api_url, want);
	assert_string_equal(s->account_id, "u1");
	assert_int_equal(s->max_calls_in_request, 50);
	calls = mailbox_get();
	assert_int_equal(jmap_call(cl, calls, false, &resp, &e), 0);
	assert_int_equal(
	    jmap_response(resp, "m", "Mailbox/get", &args, NULL, 0, &e), 0);
	assert_string_equal(
	    json_string_value(json_object_get(args, "state")), "27");
	json_decref(resp);
	assert_int_equal(jmap_call(cl, calls, true, &resp, &e), 0);
	json_decref(resp);
	json_decref(calls);
	jmap_client_free(&cl);
	assert_null(cl);
	server_stop(&sv);

	/* .well-known, /jmap, two API calls: all on one connection */
	assert_int_equal(sv.nreqs, 4);
	assert_int_equal(sv.conns, 1);
	for (i = 0; i < sv.nreqs; i++) {
		assert_int_equal(sv.reqs[i].conn, 0);
		assert_string_equal(
		    sv.reqs[i].auth, "Basic YWxpY2U6YWxpY2Vwdw==");
	}
	assert_string_equal(sv.reqs[2].line, "POST /jmap/ HTTP/1.1");
	assert_string_equal(sv.reqs[2].ctype, "application/json");
	assert_string_equal(sv.reqs[2].body,
	    "{\"using\":[\"urn:ietf:params:jmap:core\","
	    "\"urn:ietf:params:jmap:mail\"],\"methodCalls\":[[\"Mailbox/get\","
	    "{\"accountId\":\"u1\",\"ids\":null},\"m\"]]}");
	assert_non_null(strstr(sv.reqs[3].body,
	    "\"urn:ietf:params:jmap:mail\",\"urn:ietf:params:jmap:"
	    "submission\"]"));
}

static void
test_bearer(void **state)
{
	struct jmap_client *cl = NULL;
	struct server sv = { 0 };
	struct jmap_conf c;
	struct jmap_err e;
	char url[128];

	(void)state;
	server_start(&sv);
	conf_for(&sv, &c, url, sizeof(url));
	c.bearer = true;
	c.secret = "tok-123";
	assert_int_equal(jmap_client_open(&c, &cl, &e), 0);
	jmap_client_free(&cl);
	server_stop(&sv);
	assert_string_equal(sv.reqs[1].auth, "Bearer tok-123");
}

static void
test_auth_401(void **state)
{
	struct jmap_client *cl = NULL;
	struct server sv = { 0 };
	struct jmap_conf c;
	struct jmap_err e;
	char url[128], want[128];

	(void)state;
	sv.session_status = 401;
	server_start(&sv);
	conf_for(&sv, &c, url, sizeof(url));
	assert_int_equal(jmap_client_open(&c, &cl, &e), ERR_AUTH);
	server_stop(&sv);
	assert_null(cl);
	assert_int_equal(e.status, ERR_AUTH);
	assert_int_equal(e.retry, RETRY_NEVER);
	snprintf(
	    want, sizeof(want), "HTTP 401 from http://127.0.0.1:%u/", sv.port);
	assert_non_null(strstr(e.text, want));
	assert_null(strstr(e.text, "alicepw"));
}

/* http:// without plaintext: refused before connecting, the session URL
 * and a URL the session gives alike. */
static void
test_plaintext_refused(void **state)
{
	struct jmap_client *cl = NULL;
	struct server sv = { 0 };
	struct jmap_conf c;
	struct jmap_err e;
	char url[128];

	(void)state;
	server_start(&sv);
	conf_for(&sv, &c, url, sizeof(url));
	c.plaintext = false;
	assert_int_equal(jmap_client_open(&c, &cl, &e), ERR_CONFIG);
	assert_null(cl);
	assert_int_equal(e.retry, RETRY_NEVER);
	assert_non_null(strstr(e.text, "plain http:// is refused"));
	c.url = "ftp://127.0.0.1/x";
	assert_int_equal(jmap_client_open(&c, &cl, &e), ERR_CONFIG);
	assert_non_null(strstr(e.text, "not an http(s) URL"));
	server_stop(&sv);
	assert_int_equal(sv.conns, 0);
}

static void
test_connect_refused(void **state)
{
	struct jmap_client *cl = NULL;
	struct server sv = { 0 };
	struct jmap_conf c;
	struct jmap_err e;
	char url[128];

	(void)state;
	server_start(&sv);
	server_stop(&sv); /* the port is now closed */
	conf_for(&sv, &c, url, sizeof(url));
	assert_int_equal(jmap_client_open(&c, &cl, &e), ERR_IO);
	assert_int_equal(e.retry, RETRY_LATER);
	assert_non_null(strstr(e.text, "127.0.0.1"));
}

/* API errors: each mode, its err, its retry and its text around the
 * API URL. */
static const struct {
	enum api_mode mode;
	int rv;
	enum retry retry;
	const char *before, *after;
} api_errors[] = {
	{ API_PROBLEM, ERR_SERVER, RETRY_LATER, "HTTP 400 from ",
	    ": urn:ietf:params:jmap:error:notRequest: methodCalls is "
	    "missing" },
	{ API_NOT_JSON, ERR_PROTO, RETRY_LATER, "answer from ",
	    " is not JSON" },
	{ API_503, ERR_IO, RETRY_LATER, "HTTP 503 from ", "" },
	{ API_HUGE_LEN, ERR_TOOBIG, RETRY_LATER, "", ": answer larger than" },
	{ API_HUGE_STREAM, ERR_TOOBIG, RETRY_LATER, "",
	    ": answer larger than" },
};

static void
test_api_errors(void **state)
{
	struct jmap_client *cl;
	struct jmap_err e;
	json_t *calls, *resp;
	char want[256];
	size_t i;

	(void)state;
	calls = mailbox_get();
	for (i = 0; i < ARRAY_LEN(api_errors); i++) {
		struct server sv = { 0 };

		sv.api = api_errors[i].mode;
		server_start(&sv);
		cl = open_client(&sv);
		resp = NULL;
		assert_int_equal(
		    jmap_call(cl, calls, false, &resp, &e), api_errors[i].rv);
		assert_null(resp);
		assert_int_equal(e.status, api_errors[i].rv);
		assert_int_equal(e.retry, api_errors[i].retry);
		snprintf(want, sizeof(want), "%shttp://127.0.0.1:%u/jmap/%s",
		    api_errors[i].before, sv.port, api_errors[i].after);
		if (strstr(e.text, want) == NULL) {
			fail_msg("#%zu: \"%s\", want \"%s\"", i, e.text, want);
		}
		/* the client stays usable after any of them */
		sv.api = API_OK;
		assert_int_equal(jmap_call(cl, calls, false, &resp, &e), 0);
		json_decref(resp);
		jmap_client_free(&cl);
		server_stop(&sv);
		/* over the bound: the transfer stopped at once, not after */
		if (api_errors[i].mode == API_HUGE_LEN) {
			assert_true(sv.huge_sent < (8u << 20));
		}
		if (api_errors[i].mode == API_HUGE_STREAM) {
			assert_true(
			    sv.huge_sent < JMAP_MAX_RESPONSE + (8u << 20));
		}
	}
	json_decref(calls);
}

/* Too many calls for the session's limit: refused without a request. */
static void
test_call_limits(void **state)
{
	struct jmap_client *cl;
	struct server sv = { 0 };
	struct jmap_err e;
	json_t *calls, *resp;
	int i;

	(void)state;
	server_start(&sv);
	cl = open_client(&sv);
	calls = json_array();
	for (i = 0; i < 51; i++) {
		json_array_append_new(
		    calls, json_pack("[s,{},s]", "Core/echo", "e"));
	}
	assert_int_equal(jmap_call(cl, calls, false, &resp, &e), ERR_TOOBIG);
	json_decref(calls);
	jmap_client_free(&cl);
	server_stop(&sv);
	assert_int_equal(sv.nreqs, 2);
}

/* Collects a download. */
struct sink {
	char data[BLOB_PIECE * BLOB_PIECES];
	size_t len;
	int calls;
	int fail;
};

static int
on_chunk(const char *p, size_t n, void *arg)
{
	struct sink *k = arg;

	assert_true(n > 0);
	assert_true(k->len + n <= sizeof(k->data));
	memcpy(k->data + k->len, p, n);
	k->len += n;
	k->calls++;
	return (k->fail);
}

static void
check_blob(const struct sink *k, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (k->data[i] != (char)('a' + i / BLOB_PIECE)) {
			fail_msg("byte %zu is '%c'", i, k->data[i]);
		}
	}
}

static void
test_download(void **state)
{
	static const enum dl_mode modes[] = { DL_CHUNKS_LEN, DL_CHUNKS };
	const size_t size = BLOB_PIECE * BLOB_PIECES;
	struct jmap_client *cl;
	struct jmap_err e;
	struct sink k;
	uint64_t total;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(modes); i++) {
		struct server sv = { 0 };

		sv.dl = modes[i];
		server_start(&sv);
		cl = open_client(&sv);
		/* whole: several chunks, in order */
		memset(&k, 0, sizeof(k));
		assert_int_equal(
		    jmap_download(cl, "B1", 0, on_chunk, &k, &total, &e), 0);
		assert_int_equal(total, size);
		assert_int_equal(k.len, size);
		assert_true(k.calls >= 2);
		check_blob(&k, size);
		/* exactly at the max */
		memset(&k, 0, sizeof(k));
		assert_int_equal(
		    jmap_download(cl, "B1", size, on_chunk, &k, &total, &e),
		    0);
		assert_int_equal(total, size);
		/* over the max: ERR_TOOBIG, never more than max delivered */
		memset(&k, 0, sizeof(k));
		assert_int_equal(jmap_download(cl, "B1", 2 * BLOB_PIECE + 1,
		                     on_chunk, &k, &total, &e),
		    ERR_TOOBIG);
		assert_int_equal(e.status, ERR_TOOBIG);
		assert_int_equal(e.retry, RETRY_NEVER);
		assert_true(k.len <= 2 * BLOB_PIECE + 1);
		assert_int_equal(total, k.len);
		check_blob(&k, k.len);
		if (modes[i] == DL_CHUNKS_LEN) {
			assert_int_equal(k.len, 0); /* announced: no byte */
		}
		/* the function's error comes back as is, e untouched */
		memset(&k, 0, sizeof(k));
		k.fail = ERR_DB;
		assert_int_equal(
		    jmap_download(cl, "B1", 0, on_chunk, &k, NULL, &e),
		    ERR_DB);
		assert_int_equal(e.status, 0);
		assert_int_equal(k.calls, 1);
		jmap_client_free(&cl);
		server_stop(&sv);
	}
}

static void
test_download_404(void **state)
{
	struct jmap_client *cl;
	struct server sv = { 0 };
	struct jmap_err e;
	struct sink k;

	(void)state;
	sv.dl = DL_404;
	server_start(&sv);
	cl = open_client(&sv);
	memset(&k, 0, sizeof(k));
	assert_int_equal(
	    jmap_download(cl, "B1", 0, on_chunk, &k, NULL, &e), ERR_NOTFOUND);
	assert_int_equal(e.retry, RETRY_NEVER);
	assert_int_equal(k.calls, 0); /* the error page is not the blob */
	assert_non_null(strstr(e.text, "HTTP 404 from"));
	jmap_client_free(&cl);
	server_stop(&sv);
}

static void
test_upload(void **state)
{
	struct jmap_client *cl;
	struct server sv = { 0 };
	struct jmap_err e;
	char *blob = NULL;

	(void)state;
	server_start(&sv);
	cl = open_client(&sv);
	assert_int_equal(jmap_upload(cl, "Subject: x\r\n\r\nhi\r\n", 18,
	                     "message/rfc822", &blob, &e),
	    0);
	assert_string_equal(blob, "G5173b");
	free(blob);
	assert_int_equal(
	    jmap_upload(cl, "x", 1, "text/plain\r\nX-Evil: 1", &blob, &e),
	    ERR_INVAL);
	assert_null(blob);
	jmap_client_free(&cl);
	server_stop(&sv);
	assert_int_equal(sv.nreqs, 3);
	assert_string_equal(sv.reqs[2].line, "POST /jmap/upload/u1/ HTTP/1.1");
	assert_string_equal(sv.reqs[2].ctype, "message/rfc822");
	assert_string_equal(sv.reqs[2].body, "Subject: x\r\n\r\nhi\r\n");
	assert_int_equal(sv.conns, 1);
}

/* Event source ------------------------------------------------------------ */

struct events {
	int n;
	bool changed;
	const char *account;
};

static int
on_event(const struct jmap_sse_event *ev, void *arg)
{
	struct events *x = arg;
	bool changed = false;

	x->n++;
	assert_string_equal(ev->type, "state");
	assert_int_equal(jmap_state_change_parse(
	                     ev->data, ev->data_len, x->account, &changed),
	    0);
	x->changed = x->changed || changed;
	return (0);
}

static void
test_event_source_unsupported(void **state)
{
	static const enum es_mode modes[] = { ES_204, ES_HTML };
	struct jmap_client *cl;
	struct jmap_sse *p;
	struct jmap_err e;
	struct events x = { 0, false, "u1" };
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(modes); i++) {
		struct server sv = { 0 };

		sv.es = modes[i];
		server_start(&sv);
		cl = open_client(&sv);
		assert_int_equal(jmap_sse_new(on_event, &x, &p), 0);
		assert_int_equal(
		    jmap_event_source(cl, 30, 5000, p, &e), ERR_UNSUPPORTED);
		assert_int_equal(e.status, ERR_UNSUPPORTED);
		assert_non_null(strstr(e.text,
		    modes[i] == ES_204 ? "204 No Content"
		                       : "not an event stream"));
		assert_int_equal(x.n, 0);
		jmap_sse_free(&p);
		jmap_client_free(&cl);
		server_stop(&sv);
		assert_string_equal(sv.reqs[2].accept, "text/event-stream");
	}
}

static void
test_event_source_stream(void **state)
{
	struct jmap_client *cl;
	struct jmap_sse *p;
	struct jmap_err e;
	struct events x = { 0, false, "u1" };
	struct server sv = { 0 };
	int64_t t0, took;

	(void)state;
	/* the server closes after its events: 0 */
	sv.es = ES_STREAM_CLOSE;
	server_start(&sv);
	cl = open_client(&sv);
	assert_int_equal(jmap_sse_new(on_event, &x, &p), 0);
	if (jmap_event_source(cl, 30, 5000, p, &e) != 0) {
		fail_msg("event source: %s", e.text);
	}
	assert_int_equal(x.n, 1);
	assert_true(x.changed);
	jmap_sse_free(&p);

	/* the server holds the stream: our deadline ends it, 0 */
	sv.es = ES_STREAM_HOLD;
	memset(&x, 0, sizeof(x));
	x.account = "u1";
	assert_int_equal(jmap_sse_new(on_event, &x, &p), 0);
	t0 = clock_mono_ms();
	assert_int_equal(jmap_event_source(cl, 30, 400, p, &e), 0);
	took = clock_mono_ms() - t0;
	assert_true(took >= 400 && took < 3000);
	assert_int_equal(x.n, 1);
	jmap_sse_free(&p);
	jmap_client_free(&cl);
	server_stop(&sv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_and_call),
		cmocka_unit_test(test_bearer),
		cmocka_unit_test(test_auth_401),
		cmocka_unit_test(test_plaintext_refused),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_api_errors),
		cmocka_unit_test(test_call_limits),
		cmocka_unit_test(test_download),
		cmocka_unit_test(test_download_404),
		cmocka_unit_test(test_upload),
		cmocka_unit_test(test_event_source_unsupported),
		cmocka_unit_test(test_event_source_stream),
	};
	int rv;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return (rv);
}
