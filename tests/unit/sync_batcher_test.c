/*
 * sync_batcher_test.c: the batcher flushes by rows and by bytes, numbers
 * batches from 1, deep-copies strings, clips oversized fields at a UTF-8
 * boundary, and stops numbering when the sink refuses a batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sync/sync.h"

struct seen {
	uint32_t seqs[64];
	size_t rows[64];
	size_t n;
	char last_subject[128];
	size_t longest;
	int fail_at; /* seq at which the sink fails, 0 never */
};

static int
sink_fn(const struct proto_batch *b, void *arg)
{
	struct seen *s = arg;
	size_t i;

	if (s->fail_at != 0 && (int)b->seq == s->fail_at) {
		return (ERR_TIMEOUT);
	}
	s->seqs[s->n] = b->seq;
	s->rows[s->n] = b->nmessages;
	s->n++;
	for (i = 0; i < b->nmessages; i++) {
		const struct proto_message_row *m = &b->messages[i];

		assert_non_null(m->mailbox.p);
		assert_int_equal(strlen(m->mailbox.p), m->mailbox.len);
		if (m->subject.p != NULL) {
			snprintf(s->last_subject, sizeof(s->last_subject),
			    "%.*s", (int)m->subject.len, m->subject.p);
			if (m->subject.len > s->longest) {
				s->longest = m->subject.len;
			}
		}
	}
	return (0);
}

static struct proto_str
ps(const char *s)
{
	return (proto_str_c(s));
}

static void
test_flush_by_rows(void **state)
{
	struct sync_limits l;
	struct sync_sink sink;
	struct sync_batcher *b;
	struct seen s;
	char subj[32];
	int i;

	(void)state;
	memset(&s, 0, sizeof(s));
	sync_limits_default(&l);
	l.batch_rows = 10;
	sink.batch = sink_fn;
	sink.arg = &s;
	assert_int_equal(sync_batcher_new(7, 2, &l, &sink, &b), 0);
	for (i = 0; i < 25; i++) {
		struct proto_message_row r;
		char *heap;

		memset(&r, 0, sizeof(r));
		snprintf(subj, sizeof(subj), "subject %d", i);
		/* The batcher must copy: free the caller's string at once. */
		heap = strdup(subj);
		r.mailbox = ps("INBOX");
		r.uid = (uint32_t)i + 1;
		r.full = true;
		r.subject = ps(heap);
		assert_int_equal(sync_batcher_add_message(b, &r), 0);
		memset(heap, 'X', strlen(heap));
		free(heap);
	}
	assert_int_equal(sync_batcher_flush(b), 0);
	assert_int_equal(sync_batcher_flush(b), 0); /* empty: no batch */
	assert_int_equal(s.n, 3);
	assert_int_equal(s.seqs[0], 1);
	assert_int_equal(s.seqs[2], 3);
	assert_int_equal(s.rows[0], 10);
	assert_int_equal(s.rows[2], 5);
	assert_string_equal(s.last_subject, "subject 24");
	assert_int_equal(sync_batcher_nbatches(b), 3);
	assert_int_equal(sync_batcher_nmessages(b), 25);
	sync_batcher_free(&b);
	assert_null(b);
}

static void
test_flush_by_bytes_and_clip(void **state)
{
	struct sync_limits l;
	struct sync_sink sink;
	struct sync_batcher *b;
	struct proto_message_row r;
	struct seen s;
	size_t big = SYNC_MAX_FIELD + 100, i;
	char *subj;

	(void)state;
	memset(&s, 0, sizeof(s));
	sync_limits_default(&l);
	l.batch_bytes = 100000;
	sink.batch = sink_fn;
	sink.arg = &s;
	assert_int_equal(sync_batcher_new(1, 1, &l, &sink, &b), 0);
	/* A field of two-byte characters longer than the clip limit. */
	subj = malloc(big + 1);
	assert_non_null(subj);
	for (i = 0; i + 1 < big; i += 2) {
		subj[i] = (char)0xC3;
		subj[i + 1] = (char)0xA9;
	}
	subj[i] = '\0';
	memset(&r, 0, sizeof(r));
	r.mailbox = ps("INBOX");
	r.uid = 1;
	r.full = true;
	r.subject = ps(subj);
	assert_int_equal(sync_batcher_add_message(b, &r), 0);
	r.uid = 2;
	assert_int_equal(sync_batcher_add_message(b, &r), 0);
	/* Two clipped rows exceed 100000 bytes: flushed at the second. */
	assert_int_equal(s.n, 1);
	assert_true(s.longest <= SYNC_MAX_FIELD);
	assert_int_equal(s.longest % 2, 0); /* cut between characters */
	free(subj);
	sync_batcher_free(&b);
}

static void
test_sink_failure(void **state)
{
	struct sync_limits l;
	struct sync_sink sink;
	struct sync_batcher *b;
	struct proto_message_row r;
	struct seen s;
	int i, rv = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.fail_at = 2;
	sync_limits_default(&l);
	l.batch_rows = 5;
	sink.batch = sink_fn;
	sink.arg = &s;
	assert_int_equal(sync_batcher_new(1, 1, &l, &sink, &b), 0);
	memset(&r, 0, sizeof(r));
	r.mailbox = ps("INBOX");
	for (i = 0; i < 10 && rv == 0; i++) {
		r.uid = (uint32_t)i + 1;
		rv = sync_batcher_add_message(b, &r);
	}
	assert_int_equal(rv, ERR_TIMEOUT);
	/* Only the batches the sink accepted count. */
	assert_int_equal(sync_batcher_nbatches(b), 1);
	sync_batcher_free(&b);
}

static void
test_mailbox_rows(void **state)
{
	struct sync_limits l;
	struct sync_sink sink;
	struct sync_batcher *b;
	struct proto_mailbox_row m;
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	sync_limits_default(&l);
	sink.batch = sink_fn;
	sink.arg = &s;
	assert_int_equal(sync_batcher_new(1, 1, &l, &sink, &b), 0);
	memset(&m, 0, sizeof(m));
	m.name = ps("Отчёты");
	m.role = ps(NULL);
	m.uidvalidity = 42;
	assert_int_equal(sync_batcher_add_mailbox(b, &m), 0);
	assert_int_equal(sync_batcher_flush(b), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.rows[0], 0);
	sync_batcher_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush_by_rows),
		cmocka_unit_test(test_flush_by_bytes_and_clip),
		cmocka_unit_test(test_sink_failure),
		cmocka_unit_test(test_mailbox_rows),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
