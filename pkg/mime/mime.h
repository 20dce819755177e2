/*
 * pkg/mime: the RFC 5322 / MIME header helpers sync needs to turn what a
 * server sends into clean UTF-8 columns. Pure functions, no I/O.
 *
 *   rfc2047.c  encoded-words ("=?utf-8?B?...?=") to UTF-8, through iconv
 *   date.c     RFC 5322 dates and IMAP INTERNALDATE to unix seconds
 *   rfc2231.c  RFC 2231 extended parameter values to UTF-8
 *   charset.c  MIME charset names to iconv, conversion to UTF-8
 *   utf8.c     UTF-8 validation and the ISO-8859-1 fallback
 */
#ifndef MAILSYNC_MIME_H
#define MAILSYNC_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* Longest header value we decode; longer input is ERR_TOOBIG. */
#define MIME_MAX_HEADER (256u * 1024)

/*
 * Decodes RFC 2047 encoded-words in a header value into malloc'd UTF-8
 * (*out_r, caller frees). Whitespace between adjacent encoded-words is
 * dropped as the RFC says. Unknown charsets and bad encodings are kept
 * as the raw text rather than failing; bytes that are not valid UTF-8
 * outside encoded-words are read as ISO-8859-1. Returns 0, ERR_NOMEM or
 * ERR_TOOBIG.
 */
int mime_decode_header(const char *in, size_t len, char **out_r);

/*
 * Parses an RFC 5322 date-time ("Tue, 1 Jul 2003 10:52:37 +0200", with
 * the obsolete forms: no weekday, 2-digit years, zone names like GMT/EST,
 * missing seconds) into unix seconds. ERR_INVAL if it is not a date.
 */
int mime_parse_date(const char *in, size_t len, int64_t *t_r);

/* Parses an IMAP date-time ("17-Jul-1996 02:44:25 -0700"). ERR_INVAL. */
int mime_parse_internaldate(const char *in, size_t len, int64_t *t_r);

/* Parses an RFC 3339 date-time as JMAP sends it ("2026-11-22T18:38:18Z",
 * "...18.250+01:00"; fractions dropped). ERR_INVAL. */
int mime_parse_rfc3339(const char *in, size_t len, int64_t *t_r);

/* RFC 2231 parameter value ("utf-8''%E2%82%AC.pdf") to UTF-8; malloc'd. */
int mime_decode_param2231(const char *in, size_t len, char **out_r);

/* Raw messages (header.c, address.c) -------------------------------- */

/* Most addresses mime_addr_parse() returns; more is ERR_TOOBIG. */
#define MIME_MAX_ADDRS 1000u

/*
 * Length of the header section of the raw message msg[0..len), up to and
 * including the empty line that ends it (CRLF or bare LF line ends), in
 * *end_r. ERR_INVAL when there is no empty line, or a line before it is
 * neither a field ("Name:" with printable ASCII name) nor a continuation
 * (starting with space or tab).
 */
int mime_header_end(const char *msg, size_t len, size_t *end_r);
/*
 * The first header field named `name` (any case) of the raw message: its
 * value unfolded (each line break before a continuation removed) and
 * trimmed, as a malloc'd NUL-terminated string (*out_r, caller frees).
 * Not decoded (see mime_decode_header). ERR_NOTFOUND when absent,
 * ERR_INVAL as mime_header_end, ERR_TOOBIG past MIME_MAX_HEADER.
 */
int mime_header_get(const char *msg, size_t len, const char *name,
    char **out_r);
/*
 * Copies msg to out (borrowed) without every header field named `name`
 * (continuation lines included): the Bcc field before SMTP. The body is
 * copied untouched. ERR_INVAL as mime_header_end.
 */
int mime_header_strip(const char *msg, size_t len, const char *name,
    struct buf *out);

/* One address of an address list. */
struct mime_addr {
	char *name; /* display name, RFC 2047 decoded; NULL when none */
	char *addr; /* addr-spec "local@domain" as written (quotes kept) */
};
struct mime_addr_list {
	struct mime_addr *v; /* malloc'd; mime_addr_list_release frees */
	size_t n;
};
/*
 * Parses an RFC 5322 address-list or mailbox-list header value (folded or
 * not): name-addr and addr-spec forms, groups (flattened into their
 * members), comments (dropped), quoted strings and quoted local parts,
 * obsolete routes (dropped). An empty list is 0 with n == 0. ERR_INVAL
 * for text that is not an address list, ERR_TOOBIG past MIME_MAX_ADDRS
 * or MIME_MAX_HEADER. On error *out is empty.
 */
int mime_addr_parse(const char *in, size_t len, struct mime_addr_list *out);
void mime_addr_list_release(struct mime_addr_list *l);
/* The addresses of header field `name` of a raw message (its first such
 * field; an absent field is an empty list): mime_header_get, then
 * mime_addr_parse, with their errors. */
int mime_header_addrs(const char *msg, size_t len, const char *name,
    struct mime_addr_list *out);
/*
 * Formats a list as the messages.from_addr / to_addrs columns hold it
 * (the same text the IMAP ENVELOPE gives): "Name <a@b>, c@d", a display
 * name quoted when it holds specials. Malloc'd (*out_r, caller frees).
 */
int mime_addr_format(const struct mime_addr_list *l, char **out_r);

/* Helpers shared by the decoders, usable by other modules too. -------- */

/*
 * Converts n bytes of text in the MIME charset named cs[0..cslen) (any
 * case, aliases such as "utf8"/"latin1"/"gb2312", an RFC 2231 "*lang"
 * suffix allowed) to UTF-8, appended to out (borrowed). Sequences that
 * are invalid in that charset become U+FFFD, so out only ever receives
 * valid UTF-8. Returns 0, ERR_NOTFOUND when the charset is unknown (out
 * unchanged), ERR_TOOBIG (out's ceiling), ERR_NOMEM.
 */
int mime_charset_to_utf8(const char *cs, size_t cslen, const void *in,
    size_t n, struct buf *out);

/* Appends in to out: valid UTF-8 sequences as they are, every other byte
 * read as ISO-8859-1. Returns 0, ERR_TOOBIG or ERR_NOMEM. */
int mime_utf8_append_latin1(struct buf *out, const void *in, size_t n);

/* Appends in to out, replacing each invalid UTF-8 byte with U+FFFD. */
int mime_utf8_append_fffd(struct buf *out, const void *in, size_t n);

/* True when p[0..n) is valid UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF). */
bool mime_utf8_valid(const void *p, size_t n);

#endif
