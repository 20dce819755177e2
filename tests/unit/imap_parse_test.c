/*
 * imap_parse_test.c: the incremental IMAP response parser.
 *
 * Every case is fed whole, one byte at a time and in random chunks, and
 * must give the same responses (rendered by imap_resp_format) every time.
 * The recorded transcripts under tests/data/imap/ (NAME.txt, the server's
 * bytes; NAME.expect, one rendered response per line and a last line
 * "error: ERR_X" if the parser must stop) run the same way.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "imap/imap.h"

enum chunking { CHUNK_WHOLE, CHUNK_BYTE, CHUNK_RANDOM };

/* Feeds in[0..len) with the given chunking; renders every response (and
 * a final "error: ERR_X" line) into out. Returns the last parser rv. */
static int
feed_all(const struct imap_limits *lim, const char *in, size_t len,
    enum chunking mode, unsigned seed, struct buf *out, char *err,
    size_t errlen)
{
	struct imap_parser *p = NULL;
	const struct imap_resp *r;
	size_t off = 0, n, used, chunk_end = 0;
	int rv = 0;

	assert_int_equal(imap_parser_new(lim, &p), 0);
	while (off < len) {
		if (chunk_end <= off) {
			switch (mode) {
			case CHUNK_WHOLE:
				chunk_end = len;
				break;
			case CHUNK_BYTE:
				chunk_end = off + 1;
				break;
			case CHUNK_RANDOM:
				seed = seed * 1103515245u + 12345u;
				chunk_end = off + 1 + (seed >> 16) % 17;
				break;
			}
			if (chunk_end > len) {
				chunk_end = len;
			}
		}
		n = chunk_end - off;
		rv = imap_parser_feed(p, in + off, n, &used, &r);
		assert_true(used <= n);
		off += used;
		if (rv < 0) {
			assert_int_equal(buf_printf(out, "error: %s\n",
					     err_name(rv)),
			    0);
			break;
		}
		if (rv == 1) {
			assert_non_null(r);
			assert_int_equal(imap_resp_format(r, out), 0);
			assert_int_equal(buf_add(out, "\n", 1), 0);
		} else {
			assert_int_equal(used, n);
		}
	}
	if (err != NULL) {
		snprintf(err, errlen, "%s", imap_parser_error(p));
	}
	imap_parser_free(&p);
	assert_null(p);
	return (rv);
}

/* Checks that every chunking gives `expect`; returns the whole-feed error
 * text in err. */
static void
check_chunkings(const struct imap_limits *lim, const char *in, size_t len,
    const char *expect, char *err, size_t errlen, const char *label)
{
	struct buf out;
	unsigned seed;

	buf_init(&out, 64u * 1024 * 1024);
	feed_all(lim, in, len, CHUNK_WHOLE, 0, &out, err, errlen);
	if (strcmp(out.data != NULL ? out.data : "", expect) != 0) {
		fail_msg("%s (whole): got\n%s\nwant\n%s", label,
		    out.data != NULL ? out.data : "", expect);
	}
	buf_reset(&out);
	feed_all(lim, in, len, CHUNK_BYTE, 0, &out, NULL, 0);
	if (strcmp(out.data != NULL ? out.data : "", expect) != 0) {
		fail_msg("%s (bytes): got\n%s\nwant\n%s", label,
		    out.data != NULL ? out.data : "", expect);
	}
	for (seed = 1; seed <= 5; seed++) {
		buf_reset(&out);
		feed_all(lim, in, len, CHUNK_RANDOM, seed, &out, NULL, 0);
		if (strcmp(out.data != NULL ? out.data : "", expect) != 0) {
			fail_msg("%s (random %u): got\n%s\nwant\n%s", label,
			    seed, out.data != NULL ? out.data : "", expect);
		}
	}
	buf_release(&out);
}

struct parse_case {
	const char *name;
	const char *in;
	const char *expect; /* rendered responses, then "error: ..." */
	const char *errtext; /* substring of imap_parser_error(), or NULL */
	size_t max_line, max_literal, max_response, max_depth, max_tokens;
};

