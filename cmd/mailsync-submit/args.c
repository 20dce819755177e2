/*
 * args.c: mailsync-submit's command line, parsed and validated before
 * anything is sent: account names, the server URL (imap/imaps only, no
 * password in clear without --starttls or --plaintext), numbers with
 * bounds, and the password and CA files. Pure apart from reading those two
 * files; tests/unit/submit_args_test.c includes this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "net/net.h"
#include "submit.h"

enum opt_id {
	OPT_DIR,
	OPT_CONTROL,
	OPT_JSON,
	OPT_TIMEOUT,
	OPT_IMAP,
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
	OPT_COUNT
};

/* Which commands accept an option (bit per enum submit_cmd). */
#define CMD_ANY 0xffu
#define CMD_(c) (1u << (c))
#define CMD_ADD CMD_(SUBMIT_CMD_ACCOUNT_ADD)

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
	[OPT_USER] = { "--user", true, CMD_ADD },
	[OPT_PASSWORD_FILE] = { "--password-file", true, CMD_ADD },
	[OPT_TOKEN_FILE] = { "--token-file", true, CMD_ADD },
	[OPT_TLS_CA] = { "--tls-ca", true, CMD_ADD },
	[OPT_STARTTLS] = { "--starttls", false, CMD_ADD },
	[OPT_PLAINTEXT] = { "--plaintext", false, CMD_ADD },
	[OPT_INTERVAL] = { "--interval", true, CMD_ADD },
	[OPT_BODIES] = { "--bodies", true, CMD_ADD },
	[OPT_WAIT] = { "--wait", false,
	    CMD_(SUBMIT_CMD_SYNC) | CMD_(SUBMIT_CMD_FETCH_BODY) },
	[OPT_HELP] = { "--help", false, CMD_ANY },
};

static const char *const cmd_names[] = {
	[SUBMIT_CMD_ACCOUNT_ADD] = "account add",
	[SUBMIT_CMD_ACCOUNT_LIST] = "account list",
	[SUBMIT_CMD_ACCOUNT_REMOVE] = "account remove",
	[SUBMIT_CMD_SYNC] = "sync",
	[SUBMIT_CMD_STATUS] = "status",
	[SUBMIT_CMD_FETCH_BODY] = "fetch-body",
	[SUBMIT_CMD_HELP] = "help",
};

#define MAX_WORDS 8

static const char usage_text[]
    = "usage: mailsync-submit [--dir DIR] [--control URL] [--json] "
      "[--timeout SECONDS] COMMAND ...\n"
      "  account add NAME --imap imap[s]://HOST[:PORT] --user USER\n"
      "              (--password-file FILE | --token-file FILE)\n"
      "              [--tls-ca FILE] [--starttls]\n"
      "              [--plaintext] [--interval SECONDS]\n"
      "              [--bodies none|all|recent:DAYS]\n"
      "  account list\n"
      "  account remove NAME\n"
      "  sync NAME [--wait] [--timeout SECONDS]\n"
      "  fetch-body NAME MESSAGE_ID [--wait] [--timeout SECONDS]\n"
      "  status [JOB_ID]\n";

const char *
submit_usage(void)
{
	return (usage_text);
}

