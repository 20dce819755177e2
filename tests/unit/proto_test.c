/*
 * proto_test.c: unit tests of pkg/proto. Round trips every message type,
 * filled by a generic table-driven filler (every field set, max values,
 * empty strings, nil strings, nested and empty arrays), then a table of
 * malformed inputs with the exact error each must produce.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"
#include "proto/proto.h"

#define AT_(base, off, T) ((T *)(void *)((char *)(base) + (off)))

/* How fill() sets the fields of a message. */
enum fill_mode {
	FILL_MAX,   /* every field, largest values, 2-element arrays */
	FILL_MIN,   /* required fields only, zero/nil elsewhere */
	FILL_EMPTY, /* every field, "" strings, negative ints, 1 element */
};

static const char *const long_words[] = { "alpha", "\xff\xfe not utf8",
	"INBOX/Sub", "x" };

static void
fill_table(const struct proto_table *t, void *st, enum fill_mode mode,
    int seed)
{
	size_t i, j, n;

	for (i = 0; i < t->nfields; i++) {
		const struct proto_field *f = &t->fields[i];
		uint64_t max = f->max;

		if (mode == FILL_MIN && !f->required) {
			continue;
		}
		switch (f->type) {
		case PROTO_F_U8:
			*AT_(st, f->off, uint8_t) =
			    (uint8_t)(mode == FILL_EMPTY ? 1
				: (max != 0 ? max : UINT8_MAX));
			break;
		case PROTO_F_U32:
			/* a field's max bounds it (flag masks) */
			*AT_(st, f->off, uint32_t) = mode == FILL_EMPTY
			    ? 1u + (uint32_t)seed % (max != 0 ? (uint32_t)max
							      : UINT32_MAX)
			    : (max != 0 ? (uint32_t)max : UINT32_MAX);
			break;
		case PROTO_F_U64:
			*AT_(st, f->off, uint64_t) =
			    mode == FILL_EMPTY ? 7 : UINT64_MAX;
			break;
		case PROTO_F_I32:
			*AT_(st, f->off, int32_t) =
			    mode == FILL_EMPTY ? -1 : INT32_MIN;
			break;
		case PROTO_F_I64:
			*AT_(st, f->off, int64_t) =
			    mode == FILL_EMPTY ? -1 : (seed % 2 ? INT64_MAX
								: INT64_MIN);
			break;
		case PROTO_F_BOOL:
			*AT_(st, f->off, bool) = mode != FILL_MIN;
			break;
		case PROTO_F_STR: {
			struct proto_str *s = AT_(st, f->off, struct proto_str);

			*s = proto_str_c(mode == FILL_EMPTY && !f->required
				? ""
				: long_words[(i + (size_t)seed) %
				      ARRAY_LEN(long_words)]);
			if (max != 0 && s->len > max) {
				s->len = (size_t)max;
			}
			break;
		}
		case PROTO_F_STR_ARRAY:
			n = mode == FILL_MAX ? 2 : 1;
			{
				struct proto_str *a = calloc(n, sizeof(*a));

				assert_non_null(a);
				for (j = 0; j < n; j++) {
					a[j] = proto_str_c(long_words[j]);
				}
				*AT_(st, f->off, struct proto_str *) = a;
				*AT_(st, f->count_off, size_t) = n;
			}
			break;
		case PROTO_F_STRUCT_ARRAY:
			n = mode == FILL_MAX ? 2 : 1;
			{
				char *a = calloc(n, f->sub->size);

				assert_non_null(a);
				for (j = 0; j < n; j++) {
					fill_table(f->sub, a + j * f->sub->size,
					    mode, seed + (int)j + 1);
				}
				*AT_(st, f->off, void *) = a;
				*AT_(st, f->count_off, size_t) = n;
			}
			break;
		case PROTO_F_STRUCT_PTR:
			if (mode != FILL_MIN) {
				void *p = calloc(1, f->sub->size);

				assert_non_null(p);
				fill_table(f->sub, p, mode, seed + 1);
				*AT_(st, f->off, void *) = p;
			}
			break;
		}
	}
}

