/*
 * pkg/metrics: a small Prometheus registry (counters, gauges, histograms
 * with fixed buckets, at most two labels per family), its text exposition
 * format 0.0.4, and an HTTP server (nng's) answering GET /metrics.
 *
 * Threads: the deliberate exception to "one owner thread per process".
 * The HTTP handler runs on nng's threads and renders while the owner
 * thread updates, so the registry has one mutex taken by every call below
 * (updates are a lock, a short search and an add: cheap at our rates).
 *
 * Ownership: the registry owns its families; a struct metrics_family *
 * is a borrowed handle valid until metrics_free(). Names, help texts and
 * label values passed in are copied.
 */
#ifndef MAILSYNC_METRICS_H
#define MAILSYNC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define METRICS_MAX_LABELS 2
#define METRICS_MAX_SERIES 1000 /* label combinations per family */
#define METRICS_MAX_BUCKETS 40 /* per histogram, +Inf not counted */
#define METRICS_MAX_VALUE_LEN 256 /* bytes of one label value */
#define METRICS_MAX_TEXT (8u << 20) /* one rendering */

enum metrics_type {
	METRICS_COUNTER = 0,
	METRICS_GAUGE = 1,
	METRICS_HISTOGRAM = 2
};

struct metrics;
struct metrics_family;

/* Default histogram buckets (seconds), 0.005 .. 300, roughly x2-x2.5:
 * returns a static array and its length in *n_r. */
const double *metrics_default_buckets(size_t *n_r);

/* Allocates an empty registry (*m_r); ERR_NOMEM. */
int metrics_new(struct metrics **m_r);
/* Frees the registry and its families; *m = NULL. Stop any HTTP server
 * using it first. NULL is fine. */
void metrics_free(struct metrics **m);

/*
 * Registers a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, label
 * names [a-zA-Z_][a-zA-Z0-9_]* (not "__*", not "le" for histograms);
 * label1/label2 may be NULL (label2 only if label1 is set). help is any
 * text. For histograms, bounds are finite and strictly increasing
 * (1..METRICS_MAX_BUCKETS of them; NULL/0 = default buckets); the +Inf
 * bucket is implicit. A family without labels has its one series (at 0)
 * from the start. *f_r is a borrowed handle.
 * Returns 0, ERR_INVAL, ERR_EXISTS (same name twice), ERR_NOMEM.
 */
int metrics_counter(struct metrics *m, const char *name, const char *help,
    const char *label1, const char *label2, struct metrics_family **f_r);
int metrics_gauge(struct metrics *m, const char *name, const char *help,
    const char *label1, const char *label2, struct metrics_family **f_r);
int metrics_histogram(struct metrics *m, const char *name, const char *help,
    const char *label1, const char *label2, const double *bounds,
    size_t nbounds, struct metrics_family **f_r);

/*
 * Updates the series with label values v1, v2 (given exactly for the
 * family's labels, NULL for the others; any bytes up to
 * METRICS_MAX_VALUE_LEN, escaped on output), creating it on first use.
 * Returns 0, ERR_INVAL (wrong type, wrong number of values, negative
 * counter increment, NaN), ERR_TOOBIG (value too long, or more than
 * METRICS_MAX_SERIES series), ERR_NOMEM.
 *   metrics_add:     counter or gauge, += by.
 *   metrics_set:     gauge, = v.
 *   metrics_observe: histogram, one observation of v.
 */
int metrics_add(
    struct metrics_family *f, const char *v1, const char *v2, double by);
int metrics_set(
    struct metrics_family *f, const char *v1, const char *v2, double v);
int metrics_observe(
    struct metrics_family *f, const char *v1, const char *v2, double v);

/*
 * Appends the whole registry to out in the Prometheus text format 0.0.4
 * (families in registration order, series in creation order).
 * ERR_TOOBIG/ERR_NOMEM from out; out may then hold a partial text.
 */
int metrics_render(struct metrics *m, struct buf *out);

/* HTTP ---------------------------------------------------------------- */

struct metrics_http;

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4"

/*
 * Serves GET /metrics on hostport ("127.0.0.1:9464", "[::1]:9464"; port 0
 * picks a free one) from nng's HTTP server; other paths get 404. m is
 * borrowed and must outlive the server. *h_r: free with
 * metrics_http_stop(). Returns 0, ERR_INVAL (bad hostport), ERR_IO (bind
 * failed, detail in errbuf), ERR_NOMEM.
 */
int metrics_http_start(struct metrics *m, const char *hostport,
    struct metrics_http **h_r, char *errbuf, size_t errlen);
/* The TCP port actually bound. */
int metrics_http_port(const struct metrics_http *h);
/* Stops serving and frees *h; *h = NULL. NULL is fine. */
void metrics_http_stop(struct metrics_http **h);

#endif