static const struct parse_case parse_cases[] = {
    {"greeting with capability code",
	"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN] Dovecot "
	"ready.\r\n",
	"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN] \"Dovecot "
	"ready.\"\n",
	NULL, 0, 0, 0, 0, 0},
    {"tagged ok, keyword upper-cased",
	"a001 ok [read-write] SELECT completed\r\n",
	"a001 OK [READ-WRITE] \"SELECT completed\"\n", NULL, 0, 0, 0, 0, 0},
    {"status codes", "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
		     "* OK [UIDNEXT 4392] Predicted next UID\r\n"
		     "* OK [HIGHESTMODSEQ 715194045007] Ok\r\n"
		     "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
		     "A3 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"
		     "* NO [ALERT] Disk full\r\n"
		     "* BAD [X-UNKNOWN-CODE] huh\r\n"
		     "* BYE Logging out\r\n"
		     "* PREAUTH [CAPABILITY IMAP4rev1] hi\r\n"
		     "A4 NO [TRYCREATE]\r\n"
		     "A5 OK\r\n",
	"* OK [UIDVALIDITY 3857529045] \"UIDs valid\"\n"
	"* OK [UIDNEXT 4392] \"Predicted next UID\"\n"
	"* OK [HIGHESTMODSEQ 715194045007] \"Ok\"\n"
	"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] \"Limited\"\n"
	"A3 OK [COPYUID 38505 304,319:320 3956:3958] \"Done\"\n"
	"* NO [ALERT] \"Disk full\"\n"
	"* BAD [X-UNKNOWN-CODE] \"huh\"\n"
	"* BYE \"Logging out\"\n"
	"* PREAUTH [CAPABILITY IMAP4rev1] \"hi\"\n"
	"A4 NO [TRYCREATE] \"\"\n"
	"A5 OK \"\"\n",
	NULL, 0, 0, 0, 0, 0},
    {"odd code args kept raw", "* OK [REFERRAL imap://u;AUTH=*@h/ x\"y] t\r\n"
			       "* OK [NOTCLOSED text\r\n"
			       "* OK [] empty\r\n",
	"* OK [REFERRAL imap://u;AUTH=*@h/ x\"y] \"t\"\n"
	"* OK \"[NOTCLOSED text\"\n"
	"* OK \"[] empty\"\n",
	NULL, 0, 0, 0, 0, 0},
    {"continuation", "+ Ready for literal data\r\n+\r\n+ \r\n+ {5}\r\n",
	"+ \"Ready for literal data\"\n+ \"\"\n+ \"\"\n+ \"{5}\"\n", NULL, 0,
	0, 0, 0, 0},
    {"status text ending in {5} is text", "A1 NO parse error {5}\r\n",
	"A1 NO \"parse error {5}\"\n", NULL, 0, 0, 0, 0, 0},
    {"untagged data", "* 23 EXISTS\r\n* 1 RECENT\r\n* 44 EXPUNGE\r\n"
		      "* CAPABILITY IMAP4rev1 IDLE\r\n"
		      "* FLAGS (\\Answered \\Flagged $Forwarded)\r\n"
		      "* ENABLED CONDSTORE QRESYNC\r\n"
		      "* SEARCH 1 2 3\r\n* SEARCH\r\n"
		      "* ESEARCH (TAG \"A2\") UID MIN 1 COUNT 3\r\n"
		      "* VANISHED (EARLIER) 1:3,5\r\n"
		      "* ID NIL\r\n"
		      "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n",
	"* 23 EXISTS\n* 1 RECENT\n* 44 EXPUNGE\n"
	"* CAPABILITY IMAP4rev1 IDLE\n"
	"* FLAGS (\\Answered \\Flagged $Forwarded)\n"
	"* ENABLED CONDSTORE QRESYNC\n"
	"* SEARCH 1 2 3\n* SEARCH\n"
	"* ESEARCH (TAG \"A2\") UID MIN 1 COUNT 3\n"
	"* VANISHED (EARLIER) 1:3,5\n"
	"* ID NIL\n"
	"* NAMESPACE ((\"\" \"/\")) NIL NIL\n",
	NULL, 0, 0, 0, 0, 0},
    {"list and status", "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n"
			"* LIST (\\Noselect) NIL foo\r\n"
			"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n",
	"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\n"
	"* LIST (\\Noselect) NIL foo\n"
	"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\n",
	NULL, 0, 0, 0, 0, 0},
    {"fetch with sections and literals",
	"* 12 FETCH (UID 7 BODY[HEADER.FIELDS (DATE FROM)] {11}\r\n"
	"Date: x\r\n\r\n BODY[]<0> {0}\r\n BODY[1.2] ~{2}\r\nhi)\r\n",
	"* 12 FETCH (UID 7 BODY[HEADER.FIELDS (DATE FROM)] "
	"{11}\"Date: x\\x0d\\x0a\\x0d\\x0a\" BODY[]<0> {0}\"\" BODY[1.2] "
	"{2}\"hi\")\n",
	NULL, 0, 0, 0, 0, 0},
    {"literal+ and literal ending in CR",
	"* 1 FETCH (BODY[] {3+}\r\na\r\r)\r\n* 2 FETCH (X {1}\r\n\r)\r\n",
	"* 1 FETCH (BODY[] {3}\"a\\x0d\\x0d\")\n* 2 FETCH (X {1}\"\\x0d\")\n",
	NULL, 0, 0, 0, 0, 0},
    {"literal as last token then line end",
	"* 1 FETCH (BODY[] {2}\r\n\r\n)\r\n* LIST () \"/\" {3}\r\nabc\r\n",
	"* 1 FETCH (BODY[] {2}\"\\x0d\\x0a\")\n* LIST () \"/\" {3}\"abc\"\n",
	NULL, 0, 0, 0, 0, 0},
    {"quoted escapes and 8-bit", "* 1 FETCH (X \"a\\\"b\\\\c\" Y \"\xc3\xa9\")\r\n",
	"* 1 FETCH (X \"a\\\"b\\\\c\" Y \"\\xc3\\xa9\")\n", NULL, 0, 0, 0, 0,
	0},
    {"NIL any case, empty list, bare LF",
	"* 1 FETCH (A nil B Nil C () D \"NIL\")\n",
	"* 1 FETCH (A NIL B NIL C () D \"NIL\")\n", NULL, 0, 0, 0, 0, 0},
    {"unterminated quote", "* 1 FETCH (X \"abc)\r\n",
	"error: ERR_PROTO\n", "unterminated quoted string at offset 13", 0,
	0, 0, 0, 0},
    {"quote cut by literal line", "* 1 FETCH (X \"ab {2}\r\nxy\")\r\n",
	"error: ERR_PROTO\n", "line break inside quoted string", 0, 0, 0, 0,
	0},
    {"bad escape", "* 1 FETCH (X \"a\\nb\")\r\n", "error: ERR_PROTO\n",
	"bad escape", 0, 0, 0, 0, 0},
    {"unbalanced close", "* 1 FETCH (UID 5))\r\n", "error: ERR_PROTO\n",
	"unbalanced ')' at offset 17", 0, 0, 0, 0, 0},
    {"unclosed list", "* 1 FETCH (UID (5)\r\n", "error: ERR_PROTO\n",
	"unterminated list opened at offset 10", 0, 0, 0, 0, 0},
    {"literal mid-line", "* 1 FETCH (X {5} abcde)\r\n", "error: ERR_PROTO\n",
	"not at end of line", 0, 0, 0, 0, 0},
    {"brace games", "* 1 FETCH (X }{5 {x} {5)\r\n", "error: ERR_PROTO\n",
	NULL, 0, 0, 0, 0, 0},
    {"no space between tokens", "* 1 FETCH (X \"a\"\"b\")\r\n",
	"error: ERR_PROTO\n", "expected space before offset 16", 0, 0, 0, 0,
	0},
    {"adjacent lists", "* 1 FETCH (ENVELOPE ((\"a\" NIL)(NIL NIL)) X(1))\r\n",
	"* 1 FETCH (ENVELOPE ((\"a\" NIL) (NIL NIL)) X (1))\n", NULL, 0, 0,
	0, 0, 0},
    {"tagged data is invalid", "A1 FETCH (UID 1)\r\n", "error: ERR_PROTO\n",
	"not OK", 0, 0, 0, 0, 0},
    {"empty line", "\r\n", "error: ERR_PROTO\n", "empty", 0, 0, 0, 0, 0},
    {"NUL in line", "* 1 FETCH (X a\0b)\r\n", "error: ERR_PROTO\n", NULL,
	0, 0, 0, 0, 0},
    {"number overflow", "* 4294967296 EXISTS\r\n", "error: ERR_PROTO\n",
	"out of range", 0, 0, 0, 0, 0},
    {"max number", "* 4294967295 EXISTS\r\n", "* 4294967295 EXISTS\n", NULL,
	0, 0, 0, 0, 0},
    {"huge literal announced", "* 1 FETCH (BODY[] {99999999999}\r\nabc",
	"error: ERR_TOOBIG\n",
	"literal of 99999999999 bytes exceeds limit 8388608", 0, 0, 0, 0, 0},
    {"literal size overflowing u64",
	"* 1 FETCH (BODY[] {99999999999999999999999999}\r\n",
	"error: ERR_TOOBIG\n", "literal of 99999999999999999999999999 bytes",
	0, 0, 0, 0, 0},
    {"literal over small limit", "* 1 FETCH (BODY[] {11}\r\n",
	"error: ERR_TOOBIG\n", "literal of 11 bytes exceeds limit 10", 0, 10,
	0, 0, 0},
    {"literal at limit", "* 1 FETCH (BODY[] {10}\r\n0123456789)\r\n",
	"* 1 FETCH (BODY[] {10}\"0123456789\")\n", NULL, 0, 10, 0, 0, 0},
    {"line too long", "* SEARCH 1 2 3 4 5 6 7 8 9 10\r\n",
	"error: ERR_TOOBIG\n", "line longer than 16 bytes", 16, 0, 0, 0, 0},
    {"line exactly at limit", "* SEARCH 1 2 345\r\n* OK\r\n",
	"* SEARCH 1 2 345\n* OK \"\"\n", NULL, 16, 0, 0, 0, 0},
    {"line limit excludes literal bytes",
	"* 1 FETCH (X {20}\r\n01234567890123456789)\r\n",
	"* 1 FETCH (X {20}\"01234567890123456789\")\n", NULL, 18, 0, 0, 0, 0},
    {"response too long", "* 1 FETCH (X {20}\r\n01234567890123456789)\r\n",
	"error: ERR_TOOBIG\n", "exceeds limit 30", 0, 0, 30, 0, 0},
    {"depth limit", "* 1 FETCH (((((x)))))\r\n", "error: ERR_TOOBIG\n",
	"nested deeper than 4", 0, 0, 0, 4, 0},
    {"depth at limit", "* 1 FETCH ((((x))))\r\n", "* 1 FETCH ((((x))))\n",
	NULL, 0, 0, 0, 4, 0},
    {"token limit", "* SEARCH 1 2 3 4 5 6\r\n", "error: ERR_TOOBIG\n",
	"more than 5 tokens", 0, 0, 0, 0, 5},
    {"token limit is per response", "* SEARCH 1 2 3 4 5\r\n* SEARCH 1 2\r\n",
	"* SEARCH 1 2 3 4 5\n* SEARCH 1 2\n", NULL, 0, 0, 0, 0, 5},
    {"unterminated bracket", "* 1 FETCH (BODY[HEADER (A)\r\n",
	"error: ERR_PROTO\n", "unterminated '['", 0, 0, 0, 0, 0},
    {"gmail-style mailbox atom", "* LIST () \"/\" [Gmail]/Sent\r\n",
	"* LIST () \"/\" [Gmail]/Sent\n", NULL, 0, 0, 0, 0, 0},
};

