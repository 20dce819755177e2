/*
 * output.c: how mailsync-submit shows the store's replies: aligned tables
 * for people, or exactly one JSON document on stdout with --json (built
 * with jansson). Strings from the store are shown as received, with
 * control characters replaced, so a hostile server name cannot drive the
 * terminal. Errors go to stderr (and, with --json, also as a JSON document
 * on stdout).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/base.h"
#include "proto/proto.h"
#include "submit.h"

/* Copies s into dst (size n) for a terminal: control bytes become '?',
 * nil becomes "-", long text is cut with "...". */
static const char *
show(char *dst, size_t n, struct proto_str s)
{
	size_t i, j = 0;

	if (s.p == NULL || s.len == 0) {
		snprintf(dst, n, "-");
		return (dst);
	}
	for (i = 0; i < s.len && j + 1 < n; i++) {
		unsigned char c = (unsigned char)s.p[i];

		dst[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[j] = '\0';
	if (i < s.len && n > 4) {
		memcpy(dst + n - 4, "...", 4);
	}
	return (dst);
}

/* "2026-01-02 03:04:05Z" (UTC) from unix seconds, or "-" for 0. */
static const char *
show_time(char *dst, size_t n, int64_t secs)
{
	struct tm tm;
	time_t t = (time_t)secs;

	if (secs <= 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(dst, n, "-");
		return (dst);
	}
	strftime(dst, n, "%Y-%m-%d %H:%M:%SZ", &tm);
	return (dst);
}

/* A JSON string from a proto_str (null for nil); invalid UTF-8 is
 * replaced byte by byte with '?'. */
static json_t *
jstr(struct proto_str s)
{
	json_t *j;
	char *tmp;
	size_t i;

	if (s.p == NULL) {
		return (json_null());
	}
	j = json_stringn(s.p, s.len);
	if (j != NULL) {
		return (j);
	}
	tmp = xstrndup(s.p, s.len);
	if (tmp == NULL) {
		return (json_null());
	}
	for (i = 0; i < s.len; i++) {
		if ((unsigned char)tmp[i] >= 0x80 || tmp[i] == '\0') {
			tmp[i] = '?';
		}
	}
	j = json_stringn(tmp, s.len);
	free(tmp);
	return (j != NULL ? j : json_null());
}

static void
jset(json_t *o, const char *k, json_t *v)
{
	if (v == NULL) {
		v = json_null();
	}
	json_object_set_new(o, k, v);
}

static json_t *
jint(int64_t v)
{
	return (json_integer((json_int_t)v));
}

static json_t *
jnat(uint64_t v)
{
	/* json_int_t is signed 64-bit; ids and counts stay far below. */
	return (json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v));
}

static void
jprint(json_t *doc)
{
	if (doc == NULL) {
		fatalx("out of memory");
	}
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	fputc('\n', stdout);
	json_decref(doc);
}

static json_t *
account_json(const struct proto_account_info *a)
{
	json_t *o = json_object();

	jset(o, "id", jnat(a->id));
	jset(o, "name", jstr(a->name));
	jset(o, "protocol", jstr(a->protocol));
	jset(o, "server", jstr(a->server));
	jset(o, "user", jstr(a->username));
	jset(o, "interval_s", jnat(a->interval_s));
	jset(o, "last_sync_at", jint(a->last_sync_at));
	jset(o, "last_error", jstr(a->last_error));
	jset(o, "mailboxes", jnat(a->mailboxes));
	jset(o, "messages", jnat(a->messages));
	jset(o, "smtp", jstr(a->smtp));
	jset(o, "pending_changes", jnat(a->pending_changes));
	return (o);
}

static json_t *
job_json(const struct proto_job_info *j)
{
	json_t *o = json_object();

	jset(o, "id", jnat(j->id));
	jset(o, "account_id", jnat(j->account_id));
	jset(o, "account", jstr(j->account));
	jset(o, "kind", json_string(proto_job_kind_name(j->kind)));
	jset(o, "state", json_string(proto_job_state_name(j->state)));
	jset(o, "priority",
	    json_string(j->priority == PRIO_USER ? "user" : "periodic"));
	jset(o, "attempts", jnat(j->attempts));
	jset(o, "created_at_ms", jint(j->created_at));
	jset(o, "due_at_ms", jint(j->due_at));
	jset(o, "lease_until_ms", jint(j->lease_until));
	jset(o, "finished_at_ms", jint(j->finished_at));
	jset(o, "last_error", jstr(j->last_error));
	jset(o, "messages", jnat(j->messages));
	return (o);
}

void
submit_print_accounts(const struct proto_reply *r, bool json)
{
	char name[40], proto[8], server[48], user[32], last[24], err[48];
	size_t i;

	if (json) {
		json_t *arr = json_array(), *doc = json_object();

		for (i = 0; i < r->naccounts; i++) {
			json_array_append_new(
			    arr, account_json(&r->accounts[i]));
		}
		jset(doc, "accounts", arr);
		jprint(doc);
		return;
	}
	if (r->naccounts == 0) {
		printf("no accounts\n");
		return;
	}
	printf("%-20s %-6s %-32s %-20s %8s %-20s %9s %9s %s\n", "NAME",
	    "PROTO", "SERVER", "USER", "INTERVAL", "LAST SYNC", "MAILBOXES",
	    "MESSAGES", "LAST ERROR");
	for (i = 0; i < r->naccounts; i++) {
		const struct proto_account_info *a = &r->accounts[i];

		printf("%-20s %-6s %-32s %-20s %7us %-20s %9llu %9llu %s\n",
		    show(name, sizeof(name), a->name),
		    show(proto, sizeof(proto), a->protocol),
		    show(server, sizeof(server), a->server),
		    show(user, sizeof(user), a->username), a->interval_s,
		    show_time(last, sizeof(last), a->last_sync_at),
		    (unsigned long long)a->mailboxes,
		    (unsigned long long)a->messages,
		    show(err, sizeof(err), a->last_error));
	}
}

void
submit_print_jobs(const struct proto_reply *r, bool json)
{
	char acct[40], created[24], finished[24], err[64];
	size_t i;

	if (json) {
		json_t *arr = json_array(), *doc = json_object();

		for (i = 0; i < r->njobs; i++) {
			json_array_append_new(arr, job_json(&r->jobs[i]));
		}
		jset(doc, "jobs", arr);
		jprint(doc);
		return;
	}
	if (r->njobs == 0) {
		printf("no jobs\n");
		return;
	}
	printf("%8s %-20s %-5s %-6s %8s %-20s %-20s %s\n", "ID", "ACCOUNT",
	    "KIND", "STATE", "ATTEMPTS", "CREATED", "FINISHED", "ERROR");
	for (i = 0; i < r->njobs; i++) {
		const struct proto_job_info *j = &r->jobs[i];

		printf("%8llu %-20s %-5s %-6s %8u %-20s %-20s %s\n",
		    (unsigned long long)j->id,
		    show(acct, sizeof(acct), j->account),
		    proto_job_kind_name(j->kind),
		    proto_job_state_name(j->state), j->attempts,
		    show_time(created, sizeof(created), j->created_at / 1000),
		    show_time(
		        finished, sizeof(finished), j->finished_at / 1000),
		    show(err, sizeof(err), j->last_error));
	}
}

void
submit_print_job(const struct proto_job_info *j, bool json)
{
	char acct[80], t[24], err[1024];

	if (json) {
		json_t *doc = json_object();

		jset(doc, "job", job_json(j));
		jprint(doc);
		return;
	}
	printf("job:         %llu\n", (unsigned long long)j->id);
	printf("account:     %s (id %llu)\n",
	    show(acct, sizeof(acct), j->account),
	    (unsigned long long)j->account_id);
	printf("kind:        %s\n", proto_job_kind_name(j->kind));
	printf("state:       %s\n", proto_job_state_name(j->state));
	printf("priority:    %s\n",
	    j->priority == PRIO_USER ? "user" : "periodic");
	printf("attempts:    %u\n", j->attempts);
	printf("created:     %s\n",
	    show_time(t, sizeof(t), j->created_at / 1000));
	printf("due:         %s\n", show_time(t, sizeof(t), j->due_at / 1000));
	printf("lease until: %s\n",
	    show_time(t, sizeof(t), j->lease_until / 1000));
	printf("finished:    %s\n",
	    show_time(t, sizeof(t), j->finished_at / 1000));
	printf("messages:    %llu\n", (unsigned long long)j->messages);
	printf("last error:  %s\n", show(err, sizeof(err), j->last_error));
}

void
submit_print_id(const char *key, uint64_t id, const char *text, bool json)
{
	if (json) {
		json_t *doc = json_object();

		jset(doc, key, jnat(id));
		jprint(doc);
		return;
	}
	printf("%s\n", text);
}

void
submit_print_error(bool json, int exit_code, const char *fmt, ...)
{
	static const char *const codes[]
	    = { "ok", "failed", "usage", "unreachable" };
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "mailsync-submit: %s\n", msg);
	if (json) {
		json_t *doc = json_object();

		jset(doc, "error", json_string(msg));
		jset(doc, "exit", json_integer(exit_code));
		jset(doc, "code",
		    json_string(exit_code >= 0 && exit_code <= 3
		            ? codes[exit_code]
		            : "unknown"));
		jprint(doc);
	}
}

