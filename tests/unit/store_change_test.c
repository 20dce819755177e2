/*
 * store_change_test.c: unit tests for local changes in pkg/store
 * (docs/drain.md): validation of submit.change.add, the intended state of
 * each kind in the local rows, the drain lease (order, waiting, budget,
 * SMTP settings), every result outcome, the end of an attempt without
 * results, the sync-side guards (skip, merge, overlay, expunges), undo
 * with checkpoint lowering, resolve (retry, cancel), retarget after a
 * UIDVALIDITY reset, the periodic drain queueing, pruning, accounts' SMTP
 * settings and the cost of the guards on a 10,000-row batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "store_fixture.h"

#define MSG_APPEND                                                            \
	"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\n"                   \
	"To: Bob <bob@example.org>, c@example.org\r\n"                        \
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"                            \
	"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"                            \
	"Message-ID: <new@x>\r\n"                                             \
	"\r\n"                                                                \
	"Hello\r\n"
#define MSG_SEND                                                              \
	"From: Alice <alice@example.org>\r\n"                                 \
	"Bcc: hidden@example.org\r\n"                                         \
	"Subject: hi\r\n"                                                     \
	"Message-ID: <sent@x>\r\n"                                            \
	"\r\n"                                                                \
	"Hi\r\n"

/* World ------------------------------------------------------------------ */

static struct proto_message_row
row(const char *mbox, uint32_t uid, uint32_t flags, const char *msgid)
{
	struct proto_message_row r;

	memset(&r, 0, sizeof(r));
	r.mailbox = (struct proto_str) { mbox, strlen(mbox) };
	r.uid = uid;
	r.full = true;
	r.flags = flags;
	r.keywords = S("");
	r.modseq = 10 + uid;
	if (msgid != NULL) {
		r.message_id = (struct proto_str) { msgid, strlen(msgid) };
	}
	r.subject = S("s");
	r.from_addr = S("bob@example.org");
	r.internal_date = 1600000000 + uid;
	r.size = 100;
	return (r);
}

static const struct proto_mailbox_row mailboxes[] = {
	{ .name = { "INBOX", 5 }, .role = { "inbox", 5 }, .uidvalidity = 100 },
	{ .name = { "Trash", 5 }, .role = { "trash", 5 }, .uidvalidity = 200 },
	{ .name = { "Sent", 4 }, .role = { "sent", 4 }, .uidvalidity = 300 },
	{ .name = { "Archive", 7 }, .uidvalidity = 400 },
};

/* Adds an account (with smtp:// when smtp) and returns its id. */
static uint64_t
acct_add(struct fx *f, const char *name, bool smtp, const char *smtp_pw)
{
	struct proto_account_add a = {
		.name = { name, strlen(name) },
		.protocol = S("imap"),
		.server = S("imaps://mail.example.org:993"),
		.username = S("alice"),
		.password = S("pw"),
	};

	if (smtp) {
		a.smtp = S("smtps://smtp.example.org:465");
	}
	if (smtp_pw != NULL) {
		a.smtp_username = S("smtp-user");
		a.smtp_password
		    = (struct proto_str) { smtp_pw, strlen(smtp_pw) };
	}
	if (store_account_add(f->st, &a, T0, fx_out(f)) != 0) {
		fail_msg("account_add: %s", f->out.errtext);
	}
	return (f->out.reply.id);
}

/* Runs a whole sync job of account name: one batch, then done. */
static void
sync_job(struct fx *f, const char *name, const struct proto_mailbox_row *mb,
    size_t nmb, const struct proto_message_row *m, size_t nm,
    const struct proto_expunge_row *x, size_t nx,
    const struct proto_checkpoint *cp, size_t ncp, int64_t now)
{
	struct proto_job_submit js
	    = { .account = { name, strlen(name) }, .kind = JOB_KIND_SYNC };
	struct proto_batch b;
	struct proto_done d;
	uint64_t j;
	uint32_t att;

	assert_int_equal(store_job_submit(f->st, &js, now, fx_out(f)), 0);
	j = f->out.reply.id;
	att = fx_lease(f, j, now);
	memset(&b, 0, sizeof(b));
	b.job_id = j;
	b.attempt = att;
	b.seq = 1;
	b.mailboxes = (struct proto_mailbox_row *)mb;
	b.nmailboxes = nmb;
	b.messages = (struct proto_message_row *)m;
	b.nmessages = nm;
	b.expunged = (struct proto_expunge_row *)x;
	b.nexpunged = nx;
	if (store_apply_batch(f->st, &b, now, fx_out(f)) != 0) {
		fail_msg("batch: %s", f->out.errtext);
	}
	memset(&d, 0, sizeof(d));
	d.job_id = j;
	d.attempt = att;
	d.nbatches = 1;
	d.checkpoints = (struct proto_checkpoint *)cp;
	d.ncheckpoints = ncp;
	if (store_apply_done(f->st, &d, now, 0, fx_out(f)) != 0) {
		fail_msg("done: %s", f->out.errtext);
	}
}