static void
test_parse_table(void **state)
{
	struct imap_limits lim;
	const struct parse_case *c;
	char err[512], label[128];
	size_t i, len;

	(void)state;
	for (i = 0; i < ARRAY_LEN(parse_cases); i++) {
		c = &parse_cases[i];
		imap_limits_default(&lim);
		if (c->max_line != 0) {
			lim.max_line = c->max_line;
		}
		if (c->max_literal != 0) {
			lim.max_literal = c->max_literal;
		}
		if (c->max_response != 0) {
			lim.max_response = c->max_response;
		}
		if (c->max_depth != 0) {
			lim.max_depth = c->max_depth;
		}
		if (c->max_tokens != 0) {
			lim.max_tokens = c->max_tokens;
		}
		/* The NUL case needs its real length. */
		len = strlen(c->in);
		if (strcmp(c->name, "NUL in line") == 0) {
			len = sizeof("* 1 FETCH (X a\0b)\r\n") - 1;
		}
		snprintf(label, sizeof(label), "case '%s'", c->name);
		err[0] = '\0';
		check_chunkings(&lim, c->in, len, c->expect, err, sizeof(err),
		    label);
		if (c->errtext != NULL && strstr(err, c->errtext) == NULL) {
			fail_msg("%s: error '%s' lacks '%s'", label, err,
			    c->errtext);
		}
	}
}

