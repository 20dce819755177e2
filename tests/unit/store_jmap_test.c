/*
 * store_jmap_test.c: JMAP rows in pkg/store (jmap.c): keyed by Email id,
 * one row per mailbox, idempotent, server-side moves keep messages.id,
 * renames by Mailbox id, destroyed Emails, attachments and bodies keyed
 * by Email id, the state strings carried from done to the next lease,
 * bad rows refused, a reset (cannotCalculateChanges) that keeps the
 * rows of active changes, and the Emails of ended changes read again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_fixture.h"

static struct proto_mailbox_row mbx[2] = {
	{ .name = { "Inbox", 5 },
	    .delimiter = { "/", 1 },
	    .role = { "inbox", 5 },
	    .remote_id = { "mI", 2 } },
	{ .name = { "Archive", 7 },
	    .delimiter = { "/", 1 },
	    .role = { "archive", 7 },
	    .remote_id = { "mA", 2 } },
};

static struct proto_message_row
email(const char *mailbox, const char *id, const char *in)
{
	struct proto_message_row r;

	memset(&r, 0, sizeof(r));
	r.mailbox = proto_str_c(mailbox);
	r.remote_id = proto_str_c(id);
	r.in_mailboxes = proto_str_c(in);
	r.full = true;
	r.subject = S("hello");
	r.message_id = S("<a@b>");
	r.flags = PROTO_FLAG_SEEN;
	r.keywords = S("$forwarded");
	return (r);
}

static uint64_t
jmap_job(struct fx *f)
{
	struct proto_account_add a = {
		.name = S("j"),
		.protocol = S("jmap"),
		.server = S("http://127.0.0.1:1/.well-known/jmap"),
		.username = S("alice"),
		.password = S("pw"),
		.plaintext = true,
	};
	uint64_t j;

	if (store_account_add(f->st, &a, T0, fx_out(f)) != 0) {
		fail_msg("account_add: %.*s", (int)f->out.reply.error.len,
		    f->out.reply.error.p);
	}
	j = fx_queued(f, f->out.reply.id);
	fx_lease(f, j, T0);
	assert_int_equal(f->out.reply.job_run->nstates, 0);
	return (j);
}

static int
apply(struct fx *f, uint64_t j, uint32_t seq, struct proto_message_row *m,
    size_t n)
{
	struct proto_batch b;

	memset(&b, 0, sizeof(b));
	b.job_id = j;
	b.attempt = 1;
	b.seq = seq;
	b.mailboxes = mbx;
	b.nmailboxes = 2;
	b.messages = m;
	b.nmessages = n;
	return (store_apply_batch(f->st, &b, T0 + seq, fx_out(f)));
}

static void
apply_ok(struct fx *f, uint64_t j, uint32_t seq, struct proto_message_row *m,
    size_t n)
{
	if (apply(f, j, seq, m, n) != 0) {
		fail_msg("batch %u: %.*s", seq, (int)f->out.reply.error.len,
		    f->out.reply.error.p);
	}
}

static int64_t
row_id(struct fx *f, const char *mailbox, const char *email_id)
{
	return (fx_q(f,
	    "SELECT m.id FROM messages m JOIN mailboxes x ON x.id ="
	    " m.mailbox_id WHERE x.name = '%s' AND m.remote_id = '%s'",
	    mailbox, email_id));
}

static void
test_jmap_rows_membership_and_moves(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[3] = { email("Inbox", "E1", "mI mA"),
		email("Archive", "E1", "mI mA"), email("Inbox", "E2", "mI") };
	int64_t e2;
	uint64_t j;

	j = jmap_job(f);
	apply_ok(f, j, 1, m, 3);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 3);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE uid IS NULL"
	                     " AND seen = 1 AND keywords = '$forwarded'"),
	    3);
	/* the same rows again (a new attempt): no duplicate */
	apply_ok(f, j, 2, m, 3);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 3);
	e2 = row_id(f, "Inbox", "E2");
	assert_true(e2 > 0);

	/* E1 leaves Inbox, E2 moves to Archive: E2 keeps its row id */
	m[0] = email("Archive", "E1", "mA");
	m[1] = email("Archive", "E2", "mA");
	apply_ok(f, j, 3, m, 2);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 2);
	assert_true(row_id(f, "Inbox", "E1") <= 0); /* no row */
	assert_int_equal(row_id(f, "Archive", "E2"), e2);
}

