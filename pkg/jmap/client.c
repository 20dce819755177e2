/*
 * client.c: the JMAP client's I/O through libcurl: the session GET and
 * API POSTs, and the request machinery that transfer.c (blob upload and
 * download) and es.c (the EventSource stream) share through client_int.h.
 *
 * One easy handle per client, reset before every request (curl keeps its
 * connection cache across a reset), so consecutive requests reuse the
 * connection. The caller (main) calls curl_global_init(); curl_easy_init
 * would otherwise do it, which is not thread-safe.
 *
 * Security: TLS peer and host are always verified (against conf->ca_pem
 * when given); plain http:// is refused unless the account consented
 * (conf->plaintext): the session URL, every URL the session gives, and
 * redirects (CURLOPT_PROTOCOLS_STR / REDIR_PROTOCOLS_STR "https").
 * Redirects are followed for the session GET only, and curl does not send
 * credentials to another host on a redirect. The secret is copied once,
 * wiped at free, never logged; error texts name URLs without userinfo.
 *
 * Bodies: every response goes through one write callback that knows the
 * mode: a JSON answer into a buffer bounded by JMAP_MAX_RESPONSE, a
 * download into the caller's function, an event stream into the SSE
 * parser. A non-2xx answer's body is kept (bounded) for its problem JSON.
 * Whatever the limit, the transfer is aborted by the callback that would
 * cross it, before the bytes are delivered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "jmap/client_int.h"

#define CAP_CORE "urn:ietf:params:jmap:core"
#define CAP_MAIL "urn:ietf:params:jmap:mail"
#define CAP_SUBMISSION "urn:ietf:params:jmap:submission"

/* Bytes of an error answer's body kept for its problem JSON. */
#define JMAP_MAX_ERROR_BODY (16u * 1024)

/* Helpers ---------------------------------------------------------------- */

static bool
url_allowed(const struct jmap_client *cl, const char *url)
{
	return (jmap_url_has_scheme(url, "https")
	    || (cl->plaintext && jmap_url_has_scheme(url, "http")));
}

/* A URL not allowed as ERR_CONFIG (the account's settings decide). */
static int
url_refused(const char *what, const char *url, struct jmap_err *e)
{
	char shown[JMAP_URL_SHOWN + 8];

	jmap_url_shown(url, shown, sizeof(shown));
	if (jmap_url_has_scheme(url, "http")) {
		return (jmap_err_set(e, ERR_CONFIG, RETRY_NEVER,
		    "%s %s: plain http:// is refused without plaintext", what,
		    shown));
	}
	return (jmap_err_set(e, ERR_CONFIG, RETRY_NEVER,
	    "%s %s is not an http(s) URL", what, shown));
}

/* curl results and what they mean; unlisted: ERR_IO, RETRY_LATER. */
static const struct {
	CURLcode cc;
	int status;
	enum retry retry;
} client_curl_errors[] = {
	{ CURLE_PEER_FAILED_VERIFICATION, ERR_TLS, RETRY_NEVER },
	{ CURLE_SSL_CACERT_BADFILE, ERR_TLS, RETRY_NEVER },
	{ CURLE_SSL_CERTPROBLEM, ERR_TLS, RETRY_NEVER },
	{ CURLE_SSL_ISSUER_ERROR, ERR_TLS, RETRY_NEVER },
	{ CURLE_SSL_CONNECT_ERROR, ERR_TLS, RETRY_LATER },
	{ CURLE_UNSUPPORTED_PROTOCOL, ERR_CONFIG, RETRY_NEVER },
	{ CURLE_URL_MALFORMAT, ERR_CONFIG, RETRY_NEVER },
	{ CURLE_TOO_MANY_REDIRECTS, ERR_PROTO, RETRY_LATER },
	{ CURLE_OPERATION_TIMEDOUT, ERR_TIMEOUT, RETRY_LATER },
	{ CURLE_FILESIZE_EXCEEDED, ERR_TOOBIG, RETRY_LATER },
	{ CURLE_OUT_OF_MEMORY, ERR_NOMEM, RETRY_LATER },
	{ CURLE_LOGIN_DENIED, ERR_AUTH, RETRY_NEVER },
};

