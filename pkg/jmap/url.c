/*
 * url.c: the URL work a JMAP client needs, pure string code.
 *
 *   - jmap_url_expand: RFC 6570 level 1 templates as the session object
 *     gives them ("/jmap/download/{accountId}/{blobId}/{name}?accept=
 *     {type}"); every value is percent-encoded except RFC 3986 unreserved
 *     characters, so a blobId or a type with '/' stays one path segment.
 *   - jmap_url_resolve: RFC 3986 section 5.2 reference resolution (split
 *     into components, merge paths, remove dot segments), as Cyrus gives
 *     "/jmap/" and a server may give "../upload/" or "//host/x".
 *   - jmap_url_shown: a URL for an error text, without userinfo;
 *     jmap_url_strip_userinfo: the same, whole, for use.
 *
 * Every result is bounded by JMAP_URL_MAX (ERR_TOOBIG beyond).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jmap/jmap_int.h"

/* One URI split by RFC 3986 appendix B; each part a view (NULL: absent,
 * which differs from present and empty for authority and query). */
struct uri {
	const char *scheme, *auth, *path, *query, *frag;
	size_t scheme_len, auth_len, path_len, query_len, frag_len;
};

static bool
is_alpha(char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

static bool
is_digit(char c)
{
	return (c >= '0' && c <= '9');
}

/* ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) followed by ':'; the length
 * of the scheme, or 0 when s does not start with one. */
static size_t
scheme_len(const char *s)
{
	size_t i;

	if (!is_alpha(s[0])) {
		return (0);
	}
	for (i = 1; is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+'
	     || s[i] == '-' || s[i] == '.';
	     i++) { }
	return (s[i] == ':' ? i : 0);
}

static void
uri_split(const char *s, struct uri *u)
{
	size_t n;

	memset(u, 0, sizeof(*u));
	n = scheme_len(s);
	if (n > 0) {
		u->scheme = s;
		u->scheme_len = n;
		s += n + 1;
	}
	if (s[0] == '/' && s[1] == '/') {
		s += 2;
		u->auth = s;
		u->auth_len = strcspn(s, "/?#");
		s += u->auth_len;
	}
	u->path = s;
	u->path_len = strcspn(s, "?#");
	s += u->path_len;
	if (*s == '?') {
		s++;
		u->query = s;
		u->query_len = strcspn(s, "#");
		s += u->query_len;
	}
	if (*s == '#') {
		s++;
		u->frag = s;
		u->frag_len = strlen(s);
	}
}

/*
 * RFC 3986 5.2.4 on in (n bytes), appended to out. Works segment by
 * segment on the input: "." and ".." segments vanish, ".." also drops
 * the last segment already written.
 */
static int
remove_dots(const char *in, size_t n, struct buf *out)
{
	size_t start = out->len, i = 0, seg, k;
	int rv = 0;

	while (i < n && rv == 0) {
		/* A: leading "../" or "./" */
		if (n - i >= 3 && memcmp(in + i, "../", 3) == 0) {
			i += 3;
		} else if (n - i >= 2 && memcmp(in + i, "./", 2) == 0) {
			i += 2;
			/* B: "/./" or a final "/." becomes "/" */
		} else if (n - i >= 3 && memcmp(in + i, "/./", 3) == 0) {
			i += 2;
		} else if (n - i == 2 && memcmp(in + i, "/.", 2) == 0) {
			rv = buf_add(out, "/", 1);
			i = n;
			/* C: "/../" or a final "/.." becomes "/" and drops the
			 * last output segment with its '/' */
		} else if ((n - i >= 4 && memcmp(in + i, "/../", 4) == 0)
		    || (n - i == 3 && memcmp(in + i, "/..", 3) == 0)) {
			for (k = out->len;
			     k > start && out->data[k - 1] != '/'; k--) { }
			if (k > start) {
				k--;
			}
			if (out->data != NULL) {
				out->len = k;
				out->data[k] = '\0';
			}
			if (n - i == 3) {
				rv = buf_add(out, "/", 1);
				i = n;
			} else {
				i += 3; /* the '/' stays in the input */
			}
			/* D: a lone "." or ".." */
		} else if ((n - i == 1 && in[i] == '.')
		    || (n - i == 2 && memcmp(in + i, "..", 2) == 0)) {
			i = n;
			/* E: move the first segment (with its leading '/') */
		} else {
			seg = i + (in[i] == '/' ? 1 : 0);
			while (seg < n && in[seg] != '/') {
				seg++;
			}
			rv = buf_add(out, in + i, seg - i);
			i = seg;
		}
	}
	return (rv);
}

/* RFC 3986 5.2.3: the base path up to its last '/', then ref's path. */
static int
merge_paths(const struct uri *b, const struct uri *r, struct buf *tmp)
{
	size_t k;
	int rv;

	buf_reset(tmp);
	if (b->auth != NULL && b->path_len == 0) {
		rv = buf_add(tmp, "/", 1);
	} else {
		for (k = b->path_len; k > 0 && b->path[k - 1] != '/'; k--) { }
		rv = buf_add(tmp, b->path, k);
	}
	return (rv != 0 ? rv : buf_add(tmp, r->path, r->path_len));
}

static int
add_part(struct buf *out, const char *prefix, const char *p, size_t n,
    const char *suffix)
{
	int rv = buf_addstr(out, prefix);

	if (rv == 0) {
		rv = buf_add(out, p, n);
	}
	return (rv != 0 ? rv : buf_addstr(out, suffix));
}

/* RFC 3986 5.2.2, written straight into out (5.3 recomposition). */
static int
resolve(
    const struct uri *b, const struct uri *r, struct buf *out, struct buf *tmp)
{
	const struct uri *auth_from, *query_from;
	int rv;

	rv = add_part(out, "", b->scheme, b->scheme_len, ":");
	if (r->scheme != NULL) {
		buf_reset(out);
		rv = add_part(out, "", r->scheme, r->scheme_len, ":");
		auth_from = r;
		query_from = r;
	} else if (r->auth != NULL) {
		auth_from = r;
		query_from = r;
	} else {
		auth_from = b;
		query_from = r->path_len == 0 && r->query == NULL ? b : r;
	}
	if (rv == 0 && auth_from->auth != NULL) {
		rv = add_part(
		    out, "//", auth_from->auth, auth_from->auth_len, "");
	}
	if (rv != 0) {
		return (rv);
	}
	if (auth_from != b) {
		rv = remove_dots(r->path, r->path_len, out);
	} else if (r->path_len == 0) {
		rv = buf_add(out, b->path, b->path_len);
	} else if (r->path[0] == '/') {
		rv = remove_dots(r->path, r->path_len, out);
	} else {
		rv = merge_paths(b, r, tmp);
		if (rv == 0) {
			rv = remove_dots(tmp->data, tmp->len, out);
		}
	}
	if (rv == 0 && query_from->query != NULL) {
		rv = add_part(
		    out, "?", query_from->query, query_from->query_len, "");
	}
	if (rv == 0 && r->frag != NULL) {
		rv = add_part(out, "#", r->frag, r->frag_len, "");
	}
	return (rv);
}

int
jmap_url_resolve(const char *base, const char *ref, char **out_r)
{
	struct uri b, r;
	struct buf out, tmp;
	int rv;

	*out_r = NULL;
	if (base == NULL || ref == NULL) {
		return (ERR_INVAL);
	}
	uri_split(base, &b);
	uri_split(ref, &r);
	if (b.scheme == NULL && r.scheme == NULL) {
		return (ERR_INVAL); /* nothing absolute to resolve against */
	}
	buf_init(&out, JMAP_URL_MAX);
	buf_init(&tmp, JMAP_URL_MAX);
	rv = resolve(&b, &r, &out, &tmp);
	/* an empty result still needs its storage for the caller */
	if (rv == 0 && out.data == NULL) {
		rv = buf_add(&out, "", 0);
	}
	buf_release(&tmp);
	if (rv != 0) {
		buf_release(&out);
		return (rv);
	}
	*out_r = out.data;
	return (ERR_OK);
}

/* RFC 3986 unreserved: kept as is by simple string expansion. */
static bool
unreserved(unsigned char c)
{
	return (is_alpha((char)c) || is_digit((char)c) || c == '-' || c == '.'
	    || c == '_' || c == '~');
}

static int
add_encoded(struct buf *out, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char pct[3];
	int rv = 0;

	for (p = (const unsigned char *)v; *p != '\0' && rv == 0; p++) {
		if (unreserved(*p)) {
			rv = buf_add(out, p, 1);
			continue;
		}
		pct[0] = '%';
		pct[1] = hex[*p >> 4];
		pct[2] = hex[*p & 15];
		rv = buf_add(out, pct, 3);
	}
	return (rv);
}

int
jmap_url_expand(const char *tmpl, const char *const *names,
    const char *const *values, size_t n, char **out_r)
{
	struct buf out;
	const char *p, *close;
	size_t i, len;
	int rv = 0;

	*out_r = NULL;
	if (tmpl == NULL) {
		return (ERR_INVAL);
	}
	buf_init(&out, JMAP_URL_MAX);
	p = tmpl;
	while (*p != '\0' && rv == 0) {
		len = strcspn(p, "{");
		rv = buf_add(&out, p, len);
		p += len;
		if (rv != 0 || *p == '\0') {
			break;
		}
		close = strchr(p + 1, '}');
		if (close == NULL) {
			rv = ERR_INVAL;
			break;
		}
		len = (size_t)(close - (p + 1));
		for (i = 0; i < n; i++) {
			if (strlen(names[i]) == len
			    && memcmp(names[i], p + 1, len) == 0) {
				break;
			}
		}
		if (i < n) {
			rv = add_encoded(
			    &out, values[i] != NULL ? values[i] : "");
		} else {
			rv = buf_add(&out, p, len + 2); /* unknown: kept */
		}
		p = close + 1;
	}
	if (rv == 0 && out.data == NULL) {
		rv = buf_add(&out, "", 0);
	}
	if (rv != 0) {
		buf_release(&out);
		return (rv);
	}
	*out_r = out.data;
	return (ERR_OK);
}

bool
jmap_url_has_scheme(const char *url, const char *scheme)
{
	size_t n = strlen(scheme);

	return (url != NULL && strncasecmp(url, scheme, n) == 0
	    && strncmp(url + n, "://", 3) == 0);
}

int
jmap_url_strip_userinfo(const char *url, char **out_r)
{
	struct uri u;
	const char *at = NULL;
	size_t pre, len = strlen(url);

	*out_r = NULL;
	uri_split(url, &u);
	if (u.auth != NULL) {
		at = memchr(u.auth, '@', u.auth_len);
	}
	if (at == NULL) {
		*out_r = xstrdup(url);
	} else {
		pre = (size_t)(u.auth - url);
		*out_r = malloc(len + 1);
		if (*out_r != NULL) {
			memcpy(*out_r, url, pre);
			memcpy(*out_r + pre, at + 1,
			    len - (size_t)(at + 1 - url) + 1);
		}
	}
	return (*out_r == NULL ? ERR_NOMEM : ERR_OK);
}

void
jmap_url_shown(const char *url, char *out, size_t cap)
{
	struct uri u;
	const char *at;
	size_t n = 0, len;

	if (cap == 0) {
		return;
	}
	out[0] = '\0';
	if (url == NULL) {
		return;
	}
	uri_split(url, &u);
	at = NULL;
	if (u.auth != NULL) {
		at = memchr(u.auth, '@', u.auth_len);
	}
	/* everything but the userinfo, cut at JMAP_URL_SHOWN */
	while (*url != '\0' && n + 4 < cap) {
		if (at != NULL && url == u.auth) {
			url = at + 1;
			continue;
		}
		if (n == JMAP_URL_SHOWN) {
			break;
		}
		out[n++] = *url++;
	}
	len = strlen(url);
	if (len > 0 && n + 4 <= cap) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}
