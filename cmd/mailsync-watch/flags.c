/*
 * flags.c: mailsync-watch's command line (flags.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "flags.h"
#include "ipc/ipc.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: mailsync-watch [--dir DIR] [--watch URL] [--results URL]\n"
	    "                      [--events URL] [--poll SECONDS] "
	    "[--jmap-poll SECONDS]\n"
	    "                      [--jmap-ping SECONDS] "
	    "[--io-timeout SECONDS] [--dialers N]\n"
	    "                      [--verbose]\n");
	exit(2);
}

/* The flags that take seconds: short option, name, smallest value. */
static const struct {
	int opt;
	const char *name;
	uint64_t min;
} seconds_flags[] = {
	{ 'p', "--poll", 1 },
	{ 'j', "--jmap-poll", 1 },
	{ 'P', "--jmap-ping", 0 },
	{ 't', "--io-timeout", 1 },
};

/* optarg of option c as seconds (min..3600), or a message and exit 2. */
static int64_t
seconds(int c, const char *arg)
{
	uint64_t v;
	size_t i;

	for (i = 0; seconds_flags[i].opt != c; i++) { }
	if (parse_u64(arg, 3600, &v) != 0 || v < seconds_flags[i].min) {
		fprintf(stderr, "mailsync-watch: %s must be %llu..3600 seconds\n",
		    seconds_flags[i].name,
		    (unsigned long long)seconds_flags[i].min);
		exit(2);
	}
	return ((int64_t)v);
}

void
watch_flags_parse(int argc, char **argv, struct watch_flags *f)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "watch", required_argument, NULL, 'w' },
		{ "results", required_argument, NULL, 'r' },
		{ "events", required_argument, NULL, 'e' },
		{ "poll", required_argument, NULL, 'p' },
		{ "jmap-poll", required_argument, NULL, 'j' },
		{ "jmap-ping", required_argument, NULL, 'P' },
		{ "io-timeout", required_argument, NULL, 't' },
		{ "dialers", required_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const enum ipc_endpoint eps[3]
	    = { IPC_WATCH, IPC_RESULTS, IPC_EVENTS };
	const char *dir = "./mailsync-data";
	uint64_t n;
	int c, i;

	memset(f, 0, sizeof(*f));
	sync_limits_default(&f->lim);
	f->lim.io_timeout_ms = 30000;
	f->lim.connect_timeout_ms = 10000;
	f->lim.job_timeout_ms = 0;
	f->cycle_ms = 60000;
	f->jmap_poll_ms = 2000;
	f->jmap_ping_s = 30;
	f->dialers = 4;
	while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'w':
			f->urls[0] = optarg;
			break;
		case 'r':
			f->urls[1] = optarg;
			break;
		case 'e':
			f->urls[2] = optarg;
			break;
		case 'p':
			f->cycle_ms = seconds(c, optarg) * 1000;
			break;
		case 'j':
			f->jmap_poll_ms = seconds(c, optarg) * 1000;
			break;
		case 'P':
			f->jmap_ping_s = (int)seconds(c, optarg);
			break;
		case 't':
			f->lim.io_timeout_ms = (int)seconds(c, optarg) * 1000;
			f->lim.connect_timeout_ms = f->lim.io_timeout_ms;
			break;
		case 'D':
			if (parse_u64(optarg, 64, &n) != 0 || n == 0) {
				fprintf(stderr, "mailsync-watch: --dialers must "
				                "be 1..64\n");
				exit(2);
			}
			f->dialers = (size_t)n;
			break;
		case 'v':
			f->verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc) {
		usage();
	}
	for (i = 0; i < 3; i++) {
		if (f->urls[i] == NULL) {
			if (ipc_default_url(dir, eps[i], f->defs[i],
			        sizeof(f->defs[i]))
			    != 0) {
				fprintf(stderr, "mailsync-watch: data "
				                "directory path too long\n");
				exit(2);
			}
			f->urls[i] = f->defs[i];
		}
	}
}