static int
curl_failed(
    const struct xfer *x, CURLcode cc, const char *shown, struct jmap_err *e)
{
	const char *detail
	    = x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(cc);
	size_t i;

	if (cc == CURLE_UNSUPPORTED_PROTOCOL && !x->cl->plaintext) {
		/* an http:// redirect, as the first URL was checked */
		return (jmap_err_set(e, ERR_CONFIG, RETRY_NEVER,
		    "%s: redirected to a URL refused without plaintext (%s)",
		    shown, detail));
	}
	for (i = 0; i < ARRAY_LEN(client_curl_errors); i++) {
		if (client_curl_errors[i].cc == cc) {
			return (jmap_err_set(e, client_curl_errors[i].status,
			    client_curl_errors[i].retry, "%s: %s", shown,
			    detail));
		}
	}
	return (jmap_err_set(e, ERR_IO, RETRY_LATER, "%s: %s", shown, detail));
}

/* HTTP statuses that are not a success; unlisted 4xx: ERR_SERVER. */
static const struct {
	long code;
	int status;
	enum retry retry;
} client_http_errors[] = {
	{ 401, ERR_AUTH, RETRY_NEVER },
	{ 403, ERR_AUTH, RETRY_NEVER },
	{ 404, ERR_NOTFOUND, RETRY_NEVER },
	{ 410, ERR_NOTFOUND, RETRY_NEVER },
	{ 413, ERR_TOOBIG, RETRY_NEVER },
	{ 408, ERR_TIMEOUT, RETRY_LATER },
	{ 429, ERR_IO, RETRY_LATER },
};

/* A problem JSON (RFC 7807, RFC 8620 3.6.1) in the error body: its type
 * and detail (or title) appended to the text. */
static void
problem_text(const struct buf *body, char *out, size_t cap)
{
	const char *type, *detail;
	json_t *root;

	out[0] = '\0';
	if (body->len == 0) {
		return;
	}
	root = json_loadb(body->data, body->len, 0, NULL);
	type = json_string_value(json_object_get(root, "type"));
	detail = json_string_value(json_object_get(root, "detail"));
	if (detail == NULL) {
		detail = json_string_value(json_object_get(root, "title"));
	}
	if (type != NULL) {
		snprintf(out, cap, ": %.120s%s%.200s", type,
		    detail != NULL ? ": " : "", detail != NULL ? detail : "");
	}
	json_decref(root);
}

static int
http_failed(
    long code, const struct buf *body, const char *shown, struct jmap_err *e)
{
	char problem[360];
	size_t i;

	problem_text(body, problem, sizeof(problem));
	for (i = 0; i < ARRAY_LEN(client_http_errors); i++) {
		if (client_http_errors[i].code == code) {
			return (jmap_err_set(e, client_http_errors[i].status,
			    client_http_errors[i].retry, "HTTP %ld from %s%s",
			    code, shown, problem));
		}
	}
	if (code >= 500) {
		return (jmap_err_set(e, ERR_IO, RETRY_LATER,
		    "HTTP %ld from %s%s", code, shown, problem));
	}
	if (code >= 400) {
		/* the server refused the request itself (3.6.1) */
		return (jmap_err_set(e, ERR_SERVER, RETRY_LATER,
		    "HTTP %ld from %s%s", code, shown, problem));
	}
	return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
	    "HTTP %ld from %s: not an answer to the request", code, shown));
}

/* The write callback ------------------------------------------------------ */

bool
jmap_is_event_stream(const char *ct)
{
	return (ct != NULL && strncasecmp(ct, "text/event-stream", 17) == 0
	    && (ct[17] == '\0' || ct[17] == ';' || ct[17] == ' '));
}

/*
 * The first bytes of a response's body (code): is it the answer, or an
 * error's body? Run again if a later response of the same transfer (a
 * redirect curl follows) brings a body too.
 */
