/*
 * mailsync-submit: the command line client of mailsync. Parses and checks
 * the command line (args.c), reads the password and CA files, sends one
 * control request to mailsync-store over REQ/REP (pkg/ipc), and prints the
 * reply (output.c). `sync --wait` then polls the job until it ends.
 * Exit codes: 0 done, 1 job failed or request refused, 2 usage error,
 * 3 store unreachable (docs/cli.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "ipc/ipc.h"
#include "proto/proto.h"
#include "submit.h"

#define POLL_INTERVAL_MS 200

int
submit_unreachable(const struct submit_ctx *c)
{
	submit_print_error(c->a->json, SUBMIT_EXIT_UNREACHABLE,
	    "cannot reach mailsync-store at %s: is mailsync-up running?",
	    c->url);
	return (SUBMIT_EXIT_UNREACHABLE);
}

/*
 * For ipc:// URLs, checks that the socket file exists so that a missing
 * store is reported at once instead of after the request timeout. It must
 * not connect(): nng 1.5.2's ipc listener stops accepting new pipes after
 * a peer connects and closes without the SP handshake (docs/protocol.md).
 */
static bool
ipc_listening(const char *url)
{
	struct stat st;

	if (strncmp(url, "ipc://", 6) != 0) {
		return (true);
	}
	if (stat(url + 6, &st) != 0) {
		return (false);
	}
	return (S_ISSOCK(st.st_mode));
}

/*
 * Sends req and waits for the reply. Returns 0 with *rep and *raw to release,
 * or prints the problem and returns an exit code.
 */
int
submit_call(struct submit_ctx *c, struct proto_msg *req, struct proto_msg *rep,
    nng_msg **raw, int timeout_ms, bool quiet_unreachable)
{
	int rv;

	req->id = c->next_id++;
	rv = ipc_call(c->sock, req, rep, raw, timeout_ms);
	if (rv == ERR_UNREACHABLE) {
		return (quiet_unreachable ? SUBMIT_EXIT_UNREACHABLE
		                          : submit_unreachable(c));
	}
	if (rv != 0) {
		submit_print_error(c->a->json, SUBMIT_EXIT_FAILED,
		    "%s request to mailsync-store at %s failed: %s",
		    proto_msg_name(req->type), c->url, err_str(rv));
		return (SUBMIT_EXIT_FAILED);
	}
	return (0);
}

/* Prints a refused request ("account add: already exists: ...") and
 * returns the exit code; 0 when the reply says success. */
int
submit_refused(const struct submit_ctx *c, const char *what,
    const struct proto_msg *rep, bool input_errors)
{
	const struct proto_reply *r = &rep->u.reply;
	int ex = SUBMIT_EXIT_FAILED;

	if (r->status == 0) {
		return (0);
	}
	if (input_errors
	    && (r->status == ERR_INVAL || r->status == ERR_NOTFOUND)) {
		ex = SUBMIT_EXIT_USAGE;
	}
	submit_print_error(c->a->json, ex, "%s: %s%s%.*s", what,
	    err_str(r->status), r->error.len > 0 ? ": " : "",
	    (int)(r->error.len > 512 ? 512 : r->error.len),
	    r->error.p != NULL ? r->error.p : "");
	return (ex);
}

/* account add: reads the password and CA files (before any request). */
static int
read_files(struct submit_ctx *c)
{
	const struct submit_args *a = c->a;
	char err[512];

	if ((a->token_file != NULL ? submit_read_token(
	         a->token_file, &c->pw, err, sizeof(err))
	                           : submit_read_password(a->password_file,
	                               &c->pw, err, sizeof(err)))
	    != 0) {
		submit_print_error(a->json, SUBMIT_EXIT_USAGE, "%s", err);
		return (SUBMIT_EXIT_USAGE);
	}
	if (a->tls_ca_file != NULL
	    && submit_read_ca(a->tls_ca_file, &c->ca, err, sizeof(err)) != 0) {
		submit_print_error(a->json, SUBMIT_EXIT_USAGE, "%s", err);
		return (SUBMIT_EXIT_USAGE);
	}
	if (a->smtp_password_file != NULL
	    && submit_read_password(
	           a->smtp_password_file, &c->smtp_pw, err, sizeof(err))
	        != 0) {
		submit_print_error(a->json, SUBMIT_EXIT_USAGE,
		    "--smtp-password-file: %s", err);
		return (SUBMIT_EXIT_USAGE);
	}
	return (0);
}

