/*
 * store_drain_test.c: unit tests for the drain in pkg/store
 * (docs/drain.md): the lease (order, waiting, budget, SMTP settings), every
 * result outcome, the end of an attempt without results, the sync-side
 * guards (skip, merge, overlay, expunges), undo with checkpoint lowering,
 * retarget after a UIDVALIDITY reset and the cost of the guards on a
 * 10,000-row batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "store_fixture.h"
#include "store_change_fixture.h"

static void
test_lease_selection(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	uint64_t m1, m2, c1, c2, c3, c4;

	world(f);
	m1 = msg(f, "INBOX", 1);
	m2 = msg(f, "INBOX", 2);
	c1 = flag_add(f, m1, PROTO_FLAG_SEEN, 0);
	c2 = move_add(f, m1, "Archive");
	c3 = flag_add(f, m1, PROTO_FLAG_FLAGGED, 0); /* on the placeholder */
	c4 = flag_add(f, m2, 0, PROTO_FLAG_SEEN);
	run = lease_drain(f, T0 + 2000);
	assert_int_equal(run->kind, JOB_KIND_DRAIN);
	assert_int_equal(run->nchanges, 3);
	assert_int_equal(run->changes[0].id, c1);
	assert_int_equal(run->changes[0].flags_add, PROTO_FLAG_SEEN);
	assert_int_equal(run->changes[0].uid, 1);
	assert_int_equal(run->changes[0].attempts, 0);
	assert_int_equal(run->changes[1].id, c2);
	assert_int_equal(run->changes[1].kind, CHANGE_MOVE);
	assert_true(proto_str_eq(run->changes[1].mailbox, "INBOX"));
	assert_int_equal(run->changes[1].uidvalidity, 100);
	assert_int_equal(run->changes[1].uid, 1);
	assert_true(proto_str_eq(run->changes[1].to_mailbox, "Archive"));
	assert_true(proto_str_eq(run->changes[1].header_message_id, "<m1@x>"));
	assert_int_equal(run->changes[2].id, c4);
	/* SMTP defaults to the account's own credentials */
	assert_true(proto_str_eq(run->smtp, "smtps://smtp.example.org:465"));
	assert_true(proto_str_eq(run->smtp_username, "alice"));
	assert_true(proto_str_eq(run->smtp_password, "pw"));
	assert_true(proto_str_eq(run->password, "pw"));
	assert_state(f, c1, "inflight");
	assert_state(f, c3, "pending");
	assert_int_equal(
	    fx_q(f, "SELECT attempts FROM pending_changes WHERE id = %llu",
	        (unsigned long long)c2),
	    1);
	assert_int_equal(fx_q(f,
	                     "SELECT job_id FROM pending_changes WHERE"
	                     " id = %llu",
	                     (unsigned long long)c4),
	    (int64_t)run->job_id);
}

