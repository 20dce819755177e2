/*
 * args.c: mailsync-submit's command line, parsed and validated before
 * anything is sent: account names, the server URL (imap/imaps only, no
 * password in clear without --starttls or --plaintext), numbers with
 * bounds, the change commands' options. Pure: the files named on the
 * command line are read by files.c. tests/unit/submit_args_test.c
 * includes this file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "net/net.h"
#include "submit.h"

enum opt_id {
	OPT_DIR,
	OPT_CONTROL,
	OPT_JSON,
	OPT_TIMEOUT,
	OPT_IMAP,
	OPT_JMAP,
	OPT_USER,
	OPT_PASSWORD_FILE,
	OPT_TOKEN_FILE,
	OPT_TLS_CA,
	OPT_STARTTLS,
	OPT_PLAINTEXT,
	OPT_INTERVAL,
	OPT_BODIES,
	OPT_WAIT,
	OPT_HELP,
	OPT_SMTP,
	OPT_SMTP_USER,
	OPT_SMTP_PASSWORD_FILE,
	/* flag: one option per flag and direction, in PROTO_FLAG_* order */
	OPT_SEEN,
	OPT_UNSEEN,
	OPT_ANSWERED,
	OPT_UNANSWERED,
	OPT_FLAGGED,
	OPT_UNFLAGGED,
	OPT_DRAFT,
	OPT_UNDRAFT,
	OPT_ADD_KEYWORD,
	OPT_REMOVE_KEYWORD,
	OPT_TO,
	OPT_EXPUNGE,
	OPT_MAILBOX,
	OPT_FILE,
	OPT_FLAGS,
	OPT_LIMIT,
	OPT_STATE,
	OPT_RETRY,
	OPT_CANCEL,
	OPT_COUNT
};

/* Which commands accept an option (bit per enum submit_cmd). */
#define CMD_ANY 0xffffffu
#define CMD_(c) (1u << (c))
#define CMD_ADD CMD_(SUBMIT_CMD_ACCOUNT_ADD)
#define CMD_FLAG CMD_(SUBMIT_CMD_FLAG)
/* the commands that submit a change (and may --wait for it) */
#define CMD_CHANGE                                                            \
	(CMD_FLAG | CMD_(SUBMIT_CMD_MOVE) | CMD_(SUBMIT_CMD_DELETE)           \
	    | CMD_(SUBMIT_CMD_APPEND) | CMD_(SUBMIT_CMD_SEND))

