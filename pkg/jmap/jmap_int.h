/*
 * jmap_int.h: what the files of pkg/jmap share and nobody else needs:
 * filling a struct jmap_err, and showing a URL in an error text without
 * the credentials a URL may carry (user:password@).
 */
#ifndef MAILSYNC_JMAP_INT_H
#define MAILSYNC_JMAP_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "jmap/jmap.h"

/* Longest URL accepted or produced by url.c (templates expanded). */
#define JMAP_URL_MAX (16u * 1024)
/* Characters of a URL kept in an error text (the rest is cut, "..."). */
#define JMAP_URL_SHOWN 200

/* Fills e (may be NULL) with status, retry and a printf text; returns
 * status so that `return (jmap_err_set(e, ...));` reads naturally. */
int jmap_err_set(struct jmap_err *e, int status, enum retry retry,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Copies url into out (cap bytes, always terminated) without any
 * userinfo ("https://bob:pw@host/" -> "https://host/"), cut to
 * JMAP_URL_SHOWN characters. For error texts and logs only. */
void jmap_url_shown(const char *url, char *out, size_t cap);

/* url without its userinfo, malloc'd in *out_r (caller frees): curl's
 * CURLINFO_EFFECTIVE_URL carries the credentials after a redirect, and
 * session URLs resolved against it would too. ERR_NOMEM. */
int jmap_url_strip_userinfo(const char *url, char **out_r);

/* True when url starts with "scheme://" (ASCII case ignored). */
bool jmap_url_has_scheme(const char *url, const char *scheme);

#endif
