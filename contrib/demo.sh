#!/usr/bin/env bash
# The main job on a fresh machine (as root, with /dev/fuse): build, make a demo volume on
# six directory-backed disks, exercise it through the library (including a degraded read
# with two disks hidden), then mount it and leave it mounted. Re-running reuses the volume.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${ARGOSFS_DEMO_DIR:-/tmp/argosfs-demo}
MNT=$DEMO/mnt
cargo build --release --locked --bins --examples
BIN=$PWD/target/release
mkdir -p "$DEMO" "$MNT"
if grep -q " $MNT fuse" /proc/mounts; then
  umount "$MNT"
  sleep 0.5
fi
# A demo volume left by an older build (another on-disk format) is made again.
if [ -f "$DEMO/root/superblock.json" ] && ! grep -q '"format_version": 3' "$DEMO/root/superblock.json"; then
  echo "The demo volume in $DEMO is of an older format; making it again."
  rm -rf "$DEMO/root" "$DEMO"/disk[0-5]
fi
if [ ! -f "$DEMO/root/superblock.json" ]; then
  disks=()
  for i in 0 1 2 3 4 5; do disks+=(--disk "$DEMO/disk$i"); done
  "$BIN/argosfs-mkfs" "$DEMO/root" "${disks[@]}" --layout 4+2 --compression zstd
fi
"$BIN/examples/library_demo" "$DEMO/root"
echo
echo "Degraded read: hiding two of six disks and reading again..."
mv "$DEMO/disk0" "$DEMO/disk0.away"; mv "$DEMO/disk3" "$DEMO/disk3.away"
restore() { mv "$DEMO/disk0.away" "$DEMO/disk0" 2>/dev/null || true; mv "$DEMO/disk3.away" "$DEMO/disk3" 2>/dev/null || true; }
trap restore EXIT
"$BIN/examples/library_demo" "$DEMO/root" verify 2>/dev/null | sed 's/^/  /'
restore
trap - EXIT
echo
"$BIN/argosfs-mount" "$DEMO/root" "$MNT"
cp README.md "$MNT/README.md"
echo "Mounted at $MNT:"
ls -l "$MNT" "$MNT/demo"
df -h "$MNT"
cmp README.md "$MNT/README.md" && echo "README.md copied in and read back identical."
echo "Unmount with: umount $MNT    (check it offline with: $BIN/argosfs-fsck $DEMO/root -n)"
