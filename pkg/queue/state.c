/*
 * state.c: pkg/queue's cache of accounts and jobs: the pools, their maps
 * and heaps, and the three ways the cache changes from outside: created
 * empty (queue_new), replaced by a sched.state.get reply (queue_load),
 * updated by a store.event (queue_on_event). The decisions taken on this
 * state are in actions.c.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "queue/queue_int.h"

static void
acct_setpos(void *ctx, uint32_t slot, uint32_t pos)
{
	struct queue *q = ctx;

	q->accts[slot].hpos = pos;
}

static void
job_setpos(void *ctx, uint32_t slot, uint32_t pos)
{
	struct queue *q = ctx;

	q->jobs[slot].hpos = pos;
}

void
queue_init_(struct queue *q, const struct queue_limits *lim)
{
	memset(q, 0, sizeof(*q));
	q->lim = *lim;
	queue_map_init(&q->amap);
	queue_map_init(&q->jmap);
	queue_heap_init(&q->due, acct_setpos, q);
	queue_heap_init(&q->wait, job_setpos, q);
	queue_heap_init(&q->ready, job_setpos, q);
	queue_heap_init(&q->lease, job_setpos, q);
	q->dirty = true;
}

void
queue_release_(struct queue *q)
{
	free(q->accts);
	free(q->acct_free);
	free(q->jobs);
	free(q->job_free);
	queue_map_release(&q->amap);
	queue_map_release(&q->jmap);
	queue_heap_release(&q->due);
	queue_heap_release(&q->wait);
	queue_heap_release(&q->ready);
	queue_heap_release(&q->lease);
}

/* After a struct queue is moved, its heaps must point at the new place. */
static void
queue_rebind(struct queue *q)
{
	q->due.ctx = q;
	q->wait.ctx = q;
	q->ready.ctx = q;
	q->lease.ctx = q;
}

int
queue_new(const struct queue_limits *lim, struct queue **q_r)
{
	struct queue *q;

	if (lim == NULL || lim->max_inflight == 0 || lim->lease_ms <= 0
	    || lim->max_attempts == 0) {
		return (ERR_INVAL);
	}
	q = malloc(sizeof(*q));
	if (q == NULL) {
		return (ERR_NOMEM);
	}
	queue_init_(q, lim);
	*q_r = q;
	return (0);
}

void
queue_free(struct queue **q)
{
	if (q == NULL || *q == NULL) {
		return;
	}
	queue_release_(*q);
	free(*q);
	*q = NULL;
}

/* Accounts ----------------------------------------------------------- */

bool
queue_acct_find(const struct queue *q, uint64_t id, uint32_t *slot_r)
{
	return (queue_map_get(&q->amap, id, slot_r));
}

static int
acct_grow(struct queue *q)
{
	struct queue_acctrec *a;
	uint32_t *fr;
	size_t cap = q->naccts_cap == 0 ? 64 : 2 * q->naccts_cap;

	if (cap > QUEUE_MAX_ACCOUNTS) {
		cap = QUEUE_MAX_ACCOUNTS;
	}
	if (cap <= q->naccts_cap) {
		return (ERR_TOOBIG);
	}
	a = realloc(q->accts, cap * sizeof(*a));
	if (a == NULL) {
		return (ERR_NOMEM);
	}
	q->accts = a;
	fr = realloc(q->acct_free, cap * sizeof(*fr));
	if (fr == NULL) {
		return (ERR_NOMEM);
	}
	q->acct_free = fr;
	if (queue_heap_reserve(&q->due, cap) != 0
	    || queue_map_reserve(&q->amap, cap) != 0) {
		return (ERR_NOMEM);
	}
	q->naccts_cap = cap;
	return (0);
}

