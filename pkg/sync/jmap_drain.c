/*
 * jmap_drain.c: the drain job of a JMAP account (docs/drain.md "Worker",
 * RFC 8621 Email/set, Email/import): local changes carried to the
 * server. A change names its Email by remote_id (the Email id) and its
 * mailboxes by full name; one Mailbox/get maps names to ids.
 *
 *   1. Mailbox/get (sync_jmap_get_mailboxes).
 *   2. Sends not yet submitted (jmap_drain_send.c), each its own request
 *      and its own result batch. A send at step 1 cannot happen for JMAP
 *      (the Sent copy is moved by the submission itself): done.
 *   3. Flag changes as Email/set updates, packed (jdrain_pack) under the
 *      session's maxObjectsInSet, maxCallsInRequest and maxSizeRequest:
 *      a large drain is several calls and requests; several changes to
 *      one Email go in successive calls (rounds) so the server applies
 *      them in order. Each change's result comes from its own updated /
 *      notUpdated entry.
 *   4. Moves, deletes to a mailbox and delete --expunge
 *      (jmap_drain_expunge.c): Email/get of mailboxIds (with the state of
 *      that same answer), a decision on what the server holds (the
 *      source gone: dead, or done when already in the destination), then
 *      one Email/set with ifInState = that state. stateMismatch (a change
 *      between the read and the set) reads again once; a second one:
 *      retry. A move is its Email's last change in a job (the lease stops
 *      there), so running it after the flags keeps each Email's order.
 *   5. Appends (jmap_drain_append.c): Email/query for the Message-ID in
 *      the target mailbox (found: done, nothing imported), else upload +
 *      Email/import.
 *
 * Results are flushed after each server answer. A job-level failure (the
 * connection, HTTP, auth) answers every change still open with `retry`
 * (a send that may have been submitted was answered `uncertain` before)
 * and fails the job with res filled, as the IMAP drain does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap_drain_int.h"

/* Results -------------------------------------------------------------- */

static struct proto_str
pstr(const char *s)
{
	struct proto_str p = { s, s != NULL ? strlen(s) : 0 };

	return (p);
}

void
jdrain_answer(struct jdrain *d, size_t i, uint8_t outcome, const char *error,
    const char *mailbox, const char *remote_id)
{
	struct proto_change_result r;
	char text[SYNC_MAX_ERROR];
	int rv;

	if (d->answered[i]) {
		return;
	}
	d->answered[i] = true;
	d->counts[outcome]++;
	if (d->sink_rv != 0) {
		return;
	}
	memset(&r, 0, sizeof(r));
	r.id = d->job->changes[i].id;
	r.outcome = outcome;
	if (error != NULL) {
		drain_text(text, sizeof(text), "%s", error);
		r.error = pstr(text);
	}
	if (outcome == CHANGE_OUT_DONE) {
		r.mailbox = pstr(mailbox);
		r.remote_id = pstr(remote_id);
	}
	rv = sync_batcher_add_change_result(d->b, &r);
	if (rv != 0) {
		d->sink_rv = rv;
	}
}

void
jdrain_answer_err(
    struct jdrain *d, size_t i, uint8_t outcome, const char *fmt, ...)
{
	char raw[SYNC_MAX_ERROR];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	jdrain_answer(d, i, outcome, raw, NULL, NULL);
}

int
jdrain_flush(struct jdrain *d)
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

const char *
jdrain_mailbox_id(const struct jdrain *d, struct proto_str name)
{
	const struct sync_jmap_mailbox *m;

	if (name.p == NULL || name.len == 0) {
		return (NULL);
	}
	m = sync_jmap_mailbox_by_name(&d->mb, name.p, name.len);
	return (m != NULL ? m->id : NULL);
}

/* Change i's Email id as a NUL-terminated copy in buf (cap bytes); ""
 * when it has none or it does not fit. */
const char *
jdrain_email_id(const struct jdrain *d, size_t i, char *buf, size_t cap)
{
	struct proto_str id = d->job->changes[i].remote_id;

	if (id.p == NULL || id.len == 0 || id.len >= cap
	    || memchr(id.p, '\0', id.len) != NULL) {
		return ("");
	}
	memcpy(buf, id.p, id.len);
	buf[id.len] = '\0';
	return (buf);
}

/* Sends a request (calls borrowed): 0 with *resp_r (the caller
 * json_decref()s it), or a job-level error with res filled. */
int
jdrain_request(
    struct jdrain *d, json_t *calls, bool submission, json_t **resp_r)
{
	struct jmap_err e;
	int rv;

