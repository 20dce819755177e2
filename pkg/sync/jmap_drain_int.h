/*
 * jmap_drain_int.h: internals of the JMAP drain job shared by its files
 * and its unit test (tests/unit/sync_jmap_drain_test.c), not by other
 * modules.
 *
 *   jmap_drain_plan.c  pure: keyword paths, Email/set patches, rounds of
 *                      changes to one Email, SetError outcomes, the
 *                      submission envelope read from a message, requests
 *                      packed under the session's limits
 *   jmap_drain.c       the job: Mailbox/get, results, Email/set calls,
 *                      batched flag updates
 *   jmap_drain_expunge.c  move, delete (to a mailbox, --expunge): Email/get
 *                      of the mailboxes + guarded Email/set
 *   jmap_drain_append.c   appends: Message-ID query, upload, Email/import
 *   jmap_drain_send.c  sends: upload, Email/import into Drafts and
 *                      EmailSubmission/set in one request
 */
#ifndef MAILSYNC_SYNC_JMAP_DRAIN_INT_H
#define MAILSYNC_SYNC_JMAP_DRAIN_INT_H

#include "drain_int.h"
#include "jmap_int.h"

/* Longest JMAP keyword (RFC 8621 2.1: 1..255 characters). */
#define JDRAIN_MAX_KEYWORD 255u
/* Room for "keywords/" + an escaped keyword (each char may double). */
#define JDRAIN_MAX_PATH (16u + 2u * JDRAIN_MAX_KEYWORD)

/* Pure planning (jmap_drain_plan.c) ------------------------------------ */

/*
 * Writes the JMAP keyword of an IMAP keyword kw[0..len) into out (cap
 * bytes, NUL-terminated): lower-cased (JMAP keywords are case-insensitive
 * and Cyrus answers them in lower case). ERR_INVAL when kw is empty,
 * longer than JDRAIN_MAX_KEYWORD or holds a character RFC 8621 forbids
 * (outside %x21-7e, or one of ( ) { ] % * " \), ERR_TOOBIG when cap is
 * too small.
 */
int jdrain_keyword(const char *kw, size_t len, char *out, size_t cap);

/*
 * Writes the patch path "keywords/<kw>" of an IMAP keyword kw[0..len)
 * into out (cap bytes): jdrain_keyword() escaped as a JSON pointer
 * ("~" -> "~0", "/" -> "~1"). Errors as jdrain_keyword().
 */
int jdrain_keyword_path(const char *kw, size_t len, char *out, size_t cap);

/*
 * Builds the Email/set patch of change c (flag, move, or delete to a
 * mailbox) into *patch_r (a new object, caller json_decref()s):
 *   flag: "keywords/<k>": true for flags_add and keywords_add, null for
 *         flags_remove and keywords_remove (\Deleted has no keyword and
 *         is left out; a keyword both added and removed is removed);
 *   move, delete to a mailbox: "mailboxIds/<src_id>": null and
 *         "mailboxIds/<dst_id>": true (src_id NULL: only the add);
 *   delete --expunge of an Email also in other mailboxes: src_id only.
 * ERR_INVAL for a bad keyword, ERR_NOTFOUND for a patch with nothing in
 * it (a flag change of \Deleted only), ERR_NOMEM.
 */
int jdrain_patch(const struct proto_change *c, const char *src_id,
    const char *dst_id, json_t **patch_r);

/* The keywords object of Email/import ({"$seen": true, ...}) of flags
 * (PROTO_FLAG_*) and list (space-separated), new reference in *obj_r.
 * ERR_INVAL for a bad keyword, ERR_NOMEM. */
int jdrain_keywords(uint32_t flags, struct proto_str list, json_t **obj_r);

/*
 * The round of each change: round[i] = how many of chg[0..i) carry the
 * same Email id (remote_id). Changes of one round can share one
 * Email/set call (an update map holds an id once); later rounds go in
 * later calls, so the server applies them in order. chg borrowed.
 * Returns the number of rounds (0 when n == 0), or 0 with *rv_r set on
 * ERR_NOMEM.
 */
uint32_t jdrain_rounds(const struct proto_change *const *chg, size_t n,
    uint32_t *round, int *rv_r);

/* Request limits (jmap_drain_plan.c) ----------------------------------- */

