/*
 * imap_drain_src.c: step 3 of the drain (docs/drain.md "Worker"): the
 * flag, move and delete changes of one source mailbox, in at most six
 * round trips whatever their number:
 *
 *   a. SELECT + UID SEARCH UID <the changes' UIDs>: which still exist;
 *      a UIDVALIDITY other than the change's is a reset (dead).
 *   b. Folded flag STOREs (drain_plan.c), UID MOVE (RFC 6851) or UID
 *      COPY per destination, and STORE \Deleted of expunging deletes.
 *   c. UID EXPUNGE of those (UIDPLUS only: a plain EXPUNGE would remove
 *      messages other clients marked); without MOVE, STORE \Deleted of
 *      what was copied, only once the copy is known to have succeeded,
 *      then its UID EXPUNGE (a round trip each, source_expunge()).
 *   d. Where no COPYUID told the new UID, or the UID was gone from the
 *      source, per destination EXAMINE + UID SEARCH HEADER Message-ID:
 *      found is done (an earlier attempt landed it), else a move that ran
 *      is done without a UID and a vanished message is dead.
 *
 * A missing UID of an expunging delete is done: the message is gone,
 * which is what the user asked for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drain_int.h"

/* Set text of the UIDs of the group's changes that pass `want`. */
static char *
uid_set(struct drain *d, bool (*want)(const struct drain_chg *, const void *),
    const void *arg)
{
	struct imap_uidset u;
	uint32_t *v;
	size_t i, k, n = 0;
	char *s = NULL;
	int rv = ERR_OK;

	v = calloc(d->ngrp + 1, sizeof(*v));
	if (v == NULL) {
		return (NULL);
	}
	for (k = 0; k < d->ngrp; k++) {
		if (want(&d->ch[d->grp[k]], arg)) {
			v[n++] = d->ch[d->grp[k]].c->uid;
		}
	}
	/* Sorted, without repeats (a message may have several changes). */
	for (i = 1; i < n; i++) {
		uint32_t x = v[i];

		for (k = i; k > 0 && v[k - 1] > x; k--) {
			v[k] = v[k - 1];
		}
		v[k] = x;
	}
	imap_uidset_init(&u, DRAIN_CMD_MAX);
	for (i = 0; rv == 0 && i < n; i++) {
		if (i == 0 || v[i] != v[i - 1]) {
			rv = imap_uidset_add_range(&u, v[i], v[i]);
		}
	}
	if (rv == 0 && n > 0) {
		rv = imap_uidset_finish(&u);
	}
	if (rv == 0 && n > 0) {
		s = xstrdup(u.s.data);
	}
	imap_uidset_release(&u);
	free(v);
	return (s);
}

static bool
want_open(const struct drain_chg *c, const void *arg)
{
	(void)arg;
	return (!c->answered);
}

static bool
is_move(const struct drain_chg *c)
{
	return (c->c->kind == CHANGE_MOVE
	    || (c->c->kind == CHANGE_DELETE && !c->c->expunge));
}

/* A move (or delete to Trash) still to do, to destination *arg. */
static bool
want_move_to(const struct drain_chg *c, const void *arg)
{
	const struct proto_str *dest = arg;

	return (!c->answered && c->exists && is_move(c)
	    && drain_str_same(c->c->to_mailbox, *dest));
}

/* Copied (no MOVE): its source copy is to be marked \Deleted. */
static bool
want_moved_src(const struct drain_chg *c, const void *arg)
{
	(void)arg;
	return (c->moved && !c->answered && is_move(c));
}

/* Copied and its source copy marked: to be expunged. */
static bool
want_marked_src(const struct drain_chg *c, const void *arg)
{
	(void)arg;
	return (c->moved && c->marked && !c->answered && is_move(c));
}

/* An expunging delete whose message is now marked \Deleted. */
static bool
want_marked(const struct drain_chg *c, const void *arg)
{
	(void)arg;
	return (c->moved && !c->answered && c->c->kind == CHANGE_DELETE
	    && c->c->expunge);
}

static bool
want_expunge(const struct drain_chg *c, const void *arg)
{
	(void)arg;
	return (!c->answered && c->exists && c->c->kind == CHANGE_DELETE
	    && c->c->expunge);
}

