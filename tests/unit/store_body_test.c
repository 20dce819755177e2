/*
 * store_body_test.c: raw bodies in pkg/store (body.c) and fetch_body jobs
 * (job.c, lease.c): chunk rows stored contiguously, complete on `last`,
 * idempotent when re-applied, replaced by a re-fetch from offset 0, error
 * rows recorded in bodies.error, gaps and bad rows rejected; a fetch_body
 * job is one per (account, message), leased beside a sync, and carries
 * its target and max_body; the bodies policy is validated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_fixture.h"

static struct proto_mailbox_row inbox = {
	.name = { "INBOX", 5 },
	.delimiter = { "/", 1 },
	.uidvalidity = 100,
};

static struct proto_message_row
msg(uint32_t uid)
{
	struct proto_message_row r;

	memset(&r, 0, sizeof(r));
	r.mailbox = S("INBOX");
	r.uid = uid;
	r.full = true;
	r.subject = S("s");
	return (r);
}

static struct proto_body_chunk
chunk(uint32_t uid, uint64_t off, const char *data, bool last,
    uint64_t total)
{
	struct proto_body_chunk c;

	memset(&c, 0, sizeof(c));
	c.mailbox = S("INBOX");
	c.uid = uid;
	c.offset = off;
	c.data = proto_str_c(data);
	c.last = last;
	c.total = total;
	return (c);
}

static struct proto_batch
bbatch(uint64_t j, uint32_t attempt, uint32_t seq, struct proto_body_chunk *c,
    size_t n)
{
	struct proto_batch b;

	memset(&b, 0, sizeof(b));
	b.job_id = j;
	b.attempt = attempt;
	b.seq = seq;
	b.bodies = c;
	b.nbodies = n;
	return (b);
}

static int
apply(struct fx *f, const struct proto_batch *b)
{
	return (store_apply_batch(f->st, b, T0 + b->seq, fx_out(f)));
}

static void
apply_ok(struct fx *f, const struct proto_batch *b)
{
	if (apply(f, b) != 0) {
		fail_msg("batch %u: %.*s", b->seq,
		    (int)f->out.reply.error.len, f->out.reply.error.p);
	}
}

/* An account "a" with messages uid 1 and 2 in INBOX, and a leased sync
 * job (*job_r) that has applied them in batch 1. */
static uint64_t
setup_msgs(struct fx *f, uint64_t *job_r)
{
	struct proto_message_row m[2] = { msg(1), msg(2) };
	struct proto_batch b;
	uint64_t acct = fx_account(f, "a"), j = fx_queued(f, acct);

	fx_lease(f, j, T0);
	memset(&b, 0, sizeof(b));
	b.job_id = j;
	b.attempt = 1;
	b.seq = 1;
	b.mailboxes = &inbox;
	b.nmailboxes = 1;
	b.messages = m;
	b.nmessages = 2;
	apply_ok(f, &b);
	*job_r = j;
	return (acct);
}

static const char *
body_of(struct fx *f, char *buf, size_t n, uint32_t uid)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	    "SELECT group_concat(CAST(data AS TEXT), '') FROM (SELECT c.data"
	    " FROM body_chunks c JOIN messages m ON m.id = c.message_id"
	    " WHERE m.uid = %u ORDER BY c.\"offset\")",
	    uid);
	return (fx_qs(f, buf, n, sql));
}

