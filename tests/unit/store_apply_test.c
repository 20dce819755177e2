/*
 * store_apply_test.c: unit tests for worker results in pkg/store:
 * worker.result.batch (upserts, flag-only rows, reset, duplicate batch,
 * fencing of stale attempts, the same rows under a new attempt, bad rows
 * rejected whole) and worker.result.done (lost batch, success advancing
 * checkpoints and counts, mailbox pruning, RETRY_NEVER, max attempts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_fixture.h"
#include "store/store_int.h"

/* PRAGMA synchronous on the store's own connection: 1 NORMAL, 2 FULL. */
static int
store_synchronous(struct fx *f)
{
	sqlite3_stmt *stmt = NULL;
	int v;

	assert_int_equal(sqlite3_prepare_v2(f->st->db, "PRAGMA synchronous",
	                     -1, &stmt, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	v = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return (v);
}

/* A full row in INBOX: uid, flags, subject. */
static struct proto_message_row
row(const char *mbox, uint32_t uid, uint32_t flags, const char *subject)
{
	struct proto_message_row r;

	memset(&r, 0, sizeof(r));
	r.mailbox = (struct proto_str) { mbox, strlen(mbox) };
	r.uid = uid;
	r.full = true;
	r.flags = flags;
	r.keywords = S("$Label1");
	r.modseq = 10 + uid;
	r.message_id = S("<m@x>");
	r.subject = (struct proto_str) { subject, strlen(subject) };
	r.from_addr = S("bob@example.org");
	r.to_addrs = S("alice@example.org");
	r.date = 1600000000;
	r.internal_date = 1600000100;
	r.size = 1234;
	return (r);
}

static struct proto_mailbox_row inbox = {
	.name = { "INBOX", 5 },
	.delimiter = { "/", 1 },
	.role = { "inbox", 5 },
	.uidvalidity = 100,
};

struct three {
	struct proto_mailbox_row mb[1];
	struct proto_message_row m[3];
	struct proto_batch b;
};

/* seq: INBOX + uids 1 (seen), 2, 3. */
static void
three_rows(struct three *t, uint64_t job, uint32_t attempt, uint32_t seq)
{
	t->mb[0] = inbox;
	t->m[0] = row("INBOX", 1, PROTO_FLAG_SEEN, "one");
	t->m[1] = row("INBOX", 2, 0, "two");
	t->m[2] = row("INBOX", 3, PROTO_FLAG_FLAGGED, "three");
	t->b = (struct proto_batch) { .job_id = job, .attempt = attempt, .seq = seq, .mailboxes = t->mb, .nmailboxes = 1, .messages = t->m, .nmessages = 3 };
}

/* An empty batch (lease renewal only). */
static int
empty_batch(
    struct fx *f, uint64_t job, uint32_t attempt, uint32_t seq, int64_t now)
{
	struct proto_batch b = { .job_id = job, .attempt = attempt, .seq = seq, .mailboxes = NULL, .nmailboxes = 0, .messages = NULL, .nmessages = 0 };

	return (store_apply_batch(f->st, &b, now, fx_out(f)));
}

static uint64_t
leased_job(struct fx *f, uint64_t *acct_r)
{
	uint64_t acct = fx_account(f, "a"), j = fx_queued(f, acct);

	fx_lease(f, j, T0);
	if (acct_r != NULL) {
		*acct_r = acct;
	}
	return (j);
}

static void
test_batch_upsert_and_lease_renewal(void **state)
{
	struct fx *f = *state;
	struct three t;
	uint64_t j;
	char buf[64];

	j = leased_job(f, NULL);
	three_rows(&t, j, 1, 1);
	assert_int_equal(
	    store_apply_batch(f->st, &t.b, T0 + 1000, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 3);
	assert_int_equal(fx_q(f, "SELECT uidvalidity FROM mailboxes"), 100);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf), "SELECT role FROM mailboxes"), "inbox");
	assert_int_equal(
	    fx_q(f, "SELECT seen FROM messages WHERE uid = 1"), 1);
	assert_int_equal(
	    fx_q(f, "SELECT flagged FROM messages WHERE uid = 3"), 1);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT subject FROM messages WHERE uid = 2"),
	    "two");
	assert_int_equal(fx_q(f, "SELECT messages FROM jobs"), 3);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM job_batches"), 1);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sync_log WHERE "
	                     "outcome = 'mailbox_added'"),
	    1);
	/* the lease is renewed by its original length */
	assert_int_equal(
	    fx_q(f, "SELECT lease_until FROM jobs"), T0 + 1000 + LEASE);
	assert_int_equal(f->out.nevents, 1);
	assert_int_equal(f->out.events[0].kind, EV_JOB_PROGRESS);
	assert_int_equal(f->out.events[0].due_at, T0 + 1000 + LEASE);
	/* a second batch 10 ms later: applied, no second progress event,
	 * and the renewal does not grow the lease length */
	assert_int_equal(empty_batch(f, j, 1, 2, T0 + 1010), 0);
	assert_int_equal(f->out.nevents, 0);
	assert_int_equal(
	    fx_q(f, "SELECT lease_until FROM jobs"), T0 + 1010 + LEASE);
	assert_int_equal(empty_batch(f, j, 1, 3, T0 + 3000), 0);
	assert_int_equal(f->out.nevents, 1);
	assert_int_equal(
	    fx_q(f, "SELECT lease_until FROM jobs"), T0 + 3000 + LEASE);

	/* a full row again updates every column */
	t.m[1].subject = S("two, edited");
	t.m[1].flags = PROTO_FLAG_ANSWERED | PROTO_FLAG_DRAFT;
	t.b.seq = 4;
	assert_int_equal(
	    store_apply_batch(f->st, &t.b, T0 + 4000, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 3);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT subject FROM messages WHERE uid = 2"),
	    "two, edited");
	assert_int_equal(fx_q(f,
	                     "SELECT answered + draft FROM messages "
	                     "WHERE uid = 2"),
	    2);
}

