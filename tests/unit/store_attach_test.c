/*
 * store_attach_test.c: attachment rows of worker.result.batch in
 * pkg/store (attach.c): stored with every column, idempotent when a batch
 * is re-applied or its rows re-sent, replaced when a message's full row
 * comes again, kept by flag-only rows, gone with their message (cascade,
 * mailbox reset), and bad rows rejecting the whole batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_fixture.h"

static struct proto_mailbox_row inbox = {
	.name = { "INBOX", 5 },
	.delimiter = { "/", 1 },
	.uidvalidity = 100,
};

static struct proto_message_row
msg(uint32_t uid, bool full)
{
	struct proto_message_row r;

	memset(&r, 0, sizeof(r));
	r.mailbox = S("INBOX");
	r.uid = uid;
	r.full = full;
	r.subject = S("s");
	r.has_attachments = full;
	return (r);
}

static struct proto_attachment_row
att(uint32_t uid, const char *part, const char *filename, uint64_t size)
{
	struct proto_attachment_row a;

	memset(&a, 0, sizeof(a));
	a.mailbox = S("INBOX");
	a.uid = uid;
	a.part = proto_str_c(part);
	a.filename = proto_str_c(filename);
	a.mime_type = S("application/pdf");
	a.size = size;
	a.disposition = S("attachment");
	return (a);
}

static uint64_t
leased_job(struct fx *f)
{
	uint64_t acct = fx_account(f, "a"), j = fx_queued(f, acct);

	fx_lease(f, j, T0);
	return (j);
}

static struct proto_batch
batch(uint64_t j, uint32_t seq, struct proto_mailbox_row *mb,
    struct proto_message_row *m, size_t nm, struct proto_attachment_row *a,
    size_t na)
{
	struct proto_batch b;

	memset(&b, 0, sizeof(b));
	b.job_id = j;
	b.attempt = 1;
	b.seq = seq;
	b.mailboxes = mb;
	b.nmailboxes = mb != NULL ? 1 : 0;
	b.messages = m;
	b.nmessages = nm;
	b.attachments = a;
	b.nattachments = na;
	return (b);
}

static void
apply_ok(struct fx *f, const struct proto_batch *b)
{
	if (store_apply_batch(f->st, b, T0 + b->seq, fx_out(f)) != 0) {
		fail_msg("batch %u: %.*s", b->seq,
		    (int)f->out.reply.error.len, f->out.reply.error.p);
	}
}

/* The attachments of a uid as "part:filename:size" joined by " ". */
static const char *
list(struct fx *f, char *buf, size_t n, uint32_t uid)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	    "SELECT group_concat(part || ':' || coalesce(filename, '-') || ':'"
	    " || size, ' ') FROM (SELECT a.* FROM attachments a JOIN messages"
	    " m ON m.id = a.message_id WHERE m.uid = %u ORDER BY a.part)",
	    uid);
	return (fx_qs(f, buf, n, sql));
}

static void
test_attach_stored_and_idempotent(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[2] = { msg(1, true), msg(2, true) };
	struct proto_attachment_row a[3] = {
		att(1, "2", "R\xc3\xa9sum\xc3\xa9.pdf", 1000),
		att(1, "1.2.2", "logo.png", 30),
		att(2, "2", NULL, 390),
	};
	struct proto_batch b;
	char buf[256];
	uint64_t j;

	j = leased_job(f);
	a[1].mime_type = S("image/png");
	a[1].disposition = S("inline");
	a[1].content_id = S("<logo@x>");
	a[2].mime_type = S("message/rfc822");
	a[2].disposition = proto_str_c(NULL);
	b = batch(j, 1, &inbox, m, 2, a, 3);
	apply_ok(f, &b);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM attachments"), 3);
	assert_string_equal(list(f, buf, sizeof(buf), 1),
	    "1.2.2:logo.png:30 2:R\xc3\xa9sum\xc3\xa9.pdf:1000");
	assert_string_equal(list(f, buf, sizeof(buf), 2), "2:-:390");
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
				"SELECT mime_type || ' ' || disposition || ' '"
				" || content_id FROM attachments"
				" WHERE part = '1.2.2'"),
	    "image/png inline <logo@x>");
	assert_int_equal(fx_q(f,
			     "SELECT count(*) FROM attachments WHERE"
			     " disposition IS NULL AND content_id IS NULL"
			     " AND mime_type = 'message/rfc822'"),
	    1);

	/* The same batch again is a duplicate; the same rows in a new
	 * batch (or a new attempt) converge to the same table. */
	apply_ok(f, &b);
	b.seq = 2;
	apply_ok(f, &b);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM attachments"), 3);
	assert_string_equal(list(f, buf, sizeof(buf), 1),
	    "1.2.2:logo.png:30 2:R\xc3\xa9sum\xc3\xa9.pdf:1000");
}

