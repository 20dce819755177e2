/*
 * url.c: server URLs from the configuration, scheme://host[:port][/path].
 *
 * Known schemes and their default ports: imap 143, imaps 993, smtp 587,
 * smtps 465, http 80, https 443. Hosts are names ([A-Za-z0-9.-_]),
 * dotted IPv4, or IPv6 in brackets ("[::1]:993", stored without them).
 * Credentials never belong in a URL (they would end up in logs and
 * process listings), so "user@host" is refused with a message that says
 * so. Only http(s) URLs keep a path; a mail server URL may end in "/"
 * but carries nothing after it.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "net/net.h"

static const struct {
	const char *scheme;
	uint16_t port;
	bool has_path;
} url_schemes[] = {
	{ "imap", 143, false },
	{ "imaps", 993, false },
	{ "smtp", 587, false },
	{ "smtps", 465, false },
	{ "http", 80, true },
	{ "https", 443, true },
};

static int
url_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
url_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return (ERR_INVAL);
}

static bool
url_host_char(char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_');
}

/* Parses the port digits s[0..n) (1..65535). */
static int
url_port(const char *s, size_t n, uint16_t *port_r)
{
	char tmp[8];
	uint64_t v;

	if (n == 0 || n >= sizeof(tmp)) {
		return (ERR_INVAL);
	}
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (parse_u64(tmp, 65535, &v) != 0 || v == 0) {
		return (ERR_INVAL);
	}
	*port_r = (uint16_t)v;
	return (ERR_OK);
}

int
net_url_parse(const char *s, struct net_url *u, char *errbuf, size_t errlen)
{
	const char *p, *auth, *aend, *hend, *portp = NULL;
	struct in6_addr a6;
	size_t i, n, hlen;
	bool has_path = false, found = false;

	memset(u, 0, sizeof(*u));
	if (s == NULL) {
		return (url_err(errbuf, errlen, "no URL"));
	}
	for (p = s; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
			return (url_err(errbuf, errlen,
			    "URL contains a space, control or non-ASCII "
			    "character"));
		}
	}
	p = strstr(s, "://");
	if (p == NULL || p == s) {
		return (url_err(errbuf, errlen,
		    "\"%.64s\" is not a URL (scheme://host[:port])", s));
	}
	n = (size_t)(p - s);
	if (n >= sizeof(u->scheme)) {
		return (url_err(errbuf, errlen, "unknown URL scheme \"%.*s\"",
		    (int)(n > 32 ? 32 : n), s));
	}
	for (i = 0; i < n; i++) {
		u->scheme[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) :
							    s[i];
	}
	u->scheme[n] = '\0';
	for (i = 0; i < ARRAY_LEN(url_schemes); i++) {
		if (strcmp(u->scheme, url_schemes[i].scheme) == 0) {
			u->port = url_schemes[i].port;
			has_path = url_schemes[i].has_path;
			found = true;
			break;
		}
	}
	if (!found) {
		return (url_err(errbuf, errlen,
		    "unknown URL scheme \"%s\" (imap, imaps, smtp, smtps, "
		    "http, https)",
		    u->scheme));
	}

	auth = p + 3;
	aend = strchr(auth, '/');
	if (aend == NULL) {
		aend = auth + strlen(auth);
	}
	if (memchr(auth, '@', (size_t)(aend - auth)) != NULL) {
		return (url_err(errbuf, errlen,
		    "URL must not contain a user name or password "
		    "(user@host); configure credentials separately"));
	}
	if (auth == aend) {
		return (url_err(errbuf, errlen, "URL has no host"));
	}
	if (auth[0] == '[') {
		hend = memchr(auth, ']', (size_t)(aend - auth));
		if (hend == NULL) {
			return (url_err(errbuf, errlen,
			    "unterminated IPv6 address in URL"));
		}
		hlen = (size_t)(hend - auth - 1);
		if (hlen == 0 || hlen >= sizeof(u->host)) {
			return (url_err(errbuf, errlen,
			    "bad IPv6 address in URL"));
		}
		memcpy(u->host, auth + 1, hlen);
		u->host[hlen] = '\0';
		if (inet_pton(AF_INET6, u->host, &a6) != 1) {
			return (url_err(errbuf, errlen,
			    "bad IPv6 address \"%s\" in URL", u->host));
		}
		hend++;
		if (hend != aend && *hend != ':') {
			return (url_err(errbuf, errlen,
			    "junk after IPv6 address in URL"));
		}
		if (hend != aend) {
			portp = hend + 1;
		}
	} else {
		hend = memchr(auth, ':', (size_t)(aend - auth));
		if (hend == NULL) {
			hend = aend;
		} else {
			portp = hend + 1;
			if (memchr(portp, ':', (size_t)(aend - portp)) !=
			    NULL) {
				return (url_err(errbuf, errlen,
				    "IPv6 addresses in URLs must be in "
				    "brackets ([::1]:993)"));
			}
		}
		hlen = (size_t)(hend - auth);
		if (hlen == 0) {
			return (url_err(errbuf, errlen, "URL has no host"));
		}
		if (hlen >= sizeof(u->host)) {
			return (url_err(errbuf, errlen,
			    "host name in URL is too long"));
		}
		for (i = 0; i < hlen; i++) {
			if (!url_host_char(auth[i])) {
				return (url_err(errbuf, errlen,
				    "bad character '%c' in URL host",
				    auth[i]));
			}
		}
		memcpy(u->host, auth, hlen);
		u->host[hlen] = '\0';
	}
	if (portp != NULL &&
	    url_port(portp, (size_t)(aend - portp), &u->port) != 0) {
		return (url_err(errbuf, errlen,
		    "bad port \"%.*s\" in URL (1-65535)",
		    (int)((size_t)(aend - portp) > 16 ? 16 : aend - portp),
		    portp));
	}

	if (*aend == '\0' || (!has_path && strcmp(aend, "/") == 0)) {
		return (ERR_OK);
	}
	if (!has_path) {
		return (url_err(errbuf, errlen,
		    "a %s URL has no path (got \"%.64s\")", u->scheme, aend));
	}
	if (strlcpy_checked(u->path, aend, sizeof(u->path)) != 0) {
		u->path[0] = '\0';
		return (url_err(errbuf, errlen, "URL path is too long"));
	}
	return (ERR_OK);
}
