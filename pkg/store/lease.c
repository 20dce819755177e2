/*
 * lease.c: the LEASED part of the job lifecycle (docs/architecture.md).
 *
 *   QUEUED --store_job_lease--> LEASED     attempts + 1, lease_until set
 *   LEASED --store_job_retry--> QUEUED     lease expired, due = backoff
 *   LEASED --store_job_retry--> DEAD       lease expired, out of attempts
 *   LEASED --store_job_end_failure--> QUEUED | FAILED | DEAD
 *
 * The attempt number is the fencing token: every result or retry names
 * the attempt it belongs to, and store_job_fence() refuses any other with
 * ERR_STALE, so a slow worker of attempt 1 cannot touch attempt 2.
 *
 * A drain job's lease also picks the changes it carries and marks them
 * inflight (change_lease.c); a retry ends them (change_apply.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define STORE_MAX_LEASE_MS (24LL * 3600 * 1000)

static const char SQL_JOB_FENCE[]
    = "SELECT state, attempts, account_id FROM jobs WHERE id = ?1";

int
store_job_fence(struct store *st, uint64_t job_id, uint32_t attempt,
    uint64_t *account_id_r, struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	const char *state;
	uint32_t cur;
	int rc, rv;

	if (job_id == 0 || job_id > INT64_MAX) {
		return (store_out_fail(out, ERR_STALE,
		    "job %llu does not exist", (unsigned long long)job_id));
	}
	rv = store_stmt(st, SQL_JOB_FENCE, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "fencing"));
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)job_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		store_stmt_done(stmt);
		return (store_out_fail(out, ERR_STALE,
		    "job %llu does not exist", (unsigned long long)job_id));
	}
	if (rc != SQLITE_ROW) {
		store_stmt_done(stmt);
		return (store_out_dbfail(out, st, store_err(rc), "fencing"));
	}
	state = (const char *)sqlite3_column_text(stmt, 0);
	cur = (uint32_t)sqlite3_column_int64(stmt, 1);
	*account_id_r = (uint64_t)sqlite3_column_int64(stmt, 2);
	if (state == NULL || strcmp(state, "leased") != 0) {
		rv = store_out_fail(out, ERR_STALE,
		    "job %llu is %s, not leased (attempt %u)",
		    (unsigned long long)job_id, state != NULL ? state : "?",
		    attempt);
	} else if (cur != attempt) {
		rv = store_out_fail(out, ERR_STALE,
		    "job %llu attempt %u is stale (current attempt %u)",
		    (unsigned long long)job_id, attempt, cur);
	}
	store_stmt_done(stmt);
	return (rv);
}

static const char SQL_JOB_KIND[]
    = "SELECT kind, priority FROM jobs WHERE id = ?1";
static const char SQL_JOB_OTHER_QUEUED[]
    = "SELECT id FROM jobs WHERE account_id = ?1 AND kind = ?2"
      " AND state = 'queued' AND id <> ?3 AND target_message_id IS"
      " (SELECT target_message_id FROM jobs WHERE id = ?3)";
static const char SQL_JOB_REQUEUE[]
    = "UPDATE jobs SET state = 'queued', due_at = ?2, leased_at = NULL,"
      " lease_until = NULL, lease_ms = NULL, last_error = ?3 WHERE id = ?1";
static const char SQL_JOB_END[]
    = "UPDATE jobs SET state = ?2, finished_at = ?3, lease_until = NULL,"
      " lease_ms = NULL, last_error = ?4 WHERE id = ?1";
static const char SQL_JOB_MERGE[]
    = "UPDATE jobs SET priority = max(priority, ?2) WHERE id = ?1";
static const char SQL_ACCOUNT_FAILED[]
    = "UPDATE accounts SET fail_streak = fail_streak + 1, last_error = ?2"
      " WHERE id = ?1";
static const char SQL_BATCHES_DELETE[]
    = "DELETE FROM job_batches WHERE job_id = ?1";

int
store_job_end_failure(struct store *st, uint64_t job_id, uint64_t account_id,
    uint32_t attempt, uint8_t target, int64_t due_ms, int status,
    const char *error, int64_t now_ms, struct store_out *out, uint8_t *state_r)
{
	sqlite3_stmt *stmt = NULL;
	char kind[16] = "", text[STORE_MAX_ERROR + 64];
	uint64_t other = 0;
	uint8_t prio = 0;
	int rc, rv;

	snprintf(text, sizeof(text), "%s", error);
	rv = store_stmt(st, SQL_JOB_KIND, &stmt);
	if (rv != 0) {
		goto dbfail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)job_id);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		snprintf(kind, sizeof(kind), "%s",
		    (const char *)sqlite3_column_text(stmt, 0));
		prio = (uint8_t)sqlite3_column_int(stmt, 1);
	}
	store_stmt_done(stmt);
	if (target == JOB_QUEUED) {
		/* A request may have queued another job of this kind while
		 * this one was leased: the retry joins it. */
		rv = store_stmt(st, SQL_JOB_OTHER_QUEUED, &stmt);
		if (rv != 0) {
			goto dbfail;
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 3, (int64_t)job_id);
		if (sqlite3_step(stmt) == SQLITE_ROW) {
			other = (uint64_t)sqlite3_column_int64(stmt, 0);
		}
		store_stmt_done(stmt);
	}
	if (target == JOB_QUEUED && other == 0) {
		rv = store_stmt(st, SQL_JOB_REQUEUE, &stmt);
		if (rv != 0) {
			goto dbfail;
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)job_id);
		sqlite3_bind_int64(stmt, 2, due_ms);
		sqlite3_bind_text(stmt, 3, text, -1, SQLITE_STATIC);
	} else {
		if (other != 0) {
			target = JOB_FAILED;
			snprintf(text, sizeof(text),
			    "%.*s (retry joined queued job %llu)",
			    STORE_MAX_ERROR, error, (unsigned long long)other);
		}
		rv = store_stmt(st, SQL_JOB_END, &stmt);
		if (rv != 0) {
			goto dbfail;
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)job_id);
		sqlite3_bind_text(
		    stmt, 2, store_state_name(target), -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 3, now_ms);
		sqlite3_bind_text(stmt, 4, text, -1, SQLITE_STATIC);
	}
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		goto dbfail;
	}
	if (other != 0) {
		rv = store_stmt(st, SQL_JOB_MERGE, &stmt);
		if (rv != 0) {
			goto dbfail;
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)other);
		sqlite3_bind_int(stmt, 2, prio);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			goto dbfail;
		}
	} else if (target != JOB_QUEUED && strcmp(kind, "sync") == 0) {
		/* The account's streak counts jobs that ended badly; a
		 * merged retry continues in the other job, so it does not.
		 * Nor do a body fetch and a drain: their errors are the
		 * body's and the changes'. */
		rv = store_stmt(st, SQL_ACCOUNT_FAILED, &stmt);
		if (rv != 0) {
			goto dbfail;
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		sqlite3_bind_text(stmt, 2, text, -1, SQLITE_STATIC);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			goto dbfail;
		}
	}
	rv = store_stmt(st, SQL_BATCHES_DELETE, &stmt);
	if (rv != 0) {
		goto dbfail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)job_id);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		goto dbfail;
	}
	rv = store_log_event(st, now_ms, account_id, job_id, kind,
	    target == JOB_QUEUED ? "retry" : store_state_name(target), text);
	if (rv != 0) {
		goto dbfail;
	}
	if (target == JOB_QUEUED) {
		store_out_job_event(out, EV_JOB_QUEUED, job_id, account_id,
		    JOB_QUEUED, prio, attempt, due_ms, status, now_ms);
		log_info("event=job_requeued job=%llu account=%llu attempt=%u "
		         "due_at=%lld error=\"%s\"",
		    (unsigned long long)job_id, (unsigned long long)account_id,
		    attempt, (long long)due_ms, text);
	} else {
		store_out_job_event(out, EV_JOB_FINISHED, job_id, account_id,
		    target, prio, attempt, 0, status, now_ms);
		log_info("event=job_%s job=%llu account=%llu attempt=%u "
		         "error=\"%s\"",
		    store_state_name(target), (unsigned long long)job_id,
		    (unsigned long long)account_id, attempt, text);
	}
	*state_r = target;
	return (ERR_OK);
