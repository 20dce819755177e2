/*
 * utf8.c: UTF-8 validation and the two ways pkg/mime turns arbitrary bytes
 * into valid UTF-8: keep valid sequences and read the rest as ISO-8859-1
 * (raw header bytes, where 8-bit Latin-1 is the common legacy), or replace
 * each invalid byte with U+FFFD (text whose charset was declared but lied).
 * Everything mime_* returns passes through one of these, so callers can
 * store the result in a UTF-8 column without checking again.
 */
#include <stdbool.h>
#include <stddef.h>

#include "base/base.h"
#include "mime/mime.h"

static const char utf8_fffd[] = "\xEF\xBF\xBD";

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if there is none. */
static size_t
utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80) {
		return (1);
	}
	if (c < 0xC2) {
		return (0); /* continuation byte or overlong 2-byte form */
	}
	if (c < 0xE0) {
		if (n < 2 || (s[1] & 0xC0) != 0x80) {
			return (0);
		}
		return (2);
	}
	if (c < 0xF0) {
		if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) {
			return (0);
		}
		if (c == 0xE0 && s[1] < 0xA0) {
			return (0); /* overlong */
		}
		if (c == 0xED && s[1] > 0x9F) {
			return (0); /* UTF-16 surrogate */
		}
		return (3);
	}
	if (c < 0xF5) {
		if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
		    (s[3] & 0xC0) != 0x80) {
			return (0);
		}
		if (c == 0xF0 && s[1] < 0x90) {
			return (0); /* overlong */
		}
		if (c == 0xF4 && s[1] > 0x8F) {
			return (0); /* above U+10FFFF */
		}
		return (4);
	}
	return (0);
}

bool
mime_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0, k;

	while (i < n) {
		k = utf8_seq_len(s + i, n - i);
		if (k == 0) {
			return (false);
		}
		i += k;
	}
	return (true);
}

/*
 * Appends in to out; each invalid byte is replaced by its ISO-8859-1
 * reading (latin1) or by U+FFFD. Runs of valid bytes are copied at once.
 */
static int
utf8_append(struct buf *out, const void *in, size_t n, bool latin1)
{
	const unsigned char *s = in;
	size_t i = 0, run = 0, k;
	char two[2];
	int rv;

	if (n == 0) {
		return (buf_add(out, "", 0));
	}
	while (i < n) {
		k = utf8_seq_len(s + i, n - i);
		if (k != 0) {
			i += k;
			continue;
		}
		rv = buf_add(out, s + run, i - run);
		if (rv != 0) {
			return (rv);
		}
		if (latin1) {
			two[0] = (char)(0xC0 | (s[i] >> 6));
			two[1] = (char)(0x80 | (s[i] & 0x3F));
			rv = buf_add(out, two, 2);
		} else {
			rv = buf_add(out, utf8_fffd, 3);
		}
		if (rv != 0) {
			return (rv);
		}
		i++;
		run = i;
	}
	return (buf_add(out, s + run, i - run));
}

int
mime_utf8_append_latin1(struct buf *out, const void *in, size_t n)
{
	return (utf8_append(out, in, n, true));
}

int
mime_utf8_append_fffd(struct buf *out, const void *in, size_t n)
{
	return (utf8_append(out, in, n, false));
}
