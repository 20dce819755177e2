/*
 * mailsync-worker: a stateless process that takes one job at a time from
 * the scheduler (jobs PULL), runs it against the mail server (pkg/sync),
 * and streams batches and a final done message to the store (results
 * PUSH). It keeps nothing between jobs: killing it at any moment loses at
 * most the job in hand, which the scheduler re-emits when its lease runs
 * out.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "base/base.h"
#include "ipc/ipc.h"
#include "proto/proto.h"
#include "sync/sync.h"

#define RESULT_SEND_TIMEOUT_MS 60000

static volatile sig_atomic_t worker_stop;

static void
on_signal(int sig)
{
	(void)sig;
	worker_stop = 1;
}

/* Connections kept between jobs (JMAP): how many accounts' and for how
 * long. Idle HTTP connections cost the server little; 60 s stays under
 * the usual keep-alive limits, so a kept one is rarely found dead. */
#define KEEP_CONNECTIONS 16
#define KEEP_IDLE_S 60

struct worker {
	nng_socket jobs;
	nng_socket results;
	struct sync_limits lim;
	struct sync_conns *conns;
};

static int
send_batch(const struct proto_batch *b, void *arg)
{
	struct worker *w = arg;
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_WORKER_RESULT_BATCH;
	m.id = b->job_id;
	m.u.batch = *b;
	log_debug("job=%llu attempt=%u batch=%u mailboxes=%zu messages=%zu "
		  "change_results=%zu",
	    (unsigned long long)b->job_id, b->attempt, b->seq, b->nmailboxes,
	    b->nmessages, b->nchange_results);
	return (ipc_send(w->results, &m, RESULT_SEND_TIMEOUT_MS));
}

