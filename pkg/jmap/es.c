/*
 * es.c: the EventSource stream (RFC 8620 7.3), on the request machinery
 * of client.c (client_int.h), in two forms that share their setup, write
 * callback and verdict:
 *
 *   jmap_event_source()  blocking, on the client's own easy handle;
 *   jmap_es_*            one stream run by the caller's curl multi
 *                        handle, on an easy handle of its own, so that
 *                        one thread holds many streams and the client
 *                        stays free for API requests meanwhile.
 *
 * Either way the bytes go to the SSE parser (sse.c) through the write
 * callback's XFER_SSE mode. A server without push (Cyrus 3.6 answers 204
 * No Content) is ERR_UNSUPPORTED, RETRY_NEVER: the caller polls instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap/client_int.h"

struct jmap_es {
	CURL *h;
	struct xfer x; /* x.cl and x.sse borrowed */
	struct curl_slist *hdrs;
	char *url;
	bool up; /* a 2xx text/event-stream answer's headers arrived */
	char errbuf[CURL_ERROR_SIZE];
};

/*
 * Expands eventSourceUrl into *url_r (caller frees) and sets x->h up for
 * it; *hdrs_r (caller frees with curl_slist_free_all) must outlive the
 * transfer. Both NULL on failure.
 */
static int
es_setup(struct jmap_client *cl, int ping_s, struct xfer *x, char **url_r,
    struct curl_slist **hdrs_r, struct jmap_err *e)
{
	const char *names[] = { "types", "closeafter", "ping" };
	char ping[16];
	const char *values[] = { "*", "no", ping };
	struct curl_slist *hdrs = NULL, *t;
	CURLcode cc;
	int rv;

	*url_r = NULL;
	*hdrs_r = NULL;
	if (cl->s.event_source_url == NULL) {
		return (jmap_err_set(e, ERR_UNSUPPORTED, RETRY_NEVER,
		    "JMAP: the session offers no eventSourceUrl"));
	}
	snprintf(ping, sizeof(ping), "%d", ping_s > 0 ? ping_s : 0);
	rv = jmap_url_expand(cl->s.event_source_url, names, values, 3, url_r);
	if (rv != 0) {
		return (jmap_err_set(e, rv == ERR_NOMEM ? rv : ERR_PROTO,
		    RETRY_LATER, "JMAP: eventSourceUrl cannot be expanded: %s",
		    err_str(rv)));
	}
	t = curl_slist_append(NULL, "Accept: text/event-stream");
	hdrs = t;
	t = t == NULL ? NULL
	              : curl_slist_append(hdrs, "Cache-Control: no-cache");
	cc = t == NULL ? CURLE_OUT_OF_MEMORY : jmap_http_setup(cl, *url_r, x);
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, hdrs);
	}
	/* Silence is normal without pings; with them, a ping missed by
	 * more than the I/O timeout means the stream is dead. */
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(x->h, CURLOPT_LOW_SPEED_TIME,
		    ping_s > 0 ? (long)ping_s + cl->io_timeout_s : 0L);
	}
	if (cc != CURLE_OK) {
		curl_slist_free_all(hdrs);
		free(*url_r);
		*url_r = NULL;
		return (jmap_option_failed(cc, e));
	}
	*hdrs_r = hdrs;
	return (ERR_OK);
}

/*
 * The verdict on a stream's end, after jmap_http_classify() said rv: a
 * 204, a 2xx answer of another type, or 404/405/501 mean the server has
 * no push (ERR_UNSUPPORTED, RETRY_NEVER); anything else stays as it is.
 */
static int
es_verdict(struct xfer *x, const char *url, int rv, struct jmap_err *e)
{
	char shown[JMAP_URL_SHOWN + 8];
	char *ct = NULL;

	jmap_url_shown(url, shown, sizeof(shown));
	if (rv == 0 && x->code == 204) {
		return (jmap_err_set(e, ERR_UNSUPPORTED, RETRY_NEVER,
		    "%s: 204 No Content (no push from this server)", shown));
	}
	if (rv == 0 && !x->started) {
		/* 200 without a byte: no callback saw the type */
		curl_easy_getinfo(x->h, CURLINFO_CONTENT_TYPE, &ct);
		if (!jmap_is_event_stream(ct)) {
			return (jmap_err_set(e, ERR_UNSUPPORTED, RETRY_NEVER,
			    "%s: not an event stream", shown));
		}
	}
	if (rv != 0 && e->status == rv
	    && (x->code == 404 || x->code == 405 || x->code == 501)) {
		return (jmap_err_set(e, ERR_UNSUPPORTED, RETRY_NEVER,
		    "%s: HTTP %ld (no push from this server)", shown,
		    x->code));
	}
	return (rv);
}

int
jmap_event_source(struct jmap_client *cl, int ping_s, int timeout_ms,
    struct jmap_sse *p, struct jmap_err *e)
{
	struct curl_slist *hdrs = NULL;
	struct xfer x;
	char *url = NULL;
	int64_t start;
	CURLcode cc;
	int rv;

