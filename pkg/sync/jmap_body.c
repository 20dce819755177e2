/*
 * jmap_body.c: raw bodies of JMAP Emails: the fetch_body job and the sync
 * job's prefetch by policy. A body is the Email's blob, downloaded
 * through the session's downloadUrl and streamed into body chunk rows of
 * SYNC_BODY_CHUNK bytes, so neither worker nor store holds it whole. A
 * body larger than job_run.max_body gets an error row and is never
 * downloaded (the Email's size is known beforehand).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap_int.h"

/* Bodies one prefetch queue holds before it is run (one Email/get page
 * at most, so the queue is flushed after every page). */
#define PF_MAX 4096u

struct pf_item {
	char *blob;
	char *mailbox;
	char *id;
	uint64_t size;
};

struct sync_jmap_prefetch {
	struct jmap_client *cl;
	const struct proto_job_run *job;
	struct sync_batcher *b;
	struct sync_result *res;
	int64_t since; /* recent:DAYS: internal dates from this one; 0 all */
	struct pf_item *v;
	size_t n;
};

/* One body on its way: a chunk buffer and where the next one starts. */
struct stream {
	struct sync_batcher *b;
	const char *mailbox, *id;
	char *chunk;
	size_t len;
	uint64_t offset;
};

static int
stream_send(struct stream *s, bool last)
{
	struct proto_body_chunk c;
	int rv;

	memset(&c, 0, sizeof(c));
	c.mailbox = proto_str_c(s->mailbox);
	c.remote_id = proto_str_c(s->id);
	c.offset = s->offset;
	c.data.p = s->chunk;
	c.data.len = s->len;
	c.last = last;
	if (last) {
		c.total = s->offset + s->len;
	}
	rv = sync_batcher_send_body(s->b, &c);
	s->offset += s->len;
	s->len = 0;
	return (rv);
}

static int
stream_fn(const char *p, size_t n, void *arg)
{
	struct stream *s = arg;
	size_t k;
	int rv;

	while (n > 0) {
		k = SYNC_BODY_CHUNK - s->len;
		k = k < n ? k : n;
		memcpy(s->chunk + s->len, p, k);
		s->len += k;
		p += k;
		n -= k;
		if (s->len == SYNC_BODY_CHUNK) {
			rv = stream_send(s, false);
			if (rv != 0) {
				return (rv);
			}
		}
	}
	return (ERR_OK);
}

/* An error row for the body of (mailbox, id). */
static int
send_error(struct sync_batcher *b, const char *mailbox, const char *id,
    int status, uint64_t total, const char *text)
{
	struct proto_body_chunk c;

	memset(&c, 0, sizeof(c));
	c.mailbox = proto_str_c(mailbox);
	c.remote_id = proto_str_c(id);
	c.last = true;
	c.total = total;
	c.status = status;
	c.error = proto_str_c(text);
	return (sync_batcher_send_body(b, &c));
}

/*
 * Downloads one body into chunk rows. A body over max, or gone, is an
 * error row and 0; a failure of the connection fails the job (res).
 */
