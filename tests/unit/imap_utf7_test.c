/*
 * imap_utf7_test.c: modified UTF-7 mailbox names (RFC 3501 5.1.3):
 * decoding, the strictness rules, encoding, and round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap.h"

/* Pairs that must map both ways exactly. */
static const struct {
	const char *utf7, *utf8;
} pairs[] = {
    {"", ""},
    {"INBOX", "INBOX"},
    {"a&-b", "a&b"},
    {"&-", "&"},
    {"&-&-", "&&"},
    {"Entw&APw-rfe", "Entw\xc3\xbcrfe"},
    {"&AMk-t&AOk-", "\xc3\x89t\xc3\xa9"},
    /* RFC 3501 example: ~peter/mail/<Japanese>/<Japanese> */
    {"~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa"
	"\x9e"},
    /* U+1F600 as a surrogate pair */
    {"&2D3eAA-", "\xf0\x9f\x98\x80"},
    {"x&2D3eAA-y", "x\xf0\x9f\x98\x80y"},
    /* three BMP chars: 48 bits, no padding */
    {"&AOQA9gD8-", "\xc3\xa4\xc3\xb6\xc3\xbc"},
    /* control characters are encoded */
    {"&AAk-", "\t"},
    {"&AH8-", "\x7f"},
    {"&IKw-", "\xe2\x82\xac"},
};

static void
test_pairs(void **state)
{
	char *out;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(pairs); i++) {
		if (imap_utf7_decode(pairs[i].utf7, strlen(pairs[i].utf7),
			&out) != 0) {
			fail_msg("decode '%s' failed", pairs[i].utf7);
		}
		assert_string_equal(out, pairs[i].utf8);
		free(out);
		if (imap_utf7_encode(pairs[i].utf8, strlen(pairs[i].utf8),
			&out) != 0) {
			fail_msg("encode of pair %zu failed", i);
		}
		assert_string_equal(out, pairs[i].utf7);
		free(out);
	}
}

static void
test_decode_rejects(void **state)
{
	static const char *const bad[] = {
	    "&",	  /* unterminated */
	    "&AOQ",	  /* unterminated */
	    "a&Jjo",	  /* unterminated */
	    "&A-",	  /* 6 bits: no whole unit */
	    "&AO-",	  /* 12 bits */
	    "&AOQ=-",	  /* '=' padding */
	    "&AOQ/-",	  /* '/' instead of ',' */
	    "&AOR-",	  /* non-zero padding bits */
	    "&AOQA-",	  /* 24 bits: one unit plus 8 spare bits */
	    "&AGE-",	  /* 'a' encoded: must stand for itself */
	    "&ACY-",	  /* '&' encoded */
	    "&AAA-",	  /* U+0000 */
	    "&2D0-",	  /* lone high surrogate */
	    "&3gA-",	  /* lone low surrogate */
	    "&2D3YPQ-",	  /* high followed by high */
	    "&2D0AZQ-",	  /* high followed by non-surrogate */
	    "a\x01",	  /* control byte */
	    "caf\xc3\xa9", /* raw 8-bit */
	    "a\tb",	  /* raw tab */
	    "&AOQ -",	  /* space in base64 */
	};
	char *out = (char *)1;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		if (imap_utf7_decode(bad[i], strlen(bad[i]), &out) !=
		    ERR_PROTO) {
			fail_msg("decode '%s' accepted", bad[i]);
		}
		assert_null(out);
	}
	/* Embedded NUL is a control byte too. */
	assert_int_equal(imap_utf7_decode("a\0b", 3, &out), ERR_PROTO);
}

static void
test_encode_rejects(void **state)
{
	static const char *const bad[] = {
	    "\xc3",		 /* truncated */
	    "\xc3\x28",		 /* bad continuation */
	    "\xc0\xaf",		 /* overlong '/' */
	    "\xe0\x80\xaf",	 /* overlong */
	    "\xed\xa0\x80",	 /* encoded surrogate */
	    "\xf4\x90\x80\x80", /* > U+10FFFF */
	    "\xff",		 /* never valid */
	    "\x80",		 /* lone continuation */
	};
	char *out = (char *)1;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		if (imap_utf7_encode(bad[i], strlen(bad[i]), &out) !=
		    ERR_INVAL) {
			fail_msg("encode of bad %zu accepted", i);
		}
		assert_null(out);
	}
	assert_int_equal(imap_utf7_encode("a\0b", 3, &out), ERR_INVAL);
}

/* Every BMP code point and some astral ones survive a round trip. */
static void
test_round_trip_all(void **state)
{
	char in[8], *enc, *dec;
	uint32_t cp;
	size_t n;

	(void)state;
	for (cp = 1; cp <= 0x10ffff; cp += (cp < 0x10000 ? 1 : 97)) {
		if (cp >= 0xd800 && cp <= 0xdfff) {
			continue;
		}
		if (cp < 0x80) {
			in[0] = (char)cp;
			n = 1;
		} else if (cp < 0x800) {
			in[0] = (char)(0xc0 | (cp >> 6));
			in[1] = (char)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			in[0] = (char)(0xe0 | (cp >> 12));
			in[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			in[2] = (char)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			in[0] = (char)(0xf0 | (cp >> 18));
			in[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
			in[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
			in[3] = (char)(0x80 | (cp & 0x3f));
			n = 4;
		}
		in[n++] = 'x';
		in[n] = '\0';
		assert_int_equal(imap_utf7_encode(in, n, &enc), 0);
		if (imap_utf7_decode(enc, strlen(enc), &dec) != 0) {
			fail_msg("U+%04X: decode of '%s' failed", cp, enc);
		}
		assert_string_equal(dec, in);
		free(enc);
		free(dec);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pairs),
	    cmocka_unit_test(test_decode_rejects),
	    cmocka_unit_test(test_encode_rejects),
	    cmocka_unit_test(test_round_trip_all),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
