/*
 * queue_test.c: unit tests for pkg/queue, the scheduler's pure state
 * machine. Time is passed in, so every scenario is a script of events,
 * ticks and outcomes at fixed unix-ms instants. Ends with a random walk
 * checked against the internal invariants and a 50,000-account tick.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/base.h"
#include "queue/queue.h"
#include "queue/queue_int.h"

#define T0 1700000000000LL /* a fixed "now", unix ms */
#define LEASE_MS 120000

static struct queue *
mkq(uint32_t max_inflight, uint32_t max_attempts)
{
	struct queue_limits lim = { max_inflight, LEASE_MS, max_attempts };
	struct queue *q = NULL;

	assert_int_equal(queue_new(&lim, &q), 0);
	return (q);
}

static int
ev(struct queue *q, struct proto_event e)
{
	int rv = queue_on_event(q, &e, NULL, NULL);

	queue_check(q);
	return (rv);
}

static void
add_acct(struct queue *q, uint64_t id, uint32_t interval_s)
{
	assert_int_equal(ev(q, (struct proto_event){ .kind =
	    EV_ACCOUNT_CHANGED, .account_id = id, .interval_s = interval_s }),
	    0);
}

static void
add_job(struct queue *q, uint64_t id, uint64_t acct, uint8_t prio,
    int64_t due)
{
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_QUEUED,
	    .job_id = id, .account_id = acct, .priority = prio,
	    .state = JOB_QUEUED, .due_at = due, .at = due }), 0);
}

static size_t
tick(struct queue *q, int64_t now, struct queue_action *acts, size_t cap)
{
	size_t n = 99;

	queue_next_actions(q, now, 12345, acts, cap, &n);
	queue_check(q);
	return (n);
}

/* Leases whatever the tick proposes, as the store would (attempt + 1). */
static size_t
tick_lease_all(struct queue *q, int64_t now, struct queue_action *acts,
    size_t cap)
{
	size_t n = tick(q, now, acts, cap), i;

	for (i = 0; i < n; i++) {
		if (acts[i].kind == QUEUE_ACT_LEASE) {
			assert_int_equal(queue_lease_done(q, acts[i].job_id, 0,
			    acts[i].attempt + 1, acts[i].lease_until, now), 0);
		}
	}
	queue_check(q);
	return (n);
}

/* Backoff --------------------------------------------------------------- */

static void
test_backoff_table(void **state)
{
	static const struct {
		uint32_t failures;
		uint32_t rand32;
		int64_t lo, hi;
	} cases[] = {
		{ 0, 0, 0, 0 },
		{ 0, 0xffffffffu, 0, 0 },
		{ 1, 0, 2500, 2500 },
		{ 1, 2500, 5000, 5000 }, /* rand % 2501 == 2500 -> d */
		{ 1, 0xffffffffu, 2500, 5000 },
		{ 2, 0, 5000, 5000 },
		{ 2, 7, 5007, 5007 },
		{ 3, 0, 10000, 10000 },
		{ 6, 0, 80000, 80000 },
		{ 7, 0, 150000, 150000 }, /* 320 s capped to 300 s */
		{ 7, 150000, 300000, 300000 },
		{ 40, 0xffffffffu, 150000, 300000 },
		{ UINT32_MAX, 123456789, 150000, 300000 },
	};
	size_t i;
	int64_t d;
	uint32_t f, r;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		d = queue_backoff_ms(cases[i].failures, cases[i].rand32);
		if (d < cases[i].lo || d > cases[i].hi) {
			fail_msg("case %zu: %lld not in [%lld, %lld]", i,
			    (long long)d, (long long)cases[i].lo,
			    (long long)cases[i].hi);
		}
	}
	/* Jitter stays within [d/2, d] for every failure count. */
	for (f = 1; f < 20; f++) {
		int64_t full = 5000LL << (f - 1 > 10 ? 10 : f - 1);

		if (full > QUEUE_BACKOFF_MAX_MS) {
			full = QUEUE_BACKOFF_MAX_MS;
		}
		for (r = 0; r < 2000; r++) {
			d = queue_backoff_ms(f, r * 2654435761u);
			assert_true(d >= full / 2 && d <= full);
			assert_true(d >= QUEUE_BACKOFF_MIN_MS / 2);
			assert_true(d <= QUEUE_BACKOFF_MAX_MS);
		}
	}
}

static void
test_new_limits(void **state)
{
	static const struct queue_limits bad[] = {
		{ 0, 1000, 5 },
		{ 8, 0, 5 },
		{ 8, -1, 5 },
		{ 8, 1000, 0 },
	};
	struct queue *q = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		assert_int_equal(queue_new(&bad[i], &q), ERR_INVAL);
		assert_null(q);
	}
	assert_int_equal(queue_new(NULL, &q), ERR_INVAL);
	queue_free(&q); /* NULL is fine */
}

