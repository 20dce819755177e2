/*
 * pkg/store internals, shared by the files of pkg/store only (never
 * included from outside): the struct store, the prepared-statement cache,
 * transaction helpers, and the helpers that fill a struct store_out.
 *
 * Statement cache: each concept file keeps its SQL in `static const char
 * SQL_X[]` arrays; store_stmt() maps the address of that text to a
 * persistent prepared statement, prepared on first use. The statement is
 * returned reset with its bindings cleared; the caller runs
 * store_stmt_done() (a reset) when finished with it so no read stays open.
 */
#ifndef MAILSYNC_STORE_INT_H
#define MAILSYNC_STORE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "base/base.h"
#include "store.h"

#define STORE_STMT_CACHE 192
#define STORE_PROGRESS_SLOTS 64
#define STORE_PROGRESS_MIN_MS 1000
/* Caps on peer strings (bytes) shared by several files */
#define STORE_MAX_ERROR 4096 /* a job's error text */
#define STORE_MAX_MAILBOX 1024 /* a mailbox's full name */

struct store_stmt_slot {
	const char *sql; /* static SQL text: the key */
	sqlite3_stmt *stmt;
};

struct store_progress_slot {
	uint64_t job_id;
	int64_t last_ms;
};

struct store {
	sqlite3 *db;
	uint8_t key[SECRET_KEY_LEN];
	uint32_t default_interval_s;
	uint32_t max_attempts;
	uint64_t max_body; /* job_run.max_body */
	struct store_stmt_slot stmts[STORE_STMT_CACHE];
	size_t nstmts;
	/* EV_JOB_PROGRESS rate limit, by job_id % STORE_PROGRESS_SLOTS */
	struct store_progress_slot progress[STORE_PROGRESS_SLOTS];
	bool relaxed; /* synchronous=NORMAL now (store_begin_relaxed) */
};

/* db.c ------------------------------------------------------------------ */

/* Translates a SQLite result code into an err code. */
int store_err(int sqlite_rc);
/* Returns the cached prepared statement for sql (static text). */
int store_stmt(struct store *st, const char *sql, sqlite3_stmt **stmt_r);
/* Resets stmt (NULL is fine). */
void store_stmt_done(sqlite3_stmt *stmt);
/* Runs stmt once expecting SQLITE_DONE; resets it. */
int store_stmt_exec(sqlite3_stmt *stmt);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK (rollback never fails visibly). */
int store_begin(struct store *st);
/*
 * BEGIN for a commit that need not wait for the disk (synchronous=NORMAL):
 * only for writes that a later durable commit vouches for (sync batches:
 * their job's done is durable, and a WAL fsync covers every earlier
 * commit). Every other begin restores synchronous=FULL.
 */
int store_begin_relaxed(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);
/* Binds a proto_str as TEXT (nil -> NULL); borrowed until the next reset */
int store_bind_str(sqlite3_stmt *stmt, int i, struct proto_str s);
/* Binds an int64, or NULL when v == 0 */
int store_bind_nz(sqlite3_stmt *stmt, int i, int64_t v);
/* Last error text of the connection. */
const char *store_errmsg(struct store *st);
/* Appends one sync_log row. */
int store_log_event(struct store *st, int64_t now_ms, uint64_t account_id,
    uint64_t job_id, const char *kind, const char *outcome,
    const char *detail);

/* schema.c -------------------------------------------------------------- */

int store_schema_migrate(struct store *st, char *errbuf, size_t errlen);

/* out.c ----------------------------------------------------------------- */

/* Records a failure: sets reply.status and reply.error, drops the queued
 * events (the operation's transaction is rolled back); returns code. */
