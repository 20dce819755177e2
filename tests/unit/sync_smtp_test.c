/*
 * sync_smtp_test.c: one message through smtp_send() to a tiny scripted
 * SMTP server on a 127.0.0.1 socket (a thread): the outcome by what the
 * server said and when (docs/drain.md: before DATA, after DATA began),
 * the envelope (Sender or From; To, Cc and Bcc), and the transmitted
 * copy (no Bcc field, CRLF line ends, dot-stuffed). Also the pure
 * classification table and the refusals that need no server.
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
#include <curl/curl.h>

#include "sync/drain_int.h"

/* What the server answers; NULL means the default (2xx). */
struct script {
	const char *mail; /* reply to MAIL FROM */
	const char *rcpt; /* reply to every RCPT TO */
	const char *data; /* reply to the end of the data */
	bool drop_after_data; /* close instead of replying to the "." */
};

struct server {
	struct script sc;
	int lfd;
	uint16_t port;
	pthread_t th;
	/* What the client sent. */
	char from[256];
	char rcpts[1024];
	char data[8192];
	size_t ndata;
};

static void
say(int fd, const char *s)
{
	size_t n = strlen(s);

	if (write(fd, s, n) != (ssize_t)n || write(fd, "\r\n", 2) != 2) {
		return;
	}
}

static void *
serve(void *arg)
{
	struct server *sv = arg;
	char line[2048];
	int fd;

	fd = accept(sv->lfd, NULL, NULL);
	if (fd < 0) {
		return (NULL);
	}
	say(fd, "220 fake ESMTP");
	while (script_read_line(fd, line, sizeof(line))) {
		if (strncasecmp(line, "EHLO", 4) == 0) {
			say(fd, "250-fake\r\n250 8BITMIME");
		} else if (strncasecmp(line, "HELO", 4) == 0) {
			say(fd, "250 fake");
		} else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
			snprintf(sv->from, sizeof(sv->from), "%.*s",
			    (int)strcspn(line + 10, " \r\n"), line + 10);
			say(fd, sv->sc.mail != NULL ? sv->sc.mail : "250 ok");
		} else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
			size_t n = strlen(sv->rcpts);

			snprintf(sv->rcpts + n, sizeof(sv->rcpts) - n,
			    "%s%.*s", n > 0 ? " " : "",
			    (int)strcspn(line + 8, " \r\n"), line + 8);
			say(fd, sv->sc.rcpt != NULL ? sv->sc.rcpt : "250 ok");
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			say(fd, "354 go ahead");
			while (script_read_line(fd, line, sizeof(line))
			    && strcmp(line, ".\r\n") != 0) {
				size_t n = strlen(line);

				if (sv->ndata + n < sizeof(sv->data)) {
					memcpy(sv->data + sv->ndata, line, n);
					sv->ndata += n;
					sv->data[sv->ndata] = '\0';
				}
			}
			if (sv->sc.drop_after_data) {
				break;
			}
			say(fd,
			    sv->sc.data != NULL ? sv->sc.data
			                        : "250 2.0.0 queued as X");
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			say(fd, "221 bye");
			break;
		} else {
			say(fd, "502 unknown");
		}
	}
	close(fd);
	return (NULL);
}

static void
server_start(struct server *sv, const struct script *sc)
{
	memset(sv, 0, sizeof(*sv));
	sv->sc = *sc;
	sv->lfd = script_listen(&sv->port);
	assert_int_equal(pthread_create(&sv->th, NULL, serve, sv), 0);
}

static void
server_stop(struct server *sv)
{
	pthread_join(sv->th, NULL);
	close(sv->lfd);
}

static const char MESSAGE[] = "From: Me <me@example.com>\n"
                              "To: You <you@example.com>, other@example.org\n"
                              "Cc: cc@example.com\n"
                              "Bcc: secret@example.net,\n"
                              " also-secret@example.net\n"
                              "Subject: hello\n"
                              "Message-ID: <t1@example.com>\n"
                              "\n"
                              "line one\n"
                              ".starts with a dot\n"
                              "Bcc: in the body stays\n";