/* Adds "<prefix><set><suffix>" of the changes passing want; the index
 * in *i_r (SIZE_MAX when no change passes). */
static int
add_set_cmd(struct drain *d, struct drain_pipe *p, enum drain_pkind kind,
    const char *prefix, bool (*want)(const struct drain_chg *, const void *),
    const void *arg, const char *suffix, size_t *i_r)
{
	struct buf b;
	char *set;
	int rv;

	*i_r = SIZE_MAX;
	set = uid_set(d, want, arg);
	if (set == NULL) {
		return (ERR_OK); /* none (or no memory: nothing done) */
	}
	buf_init(&b, DRAIN_CMD_MAX);
	rv = buf_printf(&b, "%s%s%s", prefix, set, suffix);
	free(set);
	if (rv != 0) {
		buf_release(&b);
		return (rv);
	}
	return (drain_pipe_add(p, kind, SIZE_MAX, b.data, i_r));
}

/* a. SELECT and which UIDs exist. 1 when the group is answered. */
static int
source_select(struct drain *d, struct proto_str mbox, uint32_t *uv_r)
{
	struct drain_pipe p = { NULL, NULL, 0, 0 };
	const char *found;
	char *sel, *set;
	size_t k;
	int rv;

	sel = drain_cmd_mailbox("SELECT ", mbox, "");
	set = uid_set(d, want_open, NULL);
	if (sel == NULL || set == NULL) {
		free(sel);
		free(set);
		for (k = 0; k < d->ngrp; k++) {
			drain_answer_err(d, d->grp[k], CHANGE_OUT_DEAD,
			    "cannot encode the mailbox name '%.*s'",
			    (int)(mbox.len > 200 ? 200 : mbox.len), mbox.p);
		}
		return (1);
	}
	rv = drain_pipe_add(&p, DRAIN_P_SELECT, SIZE_MAX, sel, NULL);
	if (rv == 0) {
		struct buf b;

		buf_init(&b, DRAIN_CMD_MAX);
		rv = buf_printf(&b, "UID SEARCH UID %s", set);
		rv = rv == 0 ? drain_pipe_add(
		         &p, DRAIN_P_SEARCH, SIZE_MAX, b.data, NULL)
		             : (buf_release(&b), rv);
	}
	free(set);
	if (rv == 0) {
		rv = drain_pipe_run(d, &p);
	}
	if (rv != 0) {
		drain_pipe_release(&p);
		return (rv == ERR_NOMEM
		        ? sync_fail(d->res, rv, RETRY_LATER, "out of memory")
		        : rv);
	}
	*uv_r = p.info[0].uidvalidity;
	found = drain_found_set(&p, 1);
	for (k = 0; k < d->ngrp; k++) {
		struct drain_chg *c = &d->ch[d->grp[k]];

		if (p.cmds[0].status != IMAP_ST_OK) {
			drain_answer_err(d, d->grp[k],
			    drain_no_outcome(p.cmds[0].resp_text),
			    "SELECT '%.*s': %s", (int)mbox.len, mbox.p,
			    p.cmds[0].resp_text);
		} else if (found == NULL) {
			drain_answer_err(d, d->grp[k], CHANGE_OUT_RETRY,
			    "UID SEARCH in '%.*s' failed: %s", (int)mbox.len,
			    mbox.p, p.cmds[1].resp_text);
		} else if (c->c->uidvalidity != 0 && *uv_r != 0
		    && c->c->uidvalidity != *uv_r) {
			drain_answer_err(d, d->grp[k], CHANGE_OUT_DEAD,
			    "mailbox was reset (UIDVALIDITY changed)");
		} else {
			c->exists
			    = drain_set_has(found, strlen(found), c->c->uid);
		}
	}
	drain_pipe_release(&p);
	return (ERR_OK);
}

