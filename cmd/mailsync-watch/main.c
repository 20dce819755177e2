/*
 * mailsync-watch: holds the push connections of many accounts in one
 * thread (docs/architecture.md, "Push"). It pulls JOB_KIND_WATCH jobs
 * from the scheduler's watch socket, keeps one IMAP connection per job in
 * IDLE (with NOTIFY when offered, else periodic STATUS polls), and tells
 * the store over the results socket: worker.watch.event with changed =
 * true when something changed (the store queues a sync), changed = false
 * as the lease heartbeat. One epoll loop over the non-blocking sockets
 * and nng's pollable descriptors; pkg/watch's state machine per
 * connection. Connect, login and the setup commands run on a few dialer
 * threads (dial.c), so a slow server never stalls the loop; the finished
 * connection then joins the loop. A dead or
 * silent connection is closed and reopened after watch_backoff_ms()
 * (1 s .. 60 s, jittered). A job whose lease was lost (the store
 * published its end) is dropped.
 *
 * JMAP accounts (jwatch.c): the EventSource stream of each is held open on
 * one curl multi handle (cmulti.c) in the same loop; a server without one
 * is polled for its state strings.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/base.h"
#include "imap/imap.h"
#include "ipc/ipc.h"
#include "net/net.h"
#include "proto/proto.h"
#include "sync/sync.h"
#include "watch/watch.h"

#include "cmulti.h"
#include "dial.h"
#include "flags.h"
#include "jwatch.h"

#define SEND_TIMEOUT_MS 1000
#define RBUF 4096
#define MAX_OUT 65536
#define MAX_EVENTS 256

static volatile sig_atomic_t watch_stop;

static void
on_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

struct entry {
	uint64_t job_id;
	uint64_t account_id;
	uint32_t attempt;
	char *name;
	struct dial_account a; /* its server and credentials */
	int64_t beat_ms;
	int64_t next_beat;    /* monotonic */
	int64_t reconnect_at; /* monotonic; 0: connected or connecting now */
	uint32_t fails;
	bool had_conn; /* a connection existed: catch up after reconnect */
	struct net_conn *conn;
	struct dial *dial; /* being set up on a dialer thread */
	struct imap_parser *parser;
	struct watch_sm sm;
	struct buf out;
	/* JMAP accounts: stream and state poller instead of a connection */
	bool jmap;
	struct jwatch *jw;
};

struct watcher {
	nng_socket jobs, results, events;
	int ep;
	struct entry **v;
	size_t n, cap;
	struct sync_limits lim;
	int64_t cycle_ms;
	int64_t jmap_poll_ms;
	int jmap_ping_s;
	struct cmulti cm; /* the JMAP EventSource streams */
	struct dialer dl; /* IMAP connections being set up */
	uint64_t rng;
	uint64_t changes;
};

static int tag_jobs, tag_events, tag_curl, tag_dial; /* epoll markers */

static uint32_t
wrand(struct watcher *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return ((uint32_t)((w->rng * 0x2545f4914f6cdd1dULL) >> 32));
}

static void
send_event(struct watcher *w, struct entry *e, bool changed, const char *mb)
{
	struct proto_msg m;
	int rv;

	memset(&m, 0, sizeof(m));
	m.type = MSG_WORKER_WATCH_EVENT;
	m.id = e->job_id;
	m.u.watch_event.job_id = e->job_id;
	m.u.watch_event.attempt = e->attempt;
	m.u.watch_event.changed = changed;
	m.u.watch_event.mailbox = proto_str_c(mb);
	rv = ipc_send(w->results, &m, SEND_TIMEOUT_MS);
	if (rv != 0) {
		log_warnx("job=%llu event=watch_event_unsent err=%s",
		    (unsigned long long)e->job_id, err_name(rv));
	}
}

/* The change callback needs both; passed through a small pair. */
struct change_ctx {
	struct watcher *w;
	struct entry *e;
};

