/*
 * sync_batcher_test.c: the batcher flushes by rows and by bytes, numbers
 * batches from 1, deep-copies strings, clips oversized fields at a UTF-8
 * boundary, and stops numbering when the sink refuses a batch; a
 * message's attachment rows travel in its batch, in order, capped.
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

/* What an attachment-checking sink saw. */
struct att_seen {
	size_t batches, messages, attachments;
	size_t longest; /* longest filename */
	char first_filename[64];
};

/* Every attachment row must have its full message row in the batch. */
static int
att_sink_fn(const struct proto_batch *b, void *arg)
{
	struct att_seen *s = arg;
	const struct proto_attachment_row *a;
	char want[64];
	size_t i, j;
	bool found;

	s->batches++;
	s->messages += b->nmessages;
	for (i = 0; i < b->nattachments; i++) {
		a = &b->attachments[i];
		found = false;
		for (j = 0; j < b->nmessages && !found; j++) {
			found = b->messages[j].full
			    && b->messages[j].uid == a->uid
			    && b->messages[j].mailbox.len == a->mailbox.len
			    && memcmp(b->messages[j].mailbox.p, a->mailbox.p,
				   a->mailbox.len)
				== 0;
		}
		if (!found) {
			fail_msg("batch %u: attachment of uid %u without its "
			         "message row",
			    b->seq, a->uid);
		}
		assert_non_null(a->part.p);
		assert_int_equal(strlen(a->part.p), a->part.len);
		assert_null(a->content_id.p);
		if (a->filename.len > s->longest) {
			s->longest = a->filename.len;
		}
		if (a->filename.len < 64) {
			snprintf(want, sizeof(want), "f%u-%.*s.pdf", a->uid,
			    (int)a->part.len, a->part.p);
			assert_int_equal(a->filename.len, strlen(want));
			assert_memory_equal(a->filename.p, want, a->filename.len);
		}
		if (s->attachments == 0) {
			snprintf(s->first_filename, sizeof(s->first_filename),
			    "%.*s", (int)a->filename.len, a->filename.p);
		}
		s->attachments++;
	}
	return (0);
}

/* Adds n attachments "1".."n" of (INBOX, uid) from heap strings that are
 * freed at once (the batcher copies). */
static int
add_atts(struct sync_batcher *b, const char *mbox, uint32_t uid, size_t n)
{
	struct proto_attachment_row a;
	char *part, *name;
	size_t k;
	int rv = 0;

	for (k = 1; k <= n && rv == 0; k++) {
		part = malloc(16);
		name = malloc(64);
		assert_non_null(part);
		assert_non_null(name);
		snprintf(part, 16, "%zu", k);
		snprintf(name, 64, "f%u-%zu.pdf", uid, k);
		memset(&a, 0, sizeof(a));
		a.mailbox = ps(mbox);
		a.uid = uid;
		a.part = ps(part);
		a.filename = ps(name);
		a.mime_type = ps("application/pdf");
		a.size = 100 * k;
		a.disposition = ps("attachment");
		rv = sync_batcher_add_attachment(b, &a);
		free(part);
		free(name);
	}
	return (rv);
}

static struct proto_message_row
full_row(const char *mbox, uint32_t uid)
{
	struct proto_message_row r;

	memset(&r, 0, sizeof(r));
	r.mailbox = ps(mbox);
	r.uid = uid;
	r.full = true;
	r.subject = ps("s");
	return (r);
}

static void
test_attachments_travel_with_message(void **state)
{
	struct sync_limits l;
	struct sync_sink sink = { att_sink_fn, NULL };
	struct sync_batcher *b;
	struct proto_message_row r;
	struct att_seen s;
	size_t want = 0;
	uint32_t uid;

	(void)state;
	memset(&s, 0, sizeof(s));
	sink.arg = &s;
	sync_limits_default(&l);
	l.batch_rows = 4;
	assert_int_equal(sync_batcher_new(1, 1, &l, &sink, &b), 0);
	for (uid = 1; uid <= 20; uid++) {
		/* 0..5 attachments: some messages alone fill a batch. */
		assert_int_equal(add_atts(b, "INBOX", uid, uid % 6), 0);
		want += uid % 6;
		r = full_row("INBOX", uid);
		assert_int_equal(sync_batcher_add_message(b, &r), 0);
	}
	assert_int_equal(sync_batcher_flush(b), 0);
	assert_int_equal(s.messages, 20);
	assert_int_equal(s.attachments, want);
	assert_string_equal(s.first_filename, "f1-1.pdf");
	/* Attachment rows count toward batch_rows: more than 20/4 batches. */
	assert_true(s.batches > 5);
	assert_int_equal(sync_batcher_nbatches(b), s.batches);
	sync_batcher_free(&b);
}

