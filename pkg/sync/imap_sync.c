/*
 * imap_sync.c: the IMAP sync job.
 *
 *   1. LIST every mailbox (with SPECIAL-USE roles when offered).
 *   2. For each selectable mailbox, EXAMINE it (read-only, so syncing
 *      never changes \Recent or \Seen) and compare UIDVALIDITY, UIDNEXT
 *      and HIGHESTMODSEQ with the job's checkpoint:
 *        - no checkpoint, or UIDVALIDITY changed (then `reset`): fetch
 *          every message in full;
 *        - nothing moved (CONDSTORE): fetch nothing;
 *        - otherwise, pipelined: full items for UIDs >= the old UIDNEXT,
 *          flags for the older ones (only those changed since the old
 *          HIGHESTMODSEQ when CONDSTORE is offered).
 *   3. Stream every FETCH response as a row into the batcher, and report
 *      the new checkpoints and the complete mailbox list at the end.
 *
 * Cheap no-change syncs: with CONDSTORE, the LIST also returns every
 * mailbox's STATUS (LIST-STATUS, else one pipelined round of STATUS), and
 * a mailbox whose UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ equal the
 * checkpoint is not opened at all.
 *
 * Expunges: with QRESYNC, EXAMINE carries the checkpoint and the server
 * answers VANISHED (EARLIER) plus the changed flags; without it, UID
 * SEARCH lists the UIDs still present below the old UIDNEXT, range by
 * range (with each range's flags when there is no CONDSTORE). Both
 * become bounded expunge rows (imap_delta.c, pkg/store/expunge.c).
 *
 * Renames: a new mailbox with the UIDVALIDITY of exactly one mailbox gone
 * from LIST is that mailbox renamed: its row carries old_name and it is
 * synced from the old checkpoint (imap_delta.c).
 *
 * A first sync of INBOX opens it in the LIST's round trip, before the
 * LIST: Dovecot with a mailbox list index re-reads a maildir's whole
 * uidlist and directory on every open that follows a LIST in the same
 * session (100,000 messages: LIST-STATUS 62 ms and EXAMINE 50 ms after
 * it, against 7 ms and 1 ms the other way round; docs/performance.md).
 * Later syncs keep the order above: an unchanged INBOX is never opened.
 *
 * Checkpoints are computed from what the server said before the fetch,
 * so a message that arrives meanwhile is fetched again next time rather
 * than skipped: re-fetching is harmless (upserts), skipping is not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sync.h"

_Static_assert(IMAP_FLAG_SEEN == PROTO_FLAG_SEEN &&
	IMAP_FLAG_ANSWERED == PROTO_FLAG_ANSWERED &&
	IMAP_FLAG_FLAGGED == PROTO_FLAG_FLAGGED &&
	IMAP_FLAG_DELETED == PROTO_FLAG_DELETED &&
	IMAP_FLAG_DRAFT == PROTO_FLAG_DRAFT,
    "IMAP and proto flag bits must agree");

#define FULL_ITEMS "UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE"

/*
 * LIST-STATUS (one round trip) or LIST then one pipelined round of STATUS:
 * on Dovecot 2.3 with ten mailboxes LIST-STATUS measured 0.73-0.78 ms
 * against 0.84-0.92 ms, and the same 12 ms for a whole no-change job, so
 * it is used when offered.
 */
#define LIST_STATUS_PREFERRED true

struct isync_mbx {
	struct imap_list_item item;
	bool gone; /* EXAMINE said NO: vanished since LIST */
	bool has_st; /* STATUS seen for it (LIST-STATUS or STATUS) */
	struct imap_mbox_status st;
};

/* A selected mailbox's counters, from EXAMINE (and EXISTS after it). */
struct isync_sel {
	uint32_t uidvalidity, uidnext, exists;
	uint64_t highestmodseq;
};

struct isync {
	const struct proto_job_run *job;
	const struct sync_limits *lim;
	struct imap_session *s;
	struct sync_batcher *b;
	struct sync_result *res;
	struct isync_mbx *mbx;
	size_t nmbx, capmbx;
	/* Mailbox being synced. */
	const char *cur;
	uint32_t from_uid; /* UIDs below are flag-only rows */
	uint32_t max_uid;
	struct isync_sel sel; /* what its EXAMINE said */
	int cb_err;
	/* Expunge detection for the mailbox being synced. */
	struct buf vanished; /* QRESYNC VANISHED sets, comma-joined */
	bool qresync; /* ENABLE QRESYNC succeeded */
	struct sync_renames *renames; /* imap_delta.c */
	/* INBOX opened before the LIST (first sync): what EXAMINE said. */
	bool inbox_open;
	struct isync_sel inbox;
};

