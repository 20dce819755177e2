/*
 * net_test.c: pkg/net. URL parsing (table), and real connections on
 * 127.0.0.1 to an in-process server thread: TLS verified against a
 * throwaway CA made in memory, refused with the system store, with the
 * wrong CA and with the wrong name; STARTTLS (and plain text injected
 * before it); timeouts on connect/handshake/read/write; EOF; no SIGPIPE.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cmocka.h>

#include "base/base.h"
#include "net/net.h"

/* URLs ------------------------------------------------------------------ */

struct url_case {
	const char *in;
	int rv;
	const char *scheme, *host;
	uint16_t port;
	const char *path;
	const char *err; /* substring of errbuf when rv != 0 */
};

static const struct url_case url_cases[] = {
	{ "imap://mail.example.com", 0, "imap", "mail.example.com", 143, "",
	    NULL },
	{ "imaps://mail.example.com", 0, "imaps", "mail.example.com", 993, "",
	    NULL },
	{ "IMAPS://Mail.Example.com:1993/", 0, "imaps", "Mail.Example.com",
	    1993, "", NULL },
	{ "smtp://mx", 0, "smtp", "mx", 587, "", NULL },
	{ "smtps://mx", 0, "smtps", "mx", 465, "", NULL },
	{ "http://127.0.0.1", 0, "http", "127.0.0.1", 80, "", NULL },
	{ "https://h:8443/a/b?c=d", 0, "https", "h", 8443, "/a/b?c=d", NULL },
	{ "http://h/", 0, "http", "h", 80, "/", NULL },
	{ "imaps://[::1]:993", 0, "imaps", "::1", 993, "", NULL },
	{ "imaps://[2001:db8::1]", 0, "imaps", "2001:db8::1", 993, "", NULL },
	{ "imap://h:65535", 0, "imap", "h", 65535, "", NULL },
	{ "imap://h:1", 0, "imap", "h", 1, "", NULL },
	{ "imaps://user@host", ERR_INVAL, NULL, NULL, 0, NULL,
	    "user name or password" },
	{ "imaps://user:pw@host:993", ERR_INVAL, NULL, NULL, 0, NULL,
	    "user name or password" },
	{ "imap://h:0", ERR_INVAL, NULL, NULL, 0, NULL, "bad port" },
	{ "imap://h:65536", ERR_INVAL, NULL, NULL, 0, NULL, "bad port" },
	{ "imap://h:99999999999", ERR_INVAL, NULL, NULL, 0, NULL, "bad port" },
	{ "imap://h:", ERR_INVAL, NULL, NULL, 0, NULL, "bad port" },
	{ "imap://h:-1", ERR_INVAL, NULL, NULL, 0, NULL, "bad port" },
	{ "imap://h:12a", ERR_INVAL, NULL, NULL, 0, NULL, "bad port" },
	{ "imap://::1", ERR_INVAL, NULL, NULL, 0, NULL, "brackets" },
	{ "imap://[::1", ERR_INVAL, NULL, NULL, 0, NULL, "unterminated" },
	{ "imap://[nope]", ERR_INVAL, NULL, NULL, 0, NULL, "IPv6" },
	{ "imap://[::1]x", ERR_INVAL, NULL, NULL, 0, NULL, "junk" },
	{ "imap://", ERR_INVAL, NULL, NULL, 0, NULL, "no host" },
	{ "imap://:143", ERR_INVAL, NULL, NULL, 0, NULL, "no host" },
	{ "imap:///x", ERR_INVAL, NULL, NULL, 0, NULL, "no host" },
	{ "imap://h/INBOX", ERR_INVAL, NULL, NULL, 0, NULL, "no path" },
	{ "ftp://h", ERR_INVAL, NULL, NULL, 0, NULL, "unknown URL scheme" },
	{ "averyveryverylongscheme://h", ERR_INVAL, NULL, NULL, 0, NULL,
	    "unknown URL scheme" },
	{ "mail.example.com", ERR_INVAL, NULL, NULL, 0, NULL, "not a URL" },
	{ "://h", ERR_INVAL, NULL, NULL, 0, NULL, "not a URL" },
	{ "", ERR_INVAL, NULL, NULL, 0, NULL, "not a URL" },
	{ "imap://h st", ERR_INVAL, NULL, NULL, 0, NULL, "space" },
	{ "imap://h\xc3\xa9", ERR_INVAL, NULL, NULL, 0, NULL, "non-ASCII" },
	{ "imap://h!x", ERR_INVAL, NULL, NULL, 0, NULL, "bad character" },
};

