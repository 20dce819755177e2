/*
 * schema.c: the database schema as an ordered list of migrations.
 *
 * Step i (0-based) takes a database from user_version i to i + 1. Each
 * step runs in its own BEGIN IMMEDIATE transaction together with the
 * PRAGMA user_version bump, so a crash leaves the database at a step
 * boundary. A database newer than the last step known here is refused
 * (ERR_VERSION): an old binary must not write a schema it does not know.
 * Steps are append-only: never edit one that has shipped. docs/schema.md
 * documents every table, column, index and invariant.
 */
#include <stdio.h>

#include "store_int.h"

struct store_migration {
	const char *what;
	const char *sql;
};

static const struct store_migration store_migrations[] = {
	{ "initial schema",
	    "CREATE TABLE accounts ("
	    "  id INTEGER PRIMARY KEY,"
	    "  name TEXT UNIQUE NOT NULL,"
	    "  protocol TEXT NOT NULL CHECK (protocol IN ('imap', 'jmap')),"
	    "  server TEXT NOT NULL,"
	    "  username TEXT NOT NULL,"
	    "  secret BLOB NOT NULL,"
	    "  tls_ca_pem TEXT,"
	    "  starttls INTEGER NOT NULL DEFAULT 0 CHECK (starttls IN (0, 1)),"
	    "  plaintext INTEGER NOT NULL DEFAULT 0 CHECK (plaintext IN (0, "
	    "1)),"
	    "  interval_s INTEGER NOT NULL CHECK (interval_s > 0),"
	    "  created_at INTEGER NOT NULL,"
	    "  last_sync_at INTEGER,"
	    "  last_error TEXT,"
	    "  fail_streak INTEGER NOT NULL DEFAULT 0"
	    ");"
	    "CREATE TABLE mailboxes ("
	    "  id INTEGER PRIMARY KEY,"
	    "  account_id INTEGER NOT NULL"
	    "    REFERENCES accounts(id) ON DELETE CASCADE,"
	    "  name TEXT NOT NULL,"
	    "  delimiter TEXT,"
	    "  role TEXT CHECK (role IN ('inbox', 'sent', 'drafts', 'trash',"
	    "    'junk', 'archive') OR role IS NULL),"
	    "  uidvalidity INTEGER,"
	    "  uidnext INTEGER,"
	    "  highestmodseq INTEGER,"
	    "  remote_id TEXT,"
	    "  total INTEGER NOT NULL DEFAULT 0,"
	    "  unread INTEGER NOT NULL DEFAULT 0,"
	    "  UNIQUE (account_id, name)"
	    ");"
	    "CREATE TABLE messages ("
	    "  id INTEGER PRIMARY KEY,"
	    "  account_id INTEGER NOT NULL"
	    "    REFERENCES accounts(id) ON DELETE CASCADE,"
	    "  mailbox_id INTEGER NOT NULL"
	    "    REFERENCES mailboxes(id) ON DELETE CASCADE,"
	    "  uid INTEGER CHECK (uid > 0),"
	    "  remote_id TEXT,"
	    "  message_id TEXT,"
	    "  subject TEXT,"
	    "  from_addr TEXT,"
	    "  to_addrs TEXT,"
	    "  cc_addrs TEXT,"
	    "  date INTEGER,"
	    "  internal_date INTEGER,"
	    "  size INTEGER,"
	    "  seen INTEGER NOT NULL DEFAULT 0,"
	    "  flagged INTEGER NOT NULL DEFAULT 0,"
	    "  answered INTEGER NOT NULL DEFAULT 0,"
	    "  draft INTEGER NOT NULL DEFAULT 0,"
	    "  deleted INTEGER NOT NULL DEFAULT 0,"
	    "  keywords TEXT NOT NULL DEFAULT '',"
	    "  modseq INTEGER,"
	    "  has_attachments INTEGER NOT NULL DEFAULT 0,"
	    "  UNIQUE (mailbox_id, uid),"
	    "  CHECK (uid IS NOT NULL OR remote_id IS NOT NULL)"
	    ");"
	    /* IMAP rows are keyed by uid, JMAP rows (uid NULL) by Email id. */
	    "CREATE UNIQUE INDEX messages_remote ON messages(mailbox_id, "
	    "remote_id) WHERE remote_id IS NOT NULL;"
	    "CREATE INDEX messages_account_msgid"
	    "  ON messages(account_id, message_id);"
	    "CREATE TABLE jobs ("
	    "  id INTEGER PRIMARY KEY,"
	    "  account_id INTEGER NOT NULL"
	    "    REFERENCES accounts(id) ON DELETE CASCADE,"
	    "  kind TEXT NOT NULL CHECK (kind IN ('sync', 'drain', "
	    "'fetch_body', 'watch')),"
	    "  state TEXT NOT NULL CHECK (state IN ('queued', 'leased', "
	    "'done',"
	    "    'failed', 'dead')),"
	    "  priority INTEGER NOT NULL CHECK (priority IN (0, 1)),"
	    "  attempts INTEGER NOT NULL DEFAULT 0,"
	    "  max_attempts INTEGER NOT NULL CHECK (max_attempts > 0),"
	    "  created_at INTEGER NOT NULL,"
	    "  due_at INTEGER NOT NULL,"
	    "  leased_at INTEGER,"
	    "  lease_until INTEGER,"
	    "  lease_ms INTEGER,"
	    "  finished_at INTEGER,"
	    "  last_error TEXT,"
	    "  messages INTEGER NOT NULL DEFAULT 0"
	    ");"
	    "CREATE UNIQUE INDEX jobs_one_queued ON jobs(account_id, kind)"
	    "  WHERE state = 'queued';"
	    "CREATE UNIQUE INDEX jobs_one_leased ON jobs(account_id)"
	    "  WHERE state = 'leased';"
	    "CREATE INDEX jobs_account ON jobs(account_id, finished_at);"
	    "CREATE INDEX jobs_active ON jobs(state, due_at)"
	    "  WHERE state IN ('queued', 'leased');"
	    "CREATE TABLE job_batches ("
	    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	    "  attempt INTEGER NOT NULL,"
	    "  seq INTEGER NOT NULL CHECK (seq > 0),"
	    "  rows INTEGER NOT NULL,"
	    "  applied_at INTEGER NOT NULL,"
	    "  PRIMARY KEY (job_id, attempt, seq)"
	    ") WITHOUT ROWID;"
	    "CREATE TABLE sync_log ("
	    "  id INTEGER PRIMARY KEY,"
	    "  at INTEGER NOT NULL,"
	    "  account_id INTEGER,"
	    "  job_id INTEGER,"
	    "  kind TEXT,"
	    "  outcome TEXT NOT NULL CHECK (outcome IN ('done', 'failed', "
	    "'dead',"
	    "    'retry', 'reset', 'mailbox_added', 'mailbox_removed',"
	    "    'mailbox_renamed', 'expunged', 'body_error')),"
	    "  detail TEXT"
	    ");"
	    "CREATE INDEX sync_log_account ON sync_log(account_id, at);" },
	{ "attachments, bodies, per-account body policy and auth",
	    "CREATE TABLE attachments ("
	    "  id INTEGER PRIMARY KEY,"
	    "  message_id INTEGER NOT NULL"
	    "    REFERENCES messages(id) ON DELETE CASCADE,"
	    "  part TEXT NOT NULL,"
	    "  filename TEXT,"
	    "  mime_type TEXT NOT NULL,"
	    "  size INTEGER NOT NULL DEFAULT 0,"
	    "  disposition TEXT,"
	    "  content_id TEXT,"
	    "  UNIQUE (message_id, part)"
	    ");"
	    "CREATE TABLE bodies ("
	    "  message_id INTEGER PRIMARY KEY"
	    "    REFERENCES messages(id) ON DELETE CASCADE,"
	    "  size INTEGER,"
	    "  complete INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)),"
	    "  error TEXT,"
	    "  fetched_at INTEGER"
	    ");"
	    "CREATE TABLE body_chunks ("
	    "  message_id INTEGER NOT NULL"
	    "    REFERENCES messages(id) ON DELETE CASCADE,"
	    "  offset INTEGER NOT NULL CHECK (offset >= 0),"
	    "  data BLOB NOT NULL,"
	    "  PRIMARY KEY (message_id, offset)"
	    ") WITHOUT ROWID;"
	    "ALTER TABLE accounts ADD COLUMN bodies TEXT NOT NULL"
	    "  DEFAULT 'none';"
	    "ALTER TABLE accounts ADD COLUMN auth TEXT NOT NULL"
	    "  DEFAULT 'password' CHECK (auth IN ('password', 'oauth2'));"
	    "CREATE TABLE sync_state ("
	    "  account_id INTEGER NOT NULL"
	    "    REFERENCES accounts(id) ON DELETE CASCADE,"
	    "  resource TEXT NOT NULL,"
	    "  state TEXT NOT NULL,"
	    "  updated_at INTEGER NOT NULL,"
	    "  PRIMARY KEY (account_id, resource)"
	    ") WITHOUT ROWID;"
	    "ALTER TABLE jobs ADD COLUMN target_message_id INTEGER"
	    "  REFERENCES messages(id) ON DELETE CASCADE;"
	    /* bodies: a fetch_body job is unique per (account, message),
	     * not per kind, and is leased beside the account's other jobs
	     * (one fetch_body at a time per account). */
	    "DROP INDEX jobs_one_queued;"
	    "CREATE UNIQUE INDEX jobs_one_queued ON jobs(account_id, kind)"
	    "  WHERE state = 'queued' AND kind <> 'fetch_body';"
	    "CREATE UNIQUE INDEX jobs_body_queued"
	    "  ON jobs(account_id, target_message_id)"
	    "  WHERE state = 'queued' AND kind = 'fetch_body';"
	    "DROP INDEX jobs_one_leased;"
	    "CREATE UNIQUE INDEX jobs_one_leased"
	    "  ON jobs(account_id, kind = 'watch', kind = 'fetch_body')"
	    "  WHERE state = 'leased';" },
	{ "pending local changes (drain) and SMTP settings",
	    "ALTER TABLE accounts ADD COLUMN smtp TEXT;"
	    "ALTER TABLE accounts ADD COLUMN smtp_username TEXT;"
	    "ALTER TABLE accounts ADD COLUMN smtp_secret BLOB;"
	    "CREATE TABLE pending_changes ("
	    "  id INTEGER PRIMARY KEY,"
	    "  account_id INTEGER NOT NULL"
	    "    REFERENCES accounts(id) ON DELETE CASCADE,"
	    "  kind TEXT NOT NULL CHECK (kind IN ('flag', 'move', 'delete',"
	    "    'append', 'send')),"
	    "  state TEXT NOT NULL CHECK (state IN ('pending', 'inflight',"
	    "    'done', 'dead', 'uncertain', 'cancelled')),"
	    "  message_id INTEGER"
	    "    REFERENCES messages(id) ON DELETE SET NULL,"
	    "  mailbox TEXT,"
	    "  uidvalidity INTEGER,"
	    "  uid INTEGER,"
	    "  remote_id TEXT,"
	    "  flags_add INTEGER NOT NULL DEFAULT 0,"
	    "  flags_remove INTEGER NOT NULL DEFAULT 0,"
	    "  keywords_add TEXT NOT NULL DEFAULT '',"
	    "  keywords_remove TEXT NOT NULL DEFAULT '',"
	    "  to_mailbox TEXT,"
	    "  expunge INTEGER NOT NULL DEFAULT 0 CHECK (expunge IN (0, 1)),"
	    "  rfc822 BLOB,"
	    "  header_message_id TEXT,"
	    "  step INTEGER NOT NULL DEFAULT 0 CHECK (step IN (0, 1)),"
	    "  attempts INTEGER NOT NULL DEFAULT 0,"
	    "  job_id INTEGER,"
	    "  created_at INTEGER NOT NULL,"
	    "  updated_at INTEGER NOT NULL,"
	    "  next_at INTEGER NOT NULL,"
	    "  last_error TEXT,"
	    "  result_mailbox TEXT,"
	    "  result_uid INTEGER"
	    ");"
	    "CREATE INDEX pending_changes_active"
	    "  ON pending_changes(account_id, id)"
	    "  WHERE state IN ('pending', 'inflight');"
	    "CREATE INDEX pending_changes_message"
	    "  ON pending_changes(message_id)"
	    "  WHERE state IN ('pending', 'inflight');"
	    "CREATE INDEX pending_changes_account"
	    "  ON pending_changes(account_id, state, id);" },
	/* JMAP rows are found by Email id across mailboxes (membership,
	 * destroyed Emails, drain results). */
	{ "JMAP: messages by Email id",
	    "CREATE INDEX messages_account_remote"
	    "  ON messages(account_id, remote_id)"
	    "  WHERE remote_id IS NOT NULL;" },
	/* WITHOUT ROWID keeps at most ~1 KB of a row in a 4 KiB b-tree page:
	 * a typical 2 KB body took a leaf share plus a mostly empty overflow
	 * page. As a rowid table a chunk up to 4 KB sits in its leaf: half
	 * the pages written, twice the speed (docs/performance.md). */
	{ "body_chunks as a rowid table",
	    "CREATE TABLE body_chunks_v5 ("
	    "  message_id INTEGER NOT NULL"
	    "    REFERENCES messages(id) ON DELETE CASCADE,"
	    "  offset INTEGER NOT NULL CHECK (offset >= 0),"
	    "  data BLOB NOT NULL,"
	    "  PRIMARY KEY (message_id, offset)"
	    ");"
	    "INSERT INTO body_chunks_v5(message_id, offset, data)"
	    "  SELECT message_id, offset, data FROM body_chunks"
	    "  ORDER BY message_id, offset;"
	    "DROP TABLE body_chunks;"
	    "ALTER TABLE body_chunks_v5 RENAME TO body_chunks;" },
};

