/*
 * submit.h: the pieces of mailsync-submit shared by its files: the parsed
 * command line (args.c, pure and unit-tested), reading the password and CA
 * files, and the output of replies as tables or JSON (output.c). main.c
 * wires them to the store over the control socket. docs/cli.md is the
 * user's side of this contract.
 */
#ifndef MAILSYNC_SUBMIT_H
#define MAILSYNC_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "ipc/ipc.h"
#include "net/net.h"
#include "proto/proto.h"

/* Exit codes (docs/cli.md). */
enum submit_exit {
	SUBMIT_EXIT_OK = 0, /* done */
	SUBMIT_EXIT_FAILED = 1, /* job failed, or the store refused */
	SUBMIT_EXIT_USAGE = 2, /* bad command line or input files */
	SUBMIT_EXIT_UNREACHABLE = 3 /* no mailsync-store answered */
};

enum submit_cmd {
	SUBMIT_CMD_ACCOUNT_ADD,
	SUBMIT_CMD_ACCOUNT_LIST,
	SUBMIT_CMD_ACCOUNT_REMOVE,
	SUBMIT_CMD_SYNC,
	SUBMIT_CMD_STATUS,
	SUBMIT_CMD_FETCH_BODY,
	SUBMIT_CMD_HELP,
	/* local changes (change.c) */
	SUBMIT_CMD_FLAG,
	SUBMIT_CMD_MOVE,
	SUBMIT_CMD_DELETE,
	SUBMIT_CMD_APPEND,
	SUBMIT_CMD_SEND,
	SUBMIT_CMD_MESSAGES,
	SUBMIT_CMD_CHANGES,
	SUBMIT_CMD_CHANGE_RESOLVE
};

#define SUBMIT_DEFAULT_DIR "./mailsync-data"
#define SUBMIT_NAME_MAX 64
#define SUBMIT_PASSWORD_MAX 4096
#define SUBMIT_CA_MAX (1024u * 1024)
#define SUBMIT_WAIT_DEFAULT_S 300 /* sync --wait, fetch-body --wait */
#define SUBMIT_CALL_DEFAULT_S 10 /* one control request */
#define SUBMIT_TIMEOUT_MAX_S 86400
#define SUBMIT_MAX_KEYWORDS 32 /* --add-keyword / --remove-keyword each */
#define SUBMIT_LIST_MAX 1000 /* --limit */

/*
 * The parsed command line. Strings borrow from argv. Validation that needs
 * no file and no network is done by submit_args_parse().
 */
struct submit_args {
	enum submit_cmd cmd;
	const char *dir; /* --dir, default SUBMIT_DEFAULT_DIR */
	const char *control_url; /* --control, NULL: ipc_default_url(dir) */
	bool json;
	uint32_t timeout_s; /* --timeout; 0 = the command's default */
	/* account add / remove, sync */
	const char *name;
	/* account add */
	const char *server; /* --imap or --jmap URL as given */
	const char *protocol; /* "imap" or "jmap" (the option given) */
	struct net_url url; /* parsed --imap */
	const char *user; /* --user */
	const char *password_file; /* --password-file */
	const char *token_file; /* --token-file: OAuth 2.0 bearer token */
	const char *tls_ca_file; /* --tls-ca */
	bool starttls;
	bool plaintext;
	uint32_t interval_s; /* --interval; 0 = store default */
	const char *bodies; /* --bodies none|all|recent:DAYS; NULL: none */
	/* fetch-body */
	uint64_t message_id;
	/* sync */
	bool wait;
	/* status */
	uint64_t job_id; /* 0: recent jobs */
	/* account add: outgoing mail */
	const char *smtp; /* --smtp URL */
	const char *smtp_user;
	const char *smtp_password_file;
	/* flag, move, delete, append, send (message_id above) */
	uint32_t flags_add; /* PROTO_FLAG_*: --seen ..., append --flags */
	uint32_t flags_remove;
	const char *kw_add[SUBMIT_MAX_KEYWORDS];
	size_t nkw_add;
	const char *kw_remove[SUBMIT_MAX_KEYWORDS];
	size_t nkw_remove;
	const char *to; /* move --to */
	bool expunge; /* delete --expunge */
	const char *mailbox; /* append --mailbox; messages [MAILBOX] */
	const char *file; /* append/send --file */
	/* messages, changes */
	uint32_t limit; /* --limit; 0: the store's default */
	const char *state; /* changes --state */
	/* change resolve */
	uint64_t change_id;
	bool retry, cancel;
};

/*
 * Parses argv (argv[0] is the program). Options may come before or after
 * the command words; "--opt=value" and "--opt value" are both accepted.
 * Returns 0, or ERR_INVAL with a one-line message in errbuf (a->json is
 * then set when "--json" was among the arguments).
 */
int submit_args_parse(
    int argc, char **argv, struct submit_args *a, char *errbuf, size_t errlen);

/* True when name is 1-SUBMIT_NAME_MAX characters of [A-Za-z0-9._@+-]. */
bool submit_name_valid(const char *name);
/* True for a body prefetch policy: none, all or recent:DAYS (1-36500). */
bool submit_bodies_valid(const char *v);

/*
 * Reads the password file into pw (initialized by the caller with
 * buf_init(pw, SUBMIT_PASSWORD_MAX + 1); release it with
 * buf_wipe_release). One trailing newline is stripped; the rest must be
 * 1..4096 bytes without NUL, CR or LF. ERR_INVAL with errbuf detail (the
 * password itself never appears in it).
 */