static void
test_jmap_rename_destroy_states(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[2]
	    = { email("Inbox", "E1", "mI"), email("Archive", "E2", "mA") };
	struct proto_expunge_row x;
	struct proto_sync_state st[2]
	    = { { S("Mailbox"), S("m7") }, { S("Email"), S("e9") } };
	struct proto_batch b;
	struct proto_done d;
	int64_t archive;
	uint64_t j, acct;

	j = jmap_job(f);
	apply_ok(f, j, 1, m, 2);
	archive = fx_q(f, "SELECT id FROM mailboxes WHERE remote_id = 'mA'");

	/* Archive renamed on the server: same Mailbox id, new name */
	mbx[1].name = S("Old mail");
	m[0] = email("Old mail", "E2", "mA");
	apply_ok(f, j, 2, m, 1);
	mbx[1].name = S("Archive");
	assert_int_equal(fx_q(f,
	                     "SELECT id FROM mailboxes WHERE name ="
	                     " 'Old mail'"),
	    archive);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM mailboxes"), 2);

	/* E2 destroyed */
	memset(&x, 0, sizeof(x));
	x.mailbox = S("*");
	x.kind = EXPUNGE_REMOTE;
	x.uids = S("E2 E404");
	memset(&b, 0, sizeof(b));
	b.job_id = j;
	b.attempt = 1;
	b.seq = 3;
	b.expunged = &x;
	b.nexpunged = 1;
	assert_int_equal(store_apply_batch(f->st, &b, T0 + 3, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 1);

	/* the state strings come back with the next lease */
	memset(&d, 0, sizeof(d));
	d.job_id = j;
	d.attempt = 1;
	d.nbatches = 3;
	d.states = st;
	d.nstates = 2;
	assert_int_equal(
	    store_apply_done(f->st, &d, T0 + 10, 1, fx_out(f)), 0);
	acct = (uint64_t)fx_q(f, "SELECT id FROM accounts WHERE name = 'j'");
	assert_int_equal(
	    fx_q(f, "SELECT count(*) FROM sync_state WHERE account_id = %llu",
	        (unsigned long long)acct),
	    2);
	{
		struct proto_job_submit js = { S("j"), JOB_KIND_SYNC, 0 };
		uint64_t j2;

		assert_int_equal(
		    store_job_submit(f->st, &js, T0 + 20, fx_out(f)), 0);
		j2 = f->out.reply.id;
		fx_lease(f, j2, T0 + 20);
		assert_int_equal(f->out.reply.job_run->nstates, 2);
		assert_true(
		    proto_str_eq(f->out.reply.job_run->states[0].state, "e9"));
		assert_true(
		    proto_str_eq(f->out.reply.job_run->states[1].state, "m7"));
	}
}

static void
test_jmap_bad_rows(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[1] = { email("Inbox", NULL, NULL) };
	uint64_t j;

	j = jmap_job(f);
	assert_int_not_equal(apply(f, j, 1, m, 1), 0);
	assert_fail(f, ERR_PROTO, "remote_id");
	m[0] = email("Inbox", "local:5", "mI");
	assert_int_not_equal(apply(f, j, 1, m, 1), 0);
	assert_fail(f, ERR_PROTO, "uid must be >= 1");
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 0);
}

/* Adds a change of account j; returns its id. */
static uint64_t
jchange(struct fx *f, uint8_t kind, int64_t row, uint32_t flags_add,
    const char *to)
{
	struct proto_change_add c;

	memset(&c, 0, sizeof(c));
	c.account = S("j");
	c.kind = kind;
	c.message_id = (uint64_t)row;
	c.flags_add = flags_add;
	c.mailbox = proto_str_c(to);
	if (store_change_add(f->st, &c, T0 + 5, fx_out(f)) != 0) {
		fail_msg("change_add: %s", f->out.errtext);
	}
	return (f->out.reply.id);
}

