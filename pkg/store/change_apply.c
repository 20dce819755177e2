/*
 * change_apply.c: how a change ends (docs/drain.md): the results a drain
 * worker reports (batch.change_results, applied in the batch's fenced
 * transaction), the end of a drain attempt (changes without a result go
 * back to pending, or become uncertain), the undo of a dead or cancelled
 * change (change_sweep.c re-points changes after a mailbox reset and
 * makes sure no change is stranded).
 *
 * Undo, so that the next sync brings back the server's truth:
 *   flag         the overlay stops; the mailbox's highestmodseq is lowered
 *                below the row's modseq (the flags are fetched again);
 *   move/delete  the placeholder is deleted; the source mailbox's uidnext
 *                is lowered to the change's UID (its rows are fetched
 *                again); changes that waited on the placeholder are
 *                pointed back at the source;
 *   append/send  the placeholder is deleted (the raw message stays in the
 *                change row); changes that waited on it end dead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"
#include "store_int.h"

#define STORE_MAX_CHANGE_REMOTE_ID 256

/* Jitter for a backoff where no random number was passed in (a batch):
 * a mix of the change id, its attempts and the time. */
static uint32_t
change_jitter(uint64_t id, uint32_t attempts, int64_t now_ms)
{
	uint64_t z = id * 0x9e3779b97f4a7c15ULL + attempts
	    + (uint64_t)now_ms * 0xbf58476d1ce4e5b9ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return ((uint32_t)(z ^ (z >> 31)));
}

static const char SQL_CHANGE_STATE[]
    = "UPDATE pending_changes SET state = ?2, last_error = ?3,"
      " updated_at = ?4 WHERE id = ?1";
static const char SQL_CHANGE_PENDING[]
    = "UPDATE pending_changes SET state = 'pending', next_at = ?2,"
      " last_error = ?3, updated_at = ?4 WHERE id = ?1";
static const char SQL_CHANGE_DONE[]
    = "UPDATE pending_changes SET state = 'done', result_mailbox = ?2,"
      " result_uid = ?3, last_error = NULL, updated_at = ?4 WHERE id = ?1";
static const char SQL_CHANGE_SENT[]
    = "UPDATE pending_changes SET step = 1, updated_at = ?2 WHERE id = ?1";

/* Sets change id's state and last_error (NULL: cleared). */
static int
change_set_state(struct store *st, uint64_t id, uint8_t state,
    const char *error, int64_t now_ms)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	rv = store_stmt(st, SQL_CHANGE_STATE, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)id);
	sqlite3_bind_text(
	    stmt, 2, proto_change_state_name(state), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, now_ms);
	return (store_stmt_exec(stmt));
}

/* One sync_log row for a change outcome (kind 'change'). */
static int
change_log(struct store *st, const struct store_change_row *c, uint64_t job_id,
    const char *outcome, const char *text, int64_t now_ms)
{
	char detail[STORE_MAX_ERROR + 128];

	snprintf(detail, sizeof(detail), "change %llu (%s)%s%.*s",
	    (unsigned long long)c->id, proto_change_kind_name(c->kind),
	    text != NULL ? ": " : "", STORE_MAX_ERROR,
	    text != NULL ? text : "");
	return (store_log_event(
	    st, now_ms, c->account_id, job_id, "change", outcome, detail));
}

/*
 * Steps stmt (bound by the caller) to its end, collecting its first
 * column into a malloc'd array (*ids_r, caller frees, also on error).
 * Resets stmt.
 */
static int
collect_ids(sqlite3_stmt *stmt, uint64_t **ids_r, size_t *n_r)
{
	uint64_t *n;
	size_t cap = 0;
	int rc, rv = 0;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (*n_r == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			n = realloc(*ids_r, cap * sizeof(*n));
			if (n == NULL) {
				rv = ERR_NOMEM;
				break;
			}
			*ids_r = n;
		}
		(*ids_r)[(*n_r)++] = (uint64_t)sqlite3_column_int64(stmt, 0);
	}
	store_stmt_done(stmt);
	if (rv == 0 && rc != SQLITE_DONE) {
		rv = store_err(rc);
	}
	return (rv);
}

