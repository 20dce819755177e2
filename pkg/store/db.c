/*
 * db.c: the SQLite connection of pkg/store. Opens the database with the
 * pragmas the design needs (WAL, synchronous=FULL so an acknowledged
 * commit survives power loss, foreign_keys, busy_timeout), runs the
 * migrations, and provides the prepared-statement cache, transaction and
 * binding helpers the other files use. SQLite codes become enum err here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

int
store_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return (ERR_OK);
	case SQLITE_NOMEM:
		return (ERR_NOMEM);
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return (ERR_TIMEOUT);
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE
		    || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
			return (ERR_EXISTS);
		}
		return (ERR_DB);
	case SQLITE_TOOBIG:
		return (ERR_TOOBIG);
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
		return (ERR_IO);
	default:
		return (ERR_DB);
	}
}

const char *
store_errmsg(struct store *st)
{
	return (st->db != NULL ? sqlite3_errmsg(st->db) : "no database");
}

int
store_stmt(struct store *st, const char *sql, sqlite3_stmt **stmt_r)
{
	struct store_stmt_slot *slot;
	sqlite3_stmt *stmt = NULL;
	size_t i;
	int rc;

	for (i = 0; i < st->nstmts; i++) {
		slot = &st->stmts[i];
		if (slot->sql == sql) {
			sqlite3_reset(slot->stmt);
			sqlite3_clear_bindings(slot->stmt);
			*stmt_r = slot->stmt;
			return (ERR_OK);
		}
	}
	rc = sqlite3_prepare_v3(
	    st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
	if (rc != SQLITE_OK) {
		log_warnx("event=db_error op=prepare err=\"%s\" sql=\"%.60s\"",
		    sqlite3_errmsg(st->db), sql);
		sqlite3_finalize(stmt);
		return (store_err(rc));
	}
	if (st->nstmts == STORE_STMT_CACHE) {
		/* A bug (too many distinct statements): run uncached would
		 * leak, so refuse loudly. */
		log_warnx("event=bug what=statement_cache_full");
		sqlite3_finalize(stmt);
		return (ERR_NOMEM);
	}
	st->stmts[st->nstmts].sql = sql;
	st->stmts[st->nstmts].stmt = stmt;
	st->nstmts++;
	*stmt_r = stmt;
	return (ERR_OK);
}

void
store_stmt_done(sqlite3_stmt *stmt)
{
	if (stmt != NULL) {
		sqlite3_reset(stmt);
	}
}

int
store_stmt_exec(sqlite3_stmt *stmt)
{
	int rc;

	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		return (store_err(rc));
	}
	return (ERR_OK);
}

int
store_global_init(void)
{
	return (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK
	        ? ERR_OK
	        : ERR_BADSTATE);
}

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

static int
store_tx(struct store *st, const char *sql)
{
	sqlite3_stmt *stmt;
	int rv;

	rv = store_stmt(st, sql, &stmt);
	if (rv != 0) {
		return (rv);
	}
	return (store_stmt_exec(stmt));
}

/* synchronous=FULL (a commit waits for the WAL fsync) or NORMAL (the
 * WAL is synced at the next FULL commit or checkpoint); set outside a
 * transaction, and only when it changes. */
static int
store_durability(struct store *st, bool relaxed)
{
	sqlite3_stmt *stmt;
	int rv;

	if (st->relaxed == relaxed) {
		return (ERR_OK);
	}
	rv = store_stmt(st,
	    relaxed ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL",
	    &stmt);
	if (rv == 0) {
		rv = store_stmt_exec(stmt);
	}
	if (rv == 0) {
		st->relaxed = relaxed;
	}
	return (rv);
}

int
store_begin(struct store *st)
{
	int rv = store_durability(st, false);

	return (rv != 0 ? rv : store_tx(st, SQL_BEGIN));
}

int
store_begin_relaxed(struct store *st)
{
	int rv = store_durability(st, true);

	return (rv != 0 ? rv : store_tx(st, SQL_BEGIN));
}

int
store_commit(struct store *st)
{
	int rv;

	rv = store_tx(st, SQL_COMMIT);
	if (rv != 0) {
		log_warnx(
		    "event=db_error op=commit err=\"%s\"", store_errmsg(st));
		store_rollback(st);
	}
	return (rv);
}

void
store_rollback(struct store *st)
{
	if (sqlite3_get_autocommit(st->db)) {
		return; /* SQLite already rolled back */
	}
	if (store_tx(st, SQL_ROLLBACK) != 0) {
		log_warnx(
		    "event=db_error op=rollback err=\"%s\"", store_errmsg(st));
	}
}

int
store_bind_str(sqlite3_stmt *stmt, int i, struct proto_str s)
{
	int rc;

	if (s.p == NULL) {
		rc = sqlite3_bind_null(stmt, i);
	} else if (s.len > (size_t)INT32_MAX) {
		return (ERR_TOOBIG);
	} else {
		rc = sqlite3_bind_text(
		    stmt, i, s.p, (int)s.len, SQLITE_STATIC);
	}
	return (store_err(rc));
}

int
store_bind_nz(sqlite3_stmt *stmt, int i, int64_t v)
{
	int rc;

	if (v == 0) {
		rc = sqlite3_bind_null(stmt, i);
	} else {
		rc = sqlite3_bind_int64(stmt, i, v);
	}
	return (store_err(rc));
}

static const char SQL_LOG[]
    = "INSERT INTO sync_log(at, account_id, job_id, kind, outcome, detail) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

