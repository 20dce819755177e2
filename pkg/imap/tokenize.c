/*
 * tokenize.c: one complete response (gathered by parse.c) to a tree of
 * struct imap_tok and the fields of struct imap_resp.
 *
 * Tokens come from a per-parser arena (blocks reused from one response to
 * the next, at most max_tokens in use) and are views into the response
 * buffer: quoted strings are unescaped in place, and once the whole
 * response is tokenized a NUL is written after every token (the byte
 * there is always a separator, a closing quote or the buffer's own
 * terminator, never part of another token). Lists nest at most max_depth
 * deep and are built without recursion.
 *
 * Status responses keep their "[CODE args]": args that do not tokenize
 * (servers put odd things there) become one raw atom; a code without its
 * ']' leaves everything as text.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

enum tok_ctx { CTX_DATA, CTX_CODE };

static int
tok_alloc(struct imap_parser *p, struct imap_tok **t_r)
{
	struct imapi_tok_block *b;

	if (p->ntok >= p->lim.max_tokens) {
		return (imapi_set_err(p, ERR_TOOBIG,
		    "response has more than %zu tokens", p->lim.max_tokens));
	}
	if (p->cur == NULL || p->cur_used == IMAPI_TOK_BLOCK) {
		b = p->cur == NULL ? p->blocks : p->cur->next;
		if (b == NULL) {
			b = malloc(sizeof(*b));
			if (b == NULL) {
				return (imapi_set_err(
				    p, ERR_NOMEM, "out of memory for tokens"));
			}
			b->next = NULL;
			if (p->cur == NULL) {
				p->blocks = b;
			} else {
				p->cur->next = b;
			}
		}
		p->cur = b;
		p->cur_used = 0;
	}
	*t_r = &p->cur->t[p->cur_used++];
	p->ntok++;
	memset(*t_r, 0, sizeof(**t_r));
	return (0);
}

/* Arena position, to roll back a failed attempt. */
struct arena_mark {
	struct imapi_tok_block *cur;
	size_t cur_used;
	size_t ntok;
};

static void
arena_mark(const struct imap_parser *p, struct arena_mark *m)
{
	m->cur = p->cur;
	m->cur_used = p->cur_used;
	m->ntok = p->ntok;
}

static void
arena_rewind(struct imap_parser *p, const struct arena_mark *m)
{
	p->cur = m->cur;
	p->cur_used = m->cur_used;
	p->ntok = m->ntok;
}

static bool
atom_char(unsigned char c, enum tok_ctx ctx)
{
	if (c <= 0x20 || c == 0x7f) {
		return (false);
	}
	switch (c) {
	case '(':
	case ')':
	case '{':
	case '"':
		return (false);
	case ']':
		return (ctx != CTX_CODE);
	default:
		return (true);
	}
}

static int
push_frame(struct imap_parser *p, size_t depth, struct imap_tok *list,
    struct imap_tok **tail, size_t off)
{
	struct imapi_frame *ns;
	size_t ncap;

	if (depth >= p->stack_cap) {
		ncap = p->stack_cap == 0 ? 16 : p->stack_cap * 2;
		ns = realloc(p->stack, ncap * sizeof(*ns));
		if (ns == NULL) {
			return (imapi_set_err(p, ERR_NOMEM, "out of memory"));
		}
		p->stack = ns;
		p->stack_cap = ncap;
	}
	p->stack[depth].list = list;
	p->stack[depth].tail = tail;
	p->stack[depth].open_off = off;
	return (0);
}

/* Bytes that end the fast scan of a quoted string: the closing quote, an
 * escape, and the three bytes a quoted string must not hold. */
static bool
quoted_special(unsigned char c)
{
	return (c == '"' || c == '\\' || c == '\r' || c == '\n' || c == '\0');
}

/* Scans a quoted string at b[*ip] == '"'; unescapes it in place. The
 * whole string is validated before any byte moves (a bad string leaves
 * the buffer untouched), and only the bytes after the first escape move:
 * most strings have none. */
