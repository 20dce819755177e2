/*
 * change_guard.c: what sync apply does while local changes are active
 * (docs/drain.md, "No zombies"), so that a sync never undoes what the
 * user asked for before the drain carried it to the server:
 *
 *   skip     a full or flag row at the source (mailbox, UIDVALIDITY, UID)
 *            of an active move or delete is not written;
 *   merge    a full row that would insert a new (mailbox, UID) where a
 *            placeholder of an active move/append/send has the same
 *            Message-ID fills that placeholder instead (its id stays);
 *   overlay  after a row's flags are written, the message's active flag
 *            changes are applied again on top, in change id order.
 *
 * store_guard_load() costs one indexed query when the account has no
 * active change (the first sync of a large account pays nothing more);
 * otherwise it loads the keys of the batch's checks into sorted arrays,
 * so each message row costs a binary search, and SQL only on a hit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* A change's source, resolved to a mailbox id of the current UIDVALIDITY */
struct guard_key {
	int64_t mbox_id;
	uint32_t uid;
	uint64_t change_id;
	uint64_t message_id; /* 0: the row is gone (relinked on insert) */
};

/* A placeholder a new row may fill. */
struct guard_ph {
	int64_t mbox_id;
	char *header; /* Message-ID */
	int64_t row_id;
	uint64_t change_id;
	bool used;
};

struct store_guard {
	uint64_t account_id;
	struct guard_key *skip, *flag;
	size_t nskip, nflag, capskip, capflag;
	struct guard_ph *ph;
	size_t nph, capph;
	int64_t merged_row; /* the row store_guard_before() merged, or 0 */
};

static const char SQL_GUARD_ANY[]
    = "SELECT 1 FROM pending_changes WHERE account_id = ?1"
      " AND state IN " STORE_CHANGE_ACTIVE " LIMIT 1";
static const char SQL_GUARD_KEYS[]
    = "SELECT x.id, c.uid, c.id, coalesce(c.message_id, 0), c.kind = 'flag'"
      " FROM pending_changes c JOIN mailboxes x"
      " ON x.account_id = c.account_id AND x.name = c.mailbox"
      " AND x.uidvalidity IS c.uidvalidity"
      " WHERE c.account_id = ?1 AND c.state IN " STORE_CHANGE_ACTIVE
      " AND c.kind IN ('flag', 'move', 'delete') AND c.uid IS NOT NULL";
static const char SQL_GUARD_PH[]
    = "SELECT m.mailbox_id, c.header_message_id, m.id, c.id"
      " FROM pending_changes c JOIN messages m ON m.id = c.message_id"
      " WHERE c.account_id = ?1 AND c.state IN " STORE_CHANGE_ACTIVE
      " AND c.kind IN ('move', 'delete', 'append', 'send')"
      " AND c.header_message_id IS NOT NULL AND m.uid IS NULL"
      " AND m.remote_id = '" STORE_PLACEHOLDER_PFX "' || c.id";

static int
key_cmp(const void *a, const void *b)
{
	const struct guard_key *x = a, *y = b;

	if (x->mbox_id != y->mbox_id) {
		return (x->mbox_id < y->mbox_id ? -1 : 1);
	}
	return (x->uid < y->uid ? -1 : x->uid > y->uid);
}

static int
ph_cmp(const void *a, const void *b)
{
	const struct guard_ph *x = a, *y = b;

	if (x->mbox_id != y->mbox_id) {
		return (x->mbox_id < y->mbox_id ? -1 : 1);
	}
	return (strcmp(x->header, y->header));
}