/* Folds the flag changes of each existing message into the pipeline. */
static int
plan_flags(struct drain *d, struct drain_pipe *p)
{
	struct drain_flagmsg *m;
	const struct proto_change **fc;
	struct drain_texts t = { NULL, 0, 0 };
	size_t k, j, nm = 0, nf, base = p->n;
	int rv = ERR_OK;

	m = calloc(d->ngrp + 1, sizeof(*m));
	fc = calloc(d->ngrp + 1, sizeof(*fc));
	if (m == NULL || fc == NULL) {
		free(m);
		free(fc);
		return (ERR_NOMEM);
	}
	/* One entry per message, its changes in job order. */
	for (k = 0; rv == 0 && k < d->ngrp; k++) {
		struct drain_chg *c = &d->ch[d->grp[k]];

		c->cmd = c->cmd2 = SIZE_MAX;
		if (c->answered || !c->exists || c->c->kind != CHANGE_FLAG) {
			continue;
		}
		for (j = 0; j < nm && m[j].uid != c->c->uid; j++) { }
		if (j < nm) {
			continue; /* folded with its first change */
		}
		for (nf = 0, j = k; j < d->ngrp; j++) {
			struct drain_chg *o = &d->ch[d->grp[j]];

			if (!o->answered && o->exists
			    && o->c->kind == CHANGE_FLAG
			    && o->c->uid == c->c->uid) {
				fc[nf++] = o->c;
			}
		}
		m[nm].uid = c->c->uid;
		m[nm].owner = k;
		rv = drain_fold_flags(fc, nf, &m[nm].add, &m[nm].remove);
		if (rv == ERR_INVAL) {
			for (j = k; j < d->ngrp; j++) {
				if (d->ch[d->grp[j]].c->kind == CHANGE_FLAG
				    && d->ch[d->grp[j]].c->uid == c->c->uid) {
					drain_answer_err(d, d->grp[j],
					    CHANGE_OUT_DEAD,
					    "a keyword is not an IMAP atom");
				}
			}
			rv = ERR_OK;
			continue;
		}
		nm++;
	}
	if (rv == 0) {
		rv = drain_store_plan(m, nm, &t);
	}
	for (j = 0; rv == 0 && j < t.n; j++) {
		rv = drain_pipe_add(p, DRAIN_P_OTHER, SIZE_MAX, t.v[j], NULL);
		t.v[j] = NULL; /* taken */
	}
	/* Every flag change of a message points at its STOREs. */
	for (j = 0; rv == 0 && j < nm; j++) {
		for (k = 0; k < d->ngrp; k++) {
			struct drain_chg *c = &d->ch[d->grp[k]];

			if (!c->answered && c->exists
			    && c->c->kind == CHANGE_FLAG
			    && c->c->uid == m[j].uid) {
				c->cmd = m[j].cmd_add == SIZE_MAX
				    ? SIZE_MAX
				    : base + m[j].cmd_add;
				c->cmd2 = m[j].cmd_remove == SIZE_MAX
				    ? SIZE_MAX
				    : base + m[j].cmd_remove;
			}
		}
	}
	for (j = 0; j < nm; j++) {
		free(m[j].add);
		free(m[j].remove);
	}
	drain_texts_release(&t);
	free(m);
	free(fc);
	return (rv);
}

/* Moves per destination, and expunging deletes. */
static int
plan_moves(struct drain *d, struct drain_pipe *p, bool move)
{
	size_t k, j, i = SIZE_MAX;
	int rv = ERR_OK;

	for (k = 0; rv == 0 && k < d->ngrp; k++) {
		struct drain_chg *c = &d->ch[d->grp[k]];
		struct proto_str dest = c->c->to_mailbox;
		char *suffix;

		if (!want_move_to(c, &dest) || c->cmd != SIZE_MAX) {
			continue;
		}
		suffix = drain_cmd_mailbox(" ", dest, "");
		if (suffix == NULL) {
			for (j = k; j < d->ngrp; j++) {
				if (want_move_to(&d->ch[d->grp[j]], &dest)) {
					drain_answer_err(d, d->grp[j],
					    CHANGE_OUT_DEAD,
					    "cannot encode the mailbox name");
				}
			}
			continue;
		}
		rv = add_set_cmd(d, p, DRAIN_P_COPY,
		    move ? "UID MOVE " : "UID COPY ", want_move_to, &dest,
		    suffix, &i);
		free(suffix);
		for (j = k; rv == 0 && j < d->ngrp; j++) {
			if (want_move_to(&d->ch[d->grp[j]], &dest)) {
				d->ch[d->grp[j]].cmd = i;
			}
		}
	}
	if (rv == 0) {
		rv = add_set_cmd(d, p, DRAIN_P_OTHER, "UID STORE ",
		    want_expunge, NULL, " +FLAGS.SILENT (\\Deleted)", &i);
	}
	for (k = 0; rv == 0 && i != SIZE_MAX && k < d->ngrp; k++) {
		if (want_expunge(&d->ch[d->grp[k]], NULL)) {
			d->ch[d->grp[k]].cmd = i;
		}
	}
	return (rv);
}

