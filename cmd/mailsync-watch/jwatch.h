/*
 * jwatch.h: JMAP accounts in mailsync-watch (docs/architecture.md,
 * "Push"). When the session offers eventSourceUrl, the account's
 * EventSource stream (RFC 8620 7.3) is held open on the watcher's curl
 * multi handle (cmulti.h) and a StateChange that names the account's
 * Email, Mailbox or EmailDelivery state is a change. Otherwise, and when
 * the server answers the stream 204 No Content or with anything but an
 * event stream (Cyrus 3.6), the account is watched by polling its state:
 * one small request (Email/get and Mailbox/get with no ids: just the two
 * state strings) every poll interval; a state that moved is a change.
 *
 * While the stream is up only a slow safety poll runs (every
 * JWATCH_SAFETY_POLL_MS, or the poll interval when longer). When it ends
 * or dies (server closed it, pings missed for longer than the I/O
 * timeout, an error) the state is polled at once (a change may have been
 * missed) and then at the poll interval, and the stream is reopened after
 * a jittered backoff (1 s doubling to 60 s, the stream's `retry:` as a
 * floor; back to 1 s after a stream that lived JWATCH_STREAM_OK_MS). Each
 * time a stream comes up the state is polled once more, for what changed
 * while none was open.
 *
 * Polls are blocking requests on the account's own connection inside the
 * watcher's loop, bounded by the I/O timeout (about a millisecond on
 * loopback or a LAN); only the streams run on the multi handle.
 */
#ifndef MAILSYNC_WATCH_JWATCH_H
#define MAILSYNC_WATCH_JWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "sync/sync.h"

#include "cmulti.h"

#define JWATCH_SAFETY_POLL_MS (5 * 60 * 1000)
#define JWATCH_STREAM_OK_MS (60 * 1000)

struct jwatch;

/* How to reach and watch the account (strings borrowed for the call). */
struct jwatch_conf {
	const char *url, *user, *secret, *ca_pem;
	bool bearer, plaintext;
	int64_t poll_ms; /* --jmap-poll */
	int ping_s; /* --jmap-ping; 0: ask for no pings */
	const char *tag; /* "job=1 account=2": starts every log line */
	uint64_t seed; /* for the backoff's jitter */
};

/*
 * Opens the session and reads the first states (the baseline), blocking
 * (bounded by l's timeouts). The stream, if the session offers one, is
 * started by the first jwatch_tick() on cm (borrowed: it must outlive
 * *jw_r). On failure *jw_r is NULL and res says why (RETRY_NEVER: give
 * up). *jw_r is freed by jwatch_free().
 */
int jwatch_open(const struct jwatch_conf *c, const struct sync_limits *l,
    struct cmulti *cm, struct jwatch **jw_r, struct sync_result *res);
/*
 * Does what is due at now: reports a change the stream announced, starts
 * the stream, polls. *changed_r: the caller queues a sync. A failed poll
 * is returned in res (the caller closes the account and reopens it later).
 */
int jwatch_tick(
    struct jwatch *jw, int64_t now, bool *changed_r, struct sync_result *res);
/* When jwatch_tick() has something to do next (monotonic ms). */
int64_t jwatch_next(const struct jwatch *jw);
/* The multi handle reports the stream's transfer ended with result (a
 * CURLcode), already removed from it. */
void jwatch_stream_done(struct jwatch *jw, int result, int64_t now);
/* Frees jw: its stream leaves the multi handle first. NULLs *jw. */
void jwatch_free(struct jwatch **jw);

#endif