static const struct opt {
	const char *name;
	bool has_arg;
	unsigned cmds;
} opts[OPT_COUNT] = {
	[OPT_DIR] = { "--dir", true, CMD_ANY },
	[OPT_CONTROL] = { "--control", true, CMD_ANY },
	[OPT_JSON] = { "--json", false, CMD_ANY },
	[OPT_TIMEOUT] = { "--timeout", true, CMD_ANY },
	[OPT_IMAP] = { "--imap", true, CMD_ADD },
	[OPT_JMAP] = { "--jmap", true, CMD_ADD },
	[OPT_USER] = { "--user", true, CMD_ADD },
	[OPT_PASSWORD_FILE] = { "--password-file", true, CMD_ADD },
	[OPT_TOKEN_FILE] = { "--token-file", true, CMD_ADD },
	[OPT_TLS_CA] = { "--tls-ca", true, CMD_ADD },
	[OPT_STARTTLS] = { "--starttls", false, CMD_ADD },
	[OPT_PLAINTEXT] = { "--plaintext", false, CMD_ADD },
	[OPT_INTERVAL] = { "--interval", true, CMD_ADD },
	[OPT_BODIES] = { "--bodies", true, CMD_ADD },
	[OPT_WAIT] = { "--wait", false,
	    CMD_(SUBMIT_CMD_SYNC) | CMD_(SUBMIT_CMD_FETCH_BODY) | CMD_CHANGE },
	[OPT_HELP] = { "--help", false, CMD_ANY },
	[OPT_SMTP] = { "--smtp", true, CMD_ADD },
	[OPT_SMTP_USER] = { "--smtp-user", true, CMD_ADD },
	[OPT_SMTP_PASSWORD_FILE] = { "--smtp-password-file", true, CMD_ADD },
	[OPT_SEEN] = { "--seen", false, CMD_FLAG },
	[OPT_UNSEEN] = { "--unseen", false, CMD_FLAG },
	[OPT_ANSWERED] = { "--answered", false, CMD_FLAG },
	[OPT_UNANSWERED] = { "--unanswered", false, CMD_FLAG },
	[OPT_FLAGGED] = { "--flagged", false, CMD_FLAG },
	[OPT_UNFLAGGED] = { "--unflagged", false, CMD_FLAG },
	[OPT_DRAFT] = { "--draft", false, CMD_FLAG },
	[OPT_UNDRAFT] = { "--undraft", false, CMD_FLAG },
	[OPT_ADD_KEYWORD] = { "--add-keyword", true, CMD_FLAG },
	[OPT_REMOVE_KEYWORD] = { "--remove-keyword", true, CMD_FLAG },
	[OPT_TO] = { "--to", true, CMD_(SUBMIT_CMD_MOVE) },
	[OPT_EXPUNGE] = { "--expunge", false, CMD_(SUBMIT_CMD_DELETE) },
	[OPT_MAILBOX] = { "--mailbox", true, CMD_(SUBMIT_CMD_APPEND) },
	[OPT_FILE]
	= { "--file", true, CMD_(SUBMIT_CMD_APPEND) | CMD_(SUBMIT_CMD_SEND) },
	[OPT_FLAGS] = { "--flags", true, CMD_(SUBMIT_CMD_APPEND) },
	[OPT_LIMIT] = { "--limit", true,
	    CMD_(SUBMIT_CMD_MESSAGES) | CMD_(SUBMIT_CMD_CHANGES) },
	[OPT_STATE] = { "--state", true, CMD_(SUBMIT_CMD_CHANGES) },
	[OPT_RETRY] = { "--retry", false, CMD_(SUBMIT_CMD_CHANGE_RESOLVE) },
	[OPT_CANCEL] = { "--cancel", false, CMD_(SUBMIT_CMD_CHANGE_RESOLVE) },
};

/* Options that may be given more than once (values collected). */
static bool
opt_repeats(int id)
{
	return (id == OPT_ADD_KEYWORD || id == OPT_REMOVE_KEYWORD);
}

/* Flag names of append --flags and the JSON output, by PROTO_FLAG_ bit. */
static const char *const flag_names[]
    = { "seen", "answered", "flagged", "deleted", "draft" };

const char *
submit_flag_name(unsigned i)
{
	return (i < ARRAY_LEN(flag_names) ? flag_names[i] : NULL);
}

static const char *const cmd_names[] = {
	[SUBMIT_CMD_ACCOUNT_ADD] = "account add",
	[SUBMIT_CMD_ACCOUNT_LIST] = "account list",
	[SUBMIT_CMD_ACCOUNT_REMOVE] = "account remove",
	[SUBMIT_CMD_SYNC] = "sync",
	[SUBMIT_CMD_STATUS] = "status",
	[SUBMIT_CMD_FETCH_BODY] = "fetch-body",
	[SUBMIT_CMD_HELP] = "help",
	[SUBMIT_CMD_FLAG] = "flag",
	[SUBMIT_CMD_MOVE] = "move",
	[SUBMIT_CMD_DELETE] = "delete",
	[SUBMIT_CMD_APPEND] = "append",
	[SUBMIT_CMD_SEND] = "send",
	[SUBMIT_CMD_MESSAGES] = "messages",
	[SUBMIT_CMD_CHANGES] = "changes",
	[SUBMIT_CMD_CHANGE_RESOLVE] = "change resolve",
};

#define MAX_WORDS 8
#define MAX_GIVEN (2 * SUBMIT_MAX_KEYWORDS + 32) /* options in one line */

