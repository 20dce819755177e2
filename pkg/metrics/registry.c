/*
 * registry.c: pkg/metrics' registry of metric families and their series,
 * and its rendering in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 * One mutex guards everything: the HTTP handler renders on nng's threads
 * while the owner thread updates (see metrics.h).
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

struct metrics_series {
	char *values[METRICS_MAX_LABELS]; /* NULL past the family's labels */
	double value; /* counter, gauge; histogram: sum */
	uint64_t count; /* histogram */
	uint64_t *buckets; /* histogram: per bucket, +Inf last */
};

struct metrics_family {
	struct metrics *reg;
	enum metrics_type type;
	char *name;
	char *help;
	char *labels[METRICS_MAX_LABELS];
	size_t nlabels;
	double *bounds;
	size_t nbounds;
	struct metrics_series *series;
	size_t nseries;
	size_t cap;
};

struct metrics {
	pthread_mutex_t mu;
	struct metrics_family **fams;
	size_t nfams;
	size_t cap;
};

static const double default_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
	0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };

const double *
metrics_default_buckets(size_t *n_r)
{
	*n_r = ARRAY_LEN(default_buckets);
	return (default_buckets);
}

int
metrics_new(struct metrics **m_r)
{
	struct metrics *m;

	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		return (ERR_NOMEM);
	}
	if (pthread_mutex_init(&m->mu, NULL) != 0) {
		free(m);
		return (ERR_NOMEM);
	}
	*m_r = m;
	return (0);
}

static void
series_release(struct metrics_series *s)
{
	size_t i;

	for (i = 0; i < METRICS_MAX_LABELS; i++) {
		free(s->values[i]);
	}
	free(s->buckets);
}

static void
family_free(struct metrics_family *f)
{
	size_t i;

	if (f == NULL) {
		return;
	}
	for (i = 0; i < f->nseries; i++) {
		series_release(&f->series[i]);
	}
	free(f->series);
	for (i = 0; i < METRICS_MAX_LABELS; i++) {
		free(f->labels[i]);
	}
	free(f->bounds);
	free(f->name);
	free(f->help);
	free(f);
}

void
metrics_free(struct metrics **m)
{
	size_t i;

	if (m == NULL || *m == NULL) {
		return;
	}
	for (i = 0; i < (*m)->nfams; i++) {
		family_free((*m)->fams[i]);
	}
	free((*m)->fams);
	pthread_mutex_destroy(&(*m)->mu);
	free(*m);
	*m = NULL;
}

/* Registration -------------------------------------------------------- */

static bool
valid_name(const char *s, bool colon)
{
	const char *p;

	if (s == NULL || *s == '\0' || strlen(s) > 200) {
		return (false);
	}
	for (p = s; *p != '\0'; p++) {
		bool alpha = (*p >= 'a' && *p <= 'z')
		    || (*p >= 'A' && *p <= 'Z') || *p == '_'
		    || (colon && *p == ':');

		if (!alpha && !(p != s && *p >= '0' && *p <= '9')) {
			return (false);
		}
	}
	return (true);
}

static bool
valid_label(const char *s, enum metrics_type type)
{
	if (!valid_name(s, false) || strncmp(s, "__", 2) == 0) {
		return (false);
	}
	return (type != METRICS_HISTOGRAM || strcmp(s, "le") != 0);
}

static int series_new(struct metrics_family *f, const char *v1, const char *v2,
    struct metrics_series **s_r);

