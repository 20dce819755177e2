/*
 * change.c: a user's local change (submit.change.add) and the user's
 * decisions on one (submit.change.resolve), docs/drain.md.
 *
 * A change is validated with precise errors, then in ONE transaction the
 * pending_changes row is inserted (a snapshot of where the message is:
 * mailbox name, UIDVALIDITY, UID, remote_id, Message-ID), the local rows
 * are made to show the intended state (change_local.c) and a drain job is
 * queued or joined. The reply (the change id) is sent after the commit,
 * so a change the user was told about is durable and visible.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "store_int.h"

#define STORE_MAX_MSGID 998 /* a Message-ID header (RFC 5322 line) */
#define STORE_MAX_KEYWORD 255 /* one keyword (bytes) */

/* Flags ------------------------------------------------------------------ */

static const char *const store_flag_name[STORE_NFLAGS]
    = { "\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted" };

/* Names the set bits of f ("\Seen \Flagged") into buf. */
static const char *
flag_names(uint32_t f, char *buf, size_t n)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < STORE_NFLAGS; i++) {
		if ((f & store_flag_bit[i]) != 0 && used < n) {
			used += (size_t)snprintf(buf + used, n - used, "%s%s",
			    used > 0 ? " " : "", store_flag_name[i]);
		}
	}
	return (buf);
}

/* Keywords --------------------------------------------------------------- */

/* True when [p, p + n) is an IMAP atom usable as a keyword. */
static bool
kw_atom_ok(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > STORE_MAX_KEYWORD) {
		return (false);
	}
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch <= 0x20 || ch >= 0x7f
		    || strchr("(){%*\"\\]", ch) != NULL) {
			return (false);
		}
	}
	return (true);
}

/*
 * Validates a keyword list from a peer and normalises it (single spaces,
 * duplicates dropped) into *out_r (malloc'd, "" for nil). Fills out.
 */
static int
kw_norm(
    struct proto_str s, const char *what, char **out_r, struct store_out *out)
{
	char *copy;
	size_t i = 0, j;
	int rv;

	while (s.p != NULL && i < s.len) {
		if (s.p[i] == ' ') {
			i++;
			continue;
		}
		for (j = i; j < s.len && s.p[j] != ' '; j++) { }
		if (s.p[i] == '\\') {
			return (store_out_fail(out, ERR_INVAL,
			    "%s: '%.*s' is a system flag, not a keyword (set "
			    "system flags with the flag options)",
			    what, (int)(j - i > 80 ? 80 : j - i), s.p + i));
		}
		if (!kw_atom_ok(s.p + i, j - i)) {
			return (store_out_fail(out, ERR_INVAL,
			    "%s: '%.*s' is not an IMAP keyword (an atom of "
			    "printable ASCII without ( ) { %% * \" \\ ])",
			    what, (int)(j - i > 80 ? 80 : j - i), s.p + i));
		}
		i = j;
	}
	copy = xstrndup(s.p != NULL ? s.p : "", s.len);
	if (copy == NULL) {
		return (store_out_fail(out, ERR_NOMEM, "out of memory"));
	}
	rv = store_kw_apply(NULL, copy, NULL, out_r);
	free(copy);
	return (rv != 0 ? store_out_fail(out, rv, "%s: %s", what, err_str(rv))
	                : ERR_OK);
}

/* Validation ------------------------------------------------------------- */

/* What the add request resolved to, before the transaction. */
struct change_plan {
	uint64_t account_id;
	bool smtp;
	/* the message (flag, move, delete) */
	int64_t msg_mailbox_id;
	char *msg_mailbox, *msg_role, *msg_remote_id, *msg_header_id;
	uint32_t msg_uidvalidity, msg_uid;
	/* normalised */
	char *kw_add, *kw_remove;
	char *to_mailbox;
	bool expunge;
	char *header_message_id; /* append/send */
};

static void
plan_release(struct change_plan *p)
{
	free(p->msg_mailbox);
	free(p->msg_role);
	free(p->msg_remote_id);
	free(p->msg_header_id);
	free(p->kw_add);
	free(p->kw_remove);
	free(p->to_mailbox);
	free(p->header_message_id);
	memset(p, 0, sizeof(*p));
}

/* A JMAP account sends through EmailSubmission: no SMTP URL needed. */
static const char SQL_CHANGE_ACCOUNT[]
    = "SELECT id, smtp IS NOT NULL OR protocol = 'jmap' FROM accounts"
      " WHERE name = ?1";