static bool
is_inbox(const char *name)
{
	return (strcasecmp(name, "INBOX") == 0);
}

/* Records a mailbox's STATUS for the no-change check. */
static int
on_status(struct isync *x, const struct imap_resp *r)
{
	struct imap_mbox_status st;
	char *name = NULL;
	size_t i;
	int rv;

	rv = imap_status_parse(r, &name, &st);
	if (rv != 0) {
		return (sync_fail(x->res, rv, RETRY_LATER,
		    "malformed STATUS response"));
	}
	for (i = 0; i < x->nmbx; i++) {
		if (strcmp(x->mbx[i].item.name, name) == 0) {
			x->mbx[i].st = st;
			x->mbx[i].has_st = true;
			break;
		}
	}
	free(name);
	return (ERR_OK);
}

static int on_fetch(const struct imap_resp *r, void *arg);

static int
on_list(const struct imap_resp *r, void *arg)
{
	struct isync *x = arg;
	struct isync_mbx *m;
	int rv;

	if (r->status == IMAP_ST_NONE && r->name != NULL &&
	    strcmp(r->name, "STATUS") == 0) {
		return (on_status(x, r));
	}
	if (r->status != IMAP_ST_NONE || r->name == NULL ||
	    strcmp(r->name, "LIST") != 0) {
		return (ERR_OK);
	}
	if (x->nmbx == x->lim->max_mailboxes) {
		return (sync_fail(x->res, ERR_TOOBIG, RETRY_NEVER,
		    "account has more than %u mailboxes",
		    x->lim->max_mailboxes));
	}
	if (x->nmbx == x->capmbx) {
		size_t ncap = x->capmbx != 0 ? x->capmbx * 2 : 32;
		struct isync_mbx *p = realloc(x->mbx, ncap * sizeof(*p));

		if (p == NULL) {
			return (sync_fail(x->res, ERR_NOMEM, RETRY_LATER,
			    "out of memory"));
		}
		x->mbx = p;
		x->capmbx = ncap;
	}
	m = &x->mbx[x->nmbx];
	memset(m, 0, sizeof(*m));
	rv = imap_list_parse(r, &m->item);
	if (rv != 0) {
		return (sync_fail(x->res, rv, RETRY_LATER,
		    "malformed LIST response"));
	}
	if (m->item.role == NULL) {
		m->item.role = imap_role_from_name(m->item.name);
	}
	x->nmbx++;
	return (ERR_OK);
}

static int
on_examine(const struct imap_resp *r, void *arg)
{
	struct isync *x = arg;
	uint64_t v;

	if (r->status == IMAP_ST_OK && r->code != NULL &&
	    r->code_args != NULL && imap_tok_u64(r->code_args, &v) == 0) {
		if (strcmp(r->code, "UIDVALIDITY") == 0 && v <= UINT32_MAX) {
			x->sel.uidvalidity = (uint32_t)v;
		} else if (strcmp(r->code, "UIDNEXT") == 0 &&
		    v <= UINT32_MAX) {
			x->sel.uidnext = (uint32_t)v;
		} else if (strcmp(r->code, "HIGHESTMODSEQ") == 0) {
			x->sel.highestmodseq = v;
		}
	} else if (r->status == IMAP_ST_NONE && r->has_number &&
	    r->name != NULL && strcmp(r->name, "EXISTS") == 0) {
		x->sel.exists = r->number;
	} else if (r->status == IMAP_ST_NONE && r->name != NULL &&
	    strcmp(r->name, "VANISHED") == 0) {
		const char *set;
		size_t len;
		bool earlier;

		if (imap_vanished_parse(r, &earlier, &set, &len) != 0) {
			return (sync_fail(x->res, ERR_PROTO, RETRY_LATER,
			    "malformed VANISHED response in '%s'", x->cur));
		}
		/* Joined into rows of bounded size (imap_delta.c). */
		if (sync_vanished_add(x->b, x->cur, &x->vanished, set, len) !=
		    0) {
			return (sync_fail(x->res, ERR_TOOBIG, RETRY_LATER,
			    "VANISHED sets of '%s' cannot be sent", x->cur));
		}
	} else if (r->status == IMAP_ST_NONE && r->name != NULL &&
	    strcmp(r->name, "FETCH") == 0) {
		/* QRESYNC: flags changed since the checkpoint. */
		return (on_fetch(r, arg));
	}
	return (ERR_OK);
}

