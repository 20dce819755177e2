/*
 * jmap_drain_expunge.c: delete --expunge of the JMAP drain job (step 4 of
 * jmap_drain.c): Email/get of the mailboxIds, then one Email/set guarded
 * by the state of that read: an Email also in other mailboxes only leaves
 * the source (patch), one only there is destroyed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap_drain_int.h"

/* Expunges ------------------------------------------------------------- */

/* Reads the mailboxIds of the expunges x[0..n) and plans each: answered
 * (gone, moved away), a patch leaving the source, or a destroy, into c.
 * *state_r: the Email state of that answer (malloc'd). */
static int
expunge_read(struct jdrain *d, const size_t *x, size_t n,
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
		const struct proto_change *ch = &d->job->changes[x[k]];
		const char *id = jdrain_email_id(d, x[k], ibuf, sizeof(ibuf));
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
				rv = jdrain_call_add(c, x[k], id, patch, n);
			}
		} else {
			rv = jdrain_call_add(c, x[k], id, NULL, n);
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
		rv = expunge_read(d, x, n, &c, &state);
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
				    "being destroyed");
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

/* Step 4: every delete --expunge, in chunks. */
int
jdrain_expunges(struct jdrain *d)
{
	size_t *x, n = 0, i, per = jdrain_objects_per_call(d, true);
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