static const char SQL_CHANGE_MESSAGE[]
    = "SELECT m.account_id, m.mailbox_id, x.name, x.role, x.uidvalidity,"
      " m.uid, m.remote_id, m.message_id FROM messages m"
      " JOIN mailboxes x ON x.id = m.mailbox_id WHERE m.id = ?1";

static int
plan_account(struct store *st, const struct proto_change_add *c,
    struct change_plan *p, struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	const char *why;
	int rc, rv;

	rv = store_check_text(c->account, 1, 128, true, &why);
	if (rv != 0) {
		return (
		    store_out_fail(out, ERR_INVAL, "account name %s", why));
	}
	rv = store_stmt(st, SQL_CHANGE_ACCOUNT, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "finding account"));
	}
	store_bind_str(stmt, 1, c->account);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		p->account_id = (uint64_t)sqlite3_column_int64(stmt, 0);
		p->smtp = sqlite3_column_int(stmt, 1) != 0;
	}
	store_stmt_done(stmt);
	if (rc == SQLITE_DONE) {
		return (store_out_fail(out, ERR_NOTFOUND,
		    "no account named '%.*s'", STORE_PS(c->account)));
	}
	if (rc != SQLITE_ROW) {
		return (store_out_dbfail(
		    out, st, store_err(rc), "finding account"));
	}
	return (ERR_OK);
}

static int
plan_message(struct store *st, const struct proto_change_add *c,
    struct change_plan *p, struct store_out *out)
{
	sqlite3_stmt *stmt = NULL;
	uint64_t owner = 0;
	int rc, rv = ERR_OK;

	if (c->message_id == 0 || c->message_id > INT64_MAX) {
		return (store_out_fail(out, ERR_INVAL,
		    "a %s change needs a message id",
		    proto_change_kind_name(c->kind)));
	}
	rv = store_stmt(st, SQL_CHANGE_MESSAGE, &stmt);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "finding message"));
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)c->message_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		owner = (uint64_t)sqlite3_column_int64(stmt, 0);
		p->msg_mailbox_id = sqlite3_column_int64(stmt, 1);
		p->msg_uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 4);
		p->msg_uid = (uint32_t)sqlite3_column_int64(stmt, 5);
		rv = store_col_dup(stmt, 2, &p->msg_mailbox);
		rv = rv != 0 ? rv : store_col_dup(stmt, 3, &p->msg_role);
		rv = rv != 0 ? rv : store_col_dup(stmt, 6, &p->msg_remote_id);
		rv = rv != 0 ? rv : store_col_dup(stmt, 7, &p->msg_header_id);
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		return (store_out_dbfail(
		    out, st, store_err(rc), "finding message"));
	}
	if (rv != 0) {
		return (store_out_fail(out, rv, "out of memory"));
	}
	if (rc == SQLITE_DONE || owner != p->account_id) {
		return (store_out_fail(out, ERR_NOTFOUND,
		    "account '%.*s' has no message with id %llu",
		    STORE_PS(c->account), (unsigned long long)c->message_id));
	}
	return (ERR_OK);
}

/* A header field's address count; ERR_INVAL (text in out) when the field
 * is there but is not an address list. */
static int
addr_count(const char *msg, size_t len, const char *name, size_t *n_r,
    struct store_out *out)
{
	struct mime_addr_list l = { NULL, 0 };
	char *raw = NULL;
	int rv;

	*n_r = 0;
	rv = mime_header_get(msg, len, name, &raw);
	if (rv == ERR_NOTFOUND) {
		return (ERR_OK);
	}
	if (rv != 0) {
		return (store_out_fail(out, ERR_INVAL,
		    "the message's %s header cannot be read: %s", name,
		    err_str(rv)));
	}
	rv = mime_addr_parse(raw, strlen(raw), &l);
	free(raw);
	if (rv != 0) {
		return (store_out_fail(out, ERR_INVAL,
		    "the message's %s header is not an address list (%s)",
		    name, err_str(rv)));
	}
	*n_r = l.n;
	mime_addr_list_release(&l);
	return (ERR_OK);
}

/* The raw message of an append or send. */
static int
plan_rfc822(const struct proto_change_add *c, struct change_plan *p,
    struct store_out *out)
{
	const char *what = proto_change_kind_name(c->kind);
	const char *msg = c->rfc822.p;
	size_t len = c->rfc822.len, end, n, total = 0;
	struct proto_str id;
	const char *why;
	const char *rcpt[] = { "To", "Cc", "Bcc" };
	int rv;
	size_t i;

