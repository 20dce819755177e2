/*
 * smtp.c: one message through SMTP with libcurl (docs/drain.md "Worker",
 * step 1).
 *
 * TLS: smtp:// must upgrade with STARTTLS (CURLUSESSL_ALL) unless the
 * account consented to plaintext (then STARTTLS is still used when
 * offered); smtps:// is TLS from the first byte. The peer and host are
 * always verified, against the account's CA when it has one.
 *
 * Envelope: the address of Sender, else the first of From; recipients
 * every address of To, Cc and Bcc (a refused one fails the whole send, so
 * nobody gets a copy the user does not know about). The copy handed to
 * curl has no Bcc field, and bare LF line ends become CRLF on the fly (so
 * that curl's dot-stuffing, which looks for CRLF ".", sees every line).
 *
 * Outcome (smtp_classify): what matters is whether DATA began, i.e. the
 * read callback ran after the server's 354. Before it nothing was sent;
 * after it, only a 4xx/5xx reply to the end of the data proves the server
 * did not take the message, and anything else (a drop, a timeout) may
 * have delivered it: uncertain, never repeated by itself.
 *
 * The server's last reply line is captured through the debug callback,
 * from CURLINFO_HEADER_IN only: what the client sends carries the
 * password, and the message itself is never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "drain_int.h"
#include "mime/mime.h"

/* Longest server reply line we keep for the error text. */
#define SMTP_MAX_REPLY 512

struct smtp_xfer {
	const char *data; /* the message without Bcc */
	size_t len, off;
	bool prev_cr; /* the last byte given was CR */
	bool cr_pending; /* a CR was given for the LF at off */
	bool data_began;
	int last_code; /* last final reply (0 none), for the log */
	/* The first refusal (4xx/5xx final reply): what ended the session;
	 * curl's QUIT and its 221 come after it. */
	int err_code;
	bool err_after_data;
	char err[SMTP_MAX_REPLY];
};

/* Gives the message, LF turned into CRLF. */
static size_t
smtp_read(char *dst, size_t size, size_t nitems, void *arg)
{
	struct smtp_xfer *x = arg;
	size_t cap = size * nitems, n = 0;
	char c;

	x->data_began = true;
	while (n < cap && x->off < x->len) {
		c = x->data[x->off];
		if (c == '\n' && !x->prev_cr && !x->cr_pending) {
			dst[n++] = '\r';
			x->cr_pending = true;
			continue;
		}
		dst[n++] = c;
		x->cr_pending = false;
		x->prev_cr = c == '\r';
		x->off++;
	}
	return (n);
}

/* Server lines only: "250 ok", "550-5.1.1 ...". A final line (a space
 * or nothing after the code) sets last_code; the first refusal is kept
 * with its words. */
static int
smtp_debug(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	struct smtp_xfer *x = arg;
	size_t i = 0, j, len;

	(void)h;
	if (type != CURLINFO_HEADER_IN) {
		return (0);
	}
	while (i < size) {
		for (j = i; j < size && data[j] != '\n'; j++) { }
		len = j - i;
		if (len > 0 && data[i + len - 1] == '\r') {
			len--;
		}
		if (len >= 3 && data[i] >= '2' && data[i] <= '5'
		    && data[i + 1] >= '0' && data[i + 1] <= '9'
		    && data[i + 2] >= '0' && data[i + 2] <= '9'
		    && (len == 3 || data[i + 3] == ' ')) {
			x->last_code = (data[i] - '0') * 100
			    + (data[i + 1] - '0') * 10 + (data[i + 2] - '0');
			if (x->last_code >= 400 && x->err_code == 0) {
				x->err_code = x->last_code;
				x->err_after_data = x->data_began;
				snprintf(x->err, sizeof(x->err), "%.*s",
				    (int)(len < sizeof(x->err)
				            ? len
				            : sizeof(x->err) - 1),
				    data + i);
			}
		}
		i = j + 1;
	}
	return (0);
}

/* curl codes that no retry can fix: the configuration is wrong. */
static const int smtp_config_errors[] = {
	CURLE_UNSUPPORTED_PROTOCOL,
	CURLE_URL_MALFORMAT,
	CURLE_USE_SSL_FAILED, /* smtp:// server without STARTTLS */
	CURLE_LOGIN_DENIED, /* no usable mechanism, or refused */
	CURLE_NOT_BUILT_IN,
};

