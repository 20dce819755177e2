/*
 * imap_status_test.c: STATUS, SEARCH/ESEARCH and VANISHED responses, and
 * the compact UID set builder, table-driven over parsed responses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap.h"

/* Parses one response line (with CRLF) and calls fn on it. */
static void
with_resp(const char *line, void (*fn)(const struct imap_resp *, void *),
    void *arg)
{
	struct imap_limits lim;
	struct imap_parser *p = NULL;
	const struct imap_resp *r = NULL;
	size_t used;

	imap_limits_default(&lim);
	assert_int_equal(imap_parser_new(&lim, &p), 0);
	assert_int_equal(imap_parser_feed(p, line, strlen(line), &used, &r), 1);
	fn(r, arg);
	imap_parser_free(&p);
}

static void
check_status(const struct imap_resp *r, void *arg)
{
	struct imap_mbox_status st;
	char *name = NULL;

	(void)arg;
	assert_int_equal(imap_status_parse(r, &name, &st), 0);
	assert_string_equal(name, "Entwürfe");
	assert_true(st.has_uidvalidity && st.uidvalidity == 7);
	assert_true(st.has_uidnext && st.uidnext == 42);
	assert_true(st.has_messages && st.messages == 3);
	assert_true(st.has_highestmodseq && st.highestmodseq == 9000000001ULL);
	free(name);
}

static void
test_status(void **state)
{
	(void)state;
	with_resp("* STATUS \"Entw&APw-rfe\" (UIDVALIDITY 7 UIDNEXT 42 "
		  "MESSAGES 3 HIGHESTMODSEQ 9000000001)\r\n",
	    check_status, NULL);
}

struct want {
	int rv;
	const char *set;
};

static void
check_search(const struct imap_resp *r, void *arg)
{
	const struct want *w = arg;
	struct imap_uidset u;
	int rv;

	imap_uidset_init(&u, 1024);
	rv = imap_search_collect(r, &u);
	assert_int_equal(rv, w->rv);
	if (rv == 1) {
		assert_int_equal(imap_uidset_finish(&u), 0);
		assert_string_equal(u.s.data != NULL ? u.s.data : "", w->set);
	}
	imap_uidset_release(&u);
}

static void
test_search(void **state)
{
	static const struct {
		const char *line;
		struct want w;
	} cases[] = {
		{ "* SEARCH 1 2 3 5 8 9 10\r\n", { 1, "1:3,5,8:10" } },
		{ "* SEARCH\r\n", { 1, "" } },
		{ "* SEARCH 4 (MODSEQ 917)\r\n", { 1, "4" } },
		{ "* ESEARCH (TAG \"A7\") UID ALL 1:3,5\r\n", { 1, "1:3,5" } },
		{ "* ESEARCH (TAG \"A7\") UID\r\n", { 1, "" } },
		{ "* SEARCH 0\r\n", { ERR_PROTO, NULL } },
		{ "* ESEARCH (TAG \"A7\") UID ALL 3:x\r\n", { ERR_PROTO, NULL } },
		{ "* 3 EXISTS\r\n", { 0, NULL } },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		with_resp(cases[i].line, check_search, (void *)&cases[i].w);
	}
}

static void
check_vanished(const struct imap_resp *r, void *arg)
{
	const char *set;
	size_t len;
	bool earlier;

	(void)arg;
	assert_int_equal(imap_vanished_parse(r, &earlier, &set, &len), 0);
	assert_true(earlier);
	assert_int_equal(len, 8);
	assert_memory_equal(set, "1:3,7:12", 8);
}

static void
test_vanished(void **state)
{
	(void)state;
	with_resp("* VANISHED (EARLIER) 1:3,7:12\r\n", check_vanished, NULL);
}

static void
test_uidset_builder(void **state)
{
	struct imap_uidset u;

	(void)state;
	imap_uidset_init(&u, 16);
	assert_int_equal(imap_uidset_add_range(&u, 1, 3), 0);
	assert_int_equal(imap_uidset_add_range(&u, 4, 4), 0);
	assert_int_equal(imap_uidset_add_range(&u, 9, 9), 0);
	assert_int_equal(imap_uidset_finish(&u), 0);
	assert_string_equal(u.s.data, "1:4,9");
	assert_int_equal(u.count, 5);
	assert_false(u.unordered);
	/* Out of order: flagged, not trusted. */
	assert_int_equal(imap_uidset_add_range(&u, 2, 2), 0);
	assert_true(u.unordered);
	imap_uidset_release(&u);
	/* The cap holds. */
	imap_uidset_init(&u, 6); /* "1,100000" does not fit */
	assert_int_equal(imap_uidset_add_range(&u, 1, 1), 0);
	assert_int_equal(imap_uidset_add_range(&u, 100000, 100000), 0);
	assert_int_equal(imap_uidset_add_range(&u, 200000, 200000),
	    ERR_TOOBIG);
	imap_uidset_release(&u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_search),
		cmocka_unit_test(test_vanished),
		cmocka_unit_test(test_uidset_builder),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
