/*
 * account.c: the accounts table. Adding an account validates every field,
 * seals the password with pkg/secret (the plain text never reaches the
 * database or the log) and queues a first USER sync job so a new account
 * syncs at once; listing never returns secrets; removing cascades to the
 * account's mailboxes, messages, jobs and local changes. The SMTP
 * password (optional; the account's own by default) is sealed the same way.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define STORE_MAX_NAME 128
#define STORE_MAX_SERVER 2048
#define STORE_MAX_USER 1024
#define STORE_MAX_PASSWORD 4096
#define STORE_MAX_PEM (256u * 1024)
#define STORE_MAX_INTERVAL_S (7u * 24 * 3600)

static const char SQL_ACCOUNT_INSERT[]
    = "INSERT INTO accounts(name, protocol, server, username, secret,"
      " tls_ca_pem, starttls, plaintext, interval_s, created_at, auth,"
      " bodies, smtp, smtp_username, smtp_secret) VALUES (?1, ?2, ?3, ?4,"
      " ?5, ?6, ?7, ?8, ?9, ?10, ?11, coalesce(?12, 'none'), ?13, ?14, ?15)";

static const char SQL_ACCOUNT_LIST[]
    = "SELECT a.id, a.name, a.protocol, a.server, a.username, a.interval_s,"
      " a.last_sync_at, a.last_error,"
      " (SELECT count(*) FROM mailboxes m WHERE m.account_id = a.id),"
      " (SELECT count(*) FROM messages g WHERE g.account_id = a.id),"
      " a.smtp, (SELECT count(*) FROM pending_changes c"
      "  WHERE c.account_id = a.id AND c.state IN " STORE_CHANGE_ACTIVE ")"
      " FROM accounts a ORDER BY a.name";

static const char SQL_ACCOUNT_COUNT[] = "SELECT count(*) FROM accounts";

static const char SQL_ACCOUNT_BY_NAME[]
    = "SELECT id FROM accounts WHERE name = ?1";

static const char SQL_ACCOUNT_DELETE[] = "DELETE FROM accounts WHERE id = ?1";

static bool
store_prefix(struct proto_str s, const char *pfx)
{
	size_t n = strlen(pfx);

	return (s.len > n && strncmp(s.p, pfx, n) == 0);
}

/* A secret from a peer: 1..STORE_MAX_PASSWORD bytes, no NUL; never
 * echoed. what names it in the error. */
static int
store_secret_check(
    struct proto_str s, const char *what, struct store_out *out)
{
	if (s.p == NULL || s.len == 0) {
		return (store_out_fail(
		    out, ERR_INVAL, "%s must not be empty", what));
	}
	if (s.len > STORE_MAX_PASSWORD) {
		return (store_out_fail(out, ERR_TOOBIG,
		    "%s longer than %u bytes", what, STORE_MAX_PASSWORD));
	}
	if (memchr(s.p, '\0', s.len) != NULL) {
		return (store_out_fail(
		    out, ERR_INVAL, "%s contains a NUL byte", what));
	}
	return (ERR_OK);
}

/* Outgoing mail: smtp:// or smtps://, its optional credentials. */
static int
store_smtp_check(const struct proto_account_add *a, struct store_out *out)
{
	const char *why;
	int rv;

	if (a->smtp.p == NULL) {
		if (a->smtp_username.p != NULL || a->smtp_password.p != NULL) {
			return (store_out_fail(out, ERR_INVAL,
			    "SMTP credentials were given without an SMTP "
			    "server URL"));
		}
		return (ERR_OK);
	}
	if (!store_prefix(a->smtp, "smtp://")
	    && !store_prefix(a->smtp, "smtps://")) {
		return (store_out_fail(out, ERR_INVAL,
		    "smtp '%.*s' must be an smtp:// (STARTTLS) or smtps:// "
		    "URL",
		    STORE_PS(a->smtp)));
	}
	rv = store_check_text(a->smtp, 1, STORE_MAX_SERVER, true, &why);
	if (rv != 0) {
		return (store_out_fail(out, rv, "smtp URL %s", why));
	}
	if (a->smtp_username.p != NULL) {
		rv = store_check_text(
		    a->smtp_username, 1, STORE_MAX_USER, true, &why);
		if (rv != 0) {
			return (store_out_fail(
			    out, rv, "smtp username %s", why));
		}
	}
	if (a->smtp_password.p != NULL) {
		return (store_secret_check(
		    a->smtp_password, "smtp password", out));
	}
	return (ERR_OK);
}