static void
test_batch_flag_only_rows(void **state)
{
	struct fx *f = *state;
	struct three t;
	struct proto_message_row fl[2];
	struct proto_batch b;
	uint64_t j;
	char buf[64];

	j = leased_job(f, NULL);
	three_rows(&t, j, 1, 1);
	assert_int_equal(store_apply_batch(f->st, &t.b, T0, fx_out(f)), 0);
	memset(fl, 0, sizeof(fl));
	fl[0].mailbox = S("INBOX"); /* known from the database */
	fl[0].uid = 2;
	fl[0].flags = PROTO_FLAG_SEEN | PROTO_FLAG_DELETED;
	fl[0].keywords = S("$Junk");
	fl[0].modseq = 99;
	fl[1] = fl[0];
	fl[1].uid = 77; /* absent: ignored */
	b = (struct proto_batch) { .job_id = j, .attempt = 1, .seq = 2, .mailboxes = NULL, .nmailboxes = 0, .messages = fl, .nmessages = 2 };
	assert_int_equal(store_apply_batch(f->st, &b, T0, fx_out(f)), 0);
	assert_int_equal(fx_q(f,
	                     "SELECT seen + deleted FROM messages WHERE "
	                     "uid = 2"),
	    2);
	assert_int_equal(
	    fx_q(f, "SELECT modseq FROM messages WHERE uid = 2"), 99);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT keywords FROM messages WHERE uid = 2"),
	    "$Junk");
	/* the header columns are untouched */
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT subject FROM messages WHERE uid = 2"),
	    "two");
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 3);
	assert_int_equal(fx_q(f, "SELECT messages FROM jobs"), 4);
}

