/*
 * jmap.c: what the store does differently for JMAP accounts
 * (docs/schema.md, "JMAP mapping").
 *
 *   - A JMAP message row has uid 0 and remote_id = the Email id; it is
 *     upserted on (mailbox_id, remote_id). One Email in several mailboxes
 *     is one row per mailbox. A full row lists every mailbox the Email is
 *     in (in_mailboxes): an existing row of the Email in a mailbox no
 *     longer listed is moved to the row's mailbox rather than a new row
 *     inserted (so a server-side move keeps messages.id, the body and
 *     the attachments), and rows in mailboxes not listed are deleted.
 *   - A mailbox row with a remote_id that the store knows under another
 *     name is a rename (the Mailbox id is stable across renames).
 *   - An EXPUNGE_REMOTE row deletes the destroyed Emails' rows.
 *   - The account-wide state strings (Mailbox, Email) travel in
 *     job_run.states and done.states and live in sync_state; they move
 *     only with a successful done, like IMAP checkpoints.
 *   - While the Email has an active move or delete, its rows are the
 *     user's (skipped, as the IMAP guard skips the source UID).
 *   - A reset (cannotCalculateChanges) keeps the rows active changes
 *     hold (apply.c, SQL_MAILBOX_RESET_ROWS); the listing after it
 *     updates them in place or skips them, as above.
 *   - A sync lease names in "EmailRefresh" the Emails whose flag, move or
 *     delete change ended dead or cancelled since the Email state was
 *     stored: the worker reads them again, so their rows follow the
 *     server (the IMAP undo lowers uidnext / highestmodseq instead).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define STORE_MAX_STATE 1024u
#define STORE_MAX_RESOURCE 16u
/* job_run.states of a sync: "EmailRefresh", the Email ids (space-
 * separated, at most STORE_REFRESH_MAX) whose rows the worker reads again
 * (docs/schema.md, "JMAP mapping") */
#define STORE_REFRESH "EmailRefresh"
#define STORE_REFRESH_MAX 1000

static const char SQL_STATES[]
    = "SELECT resource, state FROM sync_state WHERE account_id = ?1"
      " ORDER BY resource";
/* Emails of changes that ended dead or cancelled since the Email state
 * was stored: the next sync reads them again (STORE_REFRESH). */
static const char SQL_REFRESH[]
    = "SELECT DISTINCT c.remote_id FROM pending_changes c"
      " JOIN sync_state s ON s.account_id = c.account_id"
      " AND s.resource = 'Email' WHERE c.account_id = ?1"
      " AND c.state IN ('dead', 'cancelled')"
      " AND c.kind IN ('flag', 'move', 'delete') AND c.remote_id IS NOT NULL"
      " AND c.remote_id NOT LIKE '" STORE_PLACEHOLDER_PFX "%'"
      " AND c.updated_at >= s.updated_at ORDER BY c.remote_id LIMIT ?2";
/* updated_at: when the job that read the state was leased (?5), so a
 * change that ended while that job ran is still named by STORE_REFRESH
 * (the job's guards may have skipped its rows) */
static const char SQL_STATE_PUT[]
    = "INSERT INTO sync_state(account_id, resource, state, updated_at)"
      " VALUES (?1, ?2, ?3,"
      " COALESCE((SELECT leased_at FROM jobs WHERE id = ?5), ?4))"
      " ON CONFLICT (account_id, resource)"
      " DO UPDATE SET state = excluded.state,"
      " updated_at = excluded.updated_at";
static const char SQL_MAILBOX_BY_REMOTE[]
    = "SELECT name FROM mailboxes WHERE account_id = ?1 AND remote_id = ?2";
/* ?4: the space-separated ids of the Email's mailboxes */
#define NOT_LISTED(col) "instr(' ' || ?4 || ' ', ' ' || " col " || ' ') = 0"
static const char SQL_REHOME[]
    = "UPDATE messages SET mailbox_id = ?2 WHERE id = (SELECT m.id"
      " FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id"
      " WHERE m.account_id = ?1 AND m.remote_id = ?3 AND m.mailbox_id <> ?2"
      " AND (x.remote_id IS NULL OR " NOT_LISTED(
          "x.remote_id") ")"
                         " ORDER BY m.id LIMIT 1)"
                         " AND NOT EXISTS (SELECT 1 FROM messages WHERE "
                         "mailbox_id = ?2"
                         " AND remote_id = ?3)";
