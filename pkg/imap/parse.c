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
 * With a literal sink installed (imap_parser_set_literal_sink), a literal
 * larger than the sink's threshold is not buffered: its bytes go to the
 * sink as they arrive and only its position is remembered, so a message
 * body of any size passes through a buffer of one line.
 *
 * The complete response then goes to tokenize.c (imapi_tokenize), which
 * builds the token tree; imap_int.h is what the two files share.
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

#include "imap/imap_int.h"

#define SHRINK_ABOVE (1024u * 1024)

int
imapi_set_err(struct imap_parser *p, int code, const char *fmt, ...)
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

	if (l == NULL || p_r == NULL || l->max_line == 0
	    || l->max_response == 0 || l->max_tokens == 0) {
		return (ERR_INVAL);
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return (ERR_NOMEM);
	}
	p->lim = *l;
	buf_init(&p->buf, l->max_response);
	p->state = IMAPI_SCAN_LINE;
	snprintf(p->err, sizeof(p->err), "no error");
	*p_r = p;
	return (0);
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p;
	struct imapi_tok_block *b, *nb;

	if (pp == NULL || *pp == NULL) {
		return;
	}
	p = *pp;
	buf_release(&p->buf);
	free(p->streamed);
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

int
imap_parser_set_literal_sink(struct imap_parser *p, uint64_t threshold,
    uint64_t max, imap_literal_sink_fn fn, void *arg)
{
	if (fn != NULL && max == 0) {
		return (ERR_INVAL);
	}
	if (max > SIZE_MAX) {
		max = SIZE_MAX; /* a token's len is a size_t */
	}
	p->sink = fn;
	p->sink_arg = arg;
	p->sink_threshold = threshold;
	p->sink_max = fn != NULL ? max : 0;
	return (0);
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
	p->state = IMAPI_SCAN_LINE;
	p->line_start = 0;
	p->lit_left = 0;
	p->stream_total = 0;
	p->stream_off = 0;
	p->nstreamed = 0;
	p->streamed_next = 0;
	p->term = 0;
	p->cur = p->blocks;
	p->cur_used = 0;
	p->ntok = 0;
	memset(&p->resp, 0, sizeof(p->resp));
}

/* Scanner ----------------------------------------------------------------- */

