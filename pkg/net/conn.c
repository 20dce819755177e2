/*
 * conn.c: a TCP connection with optional TLS, every operation bounded by
 * a deadline.
 *
 * The socket is non-blocking from the start; connect, the TLS handshake,
 * reads and writes wait in poll() for at most the caller's timeout, and
 * OpenSSL's WANT_READ/WANT_WRITE are turned into the matching poll. Names
 * are resolved with getaddrinfo() (which has no timeout of its own) and
 * every address is tried in turn within the one deadline.
 *
 * TLS is a TLS 1.2+ client that always verifies: the chain against the
 * system store or only the caller's PEM (one or more CA certificates),
 * and the host name (or IP address, for literals) against the
 * certificate. SNI is sent for names. A failed verification puts the
 * X509 reason and the host into errbuf.
 *
 * No SIGPIPE: plain writes use send(MSG_NOSIGNAL), and TLS runs over a
 * small BIO of our own that does the same, so a peer that hangs up never
 * kills the process, whatever its signal setup.
 *
 * There is no read-ahead: net_read() returns what one recv()/SSL_read()
 * gives, at most what the caller asked for. Before STARTTLS,
 * net_start_tls() checks that the peer has not already sent bytes (a
 * server speaks only after our ClientHello, so any such byte was injected
 * in plain text) and fails rather than let them be read as protected.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/base.h"
#include "net/net.h"

struct net_conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	BIO_METHOD *biom; /* our MSG_NOSIGNAL socket BIO, per connection */
	char host[256];	  /* as given to net_connect, for SNI and errors */
};

static void
conn_err(char *errbuf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
conn_err(char *errbuf, const char *fmt, ...)
{
	va_list ap;

	if (errbuf == NULL) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(errbuf, NET_ERRLEN, fmt, ap);
	va_end(ap);
}

/* Milliseconds left until deadline (never negative). */
static int
conn_left(int64_t deadline)
{
	int64_t left = deadline - clock_mono_ms();

	if (left <= 0) {
		return (0);
	}
	return (left > INT32_MAX ? INT32_MAX : (int)left);
}

/*
 * Waits until fd is readable (POLLIN) or writable (POLLOUT), or the
 * deadline passes: 0, ERR_TIMEOUT, ERR_IO.
 */
static int
conn_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int r;

	for (;;) {
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, conn_left(deadline));
		if (r > 0) {
			/* POLLERR/POLLHUP: let the next call report it. */
			return (ERR_OK);
		}
		if (r == 0) {
			return (ERR_TIMEOUT);
		}
		if (errno != EINTR) {
			return (ERR_IO);
		}
	}
}

/* Errors of a socket call that mean the peer went away. */
static bool
conn_errno_closed(int e)
{
	return (e == EPIPE || e == ECONNRESET || e == ECONNABORTED ||
	    e == ENOTCONN || e == ESHUTDOWN);
}

/* Our socket BIO -------------------------------------------------------- */

static int
conn_bio_write(BIO *b, const char *p, int n)
{
	struct net_conn *c = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	r = send(c->fd, p, (size_t)n, MSG_NOSIGNAL);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
			 errno == EINTR)) {
		BIO_set_retry_write(b);
	}
	return ((int)r);
}

static int
conn_bio_read(BIO *b, char *p, int n)
{
	struct net_conn *c = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	r = recv(c->fd, p, (size_t)n, 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
			 errno == EINTR)) {
		BIO_set_retry_read(b);
	}
	return ((int)r);
}

static long
conn_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return (cmd == BIO_CTRL_FLUSH ? 1 : 0);
}

static int
conn_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return (1);
}

