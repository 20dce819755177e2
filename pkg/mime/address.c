/*
 * address.c: RFC 5322 address lists ("To:", "Cc:", "From:" values) to
 * (display name, addr-spec) pairs, and back to the text the messages
 * columns hold. A small lexer drops whitespace and comments (nested at
 * most ADDR_MAX_COMMENT deep) and yields words, quoted strings, domain
 * literals and the specials; a recursive-descent parser of bounded depth
 * (a group holds mailboxes, never groups) builds the list.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "mime/mime.h"

#define ADDR_MAX_COMMENT 32

enum tok_type { T_END, T_WORD, T_QSTR, T_DLIT, T_SPECIAL };

struct tok {
	enum tok_type type;
	const char *p; /* raw text (QSTR: between the quotes) */
	size_t len;
	char c; /* T_SPECIAL: one of < > @ , : ; */
};

struct lexer {
	const char *p, *end;
	struct tok cur; /* the peeked token */
	int err;
};

/* RFC 5322 atext, '.' (dot-atom, obsolete phrases) and UTF-8 bytes. */
static bool
is_atext(unsigned char c)
{
	return (c >= 0x80
	    || (c > 32 && c < 127 && strchr("()<>[]:;@\\,\"", c) == NULL));
}

/* Skips whitespace and comments. */
static void
skip_cfws(struct lexer *x)
{
	int depth;

	while (x->p < x->end) {
		if (*x->p == ' ' || *x->p == '\t' || *x->p == '\r'
		    || *x->p == '\n') {
			x->p++;
			continue;
		}
		if (*x->p != '(') {
			return;
		}
		depth = 0;
		while (x->p < x->end) {
			if (*x->p == '\\' && x->p + 1 < x->end) {
				x->p += 2;
				continue;
			}
			if (*x->p == '(' && ++depth > ADDR_MAX_COMMENT) {
				x->err = ERR_INVAL;
				return;
			}
			if (*x->p == ')' && --depth == 0) {
				x->p++;
				break;
			}
			x->p++;
		}
		if (depth != 0) {
			x->err = ERR_INVAL; /* unterminated comment */
			return;
		}
	}
}

/* Reads the next token into x->cur. */
static void
lex(struct lexer *x)
{
	const char *s;

	skip_cfws(x);
	memset(&x->cur, 0, sizeof(x->cur));
	if (x->err != 0 || x->p >= x->end) {
		x->cur.type = T_END;
		return;
	}
	s = x->p;
	if (*s == '"' || *s == '[') {
		char close = *s == '"' ? '"' : ']';

		for (x->p = s + 1; x->p < x->end && *x->p != close; x->p++) {
			if (*x->p == '\\' && x->p + 1 < x->end) {
				x->p++;
			}
		}
		if (x->p >= x->end) {
			x->err = ERR_INVAL;
			x->cur.type = T_END;
			return;
		}
		x->p++; /* past the closing quote or bracket */
		if (close == '"') {
			x->cur.type = T_QSTR;
			x->cur.p = s + 1;
			x->cur.len = (size_t)(x->p - s) - 2;
		} else {
			x->cur.type = T_DLIT; /* brackets kept */
			x->cur.p = s;
			x->cur.len = (size_t)(x->p - s);
		}
		return;
	}
	if (strchr("<>@,:;", *s) != NULL) {
		x->cur.type = T_SPECIAL;
		x->cur.c = *s;
		x->cur.p = s;
		x->cur.len = 1;
		x->p++;
		return;
	}
	while (x->p < x->end && is_atext((unsigned char)*x->p)) {
		x->p++;
	}
	if (x->p == s) {
		x->err = ERR_INVAL; /* a byte that starts nothing: ) ] \ ... */
		x->cur.type = T_END;
		return;
	}
	x->cur.type = T_WORD;
	x->cur.p = s;
	x->cur.len = (size_t)(x->p - s);
}

static bool
at_special(const struct lexer *x, char c)
{
	return (x->cur.type == T_SPECIAL && x->cur.c == c);
}

/* Appends p[0..n) without its line breaks, CRLF or LF (the folding a
 * quoted string or domain literal may hold); a bare CR stays. */
