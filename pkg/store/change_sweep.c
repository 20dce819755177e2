/*
 * change_sweep.c: the passes over an account's changes that are not
 * driven by a drain result (docs/drain.md):
 *   - retarget: after a successful sync and at each drain lease, an
 *     active change whose source mailbox was reset (UIDVALIDITY changed)
 *     is pointed at the one row of that mailbox with its Message-ID, or
 *     ends dead;
 *   - maintenance (mailsync-store, every minute): changes left inflight
 *     under a job that is no longer leased are given back, and a drain
 *     job is queued for an account with a due change and none queued or
 *     leased, so a change can never be stranded.
 */
#include <stdlib.h>

#include "store_int.h"

/* Retarget after a reset ------------------------------------------------ */

static const char SQL_RETARGET_FIND[]
    = "SELECT c.id, x.id, x.uidvalidity FROM pending_changes c"
      " JOIN mailboxes x ON x.account_id = c.account_id AND x.name = c.mailbox"
      " WHERE c.account_id = ?1 AND c.state IN " STORE_CHANGE_ACTIVE
      " AND c.kind IN ('flag', 'move', 'delete') AND c.uid IS NOT NULL"
      " AND c.uidvalidity IS NOT NULL AND x.uidvalidity IS NOT NULL"
      " AND x.uidvalidity <> c.uidvalidity AND x.uidnext IS NOT NULL"
      " ORDER BY c.id";
static const char SQL_RETARGET_ROWS[]
    = "SELECT id, uid FROM messages WHERE account_id = ?1"
      " AND message_id = ?2 AND mailbox_id = ?3 AND uid IS NOT NULL LIMIT 2";
static const char SQL_RETARGET_SET[]
    = "UPDATE pending_changes SET uidvalidity = ?2, uid = ?3,"
      " message_id = CASE WHEN kind = 'flag' THEN ?4 ELSE message_id END,"
      " updated_at = ?5 WHERE id = ?1";
static const char SQL_RETARGET_DROP[] = "DELETE FROM messages WHERE id = ?1";

struct retarget {
	uint64_t change_id;
	int64_t mbox_id;
	uint32_t uidvalidity;
};

/* Re-points one change at the one row with its Message-ID, or ends it. */
static int
retarget_one(struct store *st, const struct retarget *t, uint64_t job_id,
    int64_t now_ms)
{
	struct store_change_row c;
	sqlite3_stmt *stmt = NULL;
	int64_t row = 0;
	uint32_t uid = 0;
	int found = 0, rc, rv;

	rv = store_change_read(st, t->change_id, &c);
	if (rv != 0) {
		return (rv);
	}
	if (c.header_message_id != NULL) {
		rv = store_stmt(st, SQL_RETARGET_ROWS, &stmt);
		if (rv != 0) {
			goto done;
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)c.account_id);
		sqlite3_bind_text(
		    stmt, 2, c.header_message_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 3, t->mbox_id);
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			row = sqlite3_column_int64(stmt, 0);
			uid = (uint32_t)sqlite3_column_int64(stmt, 1);
			found++;
		}
		store_stmt_done(stmt);
		if (rc != SQLITE_DONE) {
			rv = store_err(rc);
			goto done;
		}
	}
	if (found != 1) {
		rv = store_change_end(st, &c, CHANGE_DEAD,
		    "mailbox was reset (UIDVALIDITY changed) and the message "
		    "cannot be found by its Message-ID",
		    job_id, now_ms);
		goto done;
	}
	rv = store_stmt(st, SQL_RETARGET_SET, &stmt);
	if (rv != 0) {
		goto done;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)c.id);
	sqlite3_bind_int64(stmt, 2, t->uidvalidity);
	sqlite3_bind_int64(stmt, 3, uid);
	sqlite3_bind_int64(stmt, 4, row);
	sqlite3_bind_int64(stmt, 5, now_ms);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		goto done;
	}
	log_info("event=change_retargeted change=%llu account=%llu "
	         "uidvalidity=%u uid=%u",
	    (unsigned long long)c.id, (unsigned long long)c.account_id,
	    t->uidvalidity, uid);
	if (c.kind == CHANGE_FLAG) {
		rv = store_change_overlay(st, row);
	} else {
		/* the message left this mailbox locally: the copy the sync
		 * fetched again goes (the placeholder, if any, stays) */
		rv = store_stmt(st, SQL_RETARGET_DROP, &stmt);
		if (rv == 0) {
			sqlite3_bind_int64(stmt, 1, row);
			rv = store_stmt_exec(stmt);
		}
	}
