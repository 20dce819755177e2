/*
 * backoff.c: the retry delay shared by the scheduler (lease expiry, no
 * worker) and the store (failed attempts): exponential from 5 s to 300 s
 * with "equal jitter", pure (the random number is passed in).
 */
#include "queue/queue.h"

int64_t
queue_backoff_ms(uint32_t failures, uint32_t rand32)
{
	int64_t d = QUEUE_BACKOFF_MIN_MS;
	int64_t half;
	uint32_t i;

	if (failures == 0) {
		return (0);
	}
	for (i = 1; i < failures && d < QUEUE_BACKOFF_MAX_MS; i++) {
		d *= 2;
	}
	if (d > QUEUE_BACKOFF_MAX_MS) {
		d = QUEUE_BACKOFF_MAX_MS;
	}
	half = d / 2;
	/* Uniform enough over [d/2, d]: d/2 + 1 <= 150001 << 2^32. */
	return (half + (int64_t)(rand32 % (uint32_t)(d - half + 1)));
}
