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
 *   3. Flag, move and delete-to-mailbox changes as Email/set updates:
 *      up to maxObjectsInSet per call, up to maxCallsInRequest calls per
 *      request; several changes to one Email go in successive calls
 *      (rounds) so the server applies them in order. Each change's result
 *      comes from its own updated / notUpdated entry.
 *   4. delete --expunge: Email/get of mailboxIds (with the state of that
 *      same answer), then one Email/set with ifInState = that state: an
 *      Email also in other mailboxes only leaves the source (patch), one
 *      only there is destroyed. stateMismatch (something changed between
 *      the read and the destroy) reads again once; a second one: retry.
 *   5. Appends: Email/query for the Message-ID in the target mailbox
 *      (found: done, nothing imported), else upload + Email/import.
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

/* Emails in one Email/set or Email/get call at most (also capped by the
 * session's maxObjectsInSet / maxObjectsInGet): keeps one request well
 * under maxSizeRequest (a patch is about 100 bytes). */
#define JDRAIN_MAX_OBJECTS 500u

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
static const char *
email_id(const struct jdrain *d, size_t i, char *buf, size_t cap)
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

#define JDRAIN_MAX_ID 256u /* longest Email id carried (RFC 8620: 255) */

/* A change of the update or expunge step, with its patch. */
struct jcall_chg {
	size_t i; /* index in the job */
	json_t *patch; /* owned; NULL for a destroy */
};

/* One Email/set call being built. */
struct jcall {
	json_t *update; /* id -> patch */
	json_t *destroy;
	struct jcall_chg *v;
	size_t n;
};

/* Sends a request (calls borrowed): 0 with *resp_r (the caller
 * json_decref()s it), or a job-level error with res filled. */
static int
call_one(struct jdrain *d, json_t *calls, bool submission, json_t **resp_r)
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
static void
answer_set(struct jdrain *d, const struct jcall *c, json_t *args,
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
		const char *id = email_id(d, i, ibuf, sizeof(ibuf));
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

static void
jcall_release(struct jcall *c)
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

static size_t
objects_per_call(const struct jdrain *d, bool get)
{
	size_t m = get ? d->s->max_objects_in_get : d->s->max_objects_in_set;

	if (get && d->s->max_objects_in_set < m) {
		m = d->s->max_objects_in_set; /* the expunge's Email/set */
	}
	return (m == 0 || m > JDRAIN_MAX_OBJECTS ? JDRAIN_MAX_OBJECTS : m);
}

/* Adds change i (patch taken; NULL: destroy) to call c. */
static int
jcall_add(struct jcall *c, size_t i, const char *id, json_t *patch, size_t cap)
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
static json_t *
jcall_json(const struct jdrain *d, const struct jcall *c, const char *cid,
    const char *if_in_state)
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
run_calls(struct jdrain *d, struct jcall *c, size_t n)
{
	json_t *calls = json_array(), *resp = NULL, *args;
	struct jmap_err e;
	char cid[32], type[64];
	size_t k;
	int rv = calls != NULL ? ERR_OK : ERR_NOMEM;

	for (k = 0; rv == 0 && k < n; k++) {
		snprintf(cid, sizeof(cid), "u%zu", k);
		if (json_array_append_new(
		        calls, jcall_json(d, &c[k], cid, NULL))
		    != 0) {
			rv = ERR_NOMEM;
		}
	}
	if (rv != 0) {
		json_decref(calls);
		return (sync_fail(d->res, rv, RETRY_LATER, "out of memory"));
	}
	rv = call_one(d, calls, false, &resp);
	json_decref(calls);
	for (k = 0; rv == 0 && k < n; k++) {
		snprintf(cid, sizeof(cid), "u%zu", k);
		memset(&e, 0, sizeof(e));
		type[0] = '\0';
		if (jmap_response(
		        resp, cid, "Email/set", &args, type, sizeof(type), &e)
		    == 0) {
			answer_set(d, &c[k], args, NULL, NULL);
		} else {
			answer_set(d, &c[k], NULL,
			    type[0] != '\0' ? type : "serverFail", e.text);
		}
	}
	json_decref(resp);
	return (rv != 0 ? rv : jdrain_flush(d));
}

/* The patch of update change i, or NULL with the change answered. */
static json_t *
update_patch(struct jdrain *d, size_t i)
{
	const struct proto_change *c = &d->job->changes[i];
	const char *src = NULL, *dst = NULL;
	json_t *patch = NULL;
	int rv;

	if (c->kind != CHANGE_FLAG) {
		dst = jdrain_mailbox_id(d, c->to_mailbox);
		src = jdrain_mailbox_id(d, c->mailbox);
		if (dst == NULL) {
			jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "the destination mailbox '%.*s' does not exist on "
			    "the server",
			    (int)c->to_mailbox.len,
			    c->to_mailbox.p != NULL ? c->to_mailbox.p : "");
			return (NULL);
		}
		if (src == NULL) {
			jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "the source mailbox '%.*s' no longer exists on "
			    "the server",
			    (int)c->mailbox.len,
			    c->mailbox.p != NULL ? c->mailbox.p : "");
			return (NULL);
		}
	}
	rv = jdrain_patch(c, src, dst, &patch);
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