static void
run_job(struct worker *w, const struct proto_job_run *job)
{
	struct sync_sink sink = { send_batch, w };
	struct sync_result res;
	struct proto_msg m;
	int64_t t0 = clock_mono_ms();
	int rv;

	log_info("job=%llu account=%llu name=%.*s attempt=%u event=start",
	    (unsigned long long)job->job_id,
	    (unsigned long long)job->account_id, (int)job->account.len,
	    job->account.p != NULL ? job->account.p : "", job->attempt);
	sync_run(job, &w->lim, w->conns, &sink, &res);

	memset(&m, 0, sizeof(m));
	m.type = MSG_WORKER_RESULT_DONE;
	m.id = job->job_id;
	m.u.done.job_id = job->job_id;
	m.u.done.attempt = job->attempt;
	m.u.done.nbatches = res.nbatches;
	m.u.done.status = res.status;
	m.u.done.retry = (uint8_t)res.retry;
	m.u.done.error = proto_str_c(res.status != 0 ? res.error : NULL);
	m.u.done.messages = res.messages;
	if (res.status == 0) {
		m.u.done.checkpoints = res.checkpoints;
		m.u.done.ncheckpoints = res.ncheckpoints;
		/* Only a sync lists every mailbox; a body fetch or a drain
		 * lists none and has no checkpoints (its outcomes travelled
		 * as change results in its batches). */
		m.u.done.mailbox_list_complete = job->kind == JOB_KIND_SYNC;
		m.u.done.mailboxes = res.mailboxes;
		m.u.done.nmailboxes = res.nmailboxes;
		m.u.done.states = res.states;
		m.u.done.nstates = res.nstates;
	}
	rv = ipc_send(w->results, &m, RESULT_SEND_TIMEOUT_MS);
	if (rv != 0) {
		log_warnx("job=%llu attempt=%u event=done_unsent err=\"%s\"",
		    (unsigned long long)job->job_id, job->attempt,
		    err_str(rv));
	}
	if (res.status == 0) {
		log_info("job=%llu account=%llu attempt=%u event=done "
			 "messages=%llu batches=%u mailboxes=%zu ms=%lld",
		    (unsigned long long)job->job_id,
		    (unsigned long long)job->account_id, job->attempt,
		    (unsigned long long)res.messages, res.nbatches,
		    res.nmailboxes, (long long)(clock_mono_ms() - t0));
	} else {
		log_warnx("job=%llu account=%llu attempt=%u event=failed "
			  "err=%s retry=%d error=\"%s\" ms=%lld",
		    (unsigned long long)job->job_id,
		    (unsigned long long)job->account_id, job->attempt,
		    err_name(res.status), (int)res.retry, res.error,
		    (long long)(clock_mono_ms() - t0));
	}
	sync_result_release(&res);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: mailsync-worker [--dir DIR] [--jobs URL] [--results URL]\n"
	    "                       [--batch-rows N] [--io-timeout SECONDS] "
	    "[--job-timeout SECONDS]\n"
	    "                       [--keep-connections N] "
	    "[--keep-idle SECONDS] [--verbose]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "results", required_argument, NULL, 'r' },
		{ "batch-rows", required_argument, NULL, 'b' },
		{ "io-timeout", required_argument, NULL, 't' },
		{ "job-timeout", required_argument, NULL, 'T' },
		{ "keep-connections", required_argument, NULL, 'k' },
		{ "keep-idle", required_argument, NULL, 'K' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = "./mailsync-data", *jobs_url = NULL;
	const char *results_url = NULL;
	char jobs_def[1100], results_def[1100], errbuf[256];
	struct sigaction sa;
	struct worker w;
	uint64_t v, keep = KEEP_CONNECTIONS, keep_idle_s = KEEP_IDLE_S;
	int c, rv;
	bool verbose = false;

	memset(&w, 0, sizeof(w));
	sync_limits_default(&w.lim);
	while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'j':
			jobs_url = optarg;
			break;
		case 'r':
			results_url = optarg;
			break;
		case 'b':
			if (parse_u64(optarg, 10000, &v) != 0 || v == 0) {
				fprintf(stderr, "mailsync-worker: --batch-rows "
						"must be 1..10000\n");
				exit(2);
			}
			w.lim.batch_rows = (uint32_t)v;
			break;
		case 't':
			if (parse_u64(optarg, 3600, &v) != 0 || v == 0) {
				fprintf(stderr, "mailsync-worker: --io-timeout "
						"must be 1..3600 seconds\n");
				exit(2);
			}
			w.lim.io_timeout_ms = (int)v * 1000;
			break;
		case 'T':
			if (parse_u64(optarg, 7 * 86400, &v) != 0 || v == 0) {
				fprintf(stderr, "mailsync-worker: --job-timeout "
						"must be 1..604800 seconds\n");
				exit(2);
			}
			w.lim.job_timeout_ms = (int64_t)v * 1000;
			break;
		case 'k':
			if (parse_u64(optarg, 10000, &keep) != 0) {
				fprintf(stderr, "mailsync-worker: "
						"--keep-connections must be "
						"0..10000\n");
				exit(2);
			}
			break;
		case 'K':
			if (parse_u64(optarg, 86400, &keep_idle_s) != 0
			    || keep_idle_s == 0) {
				fprintf(stderr, "mailsync-worker: --keep-idle "
						"must be 1..86400 seconds\n");
				exit(2);
			}
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc) {
		usage();
	}
	log_init("mailsync-worker", verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	/* libcurl (SMTP, JMAP): once, before any thread or handle */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fatalx("curl_global_init failed");
	}
	if (jobs_url == NULL) {
		if (ipc_default_url(dir, IPC_JOBS, jobs_def,
			sizeof(jobs_def)) != 0) {
			fatalx("data directory path too long");
		}
		jobs_url = jobs_def;
	}
	if (results_url == NULL) {
		if (ipc_default_url(dir, IPC_RESULTS, results_def,
			sizeof(results_def)) != 0) {
			fatalx("data directory path too long");
		}
		results_url = results_def;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	rv = ipc_open(IPC_JOBS, IPC_DIAL, jobs_url, &w.jobs, errbuf,
	    sizeof(errbuf));
	if (rv != 0) {
		fatalx("jobs socket %s: %s", jobs_url, errbuf);
	}
	/* Take one job at a time: no queue of jobs waiting behind a long
	 * one while another worker idles. */
	if (nng_socket_set_int(w.jobs, NNG_OPT_RECVBUF, 1) != 0) {
		log_warnx("event=option_unsupported option=recv-buffer");
	}
	rv = ipc_open(IPC_RESULTS, IPC_DIAL, results_url, &w.results, errbuf,
	    sizeof(errbuf));
	if (rv != 0) {
		fatalx("results socket %s: %s", results_url, errbuf);
	}
	if (sync_conns_new((size_t)keep, (int64_t)keep_idle_s * 1000,
		&w.conns) != 0) {
		fatalx("out of memory");
	}
	log_info("event=started jobs=%s results=%s", jobs_url, results_url);

	while (!worker_stop) {
		struct proto_msg m;
		nng_msg *raw = NULL;

		sync_conns_expire(w.conns, clock_mono_ms());
		rv = ipc_recv(w.jobs, &m, &raw, 500);
		if (rv == ERR_TIMEOUT || rv == ERR_AGAIN) {
			continue;
		}
		if (rv != 0) {
			if (rv == ERR_CLOSED) {
				break;
			}
			continue; /* malformed: ipc_recv logged it */
		}
		if (m.type != MSG_WORKER_JOB_RUN) {
			log_warnx("event=unexpected_message type=%s",
			    proto_msg_name(m.type));
		} else if (m.u.job_run.lease_until != 0 &&
		    m.u.job_run.lease_until < clock_wall_ms()) {
			log_warnx("job=%llu attempt=%u event=expired_on_arrival",
			    (unsigned long long)m.u.job_run.job_id,
			    m.u.job_run.attempt);
		} else {
			run_job(&w, &m.u.job_run);
		}
		proto_msg_release(&m);
		/* The message held the account password. */
		mem_wipe(nng_msg_body(raw), nng_msg_len(raw));
		nng_msg_free(raw);
	}
	log_info("event=stopping");
	sync_conns_free(&w.conns);
	nng_close(w.jobs);
	nng_close(w.results);
	return (0);
}
