/*
 * jmap_transfer_test.c: blobs and the event source of pkg/jmap against
 * the loopback server of jmap_http_server.h: downloads streamed in
 * chunks under a max, 404, uploads; the event source: 204 or another
 * type is ERR_UNSUPPORTED, a stream reaches the parser until the server
 * closes or the deadline passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jmap_http_server.h"

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