static bool
is_update(const struct jdrain *d, size_t i)
{
	const struct proto_change *c = &d->job->changes[i];

	return (!d->answered[i]
	    && (c->kind == CHANGE_FLAG || c->kind == CHANGE_MOVE
	        || (c->kind == CHANGE_DELETE && !c->expunge)));
}

/* Calls being built: a growable array. */
struct jcalls {
	struct jcall *v;
	size_t n, cap;
};

/* Starts a new (empty) call at the end of cs unless the last is empty. */
static int
jcalls_next(struct jcalls *cs)
{
	if (cs->n > 0 && cs->v[cs->n - 1].n == 0) {
		return (ERR_OK);
	}
	if (cs->n == cs->cap) {
		size_t ncap = cs->cap != 0 ? cs->cap * 2 : 8;
		struct jcall *v = realloc(cs->v, ncap * sizeof(*v));

		if (v == NULL) {
			return (ERR_NOMEM);
		}
		cs->v = v;
		cs->cap = ncap;
	}
	memset(&cs->v[cs->n++], 0, sizeof(struct jcall));
	return (ERR_OK);
}

/* Step 3: every flag, move and delete-to-mailbox change. */
static int
drain_updates(struct jdrain *d)
{
	const struct proto_change **chg = NULL;
	struct jcalls cs = { NULL, 0, 0 };
	size_t *idx = NULL, n = 0, per, maxc, i, k;
	uint32_t *round = NULL, nrounds, r;
	char ibuf[JDRAIN_MAX_ID];
	int rv = ERR_OK;

	per = objects_per_call(d, false);
	maxc
	    = d->s->max_calls_in_request != 0 ? d->s->max_calls_in_request : 1;
	idx = calloc(d->n + 1, sizeof(*idx));
	chg = calloc(d->n + 1, sizeof(*chg));
	round = calloc(d->n + 1, sizeof(*round));
	if (idx == NULL || chg == NULL || round == NULL) {
		rv = ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < d->n; i++) {
		if (is_update(d, i)) {
			idx[n] = i;
			chg[n++] = &d->job->changes[i];
		}
	}
	nrounds = jdrain_rounds(chg, n, round, &rv);
	/* Each round starts a call: it must follow the previous round's. */
	for (r = 0; rv == 0 && r < nrounds; r++) {
		rv = jcalls_next(&cs);
		for (k = 0; rv == 0 && k < n; k++) {
			json_t *patch;

			if (round[k] != r || d->answered[idx[k]]) {
				continue;
			}
			patch = update_patch(d, idx[k]);
			if (patch == NULL) {
				continue;
			}
			if (cs.v[cs.n - 1].n == per) {
				rv = jcalls_next(&cs);
			}
			if (rv == 0) {
				rv = jcall_add(&cs.v[cs.n - 1], idx[k],
				    email_id(d, idx[k], ibuf, sizeof(ibuf)),
				    patch, per);
			} else {
				json_decref(patch);
			}
		}
	}
	if (cs.n > 0 && cs.v[cs.n - 1].n == 0) {
		cs.n--;
	}
out:
	if (rv != 0) {
		rv = sync_fail(d->res, rv, RETRY_LATER, "out of memory");
	}
	/* Changes answered while planning (dead) go out first. */
	if (rv == 0) {
		rv = jdrain_flush(d);
	}
	for (i = 0; rv == 0 && i < cs.n; i += maxc) {
		rv = run_calls(d, &cs.v[i], cs.n - i < maxc ? cs.n - i : maxc);
	}
	for (i = 0; i < cs.n; i++) {
		jcall_release(&cs.v[i]);
	}
	free(cs.v);
	free(idx);
	free(chg);
	free(round);
	return (rv);
}

