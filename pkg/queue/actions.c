/*
 * actions.c: pkg/queue's decisions. queue_next_actions() turns the cached
 * state and the time into a bounded list of CREATE / LEASE / RETRY
 * actions; the *_done() calls fold the store's answers back in;
 * queue_next_deadline() tells the loop how long it may sleep.
 *
 * Each tick costs O((actions + due jobs + blocked jobs) log n): expired
 * leases, due accounts and due jobs come off the tops of heaps. A due job
 * whose account is busy is "blocked"; there are at most a few per busy
 * account, and busy accounts are bounded by the leases in flight, so
 * skipping them stays cheap.
 */
#include <stdio.h>

#include "base/base.h"
#include "queue/queue_int.h"

const char *
queue_account_state_name(enum queue_account_state s)
{
	switch (s) {
	case QUEUE_ACCT_IDLE:
		return ("idle");
	case QUEUE_ACCT_QUEUED:
		return ("queued");
	case QUEUE_ACCT_RUNNING:
		return ("running");
	case QUEUE_ACCT_BACKOFF:
		return ("backoff");
	default:
		return ("unknown");
	}
}

const char *
queue_action_kind_name(enum queue_action_kind k)
{
	switch (k) {
	case QUEUE_ACT_CREATE:
		return ("create");
	case QUEUE_ACT_LEASE:
		return ("lease");
	case QUEUE_ACT_RETRY:
		return ("retry");
	default:
		return ("unknown");
	}
}

