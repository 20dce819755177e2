/*
 * imap_delta.c: what changed in mailboxes the worker already knows,
 * beside new mail: expunges and renames (called by imap_sync.c).
 *
 *   Renames.  A checkpointed mailbox missing from LIST is an "orphan".
 *             A new mailbox (no checkpoint) whose UIDVALIDITY equals the
 *             UIDVALIDITY of exactly one orphan is that orphan renamed
 *             (Dovecot keeps UIDVALIDITY on RENAME): its mailbox row
 *             carries old_name and it is synced from the orphan's
 *             checkpoint. Orphans sharing a UIDVALIDITY never match.
 *   Scan.     Without QRESYNC, the UIDs 1 .. UIDNEXT-1 of the checkpoint
 *             are scanned in ranges of DELTA_SPAN UIDs (wider for sparse
 *             UID spaces, at most DELTA_MAX_RANGES ranges), DELTA_GROUP
 *             ranges per round trip: per range, UID SEARCH (ESEARCH when
 *             offered) of what still exists, and, without CONDSTORE,
 *             UID FETCH of its flags. Each SEARCH answer becomes one
 *             EXPUNGE_PRESENT row over [from, below) of its range; the
 *             rows of one round trip travel in one batch. Answers are
 *             matched to ranges by order (one SEARCH answer per command,
 *             RFC 3501 7.2.5; RFC 4731 for ESEARCH).
 *   VANISHED. With QRESYNC the VANISHED (EARLIER) sets are joined into
 *             rows of at most DELTA_VANISHED_ROW bytes.
 *
 * Bounds: each range's set text is capped (DELTA_SET_MAX); a range whose
 * answer is larger, unordered or missing sends no row (its expunges wait
 * for a later sync; nothing is deleted on a guess).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync.h"

#define DELTA_SPAN 5000u
#define DELTA_MAX_RANGES 1024u
#define DELTA_GROUP 16u
#define DELTA_SET_MAX (256u * 1024)
#define DELTA_VANISHED_ROW (64u * 1024)

/* Renames ------------------------------------------------------------- */

struct sync_renames {
	const struct proto_job_run *job;
	uint8_t *state; /* per checkpoint: 0 listed, 1 orphan, 2 claimed */
	size_t norphans;
};

static int
name_cmp(const void *a, const void *b)
{
	return (strcmp(*(const char *const *)a, *(const char *const *)b));
}

/* Is the checkpoint's name among the sorted names? */
static bool
listed(const char *const *sorted, size_t n, struct proto_str name)
{
	size_t lo = 0, hi = n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strncmp(sorted[mid], name.p != NULL ? name.p : "",
		    name.len);
		if (c == 0 && sorted[mid][name.len] != '\0') {
			c = 1;
		}
		if (c == 0) {
			return (true);
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return (false);
}

int
sync_renames_new(const struct proto_job_run *job, const char *const *names,
    size_t n, struct sync_renames **r_r)
{
	struct sync_renames *r;
	const char **sorted = NULL;
	size_t i;

	*r_r = NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return (ERR_NOMEM);
	}
	r->job = job;
	r->state = calloc(job->ncheckpoints + 1, 1);
	sorted = calloc(n + 1, sizeof(*sorted));
	if (r->state == NULL || sorted == NULL) {
		free(sorted);
		sync_renames_free(&r);
		return (ERR_NOMEM);
	}
	memcpy(sorted, names, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), name_cmp);
	for (i = 0; i < job->ncheckpoints; i++) {
		const struct proto_checkpoint *cp = &job->checkpoints[i];

		if (cp->uidvalidity != 0 && cp->uidnext != 0 &&
		    !listed(sorted, n, cp->mailbox)) {
			r->state[i] = 1;
			r->norphans++;
		}
	}
	free(sorted);
	*r_r = r;
	return (ERR_OK);
}

