/*
 * attach.c: the attachment rows of worker.result.batch, into the
 * attachments table.
 *
 * Contract (docs/protocol.md): the complete attachment list of a message
 * travels in the same batch as its full message row. So, inside the
 * batch's transaction and after the message rows are upserted, each full
 * message row REPLACES that message's attachments: its old rows are
 * deleted and the batch's rows for its (mailbox, uid) inserted. Applying
 * the same batch again, or the same rows under a new attempt, leaves the
 * same table. An attachment row without a full message row in its batch
 * is a protocol violation and rejects the batch, like any bad row.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define STORE_MAX_ATTACH_SHORT 1024u	    /* part, type, disposition, id */
#define STORE_MAX_ATTACH_NAME (64u * 1024) /* filename */

/* Each statement twice: ?3 is the UID (IMAP) or the Email id (JMAP). */
#define ATTACH_CLEAR(key)                                                    \
	"DELETE FROM attachments WHERE message_id = (SELECT m.id FROM"       \
	" messages m JOIN mailboxes x ON x.id = m.mailbox_id"                \
	" WHERE x.account_id = ?1 AND x.name = ?2 AND m." key " = ?3)"
#define ATTACH_INSERT(key)                                                   \
	"INSERT INTO attachments(message_id, part, filename, mime_type,"     \
	" size, disposition, content_id) SELECT m.id, ?4, ?5, ?6, ?7, ?8, ?9" \
	" FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id"           \
	" WHERE x.account_id = ?1 AND x.name = ?2 AND m." key " = ?3"        \
	" ON CONFLICT (message_id, part) DO UPDATE SET"                      \
	" filename = excluded.filename, mime_type = excluded.mime_type,"     \
	" size = excluded.size, disposition = excluded.disposition,"         \
	" content_id = excluded.content_id"
static const char *const SQL_ATTACH_CLEAR[]
    = { ATTACH_CLEAR("uid"), ATTACH_CLEAR("remote_id") };
static const char *const SQL_ATTACH_INSERT[]
    = { ATTACH_INSERT("uid"), ATTACH_INSERT("remote_id") };

/* Picks the statement for the key of (uid, remote_id) and binds it as ?3 */
static int
attach_stmt(struct store *st, const char *const *sql, uint32_t uid,
    struct proto_str remote_id, sqlite3_stmt **stmt_r)
{
	bool jmap = store_row_is_jmap(uid, remote_id);
	int rv;

	rv = store_stmt(st, sql[jmap], stmt_r);
	if (rv != 0) {
		return (rv);
	}
	if (jmap) {
		store_bind_str(*stmt_r, 3, remote_id);
	} else {
		sqlite3_bind_int64(*stmt_r, 3, uid);
	}
	return (ERR_OK);
}

/* Orders full message rows by (uid, mailbox) for the membership test. */
static int
attach_key_cmp(const void *a, const void *b)
{
	const struct proto_message_row *x
	    = *(const struct proto_message_row *const *)a;
	const struct proto_message_row *y
	    = *(const struct proto_message_row *const *)b;
	size_t n;
	int c;

	if (x->uid != y->uid) {
		return (x->uid < y->uid ? -1 : 1);
	}
	if (x->uid == 0) { /* JMAP rows: by Email id first */
		n = x->remote_id.len < y->remote_id.len ? x->remote_id.len
							: y->remote_id.len;
		c = n > 0 ? memcmp(x->remote_id.p, y->remote_id.p, n) : 0;
		if (c != 0 || x->remote_id.len != y->remote_id.len) {
			return (c != 0 ? c
				       : (x->remote_id.len < y->remote_id.len
						 ? -1
						 : 1));
		}
	}
	n = x->mailbox.len < y->mailbox.len ? x->mailbox.len : y->mailbox.len;
	c = n > 0 ? memcmp(x->mailbox.p, y->mailbox.p, n) : 0;
	if (c != 0) {
		return (c);
	}
	return (x->mailbox.len < y->mailbox.len
		? -1
		: (x->mailbox.len > y->mailbox.len ? 1 : 0));
}

/* True when the sorted keys hold a full row for (mailbox, uid) of a. */
static bool
attach_has_message(const struct proto_message_row *const *keys, size_t n,
    const struct proto_attachment_row *a)
{
	struct proto_message_row probe;
	const struct proto_message_row *pp = &probe;

	memset(&probe, 0, sizeof(probe));
	probe.mailbox = a->mailbox;
	probe.uid = a->uid;
	probe.remote_id = a->remote_id;
	return (n > 0
	    && bsearch(&pp, keys, n, sizeof(*keys), attach_key_cmp) != NULL);
}