dbfail:
	(void)rc;
	return (store_out_dbfail(out, st, rv, "ending job attempt"));
}

/* Leasing ----------------------------------------------------------------- */

static const char SQL_LEASE_JOB[]
    = "SELECT state, account_id, kind, attempts, target_message_id"
      " FROM jobs WHERE id = ?1";
static const char SQL_LEASE_BUSY[]
    = "SELECT id FROM jobs WHERE account_id = ?1 AND state = 'leased'"
      " AND (kind = 'watch') = (?2 = 'watch')"
      " AND (kind = 'fetch_body') = (?2 = 'fetch_body')";
static const char SQL_LEASE_SET[]
    = "UPDATE jobs SET state = 'leased', attempts = attempts + 1,"
      " leased_at = ?2, lease_until = ?3, lease_ms = ?3 - ?2, messages = 0"
      " WHERE id = ?1";
static const char SQL_LEASE_ACCOUNT[]
    = "SELECT name, protocol, server, username, secret, tls_ca_pem,"
      " starttls, plaintext, auth, bodies FROM accounts WHERE id = ?1";
static const char SQL_LEASE_TARGET[]
    = "SELECT x.name, x.uidvalidity, m.uid, m.remote_id FROM messages m"
      " JOIN mailboxes x ON x.id = m.mailbox_id WHERE m.id = ?1";
