/*
 * jmap_drain_plan.c: the pure part of the JMAP drain job
 * (jmap_drain_int.h): Email/set patches built from a change, rounds of
 * changes to one Email, what a SetError means for a change, the
 * submission envelope read from the message, and the packing of objects
 * into calls and requests under the session's limits. No I/O.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jmap_drain_int.h"
#include "mime/mime.h"

/* Keyword characters RFC 8621 2.1 excludes besides controls and space. */
static const char jdrain_kw_forbidden[] = "(){]%*\"\\";

int
jdrain_keyword(const char *kw, size_t len, char *out, size_t cap)
{
	size_t i;

	if (len == 0 || len > JDRAIN_MAX_KEYWORD) {
		return (ERR_INVAL);
	}
	if (cap < len + 1) {
		return (ERR_TOOBIG);
	}
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)kw[i];

		if (ch < 0x21 || ch > 0x7e
		    || strchr(jdrain_kw_forbidden, ch) != NULL) {
			return (ERR_INVAL);
		}
		out[i] = (char)tolower(ch);
	}
	out[len] = '\0';
	return (ERR_OK);
}

int
jdrain_keyword_path(const char *kw, size_t len, char *out, size_t cap)
{
	static const char prefix[] = "keywords/";
	char k[JDRAIN_MAX_KEYWORD + 1];
	size_t i, o = sizeof(prefix) - 1;
	int rv;

	rv = jdrain_keyword(kw, len, k, sizeof(k));
	if (rv != 0) {
		return (rv);
	}
	if (cap < o + 1) {
		return (ERR_TOOBIG);
	}
	memcpy(out, prefix, o);
	for (i = 0; i < len; i++) {
		const char *esc
		    = k[i] == '~' ? "~0" : (k[i] == '/' ? "~1" : NULL);

		if (o + (esc != NULL ? 2 : 1) + 1 > cap) {
			return (ERR_TOOBIG);
		}
		if (esc != NULL) {
			out[o++] = esc[0];
			out[o++] = esc[1];
		} else {
			out[o++] = k[i];
		}
	}
	out[o] = '\0';
	return (ERR_OK);
}

/* Sets "keywords/<k>" (as_path) or "<k>" to v (reference taken) in o. */
static int
set_keyword(json_t *o, const char *kw, size_t len, json_t *v, bool as_path)
{
	char key[JDRAIN_MAX_PATH];
	int rv;

	rv = as_path ? jdrain_keyword_path(kw, len, key, sizeof(key))
	             : jdrain_keyword(kw, len, key, sizeof(key));
	if (rv != 0) {
		json_decref(v);
		return (rv);
	}
	return (json_object_set_new(o, key, v) == 0 ? ERR_OK : ERR_NOMEM);
}

/* The PROTO_FLAG_* bits of flags, then the keywords of list (space-
 * separated), each set to true (add) or null in o. */
static int
set_keywords(
    json_t *o, uint32_t flags, struct proto_str list, bool add, bool as_path)
{
	size_t i, start;
	int rv = ERR_OK;

	for (i = 0; rv == 0 && i < ARRAY_LEN(sync_jmap_flags); i++) {
		if ((flags & sync_jmap_flags[i].bit) != 0) {
			const char *k = sync_jmap_flags[i].keyword;

			rv = set_keyword(o, k, strlen(k),
			    add ? json_true() : json_null(), as_path);
		}
	}
	for (i = 0; rv == 0 && list.p != NULL && i < list.len;) {
		while (i < list.len && list.p[i] == ' ') {
			i++;
		}
		start = i;
		while (i < list.len && list.p[i] != ' ') {
			i++;
		}
		if (i > start) {
			rv = set_keyword(o, list.p + start, i - start,
			    add ? json_true() : json_null(), as_path);
		}
	}
	return (rv);
}

int
jdrain_keywords(uint32_t flags, struct proto_str list, json_t **obj_r)
{
	json_t *o = json_object();
	int rv;

	*obj_r = NULL;
	if (o == NULL) {
		return (ERR_NOMEM);
	}
	rv = set_keywords(o, flags, list, true, false);
	if (rv != 0) {
		json_decref(o);
		return (rv);
	}
	*obj_r = o;
	return (ERR_OK);
}

