/*
 * pkg/proto: every message that crosses a process boundary, and its msgpack
 * wire form. This header is the contract between mailsync-store,
 * -scheduler, -worker and -submit; docs/protocol.md describes the bytes.
 *
 * Wire form: one msgpack map per nng message,
 *     { "v": PROTO_VERSION, "t": "<type name>", "id": <u64>, "b": { body } }
 * Bodies are maps with named keys: unknown keys are ignored (rolling
 * upgrades), a missing required key or a value of the wrong type or range
 * is an error (ERR_PROTO with a message naming the key). "v" greater than
 * PROTO_VERSION is ERR_VERSION.
 *
 * Decoding is zero-copy for strings: every `struct proto_str` in a decoded
 * message points into the input buffer, which must outlive the message.
 * Arrays are allocated; proto_msg_release() frees them. Strings in a
 * message to be encoded are borrowed from the caller.
 */
#ifndef MAILSYNC_PROTO_H
#define MAILSYNC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1

/* Hard limits every decoder enforces before allocating. */
#define PROTO_MAX_MSG (16u * 1024 * 1024) /* one encoded message */
#define PROTO_MAX_ROWS 200000u		  /* rows in any array */
#define PROTO_MAX_STR (1024u * 1024)	  /* any single string */
/* A raw message to append or send (change_add.rfc822, change.rfc822): the
 * one string allowed past PROTO_MAX_STR. A drain job carries at most
 * PROTO_MAX_RFC822 bytes of such messages in all. */
#define PROTO_MAX_RFC822 (12u * 1024 * 1024)
/* Changes one drain job carries at most. */
#define PROTO_MAX_CHANGES 1000u

/* A byte string; not NUL-terminated on decode. len == 0 && p == NULL: nil */
struct proto_str {
	const char *p;
	size_t len;
};

/*
 * X(ENUM, "wire name", body struct member): every message type.
 * Direction in the comment: who sends -> who receives, over which socket.
 */
#define PROTO_MSG_TABLE(X)                                                  \
	/* submit -> store (REQ/REP control) */                             \
	X(MSG_SUBMIT_ACCOUNT_ADD, "submit.account.add", account_add)        \
	X(MSG_SUBMIT_ACCOUNT_LIST, "submit.account.list", none)             \
	X(MSG_SUBMIT_ACCOUNT_REMOVE, "submit.account.remove", name)         \
	X(MSG_SUBMIT_JOB_SUBMIT, "submit.job.submit", job_submit)           \
	X(MSG_SUBMIT_JOB_STATUS, "submit.job.status", job_status)           \
	X(MSG_SUBMIT_CHANGE_ADD, "submit.change.add", change_add)           \
	X(MSG_SUBMIT_CHANGE_LIST, "submit.change.list", change_list)        \
	X(MSG_SUBMIT_CHANGE_RESOLVE, "submit.change.resolve", change_resolve) \
	X(MSG_SUBMIT_MESSAGE_LIST, "submit.message.list", message_list)     \
	/* store -> any requester: the one reply type */                    \
	X(MSG_STORE_REPLY, "store.reply", reply)                            \
	/* scheduler -> store (REQ/REP control) */                          \
	X(MSG_SCHED_STATE_GET, "sched.state.get", none)                     \
	X(MSG_SCHED_JOB_CREATE, "sched.job.create", job_create)             \
	X(MSG_SCHED_JOB_LEASE, "sched.job.lease", job_lease)                \
	X(MSG_SCHED_JOB_RETRY, "sched.job.retry", job_retry)                \
	/* scheduler -> worker (PUSH/PULL jobs) */                          \
	X(MSG_WORKER_JOB_RUN, "worker.job.run", job_run)                    \
	/* worker -> store (PUSH/PULL results) */                           \
	X(MSG_WORKER_RESULT_BATCH, "worker.result.batch", batch)            \
	X(MSG_WORKER_RESULT_DONE, "worker.result.done", done)               \
	/* watcher -> store (PUSH/PULL results): lease renewal, change */   \
	X(MSG_WORKER_WATCH_EVENT, "worker.watch.event", watch_event)        \
	/* store -> scheduler (PUB/SUB events) */                           \
	X(MSG_STORE_EVENT, "store.event", event)

