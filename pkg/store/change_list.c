/*
 * change_list.c: the read-only requests of the drain, for humans and
 * scripts: submit.change.list (an account's changes, newest first) and
 * submit.message.list (message ids to act on, newest first, with a
 * `pending` mark while a change on the message has not landed).
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static const char SQL_LIST_ACCOUNT[]
    = "SELECT id FROM accounts WHERE name = ?1";

#define STORE_CHANGE_COLS                                                     \
	"SELECT id, account_id, kind, state, message_id, mailbox, uid,"       \
	" to_mailbox, flags_add, flags_remove, keywords_add,"                 \
	" keywords_remove, expunge, header_message_id,"                       \
	" coalesce(length(rfc822), 0), attempts, created_at, updated_at,"     \
	" next_at, last_error, result_mailbox, result_uid"                    \
	" FROM pending_changes WHERE account_id = ?1"

/* ?2: a state, or NULL for any; ?3: the active states only; ?4: limit */
static const char SQL_LIST_CHANGES[]
    = STORE_CHANGE_COLS " AND (?2 IS NULL OR state = ?2)"
                        " AND (?3 = 0 OR state IN " STORE_CHANGE_ACTIVE ")"
                        " ORDER BY id DESC LIMIT ?4";
static const char SQL_LIST_CHANGE[] = STORE_CHANGE_COLS " AND id = ?2";

/* The limit of a list request: 0 default, capped. */
static uint32_t
list_limit(uint32_t limit)
{
	if (limit == 0) {
		return (STORE_STATUS_DEFAULT_LIMIT);
	}
	return (
	    limit > STORE_STATUS_MAX_LIMIT ? STORE_STATUS_MAX_LIMIT : limit);
}

/* The id of the account named name; fills out when there is none. */
static int
list_account(struct store *st, struct proto_str name, int64_t *id_r,
    struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	const char *why;
	int rc, rv;

	rv = store_check_text(name, 1, 128, true, &why);
	if (rv != 0) {
		return (
		    store_out_fail(out, ERR_INVAL, "account name %s", why));
	}
	rv = store_stmt(st, SQL_LIST_ACCOUNT, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "finding account"));
	}
	store_bind_str(stmt, 1, name);
	rc = sqlite3_step(stmt);
	*id_r = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
	store_stmt_done(stmt);
	if (rc == SQLITE_DONE) {
		return (store_out_fail(out, ERR_NOTFOUND,
		    "no account named '%.*s'", STORE_PS(name)));
	}
	if (rc != SQLITE_ROW) {
		return (store_out_dbfail(
		    out, st, store_err(rc), "finding account"));
	}
	return (ERR_OK);
}

/* Fills one proto_change_info from a STORE_CHANGE_COLS row. */
static int
change_info(
    sqlite3_stmt *stmt, struct proto_change_info *ci, struct store_out *out)
{
	int rv;

	memset(ci, 0, sizeof(*ci));
	ci->id = (uint64_t)sqlite3_column_int64(stmt, 0);
	ci->account_id = (uint64_t)sqlite3_column_int64(stmt, 1);
	if (proto_change_kind_parse(
	        (const char *)sqlite3_column_text(stmt, 2), &ci->kind)
	        != 0
	    || proto_change_state_parse(
	           (const char *)sqlite3_column_text(stmt, 3), &ci->state)
	        != 0) {
		return (ERR_DB);
	}
	ci->message_id = (uint64_t)sqlite3_column_int64(stmt, 4);
	ci->uid = (uint32_t)sqlite3_column_int64(stmt, 6);
	ci->flags_add = (uint32_t)sqlite3_column_int64(stmt, 8);
	ci->flags_remove = (uint32_t)sqlite3_column_int64(stmt, 9);
	ci->expunge = sqlite3_column_int(stmt, 12) != 0;
	ci->size = (uint64_t)sqlite3_column_int64(stmt, 14);
	ci->attempts = (uint32_t)sqlite3_column_int64(stmt, 15);
	ci->created_at = sqlite3_column_int64(stmt, 16);
	ci->updated_at = sqlite3_column_int64(stmt, 17);
	ci->next_at = sqlite3_column_int64(stmt, 18);
	ci->result_uid = (uint32_t)sqlite3_column_int64(stmt, 21);
	rv = store_out_col(out, stmt, 5, &ci->mailbox);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 7, &ci->to_mailbox);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 10, &ci->keywords_add);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 11, &ci->keywords_remove);
	rv = rv != 0 ? rv
	             : store_out_col(out, stmt, 13, &ci->header_message_id);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 19, &ci->last_error);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 20, &ci->result_mailbox);
	return (rv);
}

int
store_change_list(
    struct store *st, const struct proto_change_list *q, struct store_out *out)
{
	struct proto_change_info *n;
	sqlite3_stmt *stmt = NULL;
	const char *state = NULL;
	bool active = false;
	uint32_t limit = list_limit(q->limit);
	uint8_t s;
	size_t cap = 0;
	int64_t account_id;
	int rc, rv;

