complete -c argosfs-scrub -l percent -d 'Verify only this percentage of the stripes (those verified longest ago); the next run verifies the next ones' -r
complete -c argosfs-scrub -l older-than -d 'Skip stripes verified within AGE: seconds, or a number with s, m, h, d or w (30d, 12h, 90m, 3600)' -r
complete -c argosfs-scrub -l rate -d 'Read at most this many MiB of shards per second (decimals allowed, e.g. 0.5)' -r
complete -c argosfs-scrub -l max-bytes -d 'Stop after reading about this many shard bytes (e.g. 64M, 1G); the run stays unfinished and the next start continues it' -r
complete -c argosfs-scrub -l passphrase-file -d 'Read the passphrase of an encrypted volume from this file (else ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume' -r -F
complete -c argosfs-scrub -l repair -d 'Rewrite bad shards from the others, in place, and rebuild shards of lost disks or never written onto disks chosen by placement; each rewrite is synced and read back before it is committed'
complete -c argosfs-scrub -l status -d 'Show the scrub state (the run in progress, stripes never verified, the oldest verification, the last run\'s findings) without reading any shard'
complete -c argosfs-scrub -l pause -d 'Mark the unfinished run paused (it continues at the next start or --resume)'
complete -c argosfs-scrub -l resume -d 'Continue the unfinished run (paused or interrupted) with its own options; an error when there is none. A start without --resume also continues it'
complete -c argosfs-scrub -l background -d 'On a mounted volume, start the scrub in the mount and return at once instead of waiting for it (--status shows how it goes)'
complete -c argosfs-scrub -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-scrub -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-scrub -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-scrub -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-scrub -s V -l version -d 'Print version'
