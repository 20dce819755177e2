/*
 * imap_session.c: one IMAP connection, from TCP connect to LOGOUT.
 *
 * It owns the socket (pkg/net) and the response parser (pkg/imap) and
 * offers one primitive, imap_session_run(): send a pipeline of commands
 * back to back, then read until every tagged completion arrived, handing
 * untagged data to a callback. A command may end with a literal (APPEND):
 * sent at once with LITERAL+, else after the server's "+", the commands
 * behind it waiting. Login's continuations are handled here: LOGIN, or
 * AUTHENTICATE PLAIN, OAUTHBEARER or XOAUTH2 (responses built by sasl.c).
 *
 * Security decisions live here: TLS is verified by pkg/net; a password is
 * sent over an unencrypted link only with the account's explicit
 * `plaintext` consent; after STARTTLS any byte the server sent ahead of
 * the handshake is a protocol error (response injection), and credentials
 * are wiped from the write buffer as soon as they are sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/net.h"
#include "sync_int.h"

#define SESSION_RBUF 65536
#define SESSION_WMAX (1024u * 1024)

struct imap_session {
	struct net_conn *conn;
	struct imap_parser *parser;
	struct sync_limits lim;
	uint32_t caps;
	uint32_t caps_learned; /* times the server told its capabilities */
	uint32_t tagn;
	bool selected; /* a SELECT or EXAMINE was sent since the last UNSELECT */
	int64_t deadline_ms; /* monotonic; 0: none (lim.job_timeout_ms) */
	char rbuf[SESSION_RBUF];
	size_t roff, rlen;
	struct buf wbuf;
};

/* Capability atoms we act on. */
static const struct {
	const char *name;
	uint32_t bit;
} cap_table[] = {
	{ "IMAP4REV1", SYNC_CAP_IMAP4REV1 },
	{ "STARTTLS", SYNC_CAP_STARTTLS },
	{ "LOGINDISABLED", SYNC_CAP_LOGINDISABLED },
	{ "AUTH=PLAIN", SYNC_CAP_AUTH_PLAIN },
	{ "SASL-IR", SYNC_CAP_SASL_IR },
	{ "LITERAL+", SYNC_CAP_LITERALPLUS },
	{ "SPECIAL-USE", SYNC_CAP_SPECIAL_USE },
	{ "LIST-EXTENDED", SYNC_CAP_LIST_EXTENDED },
	{ "CONDSTORE", SYNC_CAP_CONDSTORE },
	{ "QRESYNC", SYNC_CAP_QRESYNC },
	{ "UIDPLUS", SYNC_CAP_UIDPLUS },
	{ "MOVE", SYNC_CAP_MOVE },
	{ "IDLE", SYNC_CAP_IDLE },
	{ "ENABLE", SYNC_CAP_ENABLE },
	{ "LIST-STATUS", SYNC_CAP_LIST_STATUS },
	{ "NOTIFY", SYNC_CAP_NOTIFY },
	{ "ESEARCH", SYNC_CAP_ESEARCH },
	{ "AUTH=OAUTHBEARER", SYNC_CAP_AUTH_OAUTHBEARER },
	{ "AUTH=XOAUTH2", SYNC_CAP_AUTH_XOAUTH2 },
	{ "UNSELECT", SYNC_CAP_UNSELECT },
};

static uint32_t
caps_from_toks(const struct imap_tok *t)
{
	uint32_t caps = 0;
	size_t i;

	for (; t != NULL; t = t->next) {
		if (t->type != IMAP_TOK_ATOM) {
			continue;
		}
		for (i = 0; i < ARRAY_LEN(cap_table); i++) {
			if (imap_tok_is(t, cap_table[i].name)) {
				caps |= cap_table[i].bit;
			}
		}
	}
	return (caps);
}

static bool
str_ieq(const char *a, size_t alen, const char *b)
{
	return (a != NULL && alen == strlen(b) &&
	    strncasecmp(a, b, alen) == 0);
}

