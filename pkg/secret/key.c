/*
 * key.c: the credential key file of mailsync-store.
 *
 * The key is 32 random bytes in a file only its owner may read. On first
 * use the file is created with O_CREAT|O_EXCL and mode 0600 (so a file
 * planted in the meantime is never trusted as new), filled from the OS
 * random source, and fsync'ed together with its directory before the key
 * is used to seal anything: a key lost in a crash would make every sealed
 * password unreadable. On load, a file that group or others could read,
 * that is not a regular file, or that is not exactly 32 bytes is refused
 * with an errbuf that says what to fix. Key bytes on the stack are wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "secret/secret.h"

static void
key_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
key_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf == NULL || errlen == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

/* Fills p with n bytes from the kernel CSPRNG. */
static int
key_random(uint8_t *p, size_t n)
{
	ssize_t r;
	size_t off = 0;

	while (off < n) {
		r = getrandom(p + off, n - off, 0);
		if (r < 0) {
			if (errno == EINTR) {
				continue;
			}
			return (ERR_CRYPTO);
		}
		off += (size_t)r;
	}
	return (ERR_OK);
}

/* fsyncs the directory holding path, so a new entry survives a crash. */
static int
key_sync_dir(const char *path)
{
	char *copy;
	int fd, rv = ERR_OK;

	copy = xstrdup(path);
	if (copy == NULL) {
		return (ERR_NOMEM);
	}
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		rv = err_from_errno(errno);
	}
	if (fd >= 0) {
		close(fd);
	}
	free(copy);
	return (rv);
}

/* Creates path with a fresh key. ERR_EXISTS if it appeared meanwhile. */
static int
key_create(const char *path, uint8_t key[SECRET_KEY_LEN], char *errbuf,
    size_t errlen)
{
	size_t off = 0;
	ssize_t w;
	int fd, rv;

	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST) {
			return (ERR_EXISTS);
		}
		rv = err_from_errno(errno);
		key_err(errbuf, errlen, "cannot create key file %s: %s", path,
		    strerror(errno));
		return (rv);
	}
	rv = key_random(key, SECRET_KEY_LEN);
	if (rv != 0) {
		key_err(errbuf, errlen, "no random bytes for key file %s: %s",
		    path, strerror(errno));
		goto fail;
	}
	while (off < SECRET_KEY_LEN) {
		w = write(fd, key + off, SECRET_KEY_LEN - off);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			rv = ERR_IO;
			key_err(errbuf, errlen, "cannot write key file %s: %s",
			    path, strerror(errno));
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		rv = ERR_IO;
		key_err(errbuf, errlen, "cannot fsync key file %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	rv = key_sync_dir(path);
	if (rv != 0) {
		key_err(errbuf, errlen, "cannot fsync the directory of %s: %s",
		    path, strerror(errno));
		goto fail;
	}
	close(fd);
	return (ERR_OK);
fail:
	close(fd);
	unlink(path);
	mem_wipe(key, SECRET_KEY_LEN);
	return (rv);
}

/* Reads the existing key file, enforcing mode and size. */
static int
key_read(int fd, const char *path, uint8_t key[SECRET_KEY_LEN],
    char *errbuf, size_t errlen)
{
	struct stat st;
	size_t off = 0;
	ssize_t r;

	if (fstat(fd, &st) != 0) {
		key_err(errbuf, errlen, "cannot stat key file %s: %s", path,
		    strerror(errno));
		return (ERR_IO);
	}
	if (!S_ISREG(st.st_mode)) {
		key_err(errbuf, errlen, "key file %s is not a regular file",
		    path);
		return (ERR_CRYPTO);
	}
	if ((st.st_mode & 077) != 0) {
		key_err(errbuf, errlen,
		    "key file %s has mode %04o: it must not be accessible "
		    "by group or others (chmod 600 %s)",
		    path, (unsigned)(st.st_mode & 07777), path);
		return (ERR_CRYPTO);
	}
	if (st.st_size != SECRET_KEY_LEN) {
		key_err(errbuf, errlen,
		    "key file %s is %lld bytes, a key is exactly %d", path,
		    (long long)st.st_size, SECRET_KEY_LEN);
		return (ERR_CRYPTO);
	}
	while (off < SECRET_KEY_LEN) {
		r = read(fd, key + off, SECRET_KEY_LEN - off);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			mem_wipe(key, SECRET_KEY_LEN);
			key_err(errbuf, errlen, "cannot read key file %s: %s",
			    path, r == 0 ? "short file" : strerror(errno));
			return (ERR_IO);
		}
		off += (size_t)r;
	}
	return (ERR_OK);
}

int
secret_key_load(const char *path, uint8_t key[SECRET_KEY_LEN],
    char *errbuf, size_t errlen)
{
	int fd, rv, tries;

	if (errbuf != NULL && errlen > 0) {
		errbuf[0] = '\0';
	}
	for (tries = 0; tries < 2; tries++) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd >= 0) {
			rv = key_read(fd, path, key, errbuf, errlen);
			close(fd);
			return (rv);
		}
		if (errno != ENOENT) {
			rv = err_from_errno(errno);
			key_err(errbuf, errlen, "cannot open key file %s: %s",
			    path, strerror(errno));
			return (rv);
		}
		rv = key_create(path, key, errbuf, errlen);
		if (rv != ERR_EXISTS) {
			return (rv);
		}
		/* Another process created it first: load theirs. */
	}
	key_err(errbuf, errlen, "key file %s keeps appearing and vanishing",
	    path);
	return (ERR_IO);
}