/* Account "a" (with SMTP) synced: INBOX uids 1-3 (<m1@x>..), Trash uid 5,
 * empty Sent and Archive; INBOX checkpoint uidnext 4, modseq 50. */
static uint64_t
world(struct fx *f)
{
	struct proto_message_row m[4];
	struct proto_checkpoint cp[]
	    = { { S("INBOX"), 100, 4, 50 }, { S("Trash"), 200, 6, 60 },
		      { S("Sent"), 300, 1, 1 }, { S("Archive"), 400, 1, 1 } };
	uint64_t acct = acct_add(f, "a", true, NULL);

	m[0] = row("INBOX", 1, 0, "<m1@x>");
	m[1] = row("INBOX", 2, 0, "<m2@x>");
	m[2] = row("INBOX", 3, PROTO_FLAG_FLAGGED, "<m3@x>");
	m[3] = row("Trash", 5, 0, "<t5@x>");
	/* the account's first sync job */
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE state = 'queued'"), SQLITE_OK);
	sync_job(
	    f, "a", mailboxes, ARRAY_LEN(mailboxes), m, 4, NULL, 0, cp, 4, T0);
	return (acct);
}

/* messages.id of (mailbox, uid). */
static uint64_t
msg(struct fx *f, const char *mbox, uint32_t uid)
{
	int64_t v = fx_q(f,
	    "SELECT m.id FROM messages m JOIN mailboxes x ON x.id ="
	    " m.mailbox_id WHERE x.name = '%s' AND m.uid = %u",
	    mbox, uid);

	assert_true(v > 0);
	return ((uint64_t)v);
}

static int
add(struct fx *f, struct proto_change_add c)
{
	if (c.account.p == NULL) {
		c.account = S("a");
	}
	return (store_change_add(f->st, &c, T0 + 1000, fx_out(f)));
}

/* Adds a change that must succeed; returns its id. */
static uint64_t
add_ok(struct fx *f, struct proto_change_add c)
{
	if (add(f, c) != 0) {
		fail_msg("change_add: %s", f->out.errtext);
	}
	return (f->out.reply.id);
}

static uint64_t
flag_add(struct fx *f, uint64_t id, uint32_t fa, uint32_t fr)
{
	return (add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_FLAG,
	        .message_id = id,
	        .flags_add = fa,
	        .flags_remove = fr }));
}

static uint64_t
move_add(struct fx *f, uint64_t id, const char *to)
{
	return (add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_MOVE,
	        .message_id = id,
	        .mailbox = { to, strlen(to) } }));
}

static const char *
cstate(struct fx *f, uint64_t id, char *buf, size_t n)
{
	char sql[128];

	snprintf(sql, sizeof(sql),
	    "SELECT state FROM pending_changes WHERE id = %llu",
	    (unsigned long long)id);
	return (fx_qs(f, buf, n, sql));
}

#define assert_state(f, id, s)                                                \
	do {                                                                  \
		char b_[32];                                                  \
		assert_string_equal(cstate((f), (id), b_, sizeof(b_)), (s));  \
	} while (0)

static uint64_t
drain_queued(struct fx *f)
{
	int64_t v = fx_q(f,
	    "SELECT id FROM jobs WHERE kind = 'drain' AND state = 'queued'");

	return (v > 0 ? (uint64_t)v : 0);
}

/* Leases the queued drain job at now; the job_run stays in f->out. */
static const struct proto_job_run *
lease_drain(struct fx *f, int64_t now)
{
	uint64_t j = drain_queued(f);

	assert_true(j != 0);
	fx_lease(f, j, now);
	return (f->out.reply.job_run);
}

static int
results(struct fx *f, uint64_t job, uint32_t attempt, uint32_t seq,
    struct proto_change_result *r, size_t n, int64_t now)
{
	struct proto_batch b;

	memset(&b, 0, sizeof(b));
	b.job_id = job;
	b.attempt = attempt;
	b.seq = seq;
	b.change_results = r;
	b.nchange_results = n;
	return (store_apply_batch(f->st, &b, now, fx_out(f)));
}

static int
done(struct fx *f, uint64_t job, uint32_t attempt, uint32_t nbatches,
    int32_t status, int64_t now)
{
	struct proto_done d;

	memset(&d, 0, sizeof(d));
	d.job_id = job;
	d.attempt = attempt;
	d.nbatches = nbatches;
	d.status = status;
	d.retry = RETRY_LATER;
	if (status != 0) {
		d.error = S("connection lost");
	}
	return (store_apply_done(f->st, &d, now, 7, fx_out(f)));
}

