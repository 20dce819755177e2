/*
 * jmap_session_test.c: the pure parts of pkg/jmap that read what a
 * server says: the session object (Cyrus 3.6 sessions, the lab README's
 * and the one recorded in tests/unit/data/jmap/; defaults; every
 * refusal), relative URL resolution (RFC 3986 5.4's examples), URL
 * templates, URLs shown without userinfo, and finding one method's
 * answer (or error) in methodResponses, recorded ones included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jmap/jmap.h"
#include "jmap/jmap_int.h"

/* Cyrus 3.6.1's session for alice, fetched from
 * http://127.0.0.1:18080/.well-known/jmap (redirected to /jmap), as
 * /work/shared/labs/cyrus/README.md section 6 records it. */
static const char cyrus_session[]
    = "{\"username\":\"alice\",\"apiUrl\":\"/jmap/\","
      "\"downloadUrl\":\"/jmap/download/{accountId}/{blobId}/{name}?accept="
      "{type}\","
      "\"uploadUrl\":\"/jmap/upload/{accountId}/\","
      "\"eventSourceUrl\":\"/jmap/eventsource/?types={types}&closeafter="
      "{closeafter}&ping={ping}\","
      "\"state\":\"0\","
      "\"capabilities\":{\"urn:ietf:params:jmap:core\":{"
      "\"maxSizeUpload\":1073741824,\"maxConcurrentUpload\":5,"
      "\"maxSizeRequest\":10485760,\"maxConcurrentRequests\":5,"
      "\"maxCallsInRequest\":50,\"maxObjectsInGet\":4096,"
      "\"maxObjectsInSet\":4096,\"collationAlgorithms\":[]},"
      "\"urn:ietf:params:jmap:mail\":{},"
      "\"urn:ietf:params:jmap:submission\":{},"
      "\"urn:ietf:params:jmap:vacationresponse\":{},"
      "\"urn:ietf:params:jmap:mdn\":{},"
      "\"https://cyrusimap.org/ns/jmap/sieve\":{}},"
      "\"accounts\":{\"alice\":{\"name\":\"alice\",\"isPrimary\":true,"
      "\"isPersonal\":true,\"isReadOnly\":false,\"accountCapabilities\":{"
      "\"urn:ietf:params:jmap:core\":{},"
      "\"urn:ietf:params:jmap:mail\":{\"maxMailboxesPerEmail\":20,"
      "\"maxKeywordsPerEmail\":100,\"maxSizeAttachmentsPerEmail\":10485760,"
      "\"emailsListSortOptions\":[\"receivedAt\",\"sentAt\",\"from\",\"id\","
      "\"emailstate\",\"size\",\"subject\",\"to\",\"hasKeyword\","
      "\"someInThreadHaveKeyword\"],\"mayCreateTopLevelMailbox\":true},"
      "\"urn:ietf:params:jmap:submission\":{\"maxDelayedSend\":44236800,"
      "\"submissionExtensions\":{\"size\":[\"52428800\"]}},"
      "\"urn:ietf:params:jmap:mdn\":{},"
      "\"https://cyrusimap.org/ns/jmap/sieve\":{},"
      "\"urn:ietf:params:jmap:vacationresponse\":{}}}},"
      "\"primaryAccounts\":{\"urn:ietf:params:jmap:mail\":\"alice\","
      "\"urn:ietf:params:jmap:submission\":\"alice\","
      "\"https://cyrusimap.org/ns/jmap/contacts\":\"alice\","
      "\"https://cyrusimap.org/ns/jmap/calendars\":\"alice\","
      "\"https://cyrusimap.org/ns/jmap/backup\":\"alice\","
      "\"urn:ietf:params:jmap:vacationresponse\":\"alice\","
      "\"https://cyrusimap.org/ns/jmap/sieve\":\"alice\"}}";