/* Periodic creation ---------------------------------------------------- */

static void
test_periodic_creation(void **state)
{
	struct queue *q = mkq(8, 5);
	struct proto_sched_account sa[] = {
		{ 1, 60, T0 - 59000, 0 }, /* due in 1 s */
		{ 2, 60, 0, 0 },	  /* never synced: due now */
		{ 3, 0, 0, 0 },		  /* manual only */
	};
	struct proto_reply r = { .sched_accounts = sa, .nsched_accounts = 3 };
	struct queue_action acts[8];
	size_t n;

	(void)state;
	assert_int_equal(queue_load(q, &r), 0);
	assert_int_equal(queue_next_deadline(q, T0), 0); /* fresh load */
	n = tick(q, T0, acts, 8);
	assert_int_equal(n, 1);
	assert_int_equal(acts[0].kind, QUEUE_ACT_CREATE);
	assert_int_equal(acts[0].account_id, 2);
	assert_int_equal(acts[0].priority, PRIO_PERIODIC);
	assert_int_equal(acts[0].job_kind, JOB_KIND_SYNC);
	assert_int_equal(acts[0].due_at, T0);
	/* Pending: not proposed again; account 1 is due in 1000 ms. */
	assert_int_equal(queue_next_deadline(q, T0), 1000);
	assert_int_equal(tick(q, T0 + 999, acts, 8), 0);
	n = tick(q, T0 + 1000, acts, 8);
	assert_int_equal(n, 1);
	assert_int_equal(acts[0].account_id, 1);
	/* Create outcome: account 1 fails (free again), account 2 ok. */
	assert_int_equal(queue_create_done(q, &acts[0], ERR_UNREACHABLE, 0),
	    0);
	assert_int_equal(queue_next_deadline(q, T0 + 1000), 0);
	n = tick(q, T0 + 1000, acts, 8);
	assert_int_equal(n, 1);
	assert_int_equal(acts[0].account_id, 1);
	assert_int_equal(queue_create_done(q, &acts[0], 0, 501), 0);
	{
		struct queue_action a2 = { .kind = QUEUE_ACT_CREATE,
			.account_id = 2, .job_kind = JOB_KIND_SYNC,
			.priority = PRIO_PERIODIC, .due_at = T0 };
		assert_int_equal(queue_create_done(q, &a2, 0, 502), 0);
	}
	queue_check(q);
	/* Both now have a queued job: the next tick leases, never creates. */
	n = tick(q, T0 + 1000, acts, 8);
	assert_int_equal(n, 2);
	assert_int_equal(acts[0].kind, QUEUE_ACT_LEASE);
	assert_int_equal(acts[1].kind, QUEUE_ACT_LEASE);
	/* Account 3 never gets a periodic job. */
	assert_int_equal(queue_next_deadline(q, T0 + 1000), QUEUE_NO_DEADLINE);
	queue_free(&q);
	assert_null(q);
}

static void
test_finished_updates_account(void **state)
{
	static const struct {
		uint8_t state;
		int32_t status;
		uint32_t streak_after;
	} cases[] = {
		{ JOB_DONE, 0, 0 },
		{ JOB_FAILED, ERR_AUTH, 3 },
		{ JOB_DEAD, ERR_TIMEOUT, 3 },
	};
	struct queue_action acts[4];
	struct queue_job before;
	uint64_t counts[QUEUE_ACCT_STATE_COUNT];
	bool known;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct queue *q = mkq(8, 5);
		struct proto_sched_account sa = { 7, 300, T0 - 10, 2 };
		struct proto_reply r = { .sched_accounts = &sa,
			.nsched_accounts = 1 };
		struct proto_event e = { .kind = EV_JOB_FINISHED,
			.job_id = 70, .account_id = 7, .attempt = 1,
			.state = cases[i].state, .status = cases[i].status,
			.at = T0 + 50000 };

		assert_int_equal(queue_load(q, &r), 0);
		add_job(q, 70, 7, PRIO_USER, T0);
		assert_int_equal(tick_lease_all(q, T0 + 10, acts, 4), 1);
		queue_account_states(q, counts);
		assert_int_equal(counts[QUEUE_ACCT_RUNNING], 1);
		assert_int_equal(
		    queue_on_event(q, &e, &before, &known), 0);
		queue_check(q);
		assert_true(known);
		assert_int_equal(before.leased_at, T0 + 10);
		assert_int_equal(before.attempt, 1);
		assert_int_equal(queue_job_get(q, 70, &before), ERR_NOTFOUND);
		queue_account_states(q, counts);
		assert_int_equal(counts[cases[i].streak_after ?
			QUEUE_ACCT_BACKOFF : QUEUE_ACCT_IDLE], 1);
		/* Next periodic job: interval after the finish. */
		assert_int_equal(queue_next_deadline(q, T0 + 50000), 0);
		assert_int_equal(tick(q, T0 + 50000, acts, 4), 0);
		assert_int_equal(queue_next_deadline(q, T0 + 50000), 300000);
		assert_int_equal(tick(q, T0 + 350000, acts, 4), 1);
		assert_int_equal(acts[0].kind, QUEUE_ACT_CREATE);
		/* A repeat of the event is unknown now. */
		assert_int_equal(ev(q, e), ERR_NOTFOUND);
		queue_free(&q);
	}
}

