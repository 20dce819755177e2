/*
 * fetch.c: one "* n FETCH (...)" response to struct imap_fetch.
 *
 * Known items (UID, FLAGS, MODSEQ, INTERNALDATE, RFC822.SIZE, ENVELOPE,
 * BODYSTRUCTURE) are decoded; anything else, BODY[...] sections included,
 * is skipped (its value is one token, maybe a list or a literal). Header
 * text goes through pkg/mime for RFC 2047 words and dates. BODYSTRUCTURE
 * becomes the list of attachments (bodystructure.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "mime/mime.h"

/* Longest formatted address list we keep; more addresses become "...". */
#define FETCH_MAX_ADDRS (64u * 1024)

static const struct {
	const char *name;
	uint32_t bit;
} fetch_flag_bits[] = {
	{ "\\Seen", IMAP_FLAG_SEEN },
	{ "\\Answered", IMAP_FLAG_ANSWERED },
	{ "\\Flagged", IMAP_FLAG_FLAGGED },
	{ "\\Deleted", IMAP_FLAG_DELETED },
	{ "\\Draft", IMAP_FLAG_DRAFT },
};

void
imap_fetch_release(struct imap_fetch *f)
{
	if (f == NULL) {
		return;
	}
	free(f->keywords);
	free(f->subject);
	free(f->from);
	free(f->to);
	free(f->cc);
	free(f->message_id);
	imapi_attachments_free(f);
	memset(f, 0, sizeof(*f));
}

/* Nth element of a list token, or NULL. */
static const struct imap_tok *
nth(const struct imap_tok *list, size_t n)
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

/* Decodes an nstring header value into malloc'd UTF-8; NIL gives NULL. */
static int
decode_nstring(const struct imap_tok *t, char **out_r)
{
	size_t len;
	int rv;

	*out_r = NULL;
	if (t == NULL || t->type == IMAP_TOK_NIL) {
		return (0);
	}
	if (!imap_tok_is_str(t)) {
		return (ERR_PROTO);
	}
	len = t->len < MIME_MAX_HEADER ? t->len : MIME_MAX_HEADER;
	rv = mime_decode_header(t->s, len, out_r);
	if (rv != 0) {
		*out_r = NULL;
	}
	return (rv);
}

static int
parse_flags(const struct imap_tok *v, struct imap_fetch *f)
{
	const struct imap_tok *t;
	struct buf kw;
	size_t i;
	bool known;
	int rv = 0;

	if (v->type != IMAP_TOK_LIST) {
		return (ERR_PROTO);
	}
	buf_init(&kw, SIZE_MAX / 2);
	f->flags = 0;
	for (t = v->child; t != NULL; t = t->next) {
		if (t->type != IMAP_TOK_ATOM) {
			rv = ERR_PROTO;
			goto out;
		}
		known = false;
		for (i = 0; i < ARRAY_LEN(fetch_flag_bits); i++) {
			if (imap_tok_is(t, fetch_flag_bits[i].name)) {
				f->flags |= fetch_flag_bits[i].bit;
				known = true;
			}
		}
		if (known || imap_tok_is(t, "\\Recent")) {
			continue;
		}
		if (kw.len > 0) {
			rv = buf_add(&kw, " ", 1);
		}
		if (rv == 0) {
			rv = buf_add(&kw, t->s, t->len);
		}
		if (rv != 0) {
			goto out;
		}
	}
	free(f->keywords);
	f->keywords = kw.len > 0 ? kw.data : NULL;
	if (f->keywords != NULL) {
		buf_init(&kw, 0);
	}
	f->has_flags = true;
out:
	buf_release(&kw);
	return (rv);
}

/* True if a display name needs quoting inside an address list. */
static bool
needs_quotes(const char *s)
{
	return (strpbrk(s, ",;:<>@\"()[]\\") != NULL);
}

static int
add_display_name(struct buf *b, const char *name)
{
	const char *p;
	int rv;

	if (!needs_quotes(name)) {
		return (buf_addstr(b, name));
	}
	rv = buf_add(b, "\"", 1);
	for (p = name; rv == 0 && *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			rv = buf_add(b, "\\", 1);
		}
		if (rv == 0) {
			rv = buf_add(b, p, 1);
		}
	}
	if (rv == 0) {
		rv = buf_add(b, "\"", 1);
	}
	return (rv);
}

