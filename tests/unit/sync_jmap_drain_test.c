/*
 * sync_jmap_drain_test.c: the pure planning of the JMAP drain job
 * (pkg/sync/jmap_drain_plan.c): keyword paths, Email/set patches built
 * from changes, rounds of changes to one Email, SetError outcomes and
 * the submission envelope read from a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sync/jmap_drain_int.h"

static struct proto_str
S(const char *s) {
	struct proto_str p = { s, s != NULL ? strlen(s) : 0 };

	return (p);
}

/* The patch as compact JSON with sorted keys (malloc'd). */
static char *
dump(json_t *o)
{
	return (json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS));
}

static void
test_keyword_path(void **state)
{
	char out[JDRAIN_MAX_PATH];

	(void)state;
	assert_int_equal(
	    jdrain_keyword_path("$Label1", 7, out, sizeof(out)), 0);
	assert_string_equal(out, "keywords/$label1");
	assert_int_equal(jdrain_keyword_path("a/b~c", 5, out, sizeof(out)), 0);
	assert_string_equal(out, "keywords/a~1b~0c");
	/* forbidden characters, empty, too long, too small a buffer */
	assert_int_equal(
	    jdrain_keyword_path("a b", 3, out, sizeof(out)), ERR_INVAL);
	assert_int_equal(
	    jdrain_keyword_path("\\Seen", 5, out, sizeof(out)), ERR_INVAL);
	assert_int_equal(
	    jdrain_keyword_path("x(", 2, out, sizeof(out)), ERR_INVAL);
	assert_int_equal(
	    jdrain_keyword_path("\xc3\xa9", 2, out, sizeof(out)), ERR_INVAL);
	assert_int_equal(
	    jdrain_keyword_path("", 0, out, sizeof(out)), ERR_INVAL);
	assert_int_equal(jdrain_keyword_path("abc", 3, out, 10), ERR_TOOBIG);
	{
		char big[JDRAIN_MAX_KEYWORD + 2];

		memset(big, 'k', sizeof(big));
		assert_int_equal(
		    jdrain_keyword_path(big, sizeof(big), out, sizeof(out)),
		    ERR_INVAL);
		assert_int_equal(jdrain_keyword_path(big, JDRAIN_MAX_KEYWORD,
		                     out, sizeof(out)),
		    0);
	}
}

static void
test_flag_patch(void **state)
{
	struct proto_change c;
	json_t *p = NULL;
	char *s;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.kind = CHANGE_FLAG;
	c.flags_add = PROTO_FLAG_SEEN | PROTO_FLAG_FLAGGED;
	c.flags_remove = PROTO_FLAG_ANSWERED | PROTO_FLAG_DELETED;
	c.keywords_add = S(" $Work  Todo ");
	c.keywords_remove = S("$junk");
	assert_int_equal(jdrain_patch(&c, NULL, NULL, &p), 0);
	s = dump(p);
	assert_string_equal(s,
	    "{\"keywords/$answered\":null,\"keywords/$flagged\":true,"
	    "\"keywords/$junk\":null,\"keywords/$seen\":true,"
	    "\"keywords/$work\":true,\"keywords/todo\":true}");
	free(s);
	json_decref(p);

	/* a keyword both added and removed ends removed */
	memset(&c, 0, sizeof(c));
	c.kind = CHANGE_FLAG;
	c.keywords_add = S("X");
	c.keywords_remove = S("x");
	assert_int_equal(jdrain_patch(&c, NULL, NULL, &p), 0);
	s = dump(p);
	assert_string_equal(s, "{\"keywords/x\":null}");
	free(s);
	json_decref(p);

	/* \Deleted only: nothing to patch */
	memset(&c, 0, sizeof(c));
	c.kind = CHANGE_FLAG;
	c.flags_add = PROTO_FLAG_DELETED;
	assert_int_equal(jdrain_patch(&c, NULL, NULL, &p), ERR_NOTFOUND);
	assert_null(p);

	/* a bad keyword */
	c.keywords_add = S("ok bad\\one");
	assert_int_equal(jdrain_patch(&c, NULL, NULL, &p), ERR_INVAL);
	assert_null(p);
}

static void
test_move_patch(void **state)
{
	struct proto_change c;
	json_t *p = NULL;
	char *s;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.kind = CHANGE_MOVE;
	assert_int_equal(jdrain_patch(&c, "Msrc", "Mdst", &p), 0);
	s = dump(p);
	assert_string_equal(
	    s, "{\"mailboxIds/Mdst\":true,\"mailboxIds/Msrc\":null}");
	free(s);
	json_decref(p);

	/* already in the destination: only make sure it is there */
	assert_int_equal(jdrain_patch(&c, "Msame", "Msame", &p), 0);
	s = dump(p);
	assert_string_equal(s, "{\"mailboxIds/Msame\":true}");
	free(s);
	json_decref(p);

	/* expunge of an Email also elsewhere: leave the source only */
	c.kind = CHANGE_DELETE;
	c.expunge = true;
	assert_int_equal(jdrain_patch(&c, "Msrc", NULL, &p), 0);
	s = dump(p);
	assert_string_equal(s, "{\"mailboxIds/Msrc\":null}");
	free(s);
	json_decref(p);
}