/* The first of c's commands that failed, or NULL. */
static const struct imap_cmd *
failed_cmd(const struct drain_pipe *p, const struct drain_chg *c)
{
	if (c->cmd != SIZE_MAX && p->cmds[c->cmd].status != IMAP_ST_OK) {
		return (&p->cmds[c->cmd]);
	}
	if (c->cmd2 != SIZE_MAX && p->cmds[c->cmd2].status != IMAP_ST_OK) {
		return (&p->cmds[c->cmd2]);
	}
	return (NULL);
}

/* Runs one command over the group's changes that pass want (if any);
 * *ok_r: it ran and ended OK. Its text and answer in *cmd_r. */
static int
run_set_cmd(struct drain *d, const char *prefix,
    bool (*want)(const struct drain_chg *, const void *), const char *suffix,
    struct drain_pipe *p, bool *ok_r)
{
	size_t i;
	int rv;

	*ok_r = false;
	rv = add_set_cmd(d, p, DRAIN_P_OTHER, prefix, want, NULL, suffix, &i);
	if (rv != 0) {
		return (sync_fail(d->res, rv, RETRY_LATER, "out of memory"));
	}
	if (i == SIZE_MAX) {
		return (ERR_OK);
	}
	rv = drain_pipe_run(d, p);
	*ok_r = rv == 0 && p->cmds[i].status == IMAP_ST_OK;
	if (rv == 0 && !*ok_r) {
		log_warnx(
		    "job=%llu event=drain_command_failed command=\"%.40s\" "
		    "error=\"%s\"",
		    (unsigned long long)d->job->job_id, p->cmds[i].text,
		    p->cmds[i].resp_text);
	}
	return (rv);
}

/*
 * c. Expunges, each in a round trip after the STORE of its \Deleted was
 * answered: Dovecot 2.3 was seen to skip a UID EXPUNGE pipelined right
 * behind that STORE (after a MOVE in the same pipeline). An expunging
 * delete is done once its UID EXPUNGE is (without UIDPLUS it stays
 * marked: a plain EXPUNGE would also remove what other clients marked).
 * Without MOVE, the source copies of what was copied are marked, then
 * expunged; a failure there leaves the source copy, the move is done
 * anyway (the copy landed; the next sync shows the source copy).
 */
static int
source_expunge(struct drain *d, struct proto_str mbox, bool move)
{
	struct drain_pipe p = { NULL, NULL, 0, 0 };
	bool uidplus = (imap_session_caps(d->s) & SYNC_CAP_UIDPLUS) != 0;
	bool ok = !uidplus;
	size_t k;
	int rv = ERR_OK;

	if (uidplus) {
		rv = run_set_cmd(d, "UID EXPUNGE ", want_marked, "", &p, &ok);
	}
	for (k = 0; rv == 0 && k < d->ngrp; k++) {
		if (!want_marked(&d->ch[d->grp[k]], NULL)) {
			continue;
		}
		if (ok) {
			drain_answer_done(d, d->grp[k],
			    (struct proto_str) { NULL, 0 }, 0, 0);
		} else {
			drain_answer_err(d, d->grp[k],
			    drain_no_outcome(p.cmds[0].resp_text),
			    "UID EXPUNGE in '%.*s': %s", (int)mbox.len, mbox.p,
			    p.cmds[0].resp_text);
		}
	}
	drain_pipe_release(&p);
	if (rv == 0 && !move) {
		rv = run_set_cmd(d, "UID STORE ", want_moved_src,
		    " +FLAGS.SILENT (\\Deleted)", &p, &ok);
		for (k = 0; rv == 0 && ok && k < d->ngrp; k++) {
			d->ch[d->grp[k]].marked
			    = want_moved_src(&d->ch[d->grp[k]], NULL);
		}
		drain_pipe_release(&p);
	}
	if (rv == 0 && !move && uidplus) {
		rv = run_set_cmd(
		    d, "UID EXPUNGE ", want_marked_src, "", &p, &ok);
		drain_pipe_release(&p);
	}
	return (rv);
}

