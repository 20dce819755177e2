/*
 * dump.c: imap_resp_format(), a canonical one-line rendering of a parsed
 * response. Tests compare it with expected text, and the fuzzer compares
 * the renderings of the same bytes fed in different chunkings. It shows
 * literal bytes, so it is never for logs.
 */
#include <stdio.h>

#include "imap/imap.h"

/* Nesting the renderer follows before writing "(...)". */
#define DUMP_MAX_DEPTH 1000

static int
dump_quoted(struct buf *b, const char *s, size_t len)
{
	size_t i;
	unsigned char c;
	int rv;

	rv = buf_add(b, "\"", 1);
	for (i = 0; rv == 0 && i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			rv = buf_printf(b, "\\%c", c);
		} else if (c < 0x20 || c >= 0x7f) {
			rv = buf_printf(b, "\\x%02x", c);
		} else {
			rv = buf_add(b, s + i, 1);
		}
	}
	if (rv == 0) {
		rv = buf_add(b, "\"", 1);
	}
	return (rv);
}

/* Atoms as they are, but with control and 8-bit bytes as \xNN. */
static int
dump_atom(struct buf *b, const char *s, size_t len)
{
	size_t i;
	unsigned char c;
	int rv = 0;

	for (i = 0; rv == 0 && i < len; i++) {
		c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f) {
			rv = buf_printf(b, "\\x%02x", c);
		} else {
			rv = buf_add(b, s + i, 1);
		}
	}
	return (rv);
}

static int
dump_toks(struct buf *b, const struct imap_tok *t, unsigned depth)
{
	int rv = 0;

	for (; rv == 0 && t != NULL; t = t->next) {
		switch (t->type) {
		case IMAP_TOK_ATOM:
			rv = dump_atom(b, t->s, t->len);
			break;
		case IMAP_TOK_STRING:
			rv = dump_quoted(b, t->s, t->len);
			break;
		case IMAP_TOK_LITERAL:
			rv = buf_printf(b, "{%zu}", t->len);
			if (rv == 0) {
				rv = dump_quoted(b, t->s, t->len);
			}
			break;
		case IMAP_TOK_STREAMED:
			rv = buf_printf(b, "{%zu}<streamed>", t->len);
			break;
		case IMAP_TOK_NIL:
			rv = buf_add(b, "NIL", 3);
			break;
		case IMAP_TOK_LIST:
			if (depth >= DUMP_MAX_DEPTH) {
				rv = buf_addstr(b, "(...)");
				break;
			}
			rv = buf_add(b, "(", 1);
			if (rv == 0) {
				rv = dump_toks(b, t->child, depth + 1);
			}
			if (rv == 0) {
				rv = buf_add(b, ")", 1);
			}
			break;
		}
		if (rv == 0 && t->next != NULL) {
			rv = buf_add(b, " ", 1);
		}
	}
	return (rv);
}

int
imap_resp_format(const struct imap_resp *r, struct buf *b)
{
	int rv;

	switch (r->kind) {
	case IMAP_RESP_CONT:
		rv = buf_add(b, "+ ", 2);
		if (rv == 0) {
			rv = dump_quoted(b, r->text, r->text_len);
		}
		return (rv);
	case IMAP_RESP_TAGGED:
		rv = buf_add(b, r->tag, r->tag_len);
		break;
	default:
		rv = buf_add(b, "*", 1);
		break;
	}
	if (rv == 0 && r->has_number) {
		rv = buf_printf(b, " %u", (unsigned)r->number);
	}
	if (rv == 0) {
		rv = buf_add(b, " ", 1);
	}
	if (rv == 0) {
		rv = buf_add(b, r->name, r->name_len);
	}
	if (r->status == IMAP_ST_NONE) {
		if (rv == 0 && r->args != NULL) {
			rv = buf_add(b, " ", 1);
			if (rv == 0) {
				rv = dump_toks(b, r->args, 0);
			}
		}
		return (rv);
	}
	if (rv == 0 && r->code != NULL) {
		rv = buf_add(b, " [", 2);
		if (rv == 0) {
			rv = buf_add(b, r->code, r->code_len);
		}
		if (rv == 0 && r->code_args != NULL) {
			rv = buf_add(b, " ", 1);
			if (rv == 0) {
				rv = dump_toks(b, r->code_args, 0);
			}
		}
		if (rv == 0) {
			rv = buf_add(b, "]", 1);
		}
	}
	if (rv == 0) {
		rv = buf_add(b, " ", 1);
	}
	if (rv == 0) {
		rv = dump_quoted(b, r->text, r->text_len);
	}
	return (rv);
}