static void
test_lease_waits_and_budget(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	uint64_t m1, m2, c1, c2, j;
	uint32_t att;

	world(f);
	m1 = msg(f, "INBOX", 1);
	m2 = msg(f, "INBOX", 2);
	c1 = flag_add(f, m1, PROTO_FLAG_SEEN, 0);
	c2 = flag_add(f, m1, 0, PROTO_FLAG_SEEN);
	flag_add(f, m2, PROTO_FLAG_SEEN, 0);
	/* c1 is backing off: c2 (same message) waits behind it */
	assert_int_equal(fx_exec(f,
	                     "UPDATE pending_changes SET next_at ="
	                     " 1700000100000 WHERE id = 1"),
	    SQLITE_OK);
	run = lease_drain(f, T0 + 2000);
	assert_int_equal(run->nchanges, 1);
	assert_int_equal(run->changes[0].id, 3);
	assert_state(f, c1, "pending");
	assert_state(f, c2, "pending");
	/* due no earlier than what it waits for */
	assert_int_equal(
	    fx_q(f, "SELECT next_at FROM pending_changes WHERE id = 2"),
	    1700000100000LL);
	j = run->job_id;
	att = run->attempt;
	assert_int_equal(results(f, j, att, 1,
	                     &(struct proto_change_result) {
	                         .id = 3, .outcome = CHANGE_OUT_DONE },
	                     1, T0 + 3000),
	    0);
	assert_int_equal(done(f, j, att, 1, 0, T0 + 3000), 0);
	/* the next drain is due when c1 is */
	assert_int_equal(fx_q(f,
	                     "SELECT due_at FROM jobs WHERE kind ="
	                     " 'drain' AND state = 'queued'"),
	    1700000100000LL);
	assert_int_equal(fx_exec(f,
	                     "DELETE FROM pending_changes; DELETE FROM"
	                     " jobs WHERE kind = 'drain'"),
	    SQLITE_OK);

	/* budget: 1,000 changes per job */
	assert_int_equal(
	    fx_exec(f,
	        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM"
	        " n WHERE i < 1001) INSERT INTO pending_changes(account_id,"
	        " kind, state, message_id, mailbox, uidvalidity, uid,"
	        " flags_add, created_at, updated_at, next_at) SELECT 1,"
	        " 'flag', 'pending', NULL, 'INBOX', 100, 2, 1, 0, 0, 0 FROM n;"
	        "INSERT INTO jobs(account_id, kind, state, priority,"
	        " max_attempts, created_at, due_at) VALUES (1, 'drain',"
	        " 'queued', 1, 3, 0, 0)"),
	    SQLITE_OK);
	run = lease_drain(f, T0 + 4000);
	assert_int_equal(run->nchanges, PROTO_MAX_CHANGES);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM pending_changes WHERE"
	                     " state = 'pending'"),
	    1);
	assert_int_equal(fx_exec(f,
	                     "DELETE FROM pending_changes; DELETE FROM"
	                     " jobs WHERE kind = 'drain'"),
	    SQLITE_OK);

	/* budget: 12 MiB of raw messages; the first always fits */
	assert_int_equal(
	    fx_exec(f,
	        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM"
	        " n WHERE i < 3) INSERT INTO pending_changes(account_id, kind,"
	        " state, to_mailbox, rfc822, header_message_id, created_at,"
	        " updated_at, next_at) SELECT 1, 'append', 'pending',"
	        " 'Archive', zeroblob(CASE i WHEN 1 THEN 13000000 ELSE 10"
	        " END), '<z@x>', 0, 0, 0 FROM n;"
	        "INSERT INTO jobs(account_id, kind, state, priority,"
	        " max_attempts, created_at, due_at) VALUES (1, 'drain',"
	        " 'queued', 1, 3, 0, 0)"),
	    SQLITE_OK);
	run = lease_drain(f, T0 + 5000);
	assert_int_equal(run->nchanges, 1);
	assert_int_equal(run->changes[0].rfc822.len, 13000000);
	(void)m2;
}

/* Outcomes -----------------------------------------------------------------
 */