static int
store_account_check(const struct proto_account_add *a, uint32_t *interval_r,
    struct store_out *out)
{
	const char *why;
	int rv;

	rv = store_check_text(a->name, 1, STORE_MAX_NAME, true, &why);
	if (rv != 0) {
		return (store_out_fail(out, rv, "account name %s", why));
	}
	if (store_str_is(a->protocol, "imap")) {
		if (!store_prefix(a->server, "imap://")
		    && !store_prefix(a->server, "imaps://")) {
			return (store_out_fail(out, ERR_INVAL,
			    "server '%.*s' must be an imap:// or imaps:// URL",
			    STORE_PS(a->server)));
		}
	} else if (store_str_is(a->protocol, "jmap")) {
		if (!store_prefix(a->server, "https://")
		    && !store_prefix(a->server, "http://")) {
			return (store_out_fail(out, ERR_INVAL,
			    "server '%.*s' must be an https:// URL for jmap",
			    STORE_PS(a->server)));
		}
		if (store_prefix(a->server, "http://") && !a->plaintext) {
			return (store_out_fail(out, ERR_INVAL,
			    "server '%.*s': http:// sends the password in "
			    "clear; use https:// or set plaintext",
			    STORE_PS(a->server)));
		}
	} else {
		return (store_out_fail(out, ERR_INVAL,
		    "protocol '%.*s' is not 'imap' or 'jmap'",
		    STORE_PS(a->protocol)));
	}
	rv = store_check_text(a->server, 1, STORE_MAX_SERVER, true, &why);
	if (rv != 0) {
		return (store_out_fail(out, rv, "server %s", why));
	}
	rv = store_check_text(a->username, 1, STORE_MAX_USER, true, &why);
	if (rv != 0) {
		return (store_out_fail(out, rv, "username %s", why));
	}
	/* The password may be any bytes but NUL; never echo it. */
	rv = store_secret_check(a->password, "password", out);
	if (rv != 0) {
		return (rv);
	}
	rv = store_smtp_check(a, out);
	if (rv != 0) {
		return (rv);
	}
	if (a->tls_ca_pem.p != NULL) {
		rv = store_check_text(
		    a->tls_ca_pem, 1, STORE_MAX_PEM, false, &why);
		if (rv != 0) {
			return (store_out_fail(out, rv, "tls_ca_pem %s", why));
		}
		if (memmem(
		        a->tls_ca_pem.p, a->tls_ca_pem.len, "-----BEGIN ", 11)
		    == NULL) {
			return (store_out_fail(out, ERR_INVAL,
			    "tls_ca_pem is not PEM text (no -----BEGIN "
			    "line)"));
		}
	}
	if (a->interval_s > STORE_MAX_INTERVAL_S) {
		return (store_out_fail(out, ERR_INVAL,
		    "interval %u s is longer than %u s", a->interval_s,
		    STORE_MAX_INTERVAL_S));
	}
	/* auth: nil = "password"; "oauth2": the secret is a bearer token. */
	if (a->auth.p != NULL && !store_str_is(a->auth, "password")
	    && !store_str_is(a->auth, "oauth2")) {
		return (store_out_fail(out, ERR_INVAL,
		    "auth '%.*s' is not 'password' or 'oauth2'",
		    (int)(a->auth.len > 16 ? 16 : a->auth.len), a->auth.p));
	}
	/* bodies: nil = "none"; else "none", "all" or "recent:DAYS". */
	if (a->bodies.p != NULL
	    && store_body_policy_check(a->bodies, &why) != 0) {
		return (store_out_fail(out, ERR_INVAL,
		    "bodies '%.*s' %s", STORE_PS(a->bodies), why));
	}
	*interval_r = a->interval_s;
	return (ERR_OK);
}