static const char usage_text[]
    = "usage: mailsync-submit [--dir DIR] [--control URL] [--json] "
      "[--timeout SECONDS] COMMAND ...\n"
      "  account add NAME (--imap imap[s]://HOST[:PORT] |\n"
      "              --jmap https://HOST[:PORT]/.well-known/jmap) --user USER\n"
      "              (--password-file FILE | --token-file FILE)\n"
      "              [--tls-ca FILE] [--starttls]\n"
      "              [--plaintext] [--interval SECONDS]\n"
      "              [--bodies none|all|recent:DAYS]\n"
      "              [--smtp smtp[s]://HOST[:PORT] [--smtp-user USER]\n"
      "               [--smtp-password-file FILE]]\n"
      "  account list\n"
      "  account remove NAME\n"
      "  sync NAME [--wait] [--timeout SECONDS]\n"
      "  fetch-body NAME MESSAGE_ID [--wait] [--timeout SECONDS]\n"
      "  status [JOB_ID]\n"
      "  flag NAME MESSAGE_ID [--seen|--unseen] [--flagged|--unflagged]\n"
      "              [--answered|--unanswered] [--draft|--undraft]\n"
      "              [--add-keyword K]... [--remove-keyword K]...\n"
      "  move NAME MESSAGE_ID --to MAILBOX\n"
      "  delete NAME MESSAGE_ID [--expunge]\n"
      "  append NAME --mailbox MAILBOX --file FILE [--flags "
      "seen,flagged,...]\n"
      "  send NAME --file FILE\n"
      "      (these five: [--wait] [--timeout SECONDS])\n"
      "  messages NAME [MAILBOX] [--limit N]\n"
      "  changes NAME [--state active|pending|inflight|dead|uncertain|done|\n"
      "              cancelled|all] [--limit N]\n"
      "  change resolve CHANGE_ID (--retry|--cancel)\n";

const char *
submit_usage(void)
{
	return (usage_text);
}

int
submit_usage_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	return (ERR_INVAL);
}

bool
submit_name_valid(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > SUBMIT_NAME_MAX) {
		return (false);
	}
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		        || (c >= '0' && c <= '9') || c == '.' || c == '_'
		        || c == '@' || c == '+' || c == '-')) {
			return (false);
		}
	}
	return (true);
}

bool
submit_bodies_valid(const char *v)
{
	uint64_t days;

	if (strcmp(v, "none") == 0 || strcmp(v, "all") == 0) {
		return (true);
	}
	return (strncmp(v, "recent:", 7) == 0 && v[7] >= '0' && v[7] <= '9'
	    && parse_u64(v + 7, 36500, &days) == 0 && days > 0);
}

static int
parse_seconds(const char *opt, const char *v, uint64_t max, uint32_t *s_r,
    char *errbuf, size_t errlen)
{
	uint64_t n;

	if (parse_u64(v, max, &n) != 0 || n == 0) {
		return (submit_usage_err(errbuf, errlen,
		    "%s: expected a number of seconds from 1 to %llu, got "
		    "\"%.32s\"",
		    opt, (unsigned long long)max, v));
	}
	*s_r = (uint32_t)n;
	return (0);
}

/* Finds the option named by arg ("--x" or "--x=value"). */
static int
find_opt(const char *arg, const char **inline_r)
{
	size_t i, n;
	const char *eq = strchr(arg, '=');

	n = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	*inline_r = eq != NULL ? eq + 1 : NULL;
	if (n == 2 && strncmp(arg, "-h", 2) == 0) {
		return (OPT_HELP);
	}
	for (i = 0; i < OPT_COUNT; i++) {
		if (strlen(opts[i].name) == n
		    && strncmp(opts[i].name, arg, n) == 0) {
			return ((int)i);
		}
	}
	return (-1);
}

