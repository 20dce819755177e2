/*
 * rfc2047.c: header values with RFC 2047 encoded-words to UTF-8.
 *
 *   "=?" charset ["*" lang] "?" ("B" / "Q") "?" encoded-text "?="
 *
 * The value is first unfolded (CRLF + WSP becomes the WSP; a stray CR or
 * LF becomes a space). Then every well-formed encoded-word is decoded,
 * also where a sloppy mailer glued it to other text. Adjacent words (only
 * whitespace between them) lose that whitespace, and adjacent words in
 * the same charset are joined before conversion, so a multi-byte
 * character split across two words (which many mailers do) survives.
 * A malformed word, or one in a charset iconv does not know, stays as its
 * literal text. Bytes outside words are kept when valid UTF-8 and read
 * as ISO-8859-1 otherwise. The result is always valid UTF-8 without NUL,
 * CR or LF, and its size is bounded by a fixed multiple of the input.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "mime/mime.h"

/* Every input byte yields at most 3 output bytes (U+FFFD, or a CJK
 * character from one byte); plus slack for stateful encoders. */
#define RFC2047_OUT_MAX (4u * MIME_MAX_HEADER + 64)

/* One parsed encoded-word, pointing into the unfolded input. */
struct rfc2047_word {
	const char *cs;	  /* charset, up to (excluding) '?'; may have *lang */
	size_t cslen;
	char enc;	  /* 'B' or 'Q' */
	const char *text; /* encoded-text */
	size_t textlen;
	size_t len; /* the whole word, "=?" to "?=" */
};

/* Decoded bytes of a run of adjacent words in one charset. */
struct rfc2047_pending {
	struct buf bytes;
	const char *cs; /* charset of the run (NULL: no run) */
	size_t cslen;
	const char *raw; /* the run's literal text, for unknown charsets */
	size_t rawlen;
};

static bool
rfc2047_is_wsp(char c)
{
	return (c == ' ' || c == '\t');
}

static int
rfc2047_b64val(char c)
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
	if (c == '/') {
		return (63);
	}
	return (-1);
}

/* The charset part of a word: the token characters of RFC 2047. */
static bool
rfc2047_cs_char(char c)
{
	return (c > ' ' && c < 0x7f && c != '?' && c != '=' && c != '"' &&
	    c != '(' && c != ')' && c != ',' && c != '<' && c != '>');
}

/*
 * Parses the encoded-word at s[0..n) (s starts with "=?"). ERR_INVAL if
 * it is not one.
 */
static int
rfc2047_parse_word(const char *s, size_t n, struct rfc2047_word *w)
{
	size_t i = 2;

	w->cs = s + i;
	while (i < n && rfc2047_cs_char(s[i])) {
		i++;
	}
	w->cslen = (size_t)(s + i - w->cs);
	if (w->cslen == 0 || w->cslen > 64 || i >= n || s[i] != '?') {
		return (ERR_INVAL);
	}
	i++;
	if (i + 1 >= n || s[i + 1] != '?') {
		return (ERR_INVAL);
	}
	if (s[i] == 'B' || s[i] == 'b') {
		w->enc = 'B';
	} else if (s[i] == 'Q' || s[i] == 'q') {
		w->enc = 'Q';
	} else {
		return (ERR_INVAL);
	}
	i += 2;
	w->text = s + i;
	while (i < n && s[i] > ' ' && s[i] < 0x7f && s[i] != '?') {
		i++;
	}
	if (i + 1 >= n || s[i] != '?' || s[i + 1] != '=') {
		return (ERR_INVAL);
	}
	w->textlen = (size_t)(s + i - w->text);
	w->len = i + 2;
	return (ERR_OK);
}

