/*
 * fuzz_proto.c: libFuzzer harness for pkg/proto. Decodes the input; if it
 * decodes, re-encodes it, decodes that, and re-encodes again: the two
 * encodings must be byte-identical (the codec is canonical), and every
 * step after the first decode must succeed. Aborts on any mismatch or on
 * an error code the API does not document. Seeds in
 * tests/fuzz/corpus/proto/ come from tests/unit/proto_test.c
 * (PROTO_WRITE_SEEDS=DIR).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_msg m1, m2;
	char *enc1 = NULL, *enc2 = NULL;
	size_t len1 = 0, len2 = 0;
	char err[256];
	int rv;

	rv = proto_decode((const char *)data, size, &m1, err, sizeof(err));
	if (rv != 0) {
		if (rv != ERR_PROTO && rv != ERR_VERSION && rv != ERR_TOOBIG &&
		    rv != ERR_NOMEM) {
			abort();
		}
		if (err[0] == '\0') {
			abort(); /* every error says why */
		}
		proto_msg_release(&m1);
		return (0);
	}
	if (proto_encode(&m1, &enc1, &len1) != 0) {
		abort();
	}
	if (proto_decode(enc1, len1, &m2, err, sizeof(err)) != 0) {
		abort();
	}
	if (m2.type != m1.type || m2.id != m1.id) {
		abort();
	}
	if (proto_encode(&m2, &enc2, &len2) != 0) {
		abort();
	}
	if (len1 != len2 || memcmp(enc1, enc2, len1) != 0) {
		abort();
	}
	proto_msg_release(&m2);
	proto_msg_release(&m1);
	free(enc1);
	free(enc2);
	return (0);
}
