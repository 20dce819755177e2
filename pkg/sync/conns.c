/*
 * conns.c: the connections a worker keeps between jobs (sync.h).
 *
 * A job that ended well hands its connection back; the next job of the
 * same account on this worker takes it instead of connecting, logging in
 * and (JMAP) fetching the session again. An entry is keyed by the account
 * id and a SHA-256 digest of everything that decides how the connection
 * was made (protocol, URL, user, secret, auth, CA, plaintext), so a job
 * that carries other credentials never gets an old connection: it finds
 * a mismatch, which is closed. The cache is bounded (least recently used
 * goes first) and entries idle too long are closed by sync_conns_expire.
 * Single-threaded: the worker runs one job at a time.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sync_int.h"

#define CONN_DIGEST 32

struct conn_entry {
	uint64_t account_id;
	unsigned char digest[CONN_DIGEST];
	enum sync_conn_kind kind;
	void *conn;
	void (*free_fn)(void *conn);
	int64_t last_ms;
};

struct sync_conns {
	struct conn_entry *v;
	size_t n, max;
	int64_t idle_ms;
};

int
sync_conns_new(size_t max, int64_t idle_ms, struct sync_conns **c_r)
{
	struct sync_conns *c;

	*c_r = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return (ERR_NOMEM);
	}
	if (max > 0) {
		c->v = calloc(max, sizeof(*c->v));
		if (c->v == NULL) {
			free(c);
			return (ERR_NOMEM);
		}
	}
	c->max = max;
	c->idle_ms = idle_ms;
	*c_r = c;
	return (ERR_OK);
}

static void
conn_drop(struct sync_conns *c, size_t i)
{
	c->v[i].free_fn(c->v[i].conn);
	c->v[i] = c->v[--c->n];
	memset(&c->v[c->n], 0, sizeof(c->v[c->n]));
}

void
sync_conns_free(struct sync_conns **cp)
{
	struct sync_conns *c = *cp;

	if (c == NULL) {
		return;
	}
	while (c->n > 0) {
		conn_drop(c, c->n - 1);
	}
	free(c->v);
	free(c);
	*cp = NULL;
}

size_t
sync_conns_count(const struct sync_conns *c)
{
	return (c != NULL ? c->n : 0);
}

void
sync_conns_expire(struct sync_conns *c, int64_t now_ms)
{
	size_t i = 0;

	while (c != NULL && i < c->n) {
		if (now_ms - c->v[i].last_ms >= c->idle_ms
		    || now_ms < c->v[i].last_ms) {
			log_debug("account=%llu event=conn_idle_closed",
			    (unsigned long long)c->v[i].account_id);
			conn_drop(c, i);
		} else {
			i++;
		}
	}
}

/* Hashes s with its length first, so ("ab", "c") and ("a", "bc") differ
 * and a nil string differs from an empty one. */
static int
digest_str(EVP_MD_CTX *md, struct proto_str s)
{
	uint64_t len = s.p != NULL ? (uint64_t)s.len + 1 : 0;

	return (EVP_DigestUpdate(md, &len, sizeof(len)) == 1
	    && (s.len == 0 || EVP_DigestUpdate(md, s.p, s.len) == 1));
}

int
sync_conn_key(const struct proto_job_run *job, unsigned char *digest)
{
	const struct proto_str f[] = { job->protocol, job->server,
		job->username, job->password, job->auth, job->tls_ca_pem };
	unsigned char flags[2] = { job->plaintext, job->starttls };
	EVP_MD_CTX *md;
	unsigned int n = 0;
	size_t i;
	int ok;

	md = EVP_MD_CTX_new();
	if (md == NULL) {
		return (ERR_NOMEM);
	}
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	for (i = 0; ok && i < ARRAY_LEN(f); i++) {
		ok = digest_str(md, f[i]);
	}
	ok = ok && EVP_DigestUpdate(md, flags, sizeof(flags)) == 1
	    && EVP_DigestFinal_ex(md, digest, &n) == 1 && n == CONN_DIGEST;
	EVP_MD_CTX_free(md);
	return (ok ? ERR_OK : ERR_CRYPTO);
}

void *
sync_conns_take(struct sync_conns *c, enum sync_conn_kind kind,
    const struct proto_job_run *job)
{
	unsigned char d[CONN_DIGEST];
	void *conn;
	size_t i;

	if (c == NULL || sync_conn_key(job, d) != 0) {
		return (NULL);
	}
	for (i = 0; i < c->n; i++) {
		if (c->v[i].account_id != job->account_id) {
			continue;
		}
		if (c->v[i].kind != kind
		    || memcmp(c->v[i].digest, d, sizeof(d)) != 0) {
			/* the account's settings changed: never reuse */
			log_debug("account=%llu event=conn_stale_closed",
			    (unsigned long long)job->account_id);
			conn_drop(c, i);
			return (NULL);
		}
		conn = c->v[i].conn;
		c->v[i] = c->v[--c->n];
		memset(&c->v[c->n], 0, sizeof(c->v[c->n]));
		log_debug("job=%llu account=%llu event=conn_reuse",
		    (unsigned long long)job->job_id,
		    (unsigned long long)job->account_id);
		return (conn);
	}
	return (NULL);
}

void
sync_conns_put(struct sync_conns *c, enum sync_conn_kind kind,
    const struct proto_job_run *job, void *conn, void (*free_fn)(void *),
    int64_t now_ms)
{
	struct conn_entry *e;
	size_t i, lru = 0;

	if (conn == NULL) {
		return;
	}
	if (c == NULL || c->max == 0) {
		free_fn(conn);
		return;
	}
	for (i = 0; i < c->n; i++) {
		if (c->v[i].account_id == job->account_id) {
			conn_drop(c, i); /* one per account */
			break;
		}
	}
	if (c->n == c->max) {
		for (i = 1; i < c->n; i++) {
			if (c->v[i].last_ms < c->v[lru].last_ms) {
				lru = i;
			}
		}
		conn_drop(c, lru);
	}
	e = &c->v[c->n];
	if (sync_conn_key(job, e->digest) != 0) {
		free_fn(conn);
		return;
	}
	e->account_id = job->account_id;
	e->kind = kind;
	e->conn = conn;
	e->free_fn = free_fn;
	e->last_ms = now_ms;
	c->n++;
}