/* Field-level checks on one response. */
static void
test_resp_fields(void **state)
{
	static const char in[] =
	    "* OK [PERMANENTFLAGS (\\Seen \\*)] Limited\r\n"
	    "* 3 FETCH (UID 9 X \"q\\\"\")\r\n"
	    "tag7 no [trycreate] no such mailbox\r\n";
	struct imap_limits lim;
	struct imap_parser *p = NULL;
	const struct imap_resp *r;
	const struct imap_tok *t;
	size_t off = 0, used;
	uint32_t v;

	(void)state;
	imap_limits_default(&lim);
	assert_int_equal(imap_parser_new(&lim, &p), 0);

	assert_int_equal(imap_parser_feed(p, in, sizeof(in) - 1, &used, &r),
	    1);
	off += used;
	assert_int_equal(r->kind, IMAP_RESP_UNTAGGED);
	assert_int_equal(r->status, IMAP_ST_OK);
	assert_string_equal(r->name, "OK");
	assert_string_equal(r->code, "PERMANENTFLAGS");
	assert_non_null(r->code_args);
	assert_int_equal(r->code_args->type, IMAP_TOK_LIST);
	assert_int_equal(r->code_args->nchild, 2);
	assert_string_equal(r->code_args->child->s, "\\Seen");
	assert_string_equal(r->code_args->child->next->s, "\\*");
	assert_string_equal(r->text, "Limited");
	assert_int_equal(r->text_len, 7);

	assert_int_equal(
	    imap_parser_feed(p, in + off, sizeof(in) - 1 - off, &used, &r), 1);
	off += used;
	assert_int_equal(r->status, IMAP_ST_NONE);
	assert_string_equal(r->name, "FETCH");
	assert_true(r->has_number);
	assert_int_equal(r->number, 3);
	t = r->args;
	assert_int_equal(t->type, IMAP_TOK_LIST);
	assert_int_equal(t->nchild, 4);
	assert_true(imap_tok_is(t->child, "uid"));
	assert_int_equal(imap_tok_u32(t->child->next, &v), 0);
	assert_int_equal(v, 9);
	assert_int_equal(t->child->next->next->next->type, IMAP_TOK_STRING);
	assert_string_equal(t->child->next->next->next->s, "q\"");
	assert_int_equal(t->child->next->next->next->len, 2);
	assert_string_equal(r->text, "");

	assert_int_equal(
	    imap_parser_feed(p, in + off, sizeof(in) - 1 - off, &used, &r), 1);
	off += used;
	assert_int_equal(off, sizeof(in) - 1);
	assert_int_equal(r->kind, IMAP_RESP_TAGGED);
	assert_string_equal(r->tag, "tag7");
	assert_int_equal(r->status, IMAP_ST_NO);
	assert_string_equal(r->code, "TRYCREATE");
	assert_null(r->code_args);
	assert_string_equal(r->text, "no such mailbox");

	/* Nothing more: 0, nothing consumed. */
	assert_int_equal(imap_parser_feed(p, in, 0, &used, &r), 0);
	assert_int_equal(used, 0);
	imap_parser_free(&p);
}

