/*
 * drain_int.h: internals of the drain job (docs/drain.md "Worker") shared
 * by its files and unit tests, not by other modules.
 *
 *   drain_plan.c  pure: flag folding and STORE grouping, command
 *                 arguments (mailbox names, Message-ID searches, flag
 *                 lists), UID-set membership, NO classification
 *   smtp.c        one message through libcurl's SMTP
 *   imap_drain.c  the job: sends, then one IMAP session; results and
 *                 pipelines; appends and Sent copies
 *   imap_drain_src.c  flag, move and delete changes per source mailbox
 */
#ifndef MAILSYNC_DRAIN_INT_H
#define MAILSYNC_DRAIN_INT_H

#include "sync.h"

/* Longest Message-ID we search for (RFC 5322 line length). */
#define DRAIN_MAX_MSGID 998u

/*
 * Folds the flag changes chg[0..n) of one message, in order, into one net
 * change: a later change wins over an earlier one for the same flag or
 * keyword (keywords compared without case). *add_r and *remove_r get the
 * STORE flag lists, e.g. "(\\Seen $Label1)" (malloc'd, caller frees), or
 * NULL when there is nothing to add / remove. ERR_INVAL when a keyword is
 * not an IMAP atom (or starts with '\\'), ERR_NOMEM. chg borrowed.
 */
int drain_fold_flags(const struct proto_change *const *chg, size_t n,
    char **add_r, char **remove_r);

/* Appends the flag list "(\\Seen kw ...)" of PROTO_FLAG_* bits and
 * space-separated keywords to out ("()" for none). ERR_INVAL for a bad
 * keyword (out then unchanged), ERR_TOOBIG / ERR_NOMEM. */
int drain_flag_list(
    uint32_t flags, struct proto_str keywords, struct buf *out);

/* One message's net flag change, for drain_store_plan(). */
struct drain_flagmsg {
	uint32_t uid;
	char *add; /* borrowed flag list, or NULL */
	char *remove; /* borrowed flag list, or NULL */
	size_t owner; /* the caller's */
	size_t cmd_add, cmd_remove; /* filled: index in the plan, or
	                             * SIZE_MAX */
};

/* Malloc'd command texts. */
struct drain_texts {
	char **v;
	size_t n, cap;
};
void drain_texts_release(struct drain_texts *t);

/*
 * Sorts m[0..n) and appends to out one "UID STORE <set> +FLAGS.SILENT
 * <list>" per distinct add list and one "-FLAGS.SILENT" per distinct
 * remove list, over the UIDs that share it; each message's cmd_add /
 * cmd_remove names its commands (indices into out). UIDs must be unique.
 * 0, ERR_NOMEM, ERR_TOOBIG.
 */
int drain_store_plan(
    struct drain_flagmsg *m, size_t n, struct drain_texts *out);

/* Appends a UTF-8 mailbox name as a quoted mUTF-7 string. ERR_INVAL for
 * a name that is empty or not valid UTF-8 (out unchanged). */
int drain_mailbox_arg(struct buf *out, struct proto_str name);

/* Appends "UID SEARCH HEADER Message-ID \"<id>\"". ERR_INVAL when the id
 * is empty, longer than DRAIN_MAX_MSGID or holds anything but printable
 * ASCII (such a message cannot be searched for; out unchanged). */
int drain_search_msgid(struct buf *out, struct proto_str msgid);

/* True when uid is in the IMAP sequence set s[0..len) ("1:4,9"). */
bool drain_set_has(const char *s, size_t len, uint32_t uid);
/* The highest UID of the set, 0 for an empty or malformed one. */
uint32_t drain_set_max(const char *s, size_t len);

/* What a tagged NO/BAD means for a change: CHANGE_OUT_RETRY for the
 * response codes of a passing condition (UNAVAILABLE, INUSE, SERVERBUG,
 * LIMIT, EXPUNGEISSUED), CHANGE_OUT_DEAD for anything else (TRYCREATE,
 * OVERQUOTA, NONEXISTENT, ...). resp_text is "[CODE ...] text". */
uint8_t drain_no_outcome(const char *resp_text);

/*
 * Writes printf text to dst (n bytes) as the store accepts it: valid
 * UTF-8 (invalid bytes become U+FFFD) without control characters (they
 * become spaces). Used for every error a change result carries, since a
 * server's words may hold anything.
 */