static void
test_url_parse(void **state)
{
	struct net_url u;
	char err[128];
	size_t i;
	int rv;

	(void)state;
	for (i = 0; i < ARRAY_LEN(url_cases); i++) {
		const struct url_case *c = &url_cases[i];

		err[0] = '\0';
		rv = net_url_parse(c->in, &u, err, sizeof(err));
		if (rv != c->rv) {
			print_error("case %zu \"%s\": rv %d (%s)\n", i, c->in,
			    rv, err);
			fail();
		}
		if (rv != 0) {
			if (strstr(err, c->err) == NULL) {
				print_error("case %zu: err \"%s\" lacks "
					    "\"%s\"\n",
				    i, err, c->err);
				fail();
			}
			continue;
		}
		assert_string_equal(u.scheme, c->scheme);
		assert_string_equal(u.host, c->host);
		assert_int_equal(u.port, c->port);
		assert_string_equal(u.path, c->path);
	}
	/* A path that does not fit. */
	{
		char big[1100];

		memcpy(big, "http://h/", 9);
		memset(big + 9, 'a', sizeof(big) - 10);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(net_url_parse(big, &u, err, sizeof(err)),
		    ERR_INVAL);
		assert_non_null(strstr(err, "too long"));
	}
	assert_int_equal(net_url_parse(NULL, &u, NULL, 0), ERR_INVAL);
}

/* Certificates ------------------------------------------------------------ */

struct pki {
	EVP_PKEY *ca_key, *srv_key, *other_key;
	X509 *ca, *srv, *other_ca;
	char *ca_pem, *other_pem, *both_pem;
};

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer/ikey (self-signed if NULL). */
static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
    const char *san)
{
	X509 *x = X509_new();
	X509_NAME *name;
	static long serial = 1;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) :
						 name);
	if (issuer == NULL) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(x, x, NID_subject_key_identifier, "hash");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
		add_ext(x, issuer, NID_subject_alt_name, san);
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
	}
	assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) >
	    0);
	return (x);
}

static char *
cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &p);
	s = xstrndup(p, (size_t)n);
	BIO_free(b);
	return (s);
}

static void
pki_init(struct pki *k)
{
	size_t a, b;

	k->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	k->srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	k->other_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(k->ca_key);
	k->ca = make_cert("mailsync test CA", k->ca_key, NULL, NULL, NULL);
	k->other_ca = make_cert("unrelated CA", k->other_key, NULL, NULL,
	    NULL);
	k->srv = make_cert("mail.example.test", k->srv_key, k->ca, k->ca_key,
	    "IP:127.0.0.1,DNS:mail.example.test");
	k->ca_pem = cert_pem(k->ca);
	k->other_pem = cert_pem(k->other_ca);
	a = strlen(k->other_pem);
	b = strlen(k->ca_pem);
	k->both_pem = malloc(a + b + 1);
	memcpy(k->both_pem, k->other_pem, a);
	memcpy(k->both_pem + a, k->ca_pem, b + 1);
}

static void
pki_release(struct pki *k)
{
	X509_free(k->ca);
	X509_free(k->srv);
	X509_free(k->other_ca);
	EVP_PKEY_free(k->ca_key);
	EVP_PKEY_free(k->srv_key);
	EVP_PKEY_free(k->other_key);
	free(k->ca_pem);
	free(k->other_pem);
	free(k->both_pem);
}

/* The server thread ------------------------------------------------------ */

enum srv_mode {
	SRV_TLS_ECHO,	/* TLS at once; echo one read; close_notify */
	SRV_STARTTLS,	/* greeting, STARTTLS, TLS, "hello tls" */
	SRV_INJECT,	/* like STARTTLS but plain junk after the OK */
	SRV_CLOSE,	/* accept and close at once */
	SRV_PLAIN_LINE, /* send one line, close */
};

struct srv {
	int lfd;
	uint16_t port;
	enum srv_mode mode;
	SSL_CTX *ctx;
	pthread_t thr;
};

static int
listen_any(uint16_t *port_r)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port_r = ntohs(sa.sin_port);
	return (fd);
}

/* Reads one line (up to '\n') from a plain fd; test helper. */
static void
srv_read_line(int fd, char *line, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap && recv(fd, line + n, 1, 0) == 1) {
		if (line[n++] == '\n') {
			break;
		}
	}
	line[n] = '\0';
}