/* Leasing order and limits -------------------------------------------- */

static void
test_user_priority_first(void **state)
{
	struct queue *q = mkq(1, 5);
	struct queue_action acts[4];

	(void)state;
	add_acct(q, 1, 0);
	add_acct(q, 2, 0);
	add_acct(q, 3, 0);
	add_job(q, 10, 1, PRIO_PERIODIC, T0 - 5000); /* oldest */
	add_job(q, 20, 2, PRIO_USER, T0 - 1000);
	add_job(q, 30, 3, PRIO_USER, T0 - 2000);
	add_job(q, 40, 3, PRIO_USER, T0 + 1); /* not due yet */
	assert_int_equal(tick_lease_all(q, T0, acts, 4), 1);
	assert_int_equal(acts[0].job_id, 30); /* user, oldest due */
	assert_int_equal(acts[0].lease_until, T0 + LEASE_MS);
	/* Inflight full: nothing else, no busy deadline. */
	assert_int_equal(tick(q, T0, acts, 4), 0);
	assert_int_equal(queue_next_deadline(q, T0), 1); /* job 40 due */
	assert_int_equal(tick(q, T0 + 5, acts, 4), 0);
	assert_int_equal(queue_next_deadline(q, T0 + 5), LEASE_MS - 5);
	/* Job 30 done: 20 (user) next, before the older periodic 10. */
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_FINISHED,
	    .job_id = 30, .attempt = 1, .state = JOB_DONE, .at = T0 + 10 }),
	    0);
	assert_int_equal(queue_next_deadline(q, T0 + 10), 0);
	assert_int_equal(tick_lease_all(q, T0 + 10, acts, 4), 1);
	assert_int_equal(acts[0].job_id, 20);
	queue_free(&q);
}

static void
test_one_lease_per_account(void **state)
{
	struct queue *q = mkq(8, 5);
	struct queue_action acts[8];
	struct proto_job_info ji[] = {
		{ .id = 1, .account_id = 5, .kind = JOB_KIND_SYNC,
		    .state = JOB_QUEUED, .due_at = T0 - 10 },
		{ .id = 2, .account_id = 5, .kind = JOB_KIND_DRAIN,
		    .state = JOB_QUEUED, .priority = PRIO_USER,
		    .due_at = T0 - 5 },
		{ .id = 3, .account_id = 6, .kind = JOB_KIND_SYNC,
		    .state = JOB_LEASED, .attempts = 1,
		    .lease_until = T0 + 1000 },
		{ .id = 4, .account_id = 6, .kind = JOB_KIND_SYNC,
		    .state = JOB_QUEUED, .priority = PRIO_USER,
		    .due_at = T0 - 100 },
		{ .id = 5, .account_id = 6, .state = JOB_DONE },
	};
	struct proto_reply r = { .jobs = ji, .njobs = ARRAY_LEN(ji) };
	struct queue_stats st;

	(void)state;
	assert_int_equal(queue_load(q, &r), 0);
	queue_get_stats(q, &st);
	assert_int_equal(st.accounts, 2); /* placeholders for 5 and 6 */
	assert_int_equal(st.jobs, 4);	  /* DONE ignored */
	assert_int_equal(st.inflight, 1);
	assert_int_equal(tick_lease_all(q, T0, acts, 8), 1);
	assert_int_equal(acts[0].job_id, 2); /* user drain on account 5 */
	assert_int_equal(acts[0].job_kind, JOB_KIND_DRAIN);
	/* Again: both remaining jobs are blocked by busy accounts. */
	assert_int_equal(tick(q, T0, acts, 8), 0);
	assert_int_equal(queue_next_deadline(q, T0), 1000); /* lease of 3 */
	/* Job 2 finishes: job 1 goes. */
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_FINISHED,
	    .job_id = 2, .attempt = 1, .state = JOB_DONE, .at = T0 + 1 }), 0);
	assert_int_equal(tick_lease_all(q, T0 + 1, acts, 8), 1);
	assert_int_equal(acts[0].job_id, 1);
	queue_free(&q);
}