/* Validation -------------------------------------------------------------- */

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
test_lease_selection(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	uint64_t m1, m2, c1, c2, c3, c4;

	world(f);
	m1 = msg(f, "INBOX", 1);
	m2 = msg(f, "INBOX", 2);
	c1 = flag_add(f, m1, PROTO_FLAG_SEEN, 0);
	c2 = move_add(f, m1, "Archive");
	c3 = flag_add(f, m1, PROTO_FLAG_FLAGGED, 0); /* on the placeholder */
	c4 = flag_add(f, m2, 0, PROTO_FLAG_SEEN);
	run = lease_drain(f, T0 + 2000);
	assert_int_equal(run->kind, JOB_KIND_DRAIN);
	assert_int_equal(run->nchanges, 3);
	assert_int_equal(run->changes[0].id, c1);
	assert_int_equal(run->changes[0].flags_add, PROTO_FLAG_SEEN);
	assert_int_equal(run->changes[0].uid, 1);
	assert_int_equal(run->changes[0].attempts, 0);
	assert_int_equal(run->changes[1].id, c2);
	assert_int_equal(run->changes[1].kind, CHANGE_MOVE);
	assert_true(proto_str_eq(run->changes[1].mailbox, "INBOX"));
	assert_int_equal(run->changes[1].uidvalidity, 100);
	assert_int_equal(run->changes[1].uid, 1);
	assert_true(proto_str_eq(run->changes[1].to_mailbox, "Archive"));
	assert_true(proto_str_eq(run->changes[1].header_message_id, "<m1@x>"));
	assert_int_equal(run->changes[2].id, c4);
	/* SMTP defaults to the account's own credentials */
	assert_true(proto_str_eq(run->smtp, "smtps://smtp.example.org:465"));
	assert_true(proto_str_eq(run->smtp_username, "alice"));
	assert_true(proto_str_eq(run->smtp_password, "pw"));
	assert_true(proto_str_eq(run->password, "pw"));
	assert_state(f, c1, "inflight");
	assert_state(f, c3, "pending");
	assert_int_equal(
	    fx_q(f, "SELECT attempts FROM pending_changes WHERE id = %llu",
	        (unsigned long long)c2),
	    1);
	assert_int_equal(fx_q(f,
	                     "SELECT job_id FROM pending_changes WHERE"
	                     " id = %llu",
	                     (unsigned long long)c4),
	    (int64_t)run->job_id);
}

static void
test_lease_waits_and_budget(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	uint64_t m1, m2, c1, c2, j;
	uint32_t att;

	world(f);
	m1 = msg(f, "INBOX", 1);
	m2 = msg(f, "INBOX", 2);
	c1 = flag_add(f, m1, PROTO_FLAG_SEEN, 0);
	c2 = flag_add(f, m1, 0, PROTO_FLAG_SEEN);
	flag_add(f, m2, PROTO_FLAG_SEEN, 0);
	/* c1 is backing off: c2 (same message) waits behind it */
	assert_int_equal(fx_exec(f,
	                     "UPDATE pending_changes SET next_at ="
	                     " 1700000100000 WHERE id = 1"),
	    SQLITE_OK);
	run = lease_drain(f, T0 + 2000);
	assert_int_equal(run->nchanges, 1);
	assert_int_equal(run->changes[0].id, 3);
	assert_state(f, c1, "pending");
	assert_state(f, c2, "pending");
	/* due no earlier than what it waits for */
	assert_int_equal(
	    fx_q(f, "SELECT next_at FROM pending_changes WHERE id = 2"),
	    1700000100000LL);
	j = run->job_id;
	att = run->attempt;
	assert_int_equal(results(f, j, att, 1,
	                     &(struct proto_change_result) {
	                         .id = 3, .outcome = CHANGE_OUT_DONE },
	                     1, T0 + 3000),
	    0);
	assert_int_equal(done(f, j, att, 1, 0, T0 + 3000), 0);
	/* the next drain is due when c1 is */
	assert_int_equal(fx_q(f,
	                     "SELECT due_at FROM jobs WHERE kind ="
	                     " 'drain' AND state = 'queued'"),
	    1700000100000LL);
	assert_int_equal(fx_exec(f,
	                     "DELETE FROM pending_changes; DELETE FROM"
	                     " jobs WHERE kind = 'drain'"),
	    SQLITE_OK);

	/* budget: 1,000 changes per job */
	assert_int_equal(
	    fx_exec(f,
	        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM"
	        " n WHERE i < 1001) INSERT INTO pending_changes(account_id,"
	        " kind, state, message_id, mailbox, uidvalidity, uid,"
	        " flags_add, created_at, updated_at, next_at) SELECT 1,"
	        " 'flag', 'pending', NULL, 'INBOX', 100, 2, 1, 0, 0, 0 FROM n;"
	        "INSERT INTO jobs(account_id, kind, state, priority,"
	        " max_attempts, created_at, due_at) VALUES (1, 'drain',"
	        " 'queued', 1, 3, 0, 0)"),
	    SQLITE_OK);
	run = lease_drain(f, T0 + 4000);
	assert_int_equal(run->nchanges, PROTO_MAX_CHANGES);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM pending_changes WHERE"
	                     " state = 'pending'"),
	    1);
	assert_int_equal(fx_exec(f,
	                     "DELETE FROM pending_changes; DELETE FROM"
	                     " jobs WHERE kind = 'drain'"),
	    SQLITE_OK);

	/* budget: 12 MiB of raw messages; the first always fits */
	assert_int_equal(
	    fx_exec(f,
	        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM"
	        " n WHERE i < 3) INSERT INTO pending_changes(account_id, kind,"
	        " state, to_mailbox, rfc822, header_message_id, created_at,"
	        " updated_at, next_at) SELECT 1, 'append', 'pending',"
	        " 'Archive', zeroblob(CASE i WHEN 1 THEN 13000000 ELSE 10"
	        " END), '<z@x>', 0, 0, 0 FROM n;"
	        "INSERT INTO jobs(account_id, kind, state, priority,"
	        " max_attempts, created_at, due_at) VALUES (1, 'drain',"
	        " 'queued', 1, 3, 0, 0)"),
	    SQLITE_OK);
	run = lease_drain(f, T0 + 5000);
	assert_int_equal(run->nchanges, 1);
	assert_int_equal(run->changes[0].rfc822.len, 13000000);
	(void)m2;
}

