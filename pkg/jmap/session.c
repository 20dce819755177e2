/*
 * session.c: the JMAP session object (RFC 8620 2) parsed into struct
 * jmap_session. Pure: the text is given, nothing is fetched.
 *
 * Required: the mail capability, a primary mail account, apiUrl,
 * downloadUrl and uploadUrl. URLs are resolved against the URL the
 * session came from (Cyrus gives "/jmap/"); each must then be http or
 * https (whether plain http is allowed is the client's decision). Core
 * limits absent take the RFC's suggested minimums; present, each must be
 * a positive integer (a zero would make callers loop or divide by it).
 * Unknown members are ignored (Cyrus lists namespaces in primaryAccounts
 * that it has no capability for).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jmap/jmap_int.h"

#define CAP_CORE "urn:ietf:params:jmap:core"
#define CAP_MAIL "urn:ietf:params:jmap:mail"
#define CAP_SUBMISSION "urn:ietf:params:jmap:submission"

/* The core capability's limits: member, default, field, and its width. */
struct limit {
	const char *member;
	uint64_t dflt;
	size_t off;
	bool wide; /* uint64_t field, else uint32_t */
};

static const struct limit session_limits[] = {
	{ "maxCallsInRequest", 16,
	    offsetof(struct jmap_session, max_calls_in_request), false },
	{ "maxObjectsInGet", 500,
	    offsetof(struct jmap_session, max_objects_in_get), false },
	{ "maxObjectsInSet", 500,
	    offsetof(struct jmap_session, max_objects_in_set), false },
	{ "maxSizeRequest", 10u * 1024 * 1024,
	    offsetof(struct jmap_session, max_size_request), true },
	{ "maxSizeUpload", 50u * 1024 * 1024,
	    offsetof(struct jmap_session, max_size_upload), true },
	{ "maxConcurrentRequests", 4,
	    offsetof(struct jmap_session, max_concurrent_requests), false },
};

/* The URL members: member, field, required. */
static const struct {
	const char *member;
	size_t off;
	bool required;
} session_urls[] = {
	{ "apiUrl", offsetof(struct jmap_session, api_url), true },
	{ "downloadUrl", offsetof(struct jmap_session, download_url), true },
	{ "uploadUrl", offsetof(struct jmap_session, upload_url), true },
	{ "eventSourceUrl", offsetof(struct jmap_session, event_source_url),
	    false },
};

/* A JSON number that is a whole number >= 1, clamped to max. */
static bool
positive(json_t *v, uint64_t max, uint64_t *out)
{
	double d;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 1) {
			return (false);
		}
		*out = (uint64_t)json_integer_value(v);
	} else if (json_is_real(v)) {
		/* "5e7" from a server that writes every number as a double */
		d = json_real_value(v);
		if (!(d >= 1)) {
			return (false);
		}
		if (d >= 1e19) { /* below 2^64: the cast under it is defined */
			*out = UINT64_MAX;
		} else if ((double)(uint64_t)d != d) {
			return (false);
		} else {
			*out = (uint64_t)d;
		}
	} else {
		return (false);
	}
	if (*out > max) {
		*out = max;
	}
	return (true);
}

static int
parse_limits(json_t *core, const char *shown, struct jmap_session *s,
    struct jmap_err *e)
{
	const struct limit *l;
	json_t *v;
	uint64_t n;
	size_t i;

	for (i = 0; i < ARRAY_LEN(session_limits); i++) {
		l = &session_limits[i];
		n = l->dflt;
		v = json_object_get(core, l->member);
		if (v != NULL && !json_is_null(v)
		    && !positive(v, l->wide ? UINT64_MAX : UINT32_MAX, &n)) {
			return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
			    "JMAP session at %s: %s is not a positive integer",
			    shown, l->member));
		}
		if (l->wide) {
			*(uint64_t *)(void *)((char *)s + l->off) = n;
		} else {
			*(uint32_t *)(void *)((char *)s + l->off)
			    = (uint32_t)n;
		}
	}
	return (ERR_OK);
}

static int
parse_urls(json_t *root, const char *base_url, const char *shown,
    struct jmap_session *s, struct jmap_err *e)
{
	const char *v;
	char **field;
	size_t i;
	int rv;

	for (i = 0; i < ARRAY_LEN(session_urls); i++) {
		field = (char **)(void *)((char *)s + session_urls[i].off);
		v = json_string_value(
		    json_object_get(root, session_urls[i].member));
		if (v == NULL || v[0] == '\0') {
			if (!session_urls[i].required
			    && (json_object_get(root, session_urls[i].member)
			            == NULL
			        || json_is_null(json_object_get(
			            root, session_urls[i].member)))) {
				continue;
			}
			return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
			    "JMAP session at %s: %s is %s", shown,
			    session_urls[i].member,
			    v == NULL ? "missing or not a string" : "empty"));
		}
		rv = jmap_url_resolve(base_url, v, field);
		if (rv == ERR_NOMEM) {
			return (
			    jmap_err_set(e, rv, RETRY_LATER, "out of memory"));
		}
		if (rv == ERR_TOOBIG) {
			return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
			    "JMAP session at %s: %s is longer than %u bytes",
			    shown, session_urls[i].member, JMAP_URL_MAX));
		}
		if (rv != 0
		    || (!jmap_url_has_scheme(*field, "http")
		        && !jmap_url_has_scheme(*field, "https"))) {
			return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
			    "JMAP session at %s: %s \"%.100s\" is not an "
			    "http(s) URL",
			    shown, session_urls[i].member, v));
		}
	}
	return (ERR_OK);
}