enum proto_msg_type {
	MSG_NONE = 0,
#define PROTO_ENUM_(e, name, body) e,
	PROTO_MSG_TABLE(PROTO_ENUM_)
#undef PROTO_ENUM_
	    MSG_TYPE_COUNT
};

/* Job kinds and states, as strings on the wire and in SQLite. */
enum proto_job_kind {
	JOB_KIND_SYNC = 0,
	JOB_KIND_DRAIN = 1,
	JOB_KIND_FETCH_BODY = 2, /* one message's raw body, on demand */
	JOB_KIND_WATCH = 3	 /* hold a push connection (IDLE/NOTIFY) */
};
enum proto_job_state {
	JOB_QUEUED = 0, /* waiting to be leased (maybe with a due time) */
	JOB_LEASED = 1, /* handed to a worker until lease_until */
	JOB_DONE = 2,	/* finished, checkpoint advanced */
	JOB_FAILED = 3, /* finished with a permanent error (RETRY_NEVER) */
	JOB_DEAD = 4	/* gave up after max attempts; last_error says why */
};
enum proto_priority { PRIO_PERIODIC = 0, PRIO_USER = 1 };

/* Message flag bits, as in messages.seen/answered/... */
#define PROTO_FLAG_SEEN 0x01u
#define PROTO_FLAG_ANSWERED 0x02u
#define PROTO_FLAG_FLAGGED 0x04u
#define PROTO_FLAG_DELETED 0x08u
#define PROTO_FLAG_DRAFT 0x10u
#define PROTO_FLAG_ALL 0x1fu

/* Local changes (pending_changes.kind / .state; docs/schema.md). */
enum proto_change_kind {
	CHANGE_FLAG = 0,   /* add/remove flags and keywords */
	CHANGE_MOVE = 1,   /* to another mailbox */
	CHANGE_DELETE = 2, /* move to the Trash role, or expunge */
	CHANGE_APPEND = 3, /* a new message into a mailbox */
	CHANGE_SEND = 4	   /* SMTP, then one copy in the Sent role */
};
enum proto_change_state {
	CHANGE_PENDING = 0,   /* durable, waiting for a drain job */
	CHANGE_INFLIGHT = 1,  /* carried by a leased drain job */
	CHANGE_DONE = 2,      /* the server confirmed it */
	CHANGE_DEAD = 3,      /* permanent failure; last_error has the words */
	CHANGE_UNCERTAIN = 4, /* send interrupted: maybe delivered; a user
				 decides (change resolve) */
	CHANGE_CANCELLED = 5  /* dropped by the user before it landed */
};
/* What a worker reports for one change (change_result.outcome). */
enum proto_change_outcome {
	CHANGE_OUT_DONE = 0,	 /* landed; mailbox/uid say where */
	CHANGE_OUT_RETRY = 1,	 /* transient failure: try again later */
	CHANGE_OUT_DEAD = 2,	 /* permanent failure (server's words) */
	CHANGE_OUT_SENT = 3,	 /* send: SMTP accepted; Sent copy to do */
	CHANGE_OUT_UNCERTAIN = 4 /* send: cut off after DATA began */
};

/* Account as stored (no secret). */
struct proto_account_info {
	uint64_t id;
	struct proto_str name;
	struct proto_str protocol; /* "imap" | "jmap" */
	struct proto_str server;   /* URL: imap://, imaps:// */
	struct proto_str username;
	uint32_t interval_s;
	int64_t last_sync_at; /* unix seconds, 0 = never */
	struct proto_str last_error;
	uint64_t mailboxes; /* counts, for `account list` */
	uint64_t messages;
	struct proto_str smtp; /* smtp[s]:// URL, nil: none */
	uint64_t pending_changes; /* changes pending or in flight */
};

