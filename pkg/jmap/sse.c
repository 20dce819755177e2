/*
 * sse.c: the text/event-stream parser (HTML Living Standard, "Server-sent
 * events", 9.2.6 "Interpreting an event stream") and the JMAP StateChange
 * event (RFC 8620 7.1). Pure and incremental: bytes in any split, events
 * out through a callback.
 *
 * Rules kept: a leading UTF-8 BOM is dropped; lines end with CRLF, LF or
 * CR (a CR ending one feed and the LF starting the next are one line
 * end); "field: value" loses one space after the colon; a line without a
 * colon is a field with an empty value; a line starting with ':' is a
 * comment; "data" lines are joined with LF; "event" sets the type, "id"
 * the last event id (kept across events, ignored if it holds a NUL),
 * "retry" the reconnection time when it is digits only; a blank line
 * dispatches, unless no data line came (then type and data are reset);
 * an event unfinished when the stream ends is never dispatched.
 *
 * Bounds: one line, and one event's data, at most JMAP_SSE_MAX_EVENT
 * bytes. Past that, or after the callback fails, the parser keeps that
 * error and returns it from every later feed.
 */
#include <stdlib.h>
#include <string.h>

#include "jmap/jmap_int.h"

struct jmap_sse {
	jmap_sse_fn fn;
	void *arg;
	struct buf line; /* the line being read, without its end */
	struct buf data; /* data lines of this event, each + LF */
	struct buf type; /* the event field, "" when none */
	struct buf id; /* the last event id */
	uint32_t retry_ms;
	bool skip_lf; /* the previous byte was a CR ending a line */
	bool bom_checked; /* the first bytes were looked at */
	int err; /* sticky error, 0 while usable */
};

int
jmap_sse_new(jmap_sse_fn fn, void *arg, struct jmap_sse **p_r)
{
	struct jmap_sse *p;

	*p_r = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return (ERR_NOMEM);
	}
	p->fn = fn;
	p->arg = arg;
	buf_init(&p->line, JMAP_SSE_MAX_EVENT);
	buf_init(&p->data, JMAP_SSE_MAX_EVENT);
	buf_init(&p->type, JMAP_SSE_MAX_EVENT);
	buf_init(&p->id, JMAP_SSE_MAX_EVENT);
	*p_r = p;
	return (ERR_OK);
}

void
jmap_sse_free(struct jmap_sse **p)
{
	if (p == NULL || *p == NULL) {
		return;
	}
	buf_release(&(*p)->line);
	buf_release(&(*p)->data);
	buf_release(&(*p)->type);
	buf_release(&(*p)->id);
	free(*p);
	*p = NULL;
}

uint32_t
jmap_sse_retry_ms(const struct jmap_sse *p)
{
	return (p->retry_ms);
}

/* Replaces b's contents with n bytes of v. */
static int
set_buf(struct buf *b, const char *v, size_t n)
{
	buf_reset(b);
	return (buf_add(b, v, n));
}

static int
dispatch(struct jmap_sse *p)
{
	struct jmap_sse_event ev;
	int rv;

	if (p->data.len == 0) {
		buf_reset(&p->type);
		return (ERR_OK);
	}
	p->data.len--; /* the LF after the last data line */
	p->data.data[p->data.len] = '\0';
	ev.type = p->type.len > 0 ? p->type.data : "message";
	ev.data = p->data.data;
	ev.data_len = p->data.len;
	ev.id = p->id.len > 0 ? p->id.data : "";
	rv = p->fn(&ev, p->arg);
	buf_reset(&p->data);
	buf_reset(&p->type);
	return (rv);
}

/* "retry": digits only, clamped to UINT32_MAX; anything else ignored. */
static void
set_retry(struct jmap_sse *p, const char *v, size_t n)
{
	uint64_t ms = 0;
	size_t i;

	if (n == 0) {
		return;
	}
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9') {
			return;
		}
		if (ms <= UINT32_MAX) {
			ms = ms * 10 + (uint64_t)(v[i] - '0');
		}
	}
	p->retry_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* One complete line (without its end), n bytes at s. */