static void
on_change2(const char *mailbox, void *arg)
{
	struct change_ctx *c = arg;

	c->w->changes++;
	log_info("job=%llu account=%llu event=changed mailbox=\"%s\"",
	    (unsigned long long)c->e->job_id,
	    (unsigned long long)c->e->account_id, mailbox);
	send_event(c->w, c->e, true, mailbox);
}

static void
conn_close(struct watcher *w, struct entry *e)
{
	if (e->conn != NULL) {
		(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, net_fd(e->conn), NULL);
		net_close(&e->conn);
	}
	imap_parser_free(&e->parser);
	watch_sm_release(&e->sm);
	buf_reset(&e->out);
	jwatch_free(&e->jw);
}

static void
conn_fail(struct watcher *w, struct entry *e, int rv, const char *what)
{
	int64_t d;

	conn_close(w, e);
	e->fails++;
	d = watch_backoff_ms(e->fails, wrand(w));
	e->reconnect_at = clock_mono_ms() + d;
	log_warnx("job=%llu account=%llu event=connection_lost err=%s "
	          "what=\"%s\" retry_in_ms=%lld",
	    (unsigned long long)e->job_id, (unsigned long long)e->account_id,
	    err_name(rv), what, (long long)d);
}

static void
entry_free(struct watcher *w, struct entry *e)
{
	if (e->dial != NULL) {
		if (dialer_cancel(&w->dl, e->dial)) {
			dial_free(&e->dial);
		} else {
			e->dial->owner = NULL; /* freed when it comes back */
			e->dial = NULL;
		}
	}
	conn_close(w, e);
	buf_release(&e->out);
	dial_account_release(&e->a);
	free(e->name);
	free(e);
}

static void
entry_remove(struct watcher *w, size_t i)
{
	entry_free(w, w->v[i]);
	w->v[i] = w->v[--w->n];
}

static int
flush_out(struct entry *e)
{
	int rv = ERR_OK;

	if (e->out.len > 0) {
		rv = net_write(e->conn, e->out.data, e->out.len, 2000);
		buf_reset(&e->out);
	}
	return (rv);
}

static int feed(struct watcher *w, struct entry *e, const char *p, size_t n);

static void
give_up(struct watcher *w, size_t i, const struct sync_result *res)
{
	struct entry *e = w->v[i];
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_WORKER_RESULT_DONE;
	m.id = e->job_id;
	m.u.done.job_id = e->job_id;
	m.u.done.attempt = e->attempt;
	m.u.done.status = res->status;
	m.u.done.retry = RETRY_NEVER;
	m.u.done.error = proto_str_c(res->error);
	(void)ipc_send(w->results, &m, SEND_TIMEOUT_MS);
	log_warnx("job=%llu account=%llu event=watch_failed err=%s "
	          "error=\"%s\"",
	    (unsigned long long)e->job_id, (unsigned long long)e->account_id,
	    err_name(res->status), res->error);
	entry_remove(w, i);
}

/* A JMAP account: opens the session, reads its states; its stream (or
 * its polls) start in jmap_tick. */
static void
jmap_open(struct watcher *w, size_t i)
{
	struct entry *e = w->v[i];
	struct jwatch_conf c;
	struct sync_result res;
	char tag[64];
	int rv;

	memset(&res, 0, sizeof(res));
	snprintf(tag, sizeof(tag), "job=%llu account=%llu",
	    (unsigned long long)e->job_id, (unsigned long long)e->account_id);
	memset(&c, 0, sizeof(c));
	c.url = e->a.server;
	c.user = e->a.user;
	c.secret = e->a.pass;
	c.ca_pem = e->a.ca_pem;
	c.bearer = e->a.oauth2;
	c.plaintext = e->a.plaintext;
	c.poll_ms = w->jmap_poll_ms;
	c.ping_s = w->jmap_ping_s;
	c.tag = tag;
	c.seed = ((uint64_t)wrand(w) << 32) | wrand(w);
	e->reconnect_at = 0;
	rv = jwatch_open(&c, &w->lim, &w->cm, &e->jw, &res);
	if (rv != 0) {
		if (res.retry == RETRY_NEVER) {
			give_up(w, i, &res);
		} else {
			conn_fail(w, e, rv, res.error);
		}
		return;
	}
	e->fails = 0;
	if (e->had_conn || e->attempt > 1) {
		send_event(w, e, true, "*");
	}
	e->had_conn = true;
}

