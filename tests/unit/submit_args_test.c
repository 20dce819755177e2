/*
 * submit_args_test.c: mailsync-submit's command line validation
 * (cmd/mailsync-submit/args.c, included here since it is cmd-local): a
 * table of command lines with the error each must give or the fields it
 * must set, and the password and CA file rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../cmd/mailsync-submit/args.c"
#include "../../cmd/mailsync-submit/args_change.c"
#include "../../cmd/mailsync-submit/files.c"

#define MAXARGS 24

struct args_case {
	const char *line; /* space-separated; no quoting */
	const char *err;  /* NULL: must parse; else substring of the error */
	enum submit_cmd cmd;
};

static const struct args_case cases[] = {
	{ "", "missing command", 0 },
	{ "frobnicate", "unknown command \"frobnicate\"", 0 },
	{ "account", "account: missing subcommand", 0 },
	{ "account delete x", "account: unknown subcommand \"delete\"", 0 },
	{ "account list", NULL, SUBMIT_CMD_ACCOUNT_LIST },
	{ "--json account list --dir /d", NULL, SUBMIT_CMD_ACCOUNT_LIST },
	{ "account list extra", "account list: unexpected argument \"extra\"",
	    0 },
	{ "account remove", "account remove: missing account NAME", 0 },
	{ "account remove bad/name", "invalid account name \"bad/name\"", 0 },
	{ "account remove a..b@x+y-z_1", NULL, SUBMIT_CMD_ACCOUNT_REMOVE },
	{ "account remove "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "invalid account name", 0 },
	{ "sync", "sync: missing account NAME", 0 },
	{ "sync alice --wait --timeout 5", NULL, SUBMIT_CMD_SYNC },
	{ "--timeout=5 sync alice", NULL, SUBMIT_CMD_SYNC },
	{ "sync alice --timeout", "option --timeout needs an argument", 0 },
	{ "sync alice --timeout 0", "--timeout: expected a number of seconds",
	    0 },
	{ "sync alice --timeout -1", "--timeout: expected a number", 0 },
	{ "sync alice --timeout 99999999999", "--timeout: expected", 0 },
	{ "sync alice --wait=yes", "option --wait takes no value", 0 },
	{ "sync alice --wait --wait", "option --wait given twice", 0 },
	{ "sync alice --bogus", "unknown option \"--bogus\"", 0 },
	{ "status --wait", "option --wait does not apply to status", 0 },
	{ "status", NULL, SUBMIT_CMD_STATUS },
	{ "status 12", NULL, SUBMIT_CMD_STATUS },
	{ "status 0", "status: JOB_ID must be a positive number", 0 },
	{ "status x1", "status: JOB_ID must be a positive number", 0 },
	{ "status 1 2", "status: unexpected argument \"2\"", 0 },
	{ "--control http://x status", "--control: bad URL", 0 },
	{ "--control tcp://127.0.0.1:5555 status", NULL, SUBMIT_CMD_STATUS },
	{ "--dir= status", "--dir: empty path", 0 },
	{ "--help", NULL, SUBMIT_CMD_HELP },
	{ "sync x -h", NULL, SUBMIT_CMD_HELP },
	{ "account list --imap imaps://h",
	    "option --imap does not apply to account list", 0 },
	/* account add */
	{ "account add a --user u --password-file p",
	    "account add: missing --imap", 0 },
	{ "account add a --imap imaps://h --password-file p",
	    "account add: missing --user", 0 },
	{ "account add a --imap imaps://h --user u",
	    "account add: missing --password-file", 0 },
	{ "account add a --imap imaps://h --user u --password-file p", NULL,
	    SUBMIT_CMD_ACCOUNT_ADD },
	{ "--dir d account add a --password-file p --imap imaps://h:1993 "
	  "--user u --interval 60 --tls-ca ca.pem --json",
	    NULL, SUBMIT_CMD_ACCOUNT_ADD },
	{ "account add a --imap imap://h --user u --password-file p",
	    "refusing to send a password in clear text over imap://; use "
	    "imaps://, --starttls, or --plaintext",
	    0 },
	{ "account add a --imap imap://h --user u --password-file p "
	  "--starttls",
	    NULL, SUBMIT_CMD_ACCOUNT_ADD },
	{ "account add a --imap imap://h --user u --password-file p "
	  "--plaintext",
	    NULL, SUBMIT_CMD_ACCOUNT_ADD },
	{ "account add a --imap imap://h --user u --password-file p "
	  "--plaintext --starttls",
	    "--starttls and --plaintext exclude each other", 0 },
	{ "account add a --imap imaps://h --user u --password-file p "
	  "--starttls",
	    "--starttls cannot be used with imaps://", 0 },
	{ "account add a --imap imaps://h --user u --password-file p "
	  "--plaintext",
	    "--plaintext cannot be used with imaps://", 0 },
	{ "account add a --imap https://h --user u --password-file p",
	    "--imap: scheme must be imap or imaps, not https", 0 },
	{ "account add a --imap imaps:/h --user u --password-file p",
	    "--imap: bad URL", 0 },
	{ "account add a --imap imaps://user@h --user u --password-file p",
	    "--imap: bad URL", 0 },
	{ "account add a --imap imaps://h:99999 --user u --password-file p",
	    "--imap: bad URL", 0 },
	{ "account add a --imap imaps://h --user u --password-file p "
	  "--interval 0",
	    "--interval: expected a number of seconds", 0 },
	{ "account add a --imap imaps://h --user= --password-file p",
	    "--user: must be 1 to 1024 bytes", 0 },
	{ "account add a b --imap imaps://h --user u --password-file p",
	    "account add: unexpected argument \"b\"", 0 },
	/* local changes */
	{ "account add a --imap imaps://h --user u --password-file p "
	  "--smtp smtps://h:465 --smtp-user s",
	    NULL, SUBMIT_CMD_ACCOUNT_ADD },
	{ "account add a --imap imaps://h --user u --password-file p "
	  "--smtp http://h",
	    "--smtp: scheme must be smtp", 0 },
	{ "account add a --imap imaps://h --user u --password-file p "
	  "--smtp-user s",
	    "need --smtp URL", 0 },
	{ "flag a 7 --seen --flagged --add-keyword $Work --add-keyword x",
	    NULL, SUBMIT_CMD_FLAG },
	{ "flag a 7", "flag: nothing to change", 0 },
	{ "flag a", "flag: missing MESSAGE_ID", 0 },
	{ "flag a 0 --seen", "MESSAGE_ID must be a positive number", 0 },
	{ "flag a x --seen", "MESSAGE_ID must be a positive number", 0 },
	{ "flag a 7 --seen --unseen", "--unseen contradicts", 0 },
	{ "flag a 7 --add-keyword \\Seen", "is not a keyword", 0 },
	{ "flag a 7 --add-keyword a(b", "is not a keyword", 0 },
	{ "flag a 7 --to X", "option --to does not apply to flag", 0 },
	{ "move a 7", "move: missing --to MAILBOX", 0 },
	{ "move a 7 --to Archive --wait --timeout 9", NULL, SUBMIT_CMD_MOVE },
	{ "move a 7 8 --to Archive", "move: unexpected argument \"8\"", 0 },
	{ "delete a 7 --expunge", NULL, SUBMIT_CMD_DELETE },
	{ "append a --file m.eml", "append: missing --mailbox", 0 },
	{ "append a --mailbox INBOX", "append: missing --file", 0 },
	{ "append a --mailbox INBOX --file m --flags seen,flagged", NULL,
	    SUBMIT_CMD_APPEND },
	{ "append a --mailbox INBOX --file m --flags seen,bogus",
	    "--flags: unknown flag \"bogus\"", 0 },
	{ "append a --mailbox INBOX --file m --flags deleted",
	    "--flags: unknown flag \"deleted\"", 0 },
	{ "send a", "send: missing --file", 0 },
	{ "send a --file m --wait", NULL, SUBMIT_CMD_SEND },
	{ "messages a", NULL, SUBMIT_CMD_MESSAGES },
	{ "messages a INBOX --limit 5", NULL, SUBMIT_CMD_MESSAGES },
	{ "messages a INBOX --limit 0", "--limit: expected a number", 0 },
	{ "messages a INBOX x", "messages: unexpected argument \"x\"", 0 },
	{ "changes a --state dead", NULL, SUBMIT_CMD_CHANGES },
	{ "changes a --state bogus", "--state: expected active", 0 },
	{ "changes a --wait", "option --wait does not apply to changes", 0 },
	{ "change resolve 3 --retry", NULL, SUBMIT_CMD_CHANGE_RESOLVE },
	{ "change resolve 3", "give exactly one of --retry and --cancel", 0 },
	{ "change resolve 3 --retry --cancel", "exactly one", 0 },
	{ "change resolve", "change resolve: missing CHANGE_ID", 0 },
	{ "change drop 3", "expected 'change resolve", 0 },
	{ "change resolve 0 --retry", "CHANGE_ID must be a positive number",
	    0 },
	{ "change resolve x --cancel", "CHANGE_ID must be a positive number",
	    0 },
	{ "change resolve 3 4 --cancel",
	    "change resolve: unexpected argument \"4\"", 0 },
	{ "change resolve 3 --cancel --json", NULL,
	    SUBMIT_CMD_CHANGE_RESOLVE },
	{ "account add a --imap imaps://h --user u --password-file p "
	  "--smtp smtp://h:587 --smtp-password-file f",
	    NULL, SUBMIT_CMD_ACCOUNT_ADD },
	{ "account add a --imap imaps://h --user u --password-file p "
	  "--smtp imaps://h",
	    "--smtp: scheme must be smtp (STARTTLS) or smtps, not imaps", 0 },
	{ "account add a --imap imaps://h --user u --password-file p "
	  "--smtp smtps://h/path",
	    "--smtp: bad URL", 0 },
	{ "account add a --imap imaps://h --user u --password-file p "
	  "--smtp-password-file f",
	    "--smtp-user and --smtp-password-file need --smtp URL", 0 },
	{ "account add a --imap imaps://h --user u --password-file p "
	  "--smtp smtps://h --smtp-user=",
	    "--smtp-user: must be 1 to 1024 bytes", 0 },
	{ "flag a 7 --smtp smtps://h", "option --smtp does not apply to flag",
	    0 },
	{ "flag bad/name 7 --seen", "invalid account name \"bad/name\"", 0 },
	{ "flag", "flag: missing account NAME", 0 },
	{ "flag a 7 --draft --unanswered --unflagged --undraft",
	    "--undraft contradicts an earlier option", 0 },
	{ "flag a 7 --unseen --seen", "--seen contradicts", 0 },
	{ "flag a 7 --seen --seen", "option --seen given twice", 0 },
	{ "flag a 7 --remove-keyword $Junk --remove-keyword=NonJunk", NULL,
	    SUBMIT_CMD_FLAG },
	{ "flag a 7 --add-keyword=", "\"\" is not a keyword", 0 },
	{ "flag a 7 --add-keyword a]b", "is not a keyword", 0 },
	{ "flag a 7 --add-keyword a%b", "is not a keyword", 0 },
	{ "flag a 7 --add-keyword", "option --add-keyword needs an argument",
	    0 },
	{ "flag a 7 --seen --expunge",
	    "option --expunge does not apply to flag", 0 },
	{ "flag a 99999999999999999999 --seen",
	    "MESSAGE_ID must be a positive number", 0 },
	{ "move a 7 --to=", "--to: a mailbox name of 1 to 1000 bytes", 0 },
	{ "move a --to X", "move: missing MESSAGE_ID", 0 },
	{ "move a 7 --to X --mailbox Y",
	    "option --mailbox does not apply to move", 0 },
	{ "delete a 7", NULL, SUBMIT_CMD_DELETE },
	{ "delete a 7 --to Trash", "option --to does not apply to delete", 0 },
	{ "delete a 7 --wait --timeout 30", NULL, SUBMIT_CMD_DELETE },
	{ "append a --mailbox INBOX --file m --flags=", NULL,
	    SUBMIT_CMD_APPEND },
	{ "append a 7 --mailbox INBOX --file m",
	    "append: unexpected argument \"7\"", 0 },
	{ "append a --mailbox INBOX --file m --seen",
	    "option --seen does not apply to append", 0 },
	{ "send a --file m --mailbox Sent",
	    "option --mailbox does not apply to send", 0 },
	{ "send a --file m --flags seen",
	    "option --flags does not apply to send", 0 },
	{ "messages", "messages: missing account NAME", 0 },
	{ "messages a --limit 1000", NULL, SUBMIT_CMD_MESSAGES },
	{ "messages a --limit 1001",
	    "--limit: expected a number from 1 to 1000", 0 },
	{ "messages a --wait", "option --wait does not apply to messages", 0 },
	{ "changes a --state all --limit 3", NULL, SUBMIT_CMD_CHANGES },
	{ "changes a --state inflight", NULL, SUBMIT_CMD_CHANGES },
	{ "changes a x", "changes: unexpected argument \"x\"", 0 },
	{ "status --state dead", "option --state does not apply to status",
	    0 },
};