	if (msg == NULL || len == 0) {
		return (store_out_fail(out, ERR_INVAL,
		    "%s needs the raw message (rfc822), which is empty",
		    what));
	}
	if (len > PROTO_MAX_RFC822) {
		return (store_out_fail(out, ERR_TOOBIG,
		    "the message is %zu bytes, more than the %u allowed", len,
		    PROTO_MAX_RFC822));
	}
	if (mime_header_end(msg, len, &end) != 0) {
		return (store_out_fail(out, ERR_INVAL,
		    "the message has no valid header section (header fields, "
		    "then an empty line)"));
	}
	rv = mime_header_get(msg, len, "Message-ID", &p->header_message_id);
	if (rv == ERR_NOTFOUND) {
		return (store_out_fail(out, ERR_INVAL,
		    "the message has no Message-ID header (it makes %s safe "
		    "to repeat)",
		    what));
	}
	if (rv != 0) {
		return (store_out_fail(out, ERR_INVAL,
		    "the message's Message-ID header cannot be read: %s",
		    err_str(rv)));
	}
	id.p = p->header_message_id;
	id.len = strlen(p->header_message_id);
	if (store_check_text(id, 1, STORE_MAX_MSGID, true, &why) != 0) {
		return (store_out_fail(out, ERR_INVAL,
		    "the message's Message-ID header %s", why));
	}
	if (c->kind != CHANGE_SEND) {
		return (ERR_OK);
	}
	rv = addr_count(msg, len, "From", &n, out);
	if (rv != 0) {
		return (rv);
	}
	if (n == 0) {
		return (store_out_fail(
		    out, ERR_INVAL, "the message has no From address"));
	}
	for (i = 0; i < ARRAY_LEN(rcpt); i++) {
		rv = addr_count(msg, len, rcpt[i], &n, out);
		if (rv != 0) {
			return (rv);
		}
		total += n;
	}
	if (total == 0) {
		return (store_out_fail(out, ERR_INVAL,
		    "the message has no recipient (To, Cc or Bcc)"));
	}
	return (ERR_OK);
}

/* Flags and keywords of a flag or append change. */
static int
plan_flags(const struct proto_change_add *c, struct change_plan *p,
    struct store_out *out)
{
	char names[96];
	uint32_t both = c->flags_add & c->flags_remove;
	const char *t, *e;
	int rv;

	if (((c->flags_add | c->flags_remove) & ~PROTO_FLAG_ALL) != 0) {
		return (
		    store_out_fail(out, ERR_INVAL, "unknown flag bits 0x%x",
		        (c->flags_add | c->flags_remove) & ~PROTO_FLAG_ALL));
	}
	if (both != 0) {
		return (store_out_fail(out, ERR_INVAL,
		    "%s cannot be both added and removed",
		    flag_names(both, names, sizeof(names))));
	}
	rv = kw_norm(c->keywords_add, "keywords to add", &p->kw_add, out);
	if (rv == 0) {
		rv = kw_norm(c->keywords_remove, "keywords to remove",
		    &p->kw_remove, out);
	}
	if (rv != 0) {
		return (rv);
	}
	for (t = p->kw_add; *t != '\0'; t = *e == ' ' ? e + 1 : e) {
		for (e = t; *e != '\0' && *e != ' '; e++) { }
		if (store_kw_has(p->kw_remove, t, (size_t)(e - t))) {
			return (store_out_fail(out, ERR_INVAL,
			    "keyword '%.*s' cannot be both added and removed",
			    (int)(e - t), t));
		}
	}
	return (ERR_OK);
}

/* Only flag and append changes carry flags or keywords. */
static int
plan_no_flags(const struct proto_change_add *c, struct store_out *out)
{
	if (c->flags_add != 0 || c->flags_remove != 0
	    || c->keywords_add.len > 0 || c->keywords_remove.len > 0) {
		return (store_out_fail(out, ERR_INVAL,
		    "a %s change takes no flags or keywords",
		    proto_change_kind_name(c->kind)));
	}
	return (ERR_OK);
}

/* A mailbox name the change names; *id_r 0 when the account has none. */
static int
plan_mailbox(struct store *st, const struct proto_change_add *c,
    struct change_plan *p, int64_t *id_r, struct store_out *out)
{
	const char *why;
	int rv;

