/*
 * pkg/watch: the push connection of one account, as a pure state machine
 * (no sockets, no clock reads): parsed IMAP responses and the time go
 * in, command bytes and "this mailbox changed" calls come out. The event
 * loop of cmd/mailsync-watch moves the bytes (docs/architecture.md,
 * "Push").
 *
 * After login (done by pkg/sync's session) the connection is in one of
 * two modes:
 *   NOTIFY  NOTIFY SET (personal (...)) was accepted: the server sends a
 *           STATUS (or LIST) for any change in any mailbox. The machine
 *           sits in IDLE and leaves/re-enters it every cycle_ms as a
 *           liveness probe.
 *   IDLE    INBOX is EXAMINEd and IDLEd on (EXISTS/EXPUNGE/FETCH mean an
 *           INBOX change); every cycle_ms it leaves IDLE, sends one
 *           round trip of STATUS (LIST-STATUS when offered, else one
 *           pipelined STATUS per mailbox) and compares UIDNEXT, MESSAGES
 *           and HIGHESTMODSEQ with the last values seen.
 * Every command must be answered within reply_ms, else watch_sm_tick()
 * says ERR_TIMEOUT and the caller reconnects (with watch_backoff_ms()).
 * Memory is bounded: at most WATCH_MAX_MAILBOXES baselines.
 */
#ifndef MAILSYNC_WATCH_H
#define MAILSYNC_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "imap/imap.h"

#define WATCH_MAX_MAILBOXES 10000u
#define WATCH_MAX_NAME 1024u

/* Reconnect delay after `failures` (>= 1) failed connections in a row:
 * 1 s doubling to 60 s, "equal jitter" in [d/2, d]. 0 for 0. */
#define WATCH_BACKOFF_MIN_MS 1000
#define WATCH_BACKOFF_MAX_MS 60000
int64_t watch_backoff_ms(uint32_t failures, uint32_t rand32);

enum watch_mode { WATCH_MODE_NOTIFY = 0, WATCH_MODE_IDLE = 1 };

struct watch_opts {
	int64_t cycle_ms; /* IDLE: STATUS poll period; NOTIFY: re-IDLE */
	int64_t reply_ms; /* longest wait for any reply */
	bool list_status; /* server offers LIST-STATUS */
	bool condstore;	  /* server offers CONDSTORE (HIGHESTMODSEQ) */
};

struct watch_mbox {
	char *raw; /* mUTF-7 name as on the wire, heap */
	uint32_t uidnext;
	uint32_t messages;
	uint64_t modseq;
};

/* Called for each change; mailbox is the wire (mUTF-7) name, borrowed. */
typedef void (*watch_change_fn)(const char *mailbox, void *arg);

struct watch_sm {
	enum watch_mode mode;
	struct watch_opts o;
	int st;		 /* private: enum in sm.c */
	bool settled;	 /* baselines taken: unknown mailboxes are news */
	uint32_t tagn;
	uint32_t idle_tag;
	uint32_t first_poll_tag; /* tags >= this and < tagn are a poll */
	uint32_t pending;	 /* poll replies outstanding */
	int64_t deadline; /* reply due (0: none) */
	int64_t cycle_at; /* leave IDLE then (0: none) */
	struct watch_mbox *mb;
	size_t nmb;
};

void watch_sm_init(
    struct watch_sm *sm, enum watch_mode mode, const struct watch_opts *o);
/* Frees the baselines. */
void watch_sm_release(struct watch_sm *sm);

/*
 * Takes an untagged response seen during setup (LIST, STATUS) as a
 * baseline without reporting changes. Other responses are ignored.
 */
int watch_sm_baseline(struct watch_sm *sm, const struct imap_resp *r);

/* Setup is over: appends the first IDLE to out. */
int watch_sm_start(struct watch_sm *sm, int64_t now, struct buf *out);

/*
 * One response from the server. Appends commands to out, calls fn for
 * each change. Returns 0, ERR_CLOSED (BYE), ERR_SERVER (a command got NO
 * or BAD), ERR_PROTO (a tag we never sent), ERR_NOMEM/ERR_TOOBIG.
 */
int watch_sm_input(struct watch_sm *sm, const struct imap_resp *r,
    int64_t now, struct buf *out, watch_change_fn fn, void *arg);

/* Time passes: may append DONE to out; ERR_TIMEOUT when a reply is late. */
int watch_sm_tick(struct watch_sm *sm, int64_t now, struct buf *out);

/* When watch_sm_tick() next has something to do (INT64_MAX: never). */
int64_t watch_sm_next(const struct watch_sm *sm);

#endif