/* Learns capabilities from "* CAPABILITY ..." or an [CAPABILITY ...]
 * response code; returns true if r carried them. */
static bool
session_learn_caps(struct imap_session *s, const struct imap_resp *r)
{
	if (r->status == IMAP_ST_NONE &&
	    str_ieq(r->name, r->name_len, "CAPABILITY")) {
		s->caps = caps_from_toks(r->args);
		s->caps_learned++;
		return (true);
	}
	if (r->status != IMAP_ST_NONE &&
	    str_ieq(r->code, r->code_len, "CAPABILITY")) {
		s->caps = caps_from_toks(r->code_args);
		s->caps_learned++;
		return (true);
	}
	return (false);
}

static int
net_fail(struct sync_result *res, int rv, const char *what)
{
	return (sync_fail(res, rv, RETRY_LATER, "%s: %s", what, err_str(rv)));
}

/* Reads the next complete response into *r_r. */
static int
session_read(struct imap_session *s, const struct imap_resp **r_r,
    struct sync_result *res)
{
	size_t used, n;
	int rv, tmo;

	for (;;) {
		if (s->roff < s->rlen) {
			rv = imap_parser_feed(s->parser, s->rbuf + s->roff,
			    s->rlen - s->roff, &used, r_r);
			s->roff += used;
			if (rv == 1) {
				return (ERR_OK);
			}
			if (rv < 0) {
				return (sync_fail(res, rv, RETRY_LATER,
				    "malformed server response: %s",
				    imap_parser_error(s->parser)));
			}
		}
		s->roff = 0;
		s->rlen = 0;
		tmo = s->lim.io_timeout_ms;
		if (s->deadline_ms != 0) {
			int64_t left = s->deadline_ms - clock_mono_ms();

			if (left <= 0) {
				return (sync_fail(res, ERR_TIMEOUT, RETRY_LATER,
				    "job exceeded its time limit of %lld s",
				    (long long)(s->lim.job_timeout_ms / 1000)));
			}
			if (left < tmo) {
				tmo = (int)left;
			}
		}
		rv = net_read(s->conn, s->rbuf, sizeof(s->rbuf), &n, tmo);
		if (rv == ERR_TIMEOUT && s->deadline_ms != 0 &&
		    clock_mono_ms() >= s->deadline_ms) {
			return (sync_fail(res, ERR_TIMEOUT, RETRY_LATER,
			    "job exceeded its time limit of %lld s",
			    (long long)(s->lim.job_timeout_ms / 1000)));
		}
		if (rv != 0) {
			return (net_fail(res, rv, "reading from server"));
		}
		s->rlen = n;
	}
}

/* Sends the write buffer, then wipes it (it may hold credentials). */
static int
session_flush(struct imap_session *s, struct sync_result *res)
{
	int rv;

	if (s->wbuf.len == 0) {
		return (ERR_OK);
	}
	rv = net_write(s->conn, s->wbuf.data, s->wbuf.len,
	    s->lim.io_timeout_ms);
	mem_wipe(s->wbuf.data, s->wbuf.len);
	buf_reset(&s->wbuf);
	if (rv != 0) {
		return (net_fail(res, rv, "writing to server"));
	}
	return (ERR_OK);
}

static void
copy_text(char *dst, size_t n, const struct imap_resp *r)
{
	if (r->code != NULL) {
		snprintf(dst, n, "[%.*s] %s", (int)r->code_len, r->code,
		    r->text != NULL ? r->text : "");
	} else {
		snprintf(dst, n, "%s", r->text != NULL ? r->text : "");
	}
}

/* Literal bytes go out in slices of this size, each write with its own
 * timeout, straight from the caller's memory. */
#define SESSION_LITERAL_SLICE (64u * 1024)

static int
session_write_literal(struct imap_session *s, const struct imap_cmd *c,
    struct sync_result *res)
{
	size_t off, n;
	int rv;