static void
test_batch_duplicate_and_stale(void **state)
{
	struct fx *f = *state;
	struct three t;
	uint64_t j;
	char buf[64];

	j = leased_job(f, NULL);
	three_rows(&t, j, 1, 1);
	assert_int_equal(store_apply_batch(f->st, &t.b, T0, fx_out(f)), 0);
	/* the same (job, attempt, seq) again, with other content: skipped */
	t.m[0].subject = S("changed");
	t.m[0].flags = 0;
	assert_int_equal(
	    store_apply_batch(f->st, &t.b, T0 + 5000, fx_out(f)), 0);
	assert_int_equal(f->out.nevents, 0);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT subject FROM messages WHERE uid = 1"),
	    "one");
	assert_int_equal(
	    fx_q(f, "SELECT seen FROM messages WHERE uid = 1"), 1);
	assert_int_equal(fx_q(f, "SELECT messages FROM jobs"), 3);
	assert_int_equal(fx_q(f, "SELECT lease_until FROM jobs"), T0 + LEASE);
	/* another attempt: fenced off */
	t.b.attempt = 2;
	t.b.seq = 2;
	assert_int_equal(
	    store_apply_batch(f->st, &t.b, T0, fx_out(f)), ERR_STALE);
	assert_fail(f, ERR_STALE, "attempt 2 is stale");
	t.b.job_id = 999;
	assert_int_equal(
	    store_apply_batch(f->st, &t.b, T0, fx_out(f)), ERR_STALE);
	assert_fail(f, ERR_STALE, "job 999 does not exist");
	assert_int_equal(fx_q(f, "SELECT count(*) FROM job_batches"), 1);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT subject FROM messages WHERE uid = 1"),
	    "one");
}

static void
test_batch_new_attempt_no_duplicates(void **state)
{
	struct fx *f = *state;
	struct proto_job_retry jr;
	struct three t;
	uint64_t j;

	j = leased_job(f, NULL);
	three_rows(&t, j, 1, 1);
	assert_int_equal(store_apply_batch(f->st, &t.b, T0, fx_out(f)), 0);
	/* the worker dies; the lease expires; attempt 2 re-sends it all.
	 * Not before the store's lease (renewed by the batch) ran out: */
	jr = (struct proto_job_retry) { j, 1, JOB_QUEUED, T0 + LEASE + 10,
		S("lease expired") };
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + LEASE - 1, fx_out(f)),
	    ERR_BADSTATE);
	assert_fail(f, ERR_BADSTATE, "lease runs until");
	assert_int_equal(f->out.nevents, 0);
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + LEASE, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM job_batches"), 0);
	assert_int_equal(fx_lease(f, j, T0 + LEASE + 20), 2);
	assert_int_equal(fx_q(f, "SELECT messages FROM jobs"), 0);
	three_rows(&t, j, 2, 1);
	assert_int_equal(
	    store_apply_batch(f->st, &t.b, T0 + LEASE + 30, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 3);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM mailboxes"), 1);
	assert_int_equal(fx_q(f, "SELECT messages FROM jobs"), 3);
	/* and a late batch of attempt 1 is fenced off */
	three_rows(&t, j, 1, 2);
	assert_int_equal(
	    store_apply_batch(f->st, &t.b, T0 + LEASE + 40, fx_out(f)),
	    ERR_STALE);
}

