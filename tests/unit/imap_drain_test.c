/*
 * imap_drain_test.c: the pure parts of the drain: UIDPLUS response codes
 * (COPYUID set mapping, APPENDUID), flag folding and STORE grouping,
 * command arguments (mailbox names, Message-ID searches, flag lists),
 * UID-set membership, the reading of a NO, and error-text hygiene.
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
#include "mime/mime.h"
#include "sync/drain_int.h"

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

/* COPYUID ---------------------------------------------------------------- */

struct copyuid_case {
	const char *line;
	int rv;		    /* of imap_copyuid_parse */
	uint32_t uidvalidity;
	uint32_t src, dst; /* one lookup: dst 0 = ERR_NOTFOUND */
};

static const struct copyuid_case copyuid_cases[] = {
	{ "A3 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n", 0, 38505,
	    319, 3957 },
	{ "A3 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n", 0, 38505,
	    304, 3956 },
	{ "A3 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n", 0, 38505,
	    320, 3958 },
	{ "A3 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n", 0, 38505,
	    305, 0 },
	/* "4:2" is 2, 3, 4: pairs count each range from its lower end */
	{ "* OK [COPYUID 7 4:2 10,20,30] Moved\r\n", 0, 7, 3, 20 },
	{ "* OK [COPYUID 7 9 1:3,100] x\r\n", ERR_PROTO, 0, 9, 0 },
	{ "A1 OK [COPYUID 7 1:3 5:6] sizes differ\r\n", ERR_PROTO, 0, 1, 0 },
	{ "A1 OK [COPYUID 0 1 5] zero uidvalidity\r\n", ERR_PROTO, 0, 1, 0 },
	{ "A1 OK [COPYUID 7 1:* 5] star\r\n", ERR_PROTO, 0, 1, 0 },
	{ "A1 OK [COPYUID 7 1,,2 5:6] empty range\r\n", ERR_PROTO, 0, 1, 0 },
	{ "A1 OK [COPYUID 7 1:2] one set\r\n", ERR_PROTO, 0, 1, 0 },
	{ "A1 OK [COPYUID 7 1 2 3] extra\r\n", ERR_PROTO, 0, 1, 0 },
	{ "A1 OK [COPYUID 7 4294967296 1] big\r\n", ERR_PROTO, 0, 1, 0 },
	{ "A1 OK [APPENDUID 7 1] other code\r\n", ERR_NOTFOUND, 0, 1, 0 },
	{ "A1 NO [COPYUID 7 1 2] not ok\r\n", ERR_NOTFOUND, 0, 1, 0 },
	{ "A1 OK done\r\n", ERR_NOTFOUND, 0, 1, 0 },
	/* one huge range: counted by ranges, not by walking UIDs */
	{ "A1 OK [COPYUID 9 1:4294967295 1:4294967295] all\r\n", 0, 9,
	    4000000000u, 4000000000u },
};

static void
check_copyuid(const struct imap_resp *r, void *arg)
{
	const struct copyuid_case *c = arg;
	struct imap_copyuid cu;
	uint32_t dst = 99;

	assert_int_equal(imap_copyuid_parse(r, &cu), c->rv);
	if (c->rv != 0) {
		assert_int_equal(cu.uidvalidity, 0);
		return;
	}
	assert_int_equal(cu.uidvalidity, c->uidvalidity);
	assert_int_equal(imap_copyuid_lookup(&cu, c->src, &dst),
	    c->dst != 0 ? 0 : ERR_NOTFOUND);
	assert_int_equal(dst, c->dst);
}

static void
test_copyuid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(copyuid_cases); i++) {
		with_resp(copyuid_cases[i].line, check_copyuid,
		    (void *)(uintptr_t)&copyuid_cases[i]);
	}
}

struct appenduid_case {
	const char *line;
	int rv;
	uint32_t uidvalidity, uid;
};

static const struct appenduid_case appenduid_cases[] = {
	{ "A5 OK [APPENDUID 38505 3955] APPEND completed\r\n", 0, 38505, 3955 },
	{ "A5 OK [APPENDUID 38505 3955:3956] two\r\n", ERR_PROTO, 0, 0 },
	{ "A5 OK [APPENDUID 38505] no uid\r\n", ERR_PROTO, 0, 0 },
	{ "A5 OK [APPENDUID x 1] bad\r\n", ERR_PROTO, 0, 0 },
	{ "A5 OK APPEND completed\r\n", ERR_NOTFOUND, 0, 0 },
	{ "A5 NO [TRYCREATE] Mailbox doesn't exist: Nope\r\n", ERR_NOTFOUND, 0,
	    0 },
};