/* "mailboxIds/<id>": v (reference taken). */
static int
set_mailbox(json_t *patch, const char *id, json_t *v)
{
	char path[512];

	if (snprintf(path, sizeof(path), "mailboxIds/%s", id)
	    >= (int)sizeof(path)) {
		json_decref(v);
		return (ERR_INVAL);
	}
	return (json_object_set_new(patch, path, v) == 0 ? ERR_OK : ERR_NOMEM);
}

int
jdrain_patch(const struct proto_change *c, const char *src_id,
    const char *dst_id, json_t **patch_r)
{
	json_t *patch;
	int rv = ERR_OK;

	*patch_r = NULL;
	patch = json_object();
	if (patch == NULL) {
		return (ERR_NOMEM);
	}
	if (c->kind == CHANGE_FLAG) {
		/* Adds first: a keyword in both lists ends removed. */
		rv = set_keywords(
		    patch, c->flags_add, c->keywords_add, true, true);
		if (rv == 0) {
			rv = set_keywords(patch, c->flags_remove,
			    c->keywords_remove, false, true);
		}
	} else {
		if (src_id != NULL && dst_id != NULL
		    && strcmp(src_id, dst_id) == 0) {
			src_id = NULL; /* already there: only make sure */
		}
		if (src_id != NULL) {
			rv = set_mailbox(patch, src_id, json_null());
		}
		if (rv == 0 && dst_id != NULL) {
			rv = set_mailbox(patch, dst_id, json_true());
		}
	}
	if (rv == 0 && json_object_size(patch) == 0) {
		rv = ERR_NOTFOUND;
	}
	if (rv != 0) {
		json_decref(patch);
		return (rv);
	}
	*patch_r = patch;
	return (ERR_OK);
}

/* Sort key of jdrain_rounds: the Email id, then the change's position. */
struct round_key {
	const struct proto_change *c;
	size_t i;
};

static int
round_cmp(const void *a, const void *b)
{
	const struct round_key *x = a, *y = b;
	size_t n = x->c->remote_id.len < y->c->remote_id.len
	    ? x->c->remote_id.len
	    : y->c->remote_id.len;
	int r = n > 0 ? memcmp(x->c->remote_id.p, y->c->remote_id.p, n) : 0;

	if (r == 0 && x->c->remote_id.len != y->c->remote_id.len) {
		r = x->c->remote_id.len < y->c->remote_id.len ? -1 : 1;
	}
	if (r == 0) {
		r = x->i < y->i ? -1 : (x->i > y->i ? 1 : 0);
	}
	return (r);
}

uint32_t
jdrain_rounds(const struct proto_change *const *chg, size_t n, uint32_t *round,
    int *rv_r)
{
	struct round_key *k;
	uint32_t max = 0;
	size_t i;

	*rv_r = ERR_OK;
	if (n == 0) {
		return (0);
	}
	k = calloc(n, sizeof(*k));
	if (k == NULL) {
		*rv_r = ERR_NOMEM;
		return (0);
	}
	for (i = 0; i < n; i++) {
		k[i].c = chg[i];
		k[i].i = i;
	}
	/* Sorted by id then position, each run of one id counts 0, 1, ... */
	qsort(k, n, sizeof(*k), round_cmp);
	for (i = 0; i < n; i++) {
		uint32_t r = 0;

		if (i > 0
		    && drain_str_same(
		        k[i].c->remote_id, k[i - 1].c->remote_id)) {
			r = round[k[i - 1].i] + 1;
		}
		round[k[i].i] = r;
		max = r > max ? r : max;
	}
	free(k);
	return (max + 1);
}

/* Error types of a passing condition (RFC 8620 3.6.2, 5.3; RFC 8621). */
static const char *const jdrain_transient[]
    = { "serverFail", "serverUnavailable", "serverPartialFail", "rateLimit",
	      "stateMismatch", "tooManyChanges", "requestTooLarge" };