static int
family_add(struct metrics *m, enum metrics_type type, const char *name,
    const char *help, const char *l1, const char *l2, const double *bounds,
    size_t nbounds, struct metrics_family **f_r)
{
	struct metrics_family *f = NULL, **fams;
	struct metrics_series *s;
	const char *labels[METRICS_MAX_LABELS] = { l1, l2 };
	size_t i;
	int rv;

	if (!valid_name(name, true) || (l1 == NULL && l2 != NULL)
	    || (l1 != NULL && !valid_label(l1, type))
	    || (l2 != NULL
	        && (!valid_label(l2, type) || strcmp(l1, l2) == 0))) {
		return (ERR_INVAL);
	}
	if (type == METRICS_HISTOGRAM) {
		if (bounds == NULL || nbounds == 0) {
			bounds = metrics_default_buckets(&nbounds);
		}
		if (nbounds > METRICS_MAX_BUCKETS) {
			return (ERR_INVAL);
		}
		for (i = 0; i < nbounds; i++) {
			if (!isfinite(bounds[i])
			    || (i > 0 && bounds[i] <= bounds[i - 1])) {
				return (ERR_INVAL);
			}
		}
	}
	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->nfams; i++) {
		if (strcmp(m->fams[i]->name, name) == 0) {
			rv = ERR_EXISTS;
			goto fail;
		}
	}
	rv = ERR_NOMEM;
	if (m->nfams == m->cap) {
		size_t cap = m->cap == 0 ? 16 : 2 * m->cap;

		fams = realloc(m->fams, cap * sizeof(*fams));
		if (fams == NULL) {
			goto fail;
		}
		m->fams = fams;
		m->cap = cap;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		goto fail;
	}
	f->reg = m;
	f->type = type;
	f->name = xstrdup(name);
	f->help = xstrdup(help != NULL ? help : "");
	if (f->name == NULL || f->help == NULL) {
		goto fail;
	}
	for (i = 0; i < METRICS_MAX_LABELS && labels[i] != NULL; i++) {
		f->labels[i] = xstrdup(labels[i]);
		if (f->labels[i] == NULL) {
			goto fail;
		}
		f->nlabels++;
	}
	if (type == METRICS_HISTOGRAM) {
		f->bounds = malloc(nbounds * sizeof(*f->bounds));
		if (f->bounds == NULL) {
			goto fail;
		}
		memcpy(f->bounds, bounds, nbounds * sizeof(*f->bounds));
		f->nbounds = nbounds;
	}
	if (f->nlabels == 0) {
		rv = series_new(f, NULL, NULL, &s);
		if (rv != 0) {
			goto fail;
		}
	}
	m->fams[m->nfams++] = f;
	pthread_mutex_unlock(&m->mu);
	*f_r = f;
	return (0);
fail:
	pthread_mutex_unlock(&m->mu);
	family_free(f);
	return (rv);
}

int
metrics_counter(struct metrics *m, const char *name, const char *help,
    const char *label1, const char *label2, struct metrics_family **f_r)
{
	return (family_add(
	    m, METRICS_COUNTER, name, help, label1, label2, NULL, 0, f_r));
}

int
metrics_gauge(struct metrics *m, const char *name, const char *help,
    const char *label1, const char *label2, struct metrics_family **f_r)
{
	return (family_add(
	    m, METRICS_GAUGE, name, help, label1, label2, NULL, 0, f_r));
}

int
metrics_histogram(struct metrics *m, const char *name, const char *help,
    const char *label1, const char *label2, const double *bounds,
    size_t nbounds, struct metrics_family **f_r)
{
	return (family_add(m, METRICS_HISTOGRAM, name, help, label1, label2,
	    bounds, nbounds, f_r));
}

/* Series --------------------------------------------------------------- */

/* Appends a new series; called with the lock held. */
static int
series_new(struct metrics_family *f, const char *v1, const char *v2,
    struct metrics_series **s_r)
{
	struct metrics_series *s, *arr;
	const char *vals[METRICS_MAX_LABELS] = { v1, v2 };
	size_t i;

	if (f->nseries >= METRICS_MAX_SERIES) {
		return (ERR_TOOBIG);
	}
	if (f->nseries == f->cap) {
		size_t cap = f->cap == 0 ? 4 : 2 * f->cap;

		arr = realloc(f->series, cap * sizeof(*arr));
		if (arr == NULL) {
			return (ERR_NOMEM);
		}
		f->series = arr;
		f->cap = cap;
	}
	s = &f->series[f->nseries];
	memset(s, 0, sizeof(*s));
	for (i = 0; i < f->nlabels; i++) {
		s->values[i] = xstrdup(vals[i]);
		if (s->values[i] == NULL) {
			goto fail;
		}
	}
	if (f->type == METRICS_HISTOGRAM) {
		s->buckets = calloc(f->nbounds + 1, sizeof(*s->buckets));
		if (s->buckets == NULL) {
			goto fail;
		}
	}
	f->nseries++;
	*s_r = s;
	return (0);
fail:
	series_release(s);
	return (ERR_NOMEM);
}

