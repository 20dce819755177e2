/*
 * fuzz_imap_parse.c: libFuzzer harness for the IMAP response parser.
 *
 * The first input byte picks the limits (default or tiny, to reach every
 * limit) and a chunking seed; the rest is server bytes. They are fed
 * whole, one byte at a time and in pseudo-random chunks. Each run renders
 * every response (imap_resp_format), the result of imap_fetch_parse /
 * imap_list_parse (and of the COPYUID / APPENDUID readers on OK
 * responses with a code) on it, and the final error code; the three renderings
 * must be identical, or the harness aborts. Bit 1 of the first byte also
 * installs a literal sink (literals over 8 bytes streamed, at most 4096):
 * the sink checks that offsets are contiguous, and the streamed bytes of
 * each complete response are rendered after it, so they too must agree
 * whatever the chunking. Error texts are not compared:
 * when a line is too long AND the response is too big, which limit trips
 * first may depend on where a chunk ends (both are ERR_TOOBIG).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "imap/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Renders what the decoders make of r. */
static void
decode_resp(const struct imap_resp *r, struct buf *out)
{
	struct imap_fetch f;
	struct imap_list_item it;
	size_t i;
	int rv;

	if (r->status == IMAP_ST_OK && r->code != NULL) {
		struct imap_copyuid cu;
		uint32_t uv, uid;

		rv = imap_copyuid_parse(r, &cu);
		(void)buf_printf(out, " => copyuid %d", rv);
		if (rv == 0) {
			if (imap_copyuid_lookup(&cu, 1, &uid) == 0 && uid == 0) {
				abort(); /* found means a real UID */
			}
			(void)buf_printf(out, " %u %llu", cu.uidvalidity,
			    (unsigned long long)cu.count);
		}
		rv = imap_appenduid_parse(r, &uv, &uid);
		(void)buf_printf(out, " appenduid %d %u %u", rv, uv, uid);
	}
	if (r->name == NULL) {
		return;
	}
	if (strcmp(r->name, "FETCH") == 0) {
		rv = imap_fetch_parse(r, &f);
		(void)buf_printf(out, " => fetch %d", rv);
		if (rv == 0) {
			(void)buf_printf(out,
			    " seq=%u uid=%u fl=%d/%u kw=%s ms=%d/%llu "
			    "id=%d/%lld sz=%d/%llu env=%d date=%lld s=%s f=%s "
			    "t=%s c=%s m=%s bs=%d att=%d",
			    f.seq, f.uid, f.has_flags, f.flags,
			    f.keywords ? f.keywords : "-", f.has_modseq,
			    (unsigned long long)f.modseq, f.has_internal_date,
			    (long long)f.internal_date, f.has_size,
			    (unsigned long long)f.size, f.has_envelope,
			    (long long)f.date, f.subject ? f.subject : "-",
			    f.from ? f.from : "-", f.to ? f.to : "-",
			    f.cc ? f.cc : "-",
			    f.message_id ? f.message_id : "-",
			    f.has_bodystructure, f.has_attachments);
			for (i = 0; i < f.nattachments; i++) {
				const struct imap_attachment *a =
				    &f.attachments[i];

				(void)buf_printf(out, " [%s %s %s %llu %s %s]",
				    a->part, a->filename ? a->filename : "-",
				    a->mime_type, (unsigned long long)a->size,
				    a->disposition ? a->disposition : "-",
				    a->content_id ? a->content_id : "-");
			}
			imap_fetch_release(&f);
		} else if (f.keywords != NULL || f.subject != NULL ||
		    f.from != NULL || f.to != NULL || f.cc != NULL ||
		    f.message_id != NULL || f.attachments != NULL) {
			abort(); /* error must leave nothing to free */
		}
	} else if (strcmp(r->name, "LIST") == 0 ||
	    strcmp(r->name, "LSUB") == 0) {
		rv = imap_list_parse(r, &it);
		(void)buf_printf(out, " => list %d", rv);
		if (rv == 0) {
			if (it.name == NULL || it.raw_name == NULL) {
				abort();
			}
			(void)buf_printf(out, " %s|%s|%d|%d|%s", it.name,
			    it.raw_name, it.delimiter, it.noselect,
			    it.role ? it.role : "-");
			(void)imap_role_from_name(it.name);
			imap_list_item_release(&it);
		}
	}
}