/* Adds account id (not present) with default fields; *slot_r its slot. */
int
queue_acct_add(struct queue *q, uint64_t id, uint32_t *slot_r)
{
	struct queue_acctrec *a;
	uint32_t s;
	int rv;

	if (id == 0) {
		return (ERR_INVAL);
	}
	if (q->nacct_free > 0) {
		s = q->acct_free[--q->nacct_free];
	} else {
		if (q->naccts_used == q->naccts_cap) {
			rv = acct_grow(q);
			if (rv != 0) {
				return (rv);
			}
		}
		s = (uint32_t)q->naccts_used++;
	}
	a = &q->accts[s];
	memset(a, 0, sizeof(*a));
	a->id = id;
	a->jobs = QUEUE_NIL;
	queue_map_put(&q->amap, id, s);
	q->naccounts++;
	*slot_r = s;
	return (0);
}

void
queue_acct_resched(struct queue *q, uint32_t s)
{
	struct queue_acctrec *a = &q->accts[s];
	struct queue_heap_ent e;

	if (a->in_heap) {
		queue_heap_remove(&q->due, a->hpos);
		a->in_heap = false;
	}
	q->dirty = true;
	if (a->id == 0 || a->interval_s == 0 || a->nqueued > a->nbody_queued
	    || a->nbusy > a->nbody_busy || a->create_pending) {
		return;
	}
	e.k1 = a->last_sync_at + (int64_t)a->interval_s * 1000;
	e.k2 = 0;
	e.k3 = a->id;
	e.slot = s;
	queue_heap_push(&q->due, e);
	a->in_heap = true;
}

void
queue_acct_finished(struct queue *q, uint32_t s, int64_t at, bool ok)
{
	struct queue_acctrec *a = &q->accts[s];

	a->last_sync_at = at;
	if (ok) {
		a->fail_streak = 0;
	} else if (a->fail_streak < UINT32_MAX) {
		a->fail_streak++;
	}
	queue_acct_resched(q, s);
}

static void
acct_del(struct queue *q, uint32_t s)
{
	struct queue_acctrec *a = &q->accts[s];

	while (q->accts[s].jobs != QUEUE_NIL) {
		queue_job_del(q, q->accts[s].jobs);
	}
	a = &q->accts[s];
	if (a->in_heap) {
		queue_heap_remove(&q->due, a->hpos);
		a->in_heap = false;
	}
	queue_map_del(&q->amap, a->id);
	a->id = 0;
	q->acct_free[q->nacct_free++] = s;
	q->naccounts--;
	q->dirty = true;
}

/* Jobs --------------------------------------------------------------- */

bool
queue_job_find(const struct queue *q, uint64_t id, uint32_t *slot_r)
{
	return (queue_map_get(&q->jmap, id, slot_r));
}

static int
job_grow(struct queue *q)
{
	struct queue_jobrec *j;
	uint32_t *fr;
	size_t cap = q->njobs_cap == 0 ? 64 : 2 * q->njobs_cap;

	if (cap > QUEUE_MAX_JOBS) {
		cap = QUEUE_MAX_JOBS;
	}
	if (cap <= q->njobs_cap) {
		return (ERR_TOOBIG);
	}
	j = realloc(q->jobs, cap * sizeof(*j));
	if (j == NULL) {
		return (ERR_NOMEM);
	}
	q->jobs = j;
	fr = realloc(q->job_free, cap * sizeof(*fr));
	if (fr == NULL) {
		return (ERR_NOMEM);
	}
	q->job_free = fr;
	if (queue_heap_reserve(&q->wait, cap) != 0
	    || queue_heap_reserve(&q->ready, cap) != 0
	    || queue_heap_reserve(&q->lease, cap) != 0
	    || queue_map_reserve(&q->jmap, cap) != 0) {
		return (ERR_NOMEM);
	}
	q->njobs_cap = cap;
	return (0);
}

/*
 * Adds job id (not present) to account slot acct, in state QJ_FREE and
 * in no heap; the caller fills it and calls queue_job_set().
 */
