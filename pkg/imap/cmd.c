/*
 * cmd.c: command formatting. Mailbox names, user names and search strings
 * go to the server as astrings; this picks the cheapest safe form: a bare
 * atom, a quoted string, or a literal for anything with 8-bit bytes,
 * CR/LF or NUL (RFC 3501 section 4).
 */
#include <stdio.h>
#include <string.h>

#include "imap/imap.h"

/* ATOM-CHAR: any CHAR except atom-specials. */
static bool
is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f) {
		return (false);
	}
	return (strchr("(){%*\"\\]", c) == NULL);
}

static bool
is_quotable(unsigned char c)
{
	return (c != 0 && c < 0x80 && c != '\r' && c != '\n');
}

int
imap_append_astring(
    struct buf *b, const char *s, size_t len, bool nonsync_literal)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, mark;
	bool atom = len > 0, quotable = true;
	char hdr[48];
	int n, rv;

	for (i = 0; i < len; i++) {
		if (!is_atom_char(u[i])) {
			atom = false;
		}
		if (!is_quotable(u[i])) {
			quotable = false;
			break;
		}
	}
	/* A bare NIL would read as nil where a string is meant. */
	if (atom && len == 3 && strncasecmp(s, "NIL", 3) == 0) {
		atom = false;
	}
	if (atom) {
		return (buf_add(b, s, len));
	}
	mark = b->len;
	if (quotable) {
		rv = buf_add(b, "\"", 1);
		for (i = 0; rv == 0 && i < len; i++) {
			if (u[i] == '"' || u[i] == '\\') {
				rv = buf_add(b, "\\", 1);
			}
			if (rv == 0) {
				rv = buf_add(b, s + i, 1);
			}
		}
		if (rv == 0) {
			rv = buf_add(b, "\"", 1);
		}
		goto out;
	}
	n = snprintf(
	    hdr, sizeof(hdr), "{%zu%s}\r\n", len, nonsync_literal ? "+" : "");
	if (n < 0 || (size_t)n >= sizeof(hdr)) {
		return (ERR_INVAL);
	}
	rv = buf_add(b, hdr, (size_t)n);
	if (rv == 0) {
		rv = buf_add(b, s, len);
	}
out:
	if (rv != 0) {
		/* Leave b as it was. */
		b->len = mark;
		if (b->data != NULL) {
			b->data[mark] = '\0';
		}
	}
	return (rv);
}