/*
 * The LIST's round trip when it also opens INBOX: LIST and STATUS to
 * on_list, EXAMINE's codes and EXISTS to on_examine. A FETCH or VANISHED
 * meanwhile is dropped: a first sync fetches all of INBOX afterwards, and
 * its mailbox row is not sent yet.
 */
static int
on_first(const struct imap_resp *r, void *arg)
{
	if (r->status == IMAP_ST_NONE && r->name != NULL) {
		if (strcmp(r->name, "LIST") == 0 ||
		    strcmp(r->name, "STATUS") == 0) {
			return (on_list(r, arg));
		}
		if (strcmp(r->name, "FETCH") == 0 ||
		    strcmp(r->name, "VANISHED") == 0) {
			return (ERR_OK);
		}
	}
	return (on_examine(r, arg));
}

static struct proto_str
pstr(const char *s)
{
	struct proto_str p = { s, s != NULL ? strlen(s) : 0 };

	return (p);
}

static int
on_fetch(const struct imap_resp *r, void *arg)
{
	struct isync *x = arg;
	struct proto_message_row row;
	struct imap_fetch f;
	int rv;

	if (r->status != IMAP_ST_NONE || r->name == NULL) {
		return (ERR_OK);
	}
	if (strcmp(r->name, "EXISTS") == 0 && r->has_number) {
		x->sel.exists = r->number;
		return (ERR_OK);
	}
	if (strcmp(r->name, "FETCH") != 0) {
		return (ERR_OK);
	}
	rv = imap_fetch_parse(r, &f);
	if (rv != 0) {
		return (sync_fail(x->res, rv, RETRY_LATER,
		    "malformed FETCH response in '%s'", x->cur));
	}
	if (f.uid == 0 || !f.has_flags) {
		/* Unsolicited or partial data: nothing to store. */
		imap_fetch_release(&f);
		return (ERR_OK);
	}
	if (f.uid > x->max_uid) {
		x->max_uid = f.uid;
	}
	memset(&row, 0, sizeof(row));
	row.mailbox = pstr(x->cur);
	row.uid = f.uid;
	row.flags = f.flags;
	row.keywords = pstr(f.keywords != NULL ? f.keywords : "");
	row.modseq = f.has_modseq ? f.modseq : 0;
	/* "N:*" returns the highest message even when it is below N, so
	 * the UID, not the command, decides what kind of row this is. */
	row.full = f.uid >= x->from_uid && f.has_envelope;
	if (row.full) {
		row.message_id = pstr(f.message_id);
		row.subject = pstr(f.subject);
		row.from_addr = pstr(f.from);
		row.to_addrs = pstr(f.to);
		row.cc_addrs = pstr(f.cc);
		row.date = f.date;
		row.internal_date = f.has_internal_date ? f.internal_date : 0;
		row.size = f.has_size ? f.size : 0;
		row.has_attachments = f.has_attachments;
	}
	/* A full row's attachments go first, into the same batch. */
	rv = row.full ? sync_imap_add_attachments(x->b, &row, &f) : ERR_OK;
	if (rv == 0) {
		rv = sync_batcher_add_message(x->b, &row);
	}
	imap_fetch_release(&f);
	if (rv != 0) {
		return (sync_fail(x->res, rv, RETRY_LATER,
		    "sending results to the store: %s", err_str(rv)));
	}
	return (ERR_OK);
}

static const struct proto_checkpoint *
find_checkpoint(const struct proto_job_run *job, const char *name)
{
	size_t i;

	for (i = 0; i < job->ncheckpoints; i++) {
		if (proto_str_eq(job->checkpoints[i].mailbox, name)) {
			return (&job->checkpoints[i]);
		}
	}
	return (NULL);
}

static int
cmd_check(struct isync *x, const struct imap_cmd *c)
{
	if (c->status != IMAP_ST_OK) {
		return (sync_fail(x->res, ERR_SERVER, RETRY_LATER,
		    "'%s' in '%s': %s", c->text, x->cur, c->resp_text));
	}
	return (ERR_OK);
}

