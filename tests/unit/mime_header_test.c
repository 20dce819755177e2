/*
 * mime_header_test.c: table-driven tests of pkg/mime's raw-message
 * helpers: the end of the header section, one field's unfolded value,
 * stripping a field, and RFC 5322 address lists (parse and format).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"
#include "imap/imap.h"
#include "mime/mime.h"

static const char MSG[] = "From: Alice <a@example.org>\r\n"
			  "To: b@example.org,\r\n"
			  "  \"Carol, C.\" <c@example.org>\r\n"
			  "Bcc: secret@example.org,\r\n"
			  "\tother@example.org\r\n"
			  "subject:   Hello\r\n"
			  "   world  \r\n"
			  "\r\n"
			  "Bcc: this is the body\r\n";

static void
test_header_get(void **state)
{
	char *v = NULL;
	size_t end = 0;

	(void)state;
	assert_int_equal(mime_header_end(MSG, sizeof(MSG) - 1, &end), 0);
	assert_string_equal(MSG + end, "Bcc: this is the body\r\n");
	assert_int_equal(mime_header_get(MSG, sizeof(MSG) - 1, "SUBJECT", &v),
	    0);
	assert_string_equal(v, "Hello   world");
	free(v);
	assert_int_equal(mime_header_get(MSG, sizeof(MSG) - 1, "to", &v), 0);
	assert_string_equal(v, "b@example.org,  \"Carol, C.\" <c@example.org>");
	free(v);
	assert_int_equal(mime_header_get(MSG, sizeof(MSG) - 1, "Cc", &v),
	    ERR_NOTFOUND);
	assert_null(v);
	/* bare LF line ends */
	assert_int_equal(mime_header_get("A: 1\nB: 2\n x\n\nbody", 19, "b", &v),
	    0);
	assert_string_equal(v, "2 x");
	free(v);
}

static void
test_header_bad(void **state)
{
	static const char *const bad[] = {
		"From: a@b\r\nno separator",	 /* no empty line */
		" leading continuation\r\n\r\n", /* continuation of nothing */
		"No colon here\r\n\r\n",	 /* not a field */
		": empty name\r\n\r\n",
		"From: a@b\r\n", /* header never ends */
		"",
	};
	size_t i, end;
	char *v = NULL;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		assert_int_equal(
		    mime_header_end(bad[i], strlen(bad[i]), &end), ERR_INVAL);
		assert_int_equal(
		    mime_header_get(bad[i], strlen(bad[i]), "From", &v),
		    ERR_INVAL);
		assert_null(v);
	}
}

static void
test_header_strip(void **state)
{
	struct buf out;

	(void)state;
	buf_init(&out, 1 << 20);
	assert_int_equal(mime_header_strip(MSG, sizeof(MSG) - 1, "bcc", &out),
	    0);
	assert_int_equal(buf_add(&out, "", 1), 0);
	assert_null(strstr(out.data, "secret@"));
	assert_null(strstr(out.data, "other@"));
	/* the body is untouched, even a line that looks like the field */
	assert_non_null(strstr(out.data, "\r\n\r\nBcc: this is the body"));
	assert_non_null(strstr(out.data, "From: Alice"));
	assert_non_null(strstr(out.data, "subject:   Hello\r\n   world"));
	buf_release(&out);
}

struct addr_case {
	const char *in;
	int rv;
	const char *formatted; /* mime_addr_format of the result */
};

static const struct addr_case addr_cases[] = {
	{ "a@b.org", 0, "a@b.org" },
	{ "Alice <a@b.org>", 0, "Alice <a@b.org>" },
	{ "<a@b.org>", 0, "a@b.org" },
	{ "\"Carol, C.\" <c@d.org>, e@f.org", 0,
	    "\"Carol, C.\" <c@d.org>, e@f.org" },
	{ "a@b.org (Alice (the first))", 0, "a@b.org" },
	{ "=?utf-8?q?Andr=C3=A9?= <andre@x.org>", 0,
	    "Andr\xC3\xA9 <andre@x.org>" },
	{ "\"john doe\"@x.org", 0, "\"john doe\"@x.org" },
	{ "user@[192.0.2.1]", 0, "user@[192.0.2.1]" },
	{ "<@route.org:a@b.org>", 0, "a@b.org" },
	{ "undisclosed-recipients:;", 0, "" },
	{ "team: a@b.org, Bob <c@d.org>;, e@f.org", 0,
	    "a@b.org, Bob <c@d.org>, e@f.org" },
	{ "a@b.org,, ,c@d.org", 0, "a@b.org, c@d.org" },
	{ "", 0, "" },
	{ "Alice, Bob", ERR_INVAL, NULL },
	{ "a@", ERR_INVAL, NULL },
	{ "<a@b.org", ERR_INVAL, NULL },
	{ "Alice <>", ERR_INVAL, NULL },
	{ "a@b.org (unterminated", ERR_INVAL, NULL },
	{ "\"open quote <a@b.org>", ERR_INVAL, NULL },
	{ "a@b.org)", ERR_INVAL, NULL },
	{ "g1: g2: a@b;;", ERR_INVAL, NULL },
	/* folding inside a quoted local part is dropped; a control byte
	 * that could end an SMTP command is refused */
	{ "\"john\r\n doe\"@x.org", 0, "\"john doe\"@x.org" },
	{ "\"a\rRCPT TO:<x@y>\"@b.org", ERR_INVAL, NULL },
	{ "\"a\x01\"@b.org", ERR_INVAL, NULL },
	{ "a@[1.2\r\n .3]", 0, "a@[1.2 .3]" },
};

