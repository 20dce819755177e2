/*
 * ipc_test.c: unit tests of pkg/ipc over real ipc:// sockets in a temp
 * directory: a round trip on each endpoint pair (control with ipc_call
 * against a REP thread, results and jobs push/pull, events pub/sub),
 * socket files 0600, a malformed message dropped without losing the next
 * good one, ipc_call to nobody, URL helpers, and tls+tcp:// on 127.0.0.1
 * when the openssl command is there to make a certificate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "base/base.h"
#include "ipc/ipc.h"
#include "proto/proto.h"

static char tmpdir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ipc_test.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		return (-1);
	}
	return (0);
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return (system(cmd) == 0 ? 0 : -1);
}

static void
url_of(enum ipc_endpoint e, char *url, size_t n)
{
	assert_int_equal(ipc_default_url(tmpdir, e, url, n), 0);
}

static void
open_pair(enum ipc_endpoint e, nng_socket *l, nng_socket *d)
{
	char url[256], err[256];
	int rv;

	url_of(e, url, sizeof(url));
	rv = ipc_open(e, IPC_LISTEN, url, l, err, sizeof(err));
	if (rv != 0) {
		fail_msg("listen %s: %s", url, err);
	}
	rv = ipc_open(e, IPC_DIAL, url, d, err, sizeof(err));
	if (rv != 0) {
		fail_msg("dial %s: %s", url, err);
	}
}

static void
assert_mode_0600(enum ipc_endpoint e)
{
	char url[256];
	struct stat st;

	url_of(e, url, sizeof(url));
	assert_int_equal(stat(url + 6, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void
test_urls(void **state)
{
	char url[64];

	(void)state;
	assert_int_equal(ipc_default_url("/d", IPC_CONTROL, url, sizeof(url)),
	    0);
	assert_string_equal(url, "ipc:///d/control.sock");
	assert_int_equal(ipc_default_url("./x", IPC_JOBS, url, sizeof(url)),
	    0);
	assert_string_equal(url, "ipc://./x/jobs.sock");
	assert_int_equal(ipc_default_url("/d", IPC_EVENTS, url, 10),
	    ERR_TOOBIG);
	assert_string_equal(ipc_endpoint_name(IPC_RESULTS), "results");
	assert_string_equal(ipc_endpoint_name(IPC_ENDPOINT_COUNT), "unknown");
	assert_int_equal(ipc_err(NNG_ETIMEDOUT), ERR_TIMEOUT);
	assert_int_equal(ipc_err(NNG_ECLOSED), ERR_CLOSED);
	assert_int_equal(ipc_err(NNG_EPROTO), ERR_IO);
}

static void
test_bad_urls(void **state)
{
	nng_socket s;
	char err[256], url[300];

	(void)state;
	assert_int_equal(ipc_open(IPC_CONTROL, IPC_DIAL, "http://x", &s, err,
			     sizeof(err)),
	    ERR_INVAL);
	assert_non_null(strstr(err, "unsupported URL"));
	assert_int_equal(ipc_open(IPC_CONTROL, IPC_DIAL, "tls+tcp://h:1", &s,
			     err, sizeof(err)),
	    ERR_CONFIG);
	memset(url, 'a', sizeof(url) - 1);
	url[sizeof(url) - 1] = '\0';
	memcpy(url, "ipc:///", 7);
	assert_int_equal(ipc_open(IPC_CONTROL, IPC_LISTEN, url, &s, err,
			     sizeof(err)),
	    ERR_TOOBIG);
	assert_non_null(strstr(err, "socket path longer than"));
}

/* A REP server thread: answers n requests, echoing id and job_id. */
struct server {
	nng_socket s;
	int n;
	int rv;
};

static void *
server_main(void *arg)
{
	struct server *sv = arg;
	struct proto_msg m, r;
	nng_msg *raw;
	int i, rv;

	for (i = 0; i < sv->n; i++) {
		rv = ipc_recv(sv->s, &m, &raw, 5000);
		if (rv != 0) {
			sv->rv = rv;
			return (NULL);
		}
		memset(&r, 0, sizeof(r));
		r.type = MSG_STORE_REPLY;
		r.id = m.id;
		r.u.reply.id = m.type == MSG_SUBMIT_JOB_STATUS
			? m.u.job_status.job_id
			: 0;
		r.u.reply.error = proto_str_c("pong");
		proto_msg_release(&m);
		ipc_msg_free(&raw);
		rv = ipc_send(sv->s, &r, 5000);
		if (rv != 0) {
			sv->rv = rv;
			return (NULL);
		}
	}
	return (NULL);
}