static void
test_outcomes_move_append(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	struct proto_message_row again;
	struct proto_change_result r[3];
	uint64_t m1, c1, c2, c3, j;
	uint32_t att;
	char buf[128];

	world(f);
	m1 = msg(f, "INBOX", 1);
	c1 = move_add(f, m1, "Archive");
	c2 = flag_add(f, m1, PROTO_FLAG_FLAGGED, 0); /* waits for the UID */
	c3 = add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_APPEND,
	        .mailbox = S("Archive"),
	        .rfc822 = S(MSG_APPEND) });
	run = lease_drain(f, T0 + 2000);
	assert_int_equal(run->nchanges, 2);
	j = run->job_id;
	att = run->attempt;
	/* a row at the append's new UID, written before its result came */
	assert_int_equal(fx_exec(f,
	                     "INSERT INTO messages(account_id, mailbox_id,"
	                     " uid, message_id) SELECT 1, id, 8, '<dup@x>'"
	                     " FROM mailboxes WHERE name = 'Archive'"),
	    SQLITE_OK);
	memset(r, 0, sizeof(r));
	r[0] = (struct proto_change_result) { .id = c1,
		.outcome = CHANGE_OUT_DONE,
		.mailbox = S("Archive"),
		.uidvalidity = 400,
		.uid = 7 };
	r[1] = (struct proto_change_result) { .id = c3,
		.outcome = CHANGE_OUT_DONE,
		.mailbox = S("Archive"),
		.uidvalidity = 400,
		.uid = 8 };
	/* a result for a change this job does not carry is ignored */
	r[2] = (struct proto_change_result) {
		.id = c2, .outcome = CHANGE_OUT_DEAD, .error = S("nope")
	};
	assert_int_equal(results(f, j, att, 1, r, 3, T0 + 3000), 0);
	assert_state(f, c1, "done");
	assert_state(f, c2, "pending");
	assert_state(f, c3, "done");
	/* the placeholder has its UID, same id */
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT x.name || ' ' || m.uid || ' ' || coalesce(m.remote_id,"
	        " 'null') FROM messages m JOIN mailboxes x ON x.id ="
	        " m.mailbox_id WHERE m.message_id = '<m1@x>'"),
	    "Archive 7 null");
	assert_int_equal(fx_q(f,
	                     "SELECT id FROM messages WHERE message_id ="
	                     " '<m1@x>'"),
	    (int64_t)m1);
	assert_int_equal(
	    fx_q(f, "SELECT uid FROM messages WHERE message_id = '<new@x>'"),
	    8);
	assert_int_equal(
	    fx_q(f, "SELECT count(*) FROM messages WHERE uid = 8"), 1);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT result_mailbox || ' ' || result_uid"
	                        " FROM pending_changes WHERE id = 1"),
	    "Archive 7");
	/* the change that waited now knows where the message is */
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT mailbox || ' ' || uidvalidity || ' ' ||"
	        " uid || ' ' || coalesce(remote_id, 'null')"
	        " FROM pending_changes WHERE id = 2"),
	    "Archive 400 7 null");
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sync_log WHERE kind ="
	                     " 'change' AND outcome = 'done'"),
	    2);
	/* attempt ends: the waiting change is due, a drain is queued now */
	assert_int_equal(done(f, j, att, 1, 0, T0 + 3000), 0);
	assert_int_equal(fx_q(f,
	                     "SELECT due_at FROM jobs WHERE kind ="
	                     " 'drain' AND state = 'queued'"),
	    T0 + 3000);
	run = lease_drain(f, T0 + 4000);
	assert_int_equal(run->nchanges, 1);
	assert_int_equal(run->changes[0].id, c2);
	assert_int_equal(run->changes[0].uid, 7);
	assert_true(proto_str_eq(run->changes[0].mailbox, "Archive"));
	assert_int_equal(
	    done(f, run->job_id, run->attempt, 0, 0, T0 + 4000), 0);

	/* a sync brings the moved row: it is the same row, no duplicate,
	 * and the pending flag change shows on it */
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE kind = 'drain'"), SQLITE_OK);
	again = row("Archive", 7, 0, "<m1@x>");
	sync_job(f, "a", NULL, 0, &again, 1, NULL, 0, NULL, 0, T0 + 20000);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " message_id = '<m1@x>'"),
	    1);
	assert_int_equal(
	    fx_q(f, "SELECT flagged FROM messages WHERE id = %llu",
	        (unsigned long long)m1),
	    1);
}