/* Undo ------------------------------------------------------------------- */

static const char SQL_UNDO_PLACEHOLDER[]
    = "DELETE FROM messages WHERE id = ?1 AND uid IS NULL AND remote_id = ?2";
static const char SQL_UNDO_UIDNEXT[]
    = "UPDATE mailboxes SET uidnext = min(uidnext, ?4) WHERE account_id = ?1"
      " AND name = ?2 AND uidvalidity IS ?3 AND uidnext IS NOT NULL";
static const char SQL_UNDO_MODSEQ_ROW[]
    = "UPDATE mailboxes SET highestmodseq = CASE"
      " WHEN m.modseq IS NULL OR m.modseq <= 1 THEN NULL"
      " ELSE min(highestmodseq, m.modseq - 1) END"
      " FROM (SELECT mailbox_id, modseq FROM messages WHERE id = ?1) AS m"
      " WHERE mailboxes.id = m.mailbox_id AND highestmodseq IS NOT NULL";
static const char SQL_UNDO_MODSEQ_MAILBOX[]
    = "UPDATE mailboxes SET highestmodseq = NULL WHERE account_id = ?1"
      " AND name = ?2 AND uidvalidity IS ?3";
static const char SQL_UNDO_REPOINT[]
    = "UPDATE pending_changes SET mailbox = ?3, uidvalidity = ?4, uid = ?5,"
      " remote_id = ?6 WHERE account_id = ?1 AND state IN " STORE_CHANGE_ACTIVE
      " AND uid IS NULL AND remote_id = ?2";
static const char SQL_UNDO_WAITING[]
    = "SELECT id FROM pending_changes WHERE account_id = ?1"
      " AND state IN " STORE_CHANGE_ACTIVE " AND uid IS NULL"
      " AND remote_id = ?2 ORDER BY id";

/* Ends every active change waiting on placeholder key as dead. */
static int
undo_waiting(struct store *st, const struct store_change_row *c,
    const char *key, const char *why, uint64_t job_id, int64_t now_ms)
{
	struct store_change_row w;
	sqlite3_stmt *stmt = NULL;
	uint64_t *ids = NULL;
	size_t nids = 0, i;
	char error[128];
	int rv;

	rv = store_stmt(st, SQL_UNDO_WAITING, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)c->account_id);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	rv = collect_ids(stmt, &ids, &nids);
	snprintf(error, sizeof(error), "change %llu, which it needs, %s",
	    (unsigned long long)c->id, why);
	for (i = 0; rv == 0 && i < nids; i++) {
		rv = store_change_read(st, ids[i], &w);
		if (rv != 0) {
			break;
		}
		rv = store_change_end(
		    st, &w, CHANGE_DEAD, error, job_id, now_ms);
		store_change_row_release(&w);
	}
	free(ids);
	return (rv);
}

/* Binds (?1 account, ?2 mailbox, ?3 uidvalidity) of c's source. */
static void
bind_source(sqlite3_stmt *stmt, const struct store_change_row *c)
{
	sqlite3_bind_int64(stmt, 1, (int64_t)c->account_id);
	sqlite3_bind_text(stmt, 2, c->mailbox, -1, SQLITE_STATIC);
	store_bind_nz(stmt, 3, c->uidvalidity);
}

static int
undo_flag(struct store *st, const struct store_change_row *c)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	if (c->message_id != 0) {
		rv = store_stmt(st, SQL_UNDO_MODSEQ_ROW, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)c->message_id);
	} else if (c->mailbox != NULL) {
		rv = store_stmt(st, SQL_UNDO_MODSEQ_MAILBOX, &stmt);
		if (rv != 0) {
			return (rv);
		}
		bind_source(stmt, c);
	} else {
		return (ERR_OK);
	}
	return (store_stmt_exec(stmt));
}

/* Move/delete: the source's uidnext, and the changes that waited on the
 * placeholder now act on the source again. */
