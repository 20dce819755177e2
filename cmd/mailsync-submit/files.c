/*
 * files.c: the files named on mailsync-submit's command line, read and
 * checked before anything is sent: the password, token and CA files of
 * `account add` (bounded, a secret wiped after use), and the message file
 * of `append` and `send` (docs/cli.md, docs/drain.md "Message-ID"): at
 * most PROTO_MAX_RFC822 bytes, bare LF line ends turned into CRLF (IMAP
 * APPEND and SMTP want CRLF; doing it here means the store keeps, and the
 * server receives, exactly the same bytes), a header section required,
 * and a Message-ID field added at the top when the file has none.
 * Header parsing is pkg/mime's. tests/unit/submit_args_test.c includes
 * this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "mime/mime.h"
#include "proto/proto.h"
#include "submit.h"

#define MSGID_FALLBACK_DOMAIN "mailsync.invalid"
#define MSGID_RANDOM_BYTES 16
#define MSGID_DOMAIN_MAX 253 /* a DNS name */

/* Formats the error (exit 2) into errbuf; returns ERR_INVAL. */
static int msg_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
msg_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	return (ERR_INVAL);
}

/* Secrets and CA --------------------------------------------------------- */

/* Reads at most max bytes of path into b; ERR_TOOBIG if there is more. */
static int
read_capped(const char *what, const char *path, struct buf *b, size_t max,
    char *errbuf, size_t errlen)
{
	char chunk[4096];
	struct stat st;
	ssize_t n;
	int fd, rv = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		return (msg_err(errbuf, errlen, "%s %.256s: cannot read: %s",
		    what, path, strerror(errno)));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return (msg_err(errbuf, errlen,
		    "%s %.256s: not a regular file", what, path));
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			rv = msg_err(errbuf, errlen,
			    "%s %.256s: cannot read: %s", what, path,
			    strerror(errno));
			break;
		}
		if (n == 0) {
			break;
		}
		if (b->len + (size_t)n > max) {
			rv = msg_err(errbuf, errlen,
			    "%s %.256s: larger than %zu bytes", what, path,
			    max);
			break;
		}
		rv = buf_add(b, chunk, (size_t)n);
		if (rv != 0) {
			rv = msg_err(errbuf, errlen, "%s %.256s: %s", what,
			    path, err_str(rv));
			break;
		}
	}
	mem_wipe(chunk, sizeof(chunk));
	close(fd);
	return (rv);
}

/* Reads a secret file (what: "password file" or "token file"). */
static int
read_secret(const char *what, const char *path, struct buf *pw, char *errbuf,
    size_t errlen)
{
	size_t i;
	int rv;

	/* One more byte than the limit, for the trailing newline. */
	rv = read_capped(
	    what, path, pw, SUBMIT_PASSWORD_MAX + 1, errbuf, errlen);
	if (rv != 0) {
		return (rv);
	}
	if (pw->len > 0 && pw->data[pw->len - 1] == '\n') {
		pw->len--;
		pw->data[pw->len] = '\0';
	}
	if (pw->len == 0) {
		return (
		    msg_err(errbuf, errlen, "%s %.256s: empty", what, path));
	}
	if (pw->len > SUBMIT_PASSWORD_MAX) {
		return (
		    msg_err(errbuf, errlen, "%s %.256s: larger than %d bytes",
		        what, path, SUBMIT_PASSWORD_MAX));
	}
	for (i = 0; i < pw->len; i++) {
		char c = pw->data[i];

		if (c == '\0' || c == '\r' || c == '\n') {
			return (msg_err(errbuf, errlen,
			    "%s %.256s: contains a NUL, CR or LF "
			    "byte (only one trailing newline is allowed)",
			    what, path));
		}
	}
	return (0);
}

int
submit_read_password(
    const char *path, struct buf *pw, char *errbuf, size_t errlen)
{
	return (read_secret("password file", path, pw, errbuf, errlen));
}

int
submit_read_token(
    const char *path, struct buf *pw, char *errbuf, size_t errlen)
{
	return (read_secret("token file", path, pw, errbuf, errlen));
}