static void
test_max_inflight(void **state)
{
	struct queue *q = mkq(3, 5);
	struct queue_action acts[16];
	struct queue_stats st;
	uint64_t i;
	size_t n;

	(void)state;
	for (i = 1; i <= 10; i++) {
		add_acct(q, i, 0);
		add_job(q, 100 + i, i, PRIO_PERIODIC, T0 - 100 + (int64_t)i);
	}
	n = tick_lease_all(q, T0, acts, 16);
	assert_int_equal(n, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(acts[i].job_id, 101 + i); /* oldest first */
	}
	/* Lease refused for one: it goes back and is proposed again. */
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_FINISHED,
	    .job_id = 101, .attempt = 1, .state = JOB_DONE, .at = T0 }), 0);
	n = tick(q, T0, acts, 16);
	assert_int_equal(n, 1);
	assert_int_equal(acts[0].job_id, 104);
	assert_int_equal(queue_lease_done(q, 104, ERR_BADSTATE, 0, 0, T0), 0);
	assert_int_equal(queue_lease_done(q, 104, 0, 1, T0, T0), ERR_BADSTATE);
	n = tick(q, T0, acts, 16);
	assert_int_equal(n, 1);
	assert_int_equal(acts[0].job_id, 104);
	/* Capacity of the action list is honoured. */
	assert_int_equal(queue_lease_done(q, 104, 0, 1, T0 + LEASE_MS, T0),
	    0);
	queue_get_stats(q, &st);
	assert_int_equal(st.inflight, 3);
	assert_int_equal(st.queued, 6);
	queue_free(&q);
}

static void
test_action_cap(void **state)
{
	struct queue *q = mkq(100, 5);
	struct queue_action acts[4];
	uint64_t i;

	(void)state;
	for (i = 1; i <= 10; i++) {
		add_acct(q, i, 60);
	}
	assert_int_equal(tick(q, T0, acts, 4), 4);
	assert_int_equal(queue_next_deadline(q, T0), 0); /* more to do */
	assert_int_equal(tick(q, T0, acts, 4), 4);
	assert_int_equal(tick(q, T0, acts, 4), 2);
	assert_int_equal(queue_next_deadline(q, T0), QUEUE_NO_DEADLINE);
	queue_free(&q);
}

/* Lease expiry, retry, death, progress -------------------------------- */

static void
test_lease_expiry(void **state)
{
	struct queue *q = mkq(8, 3);
	struct queue_action acts[4];
	uint32_t attempt;
	int64_t now = T0, full;

	(void)state;
	add_acct(q, 1, 0);
	add_job(q, 9, 1, PRIO_USER, now);
	for (attempt = 1; attempt <= 3; attempt++) {
		assert_int_equal(tick_lease_all(q, now, acts, 4), 1);
		assert_int_equal(acts[0].kind, QUEUE_ACT_LEASE);
		assert_int_equal(acts[0].attempt, attempt - 1);
		assert_int_equal(queue_next_deadline(q, now), 0); /* done */
		assert_int_equal(tick(q, now, acts + 1, 3), 0);
		assert_int_equal(queue_next_deadline(q, now), LEASE_MS);
		assert_int_equal(tick(q, now + LEASE_MS - 1, acts, 4), 0);
		now += LEASE_MS;
		assert_int_equal(tick(q, now, acts, 4), 1);
		assert_int_equal(acts[0].kind, QUEUE_ACT_RETRY);
		assert_int_equal(acts[0].job_id, 9);
		assert_int_equal(acts[0].attempt, attempt);
		if (attempt < 3) {
			full = 5000LL << (attempt - 1);
			assert_int_equal(acts[0].state, JOB_QUEUED);
			assert_true(acts[0].due_at >= now + full / 2);
			assert_true(acts[0].due_at <= now + full);
			/* Retrying: pending, and still counts as busy. */
			assert_int_equal(tick(q, now, acts + 1, 3), 0);
			/* A failed retry request: proposed again. */
			assert_int_equal(queue_retry_done(q, 9, ERR_TIMEOUT,
			    0, 0, now), 0);
			assert_int_equal(tick(q, now, acts, 4), 1);
			assert_int_equal(acts[0].kind, QUEUE_ACT_RETRY);
			assert_int_equal(queue_retry_done(q, 9, 0,
			    acts[0].state, acts[0].due_at, now), 0);
			queue_check(q);
			assert_int_equal(tick(q, now, acts, 4), 0);
			assert_int_equal(queue_next_deadline(q, now),
			    acts[0].due_at - now);
			now = acts[0].due_at;
		} else {
			assert_int_equal(acts[0].state, JOB_DEAD);
			assert_string_equal(acts[0].error,
			    "lease expired after 3 attempts");
			assert_int_equal(queue_retry_done(q, 9, 0, JOB_DEAD,
			    0, now), 0);
		}
	}
	{
		uint64_t counts[QUEUE_ACCT_STATE_COUNT];

		queue_account_states(q, counts);
		assert_int_equal(counts[QUEUE_ACCT_BACKOFF], 1);
	}
	assert_int_equal(queue_job_get(q, 9, &(struct queue_job){ 0 }),
	    ERR_NOTFOUND);
	queue_free(&q);
}