/* Outcomes -----------------------------------------------------------------
 */

static void
test_outcomes_move_append(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	struct proto_message_row again;
	struct proto_change_result r[3];
	uint64_t m1, c1, c2, c3, j;
	uint32_t att;
	char buf[128];

	world(f);
	m1 = msg(f, "INBOX", 1);
	c1 = move_add(f, m1, "Archive");
	c2 = flag_add(f, m1, PROTO_FLAG_FLAGGED, 0); /* waits for the UID */
	c3 = add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_APPEND,
	        .mailbox = S("Archive"),
	        .rfc822 = S(MSG_APPEND) });
	run = lease_drain(f, T0 + 2000);
	assert_int_equal(run->nchanges, 2);
	j = run->job_id;
	att = run->attempt;
	/* a row at the append's new UID, written before its result came */
	assert_int_equal(fx_exec(f,
	                     "INSERT INTO messages(account_id, mailbox_id,"
	                     " uid, message_id) SELECT 1, id, 8, '<dup@x>'"
	                     " FROM mailboxes WHERE name = 'Archive'"),
	    SQLITE_OK);
	memset(r, 0, sizeof(r));
	r[0] = (struct proto_change_result) { .id = c1,
		.outcome = CHANGE_OUT_DONE,
		.mailbox = S("Archive"),
		.uidvalidity = 400,
		.uid = 7 };
	r[1] = (struct proto_change_result) { .id = c3,
		.outcome = CHANGE_OUT_DONE,
		.mailbox = S("Archive"),
		.uidvalidity = 400,
		.uid = 8 };
	/* a result for a change this job does not carry is ignored */
	r[2] = (struct proto_change_result) {
		.id = c2, .outcome = CHANGE_OUT_DEAD, .error = S("nope")
	};
	assert_int_equal(results(f, j, att, 1, r, 3, T0 + 3000), 0);
	assert_state(f, c1, "done");
	assert_state(f, c2, "pending");
	assert_state(f, c3, "done");
	/* the placeholder has its UID, same id */
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT x.name || ' ' || m.uid || ' ' || coalesce(m.remote_id,"
	        " 'null') FROM messages m JOIN mailboxes x ON x.id ="
	        " m.mailbox_id WHERE m.message_id = '<m1@x>'"),
	    "Archive 7 null");
	assert_int_equal(fx_q(f,
	                     "SELECT id FROM messages WHERE message_id ="
	                     " '<m1@x>'"),
	    (int64_t)m1);
	assert_int_equal(
	    fx_q(f, "SELECT uid FROM messages WHERE message_id = '<new@x>'"),
	    8);
	assert_int_equal(
	    fx_q(f, "SELECT count(*) FROM messages WHERE uid = 8"), 1);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT result_mailbox || ' ' || result_uid"
	                        " FROM pending_changes WHERE id = 1"),
	    "Archive 7");
	/* the change that waited now knows where the message is */
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT mailbox || ' ' || uidvalidity || ' ' ||"
	        " uid || ' ' || coalesce(remote_id, 'null')"
	        " FROM pending_changes WHERE id = 2"),
	    "Archive 400 7 null");
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sync_log WHERE kind ="
	                     " 'change' AND outcome = 'done'"),
	    2);
	/* attempt ends: the waiting change is due, a drain is queued now */
	assert_int_equal(done(f, j, att, 1, 0, T0 + 3000), 0);
	assert_int_equal(fx_q(f,
	                     "SELECT due_at FROM jobs WHERE kind ="
	                     " 'drain' AND state = 'queued'"),
	    T0 + 3000);
	run = lease_drain(f, T0 + 4000);
	assert_int_equal(run->nchanges, 1);
	assert_int_equal(run->changes[0].id, c2);
	assert_int_equal(run->changes[0].uid, 7);
	assert_true(proto_str_eq(run->changes[0].mailbox, "Archive"));
	assert_int_equal(
	    done(f, run->job_id, run->attempt, 0, 0, T0 + 4000), 0);

	/* a sync brings the moved row: it is the same row, no duplicate,
	 * and the pending flag change shows on it */
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE kind = 'drain'"), SQLITE_OK);
	again = row("Archive", 7, 0, "<m1@x>");
	sync_job(f, "a", NULL, 0, &again, 1, NULL, 0, NULL, 0, T0 + 20000);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " message_id = '<m1@x>'"),
	    1);
	assert_int_equal(
	    fx_q(f, "SELECT flagged FROM messages WHERE id = %llu",
	        (unsigned long long)m1),
	    1);
}

