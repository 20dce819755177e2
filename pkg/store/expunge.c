/*
 * expunge.c: removes rows of messages the server no longer has.
 *
 * A worker reports expunges per mailbox as an IMAP UID set
 * (struct proto_expunge_row):
 *   EXPUNGE_VANISHED  the UIDs in `uids` are gone (QRESYNC VANISHED);
 *   EXPUNGE_PRESENT   the UIDs in `uids` are all that still exist in
 *                     [from, below) (UID SEARCH of that range), so every
 *                     other row in it is gone; an empty (nil) set means
 *                     none remain. A worker splits a large mailbox into
 *                     rows over disjoint ranges (docs/protocol.md).
 * The set is parsed into sorted, merged ranges (bounded: at most
 * STORE_EXPUNGE_MAX_RANGES) and applied with one ranged DELETE per range
 * or per gap, inside the batch transaction. Attachments and bodies go by
 * cascade. A sync_log row 'expunged' per mailbox and batch records how
 * many rows went.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define STORE_EXPUNGE_MAX_RANGES 200000u

struct uid_range {
	uint32_t lo, hi;
};

static int
range_cmp(const void *a, const void *b)
{
	const struct uid_range *x = a, *y = b;

	return (x->lo < y->lo ? -1 : x->lo > y->lo);
}

static int
parse_u32(const char *s, size_t n, size_t *i, uint32_t *v_r)
{
	uint64_t v = 0;
	size_t start = *i;

	while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
		v = v * 10 + (uint64_t)(s[*i] - '0');
		if (v > UINT32_MAX) {
			return (ERR_PROTO);
		}
		(*i)++;
	}
	if (*i == start || v == 0) {
		return (ERR_PROTO);
	}
	*v_r = (uint32_t)v;
	return (ERR_OK);
}

int
store_uidset_parse(struct proto_str set, struct store_uidset *u,
    const char **why_r)
{
	struct uid_range *r = NULL, *nr;
	size_t i = 0, n = 0, cap = 0, k;
	uint32_t a, b;

	memset(u, 0, sizeof(*u));
	*why_r = NULL;
	while (set.p != NULL && i < set.len) {
		if (parse_u32(set.p, set.len, &i, &a) != 0) {
			*why_r = "expected a UID (1..4294967295)";
			goto fail;
		}
		b = a;
		if (i < set.len && set.p[i] == ':') {
			i++;
			if (parse_u32(set.p, set.len, &i, &b) != 0) {
				*why_r = "expected a UID after ':'";
				goto fail;
			}
		}
		if (i < set.len && (set.p[i] != ',' || i + 1 == set.len)) {
			*why_r = "expected ',' between ranges";
			goto fail;
		}
		if (i < set.len) {
			i++;
		}
		if (n == cap) {
			if (cap >= STORE_EXPUNGE_MAX_RANGES) {
				*why_r = "too many ranges";
				goto fail;
			}
			cap = cap != 0 ? cap * 2 : 16;
			nr = realloc(r, cap * sizeof(*r));
			if (nr == NULL) {
				free(r);
				return (ERR_NOMEM);
			}
			r = nr;
		}
		r[n].lo = a < b ? a : b;
		r[n].hi = a < b ? b : a;
		n++;
	}
	if (n > 1) {
		qsort(r, n, sizeof(*r), range_cmp);
		/* Merge overlapping and adjacent ranges. */
		for (i = 1, k = 0; i < n; i++) {
			if ((uint64_t)r[i].lo <= (uint64_t)r[k].hi + 1) {
				if (r[i].hi > r[k].hi) {
					r[k].hi = r[i].hi;
				}
			} else {
				r[++k] = r[i];
			}
		}
		n = k + 1;
	}
	u->lo = calloc(n + 1, sizeof(uint32_t));
	u->hi = calloc(n + 1, sizeof(uint32_t));
	if (u->lo == NULL || u->hi == NULL) {
		free(r);
		store_uidset_release(u);
		return (ERR_NOMEM);
	}
	for (i = 0; i < n; i++) {
		u->lo[i] = r[i].lo;
		u->hi[i] = r[i].hi;
	}
	u->n = n;
	free(r);
	return (ERR_OK);
fail:
	free(r);
	return (ERR_PROTO);
}

void
store_uidset_release(struct store_uidset *u)
{
	free(u->lo);
	free(u->hi);
	memset(u, 0, sizeof(*u));
}

static const char SQL_EXPUNGE_RANGE[]
    = "DELETE FROM messages WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3";

static int
delete_range(struct store *st, int64_t mbox_id, uint32_t lo, uint32_t hi,
    uint64_t *n_r)
{
	sqlite3_stmt *stmt = NULL;
	int rv;

	rv = store_stmt(st, SQL_EXPUNGE_RANGE, &stmt);
	if (rv != 0) {
		return (rv);
	}
	sqlite3_bind_int64(stmt, 1, mbox_id);
	sqlite3_bind_int64(stmt, 2, lo);
	sqlite3_bind_int64(stmt, 3, hi);
	rv = store_stmt_exec(stmt);
	if (rv == 0) {
		*n_r += (uint64_t)sqlite3_changes(st->db);
	}
	return (rv);
}