static bool
xfer_start(struct xfer *x, long code)
{
	curl_off_t announced = -1;
	char *ct = NULL;

	x->started = true;
	x->code = code;
	buf_reset(&x->body);
	if (code < 200 || code > 299) {
		x->body.max = JMAP_MAX_ERROR_BODY;
		return (true);
	}
	x->body.max = JMAP_MAX_RESPONSE;
	if (x->mode == XFER_SSE) {
		curl_easy_getinfo(x->h, CURLINFO_CONTENT_TYPE, &ct);
		if (!jmap_is_event_stream(ct)) {
			x->stop = STOP_UNSUPPORTED;
			return (false);
		}
	}
	/* an announced size over the limit fails before any byte */
	curl_easy_getinfo(
	    x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
	if (announced > 0
	    && ((x->mode == XFER_JSON && (uint64_t)announced > x->body.max)
	        || (x->mode == XFER_STREAM && x->max != 0
	            && (uint64_t)announced > x->max))) {
		x->stop = STOP_TOOBIG;
		return (false);
	}
	return (true);
}

static size_t
xfer_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	long code = 0;
	int rv;

	if (n == 0) {
		return (0);
	}
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
	if ((!x->started || code != x->code) && !xfer_start(x, code)) {
		return (0);
	}
	if (x->code < 200 || x->code > 299) {
		if (buf_add(&x->body, p, n) != 0) {
			x->stop = STOP_ERRBODY;
			return (0);
		}
		return (n);
	}
	switch (x->mode) {
	case XFER_JSON:
		rv = buf_add(&x->body, p, n);
		if (rv != 0) {
			x->stop = rv == ERR_TOOBIG ? STOP_TOOBIG : STOP_FN;
			x->fn_err = rv;
			return (0);
		}
		break;
	case XFER_STREAM:
		if (x->max != 0 && (n > x->max || x->total > x->max - n)) {
			x->stop = STOP_TOOBIG;
			return (0);
		}
		rv = x->fn(p, n, x->arg);
		if (rv != 0) {
			x->stop = STOP_FN;
			x->fn_err = rv;
			return (0);
		}
		x->total += n;
		break;
	case XFER_SSE:
		rv = jmap_sse_feed(x->sse, p, n);
		if (rv != 0) {
			x->stop = STOP_FN;
			x->fn_err = rv;
			return (0);
		}
		break;
	}
	return (n);
}

/* Requests ---------------------------------------------------------------- */

/*
 * Options every request has: URL, protocols, TLS, timeouts, auth, the
 * write callback. Strings are copied by curl.
 */
CURLcode
jmap_http_setup(struct jmap_client *cl, const char *url, struct xfer *x)
{
	const char *protos = cl->plaintext ? "http,https" : "https";
	CURLcode cc = CURLE_OK;

	curl_easy_reset(x->h);
	x->errbuf[0] = '\0';
#define SET_(opt, val)                                                        \
	do {                                                                  \
		if (cc == CURLE_OK) {                                         \
			cc = curl_easy_setopt(x->h, opt, val);                \
		}                                                             \
	} while (0)
	SET_(CURLOPT_ERRORBUFFER, x->errbuf);
	SET_(CURLOPT_NOSIGNAL, 1L);
	SET_(CURLOPT_URL, url);
	SET_(CURLOPT_PROTOCOLS_STR, protos);
	SET_(CURLOPT_REDIR_PROTOCOLS_STR, protos);
	SET_(CURLOPT_SSL_VERIFYPEER, 1L);
	SET_(CURLOPT_SSL_VERIFYHOST, 2L);
	SET_(CURLOPT_CONNECTTIMEOUT_MS, cl->connect_timeout_ms);
	/* A stalled server: under 1 byte/s for the I/O timeout. */
	SET_(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET_(CURLOPT_LOW_SPEED_TIME, cl->io_timeout_s);
	SET_(CURLOPT_USERAGENT, "mailsync");
	SET_(CURLOPT_WRITEFUNCTION, xfer_write);
	SET_(CURLOPT_WRITEDATA, x);
	SET_(CURLOPT_USERNAME, cl->username);
	if (cl->bearer) {
		SET_(CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		SET_(CURLOPT_XOAUTH2_BEARER, cl->secret);
	} else {
		/* Basic only: sent with the first request, no 401 round */
		SET_(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		SET_(CURLOPT_PASSWORD, cl->secret);
	}
	if (cl->ca_pem != NULL && cl->ca_pem[0] != '\0') {
		struct curl_blob ca
		    = { cl->ca_pem, strlen(cl->ca_pem), CURL_BLOB_COPY };

		SET_(CURLOPT_CAINFO_BLOB, &ca);
	}
#undef SET_
	return (cc);
}

/* Runs the request set up on x->h and classifies the outcome. */
int
jmap_http_perform(struct jmap_client *cl, const char *url, struct xfer *x,
    struct jmap_err *e)
{
	(void)cl;
	return (jmap_http_classify(x, url, curl_easy_perform(x->h), e));
}

/*
 * The outcome of the transfer on x->h that ended with cc: 0 with a 2xx
 * answer in x (its body in x->body for XFER_JSON), or the error in e.
 * An XFER_STREAM/XFER_SSE function's error is returned as is, e left
 * untouched, so the caller can tell its own failure from the server's.
 */
int
jmap_http_classify(
    struct xfer *x, const char *url, CURLcode cc, struct jmap_err *e)
{
	char shown[JMAP_URL_SHOWN + 8];

	jmap_url_shown(url, shown, sizeof(shown));
	/* the last response's status, with or without a body */
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->code);
	if (cc == CURLE_FILESIZE_EXCEEDED) {
		x->stop = STOP_TOOBIG; /* announced, refused by curl itself */
	}
	switch (x->stop) {
	case STOP_NONE:
	case STOP_ERRBODY:
		break;
	case STOP_TOOBIG:
		if (x->mode == XFER_STREAM) {
			return (jmap_err_set(e, ERR_TOOBIG, RETRY_NEVER,
			    "%s: more than %llu bytes", shown,
			    (unsigned long long)x->max));
		}
		return (jmap_err_set(e, ERR_TOOBIG, RETRY_LATER,
		    "%s: answer larger than %zu bytes", shown, x->body.max));
	case STOP_FN:
		if (x->mode == XFER_JSON) {
			return (jmap_err_set(
			    e, x->fn_err, RETRY_LATER, "out of memory"));
		}
		return (x->fn_err);
	case STOP_UNSUPPORTED:
		return (jmap_err_set(e, ERR_UNSUPPORTED, RETRY_NEVER,
		    "%s: not an event stream", shown));
	}
	/* an error status first: its body may have been cut on purpose */
	if (x->code >= 400) {
		return (http_failed(x->code, &x->body, shown, e));
	}
	/* then curl's verdict: a refused or endless redirect ends on 3xx */
	if (cc != CURLE_OK) {
		return (curl_failed(x, cc, shown, e));
	}
	if (x->code < 200 || x->code > 299) {
		return (http_failed(x->code, &x->body, shown, e));
	}
	return (ERR_OK);
}

/* A JSON answer (XFER_JSON body) parsed; ERR_PROTO when it is not JSON. */
static int
parse_json(
    const struct xfer *x, const char *url, json_t **root_r, struct jmap_err *e)
{
	char shown[JMAP_URL_SHOWN + 8];
	json_error_t je;

	*root_r = json_loadb(
	    x->body.data != NULL ? x->body.data : "", x->body.len, 0, &je);
	if (*root_r == NULL) {
		jmap_url_shown(url, shown, sizeof(shown));
		return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
		    "answer from %s is not JSON: %s", shown, je.text));
	}
	return (ERR_OK);
}

