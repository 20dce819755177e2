/*
 * store_change_fixture.h: what the local-change tests of pkg/store share
 * (store_change_test.c, store_drain_test.c): an account with mailboxes
 * and messages put there by a sync job, submitting changes, leasing the
 * drain, sending results. Header-only, static inline helpers (a file uses
 * some). Include after store_fixture.h.
 */
#ifndef MAILSYNC_STORE_CHANGE_FIXTURE_H
#define MAILSYNC_STORE_CHANGE_FIXTURE_H

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

static inline struct proto_message_row
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
static inline uint64_t
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
static inline void
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
static inline uint64_t
world(struct fx *f)
{
	struct proto_message_row m[4];
	struct proto_checkpoint cp[] = {
		{ .mailbox = S("INBOX"), 100, 4, 50 },
		{ .mailbox = S("Trash"), 200, 6, 60 },
		{ .mailbox = S("Sent"), 300, 1, 1 },
		{ .mailbox = S("Archive"), 400, 1, 1 },
	};
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
static inline uint64_t
msg(struct fx *f, const char *mbox, uint32_t uid)
{
	int64_t v = fx_q(f,
	    "SELECT m.id FROM messages m JOIN mailboxes x ON x.id ="
	    " m.mailbox_id WHERE x.name = '%s' AND m.uid = %u",
	    mbox, uid);

	assert_true(v > 0);
	return ((uint64_t)v);
}

static inline int
add(struct fx *f, struct proto_change_add c)
{
	if (c.account.p == NULL) {
		c.account = S("a");
	}
	return (store_change_add(f->st, &c, T0 + 1000, fx_out(f)));
}

/* Adds a change that must succeed; returns its id. */
static inline uint64_t
add_ok(struct fx *f, struct proto_change_add c)
{
	if (add(f, c) != 0) {
		fail_msg("change_add: %s", f->out.errtext);
	}
	return (f->out.reply.id);
}

static inline uint64_t
flag_add(struct fx *f, uint64_t id, uint32_t fa, uint32_t fr)
{
	return (add_ok(f,
	    (struct proto_change_add) { .kind = CHANGE_FLAG,
	        .message_id = id,
	        .flags_add = fa,
	        .flags_remove = fr }));
}

static inline uint64_t
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

static inline uint64_t
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

static inline int
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

static inline int
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

#endif
