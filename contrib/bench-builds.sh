#!/usr/bin/env bash
# Two builds of ArgosFS side by side, alternating, on the same machine: for each run and
# build, a fresh plain 4+2 volume on six directories under WORKDIR, SIZE_MIB written with
# `dd bs=1M conv=fsync` through a mount, remounted, the page cache dropped, read back
# with `dd bs=1M`. For comparing a change against the build before it.
#
# Usage (as root, needs /dev/fuse): contrib/bench-builds.sh OLD_BINDIR NEW_BINDIR [WORKDIR]
# (BINDIR: a target/release directory holding argosfs-mkfs and argosfs-mount)
# Knobs: SIZE_MIB (default 512), RUNS (default 3).
set -euo pipefail

OLD=$1
NEW=$2
WORK=${3:-/tmp/argosfs-bench-builds}
SIZE_MIB=${SIZE_MIB:-512}
RUNS=${RUNS:-3}

cleanup() { umount "$WORK/mnt" 2>/dev/null || true; sleep 0.5; rm -rf "$WORK"; }
trap cleanup EXIT
cleanup
mkdir -p "$WORK"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/source.bin"
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
rate() { grep -o "[0-9.]* [MG]B/s" | tail -1; }

one() {
  local bin=$1 vol=$WORK/vol
  rm -rf "$vol"; mkdir -p "$WORK/mnt"
  "$bin/argosfs-mkfs" "$vol/root" $(for i in 0 1 2 3 4 5; do echo --disk "$vol/d$i"; done) >/dev/null
  "$bin/argosfs-mount" "$vol/root" "$WORK/mnt"
  drop_caches
  local w r
  w=$(dd if="$WORK/source.bin" of="$WORK/mnt/big" bs=1M conv=fsync 2>&1 | rate)
  umount "$WORK/mnt"; sleep 1
  "$bin/argosfs-mount" "$vol/root" "$WORK/mnt"
  drop_caches
  r=$(dd if="$WORK/mnt/big" of=/dev/null bs=1M 2>&1 | rate)
  umount "$WORK/mnt"; sleep 1
  echo "write $w, cold read $r"
}

for run in $(seq "$RUNS"); do
  echo "run $run old: $(one "$OLD")"
  echo "run $run new: $(one "$NEW")"
done
