/*
 * imap_body_fetch.c: raw message bodies over IMAP, a batch at a time,
 * streamed in bounded chunks.
 *
 * One command, `UID FETCH <set> (UID BODY.PEEK[])`, asks for up to
 * BODY_BATCH bodies whose announced sizes add up to at most
 * BODY_BATCH_BYTES (a larger body goes alone): one round trip per batch.
 * A literal sink on the session's parser cuts each literal into chunk
 * rows of SYNC_BODY_CHUNK bytes as it arrives, so the worker's memory
 * grows with neither a body nor a batch. At a literal's first byte the
 * sink learns whose body it is from the UID item sent before it
 * (imap_session_stream_fetch; UID is asked first and Dovecot answers in
 * that order). A server that puts UID after the literal: that literal is
 * dropped, the completed response names its UID, and that body is asked
 * again alone, where the one UID asked owns the literal. A UID the
 * server does not answer gets an error row "message no longer exists on
 * the server"; a body for a UID not asked fails the job; a batch refused
 * with NO keeps what came and asks for the rest one by one.
 *
 * Rows are packed: up to BODY_PACK_ROWS rows and SYNC_BODY_CHUNK bytes
 * of data per store batch, copied into one buffer, so many small bodies
 * cost one store transaction instead of one each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body_int.h"

static struct proto_str
pstr(const char *s)
{
	struct proto_str p = { s, s != NULL ? strlen(s) : 0 };

	return (p);
}

/* Sends the packed rows as one batch; the batcher's error (res not
 * touched). */
static int
pack_flush(struct body_fetch *ib)
{
	int rv;

	if (ib->nrows == 0) {
		return (ERR_OK);
	}
	rv = sync_batcher_send_bodies(ib->b, ib->rows, ib->nrows);
	ib->nrows = 0;
	ib->npack = 0;
	return (rv);
}

/* Copies p[0..n) into the pack; the copy's address. */
static const char *
pack_add(struct body_fetch *ib, const char *p, size_t n)
{
	char *at = ib->pack + ib->npack;

	if (n > 0) {
		memcpy(at, p, n);
	}
	ib->npack += n;
	return (n > 0 ? at : NULL);
}

/* Queues row (borrowed; copied) for ib->uid, sending the pack first when
 * the row does not fit. */
static int
send_row(struct body_fetch *ib, struct proto_body_chunk *row)
{
	int rv;

	if (row->error.len > 1024) {
		row->error.len = 1024;
	}
	if (ib->nrows == BODY_PACK_ROWS
	    || row->data.len + row->error.len > SYNC_BODY_CHUNK - ib->npack) {
		rv = pack_flush(ib);
		if (rv != 0) {
			return (sync_fail(ib->res, rv, RETRY_LATER,
			    "sending results to the store: %s", err_str(rv)));
		}
	}
	row->mailbox = pstr(ib->mailbox);
	row->uid = ib->uid;
	row->data.p = pack_add(ib, row->data.p, row->data.len);
	if (row->error.p != NULL) {
		row->error.p = pack_add(ib, row->error.p, row->error.len);
		if (row->error.p == NULL) {
			row->error.p = ""; /* an empty text stays a text */
		}
	}
	ib->rows[ib->nrows++] = *row;
	return (ERR_OK);
}

/* An error row for ib->uid: no body, and why. */
int
body_send_error(
    struct body_fetch *ib, int status, uint64_t total, const char *text)
{
	struct proto_body_chunk row;

	memset(&row, 0, sizeof(row));
	row.status = status;
	row.total = total;
	row.error = pstr(text);
	return (send_row(ib, &row));
}

/* Sends the chunk buffer (may be empty for an empty body). */
static int
send_chunk(struct body_fetch *ib, bool last, uint64_t total)
{
	struct proto_body_chunk row;
	int rv;

	memset(&row, 0, sizeof(row));
	row.offset = ib->chunk_off;
	row.data.p = ib->nchunk > 0 ? ib->chunk : NULL;
	row.data.len = ib->nchunk;
	row.last = last;
	row.total = total;
	rv = send_row(ib, &row);
	ib->chunk_off += ib->nchunk;
	ib->nchunk = 0;
	return (rv);
}

/* Index of uid in the batch, or -1. */
static int
want_index(const struct body_fetch *ib, uint32_t uid)
{
	size_t k;

	for (k = 0; uid != 0 && k < ib->nwant; k++) {
		if (ib->want[k] == uid) {
			return ((int)k);
		}
	}
	return (-1);
}