static void
srv_tls(struct srv *s, int fd, const char *msg)
{
	char buf[256];
	SSL *ssl = SSL_new(s->ctx);
	int n;

	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1) {
		if (msg != NULL) {
			SSL_write(ssl, msg, (int)strlen(msg));
		} else {
			n = SSL_read(ssl, buf, sizeof(buf));
			if (n > 0) {
				SSL_write(ssl, buf, n);
			}
		}
		SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	ERR_clear_error();
}

static void *
srv_main(void *arg)
{
	struct srv *s = arg;
	struct timeval tv = { 5, 0 };
	char line[256];
	int fd;
	static const char ok[] = "a OK begin TLS\r\n";

	fd = accept(s->lfd, NULL, NULL);
	if (fd < 0) {
		return (NULL);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	switch (s->mode) {
	case SRV_TLS_ECHO:
		srv_tls(s, fd, NULL);
		break;
	case SRV_STARTTLS:
	case SRV_INJECT:
		send(fd, "* OK ready\r\n", 12, MSG_NOSIGNAL);
		srv_read_line(fd, line, sizeof(line));
		if (strcmp(line, "a STARTTLS\r\n") != 0) {
			break;
		}
		if (s->mode == SRV_INJECT) {
			char both[64];

			snprintf(both, sizeof(both), "%s* OK evil\r\n", ok);
			send(fd, both, strlen(both), MSG_NOSIGNAL);
			srv_read_line(fd, line, sizeof(line));
			break;
		}
		send(fd, ok, strlen(ok), MSG_NOSIGNAL);
		srv_tls(s, fd, "hello tls\r\n");
		break;
	case SRV_CLOSE:
		break;
	case SRV_PLAIN_LINE:
		send(fd, "line\r\n", 6, MSG_NOSIGNAL);
		break;
	}
	close(fd);
	return (NULL);
}

static void
srv_start(struct srv *s, struct pki *k, enum srv_mode mode)
{
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->lfd = listen_any(&s->port);
	s->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(s->ctx);
	assert_int_equal(SSL_CTX_use_certificate(s->ctx, k->srv), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, k->srv_key), 1);
	/* Send the CA too, so a client with the system store sees a
	 * self-signed certificate in the chain. */
	assert_int_equal(SSL_CTX_add1_chain_cert(s->ctx, k->ca), 1);
	assert_int_equal(pthread_create(&s->thr, NULL, srv_main, s), 0);
}

static void
srv_stop(struct srv *s)
{
	pthread_join(s->thr, NULL);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
}

static int
pki_setup(void **state)
{
	struct pki *k = calloc(1, sizeof(*k));

	if (k == NULL) {
		return (-1);
	}
	pki_init(k);
	*state = k;
	return (0);
}

static int
pki_teardown(void **state)
{
	pki_release(*state);
	free(*state);
	return (0);
}

/* TLS tests -------------------------------------------------------------- */

static void
test_tls_verified(void **state)
{
	struct pki *k = *state;
	const char *pems[2] = { k->ca_pem, k->both_pem };
	struct net_conn *c = NULL;
	char err[NET_ERRLEN], buf[64];
	struct srv s;
	size_t n, i;

	for (i = 0; i < 2; i++) {
		srv_start(&s, k, SRV_TLS_ECHO);
		assert_int_equal(net_connect("127.0.0.1", s.port, true,
				     pems[i], 2000, &c, err),
		    0);
		assert_true(net_is_tls(c));
		assert_int_equal(net_write(c, "ping\r\n", 6, 2000), 0);
		assert_int_equal(net_read(c, buf, sizeof(buf), &n, 2000), 0);
		assert_int_equal(n, 6);
		assert_memory_equal(buf, "ping\r\n", 6);
		/* The server sent close_notify and closed. */
		assert_int_equal(net_read(c, buf, sizeof(buf), &n, 2000),
		    ERR_CLOSED);
		assert_int_equal(n, 0);
		net_close(&c);
		assert_null(c);
		srv_stop(&s);
	}
}