/* What one request may hold: the session's limits and the JSON bytes of
 * what surrounds the objects (jdrain_limits_of fills it). */
struct jdrain_limits {
	size_t objects; /* objects in one call (>= 1) */
	size_t calls; /* method calls in one request (>= 1) */
	size_t bytes; /* bytes of one request's JSON body (maxSizeRequest) */
	size_t envelope; /* bytes of a request with no method call */
	size_t call; /* bytes one call adds besides its objects */
};

/* Where jdrain_pack puts an object. */
struct jdrain_slot {
	size_t call; /* its call: 0, 1, ... */
	size_t request; /* its request: 0, 1, ...; a call is in one request */
};

/*
 * Fills *l for Email/set calls (get: Email/get + guarded Email/set pairs,
 * one pair per request) of session s (borrowed): objects =
 * min(maxObjectsInSet (and maxObjectsInGet for get), JDRAIN_MAX_OBJECTS),
 * calls = maxCallsInRequest (1 for get), bytes = maxSizeRequest, and the
 * envelope and per-call bytes measured on the JSON the client sends, with
 * room for the ifInState of a guarded call. ERR_NOMEM.
 */
int jdrain_limits_of(
    const struct jmap_session *s, bool get, struct jdrain_limits *l);

/* Bytes an Email/set entry adds to a request: "id":patch, or "id" in
 * destroy (patch NULL), with its separator; 0 on ERR_NOMEM. Borrowed. */
size_t jdrain_entry_bytes(const char *id, json_t *patch);

/* True when an object of `bytes` fits a request alone. */
bool jdrain_fits(const struct jdrain_limits *l, size_t bytes);

/*
 * Packs objects [0, n) of bytes[k] each (jdrain_entry_bytes), in order,
 * into calls and requests: a call holds at most l->objects objects, all
 * of one round (round[] does not decrease: a new round starts a new call,
 * which the server runs after the previous one); a request at most
 * l->calls calls and l->bytes bytes (envelope + calls + objects). An
 * object that does not fit alone (callers check jdrain_fits first) gets
 * a request of its own. slot[k] tells each object's call and request.
 * Returns the number of requests (0 when n == 0); *ncalls_r the number
 * of calls. Pure; arrays borrowed.
 */
size_t jdrain_pack(const size_t *bytes, const uint32_t *round, size_t n,
    const struct jdrain_limits *l, struct jdrain_slot *slot, size_t *ncalls_r);

/* CHANGE_OUT_RETRY for the SetError and method error types of a passing
 * condition (serverFail, serverUnavailable, serverPartialFail, rateLimit,
 * stateMismatch, tooManyChanges), CHANGE_OUT_DEAD for every other type
 * (notFound, invalidPatch, forbidden, overQuota, tooLarge, ...). */
uint8_t jdrain_error_outcome(const char *type);

/*
 * Reads a SetError or method error object (borrowed; may be NULL) as
 * "<what>: <type>: <description>" into text (cap bytes) and its type
 * into type (tcap bytes; "unknown" when absent).
 */
void jdrain_error_text(json_t *err, const char *what, char *type, size_t tcap,
    char *text, size_t cap);

/*
 * The submission envelope of the raw message msg[0..len): mailFrom from
 * Sender or the first From, rcptTo from every To, Cc and Bcc address
 * (repeats dropped, compared without case), as the JMAP Envelope object
 * {"mailFrom": {"email": a}, "rcptTo": [{"email": b}, ...]} in *env_r
 * (new reference); *from_r (malloc'd) gets the From address for the
 * Identity choice (the first From; else the sender). ERR_NOTFOUND when
 * there is no sender or no recipient, ERR_INVAL for an unreadable field,
 * ERR_NOMEM. On error *env_r and *from_r are NULL.
 */
int jdrain_envelope(
    const char *msg, size_t len, json_t **env_r, char **from_r);

/* The job (jmap_drain.c, jmap_drain_send.c) ---------------------------- */

struct jdrain {
	const struct proto_job_run *job;
	const struct sync_limits *lim;
	struct sync_result *res;
	struct jmap_client *cl;
	const struct jmap_session *s;
	struct sync_batcher *b;
	struct sync_jmap_mailboxes mb;
	bool *answered; /* per change: its result is queued */
	size_t n;
	int sink_rv; /* results could not be sent */
	uint32_t counts[CHANGE_OUT_UNCERTAIN + 1];
};

