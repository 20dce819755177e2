/*
 * pkg/queue: the scheduler's state machine, pure: no I/O, no clock reads,
 * no randomness of its own. Time (unix ms) and random numbers are passed
 * in, so every decision is reproducible in a unit test.
 */
#ifndef MAILSYNC_QUEUE_H
#define MAILSYNC_QUEUE_H

#include <stdint.h>

#define QUEUE_BACKOFF_MIN_MS 5000
#define QUEUE_BACKOFF_MAX_MS 300000

/*
 * Delay before retrying after `failures` consecutive failures (>= 1):
 * 5 s doubling up to 300 s, with "equal jitter": the result lies in
 * [d/2, d] where d is the capped exponential, chosen by rand32.
 * failures == 0 returns 0. Used by the scheduler and by the store.
 */
int64_t queue_backoff_ms(uint32_t failures, uint32_t rand32);

#endif