/* Sends what is left of the QRESYNC VANISHED sets (imap_delta.c). */
static int
send_vanished(struct isync *x)
{
	int rv;

	rv = sync_vanished_flush(x->b, x->cur, &x->vanished);
	if (rv != 0) {
		return (sync_fail(x->res, rv, RETRY_LATER,
		    "sending results to the store: %s", err_str(rv)));
	}
	return (ERR_OK);
}

/* A mailbox row from LIST (and EXAMINE's UIDVALIDITY when known). */
static int
send_mailbox_row(struct isync *x, const struct isync_mbx *m,
    uint32_t uidvalidity, bool reset, const struct proto_checkpoint *from)
{
	struct proto_mailbox_row mrow;
	char delim[2] = { m->item.delimiter, '\0' };
	int rv;

	memset(&mrow, 0, sizeof(mrow));
	mrow.name = pstr(m->item.name);
	mrow.delimiter = pstr(delim[0] != '\0' ? delim : NULL);
	mrow.role = pstr(m->item.role);
	mrow.uidvalidity = uidvalidity;
	mrow.reset = reset;
	if (from != NULL) {
		mrow.old_name = from->mailbox; /* renamed on the server */
	}
	rv = sync_batcher_add_mailbox(x->b, &mrow);
	if (rv != 0) {
		return (sync_fail(x->res, rv, RETRY_LATER,
		    "sending results to the store: %s", err_str(rv)));
	}
	return (ERR_OK);
}

/* "EXAMINE <name> [(QRESYNC (...)) | (CONDSTORE)]" into ex (caller's, reset
 * here); ERR_INVAL for a name that would need a literal. */
static int
examine_text(struct buf *ex, const char *raw_name,
    const struct proto_checkpoint *cp, bool qresync, bool condstore)
{
	int rv;

	buf_reset(ex);
	rv = buf_addstr(ex, "EXAMINE ");
	if (rv == 0) {
		rv = imap_append_astring(ex, raw_name, strlen(raw_name), false);
	}
	if (rv == 0 && qresync) {
		rv = buf_printf(ex, " (QRESYNC (%u %llu))", cp->uidvalidity,
		    (unsigned long long)cp->highestmodseq);
	} else if (rv == 0 && condstore) {
		rv = buf_addstr(ex, " (CONDSTORE)");
	}
	if (rv != 0 || strstr(ex->data, "}\r\n") != NULL) {
		return (ERR_INVAL);
	}
	return (ERR_OK);
}

/* Opens m read-only into x (m->gone when the server says NO). */
static int
examine(struct isync *x, struct isync_mbx *m,
    const struct proto_checkpoint *cp, bool qresync, bool condstore)
{
	struct imap_cmd cmd;
	struct buf ex;
	int rv;

	buf_init(&ex, 65536);
	if (examine_text(&ex, m->item.raw_name, cp, qresync, condstore) != 0) {
		buf_release(&ex);
		return (sync_fail(x->res, ERR_INVAL, RETRY_LATER,
		    "cannot encode mailbox name '%s'", m->item.name));
	}
	log_debug("event=examine job=%llu qresync=%d",
	    (unsigned long long)x->job->job_id, qresync);
	memset(&cmd, 0, sizeof(cmd));
	cmd.text = ex.data;
	x->from_uid = cp != NULL ? cp->uidnext : 1;
	rv = imap_session_run(x->s, &cmd, 1, on_examine, x, x->res);
	if (rv == 0 && cmd.status == IMAP_ST_NO) {
		m->gone = true; /* deleted since LIST: the store drops it */
	} else if (rv == 0) {
		rv = cmd_check(x, &cmd); /* its error text quotes ex.data */
	}
	buf_release(&ex);
	return (rv);
}

static int
sync_mailbox(struct isync *x, struct isync_mbx *m,
    struct proto_checkpoint *cp_out)
{
	const struct proto_checkpoint *cp, *renamed = NULL;
	struct imap_cmd cmds[2];
	char c0[128], c1[160];
	bool condstore, esearch, full, reset, qresync, opened;
	size_t n = 0, i;
	int rv;