int
submit_read_ca(const char *path, struct buf *pem, char *errbuf, size_t errlen)
{
	int rv;

	rv = read_capped("CA file", path, pem, SUBMIT_CA_MAX, errbuf, errlen);
	if (rv != 0) {
		return (rv);
	}
	if (pem->len == 0 || memchr(pem->data, '\0', pem->len) != NULL
	    || strstr(pem->data, "-----BEGIN CERTIFICATE-----") == NULL) {
		return (msg_err(errbuf, errlen,
		    "CA file %.256s: no PEM certificate (\"-----BEGIN "
		    "CERTIFICATE-----\") in it",
		    path));
	}
	return (0);
}

/* Message files ---------------------------------------------------------- */

/* "FILE is N bytes; the limit is 12 MiB" */
static int
too_big(const char *path, uint64_t n, const char *after, char *errbuf,
    size_t errlen)
{
	return (msg_err(errbuf, errlen,
	    "%.256s is %llu bytes%s; the limit is %u MiB", path,
	    (unsigned long long)n, after, PROTO_MAX_RFC822 / (1024 * 1024)));
}

/* Reads path into raw (max PROTO_MAX_RFC822 + 1 so that more is seen). */
static int
read_file(const char *path, struct buf *raw, char *errbuf, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd, rv = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		return (msg_err(errbuf, errlen, "%.256s: cannot read: %s",
		    path, strerror(errno)));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return (msg_err(
		    errbuf, errlen, "%.256s: not a regular file", path));
	}
	if ((uint64_t)st.st_size > PROTO_MAX_RFC822) {
		close(fd);
		return (
		    too_big(path, (uint64_t)st.st_size, "", errbuf, errlen));
	}
	/* One read per 64 KiB straight into the buffer; a file that grows
	 * while read is caught by the buffer's ceiling. */
	for (;;) {
		rv = buf_reserve(raw, 65536);
		if (rv == ERR_TOOBIG) {
			rv = buf_reserve(raw, 1);
		}
		if (rv != 0) {
			rv = rv == ERR_TOOBIG
			    ? too_big(
			        path, raw->len, " or more", errbuf, errlen)
			    : msg_err(errbuf, errlen, "%.256s: %s", path,
			        err_str(rv));
			break;
		}
		n = read(fd, raw->data + raw->len,
		    raw->cap - raw->len - 1 < 65536 ? raw->cap - raw->len - 1
		                                    : 65536);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			rv = msg_err(errbuf, errlen, "%.256s: cannot read: %s",
			    path, strerror(errno));
			break;
		}
		if (n == 0) {
			break;
		}
		raw->len += (size_t)n;
		raw->data[raw->len] = '\0';
		if (raw->len > PROTO_MAX_RFC822) {
			rv = too_big(
			    path, raw->len, " or more", errbuf, errlen);
			break;
		}
	}
	close(fd);
	return (rv);
}

/* Appends raw to out with every LF not preceded by CR made CRLF. */
static int
to_crlf(const struct buf *raw, struct buf *out)
{
	size_t i, start = 0;
	int rv = 0;

	for (i = 0; i < raw->len && rv == 0; i++) {
		if (raw->data[i] == '\n'
		    && (i == 0 || raw->data[i - 1] != '\r')) {
			rv = buf_add(out, raw->data + start, i - start);
			rv = rv != 0 ? rv : buf_add(out, "\r\n", 2);
			start = i + 1;
		}
	}
	return (
	    rv != 0 ? rv : buf_add(out, raw->data + start, raw->len - start));
}

/*
 * The domain of the message's first From address into dom (size n), or
 * the fallback when there is none or it is not a plain DNS name (an
 * address literal, a quoted or odd string).
 */
