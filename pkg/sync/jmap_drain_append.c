/*
 * jmap_drain_append.c: appends of the JMAP drain job (step 5 of
 * jmap_drain.c): Email/query for the Message-ID in the target mailbox
 * (found: done), else upload + Email/import; bytes the server already
 * holds elsewhere (Cyrus: alreadyExists) are added to the target.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap_drain_int.h"

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
	rv = jdrain_request(d, calls, false, &resp);
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
	struct jdrain_call call;
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
		rv = jdrain_call_add(&call, i, id, patch, 1);
		patch = NULL;
	}
	json_decref(patch);
	calls = rv == 0
	    ? json_pack("[o]", jdrain_call_json(d, &call, "a", NULL))
	    : NULL;
	if (calls == NULL) {
		jdrain_call_release(&call);
		return (sync_fail(
		    d->res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	rv = jdrain_request(d, calls, false, &resp);
	json_decref(calls);
	if (rv == 0) {
		memset(&e, 0, sizeof(e));
		type[0] = '\0';
		if (jmap_response(
		        resp, "a", "Email/set", &args, type, sizeof(type), &e)
		    == 0) {
			jdrain_answer_set(d, &call, args, NULL, NULL);
		} else {
			jdrain_answer_set(d, &call, NULL,
			    type[0] != '\0' ? type : "serverFail", e.text);
		}
	}
	json_decref(resp);
	jdrain_call_release(&call);
	return (rv);
}

/* Step 5: one append. */
int
jdrain_append(struct jdrain *d, size_t i)
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
	rv = jdrain_request(d, calls, false, &resp);
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
