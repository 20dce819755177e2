/*
 * mailsync-store: the process that owns mailsync.db and the credential
 * key. It answers control requests (REP: submit and scheduler), applies
 * worker results (PULL) and publishes store events (PUB), all from one
 * thread, so SQLite sees a single thread. Every decision lives in
 * pkg/store; this file only wires flags, sockets, the poll loop and one
 * dispatch switch. A reply is sent only after its transaction committed.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "ipc/ipc.h"
#include "proto/proto.h"
#include "secret/secret.h"
#include "store/store.h"

#define REPLY_TIMEOUT_MS 2000
#define DRAIN_MAX 64 /* messages per socket per loop turn: fairness */
#define POLL_MS 500
#define WATCHDOG_PERIOD_MS 5000 /* listener probe interval */
#define KEEP_JOBS_DAYS INT64_C(7)   /* finished jobs kept this long */
#define KEEP_LOG_DAYS INT64_C(30)   /* sync_log rows kept this long */
#define PRUNE_EVERY_MS 600000	    /* prune pass period */
#define PRUNE_ROWS 5000u	    /* rows per table per pass */
#define MAINTAIN_EVERY_MS 60000	    /* stranded-change pass period */
#define MAINTAIN_ROUNDS 64	    /* calls per pass (each a few accounts) */
#define WATCHDOG_PROBE_MS 2000	/* time a fresh pipe may take */

static volatile sig_atomic_t store_stop;

static void
on_signal(int sig)
{
	(void)sig;
	store_stop = 1;
}

struct storeproc {
	struct store *st;
	nng_socket control;
	nng_socket results;
	nng_socket events;
};

static void
publish(struct storeproc *sp, const struct store_out *out)
{
	struct proto_msg m;
	size_t i;
	int rv;

	for (i = 0; i < out->nevents; i++) {
		memset(&m, 0, sizeof(m));
		m.type = MSG_STORE_EVENT;
		m.id = out->events[i].job_id;
		m.u.event = out->events[i];
		rv = ipc_send(sp->events, &m, 0);
		if (rv != 0) {
			log_warnx("event=publish_failed kind=%u job=%llu "
			          "account=%llu err=%s",
			    out->events[i].kind,
			    (unsigned long long)out->events[i].job_id,
			    (unsigned long long)out->events[i].account_id,
			    err_name(rv));
		}
	}
}

static void
reply(struct storeproc *sp, uint64_t id, const struct proto_reply *r)
{
	struct proto_msg m;
	int rv;

	memset(&m, 0, sizeof(m));
	m.type = MSG_STORE_REPLY;
	m.id = id;
	m.u.reply = *r;
	rv = ipc_send(sp->control, &m, REPLY_TIMEOUT_MS);
	if (rv != 0) {
		log_warnx("event=reply_failed id=%llu err=%s",
		    (unsigned long long)id, err_name(rv));
	}
}

/* Sets an error reply for requests pkg/store never saw. */
static void
out_error(struct store_out *out, int code, const char *text)
{
	snprintf(out->errtext, sizeof(out->errtext), "%s", text);
	out->reply.status = code;
	out->reply.error.p = out->errtext;
	out->reply.error.len = strlen(out->errtext);
}