	for (off = 0; off < c->literal_len; off += n) {
		n = c->literal_len - off;
		if (n > SESSION_LITERAL_SLICE) {
			n = SESSION_LITERAL_SLICE;
		}
		rv = net_write(s->conn, c->literal + off, n,
		    s->lim.io_timeout_ms);
		if (rv != 0) {
			return (net_fail(res, rv, "writing to server"));
		}
	}
	/* The line the literal ended goes out with what follows. */
	rv = buf_addstr(&s->wbuf, "\r\n");
	return (rv != 0 ? sync_fail(res, rv, RETRY_LATER, "command too long")
			: ERR_OK);
}

/* Tracks whether a mailbox may be selected, so that a kept session's
 * UNSELECT is sent only when needed. A failed SELECT counts as selected:
 * some servers keep the previous mailbox open after one. */
static void
session_note_selection(struct imap_session *s, const char *text)
{
	if (strncasecmp(text, "SELECT ", 7) == 0
	    || strncasecmp(text, "EXAMINE ", 8) == 0) {
		s->selected = true;
	} else if (strcasecmp(text, "UNSELECT") == 0
	    || strcasecmp(text, "CLOSE") == 0) {
		s->selected = false;
	}
}

/*
 * Writes cmds[*next..n) (tags from first), stopping after a command whose
 * synchronising literal must wait for "+" (*wait_r = its index, else
 * SIZE_MAX). LITERAL+ literals are written at once.
 */
static int
session_queue(struct imap_session *s, struct imap_cmd *cmds, size_t n,
    uint32_t first, size_t *next, size_t *wait_r, struct sync_result *res)
{
	bool plus = (s->caps & SYNC_CAP_LITERALPLUS) != 0;
	struct imap_cmd *c;
	int rv = ERR_OK;

	*wait_r = SIZE_MAX;
	while (rv == 0 && *next < n && *wait_r == SIZE_MAX) {
		c = &cmds[(*next)++];
		session_note_selection(s, c->text);
		rv = buf_printf(&s->wbuf, "A%u %s", first + (uint32_t)(c - cmds),
		    c->text);
		if (rv == 0 && c->literal == NULL) {
			rv = buf_addstr(&s->wbuf, "\r\n");
			continue;
		}
		if (rv == 0) {
			rv = buf_printf(&s->wbuf, " {%zu%s}\r\n",
			    c->literal_len, plus ? "+" : "");
		}
		if (rv != 0) {
			break;
		}
		if (!plus) {
			*wait_r = (size_t)(c - cmds);
			break;
		}
		rv = session_flush(s, res);
		if (rv == 0) {
			rv = session_write_literal(s, c, res);
		}
		if (rv != 0) {
			return (rv);
		}
	}
	if (rv != 0) {
		buf_reset(&s->wbuf);
		return (sync_fail(res, rv, RETRY_LATER, "command too long"));
	}
	return (session_flush(s, res));
}

