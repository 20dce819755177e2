/*
 * watch.c: the scheduler's bookkeeping of watch jobs (JOB_KIND_WATCH),
 * apart from the sync queue of state.c/actions.c because the rules
 * differ: exactly one watch job per account, created by the scheduler
 * when the account appears and re-created (with backoff and jitter) when
 * it ends; it does not count against max_inflight and never blocks the
 * account's other jobs. Leases expire and are retried like any job's.
 *
 * Pure like the rest of pkg/queue (time and randomness passed in). The
 * records sit in one array scanned linearly by next_actions/deadline:
 * O(accounts) per call, fine for the thousands of accounts one watcher
 * holds; an index can come later.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "queue/queue.h"

enum watch_st {
	W_NONE = 0, /* no job: create at next_at */
	W_CREATING,
	W_QUEUED,
	W_LEASING,
	W_LEASED,
	W_RETRYING
};

struct watch_rec {
	uint64_t account_id;
	uint64_t job_id;
	uint8_t st;
	uint32_t attempt;
	uint32_t fails; /* watch jobs that ended not DONE, in a row */
	int64_t due_at;
	int64_t lease_until;
	int64_t next_at; /* W_NONE: when to create */
};

struct queue_watch {
	struct queue_limits lim;
	struct watch_rec *v;
	size_t n, cap;
};

int
queue_watch_new(const struct queue_limits *lim, struct queue_watch **w_r)
{
	struct queue_watch *w;

	if (lim == NULL || lim->lease_ms <= 0 || lim->max_attempts == 0) {
		return (ERR_INVAL);
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		return (ERR_NOMEM);
	}
	w->lim = *lim;
	*w_r = w;
	return (ERR_OK);
}

void
queue_watch_free(struct queue_watch **w)
{
	if (w == NULL || *w == NULL) {
		return;
	}
	free((*w)->v);
	free(*w);
	*w = NULL;
}

static struct watch_rec *
rec_by_account(struct queue_watch *w, uint64_t account_id)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		if (w->v[i].account_id == account_id) {
			return (&w->v[i]);
		}
	}
	return (NULL);
}

static struct watch_rec *
rec_by_job(struct queue_watch *w, uint64_t job_id)
{
	size_t i;

	if (job_id == 0) {
		return (NULL);
	}
	for (i = 0; i < w->n; i++) {
		if (w->v[i].job_id == job_id) {
			return (&w->v[i]);
		}
	}
	return (NULL);
}

static int
rec_add(struct queue_watch *w, uint64_t account_id, int64_t now,
    struct watch_rec **r_r)
{
	struct watch_rec *nv;
	size_t ncap;

	if (w->n == w->cap) {
		if (w->cap >= QUEUE_MAX_ACCOUNTS) {
			return (ERR_TOOBIG);
		}
		ncap = w->cap == 0 ? 16 : w->cap * 2;
		nv = realloc(w->v, ncap * sizeof(*nv));
		if (nv == NULL) {
			return (ERR_NOMEM);
		}
		w->v = nv;
		w->cap = ncap;
	}
	*r_r = &w->v[w->n++];
	memset(*r_r, 0, sizeof(**r_r));
	(*r_r)->account_id = account_id;
	(*r_r)->next_at = now;
	return (ERR_OK);
}

static void
rec_del(struct queue_watch *w, struct watch_rec *r)
{
	*r = w->v[--w->n];
}

/* The job ended (not requeued): schedule the next one. */
static void
rec_ended(struct queue_watch *w, struct watch_rec *r, bool ok, int64_t now,
    uint32_t rand32)
{
	(void)w;
	r->job_id = 0;
	r->st = W_NONE;
	r->fails = ok ? 0 : r->fails + 1;
	r->next_at = now + queue_backoff_ms(r->fails, rand32);
}

int
queue_watch_load(
    struct queue_watch *w, const struct proto_reply *reply, int64_t now)
{
	struct watch_rec *r;
	size_t i, j;
	bool found;
	int rv;