void
submit_print_wait(const struct proto_job_info *j,
    const struct proto_account_info *acct, bool timed_out, uint32_t waited_s,
    bool json)
{
	char err[1024];
	const char *result;

	if (timed_out) {
		result = "timeout";
	} else if (j->state == JOB_DONE) {
		result = "done";
	} else {
		result = "failed";
	}
	if (json) {
		json_t *doc = json_object();

		jset(doc, "job", job_json(j));
		jset(doc, "result", json_string(result));
		if (acct != NULL) {
			jset(doc, "account", account_json(acct));
		}
		jprint(doc);
		return;
	}
	if (timed_out) {
		printf("job %llu still running after %u s (state %s, %u "
		       "attempts%s%s)\n",
		    (unsigned long long)j->id, waited_s,
		    proto_job_state_name(j->state), j->attempts,
		    j->last_error.len > 0 ? ", last error: " : "",
		    j->last_error.len > 0
		        ? show(err, sizeof(err), j->last_error)
		        : "");
	} else if (j->state == JOB_DONE) {
		printf("job %llu done: %llu messages",
		    (unsigned long long)j->id,
		    (unsigned long long)j->messages);
		if (acct != NULL) {
			printf("; account now has %llu messages in %llu "
			       "mailboxes",
			    (unsigned long long)acct->messages,
			    (unsigned long long)acct->mailboxes);
		}
		printf("\n");
	} else if (j->state == JOB_DEAD) {
		fprintf(stderr, "job %llu failed after %u attempts: %s\n",
		    (unsigned long long)j->id, j->attempts,
		    show(err, sizeof(err), j->last_error));
	} else {
		fprintf(stderr, "job %llu failed: %s\n",
		    (unsigned long long)j->id,
		    show(err, sizeof(err), j->last_error));
	}
}