/* A JMAP account's due work: a change its stream announced, its stream
 * (re)opened, its state polled. */
static void
jmap_tick(struct watcher *w, struct entry *e, int64_t now)
{
	struct sync_result res;
	bool changed = false;
	int rv;

	if (e->jw == NULL) {
		return;
	}
	memset(&res, 0, sizeof(res));
	rv = jwatch_tick(e->jw, now, &changed, &res);
	if (rv != 0) {
		conn_fail(w, e, rv, res.error);
		return;
	}
	if (changed) {
		w->changes++;
		log_info("job=%llu account=%llu event=changed mailbox=\"*\"",
		    (unsigned long long)e->job_id,
		    (unsigned long long)e->account_id);
		send_event(w, e, true, "*");
	}
}

/* Starts an IMAP connection's set-up on a dialer thread (a JMAP
 * account opens its session here); dialed() takes it over. */
static void
conn_open(struct watcher *w, size_t i)
{
	struct entry *e = w->v[i];

	if (e->jmap) {
		jmap_open(w, i);
		return;
	}
	e->reconnect_at = 0;
	e->dial = dial_new(&e->a, &w->lim, w->cycle_ms);
	if (e->dial == NULL) {
		fatalx("out of memory");
	}
	e->dial->owner = e;
	dialer_submit(&w->dl, e->dial);
}

/* A dial came back for entry i: the connection joins the loop, or the
 * failure is retried later (or given up on for good). */
static void
dialed(struct watcher *w, size_t i, struct dial *x)
{
	struct entry *e = w->v[i];
	struct epoll_event ev;
	struct imap_limits il;
	int rv;

	e->dial = NULL;
	if (x->rv != 0) {
		if (x->res.retry == RETRY_NEVER) {
			give_up(w, i, &x->res);
		} else {
			conn_fail(w, e, x->rv, x->res.error);
		}
		dial_free(&x);
		return;
	}
	e->conn = x->conn;
	x->conn = NULL;
	e->sm = x->sm; /* the baselines move to the entry */
	memset(&x->sm, 0, sizeof(x->sm));
	imap_limits_default(&il);
	il.max_line = 65536;
	il.max_literal = 65536;
	il.max_response = 262144;
	il.max_tokens = 20000;
	rv = imap_parser_new(&il, &e->parser);
	if (rv == 0) {
		rv = watch_sm_start(&e->sm, clock_mono_ms(), &e->out);
	}
	if (rv == 0) {
		rv = flush_out(e);
	}
	if (rv == 0) {
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = e;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, net_fd(e->conn), &ev)
		    != 0) {
			rv = ERR_IO;
		}
	}
	if (rv != 0) {
		dial_free(&x);
		conn_fail(w, e, rv, "handing over the connection");
		return;
	}
	log_info("job=%llu account=%llu event=watching mode=%s mailboxes=%zu",
	    (unsigned long long)e->job_id, (unsigned long long)e->account_id,
	    e->sm.mode == WATCH_MODE_NOTIFY ? "notify" : "idle", e->sm.nmb);
	e->fails = 0;
	if (e->had_conn || e->attempt > 1) {
		/* Changes while nobody watched: one catch-up sync. */
		send_event(w, e, true, "*");
	}
	e->had_conn = true;
	if (x->nrest > 0) {
		(void)feed(w, e, x->rest, x->nrest);
	}
	dial_free(&x);
}

/* Every dial that came back; an abandoned one (its entry removed) is
 * only freed. */
static void
drain_dials(struct watcher *w)
{
	struct dial *x;
	size_t i;

	while ((x = dialer_take(&w->dl)) != NULL) {
		for (i = 0; x->owner != NULL && i < w->n; i++) {
			if (w->v[i] == x->owner) {
				dialed(w, i, x);
				x = NULL;
				break;
			}
		}
		dial_free(&x);
	}
}

