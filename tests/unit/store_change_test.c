/*
 * store_change_test.c: unit tests for submitting local changes in
 * pkg/store (docs/drain.md): validation of submit.change.add, the intended
 * state of each kind in the local rows, resolve (retry, cancel), the
 * periodic drain queueing and pruning, accounts' SMTP settings and the
 * removal cascade. store_drain_test.c has the drain itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "store_fixture.h"
#include "store_change_fixture.h"

static void
test_validation(void **state)
{
	struct fx *f = *state;
	uint64_t m1, other;

	world(f);
	acct_add(f, "b", false, NULL);
	m1 = msg(f, "INBOX", 1);
	/* b's message: give b a mailbox and a row directly */
	assert_int_equal(fx_exec(f,
	                     "INSERT INTO mailboxes(account_id, name) SELECT"
	                     " id, 'INBOX' FROM accounts WHERE name = 'b';"
	                     "INSERT INTO messages(account_id, mailbox_id,"
	                     " uid) SELECT account_id, id, 1 FROM mailboxes"
	                     " WHERE account_id = (SELECT id FROM accounts"
	                     " WHERE name = 'b')"),
	    SQLITE_OK);
	other = (uint64_t)fx_q(f,
	    "SELECT m.id FROM messages m JOIN accounts a ON a.id ="
	    " m.account_id WHERE a.name = 'b'");

	assert_int_equal(add(f,
	                     (struct proto_change_add) { .account = S("zz"),
	                         .kind = CHANGE_FLAG,
	                         .message_id = m1,
	                         .flags_add = PROTO_FLAG_SEEN }),
	    ERR_NOTFOUND);
	assert_fail(f, ERR_NOTFOUND, "no account named 'zz'");
	assert_int_equal(
	    add(f, (struct proto_change_add) { .kind = 9 }), ERR_INVAL);
	assert_fail(f, ERR_INVAL, "unknown change kind 9");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_FLAG,
	                         .message_id = 999999,
	                         .flags_add = PROTO_FLAG_SEEN }),
	    ERR_NOTFOUND);
	assert_fail(f, ERR_NOTFOUND, "account 'a' has no message with id");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_FLAG,
	                         .message_id = other,
	                         .flags_add = PROTO_FLAG_SEEN }),
	    ERR_NOTFOUND);
	assert_int_equal(
	    add(f,
	        (struct proto_change_add) { .kind = CHANGE_FLAG,
	            .message_id = m1,
	            .flags_add = PROTO_FLAG_SEEN | PROTO_FLAG_FLAGGED,
	            .flags_remove = PROTO_FLAG_FLAGGED }),
	    ERR_INVAL);
	assert_fail(
	    f, ERR_INVAL, "\\Flagged cannot be both added and removed");
	assert_int_equal(add(f,
	                     (struct proto_change_add) {
	                         .kind = CHANGE_FLAG, .message_id = m1 }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "needs a flag or keyword to add or remove");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_FLAG,
	                         .message_id = m1,
	                         .keywords_add = S("$ok bad(kw") }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "'bad(kw' is not an IMAP keyword");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_FLAG,
	                         .message_id = m1,
	                         .keywords_add = S("\\Seen") }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "is a system flag");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_FLAG,
	                         .message_id = m1,
	                         .keywords_add = S("caf\xc3\xa9") }),
	    ERR_INVAL);
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_FLAG,
	                         .message_id = m1,
	                         .keywords_add = S("$A"),
	                         .keywords_remove = S("$a") }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "keyword '$A' cannot be both added");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_MOVE,
	                         .message_id = m1,
	                         .mailbox = S("Nope") }),
	    ERR_NOTFOUND);
	assert_fail(
	    f, ERR_NOTFOUND, "account 'a' has no mailbox named 'Nope'");
	assert_int_equal(add(f,
	                     (struct proto_change_add) {
	                         .kind = CHANGE_MOVE, .message_id = m1 }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "a move change needs a mailbox");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_MOVE,
	                         .message_id = m1,
	                         .mailbox = S("INBOX") }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "is already in 'INBOX'");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_MOVE,
	                         .message_id = m1,
	                         .mailbox = S("Archive"),
	                         .flags_add = PROTO_FLAG_SEEN }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "a move change takes no flags or keywords");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .account = S("b"),
	                         .kind = CHANGE_DELETE,
	                         .message_id = other }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL,
	    "account 'b' has no mailbox with the trash role; use --expunge");
	/* append */
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_APPEND,
	                         .rfc822 = S(MSG_APPEND) }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "an append change needs a mailbox");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_APPEND,
	                         .mailbox = S("Nope"),
	                         .rfc822 = S(MSG_APPEND) }),
	    ERR_NOTFOUND);
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_APPEND,
	                         .mailbox = S("Archive") }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "needs the raw message");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_APPEND,
	                         .mailbox = S("Archive"),
	                         .rfc822 = S("no header section at all") }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "no valid header section");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_APPEND,
	                         .mailbox = S("Archive"),
	                         .rfc822 = S("Subject: x\r\n\r\nbody\r\n") }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "no Message-ID header");
	/* send */
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .account = S("b"),
	                         .kind = CHANGE_SEND,
	                         .rfc822 = S(MSG_SEND) }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "account 'b' has no SMTP server");
	assert_int_equal(add(f,
	                     (struct proto_change_add) { .kind = CHANGE_SEND,
	                         .rfc822 = S("To: x@y\r\nMessage-ID: <a@b>\r\n"
	                                     "\r\nx") }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "no From address");
	assert_int_equal(
	    add(f,
	        (struct proto_change_add) { .kind = CHANGE_SEND,
	            .rfc822 = S("From: x@y\r\nMessage-ID: <a@b>\r\n"
	                        "\r\nx") }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "no recipient (To, Cc or Bcc)");
	assert_int_equal(
	    add(f,
	        (struct proto_change_add) { .kind = CHANGE_SEND,
	            .rfc822 = S("From: x@y\r\nTo: z@y\r\n\r\nx") }),
	    ERR_INVAL);
	assert_fail(f, ERR_INVAL, "no Message-ID header");
	/* nothing was stored or queued */
	assert_int_equal(fx_q(f, "SELECT count(*) FROM pending_changes"), 0);
	assert_int_equal(drain_queued(f), 0);
}

/* Intended state ---------------------------------------------------------- */

static void
test_flag_intended(void **state)
{
	struct fx *f = *state;
	struct proto_change_list cl = { .account = S("a") };
	struct proto_message_list ml
	    = { .account = S("a"), .mailbox = S("INBOX") };
	uint64_t m2, c;
	char buf[128];

	world(f);
	m2 = msg(f, "INBOX", 2);
	c = add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_FLAG,
	        .message_id = m2,
	        .flags_add = PROTO_FLAG_SEEN,
	        .keywords_add = S("  $Work   $Later $work") });
	/* the drain job was queued in the same transaction */
	assert_int_equal(f->out.nevents, 1);
	assert_int_equal(f->out.events[0].kind, EV_JOB_QUEUED);
	assert_int_equal(f->out.events[0].job_kind, JOB_KIND_DRAIN);
	assert_int_equal(f->out.events[0].priority, PRIO_USER);
	assert_true(drain_queued(f) != 0);
	assert_int_equal(
	    fx_q(f, "SELECT seen FROM messages WHERE uid = 2"), 1);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT keywords FROM messages WHERE uid = 2"),
	    "$Work $Later");
	assert_state(f, c, "pending");
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT mailbox || ' ' || uidvalidity || ' ' ||"
	        " uid || ' ' || header_message_id FROM"
	        " pending_changes"),
	    "INBOX 100 2 <m2@x>");
	/* a second change joins the queued drain job */
	flag_add(f, m2, 0, PROTO_FLAG_SEEN);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM jobs WHERE kind ="
	                     " 'drain'"),
	    1);
	assert_int_equal(
	    fx_q(f, "SELECT seen FROM messages WHERE uid = 2"), 0);

	assert_int_equal(store_change_list(f->st, &cl, fx_out(f)), 0);
	assert_int_equal(f->out.reply.nchanges, 2);
	assert_true(f->out.reply.changes[0].id > f->out.reply.changes[1].id);
	assert_int_equal(f->out.reply.changes[1].id, c);
	assert_int_equal(f->out.reply.changes[1].kind, CHANGE_FLAG);
	assert_int_equal(f->out.reply.changes[1].state, CHANGE_PENDING);
	assert_int_equal(f->out.reply.changes[1].message_id, m2);
	assert_int_equal(f->out.reply.changes[1].uid, 2);
	assert_true(proto_str_eq(f->out.reply.changes[1].mailbox, "INBOX"));
	assert_true(proto_str_eq(
	    f->out.reply.changes[1].keywords_add, "$Work $Later"));
	cl.state = S("dead");
	assert_int_equal(store_change_list(f->st, &cl, fx_out(f)), 0);
	assert_int_equal(f->out.reply.nchanges, 0);
	cl.state = S("bogus");
	assert_int_equal(store_change_list(f->st, &cl, fx_out(f)), ERR_INVAL);
	cl.state = S("all");
	cl.change_id = c;
	assert_int_equal(store_change_list(f->st, &cl, fx_out(f)), 0);
	assert_int_equal(f->out.reply.nchanges, 1);
	cl.change_id = c + 100;
	assert_int_equal(
	    store_change_list(f->st, &cl, fx_out(f)), ERR_NOTFOUND);

	assert_int_equal(store_message_list(f->st, &ml, fx_out(f)), 0);
	assert_int_equal(f->out.reply.nmessages, 3);
	/* newest first by internal_date */
	assert_int_equal(f->out.reply.messages[0].uid, 3);
	assert_int_equal(f->out.reply.messages[0].flags, PROTO_FLAG_FLAGGED);
	assert_false(f->out.reply.messages[0].pending);
	assert_int_equal(f->out.reply.messages[1].id, m2);
	assert_true(f->out.reply.messages[1].pending);
	ml.mailbox = S("Nope");
	assert_int_equal(
	    store_message_list(f->st, &ml, fx_out(f)), ERR_NOTFOUND);
	ml.mailbox = (struct proto_str) { NULL, 0 };
	ml.limit = 2;
	assert_int_equal(store_message_list(f->st, &ml, fx_out(f)), 0);
	assert_int_equal(f->out.reply.nmessages, 2);
}