static void
test_batch_rejected_whole(void **state)
{
	struct fx *f = *state;
	struct three t;
	uint64_t j;
	size_t i;
	struct {
		int field; /* which mutation */
		int code;
		const char *sub;
	} cases[] = {
		{ 0, ERR_PROTO, "neither in the batch nor in the database" },
		{ 1, ERR_PROTO, "messages[1].uid must be >= 1" },
		{ 2, ERR_PROTO, "flags 0x100 has unknown bits" },
		{ 3, ERR_PROTO, "role 'bogus' is not a known role" },
		{ 4, ERR_INVAL, "mailboxes[0].name contains a NUL" },
		{ 5, ERR_INVAL, "header field is not valid UTF-8" },
		{ 6, ERR_PROTO, "batch seq must be >= 1" },
		{ 7, ERR_INVAL, "messages[2].mailbox must not be empty" },
	};

	j = leased_job(f, NULL);
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		three_rows(&t, j, 1, 1);
		switch (cases[i].field) {
		case 0:
			t.m[2].mailbox = S("Nowhere");
			break;
		case 1:
			t.m[1].uid = 0;
			break;
		case 2:
			t.m[0].flags = 0x100;
			break;
		case 3:
			t.mb[0].role = S("bogus");
			break;
		case 4:
			t.mb[0].name = S("IN\0BOX");
			break;
		case 5:
			t.m[1].subject = S("bad \xc3\x28");
			break;
		case 6:
			t.b.seq = 0;
			break;
		case 7:
			t.m[2].mailbox = S("");
			break;
		}
		if (store_apply_batch(f->st, &t.b, T0, fx_out(f))
		    != cases[i].code) {
			fail_msg("case %zu: %s", i, f->out.errtext);
		}
		assert_fail(f, cases[i].code, cases[i].sub);
		assert_int_equal(f->out.nevents, 0);
		/* nothing of the batch was applied */
		assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 0);
		assert_int_equal(fx_q(f, "SELECT count(*) FROM mailboxes"), 0);
		assert_int_equal(
		    fx_q(f, "SELECT count(*) FROM job_batches"), 0);
	}
	/* and the job still accepts a good seq 1 */
	three_rows(&t, j, 1, 1);
	assert_int_equal(store_apply_batch(f->st, &t.b, T0, fx_out(f)), 0);
}

static struct proto_done
done_ok(uint64_t j, uint32_t attempt, uint32_t nbatches,
    struct proto_checkpoint *cps, size_t ncps)
{
	struct proto_done d;

	memset(&d, 0, sizeof(d));
	d.job_id = j;
	d.attempt = attempt;
	d.nbatches = nbatches;
	d.checkpoints = cps;
	d.ncheckpoints = ncps;
	return (d);
}

