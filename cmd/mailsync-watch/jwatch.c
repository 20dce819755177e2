/*
 * jwatch.c: a JMAP account in the watcher: its EventSource stream on the
 * watcher's curl multi handle, and polls of its state strings (jwatch.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap/jmap.h"
#include "watch/watch.h"

#include "jwatch.h"

/* A server's `retry:` is a floor for the reconnect delay, up to this. */
#define JWATCH_RETRY_FLOOR_MAX_MS (10 * 60 * 1000)

enum push {
	PUSH_OFF, /* polling only: no stream from this server */
	PUSH_DOWN, /* no stream now: (re)opened at retry_at */
	PUSH_CONNECTING, /* in the multi handle, not up yet */
	PUSH_UP, /* streaming */
};

struct jwatch {
	struct jmap_client *cl;
	char *email_state, *mailbox_state;
	struct cmulti *cm; /* borrowed */
	char tag[96];
	int64_t poll_ms;
	int ping_s;
	uint64_t rng;
	enum push push;
	struct jmap_sse *sse;
	struct jmap_es *es; /* in cm while PUSH_CONNECTING or PUSH_UP */
	bool pending; /* a StateChange named this account */
	uint32_t fails; /* streams lost in a row */
	uint32_t retry_floor_ms;
	int64_t up_since, retry_at, next_poll; /* monotonic */
};

static int
jfail(struct sync_result *res, const struct jmap_err *e)
{
	return (sync_fail(res, e->status != 0 ? e->status : ERR_IO, e->retry,
	    "%s", e->text));
}

/* Replaces *cur with the state of answer cid; *moved_r when it moved. */
static int
take_state(json_t *resp, const char *cid, const char *name, char **cur,
    bool *moved_r, struct jmap_err *e)
{
	json_t *args;
	const char *st;
	char *copy;
	int rv;

	rv = jmap_response(resp, cid, name, &args, NULL, 0, e);
	if (rv != 0) {
		return (rv);
	}
	st = json_string_value(json_object_get(args, "state"));
	if (st == NULL) {
		e->status = ERR_PROTO;
		e->retry = RETRY_LATER;
		snprintf(e->text, sizeof(e->text), "%s: answer without state",
		    name);
		return (ERR_PROTO);
	}
	if (*cur != NULL && strcmp(*cur, st) == 0) {
		return (ERR_OK);
	}
	copy = xstrdup(st);
	if (copy == NULL) {
		return (ERR_NOMEM);
	}
	*moved_r = *moved_r || *cur != NULL;
	free(*cur);
	*cur = copy;
	return (ERR_OK);
}

