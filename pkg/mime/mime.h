/*
 * pkg/mime: the RFC 5322 / MIME header helpers sync needs to turn what a
 * server sends into clean UTF-8 columns. Pure functions, no I/O.
 *
 *   rfc2047.c  encoded-words ("=?utf-8?B?...?=") to UTF-8, through iconv
 *   date.c     RFC 5322 dates and IMAP INTERNALDATE to unix seconds
 */
#ifndef MAILSYNC_MIME_H
#define MAILSYNC_MIME_H

#include <stddef.h>
#include <stdint.h>

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

/* RFC 2231 parameter value ("utf-8''%E2%82%AC.pdf") to UTF-8; malloc'd. */
int mime_decode_param2231(const char *in, size_t len, char **out_r);

#endif