int
queue_job_add(struct queue *q, uint64_t id, uint32_t acct, uint32_t *slot_r)
{
	struct queue_jobrec *j;
	uint32_t s;
	int rv;

	if (id == 0) {
		return (ERR_INVAL);
	}
	if (q->njob_free > 0) {
		s = q->job_free[--q->njob_free];
	} else {
		if (q->njobs_used == q->njobs_cap) {
			rv = job_grow(q);
			if (rv != 0) {
				return (rv);
			}
		}
		s = (uint32_t)q->njobs_used++;
	}
	j = &q->jobs[s];
	memset(j, 0, sizeof(*j));
	j->id = id;
	j->acct = acct;
	j->acct_next = q->accts[acct].jobs;
	q->accts[acct].jobs = s;
	queue_map_put(&q->jmap, id, s);
	q->njobs++;
	*slot_r = s;
	return (0);
}

/* Moves job slot s to state st: counters, heap membership, account. */
void
queue_job_set(struct queue *q, uint32_t s, enum queue_jstate st)
{
	struct queue_jobrec *j = &q->jobs[s];
	struct queue_acctrec *a = &q->accts[j->acct];
	struct queue_heap_ent e;
	uint32_t body = j->kind == JOB_KIND_FETCH_BODY;

	switch (j->st) {
	case QJ_QUEUED:
		a->nqueued--;
		a->nbody_queued -= body;
		q->nqueued--;
		break;
	case QJ_LEASING:
	case QJ_LEASED:
	case QJ_RETRYING:
		a->nbusy--;
		a->nbody_busy -= body;
		q->nbusy--;
		break;
	case QJ_FREE:
		break;
	}
	switch (j->heap) {
	case QH_WAIT:
		queue_heap_remove(&q->wait, j->hpos);
		break;
	case QH_READY:
		queue_heap_remove(&q->ready, j->hpos);
		break;
	case QH_LEASE:
		queue_heap_remove(&q->lease, j->hpos);
		break;
	default:
		break;
	}
	j->heap = QH_NONE;
	j->st = (uint8_t)st;
	e.k2 = 0;
	e.k3 = j->id;
	e.slot = s;
	switch (st) {
	case QJ_QUEUED:
		a->nqueued++;
		a->nbody_queued += body;
		q->nqueued++;
		e.k1 = j->due_at;
		queue_heap_push(&q->wait, e);
		j->heap = QH_WAIT;
		break;
	case QJ_LEASED:
		a->nbusy++;
		a->nbody_busy += body;
		q->nbusy++;
		e.k1 = j->lease_until;
		queue_heap_push(&q->lease, e);
		j->heap = QH_LEASE;
		break;
	case QJ_LEASING:
	case QJ_RETRYING:
		a->nbusy++;
		a->nbody_busy += body;
		q->nbusy++;
		break;
	case QJ_FREE:
		break;
	}
	queue_acct_resched(q, j->acct);
}

void
queue_job_del(struct queue *q, uint32_t s)
{
	struct queue_jobrec *j = &q->jobs[s];
	uint32_t *pp;

	for (pp = &q->accts[j->acct].jobs; *pp != QUEUE_NIL;
	     pp = &q->jobs[*pp].acct_next) {
		if (*pp == s) {
			*pp = j->acct_next;
			break;
		}
	}
	queue_map_del(&q->jmap, j->id);
	queue_job_set(q, s, QJ_FREE);
	j->id = 0;
	q->job_free[q->njob_free++] = s;
	q->njobs--;
}

void
queue_job_view(const struct queue *q, uint32_t s, struct queue_job *v)
{
	const struct queue_jobrec *j = &q->jobs[s];

	v->id = j->id;
	v->account_id = q->accts[j->acct].id;
	v->kind = j->kind;
	v->priority = j->priority;
	v->state = j->st == QJ_QUEUED ? JOB_QUEUED : JOB_LEASED;
	v->attempt = j->attempt;
	v->due_at = j->due_at;
	v->lease_until = j->lease_until;
	v->leased_at = j->leased_at;
}