	memset(e, 0, sizeof(*e));
	jmap_xfer_init(&x, cl, XFER_SSE);
	x.sse = p;
	rv = es_setup(cl, ping_s, &x, &url, &hdrs, e);
	if (rv == 0 && timeout_ms > 0) {
		cc = curl_easy_setopt(
		    cl->h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
		if (cc != CURLE_OK) {
			rv = jmap_option_failed(cc, e);
		}
	}
	if (rv == 0) {
		start = clock_mono_ms();
		rv = jmap_http_perform(cl, url, &x, e);
		if (rv == ERR_TIMEOUT && timeout_ms > 0
		    && clock_mono_ms() - start >= timeout_ms) {
			rv = ERR_OK; /* our own deadline, not a stalled server
			              */
			memset(e, 0, sizeof(*e));
		} else {
			rv = es_verdict(&x, url, rv, e);
		}
	}
	curl_slist_free_all(hdrs);
	buf_release(&x.body);
	free(url);
	return (rv);
}

/* On a curl multi handle -------------------------------------------------- */

/* Header lines: at the blank line that ends a response's headers, is it
 * the stream? (The body may not come for a long time: the first event or
 * ping.) */
static size_t
es_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct jmap_es *es = arg;
	size_t n = size * nmemb;
	char *ct = NULL;
	long code = 0;

	if ((n == 2 && p[0] == '\r' && p[1] == '\n')
	    || (n == 1 && p[0] == '\n')) {
		curl_easy_getinfo(es->h, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_getinfo(es->h, CURLINFO_CONTENT_TYPE, &ct);
		es->up
		    = code >= 200 && code <= 299 && jmap_is_event_stream(ct);
	}
	return (n);
}

int
jmap_es_start(struct jmap_client *cl, int ping_s, struct jmap_sse *p,
    struct jmap_es **es_r, struct jmap_err *e)
{
	struct jmap_es *es;
	CURLcode cc = CURLE_OK;
	int rv;

	*es_r = NULL;
	memset(e, 0, sizeof(*e));
	es = calloc(1, sizeof(*es));
	if (es == NULL || (es->h = curl_easy_init()) == NULL) {
		free(es);
		return (
		    jmap_err_set(e, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	jmap_xfer_init(&es->x, cl, XFER_SSE);
	es->x.h = es->h;
	es->x.errbuf = es->errbuf;
	es->x.sse = p;
	rv = es_setup(cl, ping_s, &es->x, &es->url, &es->hdrs, e);
	if (rv == 0) {
		cc = curl_easy_setopt(
		    es->h, CURLOPT_HEADERFUNCTION, es_header);
		if (cc == CURLE_OK) {
			cc = curl_easy_setopt(es->h, CURLOPT_HEADERDATA, es);
		}
		if (cc != CURLE_OK) {
			rv = jmap_option_failed(cc, e);
		}
	}
	if (rv != 0) {
		jmap_es_free(&es);
		return (rv);
	}
	*es_r = es;
	return (ERR_OK);
}

void *
jmap_es_easy(struct jmap_es *es)
{
	return (es->h);
}

bool
jmap_es_up(const struct jmap_es *es)
{
	return (es->up);
}

long
jmap_es_http_status(const struct jmap_es *es)
{
	long code = 0;

	curl_easy_getinfo(es->h, CURLINFO_RESPONSE_CODE, &code);
	return (code);
}

int
jmap_es_finish(struct jmap_es *es, int result, struct jmap_err *e)
{
	char shown[JMAP_URL_SHOWN + 8];
	int rv;

	memset(e, 0, sizeof(*e));
	es->up = false;
	jmap_url_shown(es->url, shown, sizeof(shown));
	rv = jmap_http_classify(&es->x, es->url, (CURLcode)result, e);
	rv = es_verdict(&es->x, es->url, rv, e);
	if (rv == 0) {
		/* closeafter=no: a stream never ends by itself */
		return (jmap_err_set(e, ERR_IO, RETRY_LATER,
		    "%s: the server ended the event stream", shown));
	}
	if (e->status == 0 && rv == ERR_TOOBIG) {
		/* the parser's cap, returned as the "function's" error */
		return (jmap_err_set(e, ERR_TOOBIG, RETRY_LATER,
		    "%s: an event or line larger than %u bytes", shown,
		    JMAP_SSE_MAX_EVENT));
	}
	if (e->status == 0) {
		return (jmap_err_set(e, rv, RETRY_LATER,
		    "%s: the event callback failed: %s", shown, err_str(rv)));
	}
	return (rv);
}

void
jmap_es_free(struct jmap_es **esp)
{
	struct jmap_es *es = *esp;

	if (es == NULL) {
		return;
	}
	if (es->h != NULL) {
		curl_easy_cleanup(es->h);
	}
	curl_slist_free_all(es->hdrs);
	buf_release(&es->x.body);
	free(es->url);
	free(es);
	*esp = NULL;
}
