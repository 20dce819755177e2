/*
 * status.c: the responses a delta sync reads besides FETCH.
 *
 *   STATUS    "* STATUS name (UIDVALIDITY n UIDNEXT n ...)" -> counters
 *   SEARCH    "* SEARCH 1 2 3" and ESEARCH "* ESEARCH (TAG "x") UID ALL
 *             1:3,5" -> a UID set
 *   VANISHED  "* VANISHED (EARLIER) 1:3,5" (QRESYNC) -> the set text
 *
 * and a bounded builder of compact UID sets ("1:4,9"): UIDs are added in
 * ascending order (servers answer SEARCH that way); an out-of-order UID
 * marks the set unordered so that the caller can refuse to trust it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"

void
imap_uidset_init(struct imap_uidset *u, size_t max)
{
	memset(u, 0, sizeof(*u));
	buf_init(&u->s, max);
}

void
imap_uidset_release(struct imap_uidset *u)
{
	buf_release(&u->s);
	memset(u, 0, sizeof(*u));
}

static int
uidset_emit(struct imap_uidset *u)
{
	const char *sep = u->s.len > 0 ? "," : "";

	if (!u->open) {
		return (ERR_OK);
	}
	u->open = false;
	if (u->lo == u->hi) {
		return (buf_printf(&u->s, "%s%u", sep, u->lo));
	}
	return (buf_printf(&u->s, "%s%u:%u", sep, u->lo, u->hi));
}

int
imap_uidset_add_range(struct imap_uidset *u, uint32_t lo, uint32_t hi)
{
	int rv;

	if (lo == 0 || hi < lo) {
		return (ERR_PROTO);
	}
	if (u->count > 0 && lo <= u->hi) {
		u->unordered = true; /* not ascending: do not trust the set */
		return (ERR_OK);
	}
	u->count += (uint64_t)(hi - lo) + 1;
	if (u->open && lo == u->hi + 1) {
		u->hi = hi;
		return (ERR_OK);
	}
	rv = uidset_emit(u);
	if (rv != 0) {
		return (rv);
	}
	u->open = true;
	u->lo = lo;
	u->hi = hi;
	return (ERR_OK);
}

int
imap_uidset_finish(struct imap_uidset *u)
{
	return (uidset_emit(u));
}

/* Parses one decimal u32 from s[*i..n); advances *i. */
static int
set_num(const char *s, size_t n, size_t *i, uint32_t *v_r)
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
imap_uidset_add_set(struct imap_uidset *u, const char *s, size_t n)
{
	uint32_t a, b;
	size_t i = 0;
	int rv;

	while (i < n) {
		rv = set_num(s, n, &i, &a);
		if (rv != 0) {
			return (rv);
		}
		b = a;
		if (i < n && s[i] == ':') {
			i++;
			rv = set_num(s, n, &i, &b);
			if (rv != 0) {
				return (rv);
			}
		}
		rv = imap_uidset_add_range(u, a < b ? a : b, a < b ? b : a);
		if (rv != 0) {
			return (rv);
		}
		if (i < n) {
			if (s[i] != ',' || i + 1 == n) {
				return (ERR_PROTO);
			}
			i++;
		}
	}
	return (ERR_OK);
}

static bool
name_is(const struct imap_resp *r, const char *name)
{
	return (r->status == IMAP_ST_NONE && r->name != NULL &&
	    strcmp(r->name, name) == 0);
}

int
imap_status_parse(const struct imap_resp *r, char **name_r,
    struct imap_mbox_status *st)
{
	const struct imap_tok *t, *k;
	uint64_t v;
	int rv;

	*name_r = NULL;
	memset(st, 0, sizeof(*st));
	if (!name_is(r, "STATUS")) {
		return (ERR_INVAL);
	}
	t = r->args;
	if (t == NULL || !imap_tok_is_str(t) || t->next == NULL ||
	    t->next->type != IMAP_TOK_LIST) {
		return (ERR_PROTO);
	}
	for (k = t->next->child; k != NULL && k->next != NULL;
	     k = k->next->next) {
		if (imap_tok_u64(k->next, &v) != 0) {
			return (ERR_PROTO);
		}
		if (imap_tok_is(k, "UIDVALIDITY") && v <= UINT32_MAX) {
			st->has_uidvalidity = true;
			st->uidvalidity = (uint32_t)v;
		} else if (imap_tok_is(k, "UIDNEXT") && v <= UINT32_MAX) {
			st->has_uidnext = true;
			st->uidnext = (uint32_t)v;
		} else if (imap_tok_is(k, "MESSAGES") && v <= UINT32_MAX) {
			st->has_messages = true;
			st->messages = (uint32_t)v;
		} else if (imap_tok_is(k, "HIGHESTMODSEQ")) {
			st->has_highestmodseq = true;
			st->highestmodseq = v;
		}
	}
	rv = imap_utf7_decode(t->s, t->len, name_r);
	if (rv != 0) {
		/* Not valid mUTF-7: keep the bytes, as LIST does. */
		*name_r = xstrndup(t->s, t->len);
		if (*name_r == NULL) {
			return (ERR_NOMEM);
		}
	}
	return (ERR_OK);
}

int
imap_search_collect(const struct imap_resp *r, struct imap_uidset *u)
{
	const struct imap_tok *t;
	uint32_t v;
	int rv;

	if (name_is(r, "SEARCH")) {
		for (t = r->args; t != NULL; t = t->next) {
			/* "(MODSEQ n)" may end a CONDSTORE SEARCH. */
			if (t->type == IMAP_TOK_LIST) {
				continue;
			}
			if (imap_tok_u32(t, &v) != 0 || v == 0) {
				return (ERR_PROTO);
			}
			rv = imap_uidset_add_range(u, v, v);
			if (rv != 0) {
				return (rv);
			}
		}
		return (1);
	}
	if (name_is(r, "ESEARCH")) {
		for (t = r->args; t != NULL; t = t->next) {
			if (imap_tok_is(t, "ALL") && t->next != NULL &&
			    t->next->type == IMAP_TOK_ATOM) {
				rv = imap_uidset_add_set(u, t->next->s,
				    t->next->len);
				if (rv != 0) {
					return (rv);
				}
				t = t->next;
			}
		}
		return (1);
	}
	return (0);
}

int
imap_vanished_parse(const struct imap_resp *r, bool *earlier_r,
    const char **set_r, size_t *len_r)
{
	const struct imap_tok *t;

	if (!name_is(r, "VANISHED")) {
		return (ERR_INVAL);
	}
	t = r->args;
	*earlier_r = false;
	if (t != NULL && t->type == IMAP_TOK_LIST) {
		*earlier_r = t->child != NULL && imap_tok_is(t->child, "EARLIER");
		t = t->next;
	}
	if (t == NULL || t->type != IMAP_TOK_ATOM || t->len == 0) {
		return (ERR_PROTO);
	}
	*set_r = t->s;
	*len_r = t->len;
	return (ERR_OK);
}
