/*
 * metrics_test.c: unit tests for pkg/metrics. Renders a registry holding
 * each metric type and compares the exact Prometheus text (and, when
 * promtool is installed, has `promtool check metrics` accept it); checks
 * that bad names and bad updates are refused; serves /metrics over
 * nng's HTTP server on 127.0.0.1 and fetches it with a plain socket,
 * while another thread keeps updating the registry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"
#include "metrics/metrics.h"

static const char expected_text[] =
    "# HELP test_requests_total Requests seen.\n"
    "# TYPE test_requests_total counter\n"
    "test_requests_total 3\n"
    "# HELP test_jobs_total Jobs by kind and outcome \\\\ with \\n "
    "escapes.\n"
    "# TYPE test_jobs_total counter\n"
    "test_jobs_total{kind=\"sync\",outcome=\"done\"} 2\n"
    "test_jobs_total{kind=\"sync\",outcome=\"dead\"} 1\n"
    "test_jobs_total{kind=\"a\\\"b\\\\c\\nd\",outcome=\"x\"} 0.5\n"
    "# HELP test_in_flight Jobs in flight.\n"
    "# TYPE test_in_flight gauge\n"
    "test_in_flight 6.25\n"
    "# HELP test_accounts Accounts by state.\n"
    "# TYPE test_accounts gauge\n"
    "test_accounts{state=\"idle\"} -2\n"
    "# HELP test_duration_seconds Durations.\n"
    "# TYPE test_duration_seconds histogram\n"
    "test_duration_seconds_bucket{kind=\"sync\",le=\"0.005\"} 1\n"
    "test_duration_seconds_bucket{kind=\"sync\",le=\"0.1\"} 2\n"
    "test_duration_seconds_bucket{kind=\"sync\",le=\"1\"} 3\n"
    "test_duration_seconds_bucket{kind=\"sync\",le=\"+Inf\"} 4\n"
    "test_duration_seconds_sum{kind=\"sync\"} 1000.605\n"
    "test_duration_seconds_count{kind=\"sync\"} 4\n"
    "# HELP test_plain_seconds No labels.\n"
    "# TYPE test_plain_seconds histogram\n"
    "test_plain_seconds_bucket{le=\"2.5\"} 0\n"
    "test_plain_seconds_bucket{le=\"+Inf\"} 0\n"
    "test_plain_seconds_sum 0\n"
    "test_plain_seconds_count 0\n";

static struct metrics *
build_registry(struct metrics_family **fams_r)
{
	static const double b3[] = { 0.005, 0.1, 1 };
	static const double b1[] = { 2.5 };
	struct metrics *m = NULL;
	struct metrics_family *c1, *c2, *g1, *g2, *h1, *h2;

	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_counter(m, "test_requests_total",
	    "Requests seen.", NULL, NULL, &c1), 0);
	assert_int_equal(metrics_counter(m, "test_jobs_total",
	    "Jobs by kind and outcome \\ with \n escapes.", "kind", "outcome",
	    &c2), 0);
	assert_int_equal(metrics_gauge(m, "test_in_flight", "Jobs in flight.",
	    NULL, NULL, &g1), 0);
	assert_int_equal(metrics_gauge(m, "test_accounts",
	    "Accounts by state.", "state", NULL, &g2), 0);
	assert_int_equal(metrics_histogram(m, "test_duration_seconds",
	    "Durations.", "kind", NULL, b3, 3, &h1), 0);
	assert_int_equal(metrics_histogram(m, "test_plain_seconds",
	    "No labels.", NULL, NULL, b1, 1, &h2), 0);

	assert_int_equal(metrics_add(c1, NULL, NULL, 1), 0);
	assert_int_equal(metrics_add(c1, NULL, NULL, 2), 0);
	assert_int_equal(metrics_add(c2, "sync", "done", 1), 0);
	assert_int_equal(metrics_add(c2, "sync", "dead", 1), 0);
	assert_int_equal(metrics_add(c2, "sync", "done", 1), 0);
	assert_int_equal(metrics_add(c2, "a\"b\\c\nd", "x", 0.5), 0);
	assert_int_equal(metrics_set(g1, NULL, NULL, 7), 0);
	assert_int_equal(metrics_add(g1, NULL, NULL, -0.75), 0);
	assert_int_equal(metrics_set(g2, "idle", NULL, -2), 0);
	assert_int_equal(metrics_observe(h1, "sync", NULL, 0.005), 0);
	assert_int_equal(metrics_observe(h1, "sync", NULL, 0.1), 0);
	assert_int_equal(metrics_observe(h1, "sync", NULL, 0.5), 0);
	assert_int_equal(metrics_observe(h1, "sync", NULL, 1000), 0);
	if (fams_r != NULL) {
		fams_r[0] = c2;
		fams_r[1] = h1;
		fams_r[2] = g1;
	}
	return (m);
}

static void
test_render_exact(void **state)
{
	struct metrics *m = build_registry(NULL);
	struct buf b;

	(void)state;
	buf_init(&b, 1 << 20);
	assert_int_equal(metrics_render(m, &b), 0);
	assert_string_equal(b.data, expected_text);
	/* A too-small buffer fails cleanly. */
	buf_release(&b);
	buf_init(&b, 100);
	assert_int_equal(metrics_render(m, &b), ERR_TOOBIG);
	buf_release(&b);
	metrics_free(&m);
	assert_null(m);
	metrics_free(&m);
}