static void
test_progress_extends_lease(void **state)
{
	struct queue *q = mkq(8, 5);
	struct queue_action acts[4];
	struct queue_job j;

	(void)state;
	add_acct(q, 1, 0);
	add_job(q, 9, 1, PRIO_USER, T0);
	assert_int_equal(tick_lease_all(q, T0, acts, 4), 1);
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_PROGRESS,
	    .job_id = 9, .attempt = 1, .at = T0 + 100000 }), 0);
	assert_int_equal(queue_job_get(q, 9, &j), 0);
	assert_int_equal(j.lease_until, T0 + 100000 + LEASE_MS);
	assert_int_equal(j.state, JOB_LEASED);
	/* Not expired at the old deadline. */
	assert_int_equal(tick(q, T0 + LEASE_MS, acts, 4), 0);
	assert_int_equal(queue_next_deadline(q, T0 + LEASE_MS), 100000);
	/* An older progress never shortens it; a stale attempt is dropped */
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_PROGRESS,
	    .job_id = 9, .attempt = 1, .at = T0 + 5 }), 0);
	assert_int_equal(queue_job_get(q, 9, &j), 0);
	assert_int_equal(j.lease_until, T0 + 100000 + LEASE_MS);
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_PROGRESS,
	    .job_id = 9, .attempt = 0, .at = T0 + 200000 }), ERR_STALE);
	/* The creation event, arriving late, is stale too. */
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_QUEUED,
	    .job_id = 9, .account_id = 1, .attempt = 0, .due_at = T0 }),
	    ERR_STALE);
	assert_int_equal(queue_job_get(q, 9, &j), 0);
	assert_int_equal(j.state, JOB_LEASED);
	/* Unknown job. */
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_PROGRESS,
	    .job_id = 77, .attempt = 1, .at = T0 }), ERR_NOTFOUND);
	/* Failed attempt re-queued by the store. */
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_FINISHED,
	    .job_id = 9, .attempt = 1, .state = JOB_QUEUED,
	    .status = ERR_IO, .due_at = T0 + 300000, .at = T0 + 290000 }), 0);
	assert_int_equal(queue_job_get(q, 9, &j), 0);
	assert_int_equal(j.state, JOB_QUEUED);
	assert_int_equal(queue_next_deadline(q, T0 + 290000), 0);
	assert_int_equal(tick(q, T0 + 290000, acts, 4), 0);
	assert_int_equal(queue_next_deadline(q, T0 + 290000), 10000);
	queue_free(&q);
}

static void
test_bad_events(void **state)
{
	static const struct proto_event bad[] = {
		{ .kind = 9, .job_id = 1, .account_id = 1 },
		{ .kind = EV_JOB_QUEUED, .job_id = 0, .account_id = 1 },
		{ .kind = EV_JOB_QUEUED, .job_id = 1, .account_id = 0 },
		{ .kind = EV_JOB_QUEUED, .job_id = 1, .account_id = 1,
		    .priority = 7 },
		{ .kind = EV_ACCOUNT_CHANGED, .account_id = 0 },
		{ .kind = EV_JOB_FINISHED, .job_id = 0 },
	};
	struct queue *q = mkq(8, 5);
	struct queue_stats st;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		assert_int_equal(ev(q, bad[i]), ERR_INVAL);
	}
	add_acct(q, 1, 0);
	add_job(q, 2, 1, PRIO_USER, T0);
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_FINISHED,
	    .job_id = 2, .state = 42 }), ERR_INVAL);
	queue_get_stats(q, &st);
	assert_int_equal(st.jobs, 1);
	queue_free(&q);
}

