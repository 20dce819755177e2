/*
 * pkg/queue: the scheduler's state machine, pure: no I/O, no clock reads,
 * no randomness of its own. Time (unix ms) and random numbers are passed
 * in, so every decision is reproducible in a unit test.
 *
 * The state is a cache of the store's (accounts, and the jobs that are
 * QUEUED or LEASED). It is filled by queue_load() from a sched.state.get
 * reply, kept current by queue_on_event() from store.event messages, and
 * asked by queue_next_actions() what the scheduler should do now: CREATE
 * a periodic job, LEASE a queued job, RETRY a job whose lease expired.
 * The caller performs each action against the store and reports the
 * outcome with queue_create_done(), queue_lease_done() and
 * queue_retry_done(). Until then the action is "pending" and is not
 * proposed again. After any store error the caller should queue_load()
 * again: the store is the truth.
 *
 * Cost: accounts and jobs live in hash maps; the next periodic deadline,
 * the queued jobs waiting for their due time, the due queued jobs in
 * lease order and the leases in expiry order are four indexed binary
 * heaps, so every operation is O(log n) (amortised for growth) and a
 * tick never scans every account. queue_account_states() is the one O(n)
 * call (for a metrics gauge, at most once a second).
 *
 * Not thread-safe: one owner thread (the scheduler's loop).
 */
#ifndef MAILSYNC_QUEUE_H
#define MAILSYNC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

#define QUEUE_BACKOFF_MIN_MS 5000
#define QUEUE_BACKOFF_MAX_MS 300000

/* Hard caps on the cache; beyond them adds fail with ERR_TOOBIG. */
#define QUEUE_MAX_ACCOUNTS 1000000u
#define QUEUE_MAX_JOBS 1000000u

/* queue_next_deadline() when nothing is scheduled at all. */
#define QUEUE_NO_DEADLINE INT64_MAX

/*
 * Delay before retrying after `failures` consecutive failures (>= 1):
 * 5 s doubling up to 300 s, with "equal jitter": the result lies in
 * [d/2, d] where d is the capped exponential, chosen by rand32.
 * failures == 0 returns 0. Used by the scheduler and by the store.
 */
int64_t queue_backoff_ms(uint32_t failures, uint32_t rand32);

struct queue;

/* Fixed for the life of a queue (from the scheduler's flags). */
struct queue_limits {
	uint32_t max_inflight; /* >= 1: leased + being leased, in total */
	int64_t lease_ms; /* > 0: lease length, renewed by progress */
	uint32_t max_attempts; /* >= 1: an expired lease at this -> DEAD */
};

/* Account states, for the mailsync_accounts{state} gauge. */
enum queue_account_state {
	QUEUE_ACCT_IDLE = 0, /* no job, last job fine (or never ran) */
	QUEUE_ACCT_QUEUED = 1, /* a job is queued or being created */
	QUEUE_ACCT_RUNNING = 2, /* a job is leased (or being leased) */
	QUEUE_ACCT_BACKOFF = 3, /* no job, fail_streak > 0 */
	QUEUE_ACCT_STATE_COUNT
};

/* "idle", "queued", "running", "backoff". */
const char *queue_account_state_name(enum queue_account_state s);

enum queue_action_kind {
	QUEUE_ACT_CREATE = 0, /* sched.job.create */
	QUEUE_ACT_LEASE = 1, /* sched.job.lease, then push job_run */
	QUEUE_ACT_RETRY = 2 /* sched.job.retry (lease expired) */
};

/* "create", "lease", "retry". */
const char *queue_action_kind_name(enum queue_action_kind k);

/*
 * One decision. Fields not listed for a kind are zero.
 *   CREATE: account_id, job_kind, priority, due_at.
 *   LEASE:  job_id, account_id, job_kind, priority, attempt (attempts
 *           so far; the store makes it attempt + 1), lease_until.
 *   RETRY:  job_id, account_id, job_kind, attempt (the expired one),
 *           state (JOB_QUEUED or JOB_DEAD), due_at (QUEUED), error.
 */
struct queue_action {
	enum queue_action_kind kind;
	uint64_t job_id;
	uint64_t account_id;
	uint8_t job_kind; /* enum proto_job_kind */
	uint8_t priority; /* enum proto_priority */
	uint8_t state; /* enum proto_job_state */
	uint32_t attempt;
	int64_t due_at;
	int64_t lease_until;
	char error[64];
};

