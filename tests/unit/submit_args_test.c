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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args_table),
		cmocka_unit_test(test_args_fields),
		cmocka_unit_test(test_password_file),
		cmocka_unit_test(test_ca_file),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
