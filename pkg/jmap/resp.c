/*
 * resp.c: finding one method's answer in a JMAP methodResponses array
 * (RFC 8620 3.4), and turning a method-level error (3.6.2) into an
 * enum err with retry advice. Pure: the JSON is borrowed.
 *
 * One call id may be answered more than once: EmailSubmission/set with
 * onSuccessUpdateEmail answers "s" twice (EmailSubmission/set, then an
 * implicit Email/set), so an answer is chosen by its id and its name;
 * an "error" with that id counts when no answer has the name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jmap/jmap_int.h"

int
jmap_err_set(
    struct jmap_err *e, int status, enum retry retry, const char *fmt, ...)
{
	va_list ap;

	if (e != NULL) {
		e->status = status;
		e->retry = retry;
		va_start(ap, fmt);
		vsnprintf(e->text, sizeof(e->text), fmt, ap);
		va_end(ap);
	}
	return (status);
}

/* Method error types and what to do about them (RFC 8620 3.6.2, RFC
 * 8621). Not listed: RETRY_LATER. */
static const struct {
	const char *type;
	enum retry retry;
} resp_retry[] = {
	/* ask again at once with fresh state (the caller decides how) */
	{ "stateMismatch", RETRY_NOW },
	{ "cannotCalculateChanges", RETRY_NOW },
	/* the account or our request is wrong: asking again will not help */
	{ "accountNotFound", RETRY_NEVER },
	{ "accountNotSupportedByMethod", RETRY_NEVER },
	{ "accountReadOnly", RETRY_NEVER },
	{ "forbidden", RETRY_NEVER },
	{ "unknownMethod", RETRY_NEVER },
	{ "invalidArguments", RETRY_NEVER },
	{ "invalidResultReference", RETRY_NEVER },
	{ "unsupportedFilter", RETRY_NEVER },
	{ "unsupportedSort", RETRY_NEVER },
};

static enum retry
retry_of(const char *type)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(resp_retry); i++) {
		if (strcmp(resp_retry[i].type, type) == 0) {
			return (resp_retry[i].retry);
		}
	}
	return (RETRY_LATER);
}

/* An ["error", {type, description}, cid] answer as ERR_SERVER. */
static int
method_error(json_t *args, const char *name, char *type_r, size_t cap,
    struct jmap_err *e)
{
	const char *type, *desc;

	type = json_string_value(json_object_get(args, "type"));
	desc = json_string_value(json_object_get(args, "description"));
	if (type == NULL) {
		return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
		    "%s: the server's error answer has no type", name));
	}
	if (type_r != NULL && cap > 0) {
		snprintf(type_r, cap, "%s", type);
	}
	if (desc != NULL && desc[0] != '\0') {
		return (jmap_err_set(e, ERR_SERVER, retry_of(type),
		    "%s: %s: %s", name, type, desc));
	}
	return (
	    jmap_err_set(e, ERR_SERVER, retry_of(type), "%s: %s", name, type));
}

int
jmap_response(json_t *responses, const char *cid, const char *name,
    json_t **args_r, char *type_r, size_t cap, struct jmap_err *e)
{
	json_t *r, *err_args = NULL;
	const char *rname, *rcid, *other = NULL;
	size_t i;

	*args_r = NULL;
	if (type_r != NULL && cap > 0) {
		type_r[0] = '\0';
	}
	if (!json_is_array(responses)) {
		return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
		    "%s: methodResponses is not an array", name));
	}
	json_array_foreach(responses, i, r)
	{
		rname = json_string_value(json_array_get(r, 0));
		rcid = json_string_value(json_array_get(r, 2));
		if (!json_is_array(r) || json_array_size(r) != 3
		    || rname == NULL || rcid == NULL
		    || !json_is_object(json_array_get(r, 1))) {
			return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
			    "%s: methodResponses[%zu] is not [name, "
			    "arguments, id]",
			    name, i));
		}
		if (strcmp(rcid, cid) != 0) {
			continue;
		}
		if (strcmp(rname, name) == 0) {
			*args_r = json_array_get(r, 1);
			return (ERR_OK);
		}
		if (strcmp(rname, "error") == 0) {
			if (err_args == NULL) {
				err_args = json_array_get(r, 1);
			}
		} else if (other == NULL) {
			other = rname;
		}
	}
	if (err_args != NULL) {
		return (method_error(err_args, name, type_r, cap, e));
	}
	if (other != NULL) {
		return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
		    "%s: call \"%.64s\" was answered by %.64s", name, cid,
		    other));
	}
	return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
	    "%s: no answer to call \"%.64s\"", name, cid));
}
