/*
 * imap_stream_test.c: the IMAP parser's literal sink
 * (imap_parser_set_literal_sink): large literals go to the sink instead of
 * the response buffer, whatever the chunking, and the response keeps a
 * IMAP_TOK_STREAMED token in their place.
 *
 * Every case is fed whole, one byte at a time and in random chunks; the
 * rendered responses, the bytes the sink received (with their offsets
 * checked for contiguity) and the final error must be the same each time.
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

enum chunking { CHUNK_WHOLE, CHUNK_BYTE, CHUNK_RANDOM, CHUNK_COUNT };

/* What the sink saw. */
struct sink_log {
	struct buf bytes;   /* every streamed byte, literal after literal */
	uint64_t expect;    /* next offset expected within the literal */
	uint64_t total;     /* size of the literal being received */
	unsigned literals;  /* literals started */
	int fail_at;	    /* > 0: refuse the chunk covering this offset */
};

static int
sink(const char *chunk, size_t len, uint64_t offset, uint64_t total,
    void *arg)
{
	struct sink_log *s = arg;

	assert_true(len > 0);
	if (offset == 0) {
		assert_int_equal(s->expect, s->total); /* previous one done */
		s->literals++;
		s->expect = 0;
		s->total = total;
	}
	assert_int_equal(offset, s->expect);
	assert_int_equal(total, s->total);
	assert_true(offset + len <= total);
	if (s->fail_at > 0 && (uint64_t)s->fail_at >= offset
	    && (uint64_t)s->fail_at < offset + len) {
		return (ERR_IO);
	}
	assert_int_equal(buf_add(&s->bytes, chunk, len), 0);
	s->expect = offset + len;
	return (0);
}

struct result {
	struct buf out; /* rendered responses and "error: X" */
	struct sink_log log;
};

static void
result_init(struct result *r, int fail_at)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->out, 64u * 1024 * 1024);
	buf_init(&r->log.bytes, 64u * 1024 * 1024);
	r->log.fail_at = fail_at;
}

static void
result_release(struct result *r)
{
	buf_release(&r->out);
	buf_release(&r->log.bytes);
}

/* Feeds in with the chunking; sink installed with (threshold, max). */
static int
feed(const struct imap_limits *lim, const char *in, size_t len,
    enum chunking mode, uint64_t threshold, uint64_t max, struct result *res)
{
	struct imap_parser *p = NULL;
	const struct imap_resp *r;
	size_t off = 0, n, used;
	unsigned seed = 12345;
	int rv = 0;

	assert_int_equal(imap_parser_new(lim, &p), 0);
	assert_int_equal(
	    imap_parser_set_literal_sink(p, threshold, max, sink, &res->log),
	    0);
	while (off < len) {
		switch (mode) {
		case CHUNK_BYTE:
			n = 1;
			break;
		case CHUNK_RANDOM:
			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 300;
			break;
		default:
			n = len - off;
			break;
		}
		if (n > len - off) {
			n = len - off;
		}
		rv = imap_parser_feed(p, in + off, n, &used, &r);
		assert_true(used <= n);
		off += used;
		if (rv < 0) {
			assert_int_equal(
			    buf_printf(&res->out, "error: %s\n", err_name(rv)),
			    0);
			/* Sticky. */
			assert_int_equal(
			    imap_parser_feed(p, "x", 1, &used, &r), rv);
			break;
		}
		if (rv == 1) {
			assert_int_equal(imap_resp_format(r, &res->out), 0);
			assert_int_equal(buf_add(&res->out, "\n", 1), 0);
		}
	}
	imap_parser_free(&p);
	return (rv);
}

/* Runs every chunking; checks they agree with the expected rendering
 * and streamed bytes. */
