# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_argosfs_disk_global_optspecs
    string join \n passphrase-file= background rate= v/verbose q/quiet json h/help V/version
end

function __fish_argosfs_disk_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_argosfs_disk_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_argosfs_disk_using_subcommand
    set -l cmd (__fish_argosfs_disk_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -s V -l version -d 'Print version'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "list" -d 'Show every disk, its shards and the stripes its loss degrades'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "add" -d 'Add a disk to the volume'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "replace" -d 'Put a new directory in the place of a disk, then heal'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "heal" -d 'Rebuild every missing shard'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "rebalance" -d 'Even out the disks: move shards from disks over their share of the stored bytes (by weight) to disks under it, as after adding disks'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "drain" -d 'Move every shard off a disk onto the others'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "remove" -d 'Drain a disk and take it out of the volume'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "fail" -d 'Mark a disk failed: it is no longer read or written, and heal rebuilds its shards on the others'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "activate" -d 'Put a failed or draining disk back in use (a failed one is opened again)'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "explain" -d 'Show where the stripes of a file are and how placement chooses their disks'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "status" -d 'Show the mount\'s background job (the one running, or the last one)'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "stop" -d 'Stop the mount\'s background job after the stripe in progress'
complete -c argosfs-disk -n "__fish_argosfs_disk_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand list" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand list" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand list" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand list" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand list" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand list" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand add" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand add" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand add" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand add" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand add" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand add" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand replace" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand replace" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand replace" -l no-heal -d 'Only replace; do not heal (run heal later)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand replace" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand replace" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand replace" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand replace" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand replace" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand heal" -l max-bytes -d 'Stop after writing about this many shard bytes (e.g. 64M, 1G); run again to go on' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand heal" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand heal" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand heal" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand heal" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand heal" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand heal" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand heal" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand rebalance" -l max-bytes -d 'Stop after writing about this many shard bytes; run again to go on' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand rebalance" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand rebalance" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand rebalance" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand rebalance" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand rebalance" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand rebalance" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand rebalance" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand drain" -l max-bytes -d 'Stop after writing about this many shard bytes; run again to go on' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand drain" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand drain" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand drain" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand drain" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand drain" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand drain" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand drain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand remove" -l max-bytes -d 'Stop after writing about this many shard bytes; run again to go on' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand remove" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand remove" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand remove" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand remove" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand remove" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand remove" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand fail" -l reason -d 'Why (kept with the state, shown by list)' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand fail" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand fail" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand fail" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand fail" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand fail" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand fail" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand fail" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand activate" -l reason -d 'Why (kept with the state, shown by list)' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand activate" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand activate" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand activate" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand activate" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand activate" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand activate" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand activate" -s h -l help -d 'Print help'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand explain" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand explain" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand explain" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand explain" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand explain" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand explain" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand explain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand status" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand status" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand status" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand status" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand status" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand status" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand status" -s h -l help -d 'Print help'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand stop" -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand stop" -l rate -d 'Write at most this many MiB of shards per second (heal, replace, drain, remove, rebalance; decimals allowed). Offline the default is no limit; a mount moves shards at 16 MiB/s unless given one, so files stay fast to use meanwhile' -r
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand stop" -l background -d 'On a mounted volume, start the work in the mount and return at once instead of waiting for it (status shows how it goes)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand stop" -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand stop" -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand stop" -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "list" -d 'Show every disk, its shards and the stripes its loss degrades'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "add" -d 'Add a disk to the volume'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "replace" -d 'Put a new directory in the place of a disk, then heal'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "heal" -d 'Rebuild every missing shard'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "rebalance" -d 'Even out the disks: move shards from disks over their share of the stored bytes (by weight) to disks under it, as after adding disks'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "drain" -d 'Move every shard off a disk onto the others'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "remove" -d 'Drain a disk and take it out of the volume'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "fail" -d 'Mark a disk failed: it is no longer read or written, and heal rebuilds its shards on the others'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "activate" -d 'Put a failed or draining disk back in use (a failed one is opened again)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "explain" -d 'Show where the stripes of a file are and how placement chooses their disks'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "status" -d 'Show the mount\'s background job (the one running, or the last one)'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "stop" -d 'Stop the mount\'s background job after the stripe in progress'
complete -c argosfs-disk -n "__fish_argosfs_disk_using_subcommand help; and not __fish_seen_subcommand_from list add replace heal rebalance drain remove fail activate explain status stop help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
