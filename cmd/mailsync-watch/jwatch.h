/*
 * jwatch.h: JMAP accounts in mailsync-watch. Cyrus 3.6 (and any server
 * whose EventSource answers 204 No Content, or that offers none) is
 * watched by polling its state: one small request (Email/get and
 * Mailbox/get with no ids: just the two state strings) every poll
 * interval; a state that moved is a change. The request runs inside the
 * watcher's loop, bounded by the I/O timeout; on loopback or a LAN it
 * takes about a millisecond.
 */
#ifndef MAILSYNC_WATCH_JWATCH_H
#define MAILSYNC_WATCH_JWATCH_H

#include <stdbool.h>

#include "sync/sync.h"

struct jwatch;

/* How to reach the account (strings borrowed for the call). */
struct jwatch_conf {
	const char *url, *user, *secret, *ca_pem;
	bool bearer, plaintext;
};

/* Opens the session and reads the first states (the baseline). On
 * failure *jw_r is NULL and res says why (RETRY_NEVER: give up). */
int jwatch_open(const struct jwatch_conf *c, const struct sync_limits *l,
    struct jwatch **jw_r, struct sync_result *res);
/* One poll: *changed_r when a state moved since the last poll. */
int jwatch_poll(struct jwatch *jw, bool *changed_r, struct sync_result *res);
void jwatch_free(struct jwatch **jw);

#endif
