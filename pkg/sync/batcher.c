/*
 * batcher.c: collects the rows of one job attempt and hands them to the
 * sink as numbered batches, so the worker's memory is bounded by one batch
 * whatever the size of the mailbox. A batch is flushed when it reaches
 * batch_rows rows or batch_bytes bytes of strings. Every string is copied
 * into a per-batch arena (a struct buf), so callers keep no obligations.
 *
 * Attachment rows are added just before their message's full row and are
 * pending until it comes; flushes happen only after a message or mailbox
 * row, so a message's attachments always travel in its batch.
 *
 * A drain's change results (sync_batcher_add_change_result) ride the same
 * way; the drain flushes after each mailbox's answers.
 */
#include <stdlib.h>
#include <string.h>

#include "sync.h"

struct sync_batcher {
	uint64_t job_id;
	uint32_t attempt;
	uint32_t seq;	   /* last batch sent */
	uint64_t nmessages; /* message rows sent or pending */
	struct sync_limits lim;
	struct sync_sink sink;
	struct proto_mailbox_row *mbx;
	size_t nmbx, capmbx;
	struct proto_message_row *msg;
	size_t nmsg;
	struct proto_attachment_row *att;
	size_t natt, capatt;
	struct proto_change_result *chg;
	size_t nchg, capchg;
	/* Attachments added since the last message row, all for one
	 * (mailbox, uid); pend_mbox is an arena offset like the rows'. */
	size_t npending;
	uint32_t pend_uid;
	struct proto_str pend_mbox;
	/*
	 * Strings of pending rows. Rows hold offsets into it (cast into the
	 * pointer field) until flush, because the arena may move as it
	 * grows; flush turns them into pointers.
	 */
	struct buf arena;
};

/* Offsets are stored biased by one so that 0 keeps meaning "nil". */
static int
arena_put(struct sync_batcher *b, struct proto_str in, struct proto_str *out)
{
	size_t off;
	int rv;

	if (in.p == NULL) {
		out->p = NULL;
		out->len = 0;
		return (ERR_OK);
	}
	off = b->arena.len;
	rv = buf_add(&b->arena, in.p, in.len);
	if (rv != 0) {
		return (rv);
	}
	/* Keep a terminator so rows are C strings too. */
	rv = buf_add(&b->arena, "", 1);
	if (rv != 0) {
		return (rv);
	}
	out->p = (const char *)(uintptr_t)(off + 1);
	out->len = in.len;
	return (ERR_OK);
}

static void
arena_fix(const struct sync_batcher *b, struct proto_str *s)
{
	if (s->p != NULL) {
		s->p = b->arena.data + ((uintptr_t)s->p - 1);
	}
}

/* s cut to at most max bytes at a UTF-8 character boundary. */
static struct proto_str
clip(struct proto_str s, size_t max)
{
	if (s.p != NULL && s.len > max) {
		s.len = max;
		while (s.len > 0 &&
		    ((unsigned char)s.p[s.len] & 0xC0) == 0x80) {
			s.len--;
		}
	}
	return (s);
}

/* True when the pending attachments belong to (mailbox, uid). */
static bool
pending_is(const struct sync_batcher *b, struct proto_str mailbox,
    uint32_t uid)
{
	struct proto_str m = clip(mailbox, SYNC_MAX_ATTACH_FIELD);
	const char *p;

	if (uid != b->pend_uid || m.len != b->pend_mbox.len) {
		return (false);
	}
	if (m.p == NULL || b->pend_mbox.p == NULL) {
		return (m.p == b->pend_mbox.p);
	}
	p = b->arena.data + ((uintptr_t)b->pend_mbox.p - 1);
	return (memcmp(p, m.p, m.len) == 0);
}

int
sync_batcher_new(uint64_t job_id, uint32_t attempt,
    const struct sync_limits *l, const struct sync_sink *sink,
    struct sync_batcher **b_r)
{
	struct sync_batcher *b;

