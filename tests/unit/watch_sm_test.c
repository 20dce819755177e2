/*
 * watch_sm_test.c: pkg/watch's push connection state machine driven by
 * recorded server transcripts (the .txt files of tests/data/watch; no sockets), fed
 * in every chunk size, and the reconnect backoff bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"
#include "imap/imap.h"
#include "watch/watch.h"

#define DATA "tests/data/watch/"

struct rec {
	char names[16][64];
	int n;
};

static void
on_change(const char *mailbox, void *arg)
{
	struct rec *r = arg;

	if (r->n < 16) {
		snprintf(r->names[r->n], sizeof(r->names[0]), "%s", mailbox);
	}
	r->n++;
}

static char *
slurp(const char *name, size_t *len_r)
{
	char path[256];
	FILE *f;
	char *p;
	long n;

	snprintf(path, sizeof(path), DATA "%s", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len_r = (size_t)n;
	return (p);
}

/* Feeds a transcript in chunks of `chunk` bytes; baseline or live.
 * Returns the first error of the machine (0 if none). */
static int
play(struct watch_sm *sm, const char *name, size_t chunk, bool baseline,
    int64_t now, struct buf *out, struct rec *rec)
{
	struct imap_limits l;
	struct imap_parser *p = NULL;
	const struct imap_resp *r;
	size_t len, off = 0, used, n;
	char *data = slurp(name, &len);
	int rv = 0, fr;

	imap_limits_default(&l);
	assert_int_equal(imap_parser_new(&l, &p), 0);
	while (off < len && rv == 0) {
		n = len - off < chunk ? len - off : chunk;
		while (n > 0 && rv == 0) {
			fr = imap_parser_feed(p, data + off, n, &used, &r);
			assert_true(fr >= 0);
			off += used;
			n -= used;
			if (fr == 1) {
				rv = baseline ? watch_sm_baseline(sm, r)
					      : watch_sm_input(sm, r, now, out,
						    on_change, rec);
			} else {
				break;
			}
		}
	}
	imap_parser_free(&p);
	free(data);
	return (rv);
}

static const struct watch_opts opts = { 30000, 5000, true, true };

static void
test_notify(void **state)
{
	size_t chunk;

	(void)state;
	for (chunk = 1; chunk <= 64; chunk = chunk * 2 + 1) {
		struct watch_sm sm;
		struct buf out;
		struct rec rec = { .n = 0 };

		buf_init(&out, 4096);
		watch_sm_init(&sm, WATCH_MODE_NOTIFY, &opts);
		assert_int_equal(play(&sm, "baseline.txt", chunk, true, 0,
				     &out, &rec),
		    0);
		assert_int_equal(sm.nmb, 2);
		assert_int_equal(watch_sm_start(&sm, 1000, &out), 0);
		assert_string_equal(out.data, "W1 IDLE\r\n");
		buf_reset(&out);
		/* no reply to IDLE in time: dead */
		assert_int_equal(watch_sm_tick(&sm, 1000 + 5000, &out),
		    ERR_TIMEOUT);
		assert_int_equal(play(&sm, "notify.txt", chunk, false, 2000,
				     &out, &rec),
		    0);
		/* same STATUS: nothing; new UIDNEXT, new mailbox, modseq */
		assert_int_equal(rec.n, 3);
		assert_string_equal(rec.names[0], "Sent");
		assert_string_equal(rec.names[1], "New");
		assert_string_equal(rec.names[2], "INBOX");
		/* cycle: DONE, then IDLE again on OK */
		assert_int_equal(watch_sm_next(&sm), 2000 + 30000);
		assert_int_equal(watch_sm_tick(&sm, 32000, &out), 0);
		assert_string_equal(out.data, "DONE\r\n");
		assert_int_equal(watch_sm_tick(&sm, 32000 + 5000, &out),
		    ERR_TIMEOUT);
		buf_release(&out);
		watch_sm_release(&sm);
	}
}

static void
test_idle_poll(void **state)
{
	struct watch_sm sm;
	struct buf out;
	struct rec rec = { .n = 0 };

	(void)state;
	buf_init(&out, 4096);
	watch_sm_init(&sm, WATCH_MODE_IDLE, &opts);
	assert_int_equal(
	    play(&sm, "baseline.txt", 7, true, 0, &out, &rec), 0);
	assert_int_equal(watch_sm_start(&sm, 0, &out), 0);
	buf_reset(&out);
	assert_int_equal(play(&sm, "idle1.txt", 5, false, 10, &out, &rec), 0);
	assert_int_equal(rec.n, 1); /* EXISTS on INBOX */
	assert_string_equal(rec.names[0], "INBOX");
	assert_int_equal(watch_sm_tick(&sm, 30010, &out), 0);
	assert_string_equal(out.data, "DONE\r\n");
	buf_reset(&out);
	assert_int_equal(
	    play(&sm, "idle2.txt", 3, false, 30020, &out, &rec), 0);
	/* one LIST-STATUS round trip, then IDLE again */
	assert_string_equal(out.data,
	    "W2 LIST \"\" \"*\" RETURN (STATUS (UIDNEXT MESSAGES "
	    "HIGHESTMODSEQ))\r\nW3 IDLE\r\n");
	assert_int_equal(rec.n, 3); /* INBOX and Sent moved */
	assert_string_equal(rec.names[2], "Sent");
	buf_release(&out);
	watch_sm_release(&sm);
}

static void
test_bye_and_bad_tag(void **state)
{
	struct watch_sm sm;
	struct buf out;
	struct rec rec = { .n = 0 };

	(void)state;
	buf_init(&out, 4096);
	watch_sm_init(&sm, WATCH_MODE_NOTIFY, &opts);
	assert_int_equal(watch_sm_start(&sm, 0, &out), 0);
	assert_int_equal(
	    play(&sm, "bye.txt", 4, false, 0, &out, &rec), ERR_CLOSED);
	buf_release(&out);
	watch_sm_release(&sm);
}

static void
test_backoff(void **state)
{
	uint32_t f, r;
	int64_t d;

	(void)state;
	assert_int_equal(watch_backoff_ms(0, 7), 0);
	for (f = 1; f < 40; f++) {
		for (r = 0; r < 2000; r += 97) {
			d = watch_backoff_ms(f, r * 2654435761u);
			assert_true(d >= WATCH_BACKOFF_MIN_MS / 2);
			assert_true(d <= WATCH_BACKOFF_MAX_MS);
		}
	}
	assert_true(watch_backoff_ms(1, 0) >= 500);
	assert_true(watch_backoff_ms(1, UINT32_MAX) <= 1000);
	assert_true(watch_backoff_ms(30, 0) >= 30000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_idle_poll),
		cmocka_unit_test(test_bye_and_bad_tag),
		cmocka_unit_test(test_backoff),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