static void
test_outcomes_retry_dead_uncertain(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	struct proto_change_result r[4];
	uint64_t m1, m2, c1, c2, c3, c4, j;
	uint32_t att;
	int64_t next;
	char buf[256];

	world(f);
	m1 = msg(f, "INBOX", 1);
	m2 = msg(f, "INBOX", 2);
	c1 = flag_add(f, m1, PROTO_FLAG_SEEN, 0);
	c2 = move_add(f, m2, "Archive");
	c3 = add_ok(f,
	    (struct proto_change_add) {
	        .kind = CHANGE_SEND, .rfc822 = S(MSG_SEND) });
	c4 = add_ok(f,
	    (struct proto_change_add) {
	        .kind = CHANGE_SEND, .rfc822 = S(MSG_SEND) });
	run = lease_drain(f, T0 + 2000);
	assert_int_equal(run->nchanges, 4);
	assert_true(proto_str_eq(run->changes[2].to_mailbox, "Sent"));
	assert_int_equal(run->changes[2].step, 0);
	j = run->job_id;
	att = run->attempt;
	memset(r, 0, sizeof(r));
	r[0] = (struct proto_change_result) { .id = c1,
		.outcome = CHANGE_OUT_RETRY,
		.error = S("NO [INUSE] busy") };
	r[1] = (struct proto_change_result) { .id = c2,
		.outcome = CHANGE_OUT_DEAD,
		.error = S("NO [TRYCREATE] gone") };
	r[2] = (struct proto_change_result) { .id = c3,
		.outcome = CHANGE_OUT_UNCERTAIN,
		.error = S("connection lost") };
	r[3] = (struct proto_change_result) { .id = c4,
		.outcome = CHANGE_OUT_SENT };
	assert_int_equal(results(f, j, att, 1, r, 4, T0 + 3000), 0);
	assert_state(f, c1, "pending");
	next = fx_q(f, "SELECT next_at FROM pending_changes WHERE id = 1");
	assert_true(next >= T0 + 3000 + 2500 && next <= T0 + 3000 + 5000);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT last_error FROM pending_changes WHERE"
	                        " id = 1"),
	    "NO [INUSE] busy");
	/* dead: undone, the source's uidnext lowered to its UID */
	assert_state(f, c2, "dead");
	assert_int_equal(
	    fx_q(f, "SELECT count(*) FROM messages WHERE id = %llu",
	        (unsigned long long)m2),
	    0);
	assert_int_equal(
	    fx_q(f, "SELECT uidnext FROM mailboxes WHERE name = 'INBOX'"), 2);
	assert_state(f, c3, "uncertain");
	/* uncertain keeps its placeholder until the user decides */
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " remote_id = 'local:3'"),
	    1);
	assert_state(f, c4, "inflight");
	assert_int_equal(
	    fx_q(f, "SELECT step FROM pending_changes WHERE id = 4"), 1);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sync_log WHERE kind ="
	                     " 'change'"),
	    3);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT detail FROM sync_log WHERE outcome = 'dead'"),
	    "change 2 (move): NO [TRYCREATE] gone");
	/* the attempt ends: the step-1 send is no longer at risk: pending */
	assert_int_equal(done(f, j, att, 1, 0, T0 + 4000), 0);
	assert_state(f, c4, "pending");
	/* max attempts: dead with the last error */
	assert_int_equal(fx_exec(f,
	                     "UPDATE pending_changes SET attempts = 7,"
	                     " next_at = 0 WHERE id = 1"),
	    SQLITE_OK);
	run = lease_drain(f, T0 + 10000);
	j = run->job_id;
	att = run->attempt;
	r[0] = (struct proto_change_result) {
		.id = c1, .outcome = CHANGE_OUT_RETRY, .error = S("busy again")
	};
	assert_int_equal(results(f, j, att, 1, r, 1, T0 + 11000), 0);
	assert_state(f, c1, "dead");
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT last_error FROM pending_changes WHERE"
	                        " id = 1"),
	    "gave up after 8 attempts: busy again");
	/* undo of a flag: the checkpoint goes below the row's modseq */
	assert_int_equal(
	    fx_q(
	        f, "SELECT highestmodseq FROM mailboxes WHERE name = 'INBOX'"),
	    10);
}

static void
test_attempt_end_without_results(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	struct proto_job_retry jr;
	uint64_t m1, c1, c2, j;
	uint32_t att;
	int64_t next;

	world(f);
	m1 = msg(f, "INBOX", 1);
	c1 = flag_add(f, m1, PROTO_FLAG_SEEN, 0);
	c2 = add_ok(f,
	    (struct proto_change_add) {
	        .kind = CHANGE_SEND, .rfc822 = S(MSG_SEND) });
	run = lease_drain(f, T0 + 2000);
	j = run->job_id;
	att = run->attempt;
	/* the worker failed without a result: the flag retries later, the
	 * step-0 send may have been delivered */
	assert_int_equal(done(f, j, att, 0, ERR_IO, T0 + 3000), 0);
	assert_state(f, c1, "pending");
	assert_state(f, c2, "uncertain");
	next = fx_q(f, "SELECT next_at FROM pending_changes WHERE id = 1");
	assert_true(next >= T0 + 3000 + 2500 && next <= T0 + 3000 + 5000);
	/* the drain job was requeued (joined) for the change's due time */
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM jobs WHERE kind ="
	                     " 'drain' AND state = 'queued'"),
	    1);
	assert_true(fx_q(f,
	                "SELECT due_at FROM jobs WHERE kind = 'drain'"
	                " AND state = 'queued'")
	    <= next);

	/* a lease given back before it expired (no worker took it): the
	 * send was never handed over, it stays pending */
	assert_int_equal(fx_exec(f,
	                     "UPDATE pending_changes SET state ="
	                     " 'pending', next_at = 0"),
	    SQLITE_OK);
	assert_int_equal(
	    fx_exec(f, "UPDATE jobs SET due_at = 0 WHERE kind = 'drain'"),
	    SQLITE_OK);
	run = lease_drain(f, T0 + 10000);
	j = run->job_id;
	att = run->attempt;
	assert_int_equal(run->nchanges, 2);
	jr = (struct proto_job_retry) { .job_id = j,
		.attempt = att,
		.state = JOB_QUEUED,
		.due_at = T0 + 10000,
		.error = S("no worker") };
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + 10001, fx_out(f)), 0);
	assert_state(f, c2, "pending");
	assert_state(f, c1, "pending");
	/* an expired lease: the send may have started */
	run = lease_drain(f, T0 + 30000);
	jr.job_id = run->job_id;
	jr.attempt = run->attempt;
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + 30000 + LEASE + 1, fx_out(f)), 0);
	assert_state(f, c2, "uncertain");
	assert_state(f, c1, "pending");
}

