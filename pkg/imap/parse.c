/*
 * parse.c: the incremental IMAP response parser.
 *
 * Bytes arrive in arbitrary chunks. The scanner copies them into one
 * bounded buffer (struct buf, capped at limits.max_response) until a whole
 * response is there: a line, and for every "{N}" / "{N+}" / "~{N}" that
 * ends a line, N raw literal bytes and the rest of the line after them.
 * The scanner keeps its position, so every byte is looked at a constant
 * number of times whatever the chunking; a literal's size is checked
 * against max_literal and max_response before any of its bytes is read.
 *
 * The complete response is then tokenized in one pass into a tree of
 * struct imap_tok allocated from a per-parser arena (blocks reused from
 * one response to the next, at most max_tokens in use). Tokens are views
 * into the buffer: quoted strings are unescaped in place, and once the
 * whole response is tokenized a NUL is written after every token (the
 * byte there is always a separator, a closing quote or the buffer's own
 * terminator, never part of another token).
 *
 * Status responses (OK/NO/BAD/BYE/PREAUTH) and "+" continuations end in
 * free text, so a "{N}" at the end of their first line is text, not a
 * literal; the scanner and the tokenizer agree on that rule.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap.h"

#define TOK_BLOCK 256
#define SHRINK_ABOVE (1024u * 1024)

struct tok_block {
	struct tok_block *next;
	struct imap_tok t[TOK_BLOCK];
};

/* One open list while tokenizing. */
struct frame {
	struct imap_tok *list; /* NULL for the top level */
	struct imap_tok **tail;
	size_t open_off; /* offset of the '(' */
};

enum scan_state { SCAN_LINE, SCAN_LITERAL, SCAN_DONE };

enum tok_ctx { CTX_DATA, CTX_CODE };

struct imap_parser {
	struct imap_limits lim;
	struct buf buf;	   /* the response being accumulated */
	enum scan_state state;
	size_t line_start; /* offset where the current line segment starts */
	uint64_t lit_left; /* literal bytes still to read */
	size_t term;	   /* offset of the final line terminator */

	struct tok_block *blocks; /* arena */
	struct tok_block *cur;
	size_t cur_used;
	size_t ntok;

	struct frame *stack;
	size_t stack_cap;

	struct imap_resp resp;
	int err_code;
	char err[256];
};