static void
check_appenduid(const struct imap_resp *r, void *arg)
{
	const struct appenduid_case *c = arg;
	uint32_t uv = 1, uid = 1;

	assert_int_equal(imap_appenduid_parse(r, &uv, &uid), c->rv);
	assert_int_equal(uv, c->uidvalidity);
	assert_int_equal(uid, c->uid);
}

static void
test_appenduid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(appenduid_cases); i++) {
		with_resp(appenduid_cases[i].line, check_appenduid,
		    (void *)(uintptr_t)&appenduid_cases[i]);
	}
}

/* Flags ------------------------------------------------------------------ */

struct fold_step {
	uint32_t add, remove;
	const char *kw_add, *kw_remove;
};

struct fold_case {
	struct fold_step steps[4];
	size_t n;
	int rv;
	const char *add, *remove; /* NULL: nothing */
};

static const struct fold_case fold_cases[] = {
	{ { { PROTO_FLAG_SEEN, 0, NULL, NULL } }, 1, 0, "(\\Seen)", NULL },
	/* read, then unread: the later change wins */
	{ { { PROTO_FLAG_SEEN, 0, NULL, NULL },
	      { 0, PROTO_FLAG_SEEN, NULL, NULL } },
	    2, 0, NULL, "(\\Seen)" },
	/* star and read, then unstar */
	{ { { PROTO_FLAG_FLAGGED | PROTO_FLAG_SEEN, 0, NULL, NULL },
	      { 0, PROTO_FLAG_FLAGGED, NULL, NULL } },
	    2, 0, "(\\Seen)", "(\\Flagged)" },
	/* canonical order: flags in table order, keywords sorted */
	{ { { PROTO_FLAG_DRAFT | PROTO_FLAG_SEEN, 0, "zeta $Alpha", NULL } },
	    1, 0, "(\\Seen \\Draft $Alpha zeta)", NULL },
	/* keywords fold without case, the first spelling kept */
	{ { { 0, 0, "Work", NULL }, { 0, 0, NULL, "work" },
	      { 0, 0, "later", NULL } },
	    3, 0, "(later)", "(work)" },
	{ { { 0, 0, "a a A", NULL } }, 1, 0, "(a)", NULL },
	{ { { 0, 0, NULL, NULL } }, 1, 0, NULL, NULL },
	/* not atoms */
	{ { { 0, 0, "\\Seen", NULL } }, 1, ERR_INVAL, NULL, NULL },
	{ { { 0, 0, NULL, "a(b" } }, 1, ERR_INVAL, NULL, NULL },
	{ { { 0, 0, "caf\xc3\xa9", NULL } }, 1, ERR_INVAL, NULL, NULL },
};

static void
test_fold(void **state)
{
	struct proto_change chg[4];
	const struct proto_change *p[4];
	char *add, *rem;
	size_t i, k;

	(void)state;
	for (i = 0; i < ARRAY_LEN(fold_cases); i++) {
		const struct fold_case *c = &fold_cases[i];

		memset(chg, 0, sizeof(chg));
		for (k = 0; k < c->n; k++) {
			chg[k].kind = CHANGE_FLAG;
			chg[k].flags_add = c->steps[k].add;
			chg[k].flags_remove = c->steps[k].remove;
			chg[k].keywords_add = proto_str_c(c->steps[k].kw_add);
			chg[k].keywords_remove =
			    proto_str_c(c->steps[k].kw_remove);
			p[k] = &chg[k];
		}
		assert_int_equal(drain_fold_flags(p, c->n, &add, &rem), c->rv);
		if (c->add == NULL) {
			assert_null(add);
		} else {
			assert_non_null(add);
			assert_string_equal(add, c->add);
		}
		if (c->remove == NULL) {
			assert_null(rem);
		} else {
			assert_non_null(rem);
			assert_string_equal(rem, c->remove);
		}
		free(add);
		free(rem);
	}
}