/* Wraps c->fd in a BIO that never raises SIGPIPE; NULL on OOM. */
static BIO *
conn_bio_new(struct net_conn *c)
{
	BIO *b;

	c->biom = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    "mailsync socket");
	if (c->biom == NULL ||
	    BIO_meth_set_write(c->biom, conn_bio_write) != 1 ||
	    BIO_meth_set_read(c->biom, conn_bio_read) != 1 ||
	    BIO_meth_set_ctrl(c->biom, conn_bio_ctrl) != 1 ||
	    BIO_meth_set_create(c->biom, conn_bio_create) != 1) {
		return (NULL);
	}
	b = BIO_new(c->biom);
	if (b != NULL) {
		BIO_set_data(b, c);
	}
	return (b);
}

/* TCP ------------------------------------------------------------------- */

/* One connect() attempt within the deadline; *fd_r on success. */
static int
conn_try(const struct addrinfo *ai, int64_t deadline, int *fd_r, int *errno_r)
{
	socklen_t sl = sizeof(int);
	int fd, rv, soerr = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		*errno_r = errno;
		return (ERR_UNREACHABLE);
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			*errno_r = errno;
			close(fd);
			return (ERR_UNREACHABLE);
		}
		rv = conn_wait(fd, POLLOUT, deadline);
		if (rv != 0) {
			*errno_r = rv == ERR_TIMEOUT ? ETIMEDOUT : errno;
			close(fd);
			return (rv == ERR_TIMEOUT ? ERR_TIMEOUT : ERR_UNREACHABLE);
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
			soerr = errno;
		}
		if (soerr != 0) {
			*errno_r = soerr;
			close(fd);
			return (ERR_UNREACHABLE);
		}
	}
	*fd_r = fd;
	return (ERR_OK);
}

/* Resolves host and connects to the first address that answers. */
static int
conn_tcp(const char *host, uint16_t port, int64_t deadline, int *fd_r,
    char *errbuf)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[8], addr[INET6_ADDRSTRLEN] = "?";
	int rv = ERR_UNREACHABLE, r, e = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0) {
		conn_err(errbuf, "cannot resolve %s: %s", host,
		    r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return (ERR_UNREACHABLE);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		rv = conn_try(ai, deadline, fd_r, &e);
		if (rv == 0) {
			break;
		}
		getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr),
		    NULL, 0, NI_NUMERICHOST);
		if (rv == ERR_TIMEOUT) {
			break;
		}
	}
	freeaddrinfo(res);
	if (rv == ERR_TIMEOUT) {
		conn_err(errbuf, "connect to %s (%s) port %u: timed out", host,
		    addr, (unsigned)port);
	} else if (rv != 0) {
		conn_err(errbuf, "connect to %s (%s) port %u: %s", host, addr,
		    (unsigned)port, strerror(e));
	}
	return (rv);
}

/* TLS ------------------------------------------------------------------- */

/* True when host is an IPv4 or IPv6 literal. */
static bool
conn_is_ip(const char *host)
{
	struct in6_addr a;

	return (inet_pton(AF_INET, host, &a) == 1 ||
	    inet_pton(AF_INET6, host, &a) == 1);
}

/* Puts OpenSSL's oldest queued error (or fallback) after prefix. */
static void
conn_ssl_err(char *errbuf, const char *prefix, const char *fallback)
{
	char ebuf[160];
	unsigned long e = ERR_peek_error();

	if (e != 0) {
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
		conn_err(errbuf, "%s: %s", prefix, ebuf);
	} else {
		conn_err(errbuf, "%s: %s", prefix, fallback);
	}
	ERR_clear_error();
}

