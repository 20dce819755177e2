/*
 * dial.h: an IMAP watch's connection is set up off the watcher's loop.
 * Connect, TLS, login and the setup commands (NOTIFY, the LIST or STATUS
 * baselines, IDLE's EXAMINE) block for up to --io-timeout each, so a few
 * dialer threads run them and hand the finished connection back; the loop
 * never waits on a server. The threads are a fixed pool (--dialers), not
 * one per connection: a server that does not answer holds one dialer, and
 * every other account still connects.
 */
#ifndef MAILSYNC_WATCH_DIAL_H
#define MAILSYNC_WATCH_DIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/net.h"
#include "sync/sync.h"
#include "watch/watch.h"

/* Bytes the server sent after the last setup reply (an early untagged
 * response); handed to the loop's parser with the connection. */
#define DIAL_REST 8192

/* An account's connection settings, as its watch job carried them; the
 * strings are owned (pass is wiped on release). */
struct dial_account {
	char *server, *user, *pass, *ca_pem;
	bool starttls, plaintext, oauth2;
};

/* A deep copy of src into *dst: 0 or ERR_NOMEM (*dst then empty). */
int dial_account_copy(
    struct dial_account *dst, const struct dial_account *src);
/* Frees the strings (wiping pass) and zeroes *a; NULL fields are fine. */
void dial_account_release(struct dial_account *a);

struct dial {
	/* in: set by dial_new, owned by the dial, read by the dialer */
	struct dial_account a;
	struct sync_limits lim;
	int64_t cycle_ms;
	/* out: written by the dialer, read after dialer_take */
	int rv; /* 0: conn is set up and sm has its baselines */
	struct sync_result res;
	struct net_conn *conn;
	struct watch_sm sm;
	char rest[DIAL_REST];
	size_t nrest;
	/* the loop's: the entry this dial is for, NULL once abandoned */
	void *owner;
	struct dial *next; /* the dialer's queues */
};

/* A dial for one account (a is copied); NULL when out of memory.
 * dial_free frees it. */
struct dial *dial_new(const struct dial_account *a,
    const struct sync_limits *lim, int64_t cycle_ms);
/* Frees *dp, its connection, its baselines; NULL-safe. */
void dial_free(struct dial **dp);

struct dialer {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* work queued, or stop */
	pthread_cond_t idle; /* a dial ended (running fell) */
	struct dial *todo, *todo_tail; /* waiting for a thread */
	struct dial *done; /* finished, for the loop */
	size_t running; /* dials on a thread now */
	bool stop;
	int efd; /* eventfd: readable while done is not empty */
	pthread_t *threads;
	size_t nthreads;
};

/* Starts n threads; 0 or ERR_IO / ERR_NOMEM. */
int dialer_init(struct dialer *d, size_t n);
/* The descriptor the loop polls for finished dials. */
int dialer_fd(const struct dialer *d);
/* Queues x; the dialer owns it until dialer_take returns it. */
void dialer_submit(struct dialer *d, struct dial *x);
/* Takes x back if no thread has started it yet (true: the caller owns
 * and frees it); false: it is running and comes back by dialer_take. */
bool dialer_cancel(struct dialer *d, struct dial *x);
/* The next finished dial (the caller owns it), or NULL. */
struct dial *dialer_take(struct dialer *d);
/* Stops the threads, joins them and frees every dial. A running dial
 * ends at its next step; one still blocked after grace_ms (a server that
 * hangs) is left to the exiting process: its thread, and the dialer's
 * state it uses, are then not freed. */
void dialer_release(struct dialer *d, int64_t grace_ms);

#endif
