/*
 * store_prune_test.c: pruning removes only finished jobs older than the
 * horizon and old log rows, at most max_rows per call, and never a queued
 * or leased job.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_fixture.h"

#define DAY 86400000LL

static void
test_prune_horizon_and_cap(void **state)
{
	struct fx *f = *state;
	uint64_t acct, n = 0;
	int i;

	acct = fx_account(f, "a"); /* also queues its first sync job */
	/* 30 finished jobs: 20 ended 10 days ago, 10 ended an hour ago. */
	for (i = 0; i < 30; i++) {
		char sql[256];

		snprintf(sql, sizeof(sql),
		    "INSERT INTO jobs(account_id, kind, state, priority,"
		    " attempts, max_attempts, created_at, due_at, finished_at)"
		    " VALUES (%llu, 'sync', '%s', 0, 1, 5, %lld, %lld, %lld)",
		    (unsigned long long)acct, i % 3 == 0 ? "dead" : "done",
		    T0 - 11 * DAY, T0 - 11 * DAY,
		    i < 20 ? T0 - 10 * DAY : T0 - DAY / 24);
		assert_int_equal(fx_exec(f, sql), SQLITE_OK);
	}
	assert_int_equal(fx_exec(f, "INSERT INTO sync_log(at, outcome) VALUES"
				    " (1, 'done'), (2, 'done'), (3, 'retry')"),
	    SQLITE_OK);
	/* Cap of 15 rows per table: two passes for the 20 old jobs. */
	assert_int_equal(store_prune(f->st, T0, 7 * DAY, 30 * DAY, 15, &n),
	    0);
	assert_int_equal(n, 15 + 3);
	assert_int_equal(store_prune(f->st, T0, 7 * DAY, 30 * DAY, 15, &n),
	    0);
	assert_int_equal(n, 5);
	assert_int_equal(store_prune(f->st, T0, 7 * DAY, 30 * DAY, 15, &n),
	    0);
	assert_int_equal(n, 0);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM jobs WHERE state IN"
				 " ('done', 'dead')"),
	    10);
	/* The queued first sync is never pruned. */
	assert_true(fx_queued(f, acct) != 0);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM sync_log WHERE at < 4"),
	    0);
	assert_int_equal(store_prune(f->st, T0, 0, DAY, 10, &n), ERR_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_prune_horizon_and_cap, fx_setup, fx_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
