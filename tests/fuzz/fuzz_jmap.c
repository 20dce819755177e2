/*
 * fuzz_jmap.c: libFuzzer harness for what pkg/jmap reads from a server.
 * The first input byte is a chunking seed; the rest is server bytes, read
 * as:
 *
 *   - a session object (jmap_session_parse): 0 or ERR_PROTO only; on
 *     success every required URL absolute http(s), limits >= 1, and the
 *     download template expands; on failure nothing left allocated and
 *     the text never shows the base URL's password;
 *   - a URL template (jmap_url_expand) and a reference to resolve
 *     (jmap_url_resolve), and a URL to show (no userinfo, bounded);
 *   - an event stream (jmap_sse_feed), fed whole, byte by byte (short
 *     inputs) and in pseudo-random chunks: the events (hashed), the
 *     retry value and the final error must not depend on the chunking;
 *     each event's data also goes through jmap_state_change_parse;
 *   - methodResponses (jmap_response), the input as JSON or its
 *     "methodResponses" member: only 0, ERR_SERVER or ERR_PROTO, with
 *     args set exactly on success.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "jmap/jmap.h"
#include "jmap/jmap_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_base[] = "https://bob:pw1@h.example:8443/a/b/c?q#f";

static void
fuzz_session(const char *s, size_t n)
{
	const char *names[] = { "accountId", "blobId", "name", "type" };
	const char *values[] = { "u1", "G/1 2", "x.eml", "message/rfc822" };
	struct jmap_session js;
	struct jmap_err e;
	char *url = NULL;
	int rv;

	memset(&e, 0, sizeof(e));
	rv = jmap_session_parse(s, n, fuzz_base, &js, &e);
	if (rv != 0) {
		if ((rv != ERR_PROTO && rv != ERR_NOMEM) || e.status != rv
		    || js.api_url != NULL || js.account_id != NULL
		    || js.state != NULL
		    /* the base URL's password, unless the input holds it */
		    || (strstr(e.text, "bob:pw1@") != NULL
		        && memmem(s, n, "bob:pw1@", 8) == NULL)
		    || memchr(e.text, '\0', sizeof(e.text)) == NULL) {
			abort();
		}
		return;
	}
	if (js.api_url == NULL || js.download_url == NULL
	    || js.upload_url == NULL || js.account_id == NULL
	    || js.account_id[0] == '\0' || js.state == NULL
	    || (!jmap_url_has_scheme(js.api_url, "http")
	        && !jmap_url_has_scheme(js.api_url, "https"))
	    || js.max_calls_in_request < 1 || js.max_objects_in_get < 1
	    || js.max_objects_in_set < 1 || js.max_size_request < 1
	    || js.max_size_upload < 1 || js.max_concurrent_requests < 1) {
		abort();
	}
	rv = jmap_url_expand(js.download_url, names, values, 4, &url);
	if ((rv != 0 && rv != ERR_INVAL && rv != ERR_TOOBIG)
	    || (rv == 0) != (url != NULL)) {
		abort();
	}
	free(url);
	jmap_session_release(&js);
}

static void
fuzz_urls(const char *s, size_t n)
{
	const char *names[] = { "a", "blobId", "" };
	const char *values[] = { "\xff/ {}", "", "x" };
	char *str, *out = NULL, shown[JMAP_URL_SHOWN + 8];
	int rv;

	str = xstrndup(s, n); /* up to the first NUL */
	if (str == NULL) {
		return;
	}
	rv = jmap_url_expand(str, names, values, 3, &out);
	if ((rv != 0 && rv != ERR_INVAL && rv != ERR_TOOBIG)
	    || (rv == 0) != (out != NULL)) {
		abort();
	}
	free(out);
	out = NULL;
	rv = jmap_url_resolve(fuzz_base, str, &out);
	if ((rv != 0 && rv != ERR_TOOBIG) || (rv == 0) != (out != NULL)) {
		abort();
	}
	free(out);
	out = NULL;
	rv = jmap_url_resolve(str, "../x/./y?z", &out);
	if ((rv != 0 && rv != ERR_TOOBIG && rv != ERR_INVAL)
	    || (rv == 0) != (out != NULL)) {
		abort();
	}
	free(out);
	jmap_url_shown(str, shown, sizeof(shown));
	if (strlen(shown) > JMAP_URL_SHOWN + 3) {
		abort();
	}
	free(str);
}

