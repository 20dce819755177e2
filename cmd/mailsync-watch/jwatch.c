/*
 * jwatch.c: polling the state strings of a JMAP account (jwatch.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap/jmap.h"
#include "jwatch.h"

struct jwatch {
	struct jmap_client *cl;
	char *email_state, *mailbox_state;
};

static int
jfail(struct sync_result *res, const struct jmap_err *e)
{
	return (sync_fail(res, e->status != 0 ? e->status : ERR_IO, e->retry,
	    "%s", e->text));
}

/* Replaces *cur with the state of answer cid; *moved_r when it moved. */
static int
take_state(json_t *resp, const char *cid, const char *name, char **cur,
    bool *moved_r, struct jmap_err *e)
{
	json_t *args;
	const char *st;
	char *copy;
	int rv;

	rv = jmap_response(resp, cid, name, &args, NULL, 0, e);
	if (rv != 0) {
		return (rv);
	}
	st = json_string_value(json_object_get(args, "state"));
	if (st == NULL) {
		e->status = ERR_PROTO;
		e->retry = RETRY_LATER;
		snprintf(e->text, sizeof(e->text), "%s: answer without state",
		    name);
		return (ERR_PROTO);
	}
	if (*cur != NULL && strcmp(*cur, st) == 0) {
		return (ERR_OK);
	}
	copy = xstrdup(st);
	if (copy == NULL) {
		return (ERR_NOMEM);
	}
	*moved_r = *moved_r || *cur != NULL;
	free(*cur);
	*cur = copy;
	return (ERR_OK);
}

int
jwatch_poll(struct jwatch *jw, bool *changed_r, struct sync_result *res)
{
	const struct jmap_session *s = jmap_client_session(jw->cl);
	struct jmap_err e;
	json_t *calls, *resp = NULL;
	int rv;

	*changed_r = false;
	memset(&e, 0, sizeof(e));
	calls
	    = json_pack("[[s, {s:s, s:[], s:[s]}, s], [s, {s:s, s:[], s:[s]},"
	                " s]]",
	        "Email/get", "accountId", s->account_id, "ids", "properties",
	        "id", "e", "Mailbox/get", "accountId", s->account_id, "ids",
	        "properties", "id", "m");
	if (calls == NULL) {
		return (
		    sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	rv = jmap_call(jw->cl, calls, false, &resp, &e);
	json_decref(calls);
	if (rv == 0) {
		rv = take_state(
		    resp, "e", "Email/get", &jw->email_state, changed_r, &e);
	}
	if (rv == 0) {
		rv = take_state(resp, "m", "Mailbox/get", &jw->mailbox_state,
		    changed_r, &e);
	}
	json_decref(resp);
	if (rv != 0 && e.status == 0) {
		e.status = rv;
	}
	return (rv != 0 ? jfail(res, &e) : ERR_OK);
}

int
jwatch_open(const struct jwatch_conf *c, const struct sync_limits *l,
    struct jwatch **jw_r, struct sync_result *res)
{
	struct jmap_conf jc;
	struct jmap_err e;
	struct jwatch *jw;
	bool changed;
	int rv;

	*jw_r = NULL;
	jw = calloc(1, sizeof(*jw));
	if (jw == NULL) {
		return (
		    sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	memset(&jc, 0, sizeof(jc));
	jc.url = c->url;
	jc.username = c->user;
	jc.secret = c->secret != NULL ? c->secret : "";
	jc.bearer = c->bearer;
	jc.ca_pem = c->ca_pem;
	jc.plaintext = c->plaintext;
	jc.connect_timeout_ms = l->connect_timeout_ms;
	jc.io_timeout_ms = l->io_timeout_ms;
	memset(&e, 0, sizeof(e));
	rv = jmap_client_open(&jc, &jw->cl, &e);
	if (rv != 0) {
		free(jw);
		return (jfail(res, &e));
	}
	rv = jwatch_poll(jw, &changed, res);
	if (rv != 0) {
		jwatch_free(&jw);
		return (rv);
	}
	*jw_r = jw;
	return (ERR_OK);
}

void
jwatch_free(struct jwatch **jwp)
{
	struct jwatch *jw = *jwp;

	if (jw == NULL) {
		return;
	}
	jmap_client_free(&jw->cl);
	free(jw->email_state);
	free(jw->mailbox_state);
	free(jw);
	*jwp = NULL;
}
