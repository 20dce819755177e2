/*
 * rfc2231.c: RFC 2231 extended parameter values to UTF-8.
 *
 *   value := [charset] "'" [language] "'" *(attribute-char / "%" 2HEX)
 *
 * (the value of "filename*=" in a Content-Disposition, for instance). A
 * continuation segment ("name*1*=") has no charset part; its bytes, and
 * those of a value whose charset is empty or unknown, are kept when they
 * are valid UTF-8 and read as ISO-8859-1 otherwise. A malformed "%"
 * escape is kept as literal text rather than failing. The result is valid
 * UTF-8 without NUL, CR or LF.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "mime/mime.h"

/* Percent-decodes s[0..n) into out. */
static int
rfc2231_unescape(const char *s, size_t n, struct buf *out)
{
	size_t i;
	int hi, lo, rv;
	char c;

	for (i = 0; i < n; i++) {
		c = s[i];
		if (c == '%' && n - i >= 3) {
			hi = hex_digit_val(s[i + 1]);
			lo = hex_digit_val(s[i + 2]);
			if (hi >= 0 && lo >= 0) {
				c = (char)(hi << 4 | lo);
				i += 2;
			}
		}
		rv = buf_add(out, &c, 1);
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}

int
mime_decode_param2231(const char *in, size_t len, char **out_r)
{
	struct buf bytes, out;
	const char *q1 = NULL, *q2 = NULL, *val = in;
	size_t i;
	int rv;

	*out_r = NULL;
	if (len > MIME_MAX_HEADER) {
		return (ERR_TOOBIG);
	}
	buf_init(&bytes, MIME_MAX_HEADER);
	buf_init(&out, 4u * MIME_MAX_HEADER + 64);
	q1 = memchr(in, '\'', len);
	if (q1 != NULL) {
		q2 = memchr(q1 + 1, '\'', len - (size_t)(q1 + 1 - in));
	}
	if (q2 != NULL) {
		val = q2 + 1;
	}
	rv = rfc2231_unescape(val, len - (size_t)(val - in), &bytes);
	if (rv != 0) {
		goto fail;
	}
	rv = ERR_NOTFOUND;
	if (q2 != NULL && q1 > in) {
		rv = mime_charset_to_utf8(in, (size_t)(q1 - in), bytes.data,
		    bytes.len, &out);
	}
	if (rv == ERR_NOTFOUND) {
		rv = mime_utf8_append_latin1(&out, bytes.data, bytes.len);
	}
	if (rv == 0 && out.data == NULL) {
		rv = buf_add(&out, "", 0);
	}
	if (rv != 0) {
		goto fail;
	}
	for (i = 0; i < out.len; i++) {
		if (out.data[i] == '\0' || out.data[i] == '\r' ||
		    out.data[i] == '\n') {
			out.data[i] = ' ';
		}
	}
	*out_r = out.data;
	out.data = NULL;
fail:
	buf_wipe_release(&bytes);
	buf_release(&out);
	return (rv);
}