/* Bytes streamed for the response being read. */
struct streamed {
	struct buf bytes;
	uint64_t next, total;
	const struct imap_parser *p; /* for imap_parser_stream_fetch */
};

static int
sink(const char *chunk, size_t len, uint64_t offset, uint64_t total,
    void *arg)
{
	struct streamed *st = arg;
	uint32_t seq, uid;
	int rv;

	if (offset == 0) {
		if (st->next != st->total) {
			abort(); /* the previous literal was cut short */
		}
		st->total = total;
		/* whose literal: the same whatever the chunking */
		rv = imap_parser_stream_fetch(st->p, &seq, &uid);
		if (rv != 0 && (rv != ERR_NOTFOUND || seq != 0 || uid != 0)) {
			abort();
		}
		(void)buf_printf(&st->bytes, "[%llu %d %u %u]",
		    (unsigned long long)total, rv, seq, uid);
	} else if (offset != st->next || total != st->total) {
		abort();
	}
	if (len == 0 || offset + len > total || total <= 8 || total > 4096) {
		abort();
	}
	st->next = offset + len;
	(void)buf_add(&st->bytes, chunk, len);
	return (0);
}

/* Feeds data in the given chunking; renders everything into out. */
static void
run(const struct imap_limits *lim, const uint8_t *data, size_t size,
    int mode, unsigned seed, bool stream, struct buf *out)
{
	struct imap_parser *p = NULL;
	const struct imap_resp *r;
	struct streamed st;
	size_t off = 0, n, used;
	int rv = 0;

	memset(&st, 0, sizeof(st));
	buf_init(&st.bytes, 1u << 30);
	if (imap_parser_new(lim, &p) != 0) {
		abort();
	}
	st.p = p;
	if (stream && imap_parser_set_literal_sink(p, 8, 4096, sink, &st)
	    != 0) {
		abort();
	}
	while (off < size) {
		switch (mode) {
		case 0:
			n = size - off;
			break;
		case 1:
			n = 1;
			break;
		default:
			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 64;
			break;
		}
		if (n > size - off) {
			n = size - off;
		}
		rv = imap_parser_feed(p, (const char *)data + off, n, &used,
		    &r);
		if (used > n) {
			abort();
		}
		off += used;
		if (rv < 0) {
			if (imap_parser_error(p)[0] == '\0') {
				abort();
			}
			break;
		}
		if (rv == 1) {
			if (r == NULL || r->text == NULL) {
				abort();
			}
			(void)imap_resp_format(r, out);
			decode_resp(r, out);
			if (st.bytes.len > 0) {
				(void)buf_add(out, " streamed=", 10);
				(void)buf_add(out, st.bytes.data,
				    st.bytes.len);
				buf_reset(&st.bytes);
			}
			(void)buf_add(out, "\n", 1);
		} else if (used != n) {
			abort();
		}
	}
	(void)buf_printf(out, "end %d\n", rv < 0 ? rv : 0);
	imap_parser_free(&p);
	buf_release(&st.bytes);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_limits lim;
	struct buf a, b;
	unsigned seed;
	bool stream;

	if (size < 1) {
		return (0);
	}
	imap_limits_default(&lim);
	if (data[0] & 1) {
		lim.max_line = 64;
		lim.max_literal = 32;
		lim.max_response = 256;
		lim.max_depth = 6;
		lim.max_tokens = 40;
	}
	seed = data[0] >> 1;
	stream = (data[0] & 2) != 0;
	data++;
	size--;
	buf_init(&a, 256u * 1024 * 1024);
	buf_init(&b, 256u * 1024 * 1024);
	run(&lim, data, size, 0, 0, stream, &a);
	run(&lim, data, size, 1, 0, stream, &b);
	if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len))) {
		abort();
	}
	buf_reset(&b);
	run(&lim, data, size, 2, seed, stream, &b);
	if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len))) {
		abort();
	}
	buf_release(&a);
	buf_release(&b);
	return (0);
}