/* Parses n bytes and runs the state machine; 0 or the error (the
 * connection is then closed). */
static int
feed(struct watcher *w, struct entry *e, const char *p, size_t n)
{
	struct change_ctx cc = { w, e };
	const struct imap_resp *r;
	size_t used;
	int rv;

	while (n > 0) {
		rv = imap_parser_feed(e->parser, p, n, &used, &r);
		p += used;
		n -= used;
		if (rv < 0) {
			conn_fail(w, e, rv, imap_parser_error(e->parser));
			return (rv);
		}
		if (rv == 0) {
			break;
		}
		rv = watch_sm_input(
		    &e->sm, r, clock_mono_ms(), &e->out, on_change2, &cc);
		if (rv == 0) {
			rv = flush_out(e);
		}
		if (rv != 0) {
			conn_fail(w, e, rv, "server response");
			return (rv);
		}
	}
	return (ERR_OK);
}

static void
on_readable(struct watcher *w, struct entry *e)
{
	char buf[RBUF];
	size_t n;
	int rv;

	while (e->conn != NULL) {
		rv = net_read(e->conn, buf, sizeof(buf), &n, 0);
		if (rv == ERR_TIMEOUT) {
			return;
		}
		if (rv != 0) {
			conn_fail(w, e, rv, "reading");
			return;
		}
		if (feed(w, e, buf, n) != 0) {
			return;
		}
	}
}

static char *
dupstr(struct proto_str s)
{
	return (s.p != NULL ? proto_str_dup(s) : NULL);
}

static void
on_job(struct watcher *w, const struct proto_job_run *j)
{
	struct entry *e, **nv;
	int64_t len;
	size_t i;

	if (j->kind != JOB_KIND_WATCH) {
		log_warnx("job=%llu event=not_a_watch_job kind=%s",
		    (unsigned long long)j->job_id,
		    proto_job_kind_name(j->kind));
		return;
	}
	for (i = 0; i < w->n; i++) {
		if (w->v[i]->account_id == j->account_id) {
			entry_remove(w, i);
			break;
		}
	}
	if (w->n == w->cap) {
		size_t ncap = w->cap == 0 ? 64 : w->cap * 2;

		nv = realloc(w->v, ncap * sizeof(*nv));
		if (nv == NULL) {
			fatalx("out of memory");
		}
		w->v = nv;
		w->cap = ncap;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		fatalx("out of memory");
	}
	e->job_id = j->job_id;
	e->account_id = j->account_id;
	e->attempt = j->attempt;
	e->name = dupstr(j->account);
	e->a.server = dupstr(j->server);
	e->a.user = dupstr(j->username);
	e->a.pass = dupstr(j->password);
	e->a.ca_pem = dupstr(j->tls_ca_pem);
	e->a.starttls = j->starttls;
	e->a.plaintext = j->plaintext;
	e->a.oauth2 = proto_str_eq(j->auth, "oauth2");
	e->jmap = proto_str_eq(j->protocol, "jmap");
	if (e->a.server == NULL || e->a.user == NULL) {
		fatalx("out of memory");
	}
	buf_init(&e->out, MAX_OUT);
	len = j->lease_until - clock_wall_ms();
	e->beat_ms = len / 3 < 500 ? 500 : len / 3;
	e->next_beat = clock_mono_ms() + e->beat_ms;
	w->v[w->n++] = e;
	log_info("job=%llu account=%llu name=%s attempt=%u event=watch_start",
	    (unsigned long long)e->job_id, (unsigned long long)e->account_id,
	    e->name != NULL ? e->name : "", e->attempt);
	conn_open(w, w->n - 1);
}

static void
drain_jobs(struct watcher *w)
{
	struct proto_msg m;
	nng_msg *raw = NULL;
	int rv;

	for (;;) {
		rv = ipc_recv(w->jobs, &m, &raw, 0);
		if (rv != 0) {
			if (rv == ERR_PROTO || rv == ERR_VERSION) {
				continue;
			}
			return;
		}
		if (m.type == MSG_WORKER_JOB_RUN) {
			on_job(w, &m.u.job_run);
		}
		proto_msg_release(&m);
		ipc_msg_free(&raw);
	}
}

