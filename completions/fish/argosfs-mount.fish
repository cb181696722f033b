complete -c argosfs-mount -s o -d 'Mount options, comma separated: ro, rw, allow_other, allow_root, dev, nodev, suid, nosuid, exec, noexec, atime, noatime, sync, async, dirsync, passphrase_file=PATH, commit_interval=SECONDS, threads=N, fsname=NAME, min_shards=N, metrics=ADDR:PORT (serve Prometheus metrics at http://ADDR:PORT/metrics), cache_size=SIZE (RAM cache of decoded stripes, default 64M, 0 turns it off), l2_cache=PATH (a persistent cache of stored stripes in directory PATH, e.g. on an SSD), l2_cache_size=SIZE (its bound, default 1G); SIZE in bytes or with a K, M, G or T suffix (powers of 1024); direct_io (O_DIRECT shard I/O on the disks; not FUSE\'s direct_io), io_uring (shard I/O through io_uring, a stripe\'s shards in one submission); fstab-only words (defaults, auto, noauto, nofail, user, _netdev, x-*) are accepted and ignored' -r
complete -c argosfs-mount -s f -l foreground -d 'Stay in the foreground (logs to stderr)'
complete -c argosfs-mount -l passphrase-stdin -d 'Read the passphrase of an encrypted volume from standard input (one line)'
complete -c argosfs-mount -l notify-ready -d 'Print READY on stdout once the mount is live, then detach stdio (used by the background launcher)'
complete -c argosfs-mount -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-mount -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-mount -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-mount -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-mount -s V -l version -d 'Print version'
