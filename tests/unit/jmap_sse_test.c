/*
 * jmap_sse_test.c: the text/event-stream parser (pkg/jmap/sse.c) and the
 * StateChange reader. A recorded JMAP stream (pings, comments, events
 * with and without a type, multi-line data, every line end) must give the
 * same events however it is split: at every byte position, at every pair
 * of positions, and byte by byte. Then the HTML rules one by one, the
 * bounds (line, event), and the sticky errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jmap/jmap.h"

/* What the callback saw: each event as "type|id|data" lines. */
struct seen {
	char text[4096];
	size_t n;
	int events;
	int fail_at; /* return ERR_IO from this event (1-based); 0 never */
};

static int
on_event(const struct jmap_sse_event *ev, void *arg)
{
	struct seen *s = arg;
	int k;

	s->events++;
	assert_int_equal(strlen(ev->data), ev->data_len);
	k = snprintf(s->text + s->n, sizeof(s->text) - s->n, "%s|%s|%.*s\n",
	    ev->type, ev->id, (int)ev->data_len, ev->data);
	assert_true(k > 0 && (size_t)k < sizeof(s->text) - s->n);
	s->n += (size_t)k;
	return (s->fail_at == s->events ? ERR_IO : 0);
}

/* A JMAP push stream as a server writes it (RFC 8620 7.3): a comment at
 * connect, StateChange events, pings, and the other forms the rules
 * allow. */
static const char recorded[]
    = ": connected\r\n"
      "\r\n"
      "event: state\r\n"
      "id: 1\r\n"
      "data: {\"@type\":\"StateChange\",\"changed\":{\"u1\":{\"Email\":"
      "\"d35ecb040aab\",\"Mailbox\":\"0af7a512ce70\"}}}\r\n"
      "\r\n"
      ": ping\r\n"
      "\r\n"
      "retry: 5000\r\n"
      "event: state\n"
      "data: {\"@type\":\"StateChange\",\n"
      "data: \"changed\":{\"u2\":{\"Email\":\"x\"}}}\n"
      "\n"
      "data: plain message\r"
      "data:second\r"
      "data:  two spaces\r"
      "\r"
      "event: ping\n"
      "unknown: field\n"
      "Data: wrong case\n"
      "data: {\"interval\":30}\n\n"
      "id\n"
      "data\n"
      "\n"
      "event: lost\n"
      "data: the stream ends before this event does\n";

static const char recorded_events[]
    = "state|1|{\"@type\":\"StateChange\",\"changed\":{\"u1\":{\"Email\":"
      "\"d35ecb040aab\",\"Mailbox\":\"0af7a512ce70\"}}}\n"
      "state|1|{\"@type\":\"StateChange\",\n\"changed\":{\"u2\":{\"Email\":"
      "\"x\"}}}\n"
      "message|1|plain message\nsecond\n two spaces\n"
      "ping|1|{\"interval\":30}\n"
      "message||\n";

/* Feeds the pieces [0,a) [a,b) [b,n) and checks the events. */
static void
feed_split(size_t a, size_t b)
{
	struct jmap_sse *p;
	struct seen s;
	size_t n = strlen(recorded);

	memset(&s, 0, sizeof(s));
	assert_int_equal(jmap_sse_new(on_event, &s, &p), 0);
	assert_int_equal(jmap_sse_feed(p, recorded, a), 0);
	assert_int_equal(jmap_sse_feed(p, recorded + a, b - a), 0);
	assert_int_equal(jmap_sse_feed(p, recorded + b, n - b), 0);
	if (strcmp(s.text, recorded_events) != 0) {
		fail_msg("split at %zu, %zu:\n%s", a, b, s.text);
	}
	assert_int_equal(jmap_sse_retry_ms(p), 5000);
	jmap_sse_free(&p);
	assert_null(p);
}

static void
test_recorded_every_split(void **state)
{
	size_t n = strlen(recorded), a, b;

	(void)state;
	for (a = 0; a <= n; a++) {
		feed_split(a, a);
	}
	for (a = 0; a <= n; a += 3) {
		for (b = a; b <= n; b += 5) {
			feed_split(a, b);
		}
	}
}