/* Loads every certificate of pem into a new store owned by ctx. */
static int
conn_load_pem(SSL_CTX *ctx, const char *pem, char *errbuf)
{
	X509_STORE *st;
	X509 *x;
	BIO *bio;
	int count = 0;
	unsigned long e;

	st = X509_STORE_new();
	if (st == NULL) {
		return (ERR_NOMEM);
	}
	SSL_CTX_set_cert_store(ctx, st); /* ctx owns st from here */
	bio = BIO_new_mem_buf(pem, -1);
	if (bio == NULL) {
		return (ERR_NOMEM);
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(st, x) != 1) {
			X509_free(x);
			BIO_free(bio);
			conn_ssl_err(errbuf, "cannot use CA certificate",
			    "X509_STORE_add_cert failed");
			return (ERR_TLS);
		}
		X509_free(x);
		count++;
	}
	BIO_free(bio);
	if (count == 0) {
		ERR_clear_error();
		conn_err(errbuf, "CA PEM holds no certificate");
		return (ERR_TLS);
	}
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
		ERR_clear_error(); /* the normal end of the PEM text */
	}
	if (ERR_peek_error() != 0) {
		conn_ssl_err(errbuf, "bad CA PEM", "unreadable");
		return (ERR_TLS);
	}
	return (ERR_OK);
}

/* Builds the SSL object of c: context, trust, SNI, name check, BIO. */
static int
conn_tls_setup(struct net_conn *c, const char *ca_pem, char *errbuf)
{
	X509_VERIFY_PARAM *vp;
	BIO *bio;
	bool ip = conn_is_ip(c->host);
	int rv;

	ERR_clear_error();
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL) {
		conn_ssl_err(errbuf, "TLS setup", "SSL_CTX_new failed");
		return (ERR_NOMEM);
	}
	if (SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1) {
		conn_ssl_err(errbuf, "TLS setup", "cannot require TLS 1.2");
		return (ERR_TLS);
	}
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
		SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (ca_pem != NULL) {
		rv = conn_load_pem(c->ctx, ca_pem, errbuf);
		if (rv != 0) {
			return (rv);
		}
	} else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
		conn_ssl_err(errbuf, "cannot load the system CA store",
		    "unknown error");
		return (ERR_TLS);
	}
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL) {
		conn_ssl_err(errbuf, "TLS setup", "SSL_new failed");
		return (ERR_NOMEM);
	}
	vp = SSL_get0_param(c->ssl);
	if (ip) {
		rv = X509_VERIFY_PARAM_set1_ip_asc(vp, c->host);
	} else {
		X509_VERIFY_PARAM_set_hostflags(vp,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		rv = X509_VERIFY_PARAM_set1_host(vp, c->host, 0);
		if (rv == 1) {
			rv = SSL_set_tlsext_host_name(c->ssl, c->host);
		}
	}
	if (rv != 1) {
		conn_ssl_err(errbuf, "TLS setup", "cannot set the peer name");
		return (ERR_TLS);
	}
	bio = conn_bio_new(c);
	if (bio == NULL) {
		conn_err(errbuf, "TLS setup: out of memory");
		return (ERR_NOMEM);
	}
	SSL_set_bio(c->ssl, bio, bio); /* ssl owns bio */
	return (ERR_OK);
}

/*
 * Waits as OpenSSL asked after a failed call that returned r: 0 to retry,
 * ERR_TIMEOUT, or 1 when the error is not a WANT_* (*sslerr_r set).
 */
static int
conn_ssl_wait(struct net_conn *c, int r, int64_t deadline, int *sslerr_r)
{
	int e = SSL_get_error(c->ssl, r);

	*sslerr_r = e;
	if (e == SSL_ERROR_WANT_READ) {
		return (conn_wait(c->fd, POLLIN, deadline));
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		return (conn_wait(c->fd, POLLOUT, deadline));
	}
	return (1);
}