static void
test_cyrus_session(void **state)
{
	struct jmap_session s;
	struct jmap_err e;

	(void)state;
	memset(&e, 0, sizeof(e));
	assert_int_equal(
	    jmap_session_parse(cyrus_session, strlen(cyrus_session),
	        "http://127.0.0.1:18080/jmap", &s, &e),
	    0);
	assert_int_equal(e.status, 0);
	assert_string_equal(s.api_url, "http://127.0.0.1:18080/jmap/");
	assert_string_equal(s.download_url,
	    "http://127.0.0.1:18080/jmap/download/{accountId}/{blobId}/"
	    "{name}?accept={type}");
	assert_string_equal(
	    s.upload_url, "http://127.0.0.1:18080/jmap/upload/{accountId}/");
	assert_string_equal(s.event_source_url,
	    "http://127.0.0.1:18080/jmap/eventsource/?types={types}&"
	    "closeafter={closeafter}&ping={ping}");
	assert_string_equal(s.account_id, "alice");
	assert_string_equal(s.state, "0");
	assert_true(s.submission);
	assert_int_equal(s.max_calls_in_request, 50);
	assert_int_equal(s.max_objects_in_get, 4096);
	assert_int_equal(s.max_objects_in_set, 4096);
	assert_int_equal(s.max_size_request, 10485760);
	assert_int_equal(s.max_size_upload, 1073741824);
	assert_int_equal(s.max_concurrent_requests, 5);
	jmap_session_release(&s);
	assert_null(s.api_url);
	jmap_session_release(&s); /* twice is harmless */
}

/* Reads tests/unit/data/jmap/<name> (real Cyrus 3.6 answers, see its
 * README.md) into a malloc'd, NUL-terminated buffer. */
static char *
load_recorded(const char *name, size_t *len_r)
{
	char path[256], *text;
	FILE *f;

	snprintf(path, sizeof(path), "tests/unit/data/jmap/%s", name);
	f = fopen(path, "rb");
	if (f == NULL) {
		fail_msg(
		    "cannot open %s (run from the repository root)", path);
	}
	text = malloc(1 << 20);
	assert_non_null(text);
	*len_r = fread(text, 1, (1 << 20) - 1, f);
	text[*len_r] = '\0';
	fclose(f);
	return (text);
}

/* The session a real Cyrus 3.6 sent (byte for byte), from the URL its
 * /.well-known/jmap redirects to. */
static void
test_recorded_session(void **state)
{
	struct jmap_session s;
	struct jmap_err e;
	size_t len;
	char *text;

	(void)state;
	text = load_recorded("session.json", &len);
	memset(&e, 0, sizeof(e));
	if (jmap_session_parse(
	        text, len, "http://127.0.0.1:18080/jmap", &s, &e)
	    != 0) {
		fail_msg("session.json: %s", e.text);
	}
	assert_string_equal(s.api_url, "http://127.0.0.1:18080/jmap/");
	assert_string_equal(
	    s.upload_url, "http://127.0.0.1:18080/jmap/upload/{accountId}/");
	assert_non_null(s.event_source_url);
	assert_string_equal(s.account_id, "alice");
	assert_string_equal(s.state, "0");
	assert_true(s.submission);
	assert_int_equal(s.max_calls_in_request, 50);
	assert_int_equal(s.max_size_upload, 1073741824);
	jmap_session_release(&s);
	free(text);
}

/* Real method answers: each found by its name and call id. */
static void
test_recorded_responses(void **state)
{
	static const struct {
		const char *file, *name, *cid, *member;
	} rec[] = {
		{ "mailbox_get.json", "Mailbox/get", "m", "list" },
		{ "email_get.json", "Email/get", "g", "list" },
		{ "email_changes.json", "Email/changes", "c", "newState" },
	};
	json_t *root, *args;
	struct jmap_err e;
	size_t i, len;
	char *text;

	(void)state;
	for (i = 0; i < ARRAY_LEN(rec); i++) {
		text = load_recorded(rec[i].file, &len);
		root = json_loadb(text, len, 0, NULL);
		assert_non_null(root);
		memset(&e, 0, sizeof(e));
		if (jmap_response(json_object_get(root, "methodResponses"),
		        rec[i].cid, rec[i].name, &args, NULL, 0, &e)
		    != 0) {
			fail_msg("%s: %s", rec[i].file, e.text);
		}
		assert_non_null(json_object_get(args, rec[i].member));
		json_decref(root);
		free(text);
	}
}