static int
undo_move(struct store *st, const struct store_change_row *c, const char *key)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	if (c->uid != 0 && c->mailbox != NULL) {
		rv = store_stmt(st, SQL_UNDO_UIDNEXT, &stmt);
		if (rv != 0) {
			return (rv);
		}
		bind_source(stmt, c);
		sqlite3_bind_int64(stmt, 4, c->uid);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (rv);
		}
	}
	rv = store_stmt(st, SQL_UNDO_REPOINT, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)c->account_id);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, c->mailbox, -1, SQLITE_STATIC);
	store_bind_nz(stmt, 4, c->uidvalidity);
	store_bind_nz(stmt, 5, c->uid);
	sqlite3_bind_text(stmt, 6, c->remote_id, -1, SQLITE_STATIC);
	return (store_stmt_exec(stmt));
}

/* Undoes the local effect of c (docs/drain.md). */
static int
change_undo(struct store *st, const struct store_change_row *c,
    uint64_t job_id, int64_t now_ms)
{
	sqlite3_stmt *stmt = NULL;
	char key[32];
	int rv;

	if (c->kind == CHANGE_FLAG) {
		return (undo_flag(st, c));
	}
	snprintf(key, sizeof(key), STORE_PLACEHOLDER_PFX "%llu",
	    (unsigned long long)c->id);
	if (c->message_id != 0) {
		rv = store_stmt(st, SQL_UNDO_PLACEHOLDER, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)c->message_id);
		sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (rv);
		}
	}
	if (c->kind == CHANGE_MOVE || c->kind == CHANGE_DELETE) {
		return (undo_move(st, c, key));
	}
	return (undo_waiting(st, c, key, "did not land", job_id, now_ms));
}

int
store_change_end(struct store *st, const struct store_change_row *c,
    uint8_t state, const char *error, uint64_t job_id, int64_t now_ms)
{
	int rv;

	rv = change_set_state(st, c->id, state, error, now_ms);
	if (rv != 0) {
		return (rv);
	}
	/* the log's outcomes: a cancel is a failure of the change */
	rv = change_log(st, c, job_id,
	    state == CHANGE_DEAD ? "dead" : "failed", error, now_ms);
	if (rv != 0) {
		return (rv);
	}
	log_info("event=change_%s change=%llu account=%llu job=%llu "
	         "error=\"%s\"",
	    proto_change_state_name(state), (unsigned long long)c->id,
	    (unsigned long long)c->account_id, (unsigned long long)job_id,
	    error != NULL ? error : "");
	/* A dead change was undone already (a cancel after it). */
	if (c->state == CHANGE_DEAD) {
		return (ERR_OK);
	}
	return (change_undo(st, c, job_id, now_ms));
}

/* Transient failure: pending with backoff, or dead past the limit. */
static int
change_retry(struct store *st, const struct store_change_row *c,
    const char *error, uint64_t job_id, int64_t now_ms, uint32_t rand32)
{
	sqlite3_stmt *stmt = NULL;
	char text[STORE_MAX_ERROR + 64];
	int64_t next;
	int rv;

	if (c->attempts >= STORE_CHANGE_MAX_ATTEMPTS) {
		snprintf(text, sizeof(text), "gave up after %u attempts: %s",
		    c->attempts, error);
		return (store_change_end(
		    st, c, CHANGE_DEAD, text, job_id, now_ms));
	}
	next = now_ms
	    + queue_backoff_ms(c->attempts > 0 ? c->attempts : 1,
	        rand32 ^ change_jitter(c->id, c->attempts, now_ms));
	rv = store_stmt(st, SQL_CHANGE_PENDING, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)c->id);
	sqlite3_bind_int64(stmt, 2, next);
	sqlite3_bind_text(stmt, 3, error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, now_ms);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		return (rv);
	}
	return (change_log(st, c, job_id, "retry", error, now_ms));
}

/* Results ---------------------------------------------------------------- */

