/*
 * flags.c: mailsync-scheduler's command line (docs/cli.md), parsed once
 * into a struct config; endpoints default to ipc:// sockets in --dir.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "ipc/ipc.h"
#include "sched.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: mailsync-scheduler [-n] [--dir DIR] [--control URL] "
	    "[--events URL]\n"
	    "           [--jobs-listen URL] [--metrics-listen HOST:PORT|off]\n"
	    "           [--max-inflight N] [--lease SECONDS] "
	    "[--max-attempts N] [--verbose]\n"
	    "           [--watch-listen URL] [--no-watch]\n");
	exit(2);
}

static uint32_t
flag_u32(const char *name, const char *arg, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (parse_u64(arg, max, &v) != 0 || v < min) {
		fprintf(stderr,
		    "mailsync-scheduler: %s: expected an integer %llu..%llu, "
		    "got \"%s\"\n",
		    name, (unsigned long long)min, (unsigned long long)max,
		    arg);
		exit(2);
	}
	return ((uint32_t)v);
}

static void
flag_url(char *dst, const char *arg, const char *name)
{
	if (strlcpy_checked(dst, arg, URL_MAX) != 0 || arg[0] == '\0') {
		fprintf(stderr,
		    "mailsync-scheduler: %s: empty or longer "
		    "than %d bytes\n",
		    name, URL_MAX - 1);
		exit(2);
	}
}

static void
default_url(char *dst, const char *dir, enum ipc_endpoint e)
{
	if (dst[0] != '\0') {
		return;
	}
	if (ipc_default_url(dir, e, dst, URL_MAX) != 0) {
		fprintf(stderr, "mailsync-scheduler: --dir: path too long\n");
		exit(2);
	}
}

void
sched_parse_flags(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "control", required_argument, NULL, 'c' },
		{ "events", required_argument, NULL, 'e' },
		{ "jobs-listen", required_argument, NULL, 'j' },
		{ "metrics-listen", required_argument, NULL, 'm' },
		{ "max-inflight", required_argument, NULL, 'i' },
		{ "lease", required_argument, NULL, 'l' },
		{ "max-attempts", required_argument, NULL, 'a' },
		{ "watch-listen", required_argument, NULL, 'w' },
		{ "no-watch", no_argument, NULL, 'W' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->dir = "./mailsync-data";
	cfg->metrics_listen = "127.0.0.1:9464";
	cfg->lim.max_inflight = 8;
	cfg->lim.lease_ms = 120 * 1000;
	cfg->lim.max_attempts = 5;
	while ((c = getopt_long(argc, argv, "hnv", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (optarg[0] == '\0') {
				fprintf(stderr,
				    "mailsync-scheduler: --dir: "
				    "empty\n");
				exit(2);
			}
			cfg->dir = optarg;
			break;
		case 'c':
			flag_url(cfg->control, optarg, "--control");
			break;
		case 'e':
			flag_url(cfg->events, optarg, "--events");
			break;
		case 'j':
			flag_url(cfg->jobs, optarg, "--jobs-listen");
			break;
		case 'm':
			cfg->metrics_listen
			    = strcmp(optarg, "off") == 0 ? NULL : optarg;
			break;
		case 'i':
			cfg->lim.max_inflight
			    = flag_u32("--max-inflight", optarg, 1, 100000);
			break;
		case 'l':
			cfg->lim.lease_ms
			    = (int64_t)flag_u32("--lease", optarg, 1, 86400)
			    * 1000;
			break;
		case 'a':
			cfg->lim.max_attempts
			    = flag_u32("--max-attempts", optarg, 1, 1000);
			break;
		case 'w':
			flag_url(cfg->watch, optarg, "--watch-listen");
			break;
		case 'W':
			cfg->no_watch = true;
			break;
		case 'v':
			cfg->verbose = true;
			break;
		case 'n':
			cfg->check_only = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc) {
		usage();
	}
	default_url(cfg->control, cfg->dir, IPC_CONTROL);
	default_url(cfg->events, cfg->dir, IPC_EVENTS);
	default_url(cfg->jobs, cfg->dir, IPC_JOBS);
	default_url(cfg->watch, cfg->dir, IPC_WATCH);
}