static void
test_defaults(void **state)
{
	static const char text[]
	    = "{\"capabilities\":{\"urn:ietf:params:jmap:mail\":{}},"
	      "\"primaryAccounts\":{\"urn:ietf:params:jmap:mail\":\"u1\"},"
	      "\"apiUrl\":\"https://other.example/api\","
	      "\"downloadUrl\":\"../dl/{blobId}\","
	      "\"uploadUrl\":\"up/\",\"eventSourceUrl\":null,"
	      "\"state\":\"s7\"}";
	struct jmap_session s;
	struct jmap_err e;

	(void)state;
	assert_int_equal(jmap_session_parse(text, strlen(text),
	                     "https://h.example:8443/a/b/session", &s, &e),
	    0);
	assert_string_equal(s.api_url, "https://other.example/api");
	assert_string_equal(
	    s.download_url, "https://h.example:8443/a/dl/{blobId}");
	assert_string_equal(s.upload_url, "https://h.example:8443/a/b/up/");
	assert_null(s.event_source_url);
	assert_string_equal(s.account_id, "u1");
	assert_string_equal(s.state, "s7");
	assert_false(s.submission);
	assert_int_equal(s.max_calls_in_request, 16);
	assert_int_equal(s.max_objects_in_get, 500);
	assert_int_equal(s.max_objects_in_set, 500);
	assert_int_equal(s.max_size_request, 10 * 1024 * 1024);
	assert_int_equal(s.max_size_upload, 50 * 1024 * 1024);
	assert_int_equal(s.max_concurrent_requests, 4);
	jmap_session_release(&s);
}

/* Limits: doubles that are whole numbers pass, huge ones are clamped. */
static void
test_limits_forms(void **state)
{
	static const char text[]
	    = "{\"capabilities\":{\"urn:ietf:params:jmap:mail\":{},"
	      "\"urn:ietf:params:jmap:core\":{\"maxCallsInRequest\":32.0,"
	      "\"maxObjectsInGet\":99999999999,\"maxSizeUpload\":1e30}},"
	      "\"primaryAccounts\":{\"urn:ietf:params:jmap:mail\":\"u\"},"
	      "\"apiUrl\":\"/a\",\"downloadUrl\":\"/d\",\"uploadUrl\":\"/u\"}";
	struct jmap_session s;
	struct jmap_err e;

	(void)state;
	assert_int_equal(
	    jmap_session_parse(text, strlen(text), "http://h/", &s, &e), 0);
	assert_int_equal(s.max_calls_in_request, 32);
	assert_int_equal(s.max_objects_in_get, UINT32_MAX);
	assert_true(s.max_size_upload == UINT64_MAX);
	assert_string_equal(s.state, "");
	jmap_session_release(&s);
}

/* Submission offered by the session but not by the mail account. */
static void
test_submission_not_for_account(void **state)
{
	static const char text[]
	    = "{\"capabilities\":{\"urn:ietf:params:jmap:mail\":{},"
	      "\"urn:ietf:params:jmap:submission\":{}},"
	      "\"accounts\":{\"u\":{\"accountCapabilities\":{"
	      "\"urn:ietf:params:jmap:mail\":{}}}},"
	      "\"primaryAccounts\":{\"urn:ietf:params:jmap:mail\":\"u\"},"
	      "\"apiUrl\":\"/a\",\"downloadUrl\":\"/d\",\"uploadUrl\":\"/u\"}";
	static const char text_primary[]
	    = "{\"capabilities\":{\"urn:ietf:params:jmap:mail\":{},"
	      "\"urn:ietf:params:jmap:submission\":{}},"
	      "\"accounts\":{\"u\":{\"accountCapabilities\":{"
	      "\"urn:ietf:params:jmap:mail\":{}}}},"
	      "\"primaryAccounts\":{\"urn:ietf:params:jmap:mail\":\"u\","
	      "\"urn:ietf:params:jmap:submission\":\"u\"},"
	      "\"apiUrl\":\"/a\",\"downloadUrl\":\"/d\",\"uploadUrl\":\"/u\"}";
	struct jmap_session s;
	struct jmap_err e;

	(void)state;
	assert_int_equal(
	    jmap_session_parse(text, strlen(text), "http://h/", &s, &e), 0);
	assert_false(s.submission);
	jmap_session_release(&s);
	/* ... unless it is the primary account for submission, as a Cyrus
	 * 3.6 that has not sent anything yet says */
	assert_int_equal(jmap_session_parse(text_primary, strlen(text_primary),
	                     "http://h/", &s, &e),
	    0);
	assert_true(s.submission);
	jmap_session_release(&s);
}