static void
test_control(void **state)
{
	struct server sv = { NNG_SOCKET_INITIALIZER, 3, 0 };
	struct proto_msg req, rep;
	nng_socket cli;
	nng_msg *raw;
	pthread_t th;
	int i;

	(void)state;
	open_pair(IPC_CONTROL, &sv.s, &cli);
	assert_mode_0600(IPC_CONTROL);
	assert_int_equal(pthread_create(&th, NULL, server_main, &sv), 0);
	for (i = 0; i < 3; i++) {
		memset(&req, 0, sizeof(req));
		req.type = MSG_SUBMIT_JOB_STATUS;
		req.id = 100 + (uint64_t)i;
		req.u.job_status.job_id = 7 + (uint64_t)i;
		assert_int_equal(ipc_call(cli, &req, &rep, &raw, 5000), 0);
		assert_int_equal(rep.type, MSG_STORE_REPLY);
		assert_true(rep.id == req.id);
		assert_true(rep.u.reply.id == 7 + (uint64_t)i);
		assert_true(proto_str_eq(rep.u.reply.error, "pong"));
		proto_msg_release(&rep);
		ipc_msg_free(&raw);
	}
	pthread_join(th, NULL);
	assert_int_equal(sv.rv, 0);
	nng_close(cli);
	nng_close(sv.s);
}

static void
test_call_nobody(void **state)
{
	struct proto_msg req, rep;
	char url[256], err[256];
	nng_socket cli;
	nng_msg *raw;
	int64_t t0, dt;

	(void)state;
	snprintf(url, sizeof(url), "ipc://%s/nobody.sock", tmpdir);
	assert_int_equal(ipc_open(IPC_CONTROL, IPC_DIAL, url, &cli, err,
			     sizeof(err)),
	    0);
	memset(&req, 0, sizeof(req));
	req.type = MSG_SUBMIT_ACCOUNT_LIST;
	req.id = 1;
	t0 = clock_mono_ms();
	assert_int_equal(ipc_call(cli, &req, &rep, &raw, 300),
	    ERR_UNREACHABLE);
	dt = clock_mono_ms() - t0;
	assert_true(dt >= 250 && dt < 2000);
	assert_null(raw);
	nng_close(cli);
}

/* Sends a batch on a push-like socket and receives it on the other. */
static void
one_way(nng_socket tx, nng_socket rx, bool retry_until_seen)
{
	struct proto_message_row row;
	struct proto_msg m, got;
	nng_msg *raw = NULL;
	int i, rv = ERR_TIMEOUT;

	memset(&m, 0, sizeof(m));
	memset(&row, 0, sizeof(row));
	m.type = MSG_WORKER_RESULT_BATCH;
	m.id = 9;
	m.u.batch.job_id = 12;
	m.u.batch.attempt = 2;
	m.u.batch.seq = 1;
	row.mailbox = proto_str_c("INBOX");
	row.uid = 42;
	m.u.batch.messages = &row;
	m.u.batch.nmessages = 1;
	for (i = 0; i < 50 && rv != 0; i++) {
		assert_int_equal(ipc_send(tx, &m, 2000), 0);
		rv = ipc_recv(rx, &got, &raw, retry_until_seen ? 100 : 2000);
	}
	assert_int_equal(rv, 0);
	assert_int_equal(got.type, MSG_WORKER_RESULT_BATCH);
	assert_int_equal(got.u.batch.nmessages, 1);
	assert_int_equal(got.u.batch.messages[0].uid, 42);
	assert_true(proto_str_eq(got.u.batch.messages[0].mailbox, "INBOX"));
	proto_msg_release(&got);
	ipc_msg_free(&raw);
}

static void
test_results_jobs_events(void **state)
{
	nng_socket l, d;

	(void)state;
	open_pair(IPC_RESULTS, &l, &d); /* store PULL listens */
	assert_mode_0600(IPC_RESULTS);
	one_way(d, l, false);
	nng_close(l);
	nng_close(d);

	open_pair(IPC_JOBS, &l, &d); /* scheduler PUSH listens */
	assert_mode_0600(IPC_JOBS);
	one_way(l, d, false);
	nng_close(l);
	nng_close(d);

	open_pair(IPC_EVENTS, &l, &d); /* store PUB listens */
	assert_mode_0600(IPC_EVENTS);
	one_way(l, d, true); /* PUB drops until the SUB is connected */
	nng_close(l);
	nng_close(d);
}