/* Finds or creates the series for (v1, v2); called with the lock held. */
static int
series_get(struct metrics_family *f, const char *v1, const char *v2,
    struct metrics_series **s_r)
{
	const char *vals[METRICS_MAX_LABELS] = { v1, v2 };
	struct metrics_series *s;
	size_t i, k;

	for (k = 0; k < METRICS_MAX_LABELS; k++) {
		if ((k < f->nlabels) != (vals[k] != NULL)) {
			return (ERR_INVAL);
		}
		if (vals[k] != NULL
		    && strnlen(vals[k], METRICS_MAX_VALUE_LEN + 1)
		        > METRICS_MAX_VALUE_LEN) {
			return (ERR_TOOBIG);
		}
	}
	for (i = 0; i < f->nseries; i++) {
		s = &f->series[i];
		for (k = 0; k < f->nlabels; k++) {
			if (strcmp(s->values[k], vals[k]) != 0) {
				break;
			}
		}
		if (k == f->nlabels) {
			*s_r = s;
			return (0);
		}
	}
	return (series_new(f, v1, v2, s_r));
}

static int
update(struct metrics_family *f, const char *v1, const char *v2,
    enum metrics_type type, int op, double v)
{
	struct metrics_series *s;
	size_t i;
	int rv;

	if (f->type != type) {
		return (ERR_INVAL);
	}
	if (isnan(v) || (f->type == METRICS_COUNTER && v < 0)) {
		return (ERR_INVAL);
	}
	pthread_mutex_lock(&f->reg->mu);
	rv = series_get(f, v1, v2, &s);
	if (rv != 0) {
		goto out;
	}
	switch (op) {
	case 0: /* add */
		s->value += v;
		break;
	case 1: /* set */
		s->value = v;
		break;
	default: /* observe */
		for (i = 0; i < f->nbounds && v > f->bounds[i]; i++) {
			continue;
		}
		s->buckets[i]++;
		s->count++;
		s->value += v;
		break;
	}
out:
	pthread_mutex_unlock(&f->reg->mu);
	return (rv);
}

int
metrics_add(
    struct metrics_family *f, const char *v1, const char *v2, double by)
{
	/* A gauge may go down; a counter may not (checked in update). */
	return (update(f, v1, v2,
	    f->type == METRICS_GAUGE ? METRICS_GAUGE : METRICS_COUNTER, 0,
	    by));
}

int
metrics_set(struct metrics_family *f, const char *v1, const char *v2, double v)
{
	return (update(f, v1, v2, METRICS_GAUGE, 1, v));
}

int
metrics_observe(
    struct metrics_family *f, const char *v1, const char *v2, double v)
{
	return (update(f, v1, v2, METRICS_HISTOGRAM, 2, v));
}

/* Rendering ------------------------------------------------------------ */

/* A float as Prometheus reads it: shortest form that round-trips. */
static int
put_double(struct buf *b, double v)
{
	char tmp[40];
	int prec;

	if (isnan(v)) {
		return (buf_addstr(b, "NaN"));
	}
	if (isinf(v)) {
		return (buf_addstr(b, v > 0 ? "+Inf" : "-Inf"));
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		/* Integers in full ("120", not "1.2e+02"). */
		return (buf_printf(b, "%.0f", v));
	}
	for (prec = 1; prec < 17; prec++) {
		(void)snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v) {
			break;
		}
	}
	(void)snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
	return (buf_addstr(b, tmp));
}