/* Emails in one Email/set or Email/get call at most (also capped by the
 * session's maxObjectsInSet / maxObjectsInGet; the bytes of a request
 * are bounded by jdrain_pack): bounds one call's work at the server. */
#define JDRAIN_MAX_OBJECTS 500u
#define JDRAIN_MAX_ID 256u /* longest Email id carried (RFC 8620: 255) */

/* A change of an Email/set call, with its patch. */
struct jdrain_cchg {
	size_t i; /* index in the job */
	json_t *patch; /* owned; NULL for a destroy */
};

/* One Email/set call being built (jdrain_call_release frees). */
struct jdrain_call {
	json_t *update; /* id -> patch */
	json_t *destroy;
	struct jdrain_cchg *v;
	size_t n;
};

/* Adds change i (Email id; patch taken, NULL: destroy) to c, whose
 * change array is allocated for cap changes at the first add. ERR_NOMEM. */
int jdrain_call_add(struct jdrain_call *c, size_t i, const char *id,
    json_t *patch, size_t cap);
void jdrain_call_release(struct jdrain_call *c);
/* The ["Email/set", {...}, cid] of c (if_in_state may be NULL); NULL on
 * ERR_NOMEM. */
json_t *jdrain_call_json(const struct jdrain *d, const struct jdrain_call *c,
    const char *cid, const char *if_in_state);
/* Answers each change of c from an Email/set answer (args, borrowed) or,
 * args NULL, from its method error (type, text): done (a move, delete to
 * a mailbox or append in its to_mailbox, keyed by the Email id), or the
 * SetError's outcome. */
void jdrain_answer_set(struct jdrain *d, const struct jdrain_call *c,
    json_t *args, const char *type, const char *text);
/* Change i's Email id NUL-terminated in buf (cap bytes); "" when none. */
const char *jdrain_email_id(
    const struct jdrain *d, size_t i, char *buf, size_t cap);
/* Sends a request (calls borrowed): 0 with *resp_r (the caller
 * json_decref()s it), or a job-level error with res filled. */
int jdrain_request(
    struct jdrain *d, json_t *calls, bool submission, json_t **resp_r);

/* Step 4 (jmap_drain_expunge.c): every move, delete to a mailbox and
 * delete --expunge still open, each checked against the Email's current
 * mailboxes first. Step 5 (jmap_drain_append.c): append change i. Both
 * answer their changes and flush; non-zero: a job-level error with res
 * filled. */
int jdrain_guarded(struct jdrain *d);
int jdrain_append(struct jdrain *d, size_t i);

/* Queues change i's result (error: text, sanitized here; mailbox and
 * remote_id for done, NULL otherwise). A change answers once. */
void jdrain_answer(struct jdrain *d, size_t i, uint8_t outcome,
    const char *error, const char *mailbox, const char *remote_id);
void jdrain_answer_err(struct jdrain *d, size_t i, uint8_t outcome,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Sends the queued results as one batch; the sink's error, res filled. */
int jdrain_flush(struct jdrain *d);

/* The mailbox id of a change's name (NULL when the server has none). */
const char *jdrain_mailbox_id(const struct jdrain *d, struct proto_str name);

/*
 * Sends change i (kind send, step 0): upload, Email/import into Drafts,
 * EmailSubmission/set moving it to Sent on success, in one request.
 * Answers the change (uncertain when the request may have reached the
 * server and no answer came back). Returns 0, or a job-level error with
 * res filled (the connection is lost: the caller answers the rest).
 */
int jdrain_send(struct jdrain *d, size_t i, json_t *identities);

/* Uploads data[0..len) (borrowed) as message/rfc822 for change i:
 * *blob_r (malloc'd), or NULL with the change answered dead (the server
 * refused this message), or a job-level error with res filled. */
int jdrain_upload(
    struct jdrain *d, size_t i, const char *data, size_t len, char **blob_r);

/* Identity/get's list (new reference in *list_r), for jdrain_send. When
 * the server answers with an error, every send still open is answered
 * with it and *list_r is NULL (0); a failed request is the job's error. */
int jdrain_identities(struct jdrain *d, json_t **list_r);

#endif
