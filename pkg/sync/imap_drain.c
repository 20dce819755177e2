/*
 * imap_drain.c: the drain job of an IMAP account (docs/drain.md "Worker"):
 * local changes carried to the server.
 *
 *   1. Sends not yet handed to SMTP go through smtp.c, one by one, each
 *      result in its own batch (a send accepted by SMTP reports `sent`
 *      at once: the Sent copy follows in step 4).
 *   2. One IMAP session; if it cannot be opened, every change still
 *      unanswered gets `retry` with the error.
 *   3. Flag, move and delete changes by source mailbox, in the order of
 *      their first change, each in at most six round trips
 *      (imap_drain_src.c).
 *   4. Appends and Sent copies by target mailbox: SELECT + UID SEARCH
 *      HEADER Message-ID per change (found: done, nothing appended), then
 *      APPEND with a literal (UID from APPENDUID), then, without
 *      APPENDUID, the search again.
 *
 * Each mailbox's results are flushed as their own batch once the server
 * answered. A lost connection answers everything still open with `retry`.
 * The job's status is 0 when the drain ran, even with dead or retried
 * changes; non-zero (after the results) when the session could not be
 * opened or was lost, or results could not reach the store.
 *
 * Untagged SEARCH answers belong to the first command of the pipeline not
 * yet completed (servers answer pipelined commands in order; imap_delta.c
 * relies on the same).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drain_int.h"

static struct proto_str
pstr(const char *s)
{
	struct proto_str p = { s, s != NULL ? strlen(s) : 0 };

	return (p);
}

bool
drain_str_same(struct proto_str a, struct proto_str b)
{
	return (a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0)
	    && (a.p == NULL) == (b.p == NULL));
}

/* Results --------------------------------------------------------------- */

/* Reports one change's outcome (error: sanitized text or NULL). */
void
drain_answer(struct drain *d, size_t i, uint8_t outcome, const char *error,
    struct proto_str mailbox, uint32_t uidvalidity, uint32_t uid)
{
	struct proto_change_result r;
	int rv;

	if (d->ch[i].answered) {
		return;
	}
	if (outcome == CHANGE_OUT_SENT) {
		d->ch[i].sent = true;
	} else {
		d->ch[i].answered = true;
	}
	d->counts[outcome]++;
	if (d->sink_rv != 0) {
		return;
	}
	memset(&r, 0, sizeof(r));
	r.id = d->ch[i].c->id;
	r.outcome = outcome;
	r.error = pstr(error);
	if (outcome == CHANGE_OUT_DONE) {
		r.mailbox = mailbox;
		r.uidvalidity = uidvalidity;
		r.uid = uid;
	}
	rv = sync_batcher_add_change_result(d->b, &r);
	if (rv != 0) {
		d->sink_rv = rv;
	}
}

void
drain_answer_err(
    struct drain *d, size_t i, uint8_t outcome, const char *fmt, ...)
{
	char raw[SYNC_MAX_ERROR], text[SYNC_MAX_ERROR];
	struct proto_str none = { NULL, 0 };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	drain_text(text, sizeof(text), "%s", raw);
	drain_answer(d, i, outcome, text, none, 0, 0);
}

void
drain_answer_done(struct drain *d, size_t i, struct proto_str mailbox,
    uint32_t uidvalidity, uint32_t uid)
{
	drain_answer(d, i, CHANGE_OUT_DONE, NULL, mailbox, uidvalidity, uid);
}

/* Sends the results gathered so far as one batch. */
int
drain_flush(struct drain *d)
{
	int rv;

	if (d->sink_rv == 0) {
		rv = sync_batcher_flush(d->b);
		if (rv != 0) {
			d->sink_rv = rv;
		}
	}
	if (d->sink_rv != 0) {
		return (sync_fail(d->res, d->sink_rv, RETRY_LATER,
		    "sending results to the store: %s", err_str(d->sink_rv)));
	}
	return (ERR_OK);
}

/* Pipelines --------------------------------------------------------------- */

void
drain_pipe_release(struct drain_pipe *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free((char *)p->cmds[i].text);
		imap_uidset_release(&p->info[i].found);
	}
	free(p->cmds);
	free(p->info);
	memset(p, 0, sizeof(*p));
}