/* A per-job random number from the caller's one: splitmix64. */
static uint32_t
mix_rand(uint32_t rand32, uint64_t id, uint32_t attempt)
{
	uint64_t z = ((uint64_t)rand32 << 32 | attempt)
	    ^ (id * 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return ((uint32_t)(z >> 32));
}

static void
act_init(struct queue_action *a, enum queue_action_kind k)
{
	*a = (struct queue_action) { .kind = k };
}

/* RETRY for every expired lease (oldest first). */
static size_t
next_retries(struct queue *q, int64_t now, uint32_t rand32,
    struct queue_action *acts, size_t n, size_t cap)
{
	const struct queue_heap_ent *top;
	struct queue_jobrec *j;
	struct queue_action *a;
	uint32_t s;

	while (n < cap && (top = queue_heap_top(&q->lease)) != NULL
	    && top->k1 <= now) {
		s = top->slot;
		j = &q->jobs[s];
		a = &acts[n++];
		act_init(a, QUEUE_ACT_RETRY);
		a->job_id = j->id;
		a->account_id = q->accts[j->acct].id;
		a->job_kind = j->kind;
		a->priority = j->priority;
		a->attempt = j->attempt;
		if (j->attempt < q->lim.max_attempts) {
			a->state = JOB_QUEUED;
			a->due_at = now
			    + queue_backoff_ms(j->attempt,
			        mix_rand(rand32, j->id, j->attempt));
			(void)snprintf(a->error, sizeof(a->error),
			    "lease expired (attempt %u)", j->attempt);
		} else {
			a->state = JOB_DEAD;
			(void)snprintf(a->error, sizeof(a->error),
			    "lease expired after %u attempts", j->attempt);
		}
		queue_job_set(q, s, QJ_RETRYING);
	}
	return (n);
}

/* CREATE a periodic sync for every account whose interval elapsed. */
static size_t
next_creates(struct queue *q, int64_t now, struct queue_action *acts, size_t n,
    size_t cap)
{
	const struct queue_heap_ent *top;
	struct queue_acctrec *ac;
	struct queue_action *a;
	uint32_t s;

	while (n < cap && (top = queue_heap_top(&q->due)) != NULL
	    && top->k1 <= now) {
		s = top->slot;
		ac = &q->accts[s];
		a = &acts[n++];
		act_init(a, QUEUE_ACT_CREATE);
		a->account_id = ac->id;
		a->job_kind = JOB_KIND_SYNC;
		a->priority = PRIO_PERIODIC;
		a->state = JOB_QUEUED;
		a->due_at = now;
		ac->create_pending = true;
		queue_acct_resched(q, s); /* leaves the due heap */
	}
	return (n);
}

/* LEASE due queued jobs, user first, one busy job per account. */
static size_t
next_leases(struct queue *q, int64_t now, struct queue_action *acts, size_t n,
    size_t cap)
{
	const struct queue_heap_ent *top;
	struct queue_heap_ent e;
	struct queue_jobrec *j;
	struct queue_acctrec *ac;
	struct queue_action *a;
	uint32_t s, blocked = QUEUE_NIL;

	/* Due jobs move from the wait heap (by time) to the ready heap (by
	 * priority, then due time, then id). */
	while ((top = queue_heap_top(&q->wait)) != NULL && top->k1 <= now) {
		s = top->slot;
		j = &q->jobs[s];
		queue_heap_remove(&q->wait, j->hpos);
		e.k1 = -(int64_t)j->priority;
		e.k2 = j->due_at;
		e.k3 = j->id;
		e.slot = s;
		queue_heap_push(&q->ready, e);
		j->heap = QH_READY;
	}
	while (n < cap && q->nbusy < q->lim.max_inflight
	    && (top = queue_heap_top(&q->ready)) != NULL) {
		s = top->slot;
		j = &q->jobs[s];
		queue_heap_remove(&q->ready, j->hpos);
		j->heap = QH_NONE;
		ac = &q->accts[j->acct];
		if (j->kind == JOB_KIND_FETCH_BODY
		        ? ac->nbody_busy > 0
		        : ac->nbusy > ac->nbody_busy) {
			/* Busy in its lane: park it on a list threaded
			 * through hpos. */
			j->hpos = blocked;
			blocked = s;
			continue;
		}
		a = &acts[n++];
		act_init(a, QUEUE_ACT_LEASE);
		a->job_id = j->id;
		a->account_id = q->accts[j->acct].id;
		a->job_kind = j->kind;
		a->priority = j->priority;
		a->state = JOB_LEASED;
		a->attempt = j->attempt;
		a->due_at = j->due_at;
		a->lease_until = now + q->lim.lease_ms;
		queue_job_set(q, s, QJ_LEASING);
	}
	while (blocked != QUEUE_NIL) {
		s = blocked;
		j = &q->jobs[s];
		blocked = j->hpos;
		e.k1 = -(int64_t)j->priority;
		e.k2 = j->due_at;
		e.k3 = j->id;
		e.slot = s;
		queue_heap_push(&q->ready, e);
		j->heap = QH_READY;
	}
	return (n);
}

void
queue_next_actions(struct queue *q, int64_t now, uint32_t rand32,
    struct queue_action *acts, size_t cap, size_t *n_r)
{
	size_t n = 0;

	n = next_retries(q, now, rand32, acts, n, cap);
	n = next_creates(q, now, acts, n, cap);
	n = next_leases(q, now, acts, n, cap);
	/* A full list may have left work behind: ask to be called again. */
	q->dirty = n == cap;
	*n_r = n;
}

static int64_t
until(int64_t at, int64_t now)
{
	return (at <= now ? 0 : at - now);
}

int64_t
queue_next_deadline(const struct queue *q, int64_t now)
{
	const struct queue_heap_ent *top;
	int64_t d = QUEUE_NO_DEADLINE, t;

	if (q->dirty) {
		return (0);
	}
	top = queue_heap_top(&q->lease);
	if (top != NULL && (t = until(top->k1, now)) < d) {
		d = t;
	}
	top = queue_heap_top(&q->due);
	if (top != NULL && (t = until(top->k1, now)) < d) {
		d = t;
	}
	/* Blocked ready jobs wait for an event or an outcome, which sets
	 * dirty; only the not-yet-due ones have a deadline. */
	top = queue_heap_top(&q->wait);
	if (top != NULL && (t = until(top->k1, now)) < d) {
		d = t;
	}
	return (d);
}

/* Outcomes ------------------------------------------------------------ */

int
queue_create_done(
    struct queue *q, const struct queue_action *a, int rv, uint64_t job_id)
{
	struct queue_jobrec *j;
	uint32_t as, js;
	int err;

	if (!queue_acct_find(q, a->account_id, &as)) {
		return (ERR_NOTFOUND);
	}
	q->accts[as].create_pending = false;
	if (rv != 0 || job_id == 0) {
		queue_acct_resched(q, as);
		return (0);
	}
	if (queue_job_find(q, job_id, &js)) {
		/* Joined a job we already knew (or its event came first). */
		if (q->jobs[js].st == QJ_QUEUED
		    && q->jobs[js].priority < a->priority) {
			q->jobs[js].priority = a->priority;
			queue_job_set(q, js, QJ_QUEUED);
		}
		queue_acct_resched(q, as);
		return (0);
	}
	err = queue_job_add(q, job_id, as, &js);
	if (err != 0) {
		queue_acct_resched(q, as);
		return (err);
	}
	j = &q->jobs[js];
	j->kind = a->job_kind;
	j->priority = a->priority;
	j->due_at = a->due_at;
	queue_job_set(q, js, QJ_QUEUED);
	return (0);
}

int
queue_lease_done(struct queue *q, uint64_t job_id, int rv, uint32_t attempt,
    int64_t lease_until, int64_t now)
{
	struct queue_jobrec *j;
	uint32_t js;

	if (!queue_job_find(q, job_id, &js)) {
		return (ERR_NOTFOUND);
	}
	j = &q->jobs[js];
	if (j->st != QJ_LEASING) {
		return (ERR_BADSTATE);
	}
	if (rv != 0) {
		queue_job_set(q, js, QJ_QUEUED);
		return (0);
	}
	j->attempt = attempt;
	j->lease_until = lease_until;
	j->leased_at = now;
	queue_job_set(q, js, QJ_LEASED);
	return (0);
}

int
queue_retry_done(struct queue *q, uint64_t job_id, int rv, uint8_t state,
    int64_t due_at, int64_t now)
{
	struct queue_jobrec *j;
	uint32_t js, as;

	if (!queue_job_find(q, job_id, &js)) {
		return (ERR_NOTFOUND);
	}
	j = &q->jobs[js];
	if (rv != 0) {
		if (j->st == QJ_RETRYING) {
			queue_job_set(q, js, QJ_LEASED);
		}
		return (0);
	}
	switch (state) {
	case JOB_QUEUED:
		j->due_at = due_at;
		j->lease_until = 0;
		queue_job_set(q, js, QJ_QUEUED);
		return (0);
	case JOB_DEAD:
		as = j->acct;
		if (j->kind == JOB_KIND_FETCH_BODY) {
			queue_job_del(q, js); /* not a sync: schedule kept */
			return (0);
		}
		queue_job_del(q, js);
		queue_acct_finished(q, as, now, false);
		return (0);
	default:
		return (ERR_INVAL);
	}
}

void
queue_get_stats(const struct queue *q, struct queue_stats *st_r)
{
	st_r->accounts = q->naccounts;
	st_r->jobs = q->njobs;
	st_r->queued = q->nqueued;
	st_r->inflight = q->nbusy;
}

void
queue_account_states(const struct queue *q, uint64_t *counts)
{
	const struct queue_acctrec *a;
	size_t i;

	for (i = 0; i < QUEUE_ACCT_STATE_COUNT; i++) {
		counts[i] = 0;
	}
	for (i = 0; i < q->naccts_used; i++) {
		a = &q->accts[i];
		if (a->id == 0) {
			continue;
		}
		if (a->nbusy > 0) {
			counts[QUEUE_ACCT_RUNNING]++;
		} else if (a->nqueued > 0 || a->create_pending) {
			counts[QUEUE_ACCT_QUEUED]++;
		} else if (a->fail_streak > 0) {
			counts[QUEUE_ACCT_BACKOFF]++;
		} else {
			counts[QUEUE_ACCT_IDLE]++;
		}
	}
}
