/*
 * dial.c: IMAP watch connections set up on a few dialer threads (dial.h).
 * A dial is touched by one thread at a time: the loop until it is
 * queued, a dialer while it runs, the loop again once taken back; the
 * queues' mutex orders the hand-overs.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "imap/imap.h"

#include "dial.h"

static char *
dup_or_null(const char *s, bool *oom)
{
	char *p;

	if (s == NULL) {
		return (NULL);
	}
	p = strdup(s);
	if (p == NULL) {
		*oom = true;
	}
	return (p);
}

int
dial_account_copy(struct dial_account *dst, const struct dial_account *src)
{
	bool oom = false;

	*dst = *src;
	dst->server = dup_or_null(src->server, &oom);
	dst->user = dup_or_null(src->user, &oom);
	dst->pass = dup_or_null(src->pass, &oom);
	dst->ca_pem = dup_or_null(src->ca_pem, &oom);
	if (oom) {
		dial_account_release(dst);
		return (ERR_NOMEM);
	}
	return (ERR_OK);
}

void
dial_account_release(struct dial_account *a)
{
	if (a->pass != NULL) {
		mem_wipe(a->pass, strlen(a->pass));
	}
	free(a->pass);
	free(a->server);
	free(a->user);
	free(a->ca_pem);
	memset(a, 0, sizeof(*a));
}

struct dial *
dial_new(const struct dial_account *a, const struct sync_limits *lim,
    int64_t cycle_ms)
{
	struct dial *x = calloc(1, sizeof(*x));

	if (x == NULL) {
		return (NULL);
	}
	if (dial_account_copy(&x->a, a) != 0) {
		free(x);
		return (NULL);
	}
	x->lim = *lim;
	x->cycle_ms = cycle_ms;
	return (x);
}

void
dial_free(struct dial **dp)
{
	struct dial *x = *dp;

	if (x == NULL) {
		return;
	}
	net_close(&x->conn);
	watch_sm_release(&x->sm);
	sync_result_release(&x->res);
	dial_account_release(&x->a);
	free(x);
	*dp = NULL;
}

static bool
stopping(struct dialer *d)
{
	bool s;

	pthread_mutex_lock(&d->mu);
	s = d->stop;
	pthread_mutex_unlock(&d->mu);
	return (s);
}

static int
setup_untagged(const struct imap_resp *r, void *arg)
{
	return (watch_sm_baseline(arg, r));
}

/* One blocking setup command; 0 when it completed OK, ERR_SERVER for a
 * NO or BAD (x->res says why), else the session's error. */
static int
run1(
    struct dialer *d, struct imap_session *s, const char *text, struct dial *x)
{
	struct imap_cmd c;
	int rv;

	if (stopping(d)) {
		return (sync_fail(&x->res, ERR_CLOSED, RETRY_LATER,
		    "the watcher is stopping"));
	}
	memset(&c, 0, sizeof(c));
	c.text = text;
	rv = imap_session_run(s, &c, 1, setup_untagged, &x->sm, &x->res);
	if (rv != 0) {
		return (rv);
	}
	if (c.status != IMAP_ST_OK) {
		return (sync_fail(&x->res, ERR_SERVER, RETRY_LATER,
		    "%.40s: %s", text, c.resp_text));
	}
	return (ERR_OK);
}

/* Without LIST-STATUS an IDLE watch takes its baselines with one STATUS
 * per mailbox (LIST named them), pipelined in one round trip. */