	condstore = (imap_session_caps(x->s) & SYNC_CAP_CONDSTORE) != 0;
	esearch = (imap_session_caps(x->s) & SYNC_CAP_ESEARCH) != 0;
	x->cur = m->item.name;
	memset(&x->sel, 0, sizeof(x->sel));
	x->max_uid = 0;
	cp = find_checkpoint(x->job, m->item.name);
	if (cp != NULL && cp->uidnext == 0) {
		cp = NULL; /* a first sync that never completed */
	}
	/* Opened before the LIST (first sync, so cp is NULL): a rename is
	 * claimed after "EXAMINE", from its UIDVALIDITY, as without STATUS. */
	opened = x->inbox_open && is_inbox(m->item.name);
	if (cp == NULL && m->has_st && m->st.has_uidvalidity && !opened) {
		/* Renamed on the server? (imap_delta.c) Its row goes first, so
		 * that rows under the new name find the renamed mailbox. */
		renamed = cp = sync_renames_claim(x->renames,
		    m->st.uidvalidity);
		if (renamed != NULL) {
			rv = send_mailbox_row(x, m, m->st.uidvalidity, false,
			    renamed);
			if (rv != 0) {
				return (rv);
			}
		}
	}

	/* Unchanged since the checkpoint (STATUS from the LIST round trip):
	 * do not even open it. */
	if (condstore && cp != NULL && m->has_st && cp->highestmodseq != 0 &&
	    m->st.has_uidvalidity && m->st.uidvalidity == cp->uidvalidity &&
	    m->st.has_uidnext && m->st.uidnext == cp->uidnext &&
	    m->st.has_highestmodseq &&
	    m->st.highestmodseq == cp->highestmodseq) {
		*cp_out = *cp;
		cp_out->mailbox = pstr(m->item.name);
		return (ERR_OK);
	}

	qresync = x->qresync && cp != NULL && cp->uidvalidity != 0 &&
	    cp->highestmodseq != 0;
	buf_reset(&x->vanished);

	if (opened) {
		x->sel = x->inbox;
		x->from_uid = 1;
	} else {
		rv = examine(x, m, cp, qresync, condstore);
		if (rv != 0 || m->gone) {
			return (rv);
		}
	}
	if (cp == NULL) {
		/* No STATUS (no CONDSTORE, or opened before the LIST):
		 * EXAMINE tells UIDVALIDITY. */
		renamed = cp = sync_renames_claim(x->renames, x->sel.uidvalidity);
		x->from_uid = cp != NULL ? cp->uidnext : 1;
	}

	reset = cp != NULL && cp->uidvalidity != 0 &&
	    cp->uidvalidity != x->sel.uidvalidity;
	full = cp == NULL || reset;
	rv = send_mailbox_row(x, m, x->sel.uidvalidity, reset, renamed);
	if (rv != 0) {
		return (rv);
	}
	rv = send_vanished(x); /* after the row: QRESYNC's last sets */
	if (rv != 0) {
		return (rv);
	}

