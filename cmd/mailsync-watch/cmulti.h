/*
 * cmulti.h: one libcurl multi handle driven by the watcher's epoll loop
 * (the JMAP EventSource streams of every account, in one thread).
 *
 * curl's sockets live in a small epoll set of their own, whose fd the
 * watcher adds to its loop under one tag: when it is readable the loop
 * calls cmulti_sockets(). Each curl socket's event then carries its fd
 * (epoll data.fd), which is all curl_multi_socket_action() needs: no
 * per-socket allocation, and no pointer that could outlive its socket
 * while the loop works through one batch of events. curl's timer is a
 * deadline the loop folds into its epoll_wait timeout (cmulti_timeout_ms)
 * and serves with cmulti_timer().
 */
#ifndef MAILSYNC_WATCH_CMULTI_H
#define MAILSYNC_WATCH_CMULTI_H

#include <stdint.h>

#include <curl/curl.h>

struct cmulti {
	CURLM *m;
	int ep; /* curl's sockets */
	int64_t deadline; /* curl's timer, monotonic ms; -1: none */
};

/* A transfer ended with result (a CURLcode); it has been removed from the
 * multi handle already. owner as given to cmulti_add(). */
typedef void (*cmulti_done_fn)(void *owner, int result, void *arg);

/* ERR_IO or ERR_NOMEM when the multi handle or epoll set cannot be made;
 * cmulti_release() frees what was made either way. */
int cmulti_init(struct cmulti *cm);
/* The fd the watcher's loop polls for readability. */
int cmulti_fd(const struct cmulti *cm);
/* Adds easy (a CURL *, borrowed: the caller frees it after
 * cmulti_remove() or after its done callback). */
int cmulti_add(struct cmulti *cm, void *easy, void *owner);
/* Removes easy; a handle not in the multi is a no-op. */
void cmulti_remove(struct cmulti *cm, void *easy);
/* curl's sockets are ready: their events, then the ended transfers. */
void cmulti_sockets(struct cmulti *cm, cmulti_done_fn fn, void *arg);
/* curl's deadline, when due at now; then the ended transfers. */
void cmulti_timer(
    struct cmulti *cm, int64_t now, cmulti_done_fn fn, void *arg);
/* Ms from now to curl's deadline (0: due), -1 when none. */
int64_t cmulti_timeout_ms(const struct cmulti *cm, int64_t now);
/* Every handle must have been removed first. */
void cmulti_release(struct cmulti *cm);

#endif