static int
status_each(struct dialer *d, struct imap_session *s, struct dial *x)
{
	struct imap_cmd *c = NULL;
	struct buf *t = NULL;
	size_t k, n = x->sm.nmb;
	int rv = ERR_OK;

	if (n == 0) {
		return (ERR_OK);
	}
	if (stopping(d)) {
		return (sync_fail(&x->res, ERR_CLOSED, RETRY_LATER,
		    "the watcher is stopping"));
	}
	c = calloc(n, sizeof(*c));
	t = calloc(n, sizeof(*t));
	if (c == NULL || t == NULL) {
		free(c);
		free(t);
		return (sync_fail(&x->res, ERR_NOMEM, RETRY_LATER,
		    "out of memory"));
	}
	for (k = 0; k < n; k++) {
		buf_init(&t[k], 4096);
		if (rv == 0) {
			rv = buf_addstr(&t[k], "STATUS ");
		}
		if (rv == 0) {
			rv = imap_append_astring(&t[k], x->sm.mb[k].raw,
			    strlen(x->sm.mb[k].raw), false);
		}
		if (rv == 0) {
			rv = buf_addstr(&t[k], " (UIDNEXT MESSAGES)");
		}
		c[k].text = t[k].data;
	}
	if (rv != 0) {
		rv = sync_fail(&x->res, rv, RETRY_LATER,
		    "mailbox name too long for STATUS");
	} else {
		rv = imap_session_run(s, c, n, setup_untagged, &x->sm, &x->res);
	}
	for (k = 0; rv == 0 && k < n; k++) {
		if (c[k].status != IMAP_ST_OK) {
			rv = sync_fail(&x->res, ERR_SERVER, RETRY_LATER,
			    "%.40s: %s", c[k].text, c[k].resp_text);
		}
	}
	for (k = 0; k < n; k++) {
		buf_release(&t[k]);
	}
	free(c);
	free(t);
	return (rv);
}

/* NOTIFY when offered (else IDLE on INBOX) and the baselines of every
 * mailbox; 0 or the error, with x->res saying why. */
static int
setup(struct dialer *d, struct imap_session *s, struct dial *x)
{
	uint32_t caps = imap_session_caps(s);
	struct watch_opts o;
	bool ls;
	int rv = ERR_SERVER;

	memset(&o, 0, sizeof(o));
	o.cycle_ms = x->cycle_ms;
	o.reply_ms = x->lim.io_timeout_ms;
	o.list_status = ls = (caps & SYNC_CAP_LIST_STATUS) != 0;
	o.condstore = (caps & SYNC_CAP_CONDSTORE) != 0;
	watch_sm_init(&x->sm, WATCH_MODE_NOTIFY, &o);
	if (caps & SYNC_CAP_NOTIFY) {
		rv = run1(d, s,
		    "NOTIFY SET (personal (MessageNew MessageExpunge "
		    "FlagChange MailboxName))",
		    x);
	}
	if (rv == ERR_SERVER) {
		/* no NOTIFY, or refused: IDLE on INBOX plus STATUS polls */
		sync_result_release(&x->res);
		memset(&x->res, 0, sizeof(x->res));
		if (!(caps & SYNC_CAP_IDLE)) {
			return (sync_fail(&x->res, ERR_SERVER, RETRY_NEVER,
			    "server offers neither NOTIFY nor IDLE"));
		}
		x->sm.mode = WATCH_MODE_IDLE;
		rv = ERR_OK;
	}
	if (rv == 0) {
		rv = run1(d, s,
		    ls ? (o.condstore ? "LIST \"\" \"*\" RETURN (STATUS "
		                        "(UIDNEXT MESSAGES HIGHESTMODSEQ))"
		                      : "LIST \"\" \"*\" RETURN (STATUS "
		                        "(UIDNEXT MESSAGES))")
		       : "LIST \"\" \"*\"",
		    x);
	}
	if (rv == 0 && !ls && x->sm.mode == WATCH_MODE_IDLE) {
		rv = status_each(d, s, x);
	}
	if (rv == 0 && x->sm.mode == WATCH_MODE_IDLE) {
		rv = run1(d, s, "EXAMINE INBOX", x);
	}
	return (rv);
}

/* The blocking part of a dial, on a dialer thread. */
static void
dial_run(struct dialer *d, struct dial *x)
{
	struct imap_session_conf c;
	struct imap_session *s = NULL;
	int rv;

	memset(&c, 0, sizeof(c));
	c.starttls = x->a.starttls;
	c.plaintext = x->a.plaintext;
	c.ca_pem = x->a.ca_pem;
	c.username = x->a.user;
	c.password = x->a.pass;
	c.oauth2 = x->a.oauth2;
	rv = imap_session_open_url(x->a.server, &c, &x->lim, &s, &x->res);
	if (rv == 0) {
		rv = setup(d, s, x);
	}
	if (rv != 0) {
		imap_session_close(&s);
		x->rv = rv;
		return;
	}
	rv = imap_session_detach(
	    &s, &x->conn, x->rest, sizeof(x->rest), &x->nrest);
	if (rv != 0) {
		rv = sync_fail(&x->res, rv, RETRY_LATER,
		    "more than %d bytes after the setup replies", DIAL_REST);
	}
	x->rv = rv;
}