static int
split(const char *line, char *store, size_t cap, char **argv)
{
	int argc = 0;
	char *p;

	assert_true(strlen(line) < cap);
	memcpy(store, line, strlen(line) + 1);
	argv[argc++] = "mailsync-submit";
	p = store;
	while (*p != '\0') {
		while (*p == ' ') {
			*p++ = '\0';
		}
		if (*p == '\0') {
			break;
		}
		assert_true(argc < MAXARGS - 1);
		argv[argc++] = p;
		while (*p != '\0' && *p != ' ') {
			p++;
		}
	}
	argv[argc] = NULL;
	return (argc);
}

static void
test_args_table(void **state)
{
	struct submit_args a;
	char store[512], err[512], *argv[MAXARGS];
	size_t i;
	int argc, rv;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		const struct args_case *c = &cases[i];

		err[0] = '\0';
		argc = split(c->line, store, sizeof(store), argv);
		rv = submit_args_parse(argc, argv, &a, err, sizeof(err));
		if (c->err == NULL && rv != 0) {
			fail_msg("\"%s\": unexpected error \"%s\"", c->line,
			    err);
		}
		if (c->err != NULL &&
		    (rv != ERR_INVAL || strstr(err, c->err) == NULL)) {
			fail_msg("\"%s\": rv %d, error \"%s\", want \"%s\"",
			    c->line, rv, err, c->err);
		}
		if (c->err == NULL) {
			assert_int_equal(a.cmd, c->cmd);
		}
	}
}

