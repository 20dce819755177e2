/*
 * sync_drain_test.c: the IMAP drain job against a scripted IMAP server on
 * a 127.0.0.1 socket (a thread), for what a real Dovecot does not show:
 * a server without MOVE, UIDPLUS, COPYUID, APPENDUID and LITERAL+ (UID
 * COPY, no expunge, synchronising literals, new UIDs found by Message-ID),
 * a connection lost mid-drain (every change still open gets `retry`), a
 * session that cannot be opened, a reset mailbox and a TRYCREATE.
 *
 * The server answers each command line by the first rule whose prefix
 * matches the text after the tag; "{tag}" in a reply is replaced; a rule
 * with reply NULL closes the connection. A literal announced as {n} is
 * acknowledged with "+ go" and read; {n+} is read at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "script_server.h"

#include "sync/drain_int.h"

struct rule {
	const char *prefix;
	const char *reply; /* lines with CRLF; NULL: close */
};

struct fake {
	const char *greeting;
	const struct rule *rules;
	int lfd;
	uint16_t port;
	pthread_t th;
	char log[8192]; /* the command lines received, without tags */
	size_t nlog;
	size_t literal_bytes;
};

/* Reads a literal the line announced ("{n}" or "{n+}" at its end). */
static bool
take_literal(struct fake *f, int fd, const char *line)
{
	const char *open = strrchr(line, '{');
	char *end, buf[4096], crlf[2];
	unsigned long n;
	size_t got;

	if (open == NULL || strstr(open, "}\r\n") == NULL) {
		return (true);
	}
	n = strtoul(open + 1, &end, 10);
	if (*end != '+') {
		script_reply(fd, "+ go\r\n", "");
	}
	for (got = 0; got < n;) {
		size_t want = n - got < sizeof(buf) ? n - got : sizeof(buf);
		ssize_t r = read(fd, buf, want);

		if (r <= 0) {
			return (false);
		}
		got += (size_t)r;
	}
	f->literal_bytes += got;
	/* the CRLF that ends the command line */
	return (read(fd, crlf, 2) == 2);
}

static void *
serve(void *arg)
{
	struct fake *f = arg;
	char line[4096], tag[32];
	const struct rule *r;
	int fd;

	fd = accept(f->lfd, NULL, NULL);
	if (fd < 0) {
		return (NULL);
	}
	script_reply(fd, f->greeting, "");
	while (script_read_line(fd, line, sizeof(line))) {
		char *sp = strchr(line, ' ');
		const char *text;

		if (sp == NULL) {
			break;
		}
		snprintf(tag, sizeof(tag), "%.*s", (int)(sp - line), line);
		text = sp + 1;
		f->nlog += (size_t)snprintf(f->log + f->nlog,
		    sizeof(f->log) - f->nlog, "%.*s|",
		    (int)strcspn(text, "\r\n"), text);
		if (!take_literal(f, fd, line)) {
			break;
		}
		for (r = f->rules; r->prefix != NULL; r++) {
			if (strncmp(text, r->prefix, strlen(r->prefix)) == 0) {
				break;
			}
		}
		if (r->prefix == NULL) {
			script_reply(fd, "{tag} BAD unknown\r\n", tag);
			continue;
		}
		if (r->reply == NULL) {
			break; /* the connection drops */
		}
		script_reply(fd, r->reply, tag);
		if (strncmp(text, "LOGOUT", 6) == 0) {
			break;
		}
	}
	close(fd);
	return (NULL);
}

static void
fake_start(struct fake *f, const char *greeting, const struct rule *rules)
{
	memset(f, 0, sizeof(*f));
	f->greeting = greeting;
	f->rules = rules;
	f->lfd = script_listen(&f->port);
	assert_int_equal(pthread_create(&f->th, NULL, serve, f), 0);
}

static void
fake_stop(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
}

/* The results the job sent, in order. */
struct seen {
	size_t n, batches;
	struct {
		uint64_t id;
		uint8_t outcome;
		char mailbox[32];
		uint32_t uidvalidity, uid;
		char error[256];
	} r[16];
};