uint8_t
smtp_classify(const struct smtp_facts *f)
{
	size_t i;

	if (f->curl_code == CURLE_OK) {
		return (CHANGE_OUT_SENT);
	}
	if (f->data_began) {
		/* Only the server's refusal of the data proves it was not
		 * taken. */
		if (f->err_after_data && f->err_code >= 500) {
			return (CHANGE_OUT_DEAD);
		}
		if (f->err_after_data && f->err_code >= 400) {
			return (CHANGE_OUT_RETRY);
		}
		return (CHANGE_OUT_UNCERTAIN);
	}
	if (f->err_code >= 400 && f->err_code < 500) {
		return (CHANGE_OUT_RETRY);
	}
	if (f->err_code >= 500) {
		return (CHANGE_OUT_DEAD);
	}
	for (i = 0; i < ARRAY_LEN(smtp_config_errors); i++) {
		if (f->curl_code == smtp_config_errors[i]) {
			return (CHANGE_OUT_DEAD);
		}
	}
	return (CHANGE_OUT_RETRY);
}

/* The first address of header field `name`, as "<addr>" (malloc'd), or
 * NULL with 0 when the field is absent or empty. */
static int
first_addr(const char *msg, size_t len, const char *name, char **out_r)
{
	struct mime_addr_list l;
	int rv;

	*out_r = NULL;
	rv = mime_header_addrs(msg, len, name, &l);
	if (rv == 0 && l.n > 0) {
		size_t n = strlen(l.v[0].addr) + 3;

		*out_r = malloc(n);
		if (*out_r == NULL) {
			rv = ERR_NOMEM;
		} else {
			snprintf(*out_r, n, "<%s>", l.v[0].addr);
		}
	}
	mime_addr_list_release(&l);
	return (rv);
}

/* Appends every address of field `name` to *rcpt (skipping repeats). */
static int
add_rcpts(const char *msg, size_t len, const char *name,
    struct curl_slist **rcpt, size_t *n_r)
{
	struct mime_addr_list l;
	struct curl_slist *s, *p;
	char one[1100];
	size_t i;
	int rv;

	rv = mime_header_addrs(msg, len, name, &l);
	for (i = 0; rv == 0 && i < l.n; i++) {
		if (strlen(l.v[i].addr) > sizeof(one) - 3) {
			rv = ERR_TOOBIG;
			break;
		}
		snprintf(one, sizeof(one), "<%s>", l.v[i].addr);
		for (p = *rcpt; p != NULL; p = p->next) {
			if (strcasecmp(p->data, one) == 0) {
				break;
			}
		}
		if (p != NULL) {
			continue;
		}
		s = curl_slist_append(*rcpt, one);
		if (s == NULL) {
			rv = ERR_NOMEM;
			break;
		}
		*rcpt = s;
		(*n_r)++;
	}
	mime_addr_list_release(&l);
	return (rv);
}

static void
fail(struct smtp_outcome *out, uint8_t outcome, const char *what, int rv)
{
	out->outcome = outcome;
	drain_text(
	    out->error, sizeof(out->error), "%s: %s", what, err_str(rv));
}

/* The envelope of msg: from (malloc'd "<addr>") and recipients. */
static bool
envelope(const char *msg, size_t len, char **from_r,
    struct curl_slist **rcpt_r, struct smtp_outcome *out)
{
	static const char *const fields[] = { "To", "Cc", "Bcc" };
	size_t i, n = 0;
	int rv;

	rv = first_addr(msg, len, "Sender", from_r);
	if (rv == 0 && *from_r == NULL) {
		rv = first_addr(msg, len, "From", from_r);
	}
	if (rv != 0) {
		fail(out, rv == ERR_NOMEM ? CHANGE_OUT_RETRY : CHANGE_OUT_DEAD,
		    "cannot read the sender (Sender or From)", rv);
		return (false);
	}
	if (*from_r == NULL) {
		fail(out, CHANGE_OUT_DEAD, "the message has no From address",
		    ERR_NOTFOUND);
		return (false);
	}
	for (i = 0; i < ARRAY_LEN(fields); i++) {
		rv = add_rcpts(msg, len, fields[i], rcpt_r, &n);
		if (rv != 0) {
			char what[64];

			snprintf(what, sizeof(what),
			    "cannot read the %s field", fields[i]);
			fail(out,
			    rv == ERR_NOMEM ? CHANGE_OUT_RETRY
			                    : CHANGE_OUT_DEAD,
			    what, rv);
			return (false);
		}
	}
	if (n == 0) {
		fail(out, CHANGE_OUT_DEAD,
		    "the message has no recipient (To, Cc, Bcc)",
		    ERR_NOTFOUND);
		return (false);
	}
	return (true);
}