static void
test_args_fields(void **state)
{
	char *argv[] = { "mailsync-submit", "--dir", "/data", "account",
		"add", "--json", "work", "--imap=imap://mail.example:1143",
		"--user", "me@example", "--password-file", "/pw", "--starttls",
		"--interval", "600", "--tls-ca", "/ca.pem", NULL };
	char *argv2[] = { "mailsync-submit", "status", "42", "--control",
		"ipc:///x/c.sock", "--timeout", "7", NULL };
	struct submit_args a;
	char err[256];

	(void)state;
	assert_int_equal(submit_args_parse(17, argv, &a, err, sizeof(err)), 0);
	assert_int_equal(a.cmd, SUBMIT_CMD_ACCOUNT_ADD);
	assert_string_equal(a.dir, "/data");
	assert_true(a.json);
	assert_string_equal(a.name, "work");
	assert_string_equal(a.server, "imap://mail.example:1143");
	assert_string_equal(a.url.host, "mail.example");
	assert_int_equal(a.url.port, 1143);
	assert_string_equal(a.user, "me@example");
	assert_string_equal(a.password_file, "/pw");
	assert_string_equal(a.tls_ca_file, "/ca.pem");
	assert_true(a.starttls);
	assert_false(a.plaintext);
	assert_int_equal(a.interval_s, 600);
	assert_null(a.control_url);

	assert_int_equal(submit_args_parse(7, argv2, &a, err, sizeof(err)), 0);
	assert_int_equal(a.cmd, SUBMIT_CMD_STATUS);
	assert_true(a.job_id == 42);
	assert_string_equal(a.control_url, "ipc:///x/c.sock");
	assert_int_equal(a.timeout_s, 7);
	assert_string_equal(a.dir, SUBMIT_DEFAULT_DIR);
}