bool
imapi_is_status_word(const char *s, size_t n)
{
	static const char *const words[]
	    = { "OK", "NO", "BAD", "BYE", "PREAUTH" };
	size_t i;

	for (i = 0; i < ARRAY_LEN(words); i++) {
		if (strlen(words[i]) == n
		    && strncasecmp(s, words[i], n) == 0) {
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
	for (i = 0; i < term && b[i] != ' '; i++) { }
	if (i >= term) {
		return (false);
	}
	i++;
	for (k = i; k < term && b[k] != ' '; k++) { }
	return (imapi_is_status_word(b + i, k - i));
}

/* Starts streaming a literal of v bytes whose bytes would start at the
 * current end of the buffer. */
static int
stream_start(struct imap_parser *p, uint64_t v)
{
	size_t *ns, ncap;

	if (v > p->sink_max) {
		return (imapi_set_err(p, ERR_TOOBIG,
		    "streamed literal of %llu bytes exceeds limit %llu",
		    (unsigned long long)v, (unsigned long long)p->sink_max));
	}
	if (p->nstreamed >= p->lim.max_tokens) {
		return (imapi_set_err(p, ERR_TOOBIG,
		    "response has more than %zu streamed literals",
		    p->lim.max_tokens));
	}
	if (p->nstreamed == p->capstreamed) {
		ncap = p->capstreamed == 0 ? 4 : p->capstreamed * 2;
		ns = realloc(p->streamed, ncap * sizeof(*ns));
		if (ns == NULL) {
			return (imapi_set_err(p, ERR_NOMEM, "out of memory"));
		}
		p->streamed = ns;
		p->capstreamed = ncap;
	}
	p->streamed[p->nstreamed++] = p->buf.len;
	p->line_start = p->buf.len;
	p->stream_total = v;
	p->stream_off = 0;
	p->state = IMAPI_SCAN_STREAM;
	return (0);
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
		return (imapi_set_err(p, ERR_TOOBIG,
		    "line longer than %zu bytes", p->lim.max_line));
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
	     j--) { }
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
	if (!over && p->sink != NULL && v > p->sink_threshold) {
		return (stream_start(p, v));
	}
	if (over || v > p->lim.max_literal) {
		nd = i - j;
		return (imapi_set_err(p, ERR_TOOBIG,
		    "literal of %.*s%s bytes exceeds limit %zu",
		    (int)(nd > 40 ? 40 : nd), b + j, nd > 40 ? "..." : "",
		    p->lim.max_literal));
	}
	if (v > p->lim.max_response - p->buf.len) {
		return (imapi_set_err(p, ERR_TOOBIG,
		    "response with literal of %llu bytes exceeds limit %zu",
		    (unsigned long long)v, p->lim.max_response));
	}
	p->line_start = p->buf.len;
	if (v > 0) {
		p->lit_left = v;
		p->state = IMAPI_SCAN_LITERAL;
	}
	return (0);

complete:
	p->term = term;
	return (1);
}

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
	if (p->state == IMAPI_SCAN_DONE) {
		reset_response(p);
	}
	while (off < len) {
		if (p->state == IMAPI_SCAN_STREAM) {
			n = len - off;
			if ((uint64_t)n > p->stream_total - p->stream_off) {
				n = (size_t)(p->stream_total - p->stream_off);
			}
			rv = p->sink(data + off, n, p->stream_off,
			    p->stream_total, p->sink_arg);
			if (rv != 0) {
				rv = imapi_set_err(p, rv < 0 ? rv : ERR_IO,
				    "literal sink refused %zu bytes at offset "
				    "%llu: %s",
				    n, (unsigned long long)p->stream_off,
				    err_str(rv < 0 ? rv : ERR_IO));
				goto fail;
			}
			off += n;
			p->stream_off += n;
			if (p->stream_off == p->stream_total) {
				p->state = IMAPI_SCAN_LINE;
				p->line_start = p->buf.len;
			}
			continue;
		}
		if (p->state == IMAPI_SCAN_LITERAL) {
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
				p->state = IMAPI_SCAN_LINE;
				p->line_start = p->buf.len;
			}
			continue;
		}
		nl = memchr(data + off, '\n', len - off);
		n = nl != NULL ? (size_t)(nl - (data + off)) + 1 : len - off;
		seg = p->buf.len - p->line_start + n;
		/* Without the newline yet, allow one byte for a pending CR. */
		if (nl == NULL && seg > p->lim.max_line + 1) {
			rv = imapi_set_err(p, ERR_TOOBIG,
			    "line longer than %zu bytes", p->lim.max_line);
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
			rv = imapi_tokenize(p);
			if (rv != 0) {
				goto fail;
			}
			p->state = IMAPI_SCAN_DONE;
			*used_r = off;
			*resp_r = &p->resp;
			return (1);
		}
	}
	*used_r = off;
	return (0);

fail_add:
	if (rv == ERR_TOOBIG) {
		rv = imapi_set_err(p, ERR_TOOBIG,
		    "response longer than %zu bytes", p->lim.max_response);
	} else {
		rv = imapi_set_err(
		    p, rv, "out of memory buffering a response");
	}
fail:
	*used_r = off;
	return (rv);
}

/* Token helpers ----------------------------------------------------------- */

bool
imap_tok_is(const struct imap_tok *t, const char *s)
{
	size_t n;

	if (t == NULL || s == NULL || t->type == IMAP_TOK_LIST
	    || t->s == NULL) {
		return (false);
	}
	n = strlen(s);
	return (t->len == n && strncasecmp(t->s, s, n) == 0);
}

bool
imap_tok_is_str(const struct imap_tok *t)
{
	return (t != NULL
	    && (t->type == IMAP_TOK_ATOM || t->type == IMAP_TOK_STRING
	        || t->type == IMAP_TOK_LITERAL));
}

int
imap_tok_u64(const struct imap_tok *t, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;
	unsigned d;

	if (t == NULL || t->type != IMAP_TOK_ATOM || t->len == 0
	    || t->len > 20) {
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