static int set_err(struct imap_parser *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
set_err(struct imap_parser *p, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	p->err_code = code;
	return (code);
}

void
imap_limits_default(struct imap_limits *l)
{
	l->max_line = 64u * 1024;
	l->max_literal = 8u * 1024 * 1024;
	l->max_response = 16u * 1024 * 1024;
	l->max_depth = 64;
	l->max_tokens = 100000;
}

int
imap_parser_new(const struct imap_limits *l, struct imap_parser **p_r)
{
	struct imap_parser *p;

	if (l == NULL || p_r == NULL || l->max_line == 0 ||
	    l->max_response == 0 || l->max_tokens == 0) {
		return (ERR_INVAL);
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return (ERR_NOMEM);
	}
	p->lim = *l;
	buf_init(&p->buf, l->max_response);
	p->state = SCAN_LINE;
	snprintf(p->err, sizeof(p->err), "no error");
	*p_r = p;
	return (0);
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p;
	struct tok_block *b, *nb;

	if (pp == NULL || *pp == NULL) {
		return;
	}
	p = *pp;
	buf_release(&p->buf);
	for (b = p->blocks; b != NULL; b = nb) {
		nb = b->next;
		free(b);
	}
	free(p->stack);
	free(p);
	*pp = NULL;
}

const char *
imap_parser_error(const struct imap_parser *p)
{
	if (p == NULL) {
		return ("no parser");
	}
	return (p->err);
}

/* Forgets the last response so the buffer can take the next one. */
static void
reset_response(struct imap_parser *p)
{
	if (p->buf.cap > SHRINK_ABOVE) {
		buf_release(&p->buf);
		buf_init(&p->buf, p->lim.max_response);
	} else {
		buf_reset(&p->buf);
	}
	p->state = SCAN_LINE;
	p->line_start = 0;
	p->lit_left = 0;
	p->term = 0;
	p->cur = p->blocks;
	p->cur_used = 0;
	p->ntok = 0;
	memset(&p->resp, 0, sizeof(p->resp));
}

/* Scanner ----------------------------------------------------------------- */

static bool
is_status_word(const char *s, size_t n)
{
	static const char *const words[] = {"OK", "NO", "BAD", "BYE",
	    "PREAUTH"};
	size_t i;

	for (i = 0; i < ARRAY_LEN(words); i++) {
		if (strlen(words[i]) == n && strncasecmp(s, words[i], n) == 0) {
			return (true);
		}
	}
	return (false);
}

/*
 * True when the first line [0, term) is a "+" continuation or a status
 * response, whose tail is text in which "{N}" is not a literal.
 */
static bool
first_line_is_text(const char *b, size_t term)
{
	size_t i, k;

	if (term > 0 && b[0] == '+') {
		return (true);
	}
	for (i = 0; i < term && b[i] != ' '; i++) {
	}
	if (i >= term) {
		return (false);
	}
	i++;
	for (k = i; k < term && b[k] != ' '; k++) {
	}
	return (is_status_word(b + i, k - i));
}

/*
 * Called when the buffer ends with '\n'. Returns 1 when the response is
 * complete, 0 when more is to come (a literal follows), or an error.
 */
static int
line_end(struct imap_parser *p)
{
	const char *b = p->buf.data;
	size_t term, i, j, nd;
	uint64_t v;
	bool over;

	term = p->buf.len - 1;
	if (term > p->line_start && b[term - 1] == '\r') {
		term--;
	}
	if (term - p->line_start > p->lim.max_line) {
		return (set_err(p, ERR_TOOBIG, "line longer than %zu bytes",
		    p->lim.max_line));
	}
	if (p->line_start == 0 && first_line_is_text(b, term)) {
		goto complete;
	}
	i = term;
	if (i <= p->line_start || b[i - 1] != '}') {
		goto complete;
	}
	i--;
	if (i > p->line_start && b[i - 1] == '+') {
		i--;
	}
	for (j = i; j > p->line_start && isdigit((unsigned char)b[j - 1]);
	     j--) {
	}
	if (j == i || j <= p->line_start || b[j - 1] != '{') {
		goto complete;
	}
	/* Digits [j, i): a literal announcement. */
	v = 0;
	over = false;
	for (nd = j; nd < i; nd++) {
		unsigned d = (unsigned)(b[nd] - '0');

		if (v > (UINT64_MAX - d) / 10) {
			over = true;
			break;
		}
		v = v * 10 + d;
	}
	if (over || v > p->lim.max_literal) {
		nd = i - j;
		return (set_err(p, ERR_TOOBIG,
		    "literal of %.*s%s bytes exceeds limit %zu",
		    (int)(nd > 40 ? 40 : nd), b + j, nd > 40 ? "..." : "",
		    p->lim.max_literal));
	}
	if (v > p->lim.max_response - p->buf.len) {
		return (set_err(p, ERR_TOOBIG,
		    "response with literal of %llu bytes exceeds limit %zu",
		    (unsigned long long)v, p->lim.max_response));
	}
	p->line_start = p->buf.len;
	if (v > 0) {
		p->lit_left = v;
		p->state = SCAN_LITERAL;
	}
	return (0);

complete:
	p->term = term;
	return (1);
}

static int tokenize(struct imap_parser *p);

int
imap_parser_feed(struct imap_parser *p, const char *data, size_t len,
    size_t *used_r, const struct imap_resp **resp_r)
{
	const char *nl;
	size_t off = 0, n, seg;
	int rv;

	*used_r = 0;
	*resp_r = NULL;
	if (p->err_code != 0) {
		return (p->err_code);
	}
	if (p->state == SCAN_DONE) {
		reset_response(p);
	}
	while (off < len) {
		if (p->state == SCAN_LITERAL) {
			n = len - off;
			if ((uint64_t)n > p->lit_left) {
				n = (size_t)p->lit_left;
			}
			rv = buf_add(&p->buf, data + off, n);
			if (rv != 0) {
				goto fail_add;
			}
			off += n;
			p->lit_left -= n;
			if (p->lit_left == 0) {
				p->state = SCAN_LINE;
				p->line_start = p->buf.len;
			}
			continue;
		}
		nl = memchr(data + off, '\n', len - off);
		n = nl != NULL ? (size_t)(nl - (data + off)) + 1 : len - off;
		seg = p->buf.len - p->line_start + n;
		/* Without the newline yet, allow one byte for a pending CR. */
		if (nl == NULL && seg > p->lim.max_line + 1) {
			rv = set_err(p, ERR_TOOBIG, "line longer than %zu bytes",
			    p->lim.max_line);
			goto fail;
		}
		rv = buf_add(&p->buf, data + off, n);
		if (rv != 0) {
			goto fail_add;
		}
		off += n;
		if (nl == NULL) {
			continue;
		}
		rv = line_end(p);
		if (rv < 0) {
			goto fail;
		}
		if (rv == 1) {
			rv = tokenize(p);
			if (rv != 0) {
				goto fail;
			}
			p->state = SCAN_DONE;
			*used_r = off;
			*resp_r = &p->resp;
			return (1);
		}
	}
	*used_r = off;
	return (0);

fail_add:
	if (rv == ERR_TOOBIG) {
		rv = set_err(p, ERR_TOOBIG, "response longer than %zu bytes",
		    p->lim.max_response);
	} else {
		rv = set_err(p, rv, "out of memory buffering a response");
	}
fail:
	*used_r = off;
	return (rv);
}

/* Tokenizer --------------------------------------------------------------- */

static int
tok_alloc(struct imap_parser *p, struct imap_tok **t_r)
{
	struct tok_block *b;

	if (p->ntok >= p->lim.max_tokens) {
		return (set_err(p, ERR_TOOBIG,
		    "response has more than %zu tokens", p->lim.max_tokens));
	}
	if (p->cur == NULL || p->cur_used == TOK_BLOCK) {
		b = p->cur == NULL ? p->blocks : p->cur->next;
		if (b == NULL) {
			b = malloc(sizeof(*b));
			if (b == NULL) {
				return (set_err(p, ERR_NOMEM,
				    "out of memory for tokens"));
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
	struct tok_block *cur;
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
	struct frame *ns;
	size_t ncap;

	if (depth >= p->stack_cap) {
		ncap = p->stack_cap == 0 ? 16 : p->stack_cap * 2;
		ns = realloc(p->stack, ncap * sizeof(*ns));
		if (ns == NULL) {
			return (set_err(p, ERR_NOMEM, "out of memory"));
		}
		p->stack = ns;
		p->stack_cap = ncap;
	}
	p->stack[depth].list = list;
	p->stack[depth].tail = tail;
	p->stack[depth].open_off = off;
	return (0);
}

/* Scans a quoted string at b[*ip] == '"'; unescapes it in place. */
static int
tok_quoted(struct imap_parser *p, size_t *ip, size_t lim, const char **s_r,
    size_t *len_r)
{
	char *b = p->buf.data;
	size_t open = *ip, r, w;

	/* Validate first so a bad string leaves the buffer untouched. */
	for (r = open + 1;; r++) {
		if (r >= lim) {
			return (set_err(p, ERR_PROTO,
			    "unterminated quoted string at offset %zu", open));
		}
		if (b[r] == '"') {
			break;
		}
		if (b[r] == '\r' || b[r] == '\n') {
			return (set_err(p, ERR_PROTO,
			    "line break inside quoted string at offset %zu",
			    r));
		}
		if (b[r] == '\0') {
			return (set_err(p, ERR_PROTO,
			    "NUL byte inside quoted string at offset %zu", r));
		}
		if (b[r] == '\\') {
			if (r + 1 >= lim ||
			    (b[r + 1] != '"' && b[r + 1] != '\\')) {
				return (set_err(p, ERR_PROTO,
				    "bad escape in quoted string at offset %zu",
				    r));
			}
			r++;
		}
	}
	for (r = w = open + 1; b[r] != '"'; r++, w++) {
		if (b[r] == '\\') {
			r++;
		}
		b[w] = b[r];
	}
	*s_r = b + open + 1;
	*len_r = w - (open + 1);
	*ip = r + 1;
	return (0);
}

/* Scans "{N}" / "{N+}" at b[*ip] == '{', its line break and N bytes. */
static int
tok_literal(struct imap_parser *p, size_t *ip, size_t lim, const char **s_r,
    size_t *len_r)
{
	const char *b = p->buf.data;
	size_t i = *ip + 1, start = *ip;
	uint64_t v = 0;
	unsigned d;

	if (i >= lim || !isdigit((unsigned char)b[i])) {
		return (set_err(p, ERR_PROTO, "bad literal at offset %zu",
		    start));
	}
	while (i < lim && isdigit((unsigned char)b[i])) {
		d = (unsigned)(b[i] - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return (set_err(p, ERR_PROTO,
			    "literal size overflows at offset %zu", start));
		}
		v = v * 10 + d;
		i++;
	}
	if (i < lim && b[i] == '+') {
		i++;
	}
	if (i >= lim || b[i] != '}') {
		return (set_err(p, ERR_PROTO, "bad literal at offset %zu",
		    start));
	}
	i++;
	if (i < lim && b[i] == '\r') {
		i++;
	}
	if (i >= lim || b[i] != '\n') {
		return (set_err(p, ERR_PROTO,
		    "literal at offset %zu not at end of line", start));
	}
	i++;
	if (v > (uint64_t)(lim - i)) {
		return (set_err(p, ERR_PROTO,
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
				return (set_err(p, ERR_PROTO,
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
		return (set_err(p, ERR_PROTO,
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
	struct frame *f;
	size_t i = *ip, depth = 0, len = 0;
	const char *s = NULL;
	enum imap_tok_type type;
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
				return (set_err(p, ERR_PROTO,
				    "unterminated list opened at offset %zu",
				    p->stack[depth].open_off));
			}
			if (ctx == CTX_CODE) {
				return (set_err(p, ERR_PROTO,
				    "missing ']' after response code"));
			}
			break;
		}
		c = (unsigned char)b[i];
		if (c == ']' && ctx == CTX_CODE) {
			if (depth > 0) {
				return (set_err(p, ERR_PROTO,
				    "unbalanced ']' at offset %zu", i));
			}
			break;
		}
		if (c == ')') {
			if (depth == 0) {
				return (set_err(p, ERR_PROTO,
				    "unbalanced ')' at offset %zu", i));
			}
			depth--;
			i++;
			goto sep;
		}
		if (c == '\r' || c == '\n') {
			return (set_err(p, ERR_PROTO,
			    "unexpected line break at offset %zu", i));
		}
		if (c == '\0') {
			return (set_err(p, ERR_PROTO, "NUL byte at offset %zu",
			    i));
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
				return (set_err(p, ERR_TOOBIG,
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
		} else if (c == '{' ||
		    (c == '~' && i + 1 < lim && b[i + 1] == '{')) {
			if (c == '~') {
				i++;
			}
			type = IMAP_TOK_LITERAL;
			rv = tok_literal(p, &i, lim, &s, &len);
		} else {
			type = IMAP_TOK_ATOM;
			rv = tok_atom(p, &i, lim, ctx, &s, &len);
		}
		if (rv != 0) {
			return (rv);
		}
		if (type == IMAP_TOK_ATOM && len == 3 &&
		    strncasecmp(s, "NIL", 3) == 0) {
			type = IMAP_TOK_NIL;
		}
		t->type = type;
		t->s = s;
		t->len = len;
	sep:
		/* "(a)(b)" is how servers write address and body lists; a
		 * '(' never belongs to a token, so the NUL may land on it. */
		if (i < lim && b[i] != ' ' && b[i] != ')' && b[i] != '(' &&
		    !(ctx == CTX_CODE && b[i] == ']')) {
			return (set_err(p, ERR_PROTO,
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
		return (set_err(p, ERR_PROTO, "NUL byte in response text"));
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
	for (j = i + 1; j < lim && atom_char((unsigned char)b[j], CTX_CODE) &&
	     b[j] != '['; j++) {
	}
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
	struct tok_block *blk;
	struct imap_resp *r = &p->resp;
	size_t i, n, left = p->ntok;

	/* Tokens fill the blocks in order, so the first ntok are live. */
	for (blk = p->blocks; blk != NULL && left > 0; blk = blk->next) {
		n = left < TOK_BLOCK ? left : TOK_BLOCK;
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

static int
tokenize(struct imap_parser *p)
{
	char *b = p->buf.data;
	struct imap_resp *r = &p->resp;
	size_t lim = p->term, i, k;
	uint64_t num;
	int rv;

	p->cur = p->blocks;
	p->cur_used = 0;
	p->ntok = 0;
	memset(r, 0, sizeof(*r));
	if (lim == 0) {
		return (set_err(p, ERR_PROTO, "empty response line"));
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
			return (set_err(p, ERR_PROTO,
			    "bad byte 0x%02x in tag at offset %zu",
			    (unsigned char)b[i], i));
		}
	}
	if (i == 0) {
		return (set_err(p, ERR_PROTO, "response without a tag"));
	}
	if (i >= lim) {
		return (set_err(p, ERR_PROTO, "response without a keyword"));
	}
	if (i == 1 && b[0] == '*') {
		r->kind = IMAP_RESP_UNTAGGED;
	} else {
		r->kind = IMAP_RESP_TAGGED;
		r->tag = b;
		r->tag_len = i;
	}
	i++;
	if (r->kind == IMAP_RESP_UNTAGGED && i < lim &&
	    isdigit((unsigned char)b[i])) {
		num = 0;
		for (k = i; k < lim && isdigit((unsigned char)b[k]); k++) {
			num = num * 10 + (uint64_t)(b[k] - '0');
			if (num > UINT32_MAX) {
				return (set_err(p, ERR_PROTO,
				    "message number out of range at offset "
				    "%zu",
				    i));
			}
		}
		if (k >= lim || b[k] != ' ') {
			return (set_err(p, ERR_PROTO,
			    "expected keyword after number at offset %zu", k));
		}
		r->has_number = true;
		r->number = (uint32_t)num;
		i = k + 1;
	}
	for (k = i; k < lim && atom_char((unsigned char)b[k], CTX_CODE) &&
	     b[k] != '['; k++) {
	}
	if (k == i || (k < lim && b[k] != ' ')) {
		return (set_err(p, ERR_PROTO, "bad keyword at offset %zu", i));
	}
	upcase(b + i, k - i);
	r->name = b + i;
	r->name_len = k - i;
	if (!r->has_number && is_status_word(r->name, r->name_len)) {
		static const enum imap_status st[] = {IMAP_ST_OK, IMAP_ST_NO,
		    IMAP_ST_BAD, IMAP_ST_BYE, IMAP_ST_PREAUTH};
		static const char *const nm[] = {"OK", "NO", "BAD", "BYE",
		    "PREAUTH"};
		size_t s;

		for (s = 0; s < ARRAY_LEN(nm); s++) {
			if (strlen(nm[s]) == r->name_len &&
			    memcmp(nm[s], r->name, r->name_len) == 0) {
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
		return (set_err(p, ERR_PROTO,
		    "tagged response is not OK, NO or BAD"));
	}
	rv = tok_seq(p, &k, lim, CTX_DATA, &r->args);
	if (rv != 0) {
		return (rv);
	}
done:
	terminate_all(p);
	return (0);
}

/* Token helpers ----------------------------------------------------------- */

bool
imap_tok_is(const struct imap_tok *t, const char *s)
{
	size_t n;

	if (t == NULL || s == NULL || t->type == IMAP_TOK_LIST) {
		return (false);
	}
	n = strlen(s);
	return (t->len == n && strncasecmp(t->s, s, n) == 0);
}

bool
imap_tok_is_str(const struct imap_tok *t)
{
	return (t != NULL &&
	    (t->type == IMAP_TOK_ATOM || t->type == IMAP_TOK_STRING ||
		t->type == IMAP_TOK_LITERAL));
}

int
imap_tok_u64(const struct imap_tok *t, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;
	unsigned d;

	if (t == NULL || t->type != IMAP_TOK_ATOM || t->len == 0 ||
	    t->len > 20) {
		return (ERR_PROTO);
	}
	for (i = 0; i < t->len; i++) {
		if (!isdigit((unsigned char)t->s[i])) {
			return (ERR_PROTO);
		}
		d = (unsigned)(t->s[i] - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return (ERR_PROTO);
		}
		v = v * 10 + d;
	}
	*v_r = v;
	return (0);
}

int
imap_tok_u32(const struct imap_tok *t, uint32_t *v_r)
{
	uint64_t v;
	int rv;

	rv = imap_tok_u64(t, &v);
	if (rv != 0) {
		return (rv);
	}
	if (v > UINT32_MAX) {
		return (ERR_PROTO);
	}
	*v_r = (uint32_t)v;
	return (0);
}
