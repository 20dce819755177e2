/*
 * store_test.c: unit tests for pkg/store's schema, accounts and job
 * lifecycle up to the lease (migrations, version refusal, account
 * add/list/remove with cascade, submit coalescing and the partial unique
 * indexes, lease rules, retry/dead transitions, status and scheduler
 * state). Batch and done handling are in store_apply_test.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_fixture.h"

/* Schema --------------------------------------------------------------- */

static void
test_schema_fresh_and_reopen(void **state)
{
	struct fx *f = *state;
	int v = -1;

	assert_int_equal(store_schema_version(f->st, &v), 0);
	assert_int_equal(v, STORE_SCHEMA_VERSION);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sqlite_master WHERE "
	                     "type = 'table' AND name IN ('accounts',"
	                     "'mailboxes','messages','jobs','job_batches',"
	                     "'sync_log')"),
	    6);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sqlite_master WHERE "
	                     "name IN ('jobs_one_queued','jobs_one_leased',"
	                     "'messages_account_msgid')"),
	    3);
	fx_account(f, "a");
	store_free(&f->st);
	fx_open(f); /* re-open: no migration runs twice, data is kept */
	assert_int_equal(store_schema_version(f->st, &v), 0);
	assert_int_equal(v, STORE_SCHEMA_VERSION);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM accounts"), 1);
	char mode[16];
	assert_string_equal(
	    fx_qs(f, mode, sizeof(mode), "PRAGMA journal_mode"), "wal");
}

static void
test_schema_newer_refused(void **state)
{
	struct fx *f = *state;
	struct store *st = NULL;
	char err[256] = "";
	int rv;

	store_free(&f->st);
	assert_int_equal(fx_exec(f, "PRAGMA user_version = 99"), SQLITE_OK);
	rv = store_open(f->path, f->key, NULL, &st, err, sizeof(err));
	assert_int_equal(rv, ERR_VERSION);
	assert_null(st);
	assert_non_null(strstr(err, "version 99 is newer"));
	/* untouched: still 99, tables intact */
	assert_int_equal(fx_q(f, "PRAGMA user_version"), 99);
	assert_int_equal(fx_exec(f, "PRAGMA user_version = "
				    "5" /* STORE_SCHEMA_VERSION */),
	    SQLITE_OK);
	fx_open(f);
}

static void
test_open_bad_path(void **state)
{
	struct fx *f = *state;
	struct store *st = NULL;
	char err[256] = "";

	assert_int_not_equal(store_open("/nonexistent/dir/x.db", f->key, NULL,
	                         &st, err, sizeof(err)),
	    0);
	assert_null(st);
	assert_non_null(strstr(err, "/nonexistent/dir/x.db"));
}

/* Accounts ------------------------------------------------------------- */