/* submit.account.add: the password travels once, to the store only. */
struct proto_account_add {
	struct proto_str name;
	struct proto_str protocol;
	struct proto_str server;
	struct proto_str username;
	struct proto_str password; /* secret: never logged */
	struct proto_str tls_ca_pem; /* PEM text, or nil for system CAs */
	bool starttls;
	bool plaintext; /* explicit consent to send the password in clear */
	/* Optional; nil = defaults. "none" | "all" | "recent:DAYS" */
	struct proto_str bodies;
	/* "password" (default) or "oauth2": password then holds a token */
	struct proto_str auth;
	uint32_t interval_s; /* 0: store default */
	/* Outgoing mail: smtp://HOST[:PORT] (STARTTLS required unless
	 * plaintext) or smtps://; nil: the account cannot send. The SMTP
	 * credentials default to the account's own. */
	struct proto_str smtp;
	struct proto_str smtp_username;
	struct proto_str smtp_password; /* secret: never logged */
};

struct proto_name {
	struct proto_str name;
};

/* submit.job.submit: a user asks for a job on an account. */
struct proto_job_submit {
	struct proto_str account; /* account name */
	uint8_t kind;		  /* enum proto_job_kind */
	uint64_t message_id; /* JOB_KIND_FETCH_BODY: messages.id */
};

/* submit.job.status: job_id 0 asks for the most recent jobs. */
struct proto_job_status {
	uint64_t job_id;
	uint32_t limit;
};

/* One job as the store reports it. */
struct proto_job_info {
	uint64_t id;
	uint64_t account_id;
	struct proto_str account; /* name */
	uint8_t kind;
	uint8_t state;	  /* enum proto_job_state */
	uint8_t priority; /* enum proto_priority */
	uint32_t attempts;
	int64_t created_at; /* unix ms for all *_at here */
	int64_t due_at;
	int64_t lease_until;
	int64_t finished_at;
	struct proto_str last_error;
	uint64_t messages; /* rows applied by the last attempt */
};

/*
 * submit.change.add: one local change, made durable and visible in the
 * local rows before the reply (reply.id = the change id).
 */
struct proto_change_add {
	struct proto_str account; /* account name */
	uint8_t kind;		  /* enum proto_change_kind */
	uint64_t message_id; /* flag/move/delete: messages.id */
	uint32_t flags_add;  /* flag, append: PROTO_FLAG_* to set */
	uint32_t flags_remove;
	struct proto_str keywords_add; /* space-separated IMAP atoms */
	struct proto_str keywords_remove;
	struct proto_str mailbox; /* move: destination; append: target */
	bool expunge;		  /* delete: expunge instead of Trash */
	struct proto_str rfc822;  /* append/send: the raw message */
};

/* submit.change.list: an account's changes, newest first. */
struct proto_change_list {
	struct proto_str account;
	/* "active" (pending + inflight; nil means this), "pending", "dead",
	 * "uncertain", "done", "cancelled" or "all" */
	struct proto_str state;
	uint64_t change_id; /* non-zero: just this change */
	uint32_t limit;	    /* 0: STORE_STATUS_DEFAULT_LIMIT */
};

/* submit.change.resolve: a user's decision on a dead, uncertain or
 * pending change. "retry": queue it again (an uncertain send is sent
 * again); "cancel": drop it, the local rows return to the server's truth
 * at the next sync. */
struct proto_change_resolve {
	uint64_t change_id;
	struct proto_str action; /* "retry" | "cancel" */
};

/* submit.message.list: message ids to act on, newest first. */
struct proto_message_list {
	struct proto_str account;
	struct proto_str mailbox; /* nil: every mailbox */
	uint32_t limit;		  /* 0: STORE_STATUS_DEFAULT_LIMIT */
};