static void
test_account_removed(void **state)
{
	struct queue *q = mkq(8, 5);
	struct queue_action acts[4];
	struct queue_stats st;

	(void)state;
	add_acct(q, 1, 60);
	add_acct(q, 2, 60);
	add_job(q, 10, 1, PRIO_USER, T0);
	add_job(q, 11, 1, PRIO_PERIODIC, T0);
	assert_int_equal(ev(q, (struct proto_event){ .kind =
	    EV_ACCOUNT_CHANGED, .account_id = 1, .removed = true }), 0);
	assert_int_equal(ev(q, (struct proto_event){ .kind =
	    EV_ACCOUNT_CHANGED, .account_id = 99, .removed = true }), 0);
	queue_get_stats(q, &st);
	assert_int_equal(st.accounts, 1);
	assert_int_equal(st.jobs, 0);
	assert_int_equal(tick(q, T0, acts, 4), 1);
	assert_int_equal(acts[0].account_id, 2);
	/* The account vanished while its create was pending. */
	assert_int_equal(ev(q, (struct proto_event){ .kind =
	    EV_ACCOUNT_CHANGED, .account_id = 2, .removed = true }), 0);
	assert_int_equal(queue_create_done(q, &acts[0], 0, 5), ERR_NOTFOUND);
	/* Interval change re-keys the schedule. */
	add_acct(q, 3, 0);
	assert_int_equal(queue_next_deadline(q, T0), 0);
	assert_int_equal(tick(q, T0, acts, 4), 0);
	assert_int_equal(queue_next_deadline(q, T0), QUEUE_NO_DEADLINE);
	add_acct(q, 3, 30);
	assert_int_equal(tick(q, T0, acts, 4), 1);
	queue_free(&q);
}

/* Load ----------------------------------------------------------------- */

static void
test_load_replaces(void **state)
{
	struct queue *q = mkq(8, 5);
	struct proto_sched_account sa[] = { { 1, 60, T0, 0 },
		{ 2, 60, T0, 4 } };
	struct proto_job_info ji[] = { { .id = 50, .account_id = 2,
		.state = JOB_QUEUED, .due_at = T0 + 5 } };
	struct proto_reply r = { .sched_accounts = sa, .nsched_accounts = 2,
		.jobs = ji, .njobs = 1 };
	struct proto_job_info badj = { .id = 0, .account_id = 2,
		.state = JOB_QUEUED };
	struct proto_reply bad = { .jobs = &badj, .njobs = 1 };
	struct queue_action acts[4];
	struct queue_stats st;
	struct queue_job j;
	uint64_t counts[QUEUE_ACCT_STATE_COUNT];

	(void)state;
	add_acct(q, 9, 60);
	add_job(q, 90, 9, PRIO_USER, T0);
	assert_int_equal(tick_lease_all(q, T0, acts, 4), 1);
	assert_int_equal(queue_load(q, &r), 0);
	queue_check(q);
	queue_get_stats(q, &st);
	assert_int_equal(st.accounts, 2);
	assert_int_equal(st.jobs, 1);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(queue_job_get(q, 90, &j), ERR_NOTFOUND);
	assert_int_equal(queue_job_get(q, 50, &j), 0);
	assert_int_equal(j.account_id, 2);
	queue_account_states(q, counts);
	assert_int_equal(counts[QUEUE_ACCT_IDLE], 1);
	assert_int_equal(counts[QUEUE_ACCT_QUEUED], 1);
	/* A bad reply leaves the state alone. */
	assert_int_equal(queue_load(q, &bad), ERR_INVAL);
	badj.id = 3;
	badj.kind = 9;
	assert_int_equal(queue_load(q, &bad), ERR_INVAL);
	queue_check(q);
	queue_get_stats(q, &st);
	assert_int_equal(st.jobs, 1);
	assert_int_equal(queue_load(q, NULL), ERR_INVAL);
	/* An empty reply empties it. */
	assert_int_equal(queue_load(q, &(struct proto_reply){ 0 }), 0);
	queue_get_stats(q, &st);
	assert_int_equal(st.accounts + st.jobs, 0);
	assert_int_equal(queue_next_deadline(q, T0), 0);
	assert_int_equal(tick(q, T0, acts, 4), 0);
	assert_int_equal(queue_next_deadline(q, T0), QUEUE_NO_DEADLINE);
	queue_free(&q);
}

