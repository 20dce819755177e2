/*
 * buf.c: a growable byte buffer with a ceiling fixed at init. Every buffer
 * fed by a peer is one of these, so no peer can make us allocate more than
 * the limit its owner chose.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
buf_release(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_wipe_release(struct buf *b)
{
	if (b->data != NULL) {
		mem_wipe(b->data, b->cap);
	}
	buf_release(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL) {
		b->data[0] = '\0';
	}
}

int
buf_reserve(struct buf *b, size_t n)
{
	size_t want, ncap;
	char *p;

	if (n > b->max || b->len > b->max - n) {
		return (ERR_TOOBIG);
	}
	want = b->len + n + 1;
	if (want <= b->cap) {
		return (ERR_OK);
	}
	ncap = b->cap != 0 ? b->cap : 256;
	while (ncap < want) {
		ncap *= 2;
	}
	if (ncap > b->max + 1) {
		ncap = b->max + 1;
	}
	p = realloc(b->data, ncap);
	if (p == NULL) {
		return (ERR_NOMEM);
	}
	b->data = p;
	b->cap = ncap;
	return (ERR_OK);
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	int rv;

	rv = buf_reserve(b, n);
	if (rv != 0) {
		return (rv);
	}
	if (n > 0) {
		memcpy(b->data + b->len, p, n);
	}
	b->len += n;
	b->data[b->len] = '\0';
	return (ERR_OK);
}

int
buf_addstr(struct buf *b, const char *s)
{
	return (buf_add(b, s, strlen(s)));
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rv;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		return (ERR_INVAL);
	}
	rv = buf_reserve(b, (size_t)n);
	if (rv != 0) {
		return (rv);
	}
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return (ERR_OK);
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}