static const char SQL_LEASE_CHECKPOINTS[]
    = "SELECT name, uidvalidity, uidnext, highestmodseq, remote_id, role"
      " FROM mailboxes WHERE account_id = ?1 ORDER BY name";

/* Fills run's checkpoints: every mailbox of the account (NULL -> 0; the
 * JMAP Mailbox id and role, NULL -> nil). */
static int
store_lease_checkpoints(
    struct store *st, struct proto_job_run *run, struct store_out *out)
{
	struct proto_checkpoint *cp, *n;
	sqlite3_stmt *stmt = NULL;
	size_t cap = 0;
	int rc, rv;

	rv = store_stmt(st, SQL_LEASE_CHECKPOINTS, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)run->account_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (run->ncheckpoints == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			n = realloc(run->checkpoints, cap * sizeof(*n));
			if (n == NULL) {
				store_stmt_done(stmt);
				return (ERR_NOMEM);
			}
			run->checkpoints = n;
		}
		cp = &run->checkpoints[run->ncheckpoints];
		memset(cp, 0, sizeof(*cp));
		rv = store_out_col(out, stmt, 0, &cp->mailbox);
		rv = rv != 0 ? rv : store_out_col(out, stmt, 4, &cp->remote_id);
		rv = rv != 0 ? rv : store_out_col(out, stmt, 5, &cp->role);
		if (rv != 0) {
			store_stmt_done(stmt);
			return (rv);
		}
		cp->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 1);
		cp->uidnext = (uint32_t)sqlite3_column_int64(stmt, 2);
		cp->highestmodseq = (uint64_t)sqlite3_column_int64(stmt, 3);
		run->ncheckpoints++;
	}
	store_stmt_done(stmt);
	return (rc == SQLITE_DONE ? ERR_OK : store_err(rc));
}

/* fetch_body: the target message's mailbox, UIDVALIDITY and UID. A
 * message that is gone leaves them empty: the worker fails the job. */
