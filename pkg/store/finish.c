/*
 * finish.c: worker.result.done, the end of one attempt.
 *
 * Success moves the checkpoints only when every batch 1..nbatches of that
 * attempt was applied (job_batches); otherwise the attempt counts as a
 * failure ("lost batch: got N of M") and is retried. So a checkpoint
 * never gets ahead of the rows it covers, and a re-leased job re-fetches
 * from the old checkpoint. Failure picks FAILED (RETRY_NEVER), DEAD (out
 * of attempts) or QUEUED after queue_backoff_ms().
 *
 * Local changes (docs/drain.md): the end of a drain attempt gives back
 * the changes it carried without a result and queues the next drain; a
 * successful sync re-points changes whose mailbox was reset.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"
#include "store_int.h"

static const char SQL_DONE_BATCHES[]
    = "SELECT count(*), coalesce(max(seq), 0) FROM job_batches"
      " WHERE job_id = ?1 AND attempt = ?2";
static const char SQL_DONE_ATTEMPTS[]
    = "SELECT attempts, max_attempts FROM jobs WHERE id = ?1";
static const char SQL_DONE_KIND[] = "SELECT kind FROM jobs WHERE id = ?1";
static const char SQL_DONE_CHECKPOINT[]
    = "UPDATE mailboxes SET uidvalidity = ?3, uidnext = ?4,"
      " highestmodseq = ?5 WHERE account_id = ?1 AND name = ?2";
static const char SQL_DONE_MAILBOXES[]
    = "SELECT id, name FROM mailboxes WHERE account_id = ?1";
static const char SQL_DONE_MAILBOX_DELETE[]
    = "DELETE FROM mailboxes WHERE id = ?1 RETURNING name";
static const char SQL_DONE_COUNTS[]
    = "UPDATE mailboxes SET"
      " total = (SELECT count(*) FROM messages g"
      "  WHERE g.mailbox_id = mailboxes.id),"
      " unread = (SELECT count(*) FROM messages g"
      "  WHERE g.mailbox_id = mailboxes.id AND g.seen = 0)"
      " WHERE account_id = ?1";
static const char SQL_DONE_JOB[]
    = "UPDATE jobs SET state = 'done', finished_at = ?2, lease_until = NULL,"
      " lease_ms = NULL, last_error = NULL WHERE id = ?1"
      " RETURNING messages, priority, kind";
static const char SQL_DONE_ACCOUNT[]
    = "UPDATE accounts SET last_sync_at = ?2, last_error = NULL,"
      " fail_streak = 0 WHERE id = ?1";
static const char SQL_DONE_BATCHES_DELETE[]
    = "DELETE FROM job_batches WHERE job_id = ?1";

/* Validates the success part of a done message; text in why (size n). */
static int
store_done_check(const struct proto_done *d, char *why, size_t n)
{
	const char *w;
	size_t i;
	int rv;

	for (i = 0; i < d->ncheckpoints; i++) {
		rv = store_check_text(
		    d->checkpoints[i].mailbox, 1, STORE_MAX_MAILBOX, true, &w);
		if (rv != 0) {
			snprintf(why, n, "checkpoints[%zu].mailbox %s", i, w);
			return (ERR_PROTO);
		}
		if (d->checkpoints[i].highestmodseq > INT64_MAX) {
			snprintf(why, n,
			    "checkpoints[%zu].highestmodseq out "
			    "of range",
			    i);
			return (ERR_PROTO);
		}
	}
	if (store_done_states_check(d, why, n) != 0) {
		return (ERR_PROTO);
	}
	for (i = 0; i < d->nmailboxes; i++) {
		rv = store_check_text(
		    d->mailboxes[i], 1, STORE_MAX_MAILBOX, true, &w);
		if (rv != 0) {
			snprintf(why, n, "mailboxes[%zu] %s", i, w);
			return (ERR_PROTO);
		}
	}
	return (ERR_OK);
}

static int
store_str_cmp(const void *a, const void *b)
{
	const struct proto_str *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c;

	c = memcmp(x->p, y->p, n);
	if (c != 0) {
		return (c);
	}
	return (x->len < y->len ? -1 : x->len > y->len);
}

/* Deletes the account's mailboxes that are not in d->mailboxes: first
 * collects their ids (never write a table while a SELECT steps it). */
