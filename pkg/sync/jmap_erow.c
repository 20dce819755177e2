/*
 * jmap_erow.c: an Email of Email/get (RFC 8621 properties) as the fields
 * of its message rows and its attachment rows: dates, address lists,
 * keywords as flag bits, Message-ID, the ids of its mailboxes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jmap_int.h"
#include "mime/mime.h"

/* A JMAP date (RFC 3339) as unix seconds; 0 when absent or unreadable. */
static int64_t
utc_date(const char *s)
{
	int64_t t;

	return (
	    s != NULL && mime_parse_rfc3339(s, strlen(s), &t) == 0 ? t : 0);
}

/* [{name, email}] -> "Name <a@b>, c@d" (malloc'd; NULL for none). */
static int
addresses(json_t *a, char **out_r)
{
	struct mime_addr_list l;
	json_t *o;
	size_t i;
	int rv;

	*out_r = NULL;
	if (!json_is_array(a) || json_array_size(a) == 0) {
		return (ERR_OK);
	}
	l.n = 0;
	l.v = calloc(json_array_size(a), sizeof(*l.v));
	if (l.v == NULL) {
		return (ERR_NOMEM);
	}
	json_array_foreach(a, i, o)
	{
		const char *name
		    = json_string_value(json_object_get(o, "name"));
		const char *email
		    = json_string_value(json_object_get(o, "email"));

		l.v[l.n].name
		    = name != NULL && name[0] != '\0' ? (char *)name : NULL;
		l.v[l.n].addr = (char *)(email != NULL ? email : "");
		l.n++;
	}
	rv = mime_addr_format(&l, out_r);
	free(l.v); /* the strings are jansson's */
	return (rv);
}

/* keywords {k: true} -> flag bits and the other keywords (malloc'd). */
static int
keywords(json_t *kw, uint32_t *flags_r, char **other_r)
{
	struct buf o;
	const char *k;
	json_t *v;
	size_t i;
	bool sys;
	int rv = ERR_OK;

	*flags_r = 0;
	*other_r = NULL;
	buf_init(&o, SYNC_MAX_FIELD);
	json_object_foreach(kw, k, v)
	{
		if (!json_is_true(v)) {
			continue;
		}
		sys = false;
		for (i = 0; i < ARRAY_LEN(sync_jmap_flags); i++) {
			if (strcasecmp(k, sync_jmap_flags[i].keyword) == 0) {
				*flags_r |= sync_jmap_flags[i].bit;
				sys = true;
			}
		}
		/* keywords are atoms; a space would split the column */
		if (sys || strchr(k, ' ') != NULL) {
			continue;
		}
		if (o.len > 0) {
			rv = buf_addstr(&o, " ");
		}
		if (rv == 0) {
			rv = buf_addstr(&o, k);
		}
		if (rv != 0) {
			break;
		}
	}
	if (rv == 0 && o.len > 0) {
		*other_r = xstrdup(o.data);
		rv = *other_r == NULL ? ERR_NOMEM : ERR_OK;
	}
	buf_release(&o);
	return (rv == ERR_TOOBIG ? ERR_OK : rv);
}

static struct proto_str
pstr(const char *s)
{
	return (proto_str_c(s));
}

int
sync_jmap_add_attachments(
    struct sync_batcher *b, json_t *e, const char *mailbox, const char *id)
{
	struct proto_attachment_row a;
	json_t *list = json_object_get(e, "attachments"), *p;
	size_t i;
	int rv;

	json_array_foreach(list, i, p)
	{
		const char *part
		    = json_string_value(json_object_get(p, "partId"));

		if (part == NULL || i >= SYNC_MAX_ATTACHMENTS) {
			continue;
		}
		memset(&a, 0, sizeof(a));
		a.mailbox = pstr(mailbox);
		a.remote_id = pstr(id);
		a.part = pstr(part);
		a.filename
		    = pstr(json_string_value(json_object_get(p, "name")));
		a.mime_type
		    = pstr(json_string_value(json_object_get(p, "type")));
		a.size
		    = (uint64_t)json_integer_value(json_object_get(p, "size"));
		a.disposition = pstr(
		    json_string_value(json_object_get(p, "disposition")));
		a.content_id
		    = pstr(json_string_value(json_object_get(p, "cid")));
		rv = sync_batcher_add_attachment(b, &a);
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}

void
sync_jmap_erow_release(struct sync_jmap_erow *r)
{
	free(r->from);
	free(r->to);
	free(r->cc);
	free(r->kw);
	free(r->msgid);
	free(r->ids);
}

int
sync_jmap_erow_fill(struct sync_jmap_erow *r, json_t *e)
{
	json_t *mids = json_object_get(e, "messageId"), *boxes;
	const char *mid = json_string_value(json_array_get(mids, 0)), *k;
	struct buf ids;
	json_t *v;
	int rv;

	memset(r, 0, sizeof(*r));
	r->m.full = true;
	r->m.remote_id = pstr(json_string_value(json_object_get(e, "id")));
	r->m.subject = pstr(json_string_value(json_object_get(e, "subject")));
	r->m.size = (uint64_t)json_integer_value(json_object_get(e, "size"));
	r->m.has_attachments
	    = json_is_true(json_object_get(e, "hasAttachment"));
	r->m.internal_date
	    = utc_date(json_string_value(json_object_get(e, "receivedAt")));
	r->m.date = utc_date(json_string_value(json_object_get(e, "sentAt")));
	rv = addresses(json_object_get(e, "from"), &r->from);
	if (rv == 0) {
		rv = addresses(json_object_get(e, "to"), &r->to);
	}
	if (rv == 0) {
		rv = addresses(json_object_get(e, "cc"), &r->cc);
	}
	if (rv == 0) {
		rv = keywords(
		    json_object_get(e, "keywords"), &r->m.flags, &r->kw);
	}
	if (rv == 0 && mid != NULL) {
		size_t n = strlen(mid) + 3;

		r->msgid = malloc(n);
		rv = r->msgid == NULL ? ERR_NOMEM : ERR_OK;
		if (rv == 0) {
			snprintf(r->msgid, n, "<%s>", mid);
		}
	}
	buf_init(&ids, SYNC_MAX_FIELD);
	boxes = json_object_get(e, "mailboxIds");
	json_object_foreach(boxes, k, v)
	{
		if (rv == 0 && json_is_true(v)) {
			rv = ids.len > 0 ? buf_addstr(&ids, " ") : ERR_OK;
			rv = rv != 0 ? rv : buf_addstr(&ids, k);
		}
	}
	if (rv == 0) {
		r->ids = xstrdup(ids.len > 0 ? ids.data : "");
		rv = r->ids == NULL ? ERR_NOMEM : ERR_OK;
	}
	buf_release(&ids);
	r->m.from_addr = pstr(r->from);
	r->m.to_addrs = pstr(r->to);
	r->m.cc_addrs = pstr(r->cc);
	r->m.keywords = pstr(r->kw);
	r->m.message_id = pstr(r->msgid);
	r->m.in_mailboxes = pstr(r->ids);
	return (rv);
}