static int
store_lease_target(struct store *st, uint64_t message_id,
    struct proto_job_run *run, struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	rv = store_stmt(st, SQL_LEASE_TARGET, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)message_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		rv = store_out_col(out, stmt, 0, &run->target_mailbox);
		run->target_uidvalidity
		    = (uint32_t)sqlite3_column_int64(stmt, 1);
		run->target_uid = (uint32_t)sqlite3_column_int64(stmt, 2);
		if (rv == 0 && run->target_uid == 0) {
			rv = store_out_col(out, stmt, 3, &run->target_remote_id);
		}
	} else if (rc != SQLITE_DONE) {
		rv = store_err(rc);
	}
	store_stmt_done(stmt);
	return (rv);
}

/* Fills run's account fields and decrypts the password into out. */
static int
store_lease_account(
    struct store *st, struct proto_job_run *run, struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	char *plain = NULL;
	size_t plain_len = 0;
	int rc, rv;

	rv = store_stmt(st, SQL_LEASE_ACCOUNT, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "reading account"));
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)run->account_id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		store_stmt_done(stmt);
		return (store_out_dbfail(
		    out, st, store_err(rc), "reading account"));
	}
	rv = store_out_col(out, stmt, 0, &run->account);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 1, &run->protocol);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 2, &run->server);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 3, &run->username);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 5, &run->tls_ca_pem);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 8, &run->auth);
	rv = rv != 0 ? rv : store_out_col(out, stmt, 9, &run->bodies);
	if (rv != 0) {
		store_stmt_done(stmt);
		return (store_out_fail(
		    out, rv, "reading account: %s", err_str(rv)));
	}
	run->max_body = st->max_body;
	run->starttls = sqlite3_column_int(stmt, 6) != 0;
	run->plaintext = sqlite3_column_int(stmt, 7) != 0;
	rv = secret_open(st->key, sqlite3_column_blob(stmt, 4),
	    (size_t)sqlite3_column_bytes(stmt, 4), &plain, &plain_len);
	store_stmt_done(stmt);
	if (rv != 0) {
		return (rv); /* the caller fails the job */
	}
	store_out_secret(out, plain, plain_len);
	run->password.p = plain;
	run->password.len = plain_len;
	return (ERR_OK);
}

