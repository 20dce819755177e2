/*
 * job.c: creating and reading jobs, the queue of record.
 *
 * Invariant (enforced by partial unique indexes, see docs/schema.md): at
 * most one QUEUED job per (account, kind) and one LEASED job per account;
 * fetch_body jobs instead: one QUEUED per (account, message) and one
 * LEASED per account beside the others. A new request for an (account,
 * kind[, message]) that already has a QUEUED job joins it
 * ("coalescing"): the job keeps its id, its priority becomes the
 * higher of the two and its due time the earlier. Leasing, retrying and
 * fencing live in lease.c.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* Names are proto's, so the wire and the database always agree. */
const char *
store_kind_name(uint8_t kind)
{
	return (proto_job_kind_name(kind));
}

const char *
store_state_name(uint8_t state)
{
	return (proto_job_state_name(state));
}

int
store_state_parse(const char *s, uint8_t *state_r)
{
	return (s != NULL ? proto_job_state_parse(s, state_r) : ERR_INVAL);
}

static int
store_kind_parse(const char *s, uint8_t *kind_r)
{
	return (s != NULL ? proto_job_kind_parse(s, kind_r) : ERR_INVAL);
}

static const char SQL_JOB_QUEUED_FIND[]
    = "SELECT id, priority, due_at, attempts FROM jobs"
      " WHERE account_id = ?1 AND kind = ?2 AND state = 'queued'"
      " AND target_message_id IS ?3";

static const char SQL_JOB_COALESCE[]
    = "UPDATE jobs SET priority = max(priority, ?2), due_at = min(due_at, ?3)"
      " WHERE id = ?1 RETURNING priority, due_at";

static const char SQL_JOB_INSERT[]
    = "INSERT INTO jobs(account_id, kind, state, priority, attempts,"
      " max_attempts, created_at, due_at, messages, target_message_id)"
      " VALUES (?1, ?2, 'queued', ?3, 0, ?4, ?5, ?6, 0, ?7)";

/* store_job_enqueue for a job with a target message (0: none). */
static int
store_job_enqueue_target(struct store *st, uint64_t account_id, uint8_t kind,
    uint64_t target, uint8_t priority, int64_t due_at, int64_t now_ms,
    struct store_out *out, uint64_t *job_id_r)
{
	sqlite3_stmt *stmt = NULL;
	uint64_t id;
	uint32_t attempts = 0;
	int rc, rv;

	rv = store_stmt(st, SQL_JOB_QUEUED_FIND, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "finding queued job"));
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	sqlite3_bind_text(stmt, 2, store_kind_name(kind), -1, SQLITE_STATIC);
	store_bind_nz(stmt, 3, (int64_t)target);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		id = (uint64_t)sqlite3_column_int64(stmt, 0);
		attempts = (uint32_t)sqlite3_column_int64(stmt, 3);
		store_stmt_done(stmt);
		rv = store_stmt(st, SQL_JOB_COALESCE, &stmt);
		if (rv != 0) {
			return (
			    store_out_dbfail(out, st, rv, "coalescing job"));
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)id);
		sqlite3_bind_int(stmt, 2, priority);
		sqlite3_bind_int64(stmt, 3, due_at);
		rc = sqlite3_step(stmt);
		if (rc != SQLITE_ROW) {
			store_stmt_done(stmt);
			return (store_out_dbfail(
			    out, st, store_err(rc), "coalescing job"));
		}
		priority = (uint8_t)sqlite3_column_int(stmt, 0);
		due_at = sqlite3_column_int64(stmt, 1);
		store_stmt_done(stmt);
		log_info("event=job_coalesced job=%llu account=%llu kind=%s "
		         "priority=%u",
		    (unsigned long long)id, (unsigned long long)account_id,
		    store_kind_name(kind), priority);
	} else if (rc == SQLITE_DONE) {
		store_stmt_done(stmt);
		rv = store_stmt(st, SQL_JOB_INSERT, &stmt);
		if (rv != 0) {
			return (store_out_dbfail(out, st, rv, "creating job"));
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		sqlite3_bind_text(
		    stmt, 2, store_kind_name(kind), -1, SQLITE_STATIC);
		sqlite3_bind_int(stmt, 3, priority);
		sqlite3_bind_int64(stmt, 4, st->max_attempts);
		sqlite3_bind_int64(stmt, 5, now_ms);
		sqlite3_bind_int64(stmt, 6, due_at);
		store_bind_nz(stmt, 7, (int64_t)target);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (store_out_dbfail(out, st, rv, "creating job"));
		}
		id = (uint64_t)sqlite3_last_insert_rowid(st->db);
		log_info("event=job_queued job=%llu account=%llu kind=%s "
		         "priority=%u due_at=%lld",
		    (unsigned long long)id, (unsigned long long)account_id,
		    store_kind_name(kind), priority, (long long)due_at);
	} else {
		store_stmt_done(stmt);
		return (store_out_dbfail(
		    out, st, store_err(rc), "finding queued job"));
	}
	store_out_job_event(out, EV_JOB_QUEUED, id, account_id, JOB_QUEUED,
	    priority, attempts, due_at, 0, now_ms);
	if (out->nevents > 0) {
		out->events[out->nevents - 1].job_kind = kind;
	}
	*job_id_r = id;
	return (ERR_OK);
}

