# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_argosfs_global_optspecs
    string join \n h/help V/version
end

function __fish_argosfs_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_argosfs_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_argosfs_using_subcommand
    set -l cmd (__fish_argosfs_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c argosfs -n "__fish_argosfs_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_needs_command" -s V -l version -d 'Print version'
complete -c argosfs -n "__fish_argosfs_needs_command" -f -a "mkfs" -d 'Create an ArgosFS volume'
complete -c argosfs -n "__fish_argosfs_needs_command" -f -a "mount" -d 'Mount an ArgosFS volume'
complete -c argosfs -n "__fish_argosfs_needs_command" -f -a "fsck" -d 'Check and repair an ArgosFS volume offline'
complete -c argosfs -n "__fish_argosfs_needs_command" -f -a "verify-journal" -d 'Verify the metadata snapshots and journal of an ArgosFS volume'
complete -c argosfs -n "__fish_argosfs_needs_command" -f -a "import" -d 'Copy a directory tree into an ArgosFS volume'
complete -c argosfs -n "__fish_argosfs_needs_command" -f -a "export" -d 'Copy a directory of an ArgosFS volume out to the host'
complete -c argosfs -n "__fish_argosfs_needs_command" -f -a "disk" -d 'List and change the disks of an ArgosFS volume'
complete -c argosfs -n "__fish_argosfs_needs_command" -f -a "scrub" -d 'Verify every shard of an ArgosFS volume, and repair what is bad'
complete -c argosfs -n "__fish_argosfs_needs_command" -f -a "autopilot" -d 'Watch an ArgosFS volume\'s disks and repair, drain or rebalance conservatively'
complete -c argosfs -n "__fish_argosfs_needs_command" -f -a "health" -d 'Report the health of an ArgosFS volume and of each of its disks'
complete -c argosfs -n "__fish_argosfs_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -l disk -d 'A disk directory, with optional settings: PATH[:weight=W,class=C,domain=D,numa=N]. A relative PATH is relative to the current directory, as ROOT is; a disk inside ROOT is recorded relative to ROOT, so ROOT can be moved with it. Repeat once per disk' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -l layout -d 'Data and parity shards per stripe, e.g. 4+2 (default: 4+2 with six or more disks, else one parity shard)' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -l min-shards -d 'Fewest shards a stripe may be written with while disks are missing (K..=K+M; default K+1, or K without parity). Below it writes fail with EIO. K alone means a stripe written then has no redundancy until healed' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -l stripe-size -d 'Plaintext bytes per stripe (4K to 64M)' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -l compression -d 'Compression of stripes: none, zstd, or zstd:LEVEL (1-19)' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -l passphrase-file -d 'Read the passphrase from this file (trailing newline ignored)' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -l inline-max -d 'Files up to this size are stored inline in the metadata (0 disables; encrypted with the metadata on encrypted volumes)' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -l encrypt -d 'Encrypt data and metadata (names, symlink targets, xattrs, owners, modes, times, sizes) with XChaCha20-Poly1305 and a key derived from a passphrase (--passphrase-file, ARGOSFS_PASSPHRASE, or a prompt)'
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -l force -d 'Overwrite an existing volume or disk (destroys its data)'
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -l insecure-fast-kdf -d 'Cheapest key derivation (for tests and demos only; weak against guessing)'
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand mkfs" -s V -l version -d 'Print version'
complete -c argosfs -n "__fish_argosfs_using_subcommand mount" -s o -d 'Mount options, comma separated: ro, rw, allow_other, allow_root, dev, nodev, suid, nosuid, exec, noexec, atime, noatime, sync, async, dirsync, passphrase_file=PATH, commit_interval=SECONDS, threads=N, fsname=NAME, min_shards=N, metrics=ADDR:PORT (serve Prometheus metrics at http://ADDR:PORT/metrics), cache_size=SIZE (RAM cache of decoded stripes, default 64M, 0 turns it off), l2_cache=PATH (a persistent cache of stored stripes in directory PATH, e.g. on an SSD), l2_cache_size=SIZE (its bound, default 1G); SIZE in bytes or with a K, M, G or T suffix (powers of 1024); direct_io (O_DIRECT shard I/O on the disks; not FUSE\'s direct_io), io_uring (shard I/O through io_uring, a stripe\'s shards in one submission); fstab-only words (defaults, auto, noauto, nofail, user, _netdev, x-*) are accepted and ignored' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand mount" -s f -l foreground -d 'Stay in the foreground (logs to stderr)'
complete -c argosfs -n "__fish_argosfs_using_subcommand mount" -l passphrase-stdin -d 'Read the passphrase of an encrypted volume from standard input (one line)'
complete -c argosfs -n "__fish_argosfs_using_subcommand mount" -l notify-ready -d 'Print READY on stdout once the mount is live, then detach stdio (used by the background launcher)'
complete -c argosfs -n "__fish_argosfs_using_subcommand mount" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand mount" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand mount" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand mount" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand mount" -s V -l version -d 'Print version'
complete -c argosfs -n "__fish_argosfs_using_subcommand fsck" -l orphan-grace -d 'Unreferenced shard objects younger than this are kept' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand fsck" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE; with neither, only the structure is checked)' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand fsck" -s n -l no-change -d 'Check only and change nothing (the default without --repair or --remove-orphans)'
complete -c argosfs -n "__fish_argosfs_using_subcommand fsck" -l repair -d 'Repair: rebuild missing or corrupt shards from the others, fix link counts and the directory tree, move unreachable inodes to /lost+found, rewrite damaged snapshots, cut a torn journal tail, free inodes left unlinked-but-open, clear group and other permission bits in the backing store'
complete -c argosfs -n "__fish_argosfs_using_subcommand fsck" -l remove-orphans -d 'Delete shard objects that no metadata (live state, primary or secondary snapshot) references and that are older than --orphan-grace; objects of another volume or that do not verify are moved to DISK/argosfs-quarantine/, never deleted'
complete -c argosfs -n "__fish_argosfs_using_subcommand fsck" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand fsck" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand fsck" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand fsck" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand fsck" -s V -l version -d 'Print version'
complete -c argosfs -n "__fish_argosfs_using_subcommand verify-journal" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE; with neither, only the structure is checked)' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand verify-journal" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand verify-journal" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand verify-journal" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand verify-journal" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand verify-journal" -s V -l version -d 'Print version'
complete -c argosfs -n "__fish_argosfs_using_subcommand import" -l into -d 'Target directory inside the volume (\'/\'-separated), made as needed' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand import" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt)' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand import" -l strict -d 'Stop at the first error (by default an error is reported, the run goes on, and the exit status is 1)'
complete -c argosfs -n "__fish_argosfs_using_subcommand import" -s x -l one-file-system -d 'Do not descend into directories on other filesystems (mount points are made empty)'
complete -c argosfs -n "__fish_argosfs_using_subcommand import" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand import" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand import" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand import" -s V -l version -d 'Print version'
complete -c argosfs -n "__fish_argosfs_using_subcommand export" -l from -d 'Directory inside the volume to export (\'/\'-separated)' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand export" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt)' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand export" -l preserve-metadata -d 'Keep owners and groups, set-user-ID, set-group-ID and sticky bits, atime and mtime (nanoseconds) and every xattr incl. ACLs (needs root)'
complete -c argosfs -n "__fish_argosfs_using_subcommand export" -l force -d 'Write into a non-empty destination: directories are merged, other entries in the way are replaced'
complete -c argosfs -n "__fish_argosfs_using_subcommand export" -l strict -d 'Stop at the first error (by default an error is reported, the run goes on, and the exit status is 1)'
complete -c argosfs -n "__fish_argosfs_using_subcommand export" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand export" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand export" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand export" -s V -l version -d 'Print version'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -s V -l version -d 'Print version'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "list" -d 'Show every disk, its shards and the stripes its loss degrades'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "add" -d 'Add a disk to the volume'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "replace" -d 'Put a new directory in the place of a disk, then heal'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "heal" -d 'Rebuild every missing shard'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "rebalance" -d 'Even out the disks: move shards from disks over their share of the stored bytes (by weight) to disks under it, as after adding disks'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "drain" -d 'Move every shard off a disk onto the others'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "remove" -d 'Drain a disk and take it out of the volume'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "fail" -d 'Mark a disk failed: it is no longer read or written, and heal rebuilds its shards on the others'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "activate" -d 'Put a failed or draining disk back in use (a failed one is opened again)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "explain" -d 'Show where the stripes of a file are and how placement chooses their disks'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "status" -d 'Show the mount\'s background job (the one running, or the last one)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "stop" -d 'Stop the mount\'s background job after the stripe in progress'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from list" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from list" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from list" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from list" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from add" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from add" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from add" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from add" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from add" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from replace" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from replace" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from replace" -l no-heal -d 'Only replace; do not heal (run heal later)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from replace" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from replace" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from replace" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from replace" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from replace" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from heal" -l max-bytes -d 'Stop after writing about this many shard bytes (e.g. 64M, 1G); run again to go on' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from heal" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from heal" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from heal" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from heal" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from heal" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from heal" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from heal" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from rebalance" -l max-bytes -d 'Stop after writing about this many shard bytes; run again to go on' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from rebalance" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from rebalance" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from rebalance" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from rebalance" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from rebalance" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from rebalance" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from rebalance" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from drain" -l max-bytes -d 'Stop after writing about this many shard bytes; run again to go on' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from drain" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from drain" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from drain" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from drain" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from drain" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from drain" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from drain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from remove" -l max-bytes -d 'Stop after writing about this many shard bytes; run again to go on' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from remove" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from remove" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from remove" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from remove" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from fail" -l reason -d 'Why (kept with the state, shown by list)' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from fail" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from fail" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from fail" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from fail" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from fail" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from fail" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from fail" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from activate" -l reason -d 'Why (kept with the state, shown by list)' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from activate" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from activate" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from activate" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from activate" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from activate" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from activate" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from activate" -s h -l help -d 'Print help'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from explain" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from explain" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from explain" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from explain" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from explain" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from explain" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from status" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from status" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from status" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from status" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from stop" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from stop" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from stop" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from stop" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from stop" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from stop" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show every disk, its shards and the stripes its loss degrades'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a disk to the volume'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "replace" -d 'Put a new directory in the place of a disk, then heal'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "heal" -d 'Rebuild every missing shard'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "rebalance" -d 'Even out the disks: move shards from disks over their share of the stored bytes (by weight) to disks under it, as after adding disks'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "drain" -d 'Move every shard off a disk onto the others'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Drain a disk and take it out of the volume'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "fail" -d 'Mark a disk failed: it is no longer read or written, and heal rebuilds its shards on the others'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "activate" -d 'Put a failed or draining disk back in use (a failed one is opened again)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "explain" -d 'Show where the stripes of a file are and how placement chooses their disks'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show the mount\'s background job (the one running, or the last one)'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "stop" -d 'Stop the mount\'s background job after the stripe in progress'
complete -c argosfs -n "__fish_argosfs_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -l percent -d 'Verify only this percentage of the stripes (those verified longest ago); the next run verifies the next ones' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -l older-than -d 'Skip stripes verified within AGE: seconds, or a number with s, m, h, d or w (30d, 12h, 90m, 3600)' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -l rate -d 'Read at most this many MiB of shards per second (decimals allowed, e.g. 0.5)' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -l max-bytes -d 'Stop after reading about this many shard bytes (e.g. 64M, 1G); the run stays unfinished and the next start continues it' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -l repair -d 'Rewrite bad shards from the others, in place, and rebuild shards of lost disks or never written onto disks chosen by placement; each rewrite is synced and read back before it is committed'
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -l status -d 'Show the scrub state (the run in progress, stripes never verified, the oldest verification, the last run\'s findings) without reading any shard'
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -l pause -d 'Mark the unfinished run paused (it continues at the next start or --resume)'
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -l resume -d 'Continue the unfinished run (paused or interrupted) with its own options; an error when there is none. A start without --resume also continues it'
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -l background -d 'On a mounted volume, start the scrub in the mount and return at once instead of waiting for it (--status shows how it goes)'
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand scrub" -s V -l version -d 'Print version'
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -l max-bytes -d 'Most shard bytes this run may write (default: 5 % of the stored bytes, at least 1 GiB)' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -l down-after -d 'Treat a disk that has been unavailable this long as failed (default 600; 0 acts at once)' -r
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -l replay -d 'Recompute the plan of a saved run from its inputs and compare it with the plan it made' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -l smart-override -d 'SMART data to use instead of or on top of smartctl\'s, per disk (the format argosfs-health --smart-override documents)' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -l dry-run -d 'Plan and show; change nothing (the memory of what was observed is still kept)'
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -l explain -d 'Add the reasoning: the checks each action passed and why other actions were not taken'
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -l no-smartctl -d 'Do not run smartctl (use only --smart-override, if given)'
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand autopilot" -s V -l version -d 'Print version'
complete -c argosfs -n "__fish_argosfs_using_subcommand health" -l smart-override -d 'SMART values per disk that supply or replace smartctl\'s (JSON; format above)' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand health" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE; never asked for). Only needed to survey the stripes of a volume that is not mounted' -r -F
complete -c argosfs -n "__fish_argosfs_using_subcommand health" -l prometheus -d 'Print Prometheus metrics (text exposition format) instead of the report'
complete -c argosfs -n "__fish_argosfs_using_subcommand health" -l no-smartctl -d 'Do not run smartctl: SMART comes from --smart-override only'
complete -c argosfs -n "__fish_argosfs_using_subcommand health" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs -n "__fish_argosfs_using_subcommand health" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs -n "__fish_argosfs_using_subcommand health" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs -n "__fish_argosfs_using_subcommand health" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs -n "__fish_argosfs_using_subcommand health" -s V -l version -d 'Print version'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and not __fish_seen_subcommand_from mkfs mount fsck verify-journal import export disk scrub autopilot health help" -f -a "mkfs" -d 'Create an ArgosFS volume'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and not __fish_seen_subcommand_from mkfs mount fsck verify-journal import export disk scrub autopilot health help" -f -a "mount" -d 'Mount an ArgosFS volume'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and not __fish_seen_subcommand_from mkfs mount fsck verify-journal import export disk scrub autopilot health help" -f -a "fsck" -d 'Check and repair an ArgosFS volume offline'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and not __fish_seen_subcommand_from mkfs mount fsck verify-journal import export disk scrub autopilot health help" -f -a "verify-journal" -d 'Verify the metadata snapshots and journal of an ArgosFS volume'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and not __fish_seen_subcommand_from mkfs mount fsck verify-journal import export disk scrub autopilot health help" -f -a "import" -d 'Copy a directory tree into an ArgosFS volume'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and not __fish_seen_subcommand_from mkfs mount fsck verify-journal import export disk scrub autopilot health help" -f -a "export" -d 'Copy a directory of an ArgosFS volume out to the host'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and not __fish_seen_subcommand_from mkfs mount fsck verify-journal import export disk scrub autopilot health help" -f -a "disk" -d 'List and change the disks of an ArgosFS volume'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and not __fish_seen_subcommand_from mkfs mount fsck verify-journal import export disk scrub autopilot health help" -f -a "scrub" -d 'Verify every shard of an ArgosFS volume, and repair what is bad'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and not __fish_seen_subcommand_from mkfs mount fsck verify-journal import export disk scrub autopilot health help" -f -a "autopilot" -d 'Watch an ArgosFS volume\'s disks and repair, drain or rebalance conservatively'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and not __fish_seen_subcommand_from mkfs mount fsck verify-journal import export disk scrub autopilot health help" -f -a "health" -d 'Report the health of an ArgosFS volume and of each of its disks'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and not __fish_seen_subcommand_from mkfs mount fsck verify-journal import export disk scrub autopilot health help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "list" -d 'Show every disk, its shards and the stripes its loss degrades'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "add" -d 'Add a disk to the volume'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "replace" -d 'Put a new directory in the place of a disk, then heal'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "heal" -d 'Rebuild every missing shard'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "rebalance" -d 'Even out the disks: move shards from disks over their share of the stored bytes (by weight) to disks under it, as after adding disks'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "drain" -d 'Move every shard off a disk onto the others'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "remove" -d 'Drain a disk and take it out of the volume'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "fail" -d 'Mark a disk failed: it is no longer read or written, and heal rebuilds its shards on the others'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "activate" -d 'Put a failed or draining disk back in use (a failed one is opened again)'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "explain" -d 'Show where the stripes of a file are and how placement chooses their disks'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "status" -d 'Show the mount\'s background job (the one running, or the last one)'
complete -c argosfs -n "__fish_argosfs_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "stop" -d 'Stop the mount\'s background job after the stripe in progress'