static void
drain_events(struct watcher *w)
{
	struct proto_msg m;
	nng_msg *raw = NULL;
	size_t i;
	int rv;

	for (;;) {
		rv = ipc_recv(w->events, &m, &raw, 0);
		if (rv != 0) {
			if (rv == ERR_PROTO || rv == ERR_VERSION) {
				continue;
			}
			return;
		}
		if (m.type == MSG_STORE_EVENT
		    && (m.u.event.kind == EV_JOB_FINISHED
		        || m.u.event.kind == EV_JOB_QUEUED)) {
			for (i = 0; i < w->n; i++) {
				if (w->v[i]->job_id == m.u.event.job_id) {
					log_info("job=%llu event=lease_lost",
					    (unsigned long long)m.u.event
						.job_id);
					entry_remove(w, i);
					break;
				}
			}
		}
		proto_msg_release(&m);
		ipc_msg_free(&raw);
	}
}

/* A JMAP stream's transfer ended (out of the multi handle already);
 * owner is its account's jwatch, alive as long as the transfer was in. */
static void
on_stream_done(void *owner, int result, void *arg)
{
	(void)arg;
	jwatch_stream_done(owner, result, clock_mono_ms());
}

/* Timers: curl's, beats, reconnects, state machine deadlines, JMAP
 * polls. Returns the ms until the next one. */
static int
run_timers(struct watcher *w)
{
	int64_t now = clock_mono_ms(), next = now + 1000, t;
	struct entry *e;
	size_t i;
	int rv;

	cmulti_timer(&w->cm, now, on_stream_done, w);
	for (i = 0; i < w->n && !watch_stop; i++) {
		e = w->v[i];
		if (now >= e->next_beat) {
			send_event(w, e, false, NULL);
			e->next_beat = now + e->beat_ms;
		}
		if (e->conn == NULL && e->reconnect_at != 0
		    && now >= e->reconnect_at) {
			conn_open(w, i);
			if (i >= w->n || w->v[i] != e) {
				continue; /* given up: removed */
			}
		}
		jmap_tick(w, e, now);
		if (e->conn != NULL) {
			rv = watch_sm_tick(&e->sm, now, &e->out);
			if (rv == 0) {
				rv = flush_out(e);
			}
			if (rv != 0) {
				conn_fail(w, e, rv, "no reply in time");
			}
		}
		t = e->next_beat;
		if (e->conn != NULL && watch_sm_next(&e->sm) < t) {
			t = watch_sm_next(&e->sm);
		}
		if (e->conn == NULL && e->reconnect_at != 0
		    && e->reconnect_at < t) {
			t = e->reconnect_at;
		}
		if (e->jw != NULL && jwatch_next(e->jw) < t) {
			t = jwatch_next(e->jw);
		}
		if (t < next) {
			next = t;
		}
	}
	now = clock_mono_ms();
	t = cmulti_timeout_ms(&w->cm, now);
	if (t >= 0 && now + t < next) {
		next = now + t;
	}
	return (next <= now ? 0 : (int)(next - now));
}