	rv = store_check_text(c->mailbox, 1, STORE_MAX_MAILBOX, true, &why);
	if (rv != 0) {
		return (store_out_fail(out, ERR_INVAL,
		    "%s %s change needs a mailbox: the name %s",
		    c->kind == CHANGE_APPEND ? "an" : "a",
		    proto_change_kind_name(c->kind), why));
	}
	rv = store_mailbox_find(st, p->account_id, c->mailbox, id_r);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "finding mailbox"));
	}
	if (*id_r == 0) {
		return (store_out_fail(out, ERR_NOTFOUND,
		    "account '%.*s' has no mailbox named '%.*s'",
		    STORE_PS(c->account), STORE_PS(c->mailbox)));
	}
	p->to_mailbox = xstrndup(c->mailbox.p, c->mailbox.len);
	return (p->to_mailbox != NULL
	        ? ERR_OK
	        : store_out_fail(out, ERR_NOMEM, "out of memory"));
}

static int
change_plan(struct store *st, const struct proto_change_add *c,
    struct change_plan *p, struct store_out *out)
{
	int64_t id;
	int rv;

	if (c->kind > CHANGE_SEND) {
		return (store_out_fail(
		    out, ERR_INVAL, "unknown change kind %u", c->kind));
	}
	rv = plan_account(st, c, p, out);
	if (rv != 0) {
		return (rv);
	}
	if (c->kind == CHANGE_FLAG || c->kind == CHANGE_APPEND) {
		rv = plan_flags(c, p, out);
	} else {
		rv = plan_no_flags(c, out);
	}
	if (rv != 0) {
		return (rv);
	}
	switch (c->kind) {
	case CHANGE_FLAG:
		if (c->flags_add == 0 && c->flags_remove == 0
		    && p->kw_add[0] == '\0' && p->kw_remove[0] == '\0') {
			return (store_out_fail(out, ERR_INVAL,
			    "a flag change needs a flag or keyword to add or "
			    "remove"));
		}
		return (plan_message(st, c, p, out));
	case CHANGE_MOVE:
		rv = plan_message(st, c, p, out);
		rv = rv != 0 ? rv : plan_mailbox(st, c, p, &id, out);
		if (rv == 0 && id == p->msg_mailbox_id) {
			rv = store_out_fail(out, ERR_INVAL,
			    "message %llu is already in '%.*s'",
			    (unsigned long long)c->message_id,
			    STORE_PS(c->mailbox));
		}
		return (rv);
	case CHANGE_DELETE:
		rv = plan_message(st, c, p, out);
		if (rv != 0) {
			return (rv);
		}
		/* Deleting from Trash is for good. */
		p->expunge = c->expunge
		    || (p->msg_role != NULL
		        && strcmp(p->msg_role, "trash") == 0);
		if (p->expunge) {
			return (ERR_OK);
		}
		rv = store_role_mailbox(
		    st, p->account_id, "trash", &id, &p->to_mailbox);
		if (rv != 0) {
			return (
			    store_out_dbfail(out, st, rv, "finding Trash"));
		}
		if (id == 0) {
			return (store_out_fail(out, ERR_INVAL,
			    "account '%.*s' has no mailbox with the trash "
			    "role; use --expunge",
			    STORE_PS(c->account)));
		}
		return (ERR_OK);
	case CHANGE_APPEND:
		rv = plan_mailbox(st, c, p, &id, out);
		return (rv != 0 ? rv : plan_rfc822(c, p, out));
	default: /* CHANGE_SEND */
		if (!p->smtp) {
			return (store_out_fail(out, ERR_INVAL,
			    "account '%.*s' has no SMTP server (add the "
			    "account with an smtp:// or smtps:// URL)",
			    STORE_PS(c->account)));
		}
		rv = plan_rfc822(c, p, out);
		if (rv != 0) {
			return (rv);
		}
		rv = store_role_mailbox(
		    st, p->account_id, "sent", &id, &p->to_mailbox);
		return (rv != 0 ? store_out_dbfail(out, st, rv, "finding Sent")
		                : ERR_OK);
	}
}

/* Adding ----------------------------------------------------------------- */

static const char SQL_CHANGE_INSERT[]
    = "INSERT INTO pending_changes(account_id, kind, state, message_id,"
      " mailbox, uidvalidity, uid, remote_id, flags_add, flags_remove,"
      " keywords_add, keywords_remove, to_mailbox, expunge, rfc822,"
      " header_message_id, created_at, updated_at, next_at) VALUES (?1, ?2,"
      " 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
      " ?16, ?16, ?16)";