static int
tok_quoted(struct imap_parser *p, size_t *ip, size_t lim, const char **s_r,
    size_t *len_r)
{
	char *b = p->buf.data;
	size_t open = *ip, r, w, esc = 0;
	bool escaped = false;

	for (r = open + 1;;) {
		while (r < lim && !quoted_special((unsigned char)b[r])) {
			r++;
		}
		if (r >= lim) {
			return (imapi_set_err(p, ERR_PROTO,
			    "unterminated quoted string at offset %zu", open));
		}
		if (b[r] == '"') {
			break;
		}
		if (b[r] == '\r' || b[r] == '\n') {
			return (imapi_set_err(p, ERR_PROTO,
			    "line break inside quoted string at offset %zu",
			    r));
		}
		if (b[r] == '\0') {
			return (imapi_set_err(p, ERR_PROTO,
			    "NUL byte inside quoted string at offset %zu", r));
		}
		if (r + 1 >= lim || (b[r + 1] != '"' && b[r + 1] != '\\')) {
			return (imapi_set_err(p, ERR_PROTO,
			    "bad escape in quoted string at offset %zu", r));
		}
		if (!escaped) {
			escaped = true;
			esc = r;
		}
		r += 2; /* the backslash and the byte it escapes */
	}
	w = r;
	if (escaped) {
		for (r = w = esc; b[r] != '"'; r++, w++) {
			if (b[r] == '\\') {
				r++;
			}
			b[w] = b[r];
		}
	}
	*s_r = b + open + 1;
	*len_r = w - (open + 1);
	*ip = r + 1;
	return (0);
}

/* Scans "{N}" / "{N+}" at b[*ip] == '{', its line break and N bytes;
 * a literal the scanner streamed to the sink has no bytes here:
 * *streamed_r is then true and *s_r NULL. */
static int
tok_literal(struct imap_parser *p, size_t *ip, size_t lim, const char **s_r,
    size_t *len_r, bool *streamed_r)
{
	const char *b = p->buf.data;
	size_t i = *ip + 1, start = *ip;
	uint64_t v = 0;
	unsigned d;

	if (i >= lim || !isdigit((unsigned char)b[i])) {
		return (imapi_set_err(
		    p, ERR_PROTO, "bad literal at offset %zu", start));
	}
	while (i < lim && isdigit((unsigned char)b[i])) {
		d = (unsigned)(b[i] - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return (imapi_set_err(p, ERR_PROTO,
			    "literal size overflows at offset %zu", start));
		}
		v = v * 10 + d;
		i++;
	}
	if (i < lim && b[i] == '+') {
		i++;
	}
	if (i >= lim || b[i] != '}') {
		return (imapi_set_err(
		    p, ERR_PROTO, "bad literal at offset %zu", start));
	}
	i++;
	if (i < lim && b[i] == '\r') {
		i++;
	}
	if (i >= lim || b[i] != '\n') {
		return (imapi_set_err(p, ERR_PROTO,
		    "literal at offset %zu not at end of line", start));
	}
	i++;
	*streamed_r = false;
	if (p->streamed_next < p->nstreamed
	    && p->streamed[p->streamed_next] == i) {
		p->streamed_next++;
		*streamed_r = true;
		*s_r = NULL;
		*len_r = (size_t)v;
		*ip = i;
		return (0);
	}
	if (v > (uint64_t)(lim - i)) {
		return (imapi_set_err(p, ERR_PROTO,
		    "literal at offset %zu runs past the response", start));
	}
	*s_r = b + i;
	*len_r = (size_t)v;
	*ip = i + (size_t)v;
	return (0);
}

/* Scans an atom at b[*ip]; in data context "[...]" is part of it. */
static int
tok_atom(struct imap_parser *p, size_t *ip, size_t lim, enum tok_ctx ctx,
    const char **s_r, size_t *len_r)
{
	const char *b = p->buf.data;
	size_t i = *ip, open;
	unsigned nest;

	while (i < lim) {
		unsigned char c = (unsigned char)b[i];

		if (c == '[' && ctx == CTX_DATA) {
			open = i;
			nest = 0;
			for (; i < lim; i++) {
				c = (unsigned char)b[i];
				if (c == '\r' || c == '\n' || c == '\0') {
					break;
				}
				if (c == '[') {
					nest++;
				} else if (c == ']' && --nest == 0) {
					break;
				}
			}
			if (i >= lim || b[i] != ']') {
				return (imapi_set_err(p, ERR_PROTO,
				    "unterminated '[' at offset %zu", open));
			}
			i++;
			continue;
		}
		if (!atom_char(c, ctx)) {
			break;
		}
		i++;
	}
	if (i == *ip) {
		return (imapi_set_err(p, ERR_PROTO,
		    "unexpected byte 0x%02x at offset %zu",
		    (unsigned char)b[i], i));
	}
	*s_r = b + *ip;
	*len_r = i - *ip;
	*ip = i;
	return (0);
}

