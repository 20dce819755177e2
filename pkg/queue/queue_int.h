/*
 * queue_int.h: pkg/queue's private structures, shared by its .c files and
 * included by nobody else. A uint64 -> slot hash map (map.c), an indexed
 * binary min-heap (heap.c), and the pools of accounts and jobs that the
 * state machine (state.c, actions.c) works on.
 *
 * Invariants (checked by queue_check() in debug builds):
 *   - every in-use account is in accts map; every in-use job in jobs map
 *     and in its account's job list;
 *   - an account is in the due heap iff interval_s > 0, it has no job
 *     other than fetch_body ones and no create is pending;
 *   - a job is in the wait or ready heap iff queued, in the lease heap
 *     iff leased; being leased / being retried: in no heap;
 *   - a.nbusy counts the account's leasing/leased/retrying jobs,
 *     a.nqueued its queued ones; q->nbusy and q->nqueued the totals;
 *     a.nbody_busy / a.nbody_queued count the fetch_body ones among
 *     them;
 *   - every heap has capacity for every slot of its pool, so moving an
 *     existing object between heaps never allocates.
 */
#ifndef MAILSYNC_QUEUE_INT_H
#define MAILSYNC_QUEUE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

#define QUEUE_NIL UINT32_MAX

/* Open addressing, linear probing, backward-shift deletion; key 0 free. */
struct queue_map {
	uint64_t *keys;
	uint32_t *vals;
	size_t cap; /* power of two, or 0 */
	size_t n;
};

void queue_map_init(struct queue_map *m);
void queue_map_release(struct queue_map *m);
/* Makes room for n entries in total; ERR_NOMEM. */
int queue_map_reserve(struct queue_map *m, size_t n);
/* Inserts or replaces; key != 0; room must have been reserved. */
void queue_map_put(struct queue_map *m, uint64_t key, uint32_t val);
bool queue_map_get(const struct queue_map *m, uint64_t key, uint32_t *val_r);
void queue_map_del(struct queue_map *m, uint64_t key);

/* Min-heap ordered by (k1, k2, k3); each entry's owner learns its index
 * through setpos so it can be removed or re-keyed in O(log n). */
struct queue_heap_ent {
	int64_t k1;
	int64_t k2;
	uint64_t k3;
	uint32_t slot;
};

struct queue_heap {
	struct queue_heap_ent *v;
	size_t n;
	size_t cap;
	void (*setpos)(void *ctx, uint32_t slot, uint32_t pos);
	void *ctx;
};

void queue_heap_init(struct queue_heap *h,
    void (*setpos)(void *ctx, uint32_t slot, uint32_t pos), void *ctx);
void queue_heap_release(struct queue_heap *h);
int queue_heap_reserve(struct queue_heap *h, size_t n);
/* Room must have been reserved. */
void queue_heap_push(struct queue_heap *h, struct queue_heap_ent e);
void queue_heap_remove(struct queue_heap *h, uint32_t pos);
/* The minimum; h->n > 0. */
const struct queue_heap_ent *queue_heap_top(const struct queue_heap *h);

enum queue_jstate {
	QJ_FREE = 0,
	QJ_QUEUED, /* in wait heap (by due) or ready heap (by priority) */
	QJ_LEASING, /* LEASE proposed, outcome pending */
	QJ_LEASED, /* in lease heap */
	QJ_RETRYING /* RETRY proposed, outcome pending */
};

enum queue_jheap { QH_NONE = 0, QH_WAIT, QH_READY, QH_LEASE };

struct queue_jobrec {
	uint64_t id;
	uint32_t acct; /* account slot */
	uint32_t acct_next; /* next job slot of the same account */
	uint32_t hpos;
	uint8_t heap; /* enum queue_jheap */
	uint8_t st; /* enum queue_jstate */
	uint8_t kind;
	uint8_t priority;
	uint32_t attempt;
	int64_t due_at;
	int64_t lease_until;
	int64_t leased_at;
};

struct queue_acctrec {
	uint64_t id; /* 0: free slot */
	uint32_t interval_s;
	uint32_t fail_streak;
	int64_t last_sync_at;
	uint32_t jobs; /* head of the job list */
	uint32_t nqueued;
	uint32_t nbusy;
	uint32_t nbody_queued; /* fetch_body jobs among nqueued */
	uint32_t nbody_busy;   /* and among nbusy */
	uint32_t hpos;
	bool in_heap;
	bool create_pending;
};

struct queue {
	struct queue_limits lim;
	struct queue_acctrec *accts;
	size_t naccts_cap; /* slots allocated */
	size_t naccts_used;
	uint32_t *acct_free;
	size_t nacct_free;
	struct queue_jobrec *jobs;
	size_t njobs_cap;
	size_t njobs_used;
	uint32_t *job_free;
	size_t njob_free;
	struct queue_map amap;
	struct queue_map jmap;
	struct queue_heap due; /* accounts by next periodic due */
	struct queue_heap wait; /* queued jobs by due_at */
	struct queue_heap ready; /* due queued jobs by (-priority, due, id) */
	struct queue_heap lease; /* leased jobs by lease_until */
	size_t naccounts;
	size_t njobs;
	size_t nqueued;
	size_t nbusy;
	bool dirty; /* something changed since the last next_actions */
};

/* state.c */
void queue_init_(struct queue *q, const struct queue_limits *lim);
void queue_release_(struct queue *q);
int queue_acct_add(struct queue *q, uint64_t id, uint32_t *slot_r);
bool queue_acct_find(const struct queue *q, uint64_t id, uint32_t *slot_r);
void queue_acct_resched(struct queue *q, uint32_t a);
void queue_acct_finished(struct queue *q, uint32_t a, int64_t at, bool ok);
int queue_job_add(
    struct queue *q, uint64_t id, uint32_t acct, uint32_t *slot_r);
bool queue_job_find(const struct queue *q, uint64_t id, uint32_t *slot_r);
void queue_job_del(struct queue *q, uint32_t j);
void queue_job_set(struct queue *q, uint32_t j, enum queue_jstate st);
void queue_job_view(const struct queue *q, uint32_t j, struct queue_job *v);
void queue_check(const struct queue *q);

#endif
