/*
 * fuzz_mime.c: libFuzzer harness for pkg/mime. Feeds the input to every
 * decoder (RFC 2047 headers, RFC 5322 dates, INTERNALDATE, RFC 2231
 * parameters) and aborts if a decoder returns anything but valid UTF-8
 * free of NUL/CR/LF, or an error code it does not document.
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
	return (0);
}
