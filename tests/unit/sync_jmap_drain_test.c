/*
 * sync_jmap_drain_test.c: the pure planning of the JMAP drain job
 * (pkg/sync/jmap_drain_plan.c): keyword paths, Email/set patches built
 * from changes, rounds of changes to one Email, SetError outcomes, the
 * submission envelope read from a message, and the packing of Email/set
 * objects into calls and requests under small session limits.
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

/* Checks a packing of n objects against l: slots in order, calls and
 * requests consecutive, each call of one round and at most l->objects
 * objects, each request at most l->calls calls and l->bytes bytes. */
static void
check_pack(const size_t *bytes, const uint32_t *round, size_t n,
    const struct jdrain_limits *l, const struct jdrain_slot *slot, size_t nreq,
    size_t ncalls)
{
	size_t k, in_call = 0, calls = 0, used = 0;

	for (k = 0; k < n; k++) {
		bool new_call = k == 0 || slot[k].call != slot[k - 1].call;
		bool new_req
		    = k == 0 || slot[k].request != slot[k - 1].request;

		if (k > 0) {
			assert_true(slot[k].call == slot[k - 1].call
			    || slot[k].call == slot[k - 1].call + 1);
			assert_true(slot[k].request == slot[k - 1].request
			    || slot[k].request == slot[k - 1].request + 1);
			/* a round never shares a call with the next */
			if (round[k] != round[k - 1]) {
				assert_true(new_call);
			}
		}
		if (new_req) {
			assert_true(new_call);
			calls = 0;
			used = l->envelope;
		}
		if (new_call) {
			calls++;
			used += l->call;
			in_call = 0;
		}
		in_call++;
		used += bytes[k];
		assert_true(in_call <= l->objects);
		assert_true(calls <= l->calls);
		assert_true(used <= l->bytes);
	}
	assert_int_equal(nreq, n > 0 ? slot[n - 1].request + 1 : 0);
	assert_int_equal(ncalls, n > 0 ? slot[n - 1].call + 1 : 0);
}

static void
test_pack(void **state)
{
	static const struct jdrain_limits l = { 7, 3, 1000, 100, 80 };
	enum { N = 2000 };
	size_t *bytes = calloc(N, sizeof(*bytes)), k, nreq, ncalls, total = 0;
	uint32_t *round = calloc(N, sizeof(*round));
	struct jdrain_slot *slot = calloc(N, sizeof(*slot));

	(void)state;
	assert_non_null(bytes);
	assert_non_null(round);
	assert_non_null(slot);
	for (k = 0; k < N; k++) {
		bytes[k] = 30 + (k * 37) % 90; /* 30 .. 119 bytes */
		round[k] = k < 1500 ? 0 : (k < 1990 ? 1 : 2);
		total += bytes[k];
	}
	nreq = jdrain_pack(bytes, round, N, &l, slot, &ncalls);
	check_pack(bytes, round, N, &l, slot, nreq, ncalls);
	/* Each request is filled: at least 800 - (3 calls * 80) of objects
	 * bytes except at a limit of calls; far from one per object. */
	assert_true(nreq >= total / (1000 - 100 - 80));
	assert_true(nreq < N / 3);
	assert_true(ncalls >= N / 7);

	/* Objects limit alone: 7 per call, 3 calls per request. */
	{
		static const struct jdrain_limits big
		    = { 7, 3, 1u << 30, 100, 80 };

		memset(round, 0, N * sizeof(*round));
		nreq = jdrain_pack(bytes, round, 50, &big, slot, &ncalls);
		check_pack(bytes, round, 50, &big, slot, nreq, ncalls);
		assert_int_equal(ncalls, 8); /* 7 * 7 + 1 */
		assert_int_equal(nreq, 3); /* 3 + 3 + 2 calls */
	}
	/* Nothing to pack. */
	assert_int_equal(jdrain_pack(bytes, round, 0, &l, slot, &ncalls), 0);
	assert_int_equal(ncalls, 0);
	/* An object that fits no request gets one of its own. */
	bytes[0] = 50;
	bytes[1] = 5000;
	bytes[2] = 50;
	assert_true(jdrain_fits(&l, 50));
	assert_false(jdrain_fits(&l, 5000));
	assert_true(jdrain_fits(&l, 1000 - 100 - 80));
	assert_false(jdrain_fits(&l, 1000 - 100 - 80 + 1));
	nreq = jdrain_pack(bytes, round, 3, &l, slot, &ncalls);
	assert_int_equal(nreq, 3);
	assert_int_equal(slot[1].request, 1);
	assert_int_equal(slot[2].request, 2);
	free(bytes);
	free(round);
	free(slot);
}