static void
test_account_add_list_remove(void **state)
{
	struct fx *f = *state;
	struct proto_name nm = { S("work") };
	struct store_out *o;
	uint64_t id, id2;
	char buf[64];

	id = fx_account(f, "work");
	assert_true(id > 0);
	o = &f->out;
	assert_int_equal(o->nevents, 2);
	assert_int_equal(o->events[0].kind, EV_ACCOUNT_CHANGED);
	assert_int_equal(o->events[0].account_id, id);
	assert_int_equal(o->events[0].interval_s, STORE_DEFAULT_INTERVAL_S);
	assert_int_equal(o->events[1].kind, EV_JOB_QUEUED);
	assert_int_equal(o->events[1].priority, PRIO_USER);
	assert_int_equal(o->events[1].due_at, T0);
	/* first job: queued, USER, due now */
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM jobs WHERE state = "
	                     "'queued' AND priority = 1 AND due_at = %lld",
	                     T0),
	    1);
	/* the password is sealed, never stored in clear */
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT substr(secret, 1, 3) FROM accounts"),
	    "MS1");
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM accounts WHERE "
	                     "instr(secret, 'pw') > 0"),
	    0);

	/* duplicate name */
	struct proto_account_add dup = { .name = S("work"),
		.protocol = S("imap"),
		.server = S("imap://h"),
		.username = S("u"),
		.password = S("p") };
	assert_int_equal(
	    store_account_add(f->st, &dup, T0, fx_out(f)), ERR_EXISTS);
	assert_fail(f, ERR_EXISTS, "account 'work' already exists");
	assert_int_equal(f->out.nevents, 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM jobs"), 1);

	id2 = fx_account(f, "home");
	assert_int_equal(store_account_list(f->st, fx_out(f)), 0);
	assert_int_equal(f->out.reply.naccounts, 2);
	assert_int_equal(f->out.reply.accounts[0].id, id2); /* by name */
	assert_true(proto_str_eq(f->out.reply.accounts[1].name, "work"));
	assert_true(proto_str_eq(
	    f->out.reply.accounts[1].server, "imaps://mail.example.org:993"));
	assert_int_equal(f->out.reply.accounts[1].interval_s, 300);
	assert_int_equal(f->out.reply.accounts[1].messages, 0);

	/* cascade: rows under the account go with it */
	assert_int_equal(
	    fx_exec(f,
	        "INSERT INTO mailboxes(account_id, name) "
	        "VALUES (1, 'INBOX');"
	        "INSERT INTO messages(account_id, mailbox_id, uid)"
	        " VALUES (1, 1, 7);"),
	    SQLITE_OK);
	assert_int_equal(store_account_list(f->st, fx_out(f)), 0);
	assert_int_equal(f->out.reply.accounts[1].mailboxes, 1);
	assert_int_equal(f->out.reply.accounts[1].messages, 1);
	assert_int_equal(store_account_remove(f->st, &nm, T0, fx_out(f)), 0);
	assert_int_equal(f->out.reply.id, id);
	assert_int_equal(f->out.nevents, 1);
	assert_int_equal(f->out.events[0].kind, EV_ACCOUNT_CHANGED);
	assert_true(f->out.events[0].removed);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM mailboxes"), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 0);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM jobs WHERE "
	                     "account_id = %llu",
	                     (unsigned long long)id),
	    0);
	assert_int_equal(
	    store_account_remove(f->st, &nm, T0, fx_out(f)), ERR_NOTFOUND);
	assert_fail(f, ERR_NOTFOUND, "no account named 'work'");
}

static void
test_account_add_invalid(void **state)
{
	struct fx *f = *state;
	const struct {
		struct proto_account_add a;
		int code;
		const char *sub;
	} cases[] = {
		{ { .name = { "", 0 },
		      .protocol = S("imap"),
		      .server = S("imap://h"),
		      .username = S("u"),
		      .password = S("p") },
		    ERR_INVAL, "account name must not be empty" },
		{ { .name = S("a\tb"),
		      .protocol = S("imap"),
		      .server = S("imap://h"),
		      .username = S("u"),
		      .password = S("p") },
		    ERR_INVAL, "control character" },
		{ { .name = S("a\xff"),
		      .protocol = S("imap"),
		      .server = S("imap://h"),
		      .username = S("u"),
		      .password = S("p") },
		    ERR_INVAL, "not valid UTF-8" },
		{ { .name = S("a"),
		      .protocol = S("pop3"),
		      .server = S("imap://h"),
		      .username = S("u"),
		      .password = S("p") },
		    ERR_INVAL, "protocol 'pop3' is not" },
		{ { .name = S("a"),
		      .protocol = S("imap"),
		      .server = S("mail.example.org"),
		      .username = S("u"),
		      .password = S("p") },
		    ERR_INVAL, "must be an imap:// or imaps:// URL" },
		{ { .name = S("a"),
		      .protocol = S("imap"),
		      .server = S("imap://h"),
		      .username = { NULL, 0 },
		      .password = S("p") },
		    ERR_INVAL, "username must not be empty" },
		{ { .name = S("a"),
		      .protocol = S("imap"),
		      .server = S("imap://h"),
		      .username = S("u"),
		      .password = { NULL, 0 } },
		    ERR_INVAL, "password must not be empty" },
		{ { .name = S("a"),
		      .protocol = S("imap"),
		      .server = S("imap://h"),
		      .username = S("u"),
		      .password = S("p\0q") },
		    ERR_INVAL, "password contains a NUL" },
		{ { .name = S("a"),
		      .protocol = S("imap"),
		      .server = S("imap://h"),
		      .username = S("u"),
		      .password = S("p"),
		      .tls_ca_pem = S("hello") },
		    ERR_INVAL, "tls_ca_pem is not PEM" },
		{ { .name = S("a"),
		      .protocol = S("imap"),
		      .server = S("imap://h"),
		      .username = S("u"),
		      .password = S("p"),
		      .interval_s = 99999999 },
		    ERR_INVAL, "interval" },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		int rv = store_account_add(f->st, &cases[i].a, T0, fx_out(f));

		if (rv != cases[i].code) {
			fail_msg(
			    "case %zu: got %d (%s)", i, rv, f->out.errtext);
		}
		assert_fail(f, cases[i].code, cases[i].sub);
		/* the password is never echoed */
		assert_null(strstr(f->out.errtext, "pw"));
	}
	assert_int_equal(fx_q(f, "SELECT count(*) FROM accounts"), 0);
}

