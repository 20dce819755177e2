/*
 * heap.c: pkg/queue's indexed binary min-heap. Entries carry three keys
 * compared in order and the slot of their owner; every move is reported
 * through setpos so the owner can later remove or re-key its entry in
 * O(log n). Capacity is reserved by the caller, so push never fails.
 */
#include <stdlib.h>

#include "base/base.h"
#include "queue/queue_int.h"

static bool
heap_less(const struct queue_heap_ent *a, const struct queue_heap_ent *b)
{
	if (a->k1 != b->k1) {
		return (a->k1 < b->k1);
	}
	if (a->k2 != b->k2) {
		return (a->k2 < b->k2);
	}
	return (a->k3 < b->k3);
}

static void
heap_place(struct queue_heap *h, size_t i, struct queue_heap_ent e)
{
	h->v[i] = e;
	h->setpos(h->ctx, e.slot, (uint32_t)i);
}

static void
heap_up(struct queue_heap *h, size_t i)
{
	struct queue_heap_ent e = h->v[i];

	while (i > 0 && heap_less(&e, &h->v[(i - 1) / 2])) {
		heap_place(h, i, h->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_place(h, i, e);
}

static void
heap_down(struct queue_heap *h, size_t i)
{
	struct queue_heap_ent e = h->v[i];
	size_t c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= h->n) {
			break;
		}
		if (c + 1 < h->n && heap_less(&h->v[c + 1], &h->v[c])) {
			c++;
		}
		if (!heap_less(&h->v[c], &e)) {
			break;
		}
		heap_place(h, i, h->v[c]);
		i = c;
	}
	heap_place(h, i, e);
}

void
queue_heap_init(struct queue_heap *h,
    void (*setpos)(void *ctx, uint32_t slot, uint32_t pos), void *ctx)
{
	h->v = NULL;
	h->n = 0;
	h->cap = 0;
	h->setpos = setpos;
	h->ctx = ctx;
}

void
queue_heap_release(struct queue_heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = 0;
	h->cap = 0;
}

int
queue_heap_reserve(struct queue_heap *h, size_t n)
{
	struct queue_heap_ent *v;
	size_t cap = h->cap == 0 ? 16 : h->cap;

	if (n <= h->cap) {
		return (0);
	}
	while (cap < n) {
		cap *= 2;
	}
	v = realloc(h->v, cap * sizeof(*v));
	if (v == NULL) {
		return (ERR_NOMEM);
	}
	h->v = v;
	h->cap = cap;
	return (0);
}

void
queue_heap_push(struct queue_heap *h, struct queue_heap_ent e)
{
	h->v[h->n] = e;
	h->n++;
	heap_up(h, h->n - 1);
}

void
queue_heap_remove(struct queue_heap *h, uint32_t pos)
{
	size_t i = pos;

	h->n--;
	if (i == h->n) {
		return;
	}
	h->v[i] = h->v[h->n];
	if (i > 0 && heap_less(&h->v[i], &h->v[(i - 1) / 2])) {
		heap_up(h, i);
	} else {
		heap_down(h, i);
	}
}

const struct queue_heap_ent *
queue_heap_top(const struct queue_heap *h)
{
	return (h->n > 0 ? &h->v[0] : NULL);
}
