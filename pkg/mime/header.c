/*
 * header.c: the header section of a raw RFC 5322 message: where it ends,
 * one field's unfolded value, and a copy without some field (Bcc before
 * SMTP). Line ends may be CRLF or bare LF; nothing is read past len.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "mime/mime.h"

/* One physical line of msg: [p, p + len), next line at p + len + eol. */
struct line {
	const char *p;
	size_t len;
	size_t eol; /* 1 for LF, 2 for CRLF, 0 at the end of the input */
};

/* The line starting at off; false at the end of the input. */
static bool
line_at(const char *msg, size_t len, size_t off, struct line *l)
{
	const char *nl;

	if (off >= len) {
		return (false);
	}
	l->p = msg + off;
	nl = memchr(l->p, '\n', len - off);
	if (nl == NULL) {
		l->len = len - off;
		l->eol = 0;
		return (true);
	}
	l->len = (size_t)(nl - l->p);
	l->eol = 1;
	if (l->len > 0 && l->p[l->len - 1] == '\r') {
		l->len--;
		l->eol = 2;
	}
	return (true);
}

static bool
is_wsp(char c)
{
	return (c == ' ' || c == '\t');
}

/* Length of the field name of a field line ("Subject: x" -> 7), 0 if the
 * line is not one (RFC 5322 2.2: printable ASCII but colon; obsolete
 * whitespace before the colon is allowed). */
static size_t
field_name_len(const struct line *l)
{
	size_t i, n;

	for (i = 0; i < l->len; i++) {
		unsigned char c = (unsigned char)l->p[i];

		if (c == ':' || c <= 32 || c >= 127) {
			break;
		}
	}
	n = i;
	while (i < l->len && is_wsp(l->p[i])) {
		i++;
	}
	return (n > 0 && i < l->len && l->p[i] == ':' ? n : 0);
}

/*
 * Walks the header section. For each field calls fn with the field's
 * first line offset, the offset just past its last line (continuations
 * included) and its name. Stops at the empty line (*end_r past it).
 */
typedef int (*field_fn)(size_t start, size_t stop, const struct line *first,
    size_t name_len, void *arg);

static int
walk(const char *msg, size_t len, field_fn fn, void *arg, size_t *end_r)
{
	struct line l, first;
	size_t off = 0, start = 0, name_len = 0;
	bool have = false;
	int rv;

	while (line_at(msg, len, off, &l)) {
		if (l.len == 0 && l.eol != 0) {
			if (have && fn != NULL) {
				rv = fn(start, off, &first, name_len, arg);
				if (rv != 0) {
					return (rv);
				}
			}
			*end_r = off + l.eol;
			return (0);
		}
		if (l.eol == 0) {
			break; /* the input ends inside the header */
		}
		if (is_wsp(l.p[0])) {
			if (!have) {
				return (
				    ERR_INVAL); /* continuation of nothing */
			}
		} else {
			if (have && fn != NULL) {
				rv = fn(start, off, &first, name_len, arg);
				if (rv != 0) {
					return (rv);
				}
			}
			name_len = field_name_len(&l);
			if (name_len == 0) {
				return (ERR_INVAL);
			}
			first = l;
			start = off;
			have = true;
		}
		off += l.len + l.eol;
	}
	return (ERR_INVAL);
}

int
mime_header_end(const char *msg, size_t len, size_t *end_r)
{
	return (walk(msg, len, NULL, NULL, end_r));
}

struct get_state {
	const char *msg;
	size_t len;
	const char *name;
	size_t name_len;
	size_t start, stop; /* the field found; stop == 0: none */
};

static int
get_fn(size_t start, size_t stop, const struct line *first, size_t name_len,
    void *arg)
{
	struct get_state *g = arg;

	if (g->stop == 0 && name_len == g->name_len
	    && strncasecmp(first->p, g->name, name_len) == 0) {
		g->start = start;
		g->stop = stop;
	}
	return (0);
}

int
mime_header_get(const char *msg, size_t len, const char *name, char **out_r)
{
	struct get_state g = { msg, len, name, strlen(name), 0, 0 };
	struct line l;
	struct buf b;
	size_t end, off, i;
	bool first = true;
	int rv;

	*out_r = NULL;
	rv = walk(msg, len, get_fn, &g, &end);
	if (rv != 0) {
		return (rv);
	}
	if (g.stop == 0) {
		return (ERR_NOTFOUND);
	}
	if (g.stop - g.start > MIME_MAX_HEADER) {
		return (ERR_TOOBIG);
	}
	buf_init(&b, MIME_MAX_HEADER + 1);
	/* Unfold: each line's text joined, the line breaks removed. */
	for (off = g.start; rv == 0 && off < g.stop; off += l.len + l.eol) {
		(void)line_at(msg, len, off, &l);
		i = 0;
		if (first) {
			const char *colon = memchr(l.p, ':', l.len);

			i = (size_t)(colon - l.p) + 1;
			first = false;
		}
		rv = buf_add(&b, l.p + i, l.len - i);
	}
	if (rv == 0) {
		rv = buf_add(&b, "", 1);
	}
	if (rv != 0) {
		buf_release(&b);
		return (rv);
	}
	/* Trim: the value is what lies between the outer whitespace. */
	for (i = 0; is_wsp(b.data[i]); i++) { }
	end = strlen(b.data + i);
	while (end > 0 && is_wsp(b.data[i + end - 1])) {
		end--;
	}
	*out_r = xstrndup(b.data + i, end);
	buf_release(&b);
	return (*out_r != NULL ? 0 : ERR_NOMEM);
}

struct strip_state {
	const char *msg;
	const char *name;
	size_t name_len;
	struct buf *out;
	size_t copied; /* msg[0, copied) has been dealt with */
};

static int
strip_fn(size_t start, size_t stop, const struct line *first, size_t name_len,
    void *arg)
{
	struct strip_state *s = arg;
	int rv = 0;

	if (name_len == s->name_len
	    && strncasecmp(first->p, s->name, name_len) == 0) {
		rv = buf_add(s->out, s->msg + s->copied, start - s->copied);
		s->copied = stop;
	}
	return (rv);
}

int
mime_header_strip(
    const char *msg, size_t len, const char *name, struct buf *out)
{
	struct strip_state s = { msg, name, strlen(name), out, 0 };
	size_t end;
	int rv;

	rv = walk(msg, len, strip_fn, &s, &end);
	if (rv != 0) {
		return (rv);
	}
	return (buf_add(out, msg + s.copied, len - s.copied));
}