#define GOOD_CAPS "\"capabilities\":{\"urn:ietf:params:jmap:mail\":{}}"
#define GOOD_PRIMARY                                                          \
	"\"primaryAccounts\":{\"urn:ietf:params:jmap:mail\":\"u\"}"
#define GOOD_URLS                                                             \
	"\"apiUrl\":\"/a\",\"downloadUrl\":\"/d\",\"uploadUrl\":\"/u\""

/* Sessions refused, and a word the error text must hold. */
static const struct {
	const char *text;
	const char *why;
} bad_sessions[] = {
	{ "", "is not JSON" },
	{ "<html>Moved</html>", "is not JSON" },
	{ "{\"apiUrl\":", "is not JSON" },
	{ "[1,2]", "not a JSON object" },
	{ "{" GOOD_PRIMARY "," GOOD_URLS "}", "no capabilities" },
	{ "{\"capabilities\":[]," GOOD_PRIMARY "," GOOD_URLS "}",
	    "no capabilities" },
	{ "{\"capabilities\":{\"urn:ietf:params:jmap:core\":{}}," GOOD_PRIMARY
	  "," GOOD_URLS "}",
	    "lacks the mail capability" },
	{ "{" GOOD_CAPS "," GOOD_URLS "}", "no primary mail account" },
	{ "{" GOOD_CAPS ",\"primaryAccounts\":{\"urn:ietf:params:jmap:"
	  "submission\":\"u\"}," GOOD_URLS "}",
	    "no primary mail account" },
	{ "{" GOOD_CAPS ",\"primaryAccounts\":{\"urn:ietf:params:jmap:"
	  "mail\":7}," GOOD_URLS "}",
	    "no primary mail account" },
	{ "{" GOOD_CAPS ",\"primaryAccounts\":{\"urn:ietf:params:jmap:"
	  "mail\":\"\"}," GOOD_URLS "}",
	    "no primary mail account" },
	{ "{" GOOD_CAPS "," GOOD_PRIMARY
	  ",\"downloadUrl\":\"/d\",\"uploadUrl\":\"/u\"}",
	    "apiUrl is missing" },
	{ "{" GOOD_CAPS "," GOOD_PRIMARY
	  ",\"apiUrl\":\"\",\"downloadUrl\":\"/d\",\"uploadUrl\":\"/u\"}",
	    "apiUrl is empty" },
	{ "{" GOOD_CAPS "," GOOD_PRIMARY
	  ",\"apiUrl\":\"/a\",\"downloadUrl\":5,\"uploadUrl\":\"/u\"}",
	    "downloadUrl is missing or not a string" },
	{ "{" GOOD_CAPS "," GOOD_PRIMARY
	  ",\"apiUrl\":\"/a\",\"downloadUrl\":\"/d\"}",
	    "uploadUrl is missing" },
	{ "{" GOOD_CAPS "," GOOD_PRIMARY "," GOOD_URLS
	  ",\"eventSourceUrl\":3}",
	    "eventSourceUrl is missing or not a string" },
	{ "{" GOOD_CAPS "," GOOD_PRIMARY
	  ",\"apiUrl\":\"ftp://h/a\",\"downloadUrl\":\"/d\","
	  "\"uploadUrl\":\"/u\"}",
	    "apiUrl \"ftp://h/a\" is not an http(s) URL" },
	{ "{" GOOD_CAPS "," GOOD_PRIMARY
	  ",\"apiUrl\":\"mailto:x@y\",\"downloadUrl\":\"/d\","
	  "\"uploadUrl\":\"/u\"}",
	    "is not an http(s) URL" },
	{ "{\"capabilities\":{\"urn:ietf:params:jmap:mail\":{},"
	  "\"urn:ietf:params:jmap:core\":[]}," GOOD_PRIMARY "," GOOD_URLS "}",
	    "is not an object" },
	{ "{\"capabilities\":{\"urn:ietf:params:jmap:mail\":{},"
	  "\"urn:ietf:params:jmap:core\":{\"maxCallsInRequest\":0}}"
	  "," GOOD_PRIMARY "," GOOD_URLS "}",
	    "maxCallsInRequest is not a positive integer" },
	{ "{\"capabilities\":{\"urn:ietf:params:jmap:mail\":{},"
	  "\"urn:ietf:params:jmap:core\":{\"maxObjectsInGet\":-5}}"
	  "," GOOD_PRIMARY "," GOOD_URLS "}",
	    "maxObjectsInGet is not a positive integer" },
	{ "{\"capabilities\":{\"urn:ietf:params:jmap:mail\":{},"
	  "\"urn:ietf:params:jmap:core\":{\"maxSizeRequest\":\"10\"}}"
	  "," GOOD_PRIMARY "," GOOD_URLS "}",
	    "maxSizeRequest is not a positive integer" },
	{ "{\"capabilities\":{\"urn:ietf:params:jmap:mail\":{},"
	  "\"urn:ietf:params:jmap:core\":{\"maxSizeUpload\":2.5}}"
	  "," GOOD_PRIMARY "," GOOD_URLS "}",
	    "maxSizeUpload is not a positive integer" },
	{ "{" GOOD_CAPS "," GOOD_PRIMARY "," GOOD_URLS ",\"state\":1}",
	    "state is not a string" },
	{ "{" GOOD_CAPS "," GOOD_CAPS "," GOOD_PRIMARY "," GOOD_URLS "}",
	    "duplicate" },
};

