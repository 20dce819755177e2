/*
 * jmap_drain_send.c: sends of the JMAP drain job (RFC 8621 7,
 * EmailSubmission). No SMTP of ours: the server submits.
 *
 * One send is: upload the message (without its Bcc field), then one
 * request of Email/import into the Drafts role mailbox (keywords $draft
 * $seen) and EmailSubmission/set of that Email ("#d") with the envelope
 * read from the header (so Bcc recipients get it without the field) and
 * onSuccessUpdateEmail moving it Drafts -> Sent and dropping $draft (no
 * Sent copy wanted: onSuccessDestroyEmail). The Email in Sent is the
 * change's done result (mailbox, Email id).
 *
 * Never twice on a guess: when the request carrying the submission may
 * have reached the server and no answer came back, the send is
 * `uncertain` (docs/drain.md), as a cut SMTP transfer is. A submission
 * the server refused leaves its draft, which is destroyed (best effort).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jmap_drain_int.h"
#include "mime/mime.h"

int
jdrain_identities(struct jdrain *d, json_t **list_r)
{
	json_t *calls, *resp = NULL, *args;
	struct jmap_err e;
	int rv;

	*list_r = NULL;
	memset(&e, 0, sizeof(e));
	calls = json_pack("[[s, {s:s, s:n}, s]]", "Identity/get", "accountId",
	    d->s->account_id, "ids", "id");
	if (calls == NULL) {
		return (sync_fail(
		    d->res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	rv = jmap_call(d->cl, calls, true, &resp, &e);
	json_decref(calls);
	if (rv == 0) {
		rv = jmap_response(
		    resp, "id", "Identity/get", &args, NULL, 0, &e);
	}
	if (rv != 0) {
		json_decref(resp);
		return (sync_jmap_fail(d->res, &e));
	}
	*list_r = json_incref(json_object_get(args, "list"));
	json_decref(resp);
	if (!json_is_array(*list_r)) {
		json_decref(*list_r);
		*list_r = NULL;
		return (sync_fail(d->res, ERR_PROTO, RETRY_LATER,
		    "Identity/get: answer without list"));
	}
	return (ERR_OK);
}

/* The Identity whose email is from (any case), else the first one. */
static const char *
identity_for(json_t *ids, const char *from)
{
	json_t *o;
	size_t k;

	json_array_foreach(ids, k, o)
	{
		const char *email
		    = json_string_value(json_object_get(o, "email"));

		if (email != NULL && strcasecmp(email, from) == 0) {
			return (json_string_value(json_object_get(o, "id")));
		}
	}
	return (
	    json_string_value(json_object_get(json_array_get(ids, 0), "id")));
}

/*
 * What a failed request means for the send in it. Refused before the
 * server could act (bad configuration, credentials, too large, a
 * request-level error answer): not submitted. Anything else (the
 * connection lost, a timeout, an answer that is not JSON or too large)
 * may have come after the server submitted: uncertain.
 */
static uint8_t
request_outcome(int rv, const struct jmap_err *e)
{
	switch (rv) {
	case ERR_CONFIG:
	case ERR_AUTH:
	case ERR_NOMEM:
	case ERR_INVAL:
		return (e->retry == RETRY_NEVER ? CHANGE_OUT_DEAD
		                                : CHANGE_OUT_RETRY);
	case ERR_SERVER:
		return (CHANGE_OUT_RETRY); /* HTTP 4xx: methods not run */
	case ERR_TOOBIG:
		/* The request refused before sending, or the answer. */
		return (e->retry == RETRY_NEVER ? CHANGE_OUT_DEAD
		                                : CHANGE_OUT_UNCERTAIN);
	default:
		return (CHANGE_OUT_UNCERTAIN);
	}
}