/* Runs the handshake to completion or deadline; explains failures. */
static int
conn_handshake(struct net_conn *c, int64_t deadline, char *errbuf)
{
	long vr;
	int r, rv, se, saved;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		r = SSL_connect(c->ssl);
		if (r == 1) {
			break;
		}
		saved = errno;
		rv = conn_ssl_wait(c, r, deadline, &se);
		if (rv == 0) {
			continue;
		}
		if (rv == ERR_TIMEOUT) {
			conn_err(errbuf, "TLS handshake with %s timed out",
			    c->host);
			return (ERR_TIMEOUT);
		}
		vr = SSL_get_verify_result(c->ssl);
		if (vr != X509_V_OK) {
			conn_err(errbuf,
			    "certificate verify failed: %s (host %s)",
			    X509_verify_cert_error_string(vr), c->host);
			ERR_clear_error();
			return (ERR_TLS);
		}
		if (se == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
			/* The peer hung up or reset: transient, unlike a
			 * verification failure, so not ERR_TLS. */
			conn_err(errbuf, "TLS handshake with %s: %s", c->host,
			    saved != 0 ? strerror(saved) :
					 "connection closed by peer");
			return (ERR_UNREACHABLE);
		}
		conn_ssl_err(errbuf, "TLS handshake failed", "unknown error");
		return (ERR_TLS);
	}
	/* SSL_VERIFY_PEER already failed the handshake on a bad chain or
	 * name; this is a second lock on the same door. */
	vr = SSL_get_verify_result(c->ssl);
	if (vr != X509_V_OK || SSL_get0_peer_certificate(c->ssl) == NULL) {
		conn_err(errbuf, "certificate verify failed: %s (host %s)",
		    vr != X509_V_OK ? X509_verify_cert_error_string(vr) :
				      "no peer certificate",
		    c->host);
		return (ERR_TLS);
	}
	return (ERR_OK);
}

/* Frees the TLS state of c (not the socket). */
static void
conn_tls_free(struct net_conn *c)
{
	SSL_free(c->ssl); /* frees the BIO */
	c->ssl = NULL;
	SSL_CTX_free(c->ctx);
	c->ctx = NULL;
	BIO_meth_free(c->biom);
	c->biom = NULL;
}

/* Public API ------------------------------------------------------------- */

int
net_connect(const char *host, uint16_t port, bool tls, const char *ca_pem,
    int timeout_ms, struct net_conn **c_r, char *errbuf)
{
	struct net_conn *c;
	int64_t deadline;
	int rv;

	*c_r = NULL;
	conn_err(errbuf, "%s", "");
	if (host == NULL || host[0] == '\0' || port == 0 || timeout_ms < 0) {
		conn_err(errbuf, "bad host, port or timeout");
		return (ERR_INVAL);
	}
	deadline = clock_mono_ms() + timeout_ms;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return (ERR_NOMEM);
	}
	c->fd = -1;
	if (strlcpy_checked(c->host, host, sizeof(c->host)) != 0) {
		conn_err(errbuf, "host name too long");
		rv = ERR_INVAL;
		goto fail;
	}
	rv = conn_tcp(host, port, deadline, &c->fd, errbuf);
	if (rv != 0) {
		goto fail;
	}
	if (tls) {
		rv = conn_tls_setup(c, ca_pem, errbuf);
		if (rv != 0) {
			goto fail;
		}
		rv = conn_handshake(c, deadline, errbuf);
		if (rv != 0) {
			goto fail;
		}
	}
	*c_r = c;
	return (ERR_OK);
fail:
	net_close(&c);
	return (rv);
}

int
net_start_tls(struct net_conn *c, const char *ca_pem, int timeout_ms,
    char *errbuf)
{
	char b;
	ssize_t r;
	int rv;

	conn_err(errbuf, "%s", "");
	if (c->ssl != NULL) {
		conn_err(errbuf, "connection to %s already uses TLS", c->host);
		return (ERR_BADSTATE);
	}
	if (timeout_ms < 0) {
		conn_err(errbuf, "bad timeout");
		return (ERR_INVAL);
	}
	r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (r > 0) {
		conn_err(errbuf,
		    "%s sent data before the TLS handshake (STARTTLS "
		    "injection?)",
		    c->host);
		return (ERR_PROTO);
	}
	if (r == 0) {
		conn_err(errbuf, "%s closed the connection before TLS",
		    c->host);
		return (ERR_CLOSED);
	}
	rv = conn_tls_setup(c, ca_pem, errbuf);
	if (rv == 0) {
		rv = conn_handshake(c, clock_mono_ms() + timeout_ms, errbuf);
	}
	if (rv != 0) {
		/* A half-done handshake leaves nothing usable. */
		conn_tls_free(c);
		shutdown(c->fd, SHUT_RDWR);
	}
	return (rv);
}

