#!/usr/bin/env bash
# Round trip of a large real tree: imports SOURCE (default /usr, only read) into a fresh
# 4+2 volume, exports it again with --preserve-metadata, and compares the copy with the
# source: every lstat field a copy can keep (type, mode, uid, gid, size, atime and mtime
# in nanoseconds, rdev, nlink and the hard link grouping), every xattr, symlink targets,
# contents (SHA-256) and holes (each hole of the source must be a hole of the copy; the
# copy may have more, because export writes all-zero 4 KiB blocks as holes). Prints the
# files/s and MB/s of both directions. Too slow for CI; run it by hand, as root.
#
# usage: contrib/import-usr-roundtrip.sh [SOURCE]
# env:   ARGOSFS_ROUNDTRIP_DIR  work directory (default: a new one under /var/tmp); needs
#                               about 2.5 times the size of SOURCE; removed at the end
#                               unless ARGOSFS_KEEP=1
#        ARGOSFS_BIN_DIR        take the argosfs-* programs from here instead of building
#                               release ones
#        ARGOSFS_MKFS_ARGS      extra argosfs-mkfs options (e.g. "--compression zstd")
#
# Metadata of the source is recorded before the import, without touching any atime
# (directories are listed and files read through O_NOATIME descriptors; symlinks are
# read only at the end). An atime that differs because another process read a source
# file during the run (the source atime moved since it was recorded) is counted and
# shown, but is not a failure; so is a link count that includes names outside SOURCE.
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE=${1:-/usr}
[ "$(id -u)" = 0 ] || { echo "run as root (devices, owners, trusted.* xattrs)" >&2; exit 2; }
[ -d "$SOURCE" ] || { echo "$SOURCE is not a directory" >&2; exit 2; }
if [ -n "${ARGOSFS_BIN_DIR:-}" ]; then
  BIN=$ARGOSFS_BIN_DIR
else
  cargo build --release --locked --bins
  BIN=${CARGO_TARGET_DIR:-target}/release
fi
WORK=${ARGOSFS_ROUNDTRIP_DIR:-$(mktemp -d /var/tmp/argosfs-roundtrip.XXXXXX)}
mkdir -p "$WORK"
if [ "${ARGOSFS_KEEP:-0}" != 1 ]; then
  trap 'rm -rf "$WORK"' EXIT
fi

cat > "$WORK/tree.py" <<'PY'
import hashlib, os, pickle, stat, sys

NOATIME = getattr(os, "O_NOATIME", 0)

def opendir(path, parent=None):
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | NOATIME
    try:
        return os.open(path, flags, dir_fd=parent)
    except PermissionError:
        return os.open(path, flags & ~NOATIME, dir_fd=parent)

def xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in names:
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            pass
    return out

def snapshot(root):
    """rel path (bytes) -> metadata; children listed through O_NOATIME descriptors,
    each entry stat'ed before it is listed."""
    root = os.fsencode(root)
    meta, inode = {}, {}
    def record(rel, path, st):
        is_dir = stat.S_ISDIR(st.st_mode)
        meta[rel] = (st.st_mode, st.st_uid, st.st_gid,
                     None if is_dir else st.st_size,
                     st.st_atime_ns, st.st_mtime_ns, st.st_rdev,
                     0 if is_dir else st.st_nlink, xattrs(path))
        inode[rel] = (st.st_dev, st.st_ino)
    top = os.stat(root)
    record(b"", root, top)
    stack = [(b"", opendir(root))]
    while stack:
        rel, fd = stack.pop()
        names = sorted(os.fsencode(n) for n in os.listdir(fd))
        for name in names:
            child_rel = rel + b"/" + name
            path = root + child_rel
            st = os.lstat(name, dir_fd=fd)
            record(child_rel, path, st)
            # Like import --one-file-system: a mount point is kept, not entered.
            if stat.S_ISDIR(st.st_mode) and st.st_dev == top.st_dev:
                try:
                    stack.append((child_rel, opendir(name, fd)))
                except OSError as e:
                    print(f"cannot list {path!r}: {e}", file=sys.stderr)
        os.close(fd)
    return meta, inode

def groups(inode):
    by = {}
    for rel, key in inode.items():
        by.setdefault(key, []).append(rel)
    return {rel: tuple(sorted(by[key])) for rel, key in inode.items()}

def regions(fd, size):
    out, off = [], 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, end))
        off = end
    return out

def holes(fd, size):
    out, prev = [], 0
    for start, end in regions(fd, size):
        if start > prev:
            out.append((prev, start))
        prev = end
    if prev < size:
        out.append((prev, size))
    return out

def covered(hole, others):
    return any(s <= hole[0] and hole[1] <= e for s, e in others)

def digest(fd):
    h = hashlib.sha256()
    while True:
        block = os.read(fd, 1 << 20)
        if not block:
            return h.hexdigest()
        h.update(block)

