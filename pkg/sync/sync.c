/*
 * sync.c: the worker's entry point into a job. Chooses the protocol
 * engine for the account and owns the result helpers shared by engines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drain_int.h"
#include "jmap_int.h"

void
sync_limits_default(struct sync_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->batch_rows = 500;
	l->batch_bytes = 1024 * 1024;
	l->io_timeout_ms = 60000;
	l->connect_timeout_ms = 15000;
	l->job_timeout_ms = 4 * 3600 * 1000;
	l->max_mailboxes = 10000;
	imap_limits_default(&l->imap);
	l->imap.max_line = SYNC_MAX_LINE;
}

int
sync_fail(struct sync_result *res, int status, enum retry retry,
    const char *fmt, ...)
{
	va_list ap;

	/* Keep the first failure: later ones are usually its echoes. */
	if (res->status != 0) {
		return (res->status);
	}
	res->status = status != 0 ? status : ERR_IO;
	res->retry = retry;
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
	return (res->status);
}

void
sync_result_release(struct sync_result *res)
{
	size_t i;

	for (i = 0; i < res->ncheckpoints; i++) {
		free((char *)res->checkpoints[i].mailbox.p);
	}
	free(res->checkpoints);
	for (i = 0; i < res->nmailboxes; i++) {
		free((char *)res->mailboxes[i].p);
	}
	free(res->mailboxes);
	for (i = 0; i < res->nstates; i++) {
		free((char *)res->states[i].resource.p);
		free((char *)res->states[i].state.p);
	}
	free(res->states);
	memset(res, 0, sizeof(*res));
}

int
sync_run(const struct proto_job_run *job, const struct sync_limits *l,
    struct sync_conns *conns, const struct sync_sink *sink,
    struct sync_result *res)
{
	memset(res, 0, sizeof(*res));
	if (job->kind != JOB_KIND_SYNC && job->kind != JOB_KIND_FETCH_BODY &&
	    job->kind != JOB_KIND_DRAIN) {
		return (sync_fail(res, ERR_CONFIG, RETRY_NEVER,
		    "job kind '%s' is not supported by this worker",
		    proto_job_kind_name(job->kind)));
	}
	if (proto_str_eq(job->protocol, "imap")) {
		switch (job->kind) {
		case JOB_KIND_FETCH_BODY:
			return (
			    sync_imap_fetch_body(job, l, conns, sink, res));
		case JOB_KIND_DRAIN:
			return (sync_imap_drain(job, l, conns, sink, res));
		default:
			return (sync_imap_run(job, l, conns, sink, res));
		}
	}
	if (proto_str_eq(job->protocol, "jmap")) {
		switch (job->kind) {
		case JOB_KIND_FETCH_BODY:
			return (sync_jmap_fetch_body(job, l, conns, sink, res));
		case JOB_KIND_DRAIN:
			return (sync_jmap_drain(job, l, conns, sink, res));
		default:
			return (sync_jmap_run(job, l, conns, sink, res));
		}
	}
	return (sync_fail(res, ERR_CONFIG, RETRY_NEVER,
	    "protocol '%.*s' is not supported by this worker",
	    (int)(job->protocol.len > 16 ? 16 : job->protocol.len),
	    job->protocol.p != NULL ? job->protocol.p : ""));
}