/* One change as the store reports it (reply.changes[]). */
struct proto_change_info {
	uint64_t id;
	uint64_t account_id;
	uint8_t kind;  /* enum proto_change_kind */
	uint8_t state; /* enum proto_change_state */
	uint64_t message_id;	  /* local row, 0 when gone */
	struct proto_str mailbox; /* source mailbox (flag/move/delete) */
	uint32_t uid;
	struct proto_str to_mailbox;
	uint32_t flags_add;
	uint32_t flags_remove;
	struct proto_str keywords_add;
	struct proto_str keywords_remove;
	bool expunge;
	struct proto_str header_message_id; /* Message-ID of the message */
	uint64_t size;			    /* append/send: raw bytes */
	uint32_t attempts;
	int64_t created_at; /* unix ms */
	int64_t updated_at;
	int64_t next_at;
	struct proto_str last_error;
	struct proto_str result_mailbox; /* where it landed */
	uint32_t result_uid;
};

/* One message as the store reports it (reply.messages[]). */
struct proto_message_info {
	uint64_t id;
	struct proto_str mailbox;
	uint32_t uid; /* 0: not yet known (a pending move or append) */
	uint32_t flags;
	struct proto_str keywords;
	struct proto_str subject;
	struct proto_str from_addr;
	int64_t date; /* unix seconds */
	uint64_t size;
	bool pending; /* a local change on it has not landed yet */
};

/*
 * A protocol's account-wide state string (JMAP: the "Mailbox" and "Email"
 * states of RFC 8620 /changes), kept in sync_state (docs/schema.md).
 */
struct proto_sync_state {
	struct proto_str resource; /* "Mailbox", "Email" */
	struct proto_str state;
};

/* Per-mailbox checkpoint: what a worker needs to do a delta sync. */
struct proto_checkpoint {
	struct proto_str mailbox; /* full name, UTF-8 */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	/* job_run of a JMAP account: the Mailbox id and role the store holds
	 * (the worker's mailbox table when Mailbox/changes shows no change);
	 * nil for IMAP and in done */
	struct proto_str remote_id;
	struct proto_str role;
};

/*
 * One change a drain job carries out (job_run.changes[]), in id order.
 * For one message a job carries its changes up to the first move or
 * delete: later ones wait for the message's new place.
 */
struct proto_change {
	uint64_t id;
	uint8_t kind; /* enum proto_change_kind */
	/* flag/move/delete: where the server copy is */
	struct proto_str mailbox;
	uint32_t uidvalidity;
	uint32_t uid;
	struct proto_str remote_id; /* JMAP Email id */
	uint32_t flags_add;
	uint32_t flags_remove;
	struct proto_str keywords_add;
	struct proto_str keywords_remove;
	/* move, delete to Trash, append: the destination; send: the mailbox
	 * of the Sent role (nil: no Sent copy is kept) */
	struct proto_str to_mailbox;
	bool expunge;
	struct proto_str rfc822; /* append/send */
	/* Message-ID header ("<a@b>") of the message: the key that makes
	 * APPEND and the Sent copy idempotent, and finds a moved message
	 * after an interrupted attempt. nil when the message has none. */
	struct proto_str header_message_id;
	/* send: 0 = not yet handed to SMTP, 1 = accepted (Sent copy only) */
	uint8_t step;
	uint32_t attempts; /* earlier attempts of this change */
};

