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
	SUBMIT_CMD_HELP
};

#define SUBMIT_DEFAULT_DIR "./mailsync-data"
#define SUBMIT_NAME_MAX 64
#define SUBMIT_PASSWORD_MAX 4096
#define SUBMIT_CA_MAX (1024u * 1024)
#define SUBMIT_WAIT_DEFAULT_S 300 /* sync --wait, fetch-body --wait */
#define SUBMIT_CALL_DEFAULT_S 10 /* one control request */
#define SUBMIT_TIMEOUT_MAX_S 86400

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
	const char *server; /* --imap URL as given */
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
};

/*
 * Parses argv (argv[0] is the program). Options may come before or after
 * the command words; "--opt=value" and "--opt value" are both accepted.
 * Returns 0, or ERR_INVAL with a one-line message in errbuf.
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

#endif
