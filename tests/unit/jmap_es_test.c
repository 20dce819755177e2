/*
 * jmap_es_test: the EventSource stream on a curl multi handle
 * (pkg/jmap/es.c, jmap_es_*), driven by a real CURLM against the loopback
 * server of jmap_http_server.h: events split in small pieces reach the
 * parser, the stream is up before any event, 204 and a non-stream answer
 * are ERR_UNSUPPORTED (poll instead), a server that ends the stream and a
 * silent one (pings missed) are RETRY_LATER, an oversized event
 * ERR_TOOBIG, and a stream removed from the multi while open is freed
 * cleanly (ASan). The stream has its own connection, not the client's.
 */
#include "jmap_http_server.h"

struct events {
	int n;
	bool changed;
	int other; /* events of another type */
};

static int
on_event(const struct jmap_sse_event *ev, void *arg)
{
	struct events *x = arg;
	bool changed = false;

	if (strcmp(ev->type, "state") != 0) {
		x->other++;
		return (0);
	}
	x->n++;
	assert_int_equal(
	    jmap_state_change_parse(ev->data, ev->data_len, "u1", &changed),
	    0);
	x->changed = x->changed || changed;
	return (0);
}

/* A stream on its own multi handle, as the watcher holds it. */
struct rig {
	struct server sv;
	struct jmap_client *cl;
	struct jmap_sse *p;
	struct jmap_es *es;
	CURLM *m;
	struct events x;
	bool in_multi;
};

static void
rig_start(struct rig *r, enum es_mode mode, int io_timeout_ms, int ping_s)
{
	struct jmap_conf c;
	struct jmap_err e;
	char url[128];

	memset(r, 0, sizeof(*r));
	r->sv.es = mode;
	server_start(&r->sv);
	conf_for(&r->sv, &c, url, sizeof(url));
	c.io_timeout_ms = io_timeout_ms;
	if (jmap_client_open(&c, &r->cl, &e) != 0) {
		fail_msg("open: %s", e.text);
	}
	assert_int_equal(jmap_sse_new(on_event, &r->x, &r->p), 0);
	if (jmap_es_start(r->cl, ping_s, r->p, &r->es, &e) != 0) {
		fail_msg("es start: %s", e.text);
	}
	r->m = curl_multi_init();
	assert_non_null(r->m);
	assert_int_equal(
	    curl_multi_add_handle(r->m, jmap_es_easy(r->es)), CURLM_OK);
	r->in_multi = true;
}

static void
rig_stop(struct rig *r)
{
	if (r->in_multi) {
		curl_multi_remove_handle(r->m, jmap_es_easy(r->es));
	}
	jmap_es_free(&r->es);
	assert_null(r->es);
	curl_multi_cleanup(r->m);
	jmap_sse_free(&r->p);
	jmap_client_free(&r->cl);
	server_stop(&r->sv);
}

/*
 * Runs the multi handle until the stream's transfer ends (its CURLcode
 * in *result_r, the handle removed; true) or until(r) holds or ms pass
 * (false).
 */
static bool
drive(struct rig *r, int ms, bool (*until)(const struct rig *),
    int *result_r)
{
	int64_t end = clock_mono_ms() + ms;
	struct CURLMsg *msg;
	int running, left;

	while (clock_mono_ms() < end) {
		assert_int_equal(curl_multi_perform(r->m, &running), CURLM_OK);
		while ((msg = curl_multi_info_read(r->m, &left)) != NULL) {
			if (msg->msg == CURLMSG_DONE) {
				assert_ptr_equal(
				    msg->easy_handle, jmap_es_easy(r->es));
				*result_r = (int)msg->data.result;
				curl_multi_remove_handle(r->m, msg->easy_handle);
				r->in_multi = false;
				return (true);
			}
		}
		if (until != NULL && until(r)) {
			return (false);
		}
		assert_int_equal(
		    curl_multi_poll(r->m, NULL, 0, 50, NULL), CURLM_OK);
	}
	return (false);
}

static bool
two_events(const struct rig *r)
{
	return (r->x.n >= 2);
}

static bool
is_up(const struct rig *r)
{
	return (jmap_es_up(r->es));
}