static void
test_outcomes_retry_dead_uncertain(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	struct proto_change_result r[4];
	uint64_t m1, m2, c1, c2, c3, c4, j;
	uint32_t att;
	int64_t next;
	char buf[256];

	world(f);
	m1 = msg(f, "INBOX", 1);
	m2 = msg(f, "INBOX", 2);
	c1 = flag_add(f, m1, PROTO_FLAG_SEEN, 0);
	c2 = move_add(f, m2, "Archive");
	c3 = add_ok(f,
	    (struct proto_change_add) {
	        .kind = CHANGE_SEND, .rfc822 = S(MSG_SEND) });
	c4 = add_ok(f,
	    (struct proto_change_add) {
	        .kind = CHANGE_SEND, .rfc822 = S(MSG_SEND) });
	run = lease_drain(f, T0 + 2000);
	assert_int_equal(run->nchanges, 4);
	assert_true(proto_str_eq(run->changes[2].to_mailbox, "Sent"));
	assert_int_equal(run->changes[2].step, 0);
	j = run->job_id;
	att = run->attempt;
	memset(r, 0, sizeof(r));
	r[0] = (struct proto_change_result) { .id = c1,
		.outcome = CHANGE_OUT_RETRY,
		.error = S("NO [INUSE] busy") };
	r[1] = (struct proto_change_result) { .id = c2,
		.outcome = CHANGE_OUT_DEAD,
		.error = S("NO [TRYCREATE] gone") };
	r[2] = (struct proto_change_result) { .id = c3,
		.outcome = CHANGE_OUT_UNCERTAIN,
		.error = S("connection lost") };
	r[3] = (struct proto_change_result) { .id = c4,
		.outcome = CHANGE_OUT_SENT };
	assert_int_equal(results(f, j, att, 1, r, 4, T0 + 3000), 0);
	assert_state(f, c1, "pending");
	next = fx_q(f, "SELECT next_at FROM pending_changes WHERE id = 1");
	assert_true(next >= T0 + 3000 + 2500 && next <= T0 + 3000 + 5000);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT last_error FROM pending_changes WHERE"
	                        " id = 1"),
	    "NO [INUSE] busy");
	/* dead: undone, the source's uidnext lowered to its UID */
	assert_state(f, c2, "dead");
	assert_int_equal(
	    fx_q(f, "SELECT count(*) FROM messages WHERE id = %llu",
	        (unsigned long long)m2),
	    0);
	assert_int_equal(
	    fx_q(f, "SELECT uidnext FROM mailboxes WHERE name = 'INBOX'"), 2);
	assert_state(f, c3, "uncertain");
	/* uncertain keeps its placeholder until the user decides */
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " remote_id = 'local:3'"),
	    1);
	assert_state(f, c4, "inflight");
	assert_int_equal(
	    fx_q(f, "SELECT step FROM pending_changes WHERE id = 4"), 1);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM sync_log WHERE kind ="
	                     " 'change'"),
	    3);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT detail FROM sync_log WHERE outcome = 'dead'"),
	    "change 2 (move): NO [TRYCREATE] gone");
	/* the attempt ends: the step-1 send is no longer at risk: pending */
	assert_int_equal(done(f, j, att, 1, 0, T0 + 4000), 0);
	assert_state(f, c4, "pending");
	/* max attempts: dead with the last error */
	assert_int_equal(fx_exec(f,
	                     "UPDATE pending_changes SET attempts = 7,"
	                     " next_at = 0 WHERE id = 1"),
	    SQLITE_OK);
	run = lease_drain(f, T0 + 10000);
	j = run->job_id;
	att = run->attempt;
	r[0] = (struct proto_change_result) {
		.id = c1, .outcome = CHANGE_OUT_RETRY, .error = S("busy again")
	};
	assert_int_equal(results(f, j, att, 1, r, 1, T0 + 11000), 0);
	assert_state(f, c1, "dead");
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT last_error FROM pending_changes WHERE"
	                        " id = 1"),
	    "gave up after 8 attempts: busy again");
	/* undo of a flag: the checkpoint goes below the row's modseq */
	assert_int_equal(
	    fx_q(
	        f, "SELECT highestmodseq FROM mailboxes WHERE name = 'INBOX'"),
	    10);
}