const struct proto_checkpoint *
sync_renames_claim(struct sync_renames *r, uint32_t uidvalidity)
{
	size_t i, found = SIZE_MAX;

	if (r == NULL || r->norphans == 0 || uidvalidity == 0) {
		return (NULL);
	}
	for (i = 0; i < r->job->ncheckpoints; i++) {
		if (r->state[i] != 0 &&
		    r->job->checkpoints[i].uidvalidity == uidvalidity) {
			if (found != SIZE_MAX || r->state[i] == 2) {
				return (NULL); /* ambiguous, or taken */
			}
			found = i;
		}
	}
	if (found == SIZE_MAX) {
		return (NULL);
	}
	r->state[found] = 2;
	return (&r->job->checkpoints[found]);
}

void
sync_renames_free(struct sync_renames **r)
{
	if (*r == NULL) {
		return;
	}
	free((*r)->state);
	free(*r);
	*r = NULL;
}

/* Scan ----------------------------------------------------------------- */

struct delta_scan {
	imap_untagged_fn fn; /* everything but SEARCH goes here */
	void *arg;
	const char *mailbox;
	struct sync_result *res;
	struct imap_uidset sets[DELTA_GROUP];
	bool seen[DELTA_GROUP];
	size_t ngroup, nsearch;
};

static int
scan_untagged(const struct imap_resp *r, void *arg)
{
	struct delta_scan *d = arg;
	size_t k;
	int rv;

	if (r->status != IMAP_ST_NONE || r->name == NULL ||
	    (strcmp(r->name, "SEARCH") != 0 &&
	    strcmp(r->name, "ESEARCH") != 0)) {
		return (d->fn(r, d->arg));
	}
	k = d->nsearch++;
	if (k >= d->ngroup) {
		return (ERR_OK); /* more answers than commands: ignored */
	}
	rv = imap_search_collect(r, &d->sets[k]);
	if (rv == ERR_TOOBIG) {
		d->sets[k].unordered = true; /* too big: not used */
		return (ERR_OK);
	}
	if (rv < 0) {
		return (sync_fail(d->res, rv, RETRY_LATER,
		    "malformed SEARCH response in '%s'", d->mailbox));
	}
	d->seen[k] = true;
	return (ERR_OK);
}

/* Sends the group's trustworthy answers as present rows, in batches of at
 * most PROTO_MAX_STR set bytes. */
static int
scan_send(struct delta_scan *d, struct sync_batcher *b,
    const uint32_t *from, const uint32_t *below)
{
	struct proto_expunge_row rows[DELTA_GROUP];
	size_t i, n = 0, bytes = 0;
	int rv;

	for (i = 0; i < d->ngroup; i++) {
		struct imap_uidset *u = &d->sets[i];

		if (!d->seen[i] || u->unordered || imap_uidset_finish(u) != 0) {
			log_info("event=expunge_scan_skipped from=%u below=%u",
			    from[i], below[i]);
			continue;
		}
		if (bytes + u->s.len > PROTO_MAX_STR) {
			rv = sync_batcher_send_expunges(b, rows, n);
			if (rv != 0) {
				return (rv);
			}
			n = bytes = 0;
		}
		memset(&rows[n], 0, sizeof(rows[n]));
		rows[n].mailbox.p = d->mailbox;
		rows[n].mailbox.len = strlen(d->mailbox);
		rows[n].kind = EXPUNGE_PRESENT;
		rows[n].from = from[i];
		rows[n].below = below[i];
		rows[n].uids.p = u->s.data != NULL ? u->s.data : "";
		rows[n].uids.len = u->s.len;
		bytes += u->s.len;
		n++;
	}
	return (sync_batcher_send_expunges(b, rows, n));
}

