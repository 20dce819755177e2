/*
 * script_server.h: the pieces every scripted loopback server of the unit
 * tests shares (IMAP in sync_body_test.c and sync_drain_test.c, SMTP in
 * sync_smtp_test.c): a listener on 127.0.0.1 with a free port, reading
 * one line, and replying from a template with the command's tag filled
 * in. Header-only (static inline: a file may use only some): each test
 * file is its own program. Include after cmocka.h.
 */
#ifndef MAILSYNC_SCRIPT_SERVER_H
#define MAILSYNC_SCRIPT_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A listening socket on 127.0.0.1 (the caller closes it); its port in
 * *port_r. Fails the test when the system refuses. */
static inline int
script_listen(uint16_t *port_r)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(lfd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	*port_r = ntohs(a.sin_port);
	return (lfd);
}

/* Reads one line (LF included, NUL-terminated, at most cap - 1 bytes)
 * a byte at a time, so nothing after it is consumed. False at EOF. */
static inline bool
script_read_line(int fd, char *line, size_t cap)
{
	size_t n = 0;
	char c;

	while (n + 1 < cap) {
		if (read(fd, &c, 1) != 1) {
			return (false);
		}
		line[n++] = c;
		if (c == '\n') {
			break;
		}
	}
	line[n] = '\0';
	return (n > 0);
}

/* Writes tmpl with each "{tag}" replaced by tag (at most 64 KiB). */
static inline void
script_reply(int fd, const char *tmpl, const char *tag)
{
	static const size_t cap = 1 << 16;
	char *out = malloc(cap);
	size_t n = 0, tl = strlen(tag);
	const char *p;

	assert_non_null(out);
	for (p = tmpl; *p != '\0'; p++) {
		if (strncmp(p, "{tag}", 5) == 0) {
			assert_true(n + tl < cap);
			memcpy(out + n, tag, tl);
			n += tl;
			p += 4;
		} else {
			assert_true(n + 1 < cap);
			out[n++] = *p;
		}
	}
	if (n > 0 && write(fd, out, n) != (ssize_t)n) {
		fprintf(stderr, "script server: short write\n");
	}
	free(out);
}

#endif
