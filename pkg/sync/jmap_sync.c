/*
 * jmap_sync.c: the sync job of a JMAP account (RFC 8620, RFC 8621).
 *
 * The worker is stateless and needs the Mailbox id -> name table to key
 * rows. A later sync takes it from the lease (the store's mailboxes with
 * their ids) when Mailbox/changes since the stored Mailbox state, in the
 * first request, shows no mailbox created or destroyed and no updated one
 * renamed, moved or given another role (updates of counts are the common
 * case: Mailbox/get of the updated ids rides in the same request, so a
 * no-change sync is one request). Otherwise, and for a first sync, it is
 * one Mailbox/get of every mailbox (a few KB for tens of mailboxes; it
 * carries renames and deletions). An Email in a mailbox the table lacks
 * (created since it was read) makes the worker read the table again.
 * Then either
 *   - a first sync: Email/get with no ids, which gives the Email state
 *     BEFORE the listing, so that nothing created while pages are read
 *     slips between the listing and the next /changes; then pages of
 *     Email/query (anchored on the last id, so that a destroy between
 *     pages cannot shift one Email out of view) each with an Email/get of
 *     its ids by back-reference, in one request;
 *   - a later sync: Email/changes since the stored state with Email/get
 *     of the created and of the updated ids by back-reference (its first
 *     round in the Mailbox/changes request), looped until
 *     hasMoreChanges is false. cannotCalculateChanges resets every mailbox (the store
 *     keeps placeholders and the rows held by pending changes) and lists
 *     everything again. Otherwise the Emails the store names in the
 *     "EmailRefresh" state (a local change on them ended dead or
 *     cancelled) are read again, so their rows follow the server.
 * One Email in n mailboxes is n rows keyed by the Email id; each carries
 * the ids of all n mailboxes so the store follows server-side moves.
 * The new Mailbox and Email states go back in done.states.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap_int.h"

/* Emails asked for in one Email/get (capped by maxObjectsInGet). */
#define JSYNC_PAGE 1024u


static const char *const jsync_props[] = { "id", "blobId", "mailboxIds",
	"keywords", "messageId", "subject", "from", "to", "cc", "receivedAt",
	"sentAt", "size", "hasAttachment", "attachments" };
static const char *const jsync_body_props[]
    = { "partId", "size", "name", "type", "disposition", "cid" };
static const char *const jsync_mailbox_props[]
    = { "id", "name", "parentId", "role" };
/* Mailbox/changes asked for at once: more is a structural change anyway */
#define JSYNC_MAILBOX_CHANGES 256

struct jsync {
	const struct proto_job_run *job;
	const struct sync_limits *l;
	struct sync_result *res;
	struct jmap_client *cl;
	const struct jmap_session *s;
	struct sync_batcher *b;
	struct sync_jmap_mailboxes mb;
	struct sync_jmap_prefetch *pf;
	uint32_t page;
	char *email_state; /* the state the job ends at */
};

/* JSON helpers --------------------------------------------------------- */

static json_t *
str_array(const char *const *v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a != NULL && i < n; i++) {
		if (json_array_append_new(a, json_string(v[i])) != 0) {
			json_decref(a);
			return (NULL);
		}
	}
	return (a);
}

/* ["Email/get", {accountId, #ids: {resultOf, name, path}, properties,
 * bodyProperties}, cid] */
static json_t *
email_get_ref(struct jsync *x, const char *cid, const char *of,
    const char *of_name, const char *path)
{
	return (json_pack("[s, {s:s, s:{s:s, s:s, s:s}, s:o, s:o}, s]",
	    "Email/get", "accountId", x->s->account_id, "#ids", "resultOf", of,
	    "name", of_name, "path", path, "properties",
	    str_array(jsync_props, ARRAY_LEN(jsync_props)), "bodyProperties",
	    str_array(jsync_body_props, ARRAY_LEN(jsync_body_props)), cid));
}

