/*
 * seal.c: AES-256-GCM sealing of credentials (OpenSSL EVP).
 *
 *   blob = "MS1" || nonce(12) || ciphertext(n) || tag(16)
 *
 * The nonce is fresh random bytes for every seal (2^-96 collision odds per
 * pair, far beyond the number of passwords a store will ever seal under
 * one key). The magic "MS1" is also the additional authenticated data, so
 * a blob cannot be replayed under another format version. Any change to
 * a blob, a wrong key or a truncated blob fails with ERR_CRYPTO and no
 * partial plain text escapes: the output buffer is wiped and freed first.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/base.h"
#include "secret/secret.h"

#define SEAL_MAGIC "MS1"
#define SEAL_MAGIC_LEN 3
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
#define SEAL_OVERHEAD (SEAL_MAGIC_LEN + SEAL_NONCE_LEN + SEAL_TAG_LEN)

int
secret_seal(const uint8_t key[SECRET_KEY_LEN], const void *plain, size_t n,
    uint8_t **out_r, size_t *out_len_r)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *out = NULL, *nonce, *ct;
	size_t len;
	int rv = ERR_CRYPTO, outl;

	*out_r = NULL;
	*out_len_r = 0;
	if (n > (size_t)INT_MAX - SEAL_OVERHEAD) {
		return (ERR_TOOBIG);
	}
	len = SEAL_OVERHEAD + n;
	out = malloc(len);
	if (out == NULL) {
		return (ERR_NOMEM);
	}
	memcpy(out, SEAL_MAGIC, SEAL_MAGIC_LEN);
	nonce = out + SEAL_MAGIC_LEN;
	ct = nonce + SEAL_NONCE_LEN;
	if (RAND_bytes(nonce, SEAL_NONCE_LEN) != 1) {
		goto fail;
	}
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL) {
		rv = ERR_NOMEM;
		goto fail;
	}
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) !=
		1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, (const uint8_t *)SEAL_MAGIC,
		SEAL_MAGIC_LEN) != 1) {
		goto fail;
	}
	if (n > 0 &&
	    (EVP_EncryptUpdate(ctx, ct, &outl, plain, (int)n) != 1 ||
		(size_t)outl != n)) {
		goto fail;
	}
	if (EVP_EncryptFinal_ex(ctx, ct + n, &outl) != 1 || outl != 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN,
		ct + n) != 1) {
		goto fail;
	}
	*out_r = out;
	*out_len_r = len;
	out = NULL;
	rv = ERR_OK;
fail:
	EVP_CIPHER_CTX_free(ctx);
	if (out != NULL) {
		mem_wipe(out, len);
		free(out);
	}
	return (rv);
}

int
secret_open(const uint8_t key[SECRET_KEY_LEN], const uint8_t *blob, size_t n,
    char **plain_r, size_t *plain_len_r)
{
	EVP_CIPHER_CTX *ctx = NULL;
	const uint8_t *nonce, *ct, *tag;
	uint8_t tagcopy[SEAL_TAG_LEN];
	char *plain = NULL;
	size_t ctlen = 0;
	int rv = ERR_CRYPTO, outl;

	*plain_r = NULL;
	*plain_len_r = 0;
	if (blob == NULL || n < SEAL_OVERHEAD ||
	    n - SEAL_OVERHEAD > (size_t)INT_MAX ||
	    memcmp(blob, SEAL_MAGIC, SEAL_MAGIC_LEN) != 0) {
		return (ERR_CRYPTO);
	}
	nonce = blob + SEAL_MAGIC_LEN;
	ct = nonce + SEAL_NONCE_LEN;
	ctlen = n - SEAL_OVERHEAD;
	tag = ct + ctlen;
	memcpy(tagcopy, tag, SEAL_TAG_LEN);
	plain = malloc(ctlen + 1);
	if (plain == NULL) {
		return (ERR_NOMEM);
	}
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL) {
		rv = ERR_NOMEM;
		goto fail;
	}
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) !=
		1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, (const uint8_t *)SEAL_MAGIC,
		SEAL_MAGIC_LEN) != 1) {
		goto fail;
	}
	if (ctlen > 0 &&
	    (EVP_DecryptUpdate(ctx, (uint8_t *)plain, &outl, ct, (int)ctlen) !=
		    1 ||
		(size_t)outl != ctlen)) {
		goto fail;
	}
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN,
		tagcopy) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (uint8_t *)plain + ctlen, &outl) != 1) {
		goto fail; /* tag mismatch: tampered, or the wrong key */
	}
	plain[ctlen] = '\0';
	*plain_r = plain;
	*plain_len_r = ctlen;
	plain = NULL;
	rv = ERR_OK;
fail:
	EVP_CIPHER_CTX_free(ctx);
	if (plain != NULL) {
		mem_wipe(plain, ctlen + 1);
		free(plain);
	}
	return (rv);
}