static void
handle_control(struct storeproc *sp, const struct proto_msg *req)
{
	struct store_out out;
	int64_t now = clock_wall_ms();
	int rv;

	store_out_init(&out);
	switch (req->type) {
	case MSG_SUBMIT_ACCOUNT_ADD:
		rv = store_account_add(sp->st, &req->u.account_add, now, &out);
		break;
	case MSG_SUBMIT_ACCOUNT_LIST:
		rv = store_account_list(sp->st, &out);
		break;
	case MSG_SUBMIT_ACCOUNT_REMOVE:
		rv = store_account_remove(sp->st, &req->u.name, now, &out);
		break;
	case MSG_SUBMIT_JOB_SUBMIT:
		rv = store_job_submit(sp->st, &req->u.job_submit, now, &out);
		break;
	case MSG_SUBMIT_JOB_STATUS:
		rv = store_job_status(sp->st, &req->u.job_status, &out);
		break;
	case MSG_SUBMIT_CHANGE_ADD:
		rv = store_change_add(sp->st, &req->u.change_add, now, &out);
		break;
	case MSG_SUBMIT_CHANGE_LIST:
		rv = store_change_list(sp->st, &req->u.change_list, &out);
		break;
	case MSG_SUBMIT_CHANGE_RESOLVE:
		rv = store_change_resolve(
		    sp->st, &req->u.change_resolve, now, &out);
		break;
	case MSG_SUBMIT_MESSAGE_LIST:
		rv = store_message_list(sp->st, &req->u.message_list, &out);
		break;
	case MSG_SCHED_STATE_GET:
		rv = store_sched_state(sp->st, &out);
		break;
	case MSG_SCHED_JOB_CREATE:
		rv = store_job_create(sp->st, &req->u.job_create, now, &out);
		break;
	case MSG_SCHED_JOB_LEASE:
		rv = store_job_lease(sp->st, &req->u.job_lease, now, &out);
		break;
	case MSG_SCHED_JOB_RETRY:
		rv = store_job_retry(sp->st, &req->u.job_retry, now, &out);
		break;
	default:
		rv = ERR_PROTO;
		out_error(&out, rv, "not a control request");
		break;
	}
	if (rv != 0) {
		log_warnx("event=request_failed type=%s id=%llu err=%s "
		          "detail=\"%.*s\"",
		    proto_msg_name(req->type), (unsigned long long)req->id,
		    err_name(rv), (int)out.reply.error.len,
		    out.reply.error.p != NULL ? out.reply.error.p : "");
	} else {
		log_debug("event=request type=%s id=%llu result=%llu",
		    proto_msg_name(req->type), (unsigned long long)req->id,
		    (unsigned long long)out.reply.id);
	}
	reply(sp, req->id, &out.reply);
	publish(sp, &out);
	store_out_release(&out); /* wipes a leased password */
}

static void
handle_result(struct storeproc *sp, const struct proto_msg *m)
{
	struct store_out out;
	int64_t now = clock_wall_ms();
	uint64_t job = 0;
	uint32_t attempt = 0;
	int rv;

	store_out_init(&out);
	switch (m->type) {
	case MSG_WORKER_RESULT_BATCH:
		job = m->u.batch.job_id;
		attempt = m->u.batch.attempt;
		rv = store_apply_batch(sp->st, &m->u.batch, now, &out);
		break;
	case MSG_WORKER_RESULT_DONE:
		job = m->u.done.job_id;
		attempt = m->u.done.attempt;
		rv = store_apply_done(
		    sp->st, &m->u.done, now, arc4random(), &out);
		break;
	case MSG_WORKER_WATCH_EVENT:
		job = m->u.watch_event.job_id;
		attempt = m->u.watch_event.attempt;
		rv = store_watch_event(sp->st, &m->u.watch_event, now, &out);
		break;
	default:
		rv = ERR_PROTO;
		out_error(&out, rv, "not a worker result");
		break;
	}
	if (rv != 0) {
		log_warnx("event=result_dropped type=%s job=%llu attempt=%u "
		          "err=%s detail=\"%.*s\"",
		    proto_msg_name(m->type), (unsigned long long)job, attempt,
		    err_name(rv), (int)out.reply.error.len,
		    out.reply.error.p != NULL ? out.reply.error.p : "");
	}
	publish(sp, &out);
	store_out_release(&out);
}