static void
test_move_delete_intended(void **state)
{
	struct fx *f = *state;
	uint64_t m1, m2, m3, t5, c1, c2;
	char buf[128];

	world(f);
	m1 = msg(f, "INBOX", 1);
	m2 = msg(f, "INBOX", 2);
	m3 = msg(f, "INBOX", 3);
	t5 = msg(f, "Trash", 5);
	c1 = move_add(f, m1, "Archive");
	/* re-homed as a placeholder: the id stays */
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT x.name || ' ' || coalesce(m.uid, 'null') || ' ' ||"
	        " m.remote_id FROM messages m JOIN mailboxes x ON x.id ="
	        " m.mailbox_id WHERE m.subject = 's' AND m.message_id ="
	        " '<m1@x>'"),
	    "Archive null local:1");
	assert_int_equal(fx_q(f,
	                     "SELECT id FROM messages WHERE message_id ="
	                     " '<m1@x>'"),
	    (int64_t)m1);
	(void)c1;
	/* delete: to Trash */
	c2 = add_ok(f,
	    (struct proto_change_add) {
	        .kind = CHANGE_DELETE, .message_id = m2 });
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT to_mailbox || ' ' || expunge FROM"
	                        " pending_changes WHERE id = 2"),
	    "Trash 0");
	assert_int_equal(fx_q(f,
	                     "SELECT x.name = 'Trash' AND m.uid IS NULL FROM"
	                     " messages m JOIN mailboxes x ON x.id ="
	                     " m.mailbox_id WHERE m.id = %llu",
	                     (unsigned long long)m2),
	    1);
	(void)c2;
	/* delete --expunge: the row goes */
	add_ok(f,
	    (struct proto_change_add) {
	        .kind = CHANGE_DELETE, .message_id = m3, .expunge = true });
	assert_int_equal(
	    fx_q(f, "SELECT count(*) FROM messages WHERE id = %llu",
	        (unsigned long long)m3),
	    0);
	/* the change keeps the snapshot; message_id went with the row */
	assert_int_equal(
	    fx_q(f, "SELECT message_id FROM pending_changes WHERE id = 3"),
	    -2);
	assert_int_equal(
	    fx_q(f, "SELECT uid FROM pending_changes WHERE id = 3"), 3);
	/* deleting from Trash is an expunge */
	add_ok(f,
	    (struct proto_change_add) {
	        .kind = CHANGE_DELETE, .message_id = t5 });
	assert_int_equal(
	    fx_q(f, "SELECT expunge FROM pending_changes WHERE id = 4"), 1);
	assert_int_equal(
	    fx_q(f, "SELECT count(*) FROM messages WHERE id = %llu",
	        (unsigned long long)t5),
	    0);
}