static void
test_done_success(void **state)
{
	struct fx *f = *state;
	struct proto_mailbox_row old = { .name = { "Old", 3 } };
	struct proto_checkpoint cp = { S("INBOX"), 100, 4, 777, { 0 }, { 0 } };
	struct proto_str keep[] = { S("INBOX") };
	struct proto_job_submit js = { .account = S("a"), .kind = JOB_KIND_SYNC };
	struct proto_batch b;
	struct proto_message_row m;
	struct proto_done d;
	struct three t;
	uint64_t j, acct;
	char buf[64];

	j = leased_job(f, &acct);
	assert_int_equal(fx_exec(f,
	                     "UPDATE accounts SET fail_streak = 3, "
	                     "last_error = 'x'"),
	    SQLITE_OK);
	three_rows(&t, j, 1, 1);
	assert_int_equal(store_apply_batch(f->st, &t.b, T0, fx_out(f)), 0);
	m = row("Old", 5, 0, "old");
	b = (struct proto_batch) { .job_id = j, .attempt = 1, .seq = 2, .mailboxes = &old, .nmailboxes = 1, .messages = &m, .nmessages = 1 };
	assert_int_equal(store_apply_batch(f->st, &b, T0, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM mailboxes"), 2);
	/* checkpoints have not moved yet */
	assert_int_equal(fx_q(f,
	                     "SELECT uidnext FROM mailboxes WHERE "
	                     "name = 'INBOX'"),
	    -2);
	/* server rows commit without an fsync of their own ... */
	assert_int_equal(store_synchronous(f), 1);

	d = done_ok(j, 1, 2, &cp, 1);
	d.mailbox_list_complete = true;
	d.mailboxes = keep;
	d.nmailboxes = 1;
	d.messages = 4;
	assert_int_equal(
	    store_apply_done(f->st, &d, T0 + 9000, 0, fx_out(f)), 0);
	/* ... the done that moves the checkpoints waits for the disk */
	assert_int_equal(store_synchronous(f), 2);
	assert_int_equal(f->out.nevents, 1);
	assert_int_equal(f->out.events[0].kind, EV_JOB_FINISHED);
	assert_int_equal(f->out.events[0].state, JOB_DONE);
	assert_int_equal(f->out.events[0].status, 0);
	assert_int_equal(fx_q(f, "SELECT state = 'done' FROM jobs"), 1);
	assert_int_equal(fx_q(f, "SELECT finished_at FROM jobs"), T0 + 9000);
	assert_int_equal(fx_q(f, "SELECT last_error FROM jobs"), -2);
	assert_int_equal(fx_q(f,
	                     "SELECT uidnext FROM mailboxes WHERE "
	                     "name = 'INBOX'"),
	    4);
	assert_int_equal(fx_q(f, "SELECT highestmodseq FROM mailboxes"), 777);
	/* Old was pruned (with its message), counts recomputed */
	assert_int_equal(fx_q(f, "SELECT count(*) FROM mailboxes"), 1);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 3);
	assert_int_equal(fx_q(f, "SELECT total FROM mailboxes"), 3);
	assert_int_equal(fx_q(f, "SELECT unread FROM mailboxes"), 2);
	assert_int_equal(
	    fx_q(f, "SELECT last_sync_at FROM accounts"), (T0 + 9000) / 1000);
	assert_int_equal(fx_q(f, "SELECT fail_streak FROM accounts"), 0);
	assert_int_equal(fx_q(f, "SELECT last_error FROM accounts"), -2);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM job_batches"), 0);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT detail FROM sync_log WHERE "
	                        "outcome = 'done'"),
	    "4 messages");
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT detail FROM sync_log WHERE "
	                        "outcome = 'mailbox_removed'"),
	    "Old");
	/* done again: the job is no longer leased */
	assert_int_equal(
	    store_apply_done(f->st, &d, T0 + 9001, 0, fx_out(f)), ERR_STALE);

	/* the next job's lease carries the checkpoints */
	assert_int_equal(
	    store_job_submit(f->st, &js, T0 + 10000, fx_out(f)), 0);
	j = f->out.reply.id;
	fx_lease(f, j, T0 + 10000);
	assert_int_equal(f->out.reply.job_run->ncheckpoints, 1);
	assert_true(proto_str_eq(
	    f->out.reply.job_run->checkpoints[0].mailbox, "INBOX"));
	assert_int_equal(
	    f->out.reply.job_run->checkpoints[0].uidvalidity, 100);
	assert_int_equal(f->out.reply.job_run->checkpoints[0].uidnext, 4);
	assert_int_equal(
	    f->out.reply.job_run->checkpoints[0].highestmodseq, 777);
	(void)acct;
}

static void
test_done_lost_batch(void **state)
{
	struct fx *f = *state;
	struct proto_checkpoint cp = { S("INBOX"), 100, 4, 777, { 0 }, { 0 } };
	struct proto_done d;
	struct three t;
	uint64_t j;
	char buf[64];

	j = leased_job(f, NULL);
	three_rows(&t, j, 1, 1);
	assert_int_equal(store_apply_batch(f->st, &t.b, T0, fx_out(f)), 0);
	assert_int_equal(empty_batch(f, j, 1, 3, T0), 0); /* seq 2 lost */
	d = done_ok(j, 1, 3, &cp, 1);
	assert_int_equal(
	    store_apply_done(f->st, &d, T0 + 100, 0, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT state = 'queued' FROM jobs"), 1);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf), "SELECT last_error FROM jobs"),
	    "lost batch: got 2 of 3");
	/* backoff after 1 failure with rand 0: d/2 of 5 s */
	assert_int_equal(fx_q(f, "SELECT due_at FROM jobs"), T0 + 100 + 2500);
	assert_int_equal(f->out.events[0].kind, EV_JOB_QUEUED);
	assert_int_equal(f->out.events[0].due_at, T0 + 100 + 2500);
	assert_int_not_equal(f->out.events[0].status, 0);
	/* no checkpoint moved; rows stay (they are idempotent upserts) */
	assert_int_equal(fx_q(f, "SELECT uidnext FROM mailboxes"), -2);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM job_batches"), 0);
	assert_int_equal(fx_q(f, "SELECT fail_streak FROM accounts"), 0);
	/* a batch "beyond" nbatches also counts as inconsistent */
	assert_int_equal(fx_lease(f, j, T0 + 5000), 2);
	assert_int_equal(empty_batch(f, j, 2, 1, T0 + 5001), 0);
	assert_int_equal(empty_batch(f, j, 2, 2, T0 + 5002), 0);
	d = done_ok(j, 2, 1, &cp, 1);
	assert_int_equal(
	    store_apply_done(f->st, &d, T0 + 5003, 0, fx_out(f)), 0);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf), "SELECT last_error FROM jobs"),
	    "lost batch: got 2 of 1");
}