static void
test_promtool(void **state)
{
	struct metrics *m = build_registry(NULL);
	struct buf b;
	char path[] = "/tmp/metrics_test_XXXXXX";
	char cmd[200];
	FILE *fp;
	int fd, rv;

	(void)state;
	if (access("/usr/bin/promtool", X_OK) != 0) {
		skip();
	}
	buf_init(&b, 1 << 20);
	assert_int_equal(metrics_render(m, &b), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(b.data, 1, b.len, fp), b.len);
	assert_int_equal(fclose(fp), 0);
	assert_true(snprintf(cmd, sizeof(cmd),
	    "/usr/bin/promtool check metrics < %s", path) < (int)sizeof(cmd));
	rv = system(cmd);
	(void)unlink(path);
	assert_int_equal(rv, 0);
	buf_release(&b);
	metrics_free(&m);
}

static void
test_default_buckets(void **state)
{
	struct metrics *m = NULL;
	struct metrics_family *h;
	const double *d;
	struct buf b;
	size_t n, i;

	(void)state;
	d = metrics_default_buckets(&n);
	assert_true(n >= 10);
	assert_true(d[0] == 0.005);
	assert_true(d[n - 1] == 300);
	for (i = 1; i < n; i++) {
		assert_true(d[i] > d[i - 1]);
	}
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_histogram(m, "x_seconds", "h", NULL, NULL,
	    NULL, 0, &h), 0);
	assert_int_equal(metrics_observe(h, NULL, NULL, 42), 0);
	buf_init(&b, 1 << 16);
	assert_int_equal(metrics_render(m, &b), 0);
	assert_non_null(strstr(b.data, "x_seconds_bucket{le=\"30\"} 0\n"
					"x_seconds_bucket{le=\"60\"} 1\n"));
	assert_non_null(strstr(b.data, "x_seconds_bucket{le=\"300\"} 1\n"
					"x_seconds_bucket{le=\"+Inf\"} 1\n"
					"x_seconds_sum 42\n"));
	buf_release(&b);
	metrics_free(&m);
}

