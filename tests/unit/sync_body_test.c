/*
 * sync_body_test.c: the body prefetch (pkg/sync/imap_body.c) against a
 * scripted IMAP server on a 127.0.0.1 socket (a thread), for what a real
 * Dovecot does not show: bodies asked in one command per batch, a UID the
 * server does not answer, a body too large (never asked), a server that
 * sends UID after the body (that body asked again alone), a body for a
 * UID never asked (the job fails), a batch refused with NO (the rest
 * asked one by one), and rows packed into few batches.
 *
 * The server answers each command line by the first rule whose prefix
 * matches the text after the tag; "{tag}" in a reply is replaced.
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

#include "sync/sync.h"

struct rule {
	const char *prefix;
	const char *reply; /* lines with CRLF */
};

struct fake {
	const struct rule *rules;
	int lfd;
	uint16_t port;
	pthread_t th;
	char log[4096]; /* the command lines received, without tags */
	size_t nlog;
};

static void *
serve(void *arg)
{
	struct fake *f = arg;
	char line[1024], tag[32];
	const struct rule *r;
	int fd;

	fd = accept(f->lfd, NULL, NULL);
	if (fd < 0) {
		return (NULL);
	}
	script_reply(
	    fd, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] fake\r\n", "");
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
		for (r = f->rules; r->prefix != NULL; r++) {
			if (strncmp(text, r->prefix, strlen(r->prefix)) == 0) {
				break;
			}
		}
		script_reply(fd,
		    r->prefix != NULL ? r->reply : "{tag} BAD unknown\r\n",
		    tag);
		if (strncmp(text, "LOGOUT", 6) == 0) {
			break;
		}
	}
	close(fd);
	return (NULL);
}

