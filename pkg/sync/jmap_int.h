/*
 * jmap_int.h: what the JMAP jobs of pkg/sync share (jmap_common.c):
 * opening a client for a job, turning a jmap_err into a job failure,
 * the account's mailboxes (Mailbox/get) as a name/id/role table, and the
 * entry points called by sync.c.
 *
 *   jmap_common.c  the above
 *   jmap_sync.c    the sync job: Mailbox/get, Email/query+get (first
 *                  sync) or Email/changes+get (later), rows to the store
 *   jmap_body.c    blobs: the fetch_body job and prefetch by policy
 *   jmap_drain.c   the drain job: Email/set, Email/import, submission
 */
#ifndef MAILSYNC_SYNC_JMAP_INT_H
#define MAILSYNC_SYNC_JMAP_INT_H

#include "jmap/jmap.h"
#include "sync.h"

/* Mailbox names: parent names joined with this (JMAP has no delimiter). */
#define SYNC_JMAP_DELIM "/"

/*
 * Opens the account of job (server = session URL; auth "oauth2" sends
 * the password as a bearer token), or takes the client its last job on
 * this worker kept in conns (may be NULL). On failure res is filled
 * (auth and certificate failures RETRY_NEVER) and *cl_r is NULL.
 */
int sync_jmap_open(const struct proto_job_run *job,
    const struct sync_limits *l, struct sync_conns *conns,
    struct jmap_client **cl_r, struct sync_result *res);
/* Ends a job's use of *cl (then NULL): kept in conns for the account's
 * next job when the job succeeded (res->status 0) and the server's
 * session did not change meanwhile; closed otherwise. */
void sync_jmap_close(struct sync_conns *conns,
    const struct proto_job_run *job, struct jmap_client **cl,
    const struct sync_result *res);

/* Copies a client error into res (first failure wins). Returns status. */
int sync_jmap_fail(struct sync_result *res, const struct jmap_err *e);

/* One mailbox of the account; strings malloc'd. */
struct sync_jmap_mailbox {
	char *id;
	char *name; /* full name: the parents' names joined by "/" */
	char *role; /* lower-case JMAP role, or NULL */
	char *parent_id; /* NULL at the top */
};
struct sync_jmap_mailboxes {
	struct sync_jmap_mailbox *v;
	size_t n;
	char *state; /* Mailbox/get's state */
};

/*
 * Reads the arguments of a Mailbox/get answer (borrowed) into *m (full
 * names resolved through parentId; a cycle or a missing parent is
 * ERR_PROTO). sync_jmap_mailboxes_release frees.
 */
int sync_jmap_mailboxes_parse(json_t *args, struct sync_jmap_mailboxes *m,
    struct sync_result *res);
void sync_jmap_mailboxes_release(struct sync_jmap_mailboxes *m);
/* Lookups (NULL when absent); results borrowed from m. */
const struct sync_jmap_mailbox *sync_jmap_mailbox_by_id(
    const struct sync_jmap_mailboxes *m, const char *id);
const struct sync_jmap_mailbox *sync_jmap_mailbox_by_name(
    const struct sync_jmap_mailboxes *m, const char *name, size_t len);
const struct sync_jmap_mailbox *sync_jmap_mailbox_by_role(
    const struct sync_jmap_mailboxes *m, const char *role);

/*
 * Fetches every mailbox: one request of Mailbox/get (ids null).
 */
int sync_jmap_get_mailboxes(struct jmap_client *cl,
    struct sync_jmap_mailboxes *m, struct sync_result *res);

/* Email -> row fields (jmap_erow.c) ------------------------------------ */

/* The row fields of an Email shared by its rows in every mailbox: m's
 * strings point into the other members (and into the Email's JSON). */
struct sync_jmap_erow {
	struct proto_message_row m;
	char *from, *to, *cc, *kw, *msgid, *ids;
};
/* Fills *r from Email e (borrowed: r must not outlive it); release it
 * with sync_jmap_erow_release, also after a failure. */
