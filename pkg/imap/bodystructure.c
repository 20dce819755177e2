/*
 * bodystructure.c: a FETCH BODYSTRUCTURE (RFC 3501 7.4.2) to the list of a
 * message's attachments (struct imap_attachment), and so to
 * has_attachments, which is simply "the list is not empty".
 *
 * Part numbers follow RFC 3501 6.4.5: the children of a multipart are
 * 1, 2, 3..., those of a nested multipart "1.2"; a non-multipart
 * top-level body is part "1". A message/rfc822 (or message/global) part
 * is one attachment; the parts inside it are not walked.
 *
 * What counts as an attachment:
 *   - a message/rfc822 or message/global part;
 *   - a part whose Content-Disposition is "attachment";
 *   - a part with a non-empty name (Content-Type name or disposition
 *     filename, plain or RFC 2231), unless it is text/plain or text/html
 *     without a disposition or with disposition "inline" (a body shown in
 *     line that happens to have a name).
 *
 * Filenames come from the disposition's filename parameter, else the
 * Content-Type's name parameter; for each, an RFC 2231 "key*" value wins
 * over continuations "key*0", "key*1*"... (joined in order), which win
 * over a plain "key" (whose RFC 2047 encoded-words are decoded). Every
 * string is clean UTF-8 (control characters become spaces) and at most
 * IMAP_MAX_ATTACHMENT_STR bytes. Odd server forms (missing extension
 * data, NIL in any place) give fewer details, never an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "mime/mime.h"

/* BODYSTRUCTURE nesting we follow (the parser bounds it too). */
#define BS_MAX_DEPTH 64
/* A part number: BS_MAX_DEPTH levels of at most 10 digits and a dot. */
#define BS_MAX_PART (BS_MAX_DEPTH * 11 + 16)
/* RFC 2231 continuation segments we join; later ones are ignored. */
#define BS_MAX_SEGMENTS 64
/* Longest type or subtype kept in mime_type; longest disposition. */
#define BS_MAX_TYPE 127
#define BS_MAX_DISPOSITION 64

struct bs_walk {
	struct imap_fetch *f;
	size_t cap; /* allocated entries of f->attachments */
	char part[BS_MAX_PART];
};

static void
att_release(struct imap_attachment *a)
{
	free(a->part);
	free(a->filename);
	free(a->mime_type);
	free(a->disposition);
	free(a->content_id);
	memset(a, 0, sizeof(*a));
}

void
imapi_attachments_free(struct imap_fetch *f)
{
	size_t i;

	for (i = 0; i < f->nattachments; i++) {
		att_release(&f->attachments[i]);
	}
	free(f->attachments);
	f->attachments = NULL;
	f->nattachments = 0;
	f->has_attachments = false;
}

/* Nth element of a list token, or NULL. */
static const struct imap_tok *
bs_nth(const struct imap_tok *list, size_t n)
{
	const struct imap_tok *t;

	if (list == NULL || list->type != IMAP_TOK_LIST) {
		return (NULL);
	}
	for (t = list->child; t != NULL && n > 0; t = t->next) {
		n--;
	}
	return (t);
}

/* Cuts s to at most max bytes at a UTF-8 character boundary. */
static void
clip_utf8(char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max) {
		return;
	}
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
		n--;
	}
	s[n] = '\0';
}

/* Control characters (C0, DEL) become spaces; ASCII optionally lowered. */
static void
clean_in_place(char *s, bool lower)
{
	unsigned char *p;

	for (p = (unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			*p = ' ';
		} else if (lower && *p >= 'A' && *p <= 'Z') {
			*p = (unsigned char)(*p - 'A' + 'a');
		}
	}
}

/*
 * Appends raw token bytes (at most max of them) to b as clean UTF-8:
 * bytes that are not UTF-8 are read as ISO-8859-1.
 */
static int
add_raw(struct buf *b, const struct imap_tok *t, size_t max)
{
	return (mime_utf8_append_latin1(b, t->s, t->len < max ? t->len : max));
}

/*
 * A raw string token to a malloc'd clean string (*out_r) of at most max
 * bytes: cut at a character boundary, or, with drop_long, left out when
 * longer. Empty values and non-strings give NULL. 0 or ERR_NOMEM.
 */