static void
test_attempt_end_without_results(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	struct proto_job_retry jr;
	uint64_t m1, c1, c2, j;
	uint32_t att;
	int64_t next;

	world(f);
	m1 = msg(f, "INBOX", 1);
	c1 = flag_add(f, m1, PROTO_FLAG_SEEN, 0);
	c2 = add_ok(f,
	    (struct proto_change_add) {
	        .kind = CHANGE_SEND, .rfc822 = S(MSG_SEND) });
	run = lease_drain(f, T0 + 2000);
	j = run->job_id;
	att = run->attempt;
	/* the worker failed without a result: the flag retries later, the
	 * step-0 send may have been delivered */
	assert_int_equal(done(f, j, att, 0, ERR_IO, T0 + 3000), 0);
	assert_state(f, c1, "pending");
	assert_state(f, c2, "uncertain");
	next = fx_q(f, "SELECT next_at FROM pending_changes WHERE id = 1");
	assert_true(next >= T0 + 3000 + 2500 && next <= T0 + 3000 + 5000);
	/* the drain job was requeued (joined) for the change's due time */
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM jobs WHERE kind ="
	                     " 'drain' AND state = 'queued'"),
	    1);
	assert_true(fx_q(f,
	                "SELECT due_at FROM jobs WHERE kind = 'drain'"
	                " AND state = 'queued'")
	    <= next);

	/* a lease given back before it expired (no worker took it): the
	 * send was never handed over, it stays pending */
	assert_int_equal(fx_exec(f,
	                     "UPDATE pending_changes SET state ="
	                     " 'pending', next_at = 0"),
	    SQLITE_OK);
	assert_int_equal(
	    fx_exec(f, "UPDATE jobs SET due_at = 0 WHERE kind = 'drain'"),
	    SQLITE_OK);
	run = lease_drain(f, T0 + 10000);
	j = run->job_id;
	att = run->attempt;
	assert_int_equal(run->nchanges, 2);
	jr = (struct proto_job_retry) { .job_id = j,
		.attempt = att,
		.state = JOB_QUEUED,
		.due_at = T0 + 10000,
		.error = S("no worker") };
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + 10001, fx_out(f)), 0);
	assert_state(f, c2, "pending");
	assert_state(f, c1, "pending");
	/* an expired lease: the send may have started */
	run = lease_drain(f, T0 + 30000);
	jr.job_id = run->job_id;
	jr.attempt = run->attempt;
	assert_int_equal(
	    store_job_retry(f->st, &jr, T0 + 30000 + LEASE + 1, fx_out(f)), 0);
	assert_state(f, c2, "uncertain");
	assert_state(f, c1, "pending");
}

/* Sync guards ---------------------------------------------------------------
 */

static void
test_sync_guards(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[4];
	uint64_t m1, m2;
	char buf[128];

	world(f);
	m1 = msg(f, "INBOX", 1);
	m2 = msg(f, "INBOX", 2);
	move_add(f, m1, "Trash");
	flag_add(f, m2, PROTO_FLAG_SEEN, 0);
	add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_FLAG,
	        .message_id = m2,
	        .keywords_add = S("$Work") });
	/* drop the drain job so a sync job can lease */
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE kind = 'drain'"), SQLITE_OK);
	m[0] = row("INBOX", 1, 0, "<m1@x>"); /* skip: moved away */
	m[1] = row("INBOX", 2, PROTO_FLAG_FLAGGED, "<m2@x>"); /* overlay */
	m[1].keywords = S("$Other");
	m[2] = row("INBOX", 2, 0, "<m2@x>");
	m[2].full = false; /* flag-only: overlay again */
	m[3] = row("INBOX", 4, 0, "<m4@x>"); /* a plain new row */
	sync_job(f, "a", NULL, 0, m, 4, NULL, 0, NULL, 0, T0 + 5000);
	/* skip: no row at INBOX uid 1; the placeholder is in Trash */
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages m JOIN"
	                     " mailboxes x ON x.id = m.mailbox_id WHERE"
	                     " x.name = 'INBOX' AND m.uid = 1"),
	    0);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " message_id = '<m1@x>'"),
	    1);
	/* overlay: the user's seen and keyword on top of the server's */
	assert_int_equal(fx_q(f, "SELECT seen FROM messages WHERE id = %llu",
	                     (unsigned long long)m2),
	    1);
	assert_int_equal(
	    fx_q(f, "SELECT flagged FROM messages WHERE id = %llu",
	        (unsigned long long)m2),
	    0);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT keywords FROM messages WHERE uid = 2"),
	    "$Work");
	assert_int_equal(
	    fx_q(f, "SELECT count(*) FROM messages WHERE uid = 4"), 1);
	/* once the change is over, the server's flags win again */
	assert_int_equal(fx_exec(f,
	                     "UPDATE pending_changes SET state ="
	                     " 'done'"),
	    SQLITE_OK);
	sync_job(f, "a", NULL, 0, &m[2], 1, NULL, 0, NULL, 0, T0 + 6000);
	assert_int_equal(fx_q(f, "SELECT seen FROM messages WHERE id = %llu",
	                     (unsigned long long)m2),
	    0);
}