static int
add_nng_fd(struct watcher *w, nng_socket s, void *tag)
{
	struct epoll_event ev;
	int fd;

	if (nng_socket_get_int(s, NNG_OPT_RECVFD, &fd) != 0) {
		return (ERR_IO);
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = tag;
	return (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : ERR_IO);
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS];
	struct watch_flags f;
	struct sigaction sa;
	struct watcher w;
	char errbuf[256];
	int i, n, rv, tmo;

	watch_flags_parse(argc, argv, &f);
	memset(&w, 0, sizeof(w));
	w.lim = f.lim;
	w.cycle_ms = f.cycle_ms;
	w.jmap_poll_ms = f.jmap_poll_ms;
	w.jmap_ping_s = f.jmap_ping_s;
	log_init("mailsync-watch", f.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	/* libcurl (SMTP, JMAP): once, before any thread or handle */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fatalx("curl_global_init failed");
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	w.rng = (uint64_t)clock_wall_ms() ^ ((uint64_t)getpid() << 32)
	    ^ 0x9e3779b97f4a7c15ULL;

	rv = ipc_open(IPC_WATCH, IPC_DIAL, f.urls[0], &w.jobs, errbuf,
	    sizeof(errbuf));
	if (rv != 0) {
		fatalx("watch socket %s: %s", f.urls[0], errbuf);
	}
	rv = ipc_open(IPC_RESULTS, IPC_DIAL, f.urls[1], &w.results, errbuf,
	    sizeof(errbuf));
	if (rv != 0) {
		fatalx("results socket %s: %s", f.urls[1], errbuf);
	}
	rv = ipc_open(IPC_EVENTS, IPC_DIAL, f.urls[2], &w.events, errbuf,
	    sizeof(errbuf));
	if (rv != 0) {
		fatalx("events socket %s: %s", f.urls[2], errbuf);
	}
	w.ep = epoll_create1(EPOLL_CLOEXEC);
	if (w.ep < 0) {
		fatal("epoll_create1");
	}
	if (add_nng_fd(&w, w.jobs, &tag_jobs) != 0
	    || add_nng_fd(&w, w.events, &tag_events) != 0) {
		fatalx("cannot poll the nng sockets");
	}
	if (cmulti_init(&w.cm) != 0) {
		fatalx("cannot set up the curl multi handle");
	}
	memset(&evs[0], 0, sizeof(evs[0]));
	evs[0].events = EPOLLIN;
	evs[0].data.ptr = &tag_curl;
	if (epoll_ctl(w.ep, EPOLL_CTL_ADD, cmulti_fd(&w.cm), &evs[0]) != 0) {
		fatal("epoll_ctl (curl)");
	}
	if (dialer_init(&w.dl, f.dialers) != 0) {
		fatalx("cannot start the dialer threads");
	}
	memset(&evs[0], 0, sizeof(evs[0]));
	evs[0].events = EPOLLIN;
	evs[0].data.ptr = &tag_dial;
	if (epoll_ctl(w.ep, EPOLL_CTL_ADD, dialer_fd(&w.dl), &evs[0]) != 0) {
		fatal("epoll_ctl (dialer)");
	}
	log_info("event=started watch=%s results=%s events=%s poll_s=%lld "
	         "jmap_poll_s=%lld jmap_ping_s=%d dialers=%zu",
	    f.urls[0], f.urls[1], f.urls[2], (long long)(w.cycle_ms / 1000),
	    (long long)(w.jmap_poll_ms / 1000), w.jmap_ping_s, f.dialers);

	tmo = 0;
	while (!watch_stop) {
		n = epoll_wait(w.ep, evs, MAX_EVENTS, tmo);
		for (i = 0; i < n && !watch_stop; i++) {
			if (evs[i].data.ptr == &tag_jobs) {
				drain_jobs(&w);
			} else if (evs[i].data.ptr == &tag_events) {
				drain_events(&w);
			} else if (evs[i].data.ptr == &tag_dial) {
				drain_dials(&w);
			} else if (evs[i].data.ptr == &tag_curl) {
				cmulti_sockets(&w.cm, on_stream_done, &w);
			} else {
				size_t k;

				/* The entry may have been removed by an
				 * earlier event of this batch. */
				for (k = 0; k < w.n; k++) {
					if (w.v[k] == evs[i].data.ptr) {
						on_readable(&w, w.v[k]);
						break;
					}
				}
			}
		}
		tmo = run_timers(&w);
	}
	log_info("event=stopping watches=%zu changes=%llu", w.n,
	    (unsigned long long)w.changes);
	while (w.n > 0) {
		entry_remove(&w, w.n - 1); /* streams leave the multi handle */
	}
	/* a dial blocked on a hanging server is not waited for: stopping
	 * must not take up to --io-timeout */
	dialer_release(&w.dl, 1000);
	cmulti_release(&w.cm);
	free(w.v);
	close(w.ep);
	nng_close(w.jobs);
	nng_close(w.results);
	nng_close(w.events);
	return (0);
}
