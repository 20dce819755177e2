/*
 * mailsync-scheduler: decides when jobs run. It keeps a RAM cache of the
 * store's accounts and active jobs (pkg/queue), fed by sched.state.get
 * (at start, every 30 s, and after any store error) and by store.event
 * messages (events SUB). One owner thread loops: wait for an event or the
 * next deadline, apply events, ask the queue what to do, and do it:
 * CREATE -> sched.job.create; LEASE -> sched.job.lease, then PUSH the
 * returned worker.job.run to a worker; RETRY -> sched.job.retry.
 * Prometheus metrics are served over HTTP from nng's threads (pkg/metrics
 * locks its registry). Nothing durable lives here: SIGTERM/SIGINT at any
 * moment loses nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "ipc/ipc.h"
#include "metrics/metrics.h"
#include "proto/proto.h"
#include "queue/queue.h"
#include "sched.h"

#define STORE_TIMEOUT_MS 5000
#define PUSH_TIMEOUT_MS 2000
#define POLL_MAX_MS 250
#define RECONCILE_MS 30000
#define UNREACHABLE_LOG_MS 60000
#define ACTIONS_PER_ROUND 64
#define ROUNDS_PER_TICK 16
#define EVENTS_PER_TICK 1024

static volatile sig_atomic_t sched_stop;

static void
on_signal(int sig)
{
	(void)sig;
	sched_stop = 1;
}


struct sched_metrics {
	struct metrics_family *emitted;
	struct metrics_family *completed;
	struct metrics_family *failed;
	struct metrics_family *inflight;
	struct metrics_family *expired;
	struct metrics_family *accounts;
	struct metrics_family *job_duration;
	struct metrics_family *store_duration;
	struct metrics_family *reconciles;
};

struct sched {
	const struct config *cfg;
	nng_socket ctl;
	nng_socket sub;
	nng_socket push;
	nng_socket watch; /* PUSH of watch jobs (push: queue_watch) */
	struct queue *q;
	struct queue_watch *qw;
	struct metrics *reg;
	struct metrics_http *http;
	struct sched_metrics m;
	uint64_t req_id;
	uint64_t rng;
	bool need_reload;
	int64_t next_reconcile; /* monotonic ms */
	int64_t next_states; /* monotonic ms: accounts gauge refresh */
};