FIELDS = ("mode", "uid", "gid", "size", "atime_ns", "mtime_ns", "rdev", "nlink", "xattrs")

def compare(before_file, source, copy):
    with open(before_file, "rb") as f:
        before, before_inode = pickle.load(f)
    after, after_inode = snapshot(copy)
    source, copy = os.fsencode(source), os.fsencode(copy)
    gb, ga = groups(before_inode), groups(after_inode)
    bad, touched, outside = [], [], []
    for rel in sorted(set(before) | set(after)):
        if rel not in after:
            bad.append(f"{rel!r}: missing in the copy"); continue
        if rel not in before:
            bad.append(f"{rel!r}: not in the source"); continue
        for i, field in enumerate(FIELDS):
            if before[rel][i] == after[rel][i]:
                continue
            if field == "atime_ns":
                now = os.lstat(source + rel).st_atime_ns
                if now != before[rel][i]:
                    touched.append(rel); continue
            if field == "nlink" and before[rel][i] > len(gb[rel]) == after[rel][i]:
                outside.append(rel); continue
            bad.append(f"{rel!r}: {field} {before[rel][i]!r} != {after[rel][i]!r}")
    for rel in gb:
        if rel in ga and gb[rel] != ga[rel]:
            bad.append(f"{rel!r}: hard links {gb[rel]!r} != {ga[rel]!r}")
    files = bytes_ = 0
    for rel, m in before.items():
        if rel not in after:
            continue
        mode = m[0]
        if stat.S_ISLNK(mode):
            if os.readlink(source + rel) != os.readlink(copy + rel):
                bad.append(f"{rel!r}: symlink target differs")
        elif stat.S_ISREG(mode):
            a = os.open(source + rel, os.O_RDONLY | NOATIME)
            b = os.open(copy + rel, os.O_RDONLY | NOATIME)
            try:
                if digest(a) != digest(b):
                    bad.append(f"{rel!r}: contents differ")
                copy_holes = holes(b, m[3])
                for hole in holes(a, m[3]):
                    if not covered(hole, copy_holes):
                        bad.append(f"{rel!r}: hole {hole} of the source is data in the copy")
            finally:
                os.close(a); os.close(b)
            files += 1; bytes_ += m[3]
    print(f"compared {len(before)} entries ({files} files, {bytes_ / 1e6:.1f} MB): "
          f"{len(bad)} differences, {len(touched)} atimes moved by other readers of the source, "
          f"{len(outside)} link counts that include names outside the tree")
    for line in bad[:50]:
        print("  " + line)
    for rel in touched[:5]:
        print(f"  atime touched during the run: {rel!r}")
    for rel in outside[:5]:
        print(f"  hard linked from outside the tree: {rel!r}")
    return 1 if bad else 0

def rate(jsonl):
    import json
    with open(jsonl) as f:
        d = [json.loads(line) for line in f][-1]["data"]
    print("%s: %d entries, %.1f MB, %d errors in %.1f s: %.0f files/s, %.1f MB/s" % (
        d["command"], d["entries"], d["bytes"] / 1e6, d["errors"], d["seconds"],
        d["files_per_second"], d["mb_per_second"]))

if __name__ == "__main__":
    if sys.argv[1] == "rate":
        rate(sys.argv[2])
    elif sys.argv[1] == "snapshot":
        with open(sys.argv[3], "wb") as f:
            pickle.dump(snapshot(sys.argv[2]), f)
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3], sys.argv[4]))
PY

rate() { python3 "$WORK/tree.py" rate "$1"; }

echo "source: $SOURCE ($(du -sh --one-file-system "$SOURCE" 2>/dev/null | cut -f1)); work: $WORK"
python3 "$WORK/tree.py" snapshot "$SOURCE" "$WORK/before.pickle"
disks=()
for i in 0 1 2 3 4 5; do disks+=(--disk "$WORK/disk$i"); done
# shellcheck disable=SC2086
"$BIN/argosfs-mkfs" "$WORK/root" "${disks[@]}" --layout 4+2 ${ARGOSFS_MKFS_ARGS:-} --quiet
status=0
"$BIN/argosfs-import" "$WORK/root" "$SOURCE" --one-file-system --json > "$WORK/import.jsonl" || status=$?
rate "$WORK/import.jsonl"
"$BIN/argosfs-export" "$WORK/root" "$WORK/export" --preserve-metadata --json > "$WORK/export.jsonl" || status=$?
rate "$WORK/export.jsonl"
grep '"type":"error"' "$WORK/import.jsonl" "$WORK/export.jsonl" | head -20 || true
python3 "$WORK/tree.py" compare "$WORK/before.pickle" "$SOURCE" "$WORK/export" || status=$?
exit "$status"