/* HELP text escapes \ and newline; label values also escape ". */
static int
put_escaped(struct buf *b, const char *s, bool quote)
{
	const char *p, *run = s;
	int rv = 0;

	for (p = s; *p != '\0' && rv == 0; p++) {
		const char *rep = NULL;

		if (*p == '\\') {
			rep = "\\\\";
		} else if (*p == '\n') {
			rep = "\\n";
		} else if (quote && *p == '"') {
			rep = "\\\"";
		}
		if (rep != NULL) {
			rv = buf_add(b, run, (size_t)(p - run));
			if (rv == 0) {
				rv = buf_addstr(b, rep);
			}
			run = p + 1;
		}
	}
	if (rv == 0) {
		rv = buf_add(b, run, (size_t)(p - run));
	}
	return (rv);
}

/* name<suffix>{l1="v1",l2="v2",le="x"}; braces only when needed. */
static int
put_series_name(struct buf *b, const struct metrics_family *f,
    const struct metrics_series *s, const char *suffix, const char *le)
{
	size_t k;
	int rv;

	rv = buf_printf(b, "%s%s", f->name, suffix);
	if (rv != 0 || (f->nlabels == 0 && le == NULL)) {
		return (rv);
	}
	rv = buf_addstr(b, "{");
	for (k = 0; k < f->nlabels && rv == 0; k++) {
		rv = buf_printf(b, "%s%s=\"", k > 0 ? "," : "", f->labels[k]);
		if (rv == 0) {
			rv = put_escaped(b, s->values[k], true);
		}
		if (rv == 0) {
			rv = buf_addstr(b, "\"");
		}
	}
	if (rv == 0 && le != NULL) {
		rv = buf_printf(
		    b, "%sle=\"%s\"", f->nlabels > 0 ? "," : "", le);
	}
	if (rv == 0) {
		rv = buf_addstr(b, "}");
	}
	return (rv);
}

static int
put_sample(struct buf *b, const struct metrics_family *f,
    const struct metrics_series *s, const char *suffix, const char *le,
    double v)
{
	int rv;

	rv = put_series_name(b, f, s, suffix, le);
	if (rv == 0) {
		rv = buf_addstr(b, " ");
	}
	if (rv == 0) {
		rv = put_double(b, v);
	}
	if (rv == 0) {
		rv = buf_addstr(b, "\n");
	}
	return (rv);
}

static int
render_histogram(struct buf *b, const struct metrics_family *f,
    const struct metrics_series *s)
{
	struct buf le;
	uint64_t cum = 0;
	size_t i;
	int rv = 0;

	buf_init(&le, 64);
	for (i = 0; i <= f->nbounds && rv == 0; i++) {
		cum += s->buckets[i];
		buf_reset(&le);
		if (i < f->nbounds) {
			rv = put_double(&le, f->bounds[i]);
		} else {
			rv = buf_addstr(&le, "+Inf");
		}
		if (rv == 0) {
			rv = put_sample(
			    b, f, s, "_bucket", le.data, (double)cum);
		}
	}
	buf_release(&le);
	if (rv == 0) {
		rv = put_sample(b, f, s, "_sum", NULL, s->value);
	}
	if (rv == 0) {
		rv = put_sample(b, f, s, "_count", NULL, (double)s->count);
	}
	return (rv);
}

static const char *
type_name(enum metrics_type t)
{
	switch (t) {
	case METRICS_COUNTER:
		return ("counter");
	case METRICS_GAUGE:
		return ("gauge");
	default:
		return ("histogram");
	}
}

int
metrics_render(struct metrics *m, struct buf *out)
{
	const struct metrics_family *f;
	size_t i, j;
	int rv = 0;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->nfams && rv == 0; i++) {
		f = m->fams[i];
		rv = buf_printf(out, "# HELP %s ", f->name);
		if (rv == 0) {
			rv = put_escaped(out, f->help, false);
		}
		if (rv == 0) {
			rv = buf_printf(out, "\n# TYPE %s %s\n", f->name,
			    type_name(f->type));
		}
		for (j = 0; j < f->nseries && rv == 0; j++) {
			if (f->type == METRICS_HISTOGRAM) {
				rv = render_histogram(out, f, &f->series[j]);
			} else {
				rv = put_sample(out, f, &f->series[j], "",
				    NULL, f->series[j].value);
			}
		}
	}
	pthread_mutex_unlock(&m->mu);
	return (rv);
}