static void
test_body_chunks(void **state)
{
	struct fx *f = *state;
	struct proto_body_chunk c[3] = { chunk(1, 0, "Hello, ", false, 13),
		chunk(1, 7, "world", false, 13), chunk(1, 12, "!", true, 13) };
	struct proto_batch b;
	char buf[256];
	uint64_t j;

	setup_msgs(f, &j);
	/* Two batches: the body is incomplete after the first. */
	b = bbatch(j, 1, 2, c, 2);
	apply_ok(f, &b);
	assert_int_equal(fx_q(f, "SELECT complete FROM bodies"), 0);
	assert_int_equal(fx_q(f, "SELECT size FROM bodies"), 13);
	b = bbatch(j, 1, 3, &c[2], 1);
	apply_ok(f, &b);
	assert_string_equal(body_of(f, buf, sizeof(buf), 1), "Hello, world!");
	assert_int_equal(fx_q(f, "SELECT complete FROM bodies"), 1);
	assert_int_equal(fx_q(f, "SELECT size FROM bodies"), 13);
	assert_int_equal(fx_q(f, "SELECT error IS NULL FROM bodies"), 1);
	/* The same batch again is a duplicate; the same rows in a new batch
	 * (re-applied chunk of the same length) converge. */
	apply_ok(f, &b);
	b = bbatch(j, 1, 4, &c[1], 2);
	apply_ok(f, &b);
	assert_string_equal(body_of(f, buf, sizeof(buf), 1), "Hello, world!");
	assert_int_equal(fx_q(f, "SELECT count(*) FROM body_chunks"), 3);
	/* A re-fetch from 0 replaces the old chunks. */
	c[0] = chunk(1, 0, "Bye", true, 3);
	b = bbatch(j, 1, 5, c, 1);
	apply_ok(f, &b);
	assert_string_equal(body_of(f, buf, sizeof(buf), 1), "Bye");
	assert_int_equal(fx_q(f, "SELECT size FROM bodies"), 3);
	/* An empty body: complete, no chunk. */
	c[0] = chunk(2, 0, NULL, true, 0);
	b = bbatch(j, 1, 6, c, 1);
	apply_ok(f, &b);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
				"SELECT b.complete || '/' || b.size FROM bodies"
				" b JOIN messages m ON m.id = b.message_id"
				" WHERE m.uid = 2"),
	    "1/0");
	/* Unknown message: skipped, not an error. */
	c[0] = chunk(99, 0, "x", true, 1);
	b = bbatch(j, 1, 7, c, 1);
	apply_ok(f, &b);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM bodies"), 2);
	/* The message goes: its body goes too. */
	assert_int_equal(fx_exec(f, "DELETE FROM messages WHERE uid = 1"), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM body_chunks"), 0);
}

static void
test_body_errors(void **state)
{
	struct fx *f = *state;
	struct proto_body_chunk c[2] = { chunk(1, 0, "abc", false, 10),
		chunk(1, 5, "def", false, 10) };
	struct proto_batch b;
	char buf[256];
	uint64_t j;

	setup_msgs(f, &j);
	b = bbatch(j, 1, 2, c, 1);
	apply_ok(f, &b);
	/* A gap rejects the whole batch. */
	b = bbatch(j, 1, 3, &c[1], 1);
	assert_int_equal(apply(f, &b), ERR_PROTO);
	assert_non_null(strstr(f->out.reply.error.p, "does not follow"));
	/* Bad rows are refused before anything is written. */
	c[1] = chunk(1, 3, NULL, false, 10);
	b = bbatch(j, 1, 3, &c[1], 1);
	assert_int_equal(apply(f, &b), ERR_PROTO);
	c[1] = chunk(1, 3, "de", true, 10);
	b = bbatch(j, 1, 3, &c[1], 1);
	assert_int_equal(apply(f, &b), ERR_PROTO);
	assert_non_null(strstr(f->out.reply.error.p, "total is 10"));
	c[1] = chunk(0, 0, "x", true, 1);
	b = bbatch(j, 1, 3, &c[1], 1);
	assert_int_equal(apply(f, &b), ERR_PROTO);
	c[1] = chunk(1, 0, "x", true, 1);
	c[1].status = 5;
	b = bbatch(j, 1, 3, &c[1], 1);
	assert_int_equal(apply(f, &b), ERR_PROTO);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM body_chunks"), 1);

	/* An error row: chunks dropped, error kept, logged. */
	c[1] = chunk(1, 0, NULL, false, 70000000);
	c[1].status = ERR_TOOBIG;
	c[1].error = S("body of 70000000 bytes exceeds the limit of 52428800 "
		       "bytes");
	b = bbatch(j, 1, 3, &c[1], 1);
	apply_ok(f, &b);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM body_chunks"), 0);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
				"SELECT error FROM bodies"),
	    "body of 70000000 bytes exceeds the limit of 52428800 bytes");
	assert_int_equal(fx_q(f, "SELECT complete FROM bodies"), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM sync_log WHERE outcome"
				 " = 'body_error'"),
	    1);
	/* A later successful fetch clears the error. */
	c[1] = chunk(1, 0, "ok", true, 2);
	b = bbatch(j, 1, 4, &c[1], 1);
	apply_ok(f, &b);
	assert_int_equal(fx_q(f, "SELECT error IS NULL FROM bodies"), 1);
	assert_int_equal(fx_q(f, "SELECT complete FROM bodies"), 1);
}

