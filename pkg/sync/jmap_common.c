/*
 * jmap_common.c: what the JMAP jobs share (jmap_int.h): the client of a
 * job's account, errors, and the mailbox table from Mailbox/get.
 */
#include <stdlib.h>
#include <string.h>

#include "jmap_int.h"
#include "sync_int.h"

/* Deepest mailbox nesting followed when building full names. */
#define JMAP_MAX_DEPTH 64

const struct sync_jmap_flag sync_jmap_flags[4] = {
	{ PROTO_FLAG_SEEN, "$seen" },
	{ PROTO_FLAG_FLAGGED, "$flagged" },
	{ PROTO_FLAG_ANSWERED, "$answered" },
	{ PROTO_FLAG_DRAFT, "$draft" },
};

int
sync_jmap_fail(struct sync_result *res, const struct jmap_err *e)
{
	return (sync_fail(res, e->status != 0 ? e->status : ERR_IO, e->retry,
	    "%s", e->text[0] != '\0' ? e->text : err_str(e->status)));
}

/* sync_conns_put's free function for a kept client. */
static void
jmap_conn_free(void *conn)
{
	struct jmap_client *cl = conn;

	jmap_client_free(&cl);
}

void
sync_jmap_close(struct sync_conns *conns, const struct proto_job_run *job,
    struct jmap_client **cl, const struct sync_result *res)
{
	if (*cl != NULL && res->status == 0 && jmap_client_reusable(*cl)) {
		sync_conns_put(conns, SYNC_CONN_JMAP, job, *cl, jmap_conn_free,
		    clock_mono_ms());
		*cl = NULL;
	}
	jmap_client_free(cl);
}

int
sync_jmap_open(const struct proto_job_run *job, const struct sync_limits *l,
    struct sync_conns *conns, struct jmap_client **cl_r,
    struct sync_result *res)
{
	struct jmap_conf c;
	struct jmap_err e;
	char *url, *user, *secret, *ca;
	int rv;

	*cl_r = sync_conns_take(conns, SYNC_CONN_JMAP, job);
	if (*cl_r != NULL) {
		return (ERR_OK);
	}
	url = proto_str_dup(job->server);
	user = proto_str_dup(job->username);
	secret = proto_str_dup(job->password);
	ca = proto_str_dup(job->tls_ca_pem);
	if (url == NULL || user == NULL
	    || (job->password.p != NULL && secret == NULL)
	    || (job->tls_ca_pem.p != NULL && ca == NULL)) {
		rv = sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory");
		goto done;
	}
	memset(&c, 0, sizeof(c));
	c.url = url;
	c.username = user;
	c.secret = secret != NULL ? secret : "";
	c.bearer = proto_str_eq(job->auth, "oauth2");
	c.ca_pem = ca;
	c.plaintext = job->plaintext;
	c.connect_timeout_ms = l->connect_timeout_ms;
	c.io_timeout_ms = l->io_timeout_ms;
	memset(&e, 0, sizeof(e));
	rv = jmap_client_open(&c, cl_r, &e);
	if (rv != 0) {
		sync_jmap_fail(res, &e);
	}
done:
	if (secret != NULL) {
		mem_wipe(secret, strlen(secret));
	}
	free(url);
	free(user);
	free(secret);
	free(ca);
	return (rv);
}

const char *
sync_jmap_job_state(
    const struct proto_job_run *job, const char *resource, size_t *len_r)
{
	size_t i;

	for (i = 0; i < job->nstates; i++) {
		if (proto_str_eq(job->states[i].resource, resource)
		    && job->states[i].state.len > 0) {
			*len_r = job->states[i].state.len;
			return (job->states[i].state.p);
		}
	}
	*len_r = 0;
	return (NULL);
}

void
sync_jmap_mailboxes_release(struct sync_jmap_mailboxes *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		free(m->v[i].id);
		free(m->v[i].name);
		free(m->v[i].role);
		free(m->v[i].parent_id);
	}
	free(m->v);
	free(m->state);
	memset(m, 0, sizeof(*m));
}

const struct sync_jmap_mailbox *
sync_jmap_mailbox_by_id(const struct sync_jmap_mailboxes *m, const char *id)
{
	size_t i;

	for (i = 0; id != NULL && i < m->n; i++) {
		if (strcmp(m->v[i].id, id) == 0) {
			return (&m->v[i]);
		}
	}
	return (NULL);
}

const struct sync_jmap_mailbox *
sync_jmap_mailbox_by_name(
    const struct sync_jmap_mailboxes *m, const char *name, size_t len)
{
	size_t i;

	for (i = 0; name != NULL && i < m->n; i++) {
		if (strlen(m->v[i].name) == len
		    && memcmp(m->v[i].name, name, len) == 0) {
			return (&m->v[i]);
		}
	}
	return (NULL);
}

const struct sync_jmap_mailbox *
sync_jmap_mailbox_by_role(
    const struct sync_jmap_mailboxes *m, const char *role)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		if (m->v[i].role != NULL && strcmp(m->v[i].role, role) == 0) {
			return (&m->v[i]);
		}
	}
	return (NULL);
}