int
imap_session_run(struct imap_session *s, struct imap_cmd *cmds, size_t n,
    imap_untagged_fn fn, void *arg, struct sync_result *res)
{
	const struct imap_resp *r;
	uint32_t first = s->tagn + 1;
	size_t i, pending = n, next = 0, wait = SIZE_MAX;
	int rv;

	for (i = 0; i < n; i++) {
		cmds[i].status = IMAP_ST_NONE;
		cmds[i].resp_text[0] = '\0';
	}
	s->tagn += (uint32_t)n;
	rv = session_queue(s, cmds, n, first, &next, &wait, res);
	if (rv != 0) {
		return (rv);
	}
	while (pending > 0) {
		rv = session_read(s, &r, res);
		if (rv != 0) {
			return (rv);
		}
		session_learn_caps(s, r);
		if (r->kind == IMAP_RESP_TAGGED) {
			uint64_t t = 0;
			size_t k;

			/* Our tags are "A<n>"; map back to the command. */
			if (r->tag_len < 2 || r->tag[0] != 'A') {
				goto badtag;
			}
			for (k = 1; k < r->tag_len; k++) {
				if (r->tag[k] < '0' || r->tag[k] > '9' ||
				    t > UINT32_MAX) {
					goto badtag;
				}
				t = t * 10 + (uint64_t)(r->tag[k] - '0');
			}
			if (t < first || t >= first + next ||
			    cmds[t - first].status != IMAP_ST_NONE) {
				goto badtag;
			}
			if (cmds[t - first].done_fn != NULL) {
				rv = cmds[t - first].done_fn(r,
				    cmds[t - first].done_arg);
				if (rv != 0) {
					return (rv);
				}
			}
			cmds[t - first].status = r->status;
			copy_text(cmds[t - first].resp_text,
			    sizeof(cmds[t - first].resp_text), r);
			pending--;
			if (t - first == wait) {
				/* Literal refused: it is not sent, the
				 * commands behind it go now. */
				rv = session_queue(s, cmds, n, first, &next,
				    &wait, res);
				if (rv != 0) {
					return (rv);
				}
			}
			continue;
		}
		if (r->kind == IMAP_RESP_CONT) {
			if (wait == SIZE_MAX) {
				return (sync_fail(res, ERR_PROTO, RETRY_LATER,
				    "unexpected continuation request from "
				    "server"));
			}
			rv = session_write_literal(s, &cmds[wait], res);
			if (rv == 0) {
				rv = session_queue(s, cmds, n, first, &next,
				    &wait, res);
			}
			if (rv != 0) {
				return (rv);
			}
			continue;
		}
		if (r->status == IMAP_ST_BYE) {
			return (sync_fail(res, ERR_CLOSED, RETRY_LATER,
			    "server closed the session: %s", r->text));
		}
		if (fn != NULL) {
			rv = fn(r, arg);
			if (rv != 0) {
				return (rv);
			}
		}
	}
	return (ERR_OK);
badtag:
	return (sync_fail(res, ERR_PROTO, RETRY_LATER,
	    "server answered unknown tag '%.*s'", (int)(r->tag_len > 32 ? 32 :
	    r->tag_len), r->tag));
}

/* One command, failing unless it ends OK. */
static int
session_simple(struct imap_session *s, const char *text, enum err on_no,
    enum retry retry, struct sync_result *res)
{
	struct imap_cmd c = { .text = text };
	int rv;

	rv = imap_session_run(s, &c, 1, NULL, NULL, res);
	if (rv != 0) {
		return (rv);
	}
	if (c.status != IMAP_ST_OK) {
		return (sync_fail(res, on_no, retry, "%s: %s", text,
		    c.resp_text));
	}
	return (ERR_OK);
}

static int
session_greeting(struct imap_session *s, bool *preauth_r,
    struct sync_result *res)
{
	const struct imap_resp *r;
	int rv;

	rv = session_read(s, &r, res);
	if (rv != 0) {
		char why[sizeof(res->error)];

		/* Say which step hung or broke: "waiting for the greeting:
		 * reading from server: timed out" (sync_fail keeps the
		 * first failure, so the text is rewritten in place). */
		snprintf(why, sizeof(why), "%s", res->error);
		snprintf(res->error, sizeof(res->error),
		    "waiting for the greeting: %.480s", why);
		return (rv);
	}
	if (r->kind != IMAP_RESP_UNTAGGED ||
	    (r->status != IMAP_ST_OK && r->status != IMAP_ST_PREAUTH)) {
		return (sync_fail(res, ERR_PROTO, RETRY_LATER,
		    "unexpected greeting: %s",
		    r->text != NULL ? r->text : "(none)"));
	}
	*preauth_r = r->status == IMAP_ST_PREAUTH;
	session_learn_caps(s, r);
	return (ERR_OK);
}

static int
session_capability(struct imap_session *s, struct sync_result *res)
{
	return (session_simple(s, "CAPABILITY", ERR_PROTO, RETRY_LATER, res));
}

/* Continuations one AUTHENTICATE may see before we give up on it. */
#define SESSION_SASL_MAX_CONT 4