int
store_change_results_check(const struct proto_batch *b, struct store_out *out)
{
	const struct proto_change_result *r;
	const char *why;
	size_t i;
	int rv;

	if (b->nchange_results > PROTO_MAX_CHANGES) {
		return (store_out_fail(out, ERR_TOOBIG,
		    "batch has %zu change results, more than %u",
		    b->nchange_results, PROTO_MAX_CHANGES));
	}
	for (i = 0; i < b->nchange_results; i++) {
		r = &b->change_results[i];
		if (r->id == 0 || r->id > INT64_MAX) {
			return (store_out_fail(out, ERR_PROTO,
			    "change_results[%zu].id is invalid", i));
		}
		if (r->outcome > CHANGE_OUT_UNCERTAIN) {
			return (store_out_fail(out, ERR_PROTO,
			    "change_results[%zu].outcome %u is unknown", i,
			    r->outcome));
		}
		rv = r->error.p == NULL ? 0
		                        : store_check_text(r->error, 0,
		                            STORE_MAX_ERROR, false, &why);
		if (rv == 0 && r->mailbox.p != NULL) {
			rv = store_check_text(
			    r->mailbox, 1, STORE_MAX_MAILBOX, true, &why);
		}
		if (rv == 0 && r->remote_id.p != NULL) {
			rv = store_check_text(r->remote_id, 1,
			    STORE_MAX_CHANGE_REMOTE_ID, true, &why);
		}
		if (rv != 0) {
			return (store_out_fail(out, ERR_PROTO,
			    "change_results[%zu]: a text field %s", i, why));
		}
	}
	return (ERR_OK);
}

static const char SQL_DONE_PLACEHOLDER[]
    = "SELECT id FROM messages WHERE id = ?1 AND uid IS NULL"
      " AND remote_id = ?2";
static const char SQL_DONE_CLEAR_SLOT[]
    = "DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2 AND id <> ?3";
static const char SQL_DONE_FILL[]
    = "UPDATE messages SET mailbox_id = ?2, uid = nullif(?3, 0),"
      " remote_id = ?4 WHERE id = ?1";
/* JMAP: the row a sync inserted for the Email meanwhile */
static const char SQL_DONE_CLEAR_EMAIL[]
    = "DELETE FROM messages WHERE mailbox_id = ?1 AND remote_id = ?2"
      " AND id <> ?3";

/* done of a move, delete to Trash, append or send: the placeholder gets
 * its UID (or goes when the server did not say where the message is). */
static int
result_placeholder(struct store *st, const struct store_change_row *c,
    const struct proto_change_result *r, uint64_t job_id, int64_t now_ms)
{
	sqlite3_stmt *stmt = NULL;
	char key[32];
	int64_t ph = 0, mbox_id = 0;
	bool jmap = store_row_is_jmap(r->uid, r->remote_id);
	int rc, rv;

	snprintf(key, sizeof(key), STORE_PLACEHOLDER_PFX "%llu",
	    (unsigned long long)c->id);
	if (r->mailbox.p != NULL) {
		rv = store_mailbox_find(
		    st, c->account_id, r->mailbox, &mbox_id);
		if (rv != 0) {
			return (rv);
		}
	}
	if (c->message_id != 0) {
		rv = store_stmt(st, SQL_DONE_PLACEHOLDER, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)c->message_id);
		sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		ph = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
		store_stmt_done(stmt);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			return (store_err(rc));
		}
	}
	if ((r->uid == 0 && !jmap) || mbox_id == 0) {
		/* where it landed is unknown: the next sync brings it */
		if (ph != 0) {
			rv = store_stmt(st, SQL_UNDO_PLACEHOLDER, &stmt);
			if (rv != 0) {
				return (rv);
			}
			sqlite3_bind_int64(stmt, 1, ph);
			sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
			rv = store_stmt_exec(stmt);
			if (rv != 0) {
				return (rv);
			}
		}
		return (undo_waiting(st, c, key,
		    "landed but the server did not say under which UID",
		    job_id, now_ms));
	}
	if (ph != 0) {
		/* a sync may have inserted the row already: the placeholder
		 * (whose id the user knows) wins */
		rv = store_stmt(st,
		    jmap ? SQL_DONE_CLEAR_EMAIL : SQL_DONE_CLEAR_SLOT, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, mbox_id);
		if (jmap) {
			store_bind_str(stmt, 2, r->remote_id);
		} else {
			sqlite3_bind_int64(stmt, 2, r->uid);
		}
		sqlite3_bind_int64(stmt, 3, ph);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (rv);
		}
		rv = store_stmt(st, SQL_DONE_FILL, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, ph);
		sqlite3_bind_int64(stmt, 2, mbox_id);
		sqlite3_bind_int64(stmt, 3, r->uid);
		store_bind_str(stmt, 4, r->remote_id);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (rv);
		}
	}
	return (store_change_point_dependents(st, c->account_id, c->id,
	    mbox_id, r->uid, jmap ? r->remote_id : proto_str_c(NULL)));
}