	if (q->state.p == NULL || store_str_is(q->state, "active")) {
		active = true;
	} else if (!store_str_is(q->state, "all")) {
		char buf[16];

		if (q->state.len >= sizeof(buf)) {
			rv = ERR_INVAL;
		} else {
			memcpy(buf, q->state.p, q->state.len);
			buf[q->state.len] = '\0';
			rv = proto_change_state_parse(buf, &s);
		}
		if (rv != 0) {
			return (store_out_fail(out, ERR_INVAL,
			    "state '%.*s' is not active, pending, inflight, "
			    "done, dead, uncertain, cancelled or all",
			    STORE_PS(q->state)));
		}
		state = proto_change_state_name(s);
	}
	rv = list_account(st, q->account, &account_id, out);
	if (rv != 0) {
		return (rv);
	}
	if (q->change_id != 0) {
		rv = store_stmt(st, SQL_LIST_CHANGE, &stmt);
		if (rv == 0) {
			sqlite3_bind_int64(stmt, 1, account_id);
			sqlite3_bind_int64(stmt, 2,
			    q->change_id > INT64_MAX ? 0
			                             : (int64_t)q->change_id);
		}
	} else {
		rv = store_stmt(st, SQL_LIST_CHANGES, &stmt);
		if (rv == 0) {
			sqlite3_bind_int64(stmt, 1, account_id);
			if (state != NULL) {
				sqlite3_bind_text(
				    stmt, 2, state, -1, SQLITE_STATIC);
			}
			sqlite3_bind_int(stmt, 3, active ? 1 : 0);
			sqlite3_bind_int64(stmt, 4, limit);
		}
	}
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "listing changes"));
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (out->reply.nchanges == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			n = realloc(out->reply.changes, cap * sizeof(*n));
			if (n == NULL) {
				rv = ERR_NOMEM;
				break;
			}
			out->reply.changes = n;
		}
		rv = change_info(
		    stmt, &out->reply.changes[out->reply.nchanges], out);
		if (rv != 0) {
			break;
		}
		out->reply.nchanges++;
	}
	store_stmt_done(stmt);
	if (rv != 0) {
		return (store_out_fail(out, rv, "listing changes: %s",
		    rv == ERR_DB ? "unexpected kind or state in database"
		                 : err_str(rv)));
	}
	if (rc != SQLITE_DONE) {
		return (store_out_dbfail(
		    out, st, store_err(rc), "listing changes"));
	}
	if (q->change_id != 0 && out->reply.nchanges == 0) {
		return (store_out_fail(out, ERR_NOTFOUND,
		    "account '%.*s' has no change %llu", STORE_PS(q->account),
		    (unsigned long long)q->change_id));
	}
	return (ERR_OK);
}

/* ?2: a mailbox id or NULL for every mailbox; ?3: limit */
static const char SQL_LIST_MESSAGES[]
    = "SELECT m.id, x.name, m.uid, m.seen, m.flagged, m.answered, m.draft,"
      " m.deleted, m.keywords, m.subject, m.from_addr, m.date, m.size,"
      " EXISTS (SELECT 1 FROM pending_changes c WHERE c.message_id = m.id"
      "  AND c.state IN " STORE_CHANGE_ACTIVE ")"
      " FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id"
      " WHERE m.account_id = ?1 AND (?2 IS NULL OR m.mailbox_id = ?2)"
      " ORDER BY m.internal_date DESC, m.id DESC LIMIT ?3";

static int
message_info(
    sqlite3_stmt *stmt, struct proto_message_info *mi, struct store_out *out)
{
	size_t i;
	int rv;

	memset(mi, 0, sizeof(*mi));
	mi->id = (uint64_t)sqlite3_column_int64(stmt, 0);
	mi->uid = (uint32_t)sqlite3_column_int64(stmt, 2);
	for (i = 0; i < STORE_NFLAGS; i++) {
		if (sqlite3_column_int(stmt, 3 + (int)i) != 0) {
			mi->flags |= store_flag_bit[i];
		}
	}
	mi->date = sqlite3_column_int64(stmt, 11);
	mi->size = (uint64_t)sqlite3_column_int64(stmt, 12);
	mi->pending = sqlite3_column_int(stmt, 13) != 0;
	rv = store_out_col(out, stmt, 1, &mi->mailbox);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 8, &mi->keywords);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 9, &mi->subject);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 10, &mi->from_addr);
	return (rv);
}

int
store_message_list(struct store *st, const struct proto_message_list *q,
    struct store_out *out)
{
	struct proto_message_info *n;
	sqlite3_stmt *stmt = NULL;
	int64_t account_id, mbox_id = 0;
	size_t cap = 0;
	int rc, rv;

	rv = list_account(st, q->account, &account_id, out);
	if (rv != 0) {
		return (rv);
	}
	if (q->mailbox.p != NULL) {
		rv = store_mailbox_find(
		    st, (uint64_t)account_id, q->mailbox, &mbox_id);
		if (rv != 0) {
			return (
			    store_out_dbfail(out, st, rv, "finding mailbox"));
		}
		if (mbox_id == 0) {
			return (store_out_fail(out, ERR_NOTFOUND,
			    "account '%.*s' has no mailbox named '%.*s'",
			    STORE_PS(q->account), STORE_PS(q->mailbox)));
		}
	}
	rv = store_stmt(st, SQL_LIST_MESSAGES, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "listing messages"));
	}
	sqlite3_bind_int64(stmt, 1, account_id);
	store_bind_nz(stmt, 2, mbox_id);
	sqlite3_bind_int64(stmt, 3, list_limit(q->limit));
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (out->reply.nmessages == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			n = realloc(out->reply.messages, cap * sizeof(*n));
			if (n == NULL) {
				rv = ERR_NOMEM;
				break;
			}
			out->reply.messages = n;
		}
		rv = message_info(
		    stmt, &out->reply.messages[out->reply.nmessages], out);
		if (rv != 0) {
			break;
		}
		out->reply.nmessages++;
	}
	store_stmt_done(stmt);
	if (rv != 0) {
		return (store_out_fail(
		    out, rv, "listing messages: %s", err_str(rv)));
	}
	if (rc != SQLITE_DONE) {
		return (store_out_dbfail(
		    out, st, store_err(rc), "listing messages"));
	}
	return (ERR_OK);
}
