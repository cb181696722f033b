#!/usr/bin/env bash
# The caches of a mounted volume (issue 14), in one run:
#  A. a hot re-read: the plain directory's page cache; the mount with the kernel's page
#     cache (FOPEN_KEEP_CACHE, as it runs); the mount with that file's pages dropped
#     before each read, so the mount's RAM cache answers;
#  B. a cold sequential read from the disks against one from the L2 cache (on tmpfs,
#     standing in for a faster device), and from the L2 cache after a remount; once as
#     the disks are, once with the server's reads from their block device throttled to
#     DISK_MBPS (a blkio cgroup holding only the server: slower disks behind the cache);
#  C. the mount's resident memory (VmRSS sampled every 0.2 s, and VmHWM) while it writes
#     and reads RSS_GIB GiB, against its bounds.
# "Cold" drops the pages of the file and of the disk directories with
# posix_fadvise(DONTNEED), file by file, not the machine's whole page cache (other work
# on the machine keeps its caches). Prints markdown tables (paste into
# docs/PERFORMANCE.md). Figures are medians of RUNS runs.
#
# Usage (as root, needs /dev/fuse): contrib/bench-cache.sh [WORKDIR]
# Knobs: HOT_MIB (default 256), SIZE_MIB (cold/L2 file, default 1024), RSS_GIB (default
# 10; 0 skips part C), RUNS (default 3), L2DIR (default /dev/shm/argosfs-bench-l2: tmpfs),
# ENCRYPT=1 (volume encrypted and zstd-compressed), PARTS (default ABC), DISK_MBPS
# (default 300; 0 skips the throttled run; needs cgroup v1 blkio).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/argosfs-bench-cache}
HOT_MIB=${HOT_MIB:-256}
SIZE_MIB=${SIZE_MIB:-1024}
RSS_GIB=${RSS_GIB:-10}
RUNS=${RUNS:-3}
L2DIR=${L2DIR:-/dev/shm/argosfs-bench-l2}
ENCRYPT=${ENCRYPT:-0}
PARTS=${PARTS:-ABC}
PORT=${PORT:-9787}
DISK_MBPS=${DISK_MBPS:-300}
CGROUP=/sys/fs/cgroup/blkio/argosfs-bench-$$
cargo build --release --locked --bins >/dev/null
BIN=$PWD/target/release
ROOT=$WORK/root
MNT=$WORK/mnt
export ARGOSFS_PASSPHRASE=benchmark-passphrase

unmount_volume() {
  umount "$MNT" 2>/dev/null || return 0
  if [ -e "$ROOT/lock" ]; then flock -w 60 "$ROOT/lock" true; fi
}
cleanup() {
  unmount_volume
  rmdir "$CGROUP" 2>/dev/null || true
  rm -rf "$WORK" "$L2DIR"
}
trap cleanup EXIT
cleanup
mkdir -p "$WORK/plain" "$MNT"

