#!/usr/bin/env bash
# Mounted throughput of ArgosFS against the plain directory underneath, in one run on one
# machine: sequential 1 GiB write (1 MiB blocks, final fsync), cold sequential read,
# cold and page-cache random 4 KiB reads, degraded read with 2 of 6 disks gone,
# small-file create/stat/unlink. Every write and read figure is the median of RUNS runs
# (reads cold), the plain directory's and the mount's taken in turn, since a virtual
# disk's speed drifts between minutes. Prints a markdown table of figures and ratios (paste it into
# docs/PERFORMANCE.md).
#
# When bindfs(1) is installed (apt-get install bindfs) the same measures run through a
# bindfs mount of the plain directory too: a FUSE filesystem that stores nothing itself,
# so its column shows what the kernel's FUSE boundary alone costs on this machine. When
# gocryptfs is installed (apt-get install gocryptfs), through a gocryptfs mount as well
# (-xchacha: XChaCha20-Poly1305 as ArgosFS), the peer for ENCRYPT=1 (GOCRYPTFS=0 skips).
#
# Usage (as root, needs /dev/fuse): contrib/bench-mount.sh [WORKDIR]
# Knobs: SIZE_MIB (default 1024), SMALL_FILES (default 5000), FILE_BYTES (their size,
# default 4096: an everyday small file, above the inline limit), ENCRYPT=1 (the ArgosFS
# volume encrypted and zstd-compressed), SOURCE=text (the big file is the project's Rust
# sources over and over, which zstd shrinks, instead of random bytes), RANDOM_READS (cold,
# default 5000), WARM_READS (page cache, default 200000), RUNS (default 3), PASSTHROUGH=0
# (skip the bindfs column), RECORD=1 (also append the table, dated, to
# docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/argosfs-bench-mount}
SIZE_MIB=${SIZE_MIB:-1024}
SMALL_FILES=${SMALL_FILES:-5000}
FILE_BYTES=${FILE_BYTES:-4096}
ENCRYPT=${ENCRYPT:-0}
SOURCE=${SOURCE:-random}
RANDOM_READS=${RANDOM_READS:-5000}
WARM_READS=${WARM_READS:-200000}
RUNS=${RUNS:-3}
PASSTHROUGH=${PASSTHROUGH:-1}
if [ "$PASSTHROUGH" = 1 ] && ! command -v bindfs >/dev/null; then
  echo "# bindfs not installed: no FUSE passthrough column (apt-get install bindfs)" >&2
  PASSTHROUGH=0
fi
GOCRYPTFS=${GOCRYPTFS:-1}
if [ "$GOCRYPTFS" = 1 ] && ! command -v gocryptfs >/dev/null; then
  echo "# gocryptfs not installed: no gocryptfs column (apt-get install gocryptfs)" >&2
  GOCRYPTFS=0
fi
cargo build --release --locked --bins >/dev/null
BIN=$PWD/target/release
MNT=$WORK/mnt
REF=$WORK/passthrough
GOC=$WORK/gocryptfs
# unmount_volume: unmount, then wait until the mount process has let go of the volume
# (closing it commits and deletes freed shards, which can outlast a fixed pause)
unmount_volume() {
  umount "$MNT" || return
  if [ -e "$WORK/root/lock" ]; then flock -w 60 "$WORK/root/lock" true; fi
}
cleanup() {
  unmount_volume 2>/dev/null || true
  umount "$REF" 2>/dev/null || true
  umount "$GOC" 2>/dev/null || true
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT
cleanup
mkdir -p "$WORK/plain" "$MNT" "$REF" "$GOC"
if [ "$SOURCE" = text ]; then
  find lib tests bin -name '*.rs' -print0 | sort -z | xargs -0 cat > "$WORK/text.rs"
  : > "$WORK/source.bin"
  while [ "$(stat -c %s "$WORK/source.bin")" -lt $((SIZE_MIB << 20)) ]; do
    cat "$WORK/text.rs" >> "$WORK/source.bin"
  done
  truncate -s $((SIZE_MIB << 20)) "$WORK/source.bin"
else
  head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/source.bin"
fi

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# secs CMD...: run a command, print the seconds it took
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); awk "BEGIN {printf \"%.3f\", $t1 - $t0}"; }

