/*
 * imap_body.c: raw message bodies over IMAP for the two jobs that want
 * them (the fetching itself is imap_body_fetch.c).
 *
 * The sync job's prefetch hook: the bodies of the new UIDs matching the
 * account's policy, "all" or "recent:DAYS" by INTERNALDATE, sizes and
 * dates learnt in windows of BODY_WINDOW UIDs, then fetched in batches.
 * A body larger than job_run.max_body gets an error row "body of N bytes
 * exceeds the limit of M bytes" and is never downloaded.
 *
 * The fetch_body job: EXAMINE the target mailbox, check its UIDVALIDITY,
 * learn the size, fetch one body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body_int.h"

/* UIDs asked for sizes and dates at once when prefetching. */
#define BODY_WINDOW 1000u

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

	if (!body_is_fetch(r) || imap_fetch_parse(r, &f) != 0) {
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

/* Fetches the batch gathered; a body gone is its error row, no error. */
static int
prefetch_batch(struct body_fetch *ib)
{
	int rv = body_fetch_batch(ib);

	ib->nwant = 0;
	return (rv == ERR_NOTFOUND ? ERR_OK : rv);
}

int
sync_imap_prefetch(struct imap_session *s, struct sync_batcher *b,
    const struct proto_job_run *job, const char *mailbox, uint32_t from_uid,
    uint32_t max_uid, struct sync_result *res)
{
	struct body_fetch ib;
	struct iwin *w = NULL;
	struct imap_cmd c;
	char cmd[96];
	uint64_t days = 0, lo, bytes = 0;
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
	rv = body_init(&ib, s, b, res, mailbox, job->max_body);
	if (rv != 0) {
		body_release(&ib);
		return (rv);
	}
	w = malloc(sizeof(*w));
	if (w == NULL) {
		body_release(&ib);
		return (
		    sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory"));
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
			if (w->sizes[i] > ib.max_body) {
				ib.uid = w->uids[i];
				ib.size = w->sizes[i];
				rv = body_send_too_big(&ib);
				continue;
			}
			/* The batch is full: fetch it, then start the next. */
			if (ib.nwant == BODY_BATCH
			    || (ib.nwant > 0
			        && bytes + w->sizes[i] > BODY_BATCH_BYTES)) {
				rv = prefetch_batch(&ib);
				bytes = 0;
			}
			if (rv == 0) {
				ib.want[ib.nwant++] = w->uids[i];
				bytes += w->sizes[i];
			}
		}
	}
	if (rv == 0 && ib.nwant > 0) {
		rv = prefetch_batch(&ib);
	}
	rv = body_finish(&ib, rv);
	free(w);
	body_release(&ib);
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
body_examine(struct body_fetch *ib, const struct proto_job_run *job)
{
	struct iexamine e = { 0 };
	struct imap_cmd c;
	struct buf cmd;
	char *raw = NULL;
	int rv;

	rv = imap_utf7_encode(
	    job->target_mailbox.p, job->target_mailbox.len, &raw);
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
		rv = body_send_error(ib, ERR_NOTFOUND, 0,
		    "message no longer exists: its mailbox is gone");
		return (rv != 0 ? rv
		                : sync_fail(ib->res, ERR_NOTFOUND, RETRY_NEVER,
		                    "message no longer exists: mailbox '%s' "
		                    "is gone (%s)",
		                    ib->mailbox, c.resp_text));
	}
	if (job->target_uidvalidity != 0
	    && e.uidvalidity != job->target_uidvalidity) {
		rv = body_send_error(ib, ERR_NOTFOUND, 0,
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
    const struct sync_limits *l, struct sync_conns *conns,
    const struct sync_sink *sink, struct sync_result *res)
{
	struct imap_session *s = NULL;
	struct sync_batcher *b = NULL;
	struct body_fetch ib;
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
		return (
		    sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	rv = sync_batcher_new(job->job_id, job->attempt, l, sink, &b);
	if (rv != 0) {
		rv = sync_fail(
		    res, rv, RETRY_LATER, "batcher: %s", err_str(rv));
		goto out;
	}
	rv = imap_session_acquire(job, l, conns, &s, res);
	if (rv != 0) {
		goto out;
	}
	rv = body_init(&ib, s, b, res, mailbox, job->max_body);
	if (rv != 0) {
		goto out;
	}
	ib.uid = job->target_uid;
	rv = body_examine(&ib, job);
	if (rv != 0) {
		(void)body_finish(&ib, rv); /* its error row */
		goto out;
	}
	rv = body_fetch_one(&ib, job->target_uid);
	rv = body_finish(&ib, rv);
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
	body_release(&ib);
	sync_batcher_free(&b);
	imap_session_release(conns, job, &s, res);
	free(mailbox);
	return (rv);
}