/* Destroys the draft left by a refused submission (best effort). */
static void
drop_draft(struct jdrain *d, const char *email_id)
{
	json_t *calls, *resp = NULL;
	struct jmap_err e;

	memset(&e, 0, sizeof(e));
	calls = json_pack("[[s, {s:s, s:[s]}, s]]", "Email/set", "accountId",
	    d->s->account_id, "destroy", email_id, "x");
	if (calls != NULL && jmap_call(d->cl, calls, false, &resp, &e) != 0) {
		log_info(
		    "job=%llu event=drain_draft_left email=%s error=\"%s\"",
		    (unsigned long long)d->job->job_id, email_id, e.text);
	}
	json_decref(calls);
	json_decref(resp);
}

/* The request: Email/import "d" then EmailSubmission/set "s". */
static json_t *
send_calls(struct jdrain *d, const char *blob, const char *drafts,
    const char *sent, const char *identity, json_t *env)
{
	json_t *calls, *sub, *upd;
	char pd[512], ps[512];

	calls
	    = json_pack("[[s, {s:s, s:{s:{s:s, s:{s:b}, s:{s:b, s:b}}}}, s]]",
	        "Email/import", "accountId", d->s->account_id, "emails", "d",
	        "blobId", blob, "mailboxIds", drafts, 1, "keywords", "$draft",
	        1, "$seen", 1, "i");
	sub = json_pack("{s:s, s:{s:{s:s, s:s, s:O}}}", "accountId",
	    d->s->account_id, "create", "s", "identityId", identity, "emailId",
	    "#d", "envelope", env);
	if (calls == NULL || sub == NULL) {
		goto fail;
	}
	if (sent != NULL) {
		snprintf(pd, sizeof(pd), "mailboxIds/%s", drafts);
		snprintf(ps, sizeof(ps), "mailboxIds/%s", sent);
		upd = json_pack(
		    "{s:{s:n, s:b, s:n}}", "#s", pd, ps, 1, "keywords/$draft");
		if (upd == NULL
		    || json_object_set_new(sub, "onSuccessUpdateEmail", upd)
		        != 0) {
			goto fail;
		}
	} else if (json_object_set_new(
	               sub, "onSuccessDestroyEmail", json_pack("[s]", "#s"))
	    != 0) {
		goto fail;
	}
	if (json_array_append_new(
	        calls, json_pack("[s, O, s]", "EmailSubmission/set", sub, "s"))
	    != 0) {
		goto fail;
	}
	json_decref(sub);
	return (calls);
fail:
	json_decref(calls);
	json_decref(sub);
	return (NULL);
}

/* Reads the answer of the send request into change i's result. */
static void
send_answer(struct jdrain *d, size_t i, json_t *resp, const char *sent_name)
{
	json_t *args, *o;
	struct jmap_err e;
	char type[64], etype[64], etext[SYNC_MAX_ERROR];
	const char *email = NULL;

	memset(&e, 0, sizeof(e));
	type[0] = '\0';
	if (jmap_response(
	        resp, "i", "Email/import", &args, type, sizeof(type), &e)
	    != 0) {
		jdrain_answer_err(
		    d, i, jdrain_error_outcome(type), "%s", e.text);
		return;
	}
	email = json_string_value(json_object_get(
	    json_object_get(json_object_get(args, "created"), "d"), "id"));
	o = json_object_get(json_object_get(args, "notCreated"), "d");
	if (email == NULL) {
		jdrain_error_text(o, "Email/import", etype, sizeof(etype),
		    etext, sizeof(etext));
		jdrain_answer(
		    d, i, jdrain_error_outcome(etype), etext, NULL, NULL);
		return;
	}
	if (jmap_response(resp, "s", "EmailSubmission/set", &args, type,
	        sizeof(type), &e)
	    != 0) {
		jdrain_answer_err(
		    d, i, jdrain_error_outcome(type), "%s", e.text);
		drop_draft(d, email);
		return;
	}
	if (json_object_get(json_object_get(args, "created"), "s") == NULL) {
		o = json_object_get(json_object_get(args, "notCreated"), "s");
		jdrain_error_text(o, "EmailSubmission/set", etype,
		    sizeof(etype), etext, sizeof(etext));
		jdrain_answer(
		    d, i, jdrain_error_outcome(etype), etext, NULL, NULL);
		drop_draft(d, email);
		return;
	}
	/* Submitted. Should the implicit Email/set have failed, the Email
	 * stays in Drafts: the next sync shows where it really is. */
	jdrain_answer(d, i, CHANGE_OUT_DONE, NULL, sent_name,
	    sent_name != NULL ? email : NULL);
}