/* worker.job.run: everything a stateless worker needs for one job. */
struct proto_job_run {
	uint64_t job_id;
	uint32_t attempt;	/* fencing token: results carry it back */
	uint8_t kind;
	int64_t lease_until; /* unix ms; a worker drops an expired job */
	uint64_t account_id;
	struct proto_str account; /* name, for logs */
	struct proto_str protocol;
	struct proto_str server;
	struct proto_str username;
	struct proto_str password; /* secret: never logged */
	struct proto_str tls_ca_pem;
	bool starttls;
	bool plaintext;
	struct proto_str auth;	 /* "password" (nil) or "oauth2" */
	struct proto_str bodies; /* prefetch policy, nil = "none" */
	uint64_t max_body;	 /* bytes; larger bodies get an error row */
	/* JOB_KIND_FETCH_BODY: the message to fetch. */
	struct proto_str target_mailbox;
	uint32_t target_uidvalidity;
	uint32_t target_uid;
	struct proto_str target_remote_id; /* JMAP: the Email id */
	struct proto_checkpoint *checkpoints;
	size_t ncheckpoints;
	/* JMAP: the account's sync_state rows (none: a first sync) */
	struct proto_sync_state *states;
	size_t nstates;
	/* JOB_KIND_DRAIN: the changes, and SMTP for sends */
	struct proto_change *changes;
	size_t nchanges;
	struct proto_str smtp; /* URL; nil: sends fail dead */
	struct proto_str smtp_username;
	struct proto_str smtp_password; /* secret: never logged */
};

/* One mailbox as seen on the server, in a batch. */
struct proto_mailbox_row {
	struct proto_str name;	    /* decoded full name, UTF-8 */
	struct proto_str delimiter; /* one char, or nil */
	struct proto_str role; /* inbox|sent|drafts|trash|junk|archive|nil */
	struct proto_str remote_id; /* JMAP id; nil for IMAP */
	uint32_t uidvalidity;
	bool reset; /* UIDVALIDITY changed: drop this mailbox's rows first */
	/* Renamed on the server: the store renames old_name's row (keeping
	 * its messages) instead of creating a new one. nil otherwise. */
	struct proto_str old_name;
};

/*
 * One message. `full` rows carry every column and are upserted; flag-only
 * rows (full == false) update flags/keywords of an existing row and are
 * ignored when the row does not exist.
 */
struct proto_message_row {
	struct proto_str mailbox;
	uint32_t uid;
	bool full;
	uint32_t flags;		   /* PROTO_FLAG_* */
	struct proto_str keywords; /* space-separated, other than \System */
	uint64_t modseq;
	/* full rows only: */
	struct proto_str remote_id;
	struct proto_str message_id;
	struct proto_str subject; /* RFC 2047 decoded */
	struct proto_str from_addr;
	struct proto_str to_addrs;
	struct proto_str cc_addrs;
	int64_t date;	       /* unix seconds, 0 unknown */
	int64_t internal_date; /* unix seconds */
	uint64_t size;
	bool has_attachments;
	/*
	 * JMAP rows (uid 0, remote_id = the Email id): the ids of every
	 * mailbox the Email is in, space-separated. The store keeps one row
	 * per mailbox: it moves an existing row of the Email from a mailbox
	 * not listed (so the row keeps its id, body and attachments) before
	 * inserting, and deletes the Email's rows in mailboxes not listed.
	 */
	struct proto_str in_mailboxes;
};

/* Messages removed on the server. */
enum proto_expunge_kind {
	EXPUNGE_VANISHED = 0, /* `uids` are gone (QRESYNC VANISHED) */
	EXPUNGE_PRESENT = 1,  /* `uids` are all that exist in [from, below) */
	/* JMAP: `uids` holds space-separated Email ids destroyed on the
	 * server; their rows go from every mailbox (mailbox is ignored) */
	EXPUNGE_REMOTE = 2
};
struct proto_expunge_row {
	struct proto_str mailbox;
	uint8_t kind;	       /* enum proto_expunge_kind */
	struct proto_str uids; /* IMAP sequence-set of UIDs: "1:4,9" */
	uint32_t below;	       /* EXPUNGE_PRESENT only */
	uint32_t from;	       /* EXPUNGE_PRESENT only; 0 means 1 */
};

/* One attachment of a message (from BODYSTRUCTURE or JMAP). The full
 * set of a message travels in the same batch as its full message row. */