/*
 * One AUTHENTICATE exchange (RFC 3501 6.2.2) for mech with the base64
 * initial response ir (borrowed, a credential): on the command line with
 * SASL-IR, else after the server's first "+". A "+" after the initial
 * response is a challenge we have nothing for: PLAIN cancels it ("*");
 * for OAUTHBEARER and XOAUTH2 it is the JSON error (RFC 7628 3.2.2),
 * answered with the dummy response (OAUTHBEARER: %x01, RFC 7628 3.2.3;
 * XOAUTH2: empty) and its "status" quoted in the failure.
 */
static int
session_sasl(struct imap_session *s, const char *mech, const char *ir,
    bool oauth, struct sync_result *res)
{
	const struct imap_resp *r;
	char status[96] = "";
	bool sent_ir = (s->caps & SYNC_CAP_SASL_IR) != 0;
	unsigned ncont = 0;
	int rv;

	s->tagn++;
	if (sent_ir) {
		rv = buf_printf(&s->wbuf, "A%u AUTHENTICATE %s %s\r\n",
		    s->tagn, mech, ir);
	} else {
		rv = buf_printf(&s->wbuf, "A%u AUTHENTICATE %s\r\n", s->tagn,
		    mech);
	}
	if (rv == 0) {
		rv = session_flush(s, res);
	} else {
		buf_reset(&s->wbuf);
		rv = sync_fail(res, rv, RETRY_NEVER, "credentials too long");
	}
	while (rv == 0) {
		rv = session_read(s, &r, res);
		if (rv != 0) {
			break;
		}
		if (r->kind == IMAP_RESP_CONT) {
			if (++ncont > SESSION_SASL_MAX_CONT) {
				rv = sync_fail(res, ERR_PROTO, RETRY_LATER,
				    "AUTHENTICATE %s: more than %d challenges",
				    mech, SESSION_SASL_MAX_CONT);
				break;
			}
			if (!sent_ir) {
				rv = buf_printf(&s->wbuf, "%s\r\n", ir);
				sent_ir = true;
			} else if (oauth) {
				sync_sasl_oauth_status(r->text, r->text_len,
				    status, sizeof(status));
				rv = buf_addstr(&s->wbuf,
				    strcmp(mech, "XOAUTH2") == 0 ? "\r\n" :
								    "AQ==\r\n");
			} else {
				rv = buf_addstr(&s->wbuf, "*\r\n");
			}
			if (rv == 0) {
				rv = session_flush(s, res);
			}
			continue;
		}
		if (r->kind == IMAP_RESP_TAGGED) {
			char text[256];

			copy_text(text, sizeof(text), r);
			session_learn_caps(s, r);
			if (r->status != IMAP_ST_OK) {
				rv = sync_fail(res, ERR_AUTH, RETRY_NEVER,
				    "authentication failed: %s%s%s%s", text,
				    status[0] != '\0' ? " (" : "",
				    status[0] != '\0' ? status : "",
				    status[0] != '\0' ? ")" : "");
			}
			break;
		}
		if (r->status == IMAP_ST_BYE) {
			rv = sync_fail(res, ERR_CLOSED, RETRY_LATER,
			    "server closed the session: %s", r->text);
			break;
		}
		session_learn_caps(s, r);
	}
	return (rv);
}

/* Builds the raw response (PLAIN, or OAuth with oauth_mech), base64s it
 * and runs the exchange; both buffers are wiped. */
