/*
 * queue_body_test.c: pkg/queue's rule for fetch_body jobs. They form a
 * lane of their own per account: one busy at a time, leased beside the
 * account's sync job (never waiting behind a long sync, never holding
 * one back), and their ends leave the periodic schedule alone. The kind
 * of a new job comes with its EV_JOB_QUEUED event or with a load.
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
#include "queue/queue.h"
#include "queue/queue_int.h"

#define T0 1700000000000LL
#define LEASE_MS 120000

static struct queue *
mkq(uint32_t max_inflight)
{
	struct queue_limits lim = { max_inflight, LEASE_MS, 5 };
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
add_job(struct queue *q, uint64_t id, uint64_t acct, uint8_t kind,
    int64_t due)
{
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_QUEUED,
	    .job_id = id, .account_id = acct, .priority = PRIO_USER,
	    .state = JOB_QUEUED, .due_at = due, .at = due,
	    .job_kind = kind }), 0);
}

/* Ticks and leases what is proposed; returns how many were leased and
 * their ids in ids[]. */
static size_t
lease_tick(struct queue *q, int64_t now, uint64_t *ids, size_t cap)
{
	struct queue_action acts[16];
	size_t n = 0, i, k = 0;

	queue_next_actions(q, now, 7, acts, ARRAY_LEN(acts), &n);
	queue_check(q);
	for (i = 0; i < n; i++) {
		if (acts[i].kind != QUEUE_ACT_LEASE) {
			continue;
		}
		assert_int_equal(queue_lease_done(q, acts[i].job_id, 0,
		    acts[i].attempt + 1, now + LEASE_MS, now), 0);
		queue_check(q);
		if (k < cap) {
			ids[k] = acts[i].job_id;
		}
		k++;
	}
	return (k);
}

static void
test_body_beside_sync(void **state)
{
	struct queue *q = mkq(10);
	struct queue_job j;
	uint64_t ids[4];

	(void)state;
	assert_int_equal(ev(q, (struct proto_event){ .kind =
	    EV_ACCOUNT_CHANGED, .account_id = 1, .interval_s = 300 }), 0);
	/* A long sync runs. */
	add_job(q, 10, 1, JOB_KIND_SYNC, T0);
	assert_int_equal(lease_tick(q, T0, ids, 4), 1);
	assert_int_equal(ids[0], 10);
	/* A body fetch does not wait behind it... */
	add_job(q, 11, 1, JOB_KIND_FETCH_BODY, T0 + 1);
	assert_int_equal(queue_job_get(q, 11, &j), 0);
	assert_int_equal(j.kind, JOB_KIND_FETCH_BODY);
	assert_int_equal(lease_tick(q, T0 + 1, ids, 4), 1);
	assert_int_equal(ids[0], 11);
	/* ...but a second body fetch waits for the first. */
	add_job(q, 12, 1, JOB_KIND_FETCH_BODY, T0 + 2);
	assert_int_equal(lease_tick(q, T0 + 2, ids, 4), 0);
	/* And another sync still waits for the sync. */
	add_job(q, 13, 1, JOB_KIND_SYNC, T0 + 2);
	assert_int_equal(lease_tick(q, T0 + 3, ids, 4), 0);

	/* The first body ends (failed): the next one goes, the account's
	 * schedule is untouched. */
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_FINISHED,
	    .job_id = 11, .account_id = 1, .state = JOB_FAILED, .attempt = 1,
	    .at = T0 + 4 }), 0);
	assert_int_equal(q->accts[0].fail_streak, 0);
	assert_int_equal(q->accts[0].last_sync_at, 0);
	assert_int_equal(lease_tick(q, T0 + 4, ids, 4), 1);
	assert_int_equal(ids[0], 12);

	/* The sync ends: the queued sync goes while body 12 runs. */
	assert_int_equal(ev(q, (struct proto_event){ .kind = EV_JOB_FINISHED,
	    .job_id = 10, .account_id = 1, .state = JOB_DONE, .attempt = 1,
	    .at = T0 + 5 }), 0);
	assert_int_equal(q->accts[0].last_sync_at, T0 + 5);
	assert_int_equal(lease_tick(q, T0 + 5, ids, 4), 1);
	assert_int_equal(ids[0], 13);
	queue_free(&q);
}

static void
test_body_keeps_schedule(void **state)
{
	struct queue *q = mkq(10);
	struct queue_action acts[8];
	uint64_t ids[4];
	size_t n = 0;

	(void)state;
	assert_int_equal(ev(q, (struct proto_event){ .kind =
	    EV_ACCOUNT_CHANGED, .account_id = 2, .interval_s = 60 }), 0);
	/* A queued (backing-off) body fetch does not stop the periodic
	 * sync from being created when it is due. */
	add_job(q, 20, 2, JOB_KIND_FETCH_BODY, T0 + 3600000);
	queue_next_actions(q, T0 + 61000, 7, acts, ARRAY_LEN(acts), &n);
	queue_check(q);
	assert_int_equal(n, 1);
	assert_int_equal(acts[0].kind, QUEUE_ACT_CREATE);
	assert_int_equal(acts[0].job_kind, JOB_KIND_SYNC);
	assert_int_equal(queue_create_done(q, &acts[0], 0, 21), 0);
	queue_check(q);
	assert_int_equal(lease_tick(q, T0 + 61000, ids, 4), 1);
	assert_int_equal(ids[0], 21);
	/* A body job leased and then dead after its lease: schedule kept. */
	assert_int_equal(lease_tick(q, T0 + 3600000, ids, 4), 1);
	assert_int_equal(ids[0], 20);
	assert_int_equal(queue_retry_done(q, 20, 0, JOB_DEAD, 0, T0 + 3700000),
	    0);
	queue_check(q);
	assert_int_equal(q->accts[0].fail_streak, 0);
	queue_free(&q);
}

static void
test_body_load(void **state)
{
	struct proto_job_info jobs[3];
	struct proto_sched_account acct;
	struct proto_reply r;
	struct queue *q = mkq(10);
	struct queue_job j;
	uint64_t ids[4];

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(jobs, 0, sizeof(jobs));
	memset(&acct, 0, sizeof(acct));
	acct.id = 3;
	acct.interval_s = 300;
	jobs[0] = (struct proto_job_info){ .id = 30, .account_id = 3,
		.kind = JOB_KIND_SYNC, .state = JOB_LEASED, .attempts = 1,
		.lease_until = T0 + LEASE_MS };
	jobs[1] = (struct proto_job_info){ .id = 31, .account_id = 3,
		.kind = JOB_KIND_FETCH_BODY, .state = JOB_QUEUED,
		.priority = PRIO_USER, .due_at = T0 };
	jobs[2] = (struct proto_job_info){ .id = 32, .account_id = 3,
		.kind = JOB_KIND_FETCH_BODY, .state = JOB_QUEUED,
		.priority = PRIO_USER, .due_at = T0 };
	r.sched_accounts = &acct;
	r.nsched_accounts = 1;
	r.jobs = jobs;
	r.njobs = 3;
	assert_int_equal(queue_load(q, &r), 0);
	queue_check(q);
	assert_int_equal(queue_job_get(q, 31, &j), 0);
	assert_int_equal(j.kind, JOB_KIND_FETCH_BODY);
	assert_int_equal(lease_tick(q, T0, ids, 4), 1);
	assert_int_equal(ids[0], 31);
	queue_free(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_beside_sync),
		cmocka_unit_test(test_body_keeps_schedule),
		cmocka_unit_test(test_body_load),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
