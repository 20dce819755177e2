/*
 * ipc.c: the nng glue shared by every process. Opens the four pipeline
 * sockets (control, results, events, jobs) from URLs with the same options
 * everywhere (receive size cap PROTO_MAX_MSG, 0600 ipc:// socket files,
 * TLS for tls+tcp://), and moves proto messages: ipc_send encodes,
 * ipc_recv decodes (dropping and logging what does not decode), ipc_call
 * does one request/reply round trip with a deadline.
 *
 * Timeouts are set on the socket per call (NNG_OPT_SENDTIMEO/RECVTIMEO);
 * that is safe because each process has one owner thread per socket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "base/base.h"
#include "ipc/ipc.h"
#include "proto/proto.h"

/* REQ resends an unanswered request after this long; generous, so that a
 * slow store is not flooded with duplicates (it must be idempotent). */
#define IPC_REQ_RESEND_MS 60000

static const char *const ipc_names[IPC_ENDPOINT_COUNT] = {
	[IPC_CONTROL] = "control",
	[IPC_RESULTS] = "results",
	[IPC_EVENTS] = "events",
	[IPC_JOBS] = "jobs",
	[IPC_WATCH] = "watch",
};

const char *
ipc_endpoint_name(enum ipc_endpoint e)
{
	if ((int)e < 0 || e >= IPC_ENDPOINT_COUNT) {
		return ("unknown");
	}
	return (ipc_names[e]);
}

int
ipc_default_url(const char *dir, enum ipc_endpoint e, char *url, size_t n)
{
	int w;

	if (dir == NULL || (int)e < 0 || e >= IPC_ENDPOINT_COUNT || n == 0) {
		return (ERR_INVAL);
	}
	w = snprintf(url, n, "ipc://%s/%s.sock", dir, ipc_names[e]);
	if (w < 0 || (size_t)w >= n) {
		url[0] = '\0';
		return (ERR_TOOBIG);
	}
	return (0);
}

int
ipc_err(int nng_rv)
{
	switch (nng_rv) {
	case 0:
		return (0);
	case NNG_ETIMEDOUT:
		return (ERR_TIMEOUT);
	case NNG_ECLOSED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
		return (ERR_CLOSED);
	case NNG_EAGAIN:
		return (ERR_AGAIN);
	case NNG_ENOMEM:
		return (ERR_NOMEM);
	case NNG_EMSGSIZE:
		return (ERR_TOOBIG);
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EBADTYPE:
		return (ERR_INVAL);
	case NNG_ECONNREFUSED:
	case NNG_EUNREACHABLE:
		return (ERR_UNREACHABLE);
	case NNG_EADDRINUSE:
		return (ERR_EXISTS);
	case NNG_ESTATE:
		return (ERR_BADSTATE);
	case NNG_ECRYPTO:
	case NNG_EPEERAUTH:
		return (ERR_TLS);
	default:
		return (ERR_IO);
	}
}

static bool
has_prefix(const char *s, const char *p)
{
	return (strncmp(s, p, strlen(p)) == 0);
}

/* Opens the protocol socket for (endpoint, role). */
static int
open_proto(enum ipc_endpoint e, enum ipc_role role, nng_socket *s)
{
	bool listen = role == IPC_LISTEN;

	switch (e) {
	case IPC_CONTROL:
		return (listen ? nng_rep0_open(s) : nng_req0_open(s));
	case IPC_RESULTS:
		return (listen ? nng_pull0_open(s) : nng_push0_open(s));
	case IPC_EVENTS:
		return (listen ? nng_pub0_open(s) : nng_sub0_open(s));
	case IPC_JOBS:
	case IPC_WATCH:
		return (listen ? nng_push0_open(s) : nng_pull0_open(s));
	default:
		return (NNG_EINVAL);
	}
}

/* Host part of scheme://host:port (brackets of IPv6 removed). */
static int
url_host(const char *url, char *host, size_t n)
{
	const char *p = strstr(url, "://"), *end;
	size_t len;

	if (p == NULL) {
		return (ERR_INVAL);
	}
	p += 3;
	if (*p == '[') {
		p++;
		end = strchr(p, ']');
	} else {
		end = strrchr(p, ':');
	}
	if (end == NULL) {
		end = p + strlen(p);
	}
	len = (size_t)(end - p);
	if (len == 0 || len >= n) {
		return (ERR_INVAL);
	}
	memcpy(host, p, len);
	host[len] = '\0';
	return (0);
}

