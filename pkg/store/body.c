/*
 * body.c: the body chunk rows of worker.result.batch, into the bodies and
 * body_chunks tables, and the accounts.bodies prefetch policy.
 *
 * A message's raw body arrives as chunk rows with contiguous offsets from
 * 0 (docs/protocol.md, body_chunk). Inside the batch's transaction, each
 * row is applied in order:
 *   - an error row (status != 0) drops the message's chunks and records
 *     bodies.error (and a 'body_error' sync_log row);
 *   - offset 0 starts a (re-)fetch: the old chunks go, bodies.complete
 *     becomes 0;
 *   - a later chunk must start where the stored chunks end, or repeat a
 *     stored chunk of the same length (re-application converges);
 *   - `last` sets bodies.complete = 1 and bodies.size.
 * A worker killed mid-body leaves an incomplete body; its next attempt
 * starts again at offset 0, so the table converges to one complete body.
 * A row whose message is not in the store (expunged meanwhile) is skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define STORE_MAX_POLICY_DAYS 36500u

/* ?3: the UID (IMAP) or the Email id (JMAP) */
static const char *const SQL_BODY_MESSAGE[] = {
	"SELECT m.id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id"
	" WHERE x.account_id = ?1 AND x.name = ?2 AND m.uid = ?3",
	"SELECT m.id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id"
	" WHERE x.account_id = ?1 AND x.name = ?2 AND m.remote_id = ?3",
};
static const char SQL_BODY_CLEAR[]
    = "DELETE FROM body_chunks WHERE message_id = ?1";
static const char SQL_BODY_START[]
    = "INSERT INTO bodies(message_id, size, complete, error, fetched_at)"
      " VALUES (?1, ?2, 0, ?3, ?4) ON CONFLICT (message_id) DO UPDATE SET"
      " size = excluded.size, complete = 0, error = excluded.error,"
      " fetched_at = excluded.fetched_at";
static const char SQL_BODY_STATE[]
    = "SELECT (SELECT \"offset\" + length(data) FROM body_chunks"
      "  WHERE message_id = ?1 ORDER BY \"offset\" DESC LIMIT 1),"
      " (SELECT length(data) FROM body_chunks"
      "  WHERE message_id = ?1 AND \"offset\" = ?2),"
      " EXISTS (SELECT 1 FROM bodies WHERE message_id = ?1)";
static const char SQL_BODY_CHUNK[]
    = "INSERT INTO body_chunks(message_id, \"offset\", data)"
      " VALUES (?1, ?2, ?3) ON CONFLICT (message_id, \"offset\")"
      " DO UPDATE SET data = excluded.data";
static const char SQL_BODY_DONE[]
    = "UPDATE bodies SET complete = 1, size = ?2, error = NULL,"
      " fetched_at = ?3 WHERE message_id = ?1";

int
store_body_policy_check(struct proto_str s, const char **why_r)
{
	char digits[16];
	uint64_t days;
	size_t n;

	if (store_str_is(s, "none") || store_str_is(s, "all")) {
		return (ERR_OK);
	}
	n = strlen("recent:");
	if (s.p == NULL || s.len <= n || s.len - n >= sizeof(digits)
	    || memcmp(s.p, "recent:", n) != 0) {
		*why_r = "is not 'none', 'all' or 'recent:DAYS'";
		return (ERR_INVAL);
	}
	memcpy(digits, s.p + n, s.len - n);
	digits[s.len - n] = '\0';
	if (digits[0] < '0' || digits[0] > '9'
	    || parse_u64(digits, STORE_MAX_POLICY_DAYS, &days) != 0
	    || days == 0) {
		*why_r = "must have DAYS from 1 to 36500";
		return (ERR_INVAL);
	}
	return (ERR_OK);
}

static int
body_check_row(const struct proto_body_chunk *c, size_t i,
    struct store_out *out)
{
	const char *why;
	int rv;

