/*
 * change_local.c: what a change does to the local rows (docs/drain.md,
 * "Intended state in the local rows"), and the small helpers the change
 * files share: reading a change row, keyword lists, role mailboxes.
 *
 * Placeholders: a row whose server UID is not known yet (a moved message,
 * an appended or sent one) has uid NULL and remote_id 'local:<change id>'
 * (STORE_PLACEHOLDER_PFX); messages.id of a moved message is kept. The
 * raw message's header gives an appended or sent placeholder its columns
 * (pkg/mime), as a sync would have stored them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime.h"
#include "store_int.h"

const uint32_t store_flag_bit[STORE_NFLAGS]
    = { PROTO_FLAG_SEEN, PROTO_FLAG_FLAGGED, PROTO_FLAG_ANSWERED,
	      PROTO_FLAG_DRAFT, PROTO_FLAG_DELETED };

/* Keywords --------------------------------------------------------------- */

bool
store_kw_has(const char *list, const char *p, size_t n)
{
	const char *t = list, *e;

	while (*t != '\0') {
		while (*t == ' ') {
			t++;
		}
		e = t;
		while (*e != '\0' && *e != ' ') {
			e++;
		}
		if ((size_t)(e - t) == n && n > 0
		    && strncasecmp(t, p, n) == 0) {
			return (true);
		}
		t = e;
	}
	return (false);
}

/* Appends token [p, p + n) to b, space-separated. */
static int
kw_push(struct buf *b, const char *p, size_t n)
{
	int rv = ERR_OK;

	if (b->len > 0) {
		rv = buf_add(b, " ", 1);
	}
	return (rv != 0 ? rv : buf_add(b, p, n));
}

int
store_kw_apply(
    const char *cur, const char *add, const char *remove, char **out_r)
{
	const char *lists[2] = { cur, add }, *t, *e;
	struct buf b;
	size_t i;
	int rv = ERR_OK;

	buf_init(&b, PROTO_MAX_STR);
	for (i = 0; i < 2 && rv == 0; i++) {
		for (t = lists[i] != NULL ? lists[i] : "";
		     *t != '\0' && rv == 0; t = e) {
			while (*t == ' ') {
				t++;
			}
			e = t;
			while (*e != '\0' && *e != ' ') {
				e++;
			}
			if (e == t
			    || (remove != NULL && i == 0
			        && store_kw_has(remove, t, (size_t)(e - t)))
			    || (b.data != NULL
			        && store_kw_has(b.data, t, (size_t)(e - t)))) {
				continue;
			}
			rv = kw_push(&b, t, (size_t)(e - t));
		}
	}
	if (rv == 0 && b.data == NULL) {
		rv = buf_add(&b, "", 0);
	}
	if (rv != 0) {
		buf_release(&b);
		return (rv);
	}
	*out_r = b.data; /* the buffer's storage is the string */
	return (ERR_OK);
}
/* Change rows ------------------------------------------------------------ */

static const char SQL_CHANGE_READ[]
    = "SELECT id, account_id, kind, state, message_id, mailbox, uidvalidity,"
      " uid, remote_id, flags_add, flags_remove, keywords_add,"
      " keywords_remove, to_mailbox, expunge, header_message_id, step,"
      " attempts, job_id, next_at FROM pending_changes WHERE id = ?1";

int
store_col_dup(sqlite3_stmt *stmt, int col, char **s_r)
{
	const unsigned char *t;

	*s_r = NULL;
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
		return (ERR_OK);
	}
	t = sqlite3_column_text(stmt, col);
	*s_r = t != NULL ? xstrdup((const char *)t) : NULL;
	return (*s_r != NULL ? ERR_OK : ERR_NOMEM);
}

void
store_change_row_release(struct store_change_row *c)
{
	free(c->mailbox);
	free(c->remote_id);
	free(c->keywords_add);
	free(c->keywords_remove);
	free(c->to_mailbox);
	free(c->header_message_id);
	memset(c, 0, sizeof(*c));
}

