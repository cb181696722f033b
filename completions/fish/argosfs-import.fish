complete -c argosfs-import -l into -d 'Target directory inside the volume (\'/\'-separated), made as needed' -r
complete -c argosfs-import -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt)' -r -F
complete -c argosfs-import -l strict -d 'Stop at the first error (by default an error is reported, the run goes on, and the exit status is 1)'
complete -c argosfs-import -s x -l one-file-system -d 'Do not descend into directories on other filesystems (mount points are made empty)'
complete -c argosfs-import -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-import -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-import -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-import -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-import -s V -l version -d 'Print version'
