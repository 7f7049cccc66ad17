#!/usr/bin/env bash
# Makes the fixtures of this directory with a build of schema version 1 (the release before
# person.merged_into and distinct_pair: commit 6f874ab). Kept so that every later release is
# tested opening what this one wrote (MigrationTests). Run from the package root:
#   swift build && bash Tests/Fixtures/release-0.1/make.sh
set -euo pipefail
bin=.build/debug
out=Tests/Fixtures/release-0.1
work=$(mktemp -d)
trap 'kill $srv 2>/dev/null || true; rm -rf "$work"' EXIT
export FIELDBOOK_PASSPHRASE=release-fixture-passphrase
$bin/fieldbook-server serve --data "$work/server" --port 0 >"$work/server.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q "listening" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o 'port [0-9]*\|:[0-9]\{4,5\}' "$work/server.log" | head -1 | grep -o '[0-9]*')
url=http://127.0.0.1:$port
mon=$($bin/fieldbook-server token create --data "$work/server" --name monitor-almaty --regions almaty | tail -1)
coo=$($bin/fieldbook-server token create --data "$work/server" --name coordinator --regions '*' --coordinator | tail -1)
M="--db $work/monitor.sqlite"; C="--db $work/coordinator.sqlite"
$bin/fieldbook init $M --region almaty --device monitor-almaty
$bin/fieldbook init $C --region hq --device coordinator-laptop
$bin/fieldbook remote add $M origin "$url" --token "$mon" 2>/dev/null
$bin/fieldbook remote add $C origin "$url" --token "$coo" 2>/dev/null
$bin/fieldbook sync $M || true        # registers, waits for approval (exit 75)
$bin/fieldbook keys create $C almaty --remote origin
fp=$($bin/fieldbook keys fingerprint $M)
$bin/fieldbook keys approve $C monitor-almaty --fingerprint "$fp" --remote origin
a=$($bin/fieldbook person add $M --name "Асқар Қайырбек" --born 1976 --sex m)
b=$($bin/fieldbook person add $M --name "Askar Kairbek" --born 1976 --sex m --alias "Kairbek A.")
c=$($bin/fieldbook person add $M --name "Marat Ilyashev" --born 1969 --sex m)
$bin/fieldbook incident add $M --person "$a" --kind detention --date 2022-01-06 --facility "SIZO-1 Almaty" --article "CC 405.1" --ref fx-1
$bin/fieldbook incident add $M --person "$b" --kind verdict --date 2022-09-14 --sentence-kind imprisonment --sentence-term P5Y --article "CC 405.1" --ref fx-2
$bin/fieldbook incident add $M --person "$c" --kind detention --date 2023-03~ --ref fx-3
$bin/fieldbook sync $M
$bin/fieldbook sync $C
kill -TERM $srv; wait $srv || true
rm -rf "$out"/*.sqlite* "$out/server"
mkdir -p "$out/server"
for f in "$work"/server/store.sqlite "$work"/server/store.sqlite-wal; do cp "$f" "$out/server/"; done   # the WAL too: as the server left it
for f in "$work"/monitor.sqlite "$work"/monitor.sqlite-wal "$work"/coordinator.sqlite "$work"/coordinator.sqlite-wal; do cp "$f" "$out/"; done
printf '%s\n%s\n%s\n' "$a" "$b" "$c" > "$out/persons.txt"
echo "$mon" > "$out/monitor.token"
ls -lR "$out"
