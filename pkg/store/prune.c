/*
 * prune.c: keeps the history tables bounded.
 *
 * Every job leaves a `jobs` row and a few `sync_log` rows; at tens of
 * thousands of accounts syncing every few minutes that is millions of
 * rows a day. The store process calls store_prune() periodically: it
 * deletes finished jobs (done, failed, dead) that ended before the job
 * horizon and log rows older than the log horizon, at most max_rows of
 * each per call, each in its own short transaction so that pruning never
 * holds the write lock for long. Ids grow with time, so the oldest rows
 * are found at the start of a rowid scan without an extra index.
 * Local changes that ended done or cancelled go with the job horizon (by
 * updated_at); dead and uncertain ones wait for the user's decision.
 */
#include "store_int.h"

static const char SQL_PRUNE_JOBS[]
    = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
      " WHERE state IN ('done', 'failed', 'dead') AND finished_at < ?1"
      " ORDER BY id LIMIT ?2)";

static const char SQL_PRUNE_CHANGES[]
    = "DELETE FROM pending_changes WHERE id IN (SELECT id FROM"
      " pending_changes WHERE state IN ('done', 'cancelled')"
      " AND updated_at < ?1 ORDER BY id LIMIT ?2)";

static const char SQL_PRUNE_LOG[]
    = "DELETE FROM sync_log WHERE id IN (SELECT id FROM sync_log"
      " WHERE at < ?1 ORDER BY id LIMIT ?2)";

static int
prune_one(struct store *st, const char *sql, int64_t before,
    uint32_t max_rows, uint64_t *n_r)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	rv = store_begin(st);
	if (rv != 0) {
		return (rv);
	}
	rv = store_stmt(st, sql, &stmt);
	if (rv != 0) {
		goto fail;
	}
	sqlite3_bind_int64(stmt, 1, before);
	sqlite3_bind_int64(stmt, 2, (int64_t)max_rows);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		goto fail;
	}
	*n_r += (uint64_t)sqlite3_changes(st->db);
	return (store_commit(st));
fail:
	store_rollback(st);
	return (rv);
}

int
store_prune(struct store *st, int64_t now_ms, int64_t keep_jobs_ms,
    int64_t keep_log_ms, uint32_t max_rows, uint64_t *deleted_r)
{
	int rv;

	*deleted_r = 0;
	if (keep_jobs_ms <= 0 || keep_log_ms <= 0 || max_rows == 0) {
		return (ERR_INVAL);
	}
	rv = prune_one(st, SQL_PRUNE_JOBS, now_ms - keep_jobs_ms, max_rows,
	    deleted_r);
	if (rv == 0) {
		rv = prune_one(st, SQL_PRUNE_CHANGES, now_ms - keep_jobs_ms,
		    max_rows, deleted_r);
	}
	if (rv == 0) {
		rv = prune_one(st, SQL_PRUNE_LOG, now_ms - keep_log_ms,
		    max_rows, deleted_r);
	}
	return (rv);
}