int
jdrain_send(struct jdrain *d, size_t i, json_t *identities)
{
	const struct proto_change *c = &d->job->changes[i];
	const struct sync_jmap_mailbox *drafts, *sent = NULL;
	const char *identity;
	json_t *env = NULL, *calls = NULL, *resp = NULL;
	struct jmap_err e;
	struct buf msg;
	char *from = NULL, *blob = NULL;
	uint8_t out;
	int rv;

	buf_init(&msg, PROTO_MAX_RFC822);
	if (c->rfc822.p == NULL || c->rfc822.len == 0) {
		jdrain_answer_err(
		    d, i, CHANGE_OUT_DEAD, "the change has no message");
		goto done;
	}
	rv = jdrain_envelope(c->rfc822.p, c->rfc822.len, &env, &from);
	if (rv != 0) {
		jdrain_answer_err(d, i,
		    rv == ERR_NOMEM ? CHANGE_OUT_RETRY : CHANGE_OUT_DEAD, "%s",
		    rv == ERR_NOTFOUND
		        ? "the message has no sender (From) or "
		          "no recipient (To, Cc, Bcc)"
		        : "cannot read the message's addresses");
		goto done;
	}
	drafts = sync_jmap_mailbox_by_role(&d->mb, "drafts");
	if (drafts == NULL) {
		jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
		    "the account has no Drafts mailbox (role drafts) to "
		    "submit from");
		goto done;
	}
	if (c->to_mailbox.p != NULL) {
		sent = sync_jmap_mailbox_by_name(
		    &d->mb, c->to_mailbox.p, c->to_mailbox.len);
		if (sent == NULL) {
			sent = sync_jmap_mailbox_by_role(&d->mb, "sent");
		}
	}
	identity = identity_for(identities, from);
	if (identity == NULL) {
		jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
		    "the account has no sending Identity (Identity/get)");
		goto done;
	}
	/* Whether a server drops Bcc when it submits is not promised
	 * (RFC 8621 7.5 leaves the message as it is): the recipients are in
	 * the envelope, the field is not in what is submitted. */
	rv = mime_header_strip(c->rfc822.p, c->rfc822.len, "Bcc", &msg);
	if (rv != 0) {
		jdrain_answer_err(d, i,
		    rv == ERR_NOMEM ? CHANGE_OUT_RETRY : CHANGE_OUT_DEAD,
		    "cannot remove the Bcc field: %s", err_str(rv));
		goto done;
	}
	rv = jdrain_upload(d, i, msg.data, msg.len, &blob);
	if (rv != 0) {
		goto out; /* nothing submitted: the job's error */
	}
	if (blob == NULL) {
		goto done; /* refused: answered dead */
	}
	calls = send_calls(d, blob, drafts->id, sent != NULL ? sent->id : NULL,
	    identity, env);
	if (calls == NULL) {
		jdrain_answer_err(d, i, CHANGE_OUT_RETRY, "out of memory");
		goto done;
	}
	memset(&e, 0, sizeof(e));
	rv = jmap_call(d->cl, calls, true, &resp, &e);
	if (rv != 0) {
		out = request_outcome(rv, &e);
		jdrain_answer_err(d, i, out, "%s%s",
		    out == CHANGE_OUT_UNCERTAIN
		        ? "the submission may have reached the server (no "
		          "answer came back): "
		        : "",
		    e.text);
		/* The connection is gone: the job ends here. */
		rv = sync_jmap_fail(d->res, &e);
		goto out;
	}
	send_answer(d, i, resp, sent != NULL ? sent->name : NULL);
done:
	rv = ERR_OK;
out:
	json_decref(env);
	json_decref(calls);
	json_decref(resp);
	free(from);
	free(blob);
	buf_release(&msg);
	return (rv);
}