/* The error text of a send that did not end with 250. */
static void
explain(const struct smtp_xfer *x, const struct smtp_facts *f, CURLcode cc,
    const char *errbuf, struct smtp_outcome *out)
{
	const char *detail
	    = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc);

	if (out->outcome == CHANGE_OUT_UNCERTAIN) {
		drain_text(out->error, sizeof(out->error),
		    "SMTP: the connection failed after the message data "
		    "began, it may have been delivered (%s)",
		    detail);
	} else if (f->err_code >= 400
	    && (f->err_after_data || !f->data_began)) {
		drain_text(out->error, sizeof(out->error), "SMTP: %s (%s)",
		    x->err, detail);
	} else {
		drain_text(out->error, sizeof(out->error), "SMTP: %s", detail);
	}
}

/* Options from the job; strings are copied by curl. */
static CURLcode
setup(CURL *h, const struct proto_job_run *job, const struct sync_limits *l,
    const char *url, const char *from, struct curl_slist *rcpt,
    struct smtp_xfer *x, char *errbuf)
{
	CURLcode cc = CURLE_OK;
	long io_s = l->io_timeout_ms > 1000 ? l->io_timeout_ms / 1000 : 1;

#define SET_(opt, val)                                                        \
	do {                                                                  \
		if (cc == CURLE_OK) {                                         \
			cc = curl_easy_setopt(h, opt, val);                   \
		}                                                             \
	} while (0)
	SET_(CURLOPT_ERRORBUFFER, errbuf);
	SET_(CURLOPT_NOSIGNAL, 1L);
	SET_(CURLOPT_URL, url);
	SET_(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SET_(CURLOPT_USE_SSL,
	    job->plaintext ? (long)CURLUSESSL_TRY : (long)CURLUSESSL_ALL);
	SET_(CURLOPT_SSL_VERIFYPEER, 1L);
	SET_(CURLOPT_SSL_VERIFYHOST, 2L);
	SET_(CURLOPT_CONNECTTIMEOUT_MS, (long)l->connect_timeout_ms);
	/* A stalled server: under 1 byte/s for the I/O timeout. */
	SET_(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET_(CURLOPT_LOW_SPEED_TIME, io_s);
	if (l->job_timeout_ms > 0) {
		SET_(CURLOPT_TIMEOUT_MS, (long)l->job_timeout_ms);
	}
	SET_(CURLOPT_MAIL_FROM, from);
	SET_(CURLOPT_MAIL_RCPT, rcpt);
	SET_(CURLOPT_UPLOAD, 1L);
	SET_(CURLOPT_READFUNCTION, smtp_read);
	SET_(CURLOPT_READDATA, x);
	/* The debug callback only runs in verbose mode; it keeps the
	 * server's lines and drops everything else. */
	SET_(CURLOPT_DEBUGFUNCTION, smtp_debug);
	SET_(CURLOPT_DEBUGDATA, x);
	SET_(CURLOPT_VERBOSE, 1L);
	if (job->tls_ca_pem.p != NULL && job->tls_ca_pem.len > 0) {
		struct curl_blob ca = { (void *)(uintptr_t)job->tls_ca_pem.p,
			job->tls_ca_pem.len, CURL_BLOB_COPY };

		SET_(CURLOPT_CAINFO_BLOB, &ca);
	}
#undef SET_
	return (cc);
}

/* Credentials (copies wiped after use; curl keeps its own). */
static CURLcode
setup_auth(CURL *h, const struct proto_job_run *job)
{
	char *user, *pass;
	CURLcode cc = CURLE_OK;

	if (job->smtp_password.p == NULL || job->smtp_password.len == 0) {
		return (CURLE_OK); /* a relay that needs no login */
	}
	user = proto_str_dup(
	    job->smtp_username.p != NULL ? job->smtp_username : job->username);
	pass = proto_str_dup(job->smtp_password);
	if (user == NULL || pass == NULL) {
		cc = CURLE_OUT_OF_MEMORY;
	}
	if (cc == CURLE_OK) {
		cc = curl_easy_setopt(h, CURLOPT_USERNAME, user);
	}
	if (cc == CURLE_OK) {
		cc = proto_str_eq(job->auth, "oauth2")
		    ? curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, pass)
		    : curl_easy_setopt(h, CURLOPT_PASSWORD, pass);
	}
	if (pass != NULL) {
		mem_wipe(pass, strlen(pass));
	}
	free(user);
	free(pass);
	return (cc);
}

static bool
url_ok(const char *url)
{
	return (strncasecmp(url, "smtp://", 7) == 0
	    || strncasecmp(url, "smtps://", 8) == 0);
}

void
smtp_send(const struct proto_job_run *job, const struct proto_change *c,
    const struct sync_limits *l, struct smtp_outcome *out)
{
	struct curl_slist *rcpt = NULL;
	struct smtp_facts f;
	struct smtp_xfer x;
	struct buf msg;
	char errbuf[CURL_ERROR_SIZE], *url = NULL, *from = NULL;
	CURL *h = NULL;
	CURLcode cc;
	int rv;

	memset(out, 0, sizeof(*out));
	memset(&x, 0, sizeof(x));
	errbuf[0] = '\0';
	buf_init(&msg, PROTO_MAX_RFC822);
	if (job->smtp.p == NULL || job->smtp.len == 0) {
		out->outcome = CHANGE_OUT_DEAD;
		drain_text(out->error, sizeof(out->error),
		    "the account has no SMTP server to send with");
		goto done;
	}
	url = proto_str_dup(job->smtp);
	if (url == NULL) {
		fail(out, CHANGE_OUT_RETRY, "SMTP", ERR_NOMEM);
		goto done;
	}
	if (!url_ok(url) || strlen(url) != job->smtp.len) {
		out->outcome = CHANGE_OUT_DEAD;
		drain_text(out->error, sizeof(out->error),
		    "bad SMTP server URL '%s': it must be smtp:// or smtps://",
		    url);
		goto done;
	}
	if (c->rfc822.p == NULL || c->rfc822.len == 0) {
		fail(out, CHANGE_OUT_DEAD, "the change has no message",
		    ERR_INVAL);
		goto done;
	}
	if (!envelope(c->rfc822.p, c->rfc822.len, &from, &rcpt, out)) {
		goto done;
	}
	rv = mime_header_strip(c->rfc822.p, c->rfc822.len, "Bcc", &msg);
	if (rv != 0) {
		fail(out, rv == ERR_NOMEM ? CHANGE_OUT_RETRY : CHANGE_OUT_DEAD,
		    "cannot remove the Bcc field", rv);
		goto done;
	}
	x.data = msg.data;
	x.len = msg.len;
	h = curl_easy_init();
	if (h == NULL) {
		fail(out, CHANGE_OUT_RETRY, "SMTP: cannot start libcurl",
		    ERR_NOMEM);
		goto done;
	}
	cc = setup(h, job, l, url, from, rcpt, &x, errbuf);
	if (cc == CURLE_OK) {
		cc = setup_auth(h, job);
	}
	if (cc != CURLE_OK) {
		out->outcome = CHANGE_OUT_DEAD;
		drain_text(out->error, sizeof(out->error),
		    "SMTP: libcurl refused an option: %s",
		    curl_easy_strerror(cc));
		goto done;
	}
	cc = curl_easy_perform(h);
	memset(&f, 0, sizeof(f));
	f.curl_code = (int)cc;
	f.data_began = x.data_began;
	f.err_code = x.err_code;
	f.err_after_data = x.err_after_data;
	out->outcome = smtp_classify(&f);
	if (out->outcome != CHANGE_OUT_SENT) {
		explain(&x, &f, cc, errbuf, out);
	}
	log_info("event=smtp_send change=%llu outcome=%d code=%d data=%d",
	    (unsigned long long)c->id, out->outcome, x.last_code,
	    x.data_began);
done:
	if (h != NULL) {
		curl_easy_cleanup(h);
	}
	curl_slist_free_all(rcpt);
	free(from);
	free(url);
	buf_release(&msg);
}