int
store_change_read(struct store *st, uint64_t id, struct store_change_row *c)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	memset(c, 0, sizeof(*c));
	if (id == 0 || id > INT64_MAX) {
		return (ERR_NOTFOUND);
	}
	rv = store_stmt(st, SQL_CHANGE_READ, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		store_stmt_done(stmt);
		return (rc == SQLITE_DONE ? ERR_NOTFOUND : store_err(rc));
	}
	c->id = (uint64_t)sqlite3_column_int64(stmt, 0);
	c->account_id = (uint64_t)sqlite3_column_int64(stmt, 1);
	if (proto_change_kind_parse(
	        (const char *)sqlite3_column_text(stmt, 2), &c->kind)
	        != 0
	    || proto_change_state_parse(
	           (const char *)sqlite3_column_text(stmt, 3), &c->state)
	        != 0) {
		store_stmt_done(stmt);
		return (ERR_DB);
	}
	c->message_id = (uint64_t)sqlite3_column_int64(stmt, 4);
	c->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 6);
	c->uid = (uint32_t)sqlite3_column_int64(stmt, 7);
	c->flags_add = (uint32_t)sqlite3_column_int64(stmt, 9);
	c->flags_remove = (uint32_t)sqlite3_column_int64(stmt, 10);
	c->expunge = sqlite3_column_int(stmt, 14) != 0;
	c->step = (uint8_t)sqlite3_column_int(stmt, 16);
	c->attempts = (uint32_t)sqlite3_column_int64(stmt, 17);
	c->job_id = (uint64_t)sqlite3_column_int64(stmt, 18);
	c->next_at = sqlite3_column_int64(stmt, 19);
	rv = store_col_dup(stmt, 5, &c->mailbox);
	rv = rv != 0 ? rv : store_col_dup(stmt, 8, &c->remote_id);
	rv = rv != 0 ? rv : store_col_dup(stmt, 11, &c->keywords_add);
	rv = rv != 0 ? rv : store_col_dup(stmt, 12, &c->keywords_remove);
	rv = rv != 0 ? rv : store_col_dup(stmt, 13, &c->to_mailbox);
	rv = rv != 0 ? rv : store_col_dup(stmt, 15, &c->header_message_id);
	store_stmt_done(stmt);
	if (rv == 0 && c->keywords_add == NULL) {
		c->keywords_add = xstrdup("");
	}
	if (rv == 0 && c->keywords_remove == NULL) {
		c->keywords_remove = xstrdup("");
	}
	if (rv == 0
	    && (c->keywords_add == NULL || c->keywords_remove == NULL)) {
		rv = ERR_NOMEM;
	}
	if (rv != 0) {
		store_change_row_release(c);
	}
	return (rv);
}

/* Mailboxes -------------------------------------------------------------- */

static const char SQL_ROLE_MAILBOX[]
    = "SELECT id, name FROM mailboxes WHERE account_id = ?1 AND role = ?2"
      " ORDER BY id LIMIT 1";

int
store_role_mailbox(struct store *st, uint64_t account_id, const char *role,
    int64_t *id_r, char **name_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	*id_r = 0;
	*name_r = NULL;
	rv = store_stmt(st, SQL_ROLE_MAILBOX, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	sqlite3_bind_text(stmt, 2, role, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(stmt, 0);
		rv = store_col_dup(stmt, 1, name_r);
	} else if (rc != SQLITE_DONE) {
		rv = store_err(rc);
	}
	store_stmt_done(stmt);
	return (rv);
}

/* Placeholders ----------------------------------------------------------- */

/* The columns of a placeholder row, read from a raw message's header. */
struct placeholder {
	char *message_id, *subject, *from, *to, *cc;
	int64_t date;
};

static void
placeholder_release(struct placeholder *p)
{
	free(p->message_id);
	free(p->subject);
	free(p->from);
	free(p->to);
	free(p->cc);
	memset(p, 0, sizeof(*p));
}

/*
 * The decoded value of header field `name`, *out_r NULL when absent.
 * Address fields are formatted as sync stores them; a list that does not
 * parse is kept as its decoded text.
 */
static int
header_col(
    const char *msg, size_t len, const char *name, bool addrs, char **out_r)
{
	struct mime_addr_list l = { NULL, 0 };
	char *raw = NULL;
	int rv;

	*out_r = NULL;
	rv = mime_header_get(msg, len, name, &raw);
	if (rv == ERR_NOTFOUND) {
		return (ERR_OK);
	}
	if (rv != 0) {
		return (rv);
	}
	if (addrs && mime_addr_parse(raw, strlen(raw), &l) == 0) {
		rv = mime_addr_format(&l, out_r);
		mime_addr_list_release(&l);
	} else {
		rv = mime_decode_header(raw, strlen(raw), out_r);
	}
	free(raw);
	return (rv);
}

static int
placeholder_read(const char *msg, size_t len, struct placeholder *p)
{
	char *date = NULL;
	int rv;

	memset(p, 0, sizeof(*p));
	rv = mime_header_get(msg, len, "Message-ID", &p->message_id);
	if (rv == ERR_NOTFOUND) {
		rv = ERR_OK;
	}
	rv = rv != 0 ? rv
	             : header_col(msg, len, "Subject", false, &p->subject);
	rv = rv != 0 ? rv : header_col(msg, len, "From", true, &p->from);
	rv = rv != 0 ? rv : header_col(msg, len, "To", true, &p->to);
	rv = rv != 0 ? rv : header_col(msg, len, "Cc", true, &p->cc);
	if (rv == 0 && mime_header_get(msg, len, "Date", &date) == 0) {
		if (mime_parse_date(date, strlen(date), &p->date) != 0) {
			p->date = 0;
		}
		free(date);
	}
	if (rv != 0) {
		placeholder_release(p);
	}
	return (rv);
}

static const char SQL_PLACEHOLDER_FIND[]
    = "SELECT id FROM messages WHERE account_id = ?1 AND mailbox_id = ?2"
      " AND remote_id = ?3";
static const char SQL_PLACEHOLDER_INSERT[]
    = "INSERT INTO messages(account_id, mailbox_id, uid, remote_id,"
      " message_id, subject, from_addr, to_addrs, cc_addrs, date,"
      " internal_date, size, seen, flagged, answered, draft, deleted,"
      " keywords) VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
      " ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
static const char SQL_CHANGE_LINK[]
    = "UPDATE pending_changes SET message_id = ?2 WHERE id = ?1";

/* 'local:<id>' into buf. */
static void
placeholder_key(uint64_t change_id, char *buf, size_t n)
{
	snprintf(buf, n, STORE_PLACEHOLDER_PFX "%llu",
	    (unsigned long long)change_id);
}

/* Links change c to message row_id (0: none). */
static int
change_link(struct store *st, struct store_change_row *c, int64_t row_id)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	rv = store_stmt(st, SQL_CHANGE_LINK, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)c->id);
	store_bind_nz(stmt, 2, row_id);
	rv = store_stmt_exec(stmt);
	if (rv == 0) {
		c->message_id = (uint64_t)row_id;
	}
	return (rv);
}