int
sync_imap_scan_old(struct imap_session *s, struct sync_batcher *b,
    const char *mailbox, uint32_t uidnext, bool flags, bool esearch,
    imap_untagged_fn fn, void *arg, struct sync_result *res)
{
	struct delta_scan d;
	struct imap_cmd cmds[2 * DELTA_GROUP];
	char texts[2 * DELTA_GROUP][96];
	uint32_t from[DELTA_GROUP], below[DELTA_GROUP];
	uint64_t last, span, lo;
	size_t i, nc;
	int rv = ERR_OK;

	if (uidnext <= 1) {
		return (ERR_OK);
	}
	last = (uint64_t)uidnext - 1;
	span = DELTA_SPAN;
	if ((last + span - 1) / span > DELTA_MAX_RANGES) {
		span = (last + DELTA_MAX_RANGES - 1) / DELTA_MAX_RANGES;
	}
	memset(&d, 0, sizeof(d));
	d.fn = fn;
	d.arg = arg;
	d.mailbox = mailbox;
	d.res = res;
	for (lo = 1; lo <= last && rv == 0;) {
		memset(cmds, 0, sizeof(cmds));
		nc = 0;
		d.ngroup = d.nsearch = 0;
		for (i = 0; i < DELTA_GROUP && lo <= last; i++) {
			uint64_t hi = lo + span - 1 < last ? lo + span - 1 : last;

			from[i] = (uint32_t)lo;
			below[i] = (uint32_t)(hi + 1 > UINT32_MAX ? UINT32_MAX
			                                          : hi + 1);
			imap_uidset_init(&d.sets[i], DELTA_SET_MAX);
			d.seen[i] = false;
			d.ngroup++;
			if (flags) {
				snprintf(texts[nc], sizeof(texts[nc]),
				    "UID FETCH %u:%u (UID FLAGS)",
				    (unsigned)lo, (unsigned)hi);
				cmds[nc].text = texts[nc];
				nc++;
			}
			snprintf(texts[nc], sizeof(texts[nc]),
			    "UID SEARCH %sUID %u:%u",
			    esearch ? "RETURN (ALL) " : "", (unsigned)lo,
			    (unsigned)hi);
			cmds[nc].text = texts[nc];
			nc++;
			lo = hi + 1;
		}
		rv = imap_session_run(s, cmds, nc, scan_untagged, &d, res);
		for (i = 0; rv == 0 && i < nc; i++) {
			if (cmds[i].status != IMAP_ST_OK) {
				rv = sync_fail(res, ERR_SERVER, RETRY_LATER,
				    "'%s' in '%s': %s", cmds[i].text, mailbox,
				    cmds[i].resp_text);
			}
		}
		if (rv == 0) {
			rv = scan_send(&d, b, from, below);
			if (rv != 0) {
				rv = sync_fail(res, rv, RETRY_LATER,
				    "sending results to the store: %s",
				    err_str(rv));
			}
		}
		for (i = 0; i < d.ngroup; i++) {
			imap_uidset_release(&d.sets[i]);
		}
	}
	return (rv);
}

/* VANISHED ------------------------------------------------------------- */

int
sync_vanished_flush(struct sync_batcher *b, const char *mailbox,
    struct buf *v)
{
	struct proto_expunge_row row;
	int rv;

	if (v->len == 0) {
		return (ERR_OK);
	}
	memset(&row, 0, sizeof(row));
	row.mailbox.p = mailbox;
	row.mailbox.len = strlen(mailbox);
	row.kind = EXPUNGE_VANISHED;
	row.uids.p = v->data;
	row.uids.len = v->len;
	rv = sync_batcher_send_expunges(b, &row, 1);
	buf_reset(v);
	return (rv);
}

int
sync_vanished_add(struct sync_batcher *b, const char *mailbox,
    struct buf *v, const char *set, size_t len)
{
	int rv;

	if (v->len > 0 && v->len + 1 + len > DELTA_VANISHED_ROW) {
		rv = sync_vanished_flush(b, mailbox, v);
		if (rv != 0) {
			return (rv);
		}
	}
	return (buf_printf(v, "%s%.*s", v->len > 0 ? "," : "", (int)len,
	    set));
}