uint8_t
jdrain_error_outcome(const char *type)
{
	size_t i;

	for (i = 0; type != NULL && i < ARRAY_LEN(jdrain_transient); i++) {
		if (strcmp(type, jdrain_transient[i]) == 0) {
			return (CHANGE_OUT_RETRY);
		}
	}
	return (CHANGE_OUT_DEAD);
}

void
jdrain_error_text(json_t *err, const char *what, char *type, size_t tcap,
    char *text, size_t cap)
{
	const char *t = json_string_value(json_object_get(err, "type"));
	const char *desc
	    = json_string_value(json_object_get(err, "description"));

	snprintf(type, tcap, "%s", t != NULL ? t : "unknown");
	if (desc != NULL && desc[0] != '\0') {
		drain_text(text, cap, "%s: %s: %s", what, type, desc);
	} else {
		drain_text(text, cap, "%s: %s", what, type);
	}
}

/* The first address of field `name` (malloc'd in *out_r; NULL with 0
 * when absent or empty). */
static int
first_addr(const char *msg, size_t len, const char *name, char **out_r)
{
	struct mime_addr_list l;
	int rv;

	*out_r = NULL;
	rv = mime_header_addrs(msg, len, name, &l);
	if (rv == 0 && l.n > 0) {
		*out_r = strdup(l.v[0].addr);
		rv = *out_r != NULL ? ERR_OK : ERR_NOMEM;
	}
	mime_addr_list_release(&l);
	return (rv);
}

/* Appends every address of field `name` to rcpt (repeats skipped). */
static int
add_rcpts(const char *msg, size_t len, const char *name, json_t *rcpt)
{
	struct mime_addr_list l;
	json_t *o;
	size_t i, k;
	int rv;

	rv = mime_header_addrs(msg, len, name, &l);
	for (i = 0; rv == 0 && i < l.n; i++) {
		bool seen = false;

		json_array_foreach(rcpt, k, o)
		{
			const char *a
			    = json_string_value(json_object_get(o, "email"));

			seen = seen || strcasecmp(a, l.v[i].addr) == 0;
		}
		if (!seen
		    && json_array_append_new(
		           rcpt, json_pack("{s:s}", "email", l.v[i].addr))
		        != 0) {
			rv = ERR_NOMEM;
		}
	}
	mime_addr_list_release(&l);
	return (rv);
}

int
jdrain_envelope(const char *msg, size_t len, json_t **env_r, char **from_r)
{
	static const char *const fields[] = { "To", "Cc", "Bcc" };
	json_t *rcpt = NULL;
	char *sender = NULL;
	size_t i;
	int rv;

	*env_r = NULL;
	*from_r = NULL;
	rv = first_addr(msg, len, "From", from_r);
	if (rv == 0) {
		rv = first_addr(msg, len, "Sender", &sender);
	}
	if (rv == 0 && *from_r == NULL && sender == NULL) {
		rv = ERR_NOTFOUND;
	}
	if (rv == 0 && *from_r == NULL) {
		*from_r = strdup(sender);
		rv = *from_r != NULL ? ERR_OK : ERR_NOMEM;
	}
	if (rv == 0) {
		rcpt = json_array();
		rv = rcpt != NULL ? ERR_OK : ERR_NOMEM;
	}
	for (i = 0; rv == 0 && i < ARRAY_LEN(fields); i++) {
		rv = add_rcpts(msg, len, fields[i], rcpt);
	}
	if (rv == 0 && json_array_size(rcpt) == 0) {
		rv = ERR_NOTFOUND;
	}
	if (rv == 0) {
		/* Sender (the agent) is the envelope's return path, as smtp.c
		 * does; From names the author and chooses the Identity. */
		*env_r = json_pack("{s:{s:s}, s:O}", "mailFrom", "email",
		    sender != NULL ? sender : *from_r, "rcptTo", rcpt);
		rv = *env_r != NULL ? ERR_OK : ERR_NOMEM;
	}
	json_decref(rcpt);
	free(sender);
	if (rv != 0) {
		free(*from_r);
		*from_r = NULL;
	}
	return (rv);
}

/* Request limits ------------------------------------------------------- */