/*
 * Tokenizes a sequence of tokens from *ip. In CTX_DATA it runs to lim; in
 * CTX_CODE it stops before a ']' at the top level. *first_r gets the
 * first top-level token (or NULL).
 */
static int
tok_seq(struct imap_parser *p, size_t *ip, size_t lim, enum tok_ctx ctx,
    struct imap_tok **first_r)
{
	const char *b = p->buf.data;
	struct imap_tok *t;
	struct imapi_frame *f;
	size_t i = *ip, depth = 0, len = 0;
	const char *s = NULL;
	enum imap_tok_type type;
	bool streamed = false;
	int rv;
	unsigned char c;

	*first_r = NULL;
	rv = push_frame(p, 0, NULL, first_r, i);
	if (rv != 0) {
		return (rv);
	}
	for (;;) {
		while (i < lim && b[i] == ' ') {
			i++;
		}
		if (i >= lim) {
			if (depth > 0) {
				return (imapi_set_err(p, ERR_PROTO,
				    "unterminated list opened at offset %zu",
				    p->stack[depth].open_off));
			}
			if (ctx == CTX_CODE) {
				return (imapi_set_err(p, ERR_PROTO,
				    "missing ']' after response code"));
			}
			break;
		}
		c = (unsigned char)b[i];
		if (c == ']' && ctx == CTX_CODE) {
			if (depth > 0) {
				return (imapi_set_err(p, ERR_PROTO,
				    "unbalanced ']' at offset %zu", i));
			}
			break;
		}
		if (c == ')') {
			if (depth == 0) {
				return (imapi_set_err(p, ERR_PROTO,
				    "unbalanced ')' at offset %zu", i));
			}
			depth--;
			i++;
			goto sep;
		}
		if (c == '\r' || c == '\n') {
			return (imapi_set_err(p, ERR_PROTO,
			    "unexpected line break at offset %zu", i));
		}
		if (c == '\0') {
			return (imapi_set_err(
			    p, ERR_PROTO, "NUL byte at offset %zu", i));
		}
		rv = tok_alloc(p, &t);
		if (rv != 0) {
			return (rv);
		}
		f = &p->stack[depth];
		*f->tail = t;
		f->tail = &t->next;
		if (f->list != NULL) {
			f->list->nchild++;
		}
		if (c == '(') {
			t->type = IMAP_TOK_LIST;
			if (depth + 1 > p->lim.max_depth) {
				return (imapi_set_err(p, ERR_TOOBIG,
				    "lists nested deeper than %zu at offset "
				    "%zu",
				    p->lim.max_depth, i));
			}
			depth++;
			rv = push_frame(p, depth, t, &t->child, i);
			if (rv != 0) {
				return (rv);
			}
			i++;
			continue;
		}
		if (c == '"') {
			type = IMAP_TOK_STRING;
			rv = tok_quoted(p, &i, lim, &s, &len);
		} else if (c == '{'
		    || (c == '~' && i + 1 < lim && b[i + 1] == '{')) {
			if (c == '~') {
				i++;
			}
			rv = tok_literal(p, &i, lim, &s, &len, &streamed);
			type = streamed ? IMAP_TOK_STREAMED
					: IMAP_TOK_LITERAL;
		} else {
			type = IMAP_TOK_ATOM;
			rv = tok_atom(p, &i, lim, ctx, &s, &len);
		}
		if (rv != 0) {
			return (rv);
		}
		if (type == IMAP_TOK_ATOM && len == 3
		    && strncasecmp(s, "NIL", 3) == 0) {
			type = IMAP_TOK_NIL;
		}
		t->type = type;
		t->s = s;
		t->len = len;
	sep:
		/* "(a)(b)" is how servers write address and body lists; a
		 * '(' never belongs to a token, so the NUL may land on it. */
		if (i < lim && b[i] != ' ' && b[i] != ')' && b[i] != '('
		    && !(ctx == CTX_CODE && b[i] == ']')) {
			return (imapi_set_err(p, ERR_PROTO,
			    "expected space before offset %zu", i));
		}
	}
	*ip = i;
	return (0);
}