/*
 * The real JSON: 600 flag changes (some Emails twice) packed under small
 * session limits, each request built as pkg/jmap sends it, is within
 * maxSizeRequest, maxCallsInRequest and maxObjectsInSet, and carries
 * every change once.
 */
static void
test_pack_real_requests(void **state)
{
	enum { N = 600 };
	struct jmap_session s;
	struct jdrain_limits l;
	struct jdrain d;
	struct proto_change *chg = calloc(N, sizeof(*chg));
	const struct proto_change **pc = calloc(N, sizeof(*pc));
	char(*ids)[32] = calloc(N, sizeof(*ids));
	json_t **patch = calloc(N, sizeof(*patch));
	size_t *bytes = calloc(N, sizeof(*bytes)),
	       *order = calloc(N, sizeof(*order));
	uint32_t *round = calloc(N, sizeof(*round)),
	         *oround = calloc(N, sizeof(*oround));
	struct jdrain_slot *slot = calloc(N, sizeof(*slot));
	size_t k, m = 0, nreq, ncalls, q, seen = 0;
	uint32_t r, nrounds;
	int rv;

	(void)state;
	assert_non_null(chg);
	assert_non_null(slot);
	memset(&s, 0, sizeof(s));
	s.account_id = "uf1f2e3d4";
	s.max_calls_in_request = 4;
	s.max_objects_in_set = 25;
	s.max_objects_in_get = 500;
	s.max_size_request = 3000;
	memset(&d, 0, sizeof(d));
	d.s = &s;
	assert_int_equal(jdrain_limits_of(&s, false, &l), 0);
	assert_int_equal(l.objects, 25);
	assert_int_equal(l.calls, 4);
	assert_int_equal(l.bytes, 3000);
	for (k = 0; k < N; k++) {
		/* Emails 0..499, the first 100 with a second change */
		snprintf(ids[k], sizeof(ids[k]), "M%024zu", k % 500);
		chg[k].kind = CHANGE_FLAG;
		chg[k].remote_id = S(ids[k]);
		chg[k].flags_add
		    = k % 2 ? PROTO_FLAG_SEEN : PROTO_FLAG_FLAGGED;
		chg[k].keywords_add = S(k % 3 ? "" : "$label1 $work");
		pc[k] = &chg[k];
	}
	nrounds = jdrain_rounds(pc, N, round, &rv);
	assert_int_equal(rv, 0);
	assert_int_equal(nrounds, 2);
	for (r = 0; r < nrounds; r++) {
		for (k = 0; k < N; k++) {
			if (round[k] != r) {
				continue;
			}
			assert_int_equal(
			    jdrain_patch(&chg[k], NULL, NULL, &patch[m]), 0);
			bytes[m] = jdrain_entry_bytes(ids[k], patch[m]);
			assert_true(jdrain_fits(&l, bytes[m]));
			order[m] = k;
			oround[m++] = r;
		}
	}
	nreq = jdrain_pack(bytes, oround, m, &l, slot, &ncalls);
	check_pack(bytes, oround, m, &l, slot, nreq, ncalls);
	assert_true(nreq > 1);
	for (k = 0, q = 0; q < nreq; q++) {
		json_t *calls = json_array(), *req;
		struct jdrain_call c;
		size_t call = slot[k].call, n_calls = 0;
		char *body, cid[32];

		memset(&c, 0, sizeof(c));
		for (; k <= m; k++) {
			if (k == m || slot[k].call != call) {
				snprintf(cid, sizeof(cid), "u%zu", n_calls++);
				assert_int_equal(
				    json_array_append_new(calls,
				        jdrain_call_json(&d, &c, cid, NULL)),
				    0);
				assert_true(c.n <= 25);
				seen += c.n;
				jdrain_call_release(&c);
				if (k == m || slot[k].request != q) {
					break;
				}
				call = slot[k].call;
			}
			assert_int_equal(
			    jdrain_call_add(&c, order[k], ids[order[k]],
			        json_incref(patch[k]), 25),
			    0);
		}
		assert_true(n_calls <= 4);
		/* as pkg/jmap/client.c wraps it */
		req = json_pack("{s:[s,s],s:o}", "using",
		    "urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
		    "methodCalls", calls);
		body = json_dumps(req, JSON_COMPACT);
		assert_non_null(body);
		assert_true(strlen(body) <= 3000);
		free(body);
		json_decref(req);
	}
	assert_int_equal(seen, N);
	for (k = 0; k < m; k++) {
		json_decref(patch[k]);
	}
	free(chg);
	free(pc);
	free(ids);
	free(patch);
	free(bytes);
	free(order);
	free(round);
	free(oround);
	free(slot);
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
		cmocka_unit_test(test_pack),
		cmocka_unit_test(test_pack_real_requests),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