/* A literal starts: whose body is it? */
static void
lit_start(struct body_fetch *ib)
{
	uint32_t seq, uid;
	int k;

	ib->chunk_off = 0;
	ib->nchunk = 0;
	(void)imap_session_stream_fetch(ib->s, &seq, &uid);
	if (uid == 0 && ib->nwant == 1) {
		/* One UID asked: the body is its; on_body checks the UID. */
		uid = ib->want[0];
	}
	if (uid == 0) {
		ib->lit = BODY_LIT_UNKNOWN;
		return;
	}
	k = want_index(ib, uid);
	if (k < 0) {
		ib->lit = BODY_LIT_DROP;
		ib->wrong_uid = true;
		return;
	}
	if (ib->state[k] != BODY_WAIT) {
		ib->lit = BODY_LIT_DROP;
		return;
	}
	ib->state[k] = BODY_STREAM;
	ib->lit = BODY_LIT_KEEP;
	ib->lit_idx = (size_t)k;
	ib->uid = uid;
}

/* The literal sink: bytes of BODY[] as they arrive. */
static int
body_sink(
    const char *p, size_t len, uint64_t offset, uint64_t total, void *arg)
{
	struct body_fetch *ib = arg;
	size_t n;
	int rv;

	if (offset == 0) {
		lit_start(ib);
	}
	if (ib->lit != BODY_LIT_KEEP) {
		return (ERR_OK); /* dropped: nothing of it is kept */
	}
	while (len > 0) {
		n = SYNC_BODY_CHUNK - ib->nchunk;
		if (n > len) {
			n = len;
		}
		memcpy(ib->chunk + ib->nchunk, p, n);
		ib->nchunk += n;
		p += n;
		len -= n;
		if (ib->nchunk == SYNC_BODY_CHUNK
		    || ib->chunk_off + ib->nchunk == total) {
			rv = send_chunk(
			    ib, ib->chunk_off + ib->nchunk == total, total);
			if (rv != 0) {
				return (rv);
			}
		}
	}
	return (ERR_OK);
}

/* The value after data item name in a FETCH response, or NULL. */
static const struct imap_tok *
fetch_item(const struct imap_resp *r, const char *name)
{
	const struct imap_tok *t;

	if (r->args == NULL || r->args->type != IMAP_TOK_LIST) {
		return (NULL);
	}
	for (t = r->args->child; t != NULL && t->next != NULL;
	     t = t->next->next) {
		if (imap_tok_is(t, name)) {
			return (t->next);
		}
	}
	return (NULL);
}

bool
body_is_fetch(const struct imap_resp *r)
{
	return (r->status == IMAP_ST_NONE && r->name != NULL
	    && strcmp(r->name, "FETCH") == 0);
}

static int
on_size(const struct imap_resp *r, void *arg)
{
	struct body_fetch *ib = arg;
	const struct imap_tok *v;
	uint32_t uid;

	if (!body_is_fetch(r)) {
		return (ERR_OK);
	}
	v = fetch_item(r, "UID");
	if (v == NULL || imap_tok_u32(v, &uid) != 0 || uid != ib->uid) {
		return (ERR_OK);
	}
	v = fetch_item(r, "RFC822.SIZE");
	if (v != NULL && imap_tok_u64(v, &ib->size) == 0) {
		ib->found = true;
	}
	return (ERR_OK);
}

/* A complete FETCH response of the batch command. */
static int
on_body(const struct imap_resp *r, void *arg)
{
	struct body_fetch *ib = arg;
	const struct imap_tok *v, *u;
	enum body_lit lit;
	uint32_t uid = 0;
	int k;

	if (!body_is_fetch(r)) {
		return (ERR_OK);
	}
	v = fetch_item(r, "BODY[]");
	if (v == NULL) {
		return (ERR_OK); /* e.g. an unsolicited FLAGS update */
	}
	u = fetch_item(r, "UID");
	if (u == NULL || imap_tok_u32(u, &uid) != 0) {
		uid = 0;
	}
	k = want_index(ib, uid);
	if (v->type == IMAP_TOK_STREAMED) {
		lit = ib->lit;
		ib->lit = BODY_LIT_NONE;
		if (lit == BODY_LIT_KEEP) {
			/* the rows went out under want[lit_idx] */
			if (k != (int)ib->lit_idx) {
				ib->wrong_uid = true;
			} else {
				ib->state[k] = BODY_GOT;
			}
		} else if (lit == BODY_LIT_UNKNOWN) {
			if (k < 0) {
				ib->wrong_uid = true;
			} else if (ib->state[k] == BODY_WAIT) {
				ib->state[k] = BODY_AGAIN;
			}
		}
		return (ERR_OK);
	}
	if (k < 0 || ib->state[k] != BODY_WAIT) {
		return (ERR_OK);
	}
	if (!imap_tok_is_str(v) && v->type != IMAP_TOK_NIL) {
		return (sync_fail(ib->res, ERR_PROTO, RETRY_LATER,
		    "malformed BODY[] of UID %u in '%s'", uid, ib->mailbox));
	}
	/* A short literal or quoted string (or NIL: nothing): one row. */
	ib->uid = uid;
	ib->state[k] = BODY_GOT;
	ib->chunk_off = 0;
	ib->nchunk = v->type == IMAP_TOK_NIL ? 0 : v->len;
	if (ib->nchunk > ib->max_body || ib->nchunk > SYNC_BODY_CHUNK) {
		return (sync_fail(ib->res, ERR_PROTO, RETRY_LATER,
		    "unexpected BODY[] of %zu bytes for UID %u", ib->nchunk,
		    uid));
	}
	if (ib->nchunk > 0) {
		memcpy(ib->chunk, v->s, ib->nchunk);
	}
	return (send_chunk(ib, true, ib->nchunk));
}