/* Adds a command (text taken, even on failure); its index in *i_r. */
int
drain_pipe_add(struct drain_pipe *p, enum drain_pkind kind, size_t chg,
    char *text, size_t *i_r)
{
	if (p->n == p->cap) {
		size_t ncap = p->cap != 0 ? p->cap * 2 : 8;
		struct imap_cmd *c = realloc(p->cmds, ncap * sizeof(*c));

		if (c != NULL) {
			p->cmds = c;
		}
		struct drain_pinfo *f
		    = c != NULL ? realloc(p->info, ncap * sizeof(*f)) : NULL;

		if (f == NULL) {
			free(text);
			return (ERR_NOMEM);
		}
		p->info = f;
		p->cap = ncap;
	}
	memset(&p->cmds[p->n], 0, sizeof(p->cmds[p->n]));
	memset(&p->info[p->n], 0, sizeof(p->info[p->n]));
	p->cmds[p->n].text = text;
	p->info[p->n].kind = kind;
	p->info[p->n].chg = chg;
	imap_uidset_init(&p->info[p->n].found, DRAIN_SET_MAX);
	if (i_r != NULL) {
		*i_r = p->n;
	}
	p->n++;
	return (ERR_OK);
}

/* "<prefix><mailbox><suffix>" as a malloc'd command, or NULL. */
char *
drain_cmd_mailbox(
    const char *prefix, struct proto_str mailbox, const char *suffix)
{
	struct buf b;

	buf_init(&b, DRAIN_CMD_MAX);
	if (buf_addstr(&b, prefix) != 0 || drain_mailbox_arg(&b, mailbox) != 0
	    || buf_addstr(&b, suffix) != 0) {
		buf_release(&b);
		return (NULL);
	}
	return (b.data);
}

static void
on_copyuid(struct drain *d, const struct imap_resp *r)
{
	struct imap_copyuid cu;
	uint32_t uid;
	size_t k;

	if (imap_copyuid_parse(r, &cu) != 0) {
		return; /* none, or not to be trusted: search instead */
	}
	for (k = 0; k < d->ngrp; k++) {
		struct drain_chg *c = &d->ch[d->grp[k]];

		if (c->cmd != SIZE_MAX && c->exists && !c->answered
		    && c->c->kind != CHANGE_FLAG
		    && imap_copyuid_lookup(&cu, c->c->uid, &uid) == 0) {
			c->new_uidvalidity = cu.uidvalidity;
			c->new_uid = uid;
		}
	}
}

static int
on_untagged(const struct imap_resp *r, void *arg)
{
	struct drain *d = arg;
	struct drain_pinfo *cur;
	uint64_t v;
	int rv;

	while (d->cur < d->p->n && d->p->info[d->cur].completed) {
		d->cur++;
	}
	cur = d->cur < d->p->n ? &d->p->info[d->cur] : NULL;
	if (r->status == IMAP_ST_OK && r->code != NULL) {
		if (strcmp(r->code, "COPYUID") == 0) {
			on_copyuid(d, r); /* UID MOVE (RFC 6851) */
		} else if (strcmp(r->code, "UIDVALIDITY") == 0 && cur != NULL
		    && cur->kind == DRAIN_P_SELECT && r->code_args != NULL
		    && imap_tok_u64(r->code_args, &v) == 0
		    && v <= UINT32_MAX) {
			cur->uidvalidity = (uint32_t)v;
		}
		return (ERR_OK);
	}
	if (cur == NULL || cur->kind != DRAIN_P_SEARCH) {
		return (ERR_OK);
	}
	rv = imap_search_collect(r, &cur->found);
	if (rv < 0) {
		return (sync_fail(d->res, ERR_PROTO, RETRY_LATER,
		    "malformed SEARCH response: %s", err_str(rv)));
	}
	return (ERR_OK);
}

static int
on_done(const struct imap_resp *r, void *arg)
{
	struct drain_pinfo *f = arg;

	f->completed = true;
	if (r->status != IMAP_ST_OK) {
		return (ERR_OK);
	}
	if (f->kind == DRAIN_P_APPEND
	    && imap_appenduid_parse(r, &f->uidvalidity, &f->uid) != 0) {
		f->uidvalidity = 0;
		f->uid = 0;
	} else if (f->kind == DRAIN_P_COPY) {
		on_copyuid(f->d, r); /* UID COPY */
	}
	return (ERR_OK);
}

/* Runs p; after it, found sets are finished (or marked untrusted). */
int
drain_pipe_run(struct drain *d, struct drain_pipe *p)
{
	size_t i;
	int rv;

	if (p->n == 0) {
		return (ERR_OK);
	}
	for (i = 0; i < p->n; i++) {
		p->info[i].d = d;
		p->cmds[i].done_fn = on_done;
		p->cmds[i].done_arg = &p->info[i];
	}
	d->p = p;
	d->cur = 0;
	rv = imap_session_run(d->s, p->cmds, p->n, on_untagged, d, d->res);
	d->p = NULL;
	for (i = 0; rv == 0 && i < p->n; i++) {
		if (imap_uidset_finish(&p->info[i].found) != 0) {
			p->info[i].found.unordered = true;
		}
	}
	return (rv);
}

