/*
 * pkg/imap: a pure IMAP4rev1 client engine. Bytes in, parsed responses
 * out; no sockets, no nng, no SQLite (pkg/net moves the bytes).
 *
 *   parse.c   the incremental response parser (one response at a time,
 *             every size bounded by struct imap_limits)
 *   fetch.c   FETCH data items -> struct imap_fetch (ENVELOPE, FLAGS,
 *             ...)
 *   bodystructure.c  BODYSTRUCTURE -> attachments, has_attachments
 *   list.c    LIST / STATUS / SELECT data -> small structs
 *   utf7.c    modified UTF-7 mailbox names (RFC 3501 5.1.3)
 *   uidplus.c COPYUID / APPENDUID response codes (RFC 4315)
 *   stream.c  which FETCH a streamed literal belongs to
 *   cmd.c     command formatting: tags, quoting, literals
 */
#ifndef MAILSYNC_IMAP_H
#define MAILSYNC_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/base.h"

/* Limits fixed when the parser is created. */
struct imap_limits {
	size_t max_line;     /* bytes in one line, excluding literals */
	size_t max_literal;  /* bytes in one literal */
	size_t max_response; /* bytes in one whole response (with literals) */
	size_t max_depth;    /* nesting of parenthesised lists */
	size_t max_tokens;   /* tokens in one response */
};
/* Defaults: 64 KiB line, 8 MiB literal, 16 MiB response, depth 64,
 * 100000 tokens. */
void imap_limits_default(struct imap_limits *l);

enum imap_tok_type {
	IMAP_TOK_ATOM,	  /* includes numbers and flags like \Seen */
	IMAP_TOK_STRING,  /* quoted string, unescaped */
	IMAP_TOK_LITERAL, /* {n} literal, raw bytes */
	IMAP_TOK_NIL,
	IMAP_TOK_LIST, /* ( ... ); also [ ... ] inside BODY[...] atoms is
		       * kept in the atom text */
	IMAP_TOK_STREAMED /* a literal given to the literal sink, not kept:
			   * s is NULL and len its size in bytes */
};

/* One token. Strings are views into the parser; see imap_parser_feed. */
struct imap_tok {
	enum imap_tok_type type;
	const char *s; /* atom/string/literal bytes (NUL-terminated) */
	size_t len;
	struct imap_tok *child; /* first element of a list */
	size_t nchild;
	struct imap_tok *next; /* next sibling */
};

enum imap_resp_kind {
	IMAP_RESP_UNTAGGED, /* "* ..." */
	IMAP_RESP_TAGGED,   /* "A001 OK ..." */
	IMAP_RESP_CONT	    /* "+ ..." */
};

enum imap_status {
	IMAP_ST_NONE = 0, /* a data response, not a status response */
	IMAP_ST_OK,
	IMAP_ST_NO,
	IMAP_ST_BAD,
	IMAP_ST_BYE,
	IMAP_ST_PREAUTH
};

/*
 * One complete response. For status responses (OK/NO/BAD/BYE/PREAUTH,
 * tagged or not) `status` is set, `code`/`code_args` hold the optional
 * [RESP-CODE args] and `text` the human text. For data responses `name` is
 * the keyword upper-cased in place ("FETCH", "LIST", "CAPABILITY",
 * "EXISTS"...), `number` the leading message number if any ("* 5 FETCH"),
 * and `args` the tokens after the keyword. For "+" only `text` is set.
 */
struct imap_resp {
	enum imap_resp_kind kind;
	const char *tag; /* tagged only */
	size_t tag_len;
	enum imap_status status;
	const char *name; /* upper-cased keyword; "OK" etc. for status */
	size_t name_len;
	bool has_number;
	uint32_t number;
	const char *code; /* upper-cased, e.g. "UIDVALIDITY", or NULL */
	size_t code_len;
	struct imap_tok *code_args; /* tokens after the code, or NULL */
	const char *text;	    /* NUL-terminated, may be "" */
	size_t text_len;
	struct imap_tok *args; /* data response tokens */
};

struct imap_parser;

/* Creates a parser with limits l (copied); *p_r owned by the caller. */
int imap_parser_new(const struct imap_limits *l, struct imap_parser **p_r);
/* Frees *p and sets it to NULL. */
void imap_parser_free(struct imap_parser **p);

/*
 * Feeds up to len bytes. Consumes what it can and sets *used_r. Returns:
 *   1  a complete response is in *resp_r; it and every view into it stay
 *      valid until the next call to imap_parser_feed() or _free(). Call
 *      again with the remaining bytes (data + *used_r).
 *   0  all len bytes consumed, response not complete yet.
 *  <0  ERR_PROTO (malformed), ERR_TOOBIG (a limit), ERR_NOMEM. The parser
 *      is then unusable; imap_parser_error() says what and where.
 * Feeding the same bytes in any chunking yields the same responses.
 */
int imap_parser_feed(struct imap_parser *p, const char *data, size_t len,
    size_t *used_r, const struct imap_resp **resp_r);

