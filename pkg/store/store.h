/*
 * pkg/store: the SQLite database of record (schema, migrations, every SQL
 * statement). Only mailsync-store links it, and it alone includes
 * sqlite3.h. docs/schema.md documents the tables; docs/architecture.md the
 * job lifecycle these functions implement.
 *
 * Threading: a struct store belongs to one thread (SQLite sees a single
 * thread). No I/O besides the database file: the caller receives the reply
 * and the events to publish in a struct store_out and sends them itself.
 *
 * Time and randomness are passed in (now_ms: unix milliseconds; rand32 for
 * backoff jitter) so every transition is reproducible in a unit test.
 *
 * Every operation returns 0 or a negative enum err, and mirrors it in
 * out->reply.status with a precise text in out->reply.error. A write is
 * committed (durable: synchronous=FULL) before the function returns, so
 * the caller may reply and publish events at once.
 */
#ifndef MAILSYNC_STORE_H
#define MAILSYNC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"
#include "secret/secret.h"

/* The schema version this code writes (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 5

#define STORE_DEFAULT_INTERVAL_S 300u
#define STORE_DEFAULT_MAX_ATTEMPTS 5u
#define STORE_DEFAULT_BUSY_MS 5000
/* Largest raw body fetched (job_run.max_body); larger: an error row. */
#define STORE_DEFAULT_MAX_BODY (50u * 1024 * 1024)
#define STORE_STATUS_DEFAULT_LIMIT 20u
#define STORE_STATUS_MAX_LIMIT 1000u
/* A local change that failed this many drain attempts is dead. */
#define STORE_CHANGE_MAX_ATTEMPTS 8u
/* Events one operation can emit at most. */
#define STORE_OUT_MAX_EVENTS 4
#define STORE_ERRLEN 512

struct store; /* opaque: the connection and its statement cache */

struct store_config {
	uint32_t default_interval_s; /* 0: STORE_DEFAULT_INTERVAL_S */
	uint32_t max_attempts; /* 0: STORE_DEFAULT_MAX_ATTEMPTS */
	int busy_timeout_ms; /* 0: STORE_DEFAULT_BUSY_MS */
	uint64_t max_body; /* bytes; 0: STORE_DEFAULT_MAX_BODY */
};

/*
 * The result of one operation: the reply to send (control requests) and
 * the events to publish, in order, after the reply. Every string and array
 * reachable from `reply` is owned by this struct (the password of a
 * job_run included, wiped on release). Initialise with store_out_init()
 * before each operation; store_out_release() frees and wipes.
 */
struct store_out {
	struct proto_reply reply;
	struct proto_event events[STORE_OUT_MAX_EVENTS];
	size_t nevents;
	char errtext[STORE_ERRLEN]; /* reply.error points here on failure */
	/* private */
	char **owned_;
	size_t nowned_, capowned_;
	char *secret_;
	size_t secret_len_;
};

void store_out_init(struct store_out *out);
void store_out_release(struct store_out *out);

/*
 * Process-wide SQLite settings, for a process that owns one database from
 * one thread (mailsync-store): allocation statistics off, so every
 * allocation does not take a global mutex (3-4% of a header sync). Call
 * once from main before the first store_open(); returns ERR_BADSTATE if
 * SQLite was already initialised.
 */
int store_global_init(void);

/*
 * Opens (creating if needed) the database at path, sets WAL,
 * synchronous=FULL, foreign_keys=ON and busy_timeout, and applies pending
 * migrations, each in one transaction. A database whose user_version is
 * newer than STORE_SCHEMA_VERSION is refused with ERR_VERSION. key is
 * copied (wiped on store_free); cfg is borrowed for the call (may be
 * NULL). On failure errbuf receives the reason and *st_r is untouched.
 */
int store_open(const char *path, const uint8_t key[SECRET_KEY_LEN],
    const struct store_config *cfg, struct store **st_r, char *errbuf,
    size_t errlen);