/* Reads a PEM file (at most 1 MiB) into b, NUL-terminated. */
static int
read_pem(const char *path, struct buf *b, char *errbuf, size_t errlen)
{
	char chunk[4096];
	size_t n;
	FILE *f;
	int rv = 0;

	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return (ERR_CONFIG);
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		rv = buf_add(b, chunk, n);
		if (rv != 0) {
			snprintf(errbuf, errlen, "%s: %s", path,
			    rv == ERR_TOOBIG ? "larger than 1 MiB"
			                     : err_str(rv));
			rv = ERR_CONFIG;
			break;
		}
	}
	if (rv == 0 && ferror(f)) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		rv = ERR_CONFIG;
	}
	fclose(f);
	return (rv);
}

/* Loads our certificate chain and key (two files, or one holding both). */
static int
tls_own_cert(nng_tls_config *cfg, const struct ipc_tls *tls, char *errbuf,
    size_t errlen)
{
	struct buf cert, key;
	int rv;

	buf_init(&cert, 1024 * 1024);
	buf_init(&key, 1024 * 1024);
	rv = read_pem(tls->cert_file, &cert, errbuf, errlen);
	if (rv != 0) {
		goto fail;
	}
	rv = read_pem(tls->key_file, &key, errbuf, errlen);
	if (rv != 0) {
		goto fail;
	}
	rv = nng_tls_config_own_cert(cfg, cert.data, key.data, NULL);
	if (rv != 0) {
		snprintf(errbuf, errlen,
		    "%s, %s: cannot load certificate and "
		    "key: %s",
		    tls->cert_file, tls->key_file, nng_strerror(rv));
		rv = ERR_TLS;
	}
fail:
	buf_release(&cert);
	buf_wipe_release(&key);
	return (rv);
}

/* Builds the TLS configuration of one side; *cfg_r owned by the caller
 * (nng_tls_config_free). */