static const char SQL_PRUNE[]
    = "DELETE FROM messages WHERE account_id = ?1 AND remote_id = ?3"
      " AND mailbox_id <> ?2 AND mailbox_id IN (SELECT id FROM mailboxes"
      " WHERE account_id = ?1 AND (remote_id IS NULL OR " NOT_LISTED(
          "remote_id") "))";
static const char SQL_UPSERT[]
    = "INSERT INTO messages(account_id, mailbox_id, uid, remote_id,"
      " message_id, subject, from_addr, to_addrs, cc_addrs, date,"
      " internal_date, size, seen, flagged, answered, draft, deleted,"
      " keywords, modseq, has_attachments) VALUES (?1, ?2, NULL, ?4, ?5,"
      " ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,"
      " ?20) ON CONFLICT (mailbox_id, remote_id) WHERE remote_id IS NOT NULL"
      " DO UPDATE SET message_id = excluded.message_id,"
      " subject = excluded.subject, from_addr = excluded.from_addr,"
      " to_addrs = excluded.to_addrs, cc_addrs = excluded.cc_addrs,"
      " date = excluded.date, internal_date = excluded.internal_date,"
      " size = excluded.size, seen = excluded.seen,"
      " flagged = excluded.flagged, answered = excluded.answered,"
      " draft = excluded.draft, deleted = excluded.deleted,"
      " keywords = excluded.keywords, modseq = excluded.modseq,"
      " has_attachments = excluded.has_attachments"
      " RETURNING id";
static const char SQL_FLAGS[]
    = "UPDATE messages SET seen = ?3, flagged = ?4, answered = ?5,"
      " draft = ?6, deleted = ?7, keywords = ?8,"
      " modseq = coalesce(?9, modseq) WHERE account_id = ?1"
      " AND remote_id = ?2 RETURNING id";
/* An active move or delete of the Email: its rows show the user's intent */
static const char SQL_GUARD_MOVED[]
    = "SELECT 1 FROM pending_changes WHERE account_id = ?1"
      " AND state IN " STORE_CHANGE_ACTIVE " AND kind IN ('move', 'delete')"
      " AND remote_id = ?2 LIMIT 1";
/* A placeholder of an active append/send with this Message-ID in the
 * row's mailbox takes the Email id (the change's result came later) */
static const char SQL_GUARD_FILL[]
    = "UPDATE messages SET remote_id = ?3 WHERE id = (SELECT m.id"
      " FROM pending_changes c JOIN messages m ON m.id = c.message_id"
      " WHERE c.account_id = ?1 AND c.state IN " STORE_CHANGE_ACTIVE
      " AND c.kind IN ('append', 'send') AND m.mailbox_id = ?2"
      " AND m.uid IS NULL AND c.header_message_id = ?4"
      " AND m.remote_id = '" STORE_PLACEHOLDER_PFX "' || c.id LIMIT 1)"
      " AND NOT EXISTS (SELECT 1 FROM messages WHERE mailbox_id = ?2"
      " AND remote_id = ?3)";
static const char SQL_DESTROY[]
    = "DELETE FROM messages WHERE account_id = ?1 AND remote_id = ?2"
      " AND NOT EXISTS (SELECT 1 FROM pending_changes WHERE"
      " account_id = ?1 AND state IN " STORE_CHANGE_ACTIVE
      " AND remote_id = ?2 AND kind IN ('move', 'delete'))";

bool
store_row_is_jmap(uint32_t uid, struct proto_str remote_id)
{
	return (uid == 0 && remote_id.p != NULL && remote_id.len > 0
	    && !(remote_id.len >= sizeof(STORE_PLACEHOLDER_PFX) - 1
	        && memcmp(remote_id.p, STORE_PLACEHOLDER_PFX,
	               sizeof(STORE_PLACEHOLDER_PFX) - 1)
	            == 0));
}

/*
 * The Email ids of the account's flag, move and delete changes that ended
 * dead or cancelled since the Email state was last stored, as one space-
 * separated string in out (nil when none): the server kept no trace a
 * sync would see (the Email did not change, or its change was consumed
 * while the guards skipped its rows), so the next sync reads those Emails
 * again and their rows follow the server, as the IMAP undo's lowered
 * uidnext / highestmodseq make an IMAP sync fetch them again.
 */
