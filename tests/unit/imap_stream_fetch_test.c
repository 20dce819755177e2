/*
 * imap_stream_fetch_test.c: imap_parser_stream_fetch, which tells a
 * literal sink whose FETCH the literal streaming now is in: the sequence
 * number, and the UID when the server sent it before the literal. Each
 * case is fed whole and one byte at a time (the answer must not depend
 * on the chunking); the sink records one "rv seq uid" per literal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap.h"

struct seen {
	const struct imap_parser *p;
	struct buf log; /* "rv seq uid;" per literal */
};

static int
sink(const char *chunk, size_t len, uint64_t offset, uint64_t total, void *arg)
{
	struct seen *s = arg;
	uint32_t seq = 99, uid = 99;
	int rv;

	(void)chunk;
	(void)len;
	(void)total;
	if (offset == 0) {
		rv = imap_parser_stream_fetch(s->p, &seq, &uid);
		assert_int_equal(
		    buf_printf(&s->log, "%d %u %u;", rv, seq, uid), 0);
	}
	return (0);
}

static const struct {
	const char *in;
	const char *want; /* the sink's log */
} cases[] = {
	/* Dovecot's order: UID first */
	{ "* 12 FETCH (UID 34 BODY[] {10}\r\n0123456789)\r\n", "0 12 34;" },
	{ "* 1 FETCH (UID 7 BODY[] {3}\r\nabc)\r\n"
	  "* 2 FETCH (UID 9 BODY[] {3}\r\ndef)\r\n",
	    "0 1 7;0 2 9;" },
	/* other items first, case-insensitive names */
	{ "* 3 fetch (FLAGS (\\Seen \\Answered) uid 5 BODY[] {3}\r\nhi!)\r\n",
	    "0 3 5;" },
	{ "* 3 FETCH (INTERNALDATE \"1-Jan-2020 00:00:00 +0000\" "
	  "RFC822.SIZE 3 UID 6 BODY[] {3}\r\nhi!)\r\n",
	    "0 3 6;" },
	/* a buffered literal and a section with a list before UID */
	{ "* 4 FETCH (ENVELOPE (NIL {2}\r\n() NIL) "
	  "BODY[HEADER.FIELDS (TO CC)] {2}\r\n)( UID 8 BODY[] {12}\r\n"
	  "0123456789ab)\r\n",
	    "0 4 8;" },
	/* the body before the UID: unknown, the response names it later */
	{ "* 5 FETCH (BODY[] {11}\r\n0123456789a UID 10)\r\n", "0 5 0;" },
	/* a streamed literal before the UID: its bytes are not there */
	{ "* 6 FETCH (BODY[1] {11}\r\n0123456789a UID 11 BODY[] {11}\r\n"
	  "0123456789a)\r\n",
	    "0 6 0;0 6 0;" },
	/* odd UIDs are unknown, never wrong */
	{ "* 7 FETCH (UID 4294967296 BODY[] {9}\r\n012345678)\r\n", "0 7 0;" },
	{ "* 7 FETCH (UID x BODY[] {9}\r\n012345678)\r\n", "0 7 0;" },
	{ "* 7 FETCH (\"UID\" 3 BODY[] {9}\r\n012345678)\r\n", "0 7 0;" },
	{ "* 7 FETCH ((UID 3) BODY[] {9}\r\n012345678)\r\n", "0 7 0;" },
	/* not a FETCH */
	{ "* LIST () \"/\" {10}\r\n0123456789\r\n", "-10 0 0;" },
	{ "* 8 EXPUNGE {10}\r\n0123456789\r\n", "-10 0 0;" },
	{ "* x FETCH (UID 1 BODY[] {10}\r\n0123456789)\r\n", "-10 0 0;" },
};

static void
run_case(size_t i, bool bytewise)
{
	struct imap_limits lim;
	struct imap_parser *p = NULL;
	const struct imap_resp *r;
	struct seen s;
	const char *in = cases[i].in;
	size_t len = strlen(in), off = 0, n, used;
	int rv;

	imap_limits_default(&lim);
	assert_int_equal(imap_parser_new(&lim, &p), 0);
	s.p = p;
	buf_init(&s.log, 4096);
	assert_int_equal(buf_add(&s.log, "", 0), 0);
	/* literals of more than 2 bytes are streamed */
	assert_int_equal(
	    imap_parser_set_literal_sink(p, 2, 1000, sink, &s), 0);
	while (off < len) {
		n = bytewise ? 1 : len - off;
		rv = imap_parser_feed(p, in + off, n, &used, &r);
		if (rv < 0) {
			fail_msg("case %zu: %s", i, imap_parser_error(p));
		}
		off += used;
	}
	assert_int_equal(buf_add(&s.log, "", 1), 0);
	if (strcmp(s.log.data, cases[i].want) != 0) {
		fail_msg("case %zu (%s): \"%s\", want \"%s\"", i,
		    bytewise ? "bytewise" : "whole", s.log.data,
		    cases[i].want);
	}
	/* outside a literal there is nothing to say */
	{
		uint32_t seq = 1, uid = 1;

		assert_int_equal(
		    imap_parser_stream_fetch(p, &seq, &uid), ERR_NOTFOUND);
		assert_int_equal(seq, 0);
		assert_int_equal(uid, 0);
	}
	buf_release(&s.log);
	imap_parser_free(&p);
}

static void
test_stream_fetch(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		run_case(i, false);
		run_case(i, true);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_fetch),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