int sync_jmap_erow_fill(struct sync_jmap_erow *r, json_t *e);
void sync_jmap_erow_release(struct sync_jmap_erow *r);
/* The attachment rows of e for its row in mailbox (Email id id), at most
 * SYNC_MAX_ATTACHMENTS, added to b. */
int sync_jmap_add_attachments(
    struct sync_batcher *b, json_t *e, const char *mailbox, const char *id);

/* Mailbox table from the lease (jmap_table.c) ------------------------- */

/* A JMAP role as the store keeps it: inbox, sent, drafts, trash, junk,
 * archive (a static string), else NULL. */
const char *sync_jmap_known_role(const char *role);
/*
 * The store's mailboxes (the lease's checkpoints with their Mailbox ids
 * and roles) as the table in *m, with state (copied); *ok_r false (m
 * empty) when there is none or one lacks an id (then Mailbox/get reads
 * the table). sync_jmap_mailboxes_release frees.
 */
int sync_jmap_lease_table(const struct proto_job_run *job, const char *state,
    struct sync_jmap_mailboxes *m, bool *ok_r);
/*
 * Do the answers to Mailbox/changes ("mc") and Mailbox/get of its updated
 * ids ("mu") in resp leave table t as it is? Then *state_r is the new
 * Mailbox state (borrowed from resp). A method error (logged with
 * job_id), more changes, a created or destroyed mailbox, or an updated
 * one renamed, moved or given another role: false.
 */
bool sync_jmap_mailboxes_unchanged(json_t *resp,
    const struct sync_jmap_mailboxes *t, uint64_t job_id,
    const char **state_r);

/* The state string of resource ("Email") among the job's states, or NULL
 * (a first sync). Borrowed from job; not NUL-terminated: *len_r. */
const char *sync_jmap_job_state(
    const struct proto_job_run *job, const char *resource, size_t *len_r);

/* IMAP system flag <-> JMAP keyword, by PROTO_FLAG_* bit. */
struct sync_jmap_flag {
	uint32_t bit;
	const char *keyword; /* "$seen" */
};
extern const struct sync_jmap_flag sync_jmap_flags[4];

/*
 * Body prefetch of the sync job (jmap_body.c), by the account's policy
 * (job->bodies: "all", "recent:DAYS"; none: *pf_r is NULL and the other
 * calls do nothing). _add queues an Email (its blobId and size read from
 * e, borrowed) whose row is in mailbox (copied); _run downloads what is
 * queued, each body streamed as chunk rows after the pending rows (a
 * body larger than job->max_body, or gone, gets an error row).
 */
struct sync_jmap_prefetch;
int sync_jmap_prefetch_new(struct jmap_client *cl,
    const struct proto_job_run *job, struct sync_batcher *b,
    struct sync_result *res, struct sync_jmap_prefetch **pf_r);
int sync_jmap_prefetch_add(struct sync_jmap_prefetch *pf, json_t *e,
    const char *mailbox, int64_t internal_date);
int sync_jmap_prefetch_run(struct sync_jmap_prefetch *pf);
void sync_jmap_prefetch_free(struct sync_jmap_prefetch **pf);

/* The jobs; called by sync_run for protocol "jmap" (conns may be NULL). */
int sync_jmap_run(const struct proto_job_run *job,
    const struct sync_limits *l, struct sync_conns *conns,
    const struct sync_sink *sink, struct sync_result *res);
int sync_jmap_fetch_body(const struct proto_job_run *job,
    const struct sync_limits *l, struct sync_conns *conns,
    const struct sync_sink *sink, struct sync_result *res);
int sync_jmap_drain(const struct proto_job_run *job,
    const struct sync_limits *l, struct sync_conns *conns,
    const struct sync_sink *sink, struct sync_result *res);

#endif
