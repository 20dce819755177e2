#!/bin/bash
# Throwaway Cyrus IMAP 3.6 (Debian 12) for the JMAP end-to-end tests: JMAP
# over plain HTTP on 127.0.0.1:$HTTP_PORT and IMAP on 127.0.0.1:$IMAP_PORT,
# from its own imapd.conf and cyrus.conf in $LAB (never /etc/imapd.conf).
# Users live in $LAB/sasldb2 only (realm "localhost"); "cyrus" (password
# $ADMIN_PASSWORD, default cyruspw) is the admin. Coexists with Dovecot.
#
# Usage: cyrus.sh start|stop|unpack       (LAB, IMAP_PORT, HTTP_PORT, SMTP_PORT)
#        cyrus.sh user NAME               (the password on stdin; while running)
# start: ready when GET /.well-known/jmap answers 301 and IMAP greets "* OK"
#   (within START_TIMEOUT seconds, default 15); exit 3 when a port is taken.
# SMTP_PORT: where JMAP EmailSubmission relays (an SMTP sink of the tests).
# unpack: cyrus-imapd (imapd, idled) conflicts with dovecot-imapd as a Debian
#   package, so its binaries are unpacked (apt-get download + dpkg -x) into
#   $CYRUS_IMAPD_DIR, default /var/tmp/mailsync-cyrus-imapd-<version>, when
#   /usr/lib/cyrus/bin/imapd is absent; the version is cyrus-common's, whose
#   libraries they use. start does this too; scripts/deps.sh does it ahead.
set -euo pipefail
BIN=/usr/lib/cyrus/bin

# Sets IBIN, the directory of imapd and idled.
imapd_bin() {
	if [ -x "$BIN/imapd" ]; then
		IBIN=$BIN
		return 0
	fi
	local ver x tmp
	ver=$(dpkg-query -W -f='${Version}' cyrus-common 2>/dev/null) || {
		echo "cyrus.sh: cyrus-common is not installed (run scripts/deps.sh)" >&2
		exit 1
	}
	x=${CYRUS_IMAPD_DIR:-/var/tmp/mailsync-cyrus-imapd-$ver}
	IBIN=$x/usr/lib/cyrus/bin
	[ -x "$IBIN/imapd" ] && return 0
	# Unpacked into a fresh directory, renamed into place when complete:
	# two tests starting at once never see half a tree.
	tmp=$(mktemp -d "${x}.XXXXXX")
	if ! (cd "$tmp" && apt-get download -q "cyrus-imapd=$ver" >/dev/null 2>"$tmp/err" &&
		dpkg -x cyrus-imapd_*.deb "$tmp/root"); then
		echo "cyrus.sh: could not fetch cyrus-imapd=$ver (apt-get update?):" >&2
		cat "$tmp/err" >&2
		rm -rf "$tmp"
		exit 1
	fi
	chmod 755 "$tmp/root"
	mv -T "$tmp/root" "$x" 2>/dev/null || true # lost the race: the other copy is fine
	rm -rf "$tmp"
	[ -x "$IBIN/imapd" ] || { echo "cyrus.sh: no imapd in $x" >&2; exit 1; }
}

# The unix user master drops to: root runs it as "cyrus" (the package's
# user), anyone else as themselves (cyrus_user must name the running user).
run_user() {
	if [ "$(id -u)" = 0 ]; then echo cyrus; else id -un; fi
}

# alive PID: 0 while PID runs. master -d is reparented to PID 1, which may
# take a second or two to reap it: a zombie counts as gone.
alive() {
	local st
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$st" != Z ]
}

stop() {
	[ -f "$LAB/master.pid" ] || return 0
	local pid
	pid=$(cat "$LAB/master.pid")
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 200); do
		alive "$pid" || break
		sleep 0.02
	done
	# master -d is a process group leader: a hung shutdown takes its
	# children with it.
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$LAB/master.pid"
}