static int
session_auth(struct imap_session *s, const struct imap_session_conf *c,
    const char *mech, int oauth_mech, struct sync_result *res)
{
	struct buf raw, b64;
	int rv;

	if (strlen(c->username) > 1024 || strlen(c->password) > 4096) {
		return (sync_fail(res, ERR_INVAL, RETRY_NEVER,
		    "credentials too long"));
	}
	buf_init(&raw, 8192);
	buf_init(&b64, 16384);
	if (oauth_mech < 0) {
		rv = sync_sasl_plain(c->username, c->password, &raw);
	} else {
		rv = sync_sasl_oauth((enum sync_sasl_mech)oauth_mech,
		    c->username, c->host, c->port, c->password, &raw);
	}
	if (rv == 0) {
		rv = sync_sasl_b64(raw.data, raw.len, &b64);
	}
	if (rv != 0) {
		rv = sync_fail(res, rv, RETRY_NEVER,
		    "cannot encode credentials for %s: %s", mech,
		    rv == ERR_INVAL ? "they contain a control character" :
				      err_str(rv));
	} else {
		rv = session_sasl(s, mech, b64.data, oauth_mech >= 0, res);
	}
	buf_wipe_release(&raw);
	buf_wipe_release(&b64);
	return (rv);
}

/* LOGIN with quoted strings, or LITERAL+ literals for odd bytes. */
static int
session_login(struct imap_session *s, const char *user, const char *pass,
    struct sync_result *res)
{
	struct imap_cmd c;
	struct buf cmd;
	int rv;

	buf_init(&cmd, 16384);
	rv = buf_addstr(&cmd, "LOGIN ");
	if (rv == 0) {
		rv = imap_append_astring(&cmd, user, strlen(user),
		    (s->caps & SYNC_CAP_LITERALPLUS) != 0);
	}
	if (rv == 0) {
		rv = buf_addstr(&cmd, " ");
	}
	if (rv == 0) {
		rv = imap_append_astring(&cmd, pass, strlen(pass),
		    (s->caps & SYNC_CAP_LITERALPLUS) != 0);
	}
	if (rv != 0) {
		buf_wipe_release(&cmd);
		return (sync_fail(res, rv, RETRY_NEVER,
		    "cannot encode credentials"));
	}
	/* A synchronising literal would need a "+" round trip we do not
	 * do for LOGIN: such credentials need AUTH=PLAIN or LITERAL+. */
	if (strstr(cmd.data, "}\r\n") != NULL &&
	    strstr(cmd.data, "+}\r\n") == NULL) {
		buf_wipe_release(&cmd);
		return (sync_fail(res, ERR_AUTH, RETRY_NEVER,
		    "credentials need AUTH=PLAIN or LITERAL+, which the "
		    "server does not offer"));
	}
	memset(&c, 0, sizeof(c));
	c.text = cmd.data;
	rv = imap_session_run(s, &c, 1, NULL, NULL, res);
	buf_wipe_release(&cmd);
	if (rv != 0) {
		return (rv);
	}
	if (c.status != IMAP_ST_OK) {
		return (sync_fail(res, ERR_AUTH, RETRY_NEVER,
		    "authentication failed: %s", c.resp_text));
	}
	return (ERR_OK);
}

int
imap_session_open(const struct imap_session_conf *c,
    const struct sync_limits *l, struct imap_session **s_r,
    struct sync_result *res)
{
	struct imap_session *s;
	char errbuf[NET_ERRLEN];
	bool preauth = false;
	int rv;

