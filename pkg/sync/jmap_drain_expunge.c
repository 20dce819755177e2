/*
 * jmap_drain_expunge.c: moves, deletes to a mailbox and delete --expunge
 * of the JMAP drain job (step 4 of jmap_drain.c). Each acts on the Email
 * in its source mailbox, so each first reads the Email's mailboxIds and
 * decides on what the server holds, then sends one Email/set guarded by
 * the state of that read (ifInState):
 *
 *   Email gone                      dead ("no longer exists")
 *   source not among its mailboxes  a move whose destination is among
 *                                   them: done (an earlier attempt
 *                                   landed); else dead (another client
 *                                   moved it): nothing is patched, so a
 *                                   membership is never resurrected
 *   move, delete to a mailbox       patch: leave the source, join the
 *                                   destination
 *   expunge, also in other mailboxes  patch: leave the source
 *   expunge, only in the source     destroy
 *
 * A stateMismatch (a change between the read and the set) reads again
 * once; a second one ends the attempt as retry. The changes are chunked
 * by jdrain_pack: an Email at most once per chunk (rounds), the session's
 * object and byte limits for both the read and the set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap_drain_int.h"

/* Change i is carried by this step. */
static bool
is_guarded(const struct jdrain *d, size_t i)
{
	const struct proto_change *c = &d->job->changes[i];

	return (!d->answered[i]
	    && (c->kind == CHANGE_MOVE || c->kind == CHANGE_DELETE));
}

/* The destination of change c: its mailbox id, NULL for an expunge. */
static const char *
dest_id(const struct jdrain *d, const struct proto_change *c)
{
	return (c->expunge ? NULL : jdrain_mailbox_id(d, c->to_mailbox));
}

/* Decides change i from its Email's mailboxIds (mids, NULL: the Email is
 * gone): answered, or added to c (a patch or a destroy). */
static int
guarded_decide(struct jdrain *d, size_t i, json_t *mids, struct jdrain_call *c,
    size_t cap)
{
	const struct proto_change *ch = &d->job->changes[i];
	char ibuf[JDRAIN_MAX_ID], mbox[1024];
	const char *id = jdrain_email_id(d, i, ibuf, sizeof(ibuf));
	const char *src = jdrain_mailbox_id(d, ch->mailbox);
	const char *dst = dest_id(d, ch);
	json_t *patch = NULL;
	int rv;

	if (mids == NULL) {
		jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
		    "Email %s no longer exists on the server "
		    "(destroyed or moved by another client)",
		    id);
		return (ERR_OK);
	}
	if (src == NULL || json_object_get(mids, src) == NULL) {
		if (dst != NULL && json_object_get(mids, dst) != NULL) {
			snprintf(mbox, sizeof(mbox), "%.*s",
			    (int)ch->to_mailbox.len, ch->to_mailbox.p);
			jdrain_answer(d, i, CHANGE_OUT_DONE, NULL, mbox, id);
		} else {
			jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "Email %s is no longer in mailbox '%.*s' on the "
			    "server (moved by another client)",
			    id, (int)ch->mailbox.len,
			    ch->mailbox.p != NULL ? ch->mailbox.p : "");
		}
		return (ERR_OK);
	}
	if (ch->expunge && json_object_size(mids) == 1) {
		return (jdrain_call_add(c, i, id, NULL, cap));
	}
	rv = jdrain_patch(ch, src, dst, &patch);
	if (rv == 0) {
		rv = jdrain_call_add(c, i, id, patch, cap);
	}
	return (rv);
}

/* Reads the mailboxIds of the changes x[0..n) and plans each: answered,
 * a patch or a destroy, into c. *state_r: the Email state of that answer
 * (malloc'd). */
static int
guarded_read(struct jdrain *d, const size_t *x, size_t n,
    struct jdrain_call *c, char **state_r)
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
		        json_string(
		            jdrain_email_id(d, x[k], ibuf, sizeof(ibuf))))
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
	rv = jdrain_request(d, calls, false, &resp);
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
		const char *id = jdrain_email_id(d, x[k], ibuf, sizeof(ibuf));
		json_t *mids = NULL;

		json_array_foreach(list, j, o)
		{
			const char *oid
			    = json_string_value(json_object_get(o, "id"));

			if (oid != NULL && strcmp(oid, id) == 0) {
				mids = json_object_get(o, "mailboxIds");
			}
		}
		rv = guarded_decide(
		    d, x[k], json_is_object(mids) ? mids : NULL, c, n);
	}
	json_decref(resp);
	if (rv == 0 && c->n > 0 && *state_r == NULL) {
		rv = state == NULL ? ERR_PROTO : ERR_NOMEM;
	}
	if (rv != 0) {
		free(*state_r);
		*state_r = NULL;
		return (sync_fail(d->res, rv, RETRY_LATER, "%s",
		    rv == ERR_PROTO ? "Email/get: answer without state"
		                    : err_str(rv)));
	}
	return (ERR_OK);
}

/*
 * The changes x[0..n): read, then Email/set guarded by the read's state.
 * The job's own Email state would not do as the guard: the flag updates
 * of step 3 (and earlier drains) moved the account past it, so it would
 * always mismatch; the read's state is what the decision was made on,
 * and any change after it makes the server refuse the set.
 */
