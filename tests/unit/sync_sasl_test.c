/*
 * sync_sasl_test.c: the SASL responses byte for byte (PLAIN, OAUTHBEARER
 * with gs2 escaping, XOAUTH2), refusal of ^A/CR/LF that would break the
 * framing, base64, and the reading of OAuth error challenges: table-driven,
 * including hostile ones (not base64, not JSON, no status, oversized,
 * control bytes, escapes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sync/sync_int.h"

static void
test_plain(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(sync_sasl_plain("bob", "pw", &b), 0);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "\0bob\0pw", 7);
	buf_wipe_release(&b);
	buf_init(&b, 1024);
	assert_int_equal(sync_sasl_plain("b\x01ob", "pw", &b), ERR_INVAL);
	buf_wipe_release(&b);
}

static void
test_oauthbearer(void **state)
{
	static const char want[] = "n,a=a=3Db=2Cc@x,\x01host=mail.example\x01"
				   "port=993\x01"
				   "auth=Bearer tok\x01\x01";
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(sync_sasl_oauth(SYNC_SASL_OAUTHBEARER, "a=b,c@x",
			     "mail.example", 993, "tok", &b),
	    0);
	assert_int_equal(b.len, sizeof(want) - 1);
	assert_memory_equal(b.data, want, sizeof(want) - 1);
	buf_wipe_release(&b);
}

static void
test_xoauth2(void **state)
{
	static const char want[] = "user=bob@x\x01"
				   "auth=Bearer tok\x01\x01";
	struct buf b, e;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(
	    sync_sasl_oauth(SYNC_SASL_XOAUTH2, "bob@x", "h", 1, "tok", &b), 0);
	assert_string_equal(b.data, want);
	buf_init(&e, 1024);
	assert_int_equal(sync_sasl_b64(b.data, b.len, &e), 0);
	assert_string_equal(e.data, "dXNlcj1ib2JAeAFhdXRoPUJlYXJlciB0b2sBAQ==");
	buf_wipe_release(&b);
	buf_wipe_release(&e);
	buf_init(&b, 1024);
	assert_int_equal(sync_sasl_oauth(SYNC_SASL_XOAUTH2, "bob", "h", 1,
			     "tok\r\nA1 LOGOUT", &b),
	    ERR_INVAL);
	assert_int_equal(sync_sasl_oauth(SYNC_SASL_OAUTHBEARER, "bob", "h", 1,
			     "t\x01k", &b),
	    ERR_INVAL);
	buf_wipe_release(&b);
	/* A response larger than the buffer's cap is refused, not cut. */
	buf_init(&b, 16);
	assert_int_equal(
	    sync_sasl_oauth(SYNC_SASL_XOAUTH2, "bob", "h", 1, "0123456789", &b),
	    ERR_TOOBIG);
	buf_wipe_release(&b);
}

/* challenge JSON (NULL: use raw b64 text) -> expected status */
static const struct {
	const char *json;
	const char *b64;
	const char *want;
} status_cases[] = {
	{ "{\"status\":\"invalid_token\",\"scope\":\"x\"}", NULL,
	    "invalid_token" },
	{ "{\"status\":\"401\",\"schemes\":\"Bearer\"}", NULL, "401" },
	{ "{ \"scope\" : \"status\", \"status\" : \"expired\" }", NULL,
	    "expired" },
	{ "{\"schemes\":\"Bearer\"}", NULL, "" },
	{ "{\"status\":401}", NULL, "" },
	{ "{\"status\":\"a\\\"b\\u0007\"}", NULL, "a\"bu0007" },
	{ "{\"status\":\"\x1b[31mred\"}", NULL, "?[31mred" },
	{ "{\"status\":\"unterminated", NULL, "" },
	{ "not json at all", NULL, "" },
	{ NULL, "", "" },
	{ NULL, "!!!!", "" },
	{ NULL, "abc", "" },
	{ NULL, "AA==", "" }, /* a NUL byte */
};

static void
test_oauth_status(void **state)
{
	char status[32], b64[256];
	struct buf e;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(status_cases); i++) {
		const char *t = status_cases[i].b64;

		if (status_cases[i].json != NULL) {
			buf_init(&e, sizeof(b64));
			assert_int_equal(sync_sasl_b64(status_cases[i].json,
					     strlen(status_cases[i].json), &e),
			    0);
			snprintf(b64, sizeof(b64), "%s", e.data);
			buf_release(&e);
			t = b64;
		}
		memset(status, 'x', sizeof(status));
		sync_sasl_oauth_status(t, strlen(t), status, sizeof(status));
		if (strcmp(status, status_cases[i].want) != 0) {
			fail_msg("case %zu: got \"%s\", want \"%s\"", i,
			    status, status_cases[i].want);
		}
	}
}

static void
test_oauth_status_limits(void **state)
{
	static char big[2 * SYNC_SASL_MAX_CHALLENGE];
	char status[8];
	struct buf e;
	size_t n;

	(void)state;
	/* Longer than status: cut, still terminated. */
	buf_init(&e, 256);
	assert_int_equal(sync_sasl_b64("{\"status\":\"0123456789abc\"}", 26, &e),
	    0);
	sync_sasl_oauth_status(e.data, e.len, status, sizeof(status));
	assert_string_equal(status, "0123456");
	buf_release(&e);
	/* Oversized challenges are ignored. */
	n = (size_t)snprintf(big, sizeof(big), "{\"status\":\"x\"}");
	memset(big + n, ' ', sizeof(big) - n - 1);
	buf_init(&e, 4 * sizeof(big));
	assert_int_equal(sync_sasl_b64(big, sizeof(big) - 1, &e), 0);
	sync_sasl_oauth_status(e.data, e.len, status, sizeof(status));
	assert_string_equal(status, "");
	buf_release(&e);
	sync_sasl_oauth_status(NULL, 0, status, sizeof(status));
	assert_string_equal(status, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_oauthbearer),
		cmocka_unit_test(test_xoauth2),
		cmocka_unit_test(test_oauth_status),
		cmocka_unit_test(test_oauth_status_limits),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