	*s_r = NULL;
	if (!c->tls && !c->starttls && !c->plaintext) {
		return (sync_fail(res, ERR_CONFIG, RETRY_NEVER,
		    "refusing to log in without TLS: the account allows "
		    "neither TLS, STARTTLS nor plaintext"));
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return (sync_fail(res, ERR_NOMEM, RETRY_LATER,
		    "out of memory"));
	}
	s->lim = *l;
	if (l->job_timeout_ms > 0) {
		s->deadline_ms = clock_mono_ms() + l->job_timeout_ms;
	}
	buf_init(&s->wbuf, SESSION_WMAX);
	rv = imap_parser_new(&l->imap, &s->parser);
	if (rv != 0) {
		rv = sync_fail(res, rv, RETRY_LATER, "parser: %s",
		    err_str(rv));
		goto fail;
	}
	errbuf[0] = '\0';
	rv = net_connect(c->host, c->port, c->tls, c->ca_pem,
	    l->connect_timeout_ms, &s->conn, errbuf);
	if (rv != 0) {
		rv = sync_fail(res, rv,
		    rv == ERR_TLS ? RETRY_NEVER : RETRY_LATER,
		    "connecting to %s:%u: %s", c->host, c->port,
		    errbuf[0] != '\0' ? errbuf : err_str(rv));
		goto fail;
	}
	rv = session_greeting(s, &preauth, res);
	if (rv != 0) {
		goto fail;
	}
	if (s->caps == 0) {
		rv = session_capability(s, res);
		if (rv != 0) {
			goto fail;
		}
	}
	if (c->starttls && !preauth) {
		if (!(s->caps & SYNC_CAP_STARTTLS)) {
			rv = sync_fail(res, ERR_TLS, RETRY_NEVER,
			    "server does not offer STARTTLS");
			goto fail;
		}
		rv = session_simple(s, "STARTTLS", ERR_TLS, RETRY_NEVER, res);
		if (rv != 0) {
			goto fail;
		}
		if (s->roff < s->rlen) {
			/* Bytes sent before the handshake would be trusted
			 * as if they came over TLS (CVE-2011-0411 class). */
			rv = sync_fail(res, ERR_PROTO, RETRY_NEVER,
			    "server sent data ahead of the TLS handshake");
			goto fail;
		}
		rv = net_start_tls(s->conn, c->ca_pem, l->connect_timeout_ms,
		    errbuf);
		if (rv != 0) {
			rv = sync_fail(res, rv, RETRY_NEVER, "STARTTLS: %s",
			    errbuf[0] != '\0' ? errbuf : err_str(rv));
			goto fail;
		}
		s->caps = 0;
		rv = session_capability(s, res);
		if (rv != 0) {
			goto fail;
		}
	}
	if (!preauth) {
		uint32_t learned_before = s->caps_learned;

		if (c->oauth2 && (s->caps & SYNC_CAP_AUTH_OAUTHBEARER)) {
			rv = session_auth(s, c, "OAUTHBEARER",
			    SYNC_SASL_OAUTHBEARER, res);
		} else if (c->oauth2 && (s->caps & SYNC_CAP_AUTH_XOAUTH2)) {
			rv = session_auth(s, c, "XOAUTH2", SYNC_SASL_XOAUTH2,
			    res);
		} else if (c->oauth2) {
			rv = sync_fail(res, ERR_AUTH, RETRY_NEVER,
			    "the account uses an OAuth 2.0 token, but the "
			    "server offers neither AUTH=OAUTHBEARER nor "
			    "AUTH=XOAUTH2");
		} else if (s->caps & SYNC_CAP_AUTH_PLAIN) {
			rv = session_auth(s, c, "PLAIN", -1, res);
		} else if (s->caps & SYNC_CAP_LOGINDISABLED) {
			rv = sync_fail(res, ERR_AUTH, RETRY_NEVER,
			    "server disables LOGIN and offers no AUTH=PLAIN");
		} else {
			rv = session_login(s, c->username, c->password, res);
		}
		if (rv != 0) {
			goto fail;
		}
		/* Capabilities may change after login (RFC 3501 6.2.3); most
		 * servers send them in the login's OK, saving a round trip. */
		if (s->caps_learned == learned_before) {
			rv = session_capability(s, res);
			if (rv != 0) {
				goto fail;
			}
		}
	}
	*s_r = s;
	return (ERR_OK);
fail:
	imap_session_close(&s);
	return (rv);
}

int
imap_session_open_url(const char *server, const struct imap_session_conf *c,
    const struct sync_limits *l, struct imap_session **s_r,
    struct sync_result *res)
{
	struct imap_session_conf conf = *c;
	struct net_url url;
	char errbuf[256];
	int rv;