static int
result_done(struct store *st, const struct store_change_row *c,
    const struct proto_change_result *r, uint64_t job_id, int64_t now_ms)
{
	sqlite3_stmt *stmt = NULL;
	char text[STORE_MAX_MAILBOX + 64];
	int rv;

	rv = store_stmt(st, SQL_CHANGE_DONE, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)c->id);
	store_bind_str(stmt, 2, r->mailbox);
	store_bind_nz(stmt, 3, r->uid);
	sqlite3_bind_int64(stmt, 4, now_ms);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		return (rv);
	}
	if (r->mailbox.p != NULL) {
		snprintf(text, sizeof(text), "in '%.*s' uid %u",
		    STORE_PS(r->mailbox), r->uid);
	}
	rv = change_log(
	    st, c, job_id, "done", r->mailbox.p != NULL ? text : NULL, now_ms);
	if (rv != 0) {
		return (rv);
	}
	switch (c->kind) {
	case CHANGE_MOVE:
	case CHANGE_APPEND:
	case CHANGE_SEND:
		return (result_placeholder(st, c, r, job_id, now_ms));
	case CHANGE_DELETE:
		return (c->expunge
		        ? ERR_OK
		        : result_placeholder(st, c, r, job_id, now_ms));
	default:
		return (ERR_OK);
	}
}

/* The worker's words, or a default, as a C string in buf. */
static const char *
result_error(const struct proto_change_result *r, char *buf, size_t n)
{
	if (r->error.p == NULL || r->error.len == 0) {
		snprintf(buf, n, "the worker gave no reason");
	} else {
		snprintf(buf, n, "%.*s", (int)r->error.len, r->error.p);
	}
	return (buf);
}

static int
result_apply(struct store *st, const struct store_change_row *c,
    const struct proto_change_result *r, uint64_t job_id, int64_t now_ms)
{
	char error[STORE_MAX_ERROR + 1];
	sqlite3_stmt *stmt = NULL;
	int rv;

	switch (r->outcome) {
	case CHANGE_OUT_DONE:
		return (result_done(st, c, r, job_id, now_ms));
	case CHANGE_OUT_SENT:
		if (c->kind != CHANGE_SEND) {
			log_warnx("event=change_result_ignored change=%llu "
			          "why=sent_for_%s",
			    (unsigned long long)c->id,
			    proto_change_kind_name(c->kind));
			return (ERR_OK);
		}
		rv = store_stmt(st, SQL_CHANGE_SENT, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)c->id);
		sqlite3_bind_int64(stmt, 2, now_ms);
		return (store_stmt_exec(stmt));
	case CHANGE_OUT_DEAD:
		return (store_change_end(st, c, CHANGE_DEAD,
		    result_error(r, error, sizeof(error)), job_id, now_ms));
	case CHANGE_OUT_UNCERTAIN:
		if (c->kind == CHANGE_SEND && c->step == 0) {
			result_error(r, error, sizeof(error));
			rv = change_set_state(
			    st, c->id, CHANGE_UNCERTAIN, error, now_ms);
			return (rv != 0 ? rv
			                : change_log(st, c, job_id, "failed",
			                    error, now_ms));
		}
		/* only a send can be half done: anything else retries */
		/* FALLTHROUGH */
	default: /* CHANGE_OUT_RETRY */
		return (change_retry(st, c,
		    result_error(r, error, sizeof(error)), job_id, now_ms, 0));
	}
}