int
store_job_enqueue(struct store *st, uint64_t account_id, uint8_t kind,
    uint8_t priority, int64_t due_at, int64_t now_ms, struct store_out *out,
    uint64_t *job_id_r)
{
	return (store_job_enqueue_target(st, account_id, kind, 0, priority,
	    due_at, now_ms, out, job_id_r));
}

static const char SQL_ACCOUNT_ID_BY_NAME[]
    = "SELECT id FROM accounts WHERE name = ?1";
static const char SQL_ACCOUNT_EXISTS[]
    = "SELECT 1 FROM accounts WHERE id = ?1";
/* A message the server has (an IMAP UID, or a JMAP Email id rather than
 * a placeholder's 'local:N'): fetch_body's target. */
static const char SQL_MESSAGE_OF_ACCOUNT[]
    = "SELECT account_id FROM messages WHERE id = ?1 AND (uid IS NOT NULL"
      " OR (remote_id IS NOT NULL AND remote_id NOT LIKE 'local:%'))";

/* Runs a one-row lookup; ERR_NOTFOUND when there is no row. */
static int
store_lookup(struct store *st, const char *sql, struct proto_str s, int64_t v,
    int64_t *val_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	rv = store_stmt(st, sql, &stmt);
	if (rv != 0) {
		return (rv);
	}
	if (s.p != NULL) {
		store_bind_str(stmt, 1, s);
	} else {
		sqlite3_bind_int64(stmt, 1, v);
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*val_r = sqlite3_column_int64(stmt, 0);
		rv = ERR_OK;
	} else if (rc == SQLITE_DONE) {
		rv = ERR_NOTFOUND;
	} else {
		rv = store_err(rc);
	}
	store_stmt_done(stmt);
	return (rv);
}

/* Shared by submit and create: begin, enqueue, commit. */
static int
store_job_enqueue_tx(struct store *st, uint64_t account_id, uint8_t kind,
    uint64_t target, uint8_t priority, int64_t due_at, int64_t now_ms,
    struct store_out *out)
{
	uint64_t id;
	int rv;

	rv = store_begin(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "begin"));
	}
	rv = store_job_enqueue_target(
	    st, account_id, kind, target, priority, due_at, now_ms, out, &id);
	if (rv != 0) {
		store_rollback(st);
		return (rv);
	}
	rv = store_commit(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "commit"));
	}
	out->reply.id = id;
	return (ERR_OK);
}

int
store_job_submit(struct store *st, const struct proto_job_submit *js,
    int64_t now_ms, struct store_out *out)
{
	struct proto_str nil = { NULL, 0 };
	int64_t account_id, owner = 0;
	int rv;

	if (js->kind > JOB_KIND_FETCH_BODY) {
		return (store_out_fail(
		    out, ERR_INVAL, "unknown job kind %u", js->kind));
	}
	if (js->account.p == NULL || js->account.len == 0) {
		return (store_out_fail(
		    out, ERR_INVAL, "account name must not be empty"));
	}
	rv = store_lookup(
	    st, SQL_ACCOUNT_ID_BY_NAME, js->account, 0, &account_id);
	if (rv == ERR_NOTFOUND) {
		return (store_out_fail(out, rv, "no account named '%.*s'",
		    STORE_PS(js->account)));
	}
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "finding account"));
	}
	if (js->kind == JOB_KIND_FETCH_BODY) {
		rv = js->message_id == 0 || js->message_id > INT64_MAX
		    ? ERR_NOTFOUND
		    : store_lookup(st, SQL_MESSAGE_OF_ACCOUNT, nil,
			  (int64_t)js->message_id, &owner);
		if (rv == 0 && owner != account_id) {
			rv = ERR_NOTFOUND;
		}
		if (rv == ERR_NOTFOUND) {
			return (store_out_fail(out, rv,
			    "account '%.*s' has no message with id %llu on "
			    "the server",
			    STORE_PS(js->account),
			    (unsigned long long)js->message_id));
		}
		if (rv != 0) {
			return (
			    store_out_dbfail(out, st, rv, "finding message"));
		}
	}
	return (store_job_enqueue_tx(st, (uint64_t)account_id, js->kind,
	    js->kind == JOB_KIND_FETCH_BODY ? js->message_id : 0, PRIO_USER,
	    now_ms, now_ms, out));
}