static void
test_flag_list(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(drain_flag_list(0, proto_str_c(NULL), &b), 0);
	assert_string_equal(b.data, "()");
	buf_reset(&b);
	assert_int_equal(drain_flag_list(PROTO_FLAG_ALL,
			     proto_str_c(" $Junk  $Forwarded "), &b),
	    0);
	assert_string_equal(b.data, "(\\Seen \\Answered \\Flagged \\Deleted "
				    "\\Draft $Forwarded $Junk)");
	buf_reset(&b);
	assert_int_equal(drain_flag_list(PROTO_FLAG_SEEN,
			     proto_str_c("ok bad\"one"), &b),
	    ERR_INVAL);
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void
test_store_plan(void **state)
{
	/* Five messages, three distinct net changes. */
	struct drain_flagmsg m[5] = {
		{ .uid = 9, .add = "(\\Seen)", .owner = 0 },
		{ .uid = 3, .add = "(\\Seen)", .remove = "(\\Flagged)",
		    .owner = 1 },
		{ .uid = 4, .add = "(\\Seen)", .owner = 2 },
		{ .uid = 5, .remove = "(\\Flagged)", .owner = 3 },
		{ .uid = 10, .add = "(\\Seen)", .owner = 4 },
	};
	struct drain_texts t = { NULL, 0, 0 };
	size_t i;

	(void)state;
	assert_int_equal(drain_store_plan(m, 5, &t), 0);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.v[0], "UID STORE 3:4,9:10 +FLAGS.SILENT (\\Seen)");
	assert_string_equal(t.v[1],
	    "UID STORE 3,5 -FLAGS.SILENT (\\Flagged)");
	for (i = 0; i < 5; i++) {
		switch (m[i].owner) {
		case 0:
		case 2:
		case 4:
			assert_int_equal(m[i].cmd_add, 0);
			assert_int_equal(m[i].cmd_remove, SIZE_MAX);
			break;
		case 1:
			assert_int_equal(m[i].cmd_add, 0);
			assert_int_equal(m[i].cmd_remove, 1);
			break;
		default:
			assert_int_equal(m[i].cmd_add, SIZE_MAX);
			assert_int_equal(m[i].cmd_remove, 1);
		}
	}
	drain_texts_release(&t);
	/* Nothing to do: no commands. */
	m[0].add = m[0].remove = NULL;
	assert_int_equal(drain_store_plan(m, 1, &t), 0);
	assert_int_equal(t.n, 0);
	assert_int_equal(m[0].cmd_add, SIZE_MAX);
	drain_texts_release(&t);
}

/* Command arguments ------------------------------------------------------ */

static void
test_mailbox_arg(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "INBOX", "\"INBOX\"" },
		{ "Entw\xc3\xbcrfe", "\"Entw&APw-rfe\"" },
		{ "a \"b\" \\c", "\"a \\\"b\\\" \\\\c\"" },
		{ "Tr&sh", "\"Tr&-sh\"" },
		{ "", NULL },
		{ "bad\xff", NULL },
	};
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 4096);
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		buf_reset(&b);
		(void)buf_addstr(&b, "X ");
		assert_int_equal(drain_mailbox_arg(&b, proto_str_c(cases[i].in)),
		    cases[i].out != NULL ? 0 : ERR_INVAL);
		assert_string_equal(b.data + 2,
		    cases[i].out != NULL ? cases[i].out : "");
	}
	buf_release(&b);
}