	rv = store_check_text(c->mailbox, 1, STORE_MAX_MAILBOX, true, &why);
	if (rv != 0) {
		return (store_out_fail(out, rv, "bodies[%zu].mailbox %s", i, why));
	}
	if (c->uid == 0 && !store_row_is_jmap(c->uid, c->remote_id)) {
		return (store_out_fail(out, ERR_PROTO,
		    "bodies[%zu].uid must be >= 1 (or remote_id set)", i));
	}
	if (c->offset > INT64_MAX / 2 || c->total > INT64_MAX / 2
	    || c->data.len > PROTO_MAX_STR) {
		return (store_out_fail(out, ERR_PROTO,
		    "bodies[%zu]: offset, total or data size out of range",
		    i));
	}
	if (c->status > 0) {
		return (store_out_fail(out, ERR_PROTO,
		    "bodies[%zu].status %d is not an error code", i,
		    c->status));
	}
	if (c->status < 0) {
		if (c->data.len > 0) {
			return (store_out_fail(out, ERR_PROTO,
			    "bodies[%zu]: an error row carries no data", i));
		}
		rv = c->error.p == NULL ? ERR_OK
		                        : store_check_text(c->error, 0,
		                              STORE_MAX_ERROR, false, &why);
		if (rv != 0) {
			return (store_out_fail(
			    out, rv, "bodies[%zu].error %s", i, why));
		}
		return (ERR_OK);
	}
	if (!c->last && c->data.len == 0) {
		return (store_out_fail(out, ERR_PROTO,
		    "bodies[%zu]: an empty chunk must be the last", i));
	}
	if (c->last && c->total != 0 && c->offset + c->data.len != c->total) {
		return (store_out_fail(out, ERR_PROTO,
		    "bodies[%zu]: last chunk ends at %llu, total is %llu", i,
		    (unsigned long long)(c->offset + c->data.len),
		    (unsigned long long)c->total));
	}
	return (ERR_OK);
}

int
store_body_check(const struct proto_batch *b, struct store_out *out)
{
	size_t i;
	int rv;

	if (b->nbodies > PROTO_MAX_ROWS) {
		return (store_out_fail(
		    out, ERR_TOOBIG, "batch has too many body rows"));
	}
	for (i = 0; i < b->nbodies; i++) {
		rv = body_check_row(&b->bodies[i], i, out);
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}

/* Runs a statement bound with the message id (and optionally more). */
static int
body_exec_id(struct store *st, const char *sql, int64_t id)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	rv = store_stmt(st, sql, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, id);
	return (store_stmt_exec(stmt));
}

/* (Re)starts the body row: chunks dropped, complete 0, error or NULL. */
static int
body_start(struct store *st, int64_t id, uint64_t total, const char *error,
    int64_t fetched_at)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	rv = body_exec_id(st, SQL_BODY_CLEAR, id);
	if (rv != 0) {
		return (rv);
	}
	rv = store_stmt(st, SQL_BODY_START, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, id);
	store_bind_nz(stmt, 2, (int64_t)total);
	if (error != NULL) {
		sqlite3_bind_text(stmt, 3, error, -1, SQLITE_TRANSIENT);
	}
	store_bind_nz(stmt, 4, fetched_at);
	return (store_stmt_exec(stmt));
}

/* Where the stored chunks of id end, the length of a stored chunk at
 * offset (-1 if none) and whether a bodies row exists. */
static int
body_state(struct store *st, int64_t id, uint64_t offset, int64_t *end_r,
    int64_t *same_r, bool *exists_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	rv = store_stmt(st, SQL_BODY_STATE, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, (int64_t)offset);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*end_r = sqlite3_column_int64(stmt, 0);
		*same_r = sqlite3_column_type(stmt, 1) == SQLITE_NULL
		    ? -1
		    : sqlite3_column_int64(stmt, 1);
		*exists_r = sqlite3_column_int(stmt, 2) != 0;
	}
	store_stmt_done(stmt);
	return (rc == SQLITE_ROW ? ERR_OK : store_err(rc));
}