static void
test_bad_registration(void **state)
{
	static const double up_down[] = { 1, 0.5 };
	static const double inf[] = { 1, INFINITY };
	static const struct {
		int type; /* 0 counter, 1 gauge, 2 histogram */
		const char *name, *l1, *l2;
		const double *bounds;
		size_t nbounds;
		int rv;
	} cases[] = {
		{ 0, "", NULL, NULL, NULL, 0, ERR_INVAL },
		{ 0, NULL, NULL, NULL, NULL, 0, ERR_INVAL },
		{ 0, "9abc", NULL, NULL, NULL, 0, ERR_INVAL },
		{ 0, "a-b", NULL, NULL, NULL, 0, ERR_INVAL },
		{ 0, "a b", NULL, NULL, NULL, 0, ERR_INVAL },
		{ 1, "ok:name_1", "le", NULL, NULL, 0, 0 },
		{ 0, "dup_total", NULL, NULL, NULL, 0, 0 },
		{ 1, "dup_total", NULL, NULL, NULL, 0, ERR_EXISTS },
		{ 0, "x1_total", "a:b", NULL, NULL, 0, ERR_INVAL },
		{ 0, "x2_total", "__a", NULL, NULL, 0, ERR_INVAL },
		{ 0, "x3_total", NULL, "b", NULL, 0, ERR_INVAL },
		{ 0, "x4_total", "a", "a", NULL, 0, ERR_INVAL },
		{ 2, "h1", "le", NULL, NULL, 0, ERR_INVAL },
		{ 2, "h2", NULL, NULL, up_down, 2, ERR_INVAL },
		{ 2, "h3", NULL, NULL, inf, 2, ERR_INVAL },
		{ 2, "h4", NULL, NULL, up_down, METRICS_MAX_BUCKETS + 1,
		    ERR_INVAL },
		{ 2, "h5", "a", "b", up_down, 1, 0 },
	};
	struct metrics *m = NULL;
	struct metrics_family *f;
	size_t i;
	int rv;

	(void)state;
	assert_int_equal(metrics_new(&m), 0);
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		switch (cases[i].type) {
		case 0:
			rv = metrics_counter(m, cases[i].name, "h",
			    cases[i].l1, cases[i].l2, &f);
			break;
		case 1:
			rv = metrics_gauge(m, cases[i].name, "h", cases[i].l1,
			    cases[i].l2, &f);
			break;
		default:
			rv = metrics_histogram(m, cases[i].name, "h",
			    cases[i].l1, cases[i].l2, cases[i].bounds,
			    cases[i].nbounds, &f);
			break;
		}
		if (rv != cases[i].rv) {
			fail_msg("case %zu (%s): got %d want %d", i,
			    cases[i].name ? cases[i].name : "NULL", rv,
			    cases[i].rv);
		}
	}
	metrics_free(&m);
}

static void
test_bad_updates(void **state)
{
	struct metrics *m = NULL;
	struct metrics_family *c, *g, *h, *l;
	char big[METRICS_MAX_VALUE_LEN + 2], val[16];
	int i;

	(void)state;
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_counter(m, "c_total", "h", NULL, NULL, &c),
	    0);
	assert_int_equal(metrics_gauge(m, "g", "h", NULL, NULL, &g), 0);
	assert_int_equal(metrics_histogram(m, "h", "h", NULL, NULL, NULL, 0,
	    &h), 0);
	assert_int_equal(metrics_counter(m, "l_total", "h", "k", NULL, &l),
	    0);
	assert_int_equal(metrics_add(c, NULL, NULL, -1), ERR_INVAL);
	assert_int_equal(metrics_add(c, NULL, NULL, NAN), ERR_INVAL);
	assert_int_equal(metrics_set(c, NULL, NULL, 1), ERR_INVAL);
	assert_int_equal(metrics_observe(c, NULL, NULL, 1), ERR_INVAL);
	assert_int_equal(metrics_add(h, NULL, NULL, 1), ERR_INVAL);
	assert_int_equal(metrics_observe(g, NULL, NULL, 1), ERR_INVAL);
	assert_int_equal(metrics_add(g, NULL, NULL, -1), 0);
	assert_int_equal(metrics_add(c, "x", NULL, 1), ERR_INVAL);
	assert_int_equal(metrics_add(l, NULL, NULL, 1), ERR_INVAL);
	assert_int_equal(metrics_add(l, "a", "b", 1), ERR_INVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(metrics_add(l, big, NULL, 1), ERR_TOOBIG);
	big[METRICS_MAX_VALUE_LEN] = '\0';
	assert_int_equal(metrics_add(l, big, NULL, 1), 0);
	/* Series cap: one already exists. */
	for (i = 1; i < METRICS_MAX_SERIES; i++) {
		(void)snprintf(val, sizeof(val), "v%d", i);
		assert_int_equal(metrics_add(l, val, NULL, 1), 0);
	}
	assert_int_equal(metrics_add(l, "one-more", NULL, 1), ERR_TOOBIG);
	assert_int_equal(metrics_add(l, "v1", NULL, 1), 0); /* existing ok */
	metrics_free(&m);
}