/* The UIDs the server found for search command i ("" when none);
 * NULL when the answer is not to be trusted or the command failed. */
const char *
drain_found_set(const struct drain_pipe *p, size_t i)
{
	const struct drain_pinfo *f = &p->info[i];

	if (p->cmds[i].status != IMAP_ST_OK || f->found.unordered) {
		return (NULL);
	}
	return (f->found.s.data != NULL ? f->found.s.data : "");
}

/* Appends and Sent copies (step 4) ---------------------------------- */

static bool
is_target(const struct drain_chg *c)
{
	return (!c->answered && c->c->to_mailbox.p != NULL
	    && (c->c->kind == CHANGE_APPEND
	        || (c->c->kind == CHANGE_SEND && c->sent)));
}

/* Adds a Message-ID search for change i of the group (if it has an id
 * to search by); its index in c->cmd. */
static int
add_search(struct drain *d, struct drain_pipe *p, size_t i)
{
	struct drain_chg *c = &d->ch[i];
	struct buf b;

	c->cmd = SIZE_MAX;
	buf_init(&b, DRAIN_CMD_MAX);
	if (drain_search_msgid(&b, c->c->header_message_id) != 0) {
		buf_release(&b);
		return (ERR_OK);
	}
	return (drain_pipe_add(p, DRAIN_P_SEARCH, i, b.data, &c->cmd));
}

/* Answers done the group's changes whose search found them. */
static void
answer_found(struct drain *d, const struct drain_pipe *p,
    struct proto_str mbox, uint32_t uv)
{
	const char *found;
	uint32_t uid;
	size_t k;

	for (k = 0; k < d->ngrp; k++) {
		struct drain_chg *c = &d->ch[d->grp[k]];

		if (c->answered || c->cmd == SIZE_MAX
		    || p->info[c->cmd].kind != DRAIN_P_SEARCH) {
			continue;
		}
		found = drain_found_set(p, c->cmd);
		uid = found != NULL ? drain_set_max(found, strlen(found)) : 0;
		if (uid != 0) {
			drain_answer_done(d, d->grp[k], mbox, uv, uid);
		}
	}
}

/* APPEND of each change still open; 0 or a session error. */
static int
target_append(
    struct drain *d, struct proto_str mbox, bool selected, uint32_t uv)
{
	struct drain_pipe p = { NULL, NULL, 0, 0 }, p2 = { NULL, NULL, 0, 0 };
	size_t k;
	int rv = ERR_OK;

