/*
 * change.c: the commands that change mail (flag, move, delete, append,
 * send), the lists to act on (messages, changes) and `change resolve`
 * (docs/cli.md, docs/drain.md). A change is one submit.change.add; the
 * store's reply means it is durable and shown in the local rows. --wait
 * then polls submit.change.list for that change until the server has
 * confirmed it (done), refused it (dead), it may or may not have been
 * sent (uncertain), or the deadline passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "ipc/ipc.h"
#include "proto/proto.h"
#include "submit.h"

#define POLL_INTERVAL_MS 200

/* The space-separated keyword list of a change (borrowed strings joined
 * into b). */
static int
join_keywords(const char *const *kw, size_t n, struct buf *b)
{
	size_t i;
	int rv = 0;

	for (i = 0; i < n && rv == 0; i++) {
		rv = buf_printf(b, "%s%s", i > 0 ? " " : "", kw[i]);
	}
	return (rv);
}

static const uint8_t cmd_kind[] = {
	[SUBMIT_CMD_FLAG] = CHANGE_FLAG,
	[SUBMIT_CMD_MOVE] = CHANGE_MOVE,
	[SUBMIT_CMD_DELETE] = CHANGE_DELETE,
	[SUBMIT_CMD_APPEND] = CHANGE_APPEND,
	[SUBMIT_CMD_SEND] = CHANGE_SEND,
};

/*
 * One change of account `account` (submit.change.list with its id): 0 with
 * *rep and *raw to release and rep->u.reply.changes[0] the change; else an
 * exit code, printed unless quiet (ERR_NOTFOUND is SUBMIT_EXIT_USAGE, and
 * so is an unreachable store when quiet: SUBMIT_EXIT_UNREACHABLE).
 */
static int
get_change(struct submit_ctx *c, const char *account, uint64_t change_id,
    int timeout_ms, bool quiet, struct proto_msg *rep, nng_msg **raw)
{
	struct proto_msg req;
	int ex;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SUBMIT_CHANGE_LIST;
	req.u.change_list.account = proto_str_c(account);
	req.u.change_list.state = proto_str_c("all");
	req.u.change_list.change_id = change_id;
	req.u.change_list.limit = 1;
	ex = submit_call(c, &req, rep, raw, timeout_ms, quiet);
	if (ex != 0) {
		return (ex);
	}
	if (rep->u.reply.status == 0 && rep->u.reply.nchanges == 0) {
		rep->u.reply.status = ERR_NOTFOUND; /* the store says why */
	}
	if (rep->u.reply.status == 0) {
		return (0);
	}
	ex = rep->u.reply.status == ERR_NOTFOUND ? SUBMIT_EXIT_USAGE
	                                         : SUBMIT_EXIT_FAILED;
	if (!quiet) {
		submit_refused(c, "change", rep, true);
	}
	proto_msg_release(rep);
	ipc_msg_free(raw);
	return (ex);
}

/*
 * Polls the change until it ends or the deadline passes: 0 done, 1 dead,
 * uncertain, cancelled or still active at the deadline (the last answer
 * is shown), 3 the store never answered.
 */