static void
test_tls_refused(void **state)
{
	struct pki *k = *state;
	struct net_conn *c = NULL;
	char err[NET_ERRLEN];
	struct srv s;

	/* The system store does not trust our throwaway CA. */
	srv_start(&s, k, SRV_TLS_ECHO);
	assert_int_equal(net_connect("127.0.0.1", s.port, true, NULL, 2000,
			     &c, err),
	    ERR_TLS);
	assert_null(c);
	print_message("system store: %s\n", err);
	assert_non_null(strstr(err, "certificate verify failed: "));
	assert_non_null(strstr(err, "self-signed certificate in "
				    "certificate chain (host 127.0.0.1)"));
	srv_stop(&s);

	/* Only an unrelated CA is trusted. */
	srv_start(&s, k, SRV_TLS_ECHO);
	assert_int_equal(net_connect("127.0.0.1", s.port, true, k->other_pem,
			     2000, &c, err),
	    ERR_TLS);
	assert_non_null(strstr(err, "certificate verify failed"));
	srv_stop(&s);

	/* Right CA, wrong name: the cert is for 127.0.0.1 and
	 * mail.example.test, not for "localhost". */
	srv_start(&s, k, SRV_TLS_ECHO);
	assert_int_equal(net_connect("localhost", s.port, true, k->ca_pem,
			     2000, &c, err),
	    ERR_TLS);
	assert_non_null(strstr(err, "certificate verify failed"));
	print_message("wrong name: %s\n", err);
	assert_non_null(strstr(err, "mismatch (host localhost)"));
	srv_stop(&s);

	/* A CA PEM with no certificate in it. */
	assert_int_equal(net_connect("127.0.0.1", 1, true, "garbage", 2000,
			     &c, err),
	    ERR_UNREACHABLE);
	srv_start(&s, k, SRV_CLOSE);
	assert_int_equal(net_connect("127.0.0.1", s.port, true, "garbage",
			     2000, &c, err),
	    ERR_TLS);
	assert_non_null(strstr(err, "no certificate"));
	srv_stop(&s);

	/* A peer that hangs up during the handshake: transient. */
	srv_start(&s, k, SRV_CLOSE);
	assert_int_equal(net_connect("127.0.0.1", s.port, true, k->ca_pem,
			     2000, &c, err),
	    ERR_UNREACHABLE);
	assert_non_null(strstr(err, "TLS handshake with 127.0.0.1"));
	srv_stop(&s);

	/* A plain-text server on a TLS port (imaps to 143). */
	srv_start(&s, k, SRV_PLAIN_LINE);
	assert_int_equal(net_connect("127.0.0.1", s.port, true, k->ca_pem,
			     2000, &c, err),
	    ERR_TLS);
	print_message("plain server: %s\n", err);
	assert_non_null(strstr(err, "TLS handshake failed"));
	srv_stop(&s);
}

static void
test_starttls(void **state)
{
	struct pki *k = *state;
	struct net_conn *c = NULL;
	char err[NET_ERRLEN], buf[64];
	struct srv s;
	size_t n;

	srv_start(&s, k, SRV_STARTTLS);
	assert_int_equal(net_connect("127.0.0.1", s.port, false, NULL, 2000,
			     &c, err),
	    0);
	assert_false(net_is_tls(c));
	assert_int_equal(net_read(c, buf, 12, &n, 2000), 0);
	assert_memory_equal(buf, "* OK ready\r\n", n);
	assert_int_equal(net_write(c, "a STARTTLS\r\n", 12, 2000), 0);
	assert_int_equal(net_read(c, buf, 16, &n, 2000), 0);
	assert_int_equal(n, 16);
	assert_memory_equal(buf, "a OK begin TLS\r\n", 16);
	assert_int_equal(net_start_tls(c, k->ca_pem, 2000, err), 0);
	assert_true(net_is_tls(c));
	assert_int_equal(net_start_tls(c, k->ca_pem, 2000, err), ERR_BADSTATE);
	assert_int_equal(net_read(c, buf, sizeof(buf), &n, 2000), 0);
	assert_int_equal(n, 11);
	assert_memory_equal(buf, "hello tls\r\n", 11);
	net_close(&c);
	srv_stop(&s);

	/* Plain text queued behind the OK must not pass as protected. */
	srv_start(&s, k, SRV_INJECT);
	assert_int_equal(net_connect("127.0.0.1", s.port, false, NULL, 2000,
			     &c, err),
	    0);
	assert_int_equal(net_read(c, buf, 12, &n, 2000), 0);
	assert_int_equal(net_write(c, "a STARTTLS\r\n", 12, 2000), 0);
	assert_int_equal(net_read(c, buf, 16, &n, 2000), 0);
	assert_int_equal(n, 16);
	usleep(100 * 1000); /* let the injected bytes arrive */
	assert_int_equal(net_start_tls(c, k->ca_pem, 2000, err), ERR_PROTO);
	assert_non_null(strstr(err, "before the TLS handshake"));
	assert_false(net_is_tls(c));
	net_close(&c);
	srv_stop(&s);
}

