/*
 * map.c: pkg/queue's uint64 id -> uint32 slot hash map. Open addressing
 * with linear probing and backward-shift deletion (no tombstones), load
 * factor at most 1/2, so lookups stay O(1) with tens of thousands of
 * accounts and jobs. Key 0 marks a free cell (store ids start at 1).
 */
#include <stdlib.h>

#include "base/base.h"
#include "queue/queue_int.h"

static size_t
map_hash(uint64_t k, size_t mask)
{
	/* splitmix64 finaliser: ids are sequential, spread them. */
	k ^= k >> 30;
	k *= 0xbf58476d1ce4e5b9ULL;
	k ^= k >> 27;
	k *= 0x94d049bb133111ebULL;
	k ^= k >> 31;
	return ((size_t)k & mask);
}

void
queue_map_init(struct queue_map *m)
{
	m->keys = NULL;
	m->vals = NULL;
	m->cap = 0;
	m->n = 0;
}

void
queue_map_release(struct queue_map *m)
{
	free(m->keys);
	free(m->vals);
	queue_map_init(m);
}

int
queue_map_reserve(struct queue_map *m, size_t n)
{
	struct queue_map nm;
	size_t cap = 16, i;

	while (cap < 2 * n) {
		cap *= 2;
	}
	if (cap <= m->cap) {
		return (0);
	}
	nm.keys = calloc(cap, sizeof(*nm.keys));
	nm.vals = calloc(cap, sizeof(*nm.vals));
	if (nm.keys == NULL || nm.vals == NULL) {
		free(nm.keys);
		free(nm.vals);
		return (ERR_NOMEM);
	}
	nm.cap = cap;
	nm.n = 0;
	for (i = 0; i < m->cap; i++) {
		if (m->keys[i] != 0) {
			queue_map_put(&nm, m->keys[i], m->vals[i]);
		}
	}
	free(m->keys);
	free(m->vals);
	*m = nm;
	return (0);
}

void
queue_map_put(struct queue_map *m, uint64_t key, uint32_t val)
{
	size_t mask = m->cap - 1, i;

	for (i = map_hash(key, mask);; i = (i + 1) & mask) {
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return;
		}
		if (m->keys[i] == 0) {
			m->keys[i] = key;
			m->vals[i] = val;
			m->n++;
			return;
		}
	}
}

bool
queue_map_get(const struct queue_map *m, uint64_t key, uint32_t *val_r)
{
	size_t mask = m->cap - 1, i;

	if (m->cap == 0 || key == 0) {
		return (false);
	}
	for (i = map_hash(key, mask); m->keys[i] != 0; i = (i + 1) & mask) {
		if (m->keys[i] == key) {
			*val_r = m->vals[i];
			return (true);
		}
	}
	return (false);
}

void
queue_map_del(struct queue_map *m, uint64_t key)
{
	size_t mask = m->cap - 1, i, j, h;

	if (m->cap == 0 || key == 0) {
		return;
	}
	for (i = map_hash(key, mask); m->keys[i] != key; i = (i + 1) & mask) {
		if (m->keys[i] == 0) {
			return;
		}
	}
	/* Backward shift: pull later cells of the cluster into the hole
	 * when their home slot is not in (hole, cell]. */
	j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (m->keys[j] == 0) {
			break;
		}
		h = map_hash(m->keys[j], mask);
		if ((j > i && (h <= i || h > j))
		    || (j < i && h <= i && h > j)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = 0;
	m->vals[i] = 0;
	m->n--;
}
