/*
 * imap_attach.c: the attachments pkg/imap found in a FETCH BODYSTRUCTURE
 * (struct imap_attachment) become proto attachment rows in the batcher,
 * keyed by the message's mailbox and UID. The IMAP job calls it for
 * every full message row, right before adding that row.
 */
#include <string.h>

#include "sync.h"

static struct proto_str
cstr(const char *s)
{
	struct proto_str p = { s, s != NULL ? strlen(s) : 0 };

	return (p);
}

int
sync_imap_add_attachments(struct sync_batcher *b,
    const struct proto_message_row *msg, const struct imap_fetch *f)
{
	struct proto_attachment_row r;
	const struct imap_attachment *a;
	size_t i;
	int rv;

	for (i = 0; i < f->nattachments; i++) {
		a = &f->attachments[i];
		memset(&r, 0, sizeof(r));
		r.mailbox = msg->mailbox;
		r.uid = msg->uid;
		r.part = cstr(a->part);
		r.filename = cstr(a->filename);
		r.mime_type = cstr(a->mime_type);
		r.size = a->size;
		r.disposition = cstr(a->disposition);
		r.content_id = cstr(a->content_id);
		rv = sync_batcher_add_attachment(b, &r);
		if (rv != 0) {
			return (rv);
		}
	}
	return (ERR_OK);
}