	memset(cmds, 0, sizeof(cmds));
	if (full) {
		x->from_uid = 1;
		if (x->sel.exists > 0) {
			snprintf(c0, sizeof(c0), "UID FETCH 1:* (%s%s)",
			    FULL_ITEMS, condstore ? " MODSEQ" : "");
			cmds[n++].text = c0;
		}
	} else if (condstore && cp->highestmodseq != 0 &&
	    cp->highestmodseq == x->sel.highestmodseq &&
	    cp->uidnext == x->sel.uidnext) {
		/* Nothing changed since the checkpoint. */
	} else {
		if (x->sel.exists > 0) {
			snprintf(c0, sizeof(c0), "UID FETCH %u:* (%s%s)",
			    cp->uidnext, FULL_ITEMS,
			    condstore ? " MODSEQ" : "");
			cmds[n++].text = c0;
		}
		/* QRESYNC already sent changed flags and VANISHED; with
		 * CONDSTORE one command asks for the changed flags. */
		if (!qresync && cp->uidnext > 1 && x->sel.exists > 0 &&
		    condstore && cp->highestmodseq != 0) {
			snprintf(c1, sizeof(c1),
			    "UID FETCH 1:%u (UID FLAGS MODSEQ) "
			    "(CHANGEDSINCE %llu)",
			    cp->uidnext - 1,
			    (unsigned long long)cp->highestmodseq);
			cmds[n++].text = c1;
		}
	}
	if (n > 0) {
		rv = imap_session_run(x->s, cmds, n, on_fetch, x, x->res);
		if (rv != 0) {
			return (rv);
		}
		for (i = 0; i < n; i++) {
			rv = cmd_check(x, &cmds[i]);
			if (rv != 0) {
				return (rv);
			}
		}
	}
	if (!full && !qresync && cp->uidnext > 1 &&
	    !(condstore && cp->highestmodseq != 0 &&
	    cp->highestmodseq == x->sel.highestmodseq &&
	    cp->uidnext == x->sel.uidnext)) {
		/* Which known UIDs still exist (and, without CONDSTORE,
		 * their flags), range by range (imap_delta.c). */
		rv = sync_imap_scan_old(x->s, x->b, x->cur, cp->uidnext,
		    !(condstore && cp->highestmodseq != 0), esearch,
		    on_fetch, x, x->res);
		if (rv != 0) {
			return (rv);
		}
	}
	if (x->max_uid >= x->from_uid && x->max_uid != 0) {
		/* Bodies of the new messages, by the account's policy. */
		rv = sync_imap_prefetch(x->s, x->b, x->job, x->cur,
		    x->from_uid, x->max_uid, x->res); /* imap_body.c */
		if (rv != 0) {
			return (rv);
		}
	}
	cp_out->mailbox = pstr(m->item.name);
	cp_out->uidvalidity = x->sel.uidvalidity;
	cp_out->uidnext = x->sel.uidnext;
	if (x->max_uid != 0 && x->max_uid + 1 > cp_out->uidnext) {
		cp_out->uidnext = x->max_uid + 1;
	}
	if (cp_out->uidnext == 0 && cp != NULL && !reset) {
		cp_out->uidnext = cp->uidnext;
	}
	if (cp_out->uidnext == 0) {
		cp_out->uidnext = 1;
	}
	cp_out->highestmodseq = condstore ? x->sel.highestmodseq : 0;
	return (ERR_OK);
}

/* Moves the checkpoints and names into res (strings copied). */
static int
finish(struct isync *x, struct proto_checkpoint *cps, size_t ncps)
{
	struct sync_result *res = x->res;
	size_t i, k = 0;

	res->checkpoints = calloc(ncps + 1, sizeof(*res->checkpoints));
	res->mailboxes = calloc(x->nmbx + 1, sizeof(*res->mailboxes));
	if (res->checkpoints == NULL || res->mailboxes == NULL) {
		return (sync_fail(res, ERR_NOMEM, RETRY_LATER,
		    "out of memory"));
	}
	for (i = 0; i < ncps; i++) {
		res->checkpoints[i] = cps[i];
		res->checkpoints[i].mailbox.p = xstrdup(cps[i].mailbox.p);
		if (res->checkpoints[i].mailbox.p == NULL) {
			res->ncheckpoints = i;
			return (sync_fail(res, ERR_NOMEM, RETRY_LATER,
			    "out of memory"));
		}
		res->ncheckpoints = i + 1;
	}
	for (i = 0; i < x->nmbx; i++) {
		if (x->mbx[i].gone) {
			continue;
		}
		res->mailboxes[k] = pstr(xstrdup(x->mbx[i].item.name));
		if (res->mailboxes[k].p == NULL) {
			return (sync_fail(res, ERR_NOMEM, RETRY_LATER,
			    "out of memory"));
		}
		res->nmailboxes = ++k;
	}
	return (ERR_OK);
}

static int
sync_noselect(struct isync *x, const struct isync_mbx *m)
{
	struct proto_mailbox_row mrow;
	char delim[2] = { m->item.delimiter, '\0' };
	int rv;

	memset(&mrow, 0, sizeof(mrow));
	mrow.name = pstr(m->item.name);
	mrow.delimiter = pstr(delim[0] != '\0' ? delim : NULL);
	mrow.role = pstr(m->item.role);
	rv = sync_batcher_add_mailbox(x->b, &mrow);
	if (rv != 0) {
		return (sync_fail(x->res, rv, RETRY_LATER,
		    "sending results to the store: %s", err_str(rv)));
	}
	return (ERR_OK);
}

/*
 * LIST every mailbox, learning each one's STATUS in the same round trip
 * when the server has LIST-STATUS, else with one pipelined round of
 * STATUS; both only with CONDSTORE (without it a mailbox can change
 * without its counters moving, so STATUS could not justify a skip).
 * Also enables QRESYNC when offered.
 */