/*
 * Whether the mail account offers submission: the session capability,
 * and either the account is the primary one for submission or its own
 * capabilities (when listed) name it. Cyrus 3.6 names submission in
 * primaryAccounts but not in the account's capabilities until it has
 * been used, and EmailSubmission/set works there.
 */
static bool
has_submission(json_t *root, json_t *caps, const char *account_id)
{
	const char *primary;
	json_t *acaps;

	if (json_object_get(caps, CAP_SUBMISSION) == NULL) {
		return (false);
	}
	primary = json_string_value(json_object_get(
	    json_object_get(root, "primaryAccounts"), CAP_SUBMISSION));
	if (primary != NULL && strcmp(primary, account_id) == 0) {
		return (true);
	}
	acaps = json_object_get(
	    json_object_get(json_object_get(root, "accounts"), account_id),
	    "accountCapabilities");
	return (!json_is_object(acaps)
	    || json_object_get(acaps, CAP_SUBMISSION) != NULL);
}

static int
parse_root(json_t *root, const char *base_url, const char *shown,
    struct jmap_session *s, struct jmap_err *e)
{
	json_t *caps, *core, *state;
	const char *account;
	int rv;

	if (!json_is_object(root)) {
		return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
		    "JMAP session at %s is not a JSON object", shown));
	}
	caps = json_object_get(root, "capabilities");
	if (!json_is_object(caps)) {
		return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
		    "JMAP session at %s has no capabilities object", shown));
	}
	if (json_object_get(caps, CAP_MAIL) == NULL) {
		return (jmap_err_set(e, ERR_PROTO, RETRY_NEVER,
		    "JMAP session at %s lacks the mail capability (" CAP_MAIL
		    ")",
		    shown));
	}
	account = json_string_value(json_object_get(
	    json_object_get(root, "primaryAccounts"), CAP_MAIL));
	if (account == NULL || account[0] == '\0') {
		return (jmap_err_set(e, ERR_PROTO, RETRY_NEVER,
		    "JMAP session at %s has no primary mail account "
		    "(primaryAccounts[\"" CAP_MAIL "\"])",
		    shown));
	}
	core = json_object_get(caps, CAP_CORE);
	if (core != NULL && !json_is_object(core)) {
		return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
		    "JMAP session at %s: capability " CAP_CORE
		    " is not an object",
		    shown));
	}
	rv = parse_limits(core, shown, s, e);
	if (rv == 0) {
		rv = parse_urls(root, base_url, shown, s, e);
	}
	if (rv != 0) {
		return (rv);
	}
	state = json_object_get(root, "state");
	if (state != NULL && !json_is_string(state)) {
		return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
		    "JMAP session at %s: state is not a string", shown));
	}
	s->account_id = xstrdup(account);
	s->state = xstrdup(state != NULL ? json_string_value(state) : "");
	if (s->account_id == NULL || s->state == NULL) {
		return (
		    jmap_err_set(e, ERR_NOMEM, RETRY_LATER, "out of memory"));
	}
	s->submission = has_submission(root, caps, account);
	return (ERR_OK);
}

int
jmap_session_parse(const char *text, size_t len, const char *base_url,
    struct jmap_session *s, struct jmap_err *e)
{
	char shown[JMAP_URL_SHOWN + 8];
	json_error_t je;
	json_t *root;
	int rv;

	memset(s, 0, sizeof(*s));
	jmap_url_shown(base_url, shown, sizeof(shown));
	if (base_url == NULL || text == NULL) {
		return (jmap_err_set(e, ERR_INVAL, RETRY_NEVER,
		    "JMAP session: no text or no URL"));
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		return (jmap_err_set(e, ERR_PROTO, RETRY_LATER,
		    "JMAP session at %s is not JSON: %s (line %d)", shown,
		    je.text, je.line));
	}
	rv = parse_root(root, base_url, shown, s, e);
	json_decref(root);
	if (rv != 0) {
		jmap_session_release(s);
	}
	return (rv);
}

void
jmap_session_release(struct jmap_session *s)
{
	if (s == NULL) {
		return;
	}
	free(s->api_url);
	free(s->download_url);
	free(s->upload_url);
	free(s->event_source_url);
	free(s->account_id);
	free(s->state);
	memset(s, 0, sizeof(*s));
}