/* Sends calls (stolen), finds each cid's answer in *resp_r. */
static int
call(struct jsync *x, json_t *calls, json_t **resp_r)
{
	struct jmap_err e;
	int rv;

	*resp_r = NULL;
	if (calls == NULL) {
		return (sync_fail(
		    x->res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	memset(&e, 0, sizeof(e));
	rv = jmap_call(x->cl, calls, false, resp_r, &e);
	json_decref(calls);
	return (rv != 0 ? sync_jmap_fail(x->res, &e) : ERR_OK);
}

/*
 * The answer to cid. A method error fails the job, unless its type is
 * `expected` (then ERR_SERVER is returned and res stays untouched).
 */
static int
answer(struct jsync *x, json_t *resp, const char *cid, const char *name,
    json_t **args_r, const char *expected)
{
	struct jmap_err e;
	char type[64] = "";
	int rv;

	memset(&e, 0, sizeof(e));
	rv = jmap_response(resp, cid, name, args_r, type, sizeof(type), &e);
	if (rv == ERR_SERVER && expected != NULL
	    && strcmp(type, expected) == 0) {
		return (ERR_SERVER);
	}
	if (rv != 0 && e.retry == RETRY_NOW) {
		e.retry = RETRY_LATER;
	}
	return (rv != 0 ? sync_jmap_fail(x->res, &e) : ERR_OK);
}

/* Rows ----------------------------------------------------------------- */

static struct proto_str
pstr(const char *s)
{
	return (proto_str_c(s));
}

/* Rows of one Email: one per mailbox it is in, attachments first. */
static int
add_email(struct jsync *x, json_t *e)
{
	const struct sync_jmap_mailbox *mbx;
	json_t *boxes = json_object_get(e, "mailboxIds"), *v;
	struct sync_jmap_erow r;
	const char *k, *first = NULL;
	int rv;

	if (json_string_value(json_object_get(e, "id")) == NULL
	    || !json_is_object(boxes)) {
		return (sync_fail(x->res, ERR_PROTO, RETRY_LATER,
		    "Email/get: an Email without id or mailboxIds"));
	}
	rv = sync_jmap_erow_fill(&r, e);
	json_object_foreach(boxes, k, v)
	{
		if (rv != 0) {
			break;
		}
		mbx = sync_jmap_mailbox_by_id(&x->mb, k);
		if (mbx == NULL || !json_is_true(v)) {
			/* a mailbox Mailbox/get did not list (created since,
			 * or hidden): its row comes with the next sync */
			continue;
		}
		r.m.mailbox = pstr(mbx->name);
		rv = sync_jmap_add_attachments(
		    x->b, e, mbx->name, r.m.remote_id.p);
		if (rv == 0) {
			rv = sync_batcher_add_message(x->b, &r.m);
		}
		if (first == NULL) {
			first = mbx->name;
		}
	}
	if (rv == 0 && first != NULL && x->pf != NULL) {
		rv = sync_jmap_prefetch_add(
		    x->pf, e, first, r.m.internal_date);
	}
	sync_jmap_erow_release(&r);
	return (rv != 0 && x->res->status == 0 ? sync_fail(
	            x->res, rv, RETRY_LATER, "building rows: %s", err_str(rv))
	                                       : rv);
}

static int add_mailboxes(struct jsync *x, bool reset);

/* The account's mailboxes within the worker's limit. */
static int
mailbox_limit(struct jsync *x)
{
	return (x->mb.n > x->l->max_mailboxes
	        ? sync_fail(x->res, ERR_TOOBIG, RETRY_NEVER,
	              "account has %zu mailboxes (limit %u)", x->mb.n,
	              x->l->max_mailboxes)
	        : ERR_OK);
}

/*
 * Every mailbox the Emails of list are in must be in the table, or the
 * Email's row there would be lost (the Email state moves past it): one
 * unknown (created since the table was read) makes the worker read the
 * table again with Mailbox/get, which, sent after this answer, lists any
 * mailbox it names, and send the mailbox rows again. One still unknown
 * is hidden from this user: add_email skips it.
 */
static int
known_mailboxes(struct jsync *x, json_t *list)
{
	json_t *e, *v;
	const char *k;
	size_t i;
	bool unknown = false;
	int rv;

	json_array_foreach(list, i, e)
	{
		json_object_foreach(json_object_get(e, "mailboxIds"), k, v)
		{
			unknown = unknown
			    || (json_is_true(v)
			        && sync_jmap_mailbox_by_id(&x->mb, k) == NULL);
		}
	}
	if (!unknown) {
		return (ERR_OK);
	}
	log_info("job=%llu event=jmap_mailboxes_read why=unknown_mailbox",
	    (unsigned long long)x->job->job_id);
	sync_jmap_mailboxes_release(&x->mb);
	rv = sync_jmap_get_mailboxes(x->cl, &x->mb, x->res);
	rv = rv != 0 ? rv : mailbox_limit(x);
	return (rv != 0 ? rv : add_mailboxes(x, false));
}

static int
add_emails(struct jsync *x, json_t *get_args)
{
	json_t *list = json_object_get(get_args, "list"), *e;
	size_t i;
	int rv;

	if (!json_is_array(list)) {
		return (sync_fail(x->res, ERR_PROTO, RETRY_LATER,
		    "Email/get: answer without list"));
	}
	rv = known_mailboxes(x, list);
	if (rv != 0) {
		return (rv);
	}
	json_array_foreach(list, i, e)
	{
		rv = add_email(x, e);
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}

/* Mailbox rows (reset: a full resync after cannotCalculateChanges). */
static int
add_mailboxes(struct jsync *x, bool reset)
{
	struct proto_mailbox_row r;
	size_t i;
	int rv;

	for (i = 0; i < x->mb.n; i++) {
		memset(&r, 0, sizeof(r));
		r.name = pstr(x->mb.v[i].name);
		r.delimiter = pstr(SYNC_JMAP_DELIM);
		r.remote_id = pstr(x->mb.v[i].id);
		r.reset = reset;
		r.role = pstr(sync_jmap_known_role(x->mb.v[i].role));
		rv = sync_batcher_add_mailbox(x->b, &r);
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}

/* Destroyed Email ids (a JSON array) as EXPUNGE_REMOTE rows. */
static int
add_destroyed(struct jsync *x, json_t *ids)
{
	struct proto_expunge_row e;
	struct buf v;
	json_t *id;
	size_t i;
	int rv = ERR_OK;

	if (json_array_size(ids) == 0) {
		return (ERR_OK);
	}
	buf_init(&v, PROTO_MAX_STR);
	json_array_foreach(ids, i, id)
	{
		const char *s = json_string_value(id);

		if (s == NULL || strchr(s, ' ') != NULL) {
			continue;
		}
		rv = v.len > 0 ? buf_addstr(&v, " ") : ERR_OK;
		rv = rv != 0 ? rv : buf_addstr(&v, s);
		if (rv != 0) {
			break;
		}
	}
	if (rv == 0 && v.len > 0) {
		memset(&e, 0, sizeof(e));
		e.mailbox = pstr("*");
		e.kind = EXPUNGE_REMOTE;
		e.uids.p = v.data;
		e.uids.len = v.len;
		rv = sync_batcher_send_expunges(x->b, &e, 1);
	}
	buf_release(&v);
	return (rv);
}

/* Steps ---------------------------------------------------------------- */

/* The first request: mailboxes, and the Email state (first sync) or the
 * first changes (later). */
static int
begin(struct jsync *x, const char *since, json_t **resp_r)
{
	json_t *calls;

	calls = json_pack("[[s, {s:s, s:n}, s]]", "Mailbox/get", "accountId",
	    x->s->account_id, "ids", "m");
	if (calls != NULL && since == NULL) {
		json_array_append_new(calls,
		    json_pack("[s, {s:s, s:[], s:[s]}, s]", "Email/get",
		        "accountId", x->s->account_id, "ids", "properties",
		        "id", "s"));
	}
	return (call(x, calls, resp_r));
}

/* The first sync's listing, from the Email state already read. */
static int
list_all(struct jsync *x)
{
	json_t *calls, *resp, *q, *g, *ids, *sort;
	char *anchor = NULL;
	size_t n;
	int rv;

	for (;;) {
		sort = json_pack("[{s:s, s:b}, {s:s, s:b}]", "property",
		    "receivedAt", "isAscending", 1, "property", "id",
		    "isAscending", 1);
		q = json_pack("{s:s, s:o, s:I, s:b}", "accountId",
		    x->s->account_id, "sort", sort, "limit",
		    (json_int_t)x->page, "calculateTotal", 0);
		if (q != NULL && anchor != NULL) {
			json_object_set_new(q, "anchor", json_string(anchor));
			json_object_set_new(
			    q, "anchorOffset", json_integer(1));
		}
		calls = json_pack("[[s, o, s], o]", "Email/query", q, "q",
		    email_get_ref(x, "g", "q", "Email/query", "/ids"));
		rv = call(x, calls, &resp);
		if (rv == 0) {
			rv = answer(
			    x, resp, "q", "Email/query", &q, "anchorNotFound");
			if (rv == ERR_SERVER) {
				/* the anchor was destroyed meanwhile: list
				 * from the start again (upserts are
				 * idempotent) */
				free(anchor);
				anchor = NULL;
				json_decref(resp);
				continue;
			}
		}
		if (rv == 0) {
			rv = answer(x, resp, "g", "Email/get", &g, NULL);
		}
		if (rv == 0) {
			rv = add_emails(x, g);
		}
		if (rv == 0) {
			rv = sync_jmap_prefetch_run(x->pf);
		}
		ids = rv == 0 ? json_object_get(q, "ids") : NULL;
		n = json_array_size(ids);
		if (rv == 0 && n > 0) {
			free(anchor);
			anchor = xstrdup(
			    json_string_value(json_array_get(ids, n - 1)));
			if (anchor == NULL) {
				rv = sync_fail(x->res, ERR_NOMEM, RETRY_LATER,
				    "out of memory");
			}
		}
		json_decref(resp);
		if (rv != 0 || n < x->page) {
			break;
		}
	}
	free(anchor);
	return (rv);
}

/* Email/changes since `state` with Email/get of the created and the
 * updated ids: three calls, appended to calls (NULL: out of memory). */
static json_t *
email_changes(struct jsync *x, json_t *calls, const char *state)
{
	if (calls != NULL
	    && (json_array_append_new(calls,
	            json_pack("[s, {s:s, s:s, s:I}, s]", "Email/changes",
	                "accountId", x->s->account_id, "sinceState", state,
	                "maxChanges", (json_int_t)x->page, "c"))
	            != 0
	        || json_array_append_new(calls,
	               email_get_ref(x, "gc", "c", "Email/changes", "/created"))
	            != 0
	        || json_array_append_new(calls,
	               email_get_ref(x, "gu", "c", "Email/changes", "/updated"))
	            != 0)) {
		json_decref(calls);
		return (NULL);
	}
	return (calls);
}

/* Email/changes rounds from since until hasMoreChanges is false, the
 * first from `first` when not NULL (an answer that holds the calls of
 * email_changes; stolen). *reset_r when the server cannot calculate them
 * (a full listing is needed). */
static int
changes(struct jsync *x, const char *since, json_t *first, bool *reset_r)
{
	json_t *calls, *resp, *c, *g;
	char *state = xstrdup(since);
	bool more = false;
	int rv = state == NULL ? ERR_NOMEM : ERR_OK;

	*reset_r = false;
	while (rv == 0) {
		if (first != NULL) {
			resp = first;
			first = NULL;
		} else {
			calls = email_changes(x, json_array(), state);
			rv = call(x, calls, &resp);
			if (rv != 0) {
				break;
			}
		}
		rv = answer(x, resp, "c", "Email/changes", &c,
		    "cannotCalculateChanges");
		if (rv == ERR_SERVER) {
			*reset_r = true;
			rv = ERR_OK;
			json_decref(resp);
			break;
		}
		if (rv == 0) {
			rv = add_destroyed(x, json_object_get(c, "destroyed"));
		}
		if (rv == 0) {
			rv = answer(x, resp, "gc", "Email/get", &g, NULL);
		}
		if (rv == 0) {
			rv = add_emails(x, g);
		}
		if (rv == 0) {
			rv = answer(x, resp, "gu", "Email/get", &g, NULL);
		}
		if (rv == 0) {
			rv = add_emails(x, g);
		}
		if (rv == 0) {
			rv = sync_jmap_prefetch_run(x->pf);
		}
		if (rv == 0) {
			const char *ns = json_string_value(
			    json_object_get(c, "newState"));

			more = json_is_true(
			    json_object_get(c, "hasMoreChanges"));
			if (ns == NULL) {
				rv = sync_fail(x->res, ERR_PROTO, RETRY_LATER,
				    "Email/changes: answer without newState");
			} else {
				free(state);
				state = xstrdup(ns);
				rv = state == NULL ? ERR_NOMEM : ERR_OK;
			}
		}
		json_decref(resp);
		if (rv != 0 || !more) {
			break;
		}
	}
	json_decref(first); /* left when state could not be copied */
	if (rv == 0) {
		free(x->email_state);
		x->email_state = state;
		state = NULL;
	}
	free(state);
	return (rv != 0 && x->res->status == 0
	        ? sync_fail(x->res, rv, RETRY_LATER, "%s", err_str(rv))
	        : rv);
}

/*
 * The Emails the store asks to read again (job state "EmailRefresh", ids
 * separated by spaces: a local change on them ended dead or cancelled, so
 * their rows must follow the server even though /changes may not list
 * them): Email/get in pages; the ones found are full rows (with their
 * mailboxes, so a row in the wrong mailbox moves), notFound ones are
 * destroyed.
 */
static int
refresh(struct jsync *x)
{
	json_t *ids = NULL, *calls, *resp, *g;
	const char *p, *end, *q;
	size_t len;
	int rv = ERR_OK;

	p = sync_jmap_job_state(x->job, "EmailRefresh", &len);
	end = p != NULL ? p + len : NULL;
	while (rv == 0 && p != NULL && p < end) {
		ids = json_array(); /* a page of ids */
		rv = ids != NULL ? ERR_OK : ERR_NOMEM;
		while (rv == 0 && p < end && json_array_size(ids) < x->page) {
			while (p < end && *p == ' ') {
				p++;
			}
			for (q = p; q < end && *q != ' '; q++) { }
			if (q > p
			    && json_array_append_new(
			           ids, json_stringn(p, (size_t)(q - p)))
			        != 0) {
				rv = ERR_NOMEM;
			}
			p = q;
		}
		if (rv != 0 || json_array_size(ids) == 0) {
			break;
		}
		calls = json_pack("[[s, {s:s, s:o, s:o, s:o}, s]]",
		    "Email/get", "accountId", x->s->account_id, "ids", ids,
		    "properties",
		    str_array(jsync_props, ARRAY_LEN(jsync_props)),
		    "bodyProperties",
		    str_array(jsync_body_props, ARRAY_LEN(jsync_body_props)),
		    "r");
		ids = NULL; /* stolen */
		rv = call(x, calls, &resp);
		if (rv == 0) {
			rv = answer(x, resp, "r", "Email/get", &g,
			    "invalidArguments");
		}
		if (rv == ERR_SERVER) {
			/* an id the server refuses must not fail every sync:
			 * the request ends with this job's done */
			log_warnx("job=%llu event=jmap_refresh_refused",
			    (unsigned long long)x->job->job_id);
			rv = ERR_OK;
			g = NULL;
		}
		if (rv == 0 && g != NULL) {
			rv = add_emails(x, g);
		}
		if (rv == 0 && g != NULL) {
			rv = add_destroyed(x, json_object_get(g, "notFound"));
		}
		if (rv == 0) {
			rv = sync_jmap_prefetch_run(x->pf);
		}
		json_decref(resp);
	}
	json_decref(ids);
	return (rv != 0 && x->res->status == 0
	        ? sync_fail(x->res, rv, RETRY_LATER, "%s", err_str(rv))
	        : rv);
}

/* done: the mailbox names and the two state strings. */
static int
finish(struct jsync *x)
{
	struct sync_result *res = x->res;
	size_t i;

	res->mailboxes = calloc(x->mb.n + 1, sizeof(*res->mailboxes));
	res->states = calloc(2, sizeof(*res->states));
	if (res->mailboxes == NULL || res->states == NULL) {
		return (
		    sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	for (i = 0; i < x->mb.n; i++) {
		res->mailboxes[i] = pstr(xstrdup(x->mb.v[i].name));
		if (res->mailboxes[i].p == NULL) {
			return (sync_fail(
			    res, ERR_NOMEM, RETRY_LATER, "out of memory"));
		}
		res->nmailboxes = i + 1;
	}
	res->states[0].resource = pstr(xstrdup("Mailbox"));
	res->states[0].state = pstr(xstrdup(x->mb.state));
	res->states[1].resource = pstr(xstrdup("Email"));
	res->states[1].state = pstr(xstrdup(x->email_state));
	res->nstates = 2;
	for (i = 0; i < 2; i++) {
		if (res->states[i].resource.p == NULL
		    || res->states[i].state.p == NULL) {
			return (sync_fail(
			    res, ERR_NOMEM, RETRY_LATER, "out of memory"));
		}
	}
	return (ERR_OK);
}

/*
 * A later sync's first request, when the lease holds the mailbox table:
 * Mailbox/changes since mstate, Mailbox/get of its updated ids and the
 * first Email/changes round. x->mb is then the lease's table (moved out
 * of *lease) when the mailboxes did not change structurally, else a
 * Mailbox/get read afterwards. The answer goes to *resp_r for changes()
 * (caller decrefs; NULL when the session takes fewer than five calls in
 * a request: the mailbox pair went alone).
 */
static int
begin_changes(struct jsync *x, struct sync_jmap_mailboxes *lease,
    const char *mstate, const char *since, json_t **resp_r)
{
	json_t *calls, *mresp = NULL;
	const char *st;
	bool same;
	int rv;

	*resp_r = NULL;
	calls = json_pack("[[s, {s:s, s:s, s:I}, s],"
	                  " [s, {s:s, s:{s:s, s:s, s:s}, s:o}, s]]",
	    "Mailbox/changes", "accountId", x->s->account_id, "sinceState",
	    mstate, "maxChanges", (json_int_t)JSYNC_MAILBOX_CHANGES, "mc",
	    "Mailbox/get", "accountId", x->s->account_id, "#ids", "resultOf",
	    "mc", "name", "Mailbox/changes", "path", "/updated", "properties",
	    str_array(jsync_mailbox_props, ARRAY_LEN(jsync_mailbox_props)),
	    "mu");
	/* the five calls in one request where the session allows it; else
	 * the mailbox pair alone, and changes() sends Email/changes */
	if (x->s->max_calls_in_request >= 5) {
		rv = call(x, email_changes(x, calls, since), resp_r);
		mresp = *resp_r;
	} else {
		rv = call(x, calls, &mresp);
	}
	if (rv != 0) {
		return (rv);
	}
	same = sync_jmap_mailboxes_unchanged(
	    mresp, lease, x->job->job_id, &st);
	if (same) {
		x->mb = *lease;
		memset(lease, 0, sizeof(*lease)); /* moved to x->mb */
		free(x->mb.state);
		x->mb.state = xstrdup(st);
	}
	if (mresp != *resp_r) {
		json_decref(mresp);
	}
	if (same) {
		return (x->mb.state == NULL ? sync_fail(x->res, ERR_NOMEM,
		                                  RETRY_LATER, "out of memory")
		                            : ERR_OK);
	}
	log_info("job=%llu event=jmap_mailboxes_read why=mailbox_changes",
	    (unsigned long long)x->job->job_id);
	return (sync_jmap_get_mailboxes(x->cl, &x->mb, x->res));
}

static int
jsync_body(struct jsync *x)
{
	struct sync_jmap_mailboxes lease;
	json_t *resp = NULL, *first = NULL, *args;
	const char *since_p, *st;
	char *since = NULL, *mstate = NULL;
	size_t since_len;
	bool reset = false, use_lease = false;
	int rv = ERR_OK;

	memset(&lease, 0, sizeof(lease));
	since_p = sync_jmap_job_state(x->job, "Email", &since_len);
	if (since_p != NULL) {
		since = xstrndup(since_p, since_len);
		st = sync_jmap_job_state(x->job, "Mailbox", &since_len);
		mstate = st != NULL ? xstrndup(st, since_len) : NULL;
		if (since == NULL || (st != NULL && mstate == NULL)) {
			rv = ERR_NOMEM;
		}
	}
	if (rv == 0 && mstate != NULL) {
		rv = sync_jmap_lease_table(x->job, mstate, &lease, &use_lease);
	}
	if (rv != 0) {
		free(since);
		free(mstate);
		return (sync_fail(
		    x->res, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	if (use_lease) {
		rv = begin_changes(x, &lease, mstate, since, &first);
	} else {
		rv = begin(x, since, &resp);
		if (rv == 0) {
			rv = answer(x, resp, "m", "Mailbox/get", &args, NULL);
		}
		if (rv == 0) {
			rv = sync_jmap_mailboxes_parse(args, &x->mb, x->res);
		}
	}
	sync_jmap_mailboxes_release(&lease);
	free(mstate);
	if (rv == 0) {
		rv = mailbox_limit(x);
	}
	if (rv == 0 && since != NULL) {
		rv = add_mailboxes(x, false);
		if (rv == 0) {
			rv = changes(x, since, first, &reset);
			first = NULL; /* stolen */
		}
		if (rv == 0 && !reset) {
			rv = refresh(x); /* a reset lists everything anyway */
		}
		if (rv == 0 && reset) {
			log_info("job=%llu event=jmap_resync "
			         "why=cannotCalculateChanges",
			    (unsigned long long)x->job->job_id);
			json_decref(resp);
			resp = NULL;
			free(since);
			since = NULL;
			rv = begin(x, NULL, &resp);
		}
	}
	json_decref(first);
	if (rv == 0 && since == NULL) {
		if (!reset) {
			rv = add_mailboxes(x, false);
		} else {
			rv = add_mailboxes(x, true);
		}
		if (rv == 0) {
			rv = answer(x, resp, "s", "Email/get", &args, NULL);
		}
		st = rv == 0
		    ? json_string_value(json_object_get(args, "state"))
		    : NULL;
		if (rv == 0 && st == NULL) {
			rv = sync_fail(x->res, ERR_PROTO, RETRY_LATER,
			    "Email/get: answer without state");
		}
		if (rv == 0) {
			free(x->email_state); /* a resync replaces it */
			x->email_state = xstrdup(st);
			rv = x->email_state == NULL ? ERR_NOMEM : ERR_OK;
		}
		if (rv == 0) {
			rv = list_all(x);
		}
	}
	json_decref(resp);
	free(since);
	if (rv == 0) {
		rv = sync_batcher_flush(x->b);
	}
	if (rv == 0) {
		rv = finish(x);
	}
	return (rv != 0 && x->res->status == 0
	        ? sync_fail(x->res, rv, RETRY_LATER, "%s", err_str(rv))
	        : rv);
}

int
sync_jmap_run(const struct proto_job_run *job, const struct sync_limits *l,
    struct sync_conns *conns, const struct sync_sink *sink,
    struct sync_result *res)
{
	struct jsync x;
	int rv;

	memset(&x, 0, sizeof(x));
	x.job = job;
	x.l = l;
	x.res = res;
	rv = sync_jmap_open(job, l, conns, &x.cl, res);
	if (rv != 0) {
		return (rv);
	}
	x.s = jmap_client_session(x.cl);
	x.page = x.s->max_objects_in_get < JSYNC_PAGE ? x.s->max_objects_in_get
	                                              : JSYNC_PAGE;
	if (x.page == 0) {
		x.page = 1;
	}
	rv = sync_batcher_new(job->job_id, job->attempt, l, sink, &x.b);
	if (rv == 0) {
		rv = sync_jmap_prefetch_new(x.cl, job, x.b, res, &x.pf);
	}
	if (rv == 0) {
		rv = jsync_body(&x);
	} else {
		sync_fail(res, rv, RETRY_LATER, "%s", err_str(rv));
	}
	res->nbatches = x.b != NULL ? sync_batcher_nbatches(x.b) : 0;
	res->messages = x.b != NULL ? sync_batcher_nmessages(x.b) : 0;
	sync_jmap_prefetch_free(&x.pf);
	sync_batcher_free(&x.b);
	sync_jmap_mailboxes_release(&x.mb);
	free(x.email_state);
	sync_jmap_close(conns, job, &x.cl, res);
	return (res->status);
}
