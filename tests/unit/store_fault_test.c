/*
 * store_fault_test.c: fault injection for pkg/store, SQLite style. Faults
 * are injected from a second connection: a held write lock (SQLITE_BUSY)
 * and triggers that RAISE(ABORT) in the middle of a transaction. Each
 * test checks that the failing operation reports a precise error, emits
 * no event, leaves no partial write, and that the same operation succeeds
 * once the fault is gone (no false "duplicate").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_fixture.h"

static uint64_t
leased_job(struct fx *f)
{
	uint64_t acct = fx_account(f, "a"), j = fx_queued(f, acct);

	fx_lease(f, j, T0);
	return (j);
}

static void
test_busy_write_lock(void **state)
{
	struct fx *f = *state;
	struct proto_job_submit js = { .account = S("a"), .kind = JOB_KIND_SYNC };
	struct proto_job_lease jl;
	sqlite3 *db = NULL;
	uint64_t acct, j;

	acct = fx_account(f, "a");
	j = fx_queued(f, acct);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(
	    store_job_submit(f->st, &js, T0, fx_out(f)), ERR_TIMEOUT);
	assert_fail(f, ERR_TIMEOUT, "begin: database error");
	assert_int_equal(f->out.nevents, 0);
	jl = (struct proto_job_lease) { j, T0 + LEASE };
	assert_int_equal(
	    store_job_lease(f->st, &jl, T0, fx_out(f)), ERR_TIMEOUT);
	assert_null(f->out.reply.job_run);
	/* reads still work under WAL */
	assert_int_equal(store_sched_state(f->st, fx_out(f)), 0);
	assert_int_equal(f->out.reply.njobs, 1);
	assert_int_equal(
	    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(fx_lease(f, j, T0), 1);
}