static int
add_unfolded(struct buf *b, const char *p, size_t n)
{
	size_t i, run = 0;
	int rv = 0;

	for (i = 0; rv == 0 && i <= n; i++) {
		if (i < n && p[i] != '\n'
		    && !(p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')) {
			continue;
		}
		rv = buf_add(b, p + run, i - run);
		run = i + 1;
	}
	return (rv);
}

/* Appends a token's text: a quoted string unescaped (unquote) or as
 * written, quotes included (raw); line breaks dropped either way. */
static int
add_tok(struct buf *b, const struct tok *t, bool unquote)
{
	size_t i;
	int rv = 0;

	if (t->type != T_QSTR) {
		return (add_unfolded(b, t->p, t->len));
	}
	if (!unquote) {
		rv = buf_add(b, "\"", 1);
		if (rv == 0) {
			rv = add_unfolded(b, t->p, t->len);
		}
		return (rv == 0 ? buf_add(b, "\"", 1) : rv);
	}
	for (i = 0; rv == 0 && i < t->len; i++) {
		if (t->p[i] == '\\' && i + 1 < t->len) {
			i++;
		}
		if (t->p[i] != '\r' && t->p[i] != '\n') {
			rv = buf_add(b, &t->p[i], 1);
		}
	}
	return (rv);
}

/* Reads a phrase (words and quoted strings) into b, space-separated;
 * *raw receives them as written, for an addr-spec's local part. */
static int
phrase(struct lexer *x, struct buf *b, struct buf *raw)
{
	int rv = 0;

	while (rv == 0 && (x->cur.type == T_WORD || x->cur.type == T_QSTR)) {
		if (b->len > 0) {
			rv = buf_add(b, " ", 1);
		}
		if (rv == 0) {
			rv = add_tok(b, &x->cur, true);
		}
		if (rv == 0) {
			rv = add_tok(raw, &x->cur, false);
		}
		lex(x);
	}
	return (rv);
}

/* "@" domain after a local part already in spec. */
static int
domain(struct lexer *x, struct buf *spec)
{
	int rv;

	if (!at_special(x, '@')) {
		return (ERR_INVAL);
	}
	lex(x);
	if (x->cur.type != T_WORD && x->cur.type != T_DLIT) {
		return (ERR_INVAL);
	}
	rv = buf_add(spec, "@", 1);
	if (rv == 0) {
		rv = add_tok(spec, &x->cur, false);
	}
	lex(x);
	return (rv);
}

static int
push(struct mime_addr_list *l, struct buf *name, struct buf *spec)
{
	struct mime_addr *v;
	char *dn = NULL;
	size_t i;
	int rv;

	if (l->n >= MIME_MAX_ADDRS) {
		return (ERR_TOOBIG);
	}
	/* An addr-spec goes into SMTP commands and the address columns: a
	 * control byte (NUL, a bare CR in a quoted local part) is refused. */
	for (i = 0; i < spec->len; i++) {
		unsigned char c = (unsigned char)spec->data[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return (ERR_INVAL);
		}
	}
	if (name->len > 0) {
		rv = mime_decode_header(name->data, name->len, &dn);
		if (rv != 0) {
			return (rv);
		}
		if (dn != NULL && dn[0] == '\0') {
			free(dn);
			dn = NULL;
		}
	}
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (v == NULL) {
		free(dn);
		return (ERR_NOMEM);
	}
	l->v = v;
	v[l->n].name = dn;
	v[l->n].addr = xstrndup(spec->data, spec->len);
	if (v[l->n].addr == NULL) {
		free(dn);
		return (ERR_NOMEM);
	}
	l->n++;
	return (0);
}

/*
 * One mailbox, or (in_group false) a group of mailboxes. An empty
 * element (", ,") adds nothing.
 */
static int
address(struct lexer *x, struct mime_addr_list *l, bool in_group)
{
	struct buf name, raw, spec;
	int rv;

	buf_init(&name, MIME_MAX_HEADER);
	buf_init(&raw, MIME_MAX_HEADER);
	buf_init(&spec, MIME_MAX_HEADER);
	rv = phrase(x, &name, &raw);
	if (rv != 0) {
		goto out;
	}
	if (at_special(x, '<')) {
		lex(x);
		if (at_special(x, '@')) {
			/* obsolete route "<@a,@b:user@host>": dropped */
			while (x->cur.type != T_END && !at_special(x, ':')) {
				lex(x);
			}
			lex(x);
		}
		buf_reset(&raw);
		rv = phrase(x, &spec, &raw);
		buf_reset(&spec);
		if (rv == 0 && raw.len == 0) {
			rv = ERR_INVAL;
		}
		if (rv == 0) {
			rv = buf_add(&spec, raw.data, raw.len);
		}
		if (rv == 0) {
			rv = domain(x, &spec);
		}
		if (rv == 0 && !at_special(x, '>')) {
			rv = ERR_INVAL;
		}
		if (rv == 0) {
			lex(x);
			rv = push(l, &name, &spec);
		}
	} else if (at_special(x, ':') && !in_group && name.len > 0) {
		/* group: its members, flattened; "name:;" is empty */
		lex(x);
		while (
		    rv == 0 && !at_special(x, ';') && x->cur.type != T_END) {
			rv = address(x, l, true);
			if (rv == 0 && at_special(x, ',')) {
				lex(x);
			} else if (rv == 0 && !at_special(x, ';')
			    && x->cur.type != T_END) {
				rv = ERR_INVAL;
			}
		}
		if (rv == 0 && at_special(x, ';')) {
			lex(x);
		}
	} else if (at_special(x, '@') && raw.len > 0) {
		rv = buf_add(&spec, raw.data, raw.len);
		if (rv == 0) {
			rv = domain(x, &spec);
		}
		if (rv == 0) {
			buf_reset(&name);
			rv = push(l, &name, &spec);
		}
	} else if (name.len > 0) {
		rv = ERR_INVAL; /* words that are no address */
	}
out:
	buf_release(&name);
	buf_release(&raw);
	buf_release(&spec);
	return (rv);
}

int
mime_addr_parse(const char *in, size_t len, struct mime_addr_list *out)
{
	struct lexer x;
	int rv = 0;

	memset(out, 0, sizeof(*out));
	if (len > MIME_MAX_HEADER) {
		return (ERR_TOOBIG);
	}
	x.p = in;
	x.end = in + len;
	x.err = 0;
	lex(&x);
	while (rv == 0 && x.cur.type != T_END) {
		rv = address(&x, out, false);
		if (rv == 0 && at_special(&x, ',')) {
			lex(&x);
		} else if (rv == 0 && x.cur.type != T_END) {
			rv = ERR_INVAL;
		}
	}
	if (rv == 0) {
		rv = x.err;
	}
	if (rv != 0) {
		mime_addr_list_release(out);
	}
	return (rv);
}

int
mime_header_addrs(
    const char *msg, size_t len, const char *name, struct mime_addr_list *out)
{
	char *v = NULL;
	int rv;

	out->v = NULL;
	out->n = 0;
	rv = mime_header_get(msg, len, name, &v);
	if (rv == ERR_NOTFOUND) {
		return (ERR_OK);
	}
	if (rv == 0) {
		rv = mime_addr_parse(v, strlen(v), out);
	}
	free(v);
	return (rv);
}

void
mime_addr_list_release(struct mime_addr_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].addr);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int
mime_addr_format(const struct mime_addr_list *l, char **out_r)
{
	struct buf b;
	const char *p;
	size_t i;
	int rv = 0;

	*out_r = NULL;
	buf_init(&b, MIME_MAX_HEADER);
	for (i = 0; rv == 0 && i < l->n; i++) {
		const char *name = l->v[i].name;

		if (i > 0) {
			rv = buf_add(&b, ", ", 2);
		}
		if (rv == 0 && name != NULL) {
			/* quoted as pkg/imap's ENVELOPE formatting does */
			if (strpbrk(name, ",;:<>@\"()[]\\") == NULL) {
				rv = buf_addstr(&b, name);
			} else {
				rv = buf_add(&b, "\"", 1);
				for (p = name; rv == 0 && *p != '\0'; p++) {
					if (*p == '"' || *p == '\\') {
						rv = buf_add(&b, "\\", 1);
					}
					if (rv == 0) {
						rv = buf_add(&b, p, 1);
					}
				}
				if (rv == 0) {
					rv = buf_add(&b, "\"", 1);
				}
			}
			if (rv == 0) {
				rv = buf_add(&b, " <", 2);
			}
		}
		if (rv == 0) {
			rv = buf_addstr(&b, l->v[i].addr);
		}
		if (rv == 0 && name != NULL) {
			rv = buf_add(&b, ">", 1);
		}
	}
	if (rv == 0) {
		rv = buf_add(&b, "", 1);
	}
	if (rv != 0) {
		buf_release(&b);
		return (rv);
	}
	*out_r = b.data; /* the buffer's storage becomes the caller's */
	return (0);
}
