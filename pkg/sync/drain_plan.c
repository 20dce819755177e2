/*
 * drain_plan.c: the pure parts of the drain (docs/drain.md "Worker"):
 * what to send for a set of changes, and how to read what came back.
 *
 *   Flags.    A message's flag changes fold in order into one net add
 *             and one net remove; messages with the same net lists share
 *             one UID STORE per list. Lists are canonical (system flags in
 *             a fixed order, keywords sorted without case) so that equal
 *             changes compare equal as strings.
 *   Names.    Store names are UTF-8; commands carry them as quoted
 *             modified UTF-7 (RFC 3501 5.1.3).
 *   Searches. UID SEARCH HEADER Message-ID "<id>" for printable ASCII ids.
 *   Answers.  UID-set membership, and whether a NO is worth a retry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drain_int.h"
#include "mime/mime.h"

/* System flags in the order lists are written. */
static const struct {
	uint32_t bit;
	const char *name;
} flag_names[] = {
	{ PROTO_FLAG_SEEN, "\\Seen" },
	{ PROTO_FLAG_ANSWERED, "\\Answered" },
	{ PROTO_FLAG_FLAGGED, "\\Flagged" },
	{ PROTO_FLAG_DELETED, "\\Deleted" },
	{ PROTO_FLAG_DRAFT, "\\Draft" },
};

/* Command texts and flag lists are small; this bounds them all. */
#define PLAN_MAX_TEXT (1024u * 1024)

/* ATOM-CHAR (RFC 3501): no specials, controls, space or 8-bit. */
static bool
atom_char(unsigned char c)
{
	return (c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL);
}

/* A keyword: one word of a space-separated list (a view). */
struct kw {
	const char *p;
	size_t len;
};
struct kwset {
	struct kw *v;
	size_t n, cap;
};

/* Next word of s[*i..len) into *w; false at the end. */
static bool
next_word(const char *s, size_t len, size_t *i, struct kw *w)
{
	while (*i < len && s[*i] == ' ') {
		(*i)++;
	}
	if (*i >= len) {
		return (false);
	}
	w->p = s + *i;
	while (*i < len && s[*i] != ' ') {
		(*i)++;
	}
	w->len = (size_t)(s + *i - w->p);
	return (true);
}

static bool
kw_valid(const struct kw *w)
{
	size_t i;

	for (i = 0; i < w->len; i++) {
		if (!atom_char((unsigned char)w->p[i])) {
			return (false);
		}
	}
	return (w->len > 0);
}

static bool
kw_eq(const struct kw *a, const struct kw *b)
{
	return (a->len == b->len && strncasecmp(a->p, b->p, a->len) == 0);
}

static void
kwset_del(struct kwset *s, const struct kw *w)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (kw_eq(&s->v[i], w)) {
			s->v[i] = s->v[--s->n];
			return;
		}
	}
}

static int
kwset_add(struct kwset *s, const struct kw *w)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (kw_eq(&s->v[i], w)) {
			return (ERR_OK);
		}
	}
	if (s->n == s->cap) {
		size_t ncap = s->cap != 0 ? s->cap * 2 : 8;
		struct kw *p = realloc(s->v, ncap * sizeof(*p));

		if (p == NULL) {
			return (ERR_NOMEM);
		}
		s->v = p;
		s->cap = ncap;
	}
	s->v[s->n++] = *w;
	return (ERR_OK);
}

static int
kw_cmp(const void *a, const void *b)
{
	const struct kw *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = strncasecmp(x->p, y->p, n);

	if (c != 0) {
		return (c);
	}
	return (x->len < y->len ? -1 : x->len > y->len ? 1 : 0);
}