/* Receives and handles up to DRAIN_MAX messages from one socket. */
static void
drain(struct storeproc *sp, bool control)
{
	nng_socket s = control ? sp->control : sp->results;
	struct store_out out;
	struct proto_msg m;
	nng_msg *raw = NULL;
	int i, rv;

	for (i = 0; i < DRAIN_MAX && !store_stop; i++) {
		rv = ipc_recv(s, &m, &raw, 0);
		if (rv == ERR_AGAIN || rv == ERR_TIMEOUT) {
			return;
		}
		if (rv == ERR_CLOSED) {
			store_stop = 1;
			return;
		}
		if (rv != 0) {
			/* ipc_recv logged it; a requester still gets an
			 * answer instead of waiting for its timeout. */
			if (control) {
				store_out_init(&out);
				out_error(&out, rv,
				    rv == ERR_VERSION
				        ? "unsupported protocol version"
				        : "malformed request (see store log)");
				reply(sp, m.id, &out.reply);
			}
			continue;
		}
		if (control) {
			handle_control(sp, &m);
		} else {
			handle_result(sp, &m);
		}
		proto_msg_release(&m);
		ipc_msg_free(&raw); /* may hold a password: wiped */
	}
}

/*
 * One bounded pruning pass (pkg/store/prune.c). Returns when the next
 * pass is due: soon when this one hit its row cap, else a period later.
 */
static int64_t
prune(struct storeproc *sp, int64_t keep_jobs_ms, int64_t keep_log_ms)
{
	uint64_t n = 0;
	int rv;

	rv = store_prune(sp->st, clock_wall_ms(), keep_jobs_ms, keep_log_ms,
	    PRUNE_ROWS, &n);
	if (rv != 0) {
		log_warnx("event=prune_failed err=\"%s\"", err_str(rv));
		return (clock_mono_ms() + PRUNE_EVERY_MS);
	}
	if (n > 0) {
		log_info("event=pruned rows=%llu", (unsigned long long)n);
	}
	return (clock_mono_ms() + (n >= PRUNE_ROWS ? 1000 : PRUNE_EVERY_MS));
}

/*
 * Queues a drain job for accounts whose due changes have none, and frees
 * changes stranded inflight (pkg/store/change_apply.c), publishing the
 * events. Returns when the next pass is due.
 */
static int64_t
maintain(struct storeproc *sp)
{
	struct store_out out;
	size_t queued = 0;
	int i, rv;

	for (i = 0; i < MAINTAIN_ROUNDS && !store_stop; i++) {
		store_out_init(&out);
		rv = store_change_maintain(
		    sp->st, clock_wall_ms(), &out, &queued);
		if (rv != 0) {
			log_warnx("event=maintain_failed err=%s "
			          "detail=\"%.*s\"",
			    err_name(rv), (int)out.reply.error.len,
			    out.reply.error.p != NULL ? out.reply.error.p : "");
		}
		publish(sp, &out);
		store_out_release(&out);
		if (rv != 0 || queued < STORE_OUT_MAX_EVENTS) {
			break;
		}
	}
	return (clock_mono_ms() + MAINTAIN_EVERY_MS);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: mailsync-store [--dir DIR] [--control-listen URL]\n"
	    "                      [--results-listen URL] "
	    "[--events-listen URL]\n"
	    "                      [--default-interval SECONDS] "
	    "[--max-attempts N]\n"
	    "                      [--keep-jobs DAYS] [--keep-log DAYS] "
	    "[--max-body BYTES]\n"
	    "                      [--verbose] [-n]\n");
	exit(2);
}

/* Creates dir 0700 when missing; refuses a non-directory. */
static void
make_dir(const char *dir)
{
	struct stat sb;

	if (mkdir(dir, 0700) == 0) {
		return;
	}
	if (errno != EEXIST) {
		fatal("cannot create data directory %s", dir);
	}
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		fatalx("data directory %s is not a directory", dir);
	}
}

static const char *
url_or_default(
    const char *url, const char *dir, enum ipc_endpoint e, char *buf, size_t n)
{
	if (url != NULL) {
		return (url);
	}
	if (ipc_default_url(dir, e, buf, n) != 0) {
		fatalx("data directory path too long");
	}
	return (buf);
}

