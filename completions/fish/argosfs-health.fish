complete -c argosfs-health -l smart-override -d 'SMART values per disk that supply or replace smartctl\'s (JSON; format above)' -r -F
complete -c argosfs-health -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE; never asked for). Only needed to survey the stripes of a volume that is not mounted' -r -F
complete -c argosfs-health -l prometheus -d 'Print Prometheus metrics (text exposition format) instead of the report'
complete -c argosfs-health -l no-smartctl -d 'Do not run smartctl: SMART comes from --smart-override only'
complete -c argosfs-health -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-health -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-health -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-health -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-health -s V -l version -d 'Print version'
