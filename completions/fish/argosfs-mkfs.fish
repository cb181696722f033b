complete -c argosfs-mkfs -l disk -d 'A disk directory, with optional settings: PATH[:weight=W,class=C,domain=D,numa=N]. A relative PATH is relative to the current directory, as ROOT is; a disk inside ROOT is recorded relative to ROOT, so ROOT can be moved with it. Repeat once per disk' -r
complete -c argosfs-mkfs -l layout -d 'Data and parity shards per stripe, e.g. 4+2 (default: 4+2 with six or more disks, else one parity shard)' -r
complete -c argosfs-mkfs -l min-shards -d 'Fewest shards a stripe may be written with while disks are missing (K..=K+M; default K+1, or K without parity). Below it writes fail with EIO. K alone means a stripe written then has no redundancy until healed' -r
complete -c argosfs-mkfs -l stripe-size -d 'Plaintext bytes per stripe (4K to 64M)' -r
complete -c argosfs-mkfs -l compression -d 'Compression of stripes: none, zstd, or zstd:LEVEL (1-19)' -r
complete -c argosfs-mkfs -l passphrase-file -d 'Read the passphrase from this file (trailing newline ignored)' -r -F
complete -c argosfs-mkfs -l inline-max -d 'Files up to this size are stored inline in the metadata (0 disables; encrypted with the metadata on encrypted volumes)' -r
complete -c argosfs-mkfs -l encrypt -d 'Encrypt data and metadata (names, symlink targets, xattrs, owners, modes, times, sizes) with XChaCha20-Poly1305 and a key derived from a passphrase (--passphrase-file, ARGOSFS_PASSPHRASE, or a prompt)'
complete -c argosfs-mkfs -l force -d 'Overwrite an existing volume or disk (destroys its data)'
complete -c argosfs-mkfs -l insecure-fast-kdf -d 'Cheapest key derivation (for tests and demos only; weak against guessing)'
complete -c argosfs-mkfs -s v -l verbose -d 'More log output on stderr (repeat for more)'
complete -c argosfs-mkfs -s q -l quiet -d 'Only errors on stderr'
complete -c argosfs-mkfs -l json -d 'Print the result as JSON on stdout'
complete -c argosfs-mkfs -s h -l help -d 'Print help (see more with \'--help\')'
complete -c argosfs-mkfs -s V -l version -d 'Print version'