	*b_r = NULL;
	if (l->batch_rows == 0 || l->batch_rows > PROTO_MAX_ROWS) {
		return (ERR_INVAL);
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL) {
		return (ERR_NOMEM);
	}
	b->msg = calloc(l->batch_rows, sizeof(*b->msg));
	if (b->msg == NULL) {
		free(b);
		return (ERR_NOMEM);
	}
	b->job_id = job_id;
	b->attempt = attempt;
	b->lim = *l;
	b->sink = *sink;
	/* Room for one more row's strings past the flush threshold, and
	 * for the attachment rows pending before it. */
	buf_init(&b->arena,
	    l->batch_bytes + 16 * (SYNC_MAX_FIELD + 1)
		+ SYNC_MAX_ATTACHMENTS * 6 * (SYNC_MAX_ATTACH_FIELD + 1));
	*b_r = b;
	return (ERR_OK);
}

void
sync_batcher_free(struct sync_batcher **bp)
{
	struct sync_batcher *b = *bp;

	if (b == NULL) {
		return;
	}
	buf_release(&b->arena);
	free(b->mbx);
	free(b->msg);
	free(b->att);
	free(b->chg);
	free(b);
	*bp = NULL;
}

static bool
batcher_full(const struct sync_batcher *b)
{
	return (b->nmsg >= b->lim.batch_rows ||
	    b->nmbx >= b->lim.batch_rows || b->natt >= b->lim.batch_rows ||
	    b->nchg >= b->lim.batch_rows || b->nchg >= PROTO_MAX_CHANGES ||
	    b->arena.len >= b->lim.batch_bytes);
}

int
sync_batcher_flush(struct sync_batcher *b)
{
	struct proto_batch pb;
	size_t i;
	int rv;

	if (b->npending > 0) {
		return (ERR_INVAL); /* attachments without their message */
	}
	if (b->nmsg == 0 && b->nmbx == 0 && b->natt == 0 && b->nchg == 0) {
		return (ERR_OK);
	}
	for (i = 0; i < b->nmbx; i++) {
		arena_fix(b, &b->mbx[i].name);
		arena_fix(b, &b->mbx[i].delimiter);
		arena_fix(b, &b->mbx[i].role);
		arena_fix(b, &b->mbx[i].remote_id);
	}
	for (i = 0; i < b->nmsg; i++) {
		struct proto_message_row *m = &b->msg[i];

		arena_fix(b, &m->mailbox);
		arena_fix(b, &m->keywords);
		arena_fix(b, &m->remote_id);
		arena_fix(b, &m->message_id);
		arena_fix(b, &m->subject);
		arena_fix(b, &m->from_addr);
		arena_fix(b, &m->to_addrs);
		arena_fix(b, &m->cc_addrs);
		arena_fix(b, &m->in_mailboxes);
	}
	for (i = 0; i < b->natt; i++) {
		struct proto_attachment_row *a = &b->att[i];

		arena_fix(b, &a->mailbox);
		arena_fix(b, &a->part);
		arena_fix(b, &a->filename);
		arena_fix(b, &a->mime_type);
		arena_fix(b, &a->disposition);
		arena_fix(b, &a->content_id);
		arena_fix(b, &a->remote_id);
	}
	for (i = 0; i < b->nchg; i++) {
		arena_fix(b, &b->chg[i].error);
		arena_fix(b, &b->chg[i].mailbox);
		arena_fix(b, &b->chg[i].remote_id);
	}
	memset(&pb, 0, sizeof(pb));
	pb.job_id = b->job_id;
	pb.attempt = b->attempt;
	pb.seq = b->seq + 1;
	pb.mailboxes = b->mbx;
	pb.nmailboxes = b->nmbx;
	pb.messages = b->msg;
	pb.nmessages = b->nmsg;
	pb.attachments = b->att;
	pb.nattachments = b->natt;
	pb.change_results = b->chg;
	pb.nchange_results = b->nchg;
	rv = b->sink.batch(&pb, b->sink.arg);
	/* Sent or not, the rows' pointers are now invalid: start afresh. */
	b->nmbx = 0;
	b->nmsg = 0;
	b->natt = 0;
	b->nchg = 0;
	buf_reset(&b->arena);
	if (rv != 0) {
		return (rv);
	}
	b->seq++;
	return (ERR_OK);
}