/* Deep comparison of two structs described by t. */
static void
compare_table(const struct proto_table *t, const void *a, const void *b)
{
	size_t i, j, n;

	for (i = 0; i < t->nfields; i++) {
		const struct proto_field *f = &t->fields[i];
		const char *pa = (const char *)a + f->off;
		const char *pb = (const char *)b + f->off;
		const struct proto_str *sa, *sb;

		switch (f->type) {
		case PROTO_F_U8:
		case PROTO_F_BOOL:
			assert_memory_equal(pa, pb, 1);
			break;
		case PROTO_F_U32:
		case PROTO_F_I32:
			assert_memory_equal(pa, pb, 4);
			break;
		case PROTO_F_U64:
		case PROTO_F_I64:
			assert_memory_equal(pa, pb, 8);
			break;
		case PROTO_F_STR:
			sa = (const struct proto_str *)(const void *)pa;
			sb = (const struct proto_str *)(const void *)pb;
			assert_int_equal(sa->p == NULL, sb->p == NULL);
			assert_int_equal(sa->len, sb->len);
			if (sa->len > 0) {
				assert_memory_equal(sa->p, sb->p, sa->len);
			}
			break;
		case PROTO_F_STR_ARRAY:
		case PROTO_F_STRUCT_ARRAY:
			n = *(const size_t *)(const void *)((const char *)a +
			    f->count_off);
			assert_int_equal(n,
			    *(const size_t *)(const void *)((const char *)b +
				f->count_off));
			for (j = 0; j < n; j++) {
				const char *ea =
				    *(const char *const *)(const void *)pa;
				const char *eb =
				    *(const char *const *)(const void *)pb;

				if (f->type == PROTO_F_STR_ARRAY) {
					sa = (const struct proto_str *)(
					    const void *)ea + j;
					sb = (const struct proto_str *)(
					    const void *)eb + j;
					assert_int_equal(sa->len, sb->len);
					assert_memory_equal(sa->p, sb->p,
					    sa->len);
				} else {
					compare_table(f->sub,
					    ea + j * f->sub->size,
					    eb + j * f->sub->size);
				}
			}
			break;
		case PROTO_F_STRUCT_PTR: {
			const void *qa = *(const void *const *)(const void *)pa;
			const void *qb = *(const void *const *)(const void *)pb;

			assert_int_equal(qa == NULL, qb == NULL);
			if (qa != NULL) {
				compare_table(f->sub, qa, qb);
			}
			break;
		}
		}
	}
}

/* Checks that every decoded string of st points into [buf, buf+len). */
static void
check_views(const struct proto_table *t, const void *st, const char *buf,
    size_t len)
{
	size_t i, j, n;

	for (i = 0; i < t->nfields; i++) {
		const struct proto_field *f = &t->fields[i];
		const char *p = (const char *)st + f->off;
		const struct proto_str *s;

		if (f->type == PROTO_F_STR) {
			s = (const struct proto_str *)(const void *)p;
			if (s->p != NULL && s->len > 0) {
				assert_true(s->p >= buf &&
				    s->p + s->len <= buf + len);
			}
		} else if (f->type == PROTO_F_STRUCT_ARRAY) {
			n = *(const size_t *)(const void *)((const char *)st +
			    f->count_off);
			for (j = 0; j < n; j++) {
				check_views(f->sub,
				    *(const char *const *)(const void *)p +
					j * f->sub->size,
				    buf, len);
			}
		}
	}
}

/*
 * With PROTO_WRITE_SEEDS=DIR in the environment, every encoding made by
 * the round-trip test is also written to DIR: that is how the fuzz corpus
 * tests/fuzz/corpus/proto/ was seeded.
 */
static void
write_seed(const struct proto_msg *m, const char *buf, size_t len)
{
	static int serial;
	const char *dir = getenv("PROTO_WRITE_SEEDS");
	char path[512];
	FILE *f;

	if (dir == NULL) {
		return;
	}
	snprintf(path, sizeof(path), "%s/%s-%d", dir, proto_msg_name(m->type),
	    serial++);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
}