int store_out_fail(struct store_out *out, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records a database failure with the connection's message. */
int store_out_dbfail(
    struct store_out *out, struct store *st, int code, const char *what);
/* Copies column col of stmt into out-owned storage (NULL -> nil). */
int store_out_col(
    struct store_out *out, sqlite3_stmt *stmt, int col, struct proto_str *s_r);
/* Copies a C string into out-owned storage. */
int store_out_str(struct store_out *out, const char *s, struct proto_str *s_r);
/* Takes a malloc'd secret (wiped and freed on release). */
void store_out_secret(struct store_out *out, char *secret, size_t len);
/* Appends an event; NULL past STORE_OUT_MAX_EVENTS (a bug, logged). */
struct proto_event *store_out_event(
    struct store_out *out, uint8_t kind, int64_t now_ms);
/* Appends a job event (EV_JOB_*) with the given fields. */
void store_out_job_event(struct store_out *out, uint8_t kind, uint64_t job_id,
    uint64_t account_id, uint8_t state, uint8_t priority, uint32_t attempt,
    int64_t due_at, int32_t status, int64_t now_ms);

/* check.c --------------------------------------------------------------- */

/* Validation of untrusted strings: length in [min, max] bytes, no NUL,
 * valid UTF-8; with no_ctl also no control characters (C0 and DEL).
 * Returns 0, ERR_INVAL or ERR_TOOBIG; why_r gets a static reason. */
int store_check_text(struct proto_str s, size_t min, size_t max, bool no_ctl,
    const char **why_r);
/* True when s equals the C string c (nil equals nothing). */
bool store_str_is(struct proto_str s, const char *c);
/* Length to print a peer string in a message: at most 80 bytes. */
int store_plen(struct proto_str s);
/* Arguments for "%.*s" printing a peer string safely (nil prints ""). */
#define STORE_PS(s) store_plen(s), ((s).p != NULL ? (s).p : "")

/* attach.c -------------------------------------------------------------- */

/* Validates b's attachment rows (strings, ranges, and that each has a
 * full message row in b) before the transaction; fills out on error. */
int store_attach_check(const struct proto_batch *b, struct store_out *out);

/* expunge.c: UID sets and expunge rows. */
struct store_uidset {
	uint32_t *lo, *hi; /* sorted, merged, disjoint ranges */
	size_t n;
};
/* Parses an IMAP UID set ("1:4,9"; nil = empty); ERR_PROTO with *why_r,
 * ERR_NOMEM. Release with store_uidset_release() on success. */
int store_uidset_parse(struct proto_str set, struct store_uidset *u,
    const char **why_r);
void store_uidset_release(struct store_uidset *u);
/* Validates the batch's expunge rows (before the transaction). */
int store_expunge_check(const struct proto_batch *b, struct store_out *out);
/* Applies b's expunge rows (inside the transaction, after its message
 * rows); rows of a mailbox the store does not have are no-ops. */
int store_expunge_apply(struct store *st, uint64_t account_id,
    const struct proto_batch *b, int64_t now_ms);
/* mailbox_rename.c: validates b's old_name fields (before the
 * transaction); fills out on error. */
int store_rename_check(const struct proto_batch *b, struct store_out *out);
/* Inside the transaction, before mb is upserted: when mb->old_name is set,
 * mb->name does not exist and old_name does, renames that row (its id,
 * messages and checkpoint stay) and logs 'mailbox_renamed'. */
int store_rename_apply(struct store *st, uint64_t account_id,
    uint64_t job_id, const struct proto_mailbox_row *mb, int64_t now_ms);
/* Inside the batch's transaction, after its message rows: each full
 * message row's attachments become exactly b's rows for it. fresh
 * (borrowed, NULL: none) marks the messages[i] that were new rows. */
int store_attach_apply(struct store *st, uint64_t account_id,
    const struct proto_batch *b, const bool *fresh);

/* apply.c: the id of the account's mailbox named name; 0 when none. */
int store_mailbox_find(struct store *st, uint64_t account_id,
    struct proto_str name, int64_t *id_r);

/* body.c ---------------------------------------------------------------- */

/* Validates b's body chunk rows before the transaction; fills out. */
int store_body_check(const struct proto_batch *b, struct store_out *out);
/* Inside the batch's transaction, after its message rows: applies the
 * body chunk rows (contiguity checked); fills out on error. */
int store_body_apply(struct store *st, uint64_t account_id,
    const struct proto_batch *b, int64_t now_ms, struct store_out *out);
/* Checks a prefetch policy: "none", "all" or "recent:DAYS". */
int store_body_policy_check(struct proto_str s, const char **why_r);

/* job.c ----------------------------------------------------------------- */

/* Fencing: the job exists, is LEASED, and its attempts == attempt. Fills
 * account_id_r. ERR_STALE (with out text) otherwise. */
int store_job_fence(struct store *st, uint64_t job_id, uint32_t attempt,
    uint64_t *account_id_r, struct store_out *out);
/*
 * Ends the current attempt of a LEASED job as a failure, inside the
 * caller's transaction. target is JOB_QUEUED (due at due_ms), JOB_FAILED
 * or JOB_DEAD. Updates the account on FAILED/DEAD, writes sync_log,
 * deletes job_batches, queues the event. *state_r receives the final
 * state (a requeue may become FAILED when another job of the same kind is
 * already queued: the retry joins it).
 */
int store_job_end_failure(struct store *st, uint64_t job_id,
    uint64_t account_id, uint32_t attempt, uint8_t target, int64_t due_ms,
    int status, const char *error, int64_t now_ms, struct store_out *out,
    uint8_t *state_r);
/* Inserts or coalesces a QUEUED job inside the caller's transaction. */
int store_job_enqueue(struct store *st, uint64_t account_id, uint8_t kind,
    uint8_t priority, int64_t due_at, int64_t now_ms, struct store_out *out,
    uint64_t *job_id_r);

const char *store_kind_name(uint8_t kind);
const char *store_state_name(uint8_t state);
int store_state_parse(const char *s, uint8_t *state_r);

/* jmap.c: JMAP rows, renames, destroyed Emails and state strings ------ */

/* A JMAP row's key: uid 0 and an Email id (not a placeholder's). */
bool store_row_is_jmap(uint32_t uid, struct proto_str remote_id);
/* Binds seen, flagged, answered, draft, deleted, keywords and modseq of m
 * to parameters first .. first + 6 (apply.c). */
void store_bind_flags(
    sqlite3_stmt *stmt, int first, const struct proto_message_row *m);
/* Binds message_id .. has_attachments of m to ?5 .. ?20 (the column
 * order of both message upserts). */
void store_bind_columns(
    sqlite3_stmt *stmt, const struct proto_message_row *m);
/* job_run.states from sync_state (jmap accounts only; heap array freed
 * with the job_run, strings owned by out). */
int store_lease_states(
    struct store *st, struct proto_job_run *run, struct store_out *out);
/* Validates done.states; text in why (size n). */
int store_done_states_check(const struct proto_done *d, char *why, size_t n);
/* Stores done.states (inside the success transaction). */
int store_done_states(struct store *st, uint64_t account_id,
    const struct proto_done *d, int64_t now_ms);
/* A mailbox row whose remote_id is known under another name: renames
 * that row first (store_rename_apply). */
int store_jmap_rename(struct store *st, uint64_t account_id, uint64_t job_id,
    const struct proto_mailbox_row *mb, int64_t now_ms);
/* Applies a JMAP message row into mailbox mbox_id (membership, upsert or
 * flag update); *row_r = a written row's id, 0 when none. */
int store_jmap_message(struct store *st, uint64_t account_id, int64_t mbox_id,
    const struct proto_message_row *m, int64_t *row_r);
/* While changes are active: *skip_r when the Email has an active move or
 * delete; else a placeholder of an append/send with the row's Message-ID
 * in its mailbox takes the Email id (so the upsert fills it). */
int store_jmap_guard(struct store *st, uint64_t account_id, int64_t mbox_id,
    const struct proto_message_row *m, bool *skip_r);
/* EXPUNGE_REMOTE: deletes the rows of the Emails listed in e->uids
 * (except those an active move or delete holds). */
int store_jmap_destroy(struct store *st, uint64_t account_id, uint64_t job_id,
    const struct proto_expunge_row *e, int64_t now_ms);
/* Local changes (docs/drain.md) --------------------------------------- */

/* SQL fragment: the states of an active change. */
#define STORE_CHANGE_ACTIVE "('pending', 'inflight')"
/* Placeholder rows: uid NULL, remote_id 'local:<change id>'. */
#define STORE_PLACEHOLDER_PFX "local:"
/* SQL: pending change c can run, i.e. it does not wait on the placeholder
 * of a change that is no longer active (an uncertain send): such a change
 * waits for the user's decision on the other. */
#define STORE_CHANGE_RUNNABLE                                                 \
	" c.state = 'pending' AND NOT (c.uid IS NULL"                         \
	"  AND c.kind IN ('flag', 'move', 'delete')"                          \
	"  AND c.remote_id LIKE '" STORE_PLACEHOLDER_PFX "%'"                 \
	"  AND NOT EXISTS (SELECT 1 FROM pending_changes w"                   \
	"   WHERE w.id = CAST(substr(c.remote_id, 7) AS INTEGER)"            \
	"   AND w.state IN " STORE_CHANGE_ACTIVE "))"

/* One pending_changes row without its raw message. Strings are malloc'd
 * (NULL for SQL NULL); store_change_row_release() frees them. */
struct store_change_row {
	uint64_t id;
	uint64_t account_id;
	uint8_t kind;  /* enum proto_change_kind */
	uint8_t state; /* enum proto_change_state */
	uint64_t message_id; /* 0: NULL */
	char *mailbox;
	uint32_t uidvalidity; /* 0: NULL */
	uint32_t uid;	      /* 0: NULL */
	char *remote_id;
	uint32_t flags_add, flags_remove;
	char *keywords_add, *keywords_remove; /* never NULL once read */
	char *to_mailbox;
	bool expunge;
	char *header_message_id;
	uint8_t step;
	uint32_t attempts;
	uint64_t job_id; /* 0: NULL */
	int64_t next_at;
};

/* change_local.c: the flag columns of messages (seen, flagged, answered,
 * draft, deleted: the order every statement lists them in) and their
 * PROTO_FLAG_* bits. */
#define STORE_NFLAGS 5
extern const uint32_t store_flag_bit[STORE_NFLAGS];

/* change_local.c: reads change id; ERR_NOTFOUND. Release c on success. */
int store_change_read(
    struct store *st, uint64_t id, struct store_change_row *c);
void store_change_row_release(struct store_change_row *c);
/* change_local.c: removes `remove` from then adds `add` to `cur`
 * (space-separated keyword lists, compared without case; NULL is empty;
 * duplicates and extra spaces dropped); *out_r malloc'd (caller frees). */
int store_kw_apply(
    const char *cur, const char *add, const char *remove, char **out_r);
/* change_local.c: column col of stmt as a malloc'd string (*s_r NULL for
 * SQL NULL); ERR_NOMEM. */
int store_col_dup(sqlite3_stmt *stmt, int col, char **s_r);
/* True when the space-separated list has token [p, p + n) (any case). */
bool store_kw_has(const char *list, const char *p, size_t n);
/* change_local.c: makes the local rows show change c (drain.md table) inside
 * the caller's transaction; rfc822 (append/send, borrowed) builds the
 * placeholder. Updates c->message_id and pending_changes.message_id. */
int store_change_intend(struct store *st, struct store_change_row *c,
    const char *rfc822, size_t rfc822_len, int64_t now_ms);
/* change_local.c: the account's mailbox of a role ("trash", "sent"): its id and
 * malloc'd name (*name_r NULL and *id_r 0 when none). */
int store_role_mailbox(struct store *st, uint64_t account_id,
    const char *role, int64_t *id_r, char **name_r);

/* change_guard.c: sync-side guards (drain.md "No zombies"). */
struct store_guard;
/* Inside the batch's transaction, after its mailbox rows: *g_r NULL when
 * the account has no active change (one indexed query: the fast path). */
int store_guard_load(
    struct store *st, uint64_t account_id, struct store_guard **g_r);
void store_guard_free(struct store_guard **g);
/* Before message row m is written to mailbox mbox_id: *skip_r when an
 * active move/delete has it as source; fills a placeholder (merge) when
 * the row is new and a placeholder has its Message-ID. */
int store_guard_before(struct store *st, struct store_guard *g,
    int64_t mbox_id, const struct proto_message_row *m, bool *skip_r);
/* After m was written: re-applies the message's active flag changes. */
int store_guard_after(struct store *st, struct store_guard *g,
    int64_t mbox_id, const struct proto_message_row *m);
/* Re-applies the active flag changes of message row_id on top of its
 * flag columns (in change id order). */
int store_change_overlay(struct store *st, int64_t row_id);
/* The active changes waiting on change_id's placeholder (uid NULL,
 * remote_id 'local:<change_id>') are pointed at (mbox_id, uid), or at
 * (mbox_id, Email id) for JMAP (uid 0; remote_id nil for IMAP). */
int store_change_point_dependents(struct store *st, uint64_t account_id,
    uint64_t change_id, int64_t mbox_id, uint32_t uid,
    struct proto_str remote_id);

/* change_apply.c */
/* Validates b's change results before the transaction; fills out. */
int store_change_results_check(
    const struct proto_batch *b, struct store_out *out);
/* Applies b's change results inside the batch's transaction. */
int store_change_results_apply(struct store *st, uint64_t account_id,
    const struct proto_batch *b, int64_t now_ms);
/* Ends change c as dead (error text) or cancelled, undoing its local
 * effect (and failing or re-pointing the changes that wait on it). */
int store_change_end(struct store *st, const struct store_change_row *c,
    uint8_t state, const char *error, uint64_t job_id, int64_t now_ms);
/*
 * The end of an attempt of drain job job_id (inside the caller's
 * transaction): its inflight changes go back to pending with backoff
 * (dead past STORE_CHANGE_MAX_ATTEMPTS); a step-0 send becomes uncertain
 * when `handed` (a worker may have started SMTP). Then, when active
 * changes remain, a drain job is queued at the earliest next_at.
 */
int store_change_attempt_end(struct store *st, uint64_t account_id,
    uint64_t job_id, bool handed, const char *error, int64_t now_ms,
    uint32_t rand32, struct store_out *out);
/* Queues (or joins) a drain job when the account has active changes,
 * due at the earliest pending next_at (not before now). */
int store_change_queue_drain(struct store *st, uint64_t account_id,
    int64_t now_ms, struct store_out *out);
/*
 * change_sweep.c: re-points active changes whose source mailbox was reset
 * (UIDVALIDITY changed) at the one row with their Message-ID, or ends
 * them dead. Mailboxes not yet synced since the reset (uidnext NULL) wait.
 */
int store_change_retarget(struct store *st, uint64_t account_id,
    uint64_t job_id, int64_t now_ms);

/* change_lease.c: fills run (a drain job being leased) with its changes
 * and SMTP settings, marking the changes inflight. ERR_CRYPTO when the
 * SMTP secret cannot be opened. */
int store_change_lease(struct store *st, struct proto_job_run *run,
    int64_t now_ms, struct store_out *out);

#endif