static void
upcase(char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		s[i] = (char)toupper((unsigned char)s[i]);
	}
}

static int
set_text(struct imap_parser *p, size_t i, size_t lim)
{
	const char *b = p->buf.data;

	if (i > lim) {
		i = lim;
	}
	if (memchr(b + i, '\0', lim - i) != NULL) {
		return (
		    imapi_set_err(p, ERR_PROTO, "NUL byte in response text"));
	}
	p->resp.text = b + i;
	p->resp.text_len = lim - i;
	return (0);
}

/* "[CODE args] text" or "text" after a status word, from offset i. */
static int
parse_status_tail(struct imap_parser *p, size_t i, size_t lim)
{
	char *b = p->buf.data;
	struct imap_resp *r = &p->resp;
	struct arena_mark m;
	struct imap_tok *t;
	size_t j, k, start;
	int rv;

	if (i < lim && b[i] == ' ') {
		i++;
	}
	if (i >= lim || b[i] != '[') {
		return (set_text(p, i, lim));
	}
	start = i;
	for (j = i + 1; j < lim && atom_char((unsigned char)b[j], CTX_CODE)
	     && b[j] != '[';
	     j++) { }
	if (j == i + 1 || j >= lim || (b[j] != ' ' && b[j] != ']')) {
		/* Not a response code after all: all of it is text. */
		return (set_text(p, start, lim));
	}
	r->code = b + i + 1;
	r->code_len = j - (i + 1);
	k = j;
	if (b[k] == ' ') {
		k++;
		arena_mark(p, &m);
		rv = tok_seq(p, &k, lim, CTX_CODE, &r->code_args);
		if (rv == ERR_PROTO) {
			/* Odd arguments: keep them as one raw atom. */
			arena_rewind(p, &m);
			p->err_code = 0;
			snprintf(p->err, sizeof(p->err), "no error");
			r->code_args = NULL;
			k = j + 1;
			while (k < lim && b[k] != ']') {
				k++;
			}
			if (k >= lim) {
				r->code = NULL;
				r->code_len = 0;
				return (set_text(p, start, lim));
			}
			if (k > j + 1) {
				rv = tok_alloc(p, &t);
				if (rv != 0) {
					return (rv);
				}
				t->type = IMAP_TOK_ATOM;
				t->s = b + j + 1;
				t->len = k - (j + 1);
				r->code_args = t;
			}
		} else if (rv != 0) {
			return (rv);
		}
	}
	/* b[k] == ']' here. */
	upcase(b + i + 1, r->code_len);
	k++;
	if (k < lim && b[k] == ' ') {
		k++;
	}
	return (set_text(p, k, lim));
}

/* Writes a NUL after every token of the arena and resp string. */
static void
terminate_all(struct imap_parser *p)
{
	struct imapi_tok_block *blk;
	struct imap_resp *r = &p->resp;
	size_t i, n, left = p->ntok;

	/* Tokens fill the blocks in order, so the first ntok are live. */
	for (blk = p->blocks; blk != NULL && left > 0; blk = blk->next) {
		n = left < IMAPI_TOK_BLOCK ? left : IMAPI_TOK_BLOCK;
		for (i = 0; i < n; i++) {
			struct imap_tok *t = &blk->t[i];

			if (t->type != IMAP_TOK_LIST && t->s != NULL) {
				((char *)t->s)[t->len] = '\0';
			}
		}
		left -= n;
	}
	if (r->tag != NULL) {
		((char *)r->tag)[r->tag_len] = '\0';
	}
	if (r->name != NULL) {
		((char *)r->name)[r->name_len] = '\0';
	}
	if (r->code != NULL) {
		((char *)r->code)[r->code_len] = '\0';
	}
	if (r->text != NULL) {
		((char *)r->text)[r->text_len] = '\0';
	} else {
		r->text = "";
	}
}

