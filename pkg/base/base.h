/*
 * pkg/base: the few things every other module needs and that need nothing.
 *
 *   - enum err and err_str(): the one error vocabulary of the project.
 *     Foreign codes (errno, nng, SQLite, OpenSSL) are translated where they
 *     arise; detail goes into a caller-supplied message buffer or the log.
 *   - enum retry: how the scheduler should react to a failed job.
 *   - logging: key=value lines on stderr, prefixed by process and pid.
 *   - struct buf: a growable byte buffer with a hard ceiling fixed at init.
 *   - clocks: monotonic milliseconds and wall-clock seconds.
 *
 * The logger keeps its process name and level in file-static state set once
 * by main() through log_init(); it is the only mutable state in pkg/.
 */
#ifndef MAILSYNC_BASE_H
#define MAILSYNC_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X(name, value, text): every error code of the project. */
#define ERR_TABLE(X)                                                        \
	X(ERR_OK, 0, "success")                                             \
	X(ERR_NOMEM, -1, "out of memory")                                   \
	X(ERR_INVAL, -2, "invalid argument")                                \
	X(ERR_PROTO, -3, "protocol violation")                              \
	X(ERR_TOOBIG, -4, "size limit exceeded")                            \
	X(ERR_IO, -5, "input/output error")                                 \
	X(ERR_TIMEOUT, -6, "timed out")                                     \
	X(ERR_CLOSED, -7, "connection closed")                              \
	X(ERR_TLS, -8, "TLS failure")                                       \
	X(ERR_AUTH, -9, "authentication failed")                            \
	X(ERR_NOTFOUND, -10, "not found")                                   \
	X(ERR_EXISTS, -11, "already exists")                                \
	X(ERR_DB, -12, "database error")                                    \
	X(ERR_VERSION, -13, "unsupported version")                          \
	X(ERR_CRYPTO, -14, "cryptographic failure")                         \
	X(ERR_AGAIN, -15, "more input needed")                              \
	X(ERR_SERVER, -16, "server refused the command")                    \
	X(ERR_STALE, -17, "stale job attempt")                              \
	X(ERR_UNREACHABLE, -18, "peer unreachable")                         \
	X(ERR_BADSTATE, -19, "invalid state for this operation")               \
	X(ERR_CONFIG, -20, "configuration error")                          \
	X(ERR_UNSUPPORTED, -21, "not supported by the server")

enum err {
#define ERR_ENUM_(name, value, text) name = value,
	ERR_TABLE(ERR_ENUM_)
#undef ERR_ENUM_
};

/* Returns a static string for an err code (unknown codes included). */
const char *err_str(int e);
/* Returns the symbolic name ("ERR_PROTO") for an err code. */
const char *err_name(int e);
/* Translates an errno value into an err code. */
int err_from_errno(int e);

/* What the scheduler should do with a job that failed. */
enum retry {
	RETRY_NOW = 0,	/* transient, try again at once */
	RETRY_LATER = 1, /* transient, try again after backoff */
	RETRY_NEVER = 2	/* permanent until the account is reconfigured */
};

/* Logging ---------------------------------------------------------------- */

enum log_level { LOG_LVL_WARN = 0, LOG_LVL_INFO = 1, LOG_LVL_DEBUG = 2 };

/* Sets the process name used as prefix and the verbosity. Call once. */
void log_init(const char *proc, enum log_level level);
/* Each takes a printf format; lines should be key=value pairs. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* fatal/fatalx log and exit(1); for cmd/ only. */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Bounded buffer ---------------------------------------------------------- */

/*
 * A growable byte buffer that refuses to grow beyond `max` bytes. The
 * contents are always NUL-terminated (the terminator is not counted in
 * len and not in max). Owned by whoever embeds it; buf_release() frees.
 */
struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void buf_init(struct buf *b, size_t max);
/* Frees the storage; the buffer can be reused after buf_init(). */
void buf_release(struct buf *b);
/* Empties the buffer but keeps its storage. */
void buf_reset(struct buf *b);
/* Appends; ERR_TOOBIG past max, ERR_NOMEM; on error b is unchanged. */
int buf_add(struct buf *b, const void *p, size_t n);
int buf_addstr(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Makes room for n more bytes; ERR_TOOBIG/ERR_NOMEM. */
int buf_reserve(struct buf *b, size_t n);
/* Overwrites the contents with zeros before releasing (for secrets). */
void buf_wipe_release(struct buf *b);

/* Small helpers ----------------------------------------------------------- */

/* Monotonic milliseconds (for deadlines and durations). */
int64_t clock_mono_ms(void);
/* Wall-clock seconds since the epoch (for timestamps stored or sent). */
int64_t clock_wall_s(void);
/* Wall-clock milliseconds since the epoch. */
int64_t clock_wall_ms(void);

/* strdup/strndup that return NULL on OOM; caller frees. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Zeroes n bytes in a way the compiler will not elide. */
void mem_wipe(void *p, size_t n);
/* Parses a decimal unsigned integer with bounds; ERR_INVAL if malformed. */
int parse_u64(const char *s, uint64_t max, uint64_t *v_r);
/* Value of a hexadecimal digit (either case), or -1. */
int hex_digit_val(char c);
/* Copies s into dst of size n, always terminated; ERR_TOOBIG if cut. */
int strlcpy_checked(char *dst, const char *s, size_t n);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
