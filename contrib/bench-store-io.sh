#!/usr/bin/env bash
# Shard I/O modes of a mount against each other (issue 14): buffered (the default),
# -o direct_io, -o io_uring and -o direct_io,io_uring, on one 4+2 volume whose disks are
# directories of one filesystem (WORKDIR's). Per mode: sequential write of SIZE_MIB
# (1 MiB blocks, final fsync), cold sequential read, cold random 4 KiB reads, small
# files (create + sync(2)). Each figure is the median of RUNS runs, the modes taken in
# turn within a run (a virtual disk's speed drifts between minutes); "cold" means the
# mount remounted and the kernel's caches dropped. Prints a markdown table.
#
# Usage (as root, needs /dev/fuse): contrib/bench-store-io.sh [WORKDIR]
# Knobs: SIZE_MIB (default 512), RANDOM_READS (default 3000), SMALL_FILES (default
# 2000, 4 KiB each), RUNS (default 3), MODES (default "buffered direct_io io_uring
# direct_io,io_uring").
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/argosfs-bench-store-io}
SIZE_MIB=${SIZE_MIB:-512}
RANDOM_READS=${RANDOM_READS:-3000}
SMALL_FILES=${SMALL_FILES:-2000}
RUNS=${RUNS:-3}
MODES=${MODES:-"buffered direct_io io_uring direct_io,io_uring"}
cargo build --release --locked --bins >/dev/null
BIN=$PWD/target/release
MNT=$WORK/mnt

unmount_volume() {
  umount "$MNT" 2>/dev/null || return 0
  if [ -e "$WORK/root/lock" ]; then flock -w 60 "$WORK/root/lock" true; fi
}
cleanup() { unmount_volume; rm -rf "$WORK"; }
trap cleanup EXIT
cleanup
mkdir -p "$MNT"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/source.bin"
disks=(); for i in 0 1 2 3 4 5; do disks+=(--disk "$WORK/d$i"); done
"$BIN/argosfs-mkfs" "$WORK/root" "${disks[@]}" --layout 4+2 -q

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); awk "BEGIN {printf \"%.3f\", $t1 - $t0}"; }
# mount_in MODE: mount with the mode's options (buffered: none), caches cold
mount_in() {
  unmount_volume; drop_caches
  if [ "$1" = buffered ]; then "$BIN/argosfs-mount" "$WORK/root" "$MNT"
  else "$BIN/argosfs-mount" "$WORK/root" "$MNT" -o "$1"; fi
}
write_test() { dd if="$WORK/source.bin" of="$MNT/big" bs=1M conv=fsync status=none; }
read_test() { dd if="$MNT/big" of=/dev/null bs=1M status=none; }
random_reads() {
  /usr/bin/python3 contrib/random-reads.py "$MNT/big" "$RANDOM_READS"
}
small_files() {
  /usr/bin/python3 - "$MNT/small" "$SMALL_FILES" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
data = os.urandom(4096)
t = time.perf_counter()
for i in range(n):
    with open(os.path.join(d, f"f{i:06d}"), "wb") as f:
        f.write(data)
os.sync()
print(f"{n / (time.perf_counter() - t):.0f}")
PY
}
mbps() { awk "BEGIN {printf \"%.0f\", $SIZE_MIB * 1.048576 / $1}"; }
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

declare -A W R RR SF
for run in $(seq "$RUNS"); do
  for mode in $MODES; do
    echo "# run $run: $mode" >&2
    mount_in "$mode"
    rm -rf "$MNT/big" "$MNT/small"; sync
    W[$mode]+="$(secs write_test) "
    mount_in "$mode"; R[$mode]+="$(secs read_test) "
    mount_in "$mode"; RR[$mode]+="$(random_reads) "
    SF[$mode]+="$(small_files) "
  done
done
unmount_volume
fs=$(df -T "$WORK" | awk 'NR==2 {print $2}')
echo "#### $(date -u '+%d %b %Y %H:%M UTC'), $(uname -r), disks on $fs, medians of $RUNS"
echo
echo "| mode | seq write MB/s | cold seq read MB/s | cold random 4 KiB reads/s | 4 KiB files created+synced/s |"
echo "|---|---|---|---|---|"
for mode in $MODES; do
  w=$(printf '%s\n' ${W[$mode]} | median); r=$(printf '%s\n' ${R[$mode]} | median)
  rr=$(printf '%s\n' ${RR[$mode]} | median); sf=$(printf '%s\n' ${SF[$mode]} | median)
  echo "| $mode | $(mbps "$w") | $(mbps "$r") | $rr | $sf |"
done