/* The id of message uid. */
static uint64_t
msg_id(struct fx *f, uint32_t uid)
{
	return ((uint64_t)fx_q(f, "SELECT id FROM messages WHERE uid = %u",
	    uid));
}

static uint64_t
submit_body(struct fx *f, const char *account, uint64_t message_id, int want)
{
	struct proto_job_submit js;

	memset(&js, 0, sizeof(js));
	js.account = proto_str_c(account);
	js.kind = JOB_KIND_FETCH_BODY;
	js.message_id = message_id;
	assert_int_equal(store_job_submit(f->st, &js, T0 + 10, fx_out(f)), want);
	return (f->out.reply.id);
}

static void
test_body_jobs(void **state)
{
	struct fx *f = *state;
	struct proto_job_lease jl;
	struct proto_done d;
	struct proto_job_run *run;
	uint64_t j, b1, b2, b3, m1, m2;

	setup_msgs(f, &j); /* the sync job j stays leased */
	m1 = msg_id(f, 1);
	m2 = msg_id(f, 2);
	b1 = submit_body(f, "a", m1, 0);
	assert_int_equal(f->out.nevents, 1);
	assert_int_equal(f->out.events[0].kind, EV_JOB_QUEUED);
	assert_int_equal(f->out.events[0].job_kind, JOB_KIND_FETCH_BODY);
	/* One queued per (account, message): the same message joins. */
	assert_int_equal(submit_body(f, "a", m1, 0), b1);
	b2 = submit_body(f, "a", m2, 0);
	assert_true(b2 != b1);
	/* Not the account's, or not a message: refused. */
	(void)fx_account(f, "b");
	submit_body(f, "b", m1, ERR_NOTFOUND);
	assert_non_null(strstr(f->out.reply.error.p, "no message with id"));
	submit_body(f, "a", 0, ERR_NOTFOUND);
	submit_body(f, "a", 12345, ERR_NOTFOUND);

	/* Leased beside the running sync, with its target and limit. */
	memset(&jl, 0, sizeof(jl));
	jl.job_id = b1;
	jl.lease_until = T0 + 100000;
	assert_int_equal(store_job_lease(f->st, &jl, T0 + 20, fx_out(f)), 0);
	run = f->out.reply.job_run;
	assert_non_null(run);
	assert_int_equal(run->kind, JOB_KIND_FETCH_BODY);
	assert_true(proto_str_eq(run->target_mailbox, "INBOX"));
	assert_int_equal(run->target_uidvalidity, 100);
	assert_int_equal(run->target_uid, 1);
	assert_int_equal(run->max_body, STORE_DEFAULT_MAX_BODY);
	assert_int_equal(run->ncheckpoints, 0);
	/* A second body job of the account waits for the first. */
	jl.job_id = b2;
	assert_int_equal(store_job_lease(f->st, &jl, T0 + 20, fx_out(f)),
	    ERR_BADSTATE);
	/* While b1 is leased, a new request for m1 queues a new job. */
	b3 = submit_body(f, "a", m1, 0);
	assert_true(b3 != b1);

	/* b1 done: the account's sync state is not touched. */
	memset(&d, 0, sizeof(d));
	d.job_id = b1;
	d.attempt = 1;
	assert_int_equal(
	    store_apply_done(f->st, &d, T0 + 30, 1, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT state = 'done' FROM jobs WHERE id ="
				 " %llu",
			     (unsigned long long)b1),
	    1);
	assert_int_equal(fx_q(f, "SELECT last_sync_at FROM accounts WHERE"
				 " name = 'a'"),
	    -2);
	/* b2 fails for good: no fail streak for the account. */
	jl.job_id = b2;
	assert_int_equal(store_job_lease(f->st, &jl, T0 + 40, fx_out(f)), 0);
	d.job_id = b2;
	d.status = ERR_TOOBIG;
	d.retry = RETRY_NEVER;
	d.error = S("body of 9 bytes exceeds the limit of 5 bytes");
	assert_int_equal(
	    store_apply_done(f->st, &d, T0 + 50, 1, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT state = 'failed' FROM jobs WHERE id"
				 " = %llu",
			     (unsigned long long)b2),
	    1);
	assert_int_equal(fx_q(f, "SELECT fail_streak FROM accounts WHERE"
				 " name = 'a'"),
	    0);
	/* The scheduler's clock ignores body jobs. */
	assert_int_equal(store_sched_state(f->st, fx_out(f)), 0);
	assert_int_equal(f->out.reply.sched_accounts[0].last_sync_at, 0);
}

