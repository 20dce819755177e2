/*
 * out.c: struct store_out, the result of one store operation. It owns
 * every string and array its reply points to (proto_str only borrows), the
 * events to publish, and the decrypted password of a lease, which is
 * wiped on release.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

void
store_out_init(struct store_out *out)
{
	memset(out, 0, sizeof(*out));
}

void
store_out_release(struct store_out *out)
{
	struct proto_job_run *run = out->reply.job_run;
	size_t i;

	for (i = 0; i < out->nowned_; i++) {
		free(out->owned_[i]);
	}
	free(out->owned_);
	if (out->secret_ != NULL) {
		mem_wipe(out->secret_, out->secret_len_);
		free(out->secret_);
	}
	if (run != NULL) {
		free(run->checkpoints);
		free(run->states);
		free(run->changes);
		mem_wipe(run, sizeof(*run));
		free(run);
	}
	free(out->reply.accounts);
	free(out->reply.jobs);
	free(out->reply.sched_accounts);
	free(out->reply.changes);
	free(out->reply.messages);
	memset(out, 0, sizeof(*out));
}

int
store_out_fail(struct store_out *out, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->errtext, sizeof(out->errtext), fmt, ap);
	va_end(ap);
	out->reply.status = code;
	out->nevents = 0; /* the transaction rolled back: nothing happened */
	out->reply.error.p = out->errtext;
	out->reply.error.len = strlen(out->errtext);
	return (code);
}

int
store_out_dbfail(
    struct store_out *out, struct store *st, int code, const char *what)
{
	if (code == ERR_NOMEM) {
		return (store_out_fail(out, code, "%s: out of memory", what));
	}
	return (store_out_fail(
	    out, code, "%s: database error: %s", what, store_errmsg(st)));
}

static int
store_out_keep(struct store_out *out, char *p)
{
	char **n;
	size_t cap;

	if (out->nowned_ == out->capowned_) {
		cap = out->capowned_ == 0 ? 16 : out->capowned_ * 2;
		n = realloc(out->owned_, cap * sizeof(*n));
		if (n == NULL) {
			return (ERR_NOMEM);
		}
		out->owned_ = n;
		out->capowned_ = cap;
	}
	out->owned_[out->nowned_++] = p;
	return (ERR_OK);
}

int
store_out_col(
    struct store_out *out, sqlite3_stmt *stmt, int col, struct proto_str *s_r)
{
	const unsigned char *t;
	char *p;
	int n;

	if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
		s_r->p = NULL;
		s_r->len = 0;
		return (ERR_OK);
	}
	t = sqlite3_column_text(stmt, col);
	n = sqlite3_column_bytes(stmt, col);
	if (t == NULL) {
		return (ERR_NOMEM);
	}
	p = malloc((size_t)n + 1);
	if (p == NULL) {
		return (ERR_NOMEM);
	}
	memcpy(p, t, (size_t)n);
	p[n] = '\0';
	if (store_out_keep(out, p) != 0) {
		free(p);
		return (ERR_NOMEM);
	}
	s_r->p = p;
	s_r->len = (size_t)n;
	return (ERR_OK);
}

int
store_out_str(struct store_out *out, const char *s, struct proto_str *s_r)
{
	char *p;

	p = xstrdup(s);
	if (p == NULL) {
		return (ERR_NOMEM);
	}
	if (store_out_keep(out, p) != 0) {
		free(p);
		return (ERR_NOMEM);
	}
	s_r->p = p;
	s_r->len = strlen(p);
	return (ERR_OK);
}

void
store_out_secret(struct store_out *out, char *secret, size_t len)
{
	if (out->secret_ != NULL) {
		mem_wipe(out->secret_, out->secret_len_);
		free(out->secret_);
	}
	out->secret_ = secret;
	out->secret_len_ = len;
}

struct proto_event *
store_out_event(struct store_out *out, uint8_t kind, int64_t now_ms)
{
	struct proto_event *ev;

	if (out->nevents == STORE_OUT_MAX_EVENTS) {
		log_warnx("event=bug what=event_dropped kind=%u", kind);
		return (NULL);
	}
	ev = &out->events[out->nevents++];
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->at = now_ms;
	return (ev);
}

void
store_out_job_event(struct store_out *out, uint8_t kind, uint64_t job_id,
    uint64_t account_id, uint8_t state, uint8_t priority, uint32_t attempt,
    int64_t due_at, int32_t status, int64_t now_ms)
{
	struct proto_event *ev;

	ev = store_out_event(out, kind, now_ms);
	if (ev == NULL) {
		return;
	}
	ev->job_id = job_id;
	ev->account_id = account_id;
	ev->state = state;
	ev->priority = priority;
	ev->attempt = attempt;
	ev->due_at = due_at;
	ev->status = status;
}
