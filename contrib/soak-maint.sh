#!/usr/bin/env bash
# Soak test of the maintenance actions against kill -9 (issue 10): many rounds of
# `argosfs-disk drain` and `argosfs-disk heal` killed at random moments, each round
# followed by a check that every file still reads back byte-identical (argosfs-export
# and diff) and, outside a heal in progress, that fsck finds no error (young orphans
# left by a killed move are warnings). The test suite runs 50 kills
# (tests/crash_maint.rs); this runs as many as you like.
#
#   contrib/soak-maint.sh [ROUNDS]      (default 200; as root or any user; no mount)
#
# Environment: ARGOSFS_SOAK_DIR (default /tmp/argosfs-soak, wiped first), ARGOSFS_BIN
# (default target/release, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-200}
DIR=${ARGOSFS_SOAK_DIR:-/tmp/argosfs-soak}
BIN=${ARGOSFS_BIN:-$PWD/target/release}
[ -x "$BIN/argosfs-disk" ] || cargo build --release --locked --bins
rm -rf "$DIR"
mkdir -p "$DIR/src"
for i in $(seq 1 200); do
  head -c $((20000 + (i * 7919) % 90000)) /dev/urandom > "$DIR/src/f$i"
done
disks=()
for i in 0 1 2 3 4 5 6 7; do disks+=(--disk "$DIR/d$i"); done
"$BIN/argosfs-mkfs" "$DIR/root" "${disks[@]}" --layout 4+2 --stripe-size 16K -q
"$BIN/argosfs-import" "$DIR/root" "$DIR/src" -q

# verify ROUND [data]: every file reads back identical; without "data", fsck finds no
# error too (during a heal the replaced disk's missing shards are errors until it ends).
verify() {
  rm -rf "$DIR/out"
  "$BIN/argosfs-export" "$DIR/root" "$DIR/out" -q
  diff -r "$DIR/src" "$DIR/out" > /dev/null || { echo "round $1: data differs"; exit 1; }
  [ "${2:-}" = data ] && return 0
  local code=0
  "$BIN/argosfs-fsck" "$DIR/root" -n -q > "$DIR/fsck.txt" || code=$?
  if [ "$code" -ne 0 ]; then echo "round $1: fsck exit $code"; cat "$DIR/fsck.txt"; exit 1; fi
}

kill_after() { # ms, args...
  local ms=$1; shift
  "$BIN/argosfs-disk" "$DIR/root" "$@" -q > /dev/null 2>&1 &
  local pid=$!
  sleep "$(printf '0.%03d' "$ms")"
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
}

round=0
victim=3
while [ "$round" -lt "$ROUNDS" ]; do
  # Drain a disk under kills, finish it, forget it; add a fresh disk in its place.
  for _ in $(seq 1 10); do
    round=$((round + 1)); kill_after $((10 + RANDOM % 200)) drain "d$victim"; verify "$round"
  done
  "$BIN/argosfs-disk" "$DIR/root" remove "d$victim" -q
  verify "$round"
  new="$DIR/added-$round"
  "$BIN/argosfs-disk" "$DIR/root" add "$new" -q
  # Lose another disk, replace it with an empty directory, heal under kills.
  lost=$("$BIN/argosfs-disk" "$DIR/root" list --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print([x for x in d["disks"] if x["state"]=="active"][0]["path"])')
  lost_id=$("$BIN/argosfs-disk" "$DIR/root" list --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print([x for x in d["disks"] if x["state"]=="active"][0]["name"])')
  rm -rf "$lost"
  "$BIN/argosfs-disk" "$DIR/root" replace "$lost_id" "$DIR/replaced-$round" --no-heal -q || true
  for _ in $(seq 1 10); do
    round=$((round + 1)); kill_after $((10 + RANDOM % 200)) heal; verify "$round" data
  done
  "$BIN/argosfs-disk" "$DIR/root" heal -q
  verify "$round"
  victim=$("$BIN/argosfs-disk" "$DIR/root" list --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print([x for x in d["disks"] if x["state"]=="active"][-1]["id"])')
  echo "round $round: ok"
done
"$BIN/argosfs-fsck" "$DIR/root" --repair --remove-orphans --orphan-grace 0 -q || true
"$BIN/argosfs-fsck" "$DIR/root" -n
echo "soak: $ROUNDS rounds of kill -9 during drain and heal, no data lost"