static int
sink_fn(const struct proto_batch *b, void *arg)
{
	struct seen *s = arg;
	size_t i;

	s->batches++;
	for (i = 0; i < b->nchange_results && s->n < 16; i++, s->n++) {
		const struct proto_change_result *r = &b->change_results[i];

		s->r[s->n].id = r->id;
		s->r[s->n].outcome = r->outcome;
		s->r[s->n].uidvalidity = r->uidvalidity;
		s->r[s->n].uid = r->uid;
		snprintf(s->r[s->n].mailbox, sizeof(s->r[s->n].mailbox),
		    "%.*s", (int)r->mailbox.len,
		    r->mailbox.p != NULL ? r->mailbox.p : "");
		snprintf(s->r[s->n].error, sizeof(s->r[s->n].error), "%.*s",
		    (int)r->error.len, r->error.p != NULL ? r->error.p : "");
	}
	return (0);
}

/* The result of change id (fails the test when there is none, or two). */
static size_t
result_of(const struct seen *s, uint64_t id)
{
	size_t i, at = SIZE_MAX;

	for (i = 0; i < s->n; i++) {
		if (s->r[i].id == id) {
			assert_int_equal(at, SIZE_MAX);
			at = i;
		}
	}
	assert_int_not_equal(at, SIZE_MAX);
	return (at);
}

static const char DRAFT[] = "From: me@example.com\r\n"
                            "Message-ID: <d1@example.com>\r\n\r\nhello\r\n";

/* flag uid 1 and move uid 2 of INBOX (UIDVALIDITY 5) to Archive, append
 * DRAFT to Drafts. */
static void
three_changes(struct proto_change c[3])
{
	memset(c, 0, 3 * sizeof(*c));
	c[0].id = 1;
	c[0].kind = CHANGE_FLAG;
	c[0].mailbox = proto_str_c("INBOX");
	c[0].uidvalidity = 5;
	c[0].uid = 1;
	c[0].flags_add = PROTO_FLAG_SEEN;
	c[1].id = 2;
	c[1].kind = CHANGE_MOVE;
	c[1].mailbox = proto_str_c("INBOX");
	c[1].uidvalidity = 5;
	c[1].uid = 2;
	c[1].to_mailbox = proto_str_c("Archive");
	c[1].header_message_id = proto_str_c("<m2@example.com>");
	c[2].id = 3;
	c[2].kind = CHANGE_APPEND;
	c[2].to_mailbox = proto_str_c("Drafts");
	c[2].flags_add = PROTO_FLAG_DRAFT;
	c[2].rfc822 = proto_str_c(DRAFT);
	c[2].header_message_id = proto_str_c("<d1@example.com>");
}

static int
run_drain(const struct fake *f, uint16_t port, struct proto_change *c,
    size_t n, struct seen *s, struct sync_result *res)
{
	struct proto_job_run job;
	struct sync_sink sink = { sink_fn, s };
	struct sync_limits l;
	char url[64];

	snprintf(url, sizeof(url), "imap://127.0.0.1:%u",
	    f != NULL ? f->port : port);
	memset(&job, 0, sizeof(job));
	job.job_id = 9;
	job.attempt = 1;
	job.kind = JOB_KIND_DRAIN;
	job.protocol = proto_str_c("imap");
	job.server = proto_str_c(url);
	job.username = proto_str_c("u");
	job.password = proto_str_c("p");
	job.plaintext = true;
	job.changes = c;
	job.nchanges = n;
	sync_limits_default(&l);
	l.io_timeout_ms = 5000;
	l.connect_timeout_ms = 5000;
	memset(s, 0, sizeof(*s));
	return (sync_run(&job, &l, NULL, &sink, res));
}

static const char GREETING_BARE[] = "* OK [CAPABILITY IMAP4rev1 "
                                    "AUTH=PLAIN SASL-IR] fake\r\n";

