/*
 * pkg/ipc: the nng glue every process shares. Opens the four sockets of
 * the pipeline from URLs, sends and receives proto messages, and applies
 * the same options everywhere (timeouts, size limits, TLS for tls+tcp://).
 *
 * Endpoints (defaults are ipc:// sockets inside the data directory):
 *   control  store REP   <- submit, scheduler REQ     DIR/control.sock
 *   results  store PULL  <- worker PUSH               DIR/results.sock
 *   events   store PUB   -> scheduler SUB             DIR/events.sock
 *   jobs     scheduler PUSH -> worker PULL            DIR/jobs.sock
 *   watch    scheduler PUSH -> mailsync-watch PULL    DIR/watch.sock
 */
#ifndef MAILSYNC_IPC_H
#define MAILSYNC_IPC_H

#include <stddef.h>

#include <nng/nng.h>

#include "../proto/proto.h"

enum ipc_endpoint {
	IPC_CONTROL = 0,
	IPC_RESULTS = 1,
	IPC_EVENTS = 2,
	IPC_JOBS = 3,
	IPC_WATCH = 4, /* scheduler PUSH -> mailsync-watch PULL: watch jobs */
	IPC_ENDPOINT_COUNT
};

enum ipc_role { IPC_LISTEN, IPC_DIAL };

/* "control", "results", ... */
const char *ipc_endpoint_name(enum ipc_endpoint e);

/* Writes the default URL of endpoint e for data directory dir into url
 * (size n): "ipc://DIR/control.sock". ERR_TOOBIG if it does not fit. */
int ipc_default_url(const char *dir, enum ipc_endpoint e, char *url,
    size_t n);

/*
 * Opens the socket for endpoint e in the right protocol for the given
 * side (store/scheduler listen, others dial) and listens on or dials url.
 * Dialing is non-blocking: the peer may come up later. Sets receive size
 * limit PROTO_MAX_MSG. For ipc:// listeners the socket file is made 0600.
 * Returns 0 or an err code, with errbuf detail.
 *   IPC_CONTROL: LISTEN = rep0, DIAL = req0
 *   IPC_RESULTS: LISTEN = pull0, DIAL = push0
 *   IPC_EVENTS:  LISTEN = pub0, DIAL = sub0 (subscribed to everything)
 *   IPC_JOBS:    LISTEN = push0, DIAL = pull0
 */
int ipc_open(enum ipc_endpoint e, enum ipc_role role, const char *url,
    nng_socket *s_r, char *errbuf, size_t errlen);

/*
 * nng 1.5.2's ipc:// listener stops accepting new pipes for good when a
 * peer connects and goes away before the SP handshake (nng issue 1518;
 * tcp:// is not affected). Any of our processes killed at the wrong
 * instant could do that to the store. The watchdog guards one listener:
 * every period_ms a thread dials url with a probe socket of s's own
 * protocol (refused as a peer after the handshake, so it never receives a
 * job, request or event) and waits probe_ms for s to finish a handshake;
 * when it does not (twice), the listener is closed and re-created on s
 * (established pipes are kept). It takes over s's NNG_PIPE_EV_ADD_PRE
 * notification.
 * For non-ipc URLs it starts nothing and *w_r is NULL.
 */
struct ipc_watchdog;
int ipc_watchdog_start(nng_socket s, nng_listener l, enum ipc_endpoint e,
    const char *url, int period_ms, int probe_ms, struct ipc_watchdog **w_r);
/* Stops the thread and frees *w (NULL is fine); sets *w to NULL. */
void ipc_watchdog_stop(struct ipc_watchdog **w);
/* How many times the watchdog re-created the listener. */
unsigned ipc_watchdog_relistens(const struct ipc_watchdog *w);

/* Encodes and sends m; timeout_ms < 0 blocks. Translates NNG_E* codes:
 * NNG_ETIMEDOUT -> ERR_TIMEOUT, closed -> ERR_CLOSED, others ERR_IO. */
int ipc_send(nng_socket s, const struct proto_msg *m, int timeout_ms);

/*
 * Receives and decodes one message. On success *m borrows from *raw_r,
 * an nng_msg the caller must nng_msg_free() after proto_msg_release(m).
 * A message that fails to decode is logged (with its type if readable)
 * and returned as ERR_PROTO/ERR_VERSION with nothing to free.
 * timeout_ms < 0 blocks; 0 polls (ERR_TIMEOUT / ERR_AGAIN if none).
 */
int ipc_recv(nng_socket s, struct proto_msg *m, nng_msg **raw_r,
    int timeout_ms);

/*
 * One request/reply round trip on a REQ socket: sends req, waits up to
 * timeout_ms for the reply, which must be MSG_STORE_REPLY with the same
 * id. *rep borrows from *raw_r as with ipc_recv(). ERR_UNREACHABLE when
 * no store answered in time.
 */
int ipc_call(nng_socket s, const struct proto_msg *req,
    struct proto_msg *rep, nng_msg **raw_r, int timeout_ms);

/* Translates an NNG_E* code into an err code. */
int ipc_err(int nng_rv);

/*
 * Additions (pkg/ipc owner) -----------------------------------------------
 */

/*
 * TLS settings for tls+tcp:// URLs (file paths, borrowed for the call).
 *   listener: cert_file + key_file required (the server's identity);
 *             ca_file optional: when set, clients must present a
 *             certificate signed by it (mutual TLS).
 *   dialer:   ca_file required (the server is always verified);
 *             server_name: name to verify, NULL = the host of the URL;
 *             cert_file + key_file optional (client identity, mTLS).
 */
struct ipc_tls {
	const char *cert_file;
	const char *key_file;
	const char *ca_file;
	const char *server_name;
};

/*
 * ipc_open() for any URL, with TLS settings for tls+tcp:// (tls may be
 * NULL for ipc:// and tcp://; a tls+tcp:// URL without it is ERR_CONFIG).
 * ipc_open(...) is ipc_open_tls(..., NULL, ...).
 */
int ipc_open_tls(enum ipc_endpoint e, enum ipc_role role, const char *url,
    const struct ipc_tls *tls, nng_socket *s_r, char *errbuf, size_t errlen);

/* As ipc_open_tls(); for IPC_LISTEN also returns the listener in *l_r
 * (may be NULL), which ipc_watchdog_start() needs. */
int ipc_open_ex(enum ipc_endpoint e, enum ipc_role role, const char *url,
    const struct ipc_tls *tls, nng_socket *s_r, nng_listener *l_r,
    char *errbuf, size_t errlen);


/*
 * Wipes the body of *raw (it may hold a password) and frees it; *raw
 * becomes NULL. Safe on NULL. Use instead of nng_msg_free() for
 * messages from ipc_recv()/ipc_call().
 *
 * Note on ipc_recv()/ipc_call() errors: when decoding fails, m->type and
 * m->id keep what could be read (MSG_NONE/0 otherwise), so a REP server
 * can still answer the request with an error reply carrying its id.
 */
void ipc_msg_free(nng_msg **raw);

#endif