static int
tls_config(enum ipc_role role, const char *url, const struct ipc_tls *tls,
    nng_tls_config **cfg_r, char *errbuf, size_t errlen)
{
	nng_tls_config *cfg = NULL;
	char host[256];
	const char *what = "allocating the TLS configuration";
	int rv;

	rv = nng_tls_config_alloc(&cfg,
	    role == IPC_LISTEN ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
	if (rv != 0) {
		goto fail;
	}
	if (role == IPC_LISTEN) {
		if (tls->cert_file == NULL || tls->key_file == NULL) {
			snprintf(errbuf, errlen,
			    "%s: a TLS listener needs a "
			    "certificate and a key file",
			    url);
			nng_tls_config_free(cfg);
			return (ERR_CONFIG);
		}
	} else if (tls->ca_file == NULL) {
		snprintf(errbuf, errlen,
		    "%s: a TLS dialer needs a CA file to "
		    "verify the server",
		    url);
		nng_tls_config_free(cfg);
		return (ERR_CONFIG);
	}
	if (tls->cert_file != NULL && tls->key_file != NULL) {
		rv = tls_own_cert(cfg, tls, errbuf, errlen);
		if (rv != 0) {
			nng_tls_config_free(cfg);
			return (rv);
		}
	}
	if (tls->ca_file != NULL) {
		what = tls->ca_file;
		rv = nng_tls_config_ca_file(cfg, tls->ca_file);
		if (rv != 0) {
			goto fail;
		}
	}
	what = "setting the TLS verification mode";
	rv = nng_tls_config_auth_mode(cfg,
	    tls->ca_file != NULL ? NNG_TLS_AUTH_MODE_REQUIRED
	                         : NNG_TLS_AUTH_MODE_NONE);
	if (rv != 0) {
		goto fail;
	}
	if (role == IPC_DIAL) {
		what = "setting the TLS server name";
		if (tls->server_name != NULL) {
			rv = nng_tls_config_server_name(cfg, tls->server_name);
		} else if (url_host(url, host, sizeof(host)) == 0) {
			rv = nng_tls_config_server_name(cfg, host);
		} else {
			rv = NNG_EADDRINVAL;
		}
		if (rv != 0) {
			goto fail;
		}
	}
	*cfg_r = cfg;
	return (0);
fail:
	snprintf(errbuf, errlen, "%s: %s: %s", url, what, nng_strerror(rv));
	if (cfg != NULL) {
		nng_tls_config_free(cfg);
	}
	return (ERR_TLS);
}

int
ipc_open_tls(enum ipc_endpoint e, enum ipc_role role, const char *url,
    const struct ipc_tls *tls, nng_socket *s_r, char *errbuf, size_t errlen)
{
	return (ipc_open_ex(e, role, url, tls, s_r, NULL, errbuf, errlen));
}

int
ipc_open_ex(enum ipc_endpoint e, enum ipc_role role, const char *url,
    const struct ipc_tls *tls, nng_socket *s_r, nng_listener *l_r,
    char *errbuf, size_t errlen)
{
	nng_socket s = NNG_SOCKET_INITIALIZER;
	nng_listener l = NNG_LISTENER_INITIALIZER;
	nng_dialer d = NNG_DIALER_INITIALIZER;
	nng_tls_config *cfg = NULL;
	bool is_ipc, is_tls, opened = false;
	const char *what = "opening the socket";
	char local[8];
	int rv;

	if (errbuf == NULL || errlen == 0) {
		errbuf = local;
		errlen = sizeof(local);
	}
	errbuf[0] = '\0';
	if (url == NULL || (int)e < 0 || e >= IPC_ENDPOINT_COUNT
	    || (role != IPC_LISTEN && role != IPC_DIAL)) {
		snprintf(errbuf, errlen, "invalid endpoint, role or URL");
		return (ERR_INVAL);
	}
	is_ipc = has_prefix(url, "ipc://");
	is_tls = has_prefix(url, "tls+tcp://");
	if (!is_ipc && !is_tls && !has_prefix(url, "tcp://")) {
		snprintf(errbuf, errlen,
		    "%s: unsupported URL (use ipc://, "
		    "tcp:// or tls+tcp://)",
		    url);
		return (ERR_INVAL);
	}
	if (is_ipc
	    && strlen(url + 6)
	        >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(errbuf, errlen,
		    "socket path longer than %zu bytes: %s",
		    sizeof(((struct sockaddr_un *)0)->sun_path) - 1, url);
		return (ERR_TOOBIG);
	}
	if (is_tls && tls == NULL) {
		snprintf(errbuf, errlen,
		    "%s: tls+tcp:// needs TLS settings "
		    "(certificate, key, CA)",
		    url);
		return (ERR_CONFIG);
	}
	if (is_tls) {
		rv = tls_config(role, url, tls, &cfg, errbuf, errlen);
		if (rv != 0) {
			return (rv);
		}
	}
	rv = open_proto(e, role, &s);
	if (rv != 0) {
		goto fail;
	}
	opened = true;
	what = "setting socket options";
	rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, PROTO_MAX_MSG);
	if (rv == 0 && e == IPC_EVENTS && role == IPC_DIAL) {
		rv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	}
	if (rv == 0 && e == IPC_CONTROL && role == IPC_DIAL) {
		rv = nng_socket_set_ms(
		    s, NNG_OPT_REQ_RESENDTIME, IPC_REQ_RESEND_MS);
	}
	if (rv != 0) {
		goto fail;
	}
	if (role == IPC_LISTEN) {
		what = "listening";
		rv = nng_listener_create(&l, s, url);
		if (rv == 0 && is_ipc) {
			rv = nng_listener_set_int(
			    l, NNG_OPT_IPC_PERMISSIONS, 0600);
		}
		if (rv == 0 && cfg != NULL) {
			rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
		}
		if (rv == 0) {
			rv = nng_listener_start(l, 0);
		}
		if (rv == 0 && is_ipc && chmod(url + 6, 0600) != 0) {
			snprintf(errbuf, errlen, "%s: chmod 0600: %s", url,
			    strerror(errno));
			rv = NNG_EPERM;
			what = NULL;
		}
	} else {
		what = "dialing";
		rv = nng_dialer_create(&d, s, url);
		if (rv == 0 && cfg != NULL) {
			rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
		}
		if (rv == 0) {
			rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
		}
	}
	if (rv != 0) {
		goto fail;
	}
	if (cfg != NULL) {
		nng_tls_config_free(cfg); /* the endpoint holds a reference */
	}
	*s_r = s;
	if (l_r != NULL) {
		*l_r = l;
	}
	return (0);
fail:
	if (what != NULL) {
		snprintf(
		    errbuf, errlen, "%s %s: %s", what, url, nng_strerror(rv));
	}
	if (opened) {
		nng_close(s);
	}
	if (cfg != NULL) {
		nng_tls_config_free(cfg);
	}
	return (ipc_err(rv));
}