/* No MOVE, UIDPLUS or LITERAL+; no COPYUID, no APPENDUID. */
static const struct rule bare_rules[] = {
	{ "AUTHENTICATE PLAIN", "{tag} OK logged in\r\n" },
	{ "CAPABILITY",
	    "* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n{tag} OK\r\n" },
	{ "SELECT \"INBOX\"",
	    "* 3 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\n{tag} OK [READ-WRITE] "
	    "sel\r\n" },
	{ "UID SEARCH UID 1:2", "* SEARCH 1 2\r\n{tag} OK\r\n" },
	{ "UID STORE 1 +FLAGS.SILENT (\\Seen)", "{tag} OK\r\n" },
	{ "UID COPY 2 \"Archive\"", "{tag} OK copied\r\n" },
	{ "UID STORE 2 +FLAGS.SILENT (\\Deleted)", "{tag} OK\r\n" },
	{ "EXAMINE \"Archive\"",
	    "* OK [UIDVALIDITY 9] ok\r\n{tag} OK [READ-ONLY] ex\r\n" },
	{ "UID SEARCH HEADER Message-ID \"<m2@example.com>\"",
	    "* SEARCH 17\r\n{tag} OK\r\n" },
	{ "SELECT \"Drafts\"",
	    "* OK [UIDVALIDITY 11] ok\r\n{tag} OK [READ-WRITE] sel\r\n" },
	{ "UID SEARCH HEADER Message-ID \"<d1@example.com>\"",
	    "* SEARCH\r\n{tag} OK\r\n" },
	{ "APPEND \"Drafts\" (\\Draft) {", "{tag} OK appended\r\n" },
	{ "NOOP", "* 4 EXISTS\r\n{tag} OK\r\n" },
	{ "LOGOUT", "* BYE\r\n{tag} OK\r\n" },
	{ NULL, NULL },
};

static void
test_bare_server(void **state)
{
	struct proto_change c[3];
	struct sync_result res;
	struct seen s;
	struct fake f;
	size_t i;

	(void)state;
	three_changes(c);
	fake_start(&f, GREETING_BARE, bare_rules);
	assert_int_equal(run_drain(&f, 0, c, 3, &s, &res), 0);
	fake_stop(&f);
	sync_result_release(&res);
	assert_int_equal(s.n, 3);
	i = result_of(&s, 1);
	assert_int_equal(s.r[i].outcome, CHANGE_OUT_DONE);
	assert_string_equal(s.r[i].mailbox, "INBOX");
	i = result_of(&s, 2); /* found by its Message-ID after UID COPY */
	assert_int_equal(s.r[i].outcome, CHANGE_OUT_DONE);
	assert_string_equal(s.r[i].mailbox, "Archive");
	assert_int_equal(s.r[i].uidvalidity, 9);
	assert_int_equal(s.r[i].uid, 17);
	i = result_of(&s, 3); /* appended; no APPENDUID, not found yet */
	assert_int_equal(s.r[i].outcome, CHANGE_OUT_DONE);
	assert_string_equal(s.r[i].mailbox, "Drafts");
	assert_int_equal(s.r[i].uid, 0); /* the next sync brings it */
	/* one batch per mailbox: INBOX, Drafts */
	assert_int_equal(s.batches, 2);
	/* the synchronising literal went after the "+" */
	assert_int_equal(f.literal_bytes, strlen(DRAFT));
	/* without UIDPLUS nothing was expunged */
	assert_null(strstr(f.log, "EXPUNGE"));
}

/* The connection drops at the first STORE: everything still open (the
 * flag, the move, the append) gets retry with the error; status fails. */
static const struct rule drop_rules[] = {
	{ "AUTHENTICATE PLAIN",
	    "{tag} OK [CAPABILITY IMAP4rev1 MOVE "
	    "UIDPLUS LITERAL+] logged in\r\n" },
	{ "SELECT \"INBOX\"",
	    "* OK [UIDVALIDITY 5] ok\r\n{tag} OK [READ-WRITE] sel\r\n" },
	{ "UID SEARCH UID 1:2", "* SEARCH 1 2\r\n{tag} OK\r\n" },
	{ "UID STORE", NULL },
	{ NULL, NULL },
};

static void
test_connection_lost(void **state)
{
	struct proto_change c[3];
	struct sync_result res;
	struct seen s;
	struct fake f;
	size_t i;

	(void)state;
	three_changes(c);
	fake_start(&f, GREETING_BARE, drop_rules);
	assert_int_not_equal(run_drain(&f, 0, c, 3, &s, &res), 0);
	fake_stop(&f);
	assert_int_equal(res.retry, RETRY_LATER);
	assert_int_equal(s.n, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(s.r[i].outcome, CHANGE_OUT_RETRY);
		assert_string_equal(s.r[i].error, res.error);
	}
	sync_result_release(&res);
}

/* Login refused: the session cannot be opened, everything retries (the
 * change's attempt cap bounds it). */
static const struct rule auth_rules[] = {
	{ "AUTHENTICATE PLAIN",
	    "{tag} NO [AUTHENTICATIONFAILED] bad password\r\n" },
	{ NULL, NULL },
};