/* A copy of one cached job (state is JOB_QUEUED or JOB_LEASED). */
struct queue_job {
	uint64_t id;
	uint64_t account_id;
	uint8_t kind;
	uint8_t priority;
	uint8_t state;
	uint32_t attempt;
	int64_t due_at;
	int64_t lease_until;
	int64_t leased_at; /* unix ms when we leased it; 0 unknown (loaded) */
};

struct queue_stats {
	size_t accounts;
	size_t jobs;
	size_t queued; /* jobs waiting (due or not) */
	size_t inflight; /* jobs leased, being leased or being retried */
};

/* Allocates an empty queue (*q_r, free with queue_free). ERR_INVAL on bad
 * limits, ERR_NOMEM. */
int queue_new(const struct queue_limits *lim, struct queue **q_r);
/* Frees *q and sets it to NULL; NULL is fine. */
void queue_free(struct queue **q);

/*
 * Replaces the whole state with a sched.state.get reply (borrowed; nothing
 * is kept pointing into it): reply->sched_accounts and the QUEUED/LEASED
 * entries of reply->jobs (other states are ignored). Jobs of an account
 * missing from the list get a placeholder account with no periodic
 * schedule. Pending actions are forgotten. Two things the reply cannot
 * tell are kept from the old cache: an account's last_sync_at when the
 * cached one is later (a finish seen in an event), and, for a job leased
 * in the same attempt before and after, its leased_at and the later
 * lease_until. On error (ERR_INVAL for an id of 0 or a bad kind,
 * ERR_TOOBIG, ERR_NOMEM) q is unchanged.
 */
int queue_load(struct queue *q, const struct proto_reply *reply);

/*
 * Applies one store.event (borrowed). If the event concerns a job the
 * cache knew, *job_r (may be NULL) receives the job as it was before the
 * event and *known_r (may be NULL) is set to true; else false.
 *   EV_JOB_QUEUED:   adds or updates a queued job (priority, due_at,
 *                    attempt); a new job gets the event's job_kind
 *                    (sync, drain or fetch_body; anything else is taken
 *                    as JOB_KIND_SYNC until the next load).
 *   EV_JOB_PROGRESS: lease_until = at + lease_ms for a leased job.
 *   EV_JOB_FINISHED: state QUEUED: back to queued at due_at; DONE,
 *                    FAILED, DEAD: the job leaves the cache and its
 *                    account gets last_sync_at = at and fail_streak 0
 *                    (DONE) or + 1.
 *   EV_ACCOUNT_CHANGED: adds, updates (interval_s) or removes (with its
 *                    jobs) an account.
 * Events for an attempt older than the cached one are ignored (the SUB
 * socket lags the REQ replies): ERR_STALE. An unknown job in PROGRESS or
 * FINISHED: ERR_NOTFOUND (ignored; the next load catches up). ERR_INVAL
 * for a malformed event, ERR_NOMEM/ERR_TOOBIG when adding.
 */
int queue_on_event(struct queue *q, const struct proto_event *ev,
    struct queue_job *job_r, bool *known_r);

/*
 * Decides what to do at `now` (unix ms) and writes up to `cap` actions
 * into acts (*n_r of them), in this order: RETRY for expired leases,
 * CREATE for accounts whose interval elapsed (now >= last_sync_at +
 * interval_s, no job, none being created; interval_s 0 = manual only),
 * LEASE for due queued jobs, user priority first then oldest due, never
 * a second busy job for one account, while inflight < max_inflight.
 * fetch_body jobs are a lane of their own: one busy per account, beside
 * the account's other job; they neither hold back nor wait for it, and
 * neither they nor their ends touch the periodic schedule
 * (last_sync_at, fail_streak).
 * Each proposed action becomes pending until its *_done() call. rand32
 * seeds the backoff jitter (mixed with job id and attempt). Never fails.
 */
void queue_next_actions(struct queue *q, int64_t now, uint32_t rand32,
    struct queue_action *acts, size_t cap, size_t *n_r);

/*
 * Milliseconds from `now` until queue_next_actions() could have something
 * new to propose (0: call it now), or QUEUE_NO_DEADLINE. Events and
 * *_done() calls can only bring it closer; they set it to 0.
 */
