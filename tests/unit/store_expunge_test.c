/*
 * store_expunge_test.c: UID set parsing (bounded, precise errors) and
 * expunge rows: VANISHED deletes the listed UIDs, PRESENT deletes every
 * row below `below` that the set does not list; re-applying changes
 * nothing; a malformed set rejects the whole batch; PRESENT rows over
 * disjoint [from, below) ranges; mailbox renames keep ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_fixture.h"
#include "store/store_int.h"

static void
test_uidset_parse(void **state)
{
	static const struct {
		const char *in;
		int rv;
		size_t n;
		uint32_t lo0, hi_last;
	} cases[] = {
		{ "", 0, 0, 0, 0 },
		{ "5", 0, 1, 5, 5 },
		{ "1:4,9", 0, 2, 1, 9 },
		{ "9,1:4,3:6,7:8", 0, 1, 1, 9 }, /* unsorted, merged */
		{ "4:1", 0, 1, 1, 4 },
		{ "0", ERR_PROTO, 0, 0, 0 },
		{ "1,", ERR_PROTO, 0, 0, 0 },
		{ "1::2", ERR_PROTO, 0, 0, 0 },
		{ "4294967296", ERR_PROTO, 0, 0, 0 },
		{ "1:*", ERR_PROTO, 0, 0, 0 },
		{ "a", ERR_PROTO, 0, 0, 0 },
	};
	struct store_uidset u;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct proto_str s = { cases[i].in, strlen(cases[i].in) };
		int rv = store_uidset_parse(s, &u, &why);

		if (rv != cases[i].rv) {
			fail_msg("case %s: rv %d", cases[i].in, rv);
		}
		if (rv == 0) {
			assert_int_equal(u.n, cases[i].n);
			if (u.n > 0) {
				assert_int_equal(u.lo[0], cases[i].lo0);
				assert_int_equal(u.hi[u.n - 1], cases[i].hi_last);
			}
			store_uidset_release(&u);
		} else {
			assert_non_null(why);
		}
	}
}

/* One mailbox with UIDs 1..10 under a leased job; returns the job. */
static uint64_t
ten(struct fx *f, uint32_t *attempt_r)
{
	struct proto_mailbox_row mb = { .name = S("INBOX"), .uidvalidity = 7 };
	struct proto_message_row m[10];
	struct proto_batch b;
	uint64_t acct, job;
	int i;

	acct = fx_account(f, "a");
	job = fx_queued(f, acct);
	*attempt_r = fx_lease(f, job, T0);
	memset(m, 0, sizeof(m));
	for (i = 0; i < 10; i++) {
		m[i].mailbox = S("INBOX");
		m[i].uid = (uint32_t)i + 1;
		m[i].full = true;
	}
	memset(&b, 0, sizeof(b));
	b.job_id = job;
	b.attempt = *attempt_r;
	b.seq = 1;
	b.mailboxes = &mb;
	b.nmailboxes = 1;
	b.messages = m;
	b.nmessages = 10;
	assert_int_equal(store_apply_batch(f->st, &b, T0, fx_out(f)), 0);
	return (job);
}

static int
send(struct fx *f, uint64_t job, uint32_t attempt, uint32_t seq,
    struct proto_expunge_row *e)
{
	struct proto_batch b;

	memset(&b, 0, sizeof(b));
	b.job_id = job;
	b.attempt = attempt;
	b.seq = seq;
	b.expunged = e;
	b.nexpunged = 1;
	return (store_apply_batch(f->st, &b, T0, fx_out(f)));
}

static void
test_vanished_and_present(void **state)
{
	struct fx *f = *state;
	struct proto_expunge_row e;
	uint32_t attempt;
	uint64_t job = ten(f, &attempt);

	memset(&e, 0, sizeof(e));
	e.mailbox = S("INBOX");
	e.kind = EXPUNGE_VANISHED;
	e.uids = S("2:3,9");
	assert_int_equal(send(f, job, attempt, 2, &e), 0);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM messages"), 7);
	/* Present below 8: 1,4,5 survive; 6 and 7 go; 8, 10 untouched. */
	e.kind = EXPUNGE_PRESENT;
	e.uids = S("1,4:5");
	e.below = 8;
	assert_int_equal(send(f, job, attempt, 3, &e), 0);
	assert_int_equal(fx_q(f, "SELECT SUM(uid) FROM messages"),
	    1 + 4 + 5 + 8 + 10);
	/* Re-applying the same row (a new seq) changes nothing. */
	assert_int_equal(send(f, job, attempt, 4, &e), 0);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM messages"), 5);
	/* An empty present set below 6: 1, 4, 5 go. */
	e.uids = (struct proto_str) { NULL, 0 };
	e.below = 6;
	assert_int_equal(send(f, job, attempt, 5, &e), 0);
	assert_int_equal(fx_q(f, "SELECT SUM(uid) FROM messages"), 8 + 10);
	assert_true(fx_q(f, "SELECT COUNT(*) FROM sync_log WHERE outcome ="
			    " 'expunged'") >= 3);
}

static void
test_malformed_set_rejects_batch(void **state)
{
	struct fx *f = *state;
	struct proto_expunge_row e;
	uint32_t attempt;
	uint64_t job = ten(f, &attempt);

	memset(&e, 0, sizeof(e));
	e.mailbox = S("INBOX");
	e.kind = EXPUNGE_VANISHED;
	e.uids = S("3,,4");
	assert_int_equal(send(f, job, attempt, 2, &e), ERR_PROTO);
	assert_non_null(strstr(f->out.reply.error.p, "expunged[0].uids"));
	e.kind = EXPUNGE_PRESENT;
	e.uids = S("1");
	e.below = 0;
	assert_int_equal(send(f, job, attempt, 2, &e), ERR_PROTO);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM messages"), 10);
}