void drain_text(char *dst, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The drain job's state (imap_drain.c, imap_drain_src.c) --------------- */

#define DRAIN_SET_MAX (1024u * 1024) /* a SEARCH answer's UID set */
#define DRAIN_CMD_MAX (1024u * 1024) /* one command's text */

/* One change of the job. */
struct drain_chg {
	const struct proto_change *c; /* borrowed from the job */
	bool answered; /* its final result is out (or queued) */
	bool sent; /* send: SMTP took it (now or in an earlier attempt) */
	/* Scratch of the mailbox being drained. */
	bool exists; /* source: its UID is still there */
	bool moved; /* source: MOVE/COPY answered OK */
	bool lookup; /* to be found by Message-ID in the destination */
	bool marked; /* copied (no MOVE): the source copy is \Deleted */
	size_t cmd, cmd2; /* its commands in the pipeline, or SIZE_MAX */
	uint32_t new_uidvalidity, new_uid; /* from COPYUID */
};

/* What a pipelined command is, for reading its answers. */
enum drain_pkind {
	DRAIN_P_OTHER,
	DRAIN_P_SELECT, /* SELECT/EXAMINE: UIDVALIDITY */
	DRAIN_P_SEARCH, /* UID SEARCH: a UID set */
	DRAIN_P_COPY, /* UID COPY/MOVE: COPYUID */
	DRAIN_P_APPEND /* APPEND: APPENDUID */
};

struct drain_pinfo {
	struct drain *d;
	enum drain_pkind kind;
	size_t chg; /* the change a search or append is for, or SIZE_MAX */
	bool completed;
	struct imap_uidset found; /* DRAIN_P_SEARCH answers */
	/* DRAIN_P_SELECT: UIDVALIDITY; DRAIN_P_APPEND: APPENDUID */
	uint32_t uidvalidity;
	uint32_t uid;
};

/* Commands sent in one imap_session_run(); texts owned. */
struct drain_pipe {
	struct imap_cmd *cmds;
	struct drain_pinfo *info;
	size_t n, cap;
};

struct drain {
	const struct proto_job_run *job;
	const struct sync_limits *lim;
	struct sync_result *res;
	struct sync_batcher *b;
	struct imap_session *s;
	struct drain_chg *ch;
	size_t n;
	size_t *grp; /* the changes of the mailbox being drained */
	size_t ngrp;
	struct drain_pipe *p; /* the pipeline running */
	size_t cur; /* its first command not completed */
	int sink_rv; /* results could not be sent */
	uint32_t counts[CHANGE_OUT_UNCERTAIN + 1];
};

bool drain_str_same(struct proto_str a, struct proto_str b);
/* Queues change i's result (error: sanitized text or NULL; mailbox,
 * uidvalidity and uid for done). `sent` keeps the change open. */
void drain_answer(struct drain *d, size_t i, uint8_t outcome,
    const char *error, struct proto_str mailbox, uint32_t uidvalidity,
    uint32_t uid);
/* drain_answer() with printf text, sanitized (the server's words). */
void drain_answer_err(struct drain *d, size_t i, uint8_t outcome,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void drain_answer_done(struct drain *d, size_t i, struct proto_str mailbox,
    uint32_t uidvalidity, uint32_t uid);
/* Sends the queued results as one batch; the sink's error, res filled. */
int drain_flush(struct drain *d);
/* Adds a command (text taken, even on failure); its index in *i_r (may
 * be NULL). ERR_NOMEM. */
int drain_pipe_add(struct drain_pipe *p, enum drain_pkind kind, size_t chg,
    char *text, size_t *i_r);
/* Runs p (0, or the session's error with res filled); search answers are
 * then finished sets (marked unordered when not to be trusted). */
int drain_pipe_run(struct drain *d, struct drain_pipe *p);
void drain_pipe_release(struct drain_pipe *p);
/* "<prefix><quoted mUTF-7 mailbox><suffix>", malloc'd, or NULL. */
char *drain_cmd_mailbox(
    const char *prefix, struct proto_str mailbox, const char *suffix);
/* The UID set search command i found ("" none); NULL when it failed or
 * its answer is not to be trusted. */
const char *drain_found_set(const struct drain_pipe *p, size_t i);
/* Step 3 for the source mailbox of change `first` (imap_drain_src.c):
 * every change of that mailbox answered and flushed, or an error. */
int drain_source(struct drain *d, size_t first);

/* SMTP (smtp.c) --------------------------------------------------------- */

/* What became of one send. */
struct smtp_outcome {
	uint8_t outcome; /* CHANGE_OUT_SENT, _RETRY, _DEAD or _UNCERTAIN */
	char error[1024]; /* the server's words when not sent */
};

/*
 * Facts of one finished SMTP transfer, for smtp_classify(): curl's code
 * (CURLcode), whether the upload had begun (the read callback ran: DATA
 * was accepted with 354), and the server's first refusal (the code of its
 * first 4xx/5xx final reply, 0 when none) and whether that refusal came
 * after the upload began (the reply to the end of the data).
 */
struct smtp_facts {
	int curl_code;
	bool data_began;
	int err_code;
	bool err_after_data;
};

/* docs/drain.md: before DATA, 5xx and configuration errors are dead,
 * anything else retry; after DATA began, a 4xx/5xx reply to the end of
 * the data is retry/dead, and anything else but success uncertain. */
uint8_t smtp_classify(const struct smtp_facts *f);

/*
 * Sends change c (kind send, borrowed) through the job's SMTP server
 * (job->smtp, smtp_username, smtp_password; TLS per docs/drain.md).
 * Envelope from Sender or the first From, recipients every To, Cc and
 * Bcc; the copy given to SMTP has no Bcc field and CRLF line ends. Never
 * logs the password or the message. Always fills *out.
 */
void smtp_send(const struct proto_job_run *job, const struct proto_change *c,
    const struct sync_limits *l, struct smtp_outcome *out);

/* The IMAP drain job (imap_drain.c); called by sync_run. */
int sync_imap_drain(const struct proto_job_run *job,
    const struct sync_limits *l, struct sync_conns *conns,
    const struct sync_sink *sink, struct sync_result *res);

#endif