static void
test_bad_sessions(void **state)
{
	struct jmap_session s;
	struct jmap_err e;
	size_t i;
	int rv;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad_sessions); i++) {
		memset(&e, 0, sizeof(e));
		memset(&s, 0x5a, sizeof(s));
		rv = jmap_session_parse(bad_sessions[i].text,
		    strlen(bad_sessions[i].text),
		    "https://u:pw@h.example/jmap", &s, &e);
		if (rv != ERR_PROTO || e.status != ERR_PROTO
		    || strstr(e.text, bad_sessions[i].why) == NULL
		    || strstr(e.text, "https://h.example/jmap") == NULL) {
			fail_msg("#%zu: rv %d, text \"%s\", want \"%s\"", i,
			    rv, e.text, bad_sessions[i].why);
		}
		/* no credential of the URL in the text, nothing left held */
		assert_null(strstr(e.text, "pw"));
		assert_null(s.api_url);
		assert_null(s.account_id);
	}
}

/* RFC 3986 5.4: base "http://a/b/c/d;p?q", normal and abnormal examples,
 * plus what JMAP servers give. */
static const struct {
	const char *base, *ref, *want;
} resolve_cases[] = {
	{ "http://a/b/c/d;p?q", "g:h", "g:h" },
	{ "http://a/b/c/d;p?q", "g", "http://a/b/c/g" },
	{ "http://a/b/c/d;p?q", "./g", "http://a/b/c/g" },
	{ "http://a/b/c/d;p?q", "g/", "http://a/b/c/g/" },
	{ "http://a/b/c/d;p?q", "/g", "http://a/g" },
	{ "http://a/b/c/d;p?q", "//g", "http://g" },
	{ "http://a/b/c/d;p?q", "?y", "http://a/b/c/d;p?y" },
	{ "http://a/b/c/d;p?q", "g?y", "http://a/b/c/g?y" },
	{ "http://a/b/c/d;p?q", "#s", "http://a/b/c/d;p?q#s" },
	{ "http://a/b/c/d;p?q", "g#s", "http://a/b/c/g#s" },
	{ "http://a/b/c/d;p?q", "g?y#s", "http://a/b/c/g?y#s" },
	{ "http://a/b/c/d;p?q", ";x", "http://a/b/c/;x" },
	{ "http://a/b/c/d;p?q", "g;x", "http://a/b/c/g;x" },
	{ "http://a/b/c/d;p?q", "g;x?y#s", "http://a/b/c/g;x?y#s" },
	{ "http://a/b/c/d;p?q", "", "http://a/b/c/d;p?q" },
	{ "http://a/b/c/d;p?q", ".", "http://a/b/c/" },
	{ "http://a/b/c/d;p?q", "./", "http://a/b/c/" },
	{ "http://a/b/c/d;p?q", "..", "http://a/b/" },
	{ "http://a/b/c/d;p?q", "../", "http://a/b/" },
	{ "http://a/b/c/d;p?q", "../g", "http://a/b/g" },
	{ "http://a/b/c/d;p?q", "../..", "http://a/" },
	{ "http://a/b/c/d;p?q", "../../", "http://a/" },
	{ "http://a/b/c/d;p?q", "../../g", "http://a/g" },
	/* abnormal */
	{ "http://a/b/c/d;p?q", "../../../g", "http://a/g" },
	{ "http://a/b/c/d;p?q", "../../../../g", "http://a/g" },
	{ "http://a/b/c/d;p?q", "/./g", "http://a/g" },
	{ "http://a/b/c/d;p?q", "/../g", "http://a/g" },
	{ "http://a/b/c/d;p?q", "g.", "http://a/b/c/g." },
	{ "http://a/b/c/d;p?q", ".g", "http://a/b/c/.g" },
	{ "http://a/b/c/d;p?q", "g..", "http://a/b/c/g.." },
	{ "http://a/b/c/d;p?q", "..g", "http://a/b/c/..g" },
	{ "http://a/b/c/d;p?q", "./../g", "http://a/b/g" },
	{ "http://a/b/c/d;p?q", "./g/.", "http://a/b/c/g/" },
	{ "http://a/b/c/d;p?q", "g/./h", "http://a/b/c/g/h" },
	{ "http://a/b/c/d;p?q", "g/../h", "http://a/b/c/h" },
	{ "http://a/b/c/d;p?q", "g;x=1/./y", "http://a/b/c/g;x=1/y" },
	{ "http://a/b/c/d;p?q", "g;x=1/../y", "http://a/b/c/y" },
	{ "http://a/b/c/d;p?q", "g?y/./x", "http://a/b/c/g?y/./x" },
	{ "http://a/b/c/d;p?q", "g?y/../x", "http://a/b/c/g?y/../x" },
	{ "http://a/b/c/d;p?q", "g#s/./x", "http://a/b/c/g#s/./x" },
	{ "http://a/b/c/d;p?q", "g#s/../x", "http://a/b/c/g#s/../x" },
	{ "http://a/b/c/d;p?q", "http:g", "http:g" },
	/* JMAP */
	{ "http://127.0.0.1:18080/jmap", "/jmap/",
	    "http://127.0.0.1:18080/jmap/" },
	{ "http://127.0.0.1:18080/jmap", "/jmap/upload/{accountId}/",
	    "http://127.0.0.1:18080/jmap/upload/{accountId}/" },
	{ "https://h/.well-known/jmap", "../api/", "https://h/api/" },
	{ "https://h", "api", "https://h/api" },
	{ "https://h/x", "https://k:8443/jmap/api/",
	    "https://k:8443/jmap/api/" },
	{ "https://h/x/y", "//k/api", "https://k/api" },
	{ "https://h/s?x=1", "?accept={type}", "https://h/s?accept={type}" },
};

