/*
 * pkg/sync: what a worker does with one job. It talks to the mail server
 * (through pkg/net and the pure engine in pkg/imap) and turns what it
 * learns into bounded proto batches handed to a sink; it never holds a
 * whole mailbox in memory and never touches the database.
 *
 *   batcher.c      accumulates rows, flushes by row count or bytes
 *   imap_session.c one IMAP connection: TLS/STARTTLS, capabilities,
 *                  login, pipelined commands with tagged completion
 *   sasl.c         SASL responses: PLAIN, OAUTHBEARER, XOAUTH2 (pure)
 *   imap_attach.c  BODYSTRUCTURE attachments to attachment rows
 *   imap_sync.c    the IMAP sync job: LIST, per mailbox EXAMINE and
 *                  UID FETCH (full for new UIDs, flags for known ones)
 *   imap_delta.c   expunges (chunked UID SEARCH, VANISHED rows) and
 *                  mailbox renames (same UIDVALIDITY, new name)
 *   imap_body.c    raw bodies streamed in chunk rows: the fetch_body
 *                  job and the sync job's prefetch by policy
 *   imap_drain.c   the drain job: local changes carried to the server
 *                  (SMTP sends in smtp.c, pure planning in drain_plan.c,
 *                  internals in drain_int.h)
 *   conns.c        connections kept between jobs of an account
 *   sync.c         entry point: dispatch on the account's protocol
 */
#ifndef MAILSYNC_SYNC_H
#define MAILSYNC_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "imap/imap.h"
#include "proto/proto.h"

/* Longest string column a row carries; longer ones are clipped. */
#define SYNC_MAX_FIELD 65536u
/* Attachment rows: at most this many per message, each string clipped
 * to SYNC_MAX_ATTACH_FIELD bytes (the proto limit of most of them). */
#define SYNC_MAX_ATTACHMENTS 1000u
#define SYNC_MAX_ATTACH_FIELD 1024u
/* A change result's error text (the proto limit). */
#define SYNC_MAX_ERROR 4096u

/*
 * Longest response line a sync accepts (literals apart). VANISHED and
 * ESEARCH answers come as one line: a 100,000-message mailbox with every
 * other message expunged gives a VANISHED line of about 600 KB.
 */
#define SYNC_MAX_LINE (4u * 1024 * 1024)

struct sync_limits {
	uint32_t batch_rows;  /* rows per batch (default 500) */
	size_t batch_bytes;   /* string bytes per batch (default 1 MiB) */
	int io_timeout_ms;    /* any single read/write (default 60 s) */
	int connect_timeout_ms;
	/* A whole job attempt (default 4 h; 0: none): bounds a server that
	 * trickles data forever, which io_timeout alone cannot. */
	int64_t job_timeout_ms;
	uint32_t max_mailboxes; /* refuse accounts with more (10000) */
	struct imap_limits imap;
};
void sync_limits_default(struct sync_limits *l);

/* Where batches go. batch() must not keep pointers into b after it
 * returns; a non-zero return aborts the job with that error. */
struct sync_sink {
	int (*batch)(const struct proto_batch *b, void *arg);
	void *arg;
};

/*
 * Connections a worker keeps between jobs (conns.c): a job of an account
 * whose last job on this worker ended well reuses that job's connection
 * (JMAP: its HTTP keep-alive connection and session). At most max
 * entries (0: keep none), least recently used evicted; an entry idle for
 * idle_ms is closed by sync_conns_expire. sync_conns_free closes all.
 */
struct sync_conns;
int sync_conns_new(size_t max, int64_t idle_ms, struct sync_conns **c_r);
void sync_conns_free(struct sync_conns **c);
void sync_conns_expire(struct sync_conns *c, int64_t now_ms);
size_t sync_conns_count(const struct sync_conns *c);

/* Outcome of one job attempt; fields mirror struct proto_done. */
struct sync_result {
	int status;	/* enum err, 0 on success */
	enum retry retry;
	char error[512]; /* human text when status != 0 */
	uint32_t nbatches;
	uint64_t messages;
	/* On success: new checkpoints and the complete mailbox list. Heap;
	 * sync_result_release() frees. */
	struct proto_checkpoint *checkpoints;
	size_t ncheckpoints;
	struct proto_str *mailboxes;
	size_t nmailboxes;
	/* JMAP: the new state strings (heap, strings too) */
	struct proto_sync_state *states;
	size_t nstates;
};