/* Jobs ------------------------------------------------------------------ */

static void
test_job_submit_coalesce(void **state)
{
	struct fx *f = *state;
	uint64_t acct, j1;
	struct proto_job_submit js = { .account = S("a"), .kind = JOB_KIND_SYNC };
	struct proto_job_submit bad = { .account = S("zz"), .kind = JOB_KIND_SYNC };
	struct proto_job_create jc;

	acct = fx_account(f, "a");
	j1 = fx_queued(f, acct);
	assert_true(j1 > 0);
	/* a user request joins the queued job */
	assert_int_equal(store_job_submit(f->st, &js, T0 + 10, fx_out(f)), 0);
	assert_int_equal(f->out.reply.id, j1);
	assert_int_equal(f->out.nevents, 1);
	assert_int_equal(f->out.events[0].kind, EV_JOB_QUEUED);
	assert_int_equal(f->out.events[0].job_id, j1);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM jobs"), 1);
	/* a periodic job too, and it lowers neither priority nor due */
	jc = (struct proto_job_create) { acct, JOB_KIND_SYNC, PRIO_PERIODIC,
		T0 + 99999 };
	assert_int_equal(store_job_create(f->st, &jc, T0 + 20, fx_out(f)), 0);
	assert_int_equal(f->out.reply.id, j1);
	assert_int_equal(fx_q(f, "SELECT priority FROM jobs"), PRIO_USER);
	assert_int_equal(fx_q(f, "SELECT due_at FROM jobs"), T0);
	/* another kind is another job */
	jc.kind = JOB_KIND_DRAIN;
	assert_int_equal(store_job_create(f->st, &jc, T0 + 20, fx_out(f)), 0);
	assert_int_not_equal(f->out.reply.id, j1);
	assert_int_equal(fx_q(f,
	                     "SELECT priority FROM jobs WHERE kind = "
	                     "'drain'"),
	    PRIO_PERIODIC);
	/* unknown account / kind / priority */
	assert_int_equal(
	    store_job_submit(f->st, &bad, T0, fx_out(f)), ERR_NOTFOUND);
	assert_fail(f, ERR_NOTFOUND, "no account named 'zz'");
	js.kind = 7;
	assert_int_equal(
	    store_job_submit(f->st, &js, T0, fx_out(f)), ERR_INVAL);
	assert_fail(f, ERR_INVAL, "unknown job kind 7");
	jc = (struct proto_job_create) { 999, JOB_KIND_SYNC, PRIO_PERIODIC,
		T0 };
	assert_int_equal(
	    store_job_create(f->st, &jc, T0, fx_out(f)), ERR_NOTFOUND);
	assert_fail(f, ERR_NOTFOUND, "no account with id 999");
	jc = (struct proto_job_create) { acct, JOB_KIND_SYNC, 9, T0 };
	assert_int_equal(
	    store_job_create(f->st, &jc, T0, fx_out(f)), ERR_INVAL);

	/* the partial unique indexes hold even against raw SQL */
	assert_int_equal(fx_exec(f,
	                     "INSERT INTO jobs(account_id, kind, state, "
	                     "priority, max_attempts, created_at, due_at) "
	                     "VALUES (1, 'sync', 'queued', 0, 5, 0, 0)")
	        & 0xff,
	    SQLITE_CONSTRAINT);
	assert_int_equal(fx_exec(f,
	                     "INSERT INTO jobs(account_id, kind, state, "
	                     "priority, max_attempts, created_at, due_at) "
	                     "VALUES (1, 'sync', 'leased', 0, 5, 0, 0),"
	                     " (1, 'drain', 'leased', 0, 5, 0, 0)")
	        & 0xff,
	    SQLITE_CONSTRAINT);
	assert_int_equal(fx_exec(f,
	                     "INSERT INTO jobs(account_id, kind, state, "
	                     "priority, max_attempts, created_at, due_at) "
	                     "VALUES (1, 'sync', 'done', 0, 5, 0, 0),"
	                     " (1, 'sync', 'done', 0, 5, 0, 0)"),
	    SQLITE_OK);
}

