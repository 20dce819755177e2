/*
 * sync_int.h: internals of pkg/sync shared by its files and unit tests,
 * not by other modules (they include sync.h only).
 *
 * SASL (sasl.c): pure builders of the client responses for PLAIN,
 * OAUTHBEARER and XOAUTH2, base64, and the reading of an OAuth error
 * challenge. The responses carry credentials: wipe the buffers.
 */
#ifndef MAILSYNC_SYNC_INT_H
#define MAILSYNC_SYNC_INT_H

#include "sync.h"

/* Largest decoded OAuth error challenge we read; larger ones are ignored. */
#define SYNC_SASL_MAX_CHALLENGE 4096

enum sync_sasl_mech { SYNC_SASL_OAUTHBEARER, SYNC_SASL_XOAUTH2 };

/* Appends the raw PLAIN response (empty authzid) to out. ERR_INVAL for a
 * user with ^A/CR/LF, or the buf_add error. Strings borrowed. */
int sync_sasl_plain(const char *user, const char *pass, struct buf *out);

/* Appends the raw OAUTHBEARER (host and port used) or XOAUTH2 initial
 * response to out. ERR_INVAL when a string holds ^A, CR or LF. */
int sync_sasl_oauth(enum sync_sasl_mech mech, const char *user,
    const char *host, uint16_t port, const char *token, struct buf *out);

/* Appends base64 of n bytes of raw to out (NUL-terminated). */
int sync_sasl_b64(const void *raw, size_t n, struct buf *out);

/*
 * Reads the "status" of an OAuth error challenge: b64 is the text of the
 * server's "+ ..." continuation (borrowed, len bytes). Fills status (n
 * bytes, always terminated) with the printable-ASCII value, or "" when
 * the challenge is not base64 JSON with a string "status" (or is larger
 * than SYNC_SASL_MAX_CHALLENGE).
 */
void sync_sasl_oauth_status(const char *b64, size_t len, char *status,
    size_t n);

/* Connections kept between jobs (conns.c) ------------------------------ */

enum sync_conn_kind { SYNC_CONN_JMAP, SYNC_CONN_IMAP };

/* The SHA-256 (32 bytes into digest) of what decides how job's account
 * is reached: protocol, server, user, secret, auth, CA, plaintext and
 * STARTTLS. ERR_NOMEM/ERR_CRYPTO. */
int sync_conn_key(const struct proto_job_run *job, unsigned char *digest);
/* The kept connection of job's account (the caller owns it now), or NULL:
 * none, or one made with other settings (closed). c may be NULL. */
void *sync_conns_take(struct sync_conns *c, enum sync_conn_kind kind,
    const struct proto_job_run *job);
/* Keeps conn (ownership passes to c) for the account's next job; frees
 * it with free_fn when c is NULL or keeps nothing, and evicts the least
 * recently used entry when full. */
void sync_conns_put(struct sync_conns *c, enum sync_conn_kind kind,
    const struct proto_job_run *job, void *conn, void (*free_fn)(void *),
    int64_t now_ms);

#endif