	memset(&e, 0, sizeof(e));
	*resp_r = NULL;
	rv = jmap_call(d->cl, calls, submission, resp_r, &e);
	if (rv != 0) {
		return (sync_jmap_fail(d->res, &e));
	}
	return (ERR_OK);
}

/* Answers each change of call c from an Email/set answer (args, borrowed)
 * or, args NULL, from its method error (type, text). A move or delete to
 * a mailbox is done in its to_mailbox, keyed by the Email id. */
void
jdrain_answer_set(struct jdrain *d, const struct jdrain_call *c, json_t *args,
    const char *type, const char *text)
{
	json_t *updated, *notup, *destroyed, *notdes, *v;
	char ibuf[JDRAIN_MAX_ID], etype[64], etext[SYNC_MAX_ERROR];
	size_t k, j;

	updated = json_object_get(args, "updated");
	notup = json_object_get(args, "notUpdated");
	destroyed = json_object_get(args, "destroyed");
	notdes = json_object_get(args, "notDestroyed");
	for (k = 0; k < c->n; k++) {
		size_t i = c->v[k].i;
		const struct proto_change *ch = &d->job->changes[i];
		const char *id = jdrain_email_id(d, i, ibuf, sizeof(ibuf));
		bool ok = false;
		json_t *err = NULL;

		if (args == NULL) {
			jdrain_answer_err(
			    d, i, jdrain_error_outcome(type), "%s", text);
			continue;
		}
		if (c->v[k].patch != NULL) {
			ok = json_object_get(updated, id) != NULL;
			err = json_object_get(notup, id);
		} else {
			json_array_foreach(destroyed, j, v)
			{
				const char *s = json_string_value(v);

				ok = ok || (s != NULL && strcmp(s, id) == 0);
			}
			err = json_object_get(notdes, id);
		}
		if (err != NULL) {
			jdrain_error_text(err, "Email/set", etype,
			    sizeof(etype), etext, sizeof(etext));
			if (strcmp(etype, "notFound") == 0) {
				jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
				    "Email %s no longer exists on the server "
				    "(destroyed or moved by another client)",
				    id);
			} else {
				jdrain_answer(d, i,
				    jdrain_error_outcome(etype), etext, NULL,
				    NULL);
			}
		} else if (!ok) {
			jdrain_answer_err(d, i, CHANGE_OUT_RETRY,
			    "Email/set: the server did not answer for Email "
			    "%s",
			    id);
		} else if (ch->kind == CHANGE_FLAG || ch->expunge) {
			jdrain_answer(d, i, CHANGE_OUT_DONE, NULL, NULL, NULL);
		} else {
			char mbox[1024];

			snprintf(mbox, sizeof(mbox), "%.*s",
			    (int)ch->to_mailbox.len, ch->to_mailbox.p);
			jdrain_answer(d, i, CHANGE_OUT_DONE, NULL, mbox, id);
		}
	}
}

void
jdrain_call_release(struct jdrain_call *c)
{
	size_t k;

	for (k = 0; k < c->n; k++) {
		json_decref(c->v[k].patch);
	}
	free(c->v);
	json_decref(c->update);
	json_decref(c->destroy);
	memset(c, 0, sizeof(*c));
}

/* Adds change i (patch taken; NULL: destroy) to call c. */
int
jdrain_call_add(
    struct jdrain_call *c, size_t i, const char *id, json_t *patch, size_t cap)
{
	if (c->v == NULL) {
		c->v = calloc(cap, sizeof(*c->v));
		c->update = json_object();
		c->destroy = json_array();
		if (c->v == NULL || c->update == NULL || c->destroy == NULL) {
			json_decref(patch);
			return (ERR_NOMEM);
		}
	}
	c->v[c->n].i = i;
	c->v[c->n].patch = patch;
	c->n++;
	if (patch != NULL) {
		return (json_object_set(c->update, id, patch) == 0
		        ? ERR_OK
		        : ERR_NOMEM);
	}
	return (json_array_append_new(c->destroy, json_string(id)) == 0
	        ? ERR_OK
	        : ERR_NOMEM);
}

/* The Email/set method call of c, call id cid; NULL on ERR_NOMEM. */
json_t *
jdrain_call_json(const struct jdrain *d, const struct jdrain_call *c,
    const char *cid, const char *if_in_state)
{
	json_t *args = json_pack("{s:s, s:O, s:O}", "accountId",
	    d->s->account_id, "update", c->update, "destroy", c->destroy);

	if (args != NULL && if_in_state != NULL
	    && json_object_set_new(args, "ifInState", json_string(if_in_state))
	        != 0) {
		json_decref(args);
		return (NULL);
	}
	return (args != NULL ? json_pack("[s, o, s]", "Email/set", args, cid)
	                     : NULL);
}