int
store_change_results_apply(struct store *st, uint64_t account_id,
    const struct proto_batch *b, int64_t now_ms)
{
	const struct proto_change_result *r;
	struct store_change_row c;
	size_t i;
	int rv = ERR_OK;

	for (i = 0; i < b->nchange_results && rv == 0; i++) {
		r = &b->change_results[i];
		rv = store_change_read(st, r->id, &c);
		if (rv == ERR_NOTFOUND) {
			rv = ERR_OK;
			log_warnx("event=change_result_ignored change=%llu "
			          "job=%llu why=unknown_change",
			    (unsigned long long)r->id,
			    (unsigned long long)b->job_id);
			continue;
		}
		if (rv != 0) {
			break;
		}
		/* Only a change this job carries (the batch is fenced by
		 * attempt): anything else is stale. */
		if (c.account_id != account_id || c.state != CHANGE_INFLIGHT
		    || c.job_id != b->job_id) {
			log_warnx("event=change_result_ignored change=%llu "
			          "job=%llu why=stale state=%s",
			    (unsigned long long)r->id,
			    (unsigned long long)b->job_id,
			    proto_change_state_name(c.state));
		} else {
			rv = result_apply(st, &c, r, b->job_id, now_ms);
		}
		store_change_row_release(&c);
	}
	return (rv);
}

/* The end of an attempt ------------------------------------------------- */

static const char SQL_ATTEMPT_INFLIGHT[]
    = "SELECT id FROM pending_changes WHERE account_id = ?1"
      " AND state = 'inflight' AND job_id = ?2 ORDER BY id";
/* The earliest due time of a change that can run. */
static const char SQL_DRAIN_NEXT[]
    = "SELECT min(c.next_at) FROM pending_changes c WHERE c.account_id = ?1"
      " AND" STORE_CHANGE_RUNNABLE;

int
store_change_queue_drain(struct store *st, uint64_t account_id, int64_t now_ms,
    struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	uint64_t job_id;
	int64_t due;
	int rc, rv;

	rv = store_stmt(st, SQL_DRAIN_NEXT, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "queueing drain"));
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		store_stmt_done(stmt);
		return (store_out_dbfail(
		    out, st, store_err(rc), "queueing drain"));
	}
	if (sqlite3_column_type(stmt, 0) == SQLITE_NULL) {
		store_stmt_done(stmt);
		return (ERR_OK); /* nothing left to carry */
	}
	due = sqlite3_column_int64(stmt, 0);
	store_stmt_done(stmt);
	return (store_job_enqueue(st, account_id, JOB_KIND_DRAIN, PRIO_USER,
	    due > now_ms ? due : now_ms, now_ms, out, &job_id));
}

int
store_change_attempt_end(struct store *st, uint64_t account_id,
    uint64_t job_id, bool handed, const char *error, int64_t now_ms,
    uint32_t rand32, struct store_out *out)
{
	struct store_change_row c;
	sqlite3_stmt *stmt = NULL;
	uint64_t *ids = NULL;
	size_t nids = 0, i;
	char text[STORE_MAX_ERROR + 160];
	int rv;

	rv = store_stmt(st, SQL_ATTEMPT_INFLIGHT, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "ending changes"));
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	sqlite3_bind_int64(stmt, 2, (int64_t)job_id);
	rv = collect_ids(stmt, &ids, &nids);
	for (i = 0; rv == 0 && i < nids; i++) {
		rv = store_change_read(st, ids[i], &c);
		if (rv != 0) {
			break;
		}
		if (c.kind == CHANGE_SEND && c.step == 0 && handed) {
			/* SMTP may have begun: never sent twice unasked */
			snprintf(text, sizeof(text),
			    "the drain attempt ended without a result while "
			    "the message may have been handed to SMTP; it may "
			    "have been delivered (%s)",
			    error);
			rv = change_set_state(
			    st, c.id, CHANGE_UNCERTAIN, text, now_ms);
			if (rv == 0) {
				rv = change_log(
				    st, &c, job_id, "failed", text, now_ms);
			}
		} else {
			snprintf(text, sizeof(text),
			    "the drain attempt ended without a result: %s",
			    error);
			rv = change_retry(
			    st, &c, text, job_id, now_ms, rand32);
		}
		store_change_row_release(&c);
	}
	free(ids);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "ending changes"));
	}
	return (store_change_queue_drain(st, account_id, now_ms, out));
}