static void
test_submit_while_leased(void **state)
{
	struct fx *f = *state;
	struct proto_job_submit js = { .account = S("a"), .kind = JOB_KIND_SYNC };
	struct proto_job_create jc;
	uint64_t acct, j1;

	acct = fx_account(f, "a");
	j1 = fx_queued(f, acct);
	fx_lease(f, j1, T0);
	/* the leased job does not absorb new requests: a new one queues */
	jc = (struct proto_job_create) { acct, JOB_KIND_SYNC, PRIO_PERIODIC,
		T0 + 5000 };
	assert_int_equal(store_job_create(f->st, &jc, T0, fx_out(f)), 0);
	assert_int_not_equal(f->out.reply.id, j1);
	assert_int_equal(f->out.events[0].priority, PRIO_PERIODIC);
	assert_int_equal(f->out.events[0].due_at, T0 + 5000);
	/* and a user request raises it to USER, due now */
	assert_int_equal(store_job_submit(f->st, &js, T0 + 100, fx_out(f)), 0);
	assert_int_equal(f->out.events[0].priority, PRIO_USER);
	assert_int_equal(f->out.events[0].due_at, T0 + 100);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM jobs"), 2);
}

static void
test_lease_rules(void **state)
{
	struct fx *f = *state;
	struct proto_job_lease jl;
	struct proto_job_create jc;
	struct proto_job_run *run;
	uint64_t acct, j1, j2;

	acct = fx_account(f, "a");
	j1 = fx_queued(f, acct);
	assert_int_equal(fx_lease(f, j1, T0), 1);
	run = f->out.reply.job_run;
	assert_int_equal(f->out.reply.id, j1);
	assert_int_equal(run->job_id, j1);
	assert_int_equal(run->account_id, acct);
	assert_int_equal(run->kind, JOB_KIND_SYNC);
	assert_int_equal(run->lease_until, T0 + LEASE);
	assert_true(proto_str_eq(run->account, "a"));
	assert_true(proto_str_eq(run->protocol, "imap"));
	assert_true(proto_str_eq(run->username, "alice"));
	assert_true(proto_str_eq(run->password, "pw"));
	assert_null(run->tls_ca_pem.p);
	assert_int_equal(run->ncheckpoints, 0);
	assert_int_equal(fx_q(f, "SELECT attempts FROM jobs WHERE id = %llu",
	                     (unsigned long long)j1),
	    1);
	assert_int_equal(fx_q(f, "SELECT leased_at FROM jobs"), T0);

	/* not queued any more */
	jl = (struct proto_job_lease) { j1, T0 + LEASE };
	assert_int_equal(
	    store_job_lease(f->st, &jl, T0, fx_out(f)), ERR_BADSTATE);
	assert_fail(f, ERR_BADSTATE, "is leased, not queued");
	assert_null(f->out.reply.job_run);
	/* one leased job per account, whatever its kind */
	jc = (struct proto_job_create) { acct, JOB_KIND_DRAIN, PRIO_USER, T0 };
	assert_int_equal(store_job_create(f->st, &jc, T0, fx_out(f)), 0);
	j2 = f->out.reply.id;
	jl = (struct proto_job_lease) { j2, T0 + LEASE };
	assert_int_equal(
	    store_job_lease(f->st, &jl, T0, fx_out(f)), ERR_BADSTATE);
	assert_fail(f, ERR_BADSTATE, "already has leased job");
	assert_int_equal(fx_q(f, "SELECT attempts FROM jobs WHERE id = %llu",
	                     (unsigned long long)j2),
	    0);
	/* missing job, bad lease times */
	jl = (struct proto_job_lease) { 12345, T0 + LEASE };
	assert_int_equal(
	    store_job_lease(f->st, &jl, T0, fx_out(f)), ERR_NOTFOUND);
	jl = (struct proto_job_lease) { j2, T0 - 1 };
	assert_int_equal(
	    store_job_lease(f->st, &jl, T0, fx_out(f)), ERR_INVAL);
	assert_fail(f, ERR_INVAL, "lease_until");
}