void
jmap_xfer_init(struct xfer *x, struct jmap_client *cl, enum xfer_mode mode)
{
	memset(x, 0, sizeof(*x));
	x->cl = cl;
	x->h = cl->h;
	x->errbuf = cl->errbuf;
	x->mode = mode;
	buf_init(&x->body, JMAP_MAX_RESPONSE);
}

int
jmap_option_failed(CURLcode cc, struct jmap_err *e)
{
	return (jmap_err_set(e, cc == CURLE_OUT_OF_MEMORY ? ERR_NOMEM : ERR_IO,
	    RETRY_LATER, "libcurl refused an option: %s",
	    curl_easy_strerror(cc)));
}

/* Session ----------------------------------------------------------------- */

static const struct {
	const char *what;
	size_t off;
} client_session_urls[] = {
	{ "apiUrl", offsetof(struct jmap_session, api_url) },
	{ "downloadUrl", offsetof(struct jmap_session, download_url) },
	{ "uploadUrl", offsetof(struct jmap_session, upload_url) },
	{ "eventSourceUrl", offsetof(struct jmap_session, event_source_url) },
};

static int
fetch_session(struct jmap_client *cl, struct jmap_err *e)
{
	struct curl_slist *hdrs;
	struct xfer x;
	char *eff = NULL, *base = NULL;
	const char *u;
	CURLcode cc;
	size_t i;
	int rv;

	jmap_xfer_init(&x, cl, XFER_JSON);
	hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (hdrs == NULL) {
		buf_release(&x.body);
		return (
		    jmap_err_set(e, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	cc = jmap_http_setup(cl, cl->url, &x);
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(cl->h, CURLOPT_HTTPHEADER, hdrs);
	}
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(cl->h, CURLOPT_FOLLOWLOCATION, 1L);
	}
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(cl->h, CURLOPT_MAXREDIRS, 5L);
	}
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(cl->h, CURLOPT_ACCEPT_ENCODING, "");
	}
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(cl->h, CURLOPT_MAXFILESIZE_LARGE,
		    (curl_off_t)JMAP_MAX_RESPONSE);
	}
	rv = cc != CURLE_OK ? jmap_option_failed(cc, e)
	                    : jmap_http_perform(cl, cl->url, &x, e);
	if (rv == 0) {
		/* relative URLs resolve against where the session was found
		 * (curl writes the credentials into it after a redirect) */
		if (curl_easy_getinfo(cl->h, CURLINFO_EFFECTIVE_URL, &eff)
		        != CURLE_OK
		    || eff == NULL) {
			eff = cl->url;
		}
		if (jmap_url_strip_userinfo(eff, &base) != 0) {
			rv = jmap_err_set(
			    e, ERR_NOMEM, RETRY_LATER, "out of memory");
		} else {
			rv = jmap_session_parse(
			    x.body.data != NULL ? x.body.data : "", x.body.len,
			    base, &cl->s, e);
		}
	}
	for (i = 0; rv == 0 && i < ARRAY_LEN(client_session_urls); i++) {
		u = *(char **)(void *)((char *)&cl->s
		    + client_session_urls[i].off);
		if (u != NULL && !url_allowed(cl, u)) {
			rv = url_refused(client_session_urls[i].what, u, e);
		}
	}
	if (rv == 0) {
		char shown[JMAP_URL_SHOWN + 8];

		jmap_url_shown(base, shown, sizeof(shown));
		log_debug("event=jmap_session url=%s account=%s submission=%d "
		          "push=%d",
		    shown, cl->s.account_id, cl->s.submission,
		    cl->s.event_source_url != NULL);
	}
	free(base);
	curl_slist_free_all(hdrs);
	buf_release(&x.body);
	return (rv);
}

