/*
 * change_lease.c: what a drain job carries (docs/drain.md, "The drain
 * job"), decided when the job is leased, inside the lease's transaction.
 *
 * First, changes whose source mailbox was reset are re-pointed
 * (store_change_retarget). Then the account's active changes are read in
 * id order and each is either carried or left waiting:
 *   - a pending change is due when next_at <= now; an inflight one is
 *     carried again only by the job that carried it (an earlier attempt);
 *   - one message's changes keep their order: after a change that is not
 *     carried, or after a move or delete (a later change needs the
 *     message's new place), the message's later changes wait, due no
 *     earlier than what they wait for (so an empty drain is not queued
 *     again and again);
 *   - a change on a placeholder whose UID is not known yet waits;
 *   - at most PROTO_MAX_CHANGES changes and PROTO_MAX_RFC822 bytes of raw
 *     messages (the first change always fits); the rest waits for the
 *     next job, queued when this attempt ends.
 * Each carried change becomes inflight (job_id set, attempts + 1). The
 * strings of job_run.changes are owned by the store_out.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

struct lease_row {
	uint64_t id;
	uint8_t kind;
	bool inflight;
	uint64_t job_id;
	uint64_t message_id; /* 0: none */
	uint64_t waits_on; /* change whose placeholder it needs, 0: none */
	int64_t next_at;
	uint64_t size; /* raw message bytes */
	bool eligible, selected;
	int64_t bump; /* > next_at: the new due time of a waiting change */
};

static const char SQL_LEASE_ACTIVE[]
    = "SELECT id, kind, state, coalesce(job_id, 0), coalesce(message_id, 0),"
      " CASE WHEN uid IS NULL AND kind IN ('flag', 'move', 'delete')"
      "  AND remote_id LIKE '" STORE_PLACEHOLDER_PFX "%'"
      "  THEN CAST(substr(remote_id, 7) AS INTEGER) ELSE 0 END,"
      " next_at, coalesce(length(rfc822), 0)"
      " FROM pending_changes WHERE account_id = ?1"
      " AND state IN " STORE_CHANGE_ACTIVE " ORDER BY id";
static const char SQL_LEASE_BUMP[]
    = "UPDATE pending_changes SET next_at = ?2 WHERE id = ?1"
      " AND next_at < ?2";
static const char SQL_LEASE_MARK[]
    = "UPDATE pending_changes SET state = 'inflight', job_id = ?2,"
      " attempts = attempts + 1, updated_at = ?3 WHERE id = ?1";
static const char SQL_LEASE_CHANGE[]
    = "SELECT kind, mailbox, uidvalidity, uid, remote_id, flags_add,"
      " flags_remove, keywords_add, keywords_remove, to_mailbox, expunge,"
      " rfc822, header_message_id, step, attempts"
      " FROM pending_changes WHERE id = ?1";
static const char SQL_LEASE_SMTP[]
    = "SELECT smtp, coalesce(smtp_username, username), smtp_secret"
      " FROM accounts WHERE id = ?1";

static int
row_by_msg(const void *a, const void *b)
{
	const struct lease_row *x = *(const struct lease_row *const *)a;
	const struct lease_row *y = *(const struct lease_row *const *)b;

	if (x->message_id != y->message_id) {
		return (x->message_id < y->message_id ? -1 : 1);
	}
	return (x->id < y->id ? -1 : x->id > y->id);
}

static int
row_by_id(const void *key, const void *elem)
{
	const uint64_t *id = key;
	const struct lease_row *r = elem;

	return (*id < r->id ? -1 : *id > r->id);
}

static int
lease_load(
    struct store *st, uint64_t account_id, struct lease_row **v_r, size_t *n_r)
{
	struct lease_row *v = NULL, *n, *r;
	sqlite3_stmt *stmt = NULL;
	size_t nv = 0, cap = 0;
	const char *state;
	int rc, rv;

	rv = store_stmt(st, SQL_LEASE_ACTIVE, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (nv == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			n = realloc(v, cap * sizeof(*n));
			if (n == NULL) {
				rv = ERR_NOMEM;
				break;
			}
			v = n;
		}
		r = &v[nv];
		memset(r, 0, sizeof(*r));
		r->id = (uint64_t)sqlite3_column_int64(stmt, 0);
		if (proto_change_kind_parse(
		        (const char *)sqlite3_column_text(stmt, 1), &r->kind)
		    != 0) {
			rv = ERR_DB;
			break;
		}
		state = (const char *)sqlite3_column_text(stmt, 2);
		r->inflight = state != NULL && strcmp(state, "inflight") == 0;
		r->job_id = (uint64_t)sqlite3_column_int64(stmt, 3);
		r->message_id = (uint64_t)sqlite3_column_int64(stmt, 4);
		r->waits_on = (uint64_t)sqlite3_column_int64(stmt, 5);
		r->next_at = sqlite3_column_int64(stmt, 6);
		r->size = (uint64_t)sqlite3_column_int64(stmt, 7);
		nv++;
	}
	store_stmt_done(stmt);
	if (rv == 0 && rc != SQLITE_DONE) {
		rv = store_err(rc);
	}
	if (rv != 0) {
		free(v);
		return (rv);
	}
	*v_r = v;
	*n_r = nv;
	return (ERR_OK);
}

