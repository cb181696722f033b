complete -c argosfs-autopilot -l max-bytes -d 'Most shard bytes this run may write (default: 5 % of the stored bytes, at least 1 GiB)' -r
complete -c argosfs-autopilot -l down-after -d 'Treat a disk that has been unavailable this long as failed (default 600; 0 acts at once)' -r
complete -c argosfs-autopilot -l replay -d 'Recompute the plan of a saved run from its inputs and compare it with the plan it made' -r -F
complete -c argosfs-autopilot -l smart-override -d 'SMART data to use instead of or on top of smartctl\'s, per disk (the format argosfs-health --smart-override documents)' -r -F
complete -c argosfs-autopilot -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-autopilot -l dry-run -d 'Plan and show; change nothing (the memory of what was observed is still kept)'
complete -c argosfs-autopilot -l explain -d 'Add the reasoning: the checks each action passed and why other actions were not taken'
complete -c argosfs-autopilot -l no-smartctl -d 'Do not run smartctl (use only --smart-override, if given)'
complete -c argosfs-autopilot -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-autopilot -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-autopilot -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-autopilot -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-autopilot -s V -l version -d 'Print version'
