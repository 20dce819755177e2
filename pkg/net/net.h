/*
 * pkg/net: a blocking TCP connection with optional TLS (OpenSSL), every
 * call bounded by a timeout. TLS always verifies the peer: the chain
 * against the system CAs or a caller-supplied PEM, and the host name (or
 * IP address) against the certificate. There is no switch to turn
 * verification off.
 *
 * No call raises SIGPIPE (plain and TLS writes both go through
 * send(MSG_NOSIGNAL)), so callers need not ignore it. Name resolution
 * (getaddrinfo) is the one step the timeout cannot bound. There is no
 * hidden read-ahead buffer: net_read() returns at most cap bytes of what
 * arrived.
 */
#ifndef MAILSYNC_NET_H
#define MAILSYNC_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_conn;

/* Errors carry a human detail here (e.g. the X509 verify message). */
#define NET_ERRLEN 256

/*
 * Connects to host:port (numeric or name) within timeout_ms. With tls,
 * performs the TLS handshake at once (imaps). ca_pem: PEM text of the
 * trusted CA(s), or NULL for the system store. *c_r owned by the caller.
 * Returns 0, ERR_UNREACHABLE, ERR_TIMEOUT, ERR_TLS, ERR_NOMEM; on error
 * errbuf (NET_ERRLEN) says why.
 */
int net_connect(const char *host, uint16_t port, bool tls,
    const char *ca_pem, int timeout_ms, struct net_conn **c_r,
    char *errbuf);

/* Upgrades a plain connection to TLS (STARTTLS); same verification.
 * Also ERR_PROTO when the server sent bytes before the handshake (plain
 * text injected after the STARTTLS reply), ERR_CLOSED, and ERR_BADSTATE
 * if c already uses TLS. On failure c is only good for net_close(). */
int net_start_tls(struct net_conn *c, const char *ca_pem, int timeout_ms,
    char *errbuf);

/* Writes all n bytes or fails: ERR_TIMEOUT, ERR_CLOSED, ERR_IO, ERR_TLS. */
int net_write(struct net_conn *c, const void *p, size_t n, int timeout_ms);

/* Reads at least 1 byte (up to cap) into p, *n_r set. ERR_CLOSED at EOF,
 * ERR_TIMEOUT when nothing arrives in timeout_ms. */
int net_read(struct net_conn *c, void *p, size_t cap, size_t *n_r,
    int timeout_ms);

bool net_is_tls(const struct net_conn *c);
/* The socket (non-blocking), for an event loop's poll/epoll. With
 * net_read(..., 0) it makes a non-blocking read: ERR_TIMEOUT when there
 * is nothing (TLS: nothing decrypted) to return now. */
int net_fd(const struct net_conn *c);
/* Closes and frees *c, sets it to NULL. */
void net_close(struct net_conn **c);

/* URL of a mail server: scheme://host[:port][/path] */
struct net_url {
	char scheme[16]; /* lower-cased: imap, imaps, http, https, ... */
	char host[256];	 /* without [] for IPv6 */
	uint16_t port;	 /* filled with the scheme default if absent */
	char path[1024]; /* "" or starting with '/' */
};
/* ERR_INVAL with errbuf detail for anything not a well-formed URL with a
 * known scheme (imap, imaps, http, https, smtp, smtps). */
int net_url_parse(const char *s, struct net_url *u, char *errbuf,
    size_t errlen);

#endif