static int
body_apply_row(struct store *st, uint64_t account_id, uint64_t job_id,
    const struct proto_body_chunk *c, size_t i, int64_t now_ms,
    struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	char error[STORE_MAX_ERROR + 1], detail[STORE_MAX_ERROR + 160];
	int64_t id = 0, end = 0, same = -1;
	bool exists = false, jmap;
	int rc, rv;

	jmap = store_row_is_jmap(c->uid, c->remote_id);
	rv = store_stmt(st, SQL_BODY_MESSAGE[jmap], &stmt);
	if (rv != 0) {
		goto dbfail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	store_bind_str(stmt, 2, c->mailbox);
	if (jmap) {
		store_bind_str(stmt, 3, c->remote_id);
	} else {
		sqlite3_bind_int64(stmt, 3, c->uid);
	}
	rc = sqlite3_step(stmt);
	id = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
	store_stmt_done(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rv = store_err(rc);
		goto dbfail;
	}
	if (id == 0) {
		log_info("event=body_skipped job=%llu account=%llu uid=%u "
		         "why=no_such_message",
		    (unsigned long long)job_id, (unsigned long long)account_id,
		    c->uid);
		return (ERR_OK);
	}
	if (c->status != 0) {
		snprintf(error, sizeof(error), "%.*s",
		    c->error.p != NULL && c->error.len > 0 ? (int)c->error.len
		                                           : 0,
		    c->error.p != NULL ? c->error.p : "");
		if (error[0] == '\0') {
			snprintf(error, sizeof(error), "%s", err_str(c->status));
		}
		rv = body_start(st, id, c->total, error, now_ms / 1000);
		if (rv != 0) {
			goto dbfail;
		}
		snprintf(detail, sizeof(detail), "message %lld (uid %u): %s",
		    (long long)id, c->uid, error);
		rv = store_log_event(st, now_ms, account_id, job_id, NULL,
		    "body_error", detail);
		if (rv != 0) {
			goto dbfail;
		}
		log_info("event=body_error job=%llu account=%llu message=%lld "
		         "status=%s",
		    (unsigned long long)job_id, (unsigned long long)account_id,
		    (long long)id, err_name(c->status));
		return (ERR_OK);
	}
	if (c->offset == 0) {
		rv = body_start(st, id, c->total, NULL, 0);
		if (rv != 0) {
			goto dbfail;
		}
	} else {
		rv = body_state(st, id, c->offset, &end, &same, &exists);
		if (rv != 0) {
			goto dbfail;
		}
		if (!exists || (same != (int64_t)c->data.len
		                   && end != (int64_t)c->offset)) {
			return (store_out_fail(out, ERR_PROTO,
			    "bodies[%zu] (mailbox '%.*s' uid %u): chunk at "
			    "offset %llu does not follow the %lld bytes stored",
			    i, STORE_PS(c->mailbox), c->uid,
			    (unsigned long long)c->offset, (long long)end));
		}
	}
	if (c->data.len > 0) {
		rv = store_stmt(st, SQL_BODY_CHUNK, &stmt);
		if (rv != 0) {
			goto dbfail;
		}
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_int64(stmt, 2, (int64_t)c->offset);
		sqlite3_bind_blob(
		    stmt, 3, c->data.p, (int)c->data.len, SQLITE_STATIC);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			goto dbfail;
		}
	}
	if (c->last) {
		rv = store_stmt(st, SQL_BODY_DONE, &stmt);
		if (rv != 0) {
			goto dbfail;
		}
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_int64(
		    stmt, 2, (int64_t)(c->offset + c->data.len));
		sqlite3_bind_int64(stmt, 3, now_ms / 1000);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			goto dbfail;
		}
	}
	return (ERR_OK);
dbfail:
	return (store_out_dbfail(out, st, rv, "applying body chunk"));
}

int
store_body_apply(struct store *st, uint64_t account_id,
    const struct proto_batch *b, int64_t now_ms, struct store_out *out)
{
	size_t i;
	int rv;

	for (i = 0; i < b->nbodies; i++) {
		rv = body_apply_row(st, account_id, b->job_id, &b->bodies[i], i,
		    now_ms, out);
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}