static void
test_recorded_bytewise(void **state)
{
	struct jmap_sse *p;
	struct seen s;
	size_t i;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(jmap_sse_new(on_event, &s, &p), 0);
	for (i = 0; recorded[i] != '\0'; i++) {
		assert_int_equal(jmap_sse_feed(p, recorded + i, 1), 0);
	}
	assert_int_equal(jmap_sse_feed(p, "", 0), 0);
	assert_string_equal(s.text, recorded_events);
	jmap_sse_free(&p);
	jmap_sse_free(&p); /* NULL is fine */
}

/* Streams and the events they give, whole. */
static const struct {
	const char *stream;
	size_t len; /* 0: strlen */
	const char *events;
	uint32_t retry;
} rules[] = {
	/* CR CR: two line ends, the second one dispatches */
	{ "data: a\r\rdata: b\n\n", 0, "message||a\nmessage||b\n", 0 },
	/* LF CR: also two line ends */
	{ "data: a\n\rdata: b\r\n\r\n", 0, "message||a\nmessage||b\n", 0 },
	/* no data line: nothing dispatched, and the type is reset */
	{ "event: x\n\ndata: y\n\n", 0, "message||y\n", 0 },
	{ "id: 7\n\n", 0, "", 0 },
	/* the last id stays for later events; an empty id clears it */
	{ "id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n", 0,
	    "message|7|a\nmessage|7|b\nmessage||c\n", 0 },
	/* an id holding NUL is ignored */
	{ "id: 5\n\nid: a\0b\ndata: z\n\n", 24, "message|5|z\n", 0 },
	/* only one space goes; a colon inside the value stays */
	{ "data:   x: y\n\n", 0, "message||  x: y\n", 0 },
	{ "data:\n\n", 0, "message||\n", 0 },
	{ "data\ndata\n\n", 0, "message||\n\n", 0 },
	/* comments, even long or odd ones */
	{ ":\n: a\n:data: no\ndata: yes\n\n", 0, "message||yes\n", 0 },
	/* an event and an unknown field with no colon */
	{ "event:state\nfoo\ndata:{}\n\n", 0, "state||{}\n", 0 },
	/* retry: digits only */
	{ "retry: 1500\n", 0, "", 1500 },
	{ "retry: 1500\nretry: 15x\nretry:\nretry: -3\n", 0, "", 1500 },
	{ "retry: 99999999999999999999999\n", 0, "", UINT32_MAX },
	{ "retry: 0\n", 0, "", 0 },
	/* a leading BOM is dropped, a later one is data */
	{ "\xEF\xBB\xBF"
	  "data: a\n\n",
	    0, "message||a\n", 0 },
	{ "\xEF\xBB\xBF\xEF\xBB\xBF"
	  "data: a\n\n",
	    0, "", 0 },
	{ "\xEF\xBB"
	  "data: a\n\n",
	    0, "", 0 },
	{ "data: \xEF\xBB\xBF\n\n", 0, "message||\xEF\xBB\xBF\n", 0 },
	/* bytes beyond ASCII pass through in type and data */
	{ "event: \xC3\xA9v\ndata: \xE2\x82\xAC\n\n", 0,
	    "\xC3\xA9v||\xE2\x82\xAC\n", 0 },
};

static void
test_rules(void **state)
{
	struct jmap_sse *p;
	struct seen s;
	size_t i, n, k;

	(void)state;
	for (i = 0; i < ARRAY_LEN(rules); i++) {
		n = rules[i].len != 0 ? rules[i].len : strlen(rules[i].stream);
		/* whole, and split at every position */
		for (k = 0; k <= n; k++) {
			memset(&s, 0, sizeof(s));
			assert_int_equal(jmap_sse_new(on_event, &s, &p), 0);
			assert_int_equal(
			    jmap_sse_feed(p, rules[i].stream, k), 0);
			assert_int_equal(
			    jmap_sse_feed(p, rules[i].stream + k, n - k), 0);
			if (strcmp(s.text, rules[i].events) != 0
			    || jmap_sse_retry_ms(p) != rules[i].retry) {
				fail_msg(
				    "rule #%zu split %zu: \"%s\" retry %u", i,
				    k, s.text, jmap_sse_retry_ms(p));
			}
			jmap_sse_free(&p);
		}
	}
}