int
store_job_create(struct store *st, const struct proto_job_create *jc,
    int64_t now_ms, struct store_out *out)
{
	struct proto_str nil = { NULL, 0 };
	int64_t dummy;
	int rv;

	if (jc->kind > JOB_KIND_WATCH) {
		return (store_out_fail(
		    out, ERR_INVAL, "unknown job kind %u", jc->kind));
	}
	if (jc->priority > PRIO_USER) {
		return (store_out_fail(
		    out, ERR_INVAL, "unknown priority %u", jc->priority));
	}
	if (jc->account_id == 0 || jc->account_id > INT64_MAX) {
		return (store_out_fail(out, ERR_INVAL, "invalid account id"));
	}
	rv = store_lookup(
	    st, SQL_ACCOUNT_EXISTS, nil, (int64_t)jc->account_id, &dummy);
	if (rv == ERR_NOTFOUND) {
		return (store_out_fail(out, rv, "no account with id %llu",
		    (unsigned long long)jc->account_id));
	}
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "finding account"));
	}
	if (jc->kind == JOB_KIND_FETCH_BODY) {
		return (store_out_fail(out, ERR_INVAL,
		    "fetch_body jobs are submitted with a message id"));
	}
	return (store_job_enqueue_tx(st, jc->account_id, jc->kind, 0,
	    jc->priority, jc->due_at > 0 ? jc->due_at : now_ms, now_ms, out));
}

/* Reading jobs ------------------------------------------------------------ */

#define STORE_JOB_COLS                                                        \
	"SELECT j.id, j.account_id, a.name, j.kind, j.state, j.priority,"     \
	" j.attempts, j.created_at, j.due_at, j.lease_until, j.finished_at,"  \
	" j.last_error, j.messages FROM jobs j JOIN accounts a"               \
	" ON a.id = j.account_id"

static const char SQL_JOB_BY_ID[] = STORE_JOB_COLS " WHERE j.id = ?1";
static const char SQL_JOB_RECENT[]
    = STORE_JOB_COLS " ORDER BY j.id DESC LIMIT ?1";
static const char SQL_JOB_ACTIVE[]
    = STORE_JOB_COLS " WHERE j.state IN ('queued', 'leased') ORDER BY j.id";

/* Runs a job query (one optional int64 parameter) into out->reply.jobs. */
static int
store_jobs_fill(struct store *st, const char *sql, bool bind, int64_t arg,
    struct store_out *out)
{
	struct proto_job_info *ji, *n;
	sqlite3_stmt *stmt = NULL;
	size_t cap = 0;
	const char *t;
	int rc, rv;

