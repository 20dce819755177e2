#!/bin/sh
# Installs the Debian 12 packages mailsync needs to build, test and run the
# demo. Does nothing when all are present; needs root (or sudo) otherwise.
set -eu
PKGS="build-essential pkg-config clang libclang-rt-14-dev \
libnng-dev libmsgpack-dev libsqlite3-dev sqlite3 libssl-dev \
libcurl4-openssl-dev libjansson-dev libcmocka-dev \
dovecot-imapd openssl python3 ca-certificates procps iproute2 \
prometheus isync time \
cyrus-common cyrus-caldav cyrus-admin cyrus-clients sasl2-bin"
# Cyrus for the JMAP tests: its imapd package (cyrus-imapd) conflicts with
# dovecot-imapd, so only the packages that coexist are installed here, and
# tests/e2e/cyrus.sh unpacks imapd beside them (cyrus.sh unpack, below).
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	exec "$(dirname "$0")/../tests/e2e/cyrus.sh" unpack
fi
echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Dovecot's, Cyrus's and exim's (default-mta) packages would start system
# instances on 143/25/8008; the tests run their own. Without a policy-rc.d
# (a Docker image has one), a temporary one that refuses every start.
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	guard=/usr/sbin/policy-rc.d
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$guard" >/dev/null
	$SUDO chmod 755 "$guard"
fi
rc=0
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?
[ -z "$guard" ] || $SUDO rm -f "$guard"
[ "$rc" = 0 ] || exit "$rc"
"$(dirname "$0")/../tests/e2e/cyrus.sh" unpack
