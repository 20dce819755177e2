/*
 * scan.c: a byte-level pass over untrusted msgpack before msgpack-c sees
 * it. msgpack_unpack_next() allocates every array and map from its header
 * count before reading the elements, so a 6-byte input (0xdd ffffffff)
 * could ask for gigabytes. This pass walks the encoding without
 * allocating and rejects
 *   - a container whose element count exceeds the bytes left (every
 *     element takes at least one byte),
 *   - nesting deeper than PROTO_MAX_DEPTH,
 *   - truncated headers or payloads, the never-used byte 0xc1,
 *   - anything after the first complete object.
 * After it succeeds the unpacker's memory is bounded by a small multiple
 * of the input length, itself capped at PROTO_MAX_MSG.
 */
#include <stdint.h>
#include <stdio.h>

#include "base/base.h"
#include "proto/proto.h"

/* Reads a big-endian unsigned integer of n bytes at p. */
static uint64_t
be_read(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		v = (v << 8) | p[i];
	}
	return (v);
}

/*
 * Decodes the header at buf[pos]. Sets *hdr_r (header bytes, including
 * any length field), *payload_r (bytes that follow and are skipped) and
 * *items_r (child objects for arrays/maps, else 0). Returns 0, or 1 if
 * the header is truncated, 2 for the invalid byte 0xc1.
 */
static int
scan_header(const unsigned char *p, size_t avail, size_t *hdr_r,
    uint64_t *payload_r, uint64_t *items_r)
{
	unsigned char c = p[0];
	size_t lenbytes = 0;
	uint64_t fixed = 0; /* payload with no length field */
	int kind = 0; /* 0 scalar/raw, 1 array, 2 map, 3 ext */

	*items_r = 0;
	*payload_r = 0;
	*hdr_r = 1;
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
		return (0);
	}
	if (c >= 0x80 && c <= 0x8f) {
		*items_r = 2u * (uint64_t)(c & 0x0f);
		return (0);
	}
	if (c >= 0x90 && c <= 0x9f) {
		*items_r = c & 0x0f;
		return (0);
	}
	if (c >= 0xa0 && c <= 0xbf) {
		*payload_r = c & 0x1f;
		return (0);
	}
	switch (c) {
	case 0xc1:
		return (2);
	case 0xc4:
	case 0xd9:
		lenbytes = 1;
		break; /* bin8, str8 */
	case 0xc5:
	case 0xda:
		lenbytes = 2;
		break; /* bin16, str16 */
	case 0xc6:
	case 0xdb:
		lenbytes = 4;
		break; /* bin32, str32 */
	case 0xc7:
		lenbytes = 1;
		fixed = 1;
		kind = 3;
		break; /* ext8 */
	case 0xc8:
		lenbytes = 2;
		fixed = 1;
		kind = 3;
		break; /* ext16 */
	case 0xc9:
		lenbytes = 4;
		fixed = 1;
		kind = 3;
		break; /* ext32 */
	case 0xca:
		fixed = 4;
		break; /* float32 */
	case 0xcb:
		fixed = 8;
		break; /* float64 */
	case 0xcc:
	case 0xd0:
		fixed = 1;
		break;
	case 0xcd:
	case 0xd1:
		fixed = 2;
		break;
	case 0xce:
	case 0xd2:
		fixed = 4;
		break;
	case 0xcf:
	case 0xd3:
		fixed = 8;
		break;
	case 0xd4:
		fixed = 2;
		break; /* fixext1: type + 1 */
	case 0xd5:
		fixed = 3;
		break;
	case 0xd6:
		fixed = 5;
		break;
	case 0xd7:
		fixed = 9;
		break;
	case 0xd8:
		fixed = 17;
		break;
	case 0xdc:
		lenbytes = 2;
		kind = 1;
		break; /* array16 */
	case 0xdd:
		lenbytes = 4;
		kind = 1;
		break; /* array32 */
	case 0xde:
		lenbytes = 2;
		kind = 2;
		break; /* map16 */
	case 0xdf:
		lenbytes = 4;
		kind = 2;
		break; /* map32 */
	default:
		return (2);
	}
	if (avail < 1 + lenbytes) {
		return (1);
	}
	*hdr_r = 1 + lenbytes;
	if (kind == 1) {
		*items_r = be_read(p + 1, lenbytes);
	} else if (kind == 2) {
		*items_r = 2u * be_read(p + 1, lenbytes);
	} else if (lenbytes > 0) {
		*payload_r = be_read(p + 1, lenbytes) + fixed;
	} else {
		*payload_r = fixed;
	}
	return (0);
}

int
proto_scan(const char *buf, size_t len, char *errbuf, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)buf;
	uint64_t left[PROTO_MAX_DEPTH + 1]; /* objects still due per level */
	uint64_t payload, items;
	size_t pos = 0, hdr;
	int depth = 0, rv;

	if (len == 0) {
		snprintf(errbuf, errlen, "message: empty");
		return (ERR_PROTO);
	}
	left[0] = 1;
	while (depth >= 0) {
		if (left[depth] == 0) {
			depth--;
			continue;
		}
		left[depth]--;
		if (pos >= len) {
			snprintf(errbuf, errlen,
			    "message: truncated at byte %zu", pos);
			return (ERR_PROTO);
		}
		rv = scan_header(p + pos, len - pos, &hdr, &payload, &items);
		if (rv == 1) {
			snprintf(errbuf, errlen,
			    "message: truncated header at byte %zu", pos);
			return (ERR_PROTO);
		}
		if (rv == 2) {
			snprintf(errbuf, errlen,
			    "message: invalid msgpack byte 0x%02x at byte %zu",
			    p[pos], pos);
			return (ERR_PROTO);
		}
		pos += hdr;
		if (payload > len - pos) {
			snprintf(errbuf, errlen,
			    "message: value at byte %zu claims %llu bytes, "
			    "only %zu remain",
			    pos - hdr, (unsigned long long)payload, len - pos);
			return (ERR_PROTO);
		}
		pos += (size_t)payload;
		if (items == 0) {
			continue;
		}
		if (items > len - pos) {
			snprintf(errbuf, errlen,
			    "message: container at byte %zu claims %llu "
			    "elements, only %zu bytes remain",
			    pos - hdr, (unsigned long long)items, len - pos);
			return (ERR_PROTO);
		}
		if (depth + 1 > PROTO_MAX_DEPTH) {
			snprintf(errbuf, errlen,
			    "message: nested deeper than %d at byte %zu",
			    PROTO_MAX_DEPTH, pos - hdr);
			return (ERR_PROTO);
		}
		depth++;
		left[depth] = items;
	}
	if (pos != len) {
		snprintf(errbuf, errlen,
		    "message: %zu trailing bytes after the message",
		    len - pos);
		return (ERR_PROTO);
	}
	return (0);
}
