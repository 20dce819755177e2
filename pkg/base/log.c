/*
 * log.c: one line per event on stderr, "proc[pid]: level=... msg", in the
 * OpenBSD daemon style (log_warn adds errno, fatal exits). The process name
 * and level are file-static, set once by main() via log_init().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base.h"

static const char *log_proc = "mailsync";
static enum log_level log_lvl = LOG_LVL_INFO;

void
log_init(const char *proc, enum log_level level)
{
	log_proc = proc;
	log_lvl = level;
}

static void log_emit(const char *lvl, int errnum, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

static void
log_emit(const char *lvl, int errnum, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0) {
		return;
	}
	if (errnum != 0) {
		fprintf(stderr, "%s[%d]: level=%s %s err=\"%s\"\n", log_proc,
		    (int)getpid(), lvl, line, strerror(errnum));
	} else {
		fprintf(stderr, "%s[%d]: level=%s %s\n", log_proc,
		    (int)getpid(), lvl, line);
	}
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit("warn", saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit("warn", 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_lvl < LOG_LVL_INFO) {
		return;
	}
	va_start(ap, fmt);
	log_emit("info", 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_lvl < LOG_LVL_DEBUG) {
		return;
	}
	va_start(ap, fmt);
	log_emit("debug", 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit("fatal", saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit("fatal", 0, fmt, ap);
	va_end(ap);
	exit(1);
}