static void
test_resolve(void **state)
{
	char *out;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(resolve_cases); i++) {
		out = NULL;
		assert_int_equal(jmap_url_resolve(resolve_cases[i].base,
		                     resolve_cases[i].ref, &out),
		    0);
		if (strcmp(out, resolve_cases[i].want) != 0) {
			fail_msg("\"%s\" against \"%s\": \"%s\", want \"%s\"",
			    resolve_cases[i].ref, resolve_cases[i].base, out,
			    resolve_cases[i].want);
		}
		free(out);
	}
	/* nothing absolute to resolve against */
	out = (char *)"x";
	assert_int_equal(
	    jmap_url_resolve("/rel", "also/rel", &out), ERR_INVAL);
	assert_null(out);
}

static void
test_expand(void **state)
{
	const char *names[] = { "accountId", "blobId", "name", "type" };
	const char *values[]
	    = { "alice", "G5173b", "m 1.eml", "message/rfc822" };
	const char *unicode[]
	    = { "\xc3\xa9t\xc3\xa9", "a~b_c-d.e", "", "?&=#%{}" };
	char *out;

	(void)state;
	assert_int_equal(jmap_url_expand("http://h/jmap/download/{accountId}/"
	                                 "{blobId}/{name}?accept={type}",
	                     names, values, 4, &out),
	    0);
	assert_string_equal(out,
	    "http://h/jmap/download/alice/G5173b/m%201.eml?accept="
	    "message%2Frfc822");
	free(out);
	assert_int_equal(jmap_url_expand("{accountId}|{blobId}|{name}|{type}",
	                     names, unicode, 4, &out),
	    0);
	assert_string_equal(
	    out, "%C3%A9t%C3%A9|a~b_c-d.e||%3F%26%3D%23%25%7B%7D");
	free(out);
	/* unknown names stay, no braces at all is a copy */
	assert_int_equal(
	    jmap_url_expand("/x/{other}/{blobId}/{}", names, values, 4, &out),
	    0);
	assert_string_equal(out, "/x/{other}/G5173b/{}");
	free(out);
	assert_int_equal(jmap_url_expand("", names, values, 4, &out), 0);
	assert_string_equal(out, "");
	free(out);
	/* an unterminated brace */
	out = (char *)"x";
	assert_int_equal(
	    jmap_url_expand("/x/{blobId", names, values, 4, &out), ERR_INVAL);
	assert_null(out);
}

