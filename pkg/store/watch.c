/*
 * watch.c: worker.watch.event from mailsync-watch, the holder of an
 * account's JOB_KIND_WATCH job (docs/architecture.md, "Push").
 *
 * Every event is fenced like a batch (the job is LEASED, of kind watch,
 * in this attempt) and renews the lease by the job's lease length (a
 * heartbeat; EV_JOB_PROGRESS tells the scheduler, due_at carrying the new
 * lease_until). An event with changed == true also queues a user-priority
 * sync job for the account, or joins the queued one (store_job_enqueue
 * coalesces), in the same transaction; EV_JOB_QUEUED makes the scheduler
 * lease it at once.
 */
#include <string.h>

#include "store_int.h"

static const char SQL_WATCH_KIND[] = "SELECT kind FROM jobs WHERE id = ?1";
static const char SQL_WATCH_RENEW[]
    = "UPDATE jobs SET lease_until = max(lease_until, ?2 + lease_ms)"
      " WHERE id = ?1 RETURNING lease_until";

int
store_watch_event(struct store *st, const struct proto_watch_event *w,
    int64_t now_ms, struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	uint64_t account_id = 0, sync_id = 0;
	int64_t lease_until = 0;
	const char *why;
	bool is_watch = false;
	int rc, rv;

	if (w->mailbox.p != NULL
	    && store_check_text(w->mailbox, 0, STORE_MAX_MAILBOX, true, &why)
	        != 0) {
		return (store_out_fail(out, ERR_INVAL, "mailbox: %s", why));
	}
	rv = store_begin(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "begin"));
	}
	rv = store_job_fence(st, w->job_id, w->attempt, &account_id, out);
	if (rv != 0) {
		goto fail;
	}
	rv = store_stmt(st, SQL_WATCH_KIND, &stmt);
	if (rv != 0) {
		goto dbfail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)w->job_id);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		is_watch = strcmp((const char *)sqlite3_column_text(stmt, 0),
		               store_kind_name(JOB_KIND_WATCH))
		    == 0;
	}
	store_stmt_done(stmt);
	if (!is_watch) {
		rv = store_out_fail(out, ERR_INVAL,
		    "job %llu is not a watch job",
		    (unsigned long long)w->job_id);
		goto fail;
	}
	rv = store_stmt(st, SQL_WATCH_RENEW, &stmt);
	if (rv != 0) {
		goto dbfail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)w->job_id);
	sqlite3_bind_int64(stmt, 2, now_ms);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		lease_until = sqlite3_column_int64(stmt, 0);
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_ROW) {
		rv = store_err(rc == SQLITE_DONE ? SQLITE_ERROR : rc);
		goto dbfail;
	}
	if (w->changed) {
		rv = store_job_enqueue(st, account_id, JOB_KIND_SYNC, PRIO_USER,
		    now_ms, now_ms, out, &sync_id);
		if (rv != 0) {
			goto fail;
		}
	}
	rv = store_commit(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "commit"));
	}
	out->reply.id = w->job_id;
	store_out_job_event(out, EV_JOB_PROGRESS, w->job_id, account_id,
	    JOB_LEASED, 0, w->attempt, lease_until, 0, now_ms);
	if (w->changed) {
		log_info("event=watch_changed job=%llu account=%llu "
		         "mailbox=\"%.*s\" sync_job=%llu",
		    (unsigned long long)w->job_id,
		    (unsigned long long)account_id, STORE_PS(w->mailbox),
		    (unsigned long long)sync_id);
	}
	return (ERR_OK);
dbfail:
	store_out_dbfail(out, st, rv, "watch event");
fail:
	store_rollback(st);
	return (rv);
}