static void
test_attachment_order_rules(void **state)
{
	struct sync_limits l;
	struct sync_sink sink = { att_sink_fn, NULL };
	struct sync_batcher *b;
	struct proto_message_row r;
	struct proto_mailbox_row m;
	struct proto_attachment_row a;
	struct att_seen s;
	char *name;
	size_t i;
	int step;

	(void)state;
	memset(&s, 0, sizeof(s));
	sink.arg = &s;
	sync_limits_default(&l);
	memset(&m, 0, sizeof(m));
	m.name = ps("INBOX");
	/* Whatever comes between attachments and their row is refused. */
	for (step = 0; step < 6; step++) {
		assert_int_equal(sync_batcher_new(1, 1, &l, &sink, &b), 0);
		assert_int_equal(add_atts(b, "INBOX", 7, 2), 0);
		switch (step) {
		case 0: /* another message's row */
			r = full_row("INBOX", 8);
			assert_int_equal(
			    sync_batcher_add_message(b, &r), ERR_INVAL);
			break;
		case 1: /* a flag-only row of the same message */
			r = full_row("INBOX", 7);
			r.full = false;
			assert_int_equal(
			    sync_batcher_add_message(b, &r), ERR_INVAL);
			break;
		case 2: /* the same uid in another mailbox */
			r = full_row("Sent", 7);
			assert_int_equal(
			    sync_batcher_add_message(b, &r), ERR_INVAL);
			break;
		case 3:
			assert_int_equal(
			    sync_batcher_add_mailbox(b, &m), ERR_INVAL);
			break;
		case 4:
			assert_int_equal(sync_batcher_flush(b), ERR_INVAL);
			break;
		case 5: /* another message's attachment */
			assert_int_equal(add_atts(b, "INBOX", 9, 1), ERR_INVAL);
			break;
		}
		/* The right row still takes them along. */
		r = full_row("INBOX", 7);
		assert_int_equal(sync_batcher_add_message(b, &r), 0);
		assert_int_equal(sync_batcher_flush(b), 0);
		sync_batcher_free(&b);
	}
	assert_int_equal(s.attachments, 12);

	/* At most SYNC_MAX_ATTACHMENTS per message; long names clipped at
	 * a character boundary. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(sync_batcher_new(1, 1, &l, &sink, &b), 0);
	assert_int_equal(add_atts(b, "INBOX", 3, SYNC_MAX_ATTACHMENTS), 0);
	assert_int_equal(add_atts(b, "INBOX", 3, 1), ERR_TOOBIG);
	name = malloc(3001);
	assert_non_null(name);
	for (i = 0; i < 3000; i += 3) {
		memcpy(name + i, "\xe2\x82\xac", 3); /* euro sign */
	}
	name[3000] = '\0';
	r = full_row("INBOX", 3);
	assert_int_equal(sync_batcher_add_message(b, &r), 0);
	memset(&a, 0, sizeof(a));
	a.mailbox = ps("INBOX");
	a.uid = 4;
	a.part = ps("2");
	a.filename = ps(name);
	a.mime_type = ps("application/pdf");
	assert_int_equal(sync_batcher_add_attachment(b, &a), 0);
	free(name);
	r = full_row("INBOX", 4);
	assert_int_equal(sync_batcher_add_message(b, &r), 0);
	assert_int_equal(sync_batcher_flush(b), 0);
	assert_int_equal(s.attachments, SYNC_MAX_ATTACHMENTS + 1);
	assert_int_equal(s.longest, 1023); /* 341 whole euro signs */
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
		cmocka_unit_test(test_attachments_travel_with_message),
		cmocka_unit_test(test_attachment_order_rules),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
