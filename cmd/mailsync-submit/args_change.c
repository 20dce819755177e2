/*
 * args_change.c: the command words and option checks of mailsync-submit's
 * local-change commands (flag, move, delete, append, send, messages,
 * changes, change resolve), split from args.c, which calls them. Pure;
 * tests/unit/submit_args_test.c includes this file with args.c.
 */
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "submit.h"

/*
 * The commands on one account that take words after the account NAME:
 * MESSAGE_ID (a number) or MAILBOX.
 */
static const struct change_word {
	const char *word;
	enum submit_cmd cmd;
	uint8_t min, max; /* words after NAME */
	bool message_id; /* the word after NAME is a MESSAGE_ID */
} change_words[] = {
	{ "flag", SUBMIT_CMD_FLAG, 1, 1, true },
	{ "move", SUBMIT_CMD_MOVE, 1, 1, true },
	{ "delete", SUBMIT_CMD_DELETE, 1, 1, true },
	{ "append", SUBMIT_CMD_APPEND, 0, 0, false },
	{ "send", SUBMIT_CMD_SEND, 0, 0, false },
	{ "messages", SUBMIT_CMD_MESSAGES, 0, 1, false },
	{ "changes", SUBMIT_CMD_CHANGES, 0, 0, false },
};

static const struct change_word *
find_change_word(const char *w)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(change_words); i++) {
		if (strcmp(change_words[i].word, w) == 0) {
			return (&change_words[i]);
		}
	}
	return (NULL);
}

static int
check_name(const char *name, char *errbuf, size_t errlen)
{
	if (!submit_name_valid(name)) {
		return (submit_usage_err(errbuf, errlen,
		    "invalid account name \"%.80s\": use 1-%d "
		    "characters from A-Z a-z 0-9 . _ @ + -",
		    name, SUBMIT_NAME_MAX));
	}
	return (0);
}

/* flag|move|delete NAME MESSAGE_ID, append|send|changes NAME,
 * messages NAME [MAILBOX] */
int
submit_parse_change_words(const char **w, size_t n, struct submit_args *a,
    char *errbuf, size_t errlen)
{
	const struct change_word *cw = find_change_word(w[0]);

	a->cmd = cw->cmd;
	if (n < 2) {
		return (submit_usage_err(
		    errbuf, errlen, "%s: missing account NAME", cw->word));
	}
	if (n - 2 < cw->min) {
		return (submit_usage_err(errbuf, errlen, "%s: missing %s",
		    cw->word, cw->message_id ? "MESSAGE_ID" : "MAILBOX"));
	}
	if (n - 2 > cw->max) {
		return (submit_usage_err(errbuf, errlen,
		    "%s: unexpected argument \"%.64s\"", cw->word,
		    w[2 + cw->max]));
	}
	a->name = w[1];
	if (cw->message_id
	    && (parse_u64(w[2], INT64_MAX, &a->message_id) != 0
	        || a->message_id == 0)) {
		return (submit_usage_err(errbuf, errlen,
		    "%s: MESSAGE_ID must be a positive number (messages.id; "
		    "see 'mailsync-submit messages'), got \"%.64s\"",
		    cw->word, w[2]));
	}
	if (!cw->message_id && n == 3) {
		a->mailbox = w[2];
	}
	return (check_name(a->name, errbuf, errlen));
}

/* change resolve CHANGE_ID */
int
submit_parse_resolve(const char **w, size_t n, struct submit_args *a,
    char *errbuf, size_t errlen)
{
	a->cmd = SUBMIT_CMD_CHANGE_RESOLVE;
	if (n == 0 || strcmp(w[0], "resolve") != 0) {
		return (submit_usage_err(errbuf, errlen,
		    "change: expected 'change resolve CHANGE_ID "
		    "--retry|--cancel'"));
	}
	if (n < 2) {
		return (submit_usage_err(
		    errbuf, errlen, "change resolve: missing CHANGE_ID"));
	}
	if (n > 2) {
		return (submit_usage_err(errbuf, errlen,
		    "change resolve: unexpected argument \"%.64s\"", w[2]));
	}
	if (parse_u64(w[1], INT64_MAX, &a->change_id) != 0
	    || a->change_id == 0) {
		return (submit_usage_err(errbuf, errlen,
		    "change resolve: CHANGE_ID must be a positive number, got "
		    "\"%.64s\"",
		    w[1]));
	}
	return (0);
}

bool
submit_keyword_valid(const char *k)
{
	size_t i, n = strlen(k);

	if (n == 0 || n > 255 || k[0] == '\\') {
		return (false);
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];

		/* RFC 3501 atom: no specials, no controls, no space */
		if (c <= 32 || c >= 127 || strchr("(){%*\"\\]", c) != NULL) {
			return (false);
		}
	}
	return (true);
}

/* "seen,flagged" or "seen flagged" to PROTO_FLAG_* bits. */
int
submit_parse_flag_list(
    const char *v, uint32_t *bits_r, char *errbuf, size_t errlen)
{
	const char *p = v, *e;
	const char *name;
	unsigned i;
	size_t n;

	*bits_r = 0;
	while (*p != '\0') {
		if (*p == ',' || *p == ' ') {
			p++;
			continue;
		}
		for (e = p; *e != '\0' && *e != ',' && *e != ' '; e++) { }
		n = (size_t)(e - p);
		for (i = 0; (name = submit_flag_name(i)) != NULL; i++) {
			if (strlen(name) == n && strncmp(name, p, n) == 0) {
				break;
			}
		}
		if (name == NULL || (1u << i) == PROTO_FLAG_DELETED) {
			return (submit_usage_err(errbuf, errlen,
			    "--flags: unknown flag \"%.*s\" (seen, answered, "
			    "flagged, draft)",
			    (int)(n > 64 ? 64 : n), p));
		}
		*bits_r |= 1u << i;
		p = e;
	}
	return (0);
}

/* Checks a change command's options once everything is known. */
int
submit_check_change(struct submit_args *a, char *errbuf, size_t errlen)
{
	switch (a->cmd) {
	case SUBMIT_CMD_FLAG:
		if (a->flags_add == 0 && a->flags_remove == 0
		    && a->nkw_add == 0 && a->nkw_remove == 0) {
			return (submit_usage_err(errbuf, errlen,
			    "flag: nothing to change (give --seen, --unseen, "
			    "--flagged, ..., --add-keyword K or "
			    "--remove-keyword K)"));
		}
		return (0);
	case SUBMIT_CMD_MOVE:
		return (a->to == NULL ? submit_usage_err(
		            errbuf, errlen, "move: missing --to MAILBOX")
		                      : 0);
	case SUBMIT_CMD_APPEND:
		if (a->mailbox == NULL) {
			return (submit_usage_err(errbuf, errlen,
			    "append: missing --mailbox MAILBOX"));
		}
		/* fall through */
	case SUBMIT_CMD_SEND:
		return (a->file == NULL ? submit_usage_err(errbuf, errlen,
		            "%s: missing --file FILE",
		            a->cmd == SUBMIT_CMD_SEND ? "send" : "append")
		                        : 0);
	case SUBMIT_CMD_CHANGE_RESOLVE:
		if (a->retry == a->cancel) {
			return (submit_usage_err(errbuf, errlen,
			    "change resolve: give exactly one of --retry and "
			    "--cancel"));
		}
		return (0);
	default:
		return (0);
	}
}

bool
submit_is_change_word(const char *w)
{
	return (find_change_word(w) != NULL);
}
