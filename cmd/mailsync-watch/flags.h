/*
 * flags.h: mailsync-watch's command line (docs/cli.md), parsed once into
 * a struct watch_flags; endpoints default to ipc:// sockets in --dir.
 */
#ifndef MAILSYNC_WATCH_FLAGS_H
#define MAILSYNC_WATCH_FLAGS_H

#include <stdbool.h>
#include <stdint.h>

#include "sync/sync.h"

struct watch_flags {
	/* --watch, --results, --events: each a URL (argv's or defs') */
	const char *urls[3];
	char defs[3][1100];
	struct sync_limits lim; /* --io-timeout: I/O and connect limits */
	int64_t cycle_ms;	/* --poll: the CONDSTORE check cycle */
	int64_t jmap_poll_ms;	/* --jmap-poll */
	int jmap_ping_s;	/* --jmap-ping, 0: none */
	size_t dialers;		/* --dialers: IMAP set-up threads */
	bool verbose;
};

/* Parses argv into *f; a bad flag prints why and exits 2. */
void watch_flags_parse(int argc, char **argv, struct watch_flags *f);

#endif