static void
test_append_send_intended(void **state)
{
	struct fx *f = *state;
	uint64_t ca, cs;
	char buf[256], want[128];

	world(f);
	ca = add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_APPEND,
	        .mailbox = S("Archive"),
	        .flags_add = PROTO_FLAG_SEEN,
	        .keywords_add = S("$Label"),
	        .rfc822 = S(MSG_APPEND) });
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT x.name || '|' || coalesce(m.uid, 'null') || '|' ||"
	        " m.remote_id || '|' || m.message_id || '|' || m.subject ||"
	        " '|' || m.seen || '|' || m.keywords || '|' || m.size || '|'"
	        " || m.date FROM messages m JOIN mailboxes x ON x.id ="
	        " m.mailbox_id WHERE m.uid IS NULL"),
	    (snprintf(want, sizeof(want),
	         "Archive|null|local:1|<new@x>|Gr\xc3\xbc\xc3\x9f"
	         "e|1|$Label|%zu|1057049557",
	         strlen(MSG_APPEND)),
	        want));
	assert_non_null(strstr(fx_qs(f, buf, sizeof(buf),
	                           "SELECT from_addr FROM messages WHERE"
	                           " remote_id = 'local:1'"),
	    "j@example.org"));
	assert_non_null(strstr(fx_qs(f, buf, sizeof(buf),
	                           "SELECT to_addrs FROM messages WHERE"
	                           " remote_id = 'local:1'"),
	    "c@example.org"));
	assert_int_equal(fx_q(f,
	                     "SELECT internal_date FROM messages WHERE"
	                     " remote_id = 'local:1'"),
	    (T0 + 1000) / 1000);
	assert_int_equal(fx_q(f,
	                     "SELECT message_id = (SELECT id FROM messages"
	                     " WHERE remote_id = 'local:1') FROM"
	                     " pending_changes WHERE id = %llu",
	                     (unsigned long long)ca),
	    1);
	assert_int_equal(fx_q(f, "SELECT length(rfc822) FROM pending_changes"),
	    (int64_t)strlen(MSG_APPEND));
	cs = add_ok(f,
	    (struct proto_change_add) {
	        .kind = CHANGE_SEND, .rfc822 = S(MSG_SEND) });
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT x.name || '|' || m.seen || '|' || m.message_id FROM"
	        " messages m JOIN mailboxes x ON x.id = m.mailbox_id WHERE"
	        " m.remote_id = 'local:2'"),
	    "Sent|1|<sent@x>");
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT to_mailbox || header_message_id FROM"
	                        " pending_changes WHERE id = 2"),
	    "Sent<sent@x>");
	(void)cs;
}

