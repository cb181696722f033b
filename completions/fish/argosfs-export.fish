complete -c argosfs-export -l from -d 'Directory inside the volume to export (\'/\'-separated)' -r
complete -c argosfs-export -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt)' -r -F
complete -c argosfs-export -l preserve-metadata -d 'Keep owners and groups, set-user-ID, set-group-ID and sticky bits, atime and mtime (nanoseconds) and every xattr incl. ACLs (needs root)'
complete -c argosfs-export -l force -d 'Write into a non-empty destination: directories are merged, other entries in the way are replaced'
complete -c argosfs-export -l strict -d 'Stop at the first error (by default an error is reported, the run goes on, and the exit status is 1)'
complete -c argosfs-export -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-export -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-export -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-export -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-export -s V -l version -d 'Print version'