/* Q encoding: '_' is a space, "=XX" a byte. ERR_INVAL on a bad escape. */
static int
rfc2047_decode_q(const char *t, size_t n, struct buf *out)
{
	size_t i;
	char c;
	int hi, lo, rv;

	for (i = 0; i < n; i++) {
		c = t[i];
		if (c == '_') {
			c = ' ';
		} else if (c == '=') {
			if (n - i < 3) {
				return (ERR_INVAL);
			}
			hi = hex_digit_val(t[i + 1]);
			lo = hex_digit_val(t[i + 2]);
			if (hi < 0 || lo < 0) {
				return (ERR_INVAL);
			}
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		rv = buf_add(out, &c, 1);
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}

/* B encoding: base64, padding optional. ERR_INVAL on a bad character. */
static int
rfc2047_decode_b(const char *t, size_t n, struct buf *out)
{
	uint32_t acc = 0;
	size_t i, nbits = 0, ndata = 0;
	char c;
	int v, rv;

	/* Trailing '=' padding, and only there. */
	while (n > 0 && t[n - 1] == '=') {
		n--;
	}
	for (i = 0; i < n; i++) {
		v = rfc2047_b64val(t[i]);
		if (v < 0) {
			return (ERR_INVAL);
		}
		acc = (acc << 6 | (uint32_t)v) & 0xFFFFFF;
		nbits += 6;
		ndata++;
		if (nbits >= 8) {
			nbits -= 8;
			c = (char)(acc >> nbits & 0xFF);
			rv = buf_add(out, &c, 1);
			if (rv != 0) {
				return (rv);
			}
		}
	}
	if (ndata % 4 == 1) {
		return (ERR_INVAL); /* 6 stray bits: not base64 */
	}
	return (ERR_OK);
}

/* Converts and emits the pending run of words, if any. */
static int
rfc2047_flush(struct rfc2047_pending *pd, struct buf *out)
{
	int rv;

	if (pd->cs == NULL) {
		return (ERR_OK);
	}
	rv = mime_charset_to_utf8(pd->cs, pd->cslen, pd->bytes.data,
	    pd->bytes.len, out);
	if (rv == ERR_NOTFOUND) {
		rv = mime_utf8_append_latin1(out, pd->raw, pd->rawlen);
	}
	pd->cs = NULL;
	buf_reset(&pd->bytes);
	return (rv);
}

/* True when the charset names differ only in case (the lang included). */
static bool
rfc2047_same_cs(const char *a, size_t alen, const char *b, size_t blen)
{
	return (alen == blen && strncasecmp(a, b, alen) == 0);
}

/* Decodes the encoded-text of w into out; ERR_INVAL if malformed. */
static int
rfc2047_decode_word(const struct rfc2047_word *w, struct buf *out)
{
	if (w->enc == 'B') {
		return (rfc2047_decode_b(w->text, w->textlen, out));
	}
	return (rfc2047_decode_q(w->text, w->textlen, out));
}

/*
 * Adds the decoded bytes of the word at u[0..w->len) to the pending run,
 * first flushing a run in another charset.
 */
static int
rfc2047_add_word(const char *u, const struct rfc2047_word *w,
    const struct buf *bytes, struct rfc2047_pending *pd, struct buf *out)
{
	int rv;

	if (pd->cs != NULL &&
	    !rfc2047_same_cs(pd->cs, pd->cslen, w->cs, w->cslen)) {
		rv = rfc2047_flush(pd, out);
		if (rv != 0) {
			return (rv);
		}
	}
	if (pd->cs == NULL) {
		pd->cs = w->cs;
		pd->cslen = w->cslen;
		pd->raw = u;
	}
	rv = buf_add(&pd->bytes, bytes->data, bytes->len);
	if (rv != 0) {
		return (rv);
	}
	pd->rawlen = (size_t)(u + w->len - pd->raw);
	return (ERR_OK);
}

/*
 * Unfolds s[0..n) into a malloc'd copy (*u_r, length *ulen_r): CR/LF
 * followed by WSP are dropped, other CR/LF runs become one space and
 * trailing ones vanish.
 */
static int
rfc2047_unfold(const char *s, size_t n, char **u_r, size_t *ulen_r)
{
	char *u;
	size_t i, j = 0;

	u = malloc(n + 1);
	if (u == NULL) {
		return (ERR_NOMEM);
	}
	for (i = 0; i < n; i++) {
		if (s[i] != '\r' && s[i] != '\n') {
			u[j++] = s[i];
			continue;
		}
		while (i + 1 < n && (s[i + 1] == '\r' || s[i + 1] == '\n')) {
			i++;
		}
		if (i + 1 < n && !rfc2047_is_wsp(s[i + 1])) {
			u[j++] = ' ';
		}
	}
	u[j] = '\0';
	*u_r = u;
	*ulen_r = j;
	return (ERR_OK);
}

/* True when s[0..n) is all SP/TAB (and n may be 0). */
static bool
rfc2047_all_wsp(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!rfc2047_is_wsp(s[i])) {
			return (false);
		}
	}
	return (true);
}

int
mime_decode_header(const char *in, size_t len, char **out_r)
{
	struct rfc2047_pending pd;
	struct rfc2047_word w;
	struct buf out, word;
	char *u = NULL;
	size_t ulen, i = 0, lit = 0;
	bool after_word = false;
	int rv;

	*out_r = NULL;
	if (len > MIME_MAX_HEADER) {
		return (ERR_TOOBIG);
	}
	buf_init(&out, RFC2047_OUT_MAX);
	memset(&pd, 0, sizeof(pd));
	buf_init(&pd.bytes, MIME_MAX_HEADER);
	buf_init(&word, MIME_MAX_HEADER);
	rv = rfc2047_unfold(in, len, &u, &ulen);
	if (rv != 0) {
		goto fail;
	}
	while (i < ulen) {
		if (u[i] != '=' || i + 1 >= ulen || u[i + 1] != '?' ||
		    rfc2047_parse_word(u + i, ulen - i, &w) != 0) {
			i++;
			continue;
		}
		buf_reset(&word);
		rv = rfc2047_decode_word(&w, &word);
		if (rv == ERR_INVAL) {
			i++; /* malformed: stays literal text */
			continue;
		}
		if (rv != 0) {
			goto fail;
		}
		/* The text between the previous word (or start) and this one;
		 * pure whitespace between two words is dropped. */
		if (!after_word || !rfc2047_all_wsp(u + lit, i - lit)) {
			rv = rfc2047_flush(&pd, &out);
			if (rv != 0) {
				goto fail;
			}
			rv = mime_utf8_append_latin1(&out, u + lit, i - lit);
			if (rv != 0) {
				goto fail;
			}
		}
		rv = rfc2047_add_word(u + i, &w, &word, &pd, &out);
		if (rv != 0) {
			goto fail;
		}
		i += w.len;
		lit = i;
		after_word = true;
	}
	rv = rfc2047_flush(&pd, &out);
	if (rv != 0) {
		goto fail;
	}
	rv = mime_utf8_append_latin1(&out, u + lit, ulen - lit);
	if (rv != 0) {
		goto fail;
	}
	if (out.data == NULL) {
		rv = buf_add(&out, "", 0);
		if (rv != 0) {
			goto fail;
		}
	}
	/* Decoded words may carry NUL, CR or LF; none belongs in a value. */
	for (i = 0; i < out.len; i++) {
		if (out.data[i] == '\0' || out.data[i] == '\r' ||
		    out.data[i] == '\n') {
			out.data[i] = ' ';
		}
	}
	*out_r = out.data;
	out.data = NULL;
fail:
	free(u);
	buf_release(&pd.bytes);
	buf_release(&word);
	buf_release(&out);
	return (rv);
}