/*
 * Appends raw header bytes (a mailbox, host or Message-ID) to b as UTF-8:
 * control bytes become spaces, bytes that are not UTF-8 are read as
 * ISO-8859-1, so the columns sync stores are always clean UTF-8.
 */
static int
add_clean(struct buf *b, const char *s, size_t len)
{
	size_t i, run = 0;
	unsigned char c;
	int rv = 0;

	for (i = 0; rv == 0 && i <= len; i++) {
		c = i < len ? (unsigned char)s[i] : 0;
		if (i < len && c >= 0x20 && c != 0x7f) {
			continue;
		}
		if (i > run) {
			rv = mime_utf8_append_latin1(b, s + run, i - run);
		}
		if (rv == 0 && i < len) {
			rv = buf_add(b, " ", 1);
		}
		run = i + 1;
	}
	return (rv);
}

static const struct imap_tok *
str_or_null(const struct imap_tok *t)
{
	return (imap_tok_is_str(t) ? t : NULL);
}

/* Where format_addr is in an address list. */
struct addr_state {
	bool in_group; /* inside "group: ...;" */
	bool need_sep; /* the next item needs ", " first */
};

/* Formats one (name adl mailbox host) into b. */
static int
format_addr(struct buf *b, const struct imap_tok *a, struct addr_state *st)
{
	const struct imap_tok *name, *mbox, *host;
	char *dname = NULL;
	int rv = 0;

	name = str_or_null(nth(a, 0));
	mbox = str_or_null(nth(a, 2));
	host = str_or_null(nth(a, 3));
	if (mbox == NULL && host == NULL) {
		/* End of group: (NIL NIL NIL NIL). */
		if (st->in_group) {
			st->in_group = false;
			st->need_sep = true;
			rv = buf_add(b, ";", 1);
		}
		return (rv);
	}
	if (st->need_sep) {
		rv = buf_add(b, ", ", 2);
		if (rv != 0) {
			return (rv);
		}
	}
	if (host == NULL) {
		/* Start of group: (NIL NIL "name" NIL). */
		rv = decode_nstring(mbox, &dname);
		if (rv != 0) {
			return (rv);
		}
		rv = add_display_name(b, dname != NULL ? dname : "");
		if (rv == 0) {
			rv = buf_add(b, ": ", 2);
		}
		st->in_group = true;
		st->need_sep = false;
		goto out;
	}
	if (name != NULL) {
		rv = decode_nstring(name, &dname);
		if (rv != 0) {
			return (rv);
		}
	}
	if (dname != NULL && dname[0] != '\0') {
		rv = add_display_name(b, dname);
		if (rv == 0) {
			rv = buf_add(b, " <", 2);
		}
	}
	if (rv == 0 && mbox != NULL) {
		rv = add_clean(b, mbox->s, mbox->len);
	}
	if (rv == 0) {
		rv = buf_add(b, "@", 1);
	}
	if (rv == 0) {
		rv = add_clean(b, host->s, host->len);
	}
	if (rv == 0 && dname != NULL && dname[0] != '\0') {
		rv = buf_add(b, ">", 1);
	}
	st->need_sep = true;
out:
	free(dname);
	return (rv);
}

/* An address list (list of addresses, or NIL) to "A <a@b>, c@d". */
static int
format_addrs(const struct imap_tok *v, char **out_r)
{
	const struct imap_tok *a;
	struct addr_state st = { false, false };
	struct buf b;
	size_t mark;
	int rv = 0;

	*out_r = NULL;
	if (v == NULL || v->type == IMAP_TOK_NIL) {
		return (0);
	}
	if (v->type != IMAP_TOK_LIST) {
		return (ERR_PROTO);
	}
	buf_init(&b, FETCH_MAX_ADDRS);
	for (a = v->child; a != NULL; a = a->next) {
		if (a->type != IMAP_TOK_LIST || a->nchild < 4) {
			continue; /* odd entry: skip it */
		}
		mark = b.len;
		rv = format_addr(&b, a, &st);
		if (rv == ERR_TOOBIG) {
			/* Too many addresses: cut at the last whole one. */
			if (b.data != NULL) {
				b.len = mark;
				b.data[mark] = '\0';
			}
			if (st.need_sep) {
				(void)buf_add(&b, ", ", 2);
			}
			(void)buf_add(&b, "...", 3);
			st.in_group = false;
			rv = 0;
			break;
		}
		if (rv != 0) {
			goto fail;
		}
	}
	if (st.in_group) {
		(void)buf_add(&b, ";", 1);
	}
	if (b.len == 0) {
		buf_release(&b);
		return (0);
	}
	*out_r = b.data;
	return (0);

fail:
	buf_release(&b);
	return (rv);
}

