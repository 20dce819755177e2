/*
 * secret_test.c: pkg/secret: the key file (creation mode, reload, refused
 * modes and sizes) and AES-256-GCM sealing (round trips, fresh nonces,
 * every tampered byte, truncation, wrong key, bad magic).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"
#include "secret/secret.h"

struct key_fixture {
	char dir[64];
	char path[128];
};

static int
key_setup(void **state)
{
	struct key_fixture *f;

	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		return (-1);
	}
	snprintf(f->dir, sizeof(f->dir), "/tmp/secret_test.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return (-1);
	}
	snprintf(f->path, sizeof(f->path), "%s/key", f->dir);
	*state = f;
	return (0);
}

static int
key_teardown(void **state)
{
	struct key_fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return (0);
}

static void
test_key_create_and_reload(void **state)
{
	struct key_fixture *f = *state;
	uint8_t k1[SECRET_KEY_LEN], k2[SECRET_KEY_LEN];
	uint8_t zero[SECRET_KEY_LEN] = { 0 };
	char err[256];
	struct stat st;

	assert_int_equal(secret_key_load(f->path, k1, err, sizeof(err)), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, SECRET_KEY_LEN);
	assert_memory_not_equal(k1, zero, SECRET_KEY_LEN);
	assert_int_equal(secret_key_load(f->path, k2, err, sizeof(err)), 0);
	assert_memory_equal(k1, k2, SECRET_KEY_LEN);
}

static void
test_key_refused(void **state)
{
	struct key_fixture *f = *state;
	uint8_t k[SECRET_KEY_LEN];
	char err[256];
	FILE *fp;
	static const mode_t bad_modes[] = { 0644, 0640, 0604, 0660, 0601,
		0610 };
	size_t i;

	assert_int_equal(secret_key_load(f->path, k, err, sizeof(err)), 0);
	for (i = 0; i < ARRAY_LEN(bad_modes); i++) {
		assert_int_equal(chmod(f->path, bad_modes[i]), 0);
		err[0] = '\0';
		assert_int_equal(secret_key_load(f->path, k, err, sizeof(err)),
		    ERR_CRYPTO);
		assert_non_null(strstr(err, "group or others"));
		assert_non_null(strstr(err, "chmod 600"));
	}
	/* Owner-only modes are fine. */
	assert_int_equal(chmod(f->path, 0400), 0);
	assert_int_equal(secret_key_load(f->path, k, err, sizeof(err)), 0);
	assert_int_equal(chmod(f->path, 0600), 0);

	/* Wrong size. */
	fp = fopen(f->path, "a");
	assert_non_null(fp);
	fputs("x", fp);
	fclose(fp);
	err[0] = '\0';
	assert_int_equal(secret_key_load(f->path, k, err, sizeof(err)),
	    ERR_CRYPTO);
	assert_non_null(strstr(err, "33 bytes"));
	assert_int_equal(truncate(f->path, 0), 0);
	assert_int_equal(secret_key_load(f->path, k, err, sizeof(err)),
	    ERR_CRYPTO);
	assert_non_null(strstr(err, "0 bytes"));

	/* Not a regular file. */
	assert_int_equal(secret_key_load(f->dir, k, err, sizeof(err)),
	    ERR_CRYPTO);
	assert_non_null(strstr(err, "not a regular file"));

	/* A directory that does not exist: creation fails, detail given. */
	err[0] = '\0';
	assert_int_not_equal(secret_key_load("/nonexistent-dir/key", k, err,
				 sizeof(err)),
	    0);
	assert_non_null(strstr(err, "/nonexistent-dir/key"));
	/* A NULL errbuf is allowed. */
	assert_int_not_equal(secret_key_load(f->dir, k, NULL, 0), 0);
}

static void
fill_key(uint8_t k[SECRET_KEY_LEN], uint8_t v)
{
	size_t i;

	for (i = 0; i < SECRET_KEY_LEN; i++) {
		k[i] = (uint8_t)(v + i);
	}
}

static void
test_seal_round_trip(void **state)
{
	static const struct {
		const char *p;
		size_t n;
	} cases[] = {
		{ "", 0 },
		{ "x", 1 },
		{ "hunter2", 7 },
		{ "bin\0ary\xff", 8 },
		{ "a much longer password with spaces and \xC3\xA9 accents "
		  "that spans several AES blocks.................",
		    96 },
	};
	uint8_t k[SECRET_KEY_LEN], *b1, *b2;
	size_t i, n1, n2, pn;
	char *p;

	(void)state;
	fill_key(k, 7);
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		assert_int_equal(secret_seal(k, cases[i].p, cases[i].n, &b1,
				     &n1),
		    0);
		assert_int_equal(n1, 3 + 12 + cases[i].n + 16);
		assert_memory_equal(b1, "MS1", 3);
		assert_int_equal(secret_open(k, b1, n1, &p, &pn), 0);
		assert_int_equal(pn, cases[i].n);
		assert_memory_equal(p, cases[i].p, pn);
		assert_int_equal(p[pn], '\0');
		/* A second seal uses a fresh nonce. */
		assert_int_equal(secret_seal(k, cases[i].p, cases[i].n, &b2,
				     &n2),
		    0);
		assert_int_equal(n1, n2);
		assert_memory_not_equal(b1 + 3, b2 + 3, 12);
		mem_wipe(p, pn);
		free(p);
		free(b1);
		free(b2);
	}
}

static void
test_open_rejects(void **state)
{
	uint8_t k[SECRET_KEY_LEN], k2[SECRET_KEY_LEN], *b;
	size_t n, i, pn;
	char *p;
	int bit;

	(void)state;
	fill_key(k, 1);
	fill_key(k2, 2);
	assert_int_equal(secret_seal(k, "hunter2", 7, &b, &n), 0);
	/* Every bit of every byte. */
	for (i = 0; i < n; i++) {
		for (bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			p = (char *)0x1;
			assert_int_equal(secret_open(k, b, n, &p, &pn),
			    ERR_CRYPTO);
			assert_null(p);
			b[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Every truncation. */
	for (i = 0; i < n; i++) {
		assert_int_equal(secret_open(k, b, i, &p, &pn), ERR_CRYPTO);
	}
	/* Wrong key. */
	assert_int_equal(secret_open(k2, b, n, &p, &pn), ERR_CRYPTO);
	/* Still fine with the right one. */
	assert_int_equal(secret_open(k, b, n, &p, &pn), 0);
	assert_string_equal(p, "hunter2");
	free(p);
	free(b);
	/* Not a blob at all. */
	assert_int_equal(secret_open(k, (const uint8_t *)"hunter2", 7, &p,
			     &pn),
	    ERR_CRYPTO);
	assert_int_equal(secret_open(k, NULL, 0, &p, &pn), ERR_CRYPTO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_create_and_reload,
		    key_setup, key_teardown),
		cmocka_unit_test_setup_teardown(test_key_refused, key_setup,
		    key_teardown),
		cmocka_unit_test(test_seal_round_trip),
		cmocka_unit_test(test_open_rejects),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