struct proto_attachment_row {
	struct proto_str mailbox;
	uint32_t uid;		    /* IMAP; 0 for JMAP */
	struct proto_str remote_id; /* JMAP: the Email id */
	struct proto_str part; /* IMAP part number "2", "1.3"; JMAP partId */
	struct proto_str filename; /* RFC 2231/2047 decoded */
	struct proto_str mime_type; /* lower-case "application/pdf" */
	uint64_t size;		    /* encoded size in bytes */
	struct proto_str disposition; /* "attachment" | "inline" | nil */
	struct proto_str content_id;
};

/* A slice of a message's raw body; offsets are contiguous from 0. */
struct proto_body_chunk {
	struct proto_str mailbox;
	uint32_t uid;		    /* IMAP; 0 for JMAP */
	struct proto_str remote_id; /* JMAP: the Email id */
	uint64_t offset;
	struct proto_str data; /* raw bytes, at most PROTO_MAX_STR */
	bool last;	       /* the body is complete after this chunk */
	uint64_t total;	       /* total size, when known */
	int32_t status;	       /* non-zero: no body (error says why) */
	struct proto_str error;
};

/*
 * What became of one change of a drain job. A worker sends each result
 * as soon as the server has answered (its own batch), so that a crash
 * loses as little as possible; a change without a result when the
 * attempt ends goes back to pending (a send that was handed to SMTP
 * becomes uncertain instead).
 */
struct proto_change_result {
	uint64_t id;
	uint8_t outcome; /* enum proto_change_outcome */
	struct proto_str error; /* retry/dead/uncertain: the server's words */
	/* done (move, delete to Trash, append, Sent copy): where the
	 * message is now; uid 0 when the server did not say */
	struct proto_str mailbox;
	uint32_t uidvalidity;
	uint32_t uid;
	struct proto_str remote_id;
};

/* worker.result.batch: one bounded slice of a job's results. */
struct proto_batch {
	uint64_t job_id;
	uint32_t attempt;
	uint32_t seq; /* 1, 2, ... within (job_id, attempt) */
	struct proto_mailbox_row *mailboxes;
	size_t nmailboxes;
	struct proto_message_row *messages;
	size_t nmessages;
	struct proto_expunge_row *expunged;
	size_t nexpunged;
	struct proto_attachment_row *attachments;
	size_t nattachments;
	struct proto_body_chunk *bodies;
	size_t nbodies;
	struct proto_change_result *change_results;
	size_t nchange_results;
};

/* worker.result.done: end of an attempt, success or failure. */
struct proto_done {
	uint64_t job_id;
	uint32_t attempt;
	uint32_t nbatches; /* batches sent before this; store checks all */
	int32_t status;	   /* enum err; 0 = success */
	uint8_t retry;	   /* enum retry, when status != 0 */
	struct proto_str error; /* human text when status != 0 */
	struct proto_checkpoint *checkpoints; /* advanced only on success */
	size_t ncheckpoints;
	/*
	 * When true, `mailboxes` lists every mailbox that exists on the
	 * server; the store removes the account's others.
	 */
	bool mailbox_list_complete;
	struct proto_str *mailboxes;
	size_t nmailboxes;
	uint64_t messages; /* rows sent, for the log */
	/* JMAP: new state strings, stored only on success */
	struct proto_sync_state *states;
	size_t nstates;
};

/*
 * worker.watch.event: from the watcher holding a JOB_KIND_WATCH job.
 * Every one renews the watch job's lease (heartbeat); changed == true
 * also asks the store for a user-priority sync of the account (joining
 * a queued one). mailbox names what changed, for logs (may be nil).
 */
struct proto_watch_event {
	uint64_t job_id;
	uint32_t attempt;
	bool changed;
	struct proto_str mailbox;
};

/* sched.job.create: a periodic job the scheduler decided on. */
struct proto_job_create {
	uint64_t account_id;
	uint8_t kind;
	uint8_t priority;
	int64_t due_at; /* unix ms */
};