static int
tok_dup(const struct imap_tok *t, size_t max, bool lower, bool drop_long,
    char **out_r)
{
	struct buf b;
	int rv;

	*out_r = NULL;
	if (!imap_tok_is_str(t) || t->len == 0
	    || (drop_long && t->len > 4 * max)) {
		return (ERR_OK);
	}
	buf_init(&b, 8 * max + 16);
	rv = add_raw(&b, t, 4 * max);
	if (rv != 0) {
		buf_release(&b);
		return (rv == ERR_TOOBIG ? ERR_OK : rv);
	}
	clean_in_place(b.data, lower);
	if (drop_long && b.len > max) {
		buf_release(&b);
		return (ERR_OK);
	}
	clip_utf8(b.data, max);
	*out_r = b.data;
	return (ERR_OK);
}

/* The RFC 2231 segments of one parameter found in a parameter list. */
struct bs_param {
	const struct imap_tok *plain; /* key */
	const struct imap_tok *ext;   /* key* */
	const struct imap_tok *seg[BS_MAX_SEGMENTS]; /* key*N and key*N* */
	bool enc[BS_MAX_SEGMENTS];		      /* key*N* */
};

/* Sorts one (key value) pair into p when key names the parameter. */
static void
param_sort(struct bs_param *p, const char *name, const struct imap_tok *k,
    const struct imap_tok *v)
{
	size_t n = strlen(name), i;
	unsigned idx = 0;
	bool enc;

	if (k->len < n || strncasecmp(k->s, name, n) != 0) {
		return;
	}
	if (k->len == n) {
		if (p->plain == NULL) {
			p->plain = v;
		}
		return;
	}
	if (k->s[n] != '*') {
		return;
	}
	if (k->len == n + 1) {
		if (p->ext == NULL) {
			p->ext = v;
		}
		return;
	}
	for (i = n + 1; i < k->len && i < n + 4 && k->s[i] >= '0'
	     && k->s[i] <= '9'; i++) {
		idx = idx * 10 + (unsigned)(k->s[i] - '0');
	}
	if (i == n + 1) {
		return; /* no digits */
	}
	if (i == k->len) {
		enc = false;
	} else if (i + 1 == k->len && k->s[i] == '*') {
		enc = true;
	} else {
		return;
	}
	if (idx < BS_MAX_SEGMENTS && p->seg[idx] == NULL) {
		p->seg[idx] = v;
		p->enc[idx] = enc;
	}
}

/* Joins continuation segments 0, 1, ... (up to the first gap) into one
 * value and decodes it into *out_r. */
static int
param_join(const struct bs_param *p, char **out_r)
{
	const struct imap_tok *s;
	struct buf b;
	bool any_enc = false;
	size_t i, j, nseg, quotes = 0;
	int rv = 0;

	for (nseg = 0; nseg < BS_MAX_SEGMENTS && p->seg[nseg] != NULL;
	     nseg++) {
		any_enc = any_enc || p->enc[nseg];
	}
	buf_init(&b, MIME_MAX_HEADER);
	rv = buf_add(&b, "", 0);
	if (any_enc) {
		s = p->seg[0];
		for (j = 0; p->enc[0] && j < s->len; j++) {
			quotes += s->s[j] == '\'';
		}
		/* No charset'lang' prefix of our own: mark it empty. */
		if (rv == 0 && quotes < 2) {
			rv = buf_add(&b, "''", 2);
		}
	}
	for (i = 0; rv == 0 && i < nseg; i++) {
		s = p->seg[i];
		if (!any_enc || p->enc[i]) {
			rv = buf_add(&b, s->s, s->len);
			continue;
		}
		/* A plain segment among encoded ones: keep its '%' literal. */
		for (j = 0; rv == 0 && j < s->len; j++) {
			rv = s->s[j] == '%' ? buf_add(&b, "%25", 3)
					    : buf_add(&b, &s->s[j], 1);
		}
	}
	if (rv == ERR_TOOBIG) {
		rv = 0; /* keep what fitted */
	}
	if (rv == 0) {
		rv = any_enc ? mime_decode_param2231(b.data, b.len, out_r)
			     : mime_decode_header(b.data, b.len, out_r);
	}
	buf_release(&b);
	return (rv);
}

/*
 * The decoded value of parameter name in a (key value ...) list, as
 * malloc'd clean UTF-8 (*out_r), or NULL when absent or empty. 0 or
 * ERR_NOMEM; a value too odd to decode is left out.
 */