/* A huge value: bounded, not a crash. */
static void
test_expand_toobig(void **state)
{
	const char *names[] = { "v" };
	const char *values[1];
	char *big, *out = NULL;

	(void)state;
	big = malloc(64 * 1024);
	assert_non_null(big);
	memset(big, '/', 64 * 1024 - 1);
	big[64 * 1024 - 1] = '\0';
	values[0] = big;
	assert_int_equal(
	    jmap_url_expand("{v}", names, values, 1, &out), ERR_TOOBIG);
	assert_null(out);
	free(big);
}

/* URLs shown in error texts: no userinfo, cut when long. The helper is
 * internal (jmap_int.h) but decides what a log may hold. */
static void
test_shown(void **state)
{
	char out[JMAP_URL_SHOWN + 8], big[400];

	(void)state;
	jmap_url_shown(
	    "https://bob:secret@h.example:8443/jmap/?a=b", out, sizeof(out));
	assert_string_equal(out, "https://h.example:8443/jmap/?a=b");
	jmap_url_shown("http://tok@h/x", out, sizeof(out));
	assert_string_equal(out, "http://h/x");
	jmap_url_shown("https://h/x@y", out, sizeof(out));
	assert_string_equal(out, "https://h/x@y");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	jmap_url_shown(big, out, sizeof(out));
	assert_int_equal(strlen(out), JMAP_URL_SHOWN + 3);
	assert_string_equal(out + JMAP_URL_SHOWN, "...");
	jmap_url_shown(big, out, 8);
	assert_string_equal(out, "aaaa...");
}

static void
test_response_found(void **state)
{
	json_t *r, *args;
	struct jmap_err e;
	char type[32];

	(void)state;
	/* EmailSubmission/set with onSuccessUpdateEmail answers "s" twice */
	r = json_loads("[[\"Email/set\",{\"created\":{}},\"c\"],"
	               "[\"EmailSubmission/set\",{\"n\":1},\"s\"],"
	               "[\"Email/set\",{\"n\":2},\"s\"]]",
	    0, NULL);
	assert_non_null(r);
	memset(&e, 0, sizeof(e));
	assert_int_equal(jmap_response(r, "s", "EmailSubmission/set", &args,
	                     type, sizeof(type), &e),
	    0);
	assert_int_equal(json_integer_value(json_object_get(args, "n")), 1);
	assert_string_equal(type, "");
	assert_int_equal(
	    jmap_response(r, "s", "Email/set", &args, NULL, 0, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(args, "n")), 2);
	assert_int_equal(
	    jmap_response(r, "c", "Email/set", &args, NULL, 0, &e), 0);
	assert_non_null(json_object_get(args, "created"));
	/* wrong name for the id, and no such id */
	assert_int_equal(
	    jmap_response(r, "c", "Email/get", &args, NULL, 0, &e), ERR_PROTO);
	assert_null(args);
	assert_non_null(strstr(e.text, "answered by Email/set"));
	assert_int_equal(
	    jmap_response(r, "zz", "Email/get", &args, NULL, 0, &e),
	    ERR_PROTO);
	assert_non_null(strstr(e.text, "no answer to call \"zz\""));
	json_decref(r);
}