static int usage_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
usage_err(char *errbuf, size_t errlen, const char *fmt, ...)
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
		return (usage_err(errbuf, errlen,
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
		return (usage_err(errbuf, errlen,
		    "missing command (account, "
		    "sync or status)"));
	}
	if (strcmp(w[0], "account") == 0) {
		if (n < 2) {
			return (usage_err(errbuf, errlen,
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
			return (usage_err(errbuf, errlen,
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
			return (usage_err(errbuf, errlen,
			    "fetch-body: MESSAGE_ID must be a positive number "
			    "(messages.id), got \"%.64s\"",
			    w[1]));
		}
		if (n == 1) {
			return (usage_err(errbuf, errlen,
			    "fetch-body: missing MESSAGE_ID"));
		}
		if (n == 2) {
			n = 1; /* NAME is checked below */
		}
	} else {
		return (usage_err(errbuf, errlen,
		    "unknown command \"%.64s\" (account, sync or status)",
		    w[0]));
	}
	want = a->cmd == SUBMIT_CMD_ACCOUNT_LIST ? 0 : 1;
	if (a->cmd == SUBMIT_CMD_STATUS) {
		if (n > 1) {
			return (usage_err(errbuf, errlen,
			    "status: unexpected argument \"%.64s\"", w[1]));
		}
		if (n == 1
		    && (parse_u64(w[0], UINT64_MAX, &a->job_id) != 0
		        || a->job_id == 0)) {
			return (usage_err(errbuf, errlen,
			    "status: JOB_ID must be a positive number, got "
			    "\"%.64s\"",
			    w[0]));
		}
		return (0);
	}
	if (n < want) {
		return (usage_err(errbuf, errlen, "%s: missing account NAME",
		    cmd_names[a->cmd]));
	}
	if (n > want) {
		return (usage_err(errbuf, errlen,
		    "%s: unexpected argument \"%.64s\"", cmd_names[a->cmd],
		    w[want]));
	}
	if (want == 1) {
		a->name = w[0];
		if (!submit_name_valid(a->name)) {
			return (usage_err(errbuf, errlen,
			    "invalid account name \"%.80s\": use 1-%d "
			    "characters from A-Z a-z 0-9 . _ @ + -",
			    a->name, SUBMIT_NAME_MAX));
		}
	}
	return (0);
}

/* Checks the options of account add once everything is known. */
static int
check_add(struct submit_args *a, char *errbuf, size_t errlen)
{
	char uerr[256];

	if (a->server == NULL) {
		return (usage_err(errbuf, errlen,
		    "account add: missing --imap imap[s]://HOST[:PORT]"));
	}
	if (a->user == NULL) {
		return (usage_err(
		    errbuf, errlen, "account add: missing --user USER"));
	}
	if (a->user[0] == '\0' || strlen(a->user) > 1024) {
		return (usage_err(
		    errbuf, errlen, "--user: must be 1 to 1024 bytes"));
	}
	if (a->password_file != NULL && a->token_file != NULL) {
		return (usage_err(errbuf, errlen,
		    "--password-file and --token-file exclude each other: "
		    "give a password or an OAuth 2.0 token"));
	}
	if (a->password_file == NULL && a->token_file == NULL) {
		return (usage_err(errbuf, errlen,
		    "account add: missing --password-file FILE (or "
		    "--token-file FILE)"));
	}
	if (net_url_parse(a->server, &a->url, uerr, sizeof(uerr)) != 0) {
		return (usage_err(errbuf, errlen,
		    "--imap: bad URL \"%.128s\": "
		    "%s",
		    a->server, uerr));
	}
	if (strcmp(a->url.scheme, "imap") != 0
	    && strcmp(a->url.scheme, "imaps") != 0) {
		return (usage_err(errbuf, errlen,
		    "--imap: scheme must be imap or imaps, not %s",
		    a->url.scheme));
	}
	if (strcmp(a->url.scheme, "imaps") == 0) {
		if (a->starttls) {
			return (usage_err(errbuf, errlen,
			    "--starttls cannot be used with imaps:// (TLS "
			    "from the first byte); use imap:// with "
			    "--starttls, or imaps:// alone"));
		}
		if (a->plaintext) {
			return (usage_err(errbuf, errlen,
			    "--plaintext cannot be used with imaps:// (the "
			    "connection is encrypted)"));
		}
	} else if (a->starttls && a->plaintext) {
		return (usage_err(errbuf, errlen,
		    "--starttls and --plaintext exclude each other: "
		    "--starttls encrypts, --plaintext does not"));
	} else if (!a->starttls && !a->plaintext) {
		return (usage_err(errbuf, errlen,
		    "refusing to send a password in clear text over "
		    "imap://; use imaps://, --starttls, or --plaintext"));
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
			    usage_err(errbuf, errlen, "--dir: empty path"));
		}
		a->dir = v;
		return (0);
	case OPT_CONTROL:
		if (strncmp(v, "ipc://", 6) != 0
		    && strncmp(v, "tcp://", 6) != 0
		    && strncmp(v, "tls+tcp://", 10) != 0) {
			return (usage_err(errbuf, errlen,
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
		a->server = v;
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
			return (usage_err(errbuf, errlen,
			    "--bodies: expected none, all or recent:DAYS (DAYS "
			    "1-36500), got \"%.64s\"",
			    v));
		}
		a->bodies = v;
		return (0);
	case OPT_WAIT:
		a->wait = true;
		return (0);
	default:
		return (usage_err(errbuf, errlen, "internal: option %d", id));
	}
}

int
submit_args_parse(
    int argc, char **argv, struct submit_args *a, char *errbuf, size_t errlen)
{
	const char *words[MAX_WORDS], *vals[OPT_COUNT], *inl, *v;
	bool seen[OPT_COUNT], only_words = false;
	size_t nwords = 0;
	int i, id, rv;

	memset(a, 0, sizeof(*a));
	memset(seen, 0, sizeof(seen));
	memset(vals, 0, sizeof(vals));
	a->dir = SUBMIT_DEFAULT_DIR;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (only_words || arg[0] != '-' || arg[1] == '\0') {
			if (nwords == MAX_WORDS) {
				return (usage_err(
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
			return (usage_err(
			    errbuf, errlen, "unknown option \"%.64s\"", arg));
		}
		if (seen[id]) {
			return (usage_err(errbuf, errlen,
			    "option %s given twice", opts[id].name));
		}
		seen[id] = true;
		if (!opts[id].has_arg) {
			if (inl != NULL) {
				return (usage_err(errbuf, errlen,
				    "option %s takes no value",
				    opts[id].name));
			}
			vals[id] = "";
			continue;
		}
		if (inl != NULL) {
			v = inl;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			return (usage_err(errbuf, errlen,
			    "option %s needs an argument", opts[id].name));
		}
		vals[id] = v;
	}
	if (seen[OPT_HELP]) {
		a->cmd = SUBMIT_CMD_HELP;
		return (0);
	}
	rv = parse_words(words, nwords, a, errbuf, errlen);
	if (rv != 0) {
		return (rv);
	}
	for (id = 0; id < OPT_COUNT; id++) {
		if (!seen[id]) {
			continue;
		}
		if ((opts[id].cmds & CMD_(a->cmd)) == 0) {
			return (usage_err(errbuf, errlen,
			    "option %s does not apply to %s", opts[id].name,
			    cmd_names[a->cmd]));
		}
		rv = set_opt(a, id, vals[id], errbuf, errlen);
		if (rv != 0) {
			return (rv);
		}
	}
	if (a->cmd == SUBMIT_CMD_ACCOUNT_ADD) {
		return (check_add(a, errbuf, errlen));
	}
	return (0);
}

/* Reads at most max bytes of path into b; ERR_TOOBIG if there is more. */
static int
read_capped(const char *what, const char *path, struct buf *b, size_t max,
    char *errbuf, size_t errlen)
{
	char chunk[4096];
	struct stat st;
	ssize_t n;
	int fd, rv = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		return (usage_err(errbuf, errlen, "%s %.256s: cannot read: %s",
		    what, path, strerror(errno)));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return (usage_err(errbuf, errlen,
		    "%s %.256s: not a regular file", what, path));
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			rv = usage_err(errbuf, errlen,
			    "%s %.256s: cannot read: %s", what, path,
			    strerror(errno));
			break;
		}
		if (n == 0) {
			break;
		}
		if (b->len + (size_t)n > max) {
			rv = usage_err(errbuf, errlen,
			    "%s %.256s: larger than %zu bytes", what, path,
			    max);
			break;
		}
		rv = buf_add(b, chunk, (size_t)n);
		if (rv != 0) {
			rv = usage_err(errbuf, errlen, "%s %.256s: %s", what,
			    path, err_str(rv));
			break;
		}
	}
	mem_wipe(chunk, sizeof(chunk));
	close(fd);
	return (rv);
}

/* Reads a secret file (what: "password file" or "token file"). */
static int
read_secret(const char *what, const char *path, struct buf *pw,
    char *errbuf, size_t errlen)
{
	size_t i;
	int rv;

	/* One more byte than the limit, for the trailing newline. */
	rv = read_capped(
	    what, path, pw, SUBMIT_PASSWORD_MAX + 1, errbuf, errlen);
	if (rv != 0) {
		return (rv);
	}
	if (pw->len > 0 && pw->data[pw->len - 1] == '\n') {
		pw->len--;
		pw->data[pw->len] = '\0';
	}
	if (pw->len == 0) {
		return (usage_err(
		    errbuf, errlen, "%s %.256s: empty", what, path));
	}
	if (pw->len > SUBMIT_PASSWORD_MAX) {
		return (usage_err(errbuf, errlen,
		    "%s %.256s: larger than %d bytes", what, path,
		    SUBMIT_PASSWORD_MAX));
	}
	for (i = 0; i < pw->len; i++) {
		char c = pw->data[i];

		if (c == '\0' || c == '\r' || c == '\n') {
			return (usage_err(errbuf, errlen,
			    "%s %.256s: contains a NUL, CR or LF "
			    "byte (only one trailing newline is allowed)",
			    what, path));
		}
	}
	return (0);
}

int
submit_read_password(
    const char *path, struct buf *pw, char *errbuf, size_t errlen)
{
	return (read_secret("password file", path, pw, errbuf, errlen));
}

int
submit_read_token(
    const char *path, struct buf *pw, char *errbuf, size_t errlen)
{
	return (read_secret("token file", path, pw, errbuf, errlen));
}

int
submit_read_ca(const char *path, struct buf *pem, char *errbuf, size_t errlen)
{
	int rv;

	rv = read_capped("CA file", path, pem, SUBMIT_CA_MAX, errbuf, errlen);
	if (rv != 0) {
		return (rv);
	}
	if (pem->len == 0 || memchr(pem->data, '\0', pem->len) != NULL
	    || strstr(pem->data, "-----BEGIN CERTIFICATE-----") == NULL) {
		return (usage_err(errbuf, errlen,
		    "CA file %.256s: no PEM certificate (\"-----BEGIN "
		    "CERTIFICATE-----\") in it",
		    path));
	}
	return (0);
}