static void
round_trip(struct proto_msg *in)
{
	const struct proto_table *t = proto_body_table(in->type);
	struct proto_msg out;
	char *buf = NULL, *buf2 = NULL;
	size_t len = 0, len2 = 0;
	char err[256];
	int rv;

	assert_non_null(t);
	rv = proto_encode(in, &buf, &len);
	if (rv != 0) {
		fail_msg("%s: encode: %s", proto_msg_name(in->type),
		    err_str(rv));
	}
	write_seed(in, buf, len);
	rv = proto_decode(buf, len, &out, err, sizeof(err));
	if (rv != 0) {
		fail_msg("%s: decode: %s", proto_msg_name(in->type), err);
	}
	assert_int_equal(out.type, in->type);
	assert_true(out.id == in->id);
	compare_table(t, &in->u, &out.u);
	check_views(t, &out.u, buf, len);
	/* Re-encoding the decoded message gives the same bytes. */
	rv = proto_encode(&out, &buf2, &len2);
	assert_int_equal(rv, 0);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	proto_msg_release(&out);
	assert_int_equal(out.type, MSG_NONE);
	free(buf);
	free(buf2);
}

static void
test_round_trip_all(void **state)
{
	static const enum fill_mode modes[] = { FILL_MAX, FILL_MIN,
		FILL_EMPTY };
	struct proto_msg m;
	size_t k;
	int t;

	(void)state;
	for (t = MSG_NONE + 1; t < MSG_TYPE_COUNT; t++) {
		for (k = 0; k < ARRAY_LEN(modes); k++) {
			memset(&m, 0, sizeof(m));
			m.type = (enum proto_msg_type)t;
			m.id = k == 0 ? UINT64_MAX : (uint64_t)k;
			fill_table(proto_body_table(m.type), &m.u, modes[k],
			    t);
			round_trip(&m);
			proto_msg_release(&m);
		}
	}
}

static void
test_names(void **state)
{
	uint8_t v = 9;
	int t;

	(void)state;
	for (t = MSG_NONE + 1; t < MSG_TYPE_COUNT; t++) {
		const char *n = proto_msg_name((enum proto_msg_type)t);

		assert_int_equal(proto_msg_lookup(n, strlen(n)), t);
	}
	assert_string_equal(proto_msg_name(MSG_WORKER_RESULT_BATCH),
	    "worker.result.batch");
	assert_string_equal(proto_msg_name(MSG_NONE), "unknown");
	assert_string_equal(proto_msg_name(MSG_TYPE_COUNT), "unknown");
	assert_string_equal(proto_job_kind_name(JOB_KIND_SYNC), "sync");
	assert_string_equal(proto_job_state_name(JOB_DEAD), "dead");
	assert_string_equal(proto_job_state_name(99), "unknown");
	assert_int_equal(proto_job_state_parse("leased", &v), 0);
	assert_int_equal(v, JOB_LEASED);
	assert_int_equal(proto_job_kind_parse("drain", &v), 0);
	assert_int_equal(v, JOB_KIND_DRAIN);
	assert_int_equal(proto_job_kind_parse("Sync", &v), ERR_INVAL);
	assert_int_equal(proto_job_state_parse(NULL, &v), ERR_INVAL);
	assert_true(proto_str_eq(proto_str_c("abc"), "abc"));
	assert_false(proto_str_eq(proto_str_c("abc"), "ab"));
	assert_true(proto_str_eq(proto_str_c(NULL), NULL));
	assert_null(proto_str_dup(proto_str_c(NULL)));
	{
		char *d = proto_str_dup((struct proto_str){ "xyz", 2 });

		assert_string_equal(d, "xy");
		free(d);
	}
}