static int
store_schema_step(struct store *st, int from, char *errbuf, size_t errlen)
{
	const struct store_migration *m = &store_migrations[from];
	char *emsg = NULL;
	char sql[64];
	int cur, rc, rv;

	rv = store_begin(st);
	if (rv != 0) {
		snprintf(errbuf, errlen, "migration %d: begin: %s", from + 1,
		    store_errmsg(st));
		return (rv);
	}
	/* Re-read under the write lock: another process may have moved on */
	rv = store_schema_version(st, &cur);
	if (rv != 0) {
		snprintf(errbuf, errlen, "migration %d: %s", from + 1,
		    store_errmsg(st));
		goto fail;
	}
	if (cur != from) {
		store_rollback(st);
		return (ERR_OK); /* the caller loops and re-reads */
	}
	rc = sqlite3_exec(st->db, m->sql, NULL, NULL, &emsg);
	if (rc != SQLITE_OK) {
		rv = store_err(rc);
		snprintf(errbuf, errlen, "migration %d (%s) failed: %s",
		    from + 1, m->what, emsg != NULL ? emsg : "?");
		sqlite3_free(emsg);
		goto fail;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", from + 1);
	rc = sqlite3_exec(st->db, sql, NULL, NULL, &emsg);
	if (rc != SQLITE_OK) {
		rv = store_err(rc);
		snprintf(errbuf, errlen, "migration %d: %s", from + 1,
		    emsg != NULL ? emsg : "?");
		sqlite3_free(emsg);
		goto fail;
	}
	rv = store_commit(st);
	if (rv != 0) {
		snprintf(errbuf, errlen, "migration %d: commit: %s", from + 1,
		    store_errmsg(st));
		return (rv);
	}
	log_info("event=schema_migrated to=%d what=\"%s\"", from + 1, m->what);
	return (ERR_OK);
fail:
	store_rollback(st);
	return (rv);
}

int
store_schema_migrate(struct store *st, char *errbuf, size_t errlen)
{
	const int known = (int)ARRAY_LEN(store_migrations);
	int v, rv, guard;

	_Static_assert(ARRAY_LEN(store_migrations) == STORE_SCHEMA_VERSION,
	    "STORE_SCHEMA_VERSION must equal the number of migrations");
	for (guard = 0; guard <= known; guard++) {
		rv = store_schema_version(st, &v);
		if (rv != 0) {
			snprintf(errbuf, errlen, "reading user_version: %s",
			    store_errmsg(st));
			return (rv);
		}
		if (v > known) {
			snprintf(errbuf, errlen,
			    "database schema version %d is newer than this "
			    "program supports (%d): upgrade mailsync",
			    v, known);
			return (ERR_VERSION);
		}
		if (v < 0) {
			snprintf(errbuf, errlen,
			    "database schema version %d is invalid", v);
			return (ERR_VERSION);
		}
		if (v == known) {
			return (ERR_OK);
		}
		rv = store_schema_step(st, v, errbuf, errlen);
		if (rv != 0) {
			return (rv);
		}
	}
	snprintf(errbuf, errlen, "schema migration did not converge");
	return (ERR_DB);
}