/* Index of the first key >= (mbox_id, uid) in the sorted array. */
static size_t
key_lower(const struct guard_key *k, size_t n, int64_t mbox_id, uint32_t uid)
{
	struct guard_key probe = { mbox_id, uid, 0, 0 };
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (key_cmp(&k[mid], &probe) < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return (lo);
}

static bool
key_has(const struct guard_key *k, size_t n, int64_t mbox_id, uint32_t uid)
{
	size_t i = key_lower(k, n, mbox_id, uid);

	return (i < n && k[i].mbox_id == mbox_id && k[i].uid == uid);
}

/* Grows an array of elements of size sz to hold one more. */
static int
grow(void **v, size_t n, size_t *cap, size_t sz)
{
	void *p;
	size_t ncap;

	if (n < *cap) {
		return (ERR_OK);
	}
	ncap = *cap == 0 ? 16 : *cap * 2;
	p = realloc(*v, ncap * sz);
	if (p == NULL) {
		return (ERR_NOMEM);
	}
	*v = p;
	*cap = ncap;
	return (ERR_OK);
}

void
store_guard_free(struct store_guard **gp)
{
	struct store_guard *g = *gp;
	size_t i;

	if (g == NULL) {
		return;
	}
	for (i = 0; i < g->nph; i++) {
		free(g->ph[i].header);
	}
	free(g->ph);
	free(g->skip);
	free(g->flag);
	free(g);
	*gp = NULL;
}

static int
guard_load_keys(struct store *st, struct store_guard *g)
{
	sqlite3_stmt *stmt = NULL;
	struct guard_key k, **v;
	size_t *n, *cap;
	int rc, rv;

	rv = store_stmt(st, SQL_GUARD_KEYS, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)g->account_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		k.mbox_id = sqlite3_column_int64(stmt, 0);
		k.uid = (uint32_t)sqlite3_column_int64(stmt, 1);
		k.change_id = (uint64_t)sqlite3_column_int64(stmt, 2);
		k.message_id = (uint64_t)sqlite3_column_int64(stmt, 3);
		if (sqlite3_column_int(stmt, 4) != 0) {
			v = &g->flag, n = &g->nflag, cap = &g->capflag;
		} else {
			v = &g->skip, n = &g->nskip, cap = &g->capskip;
		}
		rv = grow((void **)v, *n, cap, sizeof(k));
		if (rv != 0) {
			store_stmt_done(stmt);
			return (rv);
		}
		(*v)[(*n)++] = k;
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_DONE) {
		return (store_err(rc));
	}
	/* qsort of a NULL base is undefined even with no element (UBSan). */
	if (g->nskip > 0) {
		qsort(g->skip, g->nskip, sizeof(*g->skip), key_cmp);
	}
	if (g->nflag > 0) {
		qsort(g->flag, g->nflag, sizeof(*g->flag), key_cmp);
	}
	return (ERR_OK);
}

static int
guard_load_ph(struct store *st, struct store_guard *g)
{
	sqlite3_stmt *stmt = NULL;
	struct guard_ph *p;
	int rc, rv;

	rv = store_stmt(st, SQL_GUARD_PH, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)g->account_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		rv = grow((void **)&g->ph, g->nph, &g->capph, sizeof(*p));
		if (rv != 0) {
			break;
		}
		p = &g->ph[g->nph];
		memset(p, 0, sizeof(*p));
		p->mbox_id = sqlite3_column_int64(stmt, 0);
		p->header
		    = xstrdup((const char *)sqlite3_column_text(stmt, 1));
		p->row_id = sqlite3_column_int64(stmt, 2);
		p->change_id = (uint64_t)sqlite3_column_int64(stmt, 3);
		if (p->header == NULL) {
			rv = ERR_NOMEM;
			break;
		}
		g->nph++;
	}
	store_stmt_done(stmt);
	if (rv != 0) {
		return (rv);
	}
	if (rc != SQLITE_DONE) {
		return (store_err(rc));
	}
	if (g->nph > 0) {
		qsort(g->ph, g->nph, sizeof(*g->ph), ph_cmp);
	}
	return (ERR_OK);
}