# in_use PORT: 0 when something listens on 127.0.0.1:PORT.
in_use() {
	timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# ready: 0 when HTTP answers 301 on /.well-known/jmap and IMAP greets.
ready() {
	timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT &&
		printf 'GET /.well-known/jmap HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 &&
		head -c 12 <&3" 2>/dev/null | grep -q ' 301' &&
		timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$IMAP_PORT && head -c 4 <&3" \
			2>/dev/null | grep -q '^\* OK'
}

add_user() {
	local name=$1 pw
	IFS= read -r pw || [ -n "$pw" ]
	printf '%s' "$pw" | saslpasswd2 -p -c -f "$LAB/sasldb2" -u localhost "$name"
	# saslpasswd2 may recreate the file: master's user must still read it.
	if [ "$(id -u)" = 0 ]; then chown "$(run_user)" "$LAB/sasldb2"; fi
	chmod 640 "$LAB/sasldb2"
}

start() {
	stop
	imapd_bin
	local u g c p deadline
	# master logs a port it cannot bind to syslog only (absent here) and
	# runs on without that service: refuse taken ports up front.
	for p in "$IMAP_PORT" "$HTTP_PORT"; do
		if in_use "$p"; then
			echo "cyrus.sh: port $p is in use" >&2
			exit 3
		fi
	done
	u=$(run_user)
	g=$(id -gn "$u")
	rm -rf "$LAB"
	mkdir -p "$LAB"/{etc,config/db,config/socket,config/proc,config/lock,config/log,spool,sieve}
	# master's user must traverse the lab's parent (mktemp -d is 0700); a
	# sticky parent is a shared /tmp, whose mode is not ours to change.
	chmod 755 "$LAB"
	[ -k "$(dirname "$LAB")" ] || chmod 755 "$(dirname "$LAB")" 2>/dev/null || true
	c="-C $LAB/etc/imapd.conf"
	# Without search_engine (none) JMAP text/from/subject filters answer
	# serverFail; inMailbox, keywords, dates, sizes and header filters work.
	cat >"$LAB/etc/imapd.conf" <<CONF
configdirectory: $LAB/config
defaultpartition: default
partition-default: $LAB/spool
sievedir: $LAB/sieve
proc_path: $LAB/config/proc
mboxname_lockpath: $LAB/config/lock
lmtpsocket: $LAB/config/socket/lmtp
idlesocket: $LAB/config/socket/idle
notifysocket: $LAB/config/socket/notify
servername: localhost
cyrus_user: $u
admins: cyrus
virtdomains: no
altnamespace: yes
unixhierarchysep: yes
allowplaintext: yes
failedloginpause: 0
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $LAB/sasldb2
sasl_mech_list: PLAIN LOGIN
httpmodules: jmap
httpallowcompress: no
conversations: yes
conversations_db: twoskip
autocreate_quota: 0
autocreate_post: yes
autocreate_inbox_folders: Drafts | Sent | Trash | Junk | Archive
xlist-drafts: Drafts
xlist-sent: Sent
xlist-trash: Trash
xlist-junk: Junk
xlist-archive: Archive
specialusealways: yes
jmap_pushpoll: 1s
imapidlepoll: 1s
smtp_backend: host
smtp_host: 127.0.0.1:${SMTP_PORT:-25}
syslog_prefix: mailsync-cyrus
CONF
	cat >"$LAB/etc/cyrus.conf" <<CONF
START {
  recover   cmd="$BIN/ctl_cyrusdb $c -r"
}
SERVICES {
  imap      cmd="$IBIN/imapd $c" listen="127.0.0.1:$IMAP_PORT" prefork=0 maxchild=100
  http      cmd="$BIN/httpd $c" listen="127.0.0.1:$HTTP_PORT" prefork=0 maxchild=100
  lmtpunix  cmd="$BIN/lmtpd $c" listen="$LAB/config/socket/lmtp" prefork=0 maxchild=5
}
EVENTS {
  checkpoint cmd="$BIN/ctl_cyrusdb $c -c" period=30
}
DAEMON {
  idled     cmd="$IBIN/idled $c"
}
CONF
	printf '%s\n' "${ADMIN_PASSWORD:-cyruspw}" | add_user cyrus
	if [ "$(id -u)" = 0 ]; then chown -R "$u:$g" "$LAB"; fi
	"$BIN/master" -C "$LAB/etc/imapd.conf" -M "$LAB/etc/cyrus.conf" -p "$LAB/master.pid" -d \
		-L "$LAB/master.log" </dev/null >>"$LAB/master.stdout" 2>&1
	deadline=$((SECONDS + ${START_TIMEOUT:-15}))
	while [ "$SECONDS" -lt "$deadline" ]; do
		ready && return 0
		sleep 0.05
	done
	echo "cyrus.sh: Cyrus did not answer on $HTTP_PORT/$IMAP_PORT within" \
		"${START_TIMEOUT:-15} s (the rest of its log goes to syslog):" >&2
	tail -n 40 "$LAB/master.log" "$LAB/master.stdout" >&2 2>/dev/null || true
	stop
	exit 1
}

case "${1:-}" in
start | stop | user)
	LAB=${LAB:?LAB must name a scratch directory}
	IMAP_PORT=${IMAP_PORT:-11143}
	HTTP_PORT=${HTTP_PORT:-18080}
	if [ "$1" = user ]; then add_user "${2:?cyrus.sh user NAME}"; else "$1"; fi
	;;
unpack) imapd_bin ;;
*)
	echo "usage: $0 start|stop|unpack|user NAME" >&2
	exit 2
	;;
esac
