/*
 * apply.c: worker.result.batch, applied in one transaction per message.
 *
 * The worker is untrusted: every row is validated before the transaction
 * starts, and a batch is fenced by (job_id, attempt). Application is
 * idempotent twice over:
 *   - job_batches records (job, attempt, seq); the same batch again is a
 *     duplicate and is skipped entirely;
 *   - message rows are upserts keyed by (mailbox_id, uid), so the same
 *     rows under a NEW attempt (after a worker crash) converge to the same
 *     table, without duplicates.
 * Each applied batch renews the lease by the job's lease length.
 *
 * While the account has active local changes (docs/drain.md), the guards
 * of change_guard.c keep the rows showing them (skip, merge, overlay);
 * a drain job's change results are applied in the same transaction
 * (change_apply.c).
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define STORE_MAX_REMOTE_ID 256
#define STORE_MAX_KEYWORDS (64u * 1024)
#define STORE_MAX_FIELD (256u * 1024)

static const char *const store_roles[]
    = { "inbox", "sent", "drafts", "trash", "junk", "archive" };

static bool
store_role_ok(struct proto_str r)
{
	size_t i;

	if (r.p == NULL) {
		return (true);
	}
	for (i = 0; i < ARRAY_LEN(store_roles); i++) {
		if (store_str_is(r, store_roles[i])) {
			return (true);
		}
	}
	return (false);
}

/* Checks an optional text field; nil is fine. */
static int
store_opt(struct proto_str s, size_t max, bool no_ctl, const char **why_r)
{
	if (s.p == NULL) {
		return (ERR_OK);
	}
	return (store_check_text(s, 0, max, no_ctl, why_r));
}

static int
store_batch_check(const struct proto_batch *b, struct store_out *out)
{
	const struct proto_mailbox_row *mb;
	const struct proto_message_row *m;
	const char *why;
	size_t i;
	int rv;

	if (b->seq == 0) {
		return (
		    store_out_fail(out, ERR_PROTO, "batch seq must be >= 1"));
	}
	if (b->nmailboxes > PROTO_MAX_ROWS || b->nmessages > PROTO_MAX_ROWS) {
		return (store_out_fail(
		    out, ERR_TOOBIG, "batch has too many rows"));
	}
	for (i = 0; i < b->nmailboxes; i++) {
		mb = &b->mailboxes[i];
		rv = store_check_text(
		    mb->name, 1, STORE_MAX_MAILBOX, true, &why);
		if (rv != 0) {
			return (store_out_fail(
			    out, rv, "mailboxes[%zu].name %s", i, why));
		}
		rv = store_opt(mb->delimiter, 4, false, &why);
		if (rv == 0 && mb->delimiter.p != NULL
		    && mb->delimiter.len == 0) {
			rv = ERR_INVAL;
			why = "must not be empty";
		}
		if (rv != 0) {
			return (store_out_fail(out, ERR_PROTO,
			    "mailboxes[%zu].delimiter %s", i, why));
		}
		if (!store_role_ok(mb->role)) {
			return (store_out_fail(out, ERR_PROTO,
			    "mailboxes[%zu].role '%.*s' is not a known role",
			    i, STORE_PS(mb->role)));
		}
		rv = store_opt(mb->remote_id, STORE_MAX_REMOTE_ID, true, &why);
		if (rv != 0) {
			return (store_out_fail(
			    out, rv, "mailboxes[%zu].remote_id %s", i, why));
		}
	}
	for (i = 0; i < b->nmessages; i++) {
		m = &b->messages[i];
		rv = store_check_text(
		    m->mailbox, 1, STORE_MAX_MAILBOX, true, &why);
		if (rv != 0) {
			return (store_out_fail(
			    out, rv, "messages[%zu].mailbox %s", i, why));
		}
		if (m->uid == 0 && !store_row_is_jmap(m->uid, m->remote_id)) {
			return (store_out_fail(out, ERR_PROTO,
			    "messages[%zu].uid must be >= 1 (or remote_id set "
			    "for a JMAP row)",
			    i));
		}
		rv = store_opt(m->in_mailboxes, STORE_MAX_FIELD, true, &why);
		if (rv != 0) {
			return (store_out_fail(
			    out, rv, "messages[%zu].in_mailboxes %s", i, why));
		}
		if ((m->flags & ~0x1fu) != 0) {
			return (store_out_fail(out, ERR_PROTO,
			    "messages[%zu].flags 0x%x has unknown bits", i,
			    m->flags));
		}
		if (m->modseq > INT64_MAX || m->size > INT64_MAX) {
			return (store_out_fail(out, ERR_PROTO,
			    "messages[%zu]: modseq or size out of range", i));
		}
		rv = store_opt(m->keywords, STORE_MAX_KEYWORDS, true, &why);
		if (rv != 0) {
			return (store_out_fail(
			    out, rv, "messages[%zu].keywords %s", i, why));
		}
		if (!m->full) {
			continue;
		}
		const struct proto_str *hdr[] = { &m->message_id, &m->subject,
			&m->from_addr, &m->to_addrs, &m->cc_addrs };
		size_t k;

		rv = store_opt(m->remote_id, STORE_MAX_REMOTE_ID, true, &why);
		for (k = 0; rv == 0 && k < ARRAY_LEN(hdr); k++) {
			rv = store_opt(*hdr[k], STORE_MAX_FIELD, false, &why);
		}
		if (rv != 0) {
			return (store_out_fail(out, rv,
			    "messages[%zu]: a header field %s", i, why));
		}
	}
	return (ERR_OK);
}

