/*
 * sm.c: the push connection state machine of watch.h, and the reconnect
 * backoff. States:
 *
 *   IDLE_SENT --"+"--> IDLING --cycle_at--> DONE_SENT --tagged OK-->
 *       NOTIFY: IDLE_SENT again
 *       IDLE:   POLLING (STATUS round trip) --all tagged OK--> IDLE_SENT
 *
 * Untagged STATUS/LIST/EXISTS/EXPUNGE/FETCH/VANISHED are looked at in
 * any state: a STATUS whose UIDNEXT, MESSAGES or HIGHESTMODSEQ differs
 * from the baseline, an unknown mailbox, or any message event (INBOX is
 * the selected mailbox in IDLE mode) is a change.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "watch/watch.h"

enum { S_SETUP = 0, S_IDLE_SENT, S_IDLING, S_DONE_SENT, S_POLLING };

int64_t
watch_backoff_ms(uint32_t failures, uint32_t rand32)
{
	int64_t d = WATCH_BACKOFF_MIN_MS, half;
	uint32_t i;

	if (failures == 0) {
		return (0);
	}
	for (i = 1; i < failures && d < WATCH_BACKOFF_MAX_MS; i++) {
		d *= 2;
	}
	if (d > WATCH_BACKOFF_MAX_MS) {
		d = WATCH_BACKOFF_MAX_MS;
	}
	half = d / 2;
	return (half + (int64_t)(rand32 % (uint32_t)(d - half + 1)));
}

void
watch_sm_init(
    struct watch_sm *sm, enum watch_mode mode, const struct watch_opts *o)
{
	memset(sm, 0, sizeof(*sm));
	sm->mode = mode;
	sm->o = *o;
	sm->st = S_SETUP;
	sm->tagn = 1;
}

void
watch_sm_release(struct watch_sm *sm)
{
	size_t i;

	for (i = 0; i < sm->nmb; i++) {
		free(sm->mb[i].raw);
	}
	free(sm->mb);
	sm->mb = NULL;
	sm->nmb = 0;
}

static struct watch_mbox *
mbox_find(struct watch_sm *sm, const char *raw, size_t len)
{
	size_t i;

	for (i = 0; i < sm->nmb; i++) {
		if (strlen(sm->mb[i].raw) == len
		    && memcmp(sm->mb[i].raw, raw, len) == 0) {
			return (&sm->mb[i]);
		}
	}
	return (NULL);
}

/* Finds or adds the baseline of a mailbox; *added_r says which. */
static int
mbox_get(struct watch_sm *sm, const struct imap_tok *name,
    struct watch_mbox **m_r, bool *added_r)
{
	struct watch_mbox *m, *nv;

	*added_r = false;
	if (name == NULL || !imap_tok_is_str(name) || name->len == 0
	    || name->len > WATCH_MAX_NAME) {
		return (ERR_PROTO);
	}
	m = mbox_find(sm, name->s, name->len);
	if (m == NULL) {
		if (sm->nmb >= WATCH_MAX_MAILBOXES) {
			return (ERR_TOOBIG);
		}
		nv = realloc(sm->mb, (sm->nmb + 1) * sizeof(*nv));
		if (nv == NULL) {
			return (ERR_NOMEM);
		}
		sm->mb = nv;
		m = &sm->mb[sm->nmb];
		memset(m, 0, sizeof(*m));
		m->raw = xstrndup(name->s, name->len);
		if (m->raw == NULL) {
			return (ERR_NOMEM);
		}
		sm->nmb++;
		*added_r = true;
	}
	*m_r = m;
	return (ERR_OK);
}

