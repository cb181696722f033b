#!/usr/bin/env bash
# Mounted throughput of ArgosFS against the plain directory underneath, in one run on one
# machine: sequential 1 GiB write (1 MiB blocks, final fsync), cold sequential read,
# cold random 4 KiB reads, degraded read with 2 of 6 disks gone, small-file create/stat/unlink.
# Prints a markdown table of figures and ratios (paste it into docs/PERFORMANCE.md).
#
# Usage (as root, needs /dev/fuse): contrib/bench-mount.sh [WORKDIR]
# Knobs: SIZE_MIB (default 1024), SMALL_FILES (default 5000), RANDOM_READS (default 5000).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/argosfs-bench-mount}
SIZE_MIB=${SIZE_MIB:-1024}
SMALL_FILES=${SMALL_FILES:-5000}
RANDOM_READS=${RANDOM_READS:-5000}
cargo build --release --locked --bins >/dev/null
BIN=$PWD/target/release
MNT=$WORK/mnt
cleanup() {
  umount "$MNT" 2>/dev/null || true
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT
cleanup
mkdir -p "$WORK/plain" "$MNT"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/source.bin"

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# secs CMD...: run a command, print the seconds it took
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); awk "BEGIN {printf \"%.3f\", $t1 - $t0}"; }

write_test() { dd if="$WORK/source.bin" of="$1/big" bs=1M conv=fsync status=none; }
read_test() { dd if="$1/big" of=/dev/null bs=1M status=none; }

random_reads() {
  /usr/bin/python3 - "$1/big" "$RANDOM_READS" <<'PY'
import os, random, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
rng = random.Random(7)
n = int(sys.argv[2])
offsets = [rng.randrange(0, size // 4096) * 4096 for _ in range(n)]
t = time.perf_counter()
for off in offsets:
    os.pread(fd, 4096, off)
print(n / (time.perf_counter() - t))
PY
}

small_files() {
  /usr/bin/python3 - "$1/small" "$SMALL_FILES" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
names = [os.path.join(d, f"f{i:06d}") for i in range(n)]
t = time.perf_counter()
for p in names:
    with open(p, "wb") as f:
        f.write(b"x" * 100)
create = n / (time.perf_counter() - t)
t = time.perf_counter()
for _ in range(4):
    for p in names:
        os.stat(p)
stat = 4 * n / (time.perf_counter() - t)
t = time.perf_counter()
for p in names:
    os.unlink(p)
unlink = n / (time.perf_counter() - t)
print(f"{create:.0f} {stat:.0f} {unlink:.0f}")
PY
}

mbps() { awk "BEGIN {printf \"%.0f\", $SIZE_MIB * 1.048576 / $1}"; }

echo "# plain directory ($(df -T "$WORK" | awk 'NR==2 {print $2}'))" >&2
pw=$(secs write_test "$WORK/plain"); drop_caches
pr=$(secs read_test "$WORK/plain")
drop_caches
prand=$(random_reads "$WORK/plain")
read -r pc ps pu <<<"$(small_files "$WORK/plain")"

echo "# argosfs 4+2 on six directories of the same filesystem" >&2
disks=(); for i in 0 1 2 3 4 5; do disks+=(--disk "$WORK/d$i"); done
"$BIN/argosfs-mkfs" "$WORK/root" "${disks[@]}" --layout 4+2 -q
"$BIN/argosfs-mount" "$WORK/root" "$MNT"
aw=$(secs write_test "$MNT")
umount "$MNT"; sleep 0.5; drop_caches
"$BIN/argosfs-mount" "$WORK/root" "$MNT"
ar=$(secs read_test "$MNT")
umount "$MNT"; sleep 0.5; drop_caches
"$BIN/argosfs-mount" "$WORK/root" "$MNT"
arand=$(random_reads "$MNT")
read -r ac as au <<<"$(small_files "$MNT")"
umount "$MNT"; sleep 0.5
mv "$WORK/d1" "$WORK/d1.away"; mv "$WORK/d4" "$WORK/d4.away"; drop_caches
"$BIN/argosfs-mount" "$WORK/root" "$MNT" -o ro
ad=$(secs read_test "$MNT")
umount "$MNT"; sleep 0.5
mv "$WORK/d1.away" "$WORK/d1"; mv "$WORK/d4.away" "$WORK/d4"

ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }
cat <<EOF2
| measure | plain dir | argosfs 4+2 | ratio | target |
| --- | --- | --- | --- | --- |
| sequential write ${SIZE_MIB} MiB + fsync (MB/s) | $(mbps "$pw") | $(mbps "$aw") | $(ratio "$pw" "$aw") | >= 0.57 (0.85 x plain / 1.5) |
| cold sequential read (MB/s) | $(mbps "$pr") | $(mbps "$ar") | $(ratio "$pr" "$ar") | >= 0.90 |
| cold random 4 KiB reads (/s) | ${prand%.*} | ${arand%.*} | $(ratio "$arand" "$prand") | >= 1.00 |
| degraded cold read, 2 of 6 disks gone (MB/s) | - | $(mbps "$ad") | $(ratio "$ar" "$ad") vs healthy | >= 0.70 |
| small files: creates/s | $pc | $ac | $(ratio "$ac" "$pc") | >= 5000/s |
| small files: stats/s | $ps | $as | $(ratio "$as" "$ps") | >= 80000/s |
| small files: unlinks/s | $pu | $au | $(ratio "$au" "$pu") | - |
EOF2