	*s_r = NULL;
	rv = net_url_parse(server, &url, errbuf, sizeof(errbuf));
	if (rv != 0
	    || (strcmp(url.scheme, "imap") != 0
	        && strcmp(url.scheme, "imaps") != 0)) {
		return (sync_fail(res, ERR_CONFIG, RETRY_NEVER,
		    "bad IMAP server URL '%s': %s", server,
		    rv != 0 ? errbuf : "scheme must be imap or imaps"));
	}
	conf.host = url.host;
	conf.port = url.port;
	conf.tls = strcmp(url.scheme, "imaps") == 0;
	conf.starttls = !conf.tls && c->starttls;
	return (imap_session_open(&conf, l, s_r, res));
}

int
imap_session_open_job(const struct proto_job_run *job, const struct sync_limits *l,
    struct imap_session **s_r, struct sync_result *res)
{
	struct imap_session_conf conf;
	char *server, *user, *pass, *ca;
	int rv;

	*s_r = NULL;
	server = proto_str_dup(job->server);
	user = proto_str_dup(job->username);
	pass = proto_str_dup(job->password);
	ca = proto_str_dup(job->tls_ca_pem);
	if (server == NULL || user == NULL || pass == NULL
	    || (job->tls_ca_pem.p != NULL && ca == NULL)) {
		rv = sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory");
		goto out;
	}
	if (job->auth.p != NULL && !proto_str_eq(job->auth, "password")
	    && !proto_str_eq(job->auth, "oauth2")) {
		rv = sync_fail(res, ERR_CONFIG, RETRY_NEVER,
		    "unknown authentication method");
		goto out;
	}
	memset(&conf, 0, sizeof(conf));
	conf.starttls = job->starttls;
	conf.plaintext = job->plaintext;
	conf.ca_pem = ca;
	conf.username = user;
	conf.password = pass;
	conf.oauth2 = proto_str_eq(job->auth, "oauth2");
	rv = imap_session_open_url(server, &conf, l, s_r, res);
out:
	if (pass != NULL) {
		mem_wipe(pass, strlen(pass));
	}
	free(server);
	free(user);
	free(pass);
	free(ca);
	return (rv);
}

void
imap_session_close(struct imap_session **sp)
{
	struct imap_session *s = *sp;

	if (s == NULL) {
		return;
	}
	if (s->conn != NULL) {
		/* Best effort: a polite goodbye, without waiting. */
		(void)net_write(s->conn, "Z LOGOUT\r\n", 10, 1000);
		net_close(&s->conn);
	}
	imap_parser_free(&s->parser);
	buf_wipe_release(&s->wbuf);
	free(s);
	*sp = NULL;
}

void
imap_session_renew(struct imap_session *s, const struct sync_limits *l)
{
	s->lim = *l;
	s->deadline_ms
	    = l->job_timeout_ms > 0 ? clock_mono_ms() + l->job_timeout_ms : 0;
}

int
imap_session_detach(struct imap_session **sp, struct net_conn **conn_r,
    char *rest, size_t cap, size_t *rest_len_r)
{
	struct imap_session *s = *sp;
	size_t n = s->rlen - s->roff;
	int rv = ERR_OK;

	*conn_r = NULL;
	*rest_len_r = 0;
	if (n > cap) {
		rv = ERR_TOOBIG;
		net_close(&s->conn);
	} else {
		memcpy(rest, s->rbuf + s->roff, n);
		*rest_len_r = n;
		*conn_r = s->conn;
		s->conn = NULL;
	}
	imap_session_close(sp);
	return (rv);
}

uint32_t
imap_session_caps(const struct imap_session *s)
{
	return (s->caps);
}

bool
imap_session_selected(const struct imap_session *s)
{
	return (s->selected);
}

int
imap_session_set_literal_sink(struct imap_session *s, uint64_t threshold,
    uint64_t max, imap_literal_sink_fn fn, void *arg)
{
	return (imap_parser_set_literal_sink(s->parser, threshold, max, fn,
	    arg));
}

int
imap_session_stream_fetch(
    const struct imap_session *s, uint32_t *seq_r, uint32_t *uid_r)
{
	return (imap_parser_stream_fetch(s->parser, seq_r, uid_r));
}