int
sync_batcher_add_mailbox(struct sync_batcher *b,
    const struct proto_mailbox_row *row)
{
	struct proto_mailbox_row r = *row;
	int rv;

	if (b->npending > 0) {
		return (ERR_INVAL); /* attachments without their message */
	}
	if (b->nmbx == b->capmbx) {
		size_t ncap = b->capmbx != 0 ? b->capmbx * 2 : 16;
		struct proto_mailbox_row *p;

		if (ncap > b->lim.batch_rows) {
			ncap = b->lim.batch_rows;
		}
		p = realloc(b->mbx, ncap * sizeof(*p));
		if (p == NULL) {
			return (ERR_NOMEM);
		}
		b->mbx = p;
		b->capmbx = ncap;
	}
	rv = arena_put(b, row->name, &r.name);
	if (rv == 0) {
		rv = arena_put(b, row->delimiter, &r.delimiter);
	}
	if (rv == 0) {
		rv = arena_put(b, row->role, &r.role);
	}
	if (rv == 0) {
		rv = arena_put(b, row->remote_id, &r.remote_id);
	}
	if (rv != 0) {
		return (rv);
	}
	b->mbx[b->nmbx++] = r;
	if (batcher_full(b)) {
		return (sync_batcher_flush(b));
	}
	return (ERR_OK);
}

int
sync_batcher_add_message(struct sync_batcher *b,
    const struct proto_message_row *row)
{
	struct proto_message_row r = *row;
	const struct proto_str *src[] = { &row->mailbox, &row->keywords,
		&row->remote_id, &row->message_id, &row->subject,
		&row->from_addr, &row->to_addrs, &row->cc_addrs,
		&row->in_mailboxes };
	struct proto_str *dst[] = { &r.mailbox, &r.keywords, &r.remote_id,
		&r.message_id, &r.subject, &r.from_addr, &r.to_addrs,
		&r.cc_addrs, &r.in_mailboxes };
	size_t i;
	int rv;

	if (b->npending > 0
	    && (!row->full || !pending_is(b, row->mailbox, row->uid))) {
		return (ERR_INVAL); /* attachments of another message */
	}
	for (i = 0; i < ARRAY_LEN(src); i++) {
		/* A server may send anything: clip long fields at a UTF-8
		 * character boundary so one row stays small. */
		rv = arena_put(b, clip(*src[i], SYNC_MAX_FIELD), dst[i]);
		if (rv != 0) {
			return (rv);
		}
	}
	b->msg[b->nmsg++] = r;
	b->nmessages++;
	b->npending = 0;
	if (batcher_full(b)) {
		return (sync_batcher_flush(b));
	}
	return (ERR_OK);
}

int
sync_batcher_add_attachment(struct sync_batcher *b,
    const struct proto_attachment_row *row)
{
	struct proto_attachment_row r = *row;
	const struct proto_str *src[] = { &row->mailbox, &row->part,
		&row->filename, &row->mime_type, &row->disposition,
		&row->content_id, &row->remote_id };
	struct proto_str *dst[] = { &r.mailbox, &r.part, &r.filename,
		&r.mime_type, &r.disposition, &r.content_id, &r.remote_id };
	size_t i, mark = b->arena.len;
	int rv;

	if (b->npending > 0 && !pending_is(b, row->mailbox, row->uid)) {
		return (ERR_INVAL); /* the previous message's row is missing */
	}
	if (b->npending >= SYNC_MAX_ATTACHMENTS
	    || b->natt >= PROTO_MAX_ROWS) {
		return (ERR_TOOBIG);
	}
	if (b->natt == b->capatt) {
		size_t ncap = b->capatt != 0 ? b->capatt * 2 : 16;
		struct proto_attachment_row *p;

		p = realloc(b->att, ncap * sizeof(*p));
		if (p == NULL) {
			return (ERR_NOMEM);
		}
		b->att = p;
		b->capatt = ncap;
	}
	for (i = 0; i < ARRAY_LEN(src); i++) {
		rv = arena_put(b, clip(*src[i], SYNC_MAX_ATTACH_FIELD), dst[i]);
		if (rv != 0) {
			/* Drop this row's strings: the batch stays whole. */
			b->arena.len = mark;
			if (b->arena.data != NULL) {
				b->arena.data[mark] = '\0';
			}
			return (rv);
		}
	}
	if (b->npending == 0) {
		b->pend_uid = row->uid;
		b->pend_mbox = r.mailbox;
	}
	b->att[b->natt++] = r;
	b->npending++;
	return (ERR_OK);
}