static void
test_response_errors(void **state)
{
	json_t *r, *args;
	struct jmap_err e;
	char type[32], small[6];

	(void)state;
	r = json_loads("[[\"error\",{\"type\":\"cannotCalculateChanges\","
	               "\"description\":\"too old\"},\"c\"],"
	               "[\"error\",{\"type\":\"stateMismatch\"},\"s\"],"
	               "[\"error\",{\"type\":\"serverFail\",\"description\":"
	               "\"Internal Error\"},\"q\"],"
	               "[\"error\",{\"type\":\"invalidArguments\","
	               "\"arguments\":[\"sinceState\"]},\"a\"],"
	               "[\"error\",{\"description\":\"no type\"},\"t\"]]",
	    0, NULL);
	assert_non_null(r);
	memset(&e, 0, sizeof(e));
	assert_int_equal(jmap_response(r, "c", "Email/changes", &args, type,
	                     sizeof(type), &e),
	    ERR_SERVER);
	assert_null(args);
	assert_string_equal(type, "cannotCalculateChanges");
	assert_string_equal(
	    e.text, "Email/changes: cannotCalculateChanges: too old");
	assert_int_equal(e.status, ERR_SERVER);
	assert_int_equal(e.retry, RETRY_NOW);
	assert_int_equal(jmap_response(r, "s", "Email/set", &args, small,
	                     sizeof(small), &e),
	    ERR_SERVER);
	assert_string_equal(small, "state"); /* cut to its buffer */
	assert_string_equal(e.text, "Email/set: stateMismatch");
	assert_int_equal(jmap_response(r, "q", "Email/query", &args, type,
	                     sizeof(type), &e),
	    ERR_SERVER);
	assert_string_equal(e.text, "Email/query: serverFail: Internal Error");
	assert_int_equal(e.retry, RETRY_LATER);
	assert_int_equal(jmap_response(r, "a", "Email/changes", &args, type,
	                     sizeof(type), &e),
	    ERR_SERVER);
	assert_int_equal(e.retry, RETRY_NEVER);
	assert_int_equal(
	    jmap_response(r, "t", "Email/get", &args, type, sizeof(type), &e),
	    ERR_PROTO);
	json_decref(r);
}

static const char *const bad_responses[] = {
	"{}",
	"[[\"Email/get\",{},\"g\",4]]",
	"[[\"Email/get\",[],\"g\"]]",
	"[[\"Email/get\",{}]]",
	"[[1,{},\"g\"]]",
	"[[\"Email/get\",{},7]]",
	"[\"Email/get\"]",
	"[[\"Mailbox/get\",{},\"m\"], 5]",
};

static void
test_response_malformed(void **state)
{
	struct jmap_err e;
	json_t *r, *args;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad_responses); i++) {
		r = json_loads(bad_responses[i], 0, NULL);
		assert_non_null(r);
		memset(&e, 0, sizeof(e));
		if (jmap_response(r, "g", "Email/get", &args, NULL, 0, &e)
		        != ERR_PROTO
		    || args != NULL || e.status != ERR_PROTO) {
			fail_msg("%s accepted", bad_responses[i]);
		}
		json_decref(r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cyrus_session),
		cmocka_unit_test(test_recorded_session),
		cmocka_unit_test(test_recorded_responses),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_limits_forms),
		cmocka_unit_test(test_submission_not_for_account),
		cmocka_unit_test(test_bad_sessions),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_expand_toobig),
		cmocka_unit_test(test_shown),
		cmocka_unit_test(test_response_found),
		cmocka_unit_test(test_response_errors),
		cmocka_unit_test(test_response_malformed),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
