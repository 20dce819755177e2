/*
 * mailsync-up: starts the whole pipeline in the foreground and keeps it
 * running. Creates the data directory (0700), then runs mailsync-store,
 * mailsync-scheduler and N mailsync-worker processes from the directory of
 * its own executable (or --bin-dir), each with --dir DIR so they find the
 * default ipc:// endpoints. A child that dies is restarted after a backoff
 * (250 ms doubling to 10 s, back to 250 ms after 30 s of good running).
 * DIR/up.pid holds our pid and DIR/children the current "name pid" lines
 * (rewritten atomically on every start and death) so that tests can kill a
 * given child. SIGINT/SIGTERM: SIGTERM to every child, up to 10 s grace,
 * then SIGKILL; exit 0. One thread: signals reach the loop through a
 * self-pipe; waitpid() reaps.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"

#define UP_MAX_WORKERS 64
#define UP_BACKOFF_MIN_MS 250
#define UP_BACKOFF_MAX_MS 10000
#define UP_HEALTHY_MS 30000 /* running this long resets the backoff */
#define UP_GRACE_MS 10000 /* SIGTERM -> SIGKILL */
#define UP_EXIT_USAGE 2

struct child {
	char name[32]; /* "store", "scheduler", "worker.1" */
	char path[PATH_MAX]; /* executable */
	char *argv[8]; /* NULL-terminated, borrowed strings */
	pid_t pid; /* 0: not running */
	int64_t started_ms; /* clock_mono_ms() at start */
	int64_t restart_at; /* mono ms; 0: no restart pending */
	int backoff_ms; /* next restart delay */
};

struct up {
	const char *dir;
	const char *metrics;
	char bin_dir[PATH_MAX];
	bool verbose;
	int nworkers;
	struct child *kids;
	int nkids;
	int sigpipe[2]; /* self-pipe: signal handlers write one byte */
	bool stopping;
};

/* The self-pipe's write end, for the signal handler (cmd/ only). */
static int up_sig_wfd = -1;

static void
on_signal(int sig)
{
	int saved = errno;
	char c = sig == SIGCHLD ? 'C' : 'T';

	if (write(up_sig_wfd, &c, 1) < 0) {
		/* pipe full: a wakeup is already pending */
	}
	errno = saved;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mailsync-up [--dir DIR] [--workers N] "
	    "[--metrics-listen HOST:PORT] [--verbose] "
	    "[--bin-dir DIR]\n");
}

static void
parse_args(int argc, char **argv, struct up *u)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "workers", required_argument, NULL, 'w' },
		{ "metrics-listen", required_argument, NULL, 'm' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "bin-dir", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t n;
	int ch;

	u->dir = "./mailsync-data";
	u->nworkers = 2;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			if (optarg[0] == '\0') {
				fprintf(stderr, "mailsync-up: --dir: empty\n");
				exit(UP_EXIT_USAGE);
			}
			u->dir = optarg;
			break;
		case 'w':
			if (parse_u64(optarg, UP_MAX_WORKERS, &n) != 0
			    || n == 0) {
				fprintf(stderr,
				    "mailsync-up: --workers: expected 1 to "
				    "%d, "
				    "got \"%.32s\"\n",
				    UP_MAX_WORKERS, optarg);
				exit(UP_EXIT_USAGE);
			}
			u->nworkers = (int)n;
			break;
		case 'm':
			u->metrics = optarg;
			break;
		case 'v':
			u->verbose = true;
			break;
		case 'b':
			if (strlcpy_checked(
			        u->bin_dir, optarg, sizeof(u->bin_dir))
			    != 0) {
				fprintf(stderr,
				    "mailsync-up: --bin-dir: too long\n");
				exit(UP_EXIT_USAGE);
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(UP_EXIT_USAGE);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mailsync-up: unexpected argument \"%.64s\"\n",
		    argv[optind]);
		usage(stderr);
		exit(UP_EXIT_USAGE);
	}
}

/* Directory of our own executable, unless --bin-dir was given. */
static void
find_bin_dir(struct up *u)
{
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (u->bin_dir[0] != '\0') {
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		fatal("readlink /proc/self/exe (use --bin-dir)");
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL) {
		fatalx("odd executable path \"%s\" (use --bin-dir)", exe);
	}
	*slash = '\0';
	if (strlcpy_checked(
	        u->bin_dir, exe[0] != '\0' ? exe : "/", sizeof(u->bin_dir))
	    != 0) {
		fatalx("executable path too long");
	}
}

static void
make_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0) {
		return;
	}
	if (errno != EEXIST) {
		fprintf(stderr, "mailsync-up: cannot create %s: %s\n", dir,
		    strerror(errno));
		exit(UP_EXIT_USAGE);
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr,
		    "mailsync-up: %s exists and is not a "
		    "directory\n",
		    dir);
		exit(UP_EXIT_USAGE);
	}
	if ((st.st_mode & 077) != 0 && st.st_uid == geteuid()
	    && chmod(dir, 0700) != 0) {
		log_warn("chmod 0700 dir=%s", dir);
	}
}