/* Append/send: the placeholder row in mailbox mbox_id (unless one is
 * there already: a retry of a change whose placeholder survived). */
static int
intend_placeholder(struct store *st, struct store_change_row *c,
    int64_t mbox_id, const char *msg, size_t len, int64_t now_ms)
{
	struct placeholder p;
	sqlite3_stmt *stmt = NULL;
	char key[32], *kw = NULL;
	uint32_t flags;
	int64_t row = 0;
	size_t i;
	int rc, rv;

	placeholder_key(c->id, key, sizeof(key));
	rv = store_stmt(st, SQL_PLACEHOLDER_FIND, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)c->account_id);
	sqlite3_bind_int64(stmt, 2, mbox_id);
	sqlite3_bind_text(stmt, 3, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	row = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
	store_stmt_done(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		return (store_err(rc));
	}
	if (row != 0) {
		return (change_link(st, c, row));
	}
	rv = placeholder_read(msg, len, &p);
	if (rv != 0) {
		return (rv);
	}
	/* A Sent copy is read; an append carries the user's flags. */
	flags = c->kind == CHANGE_SEND ? PROTO_FLAG_SEEN : c->flags_add;
	rv = store_kw_apply(
	    "", c->kind == CHANGE_SEND ? "" : c->keywords_add, NULL, &kw);
	if (rv != 0) {
		goto done;
	}
	rv = store_stmt(st, SQL_PLACEHOLDER_INSERT, &stmt);
	if (rv != 0) {
		goto done;
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)c->account_id);
	sqlite3_bind_int64(stmt, 2, mbox_id);
	sqlite3_bind_text(stmt, 3, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, p.message_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, p.subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 6, p.from, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 7, p.to, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 8, p.cc, -1, SQLITE_STATIC);
	store_bind_nz(stmt, 9, p.date);
	sqlite3_bind_int64(stmt, 10, now_ms / 1000);
	sqlite3_bind_int64(stmt, 11, (int64_t)len);
	for (i = 0; i < STORE_NFLAGS; i++) {
		sqlite3_bind_int(
		    stmt, 12 + (int)i, (flags & store_flag_bit[i]) != 0);
	}
	sqlite3_bind_text(stmt, 17, kw, -1, SQLITE_STATIC);
	rv = store_stmt_exec(stmt);
	if (rv == 0) {
		rv = change_link(st, c, sqlite3_last_insert_rowid(st->db));
	}
done:
	free(kw);
	placeholder_release(&p);
	return (rv);
}

/* Intended state --------------------------------------------------------- */

/* ?2: the change's remote_id snapshot; column 1: the row is the server's
 * (uid known) or still the one the change saw. */
static const char SQL_ROW_OF[]
    = "SELECT id, uid IS NOT NULL OR remote_id IS ?2 FROM messages"
      " WHERE id = ?1";
static const char SQL_ROW_AT[]
    = "SELECT m.id, 1 FROM messages m JOIN mailboxes x"
      " ON x.id = m.mailbox_id WHERE x.account_id = ?1 AND x.name = ?2"
      " AND x.uidvalidity IS ?3 AND m.uid = ?4";
static const char SQL_ROW_DELETE[] = "DELETE FROM messages WHERE id = ?1";
static const char SQL_ROW_REHOME[]
    = "UPDATE messages SET mailbox_id = ?2, uid = NULL, remote_id = ?3"
      " WHERE id = ?1";