/* A 2-byte data value with NUL: the event's data_len says 3. */
static int
on_nul(const struct jmap_sse_event *ev, void *arg)
{
	int *calls = arg;

	(*calls)++;
	assert_int_equal(ev->data_len, 3);
	assert_memory_equal(ev->data, "a\0b", 3);
	return (0);
}

static void
test_nul_in_data(void **state)
{
	struct jmap_sse *p;
	int calls = 0;

	(void)state;
	assert_int_equal(jmap_sse_new(on_nul, &calls, &p), 0);
	assert_int_equal(jmap_sse_feed(p, "data: a\0b\n\n", 11), 0);
	assert_int_equal(calls, 1);
	jmap_sse_free(&p);
}

/* Counts events of max - 6 bytes of data (the longest line's). */
static int
on_big(const struct jmap_sse_event *ev, void *arg)
{
	struct seen *s = arg;

	assert_int_equal(ev->data_len, JMAP_SSE_MAX_EVENT - 6);
	s->events++;
	return (0);
}

/* The longest line passes; one byte more fails, split or whole, and the
 * parser stays failed. */
static void
test_line_bound(void **state)
{
	const size_t max = JMAP_SSE_MAX_EVENT;
	struct jmap_sse *p;
	struct seen s;
	char *big;

	(void)state;
	big = malloc(max + 8);
	assert_non_null(big);
	/* "data: " + value: exactly max bytes before the LF */
	memcpy(big, "data: ", 6);
	memset(big + 6, 'x', max - 6);
	big[max] = '\n';
	big[max + 1] = '\n';
	memset(&s, 0, sizeof(s));
	assert_int_equal(jmap_sse_new(on_big, &s, &p), 0);
	assert_int_equal(jmap_sse_feed(p, big, max / 2), 0);
	assert_int_equal(
	    jmap_sse_feed(p, big + max / 2, max + 2 - max / 2), 0);
	assert_int_equal(s.events, 1);
	jmap_sse_free(&p);

	/* max + 1 in pieces: refused when the piece crossing it comes */
	memset(big, ':', max + 1);
	big[max + 1] = '\n';
	assert_int_equal(jmap_sse_new(on_event, &s, &p), 0);
	assert_int_equal(jmap_sse_feed(p, big, max), 0);
	assert_int_equal(jmap_sse_feed(p, big + max, 2), ERR_TOOBIG);
	assert_int_equal(jmap_sse_feed(p, "data: a\n\n", 9), ERR_TOOBIG);
	jmap_sse_free(&p);

	/* max + 1 whole, with its line end */
	assert_int_equal(jmap_sse_new(on_event, &s, &p), 0);
	assert_int_equal(jmap_sse_feed(p, big, max + 2), ERR_TOOBIG);
	jmap_sse_free(&p);

	/* max + 1 with no line end yet */
	assert_int_equal(jmap_sse_new(on_event, &s, &p), 0);
	assert_int_equal(jmap_sse_feed(p, big, max + 1), ERR_TOOBIG);
	jmap_sse_free(&p);
	free(big);
}

/* Many short data lines adding up past the bound. */
static void
test_event_bound(void **state)
{
	struct jmap_sse *p;
	struct seen s;
	char line[1024 + 8];
	size_t sent = 0;
	int rv = 0;

	(void)state;
	memcpy(line, "data: ", 6);
	memset(line + 6, 'y', 1023);
	line[1029] = '\n';
	memset(&s, 0, sizeof(s));
	assert_int_equal(jmap_sse_new(on_event, &s, &p), 0);
	while (rv == 0 && sent <= JMAP_SSE_MAX_EVENT + 2048) {
		rv = jmap_sse_feed(p, line, 1030);
		sent += 1024;
	}
	assert_int_equal(rv, ERR_TOOBIG);
	assert_true(sent > JMAP_SSE_MAX_EVENT);
	assert_int_equal(s.events, 0);
	assert_int_equal(jmap_sse_feed(p, "\n", 1), ERR_TOOBIG);
	assert_int_equal(s.events, 0);
	jmap_sse_free(&p);
}