/* STATUS name (ATT val ...): compares and updates; *changed_r. */
static int
on_status(struct watch_sm *sm, const struct imap_resp *r, bool *changed_r,
    const char **name_r)
{
	const struct imap_tok *t;
	struct watch_mbox *m;
	uint32_t v32;
	uint64_t v64;
	bool added, changed = false;
	int rv;

	rv = mbox_get(sm, r->args, &m, &added);
	if (rv != 0) {
		return (rv);
	}
	*name_r = m->raw;
	if (r->args->next == NULL || r->args->next->type != IMAP_TOK_LIST) {
		return (ERR_PROTO);
	}
	for (t = r->args->next->child; t != NULL && t->next != NULL;
	     t = t->next->next) {
		if (imap_tok_is(t, "UIDNEXT")
		    && imap_tok_u32(t->next, &v32) == 0) {
			changed |= !added && v32 != m->uidnext;
			m->uidnext = v32;
		} else if (imap_tok_is(t, "MESSAGES")
		    && imap_tok_u32(t->next, &v32) == 0) {
			changed |= !added && v32 != m->messages;
			m->messages = v32;
		} else if (imap_tok_is(t, "HIGHESTMODSEQ")
		    && imap_tok_u64(t->next, &v64) == 0) {
			changed |= !added && v64 != m->modseq;
			m->modseq = v64;
		}
	}
	*changed_r = changed || (added && sm->settled);
	return (ERR_OK);
}

/* LIST (attrs) delim name: an unknown mailbox is a change. */
static int
on_list(struct watch_sm *sm, const struct imap_resp *r, bool *changed_r,
    const char **name_r)
{
	const struct imap_tok *name;
	struct watch_mbox *m;
	bool added;
	int rv;

	*changed_r = false;
	if (r->args == NULL || r->args->next == NULL
	    || r->args->next->next == NULL) {
		return (ERR_PROTO);
	}
	name = r->args->next->next;
	if (r->args->type == IMAP_TOK_LIST) {
		const struct imap_tok *a;

		for (a = r->args->child; a != NULL; a = a->next) {
			if (imap_tok_is(a, "\\NoSelect")
			    || imap_tok_is(a, "\\NonExistent")) {
				/* Deleted or not a mailbox: a change only if
				 * we knew it. */
				*changed_r = imap_tok_is_str(name)
				    && mbox_find(sm, name->s, name->len)
				        != NULL;
				*name_r = "";
				return (ERR_OK);
			}
		}
	}
	rv = mbox_get(sm, name, &m, &added);
	if (rv != 0) {
		return (rv);
	}
	*name_r = m->raw;
	*changed_r = added && sm->settled;
	return (ERR_OK);
}

int
watch_sm_baseline(struct watch_sm *sm, const struct imap_resp *r)
{
	const char *name;
	bool changed;

	if (r->kind != IMAP_RESP_UNTAGGED || r->name == NULL) {
		return (ERR_OK);
	}
	if (strcmp(r->name, "STATUS") == 0) {
		return (on_status(sm, r, &changed, &name));
	}
	if (strcmp(r->name, "LIST") == 0) {
		return (on_list(sm, r, &changed, &name));
	}
	return (ERR_OK);
}

static int
send_idle(struct watch_sm *sm, int64_t now, struct buf *out)
{
	sm->idle_tag = sm->tagn++;
	sm->st = S_IDLE_SENT;
	sm->deadline = now + sm->o.reply_ms;
	sm->cycle_at = 0;
	return (buf_printf(out, "W%" PRIu32 " IDLE\r\n", sm->idle_tag));
}

int
watch_sm_start(struct watch_sm *sm, int64_t now, struct buf *out)
{
	sm->settled = true;
	return (send_idle(sm, now, out));
}

/* One STATUS round trip over every mailbox but INBOX (IDLE covers it). */
static int
send_poll(struct watch_sm *sm, int64_t now, struct buf *out)
{
	const char *items = sm->o.condstore
	    ? "(UIDNEXT MESSAGES HIGHESTMODSEQ)"
	    : "(UIDNEXT MESSAGES)";
	size_t i;
	int rv;

	sm->first_poll_tag = sm->tagn;
	sm->pending = 0;
	if (sm->o.list_status) {
		rv = buf_printf(out, "W%" PRIu32 " LIST \"\" \"*\" RETURN "
				     "(STATUS %s)\r\n",
		    sm->tagn++, items);
		if (rv != 0) {
			return (rv);
		}
		sm->pending = 1;
	} else {
		for (i = 0; i < sm->nmb; i++) {
			if (strcmp(sm->mb[i].raw, "INBOX") == 0) {
				continue;
			}
			rv = buf_printf(out, "W%" PRIu32 " STATUS ", sm->tagn++);
			if (rv == 0) {
				rv = imap_append_astring(out, sm->mb[i].raw,
				    strlen(sm->mb[i].raw), false);
			}
			if (rv == 0) {
				rv = buf_printf(out, " %s\r\n", items);
			}
			if (rv != 0) {
				return (rv);
			}
			sm->pending++;
		}
	}
	if (sm->pending == 0) {
		return (send_idle(sm, now, out));
	}
	sm->st = S_POLLING;
	sm->deadline = now + sm->o.reply_ms;
	return (ERR_OK);
}