static int
wait_change(struct submit_ctx *c, uint64_t change_id)
{
	uint32_t wait_s
	    = c->a->timeout_s != 0 ? c->a->timeout_s : SUBMIT_WAIT_DEFAULT_S;
	int64_t deadline = clock_mono_ms() + (int64_t)wait_s * 1000, left;
	const struct proto_change_info *ch;
	struct proto_msg rep;
	nng_msg *raw = NULL;
	bool last, ended, answered = false;
	int ex;

	while ((left = deadline - clock_mono_ms()) > 0) {
		ex = get_change(c, c->a->name, change_id,
		    (int)(left < c->call_ms ? left : c->call_ms), true, &rep,
		    &raw);
		if (ex == SUBMIT_EXIT_UNREACHABLE) {
			submit_sleep_ms(POLL_INTERVAL_MS); /* a restart? */
			continue;
		}
		if (ex != 0) {
			submit_print_error(c->a->json, SUBMIT_EXIT_FAILED,
			    "change %llu: no longer found",
			    (unsigned long long)change_id);
			return (SUBMIT_EXIT_FAILED);
		}
		answered = true;
		ch = &rep.u.reply.changes[0];
		ended = ch->state != CHANGE_PENDING
		    && ch->state != CHANGE_INFLIGHT;
		/* the last answer before the deadline is the one shown */
		last = clock_mono_ms() + POLL_INTERVAL_MS >= deadline;
		if (ended || last) {
			submit_print_change_wait(
			    ch, !ended, wait_s, c->a->json);
			ex = ended && ch->state == CHANGE_DONE
			    ? SUBMIT_EXIT_OK
			    : SUBMIT_EXIT_FAILED;
		}
		proto_msg_release(&rep);
		ipc_msg_free(&raw);
		if (ended || last) {
			return (ex);
		}
		submit_sleep_ms(POLL_INTERVAL_MS);
	}
	if (answered) {
		submit_print_error(c->a->json, SUBMIT_EXIT_FAILED,
		    "change %llu: still active after %u s (the store stopped "
		    "answering)",
		    (unsigned long long)change_id, wait_s);
		return (SUBMIT_EXIT_FAILED);
	}
	return (submit_unreachable(c));
}

/* The change just added or resolved, as the store now has it. */
static int
show_change(struct submit_ctx *c, const char *account, uint64_t change_id)
{
	struct proto_msg rep;
	nng_msg *raw = NULL;
	int ex;

	ex = get_change(c, account, change_id, c->call_ms, false, &rep, &raw);
	if (ex != 0) {
		return (ex == SUBMIT_EXIT_USAGE ? SUBMIT_EXIT_FAILED : ex);
	}
	submit_print_change(&rep.u.reply.changes[0], c->a->json);
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	return (0);
}

/* flag, move, delete, append, send: one submit.change.add. */
static int
do_add(struct submit_ctx *c)
{
	const struct submit_args *a = c->a;
	struct proto_msg req, rep;
	struct buf kwa, kwr;
	nng_msg *raw = NULL;
	uint64_t change_id;
	int ex, rv;

	buf_init(&kwa, 64 * 1024);
	buf_init(&kwr, 64 * 1024);
	memset(&req, 0, sizeof(req));
	req.type = MSG_SUBMIT_CHANGE_ADD;
	req.u.change_add.account = proto_str_c(a->name);
	req.u.change_add.kind = cmd_kind[a->cmd];
	req.u.change_add.message_id = a->message_id;
	req.u.change_add.flags_add = a->flags_add;
	req.u.change_add.flags_remove = a->flags_remove;
	rv = join_keywords(a->kw_add, a->nkw_add, &kwa);
	rv = rv != 0 ? rv : join_keywords(a->kw_remove, a->nkw_remove, &kwr);
	if (rv != 0) {
		submit_print_error(
		    a->json, SUBMIT_EXIT_USAGE, "keywords: %s", err_str(rv));
		ex = SUBMIT_EXIT_USAGE;
		goto out;
	}
	if (kwa.len > 0) {
		req.u.change_add.keywords_add
		    = (struct proto_str) { kwa.data, kwa.len };
	}
	if (kwr.len > 0) {
		req.u.change_add.keywords_remove
		    = (struct proto_str) { kwr.data, kwr.len };
	}
	req.u.change_add.mailbox
	    = proto_str_c(a->cmd == SUBMIT_CMD_MOVE ? a->to : a->mailbox);
	req.u.change_add.expunge = a->expunge;
	if (a->file != NULL) { /* main read it before connecting */
		req.u.change_add.rfc822
		    = (struct proto_str) { c->msg.data, c->msg.len };
	}
	ex = submit_call(c, &req, &rep, &raw, c->call_ms, false);
	if (ex != 0) {
		goto out;
	}
	ex = submit_refused(
	    c, proto_change_kind_name(cmd_kind[a->cmd]), &rep, true);
	change_id = rep.u.reply.id;
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	if (ex != 0) {
		goto out;
	}
	if (a->wait) {
		ex = wait_change(c, change_id);
		goto out;
	}
	ex = show_change(c, a->name, change_id);
out:
	buf_release(&kwa);
	buf_release(&kwr);
	return (ex);
}