/* After an error the parser stays failed and says why. */
static void
test_error_sticky(void **state)
{
	struct imap_limits lim;
	struct imap_parser *p = NULL;
	const struct imap_resp *r;
	size_t used;

	(void)state;
	imap_limits_default(&lim);
	assert_int_equal(imap_parser_new(&lim, &p), 0);
	assert_string_equal(imap_parser_error(p), "no error");
	assert_int_equal(imap_parser_feed(p, "* 1 FETCH )\r\n", 13, &used, &r),
	    ERR_PROTO);
	assert_null(r);
	assert_int_equal(imap_parser_feed(p, "* OK\r\n", 6, &used, &r),
	    ERR_PROTO);
	assert_string_equal(imap_parser_error(p), "unbalanced ')' at offset 10");
	imap_parser_free(&p);
	imap_parser_free(&p); /* NULL is fine */
	assert_int_equal(imap_parser_new(NULL, &p), ERR_INVAL);
}

static void
test_tok_helpers(void **state)
{
	static const struct {
		const char *s;
		int rv32, rv64;
		uint64_t v;
	} nums[] = {
	    {"0", 0, 0, 0},
	    {"4294967295", 0, 0, 4294967295u},
	    {"4294967296", ERR_PROTO, 0, 4294967296u},
	    {"18446744073709551615", ERR_PROTO, 0, UINT64_MAX},
	    {"18446744073709551616", ERR_PROTO, ERR_PROTO, 0},
	    {"", ERR_PROTO, ERR_PROTO, 0},
	    {"12a", ERR_PROTO, ERR_PROTO, 0},
	    {"-1", ERR_PROTO, ERR_PROTO, 0},
	};
	struct imap_tok t;
	uint32_t v32;
	uint64_t v64;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(nums); i++) {
		memset(&t, 0, sizeof(t));
		t.type = IMAP_TOK_ATOM;
		t.s = nums[i].s;
		t.len = strlen(nums[i].s);
		assert_int_equal(imap_tok_u32(&t, &v32), nums[i].rv32);
		assert_int_equal(imap_tok_u64(&t, &v64), nums[i].rv64);
		if (nums[i].rv64 == 0) {
			assert_true(v64 == nums[i].v);
		}
	}
	memset(&t, 0, sizeof(t));
	t.type = IMAP_TOK_STRING;
	t.s = "5";
	t.len = 1;
	assert_int_equal(imap_tok_u32(&t, &v32), ERR_PROTO);
	assert_true(imap_tok_is_str(&t));
	assert_true(imap_tok_is(&t, "5"));
	t.type = IMAP_TOK_NIL;
	assert_false(imap_tok_is_str(&t));
	t.type = IMAP_TOK_LIST;
	assert_false(imap_tok_is(&t, "5"));
	assert_false(imap_tok_is_str(NULL));
}

