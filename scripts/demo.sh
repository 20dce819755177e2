#!/bin/bash
# The main job on a built-in local default: a real Dovecot on 127.0.0.1
# with sample mail (nested and non-ASCII folders, encoded subjects,
# attachments, keywords), the whole mailsync pipeline, one account added
# over verified TLS, synced into SQLite, and what landed printed.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${MAILSYNC_DEMO_DIR:-$PWD/mailsync-data}
LAB=/tmp/mailsync-demo-dovecot
PORT=${DEMO_IMAP_PORT:-10143}
TLS_PORT=${DEMO_IMAPS_PORT:-10993}
METRICS=${DEMO_METRICS:-127.0.0.1:9464}
UP_PID=""

cleanup() {
	[ -n "$UP_PID" ] && kill -TERM "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null
	LAB=$LAB PORT=$PORT tests/e2e/dovecot.sh stop || true
}
trap cleanup EXIT

echo "== starting Dovecot on 127.0.0.1:$PORT (imaps :$TLS_PORT, throwaway CA)"
LAB=$LAB PORT=$PORT TLS_PORT=$TLS_PORT tests/e2e/dovecot.sh start
python3 -c "
import sys; sys.path.insert(0, 'tests/e2e')
import mailfixture as fx
fx.seed_standard($PORT, 'demo', per_folder=25)
print('seeded', 25 * (1 + len(fx.STANDARD_FOLDERS)), 'messages in', 1 + len(fx.STANDARD_FOLDERS), 'folders')
"

echo "== starting mailsync-up in $DIR (store, scheduler, 2 workers; metrics on http://$METRICS/metrics)"
rm -rf "$DIR"
bin/mailsync-up --dir "$DIR" --workers 2 --metrics-listen "$METRICS" 2>"$DIR.log" &
UP_PID=$!
PW=$(mktemp)
echo pass >"$PW"
chmod 600 "$PW"

echo "== adding account 'demo' (imaps, certificate verified against the test CA)"
for _ in $(seq 50); do
	bin/mailsync-submit --dir "$DIR" --timeout 1 account list >/dev/null 2>&1 && break
	sleep 0.1
done
bin/mailsync-submit --dir "$DIR" account add demo --imap "imaps://127.0.0.1:$TLS_PORT" \
	--user demo --password-file "$PW" --tls-ca "$LAB/etc/ca.pem"
rm -f "$PW"

echo "== syncing"
time bin/mailsync-submit --dir "$DIR" sync demo --wait --timeout 120

echo "== accounts"
bin/mailsync-submit --dir "$DIR" account list
echo
echo "== mailboxes in $DIR/mailsync.db"
sqlite3 -header -column "$DIR/mailsync.db" \
	"SELECT name, role, total, unread, uidvalidity, uidnext FROM mailboxes ORDER BY name;"
echo
echo "== newest messages"
sqlite3 -header -column "$DIR/mailsync.db" \
	"SELECT m.id, b.name AS mailbox, m.uid, substr(m.subject, 1, 40) AS subject,
	        substr(m.from_addr, 1, 30) AS sender, m.seen, m.flagged, m.keywords,
	        m.has_attachments AS att
	 FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
	 ORDER BY m.date DESC LIMIT 12;"
echo
echo "== changing mail: the newest INBOX message marked read and flagged, the next moved to Archive"
first=$(sqlite3 "$DIR/mailsync.db" "SELECT m.id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
	WHERE b.name = 'INBOX' ORDER BY m.date DESC LIMIT 1;")
second=$(sqlite3 "$DIR/mailsync.db" "SELECT m.id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
	WHERE b.name = 'INBOX' ORDER BY m.date DESC LIMIT 1 OFFSET 1;")
bin/mailsync-submit --dir "$DIR" flag demo "$first" --seen --flagged --wait --timeout 60
bin/mailsync-submit --dir "$DIR" move demo "$second" --to Archive --wait --timeout 60
bin/mailsync-submit --dir "$DIR" changes demo --state all
echo

echo "== sync log"
sqlite3 -header -column "$DIR/mailsync.db" \
	"SELECT datetime(at / 1000, 'unixepoch') AS at, job_id, kind, outcome, detail FROM sync_log ORDER BY id;"
echo
echo "The database stays in $DIR/mailsync.db; pipeline log in $DIR.log."