/* A string member of o, or NULL. */
static const char *
jstr(json_t *o, const char *key)
{
	return (json_string_value(json_object_get(o, key)));
}

/* Joins the parents' names above v[i] (by parent_id) into its name. */
static int
full_name(struct sync_jmap_mailboxes *m, size_t i, char **short_names,
    struct sync_result *res)
{
	const char *chain[JMAP_MAX_DEPTH];
	const struct sync_jmap_mailbox *p = &m->v[i];
	size_t depth = 0, len = 0, k;
	char *out;

	for (;;) {
		if (depth == JMAP_MAX_DEPTH) {
			return (sync_fail(res, ERR_PROTO, RETRY_LATER,
			    "Mailbox/get: mailbox %s is nested deeper than %d "
			    "(a parentId cycle?)",
			    m->v[i].id, JMAP_MAX_DEPTH));
		}
		chain[depth++] = short_names[p - m->v];
		len += strlen(short_names[p - m->v]) + 1;
		if (p->parent_id == NULL) {
			break;
		}
		p = sync_jmap_mailbox_by_id(m, p->parent_id);
		if (p == NULL) {
			return (sync_fail(res, ERR_PROTO, RETRY_LATER,
			    "Mailbox/get: mailbox %s has an unknown parentId",
			    m->v[i].id));
		}
	}
	out = malloc(len);
	if (out == NULL) {
		return (
		    sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	out[0] = '\0';
	for (k = depth; k-- > 0;) {
		strcat(out, chain[k]);
		if (k > 0) {
			strcat(out, SYNC_JMAP_DELIM);
		}
	}
	m->v[i].name = out;
	return (ERR_OK);
}

int
sync_jmap_mailboxes_parse(
    json_t *args, struct sync_jmap_mailboxes *m, struct sync_result *res)
{
	json_t *list, *o;
	char **short_names = NULL;
	const char *id, *name, *role, *parent, *state;
	size_t i, n;
	int rv = ERR_OK;

	memset(m, 0, sizeof(*m));
	list = json_object_get(args, "list");
	state = jstr(args, "state");
	if (!json_is_array(list) || state == NULL) {
		return (sync_fail(res, ERR_PROTO, RETRY_LATER,
		    "Mailbox/get: answer without list or state"));
	}
	n = json_array_size(list);
	m->v = calloc(n + 1, sizeof(*m->v));
	short_names = calloc(n + 1, sizeof(*short_names));
	m->state = strdup(state);
	if (m->v == NULL || short_names == NULL || m->state == NULL) {
		rv = sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory");
		goto done;
	}
	json_array_foreach(list, i, o)
	{
		id = jstr(o, "id");
		name = jstr(o, "name");
		role = jstr(o, "role");
		parent = jstr(o, "parentId");
		if (id == NULL || name == NULL || name[0] == '\0') {
			rv = sync_fail(res, ERR_PROTO, RETRY_LATER,
			    "Mailbox/get: list[%zu] lacks id or name", i);
			goto done;
		}
		m->v[i].id = strdup(id);
		short_names[i] = strdup(name);
		m->v[i].role = role != NULL ? strdup(role) : NULL;
		m->v[i].parent_id = parent != NULL ? strdup(parent) : NULL;
		m->n = i + 1;
		if (m->v[i].id == NULL || short_names[i] == NULL
		    || (role != NULL && m->v[i].role == NULL)
		    || (parent != NULL && m->v[i].parent_id == NULL)) {
			rv = sync_fail(
			    res, ERR_NOMEM, RETRY_LATER, "out of memory");
			goto done;
		}
	}
	for (i = 0; i < m->n && rv == 0; i++) {
		rv = full_name(m, i, short_names, res);
	}
done:
	for (i = 0; short_names != NULL && i < n; i++) {
		free(short_names[i]);
	}
	free(short_names);
	if (rv != 0) {
		sync_jmap_mailboxes_release(m);
	}
	return (rv);
}

int
sync_jmap_get_mailboxes(struct jmap_client *cl, struct sync_jmap_mailboxes *m,
    struct sync_result *res)
{
	const struct jmap_session *s = jmap_client_session(cl);
	json_t *calls, *resp = NULL, *args;
	struct jmap_err e;
	int rv;

	memset(&e, 0, sizeof(e));
	calls = json_pack("[[s, {s:s, s:n, s:[sssss]}, s]]", "Mailbox/get",
	    "accountId", s->account_id, "ids", "properties", "id", "name",
	    "parentId", "role", "sortOrder", "m");
	if (calls == NULL) {
		return (
		    sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	rv = jmap_call(cl, calls, false, &resp, &e);
	json_decref(calls);
	if (rv == 0) {
		rv = jmap_response(
		    resp, "m", "Mailbox/get", &args, NULL, 0, &e);
	}
	if (rv != 0) {
		json_decref(resp);
		return (sync_jmap_fail(res, &e));
	}
	rv = sync_jmap_mailboxes_parse(args, m, res);
	json_decref(resp);
	return (rv);
}