/* PRESENT rows over disjoint ranges [from, below): only gaps inside each
 * range go; several rows of one mailbox in one batch log once. */
static void
test_present_ranges(void **state)
{
	struct fx *f = *state;
	struct proto_expunge_row e[3];
	struct proto_batch b;
	uint32_t attempt;
	uint64_t job = ten(f, &attempt);

	memset(e, 0, sizeof(e));
	e[0].mailbox = e[1].mailbox = e[2].mailbox = S("INBOX");
	e[0].kind = e[1].kind = e[2].kind = EXPUNGE_PRESENT;
	e[0].from = 1; /* [1, 4): 2 goes */
	e[0].below = 4;
	e[0].uids = S("1,3");
	e[1].from = 4; /* [4, 8): 4 and 7 stay; UIDs outside are ignored */
	e[1].below = 8;
	e[1].uids = S("1:2,4,7,9:10");
	e[2].from = 8; /* [8, 11): none left */
	e[2].below = 11;
	memset(&b, 0, sizeof(b));
	b.job_id = job;
	b.attempt = attempt;
	b.seq = 2;
	b.expunged = e;
	b.nexpunged = 3;
	assert_int_equal(store_apply_batch(f->st, &b, T0, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT SUM(uid) FROM messages"),
	    1 + 3 + 4 + 7);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM sync_log WHERE outcome"
				 " = 'expunged' AND detail LIKE '6 messages%%'"),
	    1);
	/* from must be below below; an unknown kind is refused. */
	e[0].from = 5;
	e[0].below = 5;
	b.seq = 3;
	b.nexpunged = 1;
	assert_int_equal(store_apply_batch(f->st, &b, T0, fx_out(f)),
	    ERR_PROTO);
	assert_non_null(strstr(f->out.reply.error.p, "expunged[0].from"));
	e[0].from = 0;
	e[0].kind = 7;
	assert_int_equal(store_apply_batch(f->st, &b, T0, fx_out(f)),
	    ERR_PROTO);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM messages"), 4);
	/* A mailbox the store does not have: nothing happens. */
	e[0].kind = EXPUNGE_VANISHED;
	e[0].mailbox = S("Nowhere");
	e[0].uids = S("1:10");
	assert_int_equal(store_apply_batch(f->st, &b, T0, fx_out(f)), 0);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM messages"), 4);
}

static int
send_mailbox(struct fx *f, uint64_t job, uint32_t attempt, uint32_t seq,
    struct proto_mailbox_row *mb)
{
	struct proto_batch b;

	memset(&b, 0, sizeof(b));
	b.job_id = job;
	b.attempt = attempt;
	b.seq = seq;
	b.mailboxes = mb;
	b.nmailboxes = 1;
	return (store_apply_batch(f->st, &b, T0, fx_out(f)));
}

/* A renamed mailbox keeps its id and its messages' ids. */
static void
test_rename(void **state)
{
	struct fx *f = *state;
	struct proto_mailbox_row mb;
	uint32_t attempt;
	uint64_t job = ten(f, &attempt);
	int64_t box = fx_q(f, "SELECT id FROM mailboxes WHERE name = 'INBOX'");
	int64_t ids = fx_q(f, "SELECT SUM(id) FROM messages");

	memset(&mb, 0, sizeof(mb));
	mb.name = S("Renamed");
	mb.old_name = S("INBOX");
	mb.uidvalidity = 7;
	assert_int_equal(send_mailbox(f, job, attempt, 2, &mb), 0);
	assert_int_equal(
	    fx_q(f, "SELECT id FROM mailboxes WHERE name = 'Renamed'"), box);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM mailboxes"), 1);
	assert_int_equal(fx_q(f, "SELECT SUM(id) FROM messages"), ids);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM sync_log WHERE outcome"
				 " = 'mailbox_renamed'"),
	    1);
	/* Again (the new name exists): nothing more happens. */
	assert_int_equal(send_mailbox(f, job, attempt, 3, &mb), 0);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM sync_log WHERE outcome"
				 " = 'mailbox_renamed'"),
	    1);
	/* The old name is unknown: a new mailbox. */
	mb.name = S("Other");
	mb.old_name = S("Missing");
	assert_int_equal(send_mailbox(f, job, attempt, 4, &mb), 0);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM mailboxes"), 2);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM sync_log WHERE outcome"
				 " = 'mailbox_added' AND detail = 'Other'"),
	    1);
	/* Both exist: the row named mb.name is kept, the other untouched. */
	mb.name = S("Other");
	mb.old_name = S("Renamed");
	assert_int_equal(send_mailbox(f, job, attempt, 5, &mb), 0);
	assert_int_equal(fx_q(f, "SELECT COUNT(*) FROM messages m JOIN "
				 "mailboxes b ON b.id = m.mailbox_id WHERE "
				 "b.name = 'Renamed'"),
	    10);
	/* A bad old_name rejects the batch. */
	mb.old_name = (struct proto_str) { "a\0b", 3 };
	assert_int_equal(send_mailbox(f, job, attempt, 6, &mb), ERR_PROTO);
	assert_non_null(strstr(f->out.reply.error.p, "old_name"));
	mb.old_name = (struct proto_str) { "", 0 };
	assert_int_equal(send_mailbox(f, job, attempt, 6, &mb), ERR_PROTO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uidset_parse),
		cmocka_unit_test_setup_teardown(
		    test_vanished_and_present, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_malformed_set_rejects_batch, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_present_ranges, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_rename, fx_setup, fx_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