/* Sends msg to url as job/change of a plaintext account without
 * credentials. */
static void
send_to(const char *url, const char *msg, struct smtp_outcome *out)
{
	struct proto_job_run job;
	struct proto_change c;
	struct sync_limits l;

	memset(&job, 0, sizeof(job));
	job.job_id = 1;
	job.plaintext = true;
	job.username = proto_str_c("me");
	job.smtp = proto_str_c(url);
	memset(&c, 0, sizeof(c));
	c.id = 7;
	c.kind = CHANGE_SEND;
	c.rfc822 = proto_str_c(msg);
	sync_limits_default(&l);
	l.io_timeout_ms = 5000;
	l.connect_timeout_ms = 5000;
	smtp_send(&job, &c, &l, out);
}

static const char *
url_of(const struct server *sv, char *url, size_t n)
{
	snprintf(url, n, "smtp://127.0.0.1:%u", sv->port);
	return (url);
}

static void
run_case(const struct script *sc, struct server *sv, struct smtp_outcome *out)
{
	char url[64];

	server_start(sv, sc);
	send_to(url_of(sv, url, sizeof(url)), MESSAGE, out);
	server_stop(sv);
}

static void
test_accepted(void **state)
{
	struct script sc = { NULL, NULL, NULL, false };
	struct smtp_outcome out;
	struct server sv;

	(void)state;
	run_case(&sc, &sv, &out);
	assert_int_equal(out.outcome, CHANGE_OUT_SENT);
	assert_string_equal(sv.from, "<me@example.com>");
	/* the envelope has every recipient, Bcc included */
	assert_string_equal(sv.rcpts,
	    "<you@example.com> <other@example.org> <cc@example.com> "
	    "<secret@example.net> <also-secret@example.net>");
	/* the copy has no Bcc field (nor its continuation line) */
	assert_null(strstr(sv.data, "secret"));
	assert_non_null(strstr(sv.data, "Subject: hello\r\n"));
	assert_non_null(strstr(sv.data, "Bcc: in the body stays\r\n"));
	/* CRLF everywhere, and the dot stuffed */
	assert_non_null(strstr(sv.data, "\r\n..starts with a dot\r\n"));
	assert_null(strstr(sv.data, "\n\n"));
}

static void
test_sender_first(void **state)
{
	struct script sc = { NULL, NULL, NULL, false };
	struct smtp_outcome out;
	struct server sv;
	char url[64];

	(void)state;
	server_start(&sv, &sc);
	send_to(url_of(&sv, url, sizeof(url)),
	    "Sender: Secretary <sec@example.com>\r\n"
	    "From: boss@example.com, other-boss@example.com\r\n"
	    "To: you@example.com\r\n\r\nhi\r\n",
	    &out);
	server_stop(&sv);
	assert_int_equal(out.outcome, CHANGE_OUT_SENT);
	assert_string_equal(sv.from, "<sec@example.com>");
	assert_string_equal(sv.rcpts, "<you@example.com>");
}

static void
test_rcpt_refused(void **state)
{
	struct script sc
	    = { NULL, "550 5.1.1 <x>: no such user", NULL, false };
	struct smtp_outcome out;
	struct server sv;

	(void)state;
	run_case(&sc, &sv, &out);
	assert_int_equal(out.outcome, CHANGE_OUT_DEAD);
	assert_non_null(strstr(out.error, "550 5.1.1 <x>: no such user"));
	assert_int_equal(sv.ndata, 0);
}

static void
test_rcpt_later(void **state)
{
	struct script sc
	    = { NULL, "451 4.7.1 greylisted, try later", NULL, false };
	struct smtp_outcome out;
	struct server sv;

	(void)state;
	run_case(&sc, &sv, &out);
	assert_int_equal(out.outcome, CHANGE_OUT_RETRY);
	assert_non_null(strstr(out.error, "451 4.7.1 greylisted"));
}

static void
test_mail_refused(void **state)
{
	struct script sc = { "553 sender not allowed", NULL, NULL, false };
	struct smtp_outcome out;
	struct server sv;

	(void)state;
	run_case(&sc, &sv, &out);
	assert_int_equal(out.outcome, CHANGE_OUT_DEAD);
	assert_non_null(strstr(out.error, "553 sender not allowed"));
}

