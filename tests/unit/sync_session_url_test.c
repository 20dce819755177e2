/*
 * sync_session_url_test.c: imap_session_open_url() refuses what is not an
 * imap:// or imaps:// URL before any connection, with ERR_CONFIG and
 * RETRY_NEVER (a retry cannot fix a configuration), and leaves no session.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sync/sync.h"

static void
test_bad_urls(void **state)
{
	static const struct {
		const char *url;
		const char *want; /* in the error text */
	} cases[] = {
		{ "https://mail.example/", "scheme must be imap or imaps" },
		{ "smtps://mail.example", "scheme must be imap or imaps" },
		{ "jmap://mail.example", "unknown URL scheme \"jmap\"" },
		{ "imap//no-scheme", "bad IMAP server URL 'imap//no-scheme'" },
		{ "", "bad IMAP server URL ''" },
	};
	struct imap_session_conf c;
	struct imap_session *s;
	struct sync_limits l;
	struct sync_result res;
	size_t i;

	(void)state;
	sync_limits_default(&l);
	memset(&c, 0, sizeof(c));
	c.username = "u";
	c.password = "p";
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&res, 0, sizeof(res));
		s = (struct imap_session *)&res; /* must come back NULL */
		assert_int_equal(
		    imap_session_open_url(cases[i].url, &c, &l, &s, &res),
		    ERR_CONFIG);
		assert_null(s);
		assert_int_equal(res.status, ERR_CONFIG);
		assert_int_equal(res.retry, RETRY_NEVER);
		if (strstr(res.error, cases[i].want) == NULL) {
			fail_msg("%s: %s", cases[i].url, res.error);
		}
		sync_result_release(&res);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_urls),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