/* Sets up one child: path, argv; fails (exit 2) if the binary is not
 * there. */
static void
child_init(struct up *u, struct child *c, const char *name, const char *prog)
{
	int i = 0;

	snprintf(c->name, sizeof(c->name), "%s", name);
	if ((size_t)snprintf(
	        c->path, sizeof(c->path), "%s/%s", u->bin_dir, prog)
	    >= sizeof(c->path)) {
		fatalx("path too long: %s/%s", u->bin_dir, prog);
	}
	if (access(c->path, X_OK) != 0) {
		fprintf(stderr,
		    "mailsync-up: cannot run %s: %s (build it, or point "
		    "--bin-dir at the directory that has it)\n",
		    c->path, strerror(errno));
		exit(UP_EXIT_USAGE);
	}
	c->argv[i++] = c->path;
	c->argv[i++] = "--dir";
	c->argv[i++] = (char *)(uintptr_t)u->dir;
	if (u->metrics != NULL && strcmp(prog, "mailsync-scheduler") == 0) {
		c->argv[i++] = "--metrics-listen";
		c->argv[i++] = (char *)(uintptr_t)u->metrics;
	}
	if (u->verbose) {
		c->argv[i++] = "--verbose";
	}
	c->argv[i] = NULL;
	c->backoff_ms = UP_BACKOFF_MIN_MS;
}

/* Writes "DIR/name" from text atomically (tmp + rename). */
static void
write_file(const struct up *u, const char *name, const char *text)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	size_t len = strlen(text);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", u->dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", u->dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_warn("open file=%s", tmp);
		return;
	}
	if (write(fd, text, len) != (ssize_t)len || close(fd) != 0) {
		log_warn("write file=%s", tmp);
		unlink(tmp);
		return;
	}
	if (rename(tmp, path) != 0) {
		log_warn("rename file=%s", path);
		unlink(tmp);
	}
}

/* DIR/children: one "name pid" line per running child. */
static void
write_children(const struct up *u)
{
	struct buf b;
	int i;

	buf_init(&b, 64 * 1024);
	for (i = 0; i < u->nkids; i++) {
		if (u->kids[i].pid > 0
		    && buf_printf(
		           &b, "%s %d\n", u->kids[i].name, (int)u->kids[i].pid)
		        != 0) {
			fatalx("out of memory");
		}
	}
	write_file(u, "children", b.data != NULL ? b.data : "");
	buf_release(&b);
}

static void
child_start(struct up *u, struct child *c)
{
	sigset_t none;
	pid_t parent = getpid(), pid;

	pid = fork();
	if (pid < 0) {
		log_warn("fork child=%s", c->name);
		c->restart_at = clock_mono_ms() + c->backoff_ms;
		return;
	}
	if (pid == 0) {
		/* Child: default signals, die with mailsync-up. */
		signal(SIGCHLD, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close(u->sigpipe[0]);
		close(u->sigpipe[1]);
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0
		    || getppid() != parent) {
			_exit(1);
		}
		execv(c->path, c->argv);
		fprintf(stderr, "mailsync-up: exec %s: %s\n", c->path,
		    strerror(errno));
		_exit(127);
	}
	c->pid = pid;
	c->started_ms = clock_mono_ms();
	c->restart_at = 0;
	log_info(
	    "child=%s pid=%d started path=%s", c->name, (int)pid, c->path);
	write_children(u);
}

/* Describes a wait status: "status=9 (killed)" / "status=1 (exit)". */
static void
describe(int status, char *out, size_t n)
{
	if (WIFSIGNALED(status)) {
		snprintf(out, n, "status=%d (killed%s)", WTERMSIG(status),
		    WCOREDUMP(status) ? ", core dumped" : "");
	} else if (WIFEXITED(status)) {
		snprintf(out, n, "status=%d (exit)", WEXITSTATUS(status));
	} else {
		snprintf(out, n, "status=0x%x", (unsigned)status);
	}
}

/* Reaps every dead child; schedules restarts unless stopping. */
static void
reap(struct up *u)
{
	struct child *c;
	char desc[64];
	int64_t now, ran;
	pid_t pid;
	int status, i, delay;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < u->nkids && u->kids[i].pid != pid; i++) { }
		if (i == u->nkids) {
			continue;
		}
		c = &u->kids[i];
		c->pid = 0;
		describe(status, desc, sizeof(desc));
		if (u->stopping) {
			log_info("child=%s pid=%d exited %s", c->name,
			    (int)pid, desc);
			continue;
		}
		now = clock_mono_ms();
		ran = now - c->started_ms;
		if (ran >= UP_HEALTHY_MS) {
			c->backoff_ms = UP_BACKOFF_MIN_MS;
		}
		delay = c->backoff_ms;
		c->backoff_ms = c->backoff_ms * 2 > UP_BACKOFF_MAX_MS
		    ? UP_BACKOFF_MAX_MS
		    : c->backoff_ms * 2;
		c->restart_at = now + delay;
		log_info("child=%s pid=%d exited %s ran_ms=%lld "
		         "restart_in_ms=%d",
		    c->name, (int)pid, desc, (long long)ran, delay);
		write_children(u);
	}
}