static int
guarded_chunk(struct jdrain *d, size_t *x, size_t n)
{
	struct jdrain_call c;
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
		rv = guarded_read(d, x, n, &c, &state);
		if (rv == 0 && c.n > 0) {
			calls = json_array();
			if (calls == NULL
			    || json_array_append_new(
			           calls, jdrain_call_json(d, &c, "x", state))
			        != 0) {
				rv = sync_fail(d->res, ERR_NOMEM, RETRY_LATER,
				    "out of memory");
			}
			if (rv == 0) {
				rv = jdrain_request(d, calls, false, &resp);
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
			jdrain_answer_set(d, &c, args, NULL, NULL);
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
				    "being changed");
			}
			jdrain_answer_set(d, &c, NULL,
			    type[0] != '\0' ? type : "serverFail", e.text);
		}
		json_decref(resp);
		jdrain_call_release(&c);
		free(state);
		state = NULL;
		if (rv == 0) {
			rv = jdrain_flush(d);
		}
	}
	return (rv);
}

/* The bytes change i adds to its read or its set at most; 0: answered
 * (its destination is gone, or it cannot be sent), or ERR_NOMEM in *rv. */
static size_t
guarded_bytes(
    struct jdrain *d, size_t i, const struct jdrain_limits *lim, int *rv)
{
	const struct proto_change *c = &d->job->changes[i];
	const char *src = jdrain_mailbox_id(d, c->mailbox);
	const char *dst = dest_id(d, c);
	char ibuf[JDRAIN_MAX_ID];
	json_t *patch = NULL;
	size_t b;

	if (!c->expunge && dst == NULL) {
		jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
		    "the destination mailbox '%.*s' does not exist on the "
		    "server",
		    (int)c->to_mailbox.len,
		    c->to_mailbox.p != NULL ? c->to_mailbox.p : "");
		return (0);
	}
	/* The largest entry of the set (its read is an id only). */
	*rv = jdrain_patch(c, src != NULL ? src : "", dst, &patch);
	if (*rv == ERR_INVAL) {
		*rv = ERR_OK;
		jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
		    "a mailbox id of the change is too long for a patch");
		return (0);
	}
	if (*rv != 0) {
		return (0);
	}
	b = jdrain_entry_bytes(
	    jdrain_email_id(d, i, ibuf, sizeof(ibuf)), patch);
	json_decref(patch);
	if (b == 0) {
		*rv = ERR_NOMEM;
	} else if (!jdrain_fits(lim, b)) {
		jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
		    "its Email/set entry (%zu bytes) alone exceeds the "
		    "server's maxSizeRequest (%zu bytes)",
		    b, lim->bytes);
		b = 0;
	}
	return (b);
}

/* Step 4: every move, delete to a mailbox and delete --expunge, in
 * chunks of one read and one set each. */
int
jdrain_guarded(struct jdrain *d)
{
	const struct proto_change **chg = NULL;
	struct jdrain_limits lim;
	struct jdrain_slot *slot = NULL;
	size_t *idx = NULL, *x = NULL, *bytes = NULL, n = 0, m = 0, i, k, e;
	uint32_t *round = NULL, *oround = NULL, nrounds, r;
	int rv;

	rv = jdrain_limits_of(d->s, true, &lim);
	idx = calloc(d->n + 1, sizeof(*idx));
	x = calloc(d->n + 1, sizeof(*x));
	bytes = calloc(d->n + 1, sizeof(*bytes));
	chg = calloc(d->n + 1, sizeof(*chg));
	round = calloc(d->n + 1, sizeof(*round));
	oround = calloc(d->n + 1, sizeof(*oround));
	slot = calloc(d->n + 1, sizeof(*slot));
	if (idx == NULL || x == NULL || bytes == NULL || chg == NULL
	    || round == NULL || oround == NULL || slot == NULL) {
		rv = ERR_NOMEM;
	}
	for (i = 0; rv == 0 && i < d->n; i++) {
		if (is_guarded(d, i)) {
			idx[n] = i;
			chg[n++] = &d->job->changes[i];
		}
	}
	/* An Email once per chunk: one update map holds an id once. */
	nrounds = rv == 0 ? jdrain_rounds(chg, n, round, &rv) : 0;
	for (r = 0; rv == 0 && r < nrounds; r++) {
		for (k = 0; rv == 0 && k < n; k++) {
			size_t b;

			if (round[k] != r || d->answered[idx[k]]) {
				continue;
			}
			b = guarded_bytes(d, idx[k], &lim, &rv);
			if (b != 0) {
				x[m] = idx[k];
				bytes[m] = b;
				oround[m++] = r;
			}
		}
	}
	if (rv == 0) {
		(void)jdrain_pack(bytes, oround, m, &lim, slot, &n);
		rv = jdrain_flush(d);
	} else {
		rv = sync_fail(d->res, rv, RETRY_LATER, "%s", err_str(rv));
	}
	/* lim.calls is 1: each call is its own request (a read, a set). */
	for (k = 0; rv == 0 && k < m; k = e) {
		for (e = k; e < m && slot[e].call == slot[k].call; e++) { }
		rv = guarded_chunk(d, &x[k], e - k);
	}
	free(idx);
	free(x);
	free(bytes);
	free(chg);
	free(round);
	free(oround);
	free(slot);
	return (rv);
}