/* A big literal and a long line fed byte by byte: linear, bounded. */
static void
test_large_bytewise(void **state)
{
	struct imap_limits lim;
	struct imap_parser *p = NULL;
	const struct imap_resp *r = NULL;
	struct buf in;
	size_t i, used, n = 0;
	int rv;

	(void)state;
	buf_init(&in, 64u * 1024 * 1024);
	assert_int_equal(buf_addstr(&in, "* 1 FETCH (BODY[] {4000000}\r\n"),
	    0);
	for (i = 0; i < 4000000; i++) {
		assert_int_equal(buf_add(&in, "x", 1), 0);
	}
	assert_int_equal(buf_addstr(&in, ")\r\n* SEARCH"), 0);
	for (i = 0; i < 10000; i++) {
		assert_int_equal(buf_addstr(&in, " 12345"), 0);
	}
	assert_int_equal(buf_addstr(&in, "\r\n"), 0);
	imap_limits_default(&lim);
	assert_int_equal(imap_parser_new(&lim, &p), 0);
	for (i = 0; i < in.len; i += used) {
		rv = imap_parser_feed(p, in.data + i, 1, &used, &r);
		assert_true(rv >= 0);
		if (rv == 1) {
			n++;
			if (n == 1) {
				assert_int_equal(r->args->child->next->len,
				    4000000);
			} else {
				const struct imap_tok *t;
				size_t k = 0;

				for (t = r->args; t != NULL; t = t->next) {
					k++;
				}
				assert_int_equal(k, 10000);
			}
		}
	}
	assert_int_equal(n, 2);
	imap_parser_free(&p);
	buf_release(&in);
}