static int
store_done_prune(struct store *st, uint64_t account_id, uint64_t job_id,
    const struct proto_done *d, int64_t now_ms)
{
	struct proto_str *keep = NULL, key;
	sqlite3_stmt *stmt = NULL;
	int64_t *gone = NULL, *n;
	size_t ngone = 0, cap = 0, i;
	char *name;
	int rc, rv = ERR_OK;

	if (d->nmailboxes > 0) {
		keep = calloc(d->nmailboxes, sizeof(*keep));
		if (keep == NULL) {
			return (ERR_NOMEM);
		}
		memcpy(keep, d->mailboxes, d->nmailboxes * sizeof(*keep));
		qsort(keep, d->nmailboxes, sizeof(*keep), store_str_cmp);
	}
	rv = store_stmt(st, SQL_DONE_MAILBOXES, &stmt);
	if (rv != 0) {
		goto done;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		key.p = (const char *)sqlite3_column_text(stmt, 1);
		key.len = (size_t)sqlite3_column_bytes(stmt, 1);
		if (key.p == NULL) {
			rv = ERR_NOMEM;
			goto done;
		}
		if (keep != NULL
		    && bsearch(&key, keep, d->nmailboxes, sizeof(*keep),
		           store_str_cmp)
		        != NULL) {
			continue;
		}
		if (ngone == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			n = realloc(gone, cap * sizeof(*n));
			if (n == NULL) {
				rv = ERR_NOMEM;
				goto done;
			}
			gone = n;
		}
		gone[ngone++] = sqlite3_column_int64(stmt, 0);
	}
	store_stmt_done(stmt);
	stmt = NULL;
	if (rc != SQLITE_DONE) {
		rv = store_err(rc);
		goto done;
	}
	for (i = 0; i < ngone; i++) {
		rv = store_stmt(st, SQL_DONE_MAILBOX_DELETE, &stmt);
		if (rv != 0) {
			goto done;
		}
		sqlite3_bind_int64(stmt, 1, gone[i]);
		rc = sqlite3_step(stmt);
		name = rc == SQLITE_ROW
		    ? xstrdup((const char *)sqlite3_column_text(stmt, 0))
		    : NULL;
		store_stmt_done(stmt);
		stmt = NULL;
		if (rc != SQLITE_ROW || name == NULL) {
			rv = rc == SQLITE_ROW ? ERR_NOMEM : store_err(rc);
			goto done;
		}
		rv = store_log_event(st, now_ms, account_id, job_id, NULL,
		    "mailbox_removed", name);
		free(name);
		if (rv != 0) {
			goto done;
		}
		log_info("event=mailbox_removed job=%llu account=%llu "
		         "mailbox=%lld",
		    (unsigned long long)job_id, (unsigned long long)account_id,
		    (long long)gone[i]);
	}
done:
	store_stmt_done(stmt);
	free(gone);
	free(keep);
	return (rv);
}

/* The success path, inside the caller's transaction. */
static int
store_done_success(struct store *st, uint64_t account_id,
    const struct proto_done *d, int64_t now_ms, struct store_out *out)
{
	const struct proto_checkpoint *cp;
	sqlite3_stmt *stmt = NULL;
	char detail[64], kind[16] = "";
	uint64_t rows = 0;
	uint8_t prio = 0;
	size_t i;
	int rc, rv;

	for (i = 0; i < d->ncheckpoints; i++) {
		cp = &d->checkpoints[i];
		rv = store_stmt(st, SQL_DONE_CHECKPOINT, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		store_bind_str(stmt, 2, cp->mailbox);
		store_bind_nz(stmt, 3, cp->uidvalidity);
		store_bind_nz(stmt, 4, cp->uidnext);
		store_bind_nz(stmt, 5, (int64_t)cp->highestmodseq);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (rv);
		}
		if (sqlite3_changes(st->db) == 0) {
			log_warnx("event=checkpoint_ignored "
			          "why=unknown_mailbox job=%llu account=%llu "
			          "index=%zu",
			    (unsigned long long)d->job_id,
			    (unsigned long long)account_id, i);
		}
	}
	rv = store_done_states(st, account_id, d, now_ms); /* jmap.c */
	if (rv != 0) {
		return (rv);
	}
	if (d->mailbox_list_complete) {
		rv = store_done_prune(st, account_id, d->job_id, d, now_ms);
		if (rv != 0) {
			return (rv);
		}
	}
	rv = store_stmt(st, SQL_DONE_COUNTS, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		return (rv);
	}
	rv = store_stmt(st, SQL_DONE_JOB, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)d->job_id);
	sqlite3_bind_int64(stmt, 2, now_ms);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		rows = (uint64_t)sqlite3_column_int64(stmt, 0);
		prio = (uint8_t)sqlite3_column_int(stmt, 1);
		snprintf(kind, sizeof(kind), "%s",
		    (const char *)sqlite3_column_text(stmt, 2));
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_ROW) {
		return (store_err(rc == SQLITE_DONE ? SQLITE_ERROR : rc));
	}
	/* A body fetch or a drain is not a sync: the account's sync state
	 * (and so its periodic schedule) stays. */
	rv = strcmp(kind, "sync") != 0 ? ERR_OK
				      : store_stmt(st, SQL_DONE_ACCOUNT, &stmt);
	if (rv != 0) {
		return (rv);
	}
	if (strcmp(kind, "sync") == 0) {
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		sqlite3_bind_int64(stmt, 2, now_ms / 1000);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (rv);
		}
	}
	rv = store_stmt(st, SQL_DONE_BATCHES_DELETE, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)d->job_id);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		return (rv);
	}
	snprintf(
	    detail, sizeof(detail), "%llu messages", (unsigned long long)rows);
	rv = store_log_event(
	    st, now_ms, account_id, d->job_id, kind, "done", detail);
	if (rv != 0) {
		return (rv);
	}
	store_out_job_event(out, EV_JOB_FINISHED, d->job_id, account_id,
	    JOB_DONE, prio, d->attempt, 0, 0, now_ms);
	log_info("event=job_done job=%llu account=%llu attempt=%u rows=%llu",
	    (unsigned long long)d->job_id, (unsigned long long)account_id,
	    d->attempt, (unsigned long long)rows);
	return (ERR_OK);
}