/* Inserts the row; fills row (taking no strings from p: copies). */
static int
change_insert(struct store *st, const struct proto_change_add *c,
    const struct change_plan *p, int64_t now_ms, struct store_change_row *row)
{
	sqlite3_stmt *stmt = NULL;
	bool msg = c->kind <= CHANGE_DELETE;
	int rv;

	rv = store_stmt(st, SQL_CHANGE_INSERT, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)p->account_id);
	sqlite3_bind_text(
	    stmt, 2, proto_change_kind_name(c->kind), -1, SQLITE_STATIC);
	store_bind_nz(stmt, 3, msg ? (int64_t)c->message_id : 0);
	if (msg) {
		sqlite3_bind_text(stmt, 4, p->msg_mailbox, -1, SQLITE_STATIC);
		store_bind_nz(stmt, 5, p->msg_uidvalidity);
		store_bind_nz(stmt, 6, p->msg_uid);
		sqlite3_bind_text(
		    stmt, 7, p->msg_remote_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    stmt, 15, p->msg_header_id, -1, SQLITE_STATIC);
	} else {
		sqlite3_bind_blob(
		    stmt, 14, c->rfc822.p, (int)c->rfc822.len, SQLITE_STATIC);
		sqlite3_bind_text(
		    stmt, 15, p->header_message_id, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(stmt, 8, c->flags_add);
	sqlite3_bind_int64(stmt, 9, c->flags_remove);
	sqlite3_bind_text(
	    stmt, 10, p->kw_add != NULL ? p->kw_add : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 11, p->kw_remove != NULL ? p->kw_remove : "",
	    -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 12, p->to_mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 13, p->expunge ? 1 : 0);
	sqlite3_bind_int64(stmt, 16, now_ms);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		return (rv);
	}
	return (store_change_read(
	    st, (uint64_t)sqlite3_last_insert_rowid(st->db), row));
}

int
store_change_add(struct store *st, const struct proto_change_add *c,
    int64_t now_ms, struct store_out *out)
{
	struct change_plan p;
	struct store_change_row row;
	uint64_t job_id;
	int rv;

	memset(&p, 0, sizeof(p));
	memset(&row, 0, sizeof(row));
	rv = store_begin(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "begin"));
	}
	rv = change_plan(st, c, &p, out);
	if (rv != 0) {
		goto fail;
	}
	rv = change_insert(st, c, &p, now_ms, &row);
	if (rv == 0) {
		rv = store_change_intend(
		    st, &row, c->rfc822.p, c->rfc822.len, now_ms);
	}
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "adding change");
		goto fail;
	}
	rv = store_job_enqueue(st, p.account_id, JOB_KIND_DRAIN, PRIO_USER,
	    now_ms, now_ms, out, &job_id);
	if (rv != 0) {
		goto fail;
	}
	rv = store_commit(st);
	if (rv != 0) {
		out->nevents = 0;
		store_out_dbfail(out, st, rv, "commit");
		goto done;
	}
	out->reply.id = row.id;
	log_info("event=change_added change=%llu account=%llu kind=%s "
	         "message=%llu job=%llu",
	    (unsigned long long)row.id, (unsigned long long)p.account_id,
	    proto_change_kind_name(c->kind),
	    (unsigned long long)row.message_id, (unsigned long long)job_id);
	goto done;
fail:
	out->nevents = 0;
	store_rollback(st);
done:
	store_change_row_release(&row);
	plan_release(&p);
	return (rv);
}

/* Resolving -------------------------------------------------------------- */

static const char SQL_RESOLVE_RETRY[]
    = "UPDATE pending_changes SET state = 'pending', attempts = 0,"
      " next_at = ?2, updated_at = ?2, last_error = NULL, job_id = NULL"
      " WHERE id = ?1";
static const char SQL_CHANGE_RFC822[]
    = "SELECT rfc822 FROM pending_changes WHERE id = ?1";