static int
list_mailboxes(struct isync *x, struct imap_cmd *list)
{
	uint32_t caps = imap_session_caps(x->s);
	bool specialuse = (caps & SYNC_CAP_SPECIAL_USE) &&
	    (caps & SYNC_CAP_LIST_EXTENDED);
	bool condstore = (caps & SYNC_CAP_CONDSTORE) != 0;
	const struct proto_checkpoint *cp;
	struct imap_cmd *st = NULL, cmds[3], *inbox = NULL;
	struct buf *texts = NULL, ex;
	size_t i, n = 0;
	int rv;

	memset(list, 0, sizeof(*list));
	if (condstore && (caps & SYNC_CAP_LIST_STATUS) && LIST_STATUS_PREFERRED) {
		list->text = specialuse ?
		    "LIST \"\" \"*\" RETURN (SPECIAL-USE STATUS (UIDVALIDITY "
		    "UIDNEXT MESSAGES HIGHESTMODSEQ))" :
		    "LIST \"\" \"*\" RETURN (STATUS (UIDVALIDITY UIDNEXT "
		    "MESSAGES HIGHESTMODSEQ))";
	} else {
		list->text = specialuse ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
		                        : "LIST \"\" \"*\"";
	}
	/* ENABLE and a first sync's EXAMINE INBOX ride in the LIST's round
	 * trip, in that order. */
	memset(cmds, 0, sizeof(cmds));
	if (caps & SYNC_CAP_QRESYNC) {
		cmds[n++].text = "ENABLE QRESYNC";
	}
	cp = find_checkpoint(x->job, "INBOX");
	if (cp == NULL || cp->uidnext == 0) {
		buf_init(&ex, 64);
		rv = examine_text(&ex, "INBOX", NULL, false, condstore);
		if (rv != 0) {
			buf_release(&ex);
			return (sync_fail(x->res, rv, RETRY_LATER,
			    "cannot encode 'EXAMINE INBOX'"));
		}
		inbox = &cmds[n];
		cmds[n++].text = ex.data;
	}
	cmds[n++] = *list;
	x->cur = "INBOX";
	rv = imap_session_run(x->s, cmds, n, inbox != NULL ? on_first : on_list,
	    x, x->res);
	x->cur = "(list)";
	x->qresync = rv == 0 && (caps & SYNC_CAP_QRESYNC) &&
	    cmds[0].status == IMAP_ST_OK;
	*list = cmds[n - 1];
	if (inbox != NULL) {
		/* A NO: INBOX is opened (and found gone) in its turn. */
		x->inbox_open = rv == 0 && inbox->status == IMAP_ST_OK;
		x->inbox = x->sel;
		buf_release(&ex);
	}
	n = 0;
	if (rv == 0) {
		rv = cmd_check(x, list);
	}
	if (rv != 0 || !condstore ||
	    ((caps & SYNC_CAP_LIST_STATUS) && LIST_STATUS_PREFERRED) ||
	    x->nmbx == 0) {
		return (rv);
	}
	st = calloc(x->nmbx, sizeof(*st));
	texts = calloc(x->nmbx, sizeof(*texts));
	if (st == NULL || texts == NULL) {
		rv = sync_fail(x->res, ERR_NOMEM, RETRY_LATER, "out of memory");
		goto out;
	}
	for (i = 0; i < x->nmbx; i++) {
		struct buf *b = &texts[n];

		if (x->mbx[i].item.noselect ||
		    (x->inbox_open && is_inbox(x->mbx[i].item.name))) {
			continue; /* STATUS is not for the selected mailbox */
		}
		buf_init(b, 65536);
		rv = buf_addstr(b, "STATUS ");
		if (rv == 0) {
			rv = imap_append_astring(b, x->mbx[i].item.raw_name,
			    strlen(x->mbx[i].item.raw_name), false);
		}
		if (rv == 0) {
			rv = buf_addstr(b, " (UIDVALIDITY UIDNEXT MESSAGES "
					   "HIGHESTMODSEQ)");
		}
		if (rv != 0 || strstr(b->data, "}\r\n") != NULL) {
			buf_release(b); /* odd name: it is simply opened */
			continue;
		}
		st[n].text = b->data;
		n++;
	}
	/* One round trip; a NO for one mailbox only costs its skip. */
	rv = imap_session_run(x->s, st, n, on_list, x, x->res);
out:
	for (i = 0; texts != NULL && i < n; i++) {
		buf_release(&texts[i]);
	}
	free(texts);
	free(st);
	return (rv);
}

