/*
 * schema.c: the field tables that describe every message body, the wire
 * names of the message types (from PROTO_MSG_TABLE), and the small string
 * helpers of proto.h. The generic codec in codec.c is driven entirely by
 * these tables; docs/protocol.md documents the same keys. Adding a field
 * is one line here (and one row in the doc).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "proto/proto.h"

/* Scalar/string field: key is the member name. */
#define F_(st, k, ty, req, mx)                                                \
	{                                                                     \
#k, PROTO_F_##ty, offsetof(struct st, k), 0, NULL, req, mx    \
	}
/* Array field X with count nX; sub is the element table (or NULL). */
#define FA_(st, k, ty, sub, req, mx)                                          \
	{                                                                     \
#k, PROTO_F_##ty, offsetof(struct st, k),                     \
		    offsetof(struct st, n##k), sub, req, mx                   \
	}
/* Pointer to one nested struct. */
#define FP_(st, k, sub, req)                                                  \
	{                                                                     \
#k, PROTO_F_STRUCT_PTR, offsetof(struct st, k), 0, sub, req,  \
		    0                                                         \
	}
#define TABLE_(var, st, arr)                                                  \
	static const struct proto_table var                                   \
	    = { #st, sizeof(struct st), arr, ARRAY_LEN(arr) }

#define REQ true
#define OPT false

/* Limits below PROTO_MAX_STR for fields that are short by nature. */
#define MAX_NAME 255u /* account and mailbox names */
#define MAX_PROTO 16u /* "imap", "jmap" */
#define MAX_URL 2048u /* server URLs */
#define MAX_USER 1024u /* user names */
#define MAX_SECRET 4096u /* passwords */
#define MAX_ERROR 4096u /* human error text */
#define MAX_SHORT 1024u /* delimiter, role, ids */
#define MAX_HEADER 65536u /* decoded header fields */

/* Account info (reply.accounts[]) */
static const struct proto_field f_account_info[] = {
	F_(proto_account_info, id, U64, REQ, 0),
	F_(proto_account_info, name, STR, REQ, MAX_NAME),
	F_(proto_account_info, protocol, STR, OPT, MAX_PROTO),
	F_(proto_account_info, server, STR, OPT, MAX_URL),
	F_(proto_account_info, username, STR, OPT, MAX_USER),
	F_(proto_account_info, interval_s, U32, OPT, 0),
	F_(proto_account_info, last_sync_at, I64, OPT, 0),
	F_(proto_account_info, last_error, STR, OPT, MAX_ERROR),
	F_(proto_account_info, mailboxes, U64, OPT, 0),
	F_(proto_account_info, messages, U64, OPT, 0),
	F_(proto_account_info, smtp, STR, OPT, MAX_URL),
	F_(proto_account_info, pending_changes, U64, OPT, 0),
};
TABLE_(t_account_info, proto_account_info, f_account_info);

static const struct proto_field f_account_add[] = {
	F_(proto_account_add, name, STR, REQ, MAX_NAME),
	F_(proto_account_add, protocol, STR, REQ, MAX_PROTO),
	F_(proto_account_add, server, STR, REQ, MAX_URL),
	F_(proto_account_add, username, STR, REQ, MAX_USER),
	F_(proto_account_add, password, STR, REQ, MAX_SECRET),
	F_(proto_account_add, tls_ca_pem, STR, OPT, 0),
	F_(proto_account_add, starttls, BOOL, OPT, 0),
	F_(proto_account_add, plaintext, BOOL, OPT, 0),
	F_(proto_account_add, interval_s, U32, OPT, 0),
	F_(proto_account_add, bodies, STR, OPT, MAX_PROTO),
	F_(proto_account_add, auth, STR, OPT, MAX_PROTO),
	F_(proto_account_add, smtp, STR, OPT, MAX_URL),
	F_(proto_account_add, smtp_username, STR, OPT, MAX_USER),
	F_(proto_account_add, smtp_password, STR, OPT, MAX_SECRET),
};
TABLE_(t_account_add, proto_account_add, f_account_add);

static const struct proto_field f_name[] = {
	F_(proto_name, name, STR, REQ, MAX_NAME),
};
TABLE_(t_name, proto_name, f_name);

static const struct proto_field f_job_submit[] = {
	F_(proto_job_submit, account, STR, REQ, MAX_NAME),
	F_(proto_job_submit, kind, U8, OPT, JOB_KIND_WATCH),
	F_(proto_job_submit, message_id, U64, OPT, 0),
};
TABLE_(t_job_submit, proto_job_submit, f_job_submit);

static const struct proto_field f_job_status[] = {
	F_(proto_job_status, job_id, U64, OPT, 0),
	F_(proto_job_status, limit, U32, OPT, 0),
};
TABLE_(t_job_status, proto_job_status, f_job_status);

static const struct proto_field f_job_info[] = {
	F_(proto_job_info, id, U64, REQ, 0),
	F_(proto_job_info, account_id, U64, OPT, 0),
	F_(proto_job_info, account, STR, OPT, MAX_NAME),
	F_(proto_job_info, kind, U8, OPT, JOB_KIND_WATCH),
	F_(proto_job_info, state, U8, OPT, JOB_DEAD),
	F_(proto_job_info, priority, U8, OPT, PRIO_USER),
	F_(proto_job_info, attempts, U32, OPT, 0),
	F_(proto_job_info, created_at, I64, OPT, 0),
	F_(proto_job_info, due_at, I64, OPT, 0),
	F_(proto_job_info, lease_until, I64, OPT, 0),
	F_(proto_job_info, finished_at, I64, OPT, 0),
	F_(proto_job_info, last_error, STR, OPT, MAX_ERROR),
	F_(proto_job_info, messages, U64, OPT, 0),
};
TABLE_(t_job_info, proto_job_info, f_job_info);

static const struct proto_field f_change_add[] = {
	F_(proto_change_add, account, STR, REQ, MAX_NAME),
	F_(proto_change_add, kind, U8, REQ, CHANGE_SEND),
	F_(proto_change_add, message_id, U64, OPT, 0),
	F_(proto_change_add, flags_add, U32, OPT, PROTO_FLAG_ALL),
	F_(proto_change_add, flags_remove, U32, OPT, PROTO_FLAG_ALL),
	F_(proto_change_add, keywords_add, STR, OPT, MAX_SHORT),
	F_(proto_change_add, keywords_remove, STR, OPT, MAX_SHORT),
	F_(proto_change_add, mailbox, STR, OPT, MAX_SHORT),
	F_(proto_change_add, expunge, BOOL, OPT, 0),
	F_(proto_change_add, rfc822, STR, OPT, PROTO_MAX_RFC822),
};
TABLE_(t_change_add, proto_change_add, f_change_add);

static const struct proto_field f_change_list[] = {
	F_(proto_change_list, account, STR, REQ, MAX_NAME),
	F_(proto_change_list, state, STR, OPT, MAX_PROTO),
	F_(proto_change_list, change_id, U64, OPT, 0),
	F_(proto_change_list, limit, U32, OPT, 0),
};
TABLE_(t_change_list, proto_change_list, f_change_list);

static const struct proto_field f_change_resolve[] = {
	F_(proto_change_resolve, change_id, U64, REQ, 0),
	F_(proto_change_resolve, action, STR, REQ, MAX_PROTO),
};
TABLE_(t_change_resolve, proto_change_resolve, f_change_resolve);

static const struct proto_field f_message_list[] = {
	F_(proto_message_list, account, STR, REQ, MAX_NAME),
	F_(proto_message_list, mailbox, STR, OPT, MAX_SHORT),
	F_(proto_message_list, limit, U32, OPT, 0),
};
TABLE_(t_message_list, proto_message_list, f_message_list);

static const struct proto_field f_change_info[] = {
	F_(proto_change_info, id, U64, REQ, 0),
	F_(proto_change_info, account_id, U64, OPT, 0),
	F_(proto_change_info, kind, U8, OPT, CHANGE_SEND),
	F_(proto_change_info, state, U8, OPT, CHANGE_CANCELLED),
	F_(proto_change_info, message_id, U64, OPT, 0),
	F_(proto_change_info, mailbox, STR, OPT, MAX_SHORT),
	F_(proto_change_info, uid, U32, OPT, 0),
	F_(proto_change_info, to_mailbox, STR, OPT, MAX_SHORT),
	F_(proto_change_info, flags_add, U32, OPT, PROTO_FLAG_ALL),
	F_(proto_change_info, flags_remove, U32, OPT, PROTO_FLAG_ALL),
	F_(proto_change_info, keywords_add, STR, OPT, MAX_SHORT),
	F_(proto_change_info, keywords_remove, STR, OPT, MAX_SHORT),
	F_(proto_change_info, expunge, BOOL, OPT, 0),
	F_(proto_change_info, header_message_id, STR, OPT, MAX_HEADER),
	F_(proto_change_info, size, U64, OPT, 0),
	F_(proto_change_info, attempts, U32, OPT, 0),
	F_(proto_change_info, created_at, I64, OPT, 0),
	F_(proto_change_info, updated_at, I64, OPT, 0),
	F_(proto_change_info, next_at, I64, OPT, 0),
	F_(proto_change_info, last_error, STR, OPT, MAX_ERROR),
	F_(proto_change_info, result_mailbox, STR, OPT, MAX_SHORT),
	F_(proto_change_info, result_uid, U32, OPT, 0),
};
TABLE_(t_change_info, proto_change_info, f_change_info);

static const struct proto_field f_message_info[] = {
	F_(proto_message_info, id, U64, REQ, 0),
	F_(proto_message_info, mailbox, STR, OPT, MAX_SHORT),
	F_(proto_message_info, uid, U32, OPT, 0),
	F_(proto_message_info, flags, U32, OPT, PROTO_FLAG_ALL),
	F_(proto_message_info, keywords, STR, OPT, MAX_HEADER),
	F_(proto_message_info, subject, STR, OPT, MAX_HEADER),
	F_(proto_message_info, from_addr, STR, OPT, MAX_HEADER),
	F_(proto_message_info, date, I64, OPT, 0),
	F_(proto_message_info, size, U64, OPT, 0),
	F_(proto_message_info, pending, BOOL, OPT, 0),
};
TABLE_(t_message_info, proto_message_info, f_message_info);

static const struct proto_field f_checkpoint[] = {
	F_(proto_checkpoint, mailbox, STR, REQ, MAX_SHORT),
	F_(proto_checkpoint, uidvalidity, U32, REQ, 0),
	F_(proto_checkpoint, uidnext, U32, OPT, 0),
	F_(proto_checkpoint, highestmodseq, U64, OPT, 0),
	F_(proto_checkpoint, remote_id, STR, OPT, MAX_SHORT),
	F_(proto_checkpoint, role, STR, OPT, MAX_SHORT),
};
TABLE_(t_checkpoint, proto_checkpoint, f_checkpoint);

static const struct proto_field f_sync_state[] = {
	F_(proto_sync_state, resource, STR, REQ, MAX_PROTO),
	F_(proto_sync_state, state, STR, REQ, MAX_SHORT),
};
TABLE_(t_sync_state, proto_sync_state, f_sync_state);

static const struct proto_field f_change[] = {
	F_(proto_change, id, U64, REQ, 0),
	F_(proto_change, kind, U8, REQ, CHANGE_SEND),
	F_(proto_change, mailbox, STR, OPT, MAX_SHORT),
	F_(proto_change, uidvalidity, U32, OPT, 0),
	F_(proto_change, uid, U32, OPT, 0),
	F_(proto_change, remote_id, STR, OPT, MAX_SHORT),
	F_(proto_change, flags_add, U32, OPT, PROTO_FLAG_ALL),
	F_(proto_change, flags_remove, U32, OPT, PROTO_FLAG_ALL),
	F_(proto_change, keywords_add, STR, OPT, MAX_SHORT),
	F_(proto_change, keywords_remove, STR, OPT, MAX_SHORT),
	F_(proto_change, to_mailbox, STR, OPT, MAX_SHORT),
	F_(proto_change, expunge, BOOL, OPT, 0),
	F_(proto_change, rfc822, STR, OPT, PROTO_MAX_RFC822),
	F_(proto_change, header_message_id, STR, OPT, MAX_HEADER),
	F_(proto_change, step, U8, OPT, 1),
	F_(proto_change, attempts, U32, OPT, 0),
};
TABLE_(t_change, proto_change, f_change);

static const struct proto_field f_job_run[] = {
	F_(proto_job_run, job_id, U64, REQ, 0),
	F_(proto_job_run, attempt, U32, REQ, 0),
	F_(proto_job_run, kind, U8, OPT, JOB_KIND_WATCH),
	F_(proto_job_run, lease_until, I64, REQ, 0),
	F_(proto_job_run, account_id, U64, REQ, 0),
	F_(proto_job_run, account, STR, OPT, MAX_NAME),
	F_(proto_job_run, protocol, STR, REQ, MAX_PROTO),
	F_(proto_job_run, server, STR, REQ, MAX_URL),
	F_(proto_job_run, username, STR, REQ, MAX_USER),
	F_(proto_job_run, password, STR, OPT, MAX_SECRET),
	F_(proto_job_run, tls_ca_pem, STR, OPT, 0),
	F_(proto_job_run, starttls, BOOL, OPT, 0),
	F_(proto_job_run, plaintext, BOOL, OPT, 0),
	F_(proto_job_run, auth, STR, OPT, MAX_PROTO),
	F_(proto_job_run, bodies, STR, OPT, MAX_PROTO),
	F_(proto_job_run, max_body, U64, OPT, 0),
	F_(proto_job_run, target_mailbox, STR, OPT, MAX_SHORT),
	F_(proto_job_run, target_uidvalidity, U32, OPT, 0),
	F_(proto_job_run, target_uid, U32, OPT, 0),
	F_(proto_job_run, target_remote_id, STR, OPT, MAX_SHORT),
	FA_(proto_job_run, checkpoints, STRUCT_ARRAY, &t_checkpoint, OPT, 0),
	FA_(proto_job_run, states, STRUCT_ARRAY, &t_sync_state, OPT, 16),
	FA_(proto_job_run, changes, STRUCT_ARRAY, &t_change, OPT,
	    PROTO_MAX_CHANGES),
	F_(proto_job_run, smtp, STR, OPT, MAX_URL),
	F_(proto_job_run, smtp_username, STR, OPT, MAX_USER),
	F_(proto_job_run, smtp_password, STR, OPT, MAX_SECRET),
};
TABLE_(t_job_run, proto_job_run, f_job_run);

static const struct proto_field f_mailbox_row[] = {
	F_(proto_mailbox_row, name, STR, REQ, MAX_SHORT),
	F_(proto_mailbox_row, delimiter, STR, OPT, 4),
	F_(proto_mailbox_row, role, STR, OPT, MAX_SHORT),
	F_(proto_mailbox_row, remote_id, STR, OPT, MAX_SHORT),
	F_(proto_mailbox_row, uidvalidity, U32, OPT, 0),
	F_(proto_mailbox_row, reset, BOOL, OPT, 0),
	F_(proto_mailbox_row, old_name, STR, OPT, MAX_SHORT),
};
TABLE_(t_mailbox_row, proto_mailbox_row, f_mailbox_row);

static const struct proto_field f_message_row[] = {
	F_(proto_message_row, mailbox, STR, REQ, MAX_SHORT),
	F_(proto_message_row, uid, U32, REQ, 0),
	F_(proto_message_row, full, BOOL, OPT, 0),
	F_(proto_message_row, flags, U32, OPT, 0),
	F_(proto_message_row, keywords, STR, OPT, MAX_HEADER),
	F_(proto_message_row, modseq, U64, OPT, 0),
	F_(proto_message_row, remote_id, STR, OPT, MAX_SHORT),
	F_(proto_message_row, message_id, STR, OPT, MAX_HEADER),
	F_(proto_message_row, subject, STR, OPT, MAX_HEADER),
	F_(proto_message_row, from_addr, STR, OPT, MAX_HEADER),
	F_(proto_message_row, to_addrs, STR, OPT, 0),
	F_(proto_message_row, cc_addrs, STR, OPT, 0),
	F_(proto_message_row, date, I64, OPT, 0),
	F_(proto_message_row, internal_date, I64, OPT, 0),
	F_(proto_message_row, size, U64, OPT, 0),
	F_(proto_message_row, has_attachments, BOOL, OPT, 0),
	F_(proto_message_row, in_mailboxes, STR, OPT, MAX_HEADER),
};
TABLE_(t_message_row, proto_message_row, f_message_row);

static const struct proto_field f_expunge_row[] = {
	F_(proto_expunge_row, mailbox, STR, REQ, MAX_SHORT),
	F_(proto_expunge_row, kind, U8, OPT, EXPUNGE_REMOTE),
	F_(proto_expunge_row, uids, STR, OPT, 0),
	F_(proto_expunge_row, below, U32, OPT, 0),
	F_(proto_expunge_row, from, U32, OPT, 0),
};
TABLE_(t_expunge_row, proto_expunge_row, f_expunge_row);

static const struct proto_field f_attachment_row[] = {
	F_(proto_attachment_row, mailbox, STR, REQ, MAX_SHORT),
	F_(proto_attachment_row, uid, U32, REQ, 0),
	F_(proto_attachment_row, remote_id, STR, OPT, MAX_SHORT),
	F_(proto_attachment_row, part, STR, REQ, MAX_SHORT),
	F_(proto_attachment_row, filename, STR, OPT, MAX_HEADER),
	F_(proto_attachment_row, mime_type, STR, OPT, MAX_SHORT),
	F_(proto_attachment_row, size, U64, OPT, 0),
	F_(proto_attachment_row, disposition, STR, OPT, MAX_SHORT),
	F_(proto_attachment_row, content_id, STR, OPT, MAX_SHORT),
};
TABLE_(t_attachment_row, proto_attachment_row, f_attachment_row);

static const struct proto_field f_body_chunk[] = {
	F_(proto_body_chunk, mailbox, STR, REQ, MAX_SHORT),
	F_(proto_body_chunk, uid, U32, REQ, 0),
	F_(proto_body_chunk, remote_id, STR, OPT, MAX_SHORT),
	F_(proto_body_chunk, offset, U64, OPT, 0),
	F_(proto_body_chunk, data, STR, OPT, 0),
	F_(proto_body_chunk, last, BOOL, OPT, 0),
	F_(proto_body_chunk, total, U64, OPT, 0),
	F_(proto_body_chunk, status, I32, OPT, 0),
	F_(proto_body_chunk, error, STR, OPT, MAX_ERROR),
};
TABLE_(t_body_chunk, proto_body_chunk, f_body_chunk);

static const struct proto_field f_change_result[] = {
	F_(proto_change_result, id, U64, REQ, 0),
	F_(proto_change_result, outcome, U8, REQ, CHANGE_OUT_UNCERTAIN),
	F_(proto_change_result, error, STR, OPT, MAX_ERROR),
	F_(proto_change_result, mailbox, STR, OPT, MAX_SHORT),
	F_(proto_change_result, uidvalidity, U32, OPT, 0),
	F_(proto_change_result, uid, U32, OPT, 0),
	F_(proto_change_result, remote_id, STR, OPT, MAX_SHORT),
};
TABLE_(t_change_result, proto_change_result, f_change_result);

static const struct proto_field f_batch[] = {
	F_(proto_batch, job_id, U64, REQ, 0),
	F_(proto_batch, attempt, U32, REQ, 0),
	F_(proto_batch, seq, U32, REQ, 0),
	FA_(proto_batch, mailboxes, STRUCT_ARRAY, &t_mailbox_row, OPT, 0),
	FA_(proto_batch, messages, STRUCT_ARRAY, &t_message_row, OPT, 0),
	FA_(proto_batch, expunged, STRUCT_ARRAY, &t_expunge_row, OPT, 0),
	FA_(proto_batch, attachments, STRUCT_ARRAY, &t_attachment_row, OPT,
	    0),
	FA_(proto_batch, bodies, STRUCT_ARRAY, &t_body_chunk, OPT, 0),
	FA_(proto_batch, change_results, STRUCT_ARRAY, &t_change_result, OPT,
	    PROTO_MAX_CHANGES),
};
TABLE_(t_batch, proto_batch, f_batch);

static const struct proto_field f_done[] = {
	F_(proto_done, job_id, U64, REQ, 0),
	F_(proto_done, attempt, U32, REQ, 0),
	F_(proto_done, nbatches, U32, REQ, 0),
	F_(proto_done, status, I32, REQ, 0),
	F_(proto_done, retry, U8, OPT, RETRY_NEVER),
	F_(proto_done, error, STR, OPT, MAX_ERROR),
	FA_(proto_done, checkpoints, STRUCT_ARRAY, &t_checkpoint, OPT, 0),
	F_(proto_done, mailbox_list_complete, BOOL, OPT, 0),
	FA_(proto_done, mailboxes, STR_ARRAY, NULL, OPT, 0),
	F_(proto_done, messages, U64, OPT, 0),
	FA_(proto_done, states, STRUCT_ARRAY, &t_sync_state, OPT, 16),
};
TABLE_(t_done, proto_done, f_done);

static const struct proto_field f_watch_event[] = {
	F_(proto_watch_event, job_id, U64, REQ, 0),
	F_(proto_watch_event, attempt, U32, REQ, 0),
	F_(proto_watch_event, changed, BOOL, OPT, 0),
	F_(proto_watch_event, mailbox, STR, OPT, MAX_SHORT),
};
TABLE_(t_watch_event, proto_watch_event, f_watch_event);

static const struct proto_field f_job_create[] = {
	F_(proto_job_create, account_id, U64, REQ, 0),
	F_(proto_job_create, kind, U8, OPT, JOB_KIND_WATCH),
	F_(proto_job_create, priority, U8, OPT, PRIO_USER),
	F_(proto_job_create, due_at, I64, OPT, 0),
};
TABLE_(t_job_create, proto_job_create, f_job_create);

static const struct proto_field f_job_lease[] = {
	F_(proto_job_lease, job_id, U64, REQ, 0),
	F_(proto_job_lease, lease_until, I64, REQ, 0),
};
TABLE_(t_job_lease, proto_job_lease, f_job_lease);

static const struct proto_field f_job_retry[] = {
	F_(proto_job_retry, job_id, U64, REQ, 0),
	F_(proto_job_retry, attempt, U32, REQ, 0),
	F_(proto_job_retry, state, U8, REQ, JOB_DEAD),
	F_(proto_job_retry, due_at, I64, OPT, 0),
	F_(proto_job_retry, error, STR, OPT, MAX_ERROR),
};
TABLE_(t_job_retry, proto_job_retry, f_job_retry);

static const struct proto_field f_sched_account[] = {
	F_(proto_sched_account, id, U64, REQ, 0),
	F_(proto_sched_account, interval_s, U32, OPT, 0),
	F_(proto_sched_account, last_sync_at, I64, OPT, 0),
	F_(proto_sched_account, fail_streak, U32, OPT, 0),
};
TABLE_(t_sched_account, proto_sched_account, f_sched_account);

static const struct proto_field f_reply[] = {
	F_(proto_reply, status, I32, REQ, 0),
	F_(proto_reply, error, STR, OPT, MAX_ERROR),
	F_(proto_reply, id, U64, OPT, 0),
	FA_(proto_reply, accounts, STRUCT_ARRAY, &t_account_info, OPT, 0),
	FA_(proto_reply, jobs, STRUCT_ARRAY, &t_job_info, OPT, 0),
	FA_(proto_reply, sched_accounts, STRUCT_ARRAY, &t_sched_account, OPT,
	    0),
	FP_(proto_reply, job_run, &t_job_run, OPT),
	FA_(proto_reply, changes, STRUCT_ARRAY, &t_change_info, OPT, 0),
	FA_(proto_reply, messages, STRUCT_ARRAY, &t_message_info, OPT, 0),
};
TABLE_(t_reply, proto_reply, f_reply);

static const struct proto_field f_event[] = {
	F_(proto_event, kind, U8, REQ, EV_ACCOUNT_CHANGED),
	F_(proto_event, job_id, U64, OPT, 0),
	F_(proto_event, account_id, U64, OPT, 0),
	F_(proto_event, state, U8, OPT, JOB_DEAD),
	F_(proto_event, priority, U8, OPT, PRIO_USER),
	F_(proto_event, attempt, U32, OPT, 0),
	F_(proto_event, due_at, I64, OPT, 0),
	F_(proto_event, at, I64, OPT, 0),
	F_(proto_event, status, I32, OPT, 0),
	F_(proto_event, removed, BOOL, OPT, 0),
	F_(proto_event, interval_s, U32, OPT, 0),
	F_(proto_event, job_kind, U8, OPT, JOB_KIND_WATCH),
};
TABLE_(t_event, proto_event, f_event);

/* Bodiless messages: an empty map. */
static const struct proto_table t_none = { "none", 0, NULL, 0 };

static const char *const proto_names[MSG_TYPE_COUNT] = { [MSG_NONE] = NULL,
#define PROTO_NAME_(e, name, body) [e] = name,
	PROTO_MSG_TABLE(PROTO_NAME_)
#undef PROTO_NAME_
};

static const struct proto_table *const proto_bodies[MSG_TYPE_COUNT]
    = { [MSG_NONE] = NULL,
#define PROTO_BODY_(e, name, body) [e] = &t_##body,
	      PROTO_MSG_TABLE(PROTO_BODY_)
#undef PROTO_BODY_
      };

const char *
proto_msg_name(enum proto_msg_type t)
{
	if ((int)t <= MSG_NONE || t >= MSG_TYPE_COUNT) {
		return ("unknown");
	}
	return (proto_names[t]);
}

const struct proto_table *
proto_body_table(enum proto_msg_type t)
{
	if ((int)t <= MSG_NONE || t >= MSG_TYPE_COUNT) {
		return (NULL);
	}
	return (proto_bodies[t]);
}

enum proto_msg_type
proto_msg_lookup(const char *p, size_t len)
{
	int t;

	for (t = MSG_NONE + 1; t < MSG_TYPE_COUNT; t++) {
		if (strlen(proto_names[t]) == len
		    && memcmp(proto_names[t], p, len) == 0) {
			return ((enum proto_msg_type)t);
		}
	}
	return (MSG_NONE);
}

/* String helpers ---------------------------------------------------------- */

struct proto_str
proto_str_c(const char *s)
{
	struct proto_str r = { NULL, 0 };

	if (s != NULL) {
		r.p = s;
		r.len = strlen(s);
	}
	return (r);
}

bool
proto_str_eq(struct proto_str s, const char *c)
{
	size_t n;

	if (s.p == NULL || c == NULL) {
		return (s.p == NULL && c == NULL);
	}
	n = strlen(c);
	return (n == s.len && memcmp(s.p, c, n) == 0);
}

char *
proto_str_dup(struct proto_str s)
{
	if (s.p == NULL) {
		return (NULL);
	}
	return (xstrndup(s.p, s.len));
}

static const char *const job_kind_names[] = { "sync", "drain",
	"fetch_body", "watch" };
static const char *const job_state_names[]
    = { "queued", "leased", "done", "failed", "dead" };
/* Indexed by enum proto_change_kind / proto_change_state. */
static const char *const change_kind_names[]
    = { "flag", "move", "delete", "append", "send" };
static const char *const change_state_names[] = { "pending", "inflight",
	"done", "dead", "uncertain", "cancelled" };

const char *
proto_job_kind_name(uint8_t kind)
{
	if (kind >= ARRAY_LEN(job_kind_names)) {
		return ("unknown");
	}
	return (job_kind_names[kind]);
}

const char *
proto_job_state_name(uint8_t state)
{
	if (state >= ARRAY_LEN(job_state_names)) {
		return ("unknown");
	}
	return (job_state_names[state]);
}

static int
name_parse(const char *const *names, size_t n, const char *s, uint8_t *v_r)
{
	size_t i;

	if (s == NULL) {
		return (ERR_INVAL);
	}
	for (i = 0; i < n; i++) {
		if (strcmp(names[i], s) == 0) {
			*v_r = (uint8_t)i;
			return (0);
		}
	}
	return (ERR_INVAL);
}

int
proto_job_kind_parse(const char *s, uint8_t *kind_r)
{
	return (
	    name_parse(job_kind_names, ARRAY_LEN(job_kind_names), s, kind_r));
}

int
proto_job_state_parse(const char *s, uint8_t *state_r)
{
	return (name_parse(
	    job_state_names, ARRAY_LEN(job_state_names), s, state_r));
}

const char *
proto_change_kind_name(uint8_t kind)
{
	if (kind >= ARRAY_LEN(change_kind_names)) {
		return ("unknown");
	}
	return (change_kind_names[kind]);
}

const char *
proto_change_state_name(uint8_t state)
{
	if (state >= ARRAY_LEN(change_state_names)) {
		return ("unknown");
	}
	return (change_state_names[state]);
}

int
proto_change_kind_parse(const char *s, uint8_t *kind_r)
{
	return (name_parse(
	    change_kind_names, ARRAY_LEN(change_kind_names), s, kind_r));
}

int
proto_change_state_parse(const char *s, uint8_t *state_r)
{
	return (name_parse(
	    change_state_names, ARRAY_LEN(change_state_names), s, state_r));
}