static int
parse_envelope(const struct imap_tok *v, struct imap_fetch *f)
{
	const struct imap_tok *date, *mid;
	int64_t t;
	int rv;

	if (v->type != IMAP_TOK_LIST || v->nchild < 10) {
		return (ERR_PROTO);
	}
	free(f->subject);
	free(f->from);
	free(f->to);
	free(f->cc);
	free(f->message_id);
	f->subject = f->from = f->to = f->cc = f->message_id = NULL;
	f->date = 0;
	date = nth(v, 0);
	if (imap_tok_is_str(date)
	    && mime_parse_date(date->s, date->len, &t) == 0) {
		f->date = t;
	}
	rv = decode_nstring(nth(v, 1), &f->subject);
	if (rv == 0) {
		rv = format_addrs(nth(v, 2), &f->from);
	}
	if (rv == 0) {
		rv = format_addrs(nth(v, 5), &f->to);
	}
	if (rv == 0) {
		rv = format_addrs(nth(v, 6), &f->cc);
	}
	if (rv != 0) {
		return (rv);
	}
	mid = nth(v, 9);
	if (imap_tok_is_str(mid)) {
		struct buf b;

		buf_init(&b, MIME_MAX_HEADER);
		rv = buf_reserve(&b, 0);
		if (rv == 0) {
			b.data[0] = '\0';
			rv = add_clean(&b, mid->s, mid->len);
		}
		if (rv == ERR_NOMEM) {
			buf_release(&b);
			return (rv);
		}
		/* An absurdly long Message-ID is kept cut short. */
		f->message_id = b.data;
	}
	f->has_envelope = true;
	return (0);
}

int
imap_fetch_parse(const struct imap_resp *resp, struct imap_fetch *f)
{
	const struct imap_tok *item, *v;
	int64_t t;
	int rv = 0;

	memset(f, 0, sizeof(*f));
	if (resp == NULL || resp->name == NULL
	    || strcmp(resp->name, "FETCH") != 0) {
		return (ERR_INVAL);
	}
	if (!resp->has_number || resp->args == NULL
	    || resp->args->type != IMAP_TOK_LIST) {
		return (ERR_PROTO);
	}
	f->seq = resp->number;
	for (item = resp->args->child; item != NULL; item = v->next) {
		v = item->next;
		if (item->type != IMAP_TOK_ATOM || v == NULL) {
			rv = ERR_PROTO;
			goto fail;
		}
		if (imap_tok_is(item, "UID")) {
			rv = imap_tok_u32(v, &f->uid);
		} else if (imap_tok_is(item, "FLAGS")) {
			rv = parse_flags(v, f);
		} else if (imap_tok_is(item, "MODSEQ")) {
			if (v->type != IMAP_TOK_LIST || v->nchild != 1) {
				rv = ERR_PROTO;
			} else {
				rv = imap_tok_u64(v->child, &f->modseq);
				f->has_modseq = rv == 0;
			}
		} else if (imap_tok_is(item, "INTERNALDATE")) {
			/* Unparseable dates are left out, not fatal. */
			if (!imap_tok_is_str(v)) {
				rv = ERR_PROTO;
			} else if (mime_parse_internaldate(v->s, v->len, &t)
			    == 0) {
				f->internal_date = t;
				f->has_internal_date = true;
			}
		} else if (imap_tok_is(item, "RFC822.SIZE")) {
			rv = imap_tok_u64(v, &f->size);
			f->has_size = rv == 0;
		} else if (imap_tok_is(item, "ENVELOPE")) {
			rv = parse_envelope(v, f);
		} else if (imap_tok_is(item, "BODYSTRUCTURE")) {
			if (v->type != IMAP_TOK_LIST) {
				rv = ERR_PROTO;
			} else {
				rv = imapi_bodystructure(v, f);
				f->has_bodystructure = rv == 0;
			}
		}
		if (rv != 0) {
			goto fail;
		}
	}
	return (0);

fail:
	imap_fetch_release(f);
	return (rv);
}