/* Plain TCP, timeouts, EOF ----------------------------------------------- */

static void
test_timeouts(void **state)
{
	struct net_conn *c = NULL;
	char err[NET_ERRLEN], buf[16];
	uint16_t port;
	int64_t t0, dt;
	size_t n;
	char *big;
	int lfd;

	(void)state;
	/* A listener that never accepts: the kernel completes connect,
	 * nobody ever speaks. */
	lfd = listen_any(&port);
	assert_int_equal(net_connect("127.0.0.1", port, false, NULL, 2000,
			     &c, err),
	    0);
	t0 = clock_mono_ms();
	assert_int_equal(net_read(c, buf, sizeof(buf), &n, 200), ERR_TIMEOUT);
	dt = clock_mono_ms() - t0;
	assert_true(dt >= 190 && dt < 1500);
	/* Writes time out once the peer's buffers are full. */
	big = calloc(1, 64u << 20);
	assert_non_null(big);
	t0 = clock_mono_ms();
	assert_int_equal(net_write(c, big, 64u << 20, 300), ERR_TIMEOUT);
	dt = clock_mono_ms() - t0;
	assert_true(dt >= 290 && dt < 3000);
	free(big);
	net_close(&c);

	/* The TLS handshake is bounded by the same deadline. */
	t0 = clock_mono_ms();
	assert_int_equal(net_connect("127.0.0.1", port, true, NULL, 200, &c,
			     err),
	    ERR_TIMEOUT);
	dt = clock_mono_ms() - t0;
	assert_true(dt >= 190 && dt < 1500);
	assert_non_null(strstr(err, "timed out"));
	assert_null(c);
	close(lfd);

	/* Nothing listens there any more. */
	assert_int_equal(net_connect("127.0.0.1", port, false, NULL, 2000,
			     &c, err),
	    ERR_UNREACHABLE);
	assert_non_null(strstr(err, "refused"));
	assert_int_equal(net_connect("", port, false, NULL, 2000, &c, err),
	    ERR_INVAL);
	assert_int_equal(net_connect("127.0.0.1", 0, false, NULL, 2000, &c,
			     err),
	    ERR_INVAL);
}

static void
test_eof_and_sigpipe(void **state)
{
	struct pki *k = *state;
	struct net_conn *c = NULL;
	char err[NET_ERRLEN], buf[64];
	struct srv s;
	size_t n;
	int i, rv;

	srv_start(&s, k, SRV_PLAIN_LINE);
	assert_int_equal(net_connect("127.0.0.1", s.port, false, NULL, 2000,
			     &c, err),
	    0);
	assert_int_equal(net_read(c, buf, sizeof(buf), &n, 2000), 0);
	assert_int_equal(n, 6);
	assert_int_equal(net_read(c, buf, sizeof(buf), &n, 2000), ERR_CLOSED);
	/* Writing to a closed peer fails without SIGPIPE (the default
	 * action would kill this test). */
	rv = 0;
	for (i = 0; i < 100 && rv == 0; i++) {
		rv = net_write(c, "x\r\n", 3, 500);
		usleep(1000);
	}
	assert_int_equal(rv, ERR_CLOSED);
	net_close(&c);
	srv_stop(&s);

	/* The same over TLS. */
	srv_start(&s, k, SRV_TLS_ECHO);
	assert_int_equal(net_connect("127.0.0.1", s.port, true, k->ca_pem,
			     2000, &c, err),
	    0);
	assert_int_equal(net_write(c, "a\r\n", 3, 2000), 0);
	assert_int_equal(net_read(c, buf, sizeof(buf), &n, 2000), 0);
	srv_stop(&s); /* server has closed */
	rv = 0;
	for (i = 0; i < 100 && rv == 0; i++) {
		rv = net_write(c, "x\r\n", 3, 500);
		usleep(1000);
	}
	assert_true(rv == ERR_CLOSED || rv == ERR_TLS);
	net_close(&c);
	net_close(&c); /* NULL is fine */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_parse),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_tls_verified),
		cmocka_unit_test(test_tls_refused),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_eof_and_sigpipe),
	};

	return (cmocka_run_group_tests(tests, pki_setup, pki_teardown));
}
