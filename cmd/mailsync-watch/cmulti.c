/*
 * cmulti.c: the watcher's libcurl multi handle on epoll (cmulti.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/base.h"
#include "cmulti.h"

#define CMULTI_EVENTS 64

/* CURLMOPT_SOCKETFUNCTION: what curl wants to hear about socket s. */
static int
on_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct cmulti *cm = arg;
	struct epoll_event ev;

	(void)easy;
	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		/* curl may have closed it already: ENOENT/EBADF are fine */
		(void)epoll_ctl(cm->ep, EPOLL_CTL_DEL, s, NULL);
		return (0);
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0)
	    | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	ev.data.fd = s;
	if (epoll_ctl(cm->ep, EPOLL_CTL_MOD, s, &ev) != 0
	    && (errno != ENOENT
	        || epoll_ctl(cm->ep, EPOLL_CTL_ADD, s, &ev) != 0)) {
		log_warnx("event=curl_socket_unwatched fd=%d errno=%d", (int)s,
		    errno);
		/* curl then stops its transfers: each stream is reopened
		 * after its backoff */
		return (-1);
	}
	return (0);
}

/* CURLMOPT_TIMERFUNCTION: the next deadline (-1: none). Only recorded:
 * curl must not be called back from here. */
static int
on_timer(CURLM *m, long timeout_ms, void *arg)
{
	struct cmulti *cm = arg;

	(void)m;
	cm->deadline = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
	return (0);
}

int
cmulti_init(struct cmulti *cm)
{
	memset(cm, 0, sizeof(*cm));
	cm->deadline = -1;
	cm->ep = epoll_create1(EPOLL_CLOEXEC);
	if (cm->ep < 0) {
		return (ERR_IO);
	}
	cm->m = curl_multi_init();
	if (cm->m == NULL) {
		return (ERR_NOMEM);
	}
	if (curl_multi_setopt(cm->m, CURLMOPT_SOCKETFUNCTION, on_socket)
	        != CURLM_OK
	    || curl_multi_setopt(cm->m, CURLMOPT_SOCKETDATA, cm) != CURLM_OK
	    || curl_multi_setopt(cm->m, CURLMOPT_TIMERFUNCTION, on_timer)
	        != CURLM_OK
	    || curl_multi_setopt(cm->m, CURLMOPT_TIMERDATA, cm) != CURLM_OK) {
		return (ERR_IO);
	}
	return (ERR_OK);
}

int
cmulti_fd(const struct cmulti *cm)
{
	return (cm->ep);
}

int
cmulti_add(struct cmulti *cm, void *easy, void *owner)
{
	if (curl_easy_setopt(easy, CURLOPT_PRIVATE, owner) != CURLE_OK) {
		return (ERR_IO);
	}
	switch (curl_multi_add_handle(cm->m, easy)) {
	case CURLM_OK:
		return (ERR_OK);
	case CURLM_OUT_OF_MEMORY:
		return (ERR_NOMEM);
	default:
		return (ERR_IO);
	}
}

void
cmulti_remove(struct cmulti *cm, void *easy)
{
	if (easy != NULL) {
		(void)curl_multi_remove_handle(cm->m, easy);
	}
}

/* Hands every ended transfer to fn, removed from the multi first. */
static void
reap(struct cmulti *cm, cmulti_done_fn fn, void *arg)
{
	struct CURLMsg *msg;
	CURL *easy;
	void *owner;
	CURLcode result;
	int left;

	while ((msg = curl_multi_info_read(cm->m, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE) {
			continue;
		}
		/* msg is invalid once its handle is removed: copy first */
		easy = msg->easy_handle;
		result = msg->data.result;
		owner = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&owner);
		curl_multi_remove_handle(cm->m, easy);
		fn(owner, (int)result, arg);
	}
}

void
cmulti_sockets(struct cmulti *cm, cmulti_done_fn fn, void *arg)
{
	struct epoll_event evs[CMULTI_EVENTS];
	int i, n, mask, running;

	n = epoll_wait(cm->ep, evs, CMULTI_EVENTS, 0);
	for (i = 0; i < n; i++) {
		mask = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0)
		    | (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0)
		    | (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR
		                                             : 0);
		/* a socket curl closed earlier in this batch is ignored */
		(void)curl_multi_socket_action(
		    cm->m, evs[i].data.fd, mask, &running);
	}
	reap(cm, fn, arg);
}

void
cmulti_timer(struct cmulti *cm, int64_t now, cmulti_done_fn fn, void *arg)
{
	int running;

	if (cm->deadline < 0 || now < cm->deadline) {
		return;
	}
	cm->deadline = -1; /* the action may set the next one */
	(void)curl_multi_socket_action(
	    cm->m, CURL_SOCKET_TIMEOUT, 0, &running);
	reap(cm, fn, arg);
}

int64_t
cmulti_timeout_ms(const struct cmulti *cm, int64_t now)
{
	if (cm->deadline < 0) {
		return (-1);
	}
	return (cm->deadline <= now ? 0 : cm->deadline - now);
}

void
cmulti_release(struct cmulti *cm)
{
	if (cm->m != NULL) {
		curl_multi_cleanup(cm->m);
		cm->m = NULL;
	}
	if (cm->ep >= 0) {
		close(cm->ep);
		cm->ep = -1;
	}
}