static void *
dialer_main(void *arg)
{
	struct dialer *d = arg;
	struct dial *x;
	uint64_t one = 1;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (!d->stop && d->todo == NULL) {
			pthread_cond_wait(&d->cv, &d->mu);
		}
		if (d->stop) {
			break;
		}
		x = d->todo;
		d->todo = x->next;
		if (d->todo == NULL) {
			d->todo_tail = NULL;
		}
		d->running++;
		pthread_mutex_unlock(&d->mu);
		dial_run(d, x);
		pthread_mutex_lock(&d->mu);
		d->running--;
		pthread_cond_broadcast(&d->idle);
		if (d->stop) {
			dial_free(&x); /* nobody takes it any more */
			continue;
		}
		x->next = d->done;
		d->done = x;
		/* an eventfd write cannot fail short of overflow (2^64) */
		(void)!write(d->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&d->mu);
	return (NULL);
}

int
dialer_init(struct dialer *d, size_t n)
{
	size_t i;

	memset(d, 0, sizeof(*d));
	d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->efd < 0) {
		return (ERR_IO);
	}
	d->threads = calloc(n, sizeof(*d->threads));
	if (d->threads == NULL) {
		close(d->efd);
		return (ERR_NOMEM);
	}
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	pthread_cond_init(&d->idle, NULL);
	for (i = 0; i < n; i++) {
		if (pthread_create(&d->threads[i], NULL, dialer_main, d)
		    != 0) {
			dialer_release(d, 0);
			return (ERR_IO);
		}
		d->nthreads++;
	}
	return (ERR_OK);
}

int
dialer_fd(const struct dialer *d)
{
	return (d->efd);
}

void
dialer_submit(struct dialer *d, struct dial *x)
{
	pthread_mutex_lock(&d->mu);
	x->next = NULL;
	if (d->todo_tail != NULL) {
		d->todo_tail->next = x;
	} else {
		d->todo = x;
	}
	d->todo_tail = x;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

bool
dialer_cancel(struct dialer *d, struct dial *x)
{
	struct dial **pp, *prev = NULL;
	bool found = false;

	pthread_mutex_lock(&d->mu);
	for (pp = &d->todo; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
		if (*pp == x) {
			*pp = x->next;
			if (d->todo_tail == x) {
				d->todo_tail = prev;
			}
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&d->mu);
	return (found);
}

struct dial *
dialer_take(struct dialer *d)
{
	struct dial *x;
	uint64_t v;

	pthread_mutex_lock(&d->mu);
	x = d->done;
	if (x != NULL) {
		d->done = x->next;
		x->next = NULL;
	}
	if (d->done == NULL) {
		/* empty: clear the counter so the loop sleeps again */
		(void)!read(d->efd, &v, sizeof(v));
	}
	pthread_mutex_unlock(&d->mu);
	return (x);
}

void
dialer_release(struct dialer *d, int64_t grace_ms)
{
	int64_t until = clock_mono_ms() + grace_ms;
	struct timespec ts;
	struct dial *x;
	size_t i, left;

	if (d->threads == NULL) {
		return;
	}
	pthread_mutex_lock(&d->mu);
	d->stop = true;
	pthread_cond_broadcast(&d->cv);
	/* idle's clock is the realtime one (the default); short waits, so a
	 * clock step costs at most one more grace period */
	while (d->running > 0 && clock_mono_ms() < until) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&d->idle, &d->mu, &ts);
	}
	/* the queues are ours now: a stopping thread takes nothing more */
	while ((x = d->todo) != NULL) {
		d->todo = x->next;
		dial_free(&x);
	}
	while ((x = d->done) != NULL) {
		d->done = x->next;
		dial_free(&x);
	}
	left = d->running;
	pthread_mutex_unlock(&d->mu);
	if (left > 0) {
		/* their dials stay on their stacks until the process exits */
		log_warnx("event=dialers_abandoned running=%zu", left);
		free(d->threads);
		d->threads = NULL;
		return;
	}
	for (i = 0; i < d->nthreads; i++) {
		pthread_join(d->threads[i], NULL);
	}
	pthread_cond_destroy(&d->idle);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	close(d->efd);
	free(d->threads);
	d->threads = NULL;
}