/* Maps the command words to a command; checks their number. */
static int
parse_words(const char **w, size_t n, struct submit_args *a, char *errbuf,
    size_t errlen)
{
	size_t want;

	if (n == 0) {
		return (submit_usage_err(errbuf, errlen,
		    "missing command (account, "
		    "sync or status)"));
	}
	if (strcmp(w[0], "account") == 0) {
		if (n < 2) {
			return (submit_usage_err(errbuf, errlen,
			    "account: missing subcommand (add, list or "
			    "remove)"));
		}
		if (strcmp(w[1], "add") == 0) {
			a->cmd = SUBMIT_CMD_ACCOUNT_ADD;
		} else if (strcmp(w[1], "list") == 0) {
			a->cmd = SUBMIT_CMD_ACCOUNT_LIST;
		} else if (strcmp(w[1], "remove") == 0) {
			a->cmd = SUBMIT_CMD_ACCOUNT_REMOVE;
		} else {
			return (submit_usage_err(errbuf, errlen,
			    "account: unknown subcommand \"%.64s\" (add, list "
			    "or remove)",
			    w[1]));
		}
		w += 2;
		n -= 2;
	} else if (strcmp(w[0], "sync") == 0) {
		a->cmd = SUBMIT_CMD_SYNC;
		w++;
		n--;
	} else if (strcmp(w[0], "status") == 0) {
		a->cmd = SUBMIT_CMD_STATUS;
		w++;
		n--;
	} else if (strcmp(w[0], "fetch-body") == 0) {
		a->cmd = SUBMIT_CMD_FETCH_BODY;
		w++;
		n--;
		if (n == 2
		    && (parse_u64(w[1], INT64_MAX, &a->message_id) != 0
		        || a->message_id == 0)) {
			return (submit_usage_err(errbuf, errlen,
			    "fetch-body: MESSAGE_ID must be a positive number "
			    "(messages.id), got \"%.64s\"",
			    w[1]));
		}
		if (n == 1) {
			return (submit_usage_err(
			    errbuf, errlen, "fetch-body: missing MESSAGE_ID"));
		}
		if (n == 2) {
			n = 1; /* NAME is checked below */
		}
	} else if (strcmp(w[0], "change") == 0) {
		return (submit_parse_resolve(w + 1, n - 1, a, errbuf, errlen));
	} else if (submit_is_change_word(w[0])) {
		return (submit_parse_change_words(w, n, a, errbuf, errlen));
	} else {
		return (submit_usage_err(errbuf, errlen,
		    "unknown command \"%.64s\" (account, sync, fetch-body, "
		    "status, flag, move, delete, append, send, messages, "
		    "changes or change)",
		    w[0]));
	}
	want = a->cmd == SUBMIT_CMD_ACCOUNT_LIST ? 0 : 1;
	if (a->cmd == SUBMIT_CMD_STATUS) {
		if (n > 1) {
			return (submit_usage_err(errbuf, errlen,
			    "status: unexpected argument \"%.64s\"", w[1]));
		}
		if (n == 1
		    && (parse_u64(w[0], UINT64_MAX, &a->job_id) != 0
		        || a->job_id == 0)) {
			return (submit_usage_err(errbuf, errlen,
			    "status: JOB_ID must be a positive number, got "
			    "\"%.64s\"",
			    w[0]));
		}
		return (0);
	}
	if (n < want) {
		return (submit_usage_err(errbuf, errlen, "%s: missing account NAME",
		    cmd_names[a->cmd]));
	}
	if (n > want) {
		return (submit_usage_err(errbuf, errlen,
		    "%s: unexpected argument \"%.64s\"", cmd_names[a->cmd],
		    w[want]));
	}
	if (want == 1) {
		a->name = w[0];
		if (!submit_name_valid(a->name)) {
			return (submit_usage_err(errbuf, errlen,
			    "invalid account name \"%.80s\": use 1-%d "
			    "characters from A-Z a-z 0-9 . _ @ + -",
			    a->name, SUBMIT_NAME_MAX));
		}
	}
	return (0);
}

/* account add --jmap: https://, or http:// with --plaintext. */
static int
check_jmap_url(struct submit_args *a, char *errbuf, size_t errlen)
{
	if (strcmp(a->url.scheme, "https") != 0
	    && strcmp(a->url.scheme, "http") != 0) {
		return (submit_usage_err(errbuf, errlen,
		    "--jmap: scheme must be https (or http with "
		    "--plaintext), not %s",
		    a->url.scheme));
	}
	if (a->starttls) {
		return (submit_usage_err(errbuf, errlen,
		    "--starttls is for imap:// accounts; a JMAP account "
		    "uses https://"));
	}
	if (strcmp(a->url.scheme, "https") == 0 && a->plaintext) {
		return (submit_usage_err(errbuf, errlen,
		    "--plaintext cannot be used with https:// (the "
		    "connection is encrypted)"));
	}
	if (strcmp(a->url.scheme, "http") == 0 && !a->plaintext) {
		return (submit_usage_err(errbuf, errlen,
		    "refusing to send a password in clear text over "
		    "http://; use https://, or --plaintext"));
	}
	return (0);
}