int
store_account_add(struct store *st, const struct proto_account_add *a,
    int64_t now_ms, struct store_out *out)
{
	struct proto_event *ev;
	sqlite3_stmt *stmt = NULL;
	uint8_t *blob = NULL, *sblob = NULL;
	size_t bloblen = 0, sbloblen = 0;
	uint64_t id, job_id;
	uint32_t interval = 0;
	int rv;

	rv = store_account_check(a, &interval, out);
	if (rv != 0) {
		return (rv);
	}
	if (interval == 0) {
		interval = st->default_interval_s;
	}
	rv = secret_seal(
	    st->key, a->password.p, a->password.len, &blob, &bloblen);
	if (rv != 0) {
		return (store_out_fail(
		    out, rv, "sealing the password: %s", err_str(rv)));
	}
	if (a->smtp_password.p != NULL) {
		rv = secret_seal(st->key, a->smtp_password.p,
		    a->smtp_password.len, &sblob, &sbloblen);
		if (rv != 0) {
			store_out_fail(out, rv, "sealing the smtp password: %s",
			    err_str(rv));
			goto done;
		}
	}
	rv = store_begin(st);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "begin");
		goto done;
	}
	rv = store_stmt(st, SQL_ACCOUNT_INSERT, &stmt);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "adding account");
		goto fail;
	}
	store_bind_str(stmt, 1, a->name);
	store_bind_str(stmt, 2, a->protocol);
	store_bind_str(stmt, 3, a->server);
	store_bind_str(stmt, 4, a->username);
	sqlite3_bind_blob(stmt, 5, blob, (int)bloblen, SQLITE_STATIC);
	store_bind_str(stmt, 6, a->tls_ca_pem);
	sqlite3_bind_int(stmt, 7, a->starttls ? 1 : 0);
	sqlite3_bind_int(stmt, 8, a->plaintext ? 1 : 0);
	sqlite3_bind_int64(stmt, 9, interval);
	sqlite3_bind_int64(stmt, 10, now_ms / 1000);
	sqlite3_bind_text(stmt, 11,
	    store_str_is(a->auth, "oauth2") ? "oauth2" : "password", -1,
	    SQLITE_STATIC);
	store_bind_str(stmt, 12, a->bodies);
	store_bind_str(stmt, 13, a->smtp);
	store_bind_str(stmt, 14, a->smtp_username);
	if (sblob != NULL) {
		sqlite3_bind_blob(
		    stmt, 15, sblob, (int)sbloblen, SQLITE_STATIC);
	}
	rv = store_stmt_exec(stmt);
	sqlite3_clear_bindings(stmt);
	if (rv == ERR_EXISTS) {
		store_out_fail(out, rv, "account '%.*s' already exists",
		    STORE_PS(a->name));
		goto fail;
	}
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "adding account");
		goto fail;
	}
	id = (uint64_t)sqlite3_last_insert_rowid(st->db);
	ev = store_out_event(out, EV_ACCOUNT_CHANGED, now_ms);
	if (ev != NULL) {
		ev->account_id = id;
		ev->interval_s = interval;
	}
	rv = store_job_enqueue(
	    st, id, JOB_KIND_SYNC, PRIO_USER, now_ms, now_ms, out, &job_id);
	if (rv != 0) {
		goto fail;
	}
	rv = store_commit(st);
	if (rv != 0) {
		out->nevents = 0;
		store_out_dbfail(out, st, rv, "commit");
		goto done;
	}
	out->reply.id = id;
	log_info("event=account_added account=%llu name=\"%.*s\" "
	         "interval_s=%u job=%llu",
	    (unsigned long long)id, STORE_PS(a->name), interval,
	    (unsigned long long)job_id);
	goto done;
fail:
	out->nevents = 0;
	store_rollback(st);
done:
	if (blob != NULL) {
		mem_wipe(blob, bloblen);
		free(blob);
	}
	if (sblob != NULL) {
		mem_wipe(sblob, sbloblen);
		free(sblob);
	}
	return (rv);
}