static const char SQL_BATCH_SEEN[]
    = "SELECT 1 FROM job_batches WHERE job_id = ?1 AND attempt = ?2"
      " AND seq = ?3";
static const char SQL_BATCH_INSERT[]
    = "INSERT INTO job_batches(job_id, attempt, seq, rows, applied_at)"
      " VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_MAILBOX_FIND[]
    = "SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2";
static const char SQL_MAILBOX_INSERT[]
    = "INSERT INTO mailboxes(account_id, name, delimiter, role, remote_id,"
      " uidvalidity) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_MAILBOX_UPDATE[]
    = "UPDATE mailboxes SET delimiter = ?2, role = ?3, remote_id = ?4,"
      " uidvalidity = coalesce(?5, uidvalidity) WHERE id = ?1";
/* Placeholders of active changes (uid NULL) are not the server's rows;
 * nor are JMAP rows (uid NULL) an active change holds: its row, and every
 * row of an Email being moved or deleted (jmap.c skips those). */
static const char SQL_MAILBOX_RESET_ROWS[]
    = "DELETE FROM messages WHERE mailbox_id = ?1"
      " AND NOT (uid IS NULL AND (remote_id LIKE '" STORE_PLACEHOLDER_PFX "%'"
      " OR id IN (SELECT message_id FROM pending_changes WHERE state IN "
      STORE_CHANGE_ACTIVE " AND message_id IS NOT NULL)"
      " OR remote_id IN (SELECT remote_id FROM pending_changes WHERE"
      " account_id = (SELECT account_id FROM mailboxes WHERE id = ?1)"
      " AND state IN " STORE_CHANGE_ACTIVE
      " AND kind IN ('move', 'delete') AND remote_id IS NOT NULL)))";
static const char SQL_MAILBOX_RESET[]
    = "UPDATE mailboxes SET uidnext = NULL, highestmodseq = NULL, total = 0,"
      " unread = 0 WHERE id = ?1";
