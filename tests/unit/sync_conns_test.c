/*
 * sync_conns_test.c: the connections a worker keeps between jobs
 * (pkg/sync/conns.c), with counted fake connections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sync/sync_int.h"

struct fake {
	int id;
	int *freed; /* incremented by fake_free */
};

static void
fake_free(void *conn)
{
	struct fake *f = conn;

	(*f->freed)++;
}

static void
job_init(struct proto_job_run *j, uint64_t account, const char *pass)
{
	memset(j, 0, sizeof(*j));
	j->account_id = account;
	j->protocol = proto_str_c("jmap");
	j->server = proto_str_c("https://mail.example/.well-known/jmap");
	j->username = proto_str_c("alice");
	j->password = proto_str_c(pass);
}

static void
test_reuse_same_account(void **state)
{
	struct sync_conns *c = NULL;
	struct proto_job_run j;
	int freed = 0;
	struct fake a = { 1, &freed };

	(void)state;
	assert_int_equal(sync_conns_new(4, 60000, &c), 0);
	job_init(&j, 7, "pw");
	sync_conns_put(c, SYNC_CONN_JMAP, &j, &a, fake_free, 1000);
	assert_int_equal(sync_conns_count(c), 1);
	j.job_id = 99; /* another job of the same account */
	assert_ptr_equal(sync_conns_take(c, SYNC_CONN_JMAP, &j), &a);
	assert_int_equal(sync_conns_count(c), 0);
	assert_null(sync_conns_take(c, SYNC_CONN_JMAP, &j));
	assert_int_equal(freed, 0);
	sync_conns_free(&c);
	assert_null(c);
}

/* Any setting that decides the connection makes a kept one unusable. */
static void
test_changed_settings_close(void **state)
{
	static const char *const fields[] = { "password", "server", "username",
		"auth", "ca", "plaintext", "protocol" };
	struct sync_conns *c = NULL;
	struct proto_job_run j, k;
	int freed = 0;
	struct fake a = { 1, &freed };
	size_t i;

	(void)state;
	assert_int_equal(sync_conns_new(4, 60000, &c), 0);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		job_init(&j, 7, "pw");
		sync_conns_put(c, SYNC_CONN_JMAP, &j, &a, fake_free, 1000);
		k = j;
		switch (i) {
		case 0:
			k.password = proto_str_c("new");
			break;
		case 1:
			k.server = proto_str_c("https://other/");
			break;
		case 2:
			k.username = proto_str_c("bob");
			break;
		case 3:
			k.auth = proto_str_c("oauth2");
			break;
		case 4:
			k.tls_ca_pem = proto_str_c("-----BEGIN");
			break;
		case 5:
			k.plaintext = true;
			break;
		default:
			k.protocol = proto_str_c("imap");
			break;
		}
		assert_null(sync_conns_take(c, SYNC_CONN_JMAP, &k));
		assert_int_equal((int)freed, (int)i + 1);
		assert_int_equal(sync_conns_count(c), 0);
	}
	/* a nil password differs from an empty one */
	job_init(&j, 7, "");
	sync_conns_put(c, SYNC_CONN_JMAP, &j, &a, fake_free, 1000);
	k = j;
	k.password.p = NULL;
	assert_null(sync_conns_take(c, SYNC_CONN_JMAP, &k));
	sync_conns_free(&c);
}

static void
test_bound_and_lru(void **state)
{
	struct sync_conns *c = NULL;
	struct proto_job_run j;
	int freed = 0;
	struct fake a = { 1, &freed }, b = { 2, &freed }, d = { 3, &freed };

	(void)state;
	assert_int_equal(sync_conns_new(2, 60000, &c), 0);
	job_init(&j, 1, "pw");
	sync_conns_put(c, SYNC_CONN_JMAP, &j, &a, fake_free, 1000);
	job_init(&j, 2, "pw");
	sync_conns_put(c, SYNC_CONN_JMAP, &j, &b, fake_free, 2000);
	job_init(&j, 3, "pw");
	sync_conns_put(c, SYNC_CONN_JMAP, &j, &d, fake_free, 3000);
	assert_int_equal(sync_conns_count(c), 2);
	assert_int_equal(freed, 1); /* account 1, the least recently used */
	job_init(&j, 1, "pw");
	assert_null(sync_conns_take(c, SYNC_CONN_JMAP, &j));
	job_init(&j, 2, "pw");
	assert_ptr_equal(sync_conns_take(c, SYNC_CONN_JMAP, &j), &b);
	/* a second connection of one account replaces the first */
	job_init(&j, 3, "pw");
	sync_conns_put(c, SYNC_CONN_JMAP, &j, &a, fake_free, 4000);
	assert_int_equal(sync_conns_count(c), 1);
	assert_int_equal(freed, 2);
	sync_conns_free(&c);
	assert_int_equal(freed, 3);
}

static void
test_idle_expiry(void **state)
{
	struct sync_conns *c = NULL;
	struct proto_job_run j;
	int freed = 0;
	struct fake a = { 1, &freed }, b = { 2, &freed };

	(void)state;
	assert_int_equal(sync_conns_new(4, 60000, &c), 0);
	job_init(&j, 1, "pw");
	sync_conns_put(c, SYNC_CONN_JMAP, &j, &a, fake_free, 1000);
	job_init(&j, 2, "pw");
	sync_conns_put(c, SYNC_CONN_JMAP, &j, &b, fake_free, 30000);
	sync_conns_expire(c, 60999);
	assert_int_equal(sync_conns_count(c), 2);
	sync_conns_expire(c, 61000);
	assert_int_equal(sync_conns_count(c), 1);
	assert_int_equal(freed, 1);
	sync_conns_expire(c, 10); /* the clock went back: close, to be safe */
	assert_int_equal(sync_conns_count(c), 0);
	sync_conns_free(&c);
	assert_int_equal(freed, 2);
}

static void
test_keep_none(void **state)
{
	struct sync_conns *c = NULL;
	struct proto_job_run j;
	int freed = 0;
	struct fake a = { 1, &freed };

	(void)state;
	job_init(&j, 1, "pw");
	assert_int_equal(sync_conns_new(0, 60000, &c), 0);
	sync_conns_put(c, SYNC_CONN_JMAP, &j, &a, fake_free, 1000);
	assert_int_equal(freed, 1);
	assert_null(sync_conns_take(c, SYNC_CONN_JMAP, &j));
	sync_conns_free(&c);
	/* no cache at all */
	sync_conns_put(NULL, SYNC_CONN_JMAP, &j, &a, fake_free, 1000);
	assert_int_equal(freed, 2);
	assert_null(sync_conns_take(NULL, SYNC_CONN_JMAP, &j));
	sync_conns_expire(NULL, 0);
	assert_int_equal(sync_conns_count(NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reuse_same_account),
		cmocka_unit_test(test_changed_settings_close),
		cmocka_unit_test(test_bound_and_lru),
		cmocka_unit_test(test_idle_expiry),
		cmocka_unit_test(test_keep_none),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