static int
param_value(const struct imap_tok *params, const char *name, char **out_r)
{
	const struct imap_tok *k, *v;
	struct bs_param p;
	int rv = 0;

	*out_r = NULL;
	if (params == NULL || params->type != IMAP_TOK_LIST) {
		return (ERR_OK);
	}
	memset(&p, 0, sizeof(p));
	for (k = params->child; k != NULL && k->next != NULL; k = v->next) {
		v = k->next;
		if (imap_tok_is_str(k) && imap_tok_is_str(v) && v->len > 0) {
			param_sort(&p, name, k, v);
		}
	}
	if (p.ext != NULL) {
		rv = mime_decode_param2231(p.ext->s,
		    p.ext->len < MIME_MAX_HEADER ? p.ext->len : MIME_MAX_HEADER,
		    out_r);
	} else if (p.seg[0] != NULL) {
		rv = param_join(&p, out_r);
	} else if (p.plain != NULL) {
		rv = mime_decode_header(p.plain->s,
		    p.plain->len < MIME_MAX_HEADER ? p.plain->len
						   : MIME_MAX_HEADER,
		    out_r);
	}
	if (rv != 0) {
		*out_r = NULL;
		return (rv == ERR_NOMEM ? rv : ERR_OK);
	}
	if (*out_r != NULL) {
		clean_in_place(*out_r, false);
		clip_utf8(*out_r, IMAP_MAX_ATTACHMENT_STR);
		if ((*out_r)[0] == '\0') {
			free(*out_r);
			*out_r = NULL;
		}
	}
	return (ERR_OK);
}

/* True if a (key value) list has a non-empty key, key* or key*N[*]. */
static bool
param_has(const struct imap_tok *params, const char *name)
{
	const struct imap_tok *k, *v;
	struct bs_param p;
	size_t i;

	if (params == NULL || params->type != IMAP_TOK_LIST) {
		return (false);
	}
	memset(&p, 0, sizeof(p));
	for (k = params->child; k != NULL && k->next != NULL; k = v->next) {
		v = k->next;
		if (imap_tok_is_str(k) && imap_tok_is_str(v) && v->len > 0) {
			param_sort(&p, name, k, v);
		}
	}
	for (i = 0; i < BS_MAX_SEGMENTS && p.seg[i] == NULL; i++) { }
	return (p.plain != NULL || p.ext != NULL || i < BS_MAX_SEGMENTS);
}

/* Finds the ("disposition" (params)) list among extension data. */
static const struct imap_tok *
find_disposition(const struct imap_tok *part)
{
	const struct imap_tok *t = bs_nth(part, 7);

	for (; t != NULL; t = t->next) {
		if (t->type == IMAP_TOK_LIST && t->nchild == 2
		    && imap_tok_is_str(t->child)
		    && (t->child->next->type == IMAP_TOK_LIST
		        || t->child->next->type == IMAP_TOK_NIL)) {
			return (t);
		}
	}
	return (NULL);
}

/* "type/subtype", lower-case, each half cut at BS_MAX_TYPE bytes. */
static int
mime_type_dup(const struct imap_tok *type, const struct imap_tok *sub,
    char **out_r)
{
	struct buf b;
	int rv;

	*out_r = NULL;
	buf_init(&b, 8 * BS_MAX_TYPE + 16);
	rv = add_raw(&b, type, BS_MAX_TYPE);
	if (rv == 0) {
		clip_utf8(b.data, BS_MAX_TYPE);
		b.len = strlen(b.data);
		rv = buf_add(&b, "/", 1);
	}
	if (rv == 0) {
		rv = add_raw(&b, sub, BS_MAX_TYPE);
	}
	if (rv != 0) {
		buf_release(&b);
		return (rv);
	}
	clean_in_place(b.data, true);
	clip_utf8(b.data, 2 * BS_MAX_TYPE + 1);
	*out_r = b.data;
	return (ERR_OK);
}

