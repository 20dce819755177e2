/*
 * charset.c: MIME charset names to UTF-8 through glibc iconv.
 *
 * A charset name comes from the peer, so it is checked before it reaches
 * iconv_open(): short, and made only of the characters real charset names
 * use (no '/', which would let a peer append iconv options such as
 * "//IGNORE" or name a file). Names labelled one thing but written in its
 * common superset (gb2312 → GB18030, iso-8859-1 → windows-1252, ...) are
 * mapped to the superset, as mail readers do. "us-ascii" and the various
 * "unknown" labels get the raw treatment (valid UTF-8 kept, other bytes
 * read as ISO-8859-1). The conversion never fails on bad input: every
 * byte iconv rejects becomes U+FFFD, and iconv's output is re-validated so
 * out only ever receives valid UTF-8.
 */
#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <string.h>

#include "base/base.h"
#include "mime/mime.h"

#define CHARSET_MAX 40

/* A MIME label and the iconv name that decodes it best. */
struct charset_alias {
	const char *label;
	const char *iconv_name; /* NULL: raw (UTF-8 else ISO-8859-1) */
};

static const struct charset_alias charset_aliases[] = {
	{ "us-ascii", NULL },
	{ "ascii", NULL },
	{ "ansi_x3.4-1968", NULL },
	{ "unknown", NULL },
	{ "unknown-8bit", NULL },
	{ "x-unknown", NULL },
	{ "x-user-defined", NULL },
	{ "default", NULL },
	{ "utf8", "UTF-8" },
	{ "utf-8", "UTF-8" },
	{ "latin1", "WINDOWS-1252" },
	{ "latin-1", "WINDOWS-1252" },
	{ "l1", "WINDOWS-1252" },
	{ "iso-8859-1", "WINDOWS-1252" },
	{ "iso8859-1", "WINDOWS-1252" },
	{ "iso_8859-1", "WINDOWS-1252" },
	{ "cp819", "WINDOWS-1252" },
	{ "gb2312", "GB18030" },
	{ "gbk", "GB18030" },
	{ "x-gbk", "GB18030" },
	{ "cp936", "GB18030" },
	{ "euc-cn", "GB18030" },
	{ "ks_c_5601-1987", "CP949" },
	{ "ks_c_5601", "CP949" },
	{ "euc-kr", "CP949" },
	{ "shift_jis", "CP932" },
	{ "shift-jis", "CP932" },
	{ "sjis", "CP932" },
	{ "x-sjis", "CP932" },
	{ "ms_kanji", "CP932" },
	{ "windows-31j", "CP932" },
	{ "big5", "CP950" },
	{ "x-mac-roman", "MACINTOSH" },
	{ "unicode-1-1-utf-7", "UTF-7" },
	{ "tis-620", "CP874" },
};

/* Charset names are tokens; '/' and ',' would be iconv syntax. */
static bool
charset_char_ok(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9')) {
		return (true);
	}
	return (c == '-' || c == '_' || c == '.' || c == ':' || c == '+' ||
	    c == '(' || c == ')');
}

/*
 * Copies the charset name (up to any "*lang") into name, lower-cased.
 * ERR_INVAL if it is empty, too long or has a character no charset has.
 */
static int
charset_name(const char *cs, size_t cslen, char name[CHARSET_MAX + 1])
{
	size_t i;

	for (i = 0; i < cslen && cs[i] != '*'; i++) {
		if (i >= CHARSET_MAX || !charset_char_ok(cs[i])) {
			return (ERR_INVAL);
		}
		name[i] = cs[i] >= 'A' && cs[i] <= 'Z' ? (char)(cs[i] + 32) :
							 cs[i];
	}
	if (i == 0) {
		return (ERR_INVAL);
	}
	name[i] = '\0';
	return (ERR_OK);
}

/* Appends the U+FFFD replacement character. */
static int
charset_add_fffd(struct buf *out)
{
	return (buf_add(out, "\xEF\xBF\xBD", 3));
}

/* Runs in[0..n) through cd, appending valid UTF-8 to out. */
static int
charset_iconv(iconv_t cd, const char *in, size_t n, struct buf *out)
{
	char tmp[1024];
	char *ip = (char *)in, *op;
	size_t il = n, ol, r;
	int rv, saved;

	while (il > 0) {
		op = tmp;
		ol = sizeof(tmp);
		r = iconv(cd, &ip, &il, &op, &ol);
		saved = errno;
		rv = mime_utf8_append_fffd(out, tmp, sizeof(tmp) - ol);
		if (rv != 0) {
			return (rv);
		}
		if (r != (size_t)-1 || saved == E2BIG) {
			continue;
		}
		/* EILSEQ: skip the bad byte; EINVAL: truncated at the end. */
		rv = charset_add_fffd(out);
		if (rv != 0) {
			return (rv);
		}
		if (saved == EILSEQ) {
			ip++;
			il--;
		} else {
			il = 0;
		}
	}
	/* Return a stateful encoder (ISO-2022-JP, UTF-7) to its initial
	 * state; for UTF-8 output this writes nothing of substance. */
	op = tmp;
	ol = sizeof(tmp);
	(void)iconv(cd, NULL, NULL, &op, &ol);
	return (mime_utf8_append_fffd(out, tmp, sizeof(tmp) - ol));
}

int
mime_charset_to_utf8(const char *cs, size_t cslen, const void *in, size_t n,
    struct buf *out)
{
	char name[CHARSET_MAX + 1];
	const char *iname;
	iconv_t cd;
	size_t i, oldlen = out->len;
	int rv;

	rv = charset_name(cs, cslen, name);
	if (rv != 0) {
		return (ERR_NOTFOUND);
	}
	iname = name;
	for (i = 0; i < ARRAY_LEN(charset_aliases); i++) {
		if (strcmp(name, charset_aliases[i].label) == 0) {
			iname = charset_aliases[i].iconv_name;
			break;
		}
	}
	if (iname == NULL) {
		return (mime_utf8_append_latin1(out, in, n));
	}
	if (strcmp(iname, "UTF-8") == 0) {
		return (mime_utf8_append_fffd(out, in, n));
	}
	cd = iconv_open("UTF-8", iname);
	if (cd == (iconv_t)-1) {
		return (ERR_NOTFOUND);
	}
	rv = charset_iconv(cd, in, n, out);
	iconv_close(cd);
	if (rv != 0 && out->data != NULL) {
		out->len = oldlen;
		out->data[oldlen] = '\0';
	}
	return (rv);
}