	for (k = 0; rv == 0 && k < d->ngrp; k++) {
		struct drain_chg *c = &d->ch[d->grp[k]];
		struct buf b;
		size_t i;

		c->cmd = SIZE_MAX;
		if (c->answered) {
			continue;
		}
		buf_init(&b, DRAIN_CMD_MAX);
		rv = buf_addstr(&b, "APPEND ");
		rv = rv == 0 ? drain_mailbox_arg(&b, mbox) : rv;
		rv = rv == 0 ? buf_addstr(&b, " ") : rv;
		rv = rv == 0 ? (c->c->kind == CHANGE_SEND
		             ? buf_addstr(&b, "(\\Seen)")
		             : drain_flag_list(
		                 c->c->flags_add, c->c->keywords_add, &b))
		             : rv;
		if (rv == ERR_INVAL) {
			buf_release(&b);
			drain_answer_err(d, d->grp[k], CHANGE_OUT_DEAD,
			    "a keyword is not an IMAP atom");
			rv = ERR_OK;
			continue;
		}
		rv = rv == 0
		    ? drain_pipe_add(&p, DRAIN_P_APPEND, d->grp[k], b.data, &i)
		    : (buf_release(&b), rv);
		if (rv == 0) {
			p.cmds[i].literal = c->c->rfc822.p;
			p.cmds[i].literal_len = c->c->rfc822.len;
			c->cmd = i;
		}
	}
	rv = rv == 0 ? drain_pipe_run(d, &p)
	             : sync_fail(d->res, rv, RETRY_LATER, "out of memory");
	for (k = 0; rv == 0 && k < d->ngrp; k++) {
		struct drain_chg *c = &d->ch[d->grp[k]];
		const struct drain_pinfo *f;

		if (c->answered || c->cmd == SIZE_MAX) {
			continue;
		}
		f = &p.info[c->cmd];
		if (p.cmds[c->cmd].status != IMAP_ST_OK) {
			drain_answer_err(d, d->grp[k],
			    drain_no_outcome(p.cmds[c->cmd].resp_text),
			    "APPEND to '%.*s': %s", (int)mbox.len, mbox.p,
			    p.cmds[c->cmd].resp_text);
		} else if (f->uid != 0) {
			drain_answer_done(
			    d, d->grp[k], mbox, f->uidvalidity, f->uid);
		} else {
			c->lookup = true; /* no APPENDUID */
		}
	}
	/* Without APPENDUID, the message is found by its Message-ID. */
	if (rv == 0 && selected) {
		rv = drain_pipe_add(
		    &p2, DRAIN_P_OTHER, SIZE_MAX, xstrdup("NOOP"), NULL);
		for (k = 0; rv == 0 && k < d->ngrp; k++) {
			if (d->ch[d->grp[k]].lookup
			    && !d->ch[d->grp[k]].answered) {
				rv = add_search(d, &p2, d->grp[k]);
			} else {
				d->ch[d->grp[k]].cmd = SIZE_MAX;
			}
		}
		if (rv == 0 && p2.n > 1) {
			rv = drain_pipe_run(d, &p2);
		} else if (rv != 0) {
			rv = sync_fail(
			    d->res, rv, RETRY_LATER, "out of memory");
		}
		if (rv == 0 && p2.n > 1) {
			answer_found(d, &p2, mbox, uv);
		}
	}
	for (k = 0; rv == 0 && k < d->ngrp; k++) {
		if (d->ch[d->grp[k]].lookup) {
			drain_answer_done(d, d->grp[k], mbox, 0, 0);
		}
	}
	drain_pipe_release(&p);
	drain_pipe_release(&p2);
	return (rv);
}

/* Step 4 for the target mailbox of change `first`. */
static int
drain_target(struct drain *d, size_t first)
{
	struct drain_pipe p = { NULL, NULL, 0, 0 };
	struct proto_str mbox = d->ch[first].c->to_mailbox;
	char *sel;
	size_t i, k;
	int rv;

	d->ngrp = 0;
	for (i = first; i < d->n; i++) {
		struct drain_chg *c = &d->ch[i];

		if (!is_target(c) || !drain_str_same(c->c->to_mailbox, mbox)) {
			continue;
		}
		c->lookup = false;
		c->cmd = c->cmd2 = SIZE_MAX;
		d->grp[d->ngrp++] = i;
		if (c->c->rfc822.p == NULL || c->c->rfc822.len == 0) {
			drain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "the change has no message to append");
		}
	}
	sel = drain_cmd_mailbox("SELECT ", mbox, "");
	if (sel == NULL) {
		for (k = 0; k < d->ngrp; k++) {
			drain_answer_err(d, d->grp[k], CHANGE_OUT_DEAD,
			    "cannot encode the mailbox name");
		}
		return (drain_flush(d));
	}
	/* Idempotence: a copy an earlier attempt (or the SMTP server)
	 * saved is found by its Message-ID and not appended again. */
	rv = drain_pipe_add(&p, DRAIN_P_SELECT, SIZE_MAX, sel, NULL);
	for (k = 0; rv == 0 && k < d->ngrp; k++) {
		if (!d->ch[d->grp[k]].answered) {
			rv = add_search(d, &p, d->grp[k]);
		}
	}
	rv = rv == 0 ? drain_pipe_run(d, &p)
	             : sync_fail(d->res, rv, RETRY_LATER, "out of memory");
	if (rv == 0) {
		/* Searches count only in the mailbox SELECT opened (a failed
		 * SELECT may leave another one selected on some servers). */
		if (p.cmds[0].status == IMAP_ST_OK) {
			answer_found(d, &p, mbox, p.info[0].uidvalidity);
		}
		rv = target_append(d, mbox, p.cmds[0].status == IMAP_ST_OK,
		    p.info[0].uidvalidity);
	}
	drain_pipe_release(&p);
	return (rv != 0 ? rv : drain_flush(d));
}

/* Sends (step 1) ------------------------------------------------------- */