int
store_job_lease(struct store *st, const struct proto_job_lease *jl,
    int64_t now_ms, struct store_out *out)
{
	struct proto_job_run *run;
	sqlite3_stmt *stmt = NULL;
	char state[16] = "", kind[16] = "";
	uint64_t account_id = 0, busy, target = 0;
	uint32_t attempt = 0;
	uint8_t fstate;
	int rc, rv;

	if (jl->job_id == 0 || jl->job_id > INT64_MAX) {
		return (store_out_fail(out, ERR_NOTFOUND, "no job %llu",
		    (unsigned long long)jl->job_id));
	}
	if (jl->lease_until <= now_ms
	    || jl->lease_until - now_ms > STORE_MAX_LEASE_MS) {
		return (store_out_fail(out, ERR_INVAL,
		    "lease_until %lld must be in the next 24 hours (now %lld)",
		    (long long)jl->lease_until, (long long)now_ms));
	}
	rv = store_begin(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "begin"));
	}
	rv = store_stmt(st, SQL_LEASE_JOB, &stmt);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "leasing");
		goto fail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)jl->job_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		snprintf(state, sizeof(state), "%s",
		    (const char *)sqlite3_column_text(stmt, 0));
		account_id = (uint64_t)sqlite3_column_int64(stmt, 1);
		snprintf(kind, sizeof(kind), "%s",
		    (const char *)sqlite3_column_text(stmt, 2));
		attempt = (uint32_t)sqlite3_column_int64(stmt, 3) + 1;
		target = (uint64_t)sqlite3_column_int64(stmt, 4);
	}
	store_stmt_done(stmt);
	if (rc == SQLITE_DONE) {
		rv = store_out_fail(out, ERR_NOTFOUND, "no job %llu",
		    (unsigned long long)jl->job_id);
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		rv = store_out_dbfail(out, st, store_err(rc), "leasing");
		goto fail;
	}
	if (strcmp(state, "queued") != 0) {
		rv = store_out_fail(out, ERR_BADSTATE,
		    "job %llu is %s, not queued",
		    (unsigned long long)jl->job_id, state);
		goto fail;
	}
	rv = store_stmt(st, SQL_LEASE_BUSY, &stmt);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "leasing");
		goto fail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	busy = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(stmt, 0) : 0;
	store_stmt_done(stmt);
	if (busy != 0) {
		rv = store_out_fail(out, ERR_BADSTATE,
		    "account %llu already has leased job %llu",
		    (unsigned long long)account_id, (unsigned long long)busy);
		goto fail;
	}
	rv = store_stmt(st, SQL_LEASE_SET, &stmt);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "leasing");
		goto fail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)jl->job_id);
	sqlite3_bind_int64(stmt, 2, now_ms);
	sqlite3_bind_int64(stmt, 3, jl->lease_until);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "leasing");
		goto fail;
	}
	run = calloc(1, sizeof(*run));
	if (run == NULL) {
		rv = store_out_fail(out, ERR_NOMEM, "leasing: out of memory");
		goto fail;
	}
	out->reply.job_run = run;
	run->job_id = jl->job_id;
	run->attempt = attempt;
	if (proto_job_kind_parse(kind, &run->kind) != 0) {
		run->kind = JOB_KIND_SYNC;
	}
	run->lease_until = jl->lease_until;
	run->account_id = account_id;
	rv = store_lease_account(st, run, out);
	if (rv == 0 && run->kind == JOB_KIND_DRAIN) {
		rv = store_change_lease(st, run, now_ms, out);
		if (rv != 0 && rv != ERR_CRYPTO) {
			store_out_dbfail(out, st, rv, "leasing changes");
			goto fail;
		}
	}
	if (rv == ERR_CRYPTO) {
		/* The job cannot run with this key file: fail it for good
		 * rather than lease it again and again. */
		out->reply.job_run = NULL;
		free(run->changes);
		free(run);
		rv = store_job_end_failure(st, jl->job_id, account_id, attempt,
		    JOB_FAILED, 0, ERR_CRYPTO,
		    "cannot open the stored password (wrong key file?)",
		    now_ms, out, &fstate);
		if (rv != 0) {
			goto fail;
		}
		rv = store_commit(st);
		if (rv != 0) {
			return (store_out_dbfail(out, st, rv, "commit"));
		}
		out->reply.status = ERR_CRYPTO;
		snprintf(out->errtext, sizeof(out->errtext),
		    "job %llu failed: cannot open the stored password of "
		    "account %llu (wrong key file?)",
		    (unsigned long long)jl->job_id,
		    (unsigned long long)account_id);
		out->reply.error.p = out->errtext;
		out->reply.error.len = strlen(out->errtext);
		return (ERR_CRYPTO);
	}
	if (rv != 0) {
		if (out->reply.status == 0) {
			store_out_fail(out, rv, "leasing: %s", err_str(rv));
		}
		goto fail;
	}
	if (run->kind == JOB_KIND_FETCH_BODY) {
		rv = store_lease_target(st, target, run, out);
	} else {
		rv = store_lease_checkpoints(st, run, out);
	}
	if (rv == 0) {
		rv = store_lease_states(st, run, out); /* jmap.c */
	}
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "reading checkpoints");
		goto fail;
	}
	rv = store_commit(st);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "commit");
		goto failed;
	}
	out->reply.id = jl->job_id;
	log_info("event=job_leased job=%llu account=%llu attempt=%u "
	         "lease_until=%lld checkpoints=%zu changes=%zu",
	    (unsigned long long)jl->job_id, (unsigned long long)account_id,
	    attempt, (long long)jl->lease_until, run->ncheckpoints,
	    run->nchanges);
	return (ERR_OK);
fail:
	store_rollback(st);
failed:
	/* No job_run in a failed reply (and the password is wiped). */
	if (out->reply.job_run != NULL) {
		free(out->reply.job_run->checkpoints);
		free(out->reply.job_run->states);
		free(out->reply.job_run->changes);
		mem_wipe(out->reply.job_run, sizeof(*out->reply.job_run));
		free(out->reply.job_run);
		out->reply.job_run = NULL;
	}
	store_out_secret(out, NULL, 0);
	return (rv);
}