/* The callback's error comes back, and stays. */
static void
test_callback_error(void **state)
{
	struct jmap_sse *p;
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.fail_at = 2;
	assert_int_equal(jmap_sse_new(on_event, &s, &p), 0);
	assert_int_equal(
	    jmap_sse_feed(p, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 27), ERR_IO);
	assert_int_equal(s.events, 2);
	assert_int_equal(jmap_sse_feed(p, "data: 4\n\n", 9), ERR_IO);
	assert_int_equal(s.events, 2);
	jmap_sse_free(&p);
}

/* StateChange data, the account asked, and the verdict. */
static const struct {
	const char *data;
	const char *account;
	int rv;
	bool changed;
} state_changes[] = {
	{ "{\"@type\":\"StateChange\",\"changed\":{\"u1\":{\"Email\":\"d3\","
	  "\"Mailbox\":\"0a\"}}}",
	    "u1", 0, true },
	{ "{\"@type\":\"StateChange\",\"changed\":{\"u1\":{\"Mailbox\":\"0a\"}"
	  "}}",
	    "u1", 0, true },
	{ "{\"@type\":\"StateChange\",\"changed\":{\"u1\":{\"EmailDelivery\":"
	  "\"9\"}}}",
	    "u1", 0, true },
	{ "{\"@type\":\"StateChange\",\"changed\":{\"u1\":{\"Thread\":\"9\","
	  "\"CalendarEvent\":\"2\"}}}",
	    "u1", 0, false },
	{ "{\"@type\":\"StateChange\",\"changed\":{\"u2\":{\"Email\":\"1\"}}}",
	    "u1", 0, false },
	{ "{\"@type\":\"StateChange\",\"changed\":{}}", "u1", 0, false },
	{ "{\"changed\":{\"u1\":{\"Email\":\"1\"}},\"@type\":\"StateChange\","
	  "\"pushState\":\"x\"}",
	    "u1", 0, true },
	{ "", "u1", ERR_PROTO, false },
	{ "{\"interval\":30}", "u1", ERR_PROTO, false },
	{ "{\"@type\":\"Ping\",\"changed\":{}}", "u1", ERR_PROTO, false },
	{ "{\"@type\":\"StateChange\"}", "u1", ERR_PROTO, false },
	{ "{\"@type\":\"StateChange\",\"changed\":[]}", "u1", ERR_PROTO,
	    false },
	{ "{\"@type\":\"StateChange\",\"changed\":{\"u1\":\"Email\"}}", "u1",
	    ERR_PROTO, false },
	{ "[\"StateChange\"]", "u1", ERR_PROTO, false },
	{ "{\"@type\":\"StateChange\",\"changed\":{\"u1\":{\"Email\":\"1\"}}}"
	  "trailing",
	    "u1", ERR_PROTO, false },
};

static void
test_state_change(void **state)
{
	bool changed;
	size_t i;
	int rv;

	(void)state;
	for (i = 0; i < ARRAY_LEN(state_changes); i++) {
		changed = !state_changes[i].changed;
		rv = jmap_state_change_parse(state_changes[i].data,
		    strlen(state_changes[i].data), state_changes[i].account,
		    &changed);
		if (rv != state_changes[i].rv
		    || changed != state_changes[i].changed) {
			fail_msg("#%zu: rv %d changed %d", i, rv, changed);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recorded_every_split),
		cmocka_unit_test(test_recorded_bytewise),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_nul_in_data),
		cmocka_unit_test(test_line_bound),
		cmocka_unit_test(test_event_bound),
		cmocka_unit_test(test_callback_error),
		cmocka_unit_test(test_state_change),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