/* Expunges ------------------------------------------------------------- */

/* Reads the mailboxIds of the expunges x[0..n) and plans each: answered
 * (gone, moved away), a patch leaving the source, or a destroy, into c.
 * *state_r: the Email state of that answer (malloc'd). */
static int
expunge_read(struct jdrain *d, const size_t *x, size_t n, struct jcall *c,
    char **state_r)
{
	json_t *ids = json_array(), *calls = NULL, *resp = NULL, *args, *list;
	json_t *o;
	struct jmap_err e;
	char ibuf[JDRAIN_MAX_ID], type[64];
	const char *state;
	size_t k, j;
	int rv;

	*state_r = NULL;
	for (k = 0; ids != NULL && k < n; k++) {
		if (json_array_append_new(ids,
		        json_string(email_id(d, x[k], ibuf, sizeof(ibuf))))
		    != 0) {
			json_decref(ids);
			ids = NULL;
		}
	}
	if (ids != NULL) {
		calls = json_pack("[[s, {s:s, s:o, s:[s]}, s]]", "Email/get",
		    "accountId", d->s->account_id, "ids", ids, "properties",
		    "mailboxIds", "g");
	}
	if (calls == NULL) {
		return (sync_fail(
		    d->res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	rv = call_one(d, calls, false, &resp);
	json_decref(calls);
	if (rv != 0) {
		return (rv);
	}
	memset(&e, 0, sizeof(e));
	type[0] = '\0';
	if (jmap_response(
	        resp, "g", "Email/get", &args, type, sizeof(type), &e)
	    != 0) {
		for (k = 0; k < n; k++) {
			jdrain_answer_err(d, x[k],
			    jdrain_error_outcome(
			        type[0] != '\0' ? type : NULL),
			    "%s", e.text);
		}
		json_decref(resp);
		return (ERR_OK);
	}
	state = json_string_value(json_object_get(args, "state"));
	list = json_object_get(args, "list");
	*state_r = state != NULL ? strdup(state) : NULL;
	for (k = 0; rv == 0 && k < n; k++) {
		const struct proto_change *ch = &d->job->changes[x[k]];
		const char *id = email_id(d, x[k], ibuf, sizeof(ibuf));
		const char *src = jdrain_mailbox_id(d, ch->mailbox);
		json_t *mids = NULL, *patch;

		json_array_foreach(list, j, o)
		{
			const char *oid
			    = json_string_value(json_object_get(o, "id"));

			if (oid != NULL && strcmp(oid, id) == 0) {
				mids = json_object_get(o, "mailboxIds");
			}
		}
		if (mids == NULL) {
			jdrain_answer_err(d, x[k], CHANGE_OUT_DEAD,
			    "Email %s no longer exists on the server "
			    "(destroyed or moved by another client)",
			    id);
		} else if (src == NULL || json_object_get(mids, src) == NULL) {
			jdrain_answer_err(d, x[k], CHANGE_OUT_DEAD,
			    "Email %s is no longer in mailbox '%.*s' on the "
			    "server (moved by another client)",
			    id, (int)ch->mailbox.len,
			    ch->mailbox.p != NULL ? ch->mailbox.p : "");
		} else if (json_object_size(mids) > 1) {
			rv = jdrain_patch(ch, src, NULL, &patch);
			if (rv == 0) {
				rv = jcall_add(c, x[k], id, patch, n);
			}
		} else {
			rv = jcall_add(c, x[k], id, NULL, n);
		}
	}
	json_decref(resp);
	if (rv == 0 && c->n > 0 && *state_r == NULL) {
		rv = ERR_NOMEM;
	}
	if (rv != 0) {
		free(*state_r);
		*state_r = NULL;
		return (sync_fail(d->res, rv, RETRY_LATER, "%s", err_str(rv)));
	}
	return (ERR_OK);
}

/*
 * The expunges x[0..n): read, then Email/set guarded by the read's
 * state. The job's own Email state would not do as the guard: the
 * updates of step 3 (and earlier drains) moved the account past it, so
 * it would always mismatch; the read's state is what the decision
 * (destroy vs. leave the source) was made on, and any change after it
 * makes the server refuse the destroy.
 */
static int
drain_expunge_chunk(struct jdrain *d, size_t *x, size_t n)
{
	struct jcall c;
	json_t *calls, *resp, *args;
	struct jmap_err e;
	char *state = NULL, type[64];
	size_t k;
	int pass, rv = ERR_OK;
	bool again = true;

	for (pass = 0; rv == 0 && again && pass < 2; pass++) {
		again = false;
		resp = NULL;
		memset(&c, 0, sizeof(c));
		rv = expunge_read(d, x, n, &c, &state);
		if (rv == 0 && c.n > 0) {
			calls = json_array();
			if (calls == NULL
			    || json_array_append_new(
			           calls, jcall_json(d, &c, "x", state))
			        != 0) {
				rv = sync_fail(d->res, ERR_NOMEM, RETRY_LATER,
				    "out of memory");
			}
			if (rv == 0) {
				rv = call_one(d, calls, false, &resp);
			}
			json_decref(calls);
		}
		memset(&e, 0, sizeof(e));
		type[0] = '\0';
		if (rv != 0 || c.n == 0) {
			/* nothing to send, or the job failed */
		} else if (jmap_response(resp, "x", "Email/set", &args, type,
		               sizeof(type), &e)
		    == 0) {
			answer_set(d, &c, args, NULL, NULL);
		} else if (strcmp(type, "stateMismatch") == 0 && pass == 0) {
			/* Changed since the read: read those again. */
			for (k = 0; k < c.n; k++) {
				x[k] = c.v[k].i;
			}
			n = c.n;
			again = true;
		} else {
			if (strcmp(type, "stateMismatch") == 0) {
				snprintf(e.text, sizeof(e.text),
				    "Email/set: stateMismatch twice: the "
				    "Email changed on the server while it was "
				    "being destroyed");
			}
			answer_set(d, &c, NULL,
			    type[0] != '\0' ? type : "serverFail", e.text);
		}
		json_decref(resp);
		jcall_release(&c);
		free(state);
		state = NULL;
		if (rv == 0) {
			rv = jdrain_flush(d);
		}
	}
	return (rv);
}

/* Step 4: every delete --expunge, in chunks. */
static int
drain_expunges(struct jdrain *d)
{
	size_t *x, n = 0, i, per = objects_per_call(d, true);
	int rv = ERR_OK;

	x = calloc(per, sizeof(*x));
	if (x == NULL) {
		return (sync_fail(
		    d->res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	for (i = 0; rv == 0 && i <= d->n; i++) {
		if (i < d->n && !d->answered[i]
		    && d->job->changes[i].kind == CHANGE_DELETE
		    && d->job->changes[i].expunge) {
			x[n++] = i;
		}
		if (n > 0 && (n == per || i == d->n)) {
			rv = drain_expunge_chunk(d, x, n);
			n = 0;
		}
	}
	free(x);
	return (rv);
}

/* Appends -------------------------------------------------------------- */

/*
 * Looks for the Email with change i's Message-ID in mailbox dst: *id_r
 * (malloc'd) when found. An Email/query answered with an error is not
 * fatal (the import follows, *id_r NULL): Cyrus 3.6 answers the header
 * filter without a search index (tests/e2e/test_jmap_drain.py checks),
 * and its Email ids are content hashes so that importing the same bytes
 * again gives the same Email, not a second one.
 */
static int
append_find(struct jdrain *d, size_t i, const char *dst, char **id_r)
{
	const struct proto_change *c = &d->job->changes[i];
	json_t *calls, *resp = NULL, *args;
	struct jmap_err e;
	char mid[DRAIN_MAX_MSGID + 1];
	const char *id;
	int rv;

	*id_r = NULL;
	if (c->header_message_id.p == NULL || c->header_message_id.len == 0
	    || c->header_message_id.len > DRAIN_MAX_MSGID) {
		return (ERR_OK);
	}
	snprintf(mid, sizeof(mid), "%.*s", (int)c->header_message_id.len,
	    c->header_message_id.p);
	calls = json_pack("[[s, {s:s, s:{s:s, s:[ss]}, s:i}, s]]",
	    "Email/query", "accountId", d->s->account_id, "filter",
	    "inMailbox", dst, "header", "Message-ID", mid, "limit", 1, "q");
	if (calls == NULL) {
		return (sync_fail(
		    d->res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	rv = call_one(d, calls, false, &resp);
	json_decref(calls);
	if (rv != 0) {
		return (rv);
	}
	memset(&e, 0, sizeof(e));
	if (jmap_response(resp, "q", "Email/query", &args, NULL, 0, &e) == 0) {
		id = json_string_value(
		    json_array_get(json_object_get(args, "ids"), 0));
		if (id != NULL) {
			*id_r = strdup(id);
			rv = *id_r != NULL ? ERR_OK : ERR_NOMEM;
		}
	} else {
		log_info("job=%llu event=drain_query_failed change=%llu "
		         "error=\"%s\"",
		    (unsigned long long)d->job->job_id,
		    (unsigned long long)c->id, e.text);
	}
	json_decref(resp);
	if (rv != 0) {
		return (sync_fail(d->res, rv, RETRY_LATER, "out of memory"));
	}
	return (ERR_OK);
}

/* Uploads change i's message as message/rfc822: *blob_r (malloc'd), or
 * NULL with the change answered dead (refused) or a job-level error. */
int
jdrain_upload(
    struct jdrain *d, size_t i, const char *data, size_t len, char **blob_r)
{
	struct jmap_err e;
	int rv;

	memset(&e, 0, sizeof(e));
	*blob_r = NULL;
	rv = jmap_upload(d->cl, data, len, "message/rfc822", blob_r, &e);
	if (rv != 0 && e.retry == RETRY_NEVER && rv != ERR_AUTH) {
		/* This message is refused (too large...): not the job. */
		jdrain_answer_err(d, i, CHANGE_OUT_DEAD, "upload: %s", e.text);
		return (ERR_OK);
	}
	if (rv != 0) {
		return (sync_jmap_fail(d->res, &e));
	}
	return (ERR_OK);
}

/* An append whose bytes the server already holds as Email id: that
 * Email is put in mailbox dst too, with the change's keywords added. */
static int
append_existing(struct jdrain *d, size_t i, const char *id, const char *dst)
{
	const struct proto_change *c = &d->job->changes[i];
	struct jcall call;
	struct proto_change add;
	json_t *patch = NULL, *box = NULL, *calls, *resp = NULL, *args, *v;
	struct jmap_err e;
	char type[64];
	const char *k;
	int rv;

	/* One patch: a flag change's keyword paths and a move's mailbox. */
	memset(&add, 0, sizeof(add));
	add.kind = CHANGE_FLAG;
	add.flags_add = c->flags_add;
	add.keywords_add = c->keywords_add;
	rv = jdrain_patch(&add, NULL, NULL, &patch);
	if (rv == ERR_NOTFOUND) {
		patch = json_object();
		rv = patch != NULL ? ERR_OK : ERR_NOMEM;
	}
	if (rv == 0) {
		add.kind = CHANGE_MOVE;
		rv = jdrain_patch(&add, NULL, dst, &box);
	}
	if (rv == 0) {
		json_object_foreach(box, k, v)
		{
			if (json_object_set(patch, k, v) != 0) {
				rv = ERR_NOMEM;
			}
		}
	}
	json_decref(box);
	memset(&call, 0, sizeof(call));
	if (rv == 0) {
		rv = jcall_add(&call, i, id, patch, 1);
		patch = NULL;
	}
	json_decref(patch);
	calls = rv == 0 ? json_pack("[o]", jcall_json(d, &call, "a", NULL))
	                : NULL;
	if (calls == NULL) {
		jcall_release(&call);
		return (sync_fail(
		    d->res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	rv = call_one(d, calls, false, &resp);
	json_decref(calls);
	if (rv == 0) {
		memset(&e, 0, sizeof(e));
		type[0] = '\0';
		if (jmap_response(
		        resp, "a", "Email/set", &args, type, sizeof(type), &e)
		    == 0) {
			answer_set(d, &call, args, NULL, NULL);
		} else {
			answer_set(d, &call, NULL,
			    type[0] != '\0' ? type : "serverFail", e.text);
		}
	}
	json_decref(resp);
	jcall_release(&call);
	return (rv);
}

/* Step 5: one append. */
static int
drain_append(struct jdrain *d, size_t i)
{
	const struct proto_change *c = &d->job->changes[i];
	json_t *kw = NULL, *calls = NULL, *resp = NULL, *args, *o;
	struct jmap_err e;
	char *found = NULL, *blob = NULL, mbox[1024], type[64];
	char etype[64], etext[SYNC_MAX_ERROR];
	const char *dst = jdrain_mailbox_id(d, c->to_mailbox), *id;
	int rv;

	snprintf(mbox, sizeof(mbox), "%.*s", (int)c->to_mailbox.len,
	    c->to_mailbox.p != NULL ? c->to_mailbox.p : "");
	if (dst == NULL) {
		jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
		    "the target mailbox '%s' does not exist on the server",
		    mbox);
		return (jdrain_flush(d));
	}
	if (c->rfc822.p == NULL || c->rfc822.len == 0) {
		jdrain_answer_err(
		    d, i, CHANGE_OUT_DEAD, "the change has no message");
		return (jdrain_flush(d));
	}
	if (jdrain_keywords(c->flags_add, c->keywords_add, &kw) != 0) {
		jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
		    "a keyword of the change is not a valid JMAP keyword");
		return (jdrain_flush(d));
	}
	rv = append_find(d, i, dst, &found);
	if (rv == 0 && found != NULL) {
		/* An earlier attempt landed. */
		jdrain_answer(d, i, CHANGE_OUT_DONE, NULL, mbox, found);
		goto out;
	}
	if (rv == 0) {
		rv = jdrain_upload(d, i, c->rfc822.p, c->rfc822.len, &blob);
	}
	if (rv != 0 || blob == NULL) {
		goto out;
	}
	calls = json_pack("[[s, {s:s, s:{s:{s:s, s:{s:b}, s:O}}}, s]]",
	    "Email/import", "accountId", d->s->account_id, "emails", "a",
	    "blobId", blob, "mailboxIds", dst, 1, "keywords", kw, "i");
	if (calls == NULL) {
		rv = sync_fail(
		    d->res, ERR_NOMEM, RETRY_LATER, "out of memory");
		goto out;
	}
	rv = call_one(d, calls, false, &resp);
	if (rv != 0) {
		goto out;
	}
	memset(&e, 0, sizeof(e));
	type[0] = '\0';
	if (jmap_response(
	        resp, "i", "Email/import", &args, type, sizeof(type), &e)
	    != 0) {
		jdrain_answer_err(
		    d, i, jdrain_error_outcome(type), "%s", e.text);
		goto out;
	}
	id = json_string_value(json_object_get(
	    json_object_get(json_object_get(args, "created"), "a"), "id"));
	o = json_object_get(json_object_get(args, "notCreated"), "a");
	if (id == NULL && o != NULL) {
		jdrain_error_text(o, "Email/import", etype, sizeof(etype),
		    etext, sizeof(etext));
		/* RFC 8620 5.3: the same Email exists (Cyrus: the same bytes,
		 * in any mailbox, and it is NOT added to this one). */
		id = json_string_value(json_object_get(o, "existingId"));
		if (id == NULL || strcmp(etype, "alreadyExists") != 0) {
			jdrain_answer(d, i, jdrain_error_outcome(etype), etext,
			    NULL, NULL);
			goto out;
		}
		rv = append_existing(d, i, id, dst);
		goto out;
	}
	if (id == NULL) {
		jdrain_answer_err(d, i, CHANGE_OUT_RETRY,
		    "Email/import: the server did not answer for the message");
	} else {
		jdrain_answer(d, i, CHANGE_OUT_DONE, NULL, mbox, id);
	}
out:
	json_decref(calls);
	json_decref(resp);
	json_decref(kw);
	free(found);
	free(blob);
	return (rv != 0 ? rv : jdrain_flush(d));
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
			continue;
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
    const struct sync_sink *sink, struct sync_result *res)
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
		rv = sync_jmap_open(job, l, &d.cl, res);
		if (rv == 0) {
			d.s = jmap_client_session(d.cl);
			rv = sync_jmap_get_mailboxes(d.cl, &d.mb, res);
		}
	}
	if (rv == 0) {
		rv = drain_sends(&d);
	}
	if (rv == 0) {
		rv = drain_updates(&d);
	}
	if (rv == 0) {
		rv = drain_expunges(&d);
	}
	for (i = 0; rv == 0 && i < d.n; i++) {
		if (!d.answered[i] && job->changes[i].kind == CHANGE_APPEND) {
			rv = drain_append(&d, i);
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
	jmap_client_free(&d.cl);
	free(d.answered);
	return (rv);
}