static void
open_socket(enum ipc_endpoint e, const char *url, nng_socket *s,
    struct ipc_watchdog **w_r)
{
	nng_listener l;
	char errbuf[256];
	int rv;

	rv = ipc_open_ex(e, IPC_LISTEN, url, NULL, s, &l, errbuf,
	    sizeof(errbuf));
	if (rv != 0) {
		fatalx("%s socket %s: %s", ipc_endpoint_name(e), url, errbuf);
	}
	/* Keep accepting new peers despite nng 1.5.2's ipc bug (ipc.h). */
	rv = ipc_watchdog_start(*s, l, e, url, WATCHDOG_PERIOD_MS,
	    WATCHDOG_PROBE_MS, w_r);
	if (rv != 0) {
		fatalx("%s socket %s: watchdog: %s", ipc_endpoint_name(e), url,
		    err_str(rv));
	}
}

static int
recv_fd(nng_socket s, const char *what)
{
	int fd = -1, rv;

	rv = nng_socket_get_int(s, NNG_OPT_RECVFD, &fd);
	if (rv != 0) {
		fatalx("%s socket: no receive fd: %s", what, nng_strerror(rv));
	}
	return (fd);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "control-listen", required_argument, NULL, 'c' },
		{ "results-listen", required_argument, NULL, 'r' },
		{ "events-listen", required_argument, NULL, 'e' },
		{ "default-interval", required_argument, NULL, 'i' },
		{ "max-attempts", required_argument, NULL, 'a' },
		{ "keep-jobs", required_argument, NULL, 'J' },
		{ "keep-log", required_argument, NULL, 'L' },
		{ "max-body", required_argument, NULL, 'B' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = "./mailsync-data", *curl = NULL, *rurl = NULL;
	const char *eurl = NULL;
	char cdef[1100], rdef[1100], edef[1100], dbpath[1100], keypath[1100];
	char errbuf[512];
	uint8_t key[SECRET_KEY_LEN];
	struct store_config cfg
	    = { STORE_DEFAULT_INTERVAL_S, STORE_DEFAULT_MAX_ATTEMPTS, 0,
		  STORE_DEFAULT_MAX_BODY };
	struct storeproc sp;
	struct sigaction sa;
	struct pollfd pfd[2];
	struct ipc_watchdog *wd[3] = { NULL, NULL, NULL };
	int64_t keep_jobs_ms = KEEP_JOBS_DAYS * 86400000;
	int64_t keep_log_ms = KEEP_LOG_DAYS * 86400000;
	int64_t next_prune = 0, next_maintain = 0;
	sigset_t mask, old;
	size_t i;
	bool verbose = false, check = false;
	uint64_t v;
	int c, rv, w;

	memset(&sp, 0, sizeof(sp));
	while ((c = getopt_long(argc, argv, "hnv", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'c':
			curl = optarg;
			break;
		case 'r':
			rurl = optarg;
			break;
		case 'e':
			eurl = optarg;
			break;
		case 'i':
			if (parse_u64(optarg, 7 * 24 * 3600, &v) != 0
			    || v == 0) {
				fprintf(stderr,
				    "mailsync-store: "
				    "--default-interval must be "
				    "1..604800 seconds\n");
				exit(2);
			}
			cfg.default_interval_s = (uint32_t)v;
			break;
		case 'a':
			if (parse_u64(optarg, 1000, &v) != 0 || v == 0) {
				fprintf(stderr,
				    "mailsync-store: "
				    "--max-attempts must be "
				    "1..1000\n");
				exit(2);
			}
			cfg.max_attempts = (uint32_t)v;
			break;
		case 'J':
		case 'L':
			if (parse_u64(optarg, 3650, &v) != 0 || v == 0) {
				fprintf(stderr,
				    "mailsync-store: --keep-jobs and --keep-log "
				    "must be 1..3650 days\n");
				exit(2);
			}
			if (c == 'J') {
				keep_jobs_ms = (int64_t)v * 86400000;
			} else {
				keep_log_ms = (int64_t)v * 86400000;
			}
			break;
		case 'B':
			/* A body row is at most PROTO_MAX_STR; the body may
			 * be any number of them, up to 4 GiB. */
			if (parse_u64(optarg, UINT32_MAX, &v) != 0 || v == 0) {
				fprintf(stderr,
				    "mailsync-store: --max-body must be "
				    "1..4294967295 bytes\n");
				exit(2);
			}
			cfg.max_body = v;
			break;
		case 'n':
			check = true;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || *dir == '\0') {
		usage();
	}
	log_init("mailsync-store", verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	umask(077); /* the database, its WAL and the key: owner only */
	make_dir(dir);
	w = snprintf(dbpath, sizeof(dbpath), "%s/mailsync.db", dir);
	if (w < 0 || (size_t)w >= sizeof(dbpath)) {
		fatalx("data directory path too long");
	}
	w = snprintf(keypath, sizeof(keypath), "%s/secret.key", dir);
	if (w < 0 || (size_t)w >= sizeof(keypath)) {
		fatalx("data directory path too long");
	}
	curl = url_or_default(curl, dir, IPC_CONTROL, cdef, sizeof(cdef));
	rurl = url_or_default(rurl, dir, IPC_RESULTS, rdef, sizeof(rdef));
	eurl = url_or_default(eurl, dir, IPC_EVENTS, edef, sizeof(edef));

	rv = secret_key_load(keypath, key, errbuf, sizeof(errbuf));
	if (rv != 0) {
		fatalx("key file %s: %s", keypath, errbuf);
	}
	if (store_global_init() != 0) {
		fatalx("cannot configure SQLite");
	}
	rv = store_open(dbpath, key, &cfg, &sp.st, errbuf, sizeof(errbuf));
	mem_wipe(key, sizeof(key));
	if (rv != 0) {
		fatalx("database %s: %s (%s)", dbpath, errbuf, err_name(rv));
	}
	if (check) {
		store_free(&sp.st);
		printf("mailsync-store: configuration and database OK\n");
		return (0);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* nng's threads inherit a mask without SIGTERM/SIGINT, so the
	 * signal interrupts this thread's poll(). */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	open_socket(IPC_CONTROL, curl, &sp.control, &wd[0]);
	open_socket(IPC_RESULTS, rurl, &sp.results, &wd[1]);
	open_socket(IPC_EVENTS, eurl, &sp.events, &wd[2]);
	pfd[0].fd = recv_fd(sp.control, "control");
	pfd[1].fd = recv_fd(sp.results, "results");
	pfd[0].events = pfd[1].events = POLLIN;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	log_info("event=started db=%s control=%s results=%s events=%s", dbpath,
	    curl, rurl, eurl);

	while (!store_stop) {
		rv = poll(pfd, 2, POLL_MS);
		if (rv < 0) {
			if (errno == EINTR) {
				continue;
			}
			log_warn("event=poll_failed");
			break;
		}
		/* Both are cheap to try; control first (users wait on it). */
		drain(&sp, true);
		drain(&sp, false);
		if (clock_mono_ms() >= next_prune) {
			next_prune = prune(&sp, keep_jobs_ms, keep_log_ms);
		}
		if (clock_mono_ms() >= next_maintain) {
			next_maintain = maintain(&sp);
		}
	}
	log_info("event=stopping");
	for (i = 0; i < ARRAY_LEN(wd); i++) {
		ipc_watchdog_stop(&wd[i]);
	}
	nng_close(sp.control);
	nng_close(sp.results);
	nng_close(sp.events);
	store_free(&sp.st);
	return (0);
}