int
queue_job_get(const struct queue *q, uint64_t id, struct queue_job *job_r)
{
	uint32_t s;

	if (!queue_job_find(q, id, &s)) {
		return (ERR_NOTFOUND);
	}
	queue_job_view(q, s, job_r);
	return (0);
}

/* Load ---------------------------------------------------------------- */

static int
acct_get_or_add(struct queue *q, uint64_t id, uint32_t *slot_r)
{
	if (queue_acct_find(q, id, slot_r)) {
		return (0);
	}
	return (queue_acct_add(q, id, slot_r));
}

static int
load_into(struct queue *t, const struct proto_reply *r)
{
	const struct proto_sched_account *sa;
	const struct proto_job_info *ji;
	struct queue_jobrec *j;
	uint32_t as, js;
	size_t i;
	int rv;

	for (i = 0; i < r->nsched_accounts; i++) {
		sa = &r->sched_accounts[i];
		rv = acct_get_or_add(t, sa->id, &as);
		if (rv != 0) {
			return (rv);
		}
		t->accts[as].interval_s = sa->interval_s;
		t->accts[as].last_sync_at = sa->last_sync_at;
		t->accts[as].fail_streak = sa->fail_streak;
		queue_acct_resched(t, as);
	}
	for (i = 0; i < r->njobs; i++) {
		ji = &r->jobs[i];
		if (ji->state != JOB_QUEUED && ji->state != JOB_LEASED) {
			continue;
		}
		if (ji->kind == JOB_KIND_WATCH) {
			continue; /* queue_watch's (watch.c) */
		}
		if (ji->kind > JOB_KIND_FETCH_BODY
		    || ji->priority > PRIO_USER) {
			return (ERR_INVAL);
		}
		rv = acct_get_or_add(t, ji->account_id, &as);
		if (rv != 0) {
			return (rv);
		}
		if (queue_job_find(t, ji->id, &js)) {
			queue_job_del(t, js);
		}
		rv = queue_job_add(t, ji->id, as, &js);
		if (rv != 0) {
			return (rv);
		}
		j = &t->jobs[js];
		j->kind = ji->kind;
		j->priority = ji->priority;
		j->attempt = ji->attempts;
		j->due_at = ji->due_at;
		j->lease_until = ji->lease_until;
		queue_job_set(
		    t, js, ji->state == JOB_QUEUED ? QJ_QUEUED : QJ_LEASED);
	}
	return (0);
}

/*
 * Keeps what the cache knew and the store's reply cannot say: an account's
 * later last_sync_at (the store may record only successes, and only to
 * the second), and for a job leased in the same attempt, when we leased
 * it and the later of the two lease deadlines (progress events renew it).
 */
static void
merge_cache(struct queue *t, const struct queue *old)
{
	const struct queue_jobrec *oj;
	struct queue_jobrec *j;
	uint32_t s, os;
	size_t i;

	for (i = 0; i < t->naccts_used; i++) {
		if (t->accts[i].id == 0
		    || !queue_acct_find(old, t->accts[i].id, &os)) {
			continue;
		}
		if (old->accts[os].last_sync_at > t->accts[i].last_sync_at) {
			t->accts[i].last_sync_at = old->accts[os].last_sync_at;
			queue_acct_resched(t, (uint32_t)i);
		}
	}
	for (i = 0; i < t->njobs_used; i++) {
		j = &t->jobs[i];
		if (j->id == 0 || j->st != QJ_LEASED
		    || !queue_job_find(old, j->id, &os)) {
			continue;
		}
		oj = &old->jobs[os];
		if (oj->attempt != j->attempt
		    || (oj->st != QJ_LEASED && oj->st != QJ_RETRYING)) {
			continue;
		}
		s = (uint32_t)i;
		j->leased_at = oj->leased_at;
		if (oj->lease_until > j->lease_until) {
			j->lease_until = oj->lease_until;
			queue_job_set(t, s, QJ_LEASED);
		}
	}
}