mkfs_volume() {
  local disks=()
  for i in 0 1 2 3 4 5; do disks+=(--disk "$WORK/d$i"); done
  local extra=()
  if [ "$ENCRYPT" = 1 ]; then extra=(--encrypt --compression zstd:1); fi
  "$BIN/argosfs-mkfs" "$ROOT" "${disks[@]}" "${extra[@]}" >/dev/null
}
# mount_volume OPTIONS: mounts in the background; sets PID to the server's process id
mount_volume() {
  PID=$("$BIN/argosfs-mount" "$ROOT" "$MNT" -o "allow_other,metrics=127.0.0.1:$PORT${1:+,$1}" --json \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
}
metric() {
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v k="$1" '$1 == k {print $2}'
}
# drop_pages PATH...: drops the page cache of every file under the paths
drop_pages() {
  python3 - "$@" <<'EOF'
import os, sys
for top in sys.argv[1:]:
    paths = [top] if os.path.isfile(top) else [
        os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs]
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
EOF
}
# mbs FILE: reads FILE with dd bs=1M, prints MB/s (10^6 bytes per second)
mbs() {
  local t0 t1 bytes
  bytes=$(stat -c %s "$1")
  t0=$(date +%s.%N)
  dd if="$1" of=/dev/null bs=1M status=none
  t1=$(date +%s.%N)
  awk "BEGIN {printf \"%.0f\", $bytes / ($t1 - $t0) / 1e6}"
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# runs CMD...: median of RUNS runs of a command that prints a number
runs() { for _ in $(seq "$RUNS"); do "$@"; echo; done | median; }
ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }
# throttle MBPS: limits the server's reads from the block device under WORK
throttle() {
  mkdir -p "$CGROUP"
  echo "$(findmnt -no MAJ:MIN -T "$WORK" | head -1) $(($1 * 1000000))" > "$CGROUP/blkio.throttle.read_bps_device"
  echo "$PID" > "$CGROUP/cgroup.procs"
}
cold_mount_read() { drop_pages "$MNT/$1" "$WORK"/d?; mbs "$MNT/$1"; }
mount_read_dropped() { drop_pages "$MNT/$1"; mbs "$MNT/$1"; }

echo "# ArgosFS caches, $(date -u '+%d %b %Y %H:%M UTC'), $(uname -r), medians of $RUNS"
L2FS=$(mkdir -p "$L2DIR" && findmnt -no FSTYPE -T "$L2DIR" | head -1)
echo "volume: 4+2 on 6 directories of $(findmnt -no SOURCE,FSTYPE -T "$WORK" | head -1 | tr -s ' ' ' '), $([ "$ENCRYPT" = 1 ] && echo 'encrypted + zstd:1' || echo plain); L2 on $L2FS"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/source.bin"
mkfs_volume

if [[ $PARTS == *A* ]]; then
  head -c $((HOT_MIB << 20)) "$WORK/source.bin" > "$WORK/plain/hot"
  mount_volume "cache_size=$((HOT_MIB * 2))M"
  cp "$WORK/plain/hot" "$MNT/hot"
  sync "$MNT/hot"
  cat "$WORK/plain/hot" "$MNT/hot" > /dev/null
  # page-cache re-reads of the plain directory and of the mount, taken in turn (the
  # machine's other work moves both)
  : > "$WORK/pc.plain"; : > "$WORK/pc.mount"
  for _ in $(seq $((RUNS + 2))); do
    mbs "$WORK/plain/hot" >> "$WORK/pc.plain"; echo >> "$WORK/pc.plain"
    mbs "$MNT/hot" >> "$WORK/pc.mount"; echo >> "$WORK/pc.mount"
  done
  plain=$(median < "$WORK/pc.plain")
  kernel=$(median < "$WORK/pc.mount")
  # Two reads reach the mount before its RAM cache holds a plain file (the first reads
  # the shards straight into the reply, the second caches each stripe it reads again).
  mount_read_dropped hot > /dev/null
  mount_read_dropped hot > /dev/null
  hits0=$(metric argosfs_cache_hits_total)
  ram=$(runs mount_read_dropped hot)
  hits1=$(metric argosfs_cache_hits_total)
  cached=$(metric argosfs_cache_bytes)
  cold=$(runs cold_mount_read hot)
  unmount_volume
  echo
  echo "## A. Re-reading a hot $HOT_MIB MiB file (dd bs=1M; page-cache rows: medians of $((RUNS + 2)), taken in turn)"
  echo
  echo "| read | MB/s | vs the plain directory's page cache |"
  echo "|---|---:|---:|"
  echo "| plain directory, page cache | $plain | 1.00 |"
  echo "| mount, kernel page cache (as it runs) | $kernel | $(ratio "$kernel" "$plain") |"
  echo "| mount, pages dropped: the mount's RAM cache (cache_size=$((HOT_MIB * 2))M) | $ram | $(ratio "$ram" "$plain") |"
  echo "| mount, pages of the file and the disks dropped (cold) | $cold | $(ratio "$cold" "$plain") |"
  echo
  echo "RAM cache: $((${cached%.*} >> 20)) MiB held, $(awk "BEGIN {print $hits1 - $hits0}") hits during the $RUNS RAM-cache reads"
fi

# part_b MBPS: part B with the server's disk reads throttled to MBPS (0: as they are)
part_b() {
  local label="as they are"
  if [ "$1" -gt 0 ]; then label="throttled to $1 MB/s"; fi
  rm -rf "$L2DIR"
  mount_volume ""
  if [ "$1" -gt 0 ]; then throttle "$1"; fi
  [ -e "$MNT/big" ] || { cp "$WORK/source.bin" "$MNT/big"; sync "$MNT/big"; }
  disks_cold=$(runs cold_mount_read big)
  unmount_volume
  mount_volume "l2_cache=$L2DIR,l2_cache_size=$((SIZE_MIB * 2))M"
  if [ "$1" -gt 0 ]; then throttle "$1"; fi
  fill=$(cold_mount_read big)
  # the L2 writer works behind the reads: wait for it
  for _ in $(seq 600); do
    [ "$(metric argosfs_l2_skipped_writes_total)" = 0 ] || break
    [ "$(metric argosfs_l2_entries)" -ge "$SIZE_MIB" ] && break
    sleep 0.1
  done
  entries=$(metric argosfs_l2_entries)
  skipped=$(metric argosfs_l2_skipped_writes_total)
  l2=$(runs cold_mount_read big)
  hit_bytes=$(metric argosfs_l2_hit_bytes_total)
  unmount_volume
  mount_volume "l2_cache=$L2DIR,l2_cache_size=$((SIZE_MIB * 2))M"
  if [ "$1" -gt 0 ]; then throttle "$1"; fi
  l2_remount=$(cold_mount_read big)
  unmount_volume
  echo
  echo "## B. Cold sequential read of $SIZE_MIB MiB (dd bs=1M), disks $label"
  echo
  echo "Pages of the file and of the disk directories dropped before each read."
  echo
  echo "| read | MB/s | vs the disks |"
  echo "|---|---:|---:|"
  echo "| from the disks (no L2 cache) | $disks_cold | 1.00 |"
  echo "| from the disks, filling the L2 cache | $fill | $(ratio "$fill" "$disks_cold") |"
  echo "| from the L2 cache ($L2FS) | $l2 | $(ratio "$l2" "$disks_cold") |"
  echo "| from the L2 cache after a remount (one run) | $l2_remount | $(ratio "$l2_remount" "$disks_cold") |"
  echo
  echo "L2 cache after the fill: $entries entries, $skipped writes skipped; $((${hit_bytes%.*} >> 20)) MiB served over the $RUNS reads"
}
if [[ $PARTS == *B* ]]; then
  part_b 0
  if [ "$DISK_MBPS" -gt 0 ]; then part_b "$DISK_MBPS"; fi
fi

if [[ $PARTS == *C* ]] && [ "$RSS_GIB" -gt 0 ]; then
  rm -rf "$WORK"/d? "$ROOT" "$L2DIR"
  mkfs_volume
  mount_volume "l2_cache=$L2DIR"
  sample() {
    while kill -0 "$PID" 2>/dev/null; do
      awk '/^VmRSS/ {print $2}' "/proc/$PID/status" 2>/dev/null || true
      sleep 0.2
    done
  }
  sample > "$WORK/rss.write" &
  sampler=$!
  for _ in $(seq $(((RSS_GIB << 10) / SIZE_MIB))); do cat "$WORK/source.bin"; done > "$MNT/ten"
  sync "$MNT/ten"
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  drop_pages "$MNT/ten" "$WORK"/d?
  sample > "$WORK/rss.read" &
  sampler=$!
  dd if="$MNT/ten" of=/dev/null bs=1M status=none
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
  written=$(stat -c %s "$MNT/ten")
  unmount_volume
  max() { sort -n "$1" | tail -1; }
  echo
  echo "## C. Resident memory of the mount while it writes and reads $((written >> 30)) GiB"
  echo
  echo "Bounds: RAM cache 64 MiB (default), frame tables 1 MiB, L2 writer queue 32 MiB, dirty"
  echo "file data 256 MiB (the write buffer's bound), so bounds + 128 MiB = 481 MiB."
  echo
  echo "| phase | peak VmRSS (sampled every 0.2 s) |"
  echo "|---|---:|"
  echo "| writing | $(($(max "$WORK/rss.write") >> 10)) MiB |"
  echo "| reading | $(($(max "$WORK/rss.read") >> 10)) MiB |"
  echo "| VmHWM over the whole run | $((hwm >> 10)) MiB |"
fi