/* retry: a dead change's local effect was undone: show it again. */
static int
resolve_reapply(struct store *st, struct store_change_row *c, int64_t now_ms)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	if (c->kind != CHANGE_APPEND && c->kind != CHANGE_SEND) {
		return (store_change_intend(st, c, NULL, 0, now_ms));
	}
	rv = store_stmt(st, SQL_CHANGE_RFC822, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)c->id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(stmt, 0) > 0) {
		/* the blob stays valid until the statement is reset */
		rv = store_change_intend(st, c,
		    (const char *)sqlite3_column_blob(stmt, 0),
		    (size_t)sqlite3_column_bytes(stmt, 0), now_ms);
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rv = store_err(rc);
	}
	store_stmt_done(stmt);
	return (rv);
}

int
store_change_resolve(struct store *st, const struct proto_change_resolve *r,
    int64_t now_ms, struct store_out *out)
{
	struct store_change_row c;
	sqlite3_stmt *stmt = NULL;
	bool retry = store_str_is(r->action, "retry");
	char detail[96];
	uint64_t job_id;
	int rv;

	memset(&c, 0, sizeof(c));
	if (!retry && !store_str_is(r->action, "cancel")) {
		return (store_out_fail(out, ERR_INVAL,
		    "action '%.*s' is not 'retry' or 'cancel'",
		    STORE_PS(r->action)));
	}
	rv = store_begin(st);
	if (rv != 0) {
		return (store_out_dbfail(out, st, rv, "begin"));
	}
	rv = store_change_read(st, r->change_id, &c);
	if (rv == ERR_NOTFOUND) {
		rv = store_out_fail(out, rv, "no change %llu",
		    (unsigned long long)r->change_id);
		goto fail;
	}
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "reading change");
		goto fail;
	}
	if (c.state == CHANGE_INFLIGHT) {
		rv = store_out_fail(out, ERR_BADSTATE,
		    "change %llu is being carried out by job %llu; try again "
		    "when it ends",
		    (unsigned long long)c.id, (unsigned long long)c.job_id);
		goto fail;
	}
	if (retry && c.state != CHANGE_DEAD && c.state != CHANGE_UNCERTAIN) {
		rv = store_out_fail(out, ERR_BADSTATE,
		    "change %llu is %s: only a dead or uncertain change can "
		    "be "
		    "retried",
		    (unsigned long long)c.id,
		    proto_change_state_name(c.state));
		goto fail;
	}
	if (!retry && c.state != CHANGE_PENDING && c.state != CHANGE_DEAD
	    && c.state != CHANGE_UNCERTAIN) {
		rv = store_out_fail(out, ERR_BADSTATE,
		    "change %llu is %s: only a pending, dead or uncertain "
		    "change can be cancelled",
		    (unsigned long long)c.id,
		    proto_change_state_name(c.state));
		goto fail;
	}
	if (retry) {
		rv = store_stmt(st, SQL_RESOLVE_RETRY, &stmt);
		if (rv == 0) {
			sqlite3_bind_int64(stmt, 1, (int64_t)c.id);
			sqlite3_bind_int64(stmt, 2, now_ms);
			rv = store_stmt_exec(stmt);
		}
		/* A dead change was undone; an uncertain send kept its
		 * placeholder (and step 0: it is sent again). */
		if (rv == 0 && c.state == CHANGE_DEAD) {
			rv = resolve_reapply(st, &c, now_ms);
		}
		if (rv == 0) {
			snprintf(detail, sizeof(detail),
			    "change %llu (%s): retried by the user",
			    (unsigned long long)c.id,
			    proto_change_kind_name(c.kind));
			rv = store_log_event(st, now_ms, c.account_id, 0,
			    "change", "retry", detail);
		}
	} else {
		rv = store_change_end(st, &c, CHANGE_CANCELLED,
		    "cancelled by the user", 0, now_ms);
	}
	if (rv != 0) {
		store_out_dbfail(out, st, rv, "resolving change");
		goto fail;
	}
	if (retry) {
		rv = store_job_enqueue(st, c.account_id, JOB_KIND_DRAIN,
		    PRIO_USER, now_ms, now_ms, out, &job_id);
		if (rv != 0) {
			goto fail;
		}
	}
	rv = store_commit(st);
	if (rv != 0) {
		out->nevents = 0;
		store_out_dbfail(out, st, rv, "commit");
		goto done;
	}
	out->reply.id = c.id;
	if (retry) { /* store_change_end logged a cancel */
		log_info("event=change_retried change=%llu account=%llu",
		    (unsigned long long)c.id,
		    (unsigned long long)c.account_id);
	}
	goto done;
fail:
	out->nevents = 0;
	store_rollback(st);
done:
	store_change_row_release(&c);
	return (rv);
}