int
store_guard_load(
    struct store *st, uint64_t account_id, struct store_guard **g_r)
{
	struct store_guard *g;
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	*g_r = NULL;
	rv = store_stmt(st, SQL_GUARD_ANY, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	rc = sqlite3_step(stmt);
	store_stmt_done(stmt);
	if (rc == SQLITE_DONE) {
		return (ERR_OK); /* the fast path */
	}
	if (rc != SQLITE_ROW) {
		return (store_err(rc));
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		return (ERR_NOMEM);
	}
	g->account_id = account_id;
	rv = guard_load_keys(st, g);
	if (rv == 0) {
		rv = guard_load_ph(st, g);
	}
	if (rv != 0) {
		store_guard_free(&g);
		return (rv);
	}
	*g_r = g;
	return (ERR_OK);
}

/* Orders a placeholder against (mbox_id, id) as ph_cmp orders two. */
static int
ph_probe_cmp(const struct guard_ph *p, int64_t mbox_id, struct proto_str id)
{
	size_t len = strlen(p->header), n = len < id.len ? len : id.len;
	int c;

	if (p->mbox_id != mbox_id) {
		return (p->mbox_id < mbox_id ? -1 : 1);
	}
	c = memcmp(p->header, id.p, n);
	if (c != 0) {
		return (c);
	}
	return (len < id.len ? -1 : len > id.len);
}

/* An unused placeholder a new row (mailbox, Message-ID) fills, or NULL. */
static struct guard_ph *
guard_ph_find(struct store_guard *g, int64_t mbox_id, struct proto_str id)
{
	size_t lo = 0, hi = g->nph, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (ph_probe_cmp(&g->ph[mid], mbox_id, id) < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	for (; lo < g->nph && ph_probe_cmp(&g->ph[lo], mbox_id, id) == 0;
	     lo++) {
		if (!g->ph[lo].used) {
			return (&g->ph[lo]);
		}
	}
	return (NULL);
}

static const char SQL_GUARD_ROW_AT[]
    = "SELECT id FROM messages WHERE mailbox_id = ?1 AND uid = ?2";
static const char SQL_GUARD_FILL[]
    = "UPDATE messages SET uid = ?2, remote_id = NULL WHERE id = ?1";
/* Changes that waited for the placeholder's UID now know it. */
static const char SQL_GUARD_DEPENDENTS[]
    = "UPDATE pending_changes SET"
      " mailbox = (SELECT name FROM mailboxes WHERE id = ?2),"
      " uidvalidity = (SELECT uidvalidity FROM mailboxes WHERE id = ?2),"
      " uid = nullif(?3, 0), remote_id = ?5 WHERE account_id = ?1 AND state "
      "IN " STORE_CHANGE_ACTIVE " AND uid IS NULL AND remote_id = ?4";
static const char SQL_GUARD_RELINK[]
    = "UPDATE pending_changes SET message_id = ?2 WHERE id = ?1";

/* The id of the row at (mbox_id, uid), 0 when none. */
static int
row_at(struct store *st, int64_t mbox_id, uint32_t uid, int64_t *id_r)
{
	sqlite3_stmt *stmt = NULL;
	int rc, rv;

	rv = store_stmt(st, SQL_GUARD_ROW_AT, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, mbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	rc = sqlite3_step(stmt);
	*id_r = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
	store_stmt_done(stmt);
	return (
	    rc == SQLITE_ROW || rc == SQLITE_DONE ? ERR_OK : store_err(rc));
}

/* Changes that waited on change_id's placeholder (uid NULL, remote_id
 * 'local:<change_id>') now know where the message is. */
int
store_change_point_dependents(struct store *st, uint64_t account_id,
    uint64_t change_id, int64_t mbox_id, uint32_t uid,
    struct proto_str remote_id)
{
	sqlite3_stmt *stmt = NULL;
	char key[32];
	int rv;

	snprintf(key, sizeof(key), STORE_PLACEHOLDER_PFX "%llu",
	    (unsigned long long)change_id);
	rv = store_stmt(st, SQL_GUARD_DEPENDENTS, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
	sqlite3_bind_int64(stmt, 2, mbox_id);
	sqlite3_bind_int64(stmt, 3, uid);
	sqlite3_bind_text(stmt, 4, key, -1, SQLITE_TRANSIENT);
	store_bind_str(stmt, 5, remote_id);
	return (store_stmt_exec(stmt));
}

/* Merge: the new row (mbox_id, m->uid) fills placeholder p. */
static int
guard_merge(struct store *st, struct store_guard *g, struct guard_ph *p,
    int64_t mbox_id, const struct proto_message_row *m)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	rv = store_stmt(st, SQL_GUARD_FILL, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, p->row_id);
	sqlite3_bind_int64(stmt, 2, m->uid);
	rv = store_stmt_exec(stmt);
	if (rv != 0) {
		return (rv);
	}
	rv = store_change_point_dependents(
	    st, g->account_id, p->change_id, mbox_id, m->uid,
	    proto_str_c(NULL));
	if (rv != 0) {
		return (rv);
	}
	p->used = true;
	g->merged_row = p->row_id;
	log_info("event=change_placeholder_merged change=%llu account=%llu "
	         "message=%lld uid=%u",
	    (unsigned long long)p->change_id,
	    (unsigned long long)g->account_id, (long long)p->row_id, m->uid);
	return (ERR_OK);
}

int
store_guard_before(struct store *st, struct store_guard *g, int64_t mbox_id,
    const struct proto_message_row *m, bool *skip_r)
{
	struct guard_ph *p;
	int64_t id;
	int rv;

	*skip_r = false;
	g->merged_row = 0;
	if (key_has(g->skip, g->nskip, mbox_id, m->uid)) {
		*skip_r = true;
		return (ERR_OK);
	}
	if (!m->full || m->message_id.p == NULL || g->nph == 0) {
		return (ERR_OK);
	}
	p = guard_ph_find(g, mbox_id, m->message_id);
	if (p == NULL) {
		return (ERR_OK);
	}
	rv = row_at(st, mbox_id, m->uid, &id);
	if (rv != 0 || id != 0) {
		return (rv); /* not a new row: an upsert of a known one */
	}
	return (guard_merge(st, g, p, mbox_id, m));
}

int
store_guard_after(struct store *st, struct store_guard *g, int64_t mbox_id,
    const struct proto_message_row *m)
{
	sqlite3_stmt *stmt = NULL;
	int64_t row = g->merged_row;
	size_t i;
	int rv;

	g->merged_row = 0;
	if (row == 0 && !key_has(g->flag, g->nflag, mbox_id, m->uid)) {
		return (ERR_OK);
	}
	if (row == 0) {
		rv = row_at(st, mbox_id, m->uid, &row);
		if (rv != 0 || row == 0) {
			return (rv);
		}
	}
	/* A flag change whose row was deleted (its move undone) follows
	 * the row that the sync brings back at its source. */
	for (i = key_lower(g->flag, g->nflag, mbox_id, m->uid); i < g->nflag
	     && g->flag[i].mbox_id == mbox_id && g->flag[i].uid == m->uid;
	     i++) {
		if (g->flag[i].message_id != 0) {
			continue;
		}
		rv = store_stmt(st, SQL_GUARD_RELINK, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)g->flag[i].change_id);
		sqlite3_bind_int64(stmt, 2, row);
		rv = store_stmt_exec(stmt);
		if (rv != 0) {
			return (rv);
		}
		g->flag[i].message_id = (uint64_t)row;
	}
	return (store_change_overlay(st, row));
}

/* Overlay ---------------------------------------------------------------- */

static const char SQL_OVERLAY_ROW[]
    = "SELECT seen, flagged, answered, draft, deleted, keywords"
      " FROM messages WHERE id = ?1";
static const char SQL_OVERLAY_CHANGES[]
    = "SELECT flags_add, flags_remove, keywords_add, keywords_remove"
      " FROM pending_changes WHERE message_id = ?1"
      " AND state IN " STORE_CHANGE_ACTIVE " AND kind = 'flag' ORDER BY id";
static const char SQL_OVERLAY_SET[]
    = "UPDATE messages SET seen = ?2, flagged = ?3, answered = ?4,"
      " draft = ?5, deleted = ?6, keywords = ?7 WHERE id = ?1";

int
store_change_overlay(struct store *st, int64_t row_id)
{
	sqlite3_stmt *stmt = NULL;
	uint32_t flags = 0;
	char *kw = NULL, *next;
	size_t i;
	bool any = false;
	int rc, rv;

	rv = store_stmt(st, SQL_OVERLAY_ROW, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, row_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		for (i = 0; i < STORE_NFLAGS; i++) {
			if (sqlite3_column_int(stmt, (int)i) != 0) {
				flags |= store_flag_bit[i];
			}
		}
		kw = xstrdup((const char *)sqlite3_column_text(stmt, 5));
	}
	store_stmt_done(stmt);
	if (rc != SQLITE_ROW) {
		return (rc == SQLITE_DONE ? ERR_OK : store_err(rc));
	}
	if (kw == NULL) {
		return (ERR_NOMEM);
	}
	rv = store_stmt(st, SQL_OVERLAY_CHANGES, &stmt);
	if (rv != 0) {
		goto done;
	}
	sqlite3_bind_int64(stmt, 1, row_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		any = true;
		flags = (flags | (uint32_t)sqlite3_column_int64(stmt, 0))
		    & ~(uint32_t)sqlite3_column_int64(stmt, 1);
		rv = store_kw_apply(kw,
		    (const char *)sqlite3_column_text(stmt, 2),
		    (const char *)sqlite3_column_text(stmt, 3), &next);
		if (rv != 0) {
			break;
		}
		free(kw);
		kw = next;
	}
	store_stmt_done(stmt);
	if (rv != 0) {
		goto done;
	}
	if (rc != SQLITE_DONE) {
		rv = store_err(rc);
		goto done;
	}
	if (!any) {
		goto done;
	}
	rv = store_stmt(st, SQL_OVERLAY_SET, &stmt);
	if (rv != 0) {
		goto done;
	}
	sqlite3_bind_int64(stmt, 1, row_id);
	for (i = 0; i < STORE_NFLAGS; i++) {
		sqlite3_bind_int(
		    stmt, 2 + (int)i, (flags & store_flag_bit[i]) != 0);
	}
	sqlite3_bind_text(stmt, 7, kw, -1, SQLITE_STATIC);
	rv = store_stmt_exec(stmt);
done:
	free(kw);
	return (rv);
}
