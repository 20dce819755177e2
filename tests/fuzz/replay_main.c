/*
 * replay_main.c: main() for the corpus replayers. Linked with one
 * tests/fuzz/fuzz_*.c harness, it calls LLVMFuzzerTestOneInput() once per
 * file, for every regular file of each directory argument and for every
 * file argument, so `make test` exercises the harnesses (and catches
 * regressions on crash reproducers) without libFuzzer. Inputs are read
 * up to 1 MiB, as libFuzzer's default -max_len would never exceed.
 * Prints how many inputs ran; exits 0, or 1 if an argument is unreadable.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_INPUT (1024u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file; returns 0, or -1 if it cannot be read. */
static int
replay_file(const char *path, uint8_t *buf, size_t *count)
{
	FILE *f;
	size_t n;
	int bad;

	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "replay: cannot open %s\n", path);
		return (-1);
	}
	n = fread(buf, 1, REPLAY_MAX_INPUT, f);
	bad = ferror(f);
	fclose(f);
	if (bad) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		return (-1);
	}
	/* Give the harness an exact-size copy so ASan sees overreads. */
	{
		uint8_t *copy = malloc(n > 0 ? n : 1);

		if (copy == NULL) {
			fprintf(stderr, "replay: out of memory\n");
			return (-1);
		}
		memcpy(copy, buf, n);
		LLVMFuzzerTestOneInput(copy, n);
		free(copy);
	}
	(*count)++;
	return (0);
}

static int
replay_dir(const char *dir, uint8_t *buf, size_t *count)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	char path[4096];
	int rv = 0, n;

	d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "replay: cannot open directory %s\n", dir);
		return (-1);
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			continue;
		}
		n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			fprintf(stderr, "replay: path too long in %s\n", dir);
			rv = -1;
			continue;
		}
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			continue;
		}
		if (replay_file(path, buf, count) != 0) {
			rv = -1;
		}
	}
	closedir(d);
	return (rv);
}

int
main(int argc, char **argv)
{
	struct stat st;
	uint8_t *buf;
	size_t count = 0;
	int i, rv = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s corpus-dir|file ...\n", argv[0]);
		return (1);
	}
	buf = malloc(REPLAY_MAX_INPUT);
	if (buf == NULL) {
		fprintf(stderr, "replay: out of memory\n");
		return (1);
	}
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: cannot stat %s\n", argv[i]);
			rv = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (replay_dir(argv[i], buf, &count) != 0) {
				rv = 1;
			}
		} else if (replay_file(argv[i], buf, &count) != 0) {
			rv = 1;
		}
	}
	free(buf);
	printf("replayed %zu inputs\n", count);
	return (rv);
}
