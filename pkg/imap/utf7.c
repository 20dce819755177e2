/*
 * utf7.c: modified UTF-7 mailbox names (RFC 3501 section 5.1.3).
 *
 * Printable US-ASCII stands for itself except '&', written "&-". Anything
 * else is UTF-16, base64-encoded with ',' instead of '/', between '&' and
 * '-'. The decoder is strict, because a name that decodes two ways could
 * alias two mailboxes: it rejects unterminated shifts, bytes outside
 * printable ASCII, empty or padded shifts, non-zero padding bits, printable
 * ASCII that was needlessly encoded, U+0000 and unpaired surrogates.
 */
#include <stdlib.h>
#include <string.h>

#include "imap/imap.h"

static int
b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') {
		return (c - 'A');
	}
	if (c >= 'a' && c <= 'z') {
		return (c - 'a' + 26);
	}
	if (c >= '0' && c <= '9') {
		return (c - '0' + 52);
	}
	if (c == '+') {
		return (62);
	}
	if (c == ',') {
		return (63);
	}
	return (-1);
}

static const char b64_chars[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Appends code point cp (valid, not a surrogate) as UTF-8 at *w. */
static void
put_utf8(char **w, uint32_t cp)
{
	unsigned char *o = (unsigned char *)*w;

	if (cp < 0x80) {
		*o++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*o++ = (unsigned char)(0xc0 | (cp >> 6));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (unsigned char)(0xe0 | (cp >> 12));
		*o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (unsigned char)(0xf0 | (cp >> 18));
		*o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	}
	*w = (char *)o;
}

/* Decodes the base64 run in[*ip..] up to '-' into UTF-8 at *w. */
static int
decode_shift(const char *in, size_t len, size_t *ip, char **w)
{
	size_t i = *ip, nunits = 0;
	uint32_t bits = 0, hi = 0;
	unsigned nbits = 0;
	int v;

	for (; i < len && in[i] != '-'; i++) {
		v = b64_val((unsigned char)in[i]);
		if (v < 0) {
			return (ERR_PROTO);
		}
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16) {
			continue;
		}
		nbits -= 16;
		{
			uint32_t u = (bits >> nbits) & 0xffff;

			bits &= (1u << nbits) - 1;
			nunits++;
			if (hi != 0) {
				if (u < 0xdc00 || u > 0xdfff) {
					return (ERR_PROTO);
				}
				put_utf8(w,
				    0x10000 + ((hi - 0xd800) << 10)
				        + (u - 0xdc00));
				hi = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				hi = u;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				return (ERR_PROTO);
			} else if (u == 0 || (u >= 0x20 && u <= 0x7e)) {
				/* NUL, or ASCII that could stand for itself */
				return (ERR_PROTO);
			} else {
				put_utf8(w, u);
			}
		}
	}
	if (i >= len || nunits == 0 || hi != 0 || nbits >= 6 || bits != 0) {
		return (ERR_PROTO);
	}
	*ip = i + 1;
	return (0);
}

int
imap_utf7_decode(const char *in, size_t len, char **out_r)
{
	char *out = NULL, *w;
	size_t i = 0;
	unsigned char c;
	int rv;

	*out_r = NULL;
	if (len > (SIZE_MAX - 1) / 2) {
		return (ERR_TOOBIG);
	}
	/* Each base64 char yields at most 2 bytes of UTF-8 output. */
	out = malloc(len * 2 + 1);
	if (out == NULL) {
		return (ERR_NOMEM);
	}
	w = out;
	while (i < len) {
		c = (unsigned char)in[i];
		if (c < 0x20 || c > 0x7e) {
			rv = ERR_PROTO;
			goto fail;
		}
		if (c != '&') {
			*w++ = (char)c;
			i++;
			continue;
		}
		i++;
		if (i < len && in[i] == '-') {
			*w++ = '&';
			i++;
			continue;
		}
		rv = decode_shift(in, len, &i, &w);
		if (rv != 0) {
			goto fail;
		}
	}
	*w = '\0';
	*out_r = out;
	return (0);

fail:
	free(out);
	return (rv);
}