static void
from_domain(const char *msg, size_t len, char *dom, size_t n)
{
	struct mime_addr_list l = { NULL, 0 };
	const char *at;
	char *from = NULL;
	size_t i, dl;
	bool ok = false;

	if (mime_header_get(msg, len, "From", &from) == 0
	    && mime_addr_parse(from, strlen(from), &l) == 0 && l.n > 0
	    && l.v[0].addr != NULL
	    && (at = strrchr(l.v[0].addr, '@')) != NULL) {
		at++;
		dl = strlen(at);
		ok = dl > 0 && dl <= MSGID_DOMAIN_MAX && dl < n && at[0] != '.'
		    && at[0] != '-' && at[dl - 1] != '.';
		for (i = 0; ok && i < dl; i++) {
			char c = at[i];

			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
			    || (c >= '0' && c <= '9') || c == '-' || c == '.';
		}
		if (ok) {
			memcpy(dom, at, dl + 1);
		}
	}
	if (!ok) {
		snprintf(dom, n, "%s", MSGID_FALLBACK_DOMAIN);
	}
	mime_addr_list_release(&l);
	free(from);
}

/* "Message-ID: <32 hex digits@domain>\r\n" into out. */
static int
add_message_id(
    const char *msg, size_t len, struct buf *out, char *errbuf, size_t errlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[MSGID_RANDOM_BYTES];
	char id[2 * MSGID_RANDOM_BYTES + 1];
	char dom[MSGID_DOMAIN_MAX + 1];
	size_t got = 0, i;
	ssize_t n;

	while (got < sizeof(rnd)) {
		n = getrandom(rnd + got, sizeof(rnd) - got, 0);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return (msg_err(errbuf, errlen,
			    "cannot make a Message-ID: getrandom: %s",
			    strerror(errno)));
		}
		got += (size_t)n;
	}
	for (i = 0; i < sizeof(rnd); i++) {
		id[2 * i] = hex[rnd[i] >> 4];
		id[2 * i + 1] = hex[rnd[i] & 15];
	}
	id[sizeof(id) - 1] = '\0';
	from_domain(msg, len, dom, sizeof(dom));
	return (buf_printf(out, "Message-ID: <%s@%s>\r\n", id, dom));
}

int
submit_read_message(
    const char *path, struct buf *msg, char *errbuf, size_t errlen)
{
	struct buf raw, crlf;
	size_t end;
	char *id = NULL;
	int rv;

	errbuf[0] = '\0';
	buf_init(&raw, PROTO_MAX_RFC822 + 1);
	/* CRLF may double the size; past the limit is refused below */
	buf_init(&crlf, 2 * (size_t)PROTO_MAX_RFC822 + 2);
	rv = read_file(path, &raw, errbuf, errlen);
	if (rv != 0) {
		goto out;
	}
	if (raw.len == 0) {
		rv = msg_err(errbuf, errlen, "%.256s: empty file", path);
		goto out;
	}
	if (memchr(raw.data, '\0', raw.len) != NULL) {
		rv = msg_err(errbuf, errlen,
		    "%.256s: contains a NUL byte; not a message", path);
		goto out;
	}
	rv = to_crlf(&raw, &crlf);
	if (rv != 0) {
		rv = msg_err(errbuf, errlen, "%.256s: %s", path, err_str(rv));
		goto out;
	}
	if (mime_header_end(crlf.data, crlf.len, &end) != 0) {
		rv = msg_err(errbuf, errlen,
		    "%.256s: not a message: it needs a header section "
		    "(\"Name: value\" lines, then an empty line)",
		    path);
		goto out;
	}
	rv = mime_header_get(crlf.data, crlf.len, "Message-ID", &id);
	if (rv == ERR_NOTFOUND) {
		rv = add_message_id(crlf.data, crlf.len, msg, errbuf, errlen);
	} else if (rv != 0) {
		rv = msg_err(errbuf, errlen,
		    "%.256s: the Message-ID header cannot be read: %s", path,
		    err_str(rv));
		goto out;
	}
	if (rv == 0 && msg->len + crlf.len > PROTO_MAX_RFC822) {
		rv = too_big(path, msg->len + crlf.len,
		    " with CRLF line ends and a Message-ID", errbuf, errlen);
		goto out;
	}
	rv = rv != 0 ? rv : buf_add(msg, crlf.data, crlf.len);
	if (rv != 0 && errbuf[0] == '\0') {
		rv = msg_err(errbuf, errlen, "%.256s: %s", path, err_str(rv));
	}
out:
	free(id);
	buf_release(&raw);
	buf_release(&crlf);
	return (rv);
}
