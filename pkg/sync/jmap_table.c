/*
 * jmap_table.c: the Mailbox id -> name table of a later JMAP sync taken
 * from the lease (the store's mailboxes with their ids) instead of a
 * Mailbox/get, and the check that Mailbox/changes leaves it as it is
 * (jmap_sync.c sends the request).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap_int.h"

static const char *const jtable_roles[]
    = { "inbox", "sent", "drafts", "trash", "junk", "archive" };

const char *
sync_jmap_known_role(const char *role)
{
	size_t k;

	for (k = 0; role != NULL && k < ARRAY_LEN(jtable_roles); k++) {
		if (strcmp(role, jtable_roles[k]) == 0) {
			return (jtable_roles[k]);
		}
	}
	return (NULL);
}

int
sync_jmap_lease_table(const struct proto_job_run *job, const char *state,
    struct sync_jmap_mailboxes *m, bool *ok_r)
{
	const struct proto_checkpoint *cp;
	size_t i;

	memset(m, 0, sizeof(*m));
	*ok_r = false;
	for (i = 0; i < job->ncheckpoints; i++) {
		if (job->checkpoints[i].remote_id.len == 0) {
			return (ERR_OK);
		}
	}
	if (job->ncheckpoints == 0) {
		return (ERR_OK);
	}
	m->v = calloc(job->ncheckpoints, sizeof(*m->v));
	m->state = xstrdup(state);
	if (m->v == NULL || m->state == NULL) {
		sync_jmap_mailboxes_release(m);
		return (ERR_NOMEM);
	}
	for (i = 0; i < job->ncheckpoints; i++) {
		cp = &job->checkpoints[i];
		m->v[i].id = xstrndup(cp->remote_id.p, cp->remote_id.len);
		m->v[i].name = xstrndup(cp->mailbox.p, cp->mailbox.len);
		m->v[i].role = cp->role.p != NULL
		    ? xstrndup(cp->role.p, cp->role.len)
		    : NULL;
		m->n = i + 1;
		if (m->v[i].id == NULL || m->v[i].name == NULL
		    || (cp->role.p != NULL && m->v[i].role == NULL)) {
			sync_jmap_mailboxes_release(m);
			return (ERR_NOMEM);
		}
	}
	*ok_r = true;
	return (ERR_OK);
}

/* Is o (a Mailbox/get entry) the mailbox t holds under its id: same full
 * name (its parent's full name in t, "/", its name) and role? */
static bool
mailbox_same(const struct sync_jmap_mailboxes *t, json_t *o)
{
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *parent
	    = json_string_value(json_object_get(o, "parentId"));
	const char *role = sync_jmap_known_role(
	    json_string_value(json_object_get(o, "role")));
	const struct sync_jmap_mailbox *cur, *up = NULL;
	size_t pl = 0;

	cur = id != NULL ? sync_jmap_mailbox_by_id(t, id) : NULL;
	if (cur == NULL || name == NULL
	    || (parent != NULL
	        && (up = sync_jmap_mailbox_by_id(t, parent)) == NULL)) {
		return (false);
	}
	if (up != NULL) {
		pl = strlen(up->name);
		if (strncmp(cur->name, up->name, pl) != 0
		    || strncmp(cur->name + pl, SYNC_JMAP_DELIM,
		           strlen(SYNC_JMAP_DELIM))
		        != 0) {
			return (false);
		}
		pl += strlen(SYNC_JMAP_DELIM);
	}
	return (strcmp(cur->name + pl, name) == 0
	    && ((role == NULL && cur->role == NULL)
	        || (role != NULL && cur->role != NULL
	            && strcmp(role, cur->role) == 0)));
}

bool
sync_jmap_mailboxes_unchanged(json_t *resp,
    const struct sync_jmap_mailboxes *t, uint64_t job_id,
    const char **state_r)
{
	struct jmap_err e;
	json_t *mc, *mu, *o;
	size_t i;

	*state_r = NULL;
	memset(&e, 0, sizeof(e));
	if (jmap_response(resp, "mc", "Mailbox/changes", &mc, NULL, 0, &e)
	        != 0
	    || jmap_response(resp, "mu", "Mailbox/get", &mu, NULL, 0, &e)
	        != 0) {
		log_info("job=%llu event=jmap_mailbox_changes_refused "
		         "error=\"%s\"",
		    (unsigned long long)job_id, e.text);
		return (false);
	}
	if (json_is_true(json_object_get(mc, "hasMoreChanges"))
	    || json_array_size(json_object_get(mc, "created")) > 0
	    || json_array_size(json_object_get(mc, "destroyed")) > 0
	    || json_array_size(json_object_get(mu, "notFound")) > 0
	    || json_array_size(json_object_get(mu, "list"))
	        != json_array_size(json_object_get(mc, "updated"))) {
		return (false);
	}
	json_array_foreach(json_object_get(mu, "list"), i, o)
	{
		if (!mailbox_same(t, o)) {
			return (false);
		}
	}
	*state_r = json_string_value(json_object_get(mc, "newState"));
	return (*state_r != NULL);
}