/*
 * cannotCalculateChanges: every mailbox is reset and listed again. The
 * rows that active changes hold (the moved row in its destination, a
 * flagged row, every row of an Email being moved) survive the reset
 * with their ids, and the listing that follows duplicates none of them
 * (the move's rows are skipped, the flagged row is updated in place with
 * the user's flag on top); only the other rows are new.
 */
static void
test_jmap_reset_keeps_rows_of_active_changes(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[5] = { email("Inbox", "E1", "mI"),
		email("Inbox", "E2", "mI"), email("Inbox", "E3", "mI mA"),
		email("Archive", "E3", "mI mA"), email("Inbox", "E4", "mI") };
	struct proto_mailbox_row reset[2];
	struct proto_batch b;
	int64_t e1, e2, e3i, e3a, e4;
	uint64_t j;

	j = jmap_job(f);
	apply_ok(f, j, 1, m, 5);
	e1 = row_id(f, "Inbox", "E1");
	e2 = row_id(f, "Inbox", "E2");
	e3i = row_id(f, "Inbox", "E3");
	e3a = row_id(f, "Archive", "E3");
	e4 = row_id(f, "Inbox", "E4");
	(void)jchange(f, CHANGE_MOVE, e1, 0, "Archive");
	(void)jchange(f, CHANGE_FLAG, e2, PROTO_FLAG_FLAGGED, NULL);
	/* E3's Inbox row cannot join Archive (E3 has a row there): it stays
	 * in Inbox; both rows of E3 are the move's */
	(void)jchange(f, CHANGE_MOVE, e3i, 0, "Archive");
	assert_int_equal(row_id(f, "Archive", "E1"), e1);
	assert_int_equal(
	    fx_q(f, "SELECT flagged FROM messages WHERE id = %lld",
	        (long long)e2),
	    1);

	/* the reset: both mailboxes, no message yet */
	memcpy(reset, mbx, sizeof(reset));
	reset[0].reset = reset[1].reset = true;
	memset(&b, 0, sizeof(b));
	b.job_id = j;
	b.attempt = 1;
	b.seq = 2;
	b.mailboxes = reset;
	b.nmailboxes = 2;
	assert_int_equal(store_apply_batch(f->st, &b, T0 + 10, fx_out(f)), 0);
	assert_int_equal(row_id(f, "Archive", "E1"), e1);
	assert_int_equal(row_id(f, "Inbox", "E2"), e2);
	assert_int_equal(row_id(f, "Inbox", "E3"), e3i);
	assert_int_equal(row_id(f, "Archive", "E3"), e3a);
	assert_true(e4 > 0);
	assert_true(row_id(f, "Inbox", "E4") <= 0); /* the server's: gone */
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 4);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM pending_changes WHERE"
	                     " message_id IS NULL"),
	    0);

	/* the listing: the server still has E1 in Inbox, E2 without the
	 * user's flag */
	apply_ok(f, j, 3, m, 5);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 5);
	assert_int_equal(
	    fx_q(f, "SELECT count(*) FROM messages WHERE remote_id = 'E1'"), 1);
	assert_int_equal(row_id(f, "Archive", "E1"), e1);
	assert_int_equal(row_id(f, "Inbox", "E2"), e2);
	assert_int_equal(
	    fx_q(f, "SELECT flagged + 2 * seen FROM messages WHERE id = %lld",
	        (long long)e2),
	    3);
	assert_int_equal(row_id(f, "Inbox", "E3"), e3i);
	assert_int_equal(row_id(f, "Archive", "E3"), e3a);
	assert_true(row_id(f, "Inbox", "E4") > 0);
}

/* Leases a new sync job of account j at now (its id in *j_r): its
 * "EmailRefresh" state into refresh ("" when absent), "Email" into email. */