static void
check_case(const struct imap_limits *lim, const char *in, size_t len,
    uint64_t threshold, uint64_t max, const char *expect_out,
    const char *expect_bytes, size_t expect_nbytes, unsigned nliterals)
{
	struct result res;
	const char *got;
	int mode;

	for (mode = 0; mode < CHUNK_COUNT; mode++) {
		result_init(&res, 0);
		feed(lim, in, len, (enum chunking)mode, threshold, max, &res);
		got = res.out.data != NULL ? res.out.data : "";
		if (strcmp(got, expect_out) != 0) {
			fail_msg("mode %d: got\n%s\nwant\n%s", mode, got,
			    expect_out);
		}
		assert_int_equal(res.log.bytes.len, expect_nbytes);
		if (expect_nbytes > 0) {
			assert_memory_equal(
			    res.log.bytes.data, expect_bytes, expect_nbytes);
		}
		assert_int_equal(res.log.literals, nliterals);
		result_release(&res);
	}
}

/* A body with everything that could confuse a scanner. */
static char *
make_body(size_t n)
{
	static const char pat[] = "line {5}\r\n) * 1 OK \"q\\\" \x01\xff\n";
	char *b = malloc(n + 1);
	size_t i;

	assert_non_null(b);
	for (i = 0; i < n; i++) {
		b[i] = pat[i % (sizeof(pat) - 1)];
	}
	b[n] = '\0';
	return (b);
}

static void
test_stream_body(void **state)
{
	struct imap_limits lim;
	struct buf in, want;
	char *body = make_body(100000);

	(void)state;
	imap_limits_default(&lim);
	/* Tiny limits: the streamed literal must not count against them. */
	lim.max_literal = 32;
	lim.max_response = 256;
	buf_init(&in, 1u << 20);
	buf_init(&want, 4096);
	assert_int_equal(buf_printf(&in,
			     "* 3 FETCH (UID 7 BODY[HEADER] {5}\r\nab\r\nc"
			     " BODY[] {100000}\r\n"),
	    0);
	assert_int_equal(buf_add(&in, body, 100000), 0);
	assert_int_equal(buf_addstr(&in, " RFC822.SIZE 100000)\r\n"
					 "A1 OK done\r\n"),
	    0);
	assert_int_equal(
	    buf_addstr(&want, "* 3 FETCH (UID 7 BODY[HEADER] {5}\"ab\\x0d\\x0ac\""
			      " BODY[] {100000}<streamed> RFC822.SIZE "
			      "100000)\nA1 OK \"done\"\n"),
	    0);
	check_case(&lim, in.data, in.len, 16, 1u << 20, want.data, body, 100000,
	    1);
	buf_release(&in);
	buf_release(&want);
	free(body);
}

static void
test_stream_token(void **state)
{
	static const char in[] = "* 1 FETCH (BODY[] {12}\r\nhello world!)\r\n";
	struct imap_limits lim;
	struct imap_parser *p = NULL;
	const struct imap_resp *r = NULL;
	const struct imap_tok *t;
	struct sink_log log;
	size_t used;

	(void)state;
	memset(&log, 0, sizeof(log));
	buf_init(&log.bytes, 1024);
	imap_limits_default(&lim);
	assert_int_equal(imap_parser_new(&lim, &p), 0);
	assert_int_equal(imap_parser_set_literal_sink(p, 4, 100, NULL, NULL), 0);
	assert_int_equal(imap_parser_set_literal_sink(p, 4, 0, sink, &log),
	    ERR_INVAL);
	assert_int_equal(imap_parser_set_literal_sink(p, 4, 100, sink, &log),
	    0);
	assert_int_equal(
	    imap_parser_feed(p, in, sizeof(in) - 1, &used, &r), 1);
	assert_int_equal(used, sizeof(in) - 1);
	assert_non_null(r->args);
	assert_int_equal(r->args->type, IMAP_TOK_LIST);
	t = r->args->child->next;
	assert_int_equal(t->type, IMAP_TOK_STREAMED);
	assert_null(t->s);
	assert_int_equal(t->len, 12);
	assert_false(imap_tok_is_str(t));
	assert_false(imap_tok_is(t, "hello world!"));
	assert_memory_equal(log.bytes.data, "hello world!", 12);

	/* Sink removed: the same literal is buffered again. */
	assert_int_equal(imap_parser_set_literal_sink(p, 0, 0, NULL, NULL), 0);
	assert_int_equal(
	    imap_parser_feed(p, in, sizeof(in) - 1, &used, &r), 1);
	t = r->args->child->next;
	assert_int_equal(t->type, IMAP_TOK_LITERAL);
	assert_string_equal(t->s, "hello world!");
	assert_int_equal(log.bytes.len, 12);
	imap_parser_free(&p);
	buf_release(&log.bytes);
}

