/*
 * imap_keep.c: an IMAP account's authenticated session kept between jobs
 * in the worker's connection cache (conns.c): a job takes it (proved
 * alive by NOOP) or opens a new one, and leaves it there (after UNSELECT)
 * when it ended well.
 */
#include <string.h>

#include "sync_int.h"

/* free_fn of a kept session (conns.c): LOGOUT and close. */
static void
session_drop(void *p)
{
	struct imap_session *s = p;

	imap_session_close(&s);
}

int
imap_session_acquire(const struct proto_job_run *job,
    const struct sync_limits *l, struct sync_conns *c,
    struct imap_session **s_r, struct sync_result *res)
{
	struct imap_session *s = sync_conns_take(c, SYNC_CONN_IMAP, job);
	struct sync_result probe;
	struct imap_cmd noop;
	int rv;

	if (s != NULL) {
		imap_session_renew(s, l);
		memset(&noop, 0, sizeof(noop));
		noop.text = "NOOP";
		memset(&probe, 0, sizeof(probe));
		/* one round trip: a server that closed the idle connection
		 * (timeout, restart) costs a reconnect, not a failed job */
		rv = imap_session_run(s, &noop, 1, NULL, NULL, &probe);
		if (rv == 0 && noop.status == IMAP_ST_OK) {
			*s_r = s;
			return (ERR_OK);
		}
		log_info("job=%llu account=%llu event=imap_kept_conn_closed "
		         "error=\"%s\"",
		    (unsigned long long)job->job_id,
		    (unsigned long long)job->account_id,
		    rv != 0 ? probe.error : noop.resp_text);
		sync_result_release(&probe);
		imap_session_close(&s);
	}
	return (imap_session_open_job(job, l, s_r, res));
}

void
imap_session_release(struct sync_conns *c, const struct proto_job_run *job,
    struct imap_session **sp, const struct sync_result *res)
{
	struct imap_session *s = *sp;
	struct sync_result r2;
	struct imap_cmd unselect;

	*sp = NULL;
	if (s == NULL) {
		return;
	}
	if (c == NULL || res->status != 0 || !(imap_session_caps(s) & SYNC_CAP_UNSELECT)) {
		imap_session_close(&s);
		return;
	}
	if (!imap_session_selected(s)) {
		/* a no-change sync (LIST-STATUS only) opened no mailbox */
		sync_conns_put(c, SYNC_CONN_IMAP, job, s, session_drop,
		    clock_mono_ms());
		return;
	}
	memset(&unselect, 0, sizeof(unselect));
	unselect.text = "UNSELECT";
	memset(&r2, 0, sizeof(r2));
	/* NO/BAD when no mailbox is selected: the session is still fine */
	if (imap_session_run(s, &unselect, 1, NULL, NULL, &r2) != 0) {
		sync_result_release(&r2);
		imap_session_close(&s);
		return;
	}
	sync_conns_put(c, SYNC_CONN_IMAP, job, s, session_drop, clock_mono_ms());
}