static int
jwatch_poll(struct jwatch *jw, bool *changed_r, struct sync_result *res)
{
	const struct jmap_session *s = jmap_client_session(jw->cl);
	struct jmap_err e;
	json_t *calls, *resp = NULL;
	int rv;

	*changed_r = false;
	memset(&e, 0, sizeof(e));
	calls
	    = json_pack("[[s, {s:s, s:[], s:[s]}, s], [s, {s:s, s:[], s:[s]},"
	                " s]]",
	        "Email/get", "accountId", s->account_id, "ids", "properties",
	        "id", "e", "Mailbox/get", "accountId", s->account_id, "ids",
	        "properties", "id", "m");
	if (calls == NULL) {
		return (
		    sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	rv = jmap_call(jw->cl, calls, false, &resp, &e);
	json_decref(calls);
	if (rv == 0) {
		rv = take_state(
		    resp, "e", "Email/get", &jw->email_state, changed_r, &e);
	}
	if (rv == 0) {
		rv = take_state(resp, "m", "Mailbox/get", &jw->mailbox_state,
		    changed_r, &e);
	}
	json_decref(resp);
	if (rv != 0 && e.status == 0) {
		e.status = rv;
	}
	return (rv != 0 ? jfail(res, &e) : ERR_OK);
}

static uint32_t
jw_rand(struct jwatch *jw)
{
	jw->rng ^= jw->rng >> 12;
	jw->rng ^= jw->rng << 25;
	jw->rng ^= jw->rng >> 27;
	return ((uint32_t)((jw->rng * 0x2545f4914f6cdd1dULL) >> 32));
}

/* The poll interval in the current mode. */
static int64_t
poll_interval(const struct jwatch *jw)
{
	if (jw->push == PUSH_UP && jw->poll_ms < JWATCH_SAFETY_POLL_MS) {
		return (JWATCH_SAFETY_POLL_MS);
	}
	return (jw->poll_ms);
}

/* The SSE parser's callback, inside curl_multi_socket_action(): only
 * notes the change (the multi handle must not be touched here). */
static int
on_event(const struct jmap_sse_event *ev, void *arg)
{
	struct jwatch *jw = arg;
	bool changed = false;

	if (strcmp(ev->type, "state") != 0) {
		return (0); /* "ping" and others */
	}
	if (jmap_state_change_parse(ev->data, ev->data_len,
	        jmap_client_session(jw->cl)->account_id, &changed)
	    != 0) {
		log_debug("%s event=stream_event_ignored why=not_state_change",
		    jw->tag);
		return (0);
	}
	jw->pending = jw->pending || changed;
	return (0);
}

/* The server has no push: polling from now on, said once. */
static void
push_off(struct jwatch *jw, const char *why, const char *detail)
{
	jw->push = PUSH_OFF;
	log_info("%s event=watching mode=jmap_poll why=%s poll_ms=%lld "
	         "detail=\"%s\"",
	    jw->tag, why, (long long)jw->poll_ms, detail);
}

/* The stream ended or could not start: poll now, reopen later. */
static void
stream_down(struct jwatch *jw, int64_t now, int rv, const char *text)
{
	int64_t d, up_ms = jw->push == PUSH_UP ? now - jw->up_since : -1;

	if (up_ms >= JWATCH_STREAM_OK_MS) {
		jw->fails = 0; /* it worked a while: not a failing server */
	}
	jw->fails++;
	d = watch_backoff_ms(jw->fails, jw_rand(jw));
	if (d < (int64_t)jw->retry_floor_ms) {
		d = jw->retry_floor_ms;
	}
	jw->push = PUSH_DOWN;
	jw->retry_at = now + d;
	jw->next_poll = now;
	log_warnx("%s event=stream_lost err=%s up_ms=%lld retry_in_ms=%lld "
	          "error=\"%s\"",
	    jw->tag, err_name(rv), (long long)up_ms, (long long)d, text);
}

static void
stream_start(struct jwatch *jw, int64_t now)
{
	struct jmap_err e;
	int rv;

	memset(&e, 0, sizeof(e));
	jmap_sse_free(&jw->sse);
	rv = jmap_sse_new(on_event, jw, &jw->sse);
	if (rv == 0) {
		rv = jmap_es_start(jw->cl, jw->ping_s, jw->sse, &jw->es, &e);
	}
	if (rv == ERR_UNSUPPORTED && e.retry == RETRY_NEVER) {
		push_off(jw, "no_event_source", e.text);
		return;
	}
	if (rv == 0) {
		rv = cmulti_add(jw->cm, jmap_es_easy(jw->es), jw);
		if (rv != 0) {
			snprintf(e.text, sizeof(e.text),
			    "the stream cannot join the multi handle");
		}
	}
	if (rv != 0) {
		jmap_es_free(&jw->es);
		stream_down(
		    jw, now, rv, e.text[0] != '\0' ? e.text : err_str(rv));
		return;
	}
	jw->push = PUSH_CONNECTING;
	log_debug("%s event=stream_connecting ping_s=%d", jw->tag, jw->ping_s);
}

void
jwatch_stream_done(struct jwatch *jw, int result, int64_t now)
{
	struct jmap_err e;
	char why[32];
	long code;
	int rv;

	if (jw->es == NULL) {
		return;
	}
	rv = jmap_es_finish(jw->es, result, &e);
	code = jmap_es_http_status(jw->es);
	jw->retry_floor_ms = jmap_sse_retry_ms(jw->sse);
	if (jw->retry_floor_ms > JWATCH_RETRY_FLOOR_MAX_MS) {
		jw->retry_floor_ms = JWATCH_RETRY_FLOOR_MAX_MS;
	}
	jmap_es_free(&jw->es); /* already out of the multi handle */
	if (rv == ERR_UNSUPPORTED && e.retry == RETRY_NEVER) {
		if (code == 204) {
			snprintf(why, sizeof(why), "204");
		} else if (code >= 300) {
			snprintf(why, sizeof(why), "http_%ld", code);
		} else {
			snprintf(why, sizeof(why), "not_event_stream");
		}
		push_off(jw, why, e.text);
		return;
	}
	stream_down(jw, now, rv, e.text);
}

int
jwatch_tick(
    struct jwatch *jw, int64_t now, bool *changed_r, struct sync_result *res)
{
	bool moved = false;
	int rv;

	*changed_r = jw->pending;
	jw->pending = false;
	if (jw->push == PUSH_CONNECTING && jmap_es_up(jw->es)) {
		jw->push = PUSH_UP;
		jw->up_since = now;
		jw->next_poll = now; /* what changed while no stream was up */
		log_info("%s event=watching mode=jmap_push ping_s=%d "
		         "safety_poll_ms=%lld",
		    jw->tag, jw->ping_s, (long long)poll_interval(jw));
	}
	if (jw->push == PUSH_DOWN && now >= jw->retry_at) {
		stream_start(jw, now);
	}
	if (now < jw->next_poll) {
		return (ERR_OK);
	}
	rv = jwatch_poll(jw, &moved, res);
	jw->next_poll = clock_mono_ms() + poll_interval(jw);
	*changed_r = *changed_r || moved;
	return (rv);
}

int64_t
jwatch_next(const struct jwatch *jw)
{
	int64_t t = jw->next_poll;

	if (jw->pending
	    || (jw->push == PUSH_CONNECTING && jmap_es_up(jw->es))) {
		return (0);
	}
	if (jw->push == PUSH_DOWN && jw->retry_at < t) {
		t = jw->retry_at;
	}
	return (t);
}

int
jwatch_open(const struct jwatch_conf *c, const struct sync_limits *l,
    struct cmulti *cm, struct jwatch **jw_r, struct sync_result *res)
{
	struct jmap_conf jc;
	struct jmap_err e;
	struct jwatch *jw;
	bool changed;
	int64_t now;
	int rv;

	*jw_r = NULL;
	jw = calloc(1, sizeof(*jw));
	if (jw == NULL) {
		return (
		    sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	jw->cm = cm;
	snprintf(jw->tag, sizeof(jw->tag), "%s", c->tag != NULL ? c->tag : "");
	jw->poll_ms = c->poll_ms;
	jw->ping_s = c->ping_s;
	jw->rng = c->seed != 0 ? c->seed : 0x9e3779b97f4a7c15ULL;
	memset(&jc, 0, sizeof(jc));
	jc.url = c->url;
	jc.username = c->user;
	jc.secret = c->secret != NULL ? c->secret : "";
	jc.bearer = c->bearer;
	jc.ca_pem = c->ca_pem;
	jc.plaintext = c->plaintext;
	jc.connect_timeout_ms = l->connect_timeout_ms;
	jc.io_timeout_ms = l->io_timeout_ms;
	memset(&e, 0, sizeof(e));
	rv = jmap_client_open(&jc, &jw->cl, &e);
	if (rv != 0) {
		free(jw);
		return (jfail(res, &e));
	}
	rv = jwatch_poll(jw, &changed, res);
	if (rv != 0) {
		jwatch_free(&jw);
		return (rv);
	}
	now = clock_mono_ms();
	jw->next_poll = now + jw->poll_ms;
	if (jmap_client_session(jw->cl)->event_source_url == NULL) {
		push_off(jw, "no_event_source",
		    "the session offers no eventSourceUrl");
	} else {
		jw->push = PUSH_DOWN; /* opened by the first tick */
		jw->retry_at = now;
	}
	*jw_r = jw;
	return (ERR_OK);
}

void
jwatch_free(struct jwatch **jwp)
{
	struct jwatch *jw = *jwp;

	if (jw == NULL) {
		return;
	}
	if (jw->es != NULL) {
		cmulti_remove(jw->cm, jmap_es_easy(jw->es));
		jmap_es_free(&jw->es);
	}
	jmap_sse_free(&jw->sse);
	jmap_client_free(&jw->cl);
	free(jw->email_state);
	free(jw->mailbox_state);
	free(jw);
	*jwp = NULL;
}
