/*
 * client_int.h: the client's state and one transfer, shared by client.c
 * (session, API calls, the request machinery), transfer.c (blobs) and
 * es.c (the EventSource stream, blocking or on a curl multi handle).
 * Nothing outside pkg/jmap includes it.
 */
#ifndef MAILSYNC_JMAP_CLIENT_INT_H
#define MAILSYNC_JMAP_CLIENT_INT_H

#include <curl/curl.h>

#include "jmap/jmap_int.h"

struct jmap_client {
	CURL *h;
	struct jmap_session s;
	char *url; /* the session URL as configured */
	char *username;
	char *secret; /* wiped at free */
	char *ca_pem;
	bool bearer, plaintext;
	long connect_timeout_ms;
	long io_timeout_s;
	/* The next POST on a new connection: libcurl silently sends again a
	 * request whose reused connection died before any answer, which an
	 * EmailSubmission/set must never be (jmap_call sets it, the POST
	 * clears it). */
	bool fresh_next;
	/* An answer's sessionState differed from the session's state: the
	 * session must be fetched again before the client is used again
	 * (RFC 8620 3.4), so it is not kept for another job. */
	bool session_stale;
	char errbuf[CURL_ERROR_SIZE];
};

enum xfer_mode { XFER_JSON, XFER_STREAM, XFER_SSE };

/* Why the write callback stopped a transfer. */
enum xfer_stop {
	STOP_NONE,
	STOP_TOOBIG, /* over the limit */
	STOP_FN, /* the caller's function (download, SSE) failed */
	STOP_UNSUPPORTED, /* event stream answered with another type */
	STOP_ERRBODY, /* an error answer's body is too long to keep */
};

struct xfer {
	struct jmap_client *cl;
	/* The easy handle and its error buffer: the client's own (cl->h,
	 * cl->errbuf), or an EventSource's (es.c), which has its own so
	 * that the client stays free for API requests. */
	CURL *h;
	char *errbuf;
	enum xfer_mode mode;
	bool started; /* the first callback looked at status and type */
	long code;
	enum xfer_stop stop;
	int fn_err;
	struct buf body; /* XFER_JSON, or the error body of any mode */
	uint64_t max; /* XFER_STREAM: 0 none */
	uint64_t total; /* XFER_STREAM: bytes delivered */
	jmap_chunk_fn fn;
	void *arg;
	struct jmap_sse *sse;
};

/* Options every request has (URL, protocols, TLS, timeouts, auth, the
 * write callback of x), on x->h after a reset; strings are copied by
 * curl. */
CURLcode jmap_http_setup(
    struct jmap_client *cl, const char *url, struct xfer *x);
/* Runs the request set up on x->h, then jmap_http_classify(). */
int jmap_http_perform(struct jmap_client *cl, const char *url, struct xfer *x,
    struct jmap_err *e);
/* Maps the end of x's transfer (cc: curl's result) into e: curl, HTTP
 * and callback failures (a failure of the caller's function is returned
 * with e untouched). Shared by the blocking perform and a transfer run
 * by a curl multi handle (es.c). */
int jmap_http_classify(
    struct xfer *x, const char *url, CURLcode cc, struct jmap_err *e);
/* A transfer of mode for cl on the client's handle; x->body is released
 * by the caller. */
void jmap_xfer_init(
    struct xfer *x, struct jmap_client *cl, enum xfer_mode mode);
/* e for an option libcurl refused. */
int jmap_option_failed(CURLcode cc, struct jmap_err *e);
/* POSTs body (len bytes) of content type ct to url; the JSON answer in
 * *root_r (caller decrefs). */
int jmap_post_json(struct jmap_client *cl, const char *url, const char *ct,
    const char *body, size_t len, json_t **root_r, struct jmap_err *e);
/* True for a text/event-stream Content-Type. */
bool jmap_is_event_stream(const char *ct);

#endif
