#!/usr/bin/env bash
# argosfs-import of a tree of many small files against `cp -a` followed by `sync` of the
# same tree to the same disk (the same durability: argosfs-import is durable when it
# exits), both from a cold page cache, taken in turn RUNS times. The volume is 4+2 on six
# directories under WORKDIR, as a user trying it on one disk would make it.
#
# Usage (as root, to drop caches): contrib/bench-import.sh [SOURCE] [WORKDIR]
# Knobs: RUNS (default 3), ENCRYPT=1 (an encrypted, zstd-compressed volume).
# SOURCE defaults to /usr/include (thousands of small headers); a debootstrap minbase
# tree is the issue's reference when one is at hand.
set -euo pipefail

SRC=${1:-/usr/include}
WORK=${2:-/tmp/argosfs-bench-import}
RUNS=${RUNS:-3}
ENCRYPT=${ENCRYPT:-0}

cargo build --release --locked --bins >/dev/null
BIN=$PWD/target/release
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
cleanup
mkdir -p "$WORK"

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }

files=$(find "$SRC" -type f | wc -l)
entries=$(find "$SRC" | wc -l)
mib=$(du -sm "$SRC" | cut -f1)
echo "# $SRC: $entries entries, $files files, $mib MiB; $RUNS runs; encrypt=$ENCRYPT" >&2

mkfs_args=()
if [ "$ENCRYPT" = 1 ]; then
  export ARGOSFS_PASSPHRASE=bench-import-passphrase
  mkfs_args+=(--encrypt --compression zstd)
fi

declare -a imports copies
for run in $(seq "$RUNS"); do
  rm -rf "$WORK/vol" "$WORK/copy"
  disks=()
  for i in 0 1 2 3 4 5; do disks+=(--disk "$WORK/vol/d$i"); done
  "$BIN/argosfs-mkfs" "$WORK/vol/root" "${disks[@]}" --layout 4+2 "${mkfs_args[@]}" >/dev/null
  drop_caches
  t0=$(now)
  "$BIN/argosfs-import" "$WORK/vol/root" "$SRC" >/dev/null
  t1=$(now)
  imports+=("$(awk "BEGIN {printf \"%.2f\", $t1 - $t0}")")

  drop_caches
  t0=$(now)
  cp -a "$SRC" "$WORK/copy"
  sync
  t1=$(now)
  copies+=("$(awk "BEGIN {printf \"%.2f\", $t1 - $t0}")")
  echo "# run $run: import ${imports[-1]} s, cp -a + sync ${copies[-1]} s" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mi=$(median "${imports[@]}")
mc=$(median "${copies[@]}")
echo "| tree | argosfs-import (s, median of $RUNS) | cp -a + sync (s) | speed vs cp -a + sync | target |"
echo "| --- | --- | --- | --- | --- |"
echo "| $SRC: $files files, $mib MiB | $mi | $mc | $(awk "BEGIN {printf \"%.2f\", $mc / $mi}") | >= 1.00 |"