/* messages NAME [MAILBOX], changes NAME */
static int
do_list(struct submit_ctx *c)
{
	const struct submit_args *a = c->a;
	bool messages = a->cmd == SUBMIT_CMD_MESSAGES;
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	int ex;

	memset(&req, 0, sizeof(req));
	if (messages) {
		req.type = MSG_SUBMIT_MESSAGE_LIST;
		req.u.message_list.account = proto_str_c(a->name);
		req.u.message_list.mailbox = proto_str_c(a->mailbox);
		req.u.message_list.limit = a->limit;
	} else {
		req.type = MSG_SUBMIT_CHANGE_LIST;
		req.u.change_list.account = proto_str_c(a->name);
		req.u.change_list.state = proto_str_c(a->state);
		req.u.change_list.limit = a->limit;
	}
	ex = submit_call(c, &req, &rep, &raw, c->call_ms, false);
	if (ex != 0) {
		return (ex);
	}
	ex = submit_refused(c, messages ? "messages" : "changes", &rep, true);
	if (ex == 0 && messages) {
		submit_print_messages(&rep.u.reply, a->json);
	} else if (ex == 0) {
		submit_print_changes(&rep.u.reply, a->json);
	}
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	return (ex);
}

/*
 * The account of a change, for showing it after `change resolve` (which
 * names no account): the first account that has it. Copies the name into
 * name (size n); false when none does.
 */
static bool
find_change_account(
    struct submit_ctx *c, uint64_t change_id, char *name, size_t n)
{
	struct proto_msg req, rep, one;
	nng_msg *raw = NULL, *raw1 = NULL;
	bool found = false;
	size_t i;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SUBMIT_ACCOUNT_LIST;
	if (submit_call(c, &req, &rep, &raw, c->call_ms, true) != 0) {
		return (false);
	}
	for (i = 0;
	     !found && rep.u.reply.status == 0 && i < rep.u.reply.naccounts;
	     i++) {
		struct proto_str s = rep.u.reply.accounts[i].name;

		if (s.len == 0 || s.len >= n) {
			continue;
		}
		memcpy(name, s.p, s.len);
		name[s.len] = '\0';
		if (get_change(
		        c, name, change_id, c->call_ms, true, &one, &raw1)
		    == 0) {
			found = true;
			proto_msg_release(&one);
			ipc_msg_free(&raw1);
		}
	}
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	return (found);
}

/* change resolve CHANGE_ID --retry|--cancel */
static int
do_resolve(struct submit_ctx *c)
{
	const struct submit_args *a = c->a;
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	char name[SUBMIT_NAME_MAX + 1], text[160];
	int ex;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SUBMIT_CHANGE_RESOLVE;
	req.u.change_resolve.change_id = a->change_id;
	req.u.change_resolve.action
	    = proto_str_c(a->retry ? "retry" : "cancel");
	ex = submit_call(c, &req, &rep, &raw, c->call_ms, false);
	if (ex != 0) {
		return (ex);
	}
	ex = submit_refused(c, "change resolve", &rep, true);
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	if (ex != 0) {
		return (ex);
	}
	if (find_change_account(c, a->change_id, name, sizeof(name))) {
		return (show_change(c, name, a->change_id));
	}
	/* resolved, but no longer listed (an account removed meanwhile) */
	snprintf(text, sizeof(text), "change %llu %s",
	    (unsigned long long)a->change_id,
	    a->retry ? "queued again" : "cancelled");
	submit_print_id("change_id", a->change_id, text, a->json);
	return (0);
}

int
submit_do_change(struct submit_ctx *c)
{
	switch (c->a->cmd) {
	case SUBMIT_CMD_FLAG:
	case SUBMIT_CMD_MOVE:
	case SUBMIT_CMD_DELETE:
	case SUBMIT_CMD_APPEND:
	case SUBMIT_CMD_SEND:
		return (do_add(c));
	case SUBMIT_CMD_MESSAGES:
	case SUBMIT_CMD_CHANGES:
		return (do_list(c));
	case SUBMIT_CMD_CHANGE_RESOLVE:
		return (do_resolve(c));
	default:
		return (SUBMIT_EXIT_USAGE);
	}
}