/* Room for ",\"ifInState\":\"<state>\"" of a guarded Email/set: the state
 * strings of Cyrus and Fastmail are tens of bytes. */
#define JDRAIN_STATE_ROOM 300u

/* Bytes of o as the client sends it (compact), 0 on ERR_NOMEM. Stolen. */
static size_t
json_bytes(json_t *o)
{
	char *s
	    = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	size_t n = s != NULL ? strlen(s) : 0;

	free(s);
	json_decref(o);
	return (n);
}

int
jdrain_limits_of(
    const struct jmap_session *s, bool get, struct jdrain_limits *l)
{
	size_t set, rd;

	memset(l, 0, sizeof(*l));
	l->objects = s->max_objects_in_set;
	if (get && s->max_objects_in_get < l->objects) {
		l->objects = s->max_objects_in_get;
	}
	if (l->objects == 0 || l->objects > JDRAIN_MAX_OBJECTS) {
		l->objects = JDRAIN_MAX_OBJECTS;
	}
	l->calls = get || s->max_calls_in_request == 0
	    ? 1
	    : s->max_calls_in_request;
	l->bytes = s->max_size_request > SIZE_MAX
	    ? SIZE_MAX
	    : (size_t)s->max_size_request;
	/* What pkg/jmap wraps the calls in (with every capability it may
	 * name, so this is never short). */
	l->envelope = json_bytes(json_pack("{s:[s,s,s],s:[]}", "using",
	    "urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
	    "urn:ietf:params:jmap:submission", "methodCalls"));
	/* A call with no object, the longest call id, and its comma. */
	set = json_bytes(json_pack("[s, {s:s, s:{}, s:[]}, s]", "Email/set",
	    "accountId", s->account_id != NULL ? s->account_id : "", "update",
	    "destroy", "u18446744073709551615"));
	rd = json_bytes(json_pack("[s, {s:s, s:[], s:[s]}, s]", "Email/get",
	    "accountId", s->account_id != NULL ? s->account_id : "", "ids",
	    "properties", "mailboxIds", "g"));
	if (l->envelope == 0 || set == 0 || rd == 0) {
		return (ERR_NOMEM);
	}
	l->call = 1 + set;
	if (get) {
		l->call += JDRAIN_STATE_ROOM;
		l->call = rd + 1 > l->call ? rd + 1 : l->call;
	}
	return (ERR_OK);
}

size_t
jdrain_entry_bytes(const char *id, json_t *patch)
{
	size_t n = json_bytes(json_string(id));

	if (n == 0) {
		return (0);
	}
	if (patch == NULL) {
		return (n + 1); /* "id", */
	}
	/* "id":{...}, (json_bytes steals: keep the caller's reference) */
	return (n + 1 + json_bytes(json_incref(patch)) + 1);
}

bool
jdrain_fits(const struct jdrain_limits *l, size_t bytes)
{
	return (l->envelope + l->call <= l->bytes
	    && bytes <= l->bytes - l->envelope - l->call);
}

size_t
jdrain_pack(const size_t *bytes, const uint32_t *round, size_t n,
    const struct jdrain_limits *l, struct jdrain_slot *slot, size_t *ncalls_r)
{
	size_t k, call = 0, req = 0, in_call = 0, calls = 0, used = 0;
	size_t max_obj = l->objects > 0 ? l->objects : 1;
	size_t max_calls = l->calls > 0 ? l->calls : 1;

	*ncalls_r = 0;
	if (n == 0) {
		return (0);
	}
	for (k = 0; k < n; k++) {
		bool first = k == 0;

		if (first || round[k] != round[k - 1] || in_call == max_obj
		    || used + bytes[k] > l->bytes) {
			/* a new call: in this request if it has room */
			if (!first) {
				call++;
			}
			if (first || calls == max_calls
			    || used + l->call + bytes[k] > l->bytes) {
				if (!first) {
					req++;
				}
				calls = 0;
				used = l->envelope;
			}
			calls++;
			used += l->call;
			in_call = 0;
		}
		in_call++;
		used += bytes[k];
		slot[k].call = call;
		slot[k].request = req;
	}
	*ncalls_r = call + 1;
	return (req + 1);
}