	/* Drop accounts that are gone; forget pending actions. */
	for (i = 0; i < w->n;) {
		found = false;
		for (j = 0; j < reply->nsched_accounts; j++) {
			if (reply->sched_accounts[j].id == w->v[i].account_id) {
				found = true;
				break;
			}
		}
		if (!found) {
			rec_del(w, &w->v[i]);
			continue;
		}
		w->v[i].job_id = 0;
		if (w->v[i].st != W_NONE) {
			w->v[i].st = W_NONE;
			w->v[i].next_at = now;
		}
		i++;
	}
	for (j = 0; j < reply->nsched_accounts; j++) {
		if (rec_by_account(w, reply->sched_accounts[j].id) == NULL) {
			rv = rec_add(w, reply->sched_accounts[j].id, now, &r);
			if (rv != 0) {
				return (rv);
			}
		}
	}
	for (j = 0; j < reply->njobs; j++) {
		const struct proto_job_info *ji = &reply->jobs[j];

		if (ji->kind != JOB_KIND_WATCH
		    || (ji->state != JOB_QUEUED && ji->state != JOB_LEASED)) {
			continue;
		}
		r = rec_by_account(w, ji->account_id);
		if (r == NULL) {
			continue; /* account removed meanwhile */
		}
		r->job_id = ji->id;
		r->attempt = ji->attempts;
		r->due_at = ji->due_at;
		r->lease_until = ji->lease_until;
		r->st = ji->state == JOB_QUEUED ? W_QUEUED : W_LEASED;
	}
	return (ERR_OK);
}

bool
queue_watch_owns(const struct queue_watch *w, uint64_t job_id)
{
	size_t i;

	for (i = 0; job_id != 0 && i < w->n; i++) {
		if (w->v[i].job_id == job_id) {
			return (true);
		}
	}
	return (false);
}

bool
queue_watch_on_event(struct queue_watch *w, const struct proto_event *ev,
    uint32_t rand32)
{
	struct watch_rec *r;

	if (ev->kind == EV_ACCOUNT_CHANGED) {
		r = rec_by_account(w, ev->account_id);
		if (ev->removed && r != NULL) {
			rec_del(w, r);
		} else if (!ev->removed && r == NULL) {
			(void)rec_add(w, ev->account_id, ev->at, &r);
		}
		return (false); /* the sync queue wants it too */
	}
	r = rec_by_job(w, ev->job_id);
	if (r == NULL) {
		return (false);
	}
	if (ev->attempt < r->attempt) {
		return (true); /* stale */
	}
	switch (ev->kind) {
	case EV_JOB_QUEUED:
		if (r->st != W_LEASING) {
			r->st = W_QUEUED;
			r->due_at = ev->due_at;
			r->attempt = ev->attempt;
		}
		break;
	case EV_JOB_PROGRESS:
		if (r->st == W_LEASED && ev->attempt == r->attempt
		    && ev->due_at > r->lease_until) {
			r->lease_until = ev->due_at;
		}
		break;
	case EV_JOB_FINISHED:
		if (ev->state == JOB_QUEUED) {
			r->st = W_QUEUED;
			r->due_at = ev->due_at;
			r->attempt = ev->attempt;
		} else {
			rec_ended(w, r, ev->state == JOB_DONE, ev->at, rand32);
		}
		break;
	default:
		break;
	}
	return (true);
}