static void
test_sync_merge_and_expunge(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[2];
	struct proto_expunge_row x[] = {
		{ .mailbox = S("Archive"),
		    .kind = EXPUNGE_VANISHED,
		    .uids = S("1:1000") },
		{ .mailbox = S("Trash"),
		    .kind = EXPUNGE_PRESENT,
		    .uids = { NULL, 0 },
		    .below = 100 },
	};
	uint64_t ca, ph, m1;
	char buf[128], want[64];

	world(f);
	m1 = msg(f, "INBOX", 1);
	move_add(f, m1, "Trash");
	ca = add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_APPEND,
	        .mailbox = S("Archive"),
	        .rfc822 = S(MSG_APPEND) });
	ph = (uint64_t)fx_q(f,
	    "SELECT id FROM messages WHERE remote_id ="
	    " 'local:2'");
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE kind = 'drain'"), SQLITE_OK);
	/* expunges never match placeholders */
	sync_job(f, "a", NULL, 0, NULL, 0, x, 2, NULL, 0, T0 + 5000);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE uid IS"
	                     " NULL"),
	    2);
	/* merge: a new row with the placeholder's Message-ID fills it */
	m[0] = row("Archive", 9, PROTO_FLAG_SEEN, "<new@x>");
	m[1] = row("Archive", 10, 0, "<other@x>");
	sync_job(f, "a", NULL, 0, m, 2, NULL, 0, NULL, 0, T0 + 6000);
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " message_id = '<new@x>'"),
	    1);
	assert_string_equal(
	    fx_qs(f, buf, sizeof(buf),
	        "SELECT id || ' ' || uid || ' ' || coalesce(remote_id, 'null')"
	        " || ' ' || seen FROM messages WHERE message_id = '<new@x>'"),
	    (snprintf(
	         want, sizeof(want), "%llu 9 null 1", (unsigned long long)ph),
	        want));
	/* the append's result later: the same row, no duplicate */
	assert_state(f, ca, "pending");
}

/* Undo, resolve ------------------------------------------------------------
 */

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
test_undo_dependents(void **state)
{
	struct fx *f = *state;
	const struct proto_job_run *run;
	struct proto_change_result r;
	uint64_t m1, c1, c2, ca, cf, j;
	uint32_t att;
	char buf[128];

	world(f);
	m1 = msg(f, "INBOX", 1);
	c1 = move_add(f, m1, "Archive");
	c2 = move_add(f, m1, "Trash"); /* waits on c1's placeholder */
	ca = add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_APPEND,
	        .mailbox = S("Archive"),
	        .rfc822 = S(MSG_APPEND) });
	cf = flag_add(f,
	    (uint64_t)fx_q(f,
	        "SELECT id FROM messages WHERE"
	        " remote_id = 'local:3'"),
	    PROTO_FLAG_FLAGGED, 0);
	run = lease_drain(f, T0 + 2000);
	assert_int_equal(run->nchanges, 2); /* c1 and the append */
	j = run->job_id;
	att = run->attempt;
	r = (struct proto_change_result) {
		.id = c1, .outcome = CHANGE_OUT_DEAD, .error = S("NO")
	};
	assert_int_equal(results(f, j, att, 1, &r, 1, T0 + 3000), 0);
	/* c2 acts on the source again; its placeholder (the row) stays */
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT mailbox || ' ' || uid FROM"
	                        " pending_changes WHERE id = 2"),
	    "INBOX 1");
	assert_int_equal(fx_q(f,
	                     "SELECT remote_id = 'local:2' FROM messages"
	                     " WHERE id = %llu",
	                     (unsigned long long)m1),
	    1);
	r = (struct proto_change_result) { .id = ca,
		.outcome = CHANGE_OUT_DEAD,
		.error = S("NO [OVERQUOTA]") };
	assert_int_equal(results(f, j, att, 2, &r, 1, T0 + 3000), 0);
	/* the flag change on the append's placeholder cannot land */
	assert_state(f, cf, "dead");
	assert_non_null(strstr(fx_qs(f, buf, sizeof(buf),
	                           "SELECT last_error FROM pending_changes"
	                           " WHERE id = 4"),
	    "change 3, which it needs, did not land"));
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " remote_id = 'local:3'"),
	    0);
	assert_state(f, c2, "pending");
	/* retrying c1 does not take the row from c2, whose placeholder it
	 * is now */
	assert_int_equal(store_change_resolve(f->st,
	                     &(struct proto_change_resolve) {
	                         .change_id = c1, .action = S("retry") },
	                     T0 + 4000, fx_out(f)),
	    0);
	assert_int_equal(fx_q(f,
	                     "SELECT remote_id = 'local:2' FROM messages"
	                     " WHERE id = %llu",
	                     (unsigned long long)m1),
	    1);
}

/* Retarget -----------------------------------------------------------------
 */