static int
do_account_add(struct submit_ctx *c)
{
	const struct submit_args *a = c->a;
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	char text[160];
	int ex;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SUBMIT_ACCOUNT_ADD;
	req.u.account_add.name = proto_str_c(a->name);
	req.u.account_add.protocol = proto_str_c(a->protocol);
	req.u.account_add.server = proto_str_c(a->server);
	req.u.account_add.username = proto_str_c(a->user);
	req.u.account_add.password
	    = (struct proto_str) { c->pw.data, c->pw.len };
	if (a->tls_ca_file != NULL) {
		req.u.account_add.tls_ca_pem
		    = (struct proto_str) { c->ca.data, c->ca.len };
	}
	req.u.account_add.starttls = a->starttls;
	req.u.account_add.plaintext = a->plaintext;
	if (a->token_file != NULL) {
		req.u.account_add.auth = proto_str_c("oauth2");
	}
	req.u.account_add.interval_s = a->interval_s;
	req.u.account_add.bodies = proto_str_c(a->bodies);
	req.u.account_add.smtp = proto_str_c(a->smtp);
	req.u.account_add.smtp_username = proto_str_c(a->smtp_user);
	if (a->smtp_password_file != NULL) {
		req.u.account_add.smtp_password
		    = (struct proto_str) { c->smtp_pw.data, c->smtp_pw.len };
	}
	ex = submit_call(c, &req, &rep, &raw, c->call_ms, false);
	if (ex != 0) {
		return (ex);
	}
	ex = submit_refused(c, "account add", &rep, false);
	if (ex == 0) {
		snprintf(text, sizeof(text), "account %s added (id %llu)",
		    a->name, (unsigned long long)rep.u.reply.id);
		submit_print_id("account_id", rep.u.reply.id, text, a->json);
	}
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	return (ex);
}

static int
do_account_list(struct submit_ctx *c)
{
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	int ex;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SUBMIT_ACCOUNT_LIST;
	ex = submit_call(c, &req, &rep, &raw, c->call_ms, false);
	if (ex != 0) {
		return (ex);
	}
	ex = submit_refused(c, "account list", &rep, false);
	if (ex == 0) {
		submit_print_accounts(&rep.u.reply, c->a->json);
	}
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	return (ex);
}

static int
do_account_remove(struct submit_ctx *c)
{
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	char text[160];
	int ex;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SUBMIT_ACCOUNT_REMOVE;
	req.u.name.name = proto_str_c(c->a->name);
	ex = submit_call(c, &req, &rep, &raw, c->call_ms, false);
	if (ex != 0) {
		return (ex);
	}
	ex = submit_refused(c, "account remove", &rep, false);
	if (ex == 0) {
		snprintf(text, sizeof(text), "account %s removed", c->a->name);
		submit_print_id(
		    "account_id", rep.u.reply.id, text, c->a->json);
	}
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	return (ex);
}

static int
do_status(struct submit_ctx *c)
{
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	int ex;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SUBMIT_JOB_STATUS;
	req.u.job_status.job_id = c->a->job_id;
	req.u.job_status.limit = c->a->job_id != 0 ? 1 : 20;
	ex = submit_call(c, &req, &rep, &raw, c->call_ms, false);
	if (ex != 0) {
		return (ex);
	}
	ex = submit_refused(c, "status", &rep, false);
	if (ex == 0 && c->a->job_id == 0) {
		submit_print_jobs(&rep.u.reply, c->a->json);
	} else if (ex == 0 && rep.u.reply.njobs == 0) {
		submit_print_error(c->a->json, SUBMIT_EXIT_FAILED,
		    "job %llu: not found", (unsigned long long)c->a->job_id);
		ex = SUBMIT_EXIT_FAILED;
	} else if (ex == 0) {
		submit_print_job(&rep.u.reply.jobs[0], c->a->json);
	}
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	return (ex);
}

void
submit_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

/* Best effort: the account's totals after a finished sync. */
static void
print_done(
    struct submit_ctx *c, const struct proto_job_info *j, uint32_t waited)
{
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	const struct proto_account_info *acct = NULL;
	size_t i;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SUBMIT_ACCOUNT_LIST;
	if (submit_call(c, &req, &rep, &raw, c->call_ms, true) == 0
	    && rep.u.reply.status == 0) {
		for (i = 0; i < rep.u.reply.naccounts; i++) {
			if (rep.u.reply.accounts[i].id == j->account_id
			    || proto_str_eq(
			        rep.u.reply.accounts[i].name, c->a->name)) {
				acct = &rep.u.reply.accounts[i];
				break;
			}
		}
	}
	submit_print_wait(j, acct, false, waited, c->a->json);
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
}