int
net_write(struct net_conn *c, const void *p, size_t n, int timeout_ms)
{
	const char *s = p;
	int64_t deadline;
	size_t off = 0, w;
	ssize_t r;
	int rv, se;

	if (timeout_ms < 0) {
		return (ERR_INVAL);
	}
	deadline = clock_mono_ms() + timeout_ms;
	while (off < n) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			r = SSL_write_ex(c->ssl, s + off, n - off, &w);
			if (r == 1) {
				off += w;
				continue;
			}
			rv = conn_ssl_wait(c, (int)r, deadline, &se);
			if (rv == 1) {
				ERR_clear_error();
				return (se == SSL_ERROR_ZERO_RETURN ||
					       (se == SSL_ERROR_SYSCALL &&
						   conn_errno_closed(errno)) ?
					ERR_CLOSED :
					ERR_TLS);
			}
		} else {
			r = send(c->fd, s + off, n - off, MSG_NOSIGNAL);
			if (r >= 0) {
				off += (size_t)r;
				continue;
			}
			if (errno == EINTR) {
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				return (conn_errno_closed(errno) ? ERR_CLOSED :
								   ERR_IO);
			}
			rv = conn_wait(c->fd, POLLOUT, deadline);
		}
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}

int
net_read(struct net_conn *c, void *p, size_t cap, size_t *n_r,
    int timeout_ms)
{
	int64_t deadline;
	size_t got;
	ssize_t r;
	int rv, se;
	unsigned long e;

	*n_r = 0;
	if (cap == 0 || timeout_ms < 0) {
		return (ERR_INVAL);
	}
	deadline = clock_mono_ms() + timeout_ms;
	for (;;) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			r = SSL_read_ex(c->ssl, p, cap, &got);
			if (r == 1) {
				*n_r = got;
				return (ERR_OK);
			}
			rv = conn_ssl_wait(c, (int)r, deadline, &se);
			if (rv != 1) {
				if (rv != 0) {
					return (rv);
				}
				continue;
			}
			if (se == SSL_ERROR_ZERO_RETURN ||
			    (se == SSL_ERROR_SYSCALL &&
				(errno == 0 || conn_errno_closed(errno)))) {
				ERR_clear_error();
				return (ERR_CLOSED);
			}
			/* A peer that closes without close_notify. */
			e = ERR_peek_error();
			ERR_clear_error();
			if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
				return (ERR_CLOSED);
			}
			return (ERR_TLS);
		}
		r = recv(c->fd, p, cap, 0);
		if (r > 0) {
			*n_r = (size_t)r;
			return (ERR_OK);
		}
		if (r == 0) {
			return (ERR_CLOSED);
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			return (conn_errno_closed(errno) ? ERR_CLOSED : ERR_IO);
		}
		rv = conn_wait(c->fd, POLLIN, deadline);
		if (rv != 0) {
			return (rv);
		}
	}
}

int
net_fd(const struct net_conn *c)
{
	return (c->fd);
}

bool
net_is_tls(const struct net_conn *c)
{
	return (c != NULL && c->ssl != NULL);
}

void
net_close(struct net_conn **cp)
{
	struct net_conn *c;

	if (cp == NULL || *cp == NULL) {
		return;
	}
	c = *cp;
	if (c->ssl != NULL && SSL_is_init_finished(c->ssl)) {
		/* One non-blocking close_notify; never waits for the peer. */
		(void)SSL_shutdown(c->ssl);
	}
	conn_tls_free(c);
	if (c->fd >= 0) {
		close(c->fd);
	}
	ERR_clear_error();
	free(c);
	*cp = NULL;
}
