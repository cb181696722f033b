complete -c argosfs-verify-journal -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE; with neither, only the structure is checked)' -r -F
complete -c argosfs-verify-journal -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-verify-journal -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-verify-journal -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-verify-journal -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-verify-journal -s V -l version -d 'Print version'