/* Polls job_id until it ends or the deadline passes. */
static int
wait_job(struct submit_ctx *c, uint64_t job_id)
{
	uint32_t wait_s
	    = c->a->timeout_s != 0 ? c->a->timeout_s : SUBMIT_WAIT_DEFAULT_S;
	int64_t start = clock_mono_ms(), deadline, left;
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	struct proto_job_info last;
	char *last_error = NULL;
	bool have_last = false;
	int ex = 0;

	deadline = start + (int64_t)wait_s * 1000;
	memset(&last, 0, sizeof(last));
	memset(&rep, 0, sizeof(rep));
	for (;;) {
		left = deadline - clock_mono_ms();
		if (left <= 0) {
			break;
		}
		memset(&req, 0, sizeof(req));
		req.type = MSG_SUBMIT_JOB_STATUS;
		req.u.job_status.job_id = job_id;
		req.u.job_status.limit = 1;
		ex = submit_call(c, &req, &rep, &raw,
		    (int)(left < c->call_ms ? left : c->call_ms), true);
		if (ex == SUBMIT_EXIT_UNREACHABLE) {
			submit_sleep_ms(
			    POLL_INTERVAL_MS); /* a store restart? */
			continue;
		}
		if (ex != 0) {
			return (ex);
		}
		ex = submit_refused(c, "sync --wait", &rep, false);
		if (ex == 0 && rep.u.reply.njobs == 0) {
			submit_print_error(c->a->json, SUBMIT_EXIT_FAILED,
			    "job %llu: not found", (unsigned long long)job_id);
			ex = SUBMIT_EXIT_FAILED;
		}
		if (ex != 0) {
			goto done;
		}
		free(last_error);
		last_error = proto_str_dup(rep.u.reply.jobs[0].last_error);
		last = rep.u.reply.jobs[0];
		last.account = proto_str_c(NULL);
		last.last_error = proto_str_c(last_error);
		have_last = true;
		switch (rep.u.reply.jobs[0].state) {
		case JOB_DONE:
			print_done(c, &rep.u.reply.jobs[0],
			    (uint32_t)((clock_mono_ms() - start) / 1000));
			goto done;
		case JOB_FAILED:
		case JOB_DEAD:
			submit_print_wait(
			    &rep.u.reply.jobs[0], NULL, false, 0, c->a->json);
			ex = SUBMIT_EXIT_FAILED;
			goto done;
		default:
			break;
		}
		proto_msg_release(&rep);
		ipc_msg_free(&raw);
		submit_sleep_ms(POLL_INTERVAL_MS);
	}
	if (!have_last || ex == SUBMIT_EXIT_UNREACHABLE) {
		free(last_error);
		return (submit_unreachable(c));
	}
	submit_print_wait(&last, NULL, true, wait_s, c->a->json);
	free(last_error);
	return (SUBMIT_EXIT_FAILED);
done:
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	free(last_error);
	return (ex);
}

/* sync, fetch-body: submits the job; with --wait polls it to its end. */
static int
do_sync(struct submit_ctx *c)
{
	struct proto_msg req, rep;
	nng_msg *raw = NULL;
	uint64_t job_id;
	char text[32];
	bool body = c->a->cmd == SUBMIT_CMD_FETCH_BODY;
	int ex;

	memset(&req, 0, sizeof(req));
	req.type = MSG_SUBMIT_JOB_SUBMIT;
	req.u.job_submit.account = proto_str_c(c->a->name);
	req.u.job_submit.kind = body ? JOB_KIND_FETCH_BODY : JOB_KIND_SYNC;
	req.u.job_submit.message_id = body ? c->a->message_id : 0;
	ex = submit_call(c, &req, &rep, &raw, c->call_ms, false);
	if (ex != 0) {
		return (ex);
	}
	ex = submit_refused(c, body ? "fetch-body" : "sync", &rep, false);
	job_id = rep.u.reply.id;
	proto_msg_release(&rep);
	ipc_msg_free(&raw);
	if (ex != 0) {
		return (ex);
	}
	if (!c->a->wait) {
		snprintf(
		    text, sizeof(text), "%llu", (unsigned long long)job_id);
		submit_print_id("job_id", job_id, text, c->a->json);
		return (0);
	}
	return (wait_job(c, job_id));
}