/* A JMAP row keeps its Email id; a copy already in the destination
 * makes the moved row redundant. */
static const char SQL_ROW_REHOME_JMAP[]
    = "UPDATE OR IGNORE messages SET mailbox_id = ?2 WHERE id = ?1";

/*
 * The local row change c acts on: its message_id, else (a retry after an
 * undo deleted it) the row at the change's source, linked again.
 * *row_r 0 when there is none, or (move, delete) when the row became the
 * placeholder of a later change: a retry must not take it from that one.
 */
static int
intend_row(struct store *st, struct store_change_row *c, int64_t *row_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	*row_r = 0;
	if (c->message_id != 0) {
		rv = store_stmt(st, SQL_ROW_OF, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)c->message_id);
		sqlite3_bind_text(stmt, 2, c->remote_id, -1, SQLITE_STATIC);
	} else if (c->uid != 0 && c->mailbox != NULL) {
		rv = store_stmt(st, SQL_ROW_AT, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)c->account_id);
		sqlite3_bind_text(stmt, 2, c->mailbox, -1, SQLITE_STATIC);
		store_bind_nz(stmt, 3, c->uidvalidity);
		sqlite3_bind_int64(stmt, 4, c->uid);
	} else {
		return (ERR_OK);
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW
	    && (c->kind == CHANGE_FLAG || sqlite3_column_int(stmt, 1) != 0)) {
		*row_r = sqlite3_column_int64(stmt, 0);
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		return (store_err(rc));
	}
	if (*row_r != 0 && c->message_id == 0) {
		return (change_link(st, c, *row_r));
	}
	return (ERR_OK);
}

static int
row_exec(struct store *st, const char *sql, int64_t row, int64_t mbox_id,
    const char *key)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	rv = store_stmt(st, sql, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, row);
	if (mbox_id != 0) {
		sqlite3_bind_int64(stmt, 2, mbox_id);
	}
	if (key != NULL) {
		sqlite3_bind_text(stmt, 3, key, -1, SQLITE_STATIC);
	}
	return (store_stmt_exec(stmt));
}

/* Move (and delete to Trash): the row is re-homed as a placeholder. */
static int
intend_move(
    struct store *st, struct store_change_row *c, int64_t row, bool jmap)
{
	struct proto_str dest = { c->to_mailbox, 0 };
	char key[32];
	int64_t mbox_id;
	int rv;

	if (c->to_mailbox == NULL) {
		return (ERR_OK);
	}
	dest.len = strlen(c->to_mailbox);
	rv = store_mailbox_find(st, c->account_id, dest, &mbox_id);
	if (rv != 0 || mbox_id == 0) {
		return (rv); /* the destination is gone: the drain says why */
	}
	if (jmap) {
		return (row_exec(st, SQL_ROW_REHOME_JMAP, row, mbox_id, NULL));
	}
	placeholder_key(c->id, key, sizeof(key));
	return (row_exec(st, SQL_ROW_REHOME, row, mbox_id, key));
}

int
store_change_intend(struct store *st, struct store_change_row *c,
    const char *rfc822, size_t rfc822_len, int64_t now_ms)
{
	struct proto_str name;
	int64_t row = 0, mbox_id;
	bool jmap;
	int rv;

	if (c->kind == CHANGE_APPEND || c->kind == CHANGE_SEND) {
		if (c->to_mailbox == NULL || rfc822 == NULL) {
			return (ERR_OK); /* a send without a Sent mailbox */
		}
		name.p = c->to_mailbox;
		name.len = strlen(c->to_mailbox);
		rv = store_mailbox_find(st, c->account_id, name, &mbox_id);
		if (rv != 0 || mbox_id == 0) {
			return (rv);
		}
		return (intend_placeholder(
		    st, c, mbox_id, rfc822, rfc822_len, now_ms));
	}
	rv = intend_row(st, c, &row);
	if (rv != 0 || row == 0) {
		return (rv); /* no row (yet): the sync guards take over */
	}
	/* A JMAP row: no uid, and an Email id rather than a placeholder */
	jmap = c->uid == 0 && c->remote_id != NULL
	    && strncmp(c->remote_id, STORE_PLACEHOLDER_PFX,
	           strlen(STORE_PLACEHOLDER_PFX))
	        != 0;
	switch (c->kind) {
	case CHANGE_FLAG:
		return (store_change_overlay(st, row));
	case CHANGE_DELETE:
		if (c->expunge) {
			return (row_exec(st, SQL_ROW_DELETE, row, 0, NULL));
		}
		/* FALLTHROUGH */
	case CHANGE_MOVE:
		return (intend_move(st, c, row, jmap));
	default:
		return (ERR_OK);
	}
}