write_test() { dd if="$WORK/source.bin" of="$1/big" bs=1M conv=fsync status=none; }
read_test() { dd if="$1/big" of=/dev/null bs=1M status=none; }

# random_reads DIR [COUNT]: 4 KiB preads at random offsets of DIR/big, per second
random_reads() {
  /usr/bin/python3 contrib/random-reads.py "$1/big" "${2:-$RANDOM_READS}"
}

# small_files DIR: SMALL_FILES files of FILE_BYTES in 20 directories: creates/s (open,
# write, close), creates/s counting a final sync(2) (the same durability as an fsynced
# tool), stats/s, unlinks/s
small_files() {
  /usr/bin/python3 - "$1/small" "$SMALL_FILES" "$FILE_BYTES" <<'PY'
import os, sys, time
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
dirs = [os.path.join(d, f"d{j:02d}") for j in range(20)]
for x in dirs:
    os.makedirs(x, exist_ok=True)
names = [os.path.join(dirs[i % 20], f"f{i:06d}") for i in range(n)]
data = os.urandom(size)
t = time.perf_counter()
for p in names:
    with open(p, "wb") as f:
        f.write(data)
create = n / (time.perf_counter() - t)
os.sync()
create_sync = n / (time.perf_counter() - t)
t = time.perf_counter()
for _ in range(4):
    for p in names:
        os.stat(p)
stat = 4 * n / (time.perf_counter() - t)
t = time.perf_counter()
for p in names:
    os.unlink(p)
unlink = n / (time.perf_counter() - t)
print(f"{create:.0f} {create_sync:.0f} {stat:.0f} {unlink:.0f}")
PY
}

mbps() { awk "BEGIN {if ($1 > 0) printf \"%.0f\", $SIZE_MIB * 1.048576 / $1; else printf \"-\"}"; }

# median: the middle of the numbers on stdin
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
mount_volume() { "$BIN/argosfs-mount" "$WORK/root" "$MNT" "$@"; }
# remount_cold [OPTIONS]: unmount, drop every cache, mount again
remount_cold() { unmount_volume; drop_caches; mount_volume "$@"; }

# through the FUSE passthrough too, when there is one: run_ref CMD DIR...
run_ref() { if [ "$PASSTHROUGH" = 1 ]; then "$@"; else echo 0; fi; }
# and through gocryptfs (XChaCha20-Poly1305, the encrypting FUSE peer): run_goc CMD DIR...
run_goc() { if [ "$GOCRYPTFS" = 1 ]; then "$@"; else echo 0; fi; }

echo "# sequential writes, $RUNS runs each, plain directory ($(df -T "$WORK" | awk 'NR==2 {print $2}')) and argosfs 4+2 in turn" >&2
disks=(); for i in 0 1 2 3 4 5; do disks+=(--disk "$WORK/d$i"); done
mkfs_options=(--layout 4+2 -q)
if [ "$ENCRYPT" = 1 ]; then
  export ARGOSFS_PASSPHRASE="bench passphrase"
  mkfs_options+=(--encrypt --compression zstd)
fi
"$BIN/argosfs-mkfs" "$WORK/root" "${disks[@]}" "${mkfs_options[@]}"
mount_volume
if [ "$PASSTHROUGH" = 1 ]; then
  # kernel_cache: keep file pages across opens, as the mount's FOPEN_KEEP_CACHE does
  mkdir -p "$WORK/passthrough-data"; bindfs -o kernel_cache "$WORK/passthrough-data" "$REF"
fi
if [ "$GOCRYPTFS" = 1 ]; then
  mkdir -p "$WORK/gocryptfs-cipher"
  gocryptfs -q -xchacha -init -extpass "echo bench" "$WORK/gocryptfs-cipher" >/dev/null
  gocryptfs -q -extpass "echo bench" "$WORK/gocryptfs-cipher" "$GOC"
fi
pw_runs=(); aw_runs=(); rw_runs=(); gw_runs=()
for run in $(seq "$RUNS"); do
  if [ "$run" -gt 1 ]; then rm -f "$WORK/plain/big" "$MNT/big" "$REF/big" "$GOC/big"; sync; fi
  pw_runs+=("$(secs write_test "$WORK/plain")")
  aw_runs+=("$(secs write_test "$MNT")")
  rw_runs+=("$(run_ref secs write_test "$REF")")
  gw_runs+=("$(run_goc secs write_test "$GOC")")