static void
test_done_failure_never_and_dead(void **state)
{
	struct fx *f = *state;
	struct proto_done d;
	uint64_t j, acct;
	char buf[64];

	j = leased_job(f, &acct);
	d = done_ok(j, 1, 0, NULL, 0);
	d.status = ERR_AUTH;
	d.retry = RETRY_NEVER;
	d.error = S("LOGIN failed: bad password");
	assert_int_equal(
	    store_apply_done(f->st, &d, T0 + 100, 0, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT state = 'failed' FROM jobs"), 1);
	assert_int_equal(fx_q(f, "SELECT finished_at FROM jobs"), T0 + 100);
	assert_int_equal(f->out.events[0].kind, EV_JOB_FINISHED);
	assert_int_equal(f->out.events[0].state, JOB_FAILED);
	assert_int_equal(f->out.events[0].status, ERR_AUTH);
	assert_int_equal(fx_q(f, "SELECT fail_streak FROM accounts"), 1);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf), "SELECT last_error FROM accounts"),
	    "LOGIN failed: bad password");
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sync_log WHERE "
	                     "outcome = 'failed'"),
	    1);

	/* max_attempts (3 in the fixture): transient failures -> dead */
	struct proto_job_submit js = { .account = S("a"), .kind = JOB_KIND_SYNC };
	assert_int_equal(store_job_submit(f->st, &js, T0, fx_out(f)), 0);
	j = f->out.reply.id;
	for (uint32_t a = 1; a <= 3; a++) {
		assert_int_equal(fx_lease(f, j, T0 + a * 1000000), a);
		d = done_ok(j, a, 0, NULL, 0);
		d.status = ERR_TIMEOUT;
		d.retry = RETRY_LATER;
		d.error = S("server timed out");
		assert_int_equal(
		    store_apply_done(f->st, &d, T0 + a * 1000000 + 1,
		        0xffffffffu, fx_out(f)),
		    0);
		if (a < 3) {
			assert_int_equal(f->out.events[0].kind, EV_JOB_QUEUED);
			assert_int_equal(fx_q(f,
			                     "SELECT state = 'queued' FROM "
			                     "jobs WHERE id = %llu",
			                     (unsigned long long)j),
			    1);
		}
	}
	assert_int_equal(f->out.events[0].kind, EV_JOB_FINISHED);
	assert_int_equal(f->out.events[0].state, JOB_DEAD);
	assert_int_equal(fx_q(f,
	                     "SELECT state = 'dead' FROM jobs WHERE "
	                     "id = %llu",
	                     (unsigned long long)j),
	    1);
	assert_int_equal(fx_q(f, "SELECT fail_streak FROM accounts"), 2);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sync_log WHERE "
	                     "outcome = 'retry'"),
	    2);
	(void)acct;
}