int
store_account_list(struct store *st, struct store_out *out)
{
	struct proto_account_info *ai;
	sqlite3_stmt *stmt = NULL;
	size_t n, i = 0;
	int rc, rv;

	rv = store_stmt(st, SQL_ACCOUNT_COUNT, &stmt);
	if (rv != 0 || sqlite3_step(stmt) != SQLITE_ROW) {
		store_stmt_done(stmt);
		return (store_out_dbfail(
		    out, st, rv != 0 ? rv : ERR_DB, "listing accounts"));
	}
	n = (size_t)sqlite3_column_int64(stmt, 0);
	store_stmt_done(stmt);
	if (n == 0) {
		return (ERR_OK);
	}
	out->reply.accounts = calloc(n, sizeof(*out->reply.accounts));
	if (out->reply.accounts == NULL) {
		return (store_out_fail(out, ERR_NOMEM, "out of memory"));
	}
	rv = store_stmt(st, SQL_ACCOUNT_LIST, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "listing accounts"));
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && i < n) {
		ai = &out->reply.accounts[i];
		ai->id = (uint64_t)sqlite3_column_int64(stmt, 0);
		rv = store_out_col(out, stmt, 1, &ai->name);
		rv = rv != 0 ? rv : store_out_col(out, stmt, 2, &ai->protocol);
		rv = rv != 0 ? rv : store_out_col(out, stmt, 3, &ai->server);
		rv = rv != 0 ? rv : store_out_col(out, stmt, 4, &ai->username);
		rv = rv != 0 ? rv
		             : store_out_col(out, stmt, 7, &ai->last_error);
		rv = rv != 0 ? rv : store_out_col(out, stmt, 10, &ai->smtp);
		if (rv != 0) {
			store_stmt_done(stmt);
			return (store_out_fail(out, rv, "out of memory"));
		}
		ai->interval_s = (uint32_t)sqlite3_column_int64(stmt, 5);
		ai->last_sync_at = sqlite3_column_int64(stmt, 6);
		ai->mailboxes = (uint64_t)sqlite3_column_int64(stmt, 8);
		ai->messages = (uint64_t)sqlite3_column_int64(stmt, 9);
		ai->pending_changes = (uint64_t)sqlite3_column_int64(stmt, 11);
		i++;
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		return (store_out_dbfail(
		    out, st, store_err(rc), "listing accounts"));
	}
	out->reply.naccounts = i;
	return (ERR_OK);
}

int
store_account_remove(struct store *st, const struct proto_name *nm,
    int64_t now_ms, struct store_out *out)
{
	struct proto_event *ev;
	sqlite3_stmt *stmt = NULL;
	uint64_t id;
	const char *why;
	int rc, rv;

	rv = store_check_text(nm->name, 1, STORE_MAX_NAME, true, &why);
	if (rv != 0) {
		return (store_out_fail(out, rv, "account name %s", why));
	}
	rv = store_begin(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "begin"));
	}
	rv = store_stmt(st, SQL_ACCOUNT_BY_NAME, &stmt);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "removing account");
		goto fail;
	}
	store_bind_str(stmt, 1, nm->name);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		store_stmt_done(stmt);
		rv = store_out_fail(out, ERR_NOTFOUND,
		    "no account named '%.*s'", STORE_PS(nm->name));
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		store_stmt_done(stmt);
		rv = store_out_dbfail(
		    out, st, store_err(rc), "removing account");
		goto fail;
	}
	id = (uint64_t)sqlite3_column_int64(stmt, 0);
	store_stmt_done(stmt);
	rv = store_stmt(st, SQL_ACCOUNT_DELETE, &stmt);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "removing account");
		goto fail;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)id);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "removing account");
		goto fail;
	}
	rv = store_commit(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "commit"));
	}
	out->reply.id = id;
	ev = store_out_event(out, EV_ACCOUNT_CHANGED, now_ms);
	if (ev != NULL) {
		ev->account_id = id;
		ev->removed = true;
	}
	log_info("event=account_removed account=%llu name=\"%.*s\"",
	    (unsigned long long)id, STORE_PS(nm->name));
	return (ERR_OK);
fail:
	store_rollback(st);
	return (rv);
}