static void
fake_start(struct fake *f, const struct rule *rules)
{
	memset(f, 0, sizeof(*f));
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

/* The body rows the prefetch sent: per UID its bytes and its end. */
struct seen {
	size_t batches, rows;
	struct {
		uint32_t uid;
		char data[64];
		size_t len;
		bool last;
		int status;
		char error[128];
	} u[8];
	size_t n;
};

static int
sink_fn(const struct proto_batch *b, void *arg)
{
	struct seen *s = arg;
	size_t i, k;

	s->batches++;
	for (i = 0; i < b->nbodies; i++) {
		const struct proto_body_chunk *c = &b->bodies[i];

		s->rows++;
		for (k = 0; k < s->n && s->u[k].uid != c->uid; k++) { }
		if (k == s->n) {
			assert_true(s->n < 8);
			s->n++;
			s->u[k].uid = c->uid;
		}
		assert_false(s->u[k].last); /* nothing after the last row */
		assert_int_equal(c->offset, s->u[k].len);
		assert_true(s->u[k].len + c->data.len < sizeof(s->u[k].data));
		if (c->data.len > 0) {
			memcpy(s->u[k].data + s->u[k].len, c->data.p,
			    c->data.len);
		}
		s->u[k].len += c->data.len;
		s->u[k].last = c->last;
		s->u[k].status = c->status;
		snprintf(s->u[k].error, sizeof(s->u[k].error), "%.*s",
		    (int)c->error.len, c->error.p != NULL ? c->error.p : "");
	}
	return (0);
}

/* The row state of uid: its body ("" with error) or NULL when none. */
static const char *
body_of(struct seen *s, uint32_t uid)
{
	size_t k;

	for (k = 0; k < s->n; k++) {
		if (s->u[k].uid == uid) {
			s->u[k].data[s->u[k].len] = '\0';
			return (s->u[k].status != 0 ? s->u[k].error
			                            : s->u[k].data);
		}
	}
	return (NULL);
}

/* Whether uid's last row said last (a whole body). */
static bool
last_of(const struct seen *s, uint32_t uid)
{
	size_t k;

	for (k = 0; k < s->n; k++) {
		if (s->u[k].uid == uid) {
			return (s->u[k].last);
		}
	}
	return (false);
}

/* Logs in to the fake and prefetches UIDs from..to of the selected
 * mailbox ("all", max_body 1000). */
static int
run_prefetch(struct fake *f, uint32_t from, uint32_t to, struct seen *s,
    struct sync_result *res)
{
	struct proto_job_run job;
	struct sync_sink sink = { sink_fn, s };
	struct sync_batcher *b = NULL;
	struct imap_session *ss = NULL;
	struct sync_limits l;
	char url[64];
	int rv;

	snprintf(url, sizeof(url), "imap://127.0.0.1:%u", f->port);
	memset(&job, 0, sizeof(job));
	job.job_id = 9;
	job.attempt = 1;
	job.kind = JOB_KIND_SYNC;
	job.protocol = proto_str_c("imap");
	job.server = proto_str_c(url);
	job.username = proto_str_c("u");
	job.password = proto_str_c("p");
	job.plaintext = true;
	job.bodies = proto_str_c("all");
	job.max_body = 1000;
	sync_limits_default(&l);
	l.io_timeout_ms = 5000;
	l.connect_timeout_ms = 5000;
	memset(s, 0, sizeof(*s));
	memset(res, 0, sizeof(*res));
	assert_int_equal(sync_batcher_new(9, 1, &l, &sink, &b), 0);
	rv = imap_session_open_job(&job, &l, &ss, res);
	assert_int_equal(rv, 0);
	rv = sync_imap_prefetch(ss, b, &job, "INBOX", from, to, res);
	imap_session_close(&ss);
	sync_batcher_free(&b);
	return (rv);
}

#define LOGIN_RULES                                                           \
	{ "AUTHENTICATE PLAIN", "{tag} OK logged in\r\n" },                   \
	    { "CAPABILITY",                                                   \
		    "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK\r\n" },    \
	{                                                                     \
		"LOGOUT", "* BYE\r\n{tag} OK\r\n"                             \
	}

#define DATE "INTERNALDATE \"01-Jan-2024 00:00:00 +0000\""

/* Dovecot's order (UID first): one command for every body that fits; 3
 * not answered, 4 too large (never asked), 5 empty. */
static const struct rule batch_rules[] = {
	LOGIN_RULES,
	{ "UID FETCH 1:5 (UID RFC822.SIZE INTERNALDATE)",
	    "* 1 FETCH (UID 1 RFC822.SIZE 5 " DATE ")\r\n"
	    "* 2 FETCH (UID 2 RFC822.SIZE 6 " DATE ")\r\n"
	    "* 3 FETCH (UID 3 RFC822.SIZE 3 " DATE ")\r\n"
	    "* 4 FETCH (UID 4 RFC822.SIZE 5000 " DATE ")\r\n"
	    "* 5 FETCH (UID 5 RFC822.SIZE 0 " DATE ")\r\n{tag} OK\r\n" },
	{ "UID FETCH 1:3,5 (UID BODY.PEEK[])",
	    "* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\n"
	    "* 2 FETCH (FLAGS (\\Seen) UID 2 BODY[] {6}\r\nworld!)\r\n"
	    "* 5 FETCH (UID 5 BODY[] {0}\r\n)\r\n{tag} OK\r\n" },
	{ NULL, NULL },
};

static void
test_batch(void **state)
{
	struct sync_result res;
	struct seen s;
	struct fake f;

	(void)state;
	fake_start(&f, batch_rules);
	assert_int_equal(run_prefetch(&f, 1, 5, &s, &res), 0);
	fake_stop(&f);
	sync_result_release(&res);
	assert_string_equal(body_of(&s, 1), "hello");
	assert_string_equal(body_of(&s, 2), "world!");
	assert_string_equal(
	    body_of(&s, 3), "message no longer exists on the server");
	assert_string_equal(body_of(&s, 4),
	    "body of 5000 bytes exceeds the limit of 1000 bytes");
	assert_string_equal(body_of(&s, 5), "");
	assert_true(last_of(&s, 1) && last_of(&s, 2) && last_of(&s, 5));
	assert_int_equal(s.n, 5);
	/* one body command; the five rows in one batch */
	assert_non_null(strstr(f.log, "|UID FETCH 1:3,5 (UID BODY.PEEK[])|"));
	assert_null(strstr(f.log, "UID FETCH 1 "));
	assert_int_equal(s.rows, 5);
	assert_int_equal(s.batches, 1);
}

/* UID after the body: that body is dropped and asked alone, where the
 * one UID asked owns the literal. */
static const struct rule late_uid_rules[] = {
	LOGIN_RULES,
	{ "UID FETCH 1:2 (UID RFC822.SIZE INTERNALDATE)",
	    "* 1 FETCH (UID 1 RFC822.SIZE 5 " DATE ")\r\n"
	    "* 2 FETCH (UID 2 RFC822.SIZE 6 " DATE ")\r\n{tag} OK\r\n" },
	{ "UID FETCH 1:2 (UID BODY.PEEK[])",
	    "* 1 FETCH (BODY[] {5}\r\nhello UID 1)\r\n"
	    "* 2 FETCH (UID 2 BODY[] {6}\r\nworld!)\r\n{tag} OK\r\n" },
	{ "UID FETCH 1 (UID BODY.PEEK[])",
	    "* 1 FETCH (BODY[] {5}\r\nhello UID 1)\r\n{tag} OK\r\n" },
	{ NULL, NULL },
};

static void
test_late_uid(void **state)
{
	struct sync_result res;
	struct seen s;
	struct fake f;

	(void)state;
	fake_start(&f, late_uid_rules);
	assert_int_equal(run_prefetch(&f, 1, 2, &s, &res), 0);
	fake_stop(&f);
	sync_result_release(&res);
	assert_string_equal(body_of(&s, 1), "hello");
	assert_string_equal(body_of(&s, 2), "world!");
	assert_true(last_of(&s, 1) && last_of(&s, 2));
	assert_non_null(strstr(f.log, "|UID FETCH 1 (UID BODY.PEEK[])|"));
}

/* A body for a UID never asked: the job fails, nothing stored for it. */
static const struct rule stranger_rules[] = {
	LOGIN_RULES,
	{ "UID FETCH 1:2 (UID RFC822.SIZE INTERNALDATE)",
	    "* 1 FETCH (UID 1 RFC822.SIZE 5 " DATE ")\r\n"
	    "* 2 FETCH (UID 2 RFC822.SIZE 6 " DATE ")\r\n{tag} OK\r\n" },
	{ "UID FETCH 1:2 (UID BODY.PEEK[])",
	    "* 7 FETCH (UID 70 BODY[] {5}\r\nhello)\r\n{tag} OK\r\n" },
	{ NULL, NULL },
};

static void
test_stranger(void **state)
{
	struct sync_result res;
	struct seen s;
	struct fake f;

	(void)state;
	fake_start(&f, stranger_rules);
	assert_int_equal(run_prefetch(&f, 1, 2, &s, &res), ERR_PROTO);
	fake_stop(&f);
	assert_int_equal(res.retry, RETRY_LATER);
	assert_non_null(strstr(res.error, "server sent a body for another"));
	sync_result_release(&res);
	assert_null(body_of(&s, 70));
}

/* A batch refused with NO: what came is kept, the rest asked alone. */
static const struct rule refused_rules[] = {
	LOGIN_RULES,
	{ "UID FETCH 1:2 (UID RFC822.SIZE INTERNALDATE)",
	    "* 1 FETCH (UID 1 RFC822.SIZE 5 " DATE ")\r\n"
	    "* 2 FETCH (UID 2 RFC822.SIZE 6 " DATE ")\r\n{tag} OK\r\n" },
	{ "UID FETCH 1:2 (UID BODY.PEEK[])",
	    "* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\n"
	    "{tag} NO [EXPUNGEISSUED] some were expunged\r\n" },
	{ "UID FETCH 2 (UID BODY.PEEK[])",
	    "* 2 FETCH (UID 2 BODY[] {6}\r\nworld!)\r\n{tag} OK\r\n" },
	{ NULL, NULL },
};

static void
test_refused(void **state)
{
	struct sync_result res;
	struct seen s;
	struct fake f;

	(void)state;
	fake_start(&f, refused_rules);
	assert_int_equal(run_prefetch(&f, 1, 2, &s, &res), 0);
	fake_stop(&f);
	sync_result_release(&res);
	assert_string_equal(body_of(&s, 1), "hello");
	assert_string_equal(body_of(&s, 2), "world!");
	assert_null(strstr(f.log, "UID FETCH 1 ("));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_late_uid),
		cmocka_unit_test(test_stranger),
		cmocka_unit_test(test_refused),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
