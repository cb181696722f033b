#!/usr/bin/env bash
# The main job on a fresh machine: build, make a demo volume on directory-backed disks,
# and use it. Re-running it reuses the volume.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${ARGOSFS_DEMO_DIR:-/tmp/argosfs-demo}
cargo build --release --locked --bins --examples
BIN=target/release
mkdir -p "$DEMO"
if [ ! -f "$DEMO/root/superblock.json" ]; then
  disks=()
  for i in 0 1 2 3 4 5; do disks+=(--disk "$DEMO/disk$i"); done
  "$BIN/argosfs-mkfs" "$DEMO/root" "${disks[@]}" --layout 4+2 --compression zstd
fi
"$BIN/examples/library_demo" "$DEMO/root"
echo
echo "Degraded read: hiding two of six disks and reading again..."
mv "$DEMO/disk0" "$DEMO/disk0.away"; mv "$DEMO/disk3" "$DEMO/disk3.away"
trap 'mv "$DEMO/disk0.away" "$DEMO/disk0" 2>/dev/null || true; mv "$DEMO/disk3.away" "$DEMO/disk3" 2>/dev/null || true' EXIT
"$BIN/examples/library_demo" "$DEMO/root" verify 2>/dev/null | sed 's/^/  /'
