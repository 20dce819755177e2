/*
 * mailbox_rename.c: a mailbox renamed on the server keeps its row.
 *
 * A worker that sees a mailbox vanish from LIST while a new one appears
 * with the same UIDVALIDITY sends the new name's mailbox row with
 * `old_name` set (docs/protocol.md, mailbox_row). Before that row is
 * upserted, the store renames old_name's row to the new name, so the
 * mailbox id, its messages (messages.id values), attachments, bodies and
 * checkpoint all stay. When the new name already exists (the batch is
 * re-applied under a new attempt, or the worker guessed wrong) nothing is
 * renamed; when old_name is not there the row is simply a new mailbox.
 * Either way the result is the same as without a rename, only cheaper.
 */
#include <stdio.h>
#include <string.h>

#include "store_int.h"

static const char SQL_RENAME[]
    = "UPDATE mailboxes SET name = ?3 WHERE account_id = ?1 AND name = ?2"
      " AND NOT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = ?1"
      " AND name = ?3)";

int
store_rename_check(const struct proto_batch *b, struct store_out *out)
{
	const char *why;
	size_t i;
	int rv;

	for (i = 0; i < b->nmailboxes; i++) {
		if (b->mailboxes[i].old_name.p == NULL) {
			continue;
		}
		rv = store_check_text(b->mailboxes[i].old_name, 1,
		    STORE_MAX_MAILBOX, true, &why);
		if (rv != 0) {
			return (store_out_fail(out, ERR_PROTO,
			    "mailboxes[%zu].old_name %s", i, why));
		}
	}
	return (ERR_OK);
}

int
store_rename_apply(struct store *st, uint64_t account_id, uint64_t job_id,
    const struct proto_mailbox_row *mb, int64_t now_ms)
{
	sqlite3_stmt *stmt = NULL;
	char detail[512];
	int rv;

	if (mb->old_name.p == NULL || (mb->old_name.len == mb->name.len &&
	    memcmp(mb->old_name.p, mb->name.p, mb->name.len) == 0)) {
		return (ERR_OK);
	}
	rv = store_stmt(st, SQL_RENAME, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	store_bind_str(stmt, 2, mb->old_name);
	store_bind_str(stmt, 3, mb->name);
	rv = store_stmt_exec(stmt);
	if (rv != 0 || sqlite3_changes(st->db) == 0) {
		return (rv);
	}
	snprintf(detail, sizeof(detail), "'%.*s' -> '%.*s'",
	    STORE_PS(mb->old_name), STORE_PS(mb->name));
	rv = store_log_event(st, now_ms, account_id, job_id, NULL,
	    "mailbox_renamed", detail);
	if (rv != 0) {
		return (rv);
	}
	log_info("event=mailbox_renamed job=%llu account=%llu",
	    (unsigned long long)job_id, (unsigned long long)account_id);
	return (ERR_OK);
}