static void
test_lease_wrong_key(void **state)
{
	struct fx *f = *state;
	struct proto_job_lease jl;
	uint64_t acct, j1;

	acct = fx_account(f, "a");
	j1 = fx_queued(f, acct);
	store_free(&f->st);
	f->key[0] ^= 1; /* a different key file */
	fx_open(f);
	jl = (struct proto_job_lease) { j1, T0 + LEASE };
	assert_int_equal(
	    store_job_lease(f->st, &jl, T0, fx_out(f)), ERR_CRYPTO);
	assert_fail(f, ERR_CRYPTO, "cannot open the stored password");
	assert_null(f->out.reply.job_run);
	/* failed for good, not left queued to be leased again */
	assert_int_equal(fx_q(f, "SELECT state = 'failed' FROM jobs"), 1);
	assert_int_equal(fx_q(f, "SELECT fail_streak FROM accounts"), 1);
	assert_int_equal(f->out.nevents, 1);
	assert_int_equal(f->out.events[0].kind, EV_JOB_FINISHED);
	assert_int_equal(f->out.events[0].state, JOB_FAILED);
}

static void
test_retry_transitions(void **state)
{
	struct fx *f = *state;
	struct proto_job_retry jr;
	uint64_t acct, j1;
	char buf[128];

	acct = fx_account(f, "a");
	j1 = fx_queued(f, acct);
	fx_lease(f, j1, T0);
	/* wrong attempt: fenced */
	jr = (struct proto_job_retry) { j1, 2, JOB_QUEUED, T0 + LEASE + 5000,
		S("lease expired") };
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + 1, fx_out(f)), ERR_STALE);
	assert_fail(f, ERR_STALE, "attempt 2 is stale (current attempt 1)");
	/* bad target state */
	jr.attempt = 1;
	jr.state = JOB_DONE;
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + 1, fx_out(f)), ERR_INVAL);
	jr.state = JOB_QUEUED;
	/* requeue with the scheduler's due time; no batch was applied, so
	 * an early give-back (no worker took the job) is accepted */
	assert_int_equal(store_job_retry(f->st, &jr, T0 + 10, fx_out(f)), 0);
	assert_int_equal(f->out.nevents, 1);
	assert_int_equal(f->out.events[0].kind, EV_JOB_QUEUED);
	assert_int_equal(f->out.events[0].due_at, T0 + LEASE + 5000);
	assert_int_equal(fx_q(f,
	                     "SELECT due_at FROM jobs WHERE state = "
	                     "'queued'"),
	    T0 + LEASE + 5000);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf), "SELECT last_error FROM jobs"),
	    "lease expired");
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sync_log WHERE "
	                     "outcome = 'retry'"),
	    1);
	assert_int_equal(fx_q(f, "SELECT fail_streak FROM accounts"), 0);
	/* the same retry again is stale (job no longer leased) */
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + 2, fx_out(f)), ERR_STALE);
	assert_fail(f, ERR_STALE, "is queued, not leased");
	/* second attempt expires for good */
	assert_int_equal(fx_lease(f, j1, T0 + LEASE + 6000), 2);
	jr = (struct proto_job_retry) { j1, 2, JOB_DEAD, 0,
		S("lease expired twice") };
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + 2 * LEASE + 6000, fx_out(f)), 0);
	assert_int_equal(f->out.events[0].kind, EV_JOB_FINISHED);
	assert_int_equal(f->out.events[0].state, JOB_DEAD);
	assert_int_equal(fx_q(f,
	                     "SELECT finished_at FROM jobs WHERE "
	                     "state = 'dead'"),
	    T0 + 2 * LEASE + 6000);
	assert_int_equal(fx_q(f, "SELECT fail_streak FROM accounts"), 1);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf), "SELECT last_error FROM accounts"),
	    "lease expired twice");
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sync_log WHERE "
	                     "outcome = 'dead'"),
	    1);
}