/* What a run of the event-stream parser gave. */
struct sse_run {
	uint64_t hash;
	size_t events;
	int rv;
	uint32_t retry;
};

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h = (h ^ c[i]) * 1099511628211u;
	}
	return (h);
}

static int
on_event(const struct jmap_sse_event *ev, void *arg)
{
	struct sse_run *r = arg;
	bool changed = false;
	int rv;

	/* type and id are C strings: a NUL in the field cuts them */
	if (ev->type == NULL || ev->id == NULL || ev->data == NULL
	    || ev->data[ev->data_len] != '\0'
	    || ev->data_len >= JMAP_SSE_MAX_EVENT) {
		abort();
	}
	r->events++;
	r->hash = fnv(r->hash, ev->type, strlen(ev->type) + 1);
	r->hash = fnv(r->hash, ev->id, strlen(ev->id) + 1);
	r->hash = fnv(r->hash, ev->data, ev->data_len + 1);
	rv = jmap_state_change_parse(ev->data, ev->data_len, "u1", &changed);
	if ((rv != 0 && rv != ERR_PROTO) || (rv != 0 && changed)) {
		abort();
	}
	r->hash = fnv(r->hash, &changed, sizeof(changed));
	return (0);
}

/* mode 0 whole, 1 byte by byte, 2 pseudo-random chunks from seed. */
static void
sse_run(const char *s, size_t n, int mode, unsigned seed, struct sse_run *r)
{
	struct jmap_sse *p = NULL;
	size_t off = 0, k;

	memset(r, 0, sizeof(*r));
	r->hash = 14695981039346656037u;
	if (jmap_sse_new(on_event, r, &p) != 0) {
		abort();
	}
	while (off < n && r->rv == 0) {
		if (mode == 0) {
			k = n - off;
		} else if (mode == 1) {
			k = 1;
		} else {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 16) % 97;
		}
		if (k > n - off) {
			k = n - off;
		}
		r->rv = jmap_sse_feed(p, s + off, k);
		off += k;
	}
	if (r->rv != 0 && r->rv != ERR_TOOBIG) {
		abort();
	}
	/* once failed, it stays failed */
	if (r->rv != 0 && jmap_sse_feed(p, "\n\n", 2) != r->rv) {
		abort();
	}
	r->retry = jmap_sse_retry_ms(p);
	jmap_sse_free(&p);
}

static void
fuzz_sse(const char *s, size_t n, unsigned seed)
{
	struct sse_run whole, other;

	sse_run(s, n, 0, 0, &whole);
	if (n <= 4096) {
		sse_run(s, n, 1, 0, &other);
		if (memcmp(&whole, &other, sizeof(whole)) != 0) {
			abort();
		}
	}
	sse_run(s, n, 2, seed, &other);
	if (memcmp(&whole, &other, sizeof(whole)) != 0) {
		abort();
	}
}

static void
fuzz_response(const char *s, size_t n)
{
	static const char *const ask[][2]
	    = { { "a", "Email/get" }, { "s", "Email/set" },
		      { "0", "Mailbox/get" }, { "", "error" } };
	struct jmap_err e;
	json_t *root, *arr, *args;
	char type[16];
	size_t i;
	int rv;

	root = json_loadb(s, n, 0, NULL);
	if (root == NULL) {
		return;
	}
	arr = json_is_object(root) ? json_object_get(root, "methodResponses")
	                           : root;
	for (i = 0; i < ARRAY_LEN(ask); i++) {
		memset(&e, 0, sizeof(e));
		args = (json_t *)1;
		rv = jmap_response(
		    arr, ask[i][0], ask[i][1], &args, type, sizeof(type), &e);
		if (rv == 0) {
			if (!json_is_object(args) || e.status != 0) {
				abort();
			}
		} else if ((rv != ERR_SERVER && rv != ERR_PROTO)
		    || args != NULL || e.status != rv
		    || memchr(type, '\0', sizeof(type)) == NULL
		    || (rv == ERR_PROTO && type[0] != '\0')) {
			abort();
		}
	}
	json_decref(root);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s;
	unsigned seed;

	if (size < 1) {
		return (0);
	}
	seed = data[0];
	s = (const char *)data + 1;
	size--;
	fuzz_session(s, size);
	fuzz_urls(s, size);
	fuzz_sse(s, size, seed);
	fuzz_response(s, size);
	return (0);
}