static const char SQL_MESSAGE_UPSERT[]
    = "INSERT INTO messages(account_id, mailbox_id, uid, remote_id,"
      " message_id, subject, from_addr, to_addrs, cc_addrs, date,"
      " internal_date, size, seen, flagged, answered, draft, deleted,"
      " keywords, modseq, has_attachments) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
      " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
      " ON CONFLICT (mailbox_id, uid) DO UPDATE SET"
      " account_id = excluded.account_id, remote_id = excluded.remote_id,"
      " message_id = excluded.message_id, subject = excluded.subject,"
      " from_addr = excluded.from_addr, to_addrs = excluded.to_addrs,"
      " cc_addrs = excluded.cc_addrs, date = excluded.date,"
      " internal_date = excluded.internal_date, size = excluded.size,"
      " seen = excluded.seen, flagged = excluded.flagged,"
      " answered = excluded.answered, draft = excluded.draft,"
      " deleted = excluded.deleted, keywords = excluded.keywords,"
      " modseq = excluded.modseq,"
      " has_attachments = excluded.has_attachments";
static const char SQL_MESSAGE_FLAGS[]
    = "UPDATE messages SET seen = ?3, flagged = ?4, answered = ?5,"
      " draft = ?6, deleted = ?7, keywords = ?8,"
      " modseq = coalesce(?9, modseq) WHERE mailbox_id = ?1 AND uid = ?2";
static const char SQL_JOB_PROGRESS[]
    = "UPDATE jobs SET messages = messages + ?2,"
      " lease_until = max(lease_until, ?3 + lease_ms) WHERE id = ?1"
      " RETURNING lease_until";

/* Looks up a mailbox id; 0 when absent. */
int
store_mailbox_find(struct store *st, uint64_t account_id,
    struct proto_str name, int64_t *id_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	rv = store_stmt(st, SQL_MAILBOX_FIND, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	store_bind_str(stmt, 2, name);
	rc = sqlite3_step(stmt);
	*id_r = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
	store_stmt_done(stmt);
	return (
	    rc == SQLITE_ROW || rc == SQLITE_DONE ? ERR_OK : store_err(rc));
}

static int
store_apply_mailbox(struct store *st, uint64_t account_id, uint64_t job_id,
    const struct proto_mailbox_row *mb, int64_t now_ms)
{
	sqlite3_stmt *stmt = NULL;
	char *name = NULL;
	int64_t id;
	int rv;

	rv = store_rename_apply(st, account_id, job_id, mb, now_ms);
	if (rv == 0) {
		rv = store_jmap_rename(st, account_id, job_id, mb, now_ms);
	}
	if (rv != 0) {
		return (rv);
	}
	rv = store_mailbox_find(st, account_id, mb->name, &id);
	if (rv != 0) {
		return (rv);
	}
	name = xstrndup(mb->name.p, mb->name.len);
	if (name == NULL) {
		return (ERR_NOMEM);
	}
	if (id == 0) {
		rv = store_stmt(st, SQL_MAILBOX_INSERT, &stmt);
		if (rv != 0) {
			goto done;
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		store_bind_str(stmt, 2, mb->name);
		store_bind_str(stmt, 3, mb->delimiter);
		store_bind_str(stmt, 4, mb->role);
		store_bind_str(stmt, 5, mb->remote_id);
		store_bind_nz(stmt, 6, mb->uidvalidity);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			goto done;
		}
		id = sqlite3_last_insert_rowid(st->db);
		rv = store_log_event(st, now_ms, account_id, job_id, NULL,
		    "mailbox_added", name);
		if (rv != 0) {
			goto done;
		}
	} else {
		rv = store_stmt(st, SQL_MAILBOX_UPDATE, &stmt);
		if (rv != 0) {
			goto done;
		}
		sqlite3_bind_int64(stmt, 1, id);
		store_bind_str(stmt, 2, mb->delimiter);
		store_bind_str(stmt, 3, mb->role);
		store_bind_str(stmt, 4, mb->remote_id);
		store_bind_nz(stmt, 5, mb->uidvalidity);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			goto done;
		}
	}
	if (mb->reset) {
		rv = store_stmt(st, SQL_MAILBOX_RESET_ROWS, &stmt);
		if (rv != 0) {
			goto done;
		}
		sqlite3_bind_int64(stmt, 1, id);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			goto done;
		}
		rv = store_stmt(st, SQL_MAILBOX_RESET, &stmt);
		if (rv != 0) {
			goto done;
		}
		sqlite3_bind_int64(stmt, 1, id);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			goto done;
		}
		rv = store_log_event(
		    st, now_ms, account_id, job_id, NULL, "reset", name);
		if (rv != 0) {
			goto done;
		}
		log_info("event=mailbox_reset job=%llu account=%llu "
		         "uidvalidity=%u",
		    (unsigned long long)job_id, (unsigned long long)account_id,
		    mb->uidvalidity);
	}