/* Applies one row to mailbox mbox_id; adds the rows deleted to *n_r. */
static int
expunge_row(struct store *st, int64_t mbox_id,
    const struct proto_expunge_row *e, uint64_t *n_r)
{
	struct store_uidset u;
	const char *why;
	uint32_t next, from;
	size_t i;
	int rv;

	rv = store_uidset_parse(e->uids, &u, &why);
	if (rv != 0) {
		return (rv);
	}
	if (e->kind == EXPUNGE_VANISHED) {
		for (i = 0; i < u.n && rv == 0; i++) {
			rv = delete_range(st, mbox_id, u.lo[i], u.hi[i], n_r);
		}
		store_uidset_release(&u);
		return (rv);
	}
	/* Delete the gaps of the present set inside [from, below). */
	from = e->from != 0 ? e->from : 1;
	next = from;
	for (i = 0; i < u.n && rv == 0 && next < e->below; i++) {
		if (u.hi[i] < next) {
			continue;
		}
		if (u.lo[i] >= e->below) {
			break;
		}
		if (u.lo[i] > next) {
			rv = delete_range(st, mbox_id, next, u.lo[i] - 1, n_r);
		}
		if (u.hi[i] == UINT32_MAX) {
			next = UINT32_MAX; /* nothing can follow */
			break;
		}
		next = u.hi[i] + 1;
	}
	if (rv == 0 && next < e->below) {
		rv = delete_range(st, mbox_id, next, e->below - 1, n_r);
	}
	store_uidset_release(&u);
	return (rv);
}

static bool
same_str(struct proto_str a, struct proto_str b)
{
	return (a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0));
}

static const char SQL_EXPUNGE_MAILBOX[]
    = "SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2";

int
store_expunge_apply(struct store *st, uint64_t account_id,
    const struct proto_batch *b, int64_t now_ms)
{
	const struct proto_expunge_row *e;
	sqlite3_stmt *stmt = NULL;
	int64_t mbox_id = 0;
	uint64_t n = 0;
	char detail[256];
	size_t i;
	int rc, rv = ERR_OK;

	for (i = 0; i < b->nexpunged && rv == 0; i++) {
		e = &b->expunged[i];
		if (e->kind == EXPUNGE_REMOTE) {
			rv = store_jmap_destroy(
			    st, account_id, b->job_id, e, now_ms);
			continue;
		}
		rv = store_stmt(st, SQL_EXPUNGE_MAILBOX, &stmt);
		if (rv != 0) {
			return (rv);
		}
		sqlite3_bind_int64(stmt, 1, (int64_t)account_id);
		store_bind_str(stmt, 2, e->mailbox);
		rc = sqlite3_step(stmt);
		mbox_id = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
		store_stmt_done(stmt);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			return (store_err(rc));
		}
		/* A mailbox the store does not have has nothing to lose. */
		if (mbox_id != 0) {
			rv = expunge_row(st, mbox_id, e, &n);
		}
		/* One sync_log row per mailbox of the batch (rows of one
		 * mailbox are adjacent: the worker sends them together). */
		if (rv == 0 && n > 0 && (i + 1 == b->nexpunged ||
		    !same_str(b->expunged[i + 1].mailbox, e->mailbox))) {
			snprintf(detail, sizeof(detail),
			    "%llu messages in '%.*s'", (unsigned long long)n,
			    store_plen(e->mailbox), e->mailbox.p);
			rv = store_log_event(st, now_ms, account_id, b->job_id,
			    "sync", "expunged", detail);
			n = 0;
		}
	}
	return (rv);
}

int
store_expunge_check(const struct proto_batch *b, struct store_out *out)
{
	struct store_uidset u;
	const char *why;
	size_t i;
	int rv;

	for (i = 0; i < b->nexpunged; i++) {
		const struct proto_expunge_row *e = &b->expunged[i];

		if (e->mailbox.p == NULL || e->mailbox.len == 0) {
			return (store_out_fail(out, ERR_PROTO,
			    "expunged[%zu].mailbox is missing", i));
		}
		if (e->kind == EXPUNGE_REMOTE) {
			rv = store_check_text(
			    e->uids, 1, PROTO_MAX_STR, true, &why);
			if (rv != 0) {
				return (store_out_fail(out, ERR_PROTO,
				    "expunged[%zu].uids %s", i, why));
			}
			continue;
		}
		if (e->kind != EXPUNGE_VANISHED && e->kind != EXPUNGE_PRESENT) {
			return (store_out_fail(out, ERR_PROTO,
			    "expunged[%zu].kind %u is unknown", i, e->kind));
		}
		if (e->kind == EXPUNGE_PRESENT && e->below == 0) {
			return (store_out_fail(out, ERR_PROTO,
			    "expunged[%zu].below is missing", i));
		}
		if (e->kind == EXPUNGE_PRESENT && e->from >= e->below) {
			return (store_out_fail(out, ERR_PROTO,
			    "expunged[%zu].from %u is not below %u", i,
			    e->from, e->below));
		}
		if (e->kind == EXPUNGE_VANISHED && e->uids.p == NULL) {
			return (store_out_fail(out, ERR_PROTO,
			    "expunged[%zu].uids is missing", i));
		}
		rv = store_uidset_parse(e->uids, &u, &why);
		store_uidset_release(&u);
		if (rv == ERR_NOMEM) {
			return (store_out_fail(out, rv, "out of memory"));
		}
		if (rv != 0) {
			return (store_out_fail(out, ERR_PROTO,
			    "expunged[%zu].uids: %s", i, why));
		}
	}
	return (ERR_OK);
}