/* b. The changes themselves, then c. */
static int
source_apply(struct drain *d, struct proto_str mbox, uint32_t uv)
{
	struct drain_pipe p = { NULL, NULL, 0, 0 };
	bool move = (imap_session_caps(d->s) & SYNC_CAP_MOVE) != 0;
	const struct imap_cmd *bad;
	size_t k;
	int rv;

	rv = plan_flags(d, &p);
	if (rv == 0) {
		rv = plan_moves(d, &p, move);
	}
	if (rv == 0) {
		rv = drain_pipe_run(d, &p);
	} else {
		rv = sync_fail(d->res, rv, RETRY_LATER, "out of memory");
	}
	for (k = 0; rv == 0 && k < d->ngrp; k++) {
		struct drain_chg *c = &d->ch[d->grp[k]];

		if (c->answered || !c->exists) {
			continue;
		}
		bad = failed_cmd(&p, c);
		if (bad != NULL) {
			drain_answer_err(d, d->grp[k],
			    drain_no_outcome(bad->resp_text),
			    "%.40s in '%.*s': %s", bad->text, (int)mbox.len,
			    mbox.p, bad->resp_text);
		} else if (c->c->kind == CHANGE_FLAG) {
			drain_answer_done(d, d->grp[k], mbox, uv, c->c->uid);
		} else {
			c->moved = true; /* moved, copied, or marked */
		}
	}
	drain_pipe_release(&p);
	if (rv == 0) {
		rv = source_expunge(d, mbox, move);
	}
	for (k = 0; rv == 0 && k < d->ngrp; k++) {
		struct drain_chg *c = &d->ch[d->grp[k]];

		if (c->moved && !c->answered && c->new_uid != 0) {
			drain_answer_done(d, d->grp[k], c->c->to_mailbox,
			    c->new_uidvalidity, c->new_uid);
		} else if (c->moved && !c->answered) {
			c->lookup = true;
		}
	}
	return (rv);
}

/* d. Find by Message-ID what moved without a COPYUID, or was gone from
 * the source (an earlier attempt may have moved it). */