done:
	free(name);
	return (rv);
}

/* The message statements list these columns in this order. */
void
store_bind_flags(
    sqlite3_stmt *stmt, int first, const struct proto_message_row *m)
{
	static const uint32_t bits[] = { PROTO_FLAG_SEEN, PROTO_FLAG_FLAGGED,
		PROTO_FLAG_ANSWERED, PROTO_FLAG_DRAFT, PROTO_FLAG_DELETED };
	static const struct proto_str empty = { "", 0 };
	size_t i;

	for (i = 0; i < ARRAY_LEN(bits); i++) {
		sqlite3_bind_int(
		    stmt, first + (int)i, (m->flags & bits[i]) != 0);
	}
	store_bind_str(
	    stmt, first + 5, m->keywords.p != NULL ? m->keywords : empty);
	store_bind_nz(stmt, first + 6, (int64_t)m->modseq);
}

/* Binds ?5 .. ?20 of both message upserts (apply.c, jmap.c) from m. */
void
store_bind_columns(sqlite3_stmt *stmt, const struct proto_message_row *m)
{
	store_bind_str(stmt, 5, m->message_id);
	store_bind_str(stmt, 6, m->subject);
	store_bind_str(stmt, 7, m->from_addr);
	store_bind_str(stmt, 8, m->to_addrs);
	store_bind_str(stmt, 9, m->cc_addrs);
	store_bind_nz(stmt, 10, m->date);
	store_bind_nz(stmt, 11, m->internal_date);
	sqlite3_bind_int64(stmt, 12, (int64_t)m->size);
	store_bind_flags(stmt, 13, m);
	sqlite3_bind_int(stmt, 20, m->has_attachments ? 1 : 0);
}

/* Applies one message row; *applied_r is 1 when a row was written,
 * *inserted_r true when it is a new row (the upsert's update path leaves
 * sqlite3_last_insert_rowid() alone). */