/* "(\\Seen kw ...)" of bits and a keyword set (sorted here). */
static int
render_list(uint32_t bits, struct kwset *kws, struct buf *out)
{
	size_t i, mark = out->len;
	bool first = true;
	int rv;

	if (kws->n > 1) {
		qsort(kws->v, kws->n, sizeof(*kws->v), kw_cmp);
	}
	rv = buf_addstr(out, "(");
	for (i = 0; rv == 0 && i < ARRAY_LEN(flag_names); i++) {
		if (bits & flag_names[i].bit) {
			rv = buf_printf(
			    out, "%s%s", first ? "" : " ", flag_names[i].name);
			first = false;
		}
	}
	for (i = 0; rv == 0 && i < kws->n; i++) {
		rv = buf_printf(out, "%s%.*s", first ? "" : " ",
		    (int)kws->v[i].len, kws->v[i].p);
		first = false;
	}
	if (rv == 0) {
		rv = buf_addstr(out, ")");
	}
	if (rv != 0) {
		out->len = mark;
		if (out->data != NULL) {
			out->data[mark] = '\0';
		}
	}
	return (rv);
}

/* Adds the words of s to add and takes them out of del. */
static int
fold_words(struct proto_str s, struct kwset *add, struct kwset *del)
{
	struct kw w;
	size_t i = 0;
	int rv;

	while (next_word(s.p, s.p != NULL ? s.len : 0, &i, &w)) {
		if (!kw_valid(&w)) {
			return (ERR_INVAL);
		}
		rv = kwset_add(add, &w);
		if (rv != 0) {
			return (rv);
		}
		kwset_del(del, &w);
	}
	return (ERR_OK);
}

int
drain_flag_list(uint32_t flags, struct proto_str keywords, struct buf *out)
{
	struct kwset kws = { NULL, 0, 0 }, none = { NULL, 0, 0 };
	int rv;

	rv = fold_words(keywords, &kws, &none);
	if (rv == 0) {
		rv = render_list(flags & PROTO_FLAG_ALL, &kws, out);
	}
	free(kws.v);
	return (rv);
}

/* Malloc'd list of bits and keywords, or NULL (and 0) when empty. */
static int
list_dup(uint32_t bits, struct kwset *kws, char **out_r)
{
	struct buf b;
	int rv;

	*out_r = NULL;
	if (bits == 0 && kws->n == 0) {
		return (ERR_OK);
	}
	buf_init(&b, PLAN_MAX_TEXT);
	rv = render_list(bits, kws, &b);
	if (rv == 0) {
		*out_r = b.data; /* taken */
		return (ERR_OK);
	}
	buf_release(&b);
	return (rv);
}

int
drain_fold_flags(const struct proto_change *const *chg, size_t n, char **add_r,
    char **remove_r)
{
	struct kwset kadd = { NULL, 0, 0 }, krem = { NULL, 0, 0 };
	uint32_t add = 0, rem = 0;
	size_t i;
	int rv = ERR_OK;

	*add_r = NULL;
	*remove_r = NULL;
	for (i = 0; rv == 0 && i < n; i++) {
		/* A later change wins: what it adds is no longer removed. */
		add = (add | chg[i]->flags_add) & ~chg[i]->flags_remove;
		rem = (rem | chg[i]->flags_remove) & ~chg[i]->flags_add;
		rv = fold_words(chg[i]->keywords_add, &kadd, &krem);
		if (rv == 0) {
			rv = fold_words(chg[i]->keywords_remove, &krem, &kadd);
		}
	}
	if (rv == 0) {
		rv = list_dup(add & PROTO_FLAG_ALL, &kadd, add_r);
	}
	if (rv == 0) {
		rv = list_dup(rem & PROTO_FLAG_ALL, &krem, remove_r);
	}
	if (rv != 0) {
		free(*add_r);
		*add_r = NULL;
	}
	free(kadd.v);
	free(krem.v);
	return (rv);
}

void
drain_texts_release(struct drain_texts *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->v[i]);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int
texts_push(struct drain_texts *t, char *s)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap != 0 ? t->cap * 2 : 8;
		char **p = realloc(t->v, ncap * sizeof(*p));

		if (p == NULL) {
			return (ERR_NOMEM);
		}
		t->v = p;
		t->cap = ncap;
	}
	t->v[t->n++] = s;
	return (ERR_OK);
}

static int
strcmp_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL) {
		return (a == NULL ? (b == NULL ? 0 : -1) : 1);
	}
	return (strcmp(a, b));
}