/* Sends calls c[0..n) in one request and answers their changes. */
static int
run_calls(struct jdrain *d, struct jdrain_call *c, size_t n)
{
	json_t *calls = json_array(), *resp = NULL, *args;
	struct jmap_err e;
	char cid[32], type[64];
	size_t k;
	int rv = calls != NULL ? ERR_OK : ERR_NOMEM;

	for (k = 0; rv == 0 && k < n; k++) {
		snprintf(cid, sizeof(cid), "u%zu", k);
		if (json_array_append_new(
		        calls, jdrain_call_json(d, &c[k], cid, NULL))
		    != 0) {
			rv = ERR_NOMEM;
		}
	}
	if (rv != 0) {
		json_decref(calls);
		return (sync_fail(d->res, rv, RETRY_LATER, "out of memory"));
	}
	rv = jdrain_request(d, calls, false, &resp);
	json_decref(calls);
	for (k = 0; rv == 0 && k < n; k++) {
		snprintf(cid, sizeof(cid), "u%zu", k);
		memset(&e, 0, sizeof(e));
		type[0] = '\0';
		if (jmap_response(
		        resp, cid, "Email/set", &args, type, sizeof(type), &e)
		    == 0) {
			jdrain_answer_set(d, &c[k], args, NULL, NULL);
		} else {
			jdrain_answer_set(d, &c[k], NULL,
			    type[0] != '\0' ? type : "serverFail", e.text);
		}
	}
	json_decref(resp);
	return (rv != 0 ? rv : jdrain_flush(d));
}

/* The patch of flag change i, or NULL with the change answered. */
static json_t *
flag_patch(struct jdrain *d, size_t i)
{
	json_t *patch = NULL;
	int rv;

	rv = jdrain_patch(&d->job->changes[i], NULL, NULL, &patch);
	if (rv == ERR_NOTFOUND) {
		/* Only \Deleted: JMAP has no keyword for it. */
		jdrain_answer(d, i, CHANGE_OUT_DONE, NULL, NULL, NULL);
	} else if (rv == ERR_INVAL) {
		jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
		    "a keyword of the change is not a valid JMAP keyword");
	} else if (rv != 0) {
		jdrain_answer_err(d, i, CHANGE_OUT_RETRY, "%s", err_str(rv));
	}
	return (patch);
}

/* The flag changes of step 3, planned: object k is change i[k] with its
 * patch (owned until handed to a call), its bytes and its round. */
struct jflags {
	size_t *idx, *i, *bytes;
	const struct proto_change **chg;
	uint32_t *round, *oround;
	json_t **patch;
	struct jdrain_slot *slot;
	struct jdrain_call *cs;
	size_t n, m, ncalls;
};

static void
jflags_release(struct jflags *f)
{
	size_t k;

	for (k = 0; f->cs != NULL && k < f->ncalls; k++) {
		jdrain_call_release(&f->cs[k]);
	}
	for (k = 0; f->patch != NULL && k < f->m; k++) {
		json_decref(f->patch[k]);
	}
	free(f->idx);
	free(f->i);
	free(f->bytes);
	free(f->chg);
	free(f->round);
	free(f->oround);
	free(f->patch);
	free(f->slot);
	free(f->cs);
}

/* Builds the patches of the open flag changes, round by round (a change
 * that cannot be sent is answered), and packs them under lim. */
static int
jflags_plan(struct jdrain *d, const struct jdrain_limits *lim,
    struct jflags *f, size_t *nreq_r)
{
	char ibuf[JDRAIN_MAX_ID];
	uint32_t nrounds, r;
	size_t i, k, b;
	json_t *patch;
	int rv = ERR_OK;