static void
sync_lease(struct fx *f, int64_t now, uint64_t *j_r, char *refresh,
    char *email_state, size_t n)
{
	struct proto_job_submit js = { S("j"), JOB_KIND_SYNC, 0 };
	const struct proto_job_run *run;
	size_t i;

	refresh[0] = email_state[0] = '\0';
	assert_int_equal(store_job_submit(f->st, &js, now, fx_out(f)), 0);
	*j_r = f->out.reply.id;
	fx_lease(f, *j_r, now);
	run = f->out.reply.job_run;
	for (i = 0; i < run->nstates; i++) {
		const struct proto_sync_state *x = &run->states[i];

		if (proto_str_eq(x->resource, "EmailRefresh")) {
			snprintf(
			    refresh, n, "%.*s", (int)x->state.len, x->state.p);
		} else if (proto_str_eq(x->resource, "Email")) {
			snprintf(email_state, n, "%.*s", (int)x->state.len,
			    x->state.p);
		}
	}
}

/* Ends sync job j with the two state strings at now. */
static void
sync_done(struct fx *f, uint64_t j, uint32_t nbatches, int64_t now)
{
	struct proto_sync_state st[2]
	    = { { S("Mailbox"), S("m7") }, { S("Email"), S("e9") } };
	struct proto_done d;

	memset(&d, 0, sizeof(d));
	d.job_id = j;
	d.attempt = 1;
	d.nbatches = nbatches;
	d.states = st;
	d.nstates = 2;
	assert_int_equal(store_apply_done(f->st, &d, now, 1, fx_out(f)), 0);
}

/*
 * A flag or move change on an Email that ends dead or cancelled leaves
 * no trace the server's /changes would show: the next sync's lease names
 * the Email in "EmailRefresh" (once: a stored Email state after it ends
 * the request), so its rows follow the server.
 */
static void
test_jmap_refresh_after_a_change_ends(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[3] = { email("Inbox", "E1", "mI"),
		email("Inbox", "E2", "mI"), email("Inbox", "E3", "mI") };
	struct proto_change_resolve r = { 0, S("cancel") };
	uint64_t j, c1, c2, c3;
	char buf[256], est[256];

	j = jmap_job(f);
	apply_ok(f, j, 1, m, 3);
	sync_done(f, j, 1, T0 + 2);
	c1 = jchange(f, CHANGE_FLAG, row_id(f, "Inbox", "E1"),
	    PROTO_FLAG_FLAGGED, NULL);
	c2 = jchange(f, CHANGE_MOVE, row_id(f, "Inbox", "E2"), 0, "Archive");
	c3 = jchange(f, CHANGE_FLAG, row_id(f, "Inbox", "E3"),
	    PROTO_FLAG_FLAGGED, NULL); /* still active: not named */
	r.change_id = c1;
	assert_int_equal(
	    store_change_resolve(f->st, &r, T0 + 10, fx_out(f)), 0);
	r.change_id = c2;
	assert_int_equal(
	    store_change_resolve(f->st, &r, T0 + 11, fx_out(f)), 0);
	sync_lease(f, T0 + 20, &j, buf, est, sizeof(buf));
	assert_string_equal(buf, "E1 E2");
	assert_string_equal(est, "e9");
	sync_done(f, j, 0, T0 + 30);
	sync_lease(f, T0 + 40, &j, buf, est, sizeof(buf));
	assert_string_equal(buf, "");
	assert_string_equal(est, "e9");
	/* a change that ends while a sync runs: that sync's guards may have
	 * skipped the Email, so the next lease still names it */
	r.change_id = c3;
	assert_int_equal(
	    store_change_resolve(f->st, &r, T0 + 45, fx_out(f)), 0);
	sync_done(f, j, 0, T0 + 50);
	sync_lease(f, T0 + 60, &j, buf, est, sizeof(buf));
	assert_string_equal(buf, "E3");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_jmap_rows_membership_and_moves, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_jmap_rename_destroy_states, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_jmap_bad_rows, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_jmap_reset_keeps_rows_of_active_changes, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_jmap_refresh_after_a_change_ends, fx_setup,
		    fx_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