int
imapi_tokenize(struct imap_parser *p)
{
	char *b = p->buf.data;
	struct imap_resp *r = &p->resp;
	size_t lim = p->term, i, k;
	uint64_t num;
	int rv;

	p->cur = p->blocks;
	p->cur_used = 0;
	p->ntok = 0;
	p->streamed_next = 0;
	memset(r, 0, sizeof(*r));
	if (lim == 0) {
		return (imapi_set_err(p, ERR_PROTO, "empty response line"));
	}
	if (b[0] == '+') {
		r->kind = IMAP_RESP_CONT;
		i = 1;
		if (i < lim && b[i] == ' ') {
			i++;
		}
		rv = set_text(p, i, lim);
		if (rv != 0) {
			return (rv);
		}
		goto done;
	}
	for (i = 0; i < lim && b[i] != ' '; i++) {
		if (!atom_char((unsigned char)b[i], CTX_CODE) || b[i] == '+') {
			return (imapi_set_err(p, ERR_PROTO,
			    "bad byte 0x%02x in tag at offset %zu",
			    (unsigned char)b[i], i));
		}
	}
	if (i == 0) {
		return (imapi_set_err(p, ERR_PROTO, "response without a tag"));
	}
	if (i >= lim) {
		return (
		    imapi_set_err(p, ERR_PROTO, "response without a keyword"));
	}
	if (i == 1 && b[0] == '*') {
		r->kind = IMAP_RESP_UNTAGGED;
	} else {
		r->kind = IMAP_RESP_TAGGED;
		r->tag = b;
		r->tag_len = i;
	}
	i++;
	if (r->kind == IMAP_RESP_UNTAGGED && i < lim
	    && isdigit((unsigned char)b[i])) {
		num = 0;
		for (k = i; k < lim && isdigit((unsigned char)b[k]); k++) {
			num = num * 10 + (uint64_t)(b[k] - '0');
			if (num > UINT32_MAX) {
				return (imapi_set_err(p, ERR_PROTO,
				    "message number out of range at offset "
				    "%zu",
				    i));
			}
		}
		if (k >= lim || b[k] != ' ') {
			return (imapi_set_err(p, ERR_PROTO,
			    "expected keyword after number at offset %zu", k));
		}
		r->has_number = true;
		r->number = (uint32_t)num;
		i = k + 1;
	}
	for (k = i; k < lim && atom_char((unsigned char)b[k], CTX_CODE)
	     && b[k] != '[';
	     k++) { }
	if (k == i || (k < lim && b[k] != ' ')) {
		return (imapi_set_err(
		    p, ERR_PROTO, "bad keyword at offset %zu", i));
	}
	upcase(b + i, k - i);
	r->name = b + i;
	r->name_len = k - i;
	if (!r->has_number && imapi_is_status_word(r->name, r->name_len)) {
		static const enum imap_status st[] = { IMAP_ST_OK, IMAP_ST_NO,
			IMAP_ST_BAD, IMAP_ST_BYE, IMAP_ST_PREAUTH };
		static const char *const nm[]
		    = { "OK", "NO", "BAD", "BYE", "PREAUTH" };
		size_t s;

		for (s = 0; s < ARRAY_LEN(nm); s++) {
			if (strlen(nm[s]) == r->name_len
			    && memcmp(nm[s], r->name, r->name_len) == 0) {
				r->status = st[s];
			}
		}
		rv = parse_status_tail(p, k, lim);
		if (rv != 0) {
			return (rv);
		}
		goto done;
	}
	if (r->kind == IMAP_RESP_TAGGED) {
		return (imapi_set_err(
		    p, ERR_PROTO, "tagged response is not OK, NO or BAD"));
	}
	rv = tok_seq(p, &k, lim, CTX_DATA, &r->args);
	if (rv != 0) {
		return (rv);
	}
done:
	terminate_all(p);
	return (0);
}