	*nreq_r = 0;
	f->idx = calloc(d->n + 1, sizeof(*f->idx));
	f->i = calloc(d->n + 1, sizeof(*f->i));
	f->bytes = calloc(d->n + 1, sizeof(*f->bytes));
	f->chg = calloc(d->n + 1, sizeof(*f->chg));
	f->round = calloc(d->n + 1, sizeof(*f->round));
	f->oround = calloc(d->n + 1, sizeof(*f->oround));
	f->patch = calloc(d->n + 1, sizeof(*f->patch));
	f->slot = calloc(d->n + 1, sizeof(*f->slot));
	if (f->idx == NULL || f->i == NULL || f->bytes == NULL
	    || f->chg == NULL || f->round == NULL || f->oround == NULL
	    || f->patch == NULL || f->slot == NULL) {
		return (ERR_NOMEM);
	}
	for (i = 0; i < d->n; i++) {
		if (!d->answered[i]
		    && d->job->changes[i].kind == CHANGE_FLAG) {
			f->idx[f->n] = i;
			f->chg[f->n++] = &d->job->changes[i];
		}
	}
	nrounds = jdrain_rounds(f->chg, f->n, f->round, &rv);
	for (r = 0; rv == 0 && r < nrounds; r++) {
		for (k = 0; rv == 0 && k < f->n; k++) {
			if (f->round[k] != r || d->answered[f->idx[k]]) {
				continue;
			}
			patch = flag_patch(d, f->idx[k]);
			if (patch == NULL) {
				continue;
			}
			b = jdrain_entry_bytes(
			    jdrain_email_id(d, f->idx[k], ibuf, sizeof(ibuf)),
			    patch);
			if (b == 0) {
				json_decref(patch);
				rv = ERR_NOMEM;
			} else if (!jdrain_fits(lim, b)) {
				json_decref(patch);
				jdrain_answer_err(d, f->idx[k],
				    CHANGE_OUT_DEAD,
				    "its Email/set patch (%zu bytes) alone "
				    "exceeds the server's maxSizeRequest (%zu "
				    "bytes)",
				    b, lim->bytes);
			} else {
				f->i[f->m] = f->idx[k];
				f->patch[f->m] = patch;
				f->bytes[f->m] = b;
				f->oround[f->m++] = r;
			}
		}
	}
	if (rv != 0) {
		return (rv);
	}
	*nreq_r
	    = jdrain_pack(f->bytes, f->oround, f->m, lim, f->slot, &f->ncalls);
	f->cs = calloc(f->ncalls + 1, sizeof(*f->cs));
	if (f->cs == NULL) {
		return (ERR_NOMEM);
	}
	for (k = 0; rv == 0 && k < f->m; k++) {
		patch = f->patch[k];
		f->patch[k] = NULL; /* taken by the call, also on error */
		rv = jdrain_call_add(&f->cs[f->slot[k].call], f->i[k],
		    jdrain_email_id(d, f->i[k], ibuf, sizeof(ibuf)), patch,
		    lim->objects);
	}
	return (rv);
}

/*
 * Step 3: every flag change as Email/set updates, packed by jdrain_pack
 * under the session's maxObjectsInSet, maxCallsInRequest and
 * maxSizeRequest (a large drain is several requests).
 */
static int
drain_flags(struct jdrain *d)
{
	struct jdrain_limits lim;
	struct jflags f;
	size_t nreq = 0, k, e;
	int rv;

	memset(&f, 0, sizeof(f));
	rv = jdrain_limits_of(d->s, false, &lim);
	if (rv == 0) {
		rv = jflags_plan(d, &lim, &f, &nreq);
	}
	if (rv != 0) {
		rv = sync_fail(d->res, rv, RETRY_LATER, "out of memory");
	}
	/* Changes answered while planning (dead) go out first. */
	if (rv == 0) {
		rv = jdrain_flush(d);
	}
	/* The objects of one request are consecutive, and so are its calls. */
	for (k = 0; rv == 0 && k < f.m; k = e) {
		for (e = k; e < f.m && f.slot[e].request == f.slot[k].request;
		     e++) { }
		rv = run_calls(d, &f.cs[f.slot[k].call],
		    f.slot[e - 1].call - f.slot[k].call + 1);
	}
	if (nreq > 1) {
		log_debug(
		    "job=%llu event=jmap_drain_split flags=%zu calls=%zu "
		    "requests=%zu",
		    (unsigned long long)d->job->job_id, f.m, f.ncalls, nreq);
	}
	jflags_release(&f);
	return (rv);
}

/* The job ---------------------------------------------------------------- */

/* Everything still unanswered: retry, with why. */
static void
answer_rest(struct jdrain *d, const char *why)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		jdrain_answer_err(d, i, CHANGE_OUT_RETRY, "%s", why);
	}
	(void)jdrain_flush(d);
}