int
main(int argc, char **argv)
{
	struct submit_args a;
	struct submit_ctx c;
	char err[512];
	int rv, ex;

	log_init("mailsync-submit", LOG_LVL_WARN);
	if (submit_args_parse(argc, argv, &a, err, sizeof(err)) != 0) {
		submit_print_error(a.json, SUBMIT_EXIT_USAGE, "%s", err);
		fprintf(stderr, "Run 'mailsync-submit --help' for usage.\n");
		return (SUBMIT_EXIT_USAGE);
	}
	if (a.cmd == SUBMIT_CMD_HELP) {
		fputs(submit_usage(), stdout);
		return (SUBMIT_EXIT_OK);
	}
	memset(&c, 0, sizeof(c));
	c.a = &a;
	buf_init(&c.pw, SUBMIT_PASSWORD_MAX + 1);
	buf_init(&c.ca, SUBMIT_CA_MAX);
	buf_init(&c.smtp_pw, SUBMIT_PASSWORD_MAX + 1);
	buf_init(&c.msg, PROTO_MAX_RFC822 + 1);
	c.next_id = ((uint64_t)getpid() << 32) ^ (uint64_t)clock_wall_ms();
	c.call_ms = SUBMIT_CALL_DEFAULT_S * 1000;
	if (a.timeout_s != 0 && !a.wait) {
		c.call_ms = (int)a.timeout_s * 1000;
	}
	if (a.control_url != NULL) {
		rv = strlcpy_checked(c.url, a.control_url, sizeof(c.url));
	} else {
		rv = ipc_default_url(a.dir, IPC_CONTROL, c.url, sizeof(c.url));
	}
	if (rv != 0) {
		submit_print_error(a.json, SUBMIT_EXIT_USAGE,
		    "control URL too long (--dir or --control)");
		return (SUBMIT_EXIT_USAGE);
	}
	if (a.cmd == SUBMIT_CMD_ACCOUNT_ADD) {
		ex = read_files(&c);
		if (ex != 0) {
			goto out;
		}
	}
	/* append, send: a bad file is exit 2 whether or not a store runs */
	if (a.file != NULL
	    && submit_read_message(a.file, &c.msg, err, sizeof(err)) != 0) {
		submit_print_error(a.json, SUBMIT_EXIT_USAGE, "%s", err);
		ex = SUBMIT_EXIT_USAGE;
		goto out;
	}
	if (!ipc_listening(c.url)) {
		ex = submit_unreachable(&c);
		goto out;
	}
	rv = ipc_open(IPC_CONTROL, IPC_DIAL, c.url, &c.sock, err, sizeof(err));
	if (rv != 0) {
		ex = rv == ERR_INVAL || rv == ERR_CONFIG || rv == ERR_TOOBIG
		    ? SUBMIT_EXIT_USAGE
		    : SUBMIT_EXIT_UNREACHABLE;
		submit_print_error(a.json, ex, "%s", err);
		goto out;
	}
	switch (a.cmd) {
	case SUBMIT_CMD_ACCOUNT_ADD:
		ex = do_account_add(&c);
		break;
	case SUBMIT_CMD_ACCOUNT_LIST:
		ex = do_account_list(&c);
		break;
	case SUBMIT_CMD_ACCOUNT_REMOVE:
		ex = do_account_remove(&c);
		break;
	case SUBMIT_CMD_SYNC:
	case SUBMIT_CMD_FETCH_BODY:
		ex = do_sync(&c);
		break;
	case SUBMIT_CMD_STATUS:
		ex = do_status(&c);
		break;
	case SUBMIT_CMD_FLAG:
	case SUBMIT_CMD_MOVE:
	case SUBMIT_CMD_DELETE:
	case SUBMIT_CMD_APPEND:
	case SUBMIT_CMD_SEND:
	case SUBMIT_CMD_MESSAGES:
	case SUBMIT_CMD_CHANGES:
	case SUBMIT_CMD_CHANGE_RESOLVE:
		ex = submit_do_change(&c);
		break;
	default:
		ex = SUBMIT_EXIT_USAGE;
		break;
	}
	nng_close(c.sock);
out:
	buf_wipe_release(&c.pw);
	buf_release(&c.ca);
	buf_wipe_release(&c.smtp_pw);
	buf_release(&c.msg);
	return (ex);
}