static void
test_dropped_after_data(void **state)
{
	struct script sc = { NULL, NULL, NULL, true };
	struct smtp_outcome out;
	struct server sv;

	(void)state;
	run_case(&sc, &sv, &out);
	assert_true(sv.ndata > 0);
	assert_int_equal(out.outcome, CHANGE_OUT_UNCERTAIN);
	assert_non_null(strstr(out.error, "may have been delivered"));
}

static void
test_data_refused(void **state)
{
	struct script sc
	    = { NULL, NULL, "554 5.7.1 message rejected as spam", false };
	struct smtp_outcome out;
	struct server sv;

	(void)state;
	run_case(&sc, &sv, &out);
	assert_int_equal(out.outcome, CHANGE_OUT_DEAD);
	assert_non_null(strstr(out.error, "554 5.7.1 message rejected"));
}

static void
test_data_later(void **state)
{
	struct script sc
	    = { NULL, NULL, "452 4.3.1 insufficient storage", false };
	struct smtp_outcome out;
	struct server sv;

	(void)state;
	run_case(&sc, &sv, &out);
	assert_int_equal(out.outcome, CHANGE_OUT_RETRY);
	assert_non_null(strstr(out.error, "452 4.3.1"));
}

static void
test_no_server(void **state)
{
	struct smtp_outcome out;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	char url[64];
	int fd;

	(void)state;
	/* A port nobody listens on: bound, then closed. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%u", ntohs(a.sin_port));
	send_to(url, MESSAGE, &out);
	assert_int_equal(out.outcome, CHANGE_OUT_RETRY);
	assert_true(out.error[0] != '\0');
}

/* Refused before any connection. */
static void
test_refusals(void **state)
{
	static const struct {
		const char *url, *msg, *words;
	} cases[] = {
		{ "", MESSAGE, "no SMTP server" },
		{ "http://127.0.0.1:1", MESSAGE, "smtp:// or smtps://" },
		{ "smtp://127.0.0.1:1", "To: a@b\r\n\r\nx\r\n", "no From" },
		{ "smtp://127.0.0.1:1", "From: a@b\r\nSubject: x\r\n\r\nx\r\n",
		    "no recipient" },
		{ "smtp://127.0.0.1:1", "From: a@b\r\nTo: ((\r\n\r\nx\r\n",
		    "To field" },
		{ "smtp://127.0.0.1:1", "no header at all", "sender" },
	};
	struct smtp_outcome out;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		send_to(cases[i].url, cases[i].msg, &out);
		assert_int_equal(out.outcome, CHANGE_OUT_DEAD);
		if (strstr(out.error, cases[i].words) == NULL) {
			fail_msg("case %zu: '%s' lacks '%s'", i, out.error,
			    cases[i].words);
		}
	}
}