static void
test_stream_cases(void **state)
{
	struct imap_limits lim;

	(void)state;
	imap_limits_default(&lim);
	/* Two streamed literals and a small buffered one between them. */
	check_case(&lim,
	    "* 1 FETCH (BODY[1] {10}\r\n0123456789 BODY[2] {2}\r\nab "
	    "BODY[3] {11}\r\nABCDEFGHIJK)\r\n",
	    strlen("* 1 FETCH (BODY[1] {10}\r\n0123456789 BODY[2] {2}\r\nab "
		   "BODY[3] {11}\r\nABCDEFGHIJK)\r\n"),
	    4, 100,
	    "* 1 FETCH (BODY[1] {10}<streamed> BODY[2] {2}\"ab\" BODY[3] "
	    "{11}<streamed>)\n",
	    "0123456789ABCDEFGHIJK", 21, 2);
	/* A literal at the threshold is buffered; {0} never streams. */
	check_case(&lim, "* 2 FETCH (BODY[] {4}\r\nabcd X {0}\r\n)\r\n",
	    strlen("* 2 FETCH (BODY[] {4}\r\nabcd X {0}\r\n)\r\n"), 4, 100,
	    "* 2 FETCH (BODY[] {4}\"abcd\" X {0}\"\")\n", "", 0, 0);
	/* Status text: "{N}" there is not a literal. */
	check_case(&lim, "* OK [ALERT] see {5}\r\nA1 OK x\r\n",
	    strlen("* OK [ALERT] see {5}\r\nA1 OK x\r\n"), 0, 100,
	    "* OK [ALERT] \"see {5}\"\nA1 OK \"x\"\n", "", 0, 0);
	/* Over the streaming cap: an error before any byte is read. */
	check_case(&lim, "* 1 FETCH (BODY[] {101}\r\nabc",
	    strlen("* 1 FETCH (BODY[] {101}\r\nabc"), 4, 100,
	    "error: ERR_TOOBIG\n", "", 0, 0);
	/* A literal that is only partly there: the bytes so far. */
	check_case(&lim, "* 1 FETCH (BODY[] {10}\r\nabc",
	    strlen("* 1 FETCH (BODY[] {10}\r\nabc"), 4, 100, "", "abc", 3, 1);
	/* Garbage after a streamed literal is still a protocol error. */
	check_case(&lim, "* 1 FETCH (BODY[] {5}\r\nabcde\"x)\r\n",
	    strlen("* 1 FETCH (BODY[] {5}\r\nabcde\"x)\r\n"), 4, 100,
	    "error: ERR_PROTO\n", "abcde", 5, 1);
}

static void
test_stream_sink_error(void **state)
{
	static const char in[]
	    = "* 1 FETCH (BODY[] {20}\r\n01234567890123456789)\r\n";
	struct imap_limits lim;
	struct result res;
	int mode;

	(void)state;
	imap_limits_default(&lim);
	for (mode = 0; mode < CHUNK_COUNT; mode++) {
		result_init(&res, 15);
		assert_int_equal(feed(&lim, in, sizeof(in) - 1,
				     (enum chunking)mode, 4, 100, &res),
		    ERR_IO);
		assert_string_equal(res.out.data, "error: ERR_IO\n");
		assert_true(res.log.bytes.len <= 15);
		result_release(&res);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_body),
		cmocka_unit_test(test_stream_token),
		cmocka_unit_test(test_stream_cases),
		cmocka_unit_test(test_stream_sink_error),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
