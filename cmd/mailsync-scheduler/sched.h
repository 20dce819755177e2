/*
 * sched.h: what the files of mailsync-scheduler share: its configuration
 * and the flag parser that fills it (flags.c).
 */
#ifndef MAILSYNC_SCHED_H
#define MAILSYNC_SCHED_H

#include <stdbool.h>

#include "queue/queue.h"

#define URL_MAX 1100

struct config {
	const char *dir;
	char control[URL_MAX];
	char events[URL_MAX];
	char jobs[URL_MAX];
	char watch[URL_MAX]; /* watch jobs to mailsync-watch */
	bool no_watch;	     /* create no watch jobs */
	const char *metrics_listen; /* NULL: off */
	struct queue_limits lim;
	bool verbose;
	bool check_only;
};

/* Parses argv into *cfg; prints usage and exits 2 on a bad flag. */
void sched_parse_flags(int argc, char **argv, struct config *cfg);

#endif