int
queue_load(struct queue *q, const struct proto_reply *reply)
{
	struct queue t;
	int rv;

	if (reply == NULL) {
		return (ERR_INVAL);
	}
	queue_init_(&t, &q->lim);
	rv = load_into(&t, reply);
	if (rv != 0) {
		goto fail;
	}
	merge_cache(&t, q);
	queue_release_(q);
	*q = t;
	queue_rebind(q);
	q->dirty = true;
	return (0);
fail:
	queue_release_(&t);
	return (rv);
}

/* Events ------------------------------------------------------------- */

static int
ev_job_queued(
    struct queue *q, const struct proto_event *ev, uint32_t js, bool known)
{
	struct queue_jobrec *j;
	uint32_t as;
	int rv;

	if (ev->priority > PRIO_USER) {
		return (ERR_INVAL);
	}
	if (!known) {
		rv = acct_get_or_add(q, ev->account_id, &as);
		if (rv != 0) {
			return (rv);
		}
		rv = queue_job_add(q, ev->job_id, as, &js);
		if (rv != 0) {
			return (rv);
		}
		q->jobs[js].kind = ev->job_kind <= JOB_KIND_FETCH_BODY
		    ? ev->job_kind
		    : JOB_KIND_SYNC;
	}
	j = &q->jobs[js];
	j->priority = ev->priority;
	j->attempt = ev->attempt;
	j->due_at = ev->due_at;
	j->lease_until = 0;
	j->leased_at = 0;
	queue_job_set(q, js, QJ_QUEUED);
	return (0);
}

static int
ev_job_progress(struct queue *q, const struct proto_event *ev, uint32_t js)
{
	struct queue_jobrec *j = &q->jobs[js];
	int64_t until = ev->at + q->lim.lease_ms;

	if (j->st == QJ_LEASED
	    || (j->st == QJ_QUEUED && ev->attempt > j->attempt)) {
		/* A queued job with a newer attempt: our cache is behind. */
		if (j->st == QJ_QUEUED) {
			j->leased_at = 0;
		}
		if (until > j->lease_until || ev->attempt > j->attempt) {
			j->lease_until = until;
		}
		j->attempt = ev->attempt;
		queue_job_set(q, js, QJ_LEASED);
		return (0);
	}
	return (ERR_BADSTATE);
}

static int
ev_job_finished(struct queue *q, const struct proto_event *ev, uint32_t js)
{
	struct queue_jobrec *j = &q->jobs[js];
	uint32_t as = j->acct;

	switch (ev->state) {
	case JOB_QUEUED:
		j->attempt = ev->attempt;
		j->due_at = ev->due_at;
		j->lease_until = 0;
		queue_job_set(q, js, QJ_QUEUED);
		return (0);
	case JOB_DONE:
	case JOB_FAILED:
	case JOB_DEAD:
		if (j->kind == JOB_KIND_FETCH_BODY
		    || j->kind == JOB_KIND_DRAIN) {
			queue_job_del(q, js); /* not a sync: schedule kept */
			return (0);
		}
		queue_job_del(q, js);
		queue_acct_finished(q, as, ev->at, ev->state == JOB_DONE);
		return (0);
	default:
		return (ERR_INVAL);
	}
}

static int
ev_account_changed(struct queue *q, const struct proto_event *ev)
{
	uint32_t as;
	int rv;

	if (ev->removed) {
		if (queue_acct_find(q, ev->account_id, &as)) {
			acct_del(q, as);
		}
		return (0);
	}
	rv = acct_get_or_add(q, ev->account_id, &as);
	if (rv != 0) {
		return (rv);
	}
	q->accts[as].interval_s = ev->interval_s;
	queue_acct_resched(q, as);
	return (0);
}

int
queue_on_event(struct queue *q, const struct proto_event *ev,
    struct queue_job *job_r, bool *known_r)
{
	uint32_t js = 0;
	bool known = false;
	uint8_t st;