/* The batch's UIDs as an IMAP set (runs of consecutive UIDs as ranges). */
static int
batch_set(const struct body_fetch *ib, struct buf *b)
{
	size_t k, j;
	int rv = 0;

	for (k = 0; rv == 0 && k < ib->nwant; k = j + 1) {
		for (j = k;
		     j + 1 < ib->nwant && ib->want[j + 1] == ib->want[j] + 1;
		     j++) { }
		rv = buf_printf(b, j > k ? "%s%u:%u" : "%s%u",
		    k > 0 ? "," : "", ib->want[k], ib->want[j]);
	}
	return (rv);
}

/*
 * Fetches the bodies of ib->want[0..nwant) (the mailbox selected; every
 * size checked against max_body already). Each gets chunk rows or an
 * error row. Returns 0, ERR_NOTFOUND when the only UID asked got no
 * body (error row sent, res untouched), or another error with res
 * filled (the session is then unusable).
 */
int
body_fetch_batch(struct body_fetch *ib)
{
	uint32_t again[BODY_BATCH];
	struct imap_cmd c;
	struct buf cmd;
	size_t k, nagain = 0;
	int rv;

	for (k = 0; k < ib->nwant; k++) {
		ib->state[k] = BODY_WAIT;
	}
	ib->wrong_uid = false;
	ib->lit = BODY_LIT_NONE;
	buf_init(&cmd, 4096); /* 64 UIDs of 10 digits fit */
	rv = buf_addstr(&cmd, "UID FETCH ");
	if (rv == 0) {
		rv = batch_set(ib, &cmd);
	}
	if (rv == 0) {
		rv = buf_addstr(&cmd, " (UID BODY.PEEK[])");
	}
	if (rv != 0) {
		buf_release(&cmd);
		return (sync_fail(
		    ib->res, rv, RETRY_LATER, "UID set: %s", err_str(rv)));
	}
	rv = imap_session_set_literal_sink(
	    ib->s, 0, ib->max_body > 0 ? ib->max_body : 1, body_sink, ib);
	if (rv != 0) {
		buf_release(&cmd);
		return (sync_fail(ib->res, rv, RETRY_LATER, "literal sink: %s",
		    err_str(rv)));
	}
	memset(&c, 0, sizeof(c));
	c.text = cmd.data;
	rv = imap_session_run(ib->s, &c, 1, on_body, ib, ib->res);
	(void)imap_session_set_literal_sink(ib->s, 0, 0, NULL, NULL);
	if (rv == 0 && c.status != IMAP_ST_OK && ib->nwant == 1) {
		rv = sync_fail(ib->res, ERR_SERVER, RETRY_LATER,
		    "'%s' in '%s': %s", cmd.data, ib->mailbox, c.resp_text);
	}
	buf_release(&cmd);
	if (rv != 0) {
		return (rv);
	}
	if (ib->wrong_uid) {
		return (sync_fail(ib->res, ERR_PROTO, RETRY_LATER,
		    "server sent a body for another message than UID %u%s "
		    "in '%s'",
		    ib->want[0], ib->nwant > 1 ? " and the others asked" : "",
		    ib->mailbox));
	}
	for (k = 0; k < ib->nwant; k++) {
		/* A batch refused (NO): what came stays, the rest one by
		 * one, where a refusal fails as it always did. */
		if (ib->state[k] == BODY_AGAIN
		    || (ib->state[k] == BODY_WAIT && c.status != IMAP_ST_OK)) {
			again[nagain++] = ib->want[k];
		} else if (ib->state[k] != BODY_GOT) {
			ib->uid = ib->want[k];
			rv = body_send_error(ib, ERR_NOTFOUND, 0,
			    "message no longer exists on the server");
			if (rv != 0) {
				return (rv);
			}
			if (ib->nwant == 1) {
				return (ERR_NOTFOUND);
			}
		}
	}
	for (k = 0; k < nagain; k++) {
		ib->want[0] = again[k];
		ib->nwant = 1;
		rv = body_fetch_batch(ib); /* one UID: never asks again */
		if (rv != 0 && rv != ERR_NOTFOUND) {
			return (rv);
		}
	}
	return (ERR_OK);
}

