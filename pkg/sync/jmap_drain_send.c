/*
 * jmap_drain_send.c: sends of the JMAP drain job (RFC 8621 7,
 * EmailSubmission). No SMTP of ours: the server submits.
 *
 * One send is: upload the message without its Bcc field (Cyrus 3.6
 * submits an Email's bytes as they are, Bcc included), then one request
 * of Email/import into the Drafts role mailbox (keywords $draft $seen)
 * and EmailSubmission/set of that Email ("#d") with the envelope read
 * from the header (Bcc recipients get it without the field) and
 * onSuccessUpdateEmail moving it Drafts -> Sent and dropping $draft (no
 * Sent copy wanted: onSuccessDestroyEmail). A message with a Bcc field
 * then gets its original bytes imported into Sent in place of the
 * submitted Email, so the Sent copy keeps the Bcc as the IMAP path's
 * does. The Email in Sent is the change's done result (mailbox, id).
 *
 * Cyrus's Email ids are content hashes: importing bytes it already has
 * answers alreadyExists (existingId), even when that Email is in another
 * mailbox; a draft left by an earlier attempt is then submitted by id.
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
	char type[64];
	size_t i;
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
	if (rv != 0) {
		return (sync_jmap_fail(d->res, &e));
	}
	type[0] = '\0';
	rv = jmap_response(
	    resp, "id", "Identity/get", &args, type, sizeof(type), &e);
	if (rv == 0) {
		*list_r = json_incref(json_object_get(args, "list"));
		if (!json_is_array(*list_r)) {
			json_decref(*list_r);
			*list_r = NULL;
			snprintf(e.text, sizeof(e.text),
			    "Identity/get: answer without list");
		}
	}
	json_decref(resp);
	/* A method error fails the sends, not the job: the other changes
	 * of the account still drain. */
	for (i = 0; *list_r == NULL && i < d->n; i++) {
		if (!d->answered[i]
		    && d->job->changes[i].kind == CHANGE_SEND) {
			jdrain_answer_err(d, i,
			    type[0] != '\0' ? jdrain_error_outcome(type)
			                    : CHANGE_OUT_RETRY,
			    "%s", e.text);
		}
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

/* One send being carried out. */
struct jsend {
	struct jdrain *d;
	size_t i;
	const char *drafts, *sent, *sent_name, *identity; /* borrowed */
	json_t *env; /* the envelope (borrowed) */
};

/* The request: Email/import "d" of blob (when not NULL) into Drafts,
 * then EmailSubmission/set "s" of email (an Email id, or "#d"). */
static json_t *
send_calls(const struct jsend *x, const char *blob, const char *email)
{
	const char *acc = x->d->s->account_id;
	json_t *calls = json_array(), *sub, *upd;
	char pd[512], ps[512];

	if (calls != NULL && blob != NULL
	    && json_array_append_new(calls,
	           json_pack(
	               "[s, {s:s, s:{s:{s:s, s:{s:b}, s:{s:b, s:b}}}}, s]",
	               "Email/import", "accountId", acc, "emails", "d",
	               "blobId", blob, "mailboxIds", x->drafts, 1, "keywords",
	               "$draft", 1, "$seen", 1, "i"))
	        != 0) {
		json_decref(calls);
		return (NULL);
	}
	sub = json_pack("{s:s, s:{s:{s:s, s:s, s:O}}}", "accountId", acc,
	    "create", "s", "identityId", x->identity, "emailId", email,
	    "envelope", x->env);
	if (calls == NULL || sub == NULL) {
		goto fail;
	}
	if (x->sent != NULL) {
		snprintf(pd, sizeof(pd), "mailboxIds/%s", x->drafts);
		snprintf(ps, sizeof(ps), "mailboxIds/%s", x->sent);
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

/* Sends a request holding a submission (calls taken). 0 with *resp_r;
 * else the change is answered (uncertain when the server may have
 * submitted) and the job's error returned with res filled. */
static int
send_request(struct jsend *x, json_t *calls, json_t **resp_r)
{
	struct jmap_err e;
	uint8_t out;
	int rv;

	*resp_r = NULL;
	if (calls == NULL) {
		jdrain_answer_err(
		    x->d, x->i, CHANGE_OUT_RETRY, "out of memory");
		return (sync_fail(
		    x->d->res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	memset(&e, 0, sizeof(e));
	rv = jmap_call(x->d->cl, calls, true, resp_r, &e);
	json_decref(calls);
	if (rv == 0) {
		return (ERR_OK);
	}
	out = request_outcome(rv, &e);
	jdrain_answer_err(x->d, x->i, out, "%s%s",
	    out == CHANGE_OUT_UNCERTAIN
	        ? "the submission may have reached the server (no answer "
	          "came back): "
	        : "",
	    e.text);
	return (sync_jmap_fail(x->d->res, &e));
}

/* Whether the answer's EmailSubmission/set "s" created the submission;
 * when not, the change is answered and, ours, the draft destroyed. */
static bool
submitted(struct jsend *x, json_t *resp, const char *email, bool ours)
{
	json_t *args, *o;
	struct jmap_err e;
	char type[64], etext[SYNC_MAX_ERROR];

	memset(&e, 0, sizeof(e));
	type[0] = '\0';
	if (jmap_response(resp, "s", "EmailSubmission/set", &args, type,
	        sizeof(type), &e)
	    != 0) {
		jdrain_answer_err(
		    x->d, x->i, jdrain_error_outcome(type), "%s", e.text);
	} else if (json_object_get(json_object_get(args, "created"), "s")
	    != NULL) {
		return (true);
	} else {
		o = json_object_get(json_object_get(args, "notCreated"), "s");
		jdrain_error_text(o, "EmailSubmission/set", type, sizeof(type),
		    etext, sizeof(etext));
		jdrain_answer(
		    x->d, x->i, jdrain_error_outcome(type), etext, NULL, NULL);
	}
	if (ours) {
		drop_draft(x->d, email);
	}
	return (false);
}

/*
 * The Email import "d" created (*email_r, borrowed from resp) or, for
 * bytes the server already holds (Cyrus: alreadyExists with existingId:
 * its Email ids are content hashes, so a draft left by an earlier
 * attempt is found), the existing one with *existing_r set; false with
 * the change answered when the import failed.
 */
static bool
imported(struct jsend *x, json_t *resp, const char **email_r, bool *existing_r)
{
	json_t *args, *o;
	struct jmap_err e;
	char type[64], etext[SYNC_MAX_ERROR];

	*email_r = NULL;
	*existing_r = false;
	memset(&e, 0, sizeof(e));
	type[0] = '\0';
	if (jmap_response(
	        resp, "i", "Email/import", &args, type, sizeof(type), &e)
	    != 0) {
		jdrain_answer_err(
		    x->d, x->i, jdrain_error_outcome(type), "%s", e.text);
		return (false);
	}
	*email_r = json_string_value(json_object_get(
	    json_object_get(json_object_get(args, "created"), "d"), "id"));
	if (*email_r != NULL) {
		return (true);
	}
	o = json_object_get(json_object_get(args, "notCreated"), "d");
	jdrain_error_text(
	    o, "Email/import", type, sizeof(type), etext, sizeof(etext));
	*email_r = json_string_value(json_object_get(o, "existingId"));
	if (strcmp(type, "alreadyExists") == 0 && *email_r != NULL) {
		*existing_r = true;
		return (true);
	}
	jdrain_answer(
	    x->d, x->i, jdrain_error_outcome(type), etext, NULL, NULL);
	return (false);
}

/*
 * After a submission of a message with a Bcc field: the Sent copy keeps
 * it, as the IMAP path's does. The submitted Email (sent_id, without the
 * field) is replaced by the original bytes imported into Sent; on any
 * failure it stays the Sent copy. *id_r: the Sent copy's id (malloc'd).
 */
static void
keep_bcc(struct jsend *x, const char *sent_id, char **id_r)
{
	const struct proto_change *c = &x->d->job->changes[x->i];
	json_t *calls = NULL, *resp = NULL, *args, *o;
	struct jmap_err e;
	char *blob = NULL;
	const char *id = NULL;

	*id_r = NULL;
	memset(&e, 0, sizeof(e));
	if (jmap_upload(x->d->cl, c->rfc822.p, c->rfc822.len, "message/rfc822",
	        &blob, &e)
	    != 0) {
		goto out;
	}
	calls = json_pack("[[s, {s:s, s:{s:{s:s, s:{s:b}, s:{s:b}}}}, s]]",
	    "Email/import", "accountId", x->d->s->account_id, "emails", "d",
	    "blobId", blob, "mailboxIds", x->sent, 1, "keywords", "$seen", 1,
	    "i");
	if (calls == NULL || jmap_call(x->d->cl, calls, false, &resp, &e) != 0
	    || jmap_response(resp, "i", "Email/import", &args, NULL, 0, &e)
	        != 0) {
		goto out;
	}
	id = json_string_value(json_object_get(
	    json_object_get(json_object_get(args, "created"), "d"), "id"));
	o = json_object_get(json_object_get(args, "notCreated"), "d");
	if (id == NULL) {
		id = json_string_value(json_object_get(o, "existingId"));
	}
	if (id != NULL && strcmp(id, sent_id) != 0) {
		*id_r = strdup(id);
		drop_draft(x->d, sent_id);
	}
out:
	if (*id_r == NULL) {
		log_info(
		    "job=%llu event=drain_sent_copy_without_bcc change=%llu "
		    "error=\"%s\"",
		    (unsigned long long)x->d->job->job_id,
		    (unsigned long long)c->id, e.text);
	}
	json_decref(calls);
	json_decref(resp);
	free(blob);
}

int
jdrain_send(struct jdrain *d, size_t i, json_t *identities)
{
	const struct proto_change *c = &d->job->changes[i];
	const struct sync_jmap_mailbox *drafts, *sent = NULL;
	struct jsend x;
	json_t *env = NULL, *resp = NULL;
	struct buf msg;
	char *from = NULL, *blob = NULL, *copy = NULL, *email = NULL;
	const char *e;
	bool existing = false;
	int rv;

	memset(&x, 0, sizeof(x));
	x.d = d;
	x.i = i;
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
	x.drafts = drafts->id;
	x.sent = sent != NULL ? sent->id : NULL;
	x.sent_name = sent != NULL ? sent->name : NULL;
	x.env = env;
	x.identity = identity_for(identities, from);
	if (x.identity == NULL) {
		jdrain_answer_err(d, i, CHANGE_OUT_DEAD,
		    "the account has no sending Identity (Identity/get)");
		goto done;
	}
	/* Cyrus 3.6 submits the Email's bytes as they are, Bcc field
	 * included (RFC 8621 does not ask a server to drop it): the
	 * recipients are in the envelope, the field is not submitted. */
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
	rv = send_request(&x, send_calls(&x, blob, "#d"), &resp);
	if (rv != 0) {
		goto out;
	}
	if (!imported(&x, resp, &e, &existing)) {
		goto done;
	}
	email = strdup(e);
	if (email == NULL) {
		jdrain_answer_err(d, i, CHANGE_OUT_RETRY, "out of memory");
		goto done;
	}
	if (existing) {
		/* "#d" named nothing: submit the Email the server has. */
		json_decref(resp);
		rv = send_request(&x, send_calls(&x, NULL, email), &resp);
		if (rv != 0) {
			goto out;
		}
	}
	if (!submitted(&x, resp, email, !existing)) {
		goto done;
	}
	if (x.sent != NULL && msg.len != c->rfc822.len) {
		keep_bcc(&x, email, &copy);
	}
	jdrain_answer(d, i, CHANGE_OUT_DONE, NULL, x.sent_name,
	    x.sent == NULL ? NULL : (copy != NULL ? copy : email));
done:
	rv = ERR_OK;
out:
	json_decref(env);
	json_decref(resp);
	free(from);
	free(blob);
	free(copy);
	free(email);
	buf_release(&msg);
	return (rv);
}