static void
test_body_policy(void **state)
{
	static const char *const good[] = { "none", "all", "recent:1",
		"recent:30", "recent:36500" };
	static const char *const bad[] = { "", "some", "recent:", "recent:0",
		"recent:-1", "recent:36501", "recent:1x", "recent: 3", "ALL",
		"recent:99999999999999999999" };
	struct fx *f = *state;
	struct proto_account_add a;
	char name[32];
	size_t i;

	(void)f;
	for (i = 0; i < ARRAY_LEN(good) + ARRAY_LEN(bad); i++) {
		bool ok = i < ARRAY_LEN(good);

		memset(&a, 0, sizeof(a));
		snprintf(name, sizeof(name), "p%zu", i);
		a.name = proto_str_c(name);
		a.protocol = S("imap");
		a.server = S("imaps://h");
		a.username = S("u");
		a.password = S("p");
		a.bodies = proto_str_c(
		    ok ? good[i] : bad[i - ARRAY_LEN(good)]);
		assert_int_equal(store_account_add(f->st, &a, T0, fx_out(f)),
		    ok ? 0 : ERR_INVAL);
	}
	assert_int_equal(fx_q(f, "SELECT count(*) FROM accounts WHERE bodies ="
				 " 'recent:30'"),
	    1);
}

/* Migration 5 turns a version 4 database's WITHOUT ROWID body_chunks
 * into a rowid table and keeps every chunk. The version 4 table is
 * rebuilt by hand on a current database set back to user_version 4. */
static void
test_body_chunks_migration(void **state)
{
	struct fx *f = *state;
	struct proto_body_chunk c[2] = { chunk(1, 0, "Hello, ", false, 12),
		chunk(1, 7, "world", true, 12) };
	struct proto_batch b;
	char buf[256];
	uint64_t j;

	setup_msgs(f, &j);
	b = bbatch(j, 1, 2, c, 2);
	apply_ok(f, &b);
	store_free(&f->st);
	assert_int_equal(fx_exec(f,
	                     "CREATE TABLE old_chunks AS SELECT * FROM body_chunks;"
	                     "DROP TABLE body_chunks;"
	                     "CREATE TABLE body_chunks (message_id INTEGER NOT NULL"
	                     " REFERENCES messages(id) ON DELETE CASCADE,"
	                     " offset INTEGER NOT NULL CHECK (offset >= 0),"
	                     " data BLOB NOT NULL, PRIMARY KEY (message_id, offset)"
	                     ") WITHOUT ROWID;"
	                     "INSERT INTO body_chunks SELECT * FROM old_chunks;"
	                     "DROP TABLE old_chunks;"
	                     "PRAGMA user_version = 4;"),
	    SQLITE_OK);
	assert_int_equal(fx_q(f, "SELECT wr FROM pragma_table_list"
	                         " WHERE name = 'body_chunks'"),
	    1);
	fx_open(f);
	assert_int_equal(fx_q(f, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(fx_q(f, "SELECT wr FROM pragma_table_list"
	                         " WHERE name = 'body_chunks'"),
	    0);
	assert_string_equal(body_of(f, buf, sizeof(buf), 1), "Hello, world");
	/* the key still holds, and a deleted message takes its chunks */
	assert_int_not_equal(fx_exec(f, "INSERT INTO body_chunks"
	                                " SELECT message_id, 0, x'00'"
	                                " FROM body_chunks LIMIT 1"),
	    SQLITE_OK);
	assert_int_equal(fx_exec(f, "PRAGMA foreign_keys = ON;"
	                            "DELETE FROM messages WHERE uid = 1"),
	    SQLITE_OK);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM body_chunks"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_body_chunks, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_body_chunks_migration, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_body_errors, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_body_jobs, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_body_policy, fx_setup, fx_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