done
pw=$(printf '%s\n' "${pw_runs[@]}" | median); aw=$(printf '%s\n' "${aw_runs[@]}" | median)
rw=$(printf '%s\n' "${rw_runs[@]}" | median)
gw=$(printf '%s\n' "${gw_runs[@]}" | median)

echo "# cold sequential and random reads, $RUNS runs each, plain and argosfs in turn" >&2
pr_runs=(); ar_runs=(); rr_runs=(); prand_runs=(); arand_runs=(); rrand_runs=()
gr_runs=(); grand_runs=()
for _ in $(seq "$RUNS"); do
  drop_caches; pr_runs+=("$(secs read_test "$WORK/plain")")
  remount_cold; ar_runs+=("$(secs read_test "$MNT")")
  drop_caches; rr_runs+=("$(run_ref secs read_test "$REF")")
  drop_caches; prand_runs+=("$(random_reads "$WORK/plain")")
  remount_cold; arand_runs+=("$(random_reads "$MNT")")
  drop_caches; rrand_runs+=("$(run_ref random_reads "$REF")")
  drop_caches; gr_runs+=("$(run_goc secs read_test "$GOC")")
  drop_caches; grand_runs+=("$(run_goc random_reads "$GOC")")
done
pr=$(printf '%s\n' "${pr_runs[@]}" | median); ar=$(printf '%s\n' "${ar_runs[@]}" | median)
rr=$(printf '%s\n' "${rr_runs[@]}" | median)
prand=$(printf '%s\n' "${prand_runs[@]}" | median); arand=$(printf '%s\n' "${arand_runs[@]}" | median)
rrand=$(printf '%s\n' "${rrand_runs[@]}" | median)
gr=$(printf '%s\n' "${gr_runs[@]}" | median); grand=$(printf '%s\n' "${grand_runs[@]}" | median)

echo "# random reads of a file in the page cache ($WARM_READS each), $RUNS runs each" >&2
read_test "$WORK/plain"; read_test "$MNT"; run_ref read_test "$REF" >/dev/null
run_goc read_test "$GOC" >/dev/null
pwarm_runs=(); awarm_runs=(); rwarm_runs=(); gwarm_runs=()
for _ in $(seq "$RUNS"); do
  pwarm_runs+=("$(random_reads "$WORK/plain" "$WARM_READS")")
  awarm_runs+=("$(random_reads "$MNT" "$WARM_READS")")
  rwarm_runs+=("$(run_ref random_reads "$REF" "$WARM_READS")")
  gwarm_runs+=("$(run_goc random_reads "$GOC" "$WARM_READS")")
done
pwarm=$(printf '%s\n' "${pwarm_runs[@]}" | median); awarm=$(printf '%s\n' "${awarm_runs[@]}" | median)
rwarm=$(printf '%s\n' "${rwarm_runs[@]}" | median)
gwarm=$(printf '%s\n' "${gwarm_runs[@]}" | median)

echo "# small files" >&2
read -r pc pcs ps pu <<<"$(small_files "$WORK/plain")"
read -r ac acs as au <<<"$(small_files "$MNT")"
rc=0 rcs=0 rs=0 ru=0
if [ "$PASSTHROUGH" = 1 ]; then
  read -r rc rcs rs ru <<<"$(small_files "$REF")"
  umount "$REF"
fi
gc=0 gcs=0 gs=0 gu=0
if [ "$GOCRYPTFS" = 1 ]; then
  read -r gc gcs gs gu <<<"$(small_files "$GOC")"
  umount "$GOC"
fi

echo "# degraded reads, 2 of 6 disks gone, $RUNS runs" >&2
unmount_volume
mv "$WORK/d1" "$WORK/d1.away"; mv "$WORK/d4" "$WORK/d4.away"
mount_volume -o ro
ad_runs=()
for _ in $(seq "$RUNS"); do
  remount_cold -o ro; ad_runs+=("$(secs read_test "$MNT")")