static uint32_t
sched_rand(struct sched *s)
{
	/* xorshift64*: jitter only, not security. */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return ((uint32_t)((s->rng * 0x2545f4914f6cdd1dULL) >> 32));
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static const char *
kind_name(uint8_t kind)
{
	return (proto_job_kind_name(kind));
}

/* Metrics ---------------------------------------------------------------- */

static void
metrics_setup(struct sched *s)
{
	struct sched_metrics *m = &s->m;
	int rv = 0;

	if (metrics_new(&s->reg) != 0) {
		fatalx("out of memory");
	}
#define REG(call)                                                             \
	do {                                                                  \
		if (rv == 0) {                                                \
			rv = (call);                                          \
		}                                                             \
	} while (0)
	REG(metrics_counter(s->reg, "mailsync_jobs_emitted_total",
	    "Jobs pushed to a worker.", "kind", NULL, &m->emitted));
	REG(metrics_counter(s->reg, "mailsync_jobs_completed_total",
	    "Jobs that ended, by outcome (done, failed, dead).", "kind",
	    "outcome", &m->completed));
	REG(metrics_counter(s->reg, "mailsync_jobs_failed_total",
	    "Failed job attempts, retried or not.", "kind", NULL, &m->failed));
	REG(metrics_gauge(s->reg, "mailsync_jobs_in_flight",
	    "Jobs leased or being leased.", NULL, NULL, &m->inflight));
	REG(metrics_counter(s->reg, "mailsync_leases_expired_total",
	    "Leases that ran out before the job finished.", NULL, NULL,
	    &m->expired));
	REG(metrics_gauge(s->reg, "mailsync_accounts",
	    "Accounts by scheduling state.", "state", NULL, &m->accounts));
	REG(metrics_histogram(s->reg, "mailsync_job_duration_seconds",
	    "Time from lease to finish.", "kind", NULL, NULL, 0,
	    &m->job_duration));
	REG(metrics_histogram(s->reg,
	    "mailsync_store_request_duration_seconds",
	    "Round trip of a control request to the store.", NULL, NULL, NULL,
	    0, &m->store_duration));
	REG(metrics_counter(s->reg, "mailsync_scheduler_reconciles_total",
	    "Full state reloads from the store.", NULL, NULL, &m->reconciles));
#undef REG
	if (rv != 0) {
		fatalx("metrics setup: %s", err_str(rv));
	}
}

/* Metric updates never fail in practice (bounded label sets); a failure
 * only loses a sample, so it is ignored. */
static void
count(struct metrics_family *f, const char *v1, const char *v2)
{
	(void)metrics_add(f, v1, v2, 1);
}

static void
update_gauges(struct sched *s, bool force)
{
	struct queue_stats st;
	uint64_t counts[QUEUE_ACCT_STATE_COUNT];
	int64_t now = clock_mono_ms();
	int i;

	queue_get_stats(s->q, &st);
	(void)metrics_set(s->m.inflight, NULL, NULL, (double)st.inflight);
	if (!force && now < s->next_states) {
		return;
	}
	s->next_states = now + 1000;
	queue_account_states(s->q, counts); /* O(accounts): once a second */
	for (i = 0; i < QUEUE_ACCT_STATE_COUNT; i++) {
		(void)metrics_set(s->m.accounts,
		    queue_account_state_name((enum queue_account_state)i),
		    NULL, (double)counts[i]);
	}
}

/* Store requests --------------------------------------------------------- */

/*
 * One control round trip. On 0, *rep (borrowing from *raw) holds a reply
 * with status 0; the caller releases both. On error nothing is left to
 * free, and the cache is marked for reload (the store is the truth).
 */
static int
store_call(struct sched *s, struct proto_msg *req, struct proto_msg *rep,
    nng_msg **raw)
{
	double t0 = mono_s();
	int rv;

	req->id = ++s->req_id;
	rv = ipc_call(s->ctl, req, rep, raw, STORE_TIMEOUT_MS);
	if (rv != ERR_UNREACHABLE) {
		(void)metrics_observe(
		    s->m.store_duration, NULL, NULL, mono_s() - t0);
	}
	if (rv != 0) {
		s->need_reload = true;
		return (rv);
	}
	if (rep->u.reply.status != 0) {
		rv = rep->u.reply.status < 0 ? rep->u.reply.status : ERR_PROTO;
		log_warnx("store refused request=%s err=%s error=\"%.*s\"",
		    proto_msg_name(req->type), err_name(rv),
		    (int)(rep->u.reply.error.len > 300
		            ? 300
		            : rep->u.reply.error.len),
		    rep->u.reply.error.p != NULL ? rep->u.reply.error.p : "");
		proto_msg_release(rep);
		ipc_msg_free(raw);
		s->need_reload = true;
		return (rv);
	}
	return (0);
}

/* sched.state.get into the queue. */
static int
load_state(struct sched *s)
{
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	int rv;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SCHED_STATE_GET;
	rv = store_call(s, &req, &rep, &raw);
	if (rv != 0) {
		return (rv);
	}
	rv = queue_load(s->q, &rep.u.reply);
	if (rv == 0 && s->qw != NULL) {
		rv = queue_watch_load(s->qw, &rep.u.reply, clock_wall_ms());
	}
	if (rv != 0) {
		log_warnx("state reply rejected err=%s", err_name(rv));
	} else {
		count(s->m.reconciles, NULL, NULL);
		log_debug("state loaded accounts=%zu jobs=%zu",
		    rep.u.reply.nsched_accounts, rep.u.reply.njobs);
	}
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	return (rv);
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts
	    = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	(void)nanosleep(&ts, NULL); /* a signal cuts it short: fine */
}

/* Loads until the store answers (or we are told to stop). */
static void
load_until_ok(struct sched *s)
{
	int64_t last_log = 0, delay = 250, now;
	int rv;

	while (!sched_stop) {
		rv = load_state(s);
		if (rv == 0) {
			if (last_log != 0) {
				log_info("store reachable again");
			}
			s->need_reload = false;
			s->next_reconcile = clock_mono_ms() + RECONCILE_MS;
			update_gauges(s, true);
			return;
		}
		now = clock_mono_ms();
		if (last_log == 0 || now - last_log >= UNREACHABLE_LOG_MS) {
			log_warnx("store unreachable url=%s err=%s",
			    s->cfg->control, err_name(rv));
			last_log = now;
		}
		sleep_ms(delay);
		delay = delay * 2 > 5000 ? 5000 : delay * 2;
	}
}

/* Actions ---------------------------------------------------------------- */

static void
do_create(struct sched *s, const struct queue_action *a)
{
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	uint64_t job_id = 0;
	int rv;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SCHED_JOB_CREATE;
	req.u.job_create.account_id = a->account_id;
	req.u.job_create.kind = a->job_kind;
	req.u.job_create.priority = a->priority;
	req.u.job_create.due_at = a->due_at;
	rv = store_call(s, &req, &rep, &raw);
	if (rv == 0) {
		job_id = rep.u.reply.id;
		proto_msg_release(&rep);
		ipc_msg_free(&raw);
	}
	if (a->job_kind == JOB_KIND_WATCH) {
		queue_watch_create_done(
		    s->qw, a, rv, job_id, clock_wall_ms(), sched_rand(s));
	} else {
		(void)queue_create_done(s->q, a, rv, job_id);
	}
	if (rv == 0) {
		log_info("job=%llu account=%llu kind=%s action=create",
		    (unsigned long long)job_id,
		    (unsigned long long)a->account_id, kind_name(a->job_kind));
	} else {
		log_warnx("account=%llu kind=%s action=create err=%s",
		    (unsigned long long)a->account_id, kind_name(a->job_kind),
		    err_name(rv));
	}
}

/* sched.job.retry for a job; returns the store's verdict. */
static int
send_retry(struct sched *s, uint64_t job_id, uint32_t attempt, uint8_t state,
    int64_t due_at, const char *error)
{
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	int rv;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SCHED_JOB_RETRY;
	req.u.job_retry.job_id = job_id;
	req.u.job_retry.attempt = attempt;
	req.u.job_retry.state = state;
	req.u.job_retry.due_at = due_at;
	req.u.job_retry.error = proto_str_c(error);
	rv = store_call(s, &req, &rep, &raw);
	if (rv == 0) {
		proto_msg_release(&rep);
		ipc_msg_free(&raw);
	}
	return (rv);
}

static void
do_lease(struct sched *s, const struct queue_action *a)
{
	struct proto_msg req, rep, run;
	const struct proto_job_run *jr;
	nng_msg *raw = NULL;
	int64_t now, due;
	int rv;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SCHED_JOB_LEASE;
	req.u.job_lease.job_id = a->job_id;
	req.u.job_lease.lease_until = a->lease_until;
	rv = store_call(s, &req, &rep, &raw);
	now = clock_wall_ms();
	if (rv == 0
	    && (rep.u.reply.job_run == NULL
	        || rep.u.reply.job_run->job_id != a->job_id)) {
		log_warnx("job=%llu action=lease err=ERR_PROTO "
		          "detail=\"reply without a matching job_run\"",
		    (unsigned long long)a->job_id);
		proto_msg_release(&rep);
		ipc_msg_free(&raw);
		s->need_reload = true;
		rv = ERR_PROTO;
	}
	if (rv != 0 && a->job_kind == JOB_KIND_WATCH) {
		queue_watch_lease_done(s->qw, a->job_id, rv, 0, 0, now);
	} else if (rv != 0) {
		(void)queue_lease_done(s->q, a->job_id, rv, 0, 0, now);
	}
	if (rv != 0) {
		log_warnx("job=%llu account=%llu kind=%s action=lease err=%s",
		    (unsigned long long)a->job_id,
		    (unsigned long long)a->account_id, kind_name(a->job_kind),
		    err_name(rv));
		return;
	}
	jr = rep.u.reply.job_run;
	if (a->job_kind == JOB_KIND_WATCH) {
		queue_watch_lease_done(
		    s->qw, a->job_id, 0, jr->attempt, jr->lease_until, now);
	} else {
		(void)queue_lease_done(
		    s->q, a->job_id, 0, jr->attempt, jr->lease_until, now);
	}

	/* The job_run holds the password: it goes to the worker only and
	 * is wiped with raw by ipc_msg_free(). Never logged. */
	memset(&run, 0, sizeof(run));
	run.type = MSG_WORKER_JOB_RUN;
	run.id = jr->job_id;
	run.u.job_run = *jr;
	/* Watch jobs go to the watchers' socket, without waiting: with no
	 * watcher connected they are given back (backoff) at once. */
	rv = a->job_kind == JOB_KIND_WATCH
	    ? ipc_send(s->watch, &run, 0)
	    : ipc_send(s->push, &run, PUSH_TIMEOUT_MS);
	if (rv == 0) {
		count(s->m.emitted, kind_name(jr->kind), NULL);
		log_info(
		    "job=%llu account=%llu kind=%s action=emit attempt=%u",
		    (unsigned long long)jr->job_id,
		    (unsigned long long)jr->account_id, kind_name(jr->kind),
		    jr->attempt);
	} else {
		/* Give the attempt back at once rather than waiting for the
		 * lease to run out. */
		due = now + queue_backoff_ms(jr->attempt, sched_rand(s));
		log_warnx("job=%llu account=%llu kind=%s action=requeue "
		          "attempt=%u err=%s error=\"no worker accepted the "
		          "job\" due_in_ms=%lld",
		    (unsigned long long)jr->job_id,
		    (unsigned long long)jr->account_id, kind_name(jr->kind),
		    jr->attempt, err_name(rv), (long long)(due - now));
		count(s->m.failed, kind_name(jr->kind), NULL);
		rv = send_retry(s, jr->job_id, jr->attempt, JOB_QUEUED, due,
		    "no worker accepted the job");
		if (a->job_kind == JOB_KIND_WATCH) {
			queue_watch_retry_done(s->qw, jr->job_id, rv,
			    JOB_QUEUED, due, now, sched_rand(s));
		} else {
			(void)queue_retry_done(
			    s->q, jr->job_id, rv, JOB_QUEUED, due, now);
		}
	}
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
}

static void
do_retry(struct sched *s, const struct queue_action *a)
{
	int64_t now;
	int rv;

	rv = send_retry(
	    s, a->job_id, a->attempt, a->state, a->due_at, a->error);
	now = clock_wall_ms();
	if (a->job_kind == JOB_KIND_WATCH) {
		queue_watch_retry_done(s->qw, a->job_id, rv, a->state,
		    a->due_at, now, sched_rand(s));
	} else {
		(void)queue_retry_done(
		    s->q, a->job_id, rv, a->state, a->due_at, now);
	}
	if (rv != 0) {
		log_warnx("job=%llu account=%llu kind=%s action=retry err=%s",
		    (unsigned long long)a->job_id,
		    (unsigned long long)a->account_id, kind_name(a->job_kind),
		    err_name(rv));
		return;
	}
	count(s->m.expired, NULL, NULL);
	count(s->m.failed, kind_name(a->job_kind), NULL);
	if (a->state == JOB_DEAD) {
		count(s->m.completed, kind_name(a->job_kind), "dead");
		log_warnx("job=%llu account=%llu kind=%s action=dead "
		          "attempt=%u error=\"%s\"",
		    (unsigned long long)a->job_id,
		    (unsigned long long)a->account_id, kind_name(a->job_kind),
		    a->attempt, a->error);
	} else {
		log_info("job=%llu account=%llu kind=%s action=retry "
		         "attempt=%u due_in_ms=%lld error=\"%s\"",
		    (unsigned long long)a->job_id,
		    (unsigned long long)a->account_id, kind_name(a->job_kind),
		    a->attempt, (long long)(a->due_at - now), a->error);
	}
}

/* Runs what the queue proposes until it has nothing more for now. */
static void
run_actions(struct sched *s)
{
	struct queue_action acts[ACTIONS_PER_ROUND];
	size_t n, i;
	int round;
	bool sync_due, watch_due;

	for (round = 0; round < ROUNDS_PER_TICK && !sched_stop; round++) {
		sync_due = queue_next_deadline(s->q, clock_wall_ms()) == 0;
		watch_due = s->qw != NULL
		    && queue_watch_next_deadline(s->qw, clock_wall_ms()) == 0;
		if (!sync_due && !watch_due) {
			return;
		}
		n = 0;
		if (sync_due) {
			queue_next_actions(s->q, clock_wall_ms(),
			    sched_rand(s), acts, ARRAY_LEN(acts), &n);
		}
		if (watch_due && n < ARRAY_LEN(acts)) {
			size_t nw = 0;

			queue_watch_next_actions(s->qw, clock_wall_ms(),
			    sched_rand(s), acts + n, ARRAY_LEN(acts) - n, &nw);
			n += nw;
		}
		for (i = 0; i < n && !s->need_reload; i++) {
			switch (acts[i].kind) {
			case QUEUE_ACT_CREATE:
				do_create(s, &acts[i]);
				break;
			case QUEUE_ACT_LEASE:
				do_lease(s, &acts[i]);
				break;
			case QUEUE_ACT_RETRY:
				do_retry(s, &acts[i]);
				break;
			}
		}
		if (s->need_reload) {
			/* The rest stay pending; the reload forgets them. */
			return;
		}
	}
}

/* Events ----------------------------------------------------------------- */

static const char *
outcome_name(uint8_t state)
{
	switch (state) {
	case JOB_DONE:
		return ("done");
	case JOB_FAILED:
		return ("failed");
	default:
		return ("dead");
	}
}

static void
on_event(struct sched *s, const struct proto_event *ev)
{
	struct queue_job before;
	const char *kind;
	bool known = false;
	int rv;

	memset(&before, 0, sizeof(before));
	if (s->qw != NULL && queue_watch_on_event(s->qw, ev, sched_rand(s))) {
		log_debug("job=%llu account=%llu kind=watch event=%u "
		          "attempt=%u state=%s",
		    (unsigned long long)ev->job_id,
		    (unsigned long long)ev->account_id, ev->kind, ev->attempt,
		    proto_job_state_name(ev->state));
		return;
	}
	rv = queue_on_event(s->q, ev, &before, &known);
	kind = kind_name(known ? before.kind : JOB_KIND_SYNC);
	if (rv == ERR_NOMEM || rv == ERR_TOOBIG) {
		log_warnx("event dropped err=%s: will reload", err_name(rv));
		s->need_reload = true;
		return;
	}
	if (ev->kind == EV_ACCOUNT_CHANGED) {
		log_info("account=%llu action=%s interval_s=%u",
		    (unsigned long long)ev->account_id,
		    ev->removed ? "account_removed" : "account_changed",
		    ev->interval_s);
		return;
	}
	if (rv != 0) {
		/* Stale, unknown or our own request in flight: harmless. */
		log_debug("job=%llu event=%u attempt=%u ignored=%s",
		    (unsigned long long)ev->job_id, ev->kind, ev->attempt,
		    err_name(rv));
		return;
	}
	switch (ev->kind) {
	case EV_JOB_QUEUED:
		if (known && before.state == JOB_LEASED) {
			/* A failed attempt the store re-queued. */
			count(s->m.failed, kind, NULL);
			log_info(
			    "job=%llu account=%llu kind=%s action=requeued "
			    "attempt=%u status=%s due_in_ms=%lld",
			    (unsigned long long)ev->job_id,
			    (unsigned long long)ev->account_id, kind,
			    ev->attempt, err_name(ev->status),
			    (long long)(ev->due_at - ev->at));
		} else {
			log_info("job=%llu account=%llu kind=%s action=queued "
			         "priority=%s",
			    (unsigned long long)ev->job_id,
			    (unsigned long long)ev->account_id, kind,
			    ev->priority == PRIO_USER ? "user" : "periodic");
		}
		break;
	case EV_JOB_PROGRESS:
		log_debug("job=%llu account=%llu kind=%s action=progress "
		          "attempt=%u",
		    (unsigned long long)ev->job_id,
		    (unsigned long long)ev->account_id, kind, ev->attempt);
		break;
	case EV_JOB_FINISHED:
		if (ev->state == JOB_QUEUED) {
			count(s->m.failed, kind, NULL);
		} else {
			count(s->m.completed, kind, outcome_name(ev->state));
			if (ev->state != JOB_DONE || ev->status != 0) {
				count(s->m.failed, kind, NULL);
			}
			if (before.leased_at > 0
			    && ev->at >= before.leased_at) {
				(void)metrics_observe(s->m.job_duration, kind,
				    NULL,
				    (double)(ev->at - before.leased_at)
				        / 1000.0);
			}
		}
		log_info("job=%llu account=%llu kind=%s action=finished "
		         "state=%s attempt=%u status=%s",
		    (unsigned long long)ev->job_id,
		    (unsigned long long)ev->account_id, kind,
		    proto_job_state_name(ev->state), ev->attempt,
		    err_name(ev->status));
		break;
	default:
		break;
	}
}

/* Waits up to timeout_ms for one event, then drains what else is there. */
static void
pump_events(struct sched *s, int timeout_ms)
{
	struct proto_msg m;
	nng_msg *raw = NULL;
	int i, rv;

	for (i = 0; i < EVENTS_PER_TICK && !sched_stop; i++) {
		rv = ipc_recv(s->sub, &m, &raw, i == 0 ? timeout_ms : 0);
		if (rv == ERR_TIMEOUT || rv == ERR_AGAIN) {
			return;
		}
		if (rv == ERR_PROTO || rv == ERR_VERSION) {
			continue; /* logged and dropped by ipc_recv */
		}
		if (rv != 0) {
			log_warnx("events receive err=%s", err_name(rv));
			sleep_ms(timeout_ms > 0 ? timeout_ms : 10);
			return;
		}
		if (m.type == MSG_STORE_EVENT) {
			on_event(s, &m.u.event);
		} else {
			log_warnx("unexpected message on events type=%s",
			    proto_msg_name(m.type));
		}
		proto_msg_release(&m);
		ipc_msg_free(&raw);
	}
}

/* Main ------------------------------------------------------------------- */

static void
run(struct sched *s)
{
	int64_t d, mono;

	load_until_ok(s);
	while (!sched_stop) {
		mono = clock_mono_ms();
		if (s->need_reload || mono >= s->next_reconcile) {
			load_until_ok(s);
			continue;
		}
		run_actions(s);
		update_gauges(s, false);
		if (s->need_reload) {
			continue;
		}
		d = queue_next_deadline(s->q, clock_wall_ms());
		if (s->qw != NULL) {
			int64_t dw = queue_watch_next_deadline(
			    s->qw, clock_wall_ms());

			d = dw < d ? dw : d;
		}
		if (d > POLL_MAX_MS) {
			d = POLL_MAX_MS;
		}
		pump_events(s, (int)d);
	}
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct sched s;
	struct sigaction sa;
	struct ipc_watchdog *wd = NULL;
	nng_listener jobs_l, watch_l;
	struct ipc_watchdog *wwd = NULL;
	char err[256];
	int rv;

	sched_parse_flags(argc, argv, &cfg);
	log_init(
	    "mailsync-scheduler", cfg.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (cfg.check_only) {
		printf("control=%s\nevents=%s\njobs_listen=%s\n"
		       "metrics_listen=%s\nmax_inflight=%u\nlease_s=%lld\n"
		       "max_attempts=%u\n",
		    cfg.control, cfg.events, cfg.jobs,
		    cfg.metrics_listen != NULL ? cfg.metrics_listen : "off",
		    cfg.lim.max_inflight, (long long)(cfg.lim.lease_ms / 1000),
		    cfg.lim.max_attempts);
		return (0);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	memset(&s, 0, sizeof(s));
	s.cfg = &cfg;
	s.rng = (uint64_t)clock_wall_ms() ^ ((uint64_t)getpid() << 32)
	    ^ 0x9e3779b97f4a7c15ULL;
	if (mkdir(cfg.dir, 0700) != 0 && errno != EEXIST) {
		fatal("mkdir %s", cfg.dir);
	}
	rv = queue_new(&cfg.lim, &s.q);
	if (rv != 0) {
		fatalx("queue: %s", err_str(rv));
	}
	if (!cfg.no_watch) {
		rv = queue_watch_new(&cfg.lim, &s.qw);
		if (rv != 0) {
			fatalx("queue: %s", err_str(rv));
		}
	}
	metrics_setup(&s);
	update_gauges(&s, true);
	if (cfg.metrics_listen != NULL) {
		rv = metrics_http_start(
		    s.reg, cfg.metrics_listen, &s.http, err, sizeof(err));
		if (rv != 0) {
			fatalx("metrics: %s", err);
		}
	}
	rv = ipc_open(
	    IPC_CONTROL, IPC_DIAL, cfg.control, &s.ctl, err, sizeof(err));
	if (rv != 0) {
		fatalx("control %s: %s", cfg.control, err);
	}
	rv = ipc_open(
	    IPC_EVENTS, IPC_DIAL, cfg.events, &s.sub, err, sizeof(err));
	if (rv != 0) {
		fatalx("events %s: %s", cfg.events, err);
	}
	rv = ipc_open_ex(IPC_JOBS, IPC_LISTEN, cfg.jobs, NULL, &s.push,
	    &jobs_l, err, sizeof(err));
	if (rv != 0) {
		fatalx("jobs %s: %s", cfg.jobs, err);
	}
	/* New workers must always get in despite nng 1.5.2's ipc bug. */
	rv = ipc_watchdog_start(s.push, jobs_l, IPC_JOBS, cfg.jobs, 5000,
	    2000, &wd);
	if (rv != 0) {
		fatalx("jobs %s: watchdog: %s", cfg.jobs, err_str(rv));
	}
	if (!cfg.no_watch) {
		rv = ipc_open_ex(IPC_WATCH, IPC_LISTEN, cfg.watch, NULL,
		    &s.watch, &watch_l, err, sizeof(err));
		if (rv != 0) {
			fatalx("watch %s: %s", cfg.watch, err);
		}
		rv = ipc_watchdog_start(s.watch, watch_l, IPC_WATCH,
		    cfg.watch, 5000, 2000, &wwd);
		if (rv != 0) {
			fatalx("watch %s: watchdog: %s", cfg.watch,
			    err_str(rv));
		}
	}
	log_info("started control=%s events=%s jobs=%s metrics=%s "
	         "max_inflight=%u lease_s=%lld max_attempts=%u",
	    cfg.control, cfg.events, cfg.jobs,
	    cfg.metrics_listen != NULL ? cfg.metrics_listen : "off",
	    cfg.lim.max_inflight, (long long)(cfg.lim.lease_ms / 1000),
	    cfg.lim.max_attempts);

	run(&s);

	log_info("stopping");
	metrics_http_stop(&s.http);
	ipc_watchdog_stop(&wd);
	ipc_watchdog_stop(&wwd);
	if (!cfg.no_watch) {
		nng_close(s.watch);
	}
	queue_watch_free(&s.qw);
	nng_close(s.push);
	nng_close(s.sub);
	nng_close(s.ctl);
	queue_free(&s.q);
	metrics_free(&s.reg);
	return (0);
}