/* Flags ------------------------------------------------------------------ */

/* ["seen", "flagged"] from PROTO_FLAG_* bits. */
static json_t *
flags_json(uint32_t f)
{
	json_t *arr = json_array();
	unsigned i;

	for (i = 0; submit_flag_name(i) != NULL; i++) {
		if ((f & (1u << i)) != 0) {
			json_array_append_new(
			    arr, json_string(submit_flag_name(i)));
		}
	}
	return (arr);
}

/* "seen,flagged" (or "-") into dst. */
static const char *
flags_text(char *dst, size_t n, uint32_t f)
{
	size_t used = 0;
	unsigned i;

	dst[0] = '\0';
	for (i = 0; submit_flag_name(i) != NULL && used < n; i++) {
		if ((f & (1u << i)) != 0) {
			used += (size_t)snprintf(dst + used, n - used, "%s%s",
			    used > 0 ? "," : "", submit_flag_name(i));
		}
	}
	if (dst[0] == '\0') {
		snprintf(dst, n, "-");
	}
	return (dst);
}

/* Changes ---------------------------------------------------------------- */

static json_t *
change_json(const struct proto_change_info *ch)
{
	json_t *o = json_object();

	jset(o, "id", jnat(ch->id));
	jset(o, "account_id", jnat(ch->account_id));
	jset(o, "kind", json_string(proto_change_kind_name(ch->kind)));
	jset(o, "state", json_string(proto_change_state_name(ch->state)));
	jset(o, "message_id", jnat(ch->message_id));
	jset(o, "mailbox", jstr(ch->mailbox));
	jset(o, "uid", jnat(ch->uid));
	jset(o, "to_mailbox", jstr(ch->to_mailbox));
	jset(o, "flags_add", flags_json(ch->flags_add));
	jset(o, "flags_remove", flags_json(ch->flags_remove));
	jset(o, "keywords_add", jstr(ch->keywords_add));
	jset(o, "keywords_remove", jstr(ch->keywords_remove));
	jset(o, "expunge", json_boolean(ch->expunge));
	jset(o, "header_message_id", jstr(ch->header_message_id));
	jset(o, "size", jnat(ch->size));
	jset(o, "attempts", jnat(ch->attempts));
	jset(o, "created_at", jint(ch->created_at));
	jset(o, "updated_at", jint(ch->updated_at));
	jset(o, "next_at", jint(ch->next_at));
	jset(o, "last_error", jstr(ch->last_error));
	jset(o, "result_mailbox", jstr(ch->result_mailbox));
	jset(o, "result_uid", jnat(ch->result_uid));
	return (o);
}

