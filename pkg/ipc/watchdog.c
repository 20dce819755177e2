/*
 * watchdog.c: keeps an ipc:// listener accepting.
 *
 * nng 1.5.2 has a bug (upstream issue 1518): when a peer connects to an
 * ipc:// listener and disappears before the SP handshake, the listener
 * never accepts another pipe, while pipes already established keep
 * working. A worker or submit killed at that instant would silently cut
 * the store off from every later peer. tcp:// is not affected.
 *
 * The watchdog is one thread per guarded listener. It counts the pipes
 * whose handshake the guarded socket finished (NNG_PIPE_EV_ADD_PRE on that
 * socket: the dialer's side of a handshake can finish while the wedged
 * listener's never does, so only the listener's own count is evidence).
 * Each period it dials the URL with a probe socket of the guarded
 * socket's OWN protocol: the handshake completes (ADD_PRE fires) and the
 * protocol then refuses the pipe before ADD_POST, so a probe never becomes
 * a peer: it is never handed a job, a request or an event. No handshake
 * within probe_ms, twice, means the listener is wedged: it is closed and
 * listened again on the same socket.
 *
 * nng functions are thread-safe; the owner thread never sees this one
 * except through the relisten counter.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/supplemental/util/platform.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>

#include "base/base.h"
#include "ipc.h"

#define WATCHDOG_URL_MAX 1100
#define PROBE_REDIAL_MS 3600000 /* a refused probe does not redial */
#define PROBE_SETTLE_MS 20	/* let the refusal finish before close */

struct ipc_watchdog {
	nng_socket s;
	nng_listener l;
	enum ipc_endpoint e;
	char url[WATCHDOG_URL_MAX];
	int period_ms;
	int probe_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	uint64_t added; /* handshakes the guarded socket finished (mu) */
	unsigned relistens;
};

static void
guarded_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct ipc_watchdog *w = arg;

	(void)p;
	(void)ev;
	pthread_mutex_lock(&w->mu);
	w->added++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void
deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* A probe speaks the listener's own protocol, which refuses it as a peer. */
static int
open_probe(enum ipc_endpoint e, nng_socket *p)
{
	switch (e) {
	case IPC_CONTROL:
		return (nng_rep0_open(p));
	case IPC_RESULTS:
		return (nng_pull0_open(p));
	case IPC_EVENTS:
		return (nng_pub0_open(p));
	case IPC_JOBS:
	case IPC_WATCH:
		return (nng_push0_open(p));
	default:
		return (NNG_ENOTSUP);
	}
}

/* Returns true when a fresh pipe could be established within probe_ms;
 * also true when the probe itself could not be set up (no evidence). */
static bool
probe_ok(struct ipc_watchdog *w)
{
	struct timespec ts;
	nng_socket p;
	nng_dialer d;
	uint64_t before;
	bool ok;

	if (open_probe(w->e, &p) != 0) {
		return (true);
	}
	pthread_mutex_lock(&w->mu);
	before = w->added;
	pthread_mutex_unlock(&w->mu);
	/*
	 * nng 1.5.2 also leaks a dialer's connection when its socket is
	 * closed in the middle of a (re)connect, and a refused probe redials
	 * at once by default: a long reconnect interval and a short pause
	 * after the handshake let the close find the dialer idle.
	 */
	if (nng_dialer_create(&d, p, w->url) != 0 ||
	    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, PROBE_REDIAL_MS) != 0 ||
	    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, PROBE_REDIAL_MS) != 0 ||
	    nng_dialer_start(d, NNG_FLAG_NONBLOCK) != 0) {
		nng_close(p);
		return (true);
	}
	deadline_in(&ts, w->probe_ms);
	pthread_mutex_lock(&w->mu);
	while (w->added == before && !w->stop &&
	    pthread_cond_timedwait(&w->cv, &w->mu, &ts) != ETIMEDOUT) {
	}
	ok = w->added != before || w->stop;
	pthread_mutex_unlock(&w->mu);
	if (ok) {
		nng_msleep(PROBE_SETTLE_MS);
	}
	nng_close(p);
	return (ok);
}

static void
relisten(struct ipc_watchdog *w)
{
	nng_listener l;
	int rv;

	nng_listener_close(w->l);
	rv = nng_listener_create(&l, w->s, w->url);
	if (rv == 0) {
		rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600);
	}
	if (rv == 0) {
		rv = nng_listener_start(l, 0);
	}
	if (rv == 0) {
		(void)chmod(w->url + 6, 0600);
		w->l = l;
		pthread_mutex_lock(&w->mu);
		w->relistens++;
		pthread_mutex_unlock(&w->mu);
		log_warnx("event=listener_relisten endpoint=%s url=%s "
			  "reason=\"no new pipe within %d ms\"",
		    ipc_endpoint_name(w->e), w->url, w->probe_ms);
	} else {
		log_warnx("event=listener_relisten_failed endpoint=%s url=%s "
			  "err=\"%s\"",
		    ipc_endpoint_name(w->e), w->url, nng_strerror(rv));
	}
}

static void *
watchdog_main(void *arg)
{
	struct ipc_watchdog *w = arg;
	struct timespec ts;

	for (;;) {
		deadline_in(&ts, w->period_ms);
		pthread_mutex_lock(&w->mu);
		while (!w->stop &&
		    pthread_cond_timedwait(&w->cv, &w->mu, &ts) != ETIMEDOUT) {
		}
		if (w->stop) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		pthread_mutex_unlock(&w->mu);
		/* Two failed probes in a row: one may just be a busy box. */
		if (!probe_ok(w) && !probe_ok(w)) {
			relisten(w);
		}
	}
	return (NULL);
}

int
ipc_watchdog_start(nng_socket s, nng_listener l, enum ipc_endpoint e,
    const char *url, int period_ms, int probe_ms, struct ipc_watchdog **w_r)
{
	struct ipc_watchdog *w;

	*w_r = NULL;
	if (strncmp(url, "ipc://", 6) != 0) {
		return (ERR_OK); /* only ipc:// has the bug */
	}
	if ((int)e < 0 || e >= IPC_ENDPOINT_COUNT || period_ms <= 0 ||
	    probe_ms <= 0 ||
	    strlen(url) >= WATCHDOG_URL_MAX) {
		return (ERR_INVAL);
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		return (ERR_NOMEM);
	}
	w->s = s;
	w->l = l;
	w->e = e;
	memcpy(w->url, url, strlen(url) + 1);
	w->period_ms = period_ms;
	w->probe_ms = probe_ms;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	/* The watchdog owns ADD_PRE notifications of the guarded socket. */
	if (nng_pipe_notify(s, NNG_PIPE_EV_ADD_PRE, guarded_added, w) != 0 ||
	    pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
		return (ERR_NOMEM);
	}
	*w_r = w;
	return (ERR_OK);
}

void
ipc_watchdog_stop(struct ipc_watchdog **wp)
{
	struct ipc_watchdog *w = *wp;

	if (w == NULL) {
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
	*wp = NULL;
}

unsigned
ipc_watchdog_relistens(const struct ipc_watchdog *w)
{
	struct ipc_watchdog *mw = (struct ipc_watchdog *)w;
	unsigned n;

	pthread_mutex_lock(&mw->mu);
	n = mw->relistens;
	pthread_mutex_unlock(&mw->mu);
	return (n);
}