/* Lease ------------------------------------------------------------------- */

static void
test_resolve(void **state)
{
	struct fx *f = *state;
	struct proto_change_resolve rs;
	const struct proto_job_run *run;
	struct proto_change_result r;
	struct proto_message_row m;
	uint64_t m1, m3, c1, c2, c3, j;
	uint32_t att;

	world(f);
	m1 = msg(f, "INBOX", 1);
	m3 = msg(f, "INBOX", 3);
	c1 = move_add(f, m1, "Archive");
	c2 = flag_add(f, m3, PROTO_FLAG_SEEN, 0);
	c3 = add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_APPEND,
	        .mailbox = S("Archive"),
	        .rfc822 = S(MSG_APPEND) });
	/* bad requests */
	rs = (struct proto_change_resolve) { .change_id = 99,
		.action = S("retry") };
	assert_int_equal(
	    store_change_resolve(f->st, &rs, T0 + 2000, fx_out(f)),
	    ERR_NOTFOUND);
	rs = (struct proto_change_resolve) { .change_id = c1,
		.action = S("redo") };
	assert_int_equal(
	    store_change_resolve(f->st, &rs, T0 + 2000, fx_out(f)), ERR_INVAL);
	rs.action = S("retry");
	assert_int_equal(
	    store_change_resolve(f->st, &rs, T0 + 2000, fx_out(f)),
	    ERR_BADSTATE);
	assert_fail(f, ERR_BADSTATE, "only a dead or uncertain change");

	/* cancel a pending append: the placeholder goes */
	rs = (struct proto_change_resolve) { .change_id = c3,
		.action = S("cancel") };
	assert_int_equal(
	    store_change_resolve(f->st, &rs, T0 + 2000, fx_out(f)), 0);
	assert_state(f, c3, "cancelled");
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " remote_id = 'local:3'"),
	    0);
	assert_int_equal(
	    store_change_resolve(f->st, &rs, T0 + 2000, fx_out(f)),
	    ERR_BADSTATE);

	/* inflight cannot be cancelled */
	run = lease_drain(f, T0 + 3000);
	j = run->job_id;
	att = run->attempt;
	rs = (struct proto_change_resolve) { .change_id = c1,
		.action = S("cancel") };
	assert_int_equal(
	    store_change_resolve(f->st, &rs, T0 + 3000, fx_out(f)),
	    ERR_BADSTATE);
	{
		char want[96];

		snprintf(want, sizeof(want),
		    "change 1 is being carried out by job %llu; try again "
		    "when it ends",
		    (unsigned long long)j);
		assert_fail(f, ERR_BADSTATE, want);
	}
	r = (struct proto_change_result) {
		.id = c1, .outcome = CHANGE_OUT_DEAD, .error = S("NO no")
	};
	assert_int_equal(results(f, j, att, 1, &r, 1, T0 + 4000), 0);
	assert_int_equal(done(f, j, att, 1, 0, T0 + 4000), 0);
	assert_state(f, c1, "dead");
	/* the sync brings the row back at its source (uidnext lowered) */
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE kind = 'drain'"), SQLITE_OK);
	m = row("INBOX", 1, 0, "<m1@x>");
	sync_job(f, "a", NULL, 0, &m, 1, NULL, 0, NULL, 0, T0 + 5000);
	m1 = msg(f, "INBOX", 1);
	/* retry: pending again, attempts 0, the move shown again */
	rs.action = S("retry");
	assert_int_equal(
	    store_change_resolve(f->st, &rs, T0 + 6000, fx_out(f)), 0);
	assert_state(f, c1, "pending");
	assert_int_equal(
	    fx_q(f, "SELECT attempts FROM pending_changes WHERE id = 1"), 0);
	assert_int_equal(
	    fx_q(f, "SELECT next_at FROM pending_changes WHERE id = 1"),
	    T0 + 6000);
	assert_int_equal(fx_q(f,
	                     "SELECT remote_id = 'local:1' AND uid IS NULL"
	                     " FROM messages WHERE id = %llu",
	                     (unsigned long long)m1),
	    1);
	assert_true(drain_queued(f) != 0);
	/* cancel it: undone again */
	rs.action = S("cancel");
	assert_int_equal(
	    store_change_resolve(f->st, &rs, T0 + 7000, fx_out(f)), 0);
	assert_state(f, c1, "cancelled");
	assert_int_equal(
	    fx_q(f, "SELECT count(*) FROM messages WHERE id = %llu",
	        (unsigned long long)m1),
	    0);
	(void)c2;
}