static int
refresh_ids(struct store *st, uint64_t account_id, struct store_out *out,
    struct proto_str *ids_r)
{
	sqlite3_stmt *stmt = NULL;
	struct buf b;
	int rc = SQLITE_DONE, rv = ERR_OK;

	ids_r->p = NULL;
	ids_r->len = 0;
	rv = store_stmt(st, SQL_REFRESH, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	sqlite3_bind_int(stmt, 2, STORE_REFRESH_MAX);
	buf_init(&b, (size_t)STORE_REFRESH_MAX * 257);
	while (rv == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(stmt, 0);

		if (id == NULL || id[0] == '\0' || strchr(id, ' ') != NULL
		    || strlen(id) > 256) {
			continue;
		}
		rv = b.len > 0 ? buf_addstr(&b, " ") : ERR_OK;
		rv = rv != 0 ? rv : buf_addstr(&b, id);
	}
	store_stmt_done(stmt);
	if (rv == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		rv = store_err(rc);
	}
	if (rv == 0 && b.len > 0) {
		rv = store_out_str(
		    out, b.data, ids_r); /* b is NUL-terminated */
	}
	buf_release(&b);
	return (rv);
}

int
store_lease_states(
    struct store *st, struct proto_job_run *run, struct store_out *out)
{
	struct proto_sync_state *v = NULL;
	sqlite3_stmt *stmt = NULL;
	size_t n = 0;
	int rc, rv;

	if (!store_str_is(run->protocol, "jmap")) {
		return (ERR_OK);
	}
	rv = store_stmt(st, SQL_STATES, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)run->account_id);
	/* the resources are a handful (Mailbox, Email): 16 is the limit */
	v = calloc(16, sizeof(*v));
	if (v == NULL) {
		store_stmt_done(stmt);
		return (ERR_NOMEM);
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && n < 16) {
		rv = store_out_col(out, stmt, 0, &v[n].resource);
		if (rv == 0) {
			rv = store_out_col(out, stmt, 1, &v[n].state);
		}
		if (rv != 0) {
			store_stmt_done(stmt);
			free(v);
			return (rv);
		}
		n++;
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		free(v);
		return (store_err(rc));
	}
	if (run->kind == JOB_KIND_SYNC && n < 16) {
		rv = refresh_ids(st, run->account_id, out, &v[n].state);
		if (rv != 0) {
			free(v);
			return (rv);
		}
		if (v[n].state.p != NULL) {
			v[n++].resource = proto_str_c(STORE_REFRESH);
		}
	}
	run->states = v;
	run->nstates = n;
	return (ERR_OK);
}

int
store_done_states_check(const struct proto_done *d, char *why, size_t n)
{
	const char *w;
	size_t i;
	int rv;

	for (i = 0; i < d->nstates; i++) {
		rv = store_check_text(
		    d->states[i].resource, 1, STORE_MAX_RESOURCE, true, &w);
		if (rv == 0) {
			rv = store_check_text(
			    d->states[i].state, 1, STORE_MAX_STATE, true, &w);
		}
		if (rv != 0) {
			snprintf(why, n, "states[%zu] %s", i, w);
			return (ERR_PROTO);
		}
	}
	return (ERR_OK);
}