int
store_apply_done(struct store *st, const struct proto_done *d, int64_t now_ms,
    uint32_t rand32, struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	char error[STORE_MAX_ERROR + 128];
	const char *why;
	uint64_t account_id, got = 0, maxseq = 0;
	uint32_t attempts = 0, max_attempts = 1;
	uint8_t target, state, kind = JOB_KIND_SYNC;
	int status = d->status, retry = d->retry, rc, rv;

	/* Normalise the failure description; never trust it blindly. */
	error[0] = '\0';
	if (status > 0) {
		snprintf(error, sizeof(error), "worker sent invalid status %d",
		    status);
		status = ERR_PROTO;
	} else if (status < 0) {
		if (d->error.p == NULL || d->error.len == 0) {
			snprintf(error, sizeof(error), "%s", err_str(status));
		} else if (store_check_text(
		               d->error, 1, STORE_MAX_ERROR, false, &why)
		    != 0) {
			snprintf(error, sizeof(error),
			    "%s (worker error text %s)", err_str(status), why);
		} else {
			snprintf(error, sizeof(error), "%.*s",
			    (int)d->error.len, d->error.p);
		}
	} else if (store_done_check(d, error, sizeof(error)) != 0) {
		status = ERR_PROTO;
		retry = RETRY_LATER;
	}
	if (retry > RETRY_NEVER) {
		retry = RETRY_LATER;
	}
	rv = store_begin(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "begin"));
	}
	rv = store_job_fence(st, d->job_id, d->attempt, &account_id, out);
	if (rv != 0) {
		goto fail;
	}
	rv = store_stmt(st, SQL_DONE_KIND, &stmt);
	if (rv != 0) {
		goto dbfail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)d->job_id);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		(void)proto_job_kind_parse(
		    (const char *)sqlite3_column_text(stmt, 0), &kind);
	}
	store_stmt_done(stmt);
	if (status == 0) {
		rv = store_stmt(st, SQL_DONE_BATCHES, &stmt);
		if (rv != 0) {
			goto dbfail;
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)d->job_id);
		sqlite3_bind_int64(stmt, 2, d->attempt);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			got = (uint64_t)sqlite3_column_int64(stmt, 0);
			maxseq = (uint64_t)sqlite3_column_int64(stmt, 1);
		}
		store_stmt_done(stmt);
		if (rc != SQLITE_ROW) {
			rv = store_err(rc);
			goto dbfail;
		}
		/* seqs are unique and >= 1: count == max == n means 1..n */
		if (got != d->nbatches || maxseq != d->nbatches) {
			snprintf(error, sizeof(error),
			    "lost batch: got %llu of %u",
			    (unsigned long long)got, d->nbatches);
			status = ERR_IO;
			retry = RETRY_LATER;
		}
	}
	if (status == 0) {
		rv = store_done_success(st, account_id, d, now_ms, out);
		if (rv == 0 && kind == JOB_KIND_SYNC) {
			/* every batch is in: a reset mailbox is complete */
			rv = store_change_retarget(
			    st, account_id, d->job_id, now_ms);
		}
		if (rv != 0) {
			goto dbfail;
		}
		snprintf(error, sizeof(error),
		    "the worker reported no result for it");
	} else {
		rv = store_stmt(st, SQL_DONE_ATTEMPTS, &stmt);
		if (rv != 0) {
			goto dbfail;
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)d->job_id);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			attempts = (uint32_t)sqlite3_column_int64(stmt, 0);
			max_attempts = (uint32_t)sqlite3_column_int64(stmt, 1);
		}
		store_stmt_done(stmt);
		if (retry == RETRY_NEVER) {
			target = JOB_FAILED;
		} else if (attempts >= max_attempts) {
			target = JOB_DEAD;
		} else {
			target = JOB_QUEUED;
		}
		rv = store_job_end_failure(st, d->job_id, account_id,
		    d->attempt, target,
		    now_ms
		        + (retry == RETRY_NOW
		                ? 0
		                : queue_backoff_ms(attempts, rand32)),
		    status, error, now_ms, out, &state);
		if (rv != 0) {
			goto fail;
		}
	}
	if (kind == JOB_KIND_DRAIN) {
		rv = store_change_attempt_end(st, account_id, d->job_id, true,
		    error, now_ms, rand32, out);
		if (rv != 0) {
			goto fail;
		}
	}
	rv = store_commit(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "commit"));
	}
	out->reply.id = d->job_id;
	return (ERR_OK);
dbfail:
	store_out_dbfail(out, st, rv, "finishing job");
fail:
	store_rollback(st);
	return (rv);
}
