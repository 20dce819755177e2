/*
 * uidplus.c: the response codes of UIDPLUS (RFC 4315) that tell a client
 * where its messages landed:
 *
 *   [APPENDUID uidvalidity uid-set]          tagged OK of APPEND
 *   [COPYUID uidvalidity src-set dst-set]    tagged OK of UID COPY, or
 *                                            an untagged OK ahead of the
 *                                            expunges of UID MOVE (RFC 6851)
 *
 * The sets stay views into the response. The n-th UID of the source set
 * became the n-th UID of the destination set, counting each range from
 * its lower end ("4:2" is 2, 3, 4, RFC 3501 section 9) and the ranges in
 * the order written. Sets whose sizes differ are not trusted.
 */
#include <string.h>

#include "imap/imap.h"

/* One range of a uid-set: s[*i..n) starts with "a" or "a:b"; advances
 * *i past it and its comma. No "*": these sets name real UIDs. */
static int
set_range(const char *s, size_t n, size_t *i, uint32_t *lo_r, uint32_t *hi_r)
{
	uint64_t v[2] = { 0, 0 };
	size_t k, start;

	for (k = 0; k < 2; k++) {
		start = *i;
		while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
			v[k] = v[k] * 10 + (uint64_t)(s[*i] - '0');
			if (v[k] > UINT32_MAX) {
				return (ERR_PROTO);
			}
			(*i)++;
		}
		if (*i == start || v[k] == 0) {
			return (ERR_PROTO);
		}
		if (k == 0) {
			if (*i < n && s[*i] == ':') {
				(*i)++;
				continue;
			}
			v[1] = v[0];
			break;
		}
	}
	if (*i < n) {
		if (s[*i] != ',' || *i + 1 == n) {
			return (ERR_PROTO);
		}
		(*i)++;
	}
	*lo_r = (uint32_t)(v[0] < v[1] ? v[0] : v[1]);
	*hi_r = (uint32_t)(v[0] < v[1] ? v[1] : v[0]);
	return (ERR_OK);
}

/* Number of UIDs in the set; ERR_PROTO when malformed or empty. */
static int
set_count(const char *s, size_t n, uint64_t *count_r)
{
	uint32_t lo, hi;
	size_t i = 0;
	int rv;

	*count_r = 0;
	if (n == 0) {
		return (ERR_PROTO);
	}
	while (i < n) {
		rv = set_range(s, n, &i, &lo, &hi);
		if (rv != 0) {
			return (rv);
		}
		*count_r += (uint64_t)(hi - lo) + 1;
	}
	return (ERR_OK);
}

/* The code's atom arguments: uidvalidity then up to two sets. */
static int
code_args(const struct imap_resp *r, const char *code, size_t nsets,
    uint32_t *uidvalidity_r, const struct imap_tok **sets)
{
	const struct imap_tok *t;
	size_t k;

	if (r->code == NULL || r->code_len != strlen(code)
	    || strcmp(r->code, code) != 0) {
		return (ERR_NOTFOUND);
	}
	t = r->code_args;
	if (t == NULL || t->type != IMAP_TOK_ATOM
	    || imap_tok_u32(t, uidvalidity_r) != 0 || *uidvalidity_r == 0) {
		return (ERR_PROTO);
	}
	for (k = 0; k < nsets; k++) {
		t = t->next;
		if (t == NULL || t->type != IMAP_TOK_ATOM || t->len == 0) {
			return (ERR_PROTO);
		}
		sets[k] = t;
	}
	return (t->next == NULL ? ERR_OK : ERR_PROTO);
}

int
imap_appenduid_parse(
    const struct imap_resp *r, uint32_t *uidvalidity_r, uint32_t *uid_r)
{
	const struct imap_tok *set;
	uint64_t count;
	uint32_t lo, hi;
	size_t i = 0;
	int rv;

	*uidvalidity_r = 0;
	*uid_r = 0;
	if (r->status != IMAP_ST_OK) {
		return (ERR_NOTFOUND);
	}
	rv = code_args(r, "APPENDUID", 1, uidvalidity_r, &set);
	if (rv == 0) {
		rv = set_count(set->s, set->len, &count);
	}
	if (rv == 0 && count != 1) {
		rv = ERR_PROTO; /* one message appended, one UID */
	}
	if (rv == 0) {
		rv = set_range(set->s, set->len, &i, &lo, &hi);
	}
	if (rv != 0) {
		*uidvalidity_r = 0;
		return (rv);
	}
	*uid_r = lo;
	return (ERR_OK);
}

int
imap_copyuid_parse(const struct imap_resp *r, struct imap_copyuid *c)
{
	const struct imap_tok *sets[2];
	uint64_t nsrc, ndst;
	int rv;

	memset(c, 0, sizeof(*c));
	if (r->status != IMAP_ST_OK) {
		return (ERR_NOTFOUND);
	}
	rv = code_args(r, "COPYUID", 2, &c->uidvalidity, sets);
	if (rv == 0) {
		rv = set_count(sets[0]->s, sets[0]->len, &nsrc);
	}
	if (rv == 0) {
		rv = set_count(sets[1]->s, sets[1]->len, &ndst);
	}
	if (rv == 0 && nsrc != ndst) {
		rv = ERR_PROTO;
	}
	if (rv != 0) {
		memset(c, 0, sizeof(*c));
		return (rv);
	}
	c->src = sets[0]->s;
	c->src_len = sets[0]->len;
	c->dst = sets[1]->s;
	c->dst_len = sets[1]->len;
	c->count = nsrc;
	return (ERR_OK);
}

int
imap_copyuid_lookup(
    const struct imap_copyuid *c, uint32_t src_uid, uint32_t *dst_uid_r)
{
	uint64_t k = 0;
	uint32_t lo, hi;
	size_t i = 0;
	bool found = false;
	int rv;

	*dst_uid_r = 0;
	while (!found && i < c->src_len) {
		rv = set_range(c->src, c->src_len, &i, &lo, &hi);
		if (rv != 0) {
			return (rv);
		}
		if (src_uid >= lo && src_uid <= hi) {
			k += src_uid - lo;
			found = true;
		} else {
			k += (uint64_t)(hi - lo) + 1;
		}
	}
	if (!found) {
		return (ERR_NOTFOUND);
	}
	i = 0;
	while (i < c->dst_len) {
		rv = set_range(c->dst, c->dst_len, &i, &lo, &hi);
		if (rv != 0) {
			return (rv);
		}
		if (k <= (uint64_t)(hi - lo)) {
			*dst_uid_r = lo + (uint32_t)k;
			return (ERR_OK);
		}
		k -= (uint64_t)(hi - lo) + 1;
	}
	return (ERR_PROTO);
}
