/*
 * util.c: clocks and the small string helpers that replace the unsafe libc
 * ones the house style bans (atoi, strcpy, ...).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"

int64_t
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

int64_t
clock_wall_s(void)
{
	return ((int64_t)time(NULL));
}

int64_t
clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

char *
xstrdup(const char *s)
{
	return (s != NULL ? strdup(s) : NULL);
}

char *
xstrndup(const char *s, size_t n)
{
	char *p;

	p = malloc(n + 1);
	if (p == NULL) {
		return (NULL);
	}
	memcpy(p, s, n);
	p[n] = '\0';
	return (p);
}

/* explicit_bzero is memset's speed with a barrier the optimiser keeps;
 * the byte loop it replaces cost 4% of a worker's header sync. */
void
mem_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0) {
		explicit_bzero(p, n);
	}
}

int
parse_u64(const char *s, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;
	const char *p;

	if (s == NULL || *s == '\0') {
		return (ERR_INVAL);
	}
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			return (ERR_INVAL);
		}
		if (v > (max - (uint64_t)(*p - '0')) / 10) {
			return (ERR_INVAL);
		}
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*v_r = v;
	return (ERR_OK);
}

int
strlcpy_checked(char *dst, const char *s, size_t n)
{
	size_t len = strlen(s);

	if (n == 0) {
		return (ERR_TOOBIG);
	}
	if (len >= n) {
		memcpy(dst, s, n - 1);
		dst[n - 1] = '\0';
		return (ERR_TOOBIG);
	}
	memcpy(dst, s, len + 1);
	return (ERR_OK);
}

int
hex_digit_val(char c)
{
	if (c >= '0' && c <= '9') {
		return (c - '0');
	}
	if (c >= 'A' && c <= 'F') {
		return (c - 'A' + 10);
	}
	if (c >= 'a' && c <= 'f') {
		return (c - 'a' + 10);
	}
	return (-1);
}