static void
test_addr_cases(void **state)
{
	struct mime_addr_list l;
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < ARRAY_LEN(addr_cases); i++) {
		const struct addr_case *c = &addr_cases[i];
		int rv = mime_addr_parse(c->in, strlen(c->in), &l);

		if (rv != c->rv) {
			fail_msg("case %zu \"%s\": rv %d, want %d", i, c->in, rv,
			    c->rv);
		}
		if (rv != 0) {
			assert_int_equal(l.n, 0);
			continue;
		}
		assert_int_equal(mime_addr_format(&l, &s), 0);
		if (strcmp(s, c->formatted) != 0) {
			fail_msg("case %zu \"%s\": \"%s\", want \"%s\"", i,
			    c->in, s, c->formatted);
		}
		free(s);
		mime_addr_list_release(&l);
	}
}

static void
test_addr_limits(void **state)
{
	struct mime_addr_list l;
	struct buf b;
	char deep[200];
	size_t i;

	(void)state;
	buf_init(&b, 1 << 20);
	for (i = 0; i <= MIME_MAX_ADDRS; i++) {
		assert_int_equal(buf_printf(&b, "u%zu@x.org,", i), 0);
	}
	assert_int_equal(mime_addr_parse(b.data, b.len, &l), ERR_TOOBIG);
	assert_int_equal(l.n, 0);
	buf_release(&b);
	/* comments nested deeper than the bound */
	memset(deep, '(', sizeof(deep));
	assert_int_equal(mime_addr_parse(deep, sizeof(deep), &l), ERR_INVAL);
}

/*
 * mime_addr_format against pkg/imap's ENVELOPE formatting (fetch.c): the
 * same addresses, once as a header value and once as the ENVELOPE a
 * server sends for it, give the same column text. Groups are left out:
 * mime flattens them, the ENVELOPE keeps their name.
 */
static const struct {
	const char *header;
	const char *envelope; /* the ENVELOPE's from list */
} same_cases[] = {
	{ "Alice <a@b.org>", "((\"Alice\" NIL \"a\" \"b.org\"))" },
	{ "a@b.org", "((NIL NIL \"a\" \"b.org\"))" },
	{ "\"Carol, C.\" <c@d.org>, e@f.org",
	    "((\"Carol, C.\" NIL \"c\" \"d.org\")(NIL NIL \"e\" \"f.org\"))" },
	{ "\"Bob \\\"B\\\" Smith\" <b@x.org>",
	    "((\"Bob \\\"B\\\" Smith\" NIL \"b\" \"x.org\"))" },
	{ "=?utf-8?q?Andr=C3=A9?= <andre@x.org>",
	    "((\"=?utf-8?q?Andr=C3=A9?=\" NIL \"andre\" \"x.org\"))" },
	{ "J. Smith (work) <j@x.org>",
	    "((\"J. Smith\" NIL \"j\" \"x.org\"))" },
	{ "<@route.org:a@b.org>", "((NIL \"@route.org\" \"a\" \"b.org\"))" },
};

static void
test_addr_same_as_envelope(void **state)
{
	struct imap_limits lim;
	struct imap_parser *p = NULL;
	const struct imap_resp *r;
	struct mime_addr_list l;
	struct imap_fetch f;
	struct buf in;
	size_t i, used;
	char *s;

	(void)state;
	imap_limits_default(&lim);
	for (i = 0; i < ARRAY_LEN(same_cases); i++) {
		buf_init(&in, 1 << 16);
		assert_int_equal(buf_printf(&in,
				     "* 1 FETCH (ENVELOPE (NIL NIL %s NIL NIL "
				     "NIL NIL NIL NIL NIL))\r\n",
				     same_cases[i].envelope),
		    0);
		assert_int_equal(imap_parser_new(&lim, &p), 0);
		assert_int_equal(
		    imap_parser_feed(p, in.data, in.len, &used, &r), 1);
		assert_int_equal(imap_fetch_parse(r, &f), 0);
		assert_int_equal(mime_addr_parse(same_cases[i].header,
				     strlen(same_cases[i].header), &l),
		    0);
		assert_int_equal(mime_addr_format(&l, &s), 0);
		if (f.from == NULL || strcmp(s, f.from) != 0) {
			fail_msg("case %zu: mime \"%s\", envelope \"%s\"", i, s,
			    f.from != NULL ? f.from : "(null)");
		}
		free(s);
		mime_addr_list_release(&l);
		imap_fetch_release(&f);
		imap_parser_free(&p);
		buf_release(&in);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_get),
		cmocka_unit_test(test_header_bad),
		cmocka_unit_test(test_header_strip),
		cmocka_unit_test(test_addr_cases),
		cmocka_unit_test(test_addr_limits),
		cmocka_unit_test(test_addr_same_as_envelope),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