int
store_log_event(struct store *st, int64_t now_ms, uint64_t account_id,
    uint64_t job_id, const char *kind, const char *outcome, const char *detail)
{
	sqlite3_stmt *stmt;
	int rv;

	rv = store_stmt(st, SQL_LOG, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, now_ms);
	store_bind_nz(stmt, 2, (int64_t)account_id);
	store_bind_nz(stmt, 3, (int64_t)job_id);
	if (kind != NULL) {
		sqlite3_bind_text(stmt, 4, kind, -1, SQLITE_STATIC);
	}
	sqlite3_bind_text(stmt, 5, outcome, -1, SQLITE_STATIC);
	if (detail != NULL) {
		sqlite3_bind_text(stmt, 6, detail, -1, SQLITE_STATIC);
	}
	return (store_stmt_exec(stmt));
}

/* Runs one pragma and, when want != NULL, checks its single text result */
static int
store_pragma(struct store *st, const char *sql, const char *want, char *errbuf,
    size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	const unsigned char *got;
	int rc, rv = ERR_OK;

	rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK) {
		rv = store_err(rc);
		snprintf(errbuf, errlen, "%s: %s", sql, store_errmsg(st));
		goto fail;
	}
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rv = store_err(rc);
		snprintf(errbuf, errlen, "%s: %s", sql, store_errmsg(st));
		goto fail;
	}
	if (want != NULL) {
		got = rc == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;
		if (got == NULL || strcmp((const char *)got, want) != 0) {
			rv = ERR_DB;
			snprintf(errbuf, errlen, "%s: got '%s', want '%s'",
			    sql, got != NULL ? (const char *)got : "", want);
			goto fail;
		}
	}
fail:
	sqlite3_finalize(stmt);
	return (rv);
}

int
store_open(const char *path, const uint8_t key[SECRET_KEY_LEN],
    const struct store_config *cfg, struct store **st_r, char *errbuf,
    size_t errlen)
{
	struct store *st;
	char sql[64];
	int busy, rc, rv;

	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return (ERR_NOMEM);
	}
	memcpy(st->key, key, SECRET_KEY_LEN);
	st->default_interval_s = STORE_DEFAULT_INTERVAL_S;
	st->max_attempts = STORE_DEFAULT_MAX_ATTEMPTS;
	st->max_body = STORE_DEFAULT_MAX_BODY;
	busy = STORE_DEFAULT_BUSY_MS;
	if (cfg != NULL) {
		if (cfg->default_interval_s != 0) {
			st->default_interval_s = cfg->default_interval_s;
		}
		if (cfg->max_attempts != 0) {
			st->max_attempts = cfg->max_attempts;
		}
		if (cfg->max_body != 0) {
			st->max_body = cfg->max_body;
		}
		if (cfg->busy_timeout_ms > 0) {
			busy = cfg->busy_timeout_ms;
		}
	}
	rc = sqlite3_open_v2(path, &st->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	    NULL);
	if (rc != SQLITE_OK) {
		rv = store_err(rc);
		snprintf(errbuf, errlen, "cannot open database %s: %s", path,
		    st->db != NULL ? sqlite3_errmsg(st->db)
		                   : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	rc = sqlite3_busy_timeout(st->db, busy);
	if (rc != SQLITE_OK) {
		rv = store_err(rc);
		snprintf(errbuf, errlen, "busy_timeout: %s", store_errmsg(st));
		goto fail;
	}
	rv = store_pragma(
	    st, "PRAGMA journal_mode=WAL", "wal", errbuf, errlen);
	if (rv != 0) {
		goto fail;
	}
	rv = store_pragma(st, "PRAGMA synchronous=FULL", NULL, errbuf, errlen);
	if (rv != 0) {
		goto fail;
	}
	/* A checkpoint stalls the commit that triggers it on two fsyncs
	 * (WAL, then the database): every 32 MiB of WAL instead of SQLite's
	 * 4 MiB makes a bulk first sync stall 8x less often, for the same
	 * pages written (docs/schema.md, "Connection settings"). */
	rv = store_pragma(
	    st, "PRAGMA wal_autocheckpoint=8192", NULL, errbuf, errlen);
	if (rv != 0) {
		goto fail;
	}
	rv = store_pragma(st, "PRAGMA foreign_keys=ON", NULL, errbuf, errlen);
	if (rv != 0) {
		goto fail;
	}
	rv = store_pragma(st, "PRAGMA foreign_keys", "1", errbuf, errlen);
	if (rv != 0) {
		goto fail;
	}
	snprintf(sql, sizeof(sql), "PRAGMA busy_timeout=%d", busy);
	rv = store_pragma(st, sql, NULL, errbuf, errlen);
	if (rv != 0) {
		goto fail;
	}
	rv = store_schema_migrate(st, errbuf, errlen);
	if (rv != 0) {
		goto fail;
	}
	*st_r = st;
	return (ERR_OK);
fail:
	store_free(&st);
	return (rv);
}

void
store_free(struct store **stp)
{
	struct store *st = *stp;
	size_t i;

	if (st == NULL) {
		return;
	}
	for (i = 0; i < st->nstmts; i++) {
		sqlite3_finalize(st->stmts[i].stmt);
	}
	if (st->db != NULL) {
		if (sqlite3_close(st->db) != SQLITE_OK) {
			log_warnx("event=db_error op=close err=\"%s\"",
			    sqlite3_errmsg(st->db));
		}
	}
	mem_wipe(st->key, sizeof(st->key));
	free(st);
	*stp = NULL;
}

int
store_schema_version(struct store *st, int *version_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	rc = sqlite3_prepare_v2(
	    st->db, "PRAGMA user_version", -1, &stmt, NULL);
	if (rc != SQLITE_OK) {
		return (store_err(rc));
	}
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(stmt);
		return (store_err(rc == SQLITE_DONE ? SQLITE_ERROR : rc));
	}
	*version_r = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return (ERR_OK);
}