static int
body_download(struct jmap_client *cl, struct sync_batcher *b,
    const char *mailbox, const char *id, const char *blob, uint64_t size,
    uint64_t max, struct sync_result *res)
{
	struct stream s;
	struct jmap_err e;
	char text[160];
	int rv;

	if (max != 0 && size > max) {
		snprintf(text, sizeof(text),
		    "body of %llu bytes exceeds the limit of %llu bytes",
		    (unsigned long long)size, (unsigned long long)max);
		return (send_error(b, mailbox, id, ERR_TOOBIG, size, text));
	}
	memset(&s, 0, sizeof(s));
	s.b = b;
	s.mailbox = mailbox;
	s.id = id;
	s.chunk = malloc(SYNC_BODY_CHUNK);
	if (s.chunk == NULL) {
		return (
		    sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	memset(&e, 0, sizeof(e));
	rv = jmap_download(cl, blob, max, stream_fn, &s, NULL, &e);
	if (rv == 0) {
		rv = stream_send(&s, true);
	} else if ((rv == ERR_TOOBIG || rv == ERR_NOTFOUND) && e.status != 0) {
		/* the server's blob differs from what it announced, or is
		 * gone: the store drops what arrived (the error row) */
		rv = send_error(b, mailbox, id, rv, size,
		    rv == ERR_TOOBIG ? "body exceeds the size limit"
		                     : "message no longer exists on the "
		                       "server");
	} else if (e.status != 0) {
		sync_jmap_fail(res, &e);
	}
	free(s.chunk);
	return (rv != 0 && res->status == 0
	        ? sync_fail(res, rv, RETRY_LATER, "body: %s", err_str(rv))
	        : rv);
}

/* Prefetch ------------------------------------------------------------- */

int
sync_jmap_prefetch_new(struct jmap_client *cl, const struct proto_job_run *job,
    struct sync_batcher *b, struct sync_result *res,
    struct sync_jmap_prefetch **pf_r)
{
	struct sync_jmap_prefetch *pf;
	unsigned long days = 0;
	char digits[16];
	int64_t since = 0;

	*pf_r = NULL;
	if (job->bodies.p == NULL || proto_str_eq(job->bodies, "none")) {
		return (ERR_OK);
	}
	if (!proto_str_eq(job->bodies, "all")) {
		if (job->bodies.len <= 7
		    || job->bodies.len - 7 >= sizeof(digits)
		    || memcmp(job->bodies.p, "recent:", 7) != 0) {
			return (sync_fail(res, ERR_CONFIG, RETRY_NEVER,
			    "body policy '%.*s' is not none, all or "
			    "recent:DAYS",
			    (int)(job->bodies.len > 32 ? 32 : job->bodies.len),
			    job->bodies.p));
		}
		memcpy(digits, job->bodies.p + 7, job->bodies.len - 7);
		digits[job->bodies.len - 7] = '\0';
		days = strtoul(digits, NULL, 10);
		since = clock_wall_s() - (int64_t)days * 86400;
	}
	pf = calloc(1, sizeof(*pf));
	if (pf == NULL || (pf->v = calloc(PF_MAX, sizeof(*pf->v))) == NULL) {
		free(pf);
		return (ERR_NOMEM);
	}
	pf->cl = cl;
	pf->job = job;
	pf->b = b;
	pf->res = res;
	pf->since = since;
	*pf_r = pf;
	return (ERR_OK);
}

int
sync_jmap_prefetch_add(struct sync_jmap_prefetch *pf, json_t *e,
    const char *mailbox, int64_t internal_date)
{
	const char *blob, *id;
	struct pf_item *it;
	int rv;

	if (pf == NULL || (pf->since != 0 && internal_date < pf->since)) {
		return (ERR_OK);
	}
	if (pf->n == PF_MAX) {
		rv = sync_jmap_prefetch_run(pf);
		if (rv != 0) {
			return (rv);
		}
	}
	blob = json_string_value(json_object_get(e, "blobId"));
	id = json_string_value(json_object_get(e, "id"));
	if (blob == NULL || id == NULL) {
		return (ERR_OK);
	}
	it = &pf->v[pf->n];
	it->blob = xstrdup(blob);
	it->mailbox = xstrdup(mailbox);
	it->id = xstrdup(id);
	it->size = (uint64_t)json_integer_value(json_object_get(e, "size"));
	pf->n++;
	return (it->blob == NULL || it->mailbox == NULL || it->id == NULL
	        ? ERR_NOMEM
	        : ERR_OK);
}

static void
pf_clear(struct sync_jmap_prefetch *pf)
{
	size_t i;

	for (i = 0; i < pf->n; i++) {
		free(pf->v[i].blob);
		free(pf->v[i].mailbox);
		free(pf->v[i].id);
	}
	pf->n = 0;
}

int
sync_jmap_prefetch_run(struct sync_jmap_prefetch *pf)
{
	struct pf_item *it;
	size_t i;
	int rv = ERR_OK;

	if (pf == NULL) {
		return (ERR_OK);
	}
	for (i = 0; i < pf->n && rv == 0; i++) {
		it = &pf->v[i];
		rv = body_download(pf->cl, pf->b, it->mailbox, it->id,
		    it->blob, it->size, pf->job->max_body, pf->res);
	}
	pf_clear(pf);
	return (rv);
}

void
sync_jmap_prefetch_free(struct sync_jmap_prefetch **pfp)
{
	struct sync_jmap_prefetch *pf = *pfp;

	if (pf == NULL) {
		return;
	}
	pf_clear(pf);
	free(pf->v);
	free(pf);
	*pfp = NULL;
}

/* The fetch_body job ----------------------------------------------------- */

int
sync_jmap_fetch_body(const struct proto_job_run *job,
    const struct sync_limits *l, struct sync_conns *conns,
    const struct sync_sink *sink, struct sync_result *res)
{
	struct jmap_client *cl = NULL;
	struct sync_batcher *b = NULL;
	struct jmap_err e;
	json_t *calls = NULL, *resp = NULL, *args, *em;
	char *mailbox = NULL, *id = NULL;
	const char *blob;
	int rv;

	mailbox = proto_str_dup(job->target_mailbox);
	id = proto_str_dup(job->target_remote_id);
	if (mailbox == NULL || id == NULL) {
		rv = sync_fail(res, ERR_NOTFOUND, RETRY_NEVER,
		    "message no longer exists locally");
		goto done;
	}
	rv = sync_jmap_open(job, l, conns, &cl, res);
	if (rv == 0) {
		rv = sync_batcher_new(job->job_id, job->attempt, l, sink, &b);
	}
	if (rv != 0) {
		goto done;
	}
	calls = json_pack("[[s, {s:s, s:[s], s:[sss]}, s]]", "Email/get",
	    "accountId", jmap_client_session(cl)->account_id, "ids", id,
	    "properties", "id", "blobId", "size", "g");
	memset(&e, 0, sizeof(e));
	rv = calls == NULL ? ERR_NOMEM
	                   : jmap_call(cl, calls, false, &resp, &e);
	if (rv == 0) {
		rv = jmap_response(resp, "g", "Email/get", &args, NULL, 0, &e);
	}
	if (rv != 0) {
		if (e.status == 0) {
			e.status = rv;
		}
		sync_jmap_fail(res, &e);
		goto done;
	}
	em = json_array_get(json_object_get(args, "list"), 0);
	blob = json_string_value(json_object_get(em, "blobId"));
	if (blob == NULL) {
		rv = send_error(b, mailbox, id, ERR_NOTFOUND, 0,
		    "message no longer exists on the server");
		if (rv == 0) {
			rv = sync_fail(res, ERR_NOTFOUND, RETRY_NEVER,
			    "Email %s no longer exists on the server", id);
		}
		goto done;
	}
	rv = body_download(cl, b, mailbox, id, blob,
	    (uint64_t)json_integer_value(json_object_get(em, "size")),
	    job->max_body, res);
	if (rv == 0) {
		rv = sync_batcher_flush(b);
	}
	if (rv != 0 && res->status == 0) {
		sync_fail(res, rv, RETRY_LATER, "%s", err_str(rv));
	}
done:
	res->nbatches = b != NULL ? sync_batcher_nbatches(b) : 0;
	json_decref(calls);
	json_decref(resp);
	sync_batcher_free(&b);
	sync_jmap_close(conns, job, &cl, res);
	free(mailbox);
	free(id);
	return (res->status);
}
