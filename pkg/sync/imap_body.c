/*
 * imap_body.c: raw message bodies over IMAP, streamed in bounded chunks.
 *
 * One body is fetched in two steps: `UID FETCH uid (UID RFC822.SIZE)`
 * learns its size (a body larger than job_run.max_body gets an error row
 * "body of N bytes exceeds the limit of M bytes" and is never
 * downloaded), then `UID FETCH uid (UID BODY.PEEK[])` with a literal sink
 * on the session's parser: the literal's bytes are cut into chunk rows of
 * SYNC_BODY_CHUNK bytes and sent, one batch each, as they arrive, so the
 * worker's memory does not grow with the body. A message that is gone
 * (no FETCH answer) gets an error row "message no longer exists on the
 * server".
 *
 * Used by the fetch_body job (EXAMINE the target mailbox, check its
 * UIDVALIDITY, fetch one body) and by the sync job's prefetch hook
 * (bodies of the new UIDs matching the account's policy, "all" or
 * "recent:DAYS" by INTERNALDATE, learnt in windows of BODY_WINDOW UIDs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "sync.h"

/* UIDs asked for sizes and dates at once when prefetching. */
#define BODY_WINDOW 1000u

/* One body fetch in progress; the literal sink's state. */
struct ibody {
	struct imap_session *s;
	struct sync_batcher *b;
	struct sync_result *res;
	const char *mailbox; /* UTF-8, for rows */
	uint64_t max_body;
	uint32_t uid;
	/* size probe */
	bool found;
	uint64_t size;
	/* streaming */
	char *chunk; /* SYNC_BODY_CHUNK bytes */
	size_t nchunk;
	uint64_t chunk_off; /* body offset of chunk[0] */
	bool streamed;	    /* a streamed BODY[] literal arrived */
	bool got_body;	    /* BODY[] of our UID seen */
	bool wrong_uid;	    /* a streamed literal for another UID */
};

static struct proto_str
pstr(const char *s)
{
	struct proto_str p = { s, s != NULL ? strlen(s) : 0 };

	return (p);
}

static int
send_row(struct ibody *ib, struct proto_body_chunk *row)
{
	int rv;

	row->mailbox = pstr(ib->mailbox);
	row->uid = ib->uid;
	rv = sync_batcher_send_body(ib->b, row);
	if (rv != 0) {
		return (sync_fail(ib->res, rv, RETRY_LATER,
		    "sending results to the store: %s", err_str(rv)));
	}
	return (ERR_OK);
}

/* An error row for ib->uid: no body, and why. */
static int
send_error(struct ibody *ib, int status, uint64_t total, const char *text)
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
send_chunk(struct ibody *ib, bool last, uint64_t total)
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

