# fsx-style random operation test, run by tests/mount.rs against a mounted volume.
# Usage: fsx.py DATA_FILE MODEL_FILE NOPS SEED
# The model of the file is kept in memory and saved to MODEL_FILE (outside the mount) at
# the end, so a later run checks the same file against it first. Every read is checked
# against the model; a mismatch prints the first differing offset and exits 1.
import mmap
import os
import random
import sys

path, model_path, nops, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
MAXLEN = 1 << 20

if os.path.exists(path) and os.path.exists(model_path):
    with open(model_path, "rb") as f:
        model = bytearray(f.read())
else:
    model = bytearray()
    open(path, "wb").close()

fd = os.open(path, os.O_RDWR)


def check(offset, got, what):
    want = bytes(model[offset:offset + len(got)])
    if got != want:
        for i, (a, b) in enumerate(zip(got, want)):
            if a != b:
                print(f"fsx: MISMATCH in {what} at offset {offset + i}: got {a} want {b}")
                break
        else:
            print(f"fsx: MISMATCH in {what}: length {len(got)} vs {len(want)}")
        sys.exit(1)


def full_check(what):
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while True:
        piece = os.read(fd, 1 << 20)
        if not piece:
            break
        data += piece
    if len(data) != len(model):
        print(f"fsx: SIZE MISMATCH after {what}: {len(data)} vs {len(model)}")
        sys.exit(1)
    check(0, data, what)


full_check("start")
for step in range(nops):
    op = rng.choice(["write", "write", "write", "read", "read", "truncate", "mapread", "mapwrite", "fsync", "reopen"])
    size = len(model)
    if op == "write":
        off = rng.randrange(0, MAXLEN)
        n = rng.randrange(1, 70000)
        data = rng.randbytes(n) if rng.random() < 0.5 else bytes([rng.randrange(256)]) * n
        os.pwrite(fd, data, off)
        if off + n > len(model):
            model.extend(b"\0" * (off + n - len(model)))
        model[off:off + n] = data
    elif op == "read":
        off = rng.randrange(0, max(size, 1) + 1000)
        n = rng.randrange(0, 100000)
        got = os.pread(fd, n, off)
        check(off, got, f"read {n}@{off} (step {step})")
    elif op == "truncate":
        new = rng.randrange(0, MAXLEN)
        os.ftruncate(fd, new)
        if new < len(model):
            del model[new:]
        else:
            model.extend(b"\0" * (new - len(model)))
    elif op in ("mapread", "mapwrite") and size > 0:
        with mmap.mmap(fd, size) as mm:
            off = rng.randrange(0, size)
            n = rng.randrange(1, min(size - off, 50000) + 1)
            if op == "mapread":
                check(off, mm[off:off + n], f"mmap read {n}@{off} (step {step})")
            else:
                data = rng.randbytes(n)
                mm[off:off + n] = data
                model[off:off + n] = data
                mm.flush()
    elif op == "fsync":
        os.fsync(fd)
    elif op == "reopen":
        os.close(fd)
        fd = os.open(path, os.O_RDWR)
full_check("end")
os.fsync(fd)
os.close(fd)
with open(model_path, "wb") as f:
    f.write(model)
print(f"fsx: ok ({nops} ops, final size {len(model)})")