/*
 * Literal sink: where the bytes of large literals go instead of the
 * response buffer. fn gets every byte of such a literal, in order and in
 * any chunking (chunk points into the caller's data of that feed call and
 * is valid during the call only): offset is where chunk starts within the
 * literal, total the literal's announced size. A non-zero return (an enum
 * err) stops the parser with that error.
 */
typedef int (*imap_literal_sink_fn)(const char *chunk, size_t len,
    uint64_t offset, uint64_t total, void *arg);

/*
 * From the next literal announcement on, a literal of more than threshold
 * bytes is streamed to fn (arg borrowed) instead of being buffered; its
 * token is IMAP_TOK_STREAMED. Streamed literals count neither against
 * max_literal nor max_response; one of more than max bytes is ERR_TOOBIG
 * before any of its bytes is read. fn NULL removes the sink (buffer every
 * literal again). Returns 0, or ERR_INVAL for max 0 with a sink.
 */
int imap_parser_set_literal_sink(struct imap_parser *p, uint64_t threshold,
    uint64_t max, imap_literal_sink_fn fn, void *arg);
/*
 * For a literal sink (stream.c): while a literal is being streamed and
 * the response is "* n FETCH (...", *seq_r is n and *uid_r the value of
 * a UID item that came before the literal, 0 when none did (the server
 * sent it after, or the text before is beyond this scan). ERR_NOTFOUND
 * (both 0) when no literal is streaming or the response is no FETCH.
 */
int imap_parser_stream_fetch(
    const struct imap_parser *p, uint32_t *seq_r, uint32_t *uid_r);

/* Text of the last error, e.g. "literal of 9999999999 bytes exceeds
 * limit 8388608". Never NULL. */
const char *imap_parser_error(const struct imap_parser *p);

/* Case-insensitive compare of a token/atom against a C string. */
bool imap_tok_is(const struct imap_tok *t, const char *s);
/* Parses an atom token as a u32 / u64 number; ERR_PROTO if not one. */
int imap_tok_u32(const struct imap_tok *t, uint32_t *v_r);
int imap_tok_u64(const struct imap_tok *t, uint64_t *v_r);
/* True for tokens usable as strings (atom, string, literal; a streamed
 * literal is not one). */
bool imap_tok_is_str(const struct imap_tok *t);

/*
 * Appends a one-line, unambiguous rendering of r to b, for tests, fuzzers
 * and debugging (never for logs: it includes literal bytes). Tokens are
 * written as atoms, "quoted" (\" \\ and \xNN escaped), {n}"bytes" for
 * literals, {n}<streamed> for streamed literals, NIL and (lists); e.g. `* 3 FETCH (UID 7 BODY[] {2}"hi")` or
 * `A1 OK [UIDNEXT 5] "done"`. Returns 0 or the buf_add error.
 */
int imap_resp_format(const struct imap_resp *r, struct buf *b);

/* FETCH ------------------------------------------------------------------ */

#define IMAP_FLAG_SEEN 0x01u
#define IMAP_FLAG_ANSWERED 0x02u
#define IMAP_FLAG_FLAGGED 0x04u
#define IMAP_FLAG_DELETED 0x08u
#define IMAP_FLAG_DRAFT 0x10u

/* Attachments listed per message at most; further ones are left out. */
#define IMAP_MAX_ATTACHMENTS 1000u
/* Longest filename or content-id kept, in bytes: a longer filename is
 * cut at a character boundary, a longer content-id left out. */
#define IMAP_MAX_ATTACHMENT_STR 1024u

/* One attachment found in BODYSTRUCTURE (rules in bodystructure.c).
 * Strings are heap-allocated clean UTF-8, NULL when absent. */
struct imap_attachment {
	char *part;	   /* IMAP part number: "2", "1.3"; never NULL */
	char *filename;	   /* RFC 2231 / 2047 decoded */
	char *mime_type;   /* lower-case "type/subtype"; never NULL */
	uint64_t size;	   /* body size field: encoded octets, 0 unknown */
	char *disposition; /* lower-case "attachment", "inline"... */
	char *content_id;  /* as sent, e.g. "<logo@x>" */
};

/* What one "* n FETCH (...)" carried. Strings are heap-allocated UTF-8,
 * NULL when absent; imap_fetch_release() frees them. */
struct imap_fetch {
	uint32_t seq;
	uint32_t uid; /* 0 when UID was not in the response */
	bool has_flags;
	uint32_t flags;	 /* IMAP_FLAG_* */
	char *keywords;	 /* other flags, space-separated, \Recent dropped */
	bool has_modseq;
	uint64_t modseq;
	bool has_internal_date;
	int64_t internal_date; /* unix seconds */
	bool has_size;
	uint64_t size;
	bool has_envelope;
	int64_t date; /* envelope date, unix seconds; 0 unparseable */
	char *subject;	  /* RFC 2047 decoded */
	char *from;	  /* "Name <a@b>, ..." decoded */
	char *to;
	char *cc;
	char *message_id; /* as sent, with <> */
	bool has_bodystructure;
	bool has_attachments; /* nattachments > 0 */
	struct imap_attachment *attachments; /* in part order */
	size_t nattachments;
};