static void
signal_all(const struct up *u, int sig)
{
	int i;

	for (i = 0; i < u->nkids; i++) {
		if (u->kids[i].pid > 0) {
			kill(u->kids[i].pid, sig);
		}
	}
}

static int
running(const struct up *u)
{
	int i, n = 0;

	for (i = 0; i < u->nkids; i++) {
		n += u->kids[i].pid > 0;
	}
	return (n);
}

/* Waits for the self-pipe up to timeout_ms; returns true on 'T'. */
static bool
wait_events(struct up *u, int timeout_ms)
{
	struct pollfd pfd = { u->sigpipe[0], POLLIN, 0 };
	bool term = false;
	char buf[64];
	ssize_t n, i;

	if (poll(&pfd, 1, timeout_ms) <= 0) {
		return (false);
	}
	while ((n = read(u->sigpipe[0], buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++) {
			term = term || buf[i] == 'T';
		}
	}
	return (term);
}

static void
shutdown_all(struct up *u)
{
	int64_t deadline;
	int left;

	u->stopping = true;
	log_info("stopping children=%d grace_ms=%d", running(u), UP_GRACE_MS);
	signal_all(u, SIGTERM);
	deadline = clock_mono_ms() + UP_GRACE_MS;
	for (;;) {
		reap(u);
		if (running(u) == 0) {
			break;
		}
		left = (int)(deadline - clock_mono_ms());
		if (left <= 0) {
			log_warnx("children=%d still running after %d ms: "
			          "SIGKILL",
			    running(u), UP_GRACE_MS);
			signal_all(u, SIGKILL);
			deadline = clock_mono_ms() + 60000;
			continue;
		}
		if (wait_events(u, left > 200 ? 200 : left)) {
			log_warnx("second stop signal: SIGKILL");
			signal_all(u, SIGKILL);
		}
	}
	write_children(u);
}

static void
setup_signals(struct up *u)
{
	struct sigaction sa;

	if (pipe2(u->sigpipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		fatal("pipe");
	}
	up_sig_wfd = u->sigpipe[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGCHLD, &sa, NULL) != 0
	    || sigaction(SIGINT, &sa, NULL) != 0
	    || sigaction(SIGTERM, &sa, NULL) != 0) {
		fatal("sigaction");
	}
	signal(SIGPIPE, SIG_IGN);
}

int
main(int argc, char **argv)
{
	struct up u;
	char pidtext[32], name[32], path[PATH_MAX];
	int64_t now, next;
	int i, timeout;

	memset(&u, 0, sizeof(u));
	parse_args(argc, argv, &u);
	log_init("mailsync-up", LOG_LVL_INFO);
	find_bin_dir(&u);
	make_dir(u.dir);

	u.nkids = 3 + u.nworkers; /* + one mailsync-watch (push) */
	u.kids = calloc((size_t)u.nkids, sizeof(*u.kids));
	if (u.kids == NULL) {
		fatalx("out of memory");
	}
	child_init(&u, &u.kids[0], "store", "mailsync-store");
	child_init(&u, &u.kids[1], "scheduler", "mailsync-scheduler");
	for (i = 0; i < u.nworkers; i++) {
		snprintf(name, sizeof(name), "worker.%d", i + 1);
		child_init(&u, &u.kids[2 + i], name, "mailsync-worker");
	}
	child_init(&u, &u.kids[2 + u.nworkers], "watch", "mailsync-watch");
	setup_signals(&u);
	snprintf(pidtext, sizeof(pidtext), "%d\n", (int)getpid());
	write_file(&u, "up.pid", pidtext);
	log_info("starting dir=%s bin_dir=%s workers=%d", u.dir, u.bin_dir,
	    u.nworkers);
	for (i = 0; i < u.nkids; i++) {
		child_start(&u, &u.kids[i]);
	}
	for (;;) {
		now = clock_mono_ms();
		next = -1;
		for (i = 0; i < u.nkids; i++) {
			struct child *c = &u.kids[i];

			if (c->pid == 0 && c->restart_at != 0
			    && c->restart_at <= now) {
				child_start(&u, c);
			}
			if (c->pid == 0 && c->restart_at != 0
			    && (next < 0 || c->restart_at < next)) {
				next = c->restart_at;
			}
		}
		if (next < 0) {
			timeout
			    = -1; /* nothing to restart: wait for a signal */
		} else {
			timeout = next > now ? (int)(next - now) : 0;
		}
		if (wait_events(&u, timeout)) {
			break;
		}
		reap(&u);
	}
	shutdown_all(&u);
	snprintf(path, sizeof(path), "%s/up.pid", u.dir);
	unlink(path);
	free(u.kids);
	log_info("stopped");
	return (0);
}
