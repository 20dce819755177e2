/*
 * pkg/jmap: a JMAP client (RFC 8620 core, RFC 8621 mail) for one account:
 * HTTP through libcurl (one easy handle, so the connection is kept alive
 * across requests), JSON through jansson. It knows nothing of proto,
 * batches or the store: pkg/sync builds method calls and maps answers.
 *
 *   client.c   session discovery, API requests, uploads, downloads
 *   session.c  the session object parsed into struct jmap_session (pure)
 *   url.c      URL templates (RFC 6570 level 1) and relative URLs (pure)
 *   resp.c     finding one method's answer in methodResponses (pure)
 *   sse.c      the text/event-stream parser (pure, incremental, bounded)
 *   es.c       the EventSource stream: blocking, or on a curl multi handle
 *
 * Errors: every fallible call returns an enum err and fills struct
 * jmap_err with the retry advice and a human text that never holds a
 * credential.
 *
 * libcurl: main() calls curl_global_init() once before the first client
 * (curl_easy_init would otherwise do it, which is not thread-safe).
 */
#ifndef MAILSYNC_JMAP_H
#define MAILSYNC_JMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/base.h"

/* Bytes of one JSON answer (session or API) accepted at most. */
#define JMAP_MAX_RESPONSE (64u * 1024 * 1024)
/* Longest line and longest event the EventSource parser accepts. */
#define JMAP_SSE_MAX_EVENT (1024u * 1024)

struct jmap_err {
	int status;	 /* enum err; 0 = none */
	enum retry retry;
	char text[512];	 /* "HTTP 401 from http://host/jmap/" ... */
};

/* How to reach the account; strings borrowed for the call. */
struct jmap_conf {
	/* Session URL, usually https://HOST/.well-known/jmap; http:// only
	 * with plaintext (ERR_CONFIG, RETRY_NEVER otherwise). */
	const char *url;
	const char *username;
	const char *secret; /* password (HTTP Basic), or bearer token */
	bool bearer;	    /* secret is a bearer token */
	const char *ca_pem; /* PEM CA bundle text; NULL: system CAs */
	bool plaintext;
	int connect_timeout_ms; /* 0: 30 s */
	int io_timeout_ms;	/* no byte for this long fails (0: 60 s) */
};

/* The parts of the session object mailsync uses. URLs are absolute
 * (resolved against the URL the session came from). */
struct jmap_session {
	char *api_url;
	char *download_url;	/* template: {accountId} {blobId} {name} {type} */
	char *upload_url;	/* template: {accountId} */
	char *event_source_url; /* template: {types} {closeafter} {ping}; NULL */
	char *account_id;	/* primaryAccounts["urn:ietf:params:jmap:mail"] */
	char *state;
	bool submission; /* urn:ietf:params:jmap:submission offered */
	/* core capability limits (defaults when absent: 16, 4, 10 MiB,
	 * 500, 50 MiB, 1 as RFC 8620 suggests as minimums) */
	uint32_t max_calls_in_request;
	uint32_t max_objects_in_get;
	uint32_t max_objects_in_set;
	uint64_t max_size_request;
	uint64_t max_size_upload;
	uint32_t max_concurrent_requests;
};

/*
 * Parses a session object (text, len bytes, borrowed) fetched from
 * base_url into *s (heap strings; jmap_session_release frees). ERR_PROTO
 * with a precise text when it is not JSON, lacks the mail capability, a
 * primary mail account or apiUrl/downloadUrl/uploadUrl.
 */
int jmap_session_parse(const char *text, size_t len, const char *base_url,
    struct jmap_session *s, struct jmap_err *e);
void jmap_session_release(struct jmap_session *s);

/*
 * Expands a URL template: each {name} is replaced by the percent-encoded
 * value of the matching vars[i] (names[i]); unknown names stay as they
 * are. Result malloc'd in *out_r (caller frees). ERR_INVAL on an
 * unterminated brace.
 */
int jmap_url_expand(const char *tmpl, const char *const *names,
    const char *const *values, size_t n, char **out_r);