/* The literal sink: bytes of BODY[] as they arrive. */
static int
body_sink(const char *p, size_t len, uint64_t offset, uint64_t total,
    void *arg)
{
	struct ibody *ib = arg;
	size_t n;
	int rv;

	if (offset == 0) {
		ib->chunk_off = 0;
		ib->nchunk = 0;
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
			rv = send_chunk(ib,
			    ib->chunk_off + ib->nchunk == total, total);
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

static bool
is_fetch(const struct imap_resp *r)
{
	return (r->status == IMAP_ST_NONE && r->name != NULL
	    && strcmp(r->name, "FETCH") == 0);
}

static int
on_size(const struct imap_resp *r, void *arg)
{
	struct ibody *ib = arg;
	const struct imap_tok *v;
	uint32_t uid;

	if (!is_fetch(r)) {
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

static int
on_body(const struct imap_resp *r, void *arg)
{
	struct ibody *ib = arg;
	const struct imap_tok *v, *u;
	uint32_t uid = 0;
	int rv;

	if (!is_fetch(r)) {
		return (ERR_OK);
	}
	v = fetch_item(r, "BODY[]");
	u = fetch_item(r, "UID");
	if (u == NULL || imap_tok_u32(u, &uid) != 0 || uid != ib->uid) {
		if (v != NULL && v->type == IMAP_TOK_STREAMED) {
			ib->wrong_uid = true;
		}
		return (ERR_OK);
	}
	if (v == NULL || ib->got_body) {
		return (ERR_OK);
	}
	ib->got_body = true;
	if (v->type == IMAP_TOK_STREAMED) {
		ib->streamed = true; /* the sink sent every chunk */
		return (ERR_OK);
	}
	if (!imap_tok_is_str(v) && v->type != IMAP_TOK_NIL) {
		return (sync_fail(ib->res, ERR_PROTO, RETRY_LATER,
		    "malformed BODY[] of UID %u in '%s'", ib->uid,
		    ib->mailbox));
	}
	/* A short literal or quoted string (or NIL: nothing): one row. */
	ib->chunk_off = 0;
	ib->nchunk = v->type == IMAP_TOK_NIL ? 0 : v->len;
	if (ib->nchunk > ib->max_body || ib->nchunk > SYNC_BODY_CHUNK) {
		return (sync_fail(ib->res, ERR_PROTO, RETRY_LATER,
		    "unexpected BODY[] of %zu bytes for UID %u", ib->nchunk,
		    ib->uid));
	}
	if (ib->nchunk > 0) {
		memcpy(ib->chunk, v->s, ib->nchunk);
	}
	rv = send_chunk(ib, true, ib->nchunk);
	return (rv);
}

/* Runs one command; a tagged NO/BAD fails with ERR_SERVER. */
static int
run_cmd(struct ibody *ib, const char *text, imap_untagged_fn fn)
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

/*
 * Fetches the body of uid (the mailbox selected). size_known: the size
 * is in ib->size already. Returns 0 (body sent), ERR_NOTFOUND or
 * ERR_TOOBIG (error row sent, res untouched), or another error with res
 * filled (the session is then unusable).
 */
static int
fetch_one(struct ibody *ib, uint32_t uid, bool size_known)
{
	char cmd[96], text[160];
	int rv;

	ib->uid = uid;
	ib->got_body = ib->streamed = ib->wrong_uid = false;
	ib->nchunk = 0;
	ib->chunk_off = 0;
	if (!size_known) {
		ib->found = false;
		ib->size = 0;
		snprintf(cmd, sizeof(cmd), "UID FETCH %u (UID RFC822.SIZE)",
		    uid);
		rv = run_cmd(ib, cmd, on_size);
		if (rv != 0) {
			return (rv);
		}
		if (!ib->found) {
			rv = send_error(ib, ERR_NOTFOUND, 0,
			    "message no longer exists on the server");
			return (rv != 0 ? rv : ERR_NOTFOUND);
		}
	}
	if (ib->size > ib->max_body) {
		snprintf(text, sizeof(text),
		    "body of %llu bytes exceeds the limit of %llu bytes",
		    (unsigned long long)ib->size,
		    (unsigned long long)ib->max_body);
		rv = send_error(ib, ERR_TOOBIG, ib->size, text);
		return (rv != 0 ? rv : ERR_TOOBIG);
	}
	rv = imap_session_set_literal_sink(
	    ib->s, 0, ib->max_body > 0 ? ib->max_body : 1, body_sink, ib);
	if (rv != 0) {
		return (sync_fail(ib->res, rv, RETRY_LATER, "literal sink: %s",
		    err_str(rv)));
	}
	snprintf(cmd, sizeof(cmd), "UID FETCH %u (UID BODY.PEEK[])", uid);
	rv = run_cmd(ib, cmd, on_body);
	(void)imap_session_set_literal_sink(ib->s, 0, 0, NULL, NULL);
	if (rv != 0) {
		return (rv);
	}
	if (ib->wrong_uid) {
		return (sync_fail(ib->res, ERR_PROTO, RETRY_LATER,
		    "server sent a body for another message than UID %u in "
		    "'%s'",
		    uid, ib->mailbox));
	}
	if (!ib->got_body) {
		rv = send_error(ib, ERR_NOTFOUND, 0,
		    "message no longer exists on the server");
		return (rv != 0 ? rv : ERR_NOTFOUND);
	}
	return (ERR_OK);
}

static int
ibody_init(struct ibody *ib, struct imap_session *s, struct sync_batcher *b,
    struct sync_result *res, const char *mailbox, uint64_t max_body)
{
	memset(ib, 0, sizeof(*ib));
	ib->s = s;
	ib->b = b;
	ib->res = res;
	ib->mailbox = mailbox;
	ib->max_body = max_body;
	ib->chunk = malloc(SYNC_BODY_CHUNK);
	if (ib->chunk == NULL) {
		return (sync_fail(res, ERR_NOMEM, RETRY_LATER,
		    "out of memory"));
	}
	return (ERR_OK);
}

/* Prefetch ------------------------------------------------------------- */

/* Policy: 0 none, 1 all, 2 recent (days in *days_r). */
static int
policy_parse(struct proto_str p, uint64_t *days_r)
{
	char digits[16];

	if (p.p == NULL || proto_str_eq(p, "none")) {
		return (0);
	}
	if (proto_str_eq(p, "all")) {
		return (1);
	}
	if (p.len > 7 && p.len - 7 < sizeof(digits)
	    && memcmp(p.p, "recent:", 7) == 0) {
		memcpy(digits, p.p + 7, p.len - 7);
		digits[p.len - 7] = '\0';
		if (digits[0] >= '0' && digits[0] <= '9'
		    && parse_u64(digits, 36500, days_r) == 0 && *days_r > 0) {
			return (2);
		}
	}
	return (-1);
}

struct iwin {
	uint32_t lo, hi;
	uint32_t uids[BODY_WINDOW];
	uint64_t sizes[BODY_WINDOW];
	int64_t dates[BODY_WINDOW];
	size_t n;
};

static int
on_window(const struct imap_resp *r, void *arg)
{
	struct iwin *w = arg;
	struct imap_fetch f;

	if (!is_fetch(r) || imap_fetch_parse(r, &f) != 0) {
		return (ERR_OK); /* not ours, or odd: no prefetch for it */
	}
	if (f.uid >= w->lo && f.uid <= w->hi && f.has_size
	    && w->n < BODY_WINDOW) {
		w->uids[w->n] = f.uid;
		w->sizes[w->n] = f.size;
		w->dates[w->n] = f.has_internal_date ? f.internal_date : 0;
		w->n++;
	}
	imap_fetch_release(&f);
	return (ERR_OK);
}

int
sync_imap_prefetch(struct imap_session *s, struct sync_batcher *b,
    const struct proto_job_run *job, const char *mailbox, uint32_t from_uid,
    uint32_t max_uid, struct sync_result *res)
{
	struct ibody ib;
	struct iwin *w = NULL;
	struct imap_cmd c;
	char cmd[96];
	uint64_t days = 0, lo;
	int64_t since = 0;
	size_t i;
	int policy, rv = ERR_OK;

	policy = policy_parse(job->bodies, &days);
	if (policy == 0 || from_uid == 0 || max_uid < from_uid) {
		return (ERR_OK);
	}
	if (policy < 0) {
		return (sync_fail(res, ERR_CONFIG, RETRY_NEVER,
		    "unknown body policy '%.*s'",
		    (int)(job->bodies.len > 32 ? 32 : job->bodies.len),
		    job->bodies.p));
	}
	if (policy == 2) {
		since = clock_wall_s() - (int64_t)days * 86400;
	}
	rv = ibody_init(&ib, s, b, res, mailbox, job->max_body);
	if (rv != 0) {
		return (rv);
	}
	w = malloc(sizeof(*w));
	if (w == NULL) {
		free(ib.chunk);
		return (sync_fail(res, ERR_NOMEM, RETRY_LATER,
		    "out of memory"));
	}
	for (lo = from_uid; lo <= max_uid && rv == 0; lo += BODY_WINDOW) {
		w->lo = (uint32_t)lo;
		w->hi = lo + BODY_WINDOW - 1 > max_uid
		    ? max_uid
		    : (uint32_t)(lo + BODY_WINDOW - 1);
		w->n = 0;
		snprintf(cmd, sizeof(cmd),
		    "UID FETCH %u:%u (UID RFC822.SIZE INTERNALDATE)", w->lo,
		    w->hi);
		memset(&c, 0, sizeof(c));
		c.text = cmd;
		rv = imap_session_run(s, &c, 1, on_window, w, res);
		if (rv == 0 && c.status != IMAP_ST_OK) {
			rv = sync_fail(res, ERR_SERVER, RETRY_LATER,
			    "'%s' in '%s': %s", cmd, mailbox, c.resp_text);
		}
		for (i = 0; rv == 0 && i < w->n; i++) {
			if (policy == 2 && w->dates[i] < since) {
				continue;
			}
			ib.size = w->sizes[i];
			rv = fetch_one(&ib, w->uids[i], true);
			if (rv == ERR_NOTFOUND || rv == ERR_TOOBIG) {
				rv = ERR_OK; /* the error row says it */
			}
		}
	}
	free(w);
	free(ib.chunk);
	return (rv);
}

/* The fetch_body job ------------------------------------------------------ */

/* EXAMINE mailbox (UTF-8 name); *uidvalidity_r from its response. */
struct iexamine {
	uint32_t uidvalidity;
};

static int
on_examine(const struct imap_resp *r, void *arg)
{
	struct iexamine *e = arg;
	uint32_t v;

	if (r->status == IMAP_ST_OK && r->code != NULL
	    && strcmp(r->code, "UIDVALIDITY") == 0
	    && imap_tok_u32(r->code_args, &v) == 0) {
		e->uidvalidity = v;
	}
	return (ERR_OK);
}

/* EXAMINE the target; 0, ERR_NOTFOUND (gone or reset: error row sent,
 * res filled with RETRY_NEVER) or another error. */
static int
body_examine(struct ibody *ib, const struct proto_job_run *job)
{
	struct iexamine e = { 0 };
	struct imap_cmd c;
	struct buf cmd;
	char *raw = NULL;
	int rv;

	rv = imap_utf7_encode(job->target_mailbox.p, job->target_mailbox.len,
	    &raw);
	buf_init(&cmd, 65536);
	if (rv == 0) {
		rv = buf_addstr(&cmd, "EXAMINE ");
	}
	if (rv == 0) {
		rv = imap_append_astring(&cmd, raw, strlen(raw), false);
	}
	free(raw);
	if (rv != 0 || strstr(cmd.data, "}\r\n") != NULL) {
		buf_release(&cmd);
		return (sync_fail(ib->res, ERR_INVAL, RETRY_NEVER,
		    "cannot encode mailbox name '%s'", ib->mailbox));
	}
	memset(&c, 0, sizeof(c));
	c.text = cmd.data;
	rv = imap_session_run(ib->s, &c, 1, on_examine, &e, ib->res);
	buf_release(&cmd);
	if (rv != 0) {
		return (rv);
	}
	if (c.status != IMAP_ST_OK) {
		rv = send_error(ib, ERR_NOTFOUND, 0,
		    "message no longer exists: its mailbox is gone");
		return (rv != 0 ? rv
				: sync_fail(ib->res, ERR_NOTFOUND, RETRY_NEVER,
				    "message no longer exists: mailbox '%s' "
				    "is gone (%s)",
				    ib->mailbox, c.resp_text));
	}
	if (job->target_uidvalidity != 0
	    && e.uidvalidity != job->target_uidvalidity) {
		rv = send_error(ib, ERR_NOTFOUND, 0,
		    "message no longer exists: mailbox was reset");
		return (rv != 0 ? rv
				: sync_fail(ib->res, ERR_NOTFOUND, RETRY_NEVER,
				    "message no longer exists: mailbox was "
				    "reset (UIDVALIDITY %u, was %u)",
				    e.uidvalidity, job->target_uidvalidity));
	}
	return (ERR_OK);
}

int
sync_imap_fetch_body(const struct proto_job_run *job,
    const struct sync_limits *l, const struct sync_sink *sink,
    struct sync_result *res)
{
	struct imap_session *s = NULL;
	struct sync_batcher *b = NULL;
	struct ibody ib;
	char *mailbox = NULL;
	int rv;

	memset(&ib, 0, sizeof(ib));
	if (job->target_uid == 0 || job->target_mailbox.p == NULL
	    || job->target_mailbox.len == 0) {
		return (sync_fail(res, ERR_NOTFOUND, RETRY_NEVER,
		    "message no longer exists in the store"));
	}
	mailbox = proto_str_dup(job->target_mailbox);
	if (mailbox == NULL) {
		return (sync_fail(res, ERR_NOMEM, RETRY_LATER,
		    "out of memory"));
	}
	rv = sync_batcher_new(job->job_id, job->attempt, l, sink, &b);
	if (rv != 0) {
		rv = sync_fail(res, rv, RETRY_LATER, "batcher: %s",
		    err_str(rv));
		goto out;
	}
	rv = imap_session_open_job(job, l, &s, res);
	if (rv != 0) {
		goto out;
	}
	rv = ibody_init(&ib, s, b, res, mailbox, job->max_body);
	if (rv != 0) {
		goto out;
	}
	ib.uid = job->target_uid;
	rv = body_examine(&ib, job);
	if (rv != 0) {
		goto out;
	}
	rv = fetch_one(&ib, job->target_uid, false);
	if (rv == ERR_NOTFOUND) {
		rv = sync_fail(res, rv, RETRY_NEVER,
		    "message no longer exists on the server (UID %u in "
		    "'%s')",
		    job->target_uid, mailbox);
	} else if (rv == ERR_TOOBIG) {
		rv = sync_fail(res, rv, RETRY_NEVER,
		    "body of %llu bytes exceeds the limit of %llu bytes",
		    (unsigned long long)ib.size,
		    (unsigned long long)job->max_body);
	}
	if (rv == 0) {
		rv = sync_batcher_flush(b);
		if (rv != 0) {
			rv = sync_fail(res, rv, RETRY_LATER,
			    "sending results to the store: %s", err_str(rv));
		}
	}
out:
	if (b != NULL) {
		res->nbatches = sync_batcher_nbatches(b);
	}
	free(ib.chunk);
	sync_batcher_free(&b);
	imap_session_close(&s);
	free(mailbox);
	return (rv);
}