static void
test_change_fields(void **state)
{
	char *flag[] = { "mailsync-submit", "flag", "work", "42", "--seen",
		"--unflagged", "--answered", "--undraft", "--add-keyword",
		"$Work", "--add-keyword", "x", "--remove-keyword", "$Junk",
		"--wait", "--timeout=9", NULL };
	char *append[] = { "mailsync-submit", "append", "work", "--mailbox",
		"Drafts", "--file", "/m.eml", "--flags", "draft, seen", NULL };
	char *move[] = { "mailsync-submit", "--json", "move", "work", "7",
		"--to", "Archive/2026", NULL };
	char *del[]
	    = { "mailsync-submit", "delete", "work", "8", "--expunge", NULL };
	char *msgs[] = { "mailsync-submit", "messages", "work", "INBOX",
		"--limit", "20", NULL };
	char *res[] = { "mailsync-submit", "change", "resolve", "12",
		"--retry", NULL };
	char *kw[2 * SUBMIT_MAX_KEYWORDS + 8];
	char names[SUBMIT_MAX_KEYWORDS + 1][8];
	struct submit_args a;
	char err[256];
	int i, n;

	(void)state;
	assert_int_equal(submit_args_parse(16, flag, &a, err, sizeof(err)), 0);
	assert_int_equal(a.cmd, SUBMIT_CMD_FLAG);
	assert_string_equal(a.name, "work");
	assert_true(a.message_id == 42);
	assert_int_equal(a.flags_add, PROTO_FLAG_SEEN | PROTO_FLAG_ANSWERED);
	assert_int_equal(
	    a.flags_remove, PROTO_FLAG_FLAGGED | PROTO_FLAG_DRAFT);
	assert_int_equal(a.nkw_add, 2);
	assert_string_equal(a.kw_add[0], "$Work");
	assert_string_equal(a.kw_add[1], "x");
	assert_int_equal(a.nkw_remove, 1);
	assert_string_equal(a.kw_remove[0], "$Junk");
	assert_true(a.wait);
	assert_int_equal(a.timeout_s, 9);

	assert_int_equal(
	    submit_args_parse(9, append, &a, err, sizeof(err)), 0);
	assert_int_equal(a.cmd, SUBMIT_CMD_APPEND);
	assert_string_equal(a.mailbox, "Drafts");
	assert_string_equal(a.file, "/m.eml");
	assert_int_equal(a.flags_add, PROTO_FLAG_DRAFT | PROTO_FLAG_SEEN);

	assert_int_equal(submit_args_parse(7, move, &a, err, sizeof(err)), 0);
	assert_int_equal(a.cmd, SUBMIT_CMD_MOVE);
	assert_true(a.message_id == 7);
	assert_string_equal(a.to, "Archive/2026");
	assert_true(a.json);

	assert_int_equal(submit_args_parse(5, del, &a, err, sizeof(err)), 0);
	assert_true(a.expunge);
	assert_true(a.message_id == 8);

	assert_int_equal(submit_args_parse(6, msgs, &a, err, sizeof(err)), 0);
	assert_int_equal(a.cmd, SUBMIT_CMD_MESSAGES);
	assert_string_equal(a.mailbox, "INBOX");
	assert_int_equal(a.limit, 20);

	assert_int_equal(submit_args_parse(5, res, &a, err, sizeof(err)), 0);
	assert_int_equal(a.cmd, SUBMIT_CMD_CHANGE_RESOLVE);
	assert_true(a.change_id == 12);
	assert_true(a.retry);
	assert_false(a.cancel);

	/* SUBMIT_MAX_KEYWORDS are fine, one more is refused */
	for (n = 1; n <= SUBMIT_MAX_KEYWORDS + 1; n++) {
		kw[0] = "mailsync-submit";
		kw[1] = "flag";
		kw[2] = "work";
		kw[3] = "1";
		for (i = 0; i < n; i++) {
			snprintf(names[i], sizeof(names[i]), "k%d", i);
			kw[4 + 2 * i] = "--add-keyword";
			kw[5 + 2 * i] = names[i];
		}
		kw[4 + 2 * n] = NULL;
		err[0] = '\0';
		if (n <= SUBMIT_MAX_KEYWORDS) {
			assert_int_equal(submit_args_parse(4 + 2 * n, kw, &a,
			                     err, sizeof(err)),
			    0);
			assert_int_equal(a.nkw_add, (size_t)n);
		} else {
			assert_int_equal(submit_args_parse(4 + 2 * n, kw, &a,
			                     err, sizeof(err)),
			    ERR_INVAL);
			assert_non_null(strstr(err, "at most 32 keywords"));
		}
	}
	assert_true(submit_keyword_valid("$Label1"));
	assert_false(submit_keyword_valid("\\Seen"));
	assert_false(submit_keyword_valid("a b"));
	assert_false(submit_keyword_valid("caf\xc3\xa9"));
	assert_string_equal(submit_flag_name(0), "seen");
	assert_string_equal(submit_flag_name(4), "draft");
	assert_null(submit_flag_name(5));
}