static void
test_classify(void **state)
{
	static const struct {
		struct smtp_facts f;
		uint8_t outcome;
	} cases[] = {
		{ { CURLE_OK, true, 0, false }, CHANGE_OUT_SENT },
		/* before DATA: 5xx and configuration errors are dead */
		{ { CURLE_COULDNT_CONNECT, false, 0, false },
		    CHANGE_OUT_RETRY },
		{ { CURLE_OPERATION_TIMEDOUT, false, 0, false },
		    CHANGE_OUT_RETRY },
		{ { CURLE_SEND_ERROR, false, 550, false }, CHANGE_OUT_DEAD },
		{ { CURLE_SEND_ERROR, false, 451, false }, CHANGE_OUT_RETRY },
		{ { CURLE_LOGIN_DENIED, false, 535, false }, CHANGE_OUT_DEAD },
		{ { CURLE_LOGIN_DENIED, false, 454, false },
		    CHANGE_OUT_RETRY },
		{ { CURLE_LOGIN_DENIED, false, 0, false }, CHANGE_OUT_DEAD },
		{ { CURLE_USE_SSL_FAILED, false, 0, false }, CHANGE_OUT_DEAD },
		{ { CURLE_PEER_FAILED_VERIFICATION, false, 0, false },
		    CHANGE_OUT_RETRY },
		/* after DATA began: only a refusal of the data is sure */
		{ { CURLE_WEIRD_SERVER_REPLY, true, 554, true },
		    CHANGE_OUT_DEAD },
		{ { CURLE_WEIRD_SERVER_REPLY, true, 452, true },
		    CHANGE_OUT_RETRY },
		{ { CURLE_RECV_ERROR, true, 0, false }, CHANGE_OUT_UNCERTAIN },
		{ { CURLE_OPERATION_TIMEDOUT, true, 0, false },
		    CHANGE_OUT_UNCERTAIN },
		{ { CURLE_SEND_ERROR, true, 0, false }, CHANGE_OUT_UNCERTAIN },
		{ { CURLE_SEND_ERROR, true, 550, false },
		    CHANGE_OUT_UNCERTAIN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		if (smtp_classify(&cases[i].f) != cases[i].outcome) {
			fail_msg("case %zu: %u, not %u", i,
			    smtp_classify(&cases[i].f), cases[i].outcome);
		}
	}
}

/* The drain job with sends only: SMTP, and no IMAP session when no Sent
 * copy is kept (the IMAP URL points nowhere: opening it would turn the
 * change into a retry, and a retry of a sent message sends it twice). */
struct drain_seen {
	size_t n;
	uint64_t id[8];
	uint8_t outcome[8];
};

static int
drain_sink(const struct proto_batch *b, void *arg)
{
	struct drain_seen *s = arg;
	size_t i;

	for (i = 0; i < b->nchange_results && s->n < 8; i++, s->n++) {
		s->id[s->n] = b->change_results[i].id;
		s->outcome[s->n] = b->change_results[i].outcome;
	}
	return (0);
}

static void
test_drain_sends_only(void **state)
{
	struct script sc = { NULL, NULL, NULL, false };
	struct proto_job_run job;
	struct proto_change c[2];
	struct drain_seen seen;
	struct sync_sink sink = { drain_sink, &seen };
	struct sync_result res;
	struct sync_limits l;
	struct server sv;
	char url[64];

	(void)state;
	server_start(&sv, &sc);
	memset(&job, 0, sizeof(job));
	job.job_id = 3;
	job.attempt = 1;
	job.kind = JOB_KIND_DRAIN;
	job.plaintext = true;
	job.protocol = proto_str_c("imap");
	job.server = proto_str_c("imap://127.0.0.1:1");
	job.username = proto_str_c("me");
	job.smtp = proto_str_c(url_of(&sv, url, sizeof(url)));
	memset(c, 0, sizeof(c));
	c[0].id = 11; /* sent now, no Sent copy */
	c[0].kind = CHANGE_SEND;
	c[0].rfc822 = proto_str_c(MESSAGE);
	c[1].id = 12; /* refused before any connection */
	c[1].kind = CHANGE_SEND;
	c[1].rfc822 = proto_str_c("Subject: no from\r\n\r\nx\r\n");
	job.changes = c;
	job.nchanges = 2;
	sync_limits_default(&l);
	l.io_timeout_ms = 5000;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(sync_run(&job, &l, NULL, &sink, &res), 0);
	server_stop(&sv);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.id[0], 11);
	assert_int_equal(seen.outcome[0], CHANGE_OUT_DONE);
	assert_int_equal(seen.id[1], 12);
	assert_int_equal(seen.outcome[1], CHANGE_OUT_DEAD);
	assert_int_equal(res.nbatches, 2); /* each send its own batch */
	sync_result_release(&res);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_sender_first),
		cmocka_unit_test(test_rcpt_refused),
		cmocka_unit_test(test_rcpt_later),
		cmocka_unit_test(test_mail_refused),
		cmocka_unit_test(test_dropped_after_data),
		cmocka_unit_test(test_data_refused),
		cmocka_unit_test(test_data_later),
		cmocka_unit_test(test_no_server),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_drain_sends_only),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