static void
test_done_malformed(void **state)
{
	struct fx *f = *state;
	struct proto_checkpoint cp = { S("IN\x01"), 1, 2, 3, { 0 }, { 0 } };
	struct proto_done d;
	uint64_t j;
	char buf[128];

	j = leased_job(f, NULL);
	/* success claimed with a bad checkpoint: a retryable failure */
	d = done_ok(j, 1, 0, &cp, 1);
	assert_int_equal(store_apply_done(f->st, &d, T0, 0, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT state = 'queued' FROM jobs"), 1);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf), "SELECT last_error FROM jobs"),
	    "checkpoints[0].mailbox contains a control character");
	/* failure with invalid error text and out-of-range retry */
	fx_lease(f, j, T0 + 10000);
	d = done_ok(j, 2, 0, NULL, 0);
	d.status = ERR_SERVER;
	d.retry = 42;
	d.error = S("\xff\xfe");
	assert_int_equal(
	    store_apply_done(f->st, &d, T0 + 10001, 0, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT state = 'queued' FROM jobs"), 1);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf), "SELECT last_error FROM jobs"),
	    "server refused the command (worker error text is not valid "
	    "UTF-8)");
}

static void
test_batch_reset(void **state)
{
	struct fx *f = *state;
	struct proto_checkpoint cp = { S("INBOX"), 100, 4, 777, { 0 }, { 0 } };
	struct proto_job_submit js = { .account = S("a"), .kind = JOB_KIND_SYNC };
	struct proto_mailbox_row mb;
	struct proto_message_row m;
	struct proto_batch b;
	struct proto_done d;
	struct three t;
	uint64_t j;

	j = leased_job(f, NULL);
	three_rows(&t, j, 1, 1);
	assert_int_equal(store_apply_batch(f->st, &t.b, T0, fx_out(f)), 0);
	d = done_ok(j, 1, 1, &cp, 1);
	assert_int_equal(store_apply_done(f->st, &d, T0 + 1, 0, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT uidnext FROM mailboxes"), 4);

	/* next job: UIDVALIDITY changed on the server */
	assert_int_equal(store_job_submit(f->st, &js, T0 + 2, fx_out(f)), 0);
	j = f->out.reply.id;
	fx_lease(f, j, T0 + 2);
	mb = inbox;
	mb.uidvalidity = 200;
	mb.reset = true;
	m = row("INBOX", 1, 0, "new one");
	b = (struct proto_batch) { .job_id = j, .attempt = 1, .seq = 1, .mailboxes = &mb, .nmailboxes = 1, .messages = &m, .nmessages = 1 };
	assert_int_equal(store_apply_batch(f->st, &b, T0 + 3, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 1);
	assert_int_equal(fx_q(f, "SELECT uidvalidity FROM mailboxes"), 200);
	assert_int_equal(fx_q(f, "SELECT uidnext FROM mailboxes"), -2);
	assert_int_equal(fx_q(f, "SELECT highestmodseq FROM mailboxes"), -2);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sync_log WHERE "
	                     "outcome = 'reset'"),
	    1);
	/* the reset batch replayed (duplicate) deletes nothing more */
	m = row("INBOX", 2, 0, "new two");
	b = (struct proto_batch) { .job_id = j, .attempt = 1, .seq = 2, .mailboxes = NULL, .nmailboxes = 0, .messages = &m, .nmessages = 1 };
	assert_int_equal(store_apply_batch(f->st, &b, T0 + 4, fx_out(f)), 0);
	b = (struct proto_batch) { .job_id = j, .attempt = 1, .seq = 1, .mailboxes = &mb, .nmailboxes = 1, .messages = &m, .nmessages = 1 };
	assert_int_equal(store_apply_batch(f->st, &b, T0 + 5, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_batch_upsert_and_lease_renewal, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_batch_flag_only_rows, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_batch_duplicate_and_stale, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_batch_new_attempt_no_duplicates, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_batch_rejected_whole, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_batch_reset, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_done_success, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_done_lost_batch, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_done_failure_never_and_dead, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_done_malformed, fx_setup, fx_teardown),
	};

	log_init("store_apply_test", LOG_LVL_WARN);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