static void
test_events_across_splits(void **state)
{
	struct rig r;
	int result = -1;

	(void)state;
	rig_start(&r, ES_STREAM_TRICKLE, 5000, 30);
	assert_false(jmap_es_up(r.es));
	assert_false(drive(&r, 5000, is_up, &result));
	assert_int_equal(r.x.n, 0); /* up on the headers, before an event */
	assert_int_equal(jmap_es_http_status(r.es), 200);
	assert_false(drive(&r, 5000, two_events, &result));
	assert_int_equal(r.x.n, 2);
	assert_true(r.x.changed);
	assert_true(jmap_es_up(r.es));
	/* removed and freed while open: the server sees the close */
	rig_stop(&r);
	assert_string_equal(r.sv.reqs[2].accept, "text/event-stream");
	assert_string_equal(r.sv.reqs[2].line,
	    "GET /jmap/eventsource/?types=%2A&closeafter=no&ping=30 "
	    "HTTP/1.1");
	assert_int_equal(r.sv.reqs[2].conn, 1); /* not the client's */
}

static void
test_unsupported(void **state)
{
	static const struct {
		enum es_mode mode;
		const char *text;
	} cases[] = {
		{ ES_204, "204 No Content" },
		{ ES_HTML, "not an event stream" },
	};
	struct jmap_err e;
	struct rig r;
	size_t i;
	int result = -1;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		rig_start(&r, cases[i].mode, 5000, 30);
		assert_true(drive(&r, 5000, NULL, &result));
		assert_false(jmap_es_up(r.es));
		assert_int_equal(
		    jmap_es_finish(r.es, result, &e), ERR_UNSUPPORTED);
		assert_int_equal(e.status, ERR_UNSUPPORTED);
		assert_int_equal(e.retry, RETRY_NEVER);
		assert_non_null(strstr(e.text, cases[i].text));
		assert_int_equal(r.x.n, 0);
		rig_stop(&r);
	}
}

static void
test_server_closes(void **state)
{
	struct jmap_err e;
	struct rig r;
	int result = -1;

	(void)state;
	rig_start(&r, ES_STREAM_CLOSE, 5000, 30);
	assert_true(drive(&r, 5000, NULL, &result));
	assert_int_equal(r.x.n, 1); /* what came before the end counts */
	assert_int_equal(jmap_es_finish(r.es, result, &e), ERR_IO);
	assert_int_equal(e.retry, RETRY_LATER);
	assert_non_null(strstr(e.text, "ended the event stream"));
	assert_false(jmap_es_up(r.es));
	rig_stop(&r);
}

static void
test_toobig(void **state)
{
	struct jmap_err e;
	struct rig r;
	int result = -1;

	(void)state;
	rig_start(&r, ES_STREAM_TOOBIG, 5000, 30);
	assert_true(drive(&r, 10000, NULL, &result));
	assert_int_equal(jmap_es_finish(r.es, result, &e), ERR_TOOBIG);
	assert_int_equal(e.status, ERR_TOOBIG);
	assert_int_equal(e.retry, RETRY_LATER);
	assert_int_equal(r.x.n, 0);
	rig_stop(&r);
}

static void
test_pings_missed(void **state)
{
	struct jmap_err e;
	struct rig r;
	int64_t t0, took;
	int result = -1;

	(void)state;
	/* ping 1 s, I/O timeout 1 s: silence for 2 s is a dead stream */
	rig_start(&r, ES_STREAM_SILENT, 1000, 1);
	t0 = clock_mono_ms();
	assert_true(drive(&r, 8000, NULL, &result));
	took = clock_mono_ms() - t0;
	assert_true(took >= 1500 && took < 6000);
	assert_int_equal(jmap_es_finish(r.es, result, &e), ERR_TIMEOUT);
	assert_int_equal(e.retry, RETRY_LATER);
	rig_stop(&r);
}

static void
test_no_event_source_url(void **state)
{
	struct server sv = { 0 };
	struct jmap_client *cl;
	struct jmap_sse *p;
	struct jmap_es *es = NULL;
	struct jmap_err e;
	struct events x = { 0 };

	(void)state;
	sv.no_push = true;
	server_start(&sv);
	cl = open_client(&sv);
	assert_null(jmap_client_session(cl)->event_source_url);
	assert_int_equal(jmap_sse_new(on_event, &x, &p), 0);
	assert_int_equal(jmap_es_start(cl, 30, p, &es, &e), ERR_UNSUPPORTED);
	assert_int_equal(e.retry, RETRY_NEVER);
	assert_null(es);
	jmap_sse_free(&p);
	jmap_client_free(&cl);
	server_stop(&sv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_across_splits),
		cmocka_unit_test(test_unsupported),
		cmocka_unit_test(test_server_closes),
		cmocka_unit_test(test_toobig),
		cmocka_unit_test(test_pings_missed),
		cmocka_unit_test(test_no_event_source_url),
	};

	int rv;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return (rv);
}
