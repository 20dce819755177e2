/*
 * expunge.c: removes rows of messages the server no longer has.
 *
 * A worker reports expunges per mailbox as an IMAP UID set
 * (struct proto_expunge_row):
 *   EXPUNGE_VANISHED  the UIDs in `uids` are gone (QRESYNC VANISHED);
 *   EXPUNGE_PRESENT   the UIDs in `uids` are all that still exist below
 *                     `below` (UID SEARCH), so every other row below it
 *                     is gone; an empty (nil) set means none remain.
 * The set is parsed into sorted, merged ranges (bounded: at most
 * STORE_EXPUNGE_MAX_RANGES) and applied with one ranged DELETE per range
 * or per gap, inside the batch transaction. Attachments and bodies go by
 * cascade. A sync_log row 'expunged' records how many rows went.
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

int
store_expunge_apply(struct store *st, uint64_t account_id, uint64_t job_id,
    int64_t mbox_id, const struct proto_expunge_row *e, int64_t now_ms)
{
	struct store_uidset u;
	const char *why;
	uint64_t n = 0;
	uint32_t next;
	char detail[256];
	size_t i;
	int rv;

	rv = store_uidset_parse(e->uids, &u, &why);
	if (rv != 0) {
		return (rv);
	}
	if (e->kind == EXPUNGE_VANISHED) {
		for (i = 0; i < u.n && rv == 0; i++) {
			rv = delete_range(st, mbox_id, u.lo[i], u.hi[i], &n);
		}
	} else {
		/* Delete the gaps of the present set below `below`. */
		next = 1;
		for (i = 0; i < u.n && rv == 0 && next < e->below; i++) {
			if (u.lo[i] > next) {
				rv = delete_range(st, mbox_id, next,
				    u.lo[i] - 1 < e->below - 1 ? u.lo[i] - 1
							       : e->below - 1,
				    &n);
			}
			if (u.hi[i] == UINT32_MAX) {
				next = UINT32_MAX;
				break;
			}
			next = u.hi[i] + 1;
		}
		if (rv == 0 && e->below > 1 && next < e->below) {
			rv = delete_range(st, mbox_id, next, e->below - 1, &n);
		}
	}
	store_uidset_release(&u);
	if (rv == 0 && n > 0) {
		snprintf(detail, sizeof(detail), "%llu messages in '%.*s'",
		    (unsigned long long)n, store_plen(e->mailbox),
		    e->mailbox.p);
		rv = store_log_event(st, now_ms, account_id, job_id, "sync",
		    "expunged", detail);
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
		if (e->kind == EXPUNGE_PRESENT && e->below == 0) {
			return (store_out_fail(out, ERR_PROTO,
			    "expunged[%zu].below is missing", i));
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