/* Reads one UTF-8 sequence at in[*ip]; strict (no overlongs, surrogates,
 * or values past U+10FFFF). */
static int
get_utf8(const unsigned char *in, size_t len, size_t *ip, uint32_t *cp_r)
{
	size_t i = *ip, n, k;
	uint32_t cp, min;
	unsigned char c = in[i];

	if (c < 0x80) {
		*cp_r = c;
		*ip = i + 1;
		return (0);
	} else if ((c & 0xe0) == 0xc0) {
		n = 1;
		cp = c & 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2;
		cp = c & 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return (ERR_INVAL);
	}
	if (len - i - 1 < n) {
		return (ERR_INVAL);
	}
	for (k = 1; k <= n; k++) {
		if ((in[i + k] & 0xc0) != 0x80) {
			return (ERR_INVAL);
		}
		cp = (cp << 6) | (in[i + k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		return (ERR_INVAL);
	}
	*cp_r = cp;
	*ip = i + n + 1;
	return (0);
}

static int
flush_bits(struct buf *b, uint32_t *bits, unsigned *nbits)
{
	char ch;
	int rv;

	while (*nbits >= 6) {
		*nbits -= 6;
		ch = b64_chars[(*bits >> *nbits) & 0x3f];
		rv = buf_add(b, &ch, 1);
		if (rv != 0) {
			return (rv);
		}
	}
	*bits &= (1u << *nbits) - 1;
	return (0);
}

int
imap_utf7_encode(const char *in, size_t len, char **out_r)
{
	const unsigned char *u = (const unsigned char *)in;
	struct buf b;
	size_t i = 0;
	uint32_t cp, bits = 0;
	unsigned nbits = 0;
	bool shifted = false;
	char ch;
	int rv;

	*out_r = NULL;
	buf_init(&b, SIZE_MAX / 8 > len ? len * 6 + 16 : SIZE_MAX / 2);
	rv = buf_reserve(&b, 0);
	if (rv != 0) {
		goto fail;
	}
	b.data[0] = '\0';
	while (i < len) {
		rv = get_utf8(u, len, &i, &cp);
		if (rv != 0) {
			goto fail;
		}
		if (cp == 0) {
			rv = ERR_INVAL;
			goto fail;
		}
		if (cp >= 0x20 && cp <= 0x7e) {
			if (shifted) {
				if (nbits > 0) {
					ch = b64_chars[(bits << (6 - nbits))
					    & 0x3f];
					rv = buf_add(&b, &ch, 1);
					if (rv != 0) {
						goto fail;
					}
				}
				bits = 0;
				nbits = 0;
				rv = buf_add(&b, "-", 1);
				if (rv != 0) {
					goto fail;
				}
				shifted = false;
			}
			if (cp == '&') {
				rv = buf_add(&b, "&-", 2);
			} else {
				ch = (char)cp;
				rv = buf_add(&b, &ch, 1);
			}
			if (rv != 0) {
				goto fail;
			}
			continue;
		}
		if (!shifted) {
			rv = buf_add(&b, "&", 1);
			if (rv != 0) {
				goto fail;
			}
			shifted = true;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			bits = (bits << 16) | (0xd800 | (cp >> 10));
			nbits += 16;
			rv = flush_bits(&b, &bits, &nbits);
			if (rv != 0) {
				goto fail;
			}
			cp = 0xdc00 | (cp & 0x3ff);
		}
		bits = (bits << 16) | cp;
		nbits += 16;
		rv = flush_bits(&b, &bits, &nbits);
		if (rv != 0) {
			goto fail;
		}
	}
	if (shifted) {
		if (nbits > 0) {
			ch = b64_chars[(bits << (6 - nbits)) & 0x3f];
			rv = buf_add(&b, &ch, 1);
			if (rv != 0) {
				goto fail;
			}
		}
		rv = buf_add(&b, "-", 1);
		if (rv != 0) {
			goto fail;
		}
	}
	*out_r = b.data;
	return (0);

fail:
	buf_release(&b);
	return (rv);
}