/* snprintf for table cells, where cutting long text is intended: the
 * length written (at most n - 1). */
static size_t cell(char *dst, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static size_t
cell(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (n == 0) {
		return (0);
	}
	va_start(ap, fmt);
	r = vsnprintf(dst, n, fmt, ap);
	va_end(ap);
	return (r < 0 ? 0 : (size_t)r >= n ? n - 1 : (size_t)r);
}

/* "+seen -flagged +{$Work}" for the text table. */
static void
show_flag_change(char *dst, size_t n, const struct proto_change_info *ch)
{
	char kw[128];
	size_t i, len = 0;

	dst[0] = '\0';
	for (i = 0; submit_flag_name(i) != NULL && len + 1 < n; i++) {
		if (ch->flags_add & (1u << i)) {
			len += cell(
			    dst + len, n - len, "+%s ", submit_flag_name(i));
		}
		if (len + 1 < n && (ch->flags_remove & (1u << i))) {
			len += cell(
			    dst + len, n - len, "-%s ", submit_flag_name(i));
		}
	}
	if (len + 1 < n && ch->keywords_add.len > 0) {
		len += cell(dst + len, n - len, "+{%s} ",
		    show(kw, sizeof(kw), ch->keywords_add));
	}
	if (len + 1 < n && ch->keywords_remove.len > 0) {
		cell(dst + len, n - len, "-{%s}",
		    show(kw, sizeof(kw), ch->keywords_remove));
	}
	len = strlen(dst);
	while (len > 0 && dst[len - 1] == ' ') {
		dst[--len] = '\0';
	}
}

/* What a change acts on, for tables: "msg 12 INBOX -> Archive". */
static const char *
change_target(char *dst, size_t n, const struct proto_change_info *ch)
{
	char a[64], b[64];

	show(a, sizeof(a), ch->mailbox);
	show(b, sizeof(b), ch->to_mailbox);
	switch (ch->kind) {
	case CHANGE_MOVE:
	case CHANGE_DELETE:
		if (ch->kind == CHANGE_DELETE && ch->expunge) {
			cell(dst, n, "msg %llu in %s (expunge)",
			    (unsigned long long)ch->message_id, a);
		} else {
			cell(dst, n, "msg %llu %s -> %s",
			    (unsigned long long)ch->message_id, a, b);
		}
		break;
	case CHANGE_APPEND:
	case CHANGE_SEND:
		cell(dst, n, "%llu bytes -> %s", (unsigned long long)ch->size,
		    b);
		break;
	default: {
		char f[64];

		show_flag_change(f, sizeof(f), ch);
		cell(dst, n, "msg %llu %s", (unsigned long long)ch->message_id,
		    f);
		break;
	}
	}
	return (dst);
}

void
submit_print_changes(const struct proto_reply *r, bool json)
{
	char target[96], t[24], err[64];
	size_t i;

	if (json) {
		json_t *arr = json_array(), *doc = json_object();

		for (i = 0; i < r->nchanges; i++) {
			json_array_append_new(
			    arr, change_json(&r->changes[i]));
		}
		jset(doc, "changes", arr);
		jprint(doc);
		return;
	}
	if (r->nchanges == 0) {
		printf("no changes\n");
		return;
	}
	printf("%8s %-6s %-9s %-40s %8s %-20s %s\n", "ID", "KIND", "STATE",
	    "TARGET", "ATTEMPTS", "UPDATED", "ERROR");
	for (i = 0; i < r->nchanges; i++) {
		const struct proto_change_info *ch = &r->changes[i];

		printf("%8llu %-6s %-9s %-40s %8u %-20s %s\n",
		    (unsigned long long)ch->id,
		    proto_change_kind_name(ch->kind),
		    proto_change_state_name(ch->state),
		    change_target(target, sizeof(target), ch), ch->attempts,
		    show_time(t, sizeof(t), ch->updated_at / 1000),
		    show(err, sizeof(err), ch->last_error));
	}
}

void
submit_print_change(const struct proto_change_info *ch, bool json)
{
	char target[160], err[256];

	if (json) {
		json_t *doc = json_object();

		jset(doc, "change", change_json(ch));
		jprint(doc);
		return;
	}
	printf("change %llu (%s) %s: %s%s%s\n", (unsigned long long)ch->id,
	    proto_change_kind_name(ch->kind),
	    proto_change_state_name(ch->state),
	    change_target(target, sizeof(target), ch),
	    ch->last_error.len > 0 ? "; last error: " : "",
	    ch->last_error.len > 0 ? show(err, sizeof(err), ch->last_error)
	                           : "");
}

void
submit_print_change_wait(const struct proto_change_info *ch, bool timed_out,
    uint32_t waited_s, bool json)
{
	char err[1024], mbox[256];
	const char *result
	    = timed_out ? "timeout" : proto_change_state_name(ch->state);

	if (json) {
		json_t *doc = json_object();

		jset(doc, "change", change_json(ch));
		jset(doc, "result", json_string(result));
		jprint(doc);
		return;
	}
	if (timed_out) {
		printf(
		    "change %llu (%s) still %s after %u s (%u attempts%s%s)\n",
		    (unsigned long long)ch->id,
		    proto_change_kind_name(ch->kind),
		    proto_change_state_name(ch->state), waited_s, ch->attempts,
		    ch->last_error.len > 0 ? ", last error: " : "",
		    ch->last_error.len > 0
		        ? show(err, sizeof(err), ch->last_error)
		        : "");
	} else if (ch->state == CHANGE_DONE) {
		printf("change %llu (%s) done", (unsigned long long)ch->id,
		    proto_change_kind_name(ch->kind));
		if (ch->result_mailbox.len > 0) {
			printf(": in %s",
			    show(mbox, sizeof(mbox), ch->result_mailbox));
			if (ch->result_uid != 0) {
				printf(" UID %u", ch->result_uid);
			}
		}
		printf("\n");
	} else {
		fprintf(stderr, "change %llu (%s) %s after %u attempts: %s\n",
		    (unsigned long long)ch->id,
		    proto_change_kind_name(ch->kind),
		    proto_change_state_name(ch->state), ch->attempts,
		    show(err, sizeof(err), ch->last_error));
	}
}

/* Messages --------------------------------------------------------------- */

static json_t *
message_json(const struct proto_message_info *m)
{
	json_t *o = json_object();

	jset(o, "id", jnat(m->id));
	jset(o, "mailbox", jstr(m->mailbox));
	jset(o, "uid", jnat(m->uid));
	jset(o, "flags", flags_json(m->flags));
	jset(o, "keywords", jstr(m->keywords));
	jset(o, "subject", jstr(m->subject));
	jset(o, "from", jstr(m->from_addr));
	jset(o, "date", jint(m->date));
	jset(o, "size", jnat(m->size));
	jset(o, "pending", json_boolean(m->pending));
	return (o);
}

void
submit_print_messages(const struct proto_reply *r, bool json)
{
	char mbox[32], flags[40], date[24], from[32], subj[64];
	size_t i;

	if (json) {
		json_t *arr = json_array(), *doc = json_object();

		for (i = 0; i < r->nmessages; i++) {
			json_array_append_new(
			    arr, message_json(&r->messages[i]));
		}
		jset(doc, "messages", arr);
		jprint(doc);
		return;
	}
	if (r->nmessages == 0) {
		printf("no messages\n");
		return;
	}
	printf("%10s %-20s %8s %-24s %-20s %-30s %s\n", "ID", "MAILBOX", "UID",
	    "FLAGS", "DATE", "FROM", "SUBJECT");
	for (i = 0; i < r->nmessages; i++) {
		const struct proto_message_info *m = &r->messages[i];
		char uid[16];

		if (m->uid != 0) {
			snprintf(uid, sizeof(uid), "%u", m->uid);
		} else {
			snprintf(uid, sizeof(uid), "-");
		}
		printf("%10llu %-20s %8s %-24s %-20s %-30s %s%s\n",
		    (unsigned long long)m->id,
		    show(mbox, sizeof(mbox), m->mailbox), uid,
		    flags_text(flags, sizeof(flags), m->flags),
		    show_time(date, sizeof(date), m->date),
		    show(from, sizeof(from), m->from_addr),
		    show(subj, sizeof(subj), m->subject),
		    m->pending ? " (change pending)" : "");
	}
}