int
jmap_client_open(const struct jmap_conf *conf, struct jmap_client **cl_r,
    struct jmap_err *e)
{
	struct jmap_client *cl;
	int rv;

	*cl_r = NULL;
	memset(e, 0, sizeof(*e));
	if (conf->url == NULL || conf->username == NULL
	    || conf->secret == NULL) {
		return (jmap_err_set(e, ERR_CONFIG, RETRY_NEVER,
		    "JMAP: no URL, user name or secret"));
	}
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL) {
		return (
		    jmap_err_set(e, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	cl->bearer = conf->bearer;
	cl->plaintext = conf->plaintext;
	cl->connect_timeout_ms
	    = conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : 30000;
	cl->io_timeout_s = conf->io_timeout_ms > 0
	    ? (conf->io_timeout_ms + 999) / 1000
	    : 60;
	if (!url_allowed(cl, conf->url)) {
		free(cl);
		return (url_refused("JMAP session URL", conf->url, e));
	}
	cl->url = xstrdup(conf->url);
	cl->username = xstrdup(conf->username);
	cl->secret = xstrdup(conf->secret);
	cl->ca_pem = conf->ca_pem != NULL ? xstrdup(conf->ca_pem) : NULL;
	cl->h = curl_easy_init();
	if (cl->url == NULL || cl->username == NULL || cl->secret == NULL
	    || (conf->ca_pem != NULL && cl->ca_pem == NULL) || cl->h == NULL) {
		rv = jmap_err_set(e, ERR_NOMEM, RETRY_LATER, "out of memory");
	} else {
		rv = fetch_session(cl, e);
	}
	if (rv != 0) {
		jmap_client_free(&cl);
		return (rv);
	}
	*cl_r = cl;
	return (ERR_OK);
}

bool
jmap_client_reusable(const struct jmap_client *cl)
{
	return (cl != NULL && !cl->session_stale);
}

const struct jmap_session *
jmap_client_session(const struct jmap_client *cl)
{
	return (&cl->s);
}

void
jmap_client_free(struct jmap_client **clp)
{
	struct jmap_client *cl;

	if (clp == NULL || *clp == NULL) {
		return;
	}
	cl = *clp;
	if (cl->h != NULL) {
		curl_easy_cleanup(cl->h);
	}
	if (cl->secret != NULL) {
		mem_wipe(cl->secret, strlen(cl->secret));
	}
	free(cl->secret);
	free(cl->username);
	free(cl->url);
	free(cl->ca_pem);
	jmap_session_release(&cl->s);
	free(cl);
	*clp = NULL;
}

/* API calls --------------------------------------------------------------- */

/* POSTs body (len bytes) of content type ct to url; the JSON answer in
 * *root_r (caller decrefs). */
int
jmap_post_json(struct jmap_client *cl, const char *url, const char *ct,
    const char *body, size_t len, json_t **root_r, struct jmap_err *e)
{
	struct curl_slist *hdrs = NULL, *t;
	char ct_line[256];
	struct xfer x;
	CURLcode cc;
	int rv;

	*root_r = NULL;
	snprintf(ct_line, sizeof(ct_line), "Content-Type: %s", ct);
	jmap_xfer_init(&x, cl, XFER_JSON);
	/* "Expect:" off: curl would wait a second for 100-continue */
	t = curl_slist_append(NULL, ct_line);
	hdrs = t;
	t = t == NULL ? NULL
	              : curl_slist_append(hdrs, "Accept: application/json");
	t = t == NULL ? NULL : curl_slist_append(hdrs, "Expect:");
	if (t == NULL) {
		curl_slist_free_all(hdrs);
		buf_release(&x.body);
		return (
		    jmap_err_set(e, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	cc = jmap_http_setup(cl, url, &x);
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(cl->h, CURLOPT_HTTPHEADER, hdrs);
	}
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(cl->h, CURLOPT_POST, 1L);
	}
	if (cc == CURLE_OK && cl->fresh_next) {
		cc = curl_easy_setopt(cl->h, CURLOPT_FRESH_CONNECT, 1L);
	}
	cl->fresh_next = false;
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(
		    cl->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(cl->h, CURLOPT_POSTFIELDS, body);
	}
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(cl->h, CURLOPT_ACCEPT_ENCODING, "");
	}
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(cl->h, CURLOPT_MAXFILESIZE_LARGE,
		    (curl_off_t)JMAP_MAX_RESPONSE);
	}
	rv = cc != CURLE_OK ? jmap_option_failed(cc, e)
	                    : jmap_http_perform(cl, url, &x, e);
	if (rv == 0) {
		rv = parse_json(&x, url, root_r, e);
	}
	curl_slist_free_all(hdrs);
	buf_release(&x.body);
	return (rv);
}

/* Whether calls hold an EmailSubmission/set (to be sent at most once). */
static bool
has_submission_set(json_t *calls)
{
	json_t *c;
	size_t i;

	json_array_foreach (calls, i, c) {
		const char *m = json_string_value(json_array_get(c, 0));

		if (m != NULL && strcmp(m, "EmailSubmission/set") == 0) {
			return (true);
		}
	}
	return (false);
}

int
jmap_call(struct jmap_client *cl, json_t *calls, bool submission,
    json_t **responses_r, struct jmap_err *e)
{
	char shown[JMAP_URL_SHOWN + 8];
	json_t *req, *root = NULL, *mr;
	const char *st;
	char *body;
	size_t len;
	int rv;

	*responses_r = NULL;
	memset(e, 0, sizeof(*e));
	if (!json_is_array(calls)) {
		return (jmap_err_set(
		    e, ERR_INVAL, RETRY_NEVER, "JMAP: calls is not an array"));
	}
	if (json_array_size(calls) > cl->s.max_calls_in_request) {
		return (jmap_err_set(e, ERR_TOOBIG, RETRY_NEVER,
		    "JMAP: %zu method calls, the server takes %u at most",
		    json_array_size(calls), cl->s.max_calls_in_request));
	}
	req = json_pack("{s:[s,s,s*],s:O}", "using", CAP_CORE, CAP_MAIL,
	    submission ? CAP_SUBMISSION : NULL, "methodCalls", calls);
	body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL) {
		return (
		    jmap_err_set(e, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	len = strlen(body);
	jmap_url_shown(cl->s.api_url, shown, sizeof(shown));
	if (len > cl->s.max_size_request) {
		rv = jmap_err_set(e, ERR_TOOBIG, RETRY_NEVER,
		    "JMAP request of %zu bytes to %s, the server takes %llu "
		    "at "
		    "most",
		    len, shown, (unsigned long long)cl->s.max_size_request);
	} else {
		cl->fresh_next = submission && has_submission_set(calls);
		rv = jmap_post_json(cl, cl->s.api_url, "application/json", body,
		    len, &root, e);
	}
	free(body);
	if (rv != 0) {
		return (rv);
	}
	st = json_string_value(json_object_get(root, "sessionState"));
	if (st != NULL && strcmp(st, cl->s.state) != 0) {
		cl->session_stale = true;
	}
	mr = json_object_get(root, "methodResponses");
	if (!json_is_array(mr)) {
		json_decref(root);
		return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
		    "answer from %s has no methodResponses array", shown));
	}
	*responses_r = json_incref(mr);
	json_decref(root);
	return (ERR_OK);
}