/* Answers the changes that cannot run at all (before any I/O). */
static void
check_changes(struct jdrain *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		const struct proto_change *c = &d->job->changes[i];

		if (c->kind > CHANGE_SEND) {
			jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "unknown change kind %u", c->kind);
		} else if (c->kind == CHANGE_APPEND
		    && c->to_mailbox.len == 0) {
			jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "the change has no target mailbox");
		} else if ((c->kind == CHANGE_FLAG || c->kind == CHANGE_MOVE
		               || c->kind == CHANGE_DELETE)
		    && (c->remote_id.len == 0
		        || c->remote_id.len >= JDRAIN_MAX_ID)) {
			jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "the message has no JMAP Email id");
		} else if ((c->kind == CHANGE_MOVE
		               || (c->kind == CHANGE_DELETE && !c->expunge))
		    && c->to_mailbox.len == 0) {
			jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "the change has no destination mailbox");
		} else if (c->kind == CHANGE_SEND && c->step != 0) {
			/* Submitted by an earlier attempt, which also moved it
			 * to Sent (onSuccessUpdateEmail): nothing is left. */
			jdrain_answer(d, i, CHANGE_OUT_DONE, NULL, NULL, NULL);
		}
	}
}

/* Step 2: the sends. */
static int
drain_sends(struct jdrain *d)
{
	json_t *ids = NULL;
	size_t i;
	bool any = false;
	int rv = ERR_OK;

	for (i = 0; i < d->n; i++) {
		any = any
		    || (!d->answered[i]
		        && d->job->changes[i].kind == CHANGE_SEND);
	}
	if (!any) {
		return (ERR_OK);
	}
	if (d->s->submission) {
		rv = jdrain_identities(d, &ids);
	}
	for (i = 0; rv == 0 && i < d->n; i++) {
		if (d->answered[i] || d->job->changes[i].kind != CHANGE_SEND) {
			continue; /* (all answered when Identity/get failed) */
		}
		if (!d->s->submission) {
			jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "the JMAP server does not offer mail submission "
			    "(urn:ietf:params:jmap:submission) to this "
			    "account");
		} else {
			rv = jdrain_send(d, i, ids);
		}
		/* A send's result goes out before anything else is tried. */
		if (rv == 0) {
			rv = jdrain_flush(d);
		}
	}
	json_decref(ids);
	return (rv);
}

int
sync_jmap_drain(const struct proto_job_run *job, const struct sync_limits *l,
    struct sync_conns *conns, const struct sync_sink *sink,
    struct sync_result *res)
{
	struct jdrain d;
	size_t i;
	bool need = false;
	int rv;

	memset(res, 0, sizeof(*res));
	memset(&d, 0, sizeof(d));
	d.job = job;
	d.lim = l;
	d.res = res;
	d.n = job->nchanges;
	d.answered = calloc(d.n + 1, sizeof(*d.answered));
	if (d.answered == NULL) {
		rv = sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory");
		goto out;
	}
	rv = sync_batcher_new(job->job_id, job->attempt, l, sink, &d.b);
	if (rv != 0) {
		rv = sync_fail(
		    res, rv, RETRY_LATER, "batcher: %s", err_str(rv));
		goto out;
	}
	check_changes(&d);
	for (i = 0; i < d.n; i++) {
		need = need || !d.answered[i];
	}
	if (need) {
		rv = sync_jmap_open(job, l, conns, &d.cl, res);
		if (rv == 0) {
			d.s = jmap_client_session(d.cl);
			rv = sync_jmap_get_mailboxes(d.cl, &d.mb, res);
		}
	}
	/* Nothing to carry out (a lease whose changes all wait for their
	 * backoff, or all answered above): no session, no request. */
	if (rv == 0 && need) {
		rv = drain_sends(&d);
	}
	if (rv == 0 && need) {
		rv = drain_flags(&d);
	}
	if (rv == 0 && need) {
		rv = jdrain_guarded(&d);
	}
	for (i = 0; rv == 0 && need && i < d.n; i++) {
		if (!d.answered[i] && job->changes[i].kind == CHANGE_APPEND) {
			rv = jdrain_append(&d, i);
		}
	}
	if (rv != 0) {
		/* The server or the store failed: try again later. */
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
	log_info("job=%llu event=drain protocol=jmap changes=%zu done=%u "
	         "retry=%u dead=%u uncertain=%u",
	    (unsigned long long)job->job_id, d.n, d.counts[CHANGE_OUT_DONE],
	    d.counts[CHANGE_OUT_RETRY], d.counts[CHANGE_OUT_DEAD],
	    d.counts[CHANGE_OUT_UNCERTAIN]);
	sync_batcher_free(&d.b);
	sync_jmap_mailboxes_release(&d.mb);
	sync_jmap_close(conns, job, &d.cl, res);
	free(d.answered);
	return (rv);
}