/* Checkpointed mailboxes gone from LIST may reappear renamed. */
static int
find_renames(struct isync *x)
{
	const char **names;
	size_t i;
	int rv;

	names = calloc(x->nmbx + 1, sizeof(*names));
	if (names == NULL) {
		return (sync_fail(x->res, ERR_NOMEM, RETRY_LATER,
		    "out of memory"));
	}
	for (i = 0; i < x->nmbx; i++) {
		names[i] = x->mbx[i].item.name;
	}
	rv = sync_renames_new(x->job, names, x->nmbx, &x->renames);
	free(names);
	if (rv != 0) {
		return (sync_fail(x->res, rv, RETRY_LATER, "out of memory"));
	}
	return (ERR_OK);
}

/* Syncs one LIST entry; its checkpoint, if any, goes to cps[*ncps]. */
static int
sync_one(struct isync *x, struct isync_mbx *m, struct proto_checkpoint *cps,
    size_t *ncps)
{
	int rv;

	if (m->item.noselect) {
		return (sync_noselect(x, m));
	}
	rv = sync_mailbox(x, m, &cps[*ncps]);
	if (rv == 0 && !m->gone) {
		(*ncps)++;
	}
	return (rv);
}

int
sync_imap_run(const struct proto_job_run *job, const struct sync_limits *l,
    struct sync_conns *conns, const struct sync_sink *sink,
    struct sync_result *res)
{
	struct proto_checkpoint *cps = NULL;
	struct isync x;
	struct imap_cmd list;
	size_t i, ncps = 0, inbox = SIZE_MAX;
	int rv;

	memset(&x, 0, sizeof(x));
	buf_init(&x.vanished, PROTO_MAX_STR);
	x.job = job;
	x.lim = l;
	x.res = res;
	rv = imap_session_acquire(job, l, conns, &x.s, res);
	if (rv != 0) {
		goto out;
	}
	rv = sync_batcher_new(job->job_id, job->attempt, l, sink, &x.b);
	if (rv != 0) {
		rv = sync_fail(res, rv, RETRY_LATER, "batcher: %s",
		    err_str(rv));
		goto out;
	}

	memset(&list, 0, sizeof(list));
	rv = list_mailboxes(&x, &list);
	if (rv == 0) {
		rv = cmd_check(&x, &list);
	}
	if (rv != 0) {
		goto out;
	}
	cps = calloc(x.nmbx + 1, sizeof(*cps));
	if (cps == NULL) {
		rv = sync_fail(res, ERR_NOMEM, RETRY_LATER, "out of memory");
		goto out;
	}
	rv = find_renames(&x);
	if (rv != 0) {
		goto out;
	}
	/* An INBOX opened before the LIST goes first, while selected. */
	for (i = 0; x.inbox_open && i < x.nmbx; i++) {
		if (is_inbox(x.mbx[i].item.name) && !x.mbx[i].item.noselect) {
			inbox = i;
			rv = sync_one(&x, &x.mbx[i], cps, &ncps);
			break;
		}
	}
	x.inbox_open = false; /* any other INBOX row is opened as usual */
	for (i = 0; rv == 0 && i < x.nmbx; i++) {
		if (i != inbox) {
			rv = sync_one(&x, &x.mbx[i], cps, &ncps);
		}
	}
	if (rv != 0) {
		goto out;
	}
	rv = sync_batcher_flush(x.b);
	if (rv != 0) {
		rv = sync_fail(res, rv, RETRY_LATER,
		    "sending results to the store: %s", err_str(rv));
		goto out;
	}
	rv = finish(&x, cps, ncps);
out:
	if (x.b != NULL) {
		res->nbatches = sync_batcher_nbatches(x.b);
		res->messages = sync_batcher_nmessages(x.b);
	}
	sync_batcher_free(&x.b);
	imap_session_release(conns, job, &x.s, res);
	for (i = 0; i < x.nmbx; i++) {
		imap_list_item_release(&x.mbx[i].item);
	}
	free(x.mbx);
	buf_release(&x.vanished);
	sync_renames_free(&x.renames);
	free(cps);
	return (rv);
}