static int
parse_tag(const struct imap_resp *r, uint32_t *n_r)
{
	uint64_t v;
	char num[16];

	if (r->tag_len < 2 || r->tag_len > 11 || r->tag[0] != 'W') {
		return (ERR_PROTO);
	}
	memcpy(num, r->tag + 1, r->tag_len - 1);
	num[r->tag_len - 1] = '\0';
	if (parse_u64(num, UINT32_MAX, &v) != 0) {
		return (ERR_PROTO);
	}
	*n_r = (uint32_t)v;
	return (ERR_OK);
}

static int
on_tagged(struct watch_sm *sm, const struct imap_resp *r, int64_t now,
    struct buf *out)
{
	uint32_t tag;
	int rv;

	rv = parse_tag(r, &tag);
	if (rv != 0) {
		return (rv);
	}
	if (r->status != IMAP_ST_OK) {
		return (ERR_SERVER);
	}
	if (tag == sm->idle_tag
	    && (sm->st == S_DONE_SENT || sm->st == S_IDLE_SENT)) {
		if (sm->mode == WATCH_MODE_IDLE) {
			return (send_poll(sm, now, out));
		}
		return (send_idle(sm, now, out));
	}
	if (sm->st == S_POLLING && tag >= sm->first_poll_tag
	    && tag < sm->tagn && sm->pending > 0) {
		if (--sm->pending == 0) {
			return (send_idle(sm, now, out));
		}
		return (ERR_OK);
	}
	return (ERR_PROTO);
}

int
watch_sm_input(struct watch_sm *sm, const struct imap_resp *r, int64_t now,
    struct buf *out, watch_change_fn fn, void *arg)
{
	const char *name = "INBOX";
	bool changed = false;
	int rv = ERR_OK;

	switch (r->kind) {
	case IMAP_RESP_CONT:
		if (sm->st != S_IDLE_SENT) {
			return (ERR_PROTO);
		}
		sm->st = S_IDLING;
		sm->deadline = 0;
		sm->cycle_at = now + sm->o.cycle_ms;
		return (ERR_OK);
	case IMAP_RESP_TAGGED:
		return (on_tagged(sm, r, now, out));
	case IMAP_RESP_UNTAGGED:
		break;
	}
	if (r->status == IMAP_ST_BYE) {
		return (ERR_CLOSED);
	}
	if (r->name == NULL || r->status != IMAP_ST_NONE) {
		return (ERR_OK); /* "* OK Still here" and the like */
	}
	if (strcmp(r->name, "STATUS") == 0) {
		rv = on_status(sm, r, &changed, &name);
	} else if (strcmp(r->name, "LIST") == 0) {
		rv = on_list(sm, r, &changed, &name);
	} else if (strcmp(r->name, "EXISTS") == 0
	    || strcmp(r->name, "EXPUNGE") == 0
	    || strcmp(r->name, "FETCH") == 0
	    || strcmp(r->name, "VANISHED") == 0) {
		changed = sm->settled;
	}
	if (rv == 0 && changed && fn != NULL) {
		fn(name, arg);
	}
	return (rv);
}

int
watch_sm_tick(struct watch_sm *sm, int64_t now, struct buf *out)
{
	if (sm->deadline != 0 && now >= sm->deadline) {
		return (ERR_TIMEOUT);
	}
	if (sm->st == S_IDLING && sm->cycle_at != 0 && now >= sm->cycle_at) {
		sm->st = S_DONE_SENT;
		sm->cycle_at = 0;
		sm->deadline = now + sm->o.reply_ms;
		return (buf_addstr(out, "DONE\r\n"));
	}
	return (ERR_OK);
}

int64_t
watch_sm_next(const struct watch_sm *sm)
{
	if (sm->deadline != 0) {
		return (sm->deadline);
	}
	if (sm->cycle_at != 0) {
		return (sm->cycle_at);
	}
	return (INT64_MAX);
}
