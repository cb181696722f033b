#!/usr/bin/env bash
# Maintenance throughput of ArgosFS, in one run on one machine (issue 10's figures):
#   - scrub of a whole volume (offline, no rate limit) against reading the same shard
#     files with cat, both from a cold cache;
#   - scrub with --rate: the rate it held against the one asked for;
#   - heal of one lost disk's shards (a replaced, empty directory) against the scrub,
#     in stripes per second (both touch every stripe once);
#   - a foreground sequential read through the mount, alone and while the mount scrubs
#     and heals in the background at their default rate.
# Prints a markdown table (paste it into docs/PERFORMANCE.md).
#
# Usage (as root, needs /dev/fuse): contrib/bench-maint.sh [WORKDIR]
# Knobs: SIZE_MIB (volume data, default 1024), RATE_MIB (for the --rate check, default
# 100), ENCRYPT=1 (an encrypted, compressed volume instead of a plain one).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/argosfs-bench-maint}
SIZE_MIB=${SIZE_MIB:-1024}
RATE_MIB=${RATE_MIB:-100}
ENCRYPT=${ENCRYPT:-0}
cargo build --release --locked --bins >/dev/null
BIN=$PWD/target/release
ROOT=$WORK/root
MNT=$WORK/mnt
cleanup() {
  umount "$MNT" 2>/dev/null || true
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT
cleanup
mkdir -p "$MNT"

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
# elapsed T0: seconds since T0
elapsed() { awk "BEGIN {printf \"%.3f\", $(now) - $1}"; }
# rate BYTES SECONDS: MB/s
rate() { awk "BEGIN {printf \"%.0f\", $1 / $2 / 1e6}"; }
ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }
json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

options=(--layout 4+2 -q)
if [ "$ENCRYPT" = 1 ]; then
  export ARGOSFS_PASSPHRASE="bench passphrase"
  options+=(--compression zstd --encrypt)
fi
disks=(); for i in 0 1 2 3 4 5; do disks+=(--disk "$WORK/d$i"); done
"$BIN/argosfs-mkfs" "$ROOT" "${disks[@]}" "${options[@]}"
"$BIN/argosfs-mount" "$ROOT" "$MNT"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$MNT/big"
sync "$MNT/big"
umount "$MNT"; sleep 0.5

shard_bytes=$(find "$WORK"/d*/shards -type f -printf '%s\n' | awk '{s += $1} END {print s}')
echo "# $SIZE_MIB MiB in a 4+2 volume: $shard_bytes bytes of shard files" >&2

drop_caches
t0=$(now); find "$WORK"/d*/shards -type f -print0 | xargs -0 cat > /dev/null; cat_s=$(elapsed "$t0")
drop_caches
t0=$(now); "$BIN/argosfs-scrub" "$ROOT" --json > "$WORK/scrub.json"; scrub_s=$(elapsed "$t0")
stripes=$(json_field '["stripes_verified"]' < "$WORK/scrub.json")
scrub_read=$(json_field '["bytes_read"]' < "$WORK/scrub.json")
echo "# cat ${cat_s}s, scrub ${scrub_s}s ($stripes stripes)" >&2

drop_caches
t0=$(now); "$BIN/argosfs-scrub" "$ROOT" --rate "$RATE_MIB" --json > "$WORK/rated.json"; rated_s=$(elapsed "$t0")
rated_read=$(json_field '["bytes_read"]' < "$WORK/rated.json")
held=$(awk "BEGIN {printf \"%.1f\", $rated_read / $rated_s / 1048576}")
echo "# --rate $RATE_MIB: ${held} MiB/s held" >&2

# One disk lost: a new empty directory in its place, then heal.
mv "$WORK/d2" "$WORK/d2-lost"
"$BIN/argosfs-disk" "$ROOT" replace d2 "$WORK/d2-new" --no-heal -q || true
drop_caches
t0=$(now); "$BIN/argosfs-disk" "$ROOT" heal --json > "$WORK/heal.json"; heal_s=$(elapsed "$t0")
healed=$(json_field '["stripes_done"]' < "$WORK/heal.json")
heal_written=$(json_field '["bytes_written"]' < "$WORK/heal.json")
echo "# heal ${heal_s}s ($healed stripes, $heal_written bytes written)" >&2

# Foreground sequential read through the mount: alone, during a scrub, during a heal.
fg_read() { drop_caches; local t; t=$(now); dd if="$MNT/big" of=/dev/null bs=1M status=none; rate $((SIZE_MIB << 20)) "$(elapsed "$t")"; }
"$BIN/argosfs-mount" "$ROOT" "$MNT"
alone=$(fg_read)
"$BIN/argosfs-scrub" "$ROOT" --background -q
sleep 0.5
during_scrub=$(fg_read)
"$BIN/argosfs-disk" "$ROOT" stop -q || true
sleep 1
# The heal is compared with the same degraded volume without it (reads rebuild the lost
# disk's shards from parity either way).
mv "$WORK/d2-new" "$WORK/d2-lost2"
"$BIN/argosfs-disk" "$ROOT" replace d2 "$WORK/d2-newer" --no-heal -q || true
degraded=$(fg_read)
"$BIN/argosfs-disk" "$ROOT" heal --background -q
sleep 0.5
during_heal=$(fg_read)
"$BIN/argosfs-disk" "$ROOT" stop -q || true
sleep 1
umount "$MNT"

kind=plain; [ "$ENCRYPT" = 1 ] && kind="encrypted, zstd"
cat <<EOF
| measure ($SIZE_MIB MiB, 4+2, $kind, $(nproc) cores) | figure | ratio | goal |
| --- | --- | --- | --- |
| cat of every shard file, cold | $(rate "$shard_bytes" "$cat_s") MB/s | 1.00 | |
| scrub, cold, no limit | $(rate "$scrub_read" "$scrub_s") MB/s, $(awk "BEGIN {printf \"%.0f\", $stripes / $scrub_s}") stripes/s | $(ratio "$cat_s" "$scrub_s") of cat | >= 0.7 |
| scrub --rate $RATE_MIB | $held MiB/s | $(ratio "$held" "$RATE_MIB") of the rate | 0.9-1.1 |
| heal of one lost disk (into an empty directory) | $(awk "BEGIN {printf \"%.0f\", $healed / $heal_s}") stripes/s, $(rate "$heal_written" "$heal_s") MB/s written | $(ratio "$(awk "BEGIN {print $healed / $heal_s}")" "$(awk "BEGIN {print $stripes / $scrub_s}")") of scrub | >= 0.5 |
| sequential read through the mount, alone | $alone MB/s | 1.00 | |
| ... while the mount scrubs (default rate) | $during_scrub MB/s | $(ratio "$during_scrub" "$alone") | >= 0.7 |
| ... one disk replaced by an empty directory, no heal (reads rebuild from parity) | $degraded MB/s | 1.00 | |
| ... the same while the mount heals (default rate) | $during_heal MB/s | $(ratio "$during_heal" "$degraded") of the degraded read | >= 0.7 |
EOF