/* Appends an entry for the single part b (type, sub known) at w->part. */
static int
add_attachment(struct bs_walk *w, const struct imap_tok *b,
    const struct imap_tok *type, const struct imap_tok *sub,
    const struct imap_tok *disp)
{
	struct imap_fetch *f = w->f;
	struct imap_attachment a;
	int rv;

	if (f->nattachments >= IMAP_MAX_ATTACHMENTS) {
		return (ERR_OK); /* listed enough */
	}
	if (f->nattachments == w->cap) {
		size_t ncap = w->cap != 0 ? w->cap * 2 : 4;
		struct imap_attachment *p;

		if (ncap > IMAP_MAX_ATTACHMENTS) {
			ncap = IMAP_MAX_ATTACHMENTS;
		}
		p = realloc(f->attachments, ncap * sizeof(*p));
		if (p == NULL) {
			return (ERR_NOMEM);
		}
		f->attachments = p;
		w->cap = ncap;
	}
	memset(&a, 0, sizeof(a));
	a.part = xstrdup(w->part[0] != '\0' ? w->part : "1");
	rv = a.part != NULL ? ERR_OK : ERR_NOMEM;
	if (rv == 0) {
		rv = mime_type_dup(type, sub, &a.mime_type);
	}
	if (rv == 0 && imap_tok_u64(bs_nth(b, 6), &a.size) == 0
	    && a.size > INT64_MAX) {
		a.size = 0; /* absurd: unknown */
	}
	if (rv == 0 && disp != NULL) {
		rv = tok_dup(disp->child, BS_MAX_DISPOSITION, true, false,
		    &a.disposition);
	}
	if (rv == 0) {
		rv = tok_dup(bs_nth(b, 3), IMAP_MAX_ATTACHMENT_STR, false, true,
		    &a.content_id);
	}
	if (rv == 0 && disp != NULL) {
		rv = param_value(disp->child->next, "filename", &a.filename);
	}
	if (rv == 0 && a.filename == NULL) {
		rv = param_value(sub->next, "name", &a.filename);
	}
	if (rv != 0) {
		att_release(&a);
		return (rv);
	}
	f->attachments[f->nattachments++] = a;
	return (ERR_OK);
}

/* Sets w->part to prefix (plen bytes, kept) + ".n" (or "n" at the top);
 * returns the new length. */
static size_t
part_child(struct bs_walk *w, size_t plen, size_t n)
{
	int k;

	k = snprintf(w->part + plen, sizeof(w->part) - plen, "%s%zu",
	    plen > 0 ? "." : "", n);
	if (k < 0 || (size_t)k >= sizeof(w->part) - plen) {
		/* Cannot happen within BS_MAX_DEPTH; stay well-formed. */
		w->part[plen] = '\0';
		return (plen);
	}
	return (plen + (size_t)k);
}

static int
body_walk(struct bs_walk *w, const struct imap_tok *b, unsigned depth,
    size_t plen)
{
	const struct imap_tok *type, *sub, *disp, *c;
	bool named, inline_text;
	size_t n, clen;
	int rv;

	if (depth > BS_MAX_DEPTH || b == NULL || b->type != IMAP_TOK_LIST
	    || b->child == NULL) {
		return (ERR_OK);
	}
	if (b->child->type == IMAP_TOK_LIST) {
		n = 0;
		for (c = b->child; c != NULL && c->type == IMAP_TOK_LIST;
		     c = c->next) {
			if (w->f->nattachments >= IMAP_MAX_ATTACHMENTS) {
				break;
			}
			clen = part_child(w, plen, ++n);
			rv = body_walk(w, c, depth + 1, clen);
			w->part[plen] = '\0';
			if (rv != 0) {
				return (rv);
			}
		}
		return (ERR_OK);
	}
	type = b->child;
	sub = type->next;
	if (!imap_tok_is_str(type) || !imap_tok_is_str(sub)) {
		return (ERR_OK); /* too odd to judge */
	}
	disp = find_disposition(b);
	if (imap_tok_is(type, "message")
	    && (imap_tok_is(sub, "rfc822") || imap_tok_is(sub, "global"))) {
		return (add_attachment(w, b, type, sub, disp));
	}
	if (disp != NULL && imap_tok_is(disp->child, "attachment")) {
		return (add_attachment(w, b, type, sub, disp));
	}
	named = param_has(sub->next, "name")
	    || (disp != NULL && param_has(disp->child->next, "filename"));
	inline_text = imap_tok_is(type, "text")
	    && (imap_tok_is(sub, "plain") || imap_tok_is(sub, "html"))
	    && (disp == NULL || imap_tok_is(disp->child, "inline"));
	if (named && !inline_text) {
		return (add_attachment(w, b, type, sub, disp));
	}
	return (ERR_OK);
}

int
imapi_bodystructure(const struct imap_tok *v, struct imap_fetch *f)
{
	struct bs_walk w;
	int rv;

	imapi_attachments_free(f);
	memset(&w, 0, sizeof(w));
	w.f = f;
	rv = body_walk(&w, v, 0, 0);
	if (rv != 0) {
		imapi_attachments_free(f);
		return (rv);
	}
	f->has_attachments = f->nattachments > 0;
	return (ERR_OK);
}
