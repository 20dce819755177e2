/*
 * check.c: validation of strings that come from peers (submit requests,
 * worker results) before they become keys or text in the database: a
 * length range, no NUL bytes, well-formed UTF-8 (no overlongs, no
 * surrogates), and optionally no control characters.
 */
#include <string.h>

#include "store_int.h"

/* Length of the UTF-8 sequence at p (n bytes left), or 0 if invalid. */
static size_t
store_utf8_len(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (p[0] < 0x80) {
		return (1);
	} else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return (0);
	}
	if (n < len) {
		return (0);
	}
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			return (0);
		}
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
	    || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		return (0);
	}
	return (len);
}

int
store_check_text(struct proto_str s, size_t min, size_t max, bool no_ctl,
    const char **why_r)
{
	const unsigned char *p = (const unsigned char *)s.p;
	size_t i, l;

	if (s.len < min) {
		*why_r = min == 1 ? "must not be empty" : "too short";
		return (ERR_INVAL);
	}
	if (s.len > max) {
		*why_r = "too long";
		return (ERR_TOOBIG);
	}
	for (i = 0; i < s.len; i += l) {
		if (p[i] == 0) {
			*why_r = "contains a NUL byte";
			return (ERR_INVAL);
		}
		if (no_ctl && (p[i] < 0x20 || p[i] == 0x7f)) {
			*why_r = "contains a control character";
			return (ERR_INVAL);
		}
		l = store_utf8_len(p + i, s.len - i);
		if (l == 0) {
			*why_r = "is not valid UTF-8";
			return (ERR_INVAL);
		}
	}
	*why_r = "";
	return (ERR_OK);
}

int
store_plen(struct proto_str s)
{
	return (s.len > 80 ? 80 : (int)s.len);
}

bool
store_str_is(struct proto_str s, const char *c)
{
	size_t n = strlen(c);

	return (s.p != NULL && s.len == n && memcmp(s.p, c, n) == 0);
}