done
ad=$(printf '%s\n' "${ad_runs[@]}" | median)
unmount_volume
mv "$WORK/d1.away" "$WORK/d1"; mv "$WORK/d4.away" "$WORK/d4"

ratio() { awk "BEGIN {if ($2 > 0) printf \"%.2f\", $1 / $2; else printf \"-\"}"; }
# ref FIGURE RATIO: the passthrough's two cells, or dashes without it
ref() { if [ "$PASSTHROUGH" = 1 ]; then echo "$1 | $2"; else echo "- | -"; fi; }
# goc FIGURE RATIO: gocryptfs's two cells
goc() { if [ "$GOCRYPTFS" = 1 ]; then echo "$1 | $2"; else echo "- | -"; fi; }
kind="argosfs 4+2"; [ "$ENCRYPT" = 1 ] && kind="argosfs 4+2 zstd+encrypted"
[ "$SOURCE" = text ] && kind="$kind, text file"
table() {
cat <<EOF2
| measure | plain dir | $kind | ratio | FUSE passthrough (bindfs) | its ratio | gocryptfs | its ratio | target |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| sequential write ${SIZE_MIB} MiB + fsync (MB/s, median of $RUNS) | $(mbps "$pw") | $(mbps "$aw") | $(ratio "$pw" "$aw") | $(ref "$(mbps "$rw")" "$(ratio "$pw" "$rw")") | $(goc "$(mbps "$gw")" "$(ratio "$pw" "$gw")") | >= 0.57 (0.85 x plain / 1.5) |
| cold sequential read (MB/s, median of $RUNS) | $(mbps "$pr") | $(mbps "$ar") | $(ratio "$pr" "$ar") | $(ref "$(mbps "$rr")" "$(ratio "$pr" "$rr")") | $(goc "$(mbps "$gr")" "$(ratio "$pr" "$gr")") | >= 0.90 |
| cold random 4 KiB reads (/s, median of $RUNS) | ${prand%.*} | ${arand%.*} | $(ratio "$arand" "$prand") | $(ref "${rrand%.*}" "$(ratio "$rrand" "$prand")") | $(goc "${grand%.*}" "$(ratio "$grand" "$prand")") | >= 1.00 |
| random 4 KiB reads, file in the page cache (/s, median of $RUNS) | ${pwarm%.*} | ${awarm%.*} | $(ratio "$awarm" "$pwarm") | $(ref "${rwarm%.*}" "$(ratio "$rwarm" "$pwarm")") | $(goc "${gwarm%.*}" "$(ratio "$gwarm" "$pwarm")") | >= 1.00 |
| degraded cold read, 2 of 6 disks gone (MB/s, median of $RUNS) | - | $(mbps "$ad") | $(ratio "$ar" "$ad") vs healthy | - | - | - | - | >= 0.70 |
| small files of $FILE_BYTES bytes in 20 dirs: creates/s | $pc | $ac | $(ratio "$ac" "$pc") | $(ref "$rc" "$(ratio "$rc" "$pc")") | $(goc "$gc" "$(ratio "$gc" "$pc")") | >= 1.5 x passthrough |
| small files: creates/s with a final sync | $pcs | $acs | $(ratio "$acs" "$pcs") | $(ref "$rcs" "$(ratio "$rcs" "$pcs")") | $(goc "$gcs" "$(ratio "$gcs" "$pcs")") | >= 1.5 x passthrough |
| small files: stats/s | $ps | $as | $(ratio "$as" "$ps") | $(ref "$rs" "$(ratio "$rs" "$ps")") | $(goc "$gs" "$(ratio "$gs" "$ps")") | >= 80000/s |
| small files: unlinks/s | $pu | $au | $(ratio "$au" "$pu") | $(ref "$ru" "$(ratio "$ru" "$pu")") | $(goc "$gu" "$(ratio "$gu" "$pu")") | - |
EOF2
}
table
if [ "${RECORD:-0}" = 1 ]; then
  {
    printf '\n#### %s, %s, medians of %s\n\n' "$(date -u '+%d %b %Y %H:%M UTC')" "$(uname -r)" "$RUNS"
    table
  } >> docs/PERFORMANCE.md
  echo "# recorded in docs/PERFORMANCE.md" >&2
fi