/* Sync guards ---------------------------------------------------------------
 */

static void
test_sync_guards(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[4];
	uint64_t m1, m2;
	char buf[128];

	world(f);
	m1 = msg(f, "INBOX", 1);
	m2 = msg(f, "INBOX", 2);
	move_add(f, m1, "Trash");
	flag_add(f, m2, PROTO_FLAG_SEEN, 0);
	add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_FLAG,
	        .message_id = m2,
	        .keywords_add = S("$Work") });
	/* drop the drain job so a sync job can lease */
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE kind = 'drain'"), SQLITE_OK);
	m[0] = row("INBOX", 1, 0, "<m1@x>"); /* skip: moved away */
	m[1] = row("INBOX", 2, PROTO_FLAG_FLAGGED, "<m2@x>"); /* overlay */
	m[1].keywords = S("$Other");
	m[2] = row("INBOX", 2, 0, "<m2@x>");
	m[2].full = false; /* flag-only: overlay again */
	m[3] = row("INBOX", 4, 0, "<m4@x>"); /* a plain new row */
	sync_job(f, "a", NULL, 0, m, 4, NULL, 0, NULL, 0, T0 + 5000);
	/* skip: no row at INBOX uid 1; the placeholder is in Trash */
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages m JOIN"
	                     " mailboxes x ON x.id = m.mailbox_id WHERE"
	                     " x.name = 'INBOX' AND m.uid = 1"),
	    0);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " message_id = '<m1@x>'"),
	    1);
	/* overlay: the user's seen and keyword on top of the server's */
	assert_int_equal(fx_q(f, "SELECT seen FROM messages WHERE id = %llu",
	                     (unsigned long long)m2),
	    1);
	assert_int_equal(
	    fx_q(f, "SELECT flagged FROM messages WHERE id = %llu",
	        (unsigned long long)m2),
	    0);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT keywords FROM messages WHERE uid = 2"),
	    "$Work");
	assert_int_equal(
	    fx_q(f, "SELECT count(*) FROM messages WHERE uid = 4"), 1);
	/* once the change is over, the server's flags win again */
	assert_int_equal(fx_exec(f,
	                     "UPDATE pending_changes SET state ="
	                     " 'done'"),
	    SQLITE_OK);
	sync_job(f, "a", NULL, 0, &m[2], 1, NULL, 0, NULL, 0, T0 + 6000);
	assert_int_equal(fx_q(f, "SELECT seen FROM messages WHERE id = %llu",
	                     (unsigned long long)m2),
	    0);
}

static void
test_sync_merge_and_expunge(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[2];
	struct proto_expunge_row x[] = {
		{ .mailbox = S("Archive"),
		    .kind = EXPUNGE_VANISHED,
		    .uids = S("1:1000") },
		{ .mailbox = S("Trash"),
		    .kind = EXPUNGE_PRESENT,
		    .uids = { NULL, 0 },
		    .below = 100 },
	};
	uint64_t ca, ph, m1;
	char buf[128], want[64];

	world(f);
	m1 = msg(f, "INBOX", 1);
	move_add(f, m1, "Trash");
	ca = add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_APPEND,
	        .mailbox = S("Archive"),
	        .rfc822 = S(MSG_APPEND) });
	ph = (uint64_t)fx_q(f,
	    "SELECT id FROM messages WHERE remote_id ="
	    " 'local:2'");
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE kind = 'drain'"), SQLITE_OK);
	/* expunges never match placeholders */
	sync_job(f, "a", NULL, 0, NULL, 0, x, 2, NULL, 0, T0 + 5000);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE uid IS"
	                     " NULL"),
	    2);
	/* merge: a new row with the placeholder's Message-ID fills it */
	m[0] = row("Archive", 9, PROTO_FLAG_SEEN, "<new@x>");
	m[1] = row("Archive", 10, 0, "<other@x>");
	sync_job(f, "a", NULL, 0, m, 2, NULL, 0, NULL, 0, T0 + 6000);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " message_id = '<new@x>'"),
	    1);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT id || ' ' || uid || ' ' || coalesce(remote_id, 'null')"
	        " || ' ' || seen FROM messages WHERE message_id = '<new@x>'"),
	    (snprintf(
	         want, sizeof(want), "%llu 9 null 1", (unsigned long long)ph),
	        want));
	/* the append's result later: the same row, no duplicate */
	assert_state(f, ca, "pending");
}