/* Fills f from a FETCH response (resp->name == "FETCH"). Unknown items
 * are skipped; a malformed known item is ERR_PROTO. On error f holds
 * nothing to free. */
int imap_fetch_parse(const struct imap_resp *resp, struct imap_fetch *f);
void imap_fetch_release(struct imap_fetch *f);

/* LIST / SELECT / STATUS --------------------------------------------------- */

/* One "* LIST (attrs) delim name" line. name is decoded to UTF-8. */
struct imap_list_item {
	char *name;	 /* UTF-8, heap */
	char *raw_name;	 /* as on the wire (mUTF-7), heap; for commands */
	char delimiter;	 /* 0 when NIL */
	bool noselect;	 /* \Noselect or \NonExistent */
	const char *role; /* static: "inbox","sent",... or NULL */
};
int imap_list_parse(const struct imap_resp *resp, struct imap_list_item *it);
void imap_list_item_release(struct imap_list_item *it);

/* Guesses a role from a decoded name when SPECIAL-USE gave none. */
const char *imap_role_from_name(const char *name);

/* STATUS, SEARCH, VANISHED (status.c) -------------------------------------- */

struct imap_mbox_status {
	bool has_uidvalidity, has_uidnext, has_messages, has_highestmodseq;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t messages;
	uint64_t highestmodseq;
};
/* Parses "* STATUS name (...)": *name_r gets the decoded name (heap,
 * caller frees). ERR_INVAL if r is not STATUS, ERR_PROTO if malformed. */
int imap_status_parse(const struct imap_resp *r, char **name_r,
    struct imap_mbox_status *st);

/* A compact UID set ("1:4,9") built from ascending UIDs, capped at max
 * bytes (ERR_TOOBIG). A UID not above the last marks it `unordered`. */
struct imap_uidset {
	struct buf s;
	uint32_t lo, hi;
	bool open;
	bool unordered;
	uint64_t count; /* UIDs in the set */
};
void imap_uidset_init(struct imap_uidset *u, size_t max);
void imap_uidset_release(struct imap_uidset *u);
int imap_uidset_add_range(struct imap_uidset *u, uint32_t lo, uint32_t hi);
/* Adds an IMAP sequence-set of numbers ("1:3,5"); ERR_PROTO if bad. */
int imap_uidset_add_set(struct imap_uidset *u, const char *s, size_t n);
/* Writes the last open range; u->s.data is then the set text. */
int imap_uidset_finish(struct imap_uidset *u);

/* Adds the UIDs of a SEARCH or ESEARCH (ALL) response to u: returns 1 if
 * r was one, 0 if r is something else, <0 on error. */
int imap_search_collect(const struct imap_resp *r, struct imap_uidset *u);

/* "* VANISHED [(EARLIER)] set": the set text (a view into r). */
int imap_vanished_parse(const struct imap_resp *r, bool *earlier_r,
    const char **set_r, size_t *len_r);

/* UIDPLUS response codes (uidplus.c) -------------------------------------- */

/* [COPYUID uidvalidity src-set dst-set]; the sets are views into r. */
struct imap_copyuid {
	uint32_t uidvalidity;
	const char *src;
	size_t src_len;
	const char *dst;
	size_t dst_len;
	uint64_t count; /* UIDs in each set */
};
/* Reads r's [COPYUID ...] (an OK response, tagged or not): 0,
 * ERR_NOTFOUND when r carries no COPYUID, ERR_PROTO when malformed or the
 * sets differ in size. */
int imap_copyuid_parse(const struct imap_resp *r, struct imap_copyuid *c);
/* The destination UID of src_uid: 0, ERR_NOTFOUND (not in the source
 * set), ERR_PROTO. */
int imap_copyuid_lookup(const struct imap_copyuid *c, uint32_t src_uid,
    uint32_t *dst_uid_r);
/* Reads r's [APPENDUID uidvalidity uid] (one message appended): 0,
 * ERR_NOTFOUND, ERR_PROTO (also for a set of more than one UID). */
int imap_appenduid_parse(const struct imap_resp *r, uint32_t *uidvalidity_r,
    uint32_t *uid_r);

/* Modified UTF-7 ---------------------------------------------------------- */

/* Decodes a mUTF-7 mailbox name into malloc'd UTF-8 (*out_r; caller
 * frees). ERR_PROTO for malformed input. */
int imap_utf7_decode(const char *in, size_t len, char **out_r);
/* Encodes UTF-8 into malloc'd mUTF-7. ERR_INVAL for invalid UTF-8. */
int imap_utf7_encode(const char *in, size_t len, char **out_r);

/* Command formatting ------------------------------------------------------ */

/* Appends s to b as an IMAP astring: atom when safe, quoted when
 * printable, literal ({n}\r\n + bytes; LITERAL+ form when nonsync) else. */
int imap_append_astring(struct buf *b, const char *s, size_t len,
    bool nonsync_literal);

#endif