int
store_done_states(struct store *st, uint64_t account_id,
    const struct proto_done *d, int64_t now_ms)
{
	sqlite3_stmt *stmt = NULL;
	size_t i;
	int rv;

	for (i = 0; i < d->nstates; i++) {
		rv = store_stmt(st, SQL_STATE_PUT, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		store_bind_str(stmt, 2, d->states[i].resource);
		store_bind_str(stmt, 3, d->states[i].state);
		sqlite3_bind_int64(stmt, 4, now_ms);
		sqlite3_bind_int64(stmt, 5, (int64_t)d->job_id);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}

int
store_jmap_rename(struct store *st, uint64_t account_id, uint64_t job_id,
    const struct proto_mailbox_row *mb, int64_t now_ms)
{
	struct proto_mailbox_row r;
	sqlite3_stmt *stmt = NULL;
	char *old = NULL;
	int rc, rv;

	if (mb->remote_id.p == NULL || mb->old_name.p != NULL) {
		return (ERR_OK);
	}
	rv = store_stmt(st, SQL_MAILBOX_BY_REMOTE, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	store_bind_str(stmt, 2, mb->remote_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		old = xstrndup((const char *)sqlite3_column_text(stmt, 0),
		    (size_t)sqlite3_column_bytes(stmt, 0));
		rv = old == NULL ? ERR_NOMEM : ERR_OK;
	} else if (rc != SQLITE_DONE) {
		rv = store_err(rc);
	}
	store_stmt_done(stmt);
	if (rv != 0 || old == NULL) {
		return (rv);
	}
	r = *mb;
	r.old_name = proto_str_c(old);
	rv = store_rename_apply(st, account_id, job_id, &r, now_ms);
	free(old);
	return (rv);
}

/* Runs one of the membership statements (?1 account, ?2 mailbox, ?3
 * Email id, ?4 mailbox ids). */
static int
membership(struct store *st, const char *sql, uint64_t account_id,
    int64_t mbox_id, const struct proto_message_row *m)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	rv = store_stmt(st, sql, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	sqlite3_bind_int64(stmt, 2, mbox_id);
	store_bind_str(stmt, 3, m->remote_id);
	store_bind_str(stmt, 4, m->in_mailboxes);
	return (store_stmt_exec(stmt));
}

int
store_jmap_message(struct store *st, uint64_t account_id, int64_t mbox_id,
    const struct proto_message_row *m, int64_t *row_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	*row_r = 0;
	if (m->full && m->in_mailboxes.p != NULL) {
		rv = membership(st, SQL_REHOME, account_id, mbox_id, m);
		if (rv != 0) {
			return (rv);
		}
	}
	rv = store_stmt(st, m->full ? SQL_UPSERT : SQL_FLAGS, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	if (m->full) {
		sqlite3_bind_int64(stmt, 2, mbox_id);
		store_bind_str(stmt, 4, m->remote_id);
		store_bind_columns(stmt, m);
	} else {
		store_bind_str(stmt, 2, m->remote_id);
		store_bind_flags(stmt, 3, m);
	}
	/* A flag row updates every mailbox's row of the Email: the last id */
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		*row_r = sqlite3_column_int64(stmt, 0);
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_DONE) {
		return (store_err(rc));
	}
	if (m->full && m->in_mailboxes.p != NULL) {
		rv = membership(st, SQL_PRUNE, account_id, mbox_id, m);
	}
	return (rv);
}

int
store_jmap_guard(struct store *st, uint64_t account_id, int64_t mbox_id,
    const struct proto_message_row *m, bool *skip_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	*skip_r = false;
	rv = store_stmt(st, SQL_GUARD_MOVED, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	store_bind_str(stmt, 2, m->remote_id);
	rc = sqlite3_step(stmt);
	store_stmt_done(stmt);
	if (rc == SQLITE_ROW) {
		*skip_r = true;
		return (ERR_OK);
	}
	if (rc != SQLITE_DONE) {
		return (store_err(rc));
	}
	if (!m->full || m->message_id.p == NULL) {
		return (ERR_OK);
	}
	rv = store_stmt(st, SQL_GUARD_FILL, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	sqlite3_bind_int64(stmt, 2, mbox_id);
	store_bind_str(stmt, 3, m->remote_id);
	store_bind_str(stmt, 4, m->message_id);
	return (store_stmt_exec(stmt));
}

int
store_jmap_destroy(struct store *st, uint64_t account_id, uint64_t job_id,
    const struct proto_expunge_row *e, int64_t now_ms)
{
	sqlite3_stmt *stmt = NULL;
	const char *p, *end, *q;
	char detail[64];
	uint64_t gone = 0;
	int rv;

	p = e->uids.p;
	end = p != NULL ? p + e->uids.len : p;
	while (p != NULL && p < end) {
		while (p < end && *p == ' ') {
			p++;
		}
		for (q = p; q < end && *q != ' '; q++) { }
		if (q == p) {
			break;
		}
		rv = store_stmt(st, SQL_DESTROY, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		sqlite3_bind_text(stmt, 2, p, (int)(q - p), SQLITE_STATIC);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (rv);
		}
		gone += (uint64_t)sqlite3_changes(st->db);
		p = q;
	}
	if (gone == 0) {
		return (ERR_OK);
	}
	snprintf(detail, sizeof(detail), "%llu rows of destroyed emails",
	    (unsigned long long)gone);
	return (store_log_event(
	    st, now_ms, account_id, job_id, NULL, "expunged", detail));
}