	rv = store_stmt(st, sql, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "reading jobs"));
	}
	if (bind) {
		sqlite3_bind_int64(stmt, 1, arg);
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (out->reply.njobs == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			n = realloc(out->reply.jobs, cap * sizeof(*n));
			if (n == NULL) {
				rv = ERR_NOMEM;
				goto fail;
			}
			out->reply.jobs = n;
		}
		ji = &out->reply.jobs[out->reply.njobs];
		memset(ji, 0, sizeof(*ji));
		ji->id = (uint64_t)sqlite3_column_int64(stmt, 0);
		ji->account_id = (uint64_t)sqlite3_column_int64(stmt, 1);
		rv = store_out_col(out, stmt, 2, &ji->account);
		if (rv != 0) {
			goto fail;
		}
		t = (const char *)sqlite3_column_text(stmt, 3);
		if (store_kind_parse(t, &ji->kind) != 0) {
			rv = ERR_DB;
			goto fail;
		}
		t = (const char *)sqlite3_column_text(stmt, 4);
		if (store_state_parse(t, &ji->state) != 0) {
			rv = ERR_DB;
			goto fail;
		}
		ji->priority = (uint8_t)sqlite3_column_int(stmt, 5);
		ji->attempts = (uint32_t)sqlite3_column_int64(stmt, 6);
		ji->created_at = sqlite3_column_int64(stmt, 7);
		ji->due_at = sqlite3_column_int64(stmt, 8);
		ji->lease_until = sqlite3_column_int64(stmt, 9);
		ji->finished_at = sqlite3_column_int64(stmt, 10);
		rv = store_out_col(out, stmt, 11, &ji->last_error);
		if (rv != 0) {
			goto fail;
		}
		ji->messages = (uint64_t)sqlite3_column_int64(stmt, 12);
		out->reply.njobs++;
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_DONE) {
		return (
		    store_out_dbfail(out, st, store_err(rc), "reading jobs"));
	}
	return (ERR_OK);
fail:
	store_stmt_done(stmt);
	if (rv == ERR_DB) {
		return (store_out_fail(out, rv,
		    "reading jobs: unexpected kind or state in database"));
	}
	return (store_out_fail(out, rv, "reading jobs: %s", err_str(rv)));
}

int
store_job_status(
    struct store *st, const struct proto_job_status *q, struct store_out *out)
{
	uint32_t limit;
	int rv;

	if (q->job_id != 0) {
		if (q->job_id > INT64_MAX) {
			return (store_out_fail(out, ERR_NOTFOUND,
			    "no job %llu", (unsigned long long)q->job_id));
		}
		rv = store_jobs_fill(
		    st, SQL_JOB_BY_ID, true, (int64_t)q->job_id, out);
		if (rv == 0 && out->reply.njobs == 0) {
			return (store_out_fail(out, ERR_NOTFOUND,
			    "no job %llu", (unsigned long long)q->job_id));
		}
		return (rv);
	}
	limit = q->limit == 0 ? STORE_STATUS_DEFAULT_LIMIT : q->limit;
	if (limit > STORE_STATUS_MAX_LIMIT) {
		limit = STORE_STATUS_MAX_LIMIT;
	}
	return (store_jobs_fill(st, SQL_JOB_RECENT, true, limit, out));
}

/*
 * The scheduler's clock for an account is the end of its last job, done
 * or not (a failing account must wait its interval like any other), so
 * take the later of the last success and the last finished job.
 */
static const char SQL_SCHED_ACCOUNTS[]
    = "SELECT a.id, a.interval_s,"
      " MAX(COALESCE(a.last_sync_at, 0) * 1000,"
      "     COALESCE((SELECT MAX(j.finished_at) FROM jobs j"
      "               WHERE j.account_id = a.id AND j.kind = 'sync'),"
      "     0)),"
      " a.fail_streak FROM accounts a ORDER BY a.id";

int
store_sched_state(struct store *st, struct store_out *out)
{
	struct proto_sched_account *sa, *n;
	sqlite3_stmt *stmt = NULL;
	size_t cap = 0;
	int rc, rv;

	rv = store_stmt(st, SQL_SCHED_ACCOUNTS, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "reading accounts"));
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (out->reply.nsched_accounts == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			n = realloc(
			    out->reply.sched_accounts, cap * sizeof(*n));
			if (n == NULL) {
				store_stmt_done(stmt);
				return (store_out_fail(out, ERR_NOMEM,
				    "reading accounts: out of memory"));
			}
			out->reply.sched_accounts = n;
		}
		sa = &out->reply.sched_accounts[out->reply.nsched_accounts++];
		memset(sa, 0, sizeof(*sa));
		sa->id = (uint64_t)sqlite3_column_int64(stmt, 0);
		sa->interval_s = (uint32_t)sqlite3_column_int64(stmt, 1);
		sa->last_sync_at = sqlite3_column_int64(stmt, 2);
		sa->fail_streak = (uint32_t)sqlite3_column_int64(stmt, 3);
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_DONE) {
		return (store_out_dbfail(
		    out, st, store_err(rc), "reading accounts"));
	}
	return (store_jobs_fill(st, SQL_JOB_ACTIVE, false, 0, out));
}
