/*
 * list.c: "* LIST (attrs) delim name" to struct imap_list_item, and the
 * mailbox role guesses (SPECIAL-USE attributes, RFC 6154, first; common
 * folder names as a fallback for servers without it).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap.h"
#include "mime/mime.h"

static const struct {
	const char *attr;
	const char *role; /* NULL: known, but no role of ours */
} list_attr_roles[] = {
	{ "\\Sent", "sent" },
	{ "\\Drafts", "drafts" },
	{ "\\Trash", "trash" },
	{ "\\Junk", "junk" },
	{ "\\Archive", "archive" },
	{ "\\All", NULL },
	{ "\\Flagged", NULL },
};

static const struct {
	const char *name;
	const char *role;
} list_name_roles[] = {
	{ "INBOX", "inbox" },
	{ "Sent", "sent" },
	{ "Sent Items", "sent" },
	{ "Sent Messages", "sent" },
	{ "Sent Mail", "sent" },
	{ "Gesendet", "sent" },
	{ "Gesendete Elemente", "sent" },
	{ "Gesendete Objekte", "sent" },
	{ "Drafts", "drafts" },
	{ "Draft", "drafts" },
	{ "Entw\xc3\xbcrfe", "drafts" },
	{ "Trash", "trash" },
	{ "Deleted Items", "trash" },
	{ "Deleted Messages", "trash" },
	{ "Papierkorb", "trash" },
	{ "Junk", "junk" },
	{ "Junk E-mail", "junk" },
	{ "Junk Email", "junk" },
	{ "Spam", "junk" },
	{ "Archive", "archive" },
	{ "Archives", "archive" },
	{ "Archiv", "archive" },
};

const char *
imap_role_from_name(const char *name)
{
	size_t i;

	if (name == NULL) {
		return (NULL);
	}
	if (strcasecmp(name, "INBOX") == 0) {
		return ("inbox");
	}
	if (strncasecmp(name, "INBOX", 5) == 0
	    && (name[5] == '.' || name[5] == '/') && name[6] != '\0') {
		name += 6;
	}
	for (i = 1; i < ARRAY_LEN(list_name_roles); i++) {
		if (strcasecmp(name, list_name_roles[i].name) == 0) {
			return (list_name_roles[i].role);
		}
	}
	return (NULL);
}

void
imap_list_item_release(struct imap_list_item *it)
{
	if (it == NULL) {
		return;
	}
	free(it->name);
	free(it->raw_name);
	memset(it, 0, sizeof(*it));
}

int
imap_list_parse(const struct imap_resp *resp, struct imap_list_item *it)
{
	const struct imap_tok *attrs, *delim, *name, *a;
	size_t i;
	int rv;

	memset(it, 0, sizeof(*it));
	if (resp == NULL || resp->name == NULL
	    || (strcmp(resp->name, "LIST") != 0
	        && strcmp(resp->name, "LSUB") != 0)) {
		return (ERR_INVAL);
	}
	attrs = resp->args;
	if (attrs == NULL || attrs->type != IMAP_TOK_LIST) {
		return (ERR_PROTO);
	}
	delim = attrs->next;
	if (delim == NULL) {
		return (ERR_PROTO);
	}
	name = delim->next;
	if (name == NULL || !imap_tok_is_str(name)) {
		return (ERR_PROTO);
	}
	/* Anything after the name (LIST-EXTENDED data) is ignored. */
	if (delim->type == IMAP_TOK_NIL) {
		it->delimiter = 0;
	} else if (imap_tok_is_str(delim) && delim->len == 1) {
		it->delimiter = delim->s[0];
	} else {
		return (ERR_PROTO);
	}
	for (a = attrs->child; a != NULL; a = a->next) {
		if (a->type != IMAP_TOK_ATOM) {
			return (ERR_PROTO);
		}
		if (imap_tok_is(a, "\\Noselect")
		    || imap_tok_is(a, "\\NonExistent")) {
			it->noselect = true;
		}
		for (i = 0; i < ARRAY_LEN(list_attr_roles); i++) {
			if (it->role == NULL
			    && imap_tok_is(a, list_attr_roles[i].attr)) {
				it->role = list_attr_roles[i].role;
			}
		}
	}
	if (memchr(name->s, '\0', name->len) != NULL) {
		return (ERR_PROTO);
	}
	it->raw_name = xstrndup(name->s, name->len);
	if (it->raw_name == NULL) {
		rv = ERR_NOMEM;
		goto fail;
	}
	rv = imap_utf7_decode(name->s, name->len, &it->name);
	if (rv == ERR_PROTO) {
		/* Not mUTF-7 (a server sending UTF-8, or a broken one): keep
		 * the text, reading bytes that are not UTF-8 as Latin-1. */
		struct buf b;

		buf_init(&b, name->len * 2 + 1);
		rv = mime_utf8_append_latin1(&b, name->s, name->len);
		if (rv == 0 && b.data == NULL) {
			rv = buf_add(&b, "", 0);
		}
		if (rv != 0) {
			buf_release(&b);
			goto fail;
		}
		it->name = b.data;
	}
	if (rv != 0) {
		goto fail;
	}
	if (strcasecmp(it->raw_name, "INBOX") == 0) {
		it->role = "inbox";
	}
	return (0);

fail:
	imap_list_item_release(it);
	return (rv);
}
