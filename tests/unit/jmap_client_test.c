/*
 * jmap_client_test.c: pkg/jmap's client against the loopback server of
 * jmap_http_server.h: the Basic (or Bearer) header on every request,
 * keep-alive (everything on one TCP connection), the error mapping (401,
 * 400 problem JSON, 5xx, not JSON, refused connection), http:// refused
 * without plaintext before any connection, the response bound
 * (announced and streamed) and the request limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jmap_http_server.h"

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

/* An answer whose sessionState differs from the session's state marks the
 * client as not reusable by another job (RFC 8620 3.4). */
static void
test_session_state_moved(void **state)
{
	struct server sv = { 0 };
	struct jmap_client *cl;
	struct jmap_err e;
	json_t *calls, *resp = NULL;

	(void)state;
	calls = mailbox_get();
	server_start(&sv);
	cl = open_client(&sv);
	assert_true(jmap_client_reusable(cl));
	assert_int_equal(jmap_call(cl, calls, false, &resp, &e), 0);
	json_decref(resp);
	assert_true(jmap_client_reusable(cl)); /* "0" as in the session */
	sv.api = API_NEW_SESSION;
	assert_int_equal(jmap_call(cl, calls, false, &resp, &e), 0);
	json_decref(resp);
	assert_false(jmap_client_reusable(cl));
	jmap_client_free(&cl);
	server_stop(&sv);
	json_decref(calls);
	assert_false(jmap_client_reusable(NULL));
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
		cmocka_unit_test(test_session_state_moved),
	};
	int rv;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return (rv);
}