/* Undo, resolve ------------------------------------------------------------
 */

static void
test_undo_dependents(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	struct proto_change_result r;
	uint64_t m1, c1, c2, ca, cf, j;
	uint32_t att;
	char buf[128];

	world(f);
	m1 = msg(f, "INBOX", 1);
	c1 = move_add(f, m1, "Archive");
	c2 = move_add(f, m1, "Trash"); /* waits on c1's placeholder */
	ca = add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_APPEND,
	        .mailbox = S("Archive"),
	        .rfc822 = S(MSG_APPEND) });
	cf = flag_add(f,
	    (uint64_t)fx_q(f,
	        "SELECT id FROM messages WHERE"
	        " remote_id = 'local:3'"),
	    PROTO_FLAG_FLAGGED, 0);
	run = lease_drain(f, T0 + 2000);
	assert_int_equal(run->nchanges, 2); /* c1 and the append */
	j = run->job_id;
	att = run->attempt;
	r = (struct proto_change_result) {
		.id = c1, .outcome = CHANGE_OUT_DEAD, .error = S("NO")
	};
	assert_int_equal(results(f, j, att, 1, &r, 1, T0 + 3000), 0);
	/* c2 acts on the source again; its placeholder (the row) stays */
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT mailbox || ' ' || uid FROM"
	                        " pending_changes WHERE id = 2"),
	    "INBOX 1");
	assert_int_equal(fx_q(f,
	                     "SELECT remote_id = 'local:2' FROM messages"
	                     " WHERE id = %llu",
	                     (unsigned long long)m1),
	    1);
	r = (struct proto_change_result) { .id = ca,
		.outcome = CHANGE_OUT_DEAD,
		.error = S("NO [OVERQUOTA]") };
	assert_int_equal(results(f, j, att, 2, &r, 1, T0 + 3000), 0);
	/* the flag change on the append's placeholder cannot land */
	assert_state(f, cf, "dead");
	assert_non_null(strstr(fx_qs(f, buf, sizeof(buf),
	                           "SELECT last_error FROM pending_changes"
	                           " WHERE id = 4"),
	    "change 3, which it needs, did not land"));
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " remote_id = 'local:3'"),
	    0);
	assert_state(f, c2, "pending");
	/* retrying c1 does not take the row from c2, whose placeholder it
	 * is now */
	assert_int_equal(store_change_resolve(f->st,
	                     &(struct proto_change_resolve) {
	                         .change_id = c1, .action = S("retry") },
	                     T0 + 4000, fx_out(f)),
	    0);
	assert_int_equal(fx_q(f,
	                     "SELECT remote_id = 'local:2' FROM messages"
	                     " WHERE id = %llu",
	                     (unsigned long long)m1),
	    1);
}

/* Retarget -----------------------------------------------------------------
 */

