/*
 * stream.c: which message a streamed literal belongs to.
 *
 * A literal sink (parse.c) gets the bytes of a large literal before the
 * response around it is complete, so before the tokenizer has run. A
 * client that fetches the bodies of many messages in one command
 * (`UID FETCH 1:64 (UID BODY.PEEK[])`) must still know, at the first
 * byte, whose body it is. The response text before the literal is in
 * the parser's buffer ("* 12 FETCH (UID 34 BODY[] {5000}"); this file
 * scans it for the sequence number and a UID item that comes before the
 * literal. Servers such as Dovecot send UID first when it was asked
 * first; for the other order the UID is simply unknown here and the
 * caller learns it when the response completes.
 */
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

/* A cursor over the response prefix buf[0..end). */
struct scan {
	const struct imap_parser *p;
	const char *b;
	size_t i, end;
};

/* True when c is in set; a NUL byte is in every set (strchr would
 * find the set's own terminator). */
static bool
in_set(char c, const char *set)
{
	return (c == '\0' || strchr(set, c) != NULL);
}

/* Reads a number of at most 10 digits; false if none. */
static bool
scan_u32(struct scan *s, uint32_t *v_r)
{
	uint64_t v = 0;
	size_t n = 0;

	while (s->i < s->end && s->b[s->i] >= '0' && s->b[s->i] <= '9'
	    && n < 10) {
		v = v * 10 + (uint64_t)(s->b[s->i] - '0');
		s->i++;
		n++;
	}
	if (n == 0 || v > UINT32_MAX) {
		return (false);
	}
	*v_r = (uint32_t)v;
	return (true);
}

static bool
scan_lit(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if (s->end - s->i < n || strncasecmp(s->b + s->i, word, n) != 0) {
		return (false);
	}
	s->i += n;
	return (true);
}

/* True when a streamed literal's bytes would have started at off. */
static bool
was_streamed(const struct imap_parser *p, size_t off)
{
	size_t k;

	for (k = 0; k < p->nstreamed; k++) {
		if (p->streamed[k] == off) {
			return (true);
		}
	}
	return (false);
}

/* Skips a literal "~{n}\r\n" and its bytes; false at the literal being
 * streamed now (the end of the prefix) or on anything odd. */
static bool
skip_literal(struct scan *s)
{
	uint64_t v = 0;
	size_t nd = 0;

	if (s->i < s->end && s->b[s->i] == '~') {
		s->i++;
	}
	if (!scan_lit(s, "{")) {
		return (false);
	}
	while (s->i < s->end && s->b[s->i] >= '0' && s->b[s->i] <= '9'
	    && nd < 19) {
		v = v * 10 + (uint64_t)(s->b[s->i] - '0');
		s->i++;
		nd++;
	}
	if (nd == 0) {
		return (false);
	}
	(void)scan_lit(s, "+");
	if (!scan_lit(s, "}\r\n") && !scan_lit(s, "}\n")) {
		return (false);
	}
	if (s->i >= s->end || was_streamed(s->p, s->i)) {
		return (
		    false); /* this literal's bytes are not in the buffer */
	}
	if (v > s->end - s->i) {
		return (false);
	}
	s->i += (size_t)v;
	return (true);
}

/* Skips a quoted string; false if it does not end in the prefix. */
static bool
skip_quoted(struct scan *s)
{
	for (s->i++; s->i < s->end; s->i++) {
		if (s->b[s->i] == '\\') {
			s->i++;
		} else if (s->b[s->i] == '"') {
			s->i++;
			return (true);
		}
	}
	return (false);
}

/* Skips one value: atom, number, quoted string, literal or a list
 * (nesting bounded by the prefix's length, no recursion). */
static bool
skip_value(struct scan *s)
{
	size_t depth = 0;
	char c;

	do {
		if (s->i >= s->end) {
			return (false);
		}
		c = s->b[s->i];
		if (c == '(') {
			depth++;
			s->i++;
		} else if (c == ')') {
			if (depth == 0) {
				return (false);
			}
			depth--;
			s->i++;
		} else if (c == ' ') {
			s->i++;
		} else if (c == '"') {
			if (!skip_quoted(s)) {
				return (false);
			}
		} else if (c == '{' || c == '~') {
			if (!skip_literal(s)) {
				return (false);
			}
		} else {
			size_t start = s->i;

			while (s->i < s->end
			    && !in_set(s->b[s->i], " ()\"{\r\n")) {
				s->i++;
			}
			if (s->i == start) {
				return (
				    false); /* a byte that starts no value */
			}
		}
	} while (depth > 0);
	return (true);
}

/* Skips a FETCH item name such as BODY[HEADER.FIELDS (A B)]<0>. */
static bool
skip_name(struct scan *s)
{
	size_t start = s->i;

	while (s->i < s->end && !in_set(s->b[s->i], " ()[\"{\r\n")) {
		s->i++;
	}
	if (s->i < s->end && s->b[s->i] == '[') {
		while (s->i < s->end && s->b[s->i] != ']') {
			if (s->b[s->i] != '"') {
				s->i++;
			} else if (!skip_quoted(s)) {
				return (false);
			}
		}
		if (s->i >= s->end) {
			return (false);
		}
		s->i++;
		while (s->i < s->end && !in_set(s->b[s->i], " ()\r\n")) {
			s->i++; /* a partial fetch's <origin> */
		}
	}
	return (s->i > start);
}

int
imap_parser_stream_fetch(
    const struct imap_parser *p, uint32_t *seq_r, uint32_t *uid_r)
{
	struct scan s = { p, p->buf.data, 0, p->buf.len };
	uint32_t uid;
	size_t name;

	*seq_r = 0;
	*uid_r = 0;
	if (p->state != IMAPI_SCAN_STREAM || s.b == NULL || !scan_lit(&s, "* ")
	    || !scan_u32(&s, seq_r) || !scan_lit(&s, " FETCH (")) {
		*seq_r = 0;
		return (ERR_NOTFOUND);
	}
	/* Item name, space, value; until UID or the streamed literal. */
	for (;;) {
		name = s.i;
		if (!skip_name(&s) || !scan_lit(&s, " ")) {
			return (0);
		}
		if (s.i - name == 4
		    && strncasecmp(s.b + name, "UID ", 4) == 0) {
			if (scan_u32(&s, &uid)) {
				*uid_r = uid;
			}
			return (0);
		}
		if (!skip_value(&s)) {
			return (0);
		}
		(void)scan_lit(&s, " ");
	}
}
