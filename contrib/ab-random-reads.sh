#!/usr/bin/env bash
# Cold random 4 KiB reads through the mount, builds against each other, alternating:
# each build (a source tree with its release binaries built, `cargo build --release
# --bins`) gets its own encrypted, zstd-compressed 4+2 volume holding a 256 MiB file of
# random bytes and one of text (the project's Rust sources over and over); every run
# mounts, drops the page cache, reads READS random 4 KiB blocks (the same offsets every
# run, as bench-mount.sh's random_reads) and unmounts. The plain directory is read in
# turn. WARM=1: the page cache is not dropped, so the shard files stay cached from the
# runs before and only the mount's own caches start empty (decode-bound rather than
# disk-bound). Prints one line per round and file: reads per second of each.
#
# Usage (as root, needs /dev/fuse): contrib/ab-random-reads.sh WORKDIR SRCTREE NAME=TREE...
# Knobs: ROUNDS (default 5), READS (default 2000), WARM=1.
# Used to choose the frame size of compressed and encrypted stripes (docs/PERFORMANCE.md,
# "Frame size (issue 12)").
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$1; SRC=$2; shift 2
ROUNDS=${ROUNDS:-5}; READS=${READS:-2000}; WARM=${WARM:-0}
export ARGOSFS_PASSPHRASE="bench passphrase"
rm -rf "$WORK"; mkdir -p "$WORK/plain"
head -c $((256 << 20)) /dev/urandom > "$WORK/plain/random"
find "$SRC/lib" "$SRC/tests" "$SRC/bin" -name '*.rs' -print0 | sort -z | xargs -0 cat > "$WORK/text.rs"
: > "$WORK/plain/text"
while [ "$(stat -c %s "$WORK/plain/text")" -lt $((256 << 20)) ]; do cat "$WORK/text.rs" >> "$WORK/plain/text"; done
truncate -s $((256 << 20)) "$WORK/plain/text"
drop_caches() { sync; if [ "$WARM" = 0 ]; then echo 3 > /proc/sys/vm/drop_caches; fi; }
random_reads() {
  /usr/bin/python3 "$HERE/random-reads.py" "$1" "$READS"
}
unmount() { umount "$1/mnt"; flock -w 60 "$1/root/lock" true; }
names=()
for spec in "$@"; do
  name=${spec%%=*}; tree=${spec#*=}; names+=("$name")
  v=$WORK/$name; mkdir -p "$v/mnt"
  disks=(); for i in 0 1 2 3 4 5; do disks+=(--disk "$v/d$i"); done
  "$tree/target/release/argosfs-mkfs" "$v/root" "${disks[@]}" --layout 4+2 -q --encrypt --compression zstd
  ln -s "$tree/target/release/argosfs-mount" "$v/argosfs-mount"
  "$v/argosfs-mount" "$v/root" "$v/mnt"
  cp "$WORK/plain/random" "$WORK/plain/text" "$v/mnt/"; sync
  unmount "$v"
done
for round in $(seq "$ROUNDS"); do
  for file in random text; do
    drop_caches; line="round $round $file plain=$(random_reads "$WORK/plain/$file")"
    [ "$WARM" = 1 ] && line="$line (warm)"
    for name in "${names[@]}"; do
      v=$WORK/$name
      "$v/argosfs-mount" "$v/root" "$v/mnt"; drop_caches
      line="$line $name=$(random_reads "$v/mnt/$file")"
      unmount "$v"
    done
    echo "$line"
  done
done
rm -rf "$WORK"