static void
test_attach_replaced_and_cascade(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[3] = { msg(1, true), msg(2, true),
		msg(3, true) };
	struct proto_attachment_row a[4] = {
		att(1, "2", "a.pdf", 1),
		att(1, "3", "b.pdf", 2),
		att(2, "2", "c.pdf", 3),
		att(3, "1", "d.pdf", 4),
	};
	struct proto_message_row m2[2];
	struct proto_attachment_row a2[1];
	struct proto_mailbox_row mb;
	struct proto_batch b;
	char buf[256];
	uint64_t j;

	j = leased_job(f);
	b = batch(j, 1, &inbox, m, 3, a, 4);
	apply_ok(f, &b);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM attachments"), 4);

	/* uid 1 again with one changed attachment: its list is replaced;
	 * uid 2 again with none: cleared; uid 3 absent: untouched. */
	m2[0] = msg(1, true);
	m2[1] = msg(2, true);
	m2[1].has_attachments = false;
	a2[0] = att(1, "3", "b-v2.pdf", 5);
	b = batch(j, 2, NULL, m2, 2, a2, 1);
	apply_ok(f, &b);
	assert_string_equal(list(f, buf, sizeof(buf), 1), "3:b-v2.pdf:5");
	assert_string_equal(list(f, buf, sizeof(buf), 2), "");
	assert_string_equal(list(f, buf, sizeof(buf), 3), "1:d.pdf:4");

	/* A flag-only row keeps the list. */
	m2[0] = msg(1, false);
	b = batch(j, 3, NULL, m2, 1, NULL, 0);
	apply_ok(f, &b);
	assert_string_equal(list(f, buf, sizeof(buf), 1), "3:b-v2.pdf:5");

	/* Deleting a message deletes its attachments. */
	assert_int_equal(fx_exec(f, "DELETE FROM messages WHERE uid = 3"),
	    SQLITE_OK);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM attachments"), 1);

	/* A UIDVALIDITY reset drops the mailbox's attachments too. */
	mb = inbox;
	mb.uidvalidity = 200;
	mb.reset = true;
	b = batch(j, 4, &mb, NULL, 0, NULL, 0);
	apply_ok(f, &b);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM attachments"), 0);
}