/* Runs one command; a tagged NO/BAD fails with ERR_SERVER. */
static int
run_cmd(struct body_fetch *ib, const char *text, imap_untagged_fn fn)
{
	struct imap_cmd c;
	int rv;

	memset(&c, 0, sizeof(c));
	c.text = text;
	rv = imap_session_run(ib->s, &c, 1, fn, ib, ib->res);
	if (rv != 0) {
		return (rv);
	}
	if (c.status != IMAP_ST_OK) {
		return (sync_fail(ib->res, ERR_SERVER, RETRY_LATER,
		    "'%s' in '%s': %s", text, ib->mailbox, c.resp_text));
	}
	return (ERR_OK);
}

/* An error row for a body over max_body (ib->uid, ib->size). */
int
body_send_too_big(struct body_fetch *ib)
{
	char text[160];

	snprintf(text, sizeof(text),
	    "body of %llu bytes exceeds the limit of %llu bytes",
	    (unsigned long long)ib->size, (unsigned long long)ib->max_body);
	return (body_send_error(ib, ERR_TOOBIG, ib->size, text));
}

/*
 * Fetches the body of uid (the mailbox selected), its size first.
 * Returns 0 (body sent), ERR_NOTFOUND or ERR_TOOBIG (error row sent, res
 * untouched), or another error with res filled (the session is then
 * unusable).
 */
int
body_fetch_one(struct body_fetch *ib, uint32_t uid)
{
	char cmd[96];
	int rv;

	ib->uid = uid;
	ib->found = false;
	ib->size = 0;
	snprintf(cmd, sizeof(cmd), "UID FETCH %u (UID RFC822.SIZE)", uid);
	rv = run_cmd(ib, cmd, on_size);
	if (rv != 0) {
		return (rv);
	}
	if (!ib->found) {
		rv = body_send_error(ib, ERR_NOTFOUND, 0,
		    "message no longer exists on the server");
		return (rv != 0 ? rv : ERR_NOTFOUND);
	}
	if (ib->size > ib->max_body) {
		rv = body_send_too_big(ib);
		return (rv != 0 ? rv : ERR_TOOBIG);
	}
	ib->want[0] = uid;
	ib->nwant = 1;
	return (body_fetch_batch(ib));
}

int
body_init(struct body_fetch *ib, struct imap_session *s,
    struct sync_batcher *b, struct sync_result *res, const char *mailbox,
    uint64_t max_body)
{
	memset(ib, 0, sizeof(*ib));
	ib->s = s;
	ib->b = b;
	ib->res = res;
	ib->mailbox = mailbox;
	ib->max_body = max_body;
	ib->chunk = malloc(SYNC_BODY_CHUNK);
	ib->pack = malloc(SYNC_BODY_CHUNK);
	ib->rows = calloc(BODY_PACK_ROWS, sizeof(*ib->rows));
	if (ib->chunk == NULL || ib->pack == NULL || ib->rows == NULL) {
		return (
		    sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	return (ERR_OK);
}

/*
 * Ends a run of fetches that returned rv: the packed rows go out even
 * after an error (as they would have one by one: what is complete is
 * kept). Returns rv, or the batcher's error (res filled) when rv was 0.
 */
int
body_finish(struct body_fetch *ib, int rv)
{
	int frv;

	frv = ib->rows != NULL ? pack_flush(ib) : ERR_OK;
	if (rv == 0 && frv != 0) {
		rv = sync_fail(ib->res, frv, RETRY_LATER,
		    "sending results to the store: %s", err_str(frv));
	}
	return (rv);
}

/* Frees what ibody_init allocated (rows not sent are dropped). */
void
body_release(struct body_fetch *ib)
{
	free(ib->chunk);
	free(ib->pack);
	free(ib->rows);
	ib->chunk = ib->pack = NULL;
	ib->rows = NULL;
}