int submit_read_password(
    const char *path, struct buf *pw, char *errbuf, size_t errlen);

/* Same rules for the OAuth 2.0 bearer token file of --token-file (the
 * messages say "token file"). */
int submit_read_token(
    const char *path, struct buf *pw, char *errbuf, size_t errlen);

/* Reads a PEM CA file (at most 1 MiB, with a certificate) into pem
 * (buf_init(pem, SUBMIT_CA_MAX)). ERR_INVAL with errbuf detail. */
int submit_read_ca(
    const char *path, struct buf *pem, char *errbuf, size_t errlen);

/* "seen", "answered", "flagged", "deleted", "draft" for bit index i of
 * PROTO_FLAG_*; NULL past the end. */
const char *submit_flag_name(unsigned i);

/* args.c: writes the formatted message to errbuf; returns ERR_INVAL. */
int submit_usage_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* args_change.c: the local-change commands' words and checks. Each
 * returns 0 or ERR_INVAL with a one-line message in errbuf. */
bool submit_is_change_word(const char *w);
/* flag|move|delete NAME MESSAGE_ID, append|send|changes NAME, messages
 * NAME [MAILBOX]: w[0] is the command word. */
int submit_parse_change_words(const char **w, size_t n,
    struct submit_args *a, char *errbuf, size_t errlen);
/* change resolve CHANGE_ID: w[0] is "resolve". */
int submit_parse_resolve(const char **w, size_t n, struct submit_args *a,
    char *errbuf, size_t errlen);
/* "seen,flagged" or "seen flagged" to PROTO_FLAG_* bits. */
int submit_parse_flag_list(
    const char *v, uint32_t *bits_r, char *errbuf, size_t errlen);
/* A change command's options once the whole line is parsed. */
int submit_check_change(struct submit_args *a, char *errbuf, size_t errlen);

/* True for an IMAP keyword mailsync accepts: 1-255 atom characters, not
 * starting with a backslash (system flags have options of their own). */
bool submit_keyword_valid(const char *k);

/*
 * Reads the message file of append/send into msg (buf_init(msg,
 * PROTO_MAX_RFC822)): bare LF line ends become CRLF, and a message
 * without a Message-ID field gets one at the top ("<32 hex digits@domain
 * of From>", else "@mailsync.invalid"). The result must have a header
 * section (mime_header_end) and be at most PROTO_MAX_RFC822 bytes.
 * ERR_INVAL with errbuf detail.
 */
int submit_read_message(
    const char *path, struct buf *msg, char *errbuf, size_t errlen);

/* The usage text, for --help and usage errors. */
const char *submit_usage(void);

/* Output (output.c): tables on stdout, or one JSON document with --json.
 * Every function borrows its arguments. */
void submit_print_accounts(const struct proto_reply *r, bool json);
void submit_print_jobs(const struct proto_reply *r, bool json);
void submit_print_job(const struct proto_job_info *j, bool json);
/* {"key": value} with one unsigned number, or "text" alone in text mode. */
void submit_print_id(
    const char *key, uint64_t id, const char *text, bool json);
/* Error: message on stderr; with json also {"error", "code"} on stdout. */
void submit_print_error(bool json, int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* sync --wait outcome: {"job": {...}, "result": "done"} or a text line. */
void submit_print_wait(const struct proto_job_info *j,
    const struct proto_account_info *acct, bool timed_out, uint32_t waited_s,
    bool json);
/* One change: {"change": {...}} or "change 12 (move) pending: ...". */
void submit_print_change(const struct proto_change_info *ch, bool json);
/*
 * The end of change --wait: {"change": {...}, "result": "done" | "dead" |
 * "uncertain" | "cancelled" | "timeout"}, or "change 12 (move) done: ..."
 * on stdout (done) or stderr (the others).
 */
void submit_print_change_wait(const struct proto_change_info *ch,
    bool timed_out, uint32_t waited_s, bool json);
/* changes: {"changes": [...]} or a table. */
void submit_print_changes(const struct proto_reply *r, bool json);
/* messages: {"messages": [...]} or a table. */
void submit_print_messages(const struct proto_reply *r, bool json);

/* main.c's connection to the store, shared with change.c. */
struct submit_ctx {
	const struct submit_args *a;
	char url[512];
	nng_socket sock;
	uint64_t next_id;
	int call_ms; /* timeout of one request */
	struct buf pw; /* account add: password (wiped) */
	struct buf ca; /* account add: CA PEM, empty if none */
	struct buf smtp_pw; /* account add: SMTP password (wiped) */
	struct buf msg; /* append, send: the message (submit_read_message) */
};
/*
 * Sends req, waits for the reply: 0 with *rep and *raw to release
 * (proto_msg_release, ipc_msg_free), else prints the problem (unless
 * quiet_unreachable and the store is unreachable) and returns an exit code.
 */
int submit_call(struct submit_ctx *c, struct proto_msg *req,
    struct proto_msg *rep, nng_msg **raw, int timeout_ms,
    bool quiet_unreachable);
/* Prints a refused request; returns its exit code (0 when it succeeded):
 * ERR_INVAL and ERR_NOTFOUND are the caller's input (exit 2) when
 * input_errors, else every refusal is exit 1. */
int submit_refused(const struct submit_ctx *c, const char *what,
    const struct proto_msg *rep, bool input_errors);
int submit_unreachable(const struct submit_ctx *c);
void submit_sleep_ms(int ms);

/* change.c: flag, move, delete, append, send, messages, changes, change
 * resolve. Returns the exit code. */
int submit_do_change(struct submit_ctx *c);

#endif
