/*
 * fuzz_utf7.c: libFuzzer harness for modified UTF-7 (pkg/imap/utf7.c).
 *
 * The input is tried both ways:
 *   - as mUTF-7: if it decodes, the UTF-8 must encode again, and that
 *     encoding must decode to the same UTF-8;
 *   - as UTF-8: if it encodes, the result must decode back to the input
 *     byte for byte, and be the same when encoded again (canonical).
 * Any broken promise aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "imap/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char *dec = NULL, *enc = NULL, *dec2 = NULL, *enc2 = NULL;
	int rv;

	rv = imap_utf7_decode(in, size, &dec);
	if (rv == 0) {
		if (dec == NULL || imap_utf7_encode(dec, strlen(dec), &enc) != 0 ||
		    imap_utf7_decode(enc, strlen(enc), &dec2) != 0 ||
		    strcmp(dec, dec2) != 0) {
			abort();
		}
	} else if (rv != ERR_PROTO || dec != NULL) {
		abort();
	}
	free(dec);
	free(enc);
	free(dec2);
	dec = enc = dec2 = NULL;

	rv = imap_utf7_encode(in, size, &enc);
	if (rv == 0) {
		if (enc == NULL ||
		    imap_utf7_decode(enc, strlen(enc), &dec) != 0 ||
		    strlen(dec) != size || memcmp(dec, in, size) != 0 ||
		    imap_utf7_encode(dec, size, &enc2) != 0 ||
		    strcmp(enc, enc2) != 0) {
			abort();
		}
	} else if (rv != ERR_INVAL || enc != NULL) {
		abort();
	}
	free(dec);
	free(enc);
	free(enc2);
	return (0);
}