static char *
read_file(const char *path, size_t *len_r)
{
	FILE *f;
	struct buf b;
	char tmp[4096];
	size_t n;

	f = fopen(path, "rb");
	if (f == NULL) {
		return (NULL);
	}
	buf_init(&b, 16u * 1024 * 1024);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		assert_int_equal(buf_add(&b, tmp, n), 0);
	}
	fclose(f);
	if (b.data == NULL) {
		assert_int_equal(buf_reserve(&b, 0), 0);
	}
	*len_r = b.len;
	return (b.data);
}

static const char *
data_dir(void)
{
	static const char *const dirs[] = {"tests/data/imap",
	    "../tests/data/imap", "../../tests/data/imap",
	    "../../../tests/data/imap"};
	struct stat st;
	size_t i;

	for (i = 0; i < ARRAY_LEN(dirs); i++) {
		if (stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			return (dirs[i]);
		}
	}
	return (NULL);
}

static int
name_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* Every tests/data/imap/NAME.txt with its NAME.expect. */
static void
test_transcripts(void **state)
{
	struct imap_limits lim;
	const char *dir;
	DIR *d;
	struct dirent *de;
	char *names[256], path[1024], *in, *expect;
	size_t n = 0, i, len, elen, nl;

	(void)state;
	dir = data_dir();
	if (dir == NULL) {
		skip();
	}
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < ARRAY_LEN(names)) {
		nl = strlen(de->d_name);
		if (nl > 4 && strcmp(de->d_name + nl - 4, ".txt") == 0) {
			names[n] = strndup(de->d_name, nl - 4);
			assert_non_null(names[n]);
			n++;
		}
	}
	closedir(d);
	assert_true(n >= 5);
	qsort(names, n, sizeof(names[0]), name_cmp);
	imap_limits_default(&lim);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s.txt", dir, names[i]);
		in = read_file(path, &len);
		assert_non_null(in);
		snprintf(path, sizeof(path), "%s/%s.expect", dir, names[i]);
		expect = read_file(path, &elen);
		if (expect == NULL) {
			fail_msg("missing %s", path);
		}
		check_chunkings(&lim, in, len, expect, NULL, 0, names[i]);
		free(in);
		free(expect);
		free(names[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_table),
	    cmocka_unit_test(test_resp_fields),
	    cmocka_unit_test(test_error_sticky),
	    cmocka_unit_test(test_tok_helpers),
	    cmocka_unit_test(test_large_bytewise),
	    cmocka_unit_test(test_transcripts),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