static void
test_resolve_uncertain_send(void **state)
{
	struct fx *f = *state;
	struct proto_change_resolve rs;
	const struct proto_job_run *run;
	uint64_t c;

	world(f);
	c = add_ok(f,
	    (struct proto_change_add) {
	        .kind = CHANGE_SEND, .rfc822 = S(MSG_SEND) });
	run = lease_drain(f, T0 + 2000);
	assert_int_equal(
	    done(f, run->job_id, run->attempt, 0, 0, T0 + 3000), 0);
	assert_state(f, c, "uncertain");
	/* no drain queued for it: it waits for the user */
	assert_int_equal(drain_queued(f), 0);
	rs = (struct proto_change_resolve) { .change_id = c,
		.action = S("retry") };
	assert_int_equal(
	    store_change_resolve(f->st, &rs, T0 + 4000, fx_out(f)), 0);
	assert_state(f, c, "pending");
	assert_int_equal(fx_q(f, "SELECT step FROM pending_changes"), 0);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " remote_id = 'local:1'"),
	    1);
	run = lease_drain(f, T0 + 5000);
	assert_int_equal(run->nchanges, 1);
	assert_int_equal(run->changes[0].step, 0);
	assert_true(proto_str_eq(run->changes[0].rfc822, MSG_SEND));
}

