/*
 * body_int.h: internals of the raw-body fetches shared by
 *
 *   imap_body_fetch.c  bodies a batch at a time (one UID FETCH), the
 *                      literal sink that cuts them into chunk rows, and
 *                      the rows packed into few store batches
 *   imap_body.c        the sync job's prefetch and the fetch_body job
 *
 * not by other modules.
 */
#ifndef MAILSYNC_BODY_INT_H
#define MAILSYNC_BODY_INT_H

#include "sync.h"

/* Bodies asked for in one command: at most this many UIDs... */
#define BODY_BATCH 64u
/* ...announcing at most this many bytes in all (so a failed batch costs
 * a bounded amount to fetch again; memory is bounded by the chunk). */
#define BODY_BATCH_BYTES (16u * 1024 * 1024)
/* Rows go to the store packed: up to this many rows and SYNC_BODY_CHUNK
 * bytes of data and error text per batch, so a thousand small bodies
 * cost a few store transactions, not a thousand. */
#define BODY_PACK_ROWS 512u

/* Where each UID of the batch is. */
enum body_state {
	BODY_WAIT, /* no body yet */
	BODY_STREAM, /* its literal is streaming or was streamed */
	BODY_GOT, /* body sent */
	BODY_AGAIN /* its body came before its UID: fetch it alone */
};

/* What the sink does with the literal streaming now. */
enum body_lit {
	BODY_LIT_NONE, /* none streaming */
	BODY_LIT_KEEP, /* the body of want[lit_idx]: chunk rows */
	BODY_LIT_DROP, /* not ours, or a second body for one UID: dropped */
	BODY_LIT_UNKNOWN /* UID not sent before it: dropped, fetched again */
};

/* One batch of body fetches in progress; the literal sink's state. */
struct body_fetch {
	struct imap_session *s;
	struct sync_batcher *b;
	struct sync_result *res;
	const char *mailbox; /* UTF-8, for rows */
	uint64_t max_body;
	uint32_t uid; /* the UID rows are sent for */
	/* size probe */
	bool found;
	uint64_t size;
	/* the batch */
	uint32_t want[BODY_BATCH];
	uint8_t state[BODY_BATCH]; /* enum body_state */
	size_t nwant;
	bool wrong_uid; /* a body for a UID not asked */
	/* streaming */
	enum body_lit lit;
	size_t lit_idx;
	char *chunk; /* SYNC_BODY_CHUNK bytes */
	size_t nchunk;
	uint64_t chunk_off; /* body offset of chunk[0] */
	/* rows not sent yet; their data and error text copied into pack */
	struct proto_body_chunk *rows; /* BODY_PACK_ROWS */
	size_t nrows;
	char *pack; /* SYNC_BODY_CHUNK bytes */
	size_t npack;
};

/* Allocates ib's buffers; s, b, res and mailbox are borrowed for ib's
 * life. 0, or ERR_NOMEM with res filled (body_release still frees). */
int body_init(struct body_fetch *ib, struct imap_session *s,
    struct sync_batcher *b, struct sync_result *res, const char *mailbox,
    uint64_t max_body);
/* Sends the rows still packed (after an error too); returns rv, or the
 * batcher's error (res filled) when rv was 0. */
int body_finish(struct body_fetch *ib, int rv);
/* Frees what body_init allocated; rows not sent are dropped. */
void body_release(struct body_fetch *ib);

/* True for an untagged FETCH response. */
bool body_is_fetch(const struct imap_resp *r);

/* Queues an error row for ib->uid: no body, and why (text copied). */
int body_send_error(
    struct body_fetch *ib, int status, uint64_t total, const char *text);
/* The error row of a body over max_body (ib->uid, ib->size). */
int body_send_too_big(struct body_fetch *ib);

/*
 * Fetches the bodies of ib->want[0..nwant) in one command (the mailbox
 * selected; every size checked against max_body already): chunk rows or
 * an error row each. 0; ERR_NOTFOUND when the only UID asked got no body
 * (error row queued, res untouched); or another error with res filled
 * (the session is then unusable).
 */
int body_fetch_batch(struct body_fetch *ib);
/* Learns uid's size, then its body: 0, ERR_NOTFOUND or ERR_TOOBIG (error
 * row queued, res untouched), or another error with res filled. */
int body_fetch_one(struct body_fetch *ib, uint32_t uid);

#endif