static int
drain_sends(struct drain *d)
{
	struct proto_str none = { NULL, 0 };
	struct smtp_outcome o;
	size_t i;
	int rv;

	for (i = 0; i < d->n; i++) {
		const struct proto_change *c = d->ch[i].c;

		if (d->ch[i].answered || c->kind != CHANGE_SEND) {
			continue;
		}
		if (c->step == 0) {
			smtp_send(d->job, c, d->lim, &o);
			if (o.outcome != CHANGE_OUT_SENT) {
				drain_answer_err(
				    d, i, o.outcome, "%s", o.error);
				goto flush;
			}
		}
		if (c->to_mailbox.p == NULL) {
			/* No Sent copy kept: done once SMTP took it. */
			drain_answer_done(d, i, none, 0, 0);
		} else if (c->step == 0) {
			drain_answer(d, i, CHANGE_OUT_SENT, NULL, none, 0, 0);
		} else {
			d->ch[i].sent = true; /* the Sent copy is left */
		}
	flush:
		/* A send's result goes out before anything else is tried. */
		rv = drain_flush(d);
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}

/* Everything still unanswered: retry, with why. */
static void
answer_rest(struct drain *d, const char *why)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		if (!d->ch[i].answered) {
			drain_answer_err(d, i, CHANGE_OUT_RETRY, "%s", why);
		}
	}
	(void)drain_flush(d);
}

static bool
is_source(const struct drain_chg *c)
{
	return (!c->answered
	    && (c->c->kind == CHANGE_FLAG || c->c->kind == CHANGE_MOVE
	        || c->c->kind == CHANGE_DELETE));
}

int
sync_imap_drain(const struct proto_job_run *job, const struct sync_limits *l,
    struct sync_conns *conns, const struct sync_sink *sink,
    struct sync_result *res)
{
	struct drain d;
	size_t i;
	bool need = false;
	int rv;

	memset(&d, 0, sizeof(d));
	d.job = job;
	d.lim = l;
	d.res = res;
	d.n = job->nchanges;
	d.ch = calloc(d.n + 1, sizeof(*d.ch));
	d.grp = calloc(d.n + 1, sizeof(*d.grp));
	if (d.ch == NULL || d.grp == NULL) {
		rv = sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory");
		goto out;
	}
	rv = sync_batcher_new(job->job_id, job->attempt, l, sink, &d.b);
	if (rv != 0) {
		rv = sync_fail(
		    res, rv, RETRY_LATER, "batcher: %s", err_str(rv));
		goto out;
	}
	for (i = 0; i < d.n; i++) {
		d.ch[i].c = &job->changes[i];
		if (job->changes[i].kind > CHANGE_SEND) {
			drain_answer_err(&d, i, CHANGE_OUT_DEAD,
			    "unknown change kind %u", job->changes[i].kind);
		} else if (job->changes[i].kind == CHANGE_APPEND
		    && job->changes[i].to_mailbox.len == 0) {
			drain_answer_err(&d, i, CHANGE_OUT_DEAD,
			    "the change has no target mailbox");
		}
	}
	rv = drain_sends(&d);
	if (rv != 0) {
		goto out;
	}
	for (i = 0; i < d.n; i++) {
		need = need || !d.ch[i].answered;
	}
	if (need) {
		rv = imap_session_acquire(job, l, conns, &d.s, res);
	}
	for (i = 0; rv == 0 && i < d.n; i++) {
		if (is_source(&d.ch[i])) {
			rv = drain_source(&d, i);
		}
	}
	for (i = 0; rv == 0 && i < d.n; i++) {
		if (is_target(&d.ch[i])) {
			rv = drain_target(&d, i);
		}
	}
	if (rv != 0) {
		/* The session failed (or never opened): try again later. */
		answer_rest(&d, res->error);
	} else {
		/* Nothing should be left; never leave a change silent. */
		answer_rest(&d, "the worker did not carry out this change");
		rv = d.sink_rv != 0 ? res->status : ERR_OK;
	}
out:
	if (d.b != NULL) {
		res->nbatches = sync_batcher_nbatches(d.b);
	}
	log_info("job=%llu event=drain changes=%zu done=%u sent=%u retry=%u "
	         "dead=%u uncertain=%u",
	    (unsigned long long)job->job_id, d.n, d.counts[CHANGE_OUT_DONE],
	    d.counts[CHANGE_OUT_SENT], d.counts[CHANGE_OUT_RETRY],
	    d.counts[CHANGE_OUT_DEAD], d.counts[CHANGE_OUT_UNCERTAIN]);
	sync_batcher_free(&d.b);
	imap_session_release(conns, job, &d.s, res);
	free(d.ch);
	free(d.grp);
	return (rv);
}