static int
attach_check_row(const struct proto_attachment_row *a, size_t i,
    struct store_out *out)
{
	const struct {
		const char *name;
		struct proto_str s;
		size_t min, max;
	} f[] = {
		{ "mailbox", a->mailbox, 1, STORE_MAX_MAILBOX },
		{ "part", a->part, 1, STORE_MAX_ATTACH_SHORT },
		{ "filename", a->filename, 0, STORE_MAX_ATTACH_NAME },
		{ "mime_type", a->mime_type, 0, STORE_MAX_ATTACH_SHORT },
		{ "disposition", a->disposition, 0, STORE_MAX_ATTACH_SHORT },
		{ "content_id", a->content_id, 0, STORE_MAX_ATTACH_SHORT },
	};
	const char *why;
	size_t k;
	int rv;

	for (k = 0; k < ARRAY_LEN(f); k++) {
		if (f[k].min == 0 && f[k].s.p == NULL) {
			continue; /* optional and nil */
		}
		rv = store_check_text(f[k].s, f[k].min, f[k].max, true, &why);
		if (rv != 0) {
			return (store_out_fail(out, rv, "attachments[%zu].%s %s",
			    i, f[k].name, why));
		}
	}
	if (a->uid == 0 && !store_row_is_jmap(a->uid, a->remote_id)) {
		return (store_out_fail(out, ERR_PROTO,
		    "attachments[%zu].uid must be >= 1 (or remote_id set)",
		    i));
	}
	if (a->size > INT64_MAX) {
		return (store_out_fail(out, ERR_PROTO,
		    "attachments[%zu].size out of range", i));
	}
	return (ERR_OK);
}

int
store_attach_check(const struct proto_batch *b, struct store_out *out)
{
	const struct proto_message_row **keys = NULL;
	const struct proto_attachment_row *a;
	size_t i, n = 0;
	int rv = ERR_OK;

	if (b->nattachments == 0) {
		return (ERR_OK);
	}
	if (b->nattachments > PROTO_MAX_ROWS || b->nmessages > PROTO_MAX_ROWS) {
		return (store_out_fail(out, ERR_TOOBIG,
		    "batch has too many attachment rows"));
	}
	for (i = 0; i < b->nattachments; i++) {
		rv = attach_check_row(&b->attachments[i], i, out);
		if (rv != 0) {
			return (rv);
		}
	}
	keys = calloc(b->nmessages + 1, sizeof(*keys));
	if (keys == NULL) {
		return (store_out_fail(out, ERR_NOMEM, "out of memory"));
	}
	for (i = 0; i < b->nmessages; i++) {
		if (b->messages[i].full) {
			keys[n++] = &b->messages[i];
		}
	}
	qsort(keys, n, sizeof(*keys), attach_key_cmp);
	for (i = 0; i < b->nattachments; i++) {
		a = &b->attachments[i];
		if (!attach_has_message(keys, n, a)) {
			rv = store_out_fail(out, ERR_PROTO,
			    "attachments[%zu] (mailbox '%.*s' uid %u) has no "
			    "full message row in the batch",
			    i, STORE_PS(a->mailbox), a->uid);
			break;
		}
	}
	free(keys);
	return (rv);
}

int
store_attach_apply(struct store *st, uint64_t account_id,
    const struct proto_batch *b, const bool *fresh)
{
	static const struct proto_str octets = { "application/octet-stream",
		sizeof("application/octet-stream") - 1 };
	const struct proto_message_row *m;
	const struct proto_attachment_row *a;
	sqlite3_stmt *stmt = NULL;
	size_t i;
	int rv;

	/* Replace, not merge: every full row clears its message's list, but
	 * a row this batch inserted has none (a deleted message's rows went
	 * with it: ON DELETE CASCADE), which spares a first sync one DELETE
	 * per message. */
	for (i = 0; i < b->nmessages; i++) {
		m = &b->messages[i];
		if (!m->full || (fresh != NULL && fresh[i])) {
			continue;
		}
		rv = attach_stmt(
		    st, SQL_ATTACH_CLEAR, m->uid, m->remote_id, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		store_bind_str(stmt, 2, m->mailbox);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (rv);
		}
	}
	for (i = 0; i < b->nattachments; i++) {
		a = &b->attachments[i];
		rv = attach_stmt(
		    st, SQL_ATTACH_INSERT, a->uid, a->remote_id, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		store_bind_str(stmt, 2, a->mailbox);
		store_bind_str(stmt, 4, a->part);
		store_bind_str(stmt, 5, a->filename);
		store_bind_str(stmt, 6,
		    a->mime_type.p != NULL && a->mime_type.len > 0
			? a->mime_type
			: octets);
		sqlite3_bind_int64(stmt, 7, (int64_t)a->size);
		store_bind_str(stmt, 8, a->disposition);
		store_bind_str(stmt, 9, a->content_id);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}