/* Checks the options of account add once everything is known. */
static int
check_add(struct submit_args *a, char *errbuf, size_t errlen)
{
	char uerr[256];

	if (a->server == NULL) {
		return (submit_usage_err(errbuf, errlen,
		    "account add: missing --imap imap[s]://HOST[:PORT] (or "
		    "--jmap https://HOST/.well-known/jmap)"));
	}
	if (a->user == NULL) {
		return (submit_usage_err(
		    errbuf, errlen, "account add: missing --user USER"));
	}
	if (a->user[0] == '\0' || strlen(a->user) > 1024) {
		return (submit_usage_err(
		    errbuf, errlen, "--user: must be 1 to 1024 bytes"));
	}
	if (a->password_file != NULL && a->token_file != NULL) {
		return (submit_usage_err(errbuf, errlen,
		    "--password-file and --token-file exclude each other: "
		    "give a password or an OAuth 2.0 token"));
	}
	if (a->password_file == NULL && a->token_file == NULL) {
		return (submit_usage_err(errbuf, errlen,
		    "account add: missing --password-file FILE (or "
		    "--token-file FILE)"));
	}
	if (net_url_parse(a->server, &a->url, uerr, sizeof(uerr)) != 0) {
		return (submit_usage_err(errbuf, errlen,
		    "--%s: bad URL \"%.128s\": "
		    "%s",
		    a->protocol, a->server, uerr));
	}
	if (strcmp(a->protocol, "jmap") == 0) {
		if (check_jmap_url(a, errbuf, errlen) != 0) {
			return (ERR_INVAL);
		}
	} else if (strcmp(a->url.scheme, "imap") != 0
	    && strcmp(a->url.scheme, "imaps") != 0) {
		return (submit_usage_err(errbuf, errlen,
		    "--imap: scheme must be imap or imaps, not %s",
		    a->url.scheme));
	}
	if (strcmp(a->url.scheme, "imaps") == 0) {
		if (a->starttls) {
			return (submit_usage_err(errbuf, errlen,
			    "--starttls cannot be used with imaps:// (TLS "
			    "from the first byte); use imap:// with "
			    "--starttls, or imaps:// alone"));
		}
		if (a->plaintext) {
			return (submit_usage_err(errbuf, errlen,
			    "--plaintext cannot be used with imaps:// (the "
			    "connection is encrypted)"));
		}
	} else if (a->starttls && a->plaintext) {
		return (submit_usage_err(errbuf, errlen,
		    "--starttls and --plaintext exclude each other: "
		    "--starttls encrypts, --plaintext does not"));
	} else if (!a->starttls && !a->plaintext) {
		return (submit_usage_err(errbuf, errlen,
		    "refusing to send a password in clear text over "
		    "imap://; use imaps://, --starttls, or --plaintext"));
	}
	if (a->smtp == NULL
	    && (a->smtp_user != NULL || a->smtp_password_file != NULL)) {
		return (submit_usage_err(errbuf, errlen,
		    "--smtp-user and --smtp-password-file need --smtp URL"));
	}
	if (a->smtp != NULL) {
		struct net_url su;

		if (net_url_parse(a->smtp, &su, uerr, sizeof(uerr)) != 0) {
			return (submit_usage_err(errbuf, errlen,
			    "--smtp: bad URL \"%.128s\": %s", a->smtp, uerr));
		}
		if (strcmp(su.scheme, "smtp") != 0
		    && strcmp(su.scheme, "smtps") != 0) {
			return (submit_usage_err(errbuf, errlen,
			    "--smtp: scheme must be smtp (STARTTLS) or smtps, "
			    "not %s",
			    su.scheme));
		}
	}
	return (0);
}