static void
test_load_keeps_cache(void **state)
{
	struct queue *q = mkq(8, 5);
	struct queue_action acts[4];
	struct proto_sched_account sa[] = { { 1, 0, 0, 0 },
		{ 2, 60, T0 - 100000, 0 } };
	struct proto_job_info ji[] = {
		{ .id = 5, .account_id = 1, .state = JOB_LEASED, .attempts = 1,
		    .lease_until = T0 + LEASE_MS },
		{ .id = 6, .account_id = 1, .state = JOB_LEASED, .attempts = 3,
		    .lease_until = T0 + 1000 },
	};
	struct proto_reply r = { .sched_accounts = sa, .nsched_accounts = 2 };
	struct queue_job j;

	(void)state;
	assert_int_equal(queue_load(q, &r), 0);
	add_job(q, 5, 1, PRIO_USER, T0);
	add_job(q, 7, 2, PRIO_USER, T0);
	assert_int_equal(tick_lease_all(q, T0, acts, 4), 2);
	add_job(q, 6, 1, PRIO_USER, T0); /* will be attempt 3 in the store */
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_PROGRESS,
	    .job_id = 5, .attempt = 1, .at = T0 + 50000 }), 0);
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_FINISHED,
	    .job_id = 7, .attempt = 1, .state = JOB_FAILED,
	    .status = ERR_AUTH, .at = T0 + 10000 }), 0);
	/* The store's reply: job 5 with its old lease, account 2 with its
	 * last success long ago, job 6 leased in an attempt we never saw. */
	r.jobs = ji;
	r.njobs = 2;
	assert_int_equal(queue_load(q, &r), 0);
	queue_check(q);
	assert_int_equal(queue_job_get(q, 5, &j), 0);
	assert_int_equal(j.leased_at, T0);
	assert_int_equal(j.lease_until, T0 + 50000 + LEASE_MS);
	assert_int_equal(queue_job_get(q, 6, &j), 0);
	assert_int_equal(j.leased_at, 0);
	assert_int_equal(j.lease_until, T0 + 1000);
	/* Account 2 is not due again until 60 s after the failure. */
	assert_int_equal(tick(q, T0 + 69999, acts, 4), 1);
	assert_int_equal(acts[0].kind, QUEUE_ACT_RETRY); /* job 6 expired */
	assert_int_equal(tick(q, T0 + 70000, acts, 4), 1);
	assert_int_equal(acts[0].kind, QUEUE_ACT_CREATE);
	assert_int_equal(acts[0].account_id, 2);
	queue_free(&q);
}

/* Random walk: every operation keeps the invariants. ------------------ */

static uint32_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return ((uint32_t)*s);
}

static void
test_random_walk(void **state)
{
	struct queue *q = mkq(4, 3);
	struct queue_action acts[16];
	uint64_t seed = 88172645463325252ULL, next_job = 1000;
	int64_t now = T0;
	size_t step, n, i;
	uint32_t r;

	(void)state;
	for (step = 0; step < 20000; step++) {
		r = rnd(&seed) % 100;
		now += rnd(&seed) % 20000;
		if (r < 10) {
			add_acct(q, 1 + rnd(&seed) % 20, rnd(&seed) % 4 * 30);
		} else if (r < 12) {
			(void)ev(q, (struct proto_event){ .kind =
			    EV_ACCOUNT_CHANGED, .account_id = 1 +
			    rnd(&seed) % 20, .removed = true });
		} else if (r < 20) {
			(void)ev(q, (struct proto_event){ .kind =
			    EV_JOB_QUEUED, .job_id = next_job++,
			    .account_id = 1 + rnd(&seed) % 20,
			    .priority = (uint8_t)(rnd(&seed) % 2),
			    .due_at = now });
		} else if (r < 40) {
			(void)ev(q, (struct proto_event){ .kind =
			    EV_JOB_FINISHED, .job_id = 1000 + rnd(&seed) %
			    (next_job - 999), .attempt = rnd(&seed) % 4,
			    .state = (uint8_t)(rnd(&seed) % 5), .at = now,
			    .due_at = now + 1000 });
		} else if (r < 50) {
			(void)ev(q, (struct proto_event){ .kind =
			    EV_JOB_PROGRESS, .job_id = 1000 + rnd(&seed) %
			    (next_job - 999), .attempt = rnd(&seed) % 4,
			    .at = now });
		} else if (r < 52) {
			struct proto_sched_account sa = { 1, 30, now, 1 };
			struct proto_reply rep = { .sched_accounts = &sa,
				.nsched_accounts = 1 };

			assert_int_equal(queue_load(q, &rep), 0);
		} else {
			queue_next_actions(q, now, rnd(&seed), acts,
			    ARRAY_LEN(acts), &n);
			queue_check(q);
			for (i = 0; i < n; i++) {
				int rv = rnd(&seed) % 5 == 0 ? ERR_IO : 0;

				switch (acts[i].kind) {
				case QUEUE_ACT_CREATE:
					(void)queue_create_done(q, &acts[i],
					    rv, next_job++);
					break;
				case QUEUE_ACT_LEASE:
					assert_int_equal(queue_lease_done(q,
					    acts[i].job_id, rv,
					    acts[i].attempt + 1,
					    acts[i].lease_until, now), 0);
					break;
				case QUEUE_ACT_RETRY:
					assert_int_equal(queue_retry_done(q,
					    acts[i].job_id, rv, acts[i].state,
					    acts[i].due_at, now), 0);
					break;
				}
				queue_check(q);
			}
		}
		queue_check(q);
	}
	queue_free(&q);
}

