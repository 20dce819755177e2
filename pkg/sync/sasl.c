/*
 * sasl.c: the client side of the SASL mechanisms the IMAP session speaks,
 * as pure functions (no I/O), so they can be unit-tested byte for byte:
 *
 *   PLAIN        RFC 4616: authzid NUL authcid NUL password
 *   OAUTHBEARER  RFC 7628: "n,a=USER," ^A "host=H" ^A "port=P" ^A
 *                "auth=Bearer TOKEN" ^A ^A
 *   XOAUTH2      Google's predecessor: "user=USER" ^A
 *                "auth=Bearer TOKEN" ^A ^A
 *
 * and the reading of an OAuth failure: the server's challenge is base64 of
 * a JSON object ({"status":"invalid_token",...}); we extract "status" for
 * the error text. The challenge is peer-fed: it is capped, and anything
 * odd in it yields an empty status, never an error.
 *
 * The built responses hold credentials: callers wipe the buffers
 * (buf_wipe_release).
 */
#include <string.h>

#include <openssl/evp.h>

#include "sync_int.h"

/* A user name inside OAUTHBEARER's gs2-header: ',' and '=' escaped. */
static int
sasl_add_saslname(struct buf *b, const char *s)
{
	int rv = 0;

	for (; rv == 0 && *s != '\0'; s++) {
		if (*s == ',') {
			rv = buf_addstr(b, "=2C");
		} else if (*s == '=') {
			rv = buf_addstr(b, "=3D");
		} else {
			rv = buf_add(b, s, 1);
		}
	}
	return (rv);
}

/* Refuses bytes that would break the ^A-separated framing. */
static bool
sasl_clean(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\x01' || *s == '\r' || *s == '\n') {
			return (false);
		}
	}
	return (true);
}

int
sync_sasl_plain(const char *user, const char *pass, struct buf *out)
{
	int rv;

	if (!sasl_clean(user)) {
		return (ERR_INVAL);
	}
	rv = buf_add(out, "", 1);
	if (rv == 0) {
		rv = buf_add(out, user, strlen(user) + 1);
	}
	if (rv == 0) {
		rv = buf_add(out, pass, strlen(pass));
	}
	return (rv);
}

int
sync_sasl_oauth(enum sync_sasl_mech mech, const char *user,
    const char *host, uint16_t port, const char *token, struct buf *out)
{
	int rv;

	if (!sasl_clean(user) || !sasl_clean(host) || !sasl_clean(token)) {
		return (ERR_INVAL);
	}
	if (mech == SYNC_SASL_OAUTHBEARER) {
		rv = buf_addstr(out, "n,a=");
		if (rv == 0) {
			rv = sasl_add_saslname(out, user);
		}
		if (rv == 0) {
			rv = buf_printf(out, ",\x01host=%s\x01port=%u\x01", host,
			    (unsigned)port);
		}
	} else if (mech == SYNC_SASL_XOAUTH2) {
		rv = buf_printf(out, "user=%s\x01", user);
	} else {
		return (ERR_INVAL);
	}
	if (rv == 0) {
		rv = buf_printf(out, "auth=Bearer %s\x01\x01", token);
	}
	return (rv);
}

int
sync_sasl_b64(const void *raw, size_t n, struct buf *out)
{
	size_t need = 4 * ((n + 2) / 3);
	int rv;

	rv = buf_reserve(out, need + 1);
	if (rv != 0) {
		return (rv);
	}
	EVP_EncodeBlock((unsigned char *)out->data + out->len,
	    (const unsigned char *)raw, (int)n);
	out->len += need;
	out->data[out->len] = '\0';
	return (ERR_OK);
}

/* The JSON string value after "key": in j (NUL-terminated), sanitised to
 * printable ASCII; false when absent or not a string. */
static bool
sasl_json_string(const char *j, const char *key, char *v, size_t n)
{
	const char *p = j;
	size_t klen = strlen(key), k = 0;

	while ((p = strchr(p, '"')) != NULL) {
		p++;
		if (strncmp(p, key, klen) != 0 || p[klen] != '"') {
			/* Skip this string (it may be a value). */
			while (*p != '\0' && *p != '"') {
				p += (*p == '\\' && p[1] != '\0') ? 2 : 1;
			}
			if (*p == '\0') {
				return (false);
			}
			p++;
			continue;
		}
		p += klen + 1;
		p += strspn(p, " \t\r\n");
		if (*p != ':') {
			continue;
		}
		p++;
		p += strspn(p, " \t\r\n");
		if (*p != '"') {
			return (false);
		}
		for (p++; *p != '\0' && *p != '"' && k + 1 < n; p++) {
			if (*p == '\\' && p[1] != '\0') {
				p++;
			}
			v[k++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
		}
		v[k] = '\0';
		return (*p == '"' || k + 1 == n);
	}
	return (false);
}

void
sync_sasl_oauth_status(const char *b64, size_t len, char *status, size_t n)
{
	unsigned char dec[SYNC_SASL_MAX_CHALLENGE + 4];
	int dlen;

	if (n == 0) {
		return;
	}
	status[0] = '\0';
	if (b64 == NULL || len == 0 || len % 4 != 0 ||
	    len / 4 * 3 > SYNC_SASL_MAX_CHALLENGE) {
		return;
	}
	dlen = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)len);
	if (dlen < 0) {
		return;
	}
	/* EVP_DecodeBlock counts the bytes of the '=' padding too. */
	if (b64[len - 1] == '=') {
		dlen -= b64[len - 2] == '=' ? 2 : 1;
	}
	dec[dlen] = '\0';
	if (memchr(dec, '\0', (size_t)dlen) != NULL) {
		return;
	}
	if (!sasl_json_string((const char *)dec, "status", status, n)) {
		status[0] = '\0';
	}
}