done:
	store_change_row_release(&c);
	return (rv);
}

int
store_change_retarget(
    struct store *st, uint64_t account_id, uint64_t job_id, int64_t now_ms)
{
	struct retarget *v = NULL, *n;
	sqlite3_stmt *stmt = NULL;
	size_t nv = 0, cap = 0, i;
	int rc, rv;

	rv = store_stmt(st, SQL_RETARGET_FIND, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (nv == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			n = realloc(v, cap * sizeof(*n));
			if (n == NULL) {
				rv = ERR_NOMEM;
				break;
			}
			v = n;
		}
		v[nv].change_id = (uint64_t)sqlite3_column_int64(stmt, 0);
		v[nv].mbox_id = sqlite3_column_int64(stmt, 1);
		v[nv].uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 2);
		nv++;
	}
	store_stmt_done(stmt);
	if (rv == 0 && rc != SQLITE_DONE) {
		rv = store_err(rc);
	}
	for (i = 0; rv == 0 && i < nv; i++) {
		rv = retarget_one(st, &v[i], job_id, now_ms);
	}
	free(v);
	return (rv);
}

/* Maintenance ------------------------------------------------------------ */

/* Changes left inflight by a job that is no longer leased (a path that
 * did not end them; defensive): pending again, or uncertain for a send
 * that may have been handed to SMTP. */
static const char SQL_MAINT_STRANDED[]
    = "UPDATE pending_changes SET"
      " state = CASE WHEN kind = 'send' AND step = 0 THEN 'uncertain'"
      "  ELSE 'pending' END,"
      " last_error = CASE WHEN kind = 'send' AND step = 0 THEN"
      "  'the drain job ended without a result while the message may have"
      " been handed to SMTP; it may have been delivered'"
      "  ELSE 'the drain job ended without a result' END,"
      " next_at = ?1, updated_at = ?1"
      " WHERE state = 'inflight' AND NOT EXISTS (SELECT 1 FROM jobs j"
      "  WHERE j.id = pending_changes.job_id AND j.state = 'leased')";
static const char SQL_MAINT_ACCOUNTS[]
    = "SELECT DISTINCT c.account_id FROM pending_changes c"
      " WHERE" STORE_CHANGE_RUNNABLE " AND c.next_at <= ?1"
      " AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.account_id ="
      "  c.account_id AND j.kind = 'drain'"
      "  AND j.state IN ('queued', 'leased'))"
      " LIMIT ?2";

int
store_change_maintain(
    struct store *st, int64_t now_ms, struct store_out *out, size_t *queued_r)
{
	sqlite3_stmt *stmt = NULL;
	uint64_t acct[STORE_OUT_MAX_EVENTS];
	size_t n = 0, i;
	int changed, rc, rv;

	*queued_r = 0;
	rv = store_begin(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "begin"));
	}
	rv = store_stmt(st, SQL_MAINT_STRANDED, &stmt);
	if (rv != 0) {
		goto dbfail;
	}
	sqlite3_bind_int64(stmt, 1, now_ms);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		goto dbfail;
	}
	changed = sqlite3_changes(st->db);
	if (changed > 0) {
		log_warnx("event=changes_stranded rows=%d", changed);
	}
	rv = store_stmt(st, SQL_MAINT_ACCOUNTS, &stmt);
	if (rv != 0) {
		goto dbfail;
	}
	sqlite3_bind_int64(stmt, 1, now_ms);
	sqlite3_bind_int64(stmt, 2, STORE_OUT_MAX_EVENTS);
	while (
	    (rc = sqlite3_step(stmt)) == SQLITE_ROW && n < ARRAY_LEN(acct)) {
		acct[n++] = (uint64_t)sqlite3_column_int64(stmt, 0);
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rv = store_err(rc);
		goto dbfail;
	}
	for (i = 0; i < n; i++) {
		rv = store_change_queue_drain(st, acct[i], now_ms, out);
		if (rv != 0) {
			goto fail;
		}
		log_info("event=drain_requeued account=%llu why=maintenance",
		    (unsigned long long)acct[i]);
	}
	rv = store_commit(st);
	if (rv != 0) {
		out->nevents = 0;
		return (store_out_dbfail(out, st, rv, "commit"));
	}
	*queued_r = n;
	return (ERR_OK);
dbfail:
	store_out_dbfail(out, st, rv, "change maintenance");
fail:
	out->nevents = 0;
	store_rollback(st);
	return (rv);
}
