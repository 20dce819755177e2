/*
 * fuzz_mime.c: libFuzzer harness for pkg/mime. Feeds the input to every
 * decoder (RFC 2047 headers, RFC 5322 dates, INTERNALDATE, RFC 2231
 * parameters, raw header sections, address lists) and aborts if a decoder
 * returns anything but valid UTF-8 free of NUL/CR/LF, or an error code it
 * does not document.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check_text(int rv, char *out)
{
	size_t n;

	if (rv != 0) {
		if ((rv != ERR_TOOBIG && rv != ERR_NOMEM) || out != NULL) {
			abort();
		}
		return;
	}
	if (out == NULL) {
		abort();
	}
	n = strlen(out);
	if (!mime_utf8_valid(out, n) || strchr(out, '\r') != NULL ||
	    strchr(out, '\n') != NULL) {
		abort();
	}
	free(out);
}

/* The input as a raw message (header helpers) and as an address list. */
static void
fuzz_raw_message(const char *s, size_t size)
{
	struct mime_addr_list l;
	struct buf b;
	size_t end;
	char *out = NULL, *f = NULL;
	int rv;

	rv = mime_header_end(s, size, &end);
	if ((rv != 0 && rv != ERR_INVAL) || (rv == 0 && end > size)) {
		abort();
	}
	rv = mime_header_get(s, size, "To", &out);
	if (rv != 0 && rv != ERR_INVAL && rv != ERR_NOTFOUND &&
	    rv != ERR_TOOBIG) {
		abort();
	}
	free(out);
	buf_init(&b, 2 * size + 16);
	rv = mime_header_strip(s, size, "Bcc", &b);
	if ((rv != 0 && rv != ERR_INVAL) || b.len > size) {
		abort();
	}
	buf_release(&b);
	rv = mime_addr_parse(s, size, &l);
	if (rv != 0) {
		if ((rv != ERR_INVAL && rv != ERR_TOOBIG) || l.n != 0) {
			abort();
		}
		return;
	}
	/* an addr-spec never holds a control byte (it goes into SMTP) */
	for (end = 0; end < l.n; end++) {
		const char *a = l.v[end].addr;

		for (; *a != '\0'; a++) {
			if (((unsigned char)*a < 0x20 && *a != '\t') ||
			    *a == 0x7f) {
				abort();
			}
		}
	}
	if (mime_addr_format(&l, &f) == 0) {
		if ((!mime_utf8_valid(f, strlen(f)) && mime_utf8_valid(s, size)) ||
		    strpbrk(f, "\r\n") != NULL) {
			abort();
		}
		free(f);
	}
	mime_addr_list_release(&l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char *out = NULL;
	int64_t t;
	int rv;

	rv = mime_decode_header(s, size, &out);
	fuzz_check_text(rv, out);
	out = NULL;
	rv = mime_decode_param2231(s, size, &out);
	fuzz_check_text(rv, out);
	rv = mime_parse_date(s, size, &t);
	if (rv != 0 && rv != ERR_INVAL) {
		abort();
	}
	rv = mime_parse_internaldate(s, size, &t);
	if (rv != 0 && rv != ERR_INVAL) {
		abort();
	}
	rv = mime_parse_rfc3339(s, size, &t);
	if (rv != 0 && rv != ERR_INVAL) {
		abort();
	}
	fuzz_raw_message(s, size);
	return (0);
}