static const char SQL_RETRY_LEASE[]
    = "SELECT lease_until, EXISTS (SELECT 1 FROM job_batches b"
      " WHERE b.job_id = jobs.id AND b.attempt = jobs.attempts), kind"
      " FROM jobs WHERE id = ?1";

/*
 * The store's lease is the truth: once a batch of this attempt was
 * applied, a later batch may have renewed the lease after the scheduler's
 * last (rate-limited) EV_JOB_PROGRESS, so a retry before the store's
 * lease_until is refused with ERR_BADSTATE and the scheduler reloads. An
 * attempt with no batch yet may be given back early (no worker took it):
 * *early_r says so; *drain_r when the job is a drain.
 */
static int
store_retry_expired(struct store *st, uint64_t job_id, int64_t now_ms,
    bool *early_r, bool *drain_r, struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	int64_t until = 0;
	bool progressed = false;
	const char *kind;
	int rc, rv;

	rv = store_stmt(st, SQL_RETRY_LEASE, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "retrying"));
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)job_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		until = sqlite3_column_int64(stmt, 0);
		progressed = sqlite3_column_int(stmt, 1) != 0;
		kind = (const char *)sqlite3_column_text(stmt, 2);
		*drain_r = kind != NULL && strcmp(kind, "drain") == 0;
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_ROW) {
		return (store_out_dbfail(out, st, store_err(rc), "retrying"));
	}
	if (progressed && until > now_ms) {
		return (store_out_fail(out, ERR_BADSTATE,
		    "job %llu lease runs until %lld (renewed by a batch), "
		    "%lld ms from now",
		    (unsigned long long)job_id, (long long)until,
		    (long long)(until - now_ms)));
	}
	*early_r = until > now_ms;
	return (ERR_OK);
}

int
store_job_retry(struct store *st, const struct proto_job_retry *jr,
    int64_t now_ms, struct store_out *out)
{
	const char *why;
	char *error = NULL;
	uint64_t account_id;
	uint8_t state;
	bool early = false, drain = false;
	int rv;

	if (jr->state != JOB_QUEUED && jr->state != JOB_DEAD) {
		return (store_out_fail(out, ERR_INVAL,
		    "retry state must be queued or dead, not %s",
		    store_state_name(jr->state)));
	}
	if (jr->error.p != NULL) {
		rv = store_check_text(
		    jr->error, 0, STORE_MAX_ERROR, false, &why);
		if (rv != 0) {
			return (store_out_fail(out, rv, "error text %s", why));
		}
		error = xstrndup(jr->error.p, jr->error.len);
	} else {
		error = xstrdup("lease expired");
	}
	if (error == NULL) {
		return (store_out_fail(out, ERR_NOMEM, "out of memory"));
	}
	rv = store_begin(st);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "begin");
		goto done;
	}
	rv = store_job_fence(st, jr->job_id, jr->attempt, &account_id, out);
	if (rv != 0) {
		goto fail;
	}
	rv = store_retry_expired(st, jr->job_id, now_ms, &early, &drain, out);
	if (rv != 0) {
		goto fail;
	}
	rv = store_job_end_failure(st, jr->job_id, account_id, jr->attempt,
	    jr->state, jr->due_at > now_ms ? jr->due_at : now_ms, ERR_TIMEOUT,
	    error, now_ms, out, &state);
	if (rv != 0) {
		goto fail;
	}
	/* A lease given back before it expired never reached a worker: its
	 * sends were not handed to SMTP. */
	if (drain) {
		rv = store_change_attempt_end(st, account_id, jr->job_id,
		    !early, error, now_ms, 0, out);
		if (rv != 0) {
			goto fail;
		}
	}
	rv = store_commit(st);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "commit");
		goto done;
	}
	out->reply.id = jr->job_id;
	goto done;
fail:
	store_rollback(st);
done:
	free(error);
	return (rv);
}