static void
test_rounds(void **state)
{
	struct proto_change c[6];
	const struct proto_change *v[6];
	uint32_t round[6], n;
	int rv, i;
	static const char *const ids[]
	    = { "Ma", "Mb", "Ma", "Mab", "Ma", "Mb" };

	(void)state;
	memset(c, 0, sizeof(c));
	for (i = 0; i < 6; i++) {
		c[i].remote_id = S(ids[i]);
		v[i] = &c[i];
	}
	n = jdrain_rounds(v, 6, round, &rv);
	assert_int_equal(rv, 0);
	assert_int_equal(n, 3);
	assert_int_equal(round[0], 0);
	assert_int_equal(round[1], 0);
	assert_int_equal(round[2], 1);
	assert_int_equal(round[3], 0); /* "Mab" is not "Ma" */
	assert_int_equal(round[4], 2);
	assert_int_equal(round[5], 1);
	assert_int_equal(jdrain_rounds(v, 0, round, &rv), 0);
	assert_int_equal(rv, 0);
}

static void
test_error_outcome(void **state)
{
	json_t *err;
	char type[64], text[256];

	(void)state;
	assert_int_equal(jdrain_error_outcome("serverFail"), CHANGE_OUT_RETRY);
	assert_int_equal(jdrain_error_outcome("rateLimit"), CHANGE_OUT_RETRY);
	assert_int_equal(
	    jdrain_error_outcome("stateMismatch"), CHANGE_OUT_RETRY);
	assert_int_equal(jdrain_error_outcome("notFound"), CHANGE_OUT_DEAD);
	assert_int_equal(jdrain_error_outcome("overQuota"), CHANGE_OUT_DEAD);
	assert_int_equal(
	    jdrain_error_outcome("blobNotFound"), CHANGE_OUT_DEAD);
	assert_int_equal(jdrain_error_outcome(NULL), CHANGE_OUT_DEAD);

	err = json_pack(
	    "{s:s, s:s}", "type", "invalidPatch", "description", "bad\npath");
	jdrain_error_text(
	    err, "Email/set", type, sizeof(type), text, sizeof(text));
	assert_string_equal(type, "invalidPatch");
	/* the server's words, without control characters */
	assert_string_equal(text, "Email/set: invalidPatch: bad path");
	json_decref(err);
	jdrain_error_text(
	    NULL, "Email/import", type, sizeof(type), text, sizeof(text));
	assert_string_equal(type, "unknown");
	assert_string_equal(text, "Email/import: unknown");
}

static void
test_envelope(void **state)
{
	static const char msg[]
	    = "From: Alice <alice@example.org>\r\n"
	      "To: bob@example.org, \"Carol C\" <carol@example.org>\r\n"
	      "Cc: BOB@example.org, dave@example.org\r\n"
	      "Bcc: eve@example.org\r\n"
	      "Subject: hi\r\n\r\nbody\r\n";
	static const char agent[] = "From: a@x.org\r\nSender: s@x.org\r\n"
	                            "To: t@x.org\r\n\r\n";
	json_t *env = NULL;
	char *from = NULL, *s;

	(void)state;
	assert_int_equal(jdrain_envelope(msg, strlen(msg), &env, &from), 0);
	assert_string_equal(from, "alice@example.org");
	s = dump(env);
	assert_string_equal(s,
	    "{\"mailFrom\":{\"email\":\"alice@example.org\"},\"rcptTo\":["
	    "{\"email\":\"bob@example.org\"},"
	    "{\"email\":\"carol@example.org\"},"
	    "{\"email\":\"dave@example.org\"},"
	    "{\"email\":\"eve@example.org\"}]}");
	free(s);
	free(from);
	json_decref(env);

	/* Sender is the return path; From chooses the Identity */
	assert_int_equal(
	    jdrain_envelope(agent, strlen(agent), &env, &from), 0);
	assert_string_equal(from, "a@x.org");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(env, "mailFrom"), "email")),
	    "s@x.org");
	free(from);
	json_decref(env);

	assert_int_equal(
	    jdrain_envelope("To: t@x.org\r\n\r\n", 15, &env, &from),
	    ERR_NOTFOUND);
	assert_null(env);
	assert_null(from);
	assert_int_equal(
	    jdrain_envelope("From: f@x.org\r\n\r\n", 17, &env, &from),
	    ERR_NOTFOUND);
	assert_null(env);
	assert_null(from);
}

static void
test_import_keywords(void **state)
{
	json_t *o = NULL;
	char *s;

	(void)state;
	assert_int_equal(jdrain_keywords(PROTO_FLAG_SEEN | PROTO_FLAG_DELETED,
	                     S("$Forwarded"), &o),
	    0);
	s = dump(o);
	assert_string_equal(s, "{\"$forwarded\":true,\"$seen\":true}");
	free(s);
	json_decref(o);
	assert_int_equal(jdrain_keywords(0, S("a%b"), &o), ERR_INVAL);
	assert_null(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyword_path),
		cmocka_unit_test(test_flag_patch),
		cmocka_unit_test(test_move_patch),
		cmocka_unit_test(test_rounds),
		cmocka_unit_test(test_error_outcome),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_import_keywords),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