/* Sort key: the list (add or remove, per sort pass), then the UID. */
static int
by_add(const void *a, const void *b)
{
	const struct drain_flagmsg *x = a, *y = b;
	int c = strcmp_null(x->add, y->add);

	return (c != 0 ? c : x->uid < y->uid ? -1 : x->uid > y->uid);
}

static int
by_remove(const void *a, const void *b)
{
	const struct drain_flagmsg *x = a, *y = b;
	int c = strcmp_null(x->remove, y->remove);

	return (c != 0 ? c : x->uid < y->uid ? -1 : x->uid > y->uid);
}

/* One STORE per run of equal lists (per pass: add, then remove). */
static int
plan_pass(struct drain_flagmsg *m, size_t n, bool add, struct drain_texts *out)
{
	struct imap_uidset set;
	struct buf cmd;
	size_t i, j, k;
	int rv = ERR_OK;

	if (n > 1) {
		qsort(m, n, sizeof(*m), add ? by_add : by_remove);
	}
	for (i = 0; rv == 0 && i < n; i = j) {
		const char *list = add ? m[i].add : m[i].remove;

		for (j = i + 1; j < n
		     && strcmp_null(list, add ? m[j].add : m[j].remove) == 0;
		     j++) { }
		for (k = i; k < j; k++) {
			*(add ? &m[k].cmd_add : &m[k].cmd_remove)
			    = list != NULL ? out->n : SIZE_MAX;
		}
		if (list == NULL) {
			continue;
		}
		imap_uidset_init(&set, PLAN_MAX_TEXT);
		for (k = i; rv == 0 && k < j; k++) {
			rv = imap_uidset_add_range(&set, m[k].uid, m[k].uid);
		}
		if (rv == 0) {
			rv = imap_uidset_finish(&set);
		}
		buf_init(&cmd, PLAN_MAX_TEXT);
		if (rv == 0) {
			rv = buf_printf(&cmd, "UID STORE %s %cFLAGS.SILENT %s",
			    set.s.data, add ? '+' : '-', list);
		}
		imap_uidset_release(&set);
		if (rv == 0) {
			rv = texts_push(out, cmd.data); /* taken */
		}
		if (rv != 0) {
			buf_release(&cmd);
		}
	}
	return (rv);
}

int
drain_store_plan(struct drain_flagmsg *m, size_t n, struct drain_texts *out)
{
	int rv;

	rv = plan_pass(m, n, true, out);
	if (rv == 0) {
		rv = plan_pass(m, n, false, out);
	}
	return (rv);
}

int
drain_mailbox_arg(struct buf *out, struct proto_str name)
{
	char *enc = NULL;
	size_t i, mark = out->len;
	int rv;

	if (name.p == NULL || name.len == 0
	    || memchr(name.p, '\0', name.len) != NULL) {
		return (ERR_INVAL);
	}
	rv = imap_utf7_encode(name.p, name.len, &enc);
	if (rv != 0) {
		return (ERR_INVAL);
	}
	/* mUTF-7 is printable ASCII: a quoted string always fits. */
	rv = buf_addstr(out, "\"");
	for (i = 0; rv == 0 && enc[i] != '\0'; i++) {
		if (enc[i] == '"' || enc[i] == '\\') {
			rv = buf_addstr(out, "\\");
		}
		if (rv == 0) {
			rv = buf_add(out, &enc[i], 1);
		}
	}
	if (rv == 0) {
		rv = buf_addstr(out, "\"");
	}
	free(enc);
	if (rv != 0) {
		out->len = mark;
		if (out->data != NULL) {
			out->data[mark] = '\0';
		}
	}
	return (rv);
}

int
drain_search_msgid(struct buf *out, struct proto_str msgid)
{
	size_t i, mark = out->len;
	int rv;

	if (msgid.p == NULL || msgid.len == 0 || msgid.len > DRAIN_MAX_MSGID) {
		return (ERR_INVAL);
	}
	for (i = 0; i < msgid.len; i++) {
		if (msgid.p[i] < 0x20 || msgid.p[i] > 0x7e) {
			return (ERR_INVAL);
		}
	}
	rv = buf_addstr(out, "UID SEARCH HEADER Message-ID \"");
	for (i = 0; rv == 0 && i < msgid.len; i++) {
		if (msgid.p[i] == '"' || msgid.p[i] == '\\') {
			rv = buf_addstr(out, "\\");
		}
		if (rv == 0) {
			rv = buf_add(out, &msgid.p[i], 1);
		}
	}
	if (rv == 0) {
		rv = buf_addstr(out, "\"");
	}
	if (rv != 0) {
		out->len = mark;
		if (out->data != NULL) {
			out->data[mark] = '\0';
		}
	}
	return (rv);
}