static void
test_retarget_after_reset(void **state)
{
	struct fx *f = *state;
	struct proto_mailbox_row mb = mailboxes[0];
	struct proto_message_row m[2];
	struct proto_checkpoint cp = { S("INBOX"), 101, 20, 90 };
	uint64_t m2, m3, c2, c3, c1, m1;
	int64_t nrow;
	char buf[128];

	world(f);
	m1 = msg(f, "INBOX", 1);
	m2 = msg(f, "INBOX", 2);
	m3 = msg(f, "INBOX", 3);
	c1 = move_add(f, m1, "Archive");
	c2 = flag_add(f, m2, PROTO_FLAG_SEEN, 0);
	c3 = flag_add(f, m3, PROTO_FLAG_SEEN, 0);
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE kind = 'drain'"), SQLITE_OK);
	/* INBOX is reset: m2 is back as uid 12, m1 as uid 11, m3 is gone */
	mb.uidvalidity = 101;
	mb.reset = true;
	m[0] = row("INBOX", 12, 0, "<m2@x>");
	m[1] = row("INBOX", 11, 0, "<m1@x>");
	sync_job(f, "a", &mb, 1, m, 2, NULL, 0, &cp, 1, T0 + 5000);
	nrow = fx_q(f, "SELECT id FROM messages WHERE uid = 12");
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT uidvalidity || ' ' || uid FROM"
	                        " pending_changes WHERE id = 2"),
	    "101 12");
	assert_int_equal(
	    fx_q(f, "SELECT message_id FROM pending_changes WHERE id = 2"),
	    nrow);
	/* the overlay was re-applied on the new row */
	assert_int_equal(
	    fx_q(f, "SELECT seen FROM messages WHERE uid = 12"), 1);
	/* the move follows its message; the copy fetched again goes, the
	 * placeholder (reset kept it) stays */
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
	                        "SELECT uidvalidity || ' ' || uid FROM"
	                        " pending_changes WHERE id = 1"),
	    "101 11");
	assert_int_equal(fx_q(f,
	                     "SELECT count(*) FROM messages WHERE"
	                     " message_id = '<m1@x>'"),
	    1);
	assert_int_equal(fx_q(f,
	                     "SELECT remote_id = 'local:1' FROM messages"
	                     " WHERE message_id = '<m1@x>'"),
	    1);
	/* m3 cannot be found: dead with the reason */
	assert_state(f, c3, "dead");
	assert_non_null(strstr(fx_qs(f, buf, sizeof(buf),
	                           "SELECT last_error FROM pending_changes"
	                           " WHERE id = 3"),
	    "mailbox was reset (UIDVALIDITY changed)"));
	/* the next sync does not move them again */
	(void)c1;
	(void)c2;
	(void)m2;
	(void)m3;
}

/* Maintenance, prune, accounts -------------------------------------------- */

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

static double
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return ((double)(t1.tv_sec - t0->tv_sec) * 1e3
	    + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6);
}

/* 10,000 rows in one batch; *ms_r its apply time. */
static void
apply_10k(struct fx *f, const char *mbox, uint32_t base, double *ms_r)
{
	struct proto_message_row *m = calloc(10000, sizeof(*m));
	struct proto_mailbox_row mb
	    = { .name = { mbox, strlen(mbox) }, .uidvalidity = 7 };
	struct proto_job_submit js
	    = { .account = S("a"), .kind = JOB_KIND_SYNC };
	struct proto_batch b;
	struct timespec t0;
	uint64_t j;
	uint32_t att;
	size_t i;

	assert_non_null(m);
	for (i = 0; i < 10000; i++) {
		m[i] = row(mbox, base + (uint32_t)i, 0, "<perf@x>");
	}
	assert_int_equal(store_job_submit(f->st, &js, T0, fx_out(f)), 0);
	j = f->out.reply.id;
	att = fx_lease(f, j, T0);
	memset(&b, 0, sizeof(b));
	b.job_id = j;
	b.attempt = att;
	b.seq = 1;
	b.mailboxes = &mb;
	b.nmailboxes = 1;
	b.messages = m;
	b.nmessages = 10000;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(store_apply_batch(f->st, &b, T0, fx_out(f)), 0);
	*ms_r = ms_since(&t0);
	assert_int_equal(done(f, j, att, 1, 0, T0), 0);
	free(m);
}

static void
test_guard_cost(void **state)
{
	struct fx *f = *state;
	double none, some;

	world(f);
	apply_10k(f, "P1", 1, &none);
	flag_add(f, msg(f, "INBOX", 1), PROTO_FLAG_SEEN, 0);
	move_add(f, msg(f, "INBOX", 2), "Archive");
	assert_int_equal(
	    fx_exec(f, "DELETE FROM jobs WHERE kind = 'drain'"), SQLITE_OK);
	apply_10k(f, "P2", 1, &some);
	print_message("10,000-row batch: %.1f ms without active changes, "
	              "%.1f ms with 2\n",
	    none, some);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages"), 20004);
}

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
		    test_lease_selection, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_lease_waits_and_budget, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_outcomes_move_append, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_outcomes_retry_dead_uncertain, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_attempt_end_without_results, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_sync_guards, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_sync_merge_and_expunge, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_resolve, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_resolve_uncertain_send, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_undo_dependents, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_retarget_after_reset, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_maintain_and_prune, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_account_smtp, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_account_remove_cascade, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_guard_cost, fx_setup, fx_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