/*
 * Runs one job (kind sync) to completion or failure, streaming batches to
 * sink. job is borrowed; conns (may be NULL) lends and takes back the
 * account's kept connection. res is always filled (release it
 * afterwards). Returns res->status.
 */
int sync_run(const struct proto_job_run *job, const struct sync_limits *l,
    struct sync_conns *conns, const struct sync_sink *sink,
    struct sync_result *res);
void sync_result_release(struct sync_result *res);

/* Fills res with a failure (printf-style text). Returns status. */
int sync_fail(struct sync_result *res, int status, enum retry retry,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Batcher --------------------------------------------------------------- */

/*
 * Accumulates mailbox and message rows for one job attempt and flushes
 * them as numbered batches. Rows are deep-copied, so callers may free
 * their strings right after adding.
 */
struct sync_batcher;

int sync_batcher_new(uint64_t job_id, uint32_t attempt,
    const struct sync_limits *l, const struct sync_sink *sink,
    struct sync_batcher **b_r);
void sync_batcher_free(struct sync_batcher **b);
int sync_batcher_add_mailbox(struct sync_batcher *b,
    const struct proto_mailbox_row *row);
int sync_batcher_add_message(struct sync_batcher *b,
    const struct proto_message_row *row);
/*
 * Adds one attachment row (deep-copied, strings clipped at a character
 * boundary). A message's attachments are added right before its full
 * message row, which then carries them into the same batch; anything
 * else between them (another message's attachment or row, a flag-only
 * row, a mailbox row, a flush) is ERR_INVAL. ERR_TOOBIG past
 * SYNC_MAX_ATTACHMENTS for one message.
 */
int sync_batcher_add_attachment(struct sync_batcher *b,
    const struct proto_attachment_row *row);
/* imap_attach.c: adds f's attachments (borrowed) as rows for msg's
 * mailbox and uid; call right before adding msg, a full row. */
int sync_imap_add_attachments(struct sync_batcher *b,
    const struct proto_message_row *msg, const struct imap_fetch *f);
/*
 * Sends n expunge rows (borrowed; their UID sets together at most
 * PROTO_MAX_STR bytes, else ERR_TOOBIG) as a batch of their own, after
 * flushing what is pending so that the mailbox's row is applied first.
 */
int sync_batcher_send_expunges(struct sync_batcher *b,
    const struct proto_expunge_row *rows, size_t n);
/*
 * Adds one drain change result (deep-copied; error clipped to
 * SYNC_MAX_ERROR bytes at a character boundary). The drain flushes after
 * each server answer so that results reach the store at once.
 */
int sync_batcher_add_change_result(struct sync_batcher *b,
    const struct proto_change_result *row);
/* Sends what is pending (no-op when empty). */
int sync_batcher_flush(struct sync_batcher *b);
uint32_t sync_batcher_nbatches(const struct sync_batcher *b);
uint64_t sync_batcher_nmessages(const struct sync_batcher *b);

/* IMAP session ----------------------------------------------------------- */

/* Capability bits the sync logic cares about (table in imap_session.c). */
#define SYNC_CAP_IMAP4REV1 (1u << 0)
#define SYNC_CAP_STARTTLS (1u << 1)
#define SYNC_CAP_LOGINDISABLED (1u << 2)
#define SYNC_CAP_AUTH_PLAIN (1u << 3)
#define SYNC_CAP_SASL_IR (1u << 4)
#define SYNC_CAP_LITERALPLUS (1u << 5)
#define SYNC_CAP_SPECIAL_USE (1u << 6)
#define SYNC_CAP_LIST_EXTENDED (1u << 7)
#define SYNC_CAP_CONDSTORE (1u << 8)
#define SYNC_CAP_QRESYNC (1u << 9)
#define SYNC_CAP_UIDPLUS (1u << 10)
#define SYNC_CAP_MOVE (1u << 11)
#define SYNC_CAP_IDLE (1u << 12)
#define SYNC_CAP_ENABLE (1u << 13)
#define SYNC_CAP_LIST_STATUS (1u << 14)
#define SYNC_CAP_NOTIFY (1u << 15)
#define SYNC_CAP_AUTH_OAUTHBEARER (1u << 16)
#define SYNC_CAP_AUTH_XOAUTH2 (1u << 17)
#define SYNC_CAP_ESEARCH (1u << 18)
#define SYNC_CAP_UNSELECT (1u << 19)

struct imap_session;

/* How to reach and log in to a server; strings borrowed. */
struct imap_session_conf {
	const char *host;
	uint16_t port;
	bool tls;      /* imaps: TLS from the first byte */
	bool starttls; /* upgrade with STARTTLS */
	bool plaintext; /* allow a password over an unencrypted link */
	const char *ca_pem; /* NULL: system CAs */
	const char *username;
	const char *password;
	/* password is an OAuth 2.0 bearer token: AUTHENTICATE OAUTHBEARER
	 * (RFC 7628) when offered, else XOAUTH2; never LOGIN or PLAIN. */
	bool oauth2;
};

/* Called for every untagged response while a command runs. */
typedef int (*imap_untagged_fn)(const struct imap_resp *r, void *arg);

/*
 * Connects, reads the greeting, upgrades with STARTTLS if asked, learns
 * capabilities and logs in. On failure *s_r is NULL and res says why
 * (with RETRY_NEVER for authentication and certificate failures).
 */
int imap_session_open(const struct imap_session_conf *c,
    const struct sync_limits *l, struct imap_session **s_r,
    struct sync_result *res);
/*
 * imap_session_open() for an imap:// or imaps:// URL (ERR_CONFIG,
 * RETRY_NEVER otherwise): host, port and TLS come from server, the rest
 * from c (its host, port and tls are ignored; starttls only for imap://).
 */
int imap_session_open_url(const char *server,
    const struct imap_session_conf *c, const struct sync_limits *l,
    struct imap_session **s_r, struct sync_result *res);
/*
 * imap_session_open_url() for a job's account: the server URL must be imap://
 * or imaps:// (ERR_CONFIG, RETRY_NEVER otherwise), auth "password" or
 * "oauth2". job is borrowed; the copies of its credentials are wiped.
 */
int imap_session_open_job(const struct proto_job_run *job,
    const struct sync_limits *l, struct imap_session **s_r,
    struct sync_result *res);
/* Sends LOGOUT (best effort), closes and frees. */
void imap_session_close(struct imap_session **s);
/*
 * A job's session: the account's session kept in conns by an earlier job
 * (c may be NULL) when it still answers a NOOP, with this job's time
 * limit; else a new one from imap_session_open_job(). Failures as there.
 */
int imap_session_acquire(const struct proto_job_run *job,
    const struct sync_limits *l, struct sync_conns *c,
    struct imap_session **s_r, struct sync_result *res);
/*
 * Ends a job's use of *s (NULL after; nothing when already NULL): kept in
 * c for the account's next job when the job ended well (res->status 0),
 * the server offers UNSELECT and it closes the mailbox (no EXPUNGE, unlike
 * CLOSE); else LOGOUT and closed.
 */
void imap_session_release(struct sync_conns *c,
    const struct proto_job_run *job, struct imap_session **s,
    const struct sync_result *res);
/* A kept session's limits and time limit set anew for the job (l). */
void imap_session_renew(struct imap_session *s, const struct sync_limits *l);
uint32_t imap_session_caps(const struct imap_session *s);
/* Whether a SELECT or EXAMINE was sent since the last UNSELECT or CLOSE. */
bool imap_session_selected(const struct imap_session *s);
/*
 * Ends the session without LOGOUT and hands its connection to the caller
 * (mailsync-watch's event loop): *conn_r takes the net_conn; bytes read
 * but not yet parsed (at most cap) are copied to rest (*rest_len_r).
 * Frees *s and NULLs it. ERR_TOOBIG (nothing handed over, *s freed) if
 * more than cap bytes are pending.
 */
struct net_conn;
int imap_session_detach(struct imap_session **s, struct net_conn **conn_r,
    char *rest, size_t cap, size_t *rest_len_r);

/* One command of a pipeline; text is without tag and CRLF. */
struct imap_cmd {
	const char *text;
	/* Optional: a literal ending the command (APPEND's message), sent
	 * after text as " {n+}" with LITERAL+, else " {n}" and the bytes
	 * after the server's "+" (borrowed; written in bounded slices, never
	 * copied). literal NULL: none. */
	const char *literal;
	size_t literal_len;
	/* Optional: called with the command's tagged response (for its
	 * response code: APPENDUID, COPYUID) before it is recorded. */
	imap_untagged_fn done_fn;
	void *done_arg;
	enum imap_status status; /* filled: OK/NO/BAD */
	char resp_text[256];	 /* filled: the tagged response's text */
};

/*
 * Sends the n commands back to back (pipelined), then reads until every
 * one has completed, passing each untagged response to fn. A command with
 * a synchronising literal holds back the ones after it until the server
 * answered "+" (or refused it with a tagged NO/BAD: the literal is then
 * not sent). Returns 0 when the exchange completed (look at each
 * cmds[i].status), or an error (I/O, protocol, BYE, fn's or done_fn's
 * non-zero return) with res filled.
 */
int imap_session_run(struct imap_session *s, struct imap_cmd *cmds,
    size_t n, imap_untagged_fn fn, void *arg, struct sync_result *res);

/* Deltas (imap_delta.c) ---------------------------------------------------- */

/* Orphans: the job's checkpoints whose mailbox is not among names (the
 * LIST, borrowed for the call). job is borrowed for r's lifetime. */
struct sync_renames;
int sync_renames_new(const struct proto_job_run *job,
    const char *const *names, size_t n, struct sync_renames **r_r);
/* The one orphan with this UIDVALIDITY (then claimed), else NULL. */
const struct proto_checkpoint *sync_renames_claim(struct sync_renames *r,
    uint32_t uidvalidity);
void sync_renames_free(struct sync_renames **r);
/*
 * Without QRESYNC: UID SEARCH of what still exists among UIDs
 * 1..uidnext-1 of the open mailbox, in ranges, each answer sent as an
 * EXPUNGE_PRESENT row over its range; with flags, the range's UID FETCH
 * (UID FLAGS) too. Responses other than SEARCH/ESEARCH go to fn(arg).
 */
int sync_imap_scan_old(struct imap_session *s, struct sync_batcher *b,
    const char *mailbox, uint32_t uidnext, bool flags, bool esearch,
    imap_untagged_fn fn, void *arg, struct sync_result *res);
/* QRESYNC: appends a VANISHED set to v, first sending v as a VANISHED
 * row when it would grow past 64 KiB; _flush sends what v holds. */
int sync_vanished_add(struct sync_batcher *b, const char *mailbox,
    struct buf *v, const char *set, size_t len);
int sync_vanished_flush(struct sync_batcher *b, const char *mailbox,
    struct buf *v);

/* The IMAP job; called by sync_run for protocol "imap" (conns: where the
 * session is taken from and kept, may be NULL). */
int sync_imap_run(const struct proto_job_run *job,
    const struct sync_limits *l, struct sync_conns *conns,
    const struct sync_sink *sink, struct sync_result *res);

/* Bodies (imap_body.c) ---------------------------------------------------- */

/* Raw bodies travel in body chunk rows of at most this many bytes. */
#define SYNC_BODY_CHUNK (256u * 1024)

/*
 * Installs (fn != NULL) or removes the literal sink of the session's
 * parser (imap_parser_set_literal_sink; arg borrowed until removed).
 */
int imap_session_set_literal_sink(struct imap_session *s, uint64_t threshold,
    uint64_t max, imap_literal_sink_fn fn, void *arg);
/* From a literal sink: the FETCH the literal is in, and its UID when the
 * server sent it first (imap_parser_stream_fetch). */
int imap_session_stream_fetch(
    const struct imap_session *s, uint32_t *seq_r, uint32_t *uid_r);

/*
 * Sends what is pending, then one batch holding only row (borrowed; its
 * data is not copied), so a body goes out chunk by chunk in order after
 * the message rows it belongs to. ERR_INVAL with attachments pending.
 */
int sync_batcher_send_body(struct sync_batcher *b,
    const struct proto_body_chunk *row);
/* The same with n rows (borrowed, data not copied) in the one batch. */
int sync_batcher_send_bodies(struct sync_batcher *b,
    const struct proto_body_chunk *rows, size_t n);

/* The fetch_body job; called by sync_run for protocol "imap". */
int sync_imap_fetch_body(const struct proto_job_run *job,
    const struct sync_limits *l, struct sync_conns *conns,
    const struct sync_sink *sink, struct sync_result *res);

/*
 * The sync job's prefetch hook, with mailbox (UTF-8 name, borrowed)
 * selected: fetches the bodies of UIDs from_uid..max_uid that match
 * job->bodies ("all", "recent:DAYS"; nil or "none": nothing), streamed as
 * chunk rows into b. A body too large or gone gets an error row and the
 * sync goes on. 0, or an error with res filled.
 */
int sync_imap_prefetch(struct imap_session *s, struct sync_batcher *b,
    const struct proto_job_run *job, const char *mailbox, uint32_t from_uid,
    uint32_t max_uid, struct sync_result *res);

#endif
