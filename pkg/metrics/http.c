/*
 * http.c: pkg/metrics' HTTP endpoint. nng's HTTP server answers
 * GET /metrics with the registry's text rendering (Content-Type
 * "text/plain; version=0.0.4"); nng itself answers 404 for other paths
 * and 405 for other methods. The handler runs on nng's threads and only
 * calls metrics_render(), which takes the registry's mutex.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "metrics/metrics.h"

struct metrics_http {
	nng_http_server *srv;
	int port;
};

static void
metrics_http_cb(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	struct metrics *m = nng_http_handler_get_data(h);
	nng_http_res *res = NULL;
	struct buf b;
	int rv;

	buf_init(&b, METRICS_MAX_TEXT);
	rv = metrics_render(m, &b);
	if (rv != 0) {
		log_warnx("metrics: render failed err=%s", err_name(rv));
		if (nng_http_res_alloc_error(&res, 500) != 0) {
			goto fail;
		}
		goto done;
	}
	if (nng_http_res_alloc(&res) != 0
	    || nng_http_res_set_header(
	           res, "Content-Type", METRICS_CONTENT_TYPE)
	        != 0
	    || nng_http_res_copy_data(res, b.data, b.len) != 0) {
		goto fail;
	}
done:
	buf_release(&b);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
	return;
fail:
	buf_release(&b);
	if (res != NULL) {
		nng_http_res_free(res);
	}
	nng_aio_finish(aio, NNG_ENOMEM);
}

/* "host:port" -> "http://host:port", checking the port. */
static int
make_url(const char *hostport, char *url, size_t n)
{
	const char *colon;
	uint64_t port;

	if (hostport == NULL || *hostport == '\0') {
		return (ERR_INVAL);
	}
	colon = strrchr(hostport, ':');
	if (colon == NULL || colon == hostport
	    || parse_u64(colon + 1, 65535, &port) != 0) {
		return (ERR_INVAL);
	}
	if (hostport[0] == '[' && colon[-1] != ']') {
		return (ERR_INVAL);
	}
	if (strpbrk(hostport, "/?#@ ") != NULL) {
		return (ERR_INVAL);
	}
	if (snprintf(url, n, "http://%s", hostport) >= (int)n) {
		return (ERR_INVAL);
	}
	return (0);
}

int
metrics_http_start(struct metrics *m, const char *hostport,
    struct metrics_http **h_r, char *errbuf, size_t errlen)
{
	struct metrics_http *mh = NULL;
	nng_http_handler *h = NULL;
	nng_url *url = NULL;
	nng_sockaddr sa;
	char urlstr[300];
	int rv, nrv = 0;
	const char *what = "";

	if (errbuf != NULL && errlen > 0) {
		errbuf[0] = '\0';
	}
	rv = make_url(hostport, urlstr, sizeof(urlstr));
	if (rv != 0) {
		what = "expected HOST:PORT";
		goto fail;
	}
	rv = ERR_NOMEM;
	mh = calloc(1, sizeof(*mh));
	if (mh == NULL) {
		goto fail;
	}
	rv = ERR_INVAL;
	what = "url";
	if ((nrv = nng_url_parse(&url, urlstr)) != 0) {
		goto fail;
	}
	rv = ERR_IO;
	what = "http server";
	if ((nrv = nng_http_server_hold(&mh->srv, url)) != 0) {
		goto fail;
	}
	what = "handler";
	if ((nrv = nng_http_handler_alloc(&h, "/metrics", metrics_http_cb))
	        != 0
	    || (nrv = nng_http_handler_set_data(h, m, NULL)) != 0) {
		goto fail;
	}
	if ((nrv = nng_http_server_add_handler(mh->srv, h)) != 0) {
		goto fail;
	}
	h = NULL; /* the server owns it now */
	what = "listen";
	if ((nrv = nng_http_server_start(mh->srv)) != 0) {
		goto fail;
	}
	if (nng_http_server_get_addr(mh->srv, &sa) == 0) {
		if (sa.s_family == NNG_AF_INET) {
			mh->port = ntohs(sa.s_in.sa_port);
		} else if (sa.s_family == NNG_AF_INET6) {
			mh->port = ntohs(sa.s_in6.sa_port);
		}
	}
	nng_url_free(url);
	*h_r = mh;
	return (0);
fail:
	if (errbuf != NULL && errlen > 0) {
		(void)snprintf(errbuf, errlen, "%s %s%s%s",
		    hostport != NULL ? hostport : "(null)", what,
		    nrv != 0 ? ": " : "", nrv != 0 ? nng_strerror(nrv) : "");
	}
	if (h != NULL) {
		nng_http_handler_free(h);
	}
	if (mh != NULL && mh->srv != NULL) {
		nng_http_server_release(mh->srv);
	}
	free(mh);
	if (url != NULL) {
		nng_url_free(url);
	}
	return (rv);
}

int
metrics_http_port(const struct metrics_http *h)
{
	return (h->port);
}

void
metrics_http_stop(struct metrics_http **h)
{
	if (h == NULL || *h == NULL) {
		return;
	}
	nng_http_server_stop((*h)->srv);
	nng_http_server_release((*h)->srv);
	free(*h);
	*h = NULL;
}