/* Next "a" or "a:b" of s[*i..len) as [lo, hi]; false at the end or on
 * malformed text. */
static bool
set_next(const char *s, size_t len, size_t *i, uint32_t *lo, uint32_t *hi)
{
	uint64_t v[2] = { 0, 0 };
	size_t k, start;

	if (*i >= len) {
		return (false);
	}
	for (k = 0; k < 2; k++) {
		start = *i;
		while (*i < len && s[*i] >= '0' && s[*i] <= '9'
		    && v[k] <= UINT32_MAX) {
			v[k] = v[k] * 10 + (uint64_t)(s[*i] - '0');
			(*i)++;
		}
		if (*i == start || v[k] == 0 || v[k] > UINT32_MAX) {
			return (false);
		}
		if (k == 1 || *i >= len || s[*i] != ':') {
			break;
		}
		(*i)++;
	}
	if (k == 0) {
		v[1] = v[0];
	}
	if (*i < len && (s[(*i)++] != ',' || *i == len)) {
		return (false); /* junk, or a trailing comma */
	}
	*lo = (uint32_t)(v[0] < v[1] ? v[0] : v[1]);
	*hi = (uint32_t)(v[0] < v[1] ? v[1] : v[0]);
	return (true);
}

bool
drain_set_has(const char *s, size_t len, uint32_t uid)
{
	uint32_t lo, hi;
	size_t i = 0;

	while (set_next(s, len, &i, &lo, &hi)) {
		if (uid >= lo && uid <= hi) {
			return (true);
		}
	}
	return (false);
}

uint32_t
drain_set_max(const char *s, size_t len)
{
	uint32_t lo, hi, max = 0;
	size_t i = 0;

	while (set_next(s, len, &i, &lo, &hi)) {
		if (hi > max) {
			max = hi;
		}
	}
	return (i == len ? max : 0);
}

uint8_t
drain_no_outcome(const char *resp_text)
{
	/* RFC 5530 codes of a condition that passes by itself. */
	static const char *const passing[] = { "UNAVAILABLE", "INUSE",
		"SERVERBUG", "LIMIT", "EXPUNGEISSUED" };
	size_t i, n;

	if (resp_text == NULL || resp_text[0] != '[') {
		return (CHANGE_OUT_DEAD);
	}
	for (i = 0; i < ARRAY_LEN(passing); i++) {
		n = strlen(passing[i]);
		if (strncasecmp(resp_text + 1, passing[i], n) == 0
		    && (resp_text[1 + n] == ']' || resp_text[1 + n] == ' ')) {
			return (CHANGE_OUT_RETRY);
		}
	}
	return (CHANGE_OUT_DEAD);
}

void
drain_text(char *dst, size_t n, const char *fmt, ...)
{
	struct buf b;
	va_list ap;
	char raw[SYNC_MAX_ERROR];
	size_t i, len;

	if (n == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	for (i = 0; raw[i] != '\0'; i++) {
		if ((unsigned char)raw[i] < 0x20 || raw[i] == 0x7f) {
			raw[i] = ' ';
		}
	}
	buf_init(&b, 4 * sizeof(raw));
	if (mime_utf8_append_fffd(&b, raw, i) != 0 || b.data == NULL) {
		snprintf(dst, n, "(unreadable error text)");
		buf_release(&b);
		return;
	}
	/* Cut to n - 1 bytes at a character boundary. */
	len = b.len < n - 1 ? b.len : n - 1;
	while (len > 0 && len < b.len
	    && ((unsigned char)b.data[len] & 0xC0) == 0x80) {
		len--;
	}
	memcpy(dst, b.data, len);
	dst[len] = '\0';
	buf_release(&b);
}