/* Resolves ref (absolute or relative, RFC 3986) against base; malloc'd. */
int jmap_url_resolve(const char *base, const char *ref, char **out_r);

/*
 * Finds the answer to call id cid in a methodResponses array (borrowed):
 * when its method name is `name`, *args_r = its arguments object
 * (borrowed from responses). When the answer is ["error", {type,
 * description}, cid], returns ERR_SERVER with e->text "Email/get: <type>:
 * <description>" and copies the type into type_r (cap bytes; may be NULL),
 * e.g. "cannotCalculateChanges", "stateMismatch". ERR_PROTO when there is
 * no answer with that id or its shape is wrong.
 */
int jmap_response(json_t *responses, const char *cid, const char *name,
    json_t **args_r, char *type_r, size_t cap, struct jmap_err *e);

/* Client (I/O) ----------------------------------------------------------- */

struct jmap_client;

/*
 * Fetches the session (following redirects, as the .well-known URL
 * redirects) and parses it. HTTP 401/403 is ERR_AUTH, RETRY_NEVER; a
 * certificate failure ERR_TLS, RETRY_NEVER; connection failures and 5xx
 * ERR_IO, RETRY_LATER. conf is copied (the copy of the secret is wiped at
 * free). *cl_r is NULL on failure.
 */
int jmap_client_open(const struct jmap_conf *conf, struct jmap_client **cl_r,
    struct jmap_err *e);
const struct jmap_session *jmap_client_session(const struct jmap_client *cl);
/* False once an API answer's sessionState differed from the session's
 * state: the client must not serve another job (its session is old). */
bool jmap_client_reusable(const struct jmap_client *cl);
void jmap_client_free(struct jmap_client **cl);

/*
 * POSTs {"using": [core, mail, and submission when `submission`],
 * "methodCalls": calls} to apiUrl. calls is borrowed. On success
 * *responses_r is the methodResponses array (a new reference: the caller
 * json_decref()s it). A request-level error (RFC 8620 3.6.1 problem
 * JSON, HTTP 400) is ERR_SERVER with its type and detail in e->text;
 * answers larger than JMAP_MAX_RESPONSE are ERR_TOOBIG. A request with
 * an EmailSubmission/set goes on a new connection, so that libcurl never
 * sends it twice (it repeats a request whose reused connection died
 * before any answer).
 */
int jmap_call(struct jmap_client *cl, json_t *calls, bool submission,
    json_t **responses_r, struct jmap_err *e);

/* Receives a downloaded blob chunk by chunk (n > 0, in order). A non-zero
 * return aborts the download with that error. */
typedef int (*jmap_chunk_fn)(const char *p, size_t n, void *arg);

/*
 * Downloads blob_id through downloadUrl, streamed to fn (never whole in
 * memory). More than max bytes (0: no limit) aborts with ERR_TOOBIG.
 * *total_r (may be NULL) receives the bytes delivered. HTTP 404 is
 * ERR_NOTFOUND, RETRY_NEVER.
 */
int jmap_download(struct jmap_client *cl, const char *blob_id, uint64_t max,
    jmap_chunk_fn fn, void *arg, uint64_t *total_r, struct jmap_err *e);

/*
 * Uploads len bytes (borrowed) of type (e.g. "message/rfc822") to
 * uploadUrl; *blob_id_r receives the blobId (malloc'd, caller frees).
 */
int jmap_upload(struct jmap_client *cl, const char *data, size_t len,
    const char *type, char **blob_id_r, struct jmap_err *e);

/* EventSource (sse.c, pure) ---------------------------------------------- */

/* One complete event: type ("state" for JMAP StateChange; "message" when
 * the stream names none), data (the data lines joined by \n), id. All
 * borrowed for the callback only. */
struct jmap_sse_event {
	const char *type;
	const char *data;
	size_t data_len;
	const char *id; /* "" when none */
};
typedef int (*jmap_sse_fn)(const struct jmap_sse_event *ev, void *arg);