int
ipc_open(enum ipc_endpoint e, enum ipc_role role, const char *url,
    nng_socket *s_r, char *errbuf, size_t errlen)
{
	return (ipc_open_tls(e, role, url, NULL, s_r, errbuf, errlen));
}

void
ipc_msg_free(nng_msg **raw)
{
	if (raw == NULL || *raw == NULL) {
		return;
	}
	mem_wipe(nng_msg_body(*raw), nng_msg_len(*raw));
	nng_msg_free(*raw);
	*raw = NULL;
}

/* Sets the socket's timeout option; returns the nng flags for the call. */
static int
set_timeout(nng_socket s, const char *opt, int timeout_ms, int *flags_r)
{
	*flags_r = 0;
	if (timeout_ms == 0) {
		*flags_r = NNG_FLAG_NONBLOCK;
		return (0);
	}
	return (nng_socket_set_ms(
	    s, opt, timeout_ms < 0 ? NNG_DURATION_INFINITE : timeout_ms));
}

int
ipc_send(nng_socket s, const struct proto_msg *m, int timeout_ms)
{
	nng_msg *msg = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rv, flags;

	rv = proto_encode(m, &buf, &len);
	if (rv != 0) {
		log_warnx("ipc: cannot encode type=%s id=%llu err=\"%s\"",
		    proto_msg_name(m->type), (unsigned long long)m->id,
		    err_str(rv));
		return (rv);
	}
	rv = nng_msg_alloc(&msg, len);
	if (rv != 0) {
		rv = ipc_err(rv);
		goto fail;
	}
	memcpy(nng_msg_body(msg), buf, len);
	rv = ipc_err(set_timeout(s, NNG_OPT_SENDTIMEO, timeout_ms, &flags));
	if (rv != 0) {
		goto fail;
	}
	rv = nng_sendmsg(s, msg, flags);
	if (rv != 0) {
		rv = ipc_err(rv);
		goto fail;
	}
	msg = NULL; /* nng owns it now */
	rv = 0;
fail:
	ipc_msg_free(&msg);
	mem_wipe(buf, len);
	free(buf);
	return (rv);
}

int
ipc_recv(nng_socket s, struct proto_msg *m, nng_msg **raw_r, int timeout_ms)
{
	nng_msg *msg = NULL;
	char err[256];
	int rv, flags;

	memset(m, 0, sizeof(*m));
	*raw_r = NULL;
	rv = ipc_err(set_timeout(s, NNG_OPT_RECVTIMEO, timeout_ms, &flags));
	if (rv != 0) {
		return (rv);
	}
	rv = nng_recvmsg(s, &msg, flags);
	if (rv != 0) {
		return (ipc_err(rv));
	}
	rv = proto_decode(
	    nng_msg_body(msg), nng_msg_len(msg), m, err, sizeof(err));
	if (rv != 0) {
		log_warnx("ipc: dropped message type=%s id=%llu bytes=%zu "
		          "err=%s detail=\"%s\"",
		    proto_msg_name(m->type), (unsigned long long)m->id,
		    nng_msg_len(msg), err_name(rv), err);
		ipc_msg_free(&msg);
		return (rv);
	}
	*raw_r = msg;
	return (0);
}

int
ipc_call(nng_socket s, const struct proto_msg *req, struct proto_msg *rep,
    nng_msg **raw_r, int timeout_ms)
{
	int64_t deadline = clock_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	int64_t left;
	int rv;

	memset(rep, 0, sizeof(*rep));
	*raw_r = NULL;
	rv = ipc_send(s, req, timeout_ms);
	if (rv == ERR_TIMEOUT) {
		return (ERR_UNREACHABLE);
	}
	if (rv != 0) {
		return (rv);
	}
	if (timeout_ms < 0) {
		left = -1;
	} else {
		left = deadline - clock_mono_ms();
		if (left < 1) {
			left = 1;
		}
	}
	rv = ipc_recv(s, rep, raw_r, (int)left);
	if (rv == ERR_TIMEOUT) {
		return (ERR_UNREACHABLE);
	}
	if (rv != 0) {
		return (rv);
	}
	if (rep->type != MSG_STORE_REPLY || rep->id != req->id) {
		log_warnx("ipc: unexpected reply type=%s id=%llu want "
		          "type=store.reply id=%llu",
		    proto_msg_name(rep->type), (unsigned long long)rep->id,
		    (unsigned long long)req->id);
		proto_msg_release(rep);
		ipc_msg_free(raw_r);
		return (ERR_PROTO);
	}
	return (0);
}