/* Finalizes the statements, closes the database, NULLs *st. */
void store_free(struct store **st);
/* The database's PRAGMA user_version. */
int store_schema_version(struct store *st, int *version_r);

/* Control requests (submit -> store). All arguments are borrowed. */
int store_account_add(struct store *st, const struct proto_account_add *a,
    int64_t now_ms, struct store_out *out);
int store_account_list(struct store *st, struct store_out *out);
int store_account_remove(struct store *st, const struct proto_name *n,
    int64_t now_ms, struct store_out *out);
int store_job_submit(struct store *st, const struct proto_job_submit *js,
    int64_t now_ms, struct store_out *out);
int store_job_status(
    struct store *st, const struct proto_job_status *q, struct store_out *out);

/*
 * Local changes (docs/drain.md), control requests from submit.
 * store_change_add validates (ERR_INVAL, ERR_NOTFOUND with a precise
 * text), then in one transaction stores the change, makes the local rows
 * show it and queues a drain job; reply.id is the change id.
 * store_change_list fills reply.changes (newest first), store_message_list
 * reply.messages; store_change_resolve retries or cancels a change.
 */
int store_change_add(struct store *st, const struct proto_change_add *c,
    int64_t now_ms, struct store_out *out);
int store_change_list(struct store *st, const struct proto_change_list *q,
    struct store_out *out);
int store_change_resolve(struct store *st,
    const struct proto_change_resolve *r, int64_t now_ms,
    struct store_out *out);
int store_message_list(struct store *st, const struct proto_message_list *q,
    struct store_out *out);
/*
 * Periodic maintenance of changes (run beside store_prune): gives back
 * changes left inflight by a job that is no longer leased, and queues a
 * drain job for accounts with a due pending change and no queued or leased
 * drain job, at most STORE_OUT_MAX_EVENTS accounts per call (*queued_r
 * says how many; call again while it equals STORE_OUT_MAX_EVENTS).
 */
int store_change_maintain(struct store *st, int64_t now_ms,
    struct store_out *out, size_t *queued_r);

/* Control requests (scheduler -> store). */
int store_sched_state(struct store *st, struct store_out *out);
int store_job_create(struct store *st, const struct proto_job_create *jc,
    int64_t now_ms, struct store_out *out);
/* On success out->reply.job_run is filled, password included; a drain
 * job's also carries its changes (now inflight) and SMTP settings. */
int store_job_lease(struct store *st, const struct proto_job_lease *jl,
    int64_t now_ms, struct store_out *out);
int store_job_retry(struct store *st, const struct proto_job_retry *jr,
    int64_t now_ms, struct store_out *out);

/*
 * Results (worker -> store), untrusted: validated, fenced by (job_id,
 * attempt) (ERR_STALE), applied in one transaction each. A duplicate batch
 * (same job, attempt, seq) returns 0 and changes nothing.
 */
/*
 * Deletes finished jobs that ended more than keep_jobs_ms before now_ms,
 * done and cancelled changes last updated before that too, and sync_log
 * rows older than keep_log_ms, at most max_rows of each, in short
 * transactions. *deleted_r counts the rows removed (all tables).
 */
int store_prune(struct store *st, int64_t now_ms, int64_t keep_jobs_ms,
    int64_t keep_log_ms, uint32_t max_rows, uint64_t *deleted_r);

/* A batch's change_results (drain jobs) are applied in its transaction. */
int store_apply_batch(struct store *st, const struct proto_batch *b,
    int64_t now_ms, struct store_out *out);
int store_apply_done(struct store *st, const struct proto_done *d,
    int64_t now_ms, uint32_t rand32, struct store_out *out);
/* watch.c: a watcher's heartbeat/change for its watch job (fenced);
 * changed queues a user sync of the account. */
int store_watch_event(struct store *st, const struct proto_watch_event *w,
    int64_t now_ms, struct store_out *out);

#endif