struct jmap_sse;
int jmap_sse_new(jmap_sse_fn fn, void *arg, struct jmap_sse **p_r);
void jmap_sse_free(struct jmap_sse **p);
/*
 * Feeds n bytes of the stream (any split: a CRLF may straddle two
 * calls). Calls fn for each event completed by a blank line; comment
 * lines (": ping") are skipped; "retry:" is remembered. A line or an
 * event larger than JMAP_SSE_MAX_EVENT is ERR_TOOBIG (the parser is then
 * unusable). fn's non-zero return is returned.
 */
int jmap_sse_feed(struct jmap_sse *p, const char *buf, size_t n);
/* The last "retry:" value in ms, 0 when none was sent. */
uint32_t jmap_sse_retry_ms(const struct jmap_sse *p);

/*
 * Reads a StateChange event's data (RFC 8620 7.1: {"@type":"StateChange",
 * "changed":{accountId:{TypeName:state}}}) and tells whether account_id's
 * Email, Mailbox or EmailDelivery state changed. ERR_PROTO when data is
 * not such an object.
 */
int jmap_state_change_parse(const char *data, size_t len,
    const char *account_id, bool *changed_r);

/*
 * Opens the EventSource stream (types=*, closeafter=no, ping=ping_s) and
 * feeds what arrives to p until timeout_ms passes (0: forever), fn stops
 * it (its error is returned) or the server closes. A server that answers
 * 204 No Content or anything but text/event-stream (as Cyrus 3.6 does) is
 * ERR_UNSUPPORTED: the caller polls instead.
 */
int jmap_event_source(struct jmap_client *cl, int ping_s, int timeout_ms,
    struct jmap_sse *p, struct jmap_err *e);

/* EventSource on a curl multi handle (es.c) ------------------------------ */

/*
 * One EventSource stream (types=*, closeafter=no, ping=ping_s) run by the
 * caller's curl multi handle, so that one thread holds many. It has its
 * own easy handle: the client stays free for API requests meanwhile.
 * What arrives is fed to p as in jmap_event_source(), from inside the
 * caller's curl_multi_socket_action() (p's function must not touch the
 * multi handle). A stream silent for ping_s plus the client's I/O timeout
 * is dead (ping_s 0: silence is normal, no such check).
 *
 * cl and p are borrowed and must outlive the stream; *es_r is freed by
 * jmap_es_free(). ERR_UNSUPPORTED, RETRY_NEVER when the session offers no
 * eventSourceUrl; *es_r is NULL on failure.
 */
struct jmap_es;
int jmap_es_start(struct jmap_client *cl, int ping_s, struct jmap_sse *p,
    struct jmap_es **es_r, struct jmap_err *e);
/* The stream's easy handle, a CURL * (opaque here to keep curl.h out of
 * this header), borrowed from es: the caller adds it to its multi handle
 * and removes it again before jmap_es_free(). */
void *jmap_es_easy(struct jmap_es *es);
/* True once the server answered 2xx with text/event-stream (the stream
 * is up, before any event). */
bool jmap_es_up(const struct jmap_es *es);
/* The HTTP status of the answer (0 before one). */
long jmap_es_http_status(const struct jmap_es *es);
/*
 * Why the stream ended, once the multi handle reported its transfer done
 * with result (a CURLcode). Never 0, as the stream is endless:
 *  - ERR_UNSUPPORTED, RETRY_NEVER: 204 No Content, an answer that is not
 *    text/event-stream, HTTP 404/405/501 (poll instead; Cyrus 3.6);
 *  - ERR_TOOBIG, RETRY_LATER: an event or line over JMAP_SSE_MAX_EVENT;
 *  - RETRY_LATER: the server ended the stream (ERR_IO), no byte for ping_s
 *    plus the I/O timeout (ERR_TIMEOUT), curl and HTTP errors as for every
 *    request (a 401 is ERR_AUTH, RETRY_NEVER);
 *  - p's function's own error, with e saying so (RETRY_LATER).
 * Exactly the classification of jmap_event_source() (same code).
 */
int jmap_es_finish(struct jmap_es *es, int result, struct jmap_err *e);
/* Frees es and its easy handle; NULLs *es. The handle must no longer be
 * in a multi handle. */
void jmap_es_free(struct jmap_es **es);

#endif