static int
source_lookup(struct drain *d)
{
	struct drain_pipe p = { NULL, NULL, 0, 0 };
	size_t k, j, sel;
	int rv = ERR_OK;

	for (k = 0; k < d->ngrp; k++) {
		d->ch[d->grp[k]].cmd = d->ch[d->grp[k]].cmd2 = SIZE_MAX;
	}
	for (k = 0; rv == 0 && k < d->ngrp; k++) {
		struct drain_chg *c = &d->ch[d->grp[k]];
		struct proto_str dest = c->c->to_mailbox;
		char *text;

		if (!c->lookup || c->answered || c->cmd2 != SIZE_MAX) {
			continue;
		}
		text = drain_cmd_mailbox("EXAMINE ", dest, "");
		if (text == NULL) {
			continue; /* answered below as not found */
		}
		rv = drain_pipe_add(&p, DRAIN_P_SELECT, SIZE_MAX, text, &sel);
		for (j = k; rv == 0 && j < d->ngrp; j++) {
			struct drain_chg *o = &d->ch[d->grp[j]];
			struct buf b;

			if (!o->lookup || o->answered
			    || !drain_str_same(o->c->to_mailbox, dest)) {
				continue;
			}
			o->cmd2 = sel;
			buf_init(&b, DRAIN_CMD_MAX);
			if (drain_search_msgid(&b, o->c->header_message_id)
			    != 0) {
				buf_release(&b);
				continue; /* no Message-ID to find it by */
			}
			rv = drain_pipe_add(
			    &p, DRAIN_P_SEARCH, d->grp[j], b.data, &o->cmd);
		}
	}
	rv = rv == 0 ? drain_pipe_run(d, &p)
	             : sync_fail(d->res, rv, RETRY_LATER, "out of memory");
	for (k = 0; rv == 0 && k < d->ngrp; k++) {
		struct drain_chg *c = &d->ch[d->grp[k]];
		const char *found;
		uint32_t uid = 0;

		if (!c->lookup || c->answered) {
			continue;
		}
		/* Only a search in the mailbox it was meant for: a server that
		 * keeps the old mailbox selected after a failed EXAMINE would
		 * answer from the wrong one. */
		found = c->cmd != SIZE_MAX
		        && p.cmds[c->cmd2].status == IMAP_ST_OK
		    ? drain_found_set(&p, c->cmd)
		    : NULL;
		if (found != NULL) {
			uid = drain_set_max(found, strlen(found));
		}
		if (uid != 0) {
			drain_answer_done(d, d->grp[k], c->c->to_mailbox,
			    p.info[c->cmd2].uidvalidity, uid);
		} else if (c->moved) {
			/* Landed, UID unknown: the next sync brings it. */
			drain_answer_done(
			    d, d->grp[k], c->c->to_mailbox, 0, 0);
		} else {
			drain_answer_err(d, d->grp[k], CHANGE_OUT_DEAD,
			    "message is no longer in its mailbox on the server "
			    "(expunged or moved by another client)");
		}
	}
	drain_pipe_release(&p);
	return (rv);
}

/* Step 3 for the source mailbox of change `first`. */
int
drain_source(struct drain *d, size_t first)
{
	struct proto_str mbox = d->ch[first].c->mailbox;
	uint32_t uv = 0;
	size_t i, k, open = 0;
	int rv;

	d->ngrp = 0;
	for (i = first; i < d->n; i++) {
		struct drain_chg *c = &d->ch[i];
		uint8_t kind = c->c->kind;

		if (c->answered
		    || (kind != CHANGE_FLAG && kind != CHANGE_MOVE
		        && kind != CHANGE_DELETE)
		    || !drain_str_same(c->c->mailbox, mbox)) {
			continue;
		}
		c->exists = c->moved = c->lookup = c->marked = false;
		c->cmd = c->cmd2 = SIZE_MAX;
		c->new_uid = c->new_uidvalidity = 0;
		d->grp[d->ngrp++] = i;
		if (mbox.p == NULL || mbox.len == 0) {
			drain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "the change has no source mailbox");
		} else if (c->c->uid == 0) {
			drain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "the message has no UID on the server yet");
		} else if (is_move(c)
		    && (c->c->to_mailbox.p == NULL
		        || c->c->to_mailbox.len == 0)) {
			drain_answer_err(d, i, CHANGE_OUT_DEAD,
			    "the change has no destination mailbox");
		} else {
			open++;
		}
	}
	rv = open > 0 ? source_select(d, mbox, &uv) : 1;
	if (rv < 0) {
		return (rv);
	}
	if (rv == 0) {
		for (k = 0; k < d->ngrp; k++) {
			struct drain_chg *c = &d->ch[d->grp[k]];

			if (c->answered || c->exists) {
				continue;
			}
			if (c->c->kind == CHANGE_FLAG) {
				drain_answer_err(d, d->grp[k], CHANGE_OUT_DEAD,
				    "message is no longer in its mailbox on the server "
			    "(expunged or moved by another client)");
			} else if (c->c->kind == CHANGE_DELETE
			    && c->c->expunge) {
				/* Gone already: what was asked for. */
				drain_answer_done(d, d->grp[k],
				    (struct proto_str) { NULL, 0 }, 0, 0);
			} else {
				c->lookup = true;
			}
		}
		rv = source_apply(d, mbox, uv);
		if (rv == 0) {
			rv = source_lookup(d);
		}
		if (rv != 0) {
			return (rv);
		}
	}
	return (drain_flush(d));
}