/* HTTP ------------------------------------------------------------------ */

/* Sends req to 127.0.0.1:port and reads the whole response into out. */
static void
http_fetch(int port, const char *req, struct buf *out)
{
	struct sockaddr_in sin;
	char chunk[4096];
	ssize_t n;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	buf_reset(out);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		assert_int_equal(buf_add(out, chunk, (size_t)n), 0);
	}
	assert_int_equal(n, 0);
	close(fd);
}

struct hammer {
	struct metrics_family *fams[3];
	atomic_int stop;
	long n;
	atomic_int started; /* set after the first update */
};

static void *
hammer_main(void *arg)
{
	struct hammer *hm = arg;

	while (!atomic_load(&hm->stop)) {
		(void)metrics_add(hm->fams[0], "sync", "done", 1);
		(void)metrics_observe(hm->fams[1], "drain", NULL, 0.2);
		(void)metrics_set(hm->fams[2], NULL, NULL, (double)hm->n);
		hm->n++;
		atomic_store(&hm->started, 1);
	}
	return (NULL);
}

static void
test_http(void **state)
{
	struct hammer hm = { 0 };
	struct metrics *m = build_registry(hm.fams);
	struct metrics_http *h = NULL;
	char err[256];
	struct buf resp;
	pthread_t th;
	const char *body;
	int port, i;

	(void)state;
	static const char *bad[] = { "", "127.0.0.1", "127.0.0.1:x",
		"127.0.0.1:70000", ":80", "[::1:80", "a/b:80" };
	for (i = 0; i < (int)ARRAY_LEN(bad); i++) {
		assert_int_equal(metrics_http_start(m, bad[i], &h, err,
		    sizeof(err)), ERR_INVAL);
		assert_non_null(strstr(err, "HOST:PORT"));
	}
	assert_int_equal(metrics_http_start(m, "127.0.0.1:0", &h, err,
	    sizeof(err)), 0);
	port = metrics_http_port(h);
	assert_true(port > 0);

	buf_init(&resp, 1 << 22);
	http_fetch(port, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n", &resp);
	assert_true(strncmp(resp.data, "HTTP/1.1 200", 12) == 0 ||
	    strncmp(resp.data, "HTTP/1.0 200", 12) == 0);
	assert_non_null(strcasestr(resp.data,
	    "\r\nContent-Type: " METRICS_CONTENT_TYPE "\r\n"));
	body = strstr(resp.data, "\r\n\r\n");
	assert_non_null(body);
	assert_string_equal(body + 4, expected_text);

	http_fetch(port, "GET /nope HTTP/1.0\r\n\r\n", &resp);
	assert_non_null(strstr(resp.data, " 404 "));
	http_fetch(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
	    &resp);
	assert_null(strstr(resp.data, " 200 "));

	/* Renders while another thread updates (run under TSan/ASan). */
	assert_int_equal(pthread_create(&th, NULL, hammer_main, &hm), 0);
	for (i = 0; i < 20; i++) {
		http_fetch(port, "GET /metrics HTTP/1.0\r\n\r\n", &resp);
		assert_non_null(strstr(resp.data, "test_in_flight "));
	}
	/* On a loaded machine the updater may not have run yet. */
	while (!atomic_load(&hm.started)) {
		sched_yield();
	}
	atomic_store(&hm.stop, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(hm.n > 0);

	metrics_http_stop(&h);
	assert_null(h);
	metrics_http_stop(&h);
	buf_release(&resp);
	metrics_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_exact),
		cmocka_unit_test(test_promtool),
		cmocka_unit_test(test_default_buckets),
		cmocka_unit_test(test_bad_registration),
		cmocka_unit_test(test_bad_updates),
		cmocka_unit_test(test_http),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