static void
test_retarget_after_reset(void **state)
{
	struct fx *f = *state;
	struct proto_mailbox_row mb = mailboxes[0];
	struct proto_message_row m[2];
	struct proto_checkpoint cp = { S("INBOX"), 101, 20, 90, { 0 }, { 0 } };
	uint64_t m2, m3, c2, c3, c1, m1;
	int64_t nrow;
	char buf[128];

	world(f);
	m1 = msg(f, "INBOX", 1);
	m2 = msg(f, "INBOX", 2);
	m3 = msg(f, "INBOX", 3);
	c1 = move_add(f, m1, "Archive");
	c2 = flag_add(f, m2, PROTO_FLAG_SEEN, 0);
	c3 = flag_add(f, m3, PROTO_FLAG_SEEN, 0);
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE kind = 'drain'"), SQLITE_OK);
	/* INBOX is reset: m2 is back as uid 12, m1 as uid 11, m3 is gone */
	mb.uidvalidity = 101;
	mb.reset = true;
	m[0] = row("INBOX", 12, 0, "<m2@x>");
	m[1] = row("INBOX", 11, 0, "<m1@x>");
	sync_job(f, "a", &mb, 1, m, 2, NULL, 0, &cp, 1, T0 + 5000);
	nrow = fx_q(f, "SELECT id FROM messages WHERE uid = 12");
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT uidvalidity || ' ' || uid FROM"
	                        " pending_changes WHERE id = 2"),
	    "101 12");
	assert_int_equal(
	    fx_q(f, "SELECT message_id FROM pending_changes WHERE id = 2"),
	    nrow);
	/* the overlay was re-applied on the new row */
	assert_int_equal(
	    fx_q(f, "SELECT seen FROM messages WHERE uid = 12"), 1);
	/* the move follows its message; the copy fetched again goes, the
	 * placeholder (reset kept it) stays */
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT uidvalidity || ' ' || uid FROM"
	                        " pending_changes WHERE id = 1"),
	    "101 11");
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " message_id = '<m1@x>'"),
	    1);
	assert_int_equal(fx_q(f,
	                     "SELECT remote_id = 'local:1' FROM messages"
	                     " WHERE message_id = '<m1@x>'"),
	    1);
	/* m3 cannot be found: dead with the reason */
	assert_state(f, c3, "dead");
	assert_non_null(strstr(fx_qs(f, buf, sizeof(buf),
	                           "SELECT last_error FROM pending_changes"
	                           " WHERE id = 3"),
	    "mailbox was reset (UIDVALIDITY changed)"));
	/* the next sync does not move them again */
	(void)c1;
	(void)c2;
	(void)m2;
	(void)m3;
}

/* Maintenance, prune, accounts -------------------------------------------- */

static double
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return ((double)(t1.tv_sec - t0->tv_sec) * 1e3
	    + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6);
}

/* 10,000 rows in one batch; *ms_r its apply time. */
static void
apply_10k(struct fx *f, const char *mbox, uint32_t base, double *ms_r)
{
	struct proto_message_row *m = calloc(10000, sizeof(*m));
	struct proto_mailbox_row mb
	    = { .name = { mbox, strlen(mbox) }, .uidvalidity = 7 };
	struct proto_job_submit js
	    = { .account = S("a"), .kind = JOB_KIND_SYNC };
	struct proto_batch b;
	struct timespec t0;
	uint64_t j;
	uint32_t att;
	size_t i;

	assert_non_null(m);
	for (i = 0; i < 10000; i++) {
		m[i] = row(mbox, base + (uint32_t)i, 0, "<perf@x>");
	}
	assert_int_equal(store_job_submit(f->st, &js, T0, fx_out(f)), 0);
	j = f->out.reply.id;
	att = fx_lease(f, j, T0);
	memset(&b, 0, sizeof(b));
	b.job_id = j;
	b.attempt = att;
	b.seq = 1;
	b.mailboxes = &mb;
	b.nmailboxes = 1;
	b.messages = m;
	b.nmessages = 10000;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(store_apply_batch(f->st, &b, T0, fx_out(f)), 0);
	*ms_r = ms_since(&t0);
	assert_int_equal(done(f, j, att, 1, 0, T0), 0);
	free(m);
}

static void
test_guard_cost(void **state)
{
	struct fx *f = *state;
	double none, some;

	world(f);
	apply_10k(f, "P1", 1, &none);
	flag_add(f, msg(f, "INBOX", 1), PROTO_FLAG_SEEN, 0);
	move_add(f, msg(f, "INBOX", 2), "Archive");
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE kind = 'drain'"), SQLITE_OK);
	apply_10k(f, "P2", 1, &some);
	print_message("10,000-row batch: %.1f ms without active changes, "
	              "%.1f ms with 2\n",
	    none, some);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 20004);
}


int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_lease_selection, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_lease_waits_and_budget, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_outcomes_move_append, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_outcomes_retry_dead_uncertain, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_attempt_end_without_results, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_sync_guards, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_sync_merge_and_expunge, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_undo_dependents, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_retarget_after_reset, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_guard_cost, fx_setup, fx_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