static void
test_malformed_then_good(void **state)
{
	static const char junk[] = "\x93\x01\x02\x03";
	static const char v2[] = "\x84\xa1v\x02\xa1t\xafsched.state.get"
				 "\xa2id\x01\xa1"
				 "b\x80";
	struct proto_msg m;
	nng_socket l, d;
	nng_msg *raw = NULL;

	(void)state;
	open_pair(IPC_RESULTS, &l, &d);
	assert_int_equal(nng_send(d, (void *)(uintptr_t)junk,
			     sizeof(junk) - 1, 0),
	    0);
	assert_int_equal(nng_send(d, (void *)(uintptr_t)v2, sizeof(v2) - 1,
			     0),
	    0);
	assert_int_equal(ipc_recv(l, &m, &raw, 2000), ERR_PROTO);
	assert_null(raw);
	assert_int_equal(ipc_recv(l, &m, &raw, 2000), ERR_VERSION);
	assert_null(raw);
	assert_int_equal(ipc_recv(l, &m, &raw, 0), ERR_AGAIN);
	assert_int_equal(ipc_recv(l, &m, &raw, 50), ERR_TIMEOUT);
	one_way(d, l, false);
	nng_close(l);
	nng_close(d);
}

/* A socket file left by a killed listener does not block a new one. */
static void
test_stale_socket(void **state)
{
	struct sockaddr_un sa;
	char url[256], err[256];
	nng_socket l, d;
	int fd;

	(void)state;
	url_of(IPC_RESULTS, url, sizeof(url));
	unlink(url + 6);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_int_equal(strlcpy_checked(sa.sun_path, url + 6,
			     sizeof(sa.sun_path)),
	    0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd); /* the file stays, nobody listens */
	if (ipc_open(IPC_RESULTS, IPC_LISTEN, url, &l, err, sizeof(err)) !=
	    0) {
		fail_msg("listen over a stale socket: %s", err);
	}
	assert_mode_0600(IPC_RESULTS);
	assert_int_equal(ipc_open(IPC_RESULTS, IPC_DIAL, url, &d, err,
			     sizeof(err)),
	    0);
	one_way(d, l, false);
	nng_close(d);
	nng_close(l);
}

/* tls+tcp:// with a throw-away self-signed certificate. */
static void
test_tls(void **state)
{
	char cmd[1024], cert[128], key[128], url[64], err[256];
	struct ipc_tls srv, cli;
	nng_socket l, d;
	int rv;

	(void)state;
	snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
	snprintf(cmd, sizeof(cmd),
	    "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
	    "/CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
	    "-keyout '%s' -out '%s' >/dev/null 2>&1",
	    key, cert);
	if (system(cmd) != 0) {
		skip();
	}
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d",
	    20000 + (int)(getpid() % 20000));
	memset(&srv, 0, sizeof(srv));
	srv.cert_file = cert;
	srv.key_file = key;
	memset(&cli, 0, sizeof(cli));
	cli.ca_file = cert;
	cli.server_name = "localhost";
	rv = ipc_open_tls(IPC_RESULTS, IPC_LISTEN, url, &srv, &l, err,
	    sizeof(err));
	if (rv != 0) {
		fail_msg("tls listen: %s", err);
	}
	rv = ipc_open_tls(IPC_RESULTS, IPC_DIAL, url, &cli, &d, err,
	    sizeof(err));
	if (rv != 0) {
		fail_msg("tls dial: %s", err);
	}
	one_way(d, l, false);
	nng_close(d);

	/* A client that does not trust the certificate never connects. */
	cli.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(ipc_open_tls(IPC_RESULTS, IPC_DIAL, url, &cli, &d,
			     err, sizeof(err)),
	    ERR_TLS);
	cli.ca_file = NULL;
	assert_int_equal(ipc_open_tls(IPC_RESULTS, IPC_DIAL, url, &cli, &d,
			     err, sizeof(err)),
	    ERR_CONFIG);
	nng_close(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test(test_control),
		cmocka_unit_test(test_call_nobody),
		cmocka_unit_test(test_results_jobs_events),
		cmocka_unit_test(test_malformed_then_good),
		cmocka_unit_test(test_stale_socket),
		cmocka_unit_test(test_tls),
	};

	log_init("ipc_test", LOG_LVL_WARN);
	return (cmocka_run_group_tests(tests, setup, teardown));
}