/* sched.job.lease: hand job_id to a worker until lease_until (unix ms). */
struct proto_job_lease {
	uint64_t job_id;
	int64_t lease_until;
};

/* sched.job.retry: a lease expired; requeue at due_at or give up. */
struct proto_job_retry {
	uint64_t job_id;
	uint32_t attempt;
	uint8_t state; /* JOB_QUEUED or JOB_DEAD */
	int64_t due_at;
	struct proto_str error;
};

/* Scheduler's view of an account. */
struct proto_sched_account {
	uint64_t id;
	uint32_t interval_s;
	int64_t last_sync_at; /* unix ms of the last finished job, 0 never */
	uint32_t fail_streak; /* consecutive jobs that did not end DONE */
};

/* store.reply: the one reply to every control request. */
struct proto_reply {
	int32_t status;		/* enum err; 0 = success */
	struct proto_str error; /* detail when status != 0 */
	uint64_t id;		/* account_id or job_id created/leased */
	struct proto_account_info *accounts;
	size_t naccounts;
	struct proto_job_info *jobs;
	size_t njobs;
	struct proto_sched_account *sched_accounts;
	size_t nsched_accounts;
	struct proto_job_run *job_run; /* sched.job.lease: what to emit */
	struct proto_change_info *changes;
	size_t nchanges;
	struct proto_message_info *messages;
	size_t nmessages;
};

/* store.event kinds */
enum proto_event_kind {
	EV_JOB_QUEUED = 0,   /* a job was created or re-queued */
	EV_JOB_PROGRESS = 1, /* a batch of the job was applied */
	EV_JOB_FINISHED = 2, /* done/failed/dead or back to queued */
	EV_ACCOUNT_CHANGED = 3 /* added, removed or reconfigured */
};

/* store.event: small deltas; the scheduler also reconciles periodically. */
struct proto_event {
	uint8_t kind;
	uint64_t job_id;
	uint64_t account_id;
	uint8_t state;	  /* job state after the event */
	uint8_t priority; /* EV_JOB_QUEUED */
	uint32_t attempt;
	int64_t due_at;	  /* EV_JOB_QUEUED: unix ms */
	int64_t at;	  /* when it happened, unix ms */
	int32_t status;	  /* EV_JOB_FINISHED: enum err of the attempt */
	bool removed;	  /* EV_ACCOUNT_CHANGED: the account is gone */
	uint32_t interval_s;
	/* EV_JOB_QUEUED of a new job: its enum proto_job_kind (0 sync when
	 * absent), so the scheduler applies the kind's leasing rule. */
	uint8_t job_kind;
};

/* A decoded or to-be-encoded message. */
struct proto_msg {
	enum proto_msg_type type;
	uint64_t id; /* request id; replies echo it */
	union {
		struct proto_account_add account_add;
		struct proto_name name;
		struct proto_job_submit job_submit;
		struct proto_job_status job_status;
		struct proto_change_add change_add;
		struct proto_change_list change_list;
		struct proto_change_resolve change_resolve;
		struct proto_message_list message_list;
		struct proto_reply reply;
		struct proto_job_create job_create;
		struct proto_job_lease job_lease;
		struct proto_job_retry job_retry;
		struct proto_job_run job_run;
		struct proto_batch batch;
		struct proto_done done;
		struct proto_watch_event watch_event;
		struct proto_event event;
	} u;
};

/* Wire name of a type ("worker.result.batch"), or "unknown". */
const char *proto_msg_name(enum proto_msg_type t);

/*
 * Encodes m into a malloc'd buffer (*out_r, *len_r; caller frees).
 * Returns 0, ERR_NOMEM, ERR_TOOBIG (> PROTO_MAX_MSG) or ERR_INVAL.
 */
int proto_encode(const struct proto_msg *m, char **out_r, size_t *len_r);