static void
test_attach_new_rows(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[3] = { msg(1, true), msg(2, true),
		msg(3, true) };
	struct proto_attachment_row a[3] = {
		att(1, "2", "a.pdf", 1),
		att(2, "2", "b.pdf", 2),
		att(3, "2", "c.pdf", 3),
	};
	struct proto_message_row m2[3];
	struct proto_attachment_row a2[1];
	struct proto_batch b;
	char buf[256];
	uint64_t j;

	/* A new row skips the DELETE of its (empty) list: a rowid reused
	 * after the highest message was deleted finds none either. */
	j = leased_job(f);
	b = batch(j, 1, &inbox, m, 3, a, 3);
	apply_ok(f, &b);
	assert_int_equal(fx_exec(f, "DELETE FROM messages WHERE uid = 3"),
	    SQLITE_OK);
	m2[0] = msg(4, true);
	m2[0].has_attachments = false;
	b = batch(j, 2, NULL, m2, 1, NULL, 0);
	apply_ok(f, &b);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM messages m JOIN"
				 " attachments a ON a.message_id = m.id"
				 " WHERE m.uid = 4"),
	    0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM attachments"), 2);

	/* A message new to the batch and then repeated in it (the second
	 * row updates): its list is the batch's rows for it; an old row
	 * next to it is still replaced. */
	m2[0] = msg(5, true);
	m2[1] = msg(5, true);
	m2[2] = msg(1, true);
	m2[2].has_attachments = false;
	a2[0] = att(5, "3", "e.pdf", 6);
	b = batch(j, 3, NULL, m2, 3, a2, 1);
	apply_ok(f, &b);
	assert_string_equal(list(f, buf, sizeof(buf), 5), "3:e.pdf:6");
	assert_string_equal(list(f, buf, sizeof(buf), 1), "");
	assert_string_equal(list(f, buf, sizeof(buf), 2), "2:b.pdf:2");
}

static void
test_attach_rejected(void **state)
{
	struct fx *f = *state;
	struct proto_message_row m[2] = { msg(1, true), msg(2, false) };
	struct proto_attachment_row a[1];
	struct proto_batch b;
	char buf[64];
	uint64_t j;

	j = leased_job(f);
	b = batch(j, 1, &inbox, m, 1, NULL, 0);
	apply_ok(f, &b);

	/* No full row for the attachment's message in the batch (a
	 * flag-only row does not count). */
	a[0] = att(2, "2", "x.pdf", 1);
	b = batch(j, 2, NULL, m, 2, a, 1);
	assert_int_equal(
	    store_apply_batch(f->st, &b, T0 + 10, fx_out(f)), ERR_PROTO);
	assert_fail(f, ERR_PROTO, "no full message row");
	a[0].mailbox = S("Sent");
	a[0].uid = 1;
	assert_int_equal(
	    store_apply_batch(f->st, &b, T0 + 10, fx_out(f)), ERR_PROTO);
	/* Bad strings and values. */
	a[0] = att(1, "2", "bad\xff.pdf", 1);
	assert_int_equal(
	    store_apply_batch(f->st, &b, T0 + 10, fx_out(f)), ERR_INVAL);
	assert_fail(f, ERR_INVAL, "attachments[0].filename");
	a[0] = att(1, "", "x.pdf", 1);
	assert_int_equal(
	    store_apply_batch(f->st, &b, T0 + 10, fx_out(f)), ERR_INVAL);
	assert_fail(f, ERR_INVAL, "attachments[0].part");
	a[0] = att(1, "2", "x\n.pdf", 1);
	assert_int_equal(
	    store_apply_batch(f->st, &b, T0 + 10, fx_out(f)), ERR_INVAL);
	a[0] = att(1, "2", "x.pdf", (uint64_t)INT64_MAX + 1);
	assert_int_equal(
	    store_apply_batch(f->st, &b, T0 + 10, fx_out(f)), ERR_PROTO);
	a[0] = att(0, "2", "x.pdf", 1);
	assert_int_equal(
	    store_apply_batch(f->st, &b, T0 + 10, fx_out(f)), ERR_PROTO);
	/* Nothing was applied: not even the message rows. */
	assert_int_equal(fx_q(f, "SELECT count(*) FROM attachments"), 0);
	assert_int_equal(fx_q(f, "SELECT count(*) FROM job_batches"), 1);

	/* A nil mime_type is stored as application/octet-stream. */
	a[0] = att(1, "2", "x.bin", 1);
	a[0].mime_type = proto_str_c(NULL);
	apply_ok(f, &b);
	assert_string_equal(fx_qs(f, buf, sizeof(buf),
				"SELECT mime_type FROM attachments"),
	    "application/octet-stream");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_attach_stored_and_idempotent, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_attach_replaced_and_cascade, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_attach_new_rows, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_attach_rejected, fx_setup, fx_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