/* Writes n bytes of content to a fresh temp file; returns its path. */
static char *
tmpfile_with(const void *content, size_t n)
{
	char *path = strdup("/tmp/submit_args_test.XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, n), (ssize_t)n);
	close(fd);
	return (path);
}

struct pw_case {
	const char *content;
	size_t len;
	const char *err;    /* NULL: ok */
	const char *expect; /* the password when ok */
};

static void
test_password_file(void **state)
{
	static char big[SUBMIT_PASSWORD_MAX + 2];
	static const struct pw_case pcs[] = {
		{ "sekrit\n", 7, NULL, "sekrit" },
		{ "sekrit", 6, NULL, "sekrit" },
		{ "with space\t", 11, NULL, "with space\t" },
		{ "", 0, "empty", NULL },
		{ "\n", 1, "empty", NULL },
		{ "two\n\n", 5, "contains a NUL, CR or LF", NULL },
		{ "cr\r\n", 4, "contains a NUL, CR or LF", NULL },
		{ "a\nb", 3, "contains a NUL, CR or LF", NULL },
		{ "nul\0x", 5, "contains a NUL, CR or LF", NULL },
	};
	struct buf pw;
	char err[512], *path;
	size_t i;
	int rv;

	(void)state;
	for (i = 0; i < ARRAY_LEN(pcs); i++) {
		path = tmpfile_with(pcs[i].content, pcs[i].len);
		buf_init(&pw, SUBMIT_PASSWORD_MAX + 1);
		rv = submit_read_password(path, &pw, err, sizeof(err));
		if (pcs[i].err == NULL) {
			assert_int_equal(rv, 0);
			assert_string_equal(pw.data, pcs[i].expect);
		} else {
			assert_int_equal(rv, ERR_INVAL);
			assert_non_null(strstr(err, pcs[i].err));
			assert_non_null(strstr(err, path));
		}
		buf_wipe_release(&pw);
		unlink(path);
		free(path);
	}
	/* 4096 bytes + newline is fine, 4097 is not. */
	memset(big, 'x', sizeof(big));
	big[SUBMIT_PASSWORD_MAX] = '\n';
	path = tmpfile_with(big, SUBMIT_PASSWORD_MAX + 1);
	buf_init(&pw, SUBMIT_PASSWORD_MAX + 1);
	assert_int_equal(submit_read_password(path, &pw, err, sizeof(err)), 0);
	assert_int_equal(pw.len, SUBMIT_PASSWORD_MAX);
	buf_wipe_release(&pw);
	unlink(path);
	free(path);
	memset(big, 'x', sizeof(big));
	path = tmpfile_with(big, SUBMIT_PASSWORD_MAX + 1);
	buf_init(&pw, SUBMIT_PASSWORD_MAX + 1);
	assert_int_equal(submit_read_password(path, &pw, err, sizeof(err)),
	    ERR_INVAL);
	assert_non_null(strstr(err, "larger than 4096 bytes"));
	buf_wipe_release(&pw);
	unlink(path);
	free(path);

	buf_init(&pw, SUBMIT_PASSWORD_MAX + 1);
	assert_int_equal(submit_read_password("/nonexistent/pw", &pw, err,
			     sizeof(err)),
	    ERR_INVAL);
	assert_non_null(strstr(err, "cannot read: No such file"));
	assert_int_equal(submit_read_password("/tmp", &pw, err, sizeof(err)),
	    ERR_INVAL);
	assert_non_null(strstr(err, "not a regular file"));
	buf_wipe_release(&pw);
}

static void
test_ca_file(void **state)
{
	static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n"
				  "-----END CERTIFICATE-----\n";
	struct buf ca;
	char err[512], *path;

	(void)state;
	path = tmpfile_with(pem, sizeof(pem) - 1);
	buf_init(&ca, SUBMIT_CA_MAX);
	assert_int_equal(submit_read_ca(path, &ca, err, sizeof(err)), 0);
	assert_int_equal(ca.len, sizeof(pem) - 1);
	buf_release(&ca);
	unlink(path);
	free(path);

	path = tmpfile_with("hello", 5);
	buf_init(&ca, SUBMIT_CA_MAX);
	assert_int_equal(submit_read_ca(path, &ca, err, sizeof(err)),
	    ERR_INVAL);
	assert_non_null(strstr(err, "no PEM certificate"));
	buf_release(&ca);
	unlink(path);
	free(path);
}

/* Reads content as a message file: 0 with msg filled, else the error. */
static int
read_msg(
    const char *content, size_t n, struct buf *msg, char *err, size_t errlen)
{
	char *path = tmpfile_with(content, n);
	int rv;

	buf_init(msg, PROTO_MAX_RFC822 + 1);
	rv = submit_read_message(path, msg, err, errlen);
	unlink(path);
	free(path);
	return (rv);
}

/* A string literal as a message file. */
#define READ_LIT(lit, msg, err)                                               \
	read_msg(lit, sizeof(lit) - 1, msg, err, sizeof(err))

/* msg starts with "Message-ID: <32 hex@domain>\r\n" followed by rest. */
static void
assert_added_id(const struct buf *msg, const char *domain, const char *rest)
{
	size_t i, dl = strlen(domain);

	assert_true(msg->len > 13 + 32 + 1 + dl + 3);
	assert_memory_equal(msg->data, "Message-ID: <", 13);
	for (i = 13; i < 13 + 32; i++) {
		assert_true(strchr("0123456789abcdef", msg->data[i]) != NULL);
	}
	assert_int_equal(msg->data[45], '@');
	assert_memory_equal(msg->data + 46, domain, dl);
	assert_memory_equal(msg->data + 46 + dl, ">\r\n", 3);
	assert_string_equal(msg->data + 46 + dl + 3, rest);
}

static void
test_message_file(void **state)
{
	static const char with_id[] = "Message-ID: <a@b>\r\nFrom: x@y\r\n"
	                              "\r\nbody\r\n";
	struct buf msg, msg2;
	char err[512], *path, *big;
	int rv;

	(void)state;
	/* CRLF with a Message-ID: unchanged */
	assert_int_equal(
	    read_msg(with_id, sizeof(with_id) - 1, &msg, err, sizeof(err)), 0);
	assert_string_equal(msg.data, with_id);
	buf_release(&msg);

	/* bare LF becomes CRLF; CRLF and a lone CR stay */
	assert_int_equal(READ_LIT("Message-ID: <a@b>\nSubject: s\r\n\nl1\nl2\r"
	                          "x\n",
	                     &msg, err),
	    0);
	assert_string_equal(msg.data,
	    "Message-ID: <a@b>\r\nSubject: s\r\n\r\nl1\r\nl2\rx\r\n");
	buf_release(&msg);

	/* no Message-ID: one at the top, from the From domain */
	assert_int_equal(READ_LIT("From: \"A, B\" <a.b@Mail.Example.org>\n"
	                          "To: c@d\n\nhi\n",
	                     &msg, err),
	    0);
	assert_added_id(&msg, "Mail.Example.org",
	    "From: \"A, B\" <a.b@Mail.Example.org>\r\nTo: c@d\r\n\r\nhi\r\n");
	/* two files, two different ids */
	assert_int_equal(READ_LIT("From: \"A, B\" <a.b@Mail.Example.org>\n"
	                          "To: c@d\n\nhi\n",
	                     &msg2, err),
	    0);
	assert_true(memcmp(msg.data, msg2.data, 45) != 0);
	buf_release(&msg);
	buf_release(&msg2);

	/* no From, a group, an address literal: mailsync.invalid */
	assert_int_equal(READ_LIT("Subject: x\r\n\r\n", &msg, err), 0);
	assert_added_id(&msg, "mailsync.invalid", "Subject: x\r\n\r\n");
	buf_release(&msg);
	assert_int_equal(READ_LIT("From: a@[10.0.0.1]\r\n\r\n", &msg, err), 0);
	assert_added_id(
	    &msg, "mailsync.invalid", "From: a@[10.0.0.1]\r\n\r\n");
	buf_release(&msg);
	assert_int_equal(
	    READ_LIT("From: undisclosed:;\r\n\r\n", &msg, err), 0);
	assert_added_id(
	    &msg, "mailsync.invalid", "From: undisclosed:;\r\n\r\n");
	buf_release(&msg);

	/* refused: empty, no header section, NUL, missing, a directory */
	assert_int_equal(READ_LIT("", &msg, err), ERR_INVAL);
	assert_non_null(strstr(err, "empty file"));
	buf_release(&msg);
	assert_int_equal(READ_LIT("just text", &msg, err), ERR_INVAL);
	assert_non_null(strstr(err, "needs a header section"));
	buf_release(&msg);
	assert_int_equal(READ_LIT("A: b\r\n\r\n\0", &msg, err), ERR_INVAL);
	assert_non_null(strstr(err, "NUL byte"));
	buf_release(&msg);
	buf_init(&msg, PROTO_MAX_RFC822 + 1);
	assert_int_equal(
	    submit_read_message("/nonexistent/m.eml", &msg, err, sizeof(err)),
	    ERR_INVAL);
	assert_non_null(
	    strstr(err, "/nonexistent/m.eml: cannot read: No such"));
	assert_int_equal(
	    submit_read_message("/tmp", &msg, err, sizeof(err)), ERR_INVAL);
	assert_non_null(strstr(err, "not a regular file"));
	buf_release(&msg);

	/* the limit: exactly 12 MiB passes, one byte more does not; LF ends
	 * that push it past the limit are refused too */
	big = malloc(PROTO_MAX_RFC822 + 1);
	assert_non_null(big);
	memcpy(big, "Message-ID: <a@b>\r\n\r\n", 21);
	memset(big + 21, 'x', PROTO_MAX_RFC822 + 1 - 21);
	path = tmpfile_with(big, PROTO_MAX_RFC822);
	buf_init(&msg, PROTO_MAX_RFC822 + 1);
	assert_int_equal(submit_read_message(path, &msg, err, sizeof(err)), 0);
	assert_int_equal(msg.len, PROTO_MAX_RFC822);
	buf_release(&msg);
	unlink(path);
	free(path);
	path = tmpfile_with(big, PROTO_MAX_RFC822 + 1);
	buf_init(&msg, PROTO_MAX_RFC822 + 1);
	rv = submit_read_message(path, &msg, err, sizeof(err));
	assert_int_equal(rv, ERR_INVAL);
	assert_non_null(strstr(err, "is 12582913 bytes; the limit is 12 MiB"));
	buf_release(&msg);
	unlink(path);
	free(path);
	big[100] = '\n';
	path = tmpfile_with(big, PROTO_MAX_RFC822);
	buf_init(&msg, PROTO_MAX_RFC822 + 1);
	rv = submit_read_message(path, &msg, err, sizeof(err));
	assert_int_equal(rv, ERR_INVAL);
	assert_non_null(strstr(err, "is 12582913 bytes with CRLF line ends"));
	buf_release(&msg);
	unlink(path);
	free(path);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args_table),
		cmocka_unit_test(test_args_fields),
		cmocka_unit_test(test_password_file),
		cmocka_unit_test(test_ca_file),
		cmocka_unit_test(test_change_fields),
		cmocka_unit_test(test_message_file),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