static void
test_retry_joins_queued(void **state)
{
	struct fx *f = *state;
	struct proto_job_retry jr;
	struct proto_job_submit js = { .account = S("a"), .kind = JOB_KIND_SYNC };
	uint64_t acct, j1, j2;

	acct = fx_account(f, "a");
	j1 = fx_queued(f, acct);
	fx_lease(f, j1, T0);
	assert_int_equal(store_job_submit(f->st, &js, T0, fx_out(f)), 0);
	j2 = f->out.reply.id;
	/* the requeue of j1 would break "one queued per (account, kind)" */
	jr = (struct proto_job_retry) { j1, 1, JOB_QUEUED, T0 + 5000,
		S("lease expired") };
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + LEASE, fx_out(f)), 0);
	assert_int_equal(f->out.events[0].kind, EV_JOB_FINISHED);
	assert_int_equal(f->out.events[0].state, JOB_FAILED);
	assert_int_equal(fx_q(f,
	                     "SELECT state = 'failed' FROM jobs WHERE "
	                     "id = %llu",
	                     (unsigned long long)j1),
	    1);
	assert_int_equal(fx_q(f,
	                     "SELECT state = 'queued' FROM jobs WHERE "
	                     "id = %llu",
	                     (unsigned long long)j2),
	    1);
	assert_int_equal(fx_q(f, "SELECT fail_streak FROM accounts"), 0);
}

static void
test_job_status_and_sched_state(void **state)
{
	struct fx *f = *state;
	struct proto_job_status q;
	uint64_t a1, a2, j1, j2;

	a1 = fx_account(f, "a");
	a2 = fx_account(f, "b");
	j1 = fx_queued(f, a1);
	j2 = fx_queued(f, a2);
	fx_lease(f, j1, T0);

	q = (struct proto_job_status) { j1, 0 };
	assert_int_equal(store_job_status(f->st, &q, fx_out(f)), 0);
	assert_int_equal(f->out.reply.njobs, 1);
	assert_int_equal(f->out.reply.jobs[0].id, j1);
	assert_int_equal(f->out.reply.jobs[0].state, JOB_LEASED);
	assert_int_equal(f->out.reply.jobs[0].attempts, 1);
	assert_int_equal(f->out.reply.jobs[0].lease_until, T0 + LEASE);
	assert_true(proto_str_eq(f->out.reply.jobs[0].account, "a"));
	q = (struct proto_job_status) { 4242, 0 };
	assert_int_equal(store_job_status(f->st, &q, fx_out(f)), ERR_NOTFOUND);
	assert_fail(f, ERR_NOTFOUND, "no job 4242");
	q = (struct proto_job_status) { 0, 1 };
	assert_int_equal(store_job_status(f->st, &q, fx_out(f)), 0);
	assert_int_equal(f->out.reply.njobs, 1);
	assert_int_equal(f->out.reply.jobs[0].id, j2); /* most recent */
	q = (struct proto_job_status) { 0, 0 };
	assert_int_equal(store_job_status(f->st, &q, fx_out(f)), 0);
	assert_int_equal(f->out.reply.njobs, 2);

	assert_int_equal(fx_exec(f,
	                     "UPDATE accounts SET last_sync_at = 1234,"
	                     " fail_streak = 2 WHERE name = 'b'"),
	    SQLITE_OK);
	assert_int_equal(store_sched_state(f->st, fx_out(f)), 0);
	assert_int_equal(f->out.reply.nsched_accounts, 2);
	assert_int_equal(f->out.reply.sched_accounts[1].id, a2);
	assert_int_equal(f->out.reply.sched_accounts[1].last_sync_at, 1234000);
	assert_int_equal(f->out.reply.sched_accounts[1].fail_streak, 2);
	assert_int_equal(f->out.reply.sched_accounts[0].interval_s, 300);
	assert_int_equal(f->out.reply.njobs, 2);
	assert_int_equal(f->out.reply.jobs[0].state, JOB_LEASED);
	assert_int_equal(f->out.reply.jobs[1].state, JOB_QUEUED);
	assert_int_equal(f->out.reply.jobs[1].priority, PRIO_USER);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_schema_fresh_and_reopen, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_schema_newer_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_open_bad_path, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_account_add_list_remove, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_account_add_invalid, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_job_submit_coalesce, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_submit_while_leased, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_lease_rules, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_lease_wrong_key, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_retry_transitions, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_retry_joins_queued, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_job_status_and_sched_state, fx_setup, fx_teardown),
	};

	log_init("store_test", LOG_LVL_WARN);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