/* Stores one option's value into a. */
static int
set_opt(
    struct submit_args *a, int id, const char *v, char *errbuf, size_t errlen)
{
	switch (id) {
	case OPT_DIR:
		if (v[0] == '\0') {
			return (
			    submit_usage_err(errbuf, errlen, "--dir: empty path"));
		}
		a->dir = v;
		return (0);
	case OPT_CONTROL:
		if (strncmp(v, "ipc://", 6) != 0
		    && strncmp(v, "tcp://", 6) != 0
		    && strncmp(v, "tls+tcp://", 10) != 0) {
			return (submit_usage_err(errbuf, errlen,
			    "--control: bad URL \"%.128s\" (use ipc://PATH, "
			    "tcp://HOST:PORT or tls+tcp://HOST:PORT)",
			    v));
		}
		a->control_url = v;
		return (0);
	case OPT_JSON:
		a->json = true;
		return (0);
	case OPT_TIMEOUT:
		return (parse_seconds("--timeout", v, SUBMIT_TIMEOUT_MAX_S,
		    &a->timeout_s, errbuf, errlen));
	case OPT_IMAP:
	case OPT_JMAP:
		if (a->server != NULL) {
			return (submit_usage_err(errbuf, errlen,
			    "--imap and --jmap exclude each other, and each "
			    "is given once"));
		}
		a->server = v;
		a->protocol = id == OPT_JMAP ? "jmap" : "imap";
		return (0);
	case OPT_USER:
		a->user = v;
		return (0);
	case OPT_PASSWORD_FILE:
		a->password_file = v;
		return (0);
	case OPT_TOKEN_FILE:
		a->token_file = v;
		return (0);
	case OPT_TLS_CA:
		a->tls_ca_file = v;
		return (0);
	case OPT_STARTTLS:
		a->starttls = true;
		return (0);
	case OPT_PLAINTEXT:
		a->plaintext = true;
		return (0);
	case OPT_INTERVAL:
		return (parse_seconds("--interval", v, UINT32_MAX,
		    &a->interval_s, errbuf, errlen));
	case OPT_BODIES:
		if (!submit_bodies_valid(v)) {
			return (submit_usage_err(errbuf, errlen,
			    "--bodies: expected none, all or recent:DAYS "
			    "(DAYS "
			    "1-36500), got \"%.64s\"",
			    v));
		}
		a->bodies = v;
		return (0);
	case OPT_WAIT:
		a->wait = true;
		return (0);
	case OPT_SMTP:
		a->smtp = v;
		return (0);
	case OPT_SMTP_USER:
		if (v[0] == '\0' || strlen(v) > 1024) {
			return (submit_usage_err(errbuf, errlen,
			    "--smtp-user: must be 1 to 1024 bytes"));
		}
		a->smtp_user = v;
		return (0);
	case OPT_SMTP_PASSWORD_FILE:
		a->smtp_password_file = v;
		return (0);
	case OPT_SEEN:
	case OPT_UNSEEN:
	case OPT_ANSWERED:
	case OPT_UNANSWERED:
	case OPT_FLAGGED:
	case OPT_UNFLAGGED:
	case OPT_DRAFT:
	case OPT_UNDRAFT: {
		/* pairs in PROTO_FLAG_ order, deleted skipped */
		static const uint32_t bit[]
		    = { PROTO_FLAG_SEEN, PROTO_FLAG_ANSWERED,
			      PROTO_FLAG_FLAGGED, PROTO_FLAG_DRAFT };
		uint32_t b = bit[(id - OPT_SEEN) / 2];

		if (((id - OPT_SEEN) % 2 == 0 ? a->flags_remove : a->flags_add)
		    & b) {
			return (submit_usage_err(errbuf, errlen,
			    "%s contradicts an earlier option",
			    opts[id].name));
		}
		if ((id - OPT_SEEN) % 2 == 0) {
			a->flags_add |= b;
		} else {
			a->flags_remove |= b;
		}
		return (0);
	}
	case OPT_ADD_KEYWORD:
	case OPT_REMOVE_KEYWORD:
		if (!submit_keyword_valid(v)) {
			return (submit_usage_err(errbuf, errlen,
			    "%s: \"%.64s\" is not a keyword (1-255 "
			    "characters, "
			    "no space, ( ) { %% * \" \\ ], not starting with "
			    "\\)",
			    opts[id].name, v));
		}
		if ((id == OPT_ADD_KEYWORD ? a->nkw_add : a->nkw_remove)
		    == SUBMIT_MAX_KEYWORDS) {
			return (submit_usage_err(errbuf, errlen,
			    "%s: at most %d keywords", opts[id].name,
			    SUBMIT_MAX_KEYWORDS));
		}
		if (id == OPT_ADD_KEYWORD) {
			a->kw_add[a->nkw_add++] = v;
		} else {
			a->kw_remove[a->nkw_remove++] = v;
		}
		return (0);
	case OPT_TO:
	case OPT_MAILBOX:
		if (v[0] == '\0' || strlen(v) > 1000) {
			return (submit_usage_err(errbuf, errlen,
			    "%s: a mailbox name of 1 to 1000 bytes",
			    opts[id].name));
		}
		*(id == OPT_TO ? &a->to : &a->mailbox) = v;
		return (0);
	case OPT_EXPUNGE:
		a->expunge = true;
		return (0);
	case OPT_FILE:
		a->file = v;
		return (0);
	case OPT_FLAGS:
		return (submit_parse_flag_list(v, &a->flags_add, errbuf, errlen));
	case OPT_LIMIT: {
		uint64_t n;

		if (parse_u64(v, SUBMIT_LIST_MAX, &n) != 0 || n == 0) {
			return (submit_usage_err(errbuf, errlen,
			    "--limit: expected a number from 1 to %d, got "
			    "\"%.32s\"",
			    SUBMIT_LIST_MAX, v));
		}
		a->limit = (uint32_t)n;
		return (0);
	}
	case OPT_STATE: {
		static const char *const states[]
		    = { "active", "pending", "inflight", "dead", "uncertain",
			      "done", "cancelled", "all" };
		size_t i;

		for (i = 0; i < ARRAY_LEN(states); i++) {
			if (strcmp(states[i], v) == 0) {
				a->state = v;
				return (0);
			}
		}
		return (submit_usage_err(errbuf, errlen,
		    "--state: expected active, pending, inflight, dead, "
		    "uncertain, done, cancelled or all, got \"%.32s\"",
		    v));
	}
	case OPT_RETRY:
		a->retry = true;
		return (0);
	case OPT_CANCEL:
		a->cancel = true;
		return (0);
	default:
		return (submit_usage_err(errbuf, errlen, "internal: option %d", id));
	}
}