int
sync_batcher_add_change_result(struct sync_batcher *b,
    const struct proto_change_result *row)
{
	struct proto_change_result r = *row;
	size_t mark = b->arena.len;
	int rv;

	if (b->npending > 0) {
		return (ERR_INVAL); /* attachments without their message */
	}
	if (b->nchg == b->capchg) {
		size_t ncap = b->capchg != 0 ? b->capchg * 2 : 16;
		struct proto_change_result *p;

		p = realloc(b->chg, ncap * sizeof(*p));
		if (p == NULL) {
			return (ERR_NOMEM);
		}
		b->chg = p;
		b->capchg = ncap;
	}
	rv = arena_put(b, clip(row->error, SYNC_MAX_ERROR), &r.error);
	if (rv == 0) {
		rv = arena_put(b, row->mailbox, &r.mailbox);
	}
	if (rv == 0) {
		rv = arena_put(b, row->remote_id, &r.remote_id);
	}
	if (rv != 0) {
		b->arena.len = mark;
		if (b->arena.data != NULL) {
			b->arena.data[mark] = '\0';
		}
		return (rv);
	}
	b->chg[b->nchg++] = r;
	if (batcher_full(b)) {
		return (sync_batcher_flush(b));
	}
	return (ERR_OK);
}

int
sync_batcher_send_expunges(struct sync_batcher *b,
    const struct proto_expunge_row *rows, size_t n)
{
	struct proto_batch pb;
	size_t i, bytes = 0;
	int rv;

	for (i = 0; i < n; i++) {
		bytes += rows[i].uids.len;
		if (rows[i].uids.len > PROTO_MAX_STR || bytes > PROTO_MAX_STR) {
			return (ERR_TOOBIG);
		}
	}
	if (n == 0) {
		return (ERR_OK);
	}
	/* The mailbox's own row, if pending, must be applied first. */
	rv = sync_batcher_flush(b);
	if (rv != 0) {
		return (rv);
	}
	memset(&pb, 0, sizeof(pb));
	pb.job_id = b->job_id;
	pb.attempt = b->attempt;
	pb.seq = b->seq + 1;
	pb.expunged = (struct proto_expunge_row *)rows;
	pb.nexpunged = n;
	rv = b->sink.batch(&pb, b->sink.arg);
	if (rv != 0) {
		return (rv);
	}
	b->seq++;
	return (ERR_OK);
}

uint32_t
sync_batcher_nbatches(const struct sync_batcher *b)
{
	return (b->seq);
}

uint64_t
sync_batcher_nmessages(const struct sync_batcher *b)
{
	return (b->nmessages);
}

int
sync_batcher_send_body(struct sync_batcher *b,
    const struct proto_body_chunk *row)
{
	return (sync_batcher_send_bodies(b, row, 1));
}

int
sync_batcher_send_bodies(struct sync_batcher *b,
    const struct proto_body_chunk *rows, size_t n)
{
	struct proto_batch pb;
	int rv;

	rv = sync_batcher_flush(b);
	if (rv != 0) {
		return (rv);
	}
	memset(&pb, 0, sizeof(pb));
	pb.job_id = b->job_id;
	pb.attempt = b->attempt;
	pb.seq = b->seq + 1;
	pb.bodies = (struct proto_body_chunk *)(uintptr_t)rows;
	pb.nbodies = n;
	rv = b->sink.batch(&pb, b->sink.arg);
	if (rv != 0) {
		return (rv);
	}
	b->seq++;
	return (ERR_OK);
}