/*
 * Decides whether r can run in job job_id on its own merits. When it
 * cannot, *until_r is the time it waits for (0: unknown, or soon).
 */
static bool
lease_ready(const struct lease_row *v, size_t n, const struct lease_row *r,
    uint64_t job_id, int64_t now_ms, int64_t *until_r)
{
	const struct lease_row *w;

	*until_r = 0;
	if (r->inflight && r->job_id != job_id) {
		return (false); /* another job's (maintenance frees it) */
	}
	if (r->waits_on != 0) {
		w = bsearch(&r->waits_on, v, n, sizeof(*v), row_by_id);
		if (w != NULL && !w->inflight && w->next_at > now_ms) {
			*until_r = w->next_at;
		}
		return (false);
	}
	if (!r->inflight && r->next_at > now_ms) {
		*until_r = r->next_at;
		return (false);
	}
	return (true);
}

/* Marks the rows that may run (eligible) and the waiting ones' bumps. */
static int
lease_plan(struct lease_row *v, size_t n, uint64_t job_id, int64_t now_ms)
{
	struct lease_row **by = NULL, *r;
	int64_t until, block_at = 0;
	bool blocked = false;
	size_t i;

	by = calloc(n > 0 ? n : 1, sizeof(*by));
	if (by == NULL) {
		return (ERR_NOMEM);
	}
	for (i = 0; i < n; i++) {
		by[i] = &v[i];
	}
	qsort(by, n, sizeof(*by), row_by_msg);
	for (i = 0; i < n; i++) {
		r = by[i];
		/* a new message (rows without one stand alone) */
		if (i == 0 || r->message_id == 0
		    || r->message_id != by[i - 1]->message_id) {
			blocked = false;
			block_at = 0;
		}
		if (blocked) {
			if (block_at > r->next_at) {
				r->bump = block_at;
			}
			continue;
		}
		if (!lease_ready(v, n, r, job_id, now_ms, &until)) {
			if (until > r->next_at) {
				r->bump = until;
			}
			blocked = true;
			block_at = until;
			continue;
		}
		r->eligible = true;
		if (r->kind == CHANGE_MOVE || r->kind == CHANGE_DELETE) {
			blocked = true;
			block_at = 0;
		}
	}
	free(by);
	/* The budget, in id order; the first change always fits. */
	{
		uint64_t bytes = 0;
		size_t count = 0;

		for (i = 0; i < n; i++) {
			r = &v[i];
			if (!r->eligible) {
				continue;
			}
			if (count == PROTO_MAX_CHANGES
			    || (count > 0
			        && bytes + r->size > PROTO_MAX_RFC822)) {
				break;
			}
			r->selected = true;
			bytes += r->size;
			count++;
		}
	}
	return (ERR_OK);
}

/* Runs one of the id-keyed updates. */
static int
lease_update(
    struct store *st, const char *sql, uint64_t id, int64_t a, int64_t b)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	rv = store_stmt(st, sql, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)id);
	sqlite3_bind_int64(stmt, 2, a);
	if (sql == SQL_LEASE_MARK) {
		sqlite3_bind_int64(stmt, 3, b);
	}
	return (store_stmt_exec(stmt));
}

/* Fills c (one carried change) from its row; strings owned by out. */
static int
lease_fill(struct store *st, uint64_t id, const char *sent,
    struct proto_change *c, struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	memset(c, 0, sizeof(*c));
	c->id = id;
	rv = store_stmt(st, SQL_LEASE_CHANGE, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		store_stmt_done(stmt);
		return (rc == SQLITE_DONE ? ERR_DB : store_err(rc));
	}
	if (proto_change_kind_parse(
	        (const char *)sqlite3_column_text(stmt, 0), &c->kind)
	    != 0) {
		store_stmt_done(stmt);
		return (ERR_DB);
	}
	c->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 2);
	c->uid = (uint32_t)sqlite3_column_int64(stmt, 3);
	c->flags_add = (uint32_t)sqlite3_column_int64(stmt, 5);
	c->flags_remove = (uint32_t)sqlite3_column_int64(stmt, 6);
	c->expunge = sqlite3_column_int(stmt, 10) != 0;
	c->step = (uint8_t)sqlite3_column_int(stmt, 13);
	/* attempts counts this one already */
	c->attempts = (uint32_t)sqlite3_column_int64(stmt, 14) - 1;
	rv = store_out_col(out, stmt, 1, &c->mailbox);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 4, &c->remote_id);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 7, &c->keywords_add);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 8, &c->keywords_remove);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 11, &c->rfc822);
	rv = rv != 0 ? rv
	             : store_out_col(out, stmt, 12, &c->header_message_id);
	if (rv == 0 && c->kind == CHANGE_SEND) {
		/* the Sent copy goes where the Sent role is now */
		if (sent != NULL) {
			rv = store_out_str(out, sent, &c->to_mailbox);
		}
	} else if (rv == 0) {
		rv = store_out_col(out, stmt, 9, &c->to_mailbox);
	}
	store_stmt_done(stmt);
	return (rv);
}