void
queue_watch_next_actions(struct queue_watch *w, int64_t now,
    uint32_t rand32, struct queue_action *acts, size_t cap, size_t *n_r)
{
	struct queue_action *a;
	struct watch_rec *r;
	size_t i, n = 0;

	for (i = 0; i < w->n && n < cap; i++) {
		r = &w->v[i];
		a = &acts[n];
		memset(a, 0, sizeof(*a));
		a->account_id = r->account_id;
		a->job_kind = JOB_KIND_WATCH;
		a->priority = PRIO_PERIODIC;
		if (r->st == W_NONE && now >= r->next_at) {
			a->kind = QUEUE_ACT_CREATE;
			a->due_at = now;
			r->st = W_CREATING;
			n++;
		} else if (r->st == W_QUEUED && now >= r->due_at) {
			a->kind = QUEUE_ACT_LEASE;
			a->job_id = r->job_id;
			a->attempt = r->attempt;
			a->lease_until = now + w->lim.lease_ms;
			r->st = W_LEASING;
			n++;
		} else if (r->st == W_LEASED && now >= r->lease_until) {
			a->kind = QUEUE_ACT_RETRY;
			a->job_id = r->job_id;
			a->attempt = r->attempt;
			if (r->attempt >= w->lim.max_attempts) {
				a->state = JOB_DEAD;
			} else {
				a->state = JOB_QUEUED;
				a->due_at = now
				    + queue_backoff_ms(r->attempt,
				        rand32 ^ (uint32_t)r->job_id);
			}
			strlcpy_checked(
			    a->error, "watch lease expired", sizeof(a->error));
			r->st = W_RETRYING;
			n++;
		}
	}
	*n_r = n;
}

int64_t
queue_watch_next_deadline(const struct queue_watch *w, int64_t now)
{
	int64_t best = QUEUE_NO_DEADLINE, t;
	size_t i;

	for (i = 0; i < w->n; i++) {
		const struct watch_rec *r = &w->v[i];

		switch (r->st) {
		case W_NONE:
			t = r->next_at;
			break;
		case W_QUEUED:
			t = r->due_at;
			break;
		case W_LEASED:
			t = r->lease_until;
			break;
		default:
			continue;
		}
		if (t <= now) {
			return (0);
		}
		if (t - now < best) {
			best = t - now;
		}
	}
	return (best);
}

void
queue_watch_create_done(struct queue_watch *w, const struct queue_action *a,
    int rv, uint64_t job_id, int64_t now, uint32_t rand32)
{
	struct watch_rec *r = rec_by_account(w, a->account_id);

	if (r == NULL || r->st != W_CREATING) {
		return;
	}
	if (rv != 0) {
		rec_ended(w, r, false, now, rand32);
		return;
	}
	/* The create may have joined a queued watch job (same id). */
	r->job_id = job_id;
	r->st = W_QUEUED;
	r->due_at = a->due_at;
}

void
queue_watch_lease_done(struct queue_watch *w, uint64_t job_id, int rv,
    uint32_t attempt, int64_t lease_until, int64_t now)
{
	struct watch_rec *r = rec_by_job(w, job_id);

	if (r == NULL || r->st != W_LEASING) {
		return;
	}
	if (rv != 0) {
		/* Not leasable (already leased elsewhere, gone): look again
		 * after one lease period rather than hammer the store. */
		r->st = W_QUEUED;
		r->due_at = now + w->lim.lease_ms;
		return;
	}
	r->st = W_LEASED;
	r->attempt = attempt;
	r->lease_until = lease_until;
}

void
queue_watch_retry_done(struct queue_watch *w, uint64_t job_id, int rv,
    uint8_t state, int64_t due_at, int64_t now, uint32_t rand32)
{
	struct watch_rec *r = rec_by_job(w, job_id);

	if (r == NULL) {
		return;
	}
	if (rv != 0) {
		r->st = W_LEASED; /* still expired: proposed again */
		return;
	}
	if (state == JOB_QUEUED) {
		r->st = W_QUEUED;
		r->due_at = due_at;
	} else {
		rec_ended(w, r, false, now, rand32);
	}
}

size_t
queue_watch_count(const struct queue_watch *w, size_t *leased_r)
{
	size_t i, leased = 0;

	for (i = 0; i < w->n; i++) {
		leased += w->v[i].st == W_LEASED;
	}
	if (leased_r != NULL) {
		*leased_r = leased;
	}
	return (w->n);
}