static void
test_maintain_and_prune(void **state)
{
	struct fx *f = *state;
	uint64_t m1, c1, c2, n;
	size_t queued;

	world(f);
	m1 = msg(f, "INBOX", 1);
	c1 = flag_add(f, m1, PROTO_FLAG_SEEN, 0);
	c2 = flag_add(f, msg(f, "INBOX", 2), PROTO_FLAG_SEEN, 0);
	/* a queued drain exists: nothing to do */
	assert_int_equal(
	    store_change_maintain(f->st, T0 + 2000, fx_out(f), &queued), 0);
	assert_int_equal(queued, 0);
	/* the drain job vanished (say it ended dead): a new one is queued */
	assert_int_equal(fx_exec(f,
	                     "UPDATE jobs SET state = 'dead',"
	                     " finished_at = 1 WHERE kind = 'drain'"),
	    SQLITE_OK);
	assert_int_equal(
	    store_change_maintain(f->st, T0 + 2000, fx_out(f), &queued), 0);
	assert_int_equal(queued, 1);
	assert_int_equal(f->out.nevents, 1);
	assert_int_equal(f->out.events[0].job_kind, JOB_KIND_DRAIN);
	assert_true(drain_queued(f) != 0);
	/* a change stranded inflight (its job no longer leased) is freed */
	assert_int_equal(fx_exec(f,
	                     "UPDATE pending_changes SET state ="
	                     " 'inflight', job_id = 999 WHERE id = 1"),
	    SQLITE_OK);
	assert_int_equal(
	    store_change_maintain(f->st, T0 + 3000, fx_out(f), &queued), 0);
	assert_state(f, c1, "pending");
	/* prune: done and cancelled changes past the horizon go */
	assert_int_equal(fx_exec(f,
	                     "UPDATE pending_changes SET state ="
	                     " 'done', updated_at = 5 WHERE id = 1;"
	                     "UPDATE pending_changes SET state = 'dead',"
	                     " updated_at = 5 WHERE id = 2"),
	    SQLITE_OK);
	assert_int_equal(store_prune(f->st, T0, 1000, 1000, 100, &n), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM pending_changes"), 1);
	assert_state(f, c2, "dead");
}

static void
test_account_smtp(void **state)
{
	struct fx *f = *state;
	struct proto_account_add a = {
		.name = S("x"),
		.protocol = S("imap"),
		.server = S("imaps://h"),
		.username = S("u"),
		.password = S("pw"),
		.smtp = S("http://h"),
	};
	const struct proto_job_run *run;
	uint64_t acct;
	char buf[64];
	size_t i;

	assert_int_equal(
	    store_account_add(f->st, &a, T0, fx_out(f)), ERR_INVAL);
	assert_fail(f, ERR_INVAL, "must be an smtp:// (STARTTLS) or smtps://");
	a.smtp = (struct proto_str) { NULL, 0 };
	a.smtp_username = S("v");
	assert_int_equal(
	    store_account_add(f->st, &a, T0, fx_out(f)), ERR_INVAL);
	assert_fail(f, ERR_INVAL, "without an SMTP server URL");
	a.smtp = S("smtp://h:587");
	a.smtp_password = S("");
	assert_int_equal(
	    store_account_add(f->st, &a, T0, fx_out(f)), ERR_INVAL);
	assert_fail(f, ERR_INVAL, "smtp password must not be empty");

	acct = acct_add(f, "a", true, "smtp-secret");
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf), "SELECT smtp_username FROM accounts"),
	    "smtp-user");
	assert_int_equal(fx_q(f,
	                     "SELECT instr(smtp_secret, 'smtp-secret')"
	                     " FROM accounts"),
	    0);
	/* list: smtp and the active changes */
	assert_int_equal(fx_exec(f,
	                     "INSERT INTO pending_changes(account_id, kind,"
	                     " state, created_at, updated_at, next_at) VALUES"
	                     " (1, 'flag', 'pending', 0, 0, 0), (1, 'flag',"
	                     " 'done', 0, 0, 0);"
	                     "INSERT INTO jobs(account_id, kind, state,"
	                     " priority, max_attempts, created_at, due_at)"
	                     " VALUES (1, 'drain', 'queued', 1, 3, 0, 0)"),
	    SQLITE_OK);
	assert_int_equal(store_account_list(f->st, fx_out(f)), 0);
	assert_int_equal(f->out.reply.naccounts, 1);
	assert_true(proto_str_eq(
	    f->out.reply.accounts[0].smtp, "smtps://smtp.example.org:465"));
	assert_int_equal(f->out.reply.accounts[0].pending_changes, 1);
	/* a drain lease carries the SMTP credentials */
	run = lease_drain(f, T0 + 1000);
	assert_true(proto_str_eq(run->smtp_username, "smtp-user"));
	assert_true(proto_str_eq(run->smtp_password, "smtp-secret"));
	assert_true(proto_str_eq(run->password, "pw"));
	/* account removal takes its changes along */
	assert_int_equal(store_account_remove(f->st,
	                     &(struct proto_name) { S("a") }, T0, fx_out(f)),
	    0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM pending_changes"), 0);
	(void)acct;
	(void)i;
}

static void
test_account_remove_cascade(void **state)
{
	struct fx *f = *state;

	world(f);
	move_add(f, msg(f, "INBOX", 1), "Archive");
	add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_APPEND,
	        .mailbox = S("Archive"),
	        .rfc822 = S(MSG_APPEND) });
	assert_int_equal(store_account_remove(f->st,
	                     &(struct proto_name) { S("a") }, T0, fx_out(f)),
	    0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM pending_changes"), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 0);
}

/* Cost of the guards --------------------------------------------------------
 */


int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_validation, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_flag_intended, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_move_delete_intended, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_append_send_intended, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_resolve, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_resolve_uncertain_send, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_maintain_and_prune, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_account_smtp, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_account_remove_cascade, fx_setup, fx_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
