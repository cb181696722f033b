#!/usr/bin/env python3
"""4 KiB preads at random 4 KiB-aligned offsets of FILE, one at a time; prints reads/s.

Usage: contrib/random-reads.py FILE COUNT
The offsets come from a fixed seed, so every run and every target reads the same places.
The bench scripts in contrib/ call this; drop the page cache first for cold reads.
"""
import os
import random
import sys
import time

fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
rng = random.Random(7)
n = int(sys.argv[2])
offsets = [rng.randrange(0, size // 4096) * 4096 for _ in range(n)]
t = time.perf_counter()
for off in offsets:
    os.pread(fd, 4096, off)
print(f"{n / (time.perf_counter() - t):.0f}")
