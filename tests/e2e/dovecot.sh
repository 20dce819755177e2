#!/bin/bash
# Throwaway Dovecot for the end-to-end tests and the demo: IMAP on
# 127.0.0.1:$PORT (and imaps on $TLS_PORT when set, with a fresh test CA in
# $LAB/etc/ca.pem). Any user logs in with password "pass". Never reads
# /etc/dovecot. Usage: dovecot.sh start|stop  (LAB, PORT, TLS_PORT from env)
# DOVECOT_EXTRA (optional) is appended to dovecot.conf verbatim (benchmarks
# raise process limits with it).
# IMAP_CAPABILITY (optional) replaces the capability list (imap_capability),
# e.g. to test a server without NOTIFY.
set -euo pipefail
LAB=${LAB:?LAB must name a scratch directory}
PORT=${PORT:-10143}
stop() {
	[ -f "$LAB/run/master.pid" ] || return 0
	pid=$(cat "$LAB/run/master.pid")
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
}
start() {
	stop
	rm -rf "$LAB"
	mkdir -p "$LAB"/{run,mail,etc}
	# The mail user must traverse the lab's parents (mktemp -d is 0700).
	chmod 755 "$LAB" 2>/dev/null || true
	# the parent too (a mkdtemp dir is 0700), but never a sticky /tmp:
	# 0755 would take its sticky bit and world write away
	[ -k "$(dirname "$LAB")" ] || chmod 755 "$(dirname "$LAB")" 2>/dev/null || true
	if [ "$(id -u)" = 0 ]; then MU=mail; else MU=$(id -un); fi
	MUID=$(id -u $MU); MGID=$(id -g $MU)
	chown "$MU" "$LAB/mail"
	SSL="ssl = no"
	IMAPS=0
	if [ -n "${TLS_PORT:-}" ]; then
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
			-subj "/CN=mailsync test CA" -keyout "$LAB/etc/ca.key" \
			-out "$LAB/etc/ca.pem" 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
			-keyout "$LAB/etc/srv.key" -out "$LAB/etc/srv.csr" 2>/dev/null
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$LAB/etc/san.ext"
		openssl x509 -req -in "$LAB/etc/srv.csr" -CA "$LAB/etc/ca.pem" \
			-CAkey "$LAB/etc/ca.key" -CAcreateserial -days 2 \
			-extfile "$LAB/etc/san.ext" -out "$LAB/etc/srv.pem" 2>/dev/null
		chmod 644 "$LAB/etc/"*.pem "$LAB/etc/srv.key"
		SSL="ssl = yes
ssl_cert = <$LAB/etc/srv.pem
ssl_key = <$LAB/etc/srv.key"
		IMAPS=$TLS_PORT
	fi
	if [ "$(id -u)" = 0 ]; then
		USERS="default_login_user = dovenull
default_internal_user = dovecot"
	else
		USERS="default_login_user = $(id -un)
default_internal_user = $(id -un)"
	fi
	# OAUTH2_URL (optional): an introspection endpoint; then XOAUTH2 and
	# OAUTHBEARER are offered and their tokens checked there (POST).
	MECHS="plain login"
	OAUTH=""
	STATIC_MECHS=""
	if [ -n "${OAUTH2_URL:-}" ]; then
		MECHS="plain login xoauth2 oauthbearer"
		STATIC_MECHS="mechanisms = plain login"
		cat >"$LAB/etc/oauth2.conf.ext" <<EXT
introspection_mode = post
introspection_url = $OAUTH2_URL
username_attribute = username
active_attribute = active
active_value = true
EXT
		OAUTH="passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $LAB/etc/oauth2.conf.ext
}"
	fi
	cat >"$LAB/etc/dovecot.conf" <<CONF
base_dir = $LAB/run
state_dir = $LAB/run/state
log_path = $LAB/dovecot.log
protocols = imap
listen = 127.0.0.1
$SSL
disable_plaintext_auth = no
auth_mechanisms = $MECHS
$OAUTH
passdb {
  driver = static
  args = password=pass
  $STATIC_MECHS
}
userdb {
  driver = static
  args = uid=$MUID gid=$MGID home=$LAB/mail/%u
}
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_uid = $MUID
mail_gid = $MGID
first_valid_uid = 0
first_valid_gid = 0
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
}
mailbox_list_index = yes
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS
  }
  chroot =
}
service anvil {
  chroot =
}
$USERS
mail_max_userip_connections = 1000
# A throwaway test server: no fsync per message (seeding 100x faster).
mail_fsync = never
${IMAP_CAPABILITY:+imap_capability = $IMAP_CAPABILITY}
${DOVECOT_EXTRA:-}
CONF
	dovecot -c "$LAB/etc/dovecot.conf" </dev/null >>"$LAB/dovecot.stdout" 2>&1
	for _ in $(seq 100); do
		if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT && head -c 4 <&3" \
			2>/dev/null | grep -q '^\* OK'; then
			return 0
		fi
		sleep 0.1
	done
	echo "dovecot did not start; see $LAB/dovecot.log" >&2
	cat "$LAB/dovecot.log" >&2 || true
	exit 1
}
case "${1:-start}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