int64_t queue_next_deadline(const struct queue *q, int64_t now);

/*
 * Outcome of a CREATE (a is the action as proposed). rv == 0: job_id is
 * the store's job (new, or the queued one the request joined) and enters
 * the cache as queued. rv != 0: the account is free to be proposed again.
 * ERR_NOTFOUND if the account left the cache meanwhile; ERR_NOMEM.
 */
int queue_create_done(
    struct queue *q, const struct queue_action *a, int rv, uint64_t job_id);

/*
 * Outcome of a LEASE. rv == 0: the job is leased as attempt `attempt`
 * until lease_until (the store's values, from the job_run), leased at
 * now. rv != 0: back to queued. ERR_NOTFOUND/ERR_BADSTATE if the job is not
 * being leased.
 */
int queue_lease_done(struct queue *q, uint64_t job_id, int rv,
    uint32_t attempt, int64_t lease_until, int64_t now);

/*
 * Outcome of a sched.job.retry for job_id, either a RETRY action or the
 * caller's own (a leased job no worker accepted). rv == 0 and state
 * JOB_QUEUED: queued again at due_at. rv == 0 and JOB_DEAD: the job
 * leaves the cache, its account gets last_sync_at = now and fail_streak
 * + 1. rv != 0: a RETRY action's job is leased again (its lease stays
 * expired, so it is proposed again next tick). ERR_NOTFOUND if unknown.
 */
int queue_retry_done(struct queue *q, uint64_t job_id, int rv, uint8_t state,
    int64_t due_at, int64_t now);

/* Copies job id into *job_r: 0, or ERR_NOTFOUND. */
int queue_job_get(const struct queue *q, uint64_t id, struct queue_job *job_r);

void queue_get_stats(const struct queue *q, struct queue_stats *st_r);

/* Counts accounts per state into counts[QUEUE_ACCT_STATE_COUNT]. O(n). */
void queue_account_states(const struct queue *q, uint64_t *counts);

/*
 * Watch jobs (watch.c) ------------------------------------------------------
 *
 * Kept apart from the queue above (which ignores JOB_KIND_WATCH): one
 * watch job per account, created at once for a new account, re-created
 * queue_backoff_ms(failures) after one ends (DONE resets failures), not
 * counted in max_inflight, never blocking the account's other jobs. Its
 * lease is renewed by EV_JOB_PROGRESS (due_at = new lease_until) and
 * retried like a sync job's when it expires. Actions use the same struct
 * (job_kind JOB_KIND_WATCH) and must be reported with the queue_watch_*
 * _done() calls. Linear in the number of accounts per call.
 */
struct queue_watch;
int queue_watch_new(const struct queue_limits *lim, struct queue_watch **w_r);
void queue_watch_free(struct queue_watch **w);
/* Replaces the state with a sched.state.get reply (borrowed). */
int queue_watch_load(
    struct queue_watch *w, const struct proto_reply *reply, int64_t now);
/* Applies an event; true when it concerned a watch job (then the sync
 * queue must not see it). EV_ACCOUNT_CHANGED returns false. */
bool queue_watch_on_event(struct queue_watch *w, const struct proto_event *ev,
    uint32_t rand32);
bool queue_watch_owns(const struct queue_watch *w, uint64_t job_id);
void queue_watch_next_actions(struct queue_watch *w, int64_t now,
    uint32_t rand32, struct queue_action *acts, size_t cap, size_t *n_r);
int64_t queue_watch_next_deadline(const struct queue_watch *w, int64_t now);
void queue_watch_create_done(struct queue_watch *w,
    const struct queue_action *a, int rv, uint64_t job_id, int64_t now,
    uint32_t rand32);
void queue_watch_lease_done(struct queue_watch *w, uint64_t job_id, int rv,
    uint32_t attempt, int64_t lease_until, int64_t now);
void queue_watch_retry_done(struct queue_watch *w, uint64_t job_id, int rv,
    uint8_t state, int64_t due_at, int64_t now, uint32_t rand32);
/* Accounts tracked; *leased_r (may be NULL) those with a leased watch. */
size_t queue_watch_count(const struct queue_watch *w, size_t *leased_r);

#endif
