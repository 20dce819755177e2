#!/bin/sh
# Installs the Debian 12 packages mailsync needs to build, test and run the
# demo. Does nothing when all are present; needs root (or sudo) otherwise.
set -eu
PKGS="build-essential pkg-config clang libclang-rt-14-dev \
libnng-dev libmsgpack-dev libsqlite3-dev sqlite3 libssl-dev \
libcurl4-openssl-dev libjansson-dev libcmocka-dev \
dovecot-imapd openssl python3 ca-certificates procps iproute2 \
prometheus isync time"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Dovecot's package would start a system instance; the tests run their own.
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