static void
test_search_msgid(void **state)
{
	char big[DRAIN_MAX_MSGID + 2];
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(drain_search_msgid(&b, proto_str_c("<a.b@c.d>")), 0);
	assert_string_equal(b.data,
	    "UID SEARCH HEADER Message-ID \"<a.b@c.d>\"");
	buf_reset(&b);
	assert_int_equal(drain_search_msgid(&b, proto_str_c("<\"q\\\"@x>")),
	    0);
	assert_string_equal(b.data,
	    "UID SEARCH HEADER Message-ID \"<\\\"q\\\\\\\"@x>\"");
	buf_reset(&b);
	assert_int_equal(drain_search_msgid(&b, proto_str_c("<a\r\nb@c>")),
	    ERR_INVAL);
	assert_int_equal(drain_search_msgid(&b, proto_str_c("<\xc3\xa9@c>")),
	    ERR_INVAL);
	assert_int_equal(drain_search_msgid(&b, proto_str_c("")), ERR_INVAL);
	assert_int_equal(drain_search_msgid(&b, proto_str_c(NULL)), ERR_INVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(drain_search_msgid(&b, proto_str_c(big)), ERR_INVAL);
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void
test_sets(void **state)
{
	(void)state;
	assert_true(drain_set_has("1:4,9", 5, 1));
	assert_true(drain_set_has("1:4,9", 5, 4));
	assert_true(drain_set_has("1:4,9", 5, 9));
	assert_false(drain_set_has("1:4,9", 5, 5));
	assert_true(drain_set_has("7:5", 3, 6));
	assert_false(drain_set_has("", 0, 1));
	assert_false(drain_set_has("x", 1, 1));
	assert_int_equal(drain_set_max("1:4,9", 5), 9);
	assert_int_equal(drain_set_max("12,3:5", 6), 12);
	assert_int_equal(drain_set_max("", 0), 0);
	assert_int_equal(drain_set_max("3,x", 3), 0);
	assert_int_equal(drain_set_max("3,", 2), 0);
}

static void
test_no_outcome(void **state)
{
	(void)state;
	assert_int_equal(drain_no_outcome("[TRYCREATE] Mailbox doesn't exist"),
	    CHANGE_OUT_DEAD);
	assert_int_equal(drain_no_outcome("[OVERQUOTA] Quota exceeded"),
	    CHANGE_OUT_DEAD);
	assert_int_equal(drain_no_outcome("Permission denied"),
	    CHANGE_OUT_DEAD);
	assert_int_equal(drain_no_outcome("[UNAVAILABLE] try later"),
	    CHANGE_OUT_RETRY);
	assert_int_equal(drain_no_outcome("[INUSE] locked"), CHANGE_OUT_RETRY);
	assert_int_equal(drain_no_outcome("[SERVERBUG] oops"),
	    CHANGE_OUT_RETRY);
	assert_int_equal(drain_no_outcome("[LIMITED] no"), CHANGE_OUT_DEAD);
	assert_int_equal(drain_no_outcome(NULL), CHANGE_OUT_DEAD);
}

static void
test_text(void **state)
{
	char out[32];

	(void)state;
	drain_text(out, sizeof(out), "a\r\nb\x01%s", "c");
	assert_string_equal(out, "a  b c");
	drain_text(out, sizeof(out), "bad \xff byte");
	assert_string_equal(out, "bad \xef\xbf\xbd byte");
	assert_true(mime_utf8_valid(out, strlen(out)));
	/* Cut at a character boundary. */
	drain_text(out, 6, "abcd\xc3\xa9");
	assert_string_equal(out, "abcd");
}

/* Batcher: change results ------------------------------------------------ */

struct seen_results {
	size_t batches, results, longest;
	char last_error[64];
	char last_mailbox[64];
};

static int
results_sink(const struct proto_batch *b, void *arg)
{
	struct seen_results *s = arg;
	size_t i;

	s->batches++;
	for (i = 0; i < b->nchange_results; i++) {
		const struct proto_change_result *r = &b->change_results[i];

		s->results++;
		if (r->error.len > s->longest) {
			s->longest = r->error.len;
		}
		snprintf(s->last_error, sizeof(s->last_error), "%.*s",
		    (int)r->error.len, r->error.p != NULL ? r->error.p : "");
		snprintf(s->last_mailbox, sizeof(s->last_mailbox), "%.*s",
		    (int)r->mailbox.len,
		    r->mailbox.p != NULL ? r->mailbox.p : "");
		assert_true(r->error.p == NULL ||
		    strlen(r->error.p) == r->error.len);
	}
	return (0);
}

static void
test_batcher_results(void **state)
{
	struct proto_change_result r;
	struct seen_results s;
	struct sync_limits l;
	struct sync_sink sink = { results_sink, &s };
	struct sync_batcher *b;
	char err[40], big[SYNC_MAX_ERROR + 100];
	size_t i;

	(void)state;
	memset(&s, 0, sizeof(s));
	sync_limits_default(&l);
	l.batch_rows = 4;
	assert_int_equal(sync_batcher_new(1, 1, &l, &sink, &b), 0);
	for (i = 0; i < 6; i++) {
		memset(&r, 0, sizeof(r));
		snprintf(err, sizeof(err), "error %zu", i);
		r.id = i + 1;
		r.outcome = CHANGE_OUT_DEAD;
		r.error = proto_str_c(err);
		r.mailbox = proto_str_c("INBOX");
		/* strings are copied: the caller's buffer may change */
		assert_int_equal(sync_batcher_add_change_result(b, &r), 0);
		memset(err, 'x', sizeof(err) - 1);
	}
	assert_int_equal(s.batches, 1); /* flushed at 4 rows */
	assert_int_equal(sync_batcher_flush(b), 0);
	assert_int_equal(s.batches, 2);
	assert_int_equal(s.results, 6);
	assert_string_equal(s.last_error, "error 5");
	assert_string_equal(s.last_mailbox, "INBOX");
	/* an error text past the proto limit is clipped */
	memset(big, 'e', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memset(&r, 0, sizeof(r));
	r.id = 9;
	r.error = proto_str_c(big);
	assert_int_equal(sync_batcher_add_change_result(b, &r), 0);
	assert_int_equal(sync_batcher_flush(b), 0);
	assert_int_equal(sync_batcher_nbatches(b), 3);
	assert_int_equal(s.longest, SYNC_MAX_ERROR);
	sync_batcher_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copyuid),
		cmocka_unit_test(test_appenduid),
		cmocka_unit_test(test_fold),
		cmocka_unit_test(test_flag_list),
		cmocka_unit_test(test_store_plan),
		cmocka_unit_test(test_mailbox_arg),
		cmocka_unit_test(test_search_msgid),
		cmocka_unit_test(test_sets),
		cmocka_unit_test(test_no_outcome),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_batcher_results),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