	if (known_r != NULL) {
		*known_r = false;
	}
	if (ev->kind == EV_ACCOUNT_CHANGED) {
		if (ev->account_id == 0) {
			return (ERR_INVAL);
		}
		return (ev_account_changed(q, ev));
	}
	if (ev->kind > EV_ACCOUNT_CHANGED || ev->job_id == 0) {
		return (ERR_INVAL);
	}
	known = queue_job_find(q, ev->job_id, &js);
	if (known) {
		if (job_r != NULL) {
			queue_job_view(q, js, job_r);
		}
		if (known_r != NULL) {
			*known_r = true;
		}
		st = q->jobs[js].st;
		if (ev->attempt < q->jobs[js].attempt) {
			return (ERR_STALE);
		}
		if (st == QJ_LEASING || st == QJ_RETRYING) {
			return (ERR_BADSTATE); /* our own request settles it */
		}
	}
	switch (ev->kind) {
	case EV_JOB_QUEUED:
		if (!known && ev->account_id == 0) {
			return (ERR_INVAL);
		}
		return (ev_job_queued(q, ev, js, known));
	case EV_JOB_PROGRESS:
		return (known ? ev_job_progress(q, ev, js) : ERR_NOTFOUND);
	default:
		return (known ? ev_job_finished(q, ev, js) : ERR_NOTFOUND);
	}
}

/* Debug -------------------------------------------------------------- */

void
queue_check(const struct queue *q)
{
#ifndef NDEBUG
	size_t i, na = 0, nj = 0, nq = 0, nb = 0;
	uint32_t s, cq, cb, bq, bb;
	const struct queue_acctrec *a;
	const struct queue_jobrec *j;

	for (i = 0; i < q->naccts_used; i++) {
		a = &q->accts[i];
		if (a->id == 0) {
			continue;
		}
		na++;
		assert(queue_map_get(&q->amap, a->id, &s) && s == i);
		cq = cb = bq = bb = 0;
		for (s = a->jobs; s != QUEUE_NIL; s = q->jobs[s].acct_next) {
			j = &q->jobs[s];
			assert(j->id != 0 && j->acct == i);
			if (j->st == QJ_QUEUED) {
				cq++;
				bq += j->kind == JOB_KIND_FETCH_BODY;
			} else {
				cb++;
				bb += j->kind == JOB_KIND_FETCH_BODY;
			}
		}
		assert(cq == a->nqueued && cb == a->nbusy);
		assert(bq == a->nbody_queued && bb == a->nbody_busy);
		assert(a->in_heap
		    == (a->interval_s > 0 && cq + cb == bq + bb
		        && !a->create_pending));
		if (a->in_heap) {
			assert(q->due.v[a->hpos].slot == i);
		}
	}
	for (i = 0; i < q->njobs_used; i++) {
		j = &q->jobs[i];
		if (j->id == 0) {
			continue;
		}
		nj++;
		assert(queue_map_get(&q->jmap, j->id, &s) && s == i);
		if (j->st == QJ_QUEUED) {
			nq++;
			assert(j->heap == QH_WAIT || j->heap == QH_READY);
		} else {
			nb++;
			assert(j->heap
			    == (j->st == QJ_LEASED ? QH_LEASE : QH_NONE));
		}
		if (j->heap == QH_WAIT) {
			assert(q->wait.v[j->hpos].slot == i);
		} else if (j->heap == QH_READY) {
			assert(q->ready.v[j->hpos].slot == i);
		} else if (j->heap == QH_LEASE) {
			assert(q->lease.v[j->hpos].slot == i);
		}
	}
	assert(na == q->naccounts && na == q->amap.n);
	assert(nj == q->njobs && nj == q->jmap.n);
	assert(nq == q->nqueued && nb == q->nbusy);
	assert(q->wait.n + q->ready.n == nq);
#else
	(void)q;
#endif
}