static void
test_batch_aborted_midway(void **state)
{
	struct fx *f = *state;
	struct proto_mailbox_row mb
	    = { .name = { "INBOX", 5 }, .uidvalidity = 9 };
	struct proto_message_row m[3];
	struct proto_batch b;
	uint64_t j;
	size_t i;

	j = leased_job(f);
	memset(m, 0, sizeof(m));
	for (i = 0; i < 3; i++) {
		m[i].mailbox = S("INBOX");
		m[i].uid = (uint32_t)i + 1;
		m[i].full = true;
		m[i].subject = S("s");
	}
	b = (struct proto_batch) { .job_id = j, .attempt = 1, .seq = 1, .mailboxes = &mb, .nmailboxes = 1, .messages = m, .nmessages = 3 };
	/* the third row's insert fails, after the mailbox and two rows */
	assert_int_equal(fx_exec(f,
	                     "CREATE TRIGGER boom BEFORE INSERT ON "
	                     "messages WHEN NEW.uid = 3 BEGIN "
	                     "SELECT RAISE(ABORT, 'injected'); END"),
	    SQLITE_OK);
	assert_int_equal(
	    store_apply_batch(f->st, &b, T0 + 10, fx_out(f)), ERR_DB);
	assert_fail(f, ERR_DB, "injected");
	assert_int_equal(f->out.nevents, 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM mailboxes"), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM job_batches"), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM sync_log"), 0);
	assert_int_equal(fx_q(f, "SELECT messages FROM jobs"), 0);
	assert_int_equal(fx_q(f, "SELECT lease_until FROM jobs"), T0 + LEASE);
	/* the worker's retry of the same batch is applied, not skipped */
	assert_int_equal(fx_exec(f, "DROP TRIGGER boom"), SQLITE_OK);
	assert_int_equal(store_apply_batch(f->st, &b, T0 + 20, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 3);
	assert_int_equal(fx_q(f, "SELECT messages FROM jobs"), 3);
}

static void
test_done_aborted_midway(void **state)
{
	struct fx *f = *state;
	struct proto_mailbox_row mb
	    = { .name = { "INBOX", 5 }, .uidvalidity = 9 };
	struct proto_checkpoint cp = { S("INBOX"), 9, 50, 0, { 0 }, { 0 } };
	struct proto_str keep[] = { S("INBOX") };
	struct proto_batch b;
	struct proto_done d;
	uint64_t j;

	j = leased_job(f);
	b = (struct proto_batch) { .job_id = j, .attempt = 1, .seq = 1, .mailboxes = &mb, .nmailboxes = 1, .messages = NULL, .nmessages = 0 };
	assert_int_equal(store_apply_batch(f->st, &b, T0, fx_out(f)), 0);
	memset(&d, 0, sizeof(d));
	d.job_id = j;
	d.attempt = 1;
	d.nbatches = 1;
	d.checkpoints = &cp;
	d.ncheckpoints = 1;
	d.mailbox_list_complete = true;
	d.mailboxes = keep;
	d.nmailboxes = 1;
	/* the last step (the account update) fails */
	assert_int_equal(fx_exec(f,
	                     "CREATE TRIGGER boom BEFORE UPDATE OF "
	                     "last_sync_at ON accounts BEGIN "
	                     "SELECT RAISE(ABORT, 'injected'); END"),
	    SQLITE_OK);
	assert_int_equal(
	    store_apply_done(f->st, &d, T0 + 5, 0, fx_out(f)), ERR_DB);
	assert_fail(f, ERR_DB, "injected");
	assert_int_equal(f->out.nevents, 0);
	/* nothing moved: still leased, checkpoint untouched, batch kept */
	assert_int_equal(fx_q(f, "SELECT state = 'leased' FROM jobs"), 1);
	assert_int_equal(fx_q(f, "SELECT uidnext FROM mailboxes"), -2);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM job_batches"), 1);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sync_log WHERE "
	                     "outcome = 'done'"),
	    0);
	assert_int_equal(fx_exec(f, "DROP TRIGGER boom"), SQLITE_OK);
	assert_int_equal(store_apply_done(f->st, &d, T0 + 6, 0, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT state = 'done' FROM jobs"), 1);
	assert_int_equal(fx_q(f, "SELECT uidnext FROM mailboxes"), 50);
}

static void
test_account_add_aborted(void **state)
{
	struct fx *f = *state;
	struct proto_account_add a = { .name = S("x"),
		.protocol = S("imap"),
		.server = S("imap://h"),
		.username = S("u"),
		.password = S("p") };

	/* the first job's insert fails: the account must not stay */
	assert_int_equal(fx_exec(f,
	                     "CREATE TRIGGER boom BEFORE INSERT ON "
	                     "jobs BEGIN SELECT RAISE(ABORT, "
	                     "'injected'); END"),
	    SQLITE_OK);
	assert_int_equal(store_account_add(f->st, &a, T0, fx_out(f)), ERR_DB);
	assert_fail(f, ERR_DB, "injected");
	assert_int_equal(f->out.nevents, 0);
	assert_int_equal(f->out.reply.id, 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM accounts"), 0);
	assert_int_equal(fx_exec(f, "DROP TRIGGER boom"), SQLITE_OK);
	assert_int_equal(store_account_add(f->st, &a, T0, fx_out(f)), 0);
	assert_int_equal(f->out.nevents, 2);
}

static void
test_retry_aborted(void **state)
{
	struct fx *f = *state;
	struct proto_job_retry jr;
	uint64_t j;

	j = leased_job(f);
	assert_int_equal(fx_exec(f,
	                     "CREATE TRIGGER boom BEFORE INSERT ON "
	                     "sync_log BEGIN SELECT RAISE(ABORT, "
	                     "'injected'); END"),
	    SQLITE_OK);
	jr = (struct proto_job_retry) { j, 1, JOB_DEAD, 0, S("gone") };
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + LEASE, fx_out(f)), ERR_DB);
	assert_int_equal(f->out.nevents, 0);
	assert_int_equal(fx_q(f, "SELECT state = 'leased' FROM jobs"), 1);
	assert_int_equal(fx_q(f, "SELECT fail_streak FROM accounts"), 0);
	assert_int_equal(fx_exec(f, "DROP TRIGGER boom"), SQLITE_OK);
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + LEASE, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT state = 'dead' FROM jobs"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_busy_write_lock, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_batch_aborted_midway, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_done_aborted_midway, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_account_add_aborted, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_retry_aborted, fx_setup, fx_teardown),
	};

	log_init("store_fault_test", LOG_LVL_WARN);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