/* The SMTP settings of run's account; the secret defaults to the
 * account's password, which run->password already holds. */
static int
lease_smtp(struct store *st, struct proto_job_run *run, struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	char *plain = NULL, *both;
	size_t plain_len = 0, plen = run->password.len;
	int rc, rv;

	rv = store_stmt(st, SQL_LEASE_SMTP, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)run->account_id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		store_stmt_done(stmt);
		return (rc == SQLITE_DONE ? ERR_DB : store_err(rc));
	}
	rv = store_out_col(out, stmt, 0, &run->smtp);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 1, &run->smtp_username);
	if (rv == 0 && sqlite3_column_type(stmt, 2) != SQLITE_NULL) {
		rv = secret_open(st->key, sqlite3_column_blob(stmt, 2),
		    (size_t)sqlite3_column_bytes(stmt, 2), &plain, &plain_len);
	}
	store_stmt_done(stmt);
	if (rv != 0) {
		return (rv);
	}
	if (plain == NULL) {
		run->smtp_password = run->password;
		return (ERR_OK);
	}
	/* store_out holds one secret: both go in one wiped buffer */
	both = malloc(plen + plain_len + 2);
	if (both == NULL) {
		mem_wipe(plain, plain_len);
		free(plain);
		return (ERR_NOMEM);
	}
	if (plen > 0) {
		memcpy(both, run->password.p, plen);
	}
	both[plen] = '\0';
	memcpy(both + plen + 1, plain, plain_len);
	both[plen + 1 + plain_len] = '\0';
	mem_wipe(plain, plain_len);
	free(plain);
	store_out_secret(out, both, plen + plain_len + 2);
	run->password.p = both;
	run->smtp_password.p = both + plen + 1;
	run->smtp_password.len = plain_len;
	return (ERR_OK);
}

int
store_change_lease(struct store *st, struct proto_job_run *run, int64_t now_ms,
    struct store_out *out)
{
	struct lease_row *v = NULL;
	int64_t sent_id;
	char *sent = NULL;
	size_t n = 0, nsel = 0, i, k = 0;
	int rv;

	rv = lease_smtp(st, run, out);
	if (rv != 0) {
		return (rv);
	}
	rv = store_change_retarget(st, run->account_id, run->job_id, now_ms);
	if (rv == 0) {
		rv = lease_load(st, run->account_id, &v, &n);
	}
	if (rv == 0) {
		rv = lease_plan(v, n, run->job_id, now_ms);
	}
	if (rv == 0) {
		rv = store_role_mailbox(
		    st, run->account_id, "sent", &sent_id, &sent);
	}
	for (i = 0; rv == 0 && i < n; i++) {
		if (v[i].bump > v[i].next_at) {
			rv = lease_update(
			    st, SQL_LEASE_BUMP, v[i].id, v[i].bump, 0);
		}
		nsel += v[i].selected ? 1 : 0;
	}
	if (rv == 0 && nsel > 0) {
		run->changes = calloc(nsel, sizeof(*run->changes));
		rv = run->changes == NULL ? ERR_NOMEM : ERR_OK;
	}
	for (i = 0; rv == 0 && i < n; i++) {
		if (!v[i].selected) {
			continue;
		}
		rv = lease_update(
		    st, SQL_LEASE_MARK, v[i].id, (int64_t)run->job_id, now_ms);
		if (rv == 0) {
			rv = lease_fill(
			    st, v[i].id, sent, &run->changes[k], out);
		}
		if (rv == 0) {
			k++;
			run->nchanges = k;
		}
	}
	free(sent);
	free(v);
	if (rv == 0) {
		log_info(
		    "event=drain_leased job=%llu account=%llu changes=%zu "
		    "waiting=%zu",
		    (unsigned long long)run->job_id,
		    (unsigned long long)run->account_id, nsel, n - nsel);
	}
	return (rv);
}