/*
 * Decodes buf into *m. Strings in *m point into buf (borrowed: buf must
 * outlive *m). On error *m holds nothing to release and errbuf (may be
 * NULL) receives a precise message such as
 * "body.messages[3].uid: expected unsigned integer".
 * Returns 0, ERR_PROTO, ERR_VERSION, ERR_TOOBIG or ERR_NOMEM.
 */
int proto_decode(const char *buf, size_t len, struct proto_msg *m,
    char *errbuf, size_t errlen);

/* Frees what proto_decode allocated (arrays); m becomes MSG_NONE. */
void proto_msg_release(struct proto_msg *m);

/* Helpers */
struct proto_str proto_str_c(const char *s); /* borrow a C string */
bool proto_str_eq(struct proto_str s, const char *c);
/* Copies into a malloc'd NUL-terminated string (NULL for nil); caller
 * frees. Returns NULL on OOM too: check s.p before trusting NULL. */
char *proto_str_dup(struct proto_str s);
const char *proto_job_kind_name(uint8_t kind);	   /* "sync" */
const char *proto_job_state_name(uint8_t state);   /* "queued" */
int proto_job_kind_parse(const char *s, uint8_t *kind_r);
int proto_job_state_parse(const char *s, uint8_t *state_r);
const char *proto_change_kind_name(uint8_t kind);   /* "flag" */
const char *proto_change_state_name(uint8_t state); /* "pending" */
int proto_change_kind_parse(const char *s, uint8_t *kind_r);
int proto_change_state_parse(const char *s, uint8_t *state_r);

/*
 * Additions (pkg/proto owner) ---------------------------------------------
 */

/* Deepest msgpack nesting a decoder accepts (the envelope counts as 1). */
#define PROTO_MAX_DEPTH 16

/*
 * Codec internals, shared by the files of pkg/proto only (schema.c holds
 * the tables, codec.c the generic encoder/decoder, scan.c the byte-level
 * bounds check). Other modules must not use them.
 *
 * Each body struct is described by a static const table of fields. The
 * wire key of a field is its C member name; an array member X has its
 * element count in member nX (size_t).
 */
enum proto_ftype {
	PROTO_F_U8,
	PROTO_F_U32,
	PROTO_F_U64,
	PROTO_F_I32,
	PROTO_F_I64,
	PROTO_F_BOOL,
	PROTO_F_STR,
	PROTO_F_STR_ARRAY,    /* struct proto_str *X; size_t nX */
	PROTO_F_STRUCT_ARRAY, /* struct T *X; size_t nX; sub describes T */
	PROTO_F_STRUCT_PTR    /* struct T *X (NULL = absent) */
};

struct proto_table;

struct proto_field {
	const char *key;
	enum proto_ftype type;
	size_t off;	  /* offsetof the member */
	size_t count_off; /* arrays: offsetof the size_t count */
	const struct proto_table *sub; /* STRUCT_ARRAY / STRUCT_PTR */
	bool required;
	/* unsigned: largest value; STR: longest length; arrays: most
	 * elements; 0 = the type's default (PROTO_MAX_STR/ROWS). */
	uint64_t max;
};

struct proto_table {
	const char *name; /* struct name, for messages */
	size_t size;	  /* sizeof the struct */
	const struct proto_field *fields;
	size_t nfields;
};

/* Body table of a message type (empty table for bodiless types), or NULL
 * for an invalid type. */
const struct proto_table *proto_body_table(enum proto_msg_type t);
/* Type whose wire name is (p, len), or MSG_NONE. */
enum proto_msg_type proto_msg_lookup(const char *p, size_t len);
/*
 * Checks that buf holds exactly one well-formed msgpack object whose
 * container headers fit in the remaining bytes, nested at most
 * PROTO_MAX_DEPTH deep. Run before msgpack_unpack_next() so that a
 * hostile header (0xdd ffffffff) cannot make the unpacker allocate.
 * Returns 0 or ERR_PROTO with errbuf detail.
 */
int proto_scan(const char *buf, size_t len, char *errbuf, size_t errlen);

#endif