/* Scale ---------------------------------------------------------------- */

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static void
test_scale_50k(void **state)
{
	enum { N = 50000 };
	struct queue *q = mkq(8, 5);
	struct proto_sched_account *sa = calloc(N, sizeof(*sa));
	struct proto_job_info *ji = calloc(N, sizeof(*ji));
	struct proto_reply r = { 0 };
	struct queue_action acts[256];
	double t, t_load, t_idle = 0, t_busy = 0, t_create;
	size_t i, n, ticks = 1000;

	(void)state;
	assert_non_null(sa);
	assert_non_null(ji);
	for (i = 0; i < N; i++) {
		sa[i].id = i + 1;
		sa[i].interval_s = 300;
		sa[i].last_sync_at = T0 - (int64_t)(i * 6); /* spread */
		ji[i].id = 1000000 + i;
		ji[i].account_id = i + 1;
		ji[i].state = JOB_QUEUED;
		ji[i].due_at = T0 + 3600000 + (int64_t)i;
	}
	r.sched_accounts = sa;
	r.nsched_accounts = N;
	r.jobs = ji;
	r.njobs = N;
	t = mono_s();
	assert_int_equal(queue_load(q, &r), 0);
	t_load = mono_s() - t;
	/* Every account already has a (future) job: ticks find nothing. */
	for (i = 0; i < ticks; i++) {
		t = mono_s();
		queue_next_actions(q, T0 + (int64_t)i, 1, acts, 256, &n);
		t_idle += mono_s() - t;
		assert_int_equal(n, 0);
	}
	/* No jobs: every account due within 300 s creates over time. */
	r.jobs = NULL;
	r.njobs = 0;
	assert_int_equal(queue_load(q, &r), 0);
	t = mono_s();
	queue_next_actions(q, T0 + 300000, 1, acts, 256, &n);
	t_create = mono_s() - t;
	assert_int_equal(n, 256);
	/* Now load 50k queued due jobs, 8 inflight: the busy steady state. */
	r.jobs = ji;
	r.njobs = N;
	for (i = 0; i < N; i++) {
		ji[i].due_at = T0 + (int64_t)i;
	}
	assert_int_equal(queue_load(q, &r), 0);
	for (i = 0; i < ticks; i++) {
		int64_t now = T0 + N + (int64_t)i * 1000;
		size_t k;

		t = mono_s();
		queue_next_actions(q, now, 1, acts, 256, &n);
		for (k = 0; k < n; k++) {
			if (acts[k].kind == QUEUE_ACT_LEASE) {
				(void)queue_lease_done(q, acts[k].job_id, 0,
				    1, now + 500, now);
			} else if (acts[k].kind == QUEUE_ACT_RETRY) {
				(void)queue_retry_done(q, acts[k].job_id, 0,
				    JOB_DEAD, 0, now);
			}
		}
		t_busy += mono_s() - t;
	}
	queue_check(q);
	printf("queue scale: %d accounts: load %.1f ms; idle tick %.2f us; "
	       "tick creating 256 jobs %.1f us; busy tick (expire + lease) "
	       "%.2f us\n",
	    N, t_load * 1e3, t_idle / (double)ticks * 1e6, t_create * 1e6,
	    t_busy / (double)ticks * 1e6);
	/* Generous bound: a full scan would be ~100x slower than this. */
	assert_true(t_idle / (double)ticks < 0.001);
	free(sa);
	free(ji);
	queue_free(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_table),
		cmocka_unit_test(test_new_limits),
		cmocka_unit_test(test_periodic_creation),
		cmocka_unit_test(test_finished_updates_account),
		cmocka_unit_test(test_user_priority_first),
		cmocka_unit_test(test_one_lease_per_account),
		cmocka_unit_test(test_max_inflight),
		cmocka_unit_test(test_action_cap),
		cmocka_unit_test(test_lease_expiry),
		cmocka_unit_test(test_progress_extends_lease),
		cmocka_unit_test(test_bad_events),
		cmocka_unit_test(test_account_removed),
		cmocka_unit_test(test_load_replaces),
		cmocka_unit_test(test_load_keeps_cache),
		cmocka_unit_test(test_random_walk),
		cmocka_unit_test(test_scale_50k),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