int
submit_args_parse(
    int argc, char **argv, struct submit_args *a, char *errbuf, size_t errlen)
{
	const char *words[MAX_WORDS], *inl, *v;
	struct {
		int id;
		const char *v;
	} given[MAX_GIVEN];
	bool seen[OPT_COUNT], only_words = false;
	size_t nwords = 0, ngiven = 0, k;
	int i, id, rv;

	memset(a, 0, sizeof(*a));
	memset(seen, 0, sizeof(seen));
	a->dir = SUBMIT_DEFAULT_DIR;
	/* --json anywhere shapes the usage error too (docs/cli.md) */
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		a->json = a->json || strcmp(argv[i], "--json") == 0;
	}
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (only_words || arg[0] != '-' || arg[1] == '\0') {
			if (nwords == MAX_WORDS) {
				return (submit_usage_err(
				    errbuf, errlen, "too many arguments"));
			}
			words[nwords++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_words = true;
			continue;
		}
		id = find_opt(arg, &inl);
		if (id < 0) {
			return (submit_usage_err(
			    errbuf, errlen, "unknown option \"%.64s\"", arg));
		}
		if (seen[id] && !opt_repeats(id)) {
			return (submit_usage_err(errbuf, errlen,
			    "option %s given twice", opts[id].name));
		}
		seen[id] = true;
		if (ngiven == MAX_GIVEN) {
			return (submit_usage_err(errbuf, errlen, "too many options"));
		}
		if (!opts[id].has_arg) {
			if (inl != NULL) {
				return (submit_usage_err(errbuf, errlen,
				    "option %s takes no value",
				    opts[id].name));
			}
			given[ngiven].id = id;
			given[ngiven++].v = "";
			continue;
		}
		if (inl != NULL) {
			v = inl;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			return (submit_usage_err(errbuf, errlen,
			    "option %s needs an argument", opts[id].name));
		}
		given[ngiven].id = id;
		given[ngiven++].v = v;
	}
	if (seen[OPT_HELP]) {
		a->cmd = SUBMIT_CMD_HELP;
		return (0);
	}
	rv = parse_words(words, nwords, a, errbuf, errlen);
	if (rv != 0) {
		return (rv);
	}
	for (k = 0; k < ngiven; k++) {
		id = given[k].id;
		if ((opts[id].cmds & CMD_(a->cmd)) == 0) {
			return (submit_usage_err(errbuf, errlen,
			    "option %s does not apply to %s", opts[id].name,
			    cmd_names[a->cmd]));
		}
		rv = set_opt(a, id, given[k].v, errbuf, errlen);
		if (rv != 0) {
			return (rv);
		}
	}
	if (a->cmd == SUBMIT_CMD_ACCOUNT_ADD) {
		return (check_add(a, errbuf, errlen));
	}
	return (submit_check_change(a, errbuf, errlen));
}