static void
test_login_refused(void **state)
{
	struct proto_change c[3];
	struct sync_result res;
	struct seen s;
	struct fake f;
	size_t i;

	(void)state;
	three_changes(c);
	fake_start(&f, GREETING_BARE, auth_rules);
	assert_int_equal(run_drain(&f, 0, c, 3, &s, &res), ERR_AUTH);
	fake_stop(&f);
	assert_int_equal(s.n, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(s.r[i].outcome, CHANGE_OUT_RETRY);
		assert_non_null(strstr(s.r[i].error, "bad password"));
	}
	sync_result_release(&res);
}

/* The source mailbox was reset (UIDVALIDITY 6, not 5); the move's
 * destination does not exist (TRYCREATE) in a second mailbox. */
static const struct rule reset_rules[] = {
	{ "AUTHENTICATE PLAIN",
	    "{tag} OK [CAPABILITY IMAP4rev1 MOVE "
	    "UIDPLUS LITERAL+] logged in\r\n" },
	{ "SELECT \"INBOX\"",
	    "* OK [UIDVALIDITY 6] ok\r\n{tag} OK [READ-WRITE] sel\r\n" },
	{ "SELECT \"Work\"",
	    "* OK [UIDVALIDITY 3] ok\r\n{tag} OK [READ-WRITE] sel\r\n" },
	{ "UID SEARCH UID 1:2", "* SEARCH 1 2\r\n{tag} OK\r\n" },
	{ "UID SEARCH UID 4", "* SEARCH 4\r\n{tag} OK\r\n" },
	{ "UID MOVE 4 \"Nope\"",
	    "{tag} NO [TRYCREATE] Mailbox doesn't exist: Nope\r\n" },
	{ "LOGOUT", "{tag} OK\r\n" },
	{ NULL, NULL },
};

static void
test_reset_and_trycreate(void **state)
{
	struct proto_change c[3];
	struct sync_result res;
	struct seen s;
	struct fake f;
	size_t i;

	(void)state;
	three_changes(c);
	c[2].kind = CHANGE_MOVE; /* the third: Work uid 4 to Nope */
	c[2].mailbox = proto_str_c("Work");
	c[2].uidvalidity = 3;
	c[2].uid = 4;
	c[2].to_mailbox = proto_str_c("Nope");
	fake_start(&f, GREETING_BARE, reset_rules);
	assert_int_equal(run_drain(&f, 0, c, 3, &s, &res), 0);
	fake_stop(&f);
	sync_result_release(&res);
	assert_int_equal(s.n, 3);
	for (i = 0; i < 2; i++) {
		assert_int_equal(
		    s.r[result_of(&s, i + 1)].outcome, CHANGE_OUT_DEAD);
		assert_non_null(
		    strstr(s.r[result_of(&s, i + 1)].error, "was reset"));
	}
	i = result_of(&s, 3);
	assert_int_equal(s.r[i].outcome, CHANGE_OUT_DEAD);
	assert_non_null(strstr(s.r[i].error, "[TRYCREATE]"));
	/* nothing was stored or moved in the reset mailbox */
	assert_null(strstr(f.log, "UID STORE"));
}

/*
 * A lease can carry no change at all (every change waits for its
 * backoff): a JMAP drain then opens no session and ends well (it once
 * read the absent session and crashed the worker). Port 1 refuses: any
 * connection attempt would fail the job.
 */
static void
test_jmap_drain_of_nothing(void **state)
{
	struct proto_job_run job;
	struct seen s;
	struct sync_sink sink = { sink_fn, &s };
	struct sync_result res;
	struct sync_limits l;

	(void)state;
	memset(&job, 0, sizeof(job));
	job.job_id = 9;
	job.attempt = 1;
	job.kind = JOB_KIND_DRAIN;
	job.protocol = proto_str_c("jmap");
	job.server = proto_str_c("http://127.0.0.1:1/.well-known/jmap");
	job.username = proto_str_c("u");
	job.password = proto_str_c("p");
	job.plaintext = true;
	sync_limits_default(&l);
	memset(&s, 0, sizeof(s));
	assert_int_equal(sync_run(&job, &l, NULL, &sink, &res), 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(s.n, 0);
	sync_result_release(&res);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bare_server),
		cmocka_unit_test(test_connection_lost),
		cmocka_unit_test(test_login_refused),
		cmocka_unit_test(test_reset_and_trycreate),
		cmocka_unit_test(test_jmap_drain_of_nothing),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
