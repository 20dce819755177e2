/*
 * store_fixture.h: shared set-up for the pkg/store unit tests
 * (store_test.c, store_apply_test.c): a database in a fresh temp
 * directory, a fixed clock, account/lease helpers, and a second read-only
 * SQLite connection to inspect rows the API does not return.
 * Include after <cmocka.h>. Everything is static inline (header-only).
 */
#ifndef MAILSYNC_STORE_FIXTURE_H
#define MAILSYNC_STORE_FIXTURE_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "store/store.h"

#define T0 1700000000000LL /* a fixed "now", unix ms */
#define LEASE 60000LL

/* A proto_str from a string literal. */
#define S(x) ((struct proto_str) { (x), sizeof(x) - 1 })

struct fx {
	char dir[64];
	char path[128];
	uint8_t key[SECRET_KEY_LEN];
	struct store *st;
	struct store_out out; /* the last operation's result */
	uint32_t max_attempts;
	uint64_t max_body; /* 0: the store's default */
};

static inline void
fx_open(struct fx *f)
{
	/* a short busy timeout: lock tests fail fast */
	struct store_config cfg = { 0, f->max_attempts, 100, f->max_body };
	char err[256] = "";
	int rv;

	rv = store_open(f->path, f->key, &cfg, &f->st, err, sizeof(err));
	if (rv != 0) {
		fail_msg("store_open: %s", err);
	}
}

static inline int
fx_setup_n(void **state, uint32_t max_attempts)
{
	struct fx *f = calloc(1, sizeof(*f));
	size_t i;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/store_test.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/mailsync.db", f->dir);
	for (i = 0; i < SECRET_KEY_LEN; i++) {
		f->key[i] = (uint8_t)(i * 7 + 1);
	}
	f->max_attempts = max_attempts;
	fx_open(f);
	store_out_init(&f->out);
	*state = f;
	return (0);
}

static inline int
fx_setup(void **state)
{
	return (fx_setup_n(state, 3));
}

static inline void
fx_rm(const char *dir, const char *name)
{
	char p[192];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
}

static inline int
fx_teardown(void **state)
{
	struct fx *f = *state;

	store_out_release(&f->out);
	store_free(&f->st);
	fx_rm(f->dir, "mailsync.db");
	fx_rm(f->dir, "mailsync.db-wal");
	fx_rm(f->dir, "mailsync.db-shm");
	rmdir(f->dir);
	free(f);
	return (0);
}

/* Resets f->out for the next operation. */
static inline struct store_out *
fx_out(struct fx *f)
{
	store_out_release(&f->out);
	store_out_init(&f->out);
	return (&f->out);
}

/* Runs sql (printf format) on a separate connection; first column of
 * the first row as int64 (-1 for no row, -2 for NULL). */
static inline int64_t fx_q(struct fx *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int64_t
fx_q(struct fx *f, const char *fmt, ...)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	char sql[1024];
	va_list ap;
	int64_t v = -1;
	int rc;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	assert_int_equal(
	    sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK) {
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	}
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		v = sqlite3_column_type(stmt, 0) == SQLITE_NULL
		    ? -2
		    : sqlite3_column_int64(stmt, 0);
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return (v);
}

/* Same, first column as text into buf ("" for no row or NULL). */
static inline const char *
fx_qs(struct fx *f, char *buf, size_t n, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	const unsigned char *t;

	buf[0] = '\0';
	assert_int_equal(
	    sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		t = sqlite3_column_text(stmt, 0);
		snprintf(buf, n, "%s", t != NULL ? (const char *)t : "");
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return (buf);
}

/* Runs a write on a separate connection; returns the SQLite code. */
static inline int
fx_exec(struct fx *f, const char *sql)
{
	sqlite3 *db = NULL;
	int rc;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return (rc);
}

/* Adds an IMAP account with password "pw"; returns its id. The first
 * job (QUEUED, USER) gets created too. */
static inline uint64_t
fx_account(struct fx *f, const char *name)
{
	struct proto_account_add a = {
		.name = { name, strlen(name) },
		.protocol = S("imap"),
		.server = S("imaps://mail.example.org:993"),
		.username = S("alice"),
		.password = S("pw"),
		.interval_s = 0,
	};
	int rv;

	rv = store_account_add(f->st, &a, T0, fx_out(f));
	if (rv != 0) {
		fail_msg("account_add: %.*s", (int)f->out.reply.error.len,
		    f->out.reply.error.p);
	}
	return (f->out.reply.id);
}

/* The QUEUED job of an account (kind sync), or 0. */
static inline uint64_t
fx_queued(struct fx *f, uint64_t account_id)
{
	int64_t v = fx_q(f,
	    "SELECT id FROM jobs WHERE account_id = %llu AND state = 'queued'"
	    " AND kind = 'sync'",
	    (unsigned long long)account_id);

	return (v > 0 ? (uint64_t)v : 0);
}

/* Leases job_id at now; asserts success; returns the attempt. */
static inline uint32_t
fx_lease(struct fx *f, uint64_t job_id, int64_t now)
{
	struct proto_job_lease jl = { job_id, now + LEASE };
	int rv;

	rv = store_job_lease(f->st, &jl, now, fx_out(f));
	if (rv != 0) {
		fail_msg("lease: %.*s", (int)f->out.reply.error.len,
		    f->out.reply.error.p);
	}
	assert_non_null(f->out.reply.job_run);
	return (f->out.reply.job_run->attempt);
}

/* Asserts that the last reply's status is code and its text has sub. */
#define assert_fail(f, code, sub)                                             \
	do {                                                                  \
		assert_int_equal((f)->out.reply.status, (code));              \
		assert_non_null((f)->out.reply.error.p);                      \
		if (strstr((f)->out.reply.error.p, (sub)) == NULL) {          \
			fail_msg("error '%s' lacks '%s'",                     \
			    (f)->out.reply.error.p, (sub));                   \
		}                                                             \
	} while (0)

#endif