static int
store_apply_message(struct store *st, uint64_t account_id, int64_t mbox_id,
    const struct proto_message_row *m, int *applied_r, bool *inserted_r)
{
	sqlite3_stmt *stmt = NULL;
	int64_t last = sqlite3_last_insert_rowid(st->db);
	int rv;

	if (m->full) {
		rv = store_stmt(st, SQL_MESSAGE_UPSERT, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		sqlite3_bind_int64(stmt, 2, mbox_id);
		sqlite3_bind_int64(stmt, 3, m->uid);
		store_bind_str(stmt, 4, m->remote_id);
		store_bind_columns(stmt, m);
	} else {
		rv = store_stmt(st, SQL_MESSAGE_FLAGS, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, mbox_id);
		sqlite3_bind_int64(stmt, 2, m->uid);
		store_bind_flags(stmt, 3, m);
	}
	rv = store_stmt_exec(stmt);
	*applied_r = rv == 0 && sqlite3_changes(st->db) > 0;
	*inserted_r = rv == 0 && m->full &&
	    sqlite3_last_insert_rowid(st->db) != last;
	return (rv);
}

/* A JMAP row, with the guards of active changes when guarded. */
static int
store_apply_jmap(struct store *st, uint64_t account_id, int64_t mbox_id,
    const struct proto_message_row *m, bool guarded, int *applied_r)
{
	int64_t row = 0;
	bool skip = false;
	int rv = ERR_OK;

	*applied_r = 0;
	if (guarded) {
		rv = store_jmap_guard(st, account_id, mbox_id, m, &skip);
	}
	if (rv == 0 && !skip) {
		rv = store_jmap_message(st, account_id, mbox_id, m, &row);
	}
	if (rv == 0 && guarded && row != 0) {
		rv = store_change_overlay(st, row);
	}
	*applied_r = row != 0;
	return (rv);
}

/* True when this job may emit a progress event now (one per second). */
static bool
store_progress_due(struct store *st, uint64_t job_id, int64_t now_ms)
{
	struct store_progress_slot *s;

	s = &st->progress[job_id % STORE_PROGRESS_SLOTS];
	if (s->job_id == job_id && now_ms - s->last_ms < STORE_PROGRESS_MIN_MS
	    && now_ms >= s->last_ms) {
		return (false);
	}
	s->job_id = job_id;
	s->last_ms = now_ms;
	return (true);
}

int
store_apply_batch(struct store *st, const struct proto_batch *b,
    int64_t now_ms, struct store_out *out)
{
	const struct proto_message_row *m;
	struct proto_str last = { NULL, 0 };
	struct store_guard *guard = NULL;
	sqlite3_stmt *stmt = NULL;
	uint64_t account_id;
	int64_t mbox_id = 0, lease_until = 0;
	uint64_t applied = 0;
	bool *fresh = NULL; /* fresh[i]: messages[i] inserted a new row */
	size_t i;
	bool skip = false;
	int one, rc, rv;

	rv = store_batch_check(b, out);
	if (rv == 0) {
		rv = store_attach_check(b, out);
	}
	if (rv == 0) {
		rv = store_expunge_check(b, out); /* expunge.c */
	}
	if (rv == 0) {
		rv = store_rename_check(b, out); /* mailbox_rename.c */
	}
	if (rv == 0) {
		rv = store_body_check(b, out); /* body.c */
	}
	if (rv == 0) {
		rv = store_change_results_check(b, out); /* change_apply.c */
	}
	if (rv != 0) {
		return (rv);
	}
	/* A batch of server state needs no fsync of its own: its job's done
	 * commits durably and so covers it, and a batch lost to a power cut
	 * is fetched again (the checkpoint moves only in the done). Outcomes
	 * of local changes (change results) are durable at once. */
	rv = b->nchange_results == 0 ? store_begin_relaxed(st)
	                             : store_begin(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "begin"));
	}
	rv = store_job_fence(st, b->job_id, b->attempt, &account_id, out);
	if (rv != 0) {
		goto fail;
	}
	rv = store_stmt(st, SQL_BATCH_SEEN, &stmt);
	if (rv != 0) {
		goto dbfail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)b->job_id);
	sqlite3_bind_int64(stmt, 2, b->attempt);
	sqlite3_bind_int64(stmt, 3, b->seq);
	rc = sqlite3_step(stmt);
	store_stmt_done(stmt);
	if (rc == SQLITE_ROW) {
		store_rollback(st);
		log_info("event=batch_duplicate job=%llu account=%llu "
		         "attempt=%u seq=%u",
		    (unsigned long long)b->job_id,
		    (unsigned long long)account_id, b->attempt, b->seq);
		return (ERR_OK);
	}
	rv = store_stmt(st, SQL_BATCH_INSERT, &stmt);
	if (rv != 0) {
		goto dbfail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)b->job_id);
	sqlite3_bind_int64(stmt, 2, b->attempt);
	sqlite3_bind_int64(stmt, 3, b->seq);
	sqlite3_bind_int64(stmt, 4, (int64_t)b->nmessages);
	sqlite3_bind_int64(stmt, 5, now_ms);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		goto dbfail;
	}
	for (i = 0; i < b->nmailboxes; i++) {
		rv = store_apply_mailbox(
		    st, account_id, b->job_id, &b->mailboxes[i], now_ms);
		if (rv != 0) {
			goto dbfail;
		}
	}
	/* NULL (one query) when the account has no active change */
	if (b->nmessages > 0) {
		fresh = calloc(b->nmessages, sizeof(*fresh));
		if (fresh == NULL) {
			rv = ERR_NOMEM;
			goto dbfail;
		}
		rv = store_guard_load(st, account_id, &guard);
		if (rv != 0) {
			goto dbfail;
		}
	}
	for (i = 0; i < b->nmessages; i++) {
		m = &b->messages[i];
		if (last.p == NULL || last.len != m->mailbox.len
		    || memcmp(last.p, m->mailbox.p, last.len) != 0) {
			rv = store_mailbox_find(
			    st, account_id, m->mailbox, &mbox_id);
			if (rv != 0) {
				goto dbfail;
			}
			if (mbox_id == 0) {
				rv = store_out_fail(out, ERR_PROTO,
				    "messages[%zu].mailbox '%.*s' is neither "
				    "in "
				    "the batch nor in the database",
				    i, STORE_PS(m->mailbox));
				goto fail;
			}
			last = m->mailbox;
		}
		if (store_row_is_jmap(m->uid, m->remote_id)) {
			rv = store_apply_jmap(
			    st, account_id, mbox_id, m, guard != NULL, &one);
			if (rv != 0) {
				goto dbfail;
			}
			applied += (uint64_t)one;
			continue;
		}
		if (guard != NULL) {
			rv = store_guard_before(st, guard, mbox_id, m, &skip);
			if (rv != 0) {
				goto dbfail;
			}
			if (skip) {
				continue;
			}
		}
		rv = store_apply_message(
		    st, account_id, mbox_id, m, &one, &fresh[i]);
		if (rv == 0 && guard != NULL && one) {
			rv = store_guard_after(st, guard, mbox_id, m);
		}
		if (rv != 0) {
			goto dbfail;
		}
		applied += (uint64_t)one;
	}
	store_guard_free(&guard);
	rv = store_attach_apply(st, account_id, b, fresh); /* attach.c */
	free(fresh);
	fresh = NULL;
	if (rv != 0) {
		goto dbfail;
	}
	rv = store_expunge_apply(st, account_id, b, now_ms); /* expunge.c */
	if (rv != 0) {
		goto dbfail;
	}
	rv = store_body_apply(st, account_id, b, now_ms, out); /* body.c */
	if (rv != 0) {
		goto fail;
	}
	rv = store_change_results_apply(st, account_id, b, now_ms);
	if (rv != 0) {
		goto dbfail;
	}
	rv = store_stmt(st, SQL_JOB_PROGRESS, &stmt);
	if (rv != 0) {
		goto dbfail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)b->job_id);
	sqlite3_bind_int64(stmt, 2, (int64_t)applied);
	sqlite3_bind_int64(stmt, 3, now_ms);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		lease_until = sqlite3_column_int64(stmt, 0);
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_ROW) {
		rv = store_err(rc == SQLITE_DONE ? SQLITE_ERROR : rc);
		goto dbfail;
	}
	rv = store_commit(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "commit"));
	}
	out->reply.id = b->job_id;
	log_debug("event=batch_applied job=%llu account=%llu attempt=%u "
	          "seq=%u mailboxes=%zu rows=%llu",
	    (unsigned long long)b->job_id, (unsigned long long)account_id,
	    b->attempt, b->seq, b->nmailboxes, (unsigned long long)applied);
	if (store_progress_due(st, b->job_id, now_ms)) {
		/* due_at carries the renewed lease_until (docs/schema.md) */
		store_out_job_event(out, EV_JOB_PROGRESS, b->job_id,
		    account_id, JOB_LEASED, 0, b->attempt, lease_until, 0,
		    now_ms);
	}
	return (ERR_OK);
dbfail:
	store_out_dbfail(out, st, rv, "applying batch");
fail:
	free(fresh);
	store_guard_free(&guard);
	store_rollback(st);
	return (rv);
}
