/*
 * pkg/secret: credentials at rest. A 32-byte key lives in a 0600 file
 * (created on first use); secrets are sealed with AES-256-GCM as
 *     "MS1" || nonce(12) || ciphertext || tag(16)
 * so a stored blob can never be mistaken for plain text, and any
 * tampering fails to open. Keys and plain texts are wiped before free.
 */
#ifndef MAILSYNC_SECRET_H
#define MAILSYNC_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define SECRET_KEY_LEN 32

/*
 * Loads the key from path, creating it (0600, O_EXCL, random bytes from
 * the OS) when absent. Refuses a key file readable by group or others or
 * of the wrong size: ERR_CRYPTO with errbuf detail.
 */
int secret_key_load(const char *path, uint8_t key[SECRET_KEY_LEN],
    char *errbuf, size_t errlen);

/* Seals plain (n bytes) into a malloc'd blob (*out_r, *out_len_r). */
int secret_seal(const uint8_t key[SECRET_KEY_LEN], const void *plain,
    size_t n, uint8_t **out_r, size_t *out_len_r);

/* Opens a blob into malloc'd, NUL-terminated plain text (caller wipes and
 * frees). ERR_CRYPTO when the blob is malformed or was tampered with. */
int secret_open(const uint8_t key[SECRET_KEY_LEN], const uint8_t *blob,
    size_t n, char **plain_r, size_t *plain_len_r);

#endif
