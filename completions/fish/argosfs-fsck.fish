complete -c argosfs-fsck -l orphan-grace -d 'Unreferenced shard objects younger than this are kept' -r
complete -c argosfs-fsck -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE; with neither, only the structure is checked)' -r -F
complete -c argosfs-fsck -s n -l no-change -d 'Check only and change nothing (the default without --repair or --remove-orphans)'
complete -c argosfs-fsck -l repair -d 'Repair: rebuild missing or corrupt shards from the others, fix link counts and the directory tree, move unreachable inodes to /lost+found, rewrite damaged snapshots, cut a torn journal tail, free inodes left unlinked-but-open, clear group and other permission bits in the backing store'
complete -c argosfs-fsck -l remove-orphans -d 'Delete shard objects that no metadata (live state, primary or secondary snapshot) references and that are older than --orphan-grace; objects of another volume or that do not verify are moved to DISK/argosfs-quarantine/, never deleted'
complete -c argosfs-fsck -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-fsck -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-fsck -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-fsck -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-fsck -s V -l version -d 'Print version'
