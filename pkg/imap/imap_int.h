/*
 * imap_int.h: what parse.c (the scanner, which gathers one complete
 * response) and tokenize.c (which turns it into the token tree) share,
 * and the BODYSTRUCTURE walk fetch.c calls in bodystructure.c.
 * Not for use outside pkg/imap.
 */
#ifndef MAILSYNC_IMAP_INT_H
#define MAILSYNC_IMAP_INT_H

#include "imap/imap.h"

#define IMAPI_TOK_BLOCK 256

/* Tokens are allocated from a chain of these, reused response after
 * response; at most limits.max_tokens are in use. */
struct imapi_tok_block {
	struct imapi_tok_block *next;
	struct imap_tok t[IMAPI_TOK_BLOCK];
};

/* One open list while tokenizing. */
struct imapi_frame {
	struct imap_tok *list; /* NULL for the top level */
	struct imap_tok **tail;
	size_t open_off; /* offset of the '(' */
};

enum imapi_scan_state {
	IMAPI_SCAN_LINE,
	IMAPI_SCAN_LITERAL,
	IMAPI_SCAN_STREAM, /* a literal going to the sink */
	IMAPI_SCAN_DONE
};

struct imap_parser {
	struct imap_limits lim;
	struct buf buf; /* the response being accumulated */
	enum imapi_scan_state state;
	size_t line_start; /* offset where the current line segment starts */
	uint64_t lit_left; /* literal bytes still to read */
	size_t term; /* offset of the final line terminator */

	struct imapi_tok_block *blocks; /* arena */
	struct imapi_tok_block *cur;
	size_t cur_used;
	size_t ntok;

	struct imapi_frame *stack; /* grows up to max_depth + 1 */
	size_t stack_cap;

	/* Literal sink (imap_parser_set_literal_sink). */
	imap_literal_sink_fn sink;
	void *sink_arg;
	uint64_t sink_threshold, sink_max;
	uint64_t stream_total, stream_off; /* the literal being streamed */
	/* Offsets in buf where the bytes of each streamed literal of this
	 * response would have been; the tokenizer walks them in order. */
	size_t *streamed;
	size_t nstreamed, capstreamed, streamed_next;

	struct imap_resp resp;
	int err_code; /* sticky once set */
	char err[256];
};

/* Records an error (text and code) in p; returns code. */
int imapi_set_err(struct imap_parser *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True for OK, NO, BAD, BYE, PREAUTH (any case). */
bool imapi_is_status_word(const char *s, size_t n);

/* Tokenizes the complete response in p->buf (final line terminator at
 * p->term) into p->resp. 0 or an error recorded with imapi_set_err. */
int imapi_tokenize(struct imap_parser *p);

/* bodystructure.c: fills f->attachments (freeing any earlier list) and
 * f->has_attachments from a BODYSTRUCTURE value v (borrowed). 0 or
 * ERR_NOMEM (then f holds no list); odd forms are never an error. */
int imapi_bodystructure(const struct imap_tok *v, struct imap_fetch *f);
/* Frees f->attachments; has_attachments becomes false. */
void imapi_attachments_free(struct imap_fetch *f);

#endif
