/*
 * ipc_watchdog_test.c: a peer that connects to an ipc:// listener and
 * leaves before the SP handshake wedges nng 1.5.2's listener; with the
 * watchdog running, a new peer is served again within a few seconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"
#include "ipc/ipc.h"

static void
raw_connect_close(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_int_equal(strlcpy_checked(sa.sun_path, path, sizeof(sa.sun_path)), 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	(void)connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
}

/* One push/pull exchange through a freshly dialed pusher. */
static int
fresh_exchange(const char *url, nng_socket pull, int timeout_ms)
{
	struct proto_msg m, got;
	nng_socket push;
	nng_msg *raw = NULL;
	char err[256];
	int rv;

	rv = ipc_open(IPC_RESULTS, IPC_DIAL, url, &push, err, sizeof(err));
	assert_int_equal(rv, 0);
	memset(&m, 0, sizeof(m));
	m.type = MSG_WORKER_RESULT_DONE;
	m.id = 7;
	m.u.done.job_id = 7;
	m.u.done.attempt = 1;
	rv = ipc_send(push, &m, timeout_ms);
	if (rv == 0) {
		rv = ipc_recv(pull, &got, &raw, timeout_ms);
		if (rv == 0) {
			assert_int_equal(got.type, MSG_WORKER_RESULT_DONE);
			proto_msg_release(&got);
			ipc_msg_free(&raw);
		}
	}
	nng_close(push);
	return (rv);
}

static void
test_watchdog_recovers_wedged_listener(void **state)
{
	char dir[] = "/tmp/mailsync-wdXXXXXX", url[128], path[100];
	struct ipc_watchdog *w = NULL;
	nng_listener l;
	nng_socket pull;
	char err[256];
	int i, rv;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/results.sock", dir);
	snprintf(url, sizeof(url), "ipc://%s", path);
	rv = ipc_open_ex(IPC_RESULTS, IPC_LISTEN, url, NULL, &pull, &l, err,
	    sizeof(err));
	assert_int_equal(rv, 0);
	assert_int_equal(ipc_watchdog_start(pull, l, IPC_RESULTS, url, 200,
			     300, &w),
	    0);
	assert_non_null(w);
	raw_connect_close(path);
	usleep(100000);
	/* Within ~5 s a fresh peer must be served, wedged or not. */
	rv = -1;
	for (i = 0; i < 10 && rv != 0; i++) {
		rv = fresh_exchange(url, pull, 500);
	}
	assert_int_equal(rv, 0);
	fprintf(stderr, "relistens=%u\n", ipc_watchdog_relistens(w));
	ipc_watchdog_stop(&w);
	assert_null(w);
	nng_close(pull);
	unlink(path);
	rmdir(dir);
}

static void
test_watchdog_not_for_tcp_or_bad_endpoint(void **state)
{
	struct ipc_watchdog *w = (struct ipc_watchdog *)1;
	nng_socket s = NNG_SOCKET_INITIALIZER;
	nng_listener l = NNG_LISTENER_INITIALIZER;

	(void)state;
	assert_int_equal(ipc_watchdog_start(s, l, IPC_CONTROL,
			     "tcp://127.0.0.1:1", 100, 100, &w),
	    0);
	assert_null(w);
	assert_int_equal(ipc_watchdog_start(s, l, IPC_ENDPOINT_COUNT,
			     "ipc:///tmp/x.sock", 100, 100, &w),
	    ERR_INVAL);
	ipc_watchdog_stop(&w);
}

/* Probes of a jobs listener must never be handed a job. */
static void
test_probes_never_take_jobs(void **state)
{
	char dir[] = "/tmp/mailsync-wdXXXXXX", url[128];
	struct ipc_watchdog *w = NULL;
	struct proto_msg m, got;
	nng_socket push, pull;
	nng_listener l;
	nng_msg *raw;
	char err[256];
	int i, n = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof(url), "ipc://%s/jobs.sock", dir);
	assert_int_equal(ipc_open_ex(IPC_JOBS, IPC_LISTEN, url, NULL, &push,
			     &l, err, sizeof(err)),
	    0);
	assert_int_equal(ipc_watchdog_start(push, l, IPC_JOBS, url, 20, 3000,
			     &w),
	    0);
	assert_int_equal(
	    ipc_open(IPC_JOBS, IPC_DIAL, url, &pull, err, sizeof(err)), 0);
	usleep(200000);
	memset(&m, 0, sizeof(m));
	m.type = MSG_WORKER_JOB_RUN;
	for (i = 0; i < 40; i++) {
		m.id = (uint64_t)i + 1;
		m.u.job_run.job_id = (uint64_t)i + 1;
		m.u.job_run.attempt = 1;
		m.u.job_run.protocol = proto_str_c("imap");
		m.u.job_run.server = proto_str_c("imap://127.0.0.1");
		m.u.job_run.username = proto_str_c("u");
		assert_int_equal(ipc_send(push, &m, 2000), 0);
		if (ipc_recv(pull, &got, &raw, 2000) == 0) {
			assert_int_equal(got.u.job_run.job_id, (uint64_t)i + 1);
			proto_msg_release(&got);
			ipc_msg_free(&raw);
			n++;
		}
		usleep(10000); /* probes run every 20 ms meanwhile */
	}
	assert_int_equal(n, 40);
	assert_int_equal(ipc_watchdog_relistens(w), 0);
	ipc_watchdog_stop(&w);
	nng_close(pull);
	nng_close(push);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watchdog_recovers_wedged_listener),
		cmocka_unit_test(test_watchdog_not_for_tcp_or_bad_endpoint),
		cmocka_unit_test(test_probes_never_take_jobs),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