/* A hand-built batch: nested arrays, a nil string, the largest values. */
static void
test_batch_details(void **state)
{
	struct proto_message_row rows[3];
	struct proto_mailbox_row mbx[1];
	struct proto_msg m, out;
	char *buf;
	size_t len;
	char err[256];

	(void)state;
	memset(&m, 0, sizeof(m));
	memset(rows, 0, sizeof(rows));
	memset(mbx, 0, sizeof(mbx));
	m.type = MSG_WORKER_RESULT_BATCH;
	m.id = 42;
	m.u.batch.job_id = 12;
	m.u.batch.attempt = 3;
	m.u.batch.seq = 1;
	mbx[0].name = proto_str_c("INBOX");
	mbx[0].delimiter = proto_str_c("/");
	mbx[0].uidvalidity = UINT32_MAX;
	mbx[0].reset = true;
	m.u.batch.mailboxes = mbx;
	m.u.batch.nmailboxes = 1;
	rows[0].mailbox = proto_str_c("INBOX");
	rows[0].uid = 1;
	rows[0].full = true;
	rows[0].subject = proto_str_c("");
	rows[0].date = -1;
	rows[1].mailbox = proto_str_c("INBOX");
	rows[1].uid = UINT32_MAX;
	rows[1].flags = PROTO_FLAG_SEEN | PROTO_FLAG_DRAFT;
	rows[2].mailbox = proto_str_c("Sent");
	rows[2].uid = 7;
	rows[2].size = UINT64_MAX;
	m.u.batch.messages = rows;
	m.u.batch.nmessages = 3;
	assert_int_equal(proto_encode(&m, &buf, &len), 0);
	assert_int_equal(proto_decode(buf, len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.u.batch.nmessages, 3);
	assert_non_null(out.u.batch.messages[0].subject.p); /* "" not nil */
	assert_int_equal(out.u.batch.messages[0].subject.len, 0);
	assert_null(out.u.batch.messages[1].subject.p); /* nil */
	assert_int_equal(out.u.batch.messages[0].date, -1);
	assert_true(out.u.batch.messages[1].uid == UINT32_MAX);
	assert_true(out.u.batch.messages[2].size == UINT64_MAX);
	assert_true(out.u.batch.mailboxes[0].reset);
	assert_null(out.u.batch.mailboxes[0].role.p);
	proto_msg_release(&out);
	free(buf);
}

/* Strings and arrays at exactly their limits, and one past. */
static void
test_limits(void **state)
{
	struct proto_msg m, out;
	struct proto_str *names;
	char *big, *buf;
	size_t len, i;
	char err[256];

	(void)state;
	big = malloc(PROTO_MAX_STR + 1);
	assert_non_null(big);
	memset(big, 'a', PROTO_MAX_STR + 1);

	memset(&m, 0, sizeof(m));
	m.type = MSG_SUBMIT_ACCOUNT_ADD;
	m.u.account_add.name = (struct proto_str){ big, 255 };
	m.u.account_add.protocol = proto_str_c("imap");
	m.u.account_add.server = proto_str_c("imaps://h");
	m.u.account_add.username = proto_str_c("u");
	m.u.account_add.password = proto_str_c("p");
	m.u.account_add.tls_ca_pem = (struct proto_str){ big, PROTO_MAX_STR };
	assert_int_equal(proto_encode(&m, &buf, &len), 0);
	assert_int_equal(proto_decode(buf, len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.u.account_add.tls_ca_pem.len, PROTO_MAX_STR);
	proto_msg_release(&out);
	free(buf);
	m.u.account_add.name.len = 256;
	assert_int_equal(proto_encode(&m, &buf, &len), ERR_INVAL);
	m.u.account_add.name.len = 255;
	m.u.account_add.tls_ca_pem.len = PROTO_MAX_STR + 1;
	assert_int_equal(proto_encode(&m, &buf, &len), ERR_INVAL);
	m.u.account_add.tls_ca_pem.len = 0;
	m.u.account_add.password = proto_str_c(NULL); /* required */
	assert_int_equal(proto_encode(&m, &buf, &len), ERR_INVAL);

	/* More than PROTO_MAX_MSG in total: ERR_TOOBIG. */
	memset(&m, 0, sizeof(m));
	m.type = MSG_WORKER_RESULT_DONE;
	names = calloc(17, sizeof(*names));
	assert_non_null(names);
	for (i = 0; i < 17; i++) {
		names[i] = (struct proto_str){ big, PROTO_MAX_STR };
	}
	m.u.done.mailboxes = names;
	m.u.done.nmailboxes = 17;
	assert_int_equal(proto_encode(&m, &buf, &len), ERR_TOOBIG);
	m.u.done.nmailboxes = 15;
	assert_int_equal(proto_encode(&m, &buf, &len), 0);
	assert_int_equal(proto_decode(buf, len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.u.done.nmailboxes, 15);
	proto_msg_release(&out);
	free(buf);
	free(names);

	/* Out-of-range enums are refused by the encoder too. */
	memset(&m, 0, sizeof(m));
	m.type = MSG_SUBMIT_JOB_SUBMIT;
	m.u.job_submit.account = proto_str_c("a");
	m.u.job_submit.kind = JOB_KIND_WATCH + 1;
	assert_int_equal(proto_encode(&m, &buf, &len), ERR_INVAL);
	m.type = MSG_TYPE_COUNT;
	assert_int_equal(proto_encode(&m, &buf, &len), ERR_INVAL);
	free(big);
}

/* Malformed inputs ------------------------------------------------------- */

/* Envelope with v=1, id=1 and a raw body appended after "b". */
static size_t
mk(char *out, size_t cap, const char *type, const char *body, size_t blen)
{
	size_t n = 0, tl = strlen(type);

	assert_true(tl < 32 && 16 + tl + blen <= cap);
	memcpy(out + n, "\x84\xa1v\x01\xa1t", 6);
	n += 6;
	out[n++] = (char)(0xa0 | tl);
	memcpy(out + n, type, tl);
	n += tl;
	memcpy(out + n, "\xa2id\x01\xa1" "b", 6);
	n += 6;
	memcpy(out + n, body, blen);
	return (n + blen);
}

struct bad_case {
	const char *what;
	const char *type; /* NULL: raw bytes are the whole message */
	const char *bytes;
	size_t len;
	int rv;
	const char *err; /* expected substring of the error text */
};

#define B_(s) s, sizeof(s) - 1

static const struct bad_case bad_cases[] = {
	{ "empty", NULL, B_(""), ERR_PROTO, "message: empty" },
	{ "map header larger than input", NULL, B_("\x84\xa1v"), ERR_PROTO,
	    "container at byte 0 claims 8 elements, only 2 bytes remain" },
	{ "truncated envelope", NULL, B_("\x81\xa1v"), ERR_PROTO,
	    "message: truncated at byte 3" },
	{ "truncated string", NULL, B_("\x81\xa5vv"), ERR_PROTO,
	    "claims 5 bytes, only 2 remain" },
	{ "truncated str8 header", NULL, B_("\xd9"), ERR_PROTO,
	    "truncated header" },
	{ "array at top level", NULL, B_("\x93\x01\x02\x03"), ERR_PROTO,
	    "message: expected map at top level" },
	{ "integer at top level", NULL, B_("\x05"), ERR_PROTO,
	    "expected map at top level" },
	{ "huge array header", NULL, B_("\xdd\xff\xff\xff\xff"), ERR_PROTO,
	    "claims 4294967295 elements" },
	{ "huge map header", NULL, B_("\xdf\xff\xff\xff\xff"), ERR_PROTO,
	    "claims 8589934590 elements" },
	{ "huge str header", NULL, B_("\xdb\xff\xff\xff\xff"), ERR_PROTO,
	    "claims 4294967295 bytes" },
	{ "huge bin header", NULL, B_("\xc6\x7f\xff\xff\xff" "abc"),
	    ERR_PROTO, "claims 2147483647 bytes" },
	{ "deep nesting", NULL,
	    B_("\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
	       "\x91\x91\x91\x91\x91\x01"),
	    ERR_PROTO, "nested deeper than 16" },
	{ "invalid byte c1", NULL, B_("\x81\xa1v\xc1"), ERR_PROTO,
	    "invalid msgpack byte 0xc1" },
	{ "trailing bytes", NULL,
	    B_("\x84\xa1v\x01\xa1t\xafsched.state.get\xa2id\x01\xa1" "b\x80"
	       "\x00"),
	    ERR_PROTO, "1 trailing bytes" },
	{ "version 2", NULL,
	    B_("\x84\xa1v\x02\xa1t\xafsched.state.get\xa2id\x01\xa1" "b\x80"),
	    ERR_VERSION, "v: version 2 is newer than supported version 1" },
	{ "version 0", NULL,
	    B_("\x84\xa1v\x00\xa1t\xafsched.state.get\xa2id\x01\xa1" "b\x80"),
	    ERR_PROTO, "v: expected unsigned integer >= 1" },
	{ "version as string", NULL,
	    B_("\x84\xa1v\xa1" "1\xa1t\xafsched.state.get\xa2id\x01\xa1" "b\x80"),
	    ERR_PROTO, "v: expected unsigned integer >= 1" },
	{ "missing v", NULL,
	    B_("\x83\xa1t\xafsched.state.get\xa2id\x01\xa1" "b\x80"),
	    ERR_PROTO, "missing required key \"v\"" },
	{ "missing t", NULL, B_("\x83\xa1v\x01\xa2id\x01\xa1" "b\x80"),
	    ERR_PROTO, "missing required key \"t\"" },
	{ "missing id", NULL,
	    B_("\x83\xa1v\x01\xa1t\xafsched.state.get\xa1" "b\x80"),
	    ERR_PROTO, "missing required key \"id\"" },
	{ "negative id", NULL,
	    B_("\x84\xa1v\x01\xa1t\xafsched.state.get\xa2id\xff\xa1" "b\x80"),
	    ERR_PROTO, "id: expected unsigned integer" },
	{ "unknown type", NULL,
	    B_("\x84\xa1v\x01\xa1t\xa5no.pe\xa2id\x01\xa1" "b\x80"),
	    ERR_PROTO, "t: unknown message type \"no.pe\"" },
	{ "type not a string", NULL,
	    B_("\x84\xa1v\x01\xa1t\x07\xa2id\x01\xa1" "b\x80"), ERR_PROTO,
	    "t: expected string" },
	{ "duplicate envelope key", NULL,
	    B_("\x85\xa1v\x01\xa1v\x01\xa1t\xafsched.state.get\xa2id\x01"
	       "\xa1" "b\x80"),
	    ERR_PROTO, "duplicate key \"v\"" },
	{ "integer key at top level", NULL,
	    B_("\x81\x01\x01"), ERR_PROTO, "key 0: expected string key" },
	{ "body not a map", "sched.state.get", B_("\x90"), ERR_PROTO,
	    "b: expected map" },
	{ "missing required body key", "submit.account.remove", B_("\x80"),
	    ERR_PROTO, "b.name: missing required key" },
	{ "absent body with required keys", "submit.account.remove",
	    B_("\xc0"), ERR_PROTO, "b.name: missing required key" },
	{ "nil for a required string", "submit.account.remove",
	    B_("\x81\xa4name\xc0"), ERR_PROTO, "b.name: expected string" },
	{ "integer for a string", "submit.account.remove",
	    B_("\x81\xa4name\x05"), ERR_PROTO, "b.name: expected string" },
	{ "string for an integer", "submit.job.status",
	    B_("\x81\xa6job_id\xa1x"), ERR_PROTO,
	    "b.job_id: expected unsigned integer <= 18446744073709551615" },
	{ "float for an integer", "submit.job.status",
	    B_("\x81\xa6job_id\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"),
	    ERR_PROTO, "b.job_id: expected unsigned integer" },
	{ "negative u32", "submit.job.status", B_("\x81\xa5limit\xff"),
	    ERR_PROTO, "b.limit: expected unsigned integer <= 4294967295" },
	{ "u32 overflow", "submit.job.status",
	    B_("\x81\xa5limit\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
	    ERR_PROTO, "b.limit: expected unsigned integer <= 4294967295" },
	{ "kind out of range", "submit.job.submit",
	    B_("\x82\xa7" "account\xa1" "a\xa4kind\x04"), ERR_PROTO,
	    "b.kind: expected unsigned integer <= 3" },
	{ "state out of range", "sched.job.retry",
	    B_("\x83\xa6job_id\x01\xa7" "attempt\x01\xa5state\x05"),
	    ERR_PROTO, "b.state: expected unsigned integer <= 4" },
	{ "retry out of range", "worker.result.done",
	    B_("\x85\xa6job_id\x01\xa7" "attempt\x01\xa8nbatches\x00"
	       "\xa6status\xf1\xa5retry\x03"),
	    ERR_PROTO, "b.retry: expected unsigned integer <= 2" },
	{ "i32 overflow", "store.reply",
	    B_("\x81\xa6status\xce\x80\x00\x00\x00"), ERR_PROTO,
	    "b.status: expected integer in [-2147483648, 2147483647]" },
	{ "i64 overflow", "sched.job.lease",
	    B_("\x82\xa6job_id\x01\xablease_until"
	       "\xcf\x80\x00\x00\x00\x00\x00\x00\x00"),
	    ERR_PROTO, "b.lease_until: expected integer in" },
	{ "bool as integer", "submit.account.add",
	    B_("\x81\xa8starttls\x01"), ERR_PROTO,
	    "b.starttls: expected boolean" },
	{ "duplicate body key", "submit.account.remove",
	    B_("\x82\xa4name\xa1" "a\xa4name\xa1" "b"), ERR_PROTO,
	    "b.name: duplicate key" },
	{ "integer key in body", "submit.account.remove",
	    B_("\x82\xa4name\xa1" "a\x01\x01"), ERR_PROTO,
	    "b: key 1: expected string key" },
	{ "row uid too big", "worker.result.batch",
	    B_("\x84\xa6job_id\x01\xa7" "attempt\x01\xa3seq\x01"
	       "\xa8messages\x94"
	       "\x82\xa7mailbox\xa1x\xa3uid\x01"
	       "\x82\xa7mailbox\xa1x\xa3uid\x02"
	       "\x82\xa7mailbox\xa1x\xa3uid\x03"
	       "\x82\xa7mailbox\xa1x\xa3uid\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
	    ERR_PROTO,
	    "b.messages[3].uid: expected unsigned integer <= 4294967295" },
	{ "row missing uid", "worker.result.batch",
	    B_("\x84\xa6job_id\x01\xa7" "attempt\x01\xa3seq\x01"
	       "\xa8messages\x91\x81\xa7mailbox\xa1x"),
	    ERR_PROTO, "b.messages[0].uid: missing required key" },
	{ "row not a map", "worker.result.batch",
	    B_("\x84\xa6job_id\x01\xa7" "attempt\x01\xa3seq\x01"
	       "\xa8messages\x91\x01"),
	    ERR_PROTO, "b.messages[0]: expected map" },
	{ "messages not an array", "worker.result.batch",
	    B_("\x84\xa6job_id\x01\xa7" "attempt\x01\xa3seq\x01"
	       "\xa8messages\x80"),
	    ERR_PROTO, "b.messages: expected array" },
	{ "mailbox name not a string", "worker.result.done",
	    B_("\x85\xa6job_id\x01\xa7" "attempt\x01\xa8nbatches\x00"
	       "\xa6status\x00\xa9mailboxes\x92\xa1x\x07"),
	    ERR_PROTO, "b.mailboxes[1]: expected string" },
	{ "job_run not a map", "store.reply",
	    B_("\x82\xa6status\x00\xa7job_run\x01"), ERR_PROTO,
	    "b.job_run: expected map" },
	{ "nested job_run checkpoint", "store.reply",
	    B_("\x82\xa6status\x00\xa7job_run\x88\xa6job_id\x01\xa7" "attempt"
	       "\x01\xablease_until\x01\xaa" "account_id\x01\xa8protocol"
	       "\xa4imap\xa6server\xa1s\xa8username\xa1u\xab" "checkpoints"
	       "\x91\x81\xa7mailbox\xa1x"),
	    ERR_PROTO,
	    "b.job_run.checkpoints[0].uidvalidity: missing required key" },
	{ "delimiter too long", "worker.result.batch",
	    B_("\x84\xa6job_id\x01\xa7" "attempt\x01\xa3seq\x01"
	       "\xa9mailboxes\x91\x82\xa4name\xa1x\xa9" "delimiter\xa5/////"),
	    ERR_PROTO,
	    "b.mailboxes[0].delimiter: string of 5 bytes exceeds limit 4" },
};

static void
test_bad_inputs(void **state)
{
	struct proto_msg m;
	char buf[512], err[256];
	const char *in;
	size_t i, len;
	int rv;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];

		if (c->type != NULL) {
			len = mk(buf, sizeof(buf), c->type, c->bytes, c->len);
			in = buf;
		} else {
			in = c->bytes;
			len = c->len;
		}
		rv = proto_decode(in, len, &m, err, sizeof(err));
		if (rv != c->rv || strstr(err, c->err) == NULL) {
			fail_msg("case \"%s\": rv %d (want %d) err \"%s\" "
				 "(want \"%s\")",
			    c->what, rv, c->rv, err, c->err);
		}
		proto_msg_release(&m); /* harmless after an error */
	}
}

/* Inputs that must decode: unknown keys, nil optionals, bin strings. */
static void
test_lenient_inputs(void **state)
{
	struct proto_msg m;
	char buf[512], err[256];
	size_t len;

	(void)state;
	/* Unknown keys in envelope and body, nil optional values. */
	len = mk(buf, sizeof(buf), "submit.job.submit",
	    B_("\x84\xa7" "account\xa2\xff\xfe\xa3new\x93\x01\x02\x03"
	       "\xa4kind\xc0\xa5" "extra\x81\xa1k\xa1v"));
	assert_int_equal(proto_decode(buf, len, &m, err, sizeof(err)), 0);
	assert_int_equal(m.type, MSG_SUBMIT_JOB_SUBMIT);
	assert_int_equal(m.u.job_submit.account.len, 2); /* not UTF-8: ok */
	assert_int_equal(m.u.job_submit.kind, 0);
	proto_msg_release(&m);

	/* bin instead of str. */
	len = mk(buf, sizeof(buf), "submit.account.remove",
	    B_("\x81\xa4name\xc4\x03" "abc"));
	assert_int_equal(proto_decode(buf, len, &m, err, sizeof(err)), 0);
	assert_true(proto_str_eq(m.u.name.name, "abc"));
	proto_msg_release(&m);

	/* Bodiless message without "b", extra envelope key first. */
	assert_int_equal(proto_decode(B_("\x84\xa1x\x01\xa1v\x01\xa1t"
					 "\xafsched.state.get\xa2id\x05"),
			     &m, err, sizeof(err)),
	    0);
	assert_int_equal(m.type, MSG_SCHED_STATE_GET);
	assert_true(m.id == 5);

	/* After an error, type and id survive for an error reply. */
	len = mk(buf, sizeof(buf), "submit.account.remove", B_("\x80"));
	assert_int_equal(proto_decode(buf, len, &m, NULL, 0), ERR_PROTO);
	assert_int_equal(m.type, MSG_SUBMIT_ACCOUNT_REMOVE);
	assert_true(m.id == 1);
}

/* An array one element past PROTO_MAX_ROWS, and a message past the cap. */
static void
test_too_many(void **state)
{
	struct proto_msg m;
	char *buf, err[256];
	size_t n = 0, i;

	(void)state;
	buf = malloc(PROTO_MAX_MSG + 1);
	assert_non_null(buf);
	n = mk(buf, 256, "worker.result.done",
	    B_("\x85\xa6job_id\x01\xa7" "attempt\x01\xa8nbatches\x00"
	       "\xa6status\x00\xa9mailboxes\xdd"));
	buf[n++] = 0;
	buf[n++] = (char)((PROTO_MAX_ROWS + 1) >> 16);
	buf[n++] = (char)(((PROTO_MAX_ROWS + 1) >> 8) & 0xff);
	buf[n++] = (char)((PROTO_MAX_ROWS + 1) & 0xff);
	for (i = 0; i <= PROTO_MAX_ROWS; i++) {
		buf[n++] = (char)0xa0; /* "" */
	}
	assert_int_equal(proto_decode(buf, n, &m, err, sizeof(err)),
	    ERR_PROTO);
	assert_string_equal(err,
	    "b.mailboxes: array of 200001 elements exceeds limit 200000");
	memset(buf, 0, PROTO_MAX_MSG + 1);
	assert_int_equal(proto_decode(buf, PROTO_MAX_MSG + 1, &m, err,
			     sizeof(err)),
	    ERR_TOOBIG);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_all),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_batch_details),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_lenient_inputs),
		cmocka_unit_test(test_too_many),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