static int
process_line(struct jmap_sse *p, const char *s, size_t n)
{
	const char *colon, *v;
	size_t flen, vlen;
	int rv = 0;

	if (n == 0) {
		return (dispatch(p));
	}
	if (s[0] == ':') {
		return (ERR_OK); /* comment (": ping") */
	}
	colon = memchr(s, ':', n);
	flen = colon != NULL ? (size_t)(colon - s) : n;
	v = colon != NULL ? colon + 1 : s + n;
	vlen = n - (size_t)(v - s);
	if (vlen > 0 && v[0] == ' ') {
		v++;
		vlen--;
	}
	if (flen == 5 && memcmp(s, "event", 5) == 0) {
		rv = set_buf(&p->type, v, vlen);
	} else if (flen == 4 && memcmp(s, "data", 4) == 0) {
		rv = buf_add(&p->data, v, vlen);
		if (rv == 0) {
			rv = buf_add(&p->data, "\n", 1);
		}
	} else if (flen == 2 && memcmp(s, "id", 2) == 0) {
		if (memchr(v, '\0', vlen) == NULL) {
			rv = set_buf(&p->id, v, vlen);
		}
	} else if (flen == 5 && memcmp(s, "retry", 5) == 0) {
		set_retry(p, v, vlen);
	}
	return (rv);
}

/* Drops a UTF-8 BOM at the very start of the stream, which may itself
 * arrive split; returns how many bytes of buf were consumed. */
static size_t
skip_bom(struct jmap_sse *p, const char *buf, size_t n)
{
	static const char bom[] = "\xEF\xBB\xBF";
	size_t have = p->line.len, i;

	/* the BOM bytes seen so far wait in line (nothing else can) */
	for (i = 0; i < n && have + i < 3; i++) {
		if (buf[i] != bom[have + i]) {
			/* not a BOM: what waited was ordinary line bytes */
			p->bom_checked = true;
			return (0);
		}
	}
	if (have + i == 3) {
		buf_reset(&p->line);
		p->bom_checked = true;
		return (i);
	}
	/* still a BOM prefix: keep it in line for now */
	if (buf_add(&p->line, buf, i) != 0) {
		p->bom_checked = true;
		return (0);
	}
	return (i);
}

int
jmap_sse_feed(struct jmap_sse *p, const char *buf, size_t n)
{
	size_t i = 0, end;
	int rv = 0;

	if (p->err != 0) {
		return (p->err);
	}
	if (!p->bom_checked) {
		i = skip_bom(p, buf, n);
	}
	while (i < n && rv == 0) {
		if (p->skip_lf) {
			p->skip_lf = false;
			if (buf[i] == '\n') {
				i++;
				continue;
			}
		}
		for (end = i; end < n && buf[end] != '\n' && buf[end] != '\r';
		     end++) { }
		if (end == n) {
			/* no line end yet: the rest waits */
			rv = buf_add(&p->line, buf + i, n - i);
			break;
		}
		if (p->line.len > 0) {
			rv = buf_add(&p->line, buf + i, end - i);
			if (rv == 0) {
				rv = process_line(
				    p, p->line.data, p->line.len);
			}
			buf_reset(&p->line);
		} else if (end - i > JMAP_SSE_MAX_EVENT) {
			rv = ERR_TOOBIG;
		} else {
			rv = process_line(p, buf + i, end - i);
		}
		p->skip_lf = buf[end] == '\r';
		i = end + 1;
	}
	if (rv != 0) {
		p->err = rv;
	}
	return (rv);
}

/* StateChange ------------------------------------------------------------ */

/* The data types whose change mailsync acts on. */
static const char *const sse_watched[]
    = { "Email", "Mailbox", "EmailDelivery" };

int
jmap_state_change_parse(
    const char *data, size_t len, const char *account_id, bool *changed_r)
{
	json_t *root, *changed, *acct;
	const char *type;
	size_t i;
	int rv = ERR_OK;

	*changed_r = false;
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
	if (root == NULL) {
		return (ERR_PROTO);
	}
	type = json_string_value(json_object_get(root, "@type"));
	changed = json_object_get(root, "changed");
	if (type == NULL || strcmp(type, "StateChange") != 0
	    || !json_is_object(changed)) {
		rv = ERR_PROTO;
		goto done;
	}
	acct = json_object_get(changed, account_id);
	if (acct == NULL) {
		goto done; /* another account of the same user changed */
	}
	if (!json_is_object(acct)) {
		rv = ERR_PROTO;
		goto done;
	}
	for (i = 0; i < ARRAY_LEN(sse_watched); i++) {
		if (json_object_get(acct, sse_watched[i]) != NULL) {
			*changed_r = true;
		}
	}
done:
	json_decref(root);
	return (rv);
}
