//! Permission rules: who may read, write, search, chmod, chown, touch, delete, and what
//! mode and group a new or changed inode ends up with.
//!
//! Pure functions over a [`Caller`] and an inode's owner, group, mode and raw ACL bytes;
//! no I/O and no inode storage. The Volume calls them for every operation so the library
//! refuses exactly what Linux refuses on a local filesystem (ext4 mounted with ACLs):
//! `fs/namei.c` (`generic_permission`, `acl_permission_check`, `__check_sticky`),
//! `fs/attr.c` (`setattr_prepare`, `setattr_should_drop_sgid`, `may_setattr`),
//! `fs/open.c` (`chown_common`) and `fs/inode.c` (`inode_init_owner`, `mode_strip_sgid`).
//! "Root" means uid 0 holding every capability; finer capability sets are not modelled.
//! ACL encoding and the ACL-specific rules live in [`super::acl`].

use super::acl::Acl;
use crate::{Error, Result};

/// Read permission in a `want` mask (`MAY_READ`).
pub const MAY_READ: u32 = 4;
/// Write permission in a `want` mask (`MAY_WRITE`).
pub const MAY_WRITE: u32 = 2;
/// Execute permission, or search for a directory, in a `want` mask (`MAY_EXEC`).
pub const MAY_EXEC: u32 = 1;

/// Set-user-ID bit of a mode.
pub const S_ISUID: u32 = 0o4000;
/// Set-group-ID bit of a mode.
pub const S_ISGID: u32 = 0o2000;
/// Sticky bit of a mode (restricted deletion for directories).
pub const S_ISVTX: u32 = 0o1000;
/// Group execute bit of a mode.
pub const S_IXGRP: u32 = 0o010;
/// All twelve permission bits of a mode.
pub const MODE_PERM_MASK: u32 = 0o7777;

/// The credentials an operation runs with (the kernel's fsuid, fsgid, groups, umask).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// File-system user id.
    pub uid: u32,
    /// File-system group id.
    pub gid: u32,
    /// Supplementary groups; may or may not repeat `gid`.
    pub groups: Vec<u32>,
    /// The process umask; only its `0o777` part is ever applied.
    pub umask: u32,
}

impl Caller {
    /// The superuser: uid 0, gid 0, no supplementary groups, umask `0o022`.
    pub fn root() -> Caller {
        Caller::new(0, 0)
    }

    /// An ordinary caller with no supplementary groups and umask `0o022`.
    pub fn new(uid: u32, gid: u32) -> Caller {
        Caller {
            uid,
            gid,
            groups: Vec::new(),
            umask: 0o022,
        }
    }

    /// True for uid 0, which bypasses the checks Linux lets capabilities bypass.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// True when `gid` is the caller's group or one of its supplementary groups
    /// (the kernel's `in_group_p`).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// The inode a permission check is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Owner.
    pub uid: u32,
    /// Owning group.
    pub gid: u32,
    /// Permission bits (`0o7777`). With an ACL the group bits are the ACL mask.
    pub mode: u32,
    /// True for a directory.
    pub is_dir: bool,
    /// The raw `system.posix_acl_access` value, if the inode has one.
    pub acl: Option<&'a [u8]>,
}

/// Checks `want` (an OR of [`MAY_READ`], [`MAY_WRITE`], [`MAY_EXEC`]) against the
/// subject's mode and access ACL; `Err(Access)` when denied.
///
/// Linux order (`acl_permission_check`, then `generic_permission`'s capability step):
/// - Root may read and write anything and search any directory; it may execute a
///   non-directory only if some execute bit is set in `mode` (for a file with an ACL the
///   group bits are the mask, so the same test applies).
/// - The owner gets the owner bits of `mode`; the ACL is never consulted for the owner.
/// - Anyone else: if the inode has a non-minimal ACL **and the group bits of `mode` are
///   not all zero**, the POSIX.1e algorithm of [`Acl::permits`] decides. A malformed ACL
///   denies. With group bits `000` Linux skips the ACL and falls back to the classic rule,
///   so a named user then gets the *other* bits; this quirk is kept on purpose so the
///   library agrees with a kernel enforcing `default_permissions`.
/// - Classic rule: the group bits if the caller is in the owning group, else the other
///   bits. Being in the group never falls through to more generous other bits.
pub fn check(caller: &Caller, subject: &Subject, want: u32) -> Result<()> {
    let want = want & (MAY_READ | MAY_WRITE | MAY_EXEC);
    if caller.is_root() {
        let exec_ok = subject.is_dir || subject.mode & 0o111 != 0;
        return if want & MAY_EXEC == 0 || exec_ok {
            Ok(())
        } else {
            Err(Error::Access)
        };
    }
    if caller.uid == subject.uid {
        return grant((subject.mode >> 6) & 7, want);
    }
    if let Some(raw) = subject.acl
        && subject.mode & 0o070 != 0
    {
        match Acl::parse(raw) {
            // A damaged ACL may have been meant to deny; refusing is the safe reading.
            Err(_) => return Err(Error::Access),
            Ok(acl) if !acl.is_minimal() => {
                return if acl.permits(caller, subject.uid, subject.gid, want) {
                    Ok(())
                } else {
                    Err(Error::Access)
                };
            }
            Ok(_) => {}
        }
    }
    let bits = if caller.in_group(subject.gid) {
        (subject.mode >> 3) & 7
    } else {
        subject.mode & 7
    };
    grant(bits, want)
}

fn grant(bits: u32, want: u32) -> Result<()> {
    if want & !bits == 0 {
        Ok(())
    } else {
        Err(Error::Access)
    }
}

/// Checks whether the caller may delete or rename away an entry owned by `victim_uid`
/// from a directory: in a sticky directory only root, the entry's owner or the
/// directory's owner may; anyone else gets `Err(Perm)`. A non-sticky directory: `Ok`.
///
/// This is only the sticky rule; write and search permission on the directory are
/// checked separately with [`check`].
pub fn check_sticky(caller: &Caller, dir_uid: u32, dir_mode: u32, victim_uid: u32) -> Result<()> {
    if dir_mode & S_ISVTX == 0
        || caller.is_root()
        || caller.uid == victim_uid
        || caller.uid == dir_uid
    {
        Ok(())
    } else {
        Err(Error::Perm)
    }
}

/// `Err(Perm)` unless the caller owns the inode or is root (`inode_owner_or_capable`):
/// the rule for setting an ACL, explicit timestamps, and other owner-only changes.
pub fn check_owner(caller: &Caller, owner_uid: u32) -> Result<()> {
    if caller.is_root() || caller.uid == owner_uid {
        Ok(())
    } else {
        Err(Error::Perm)
    }
}

/// Checks a chmod and returns the mode to store (`requested & 0o7777`).
///
/// `Err(Perm)` unless the caller owns the inode or is root. A non-root caller who is not
/// in `owner_gid` has `S_ISGID` silently cleared, for directories as well as files
/// (`setattr_prepare` makes no distinction; `is_dir` is accepted so callers need not
/// special-case). When the inode has an access ACL, also rewrite it with
/// [`Acl::with_mode`].
pub fn chmod(
    caller: &Caller,
    owner_uid: u32,
    owner_gid: u32,
    _is_dir: bool,
    requested: u32,
) -> Result<u32> {
    check_owner(caller, owner_uid)?;
    let mut mode = requested & MODE_PERM_MASK;
    if !caller.is_root() && !caller.in_group(owner_gid) {
        mode &= !S_ISGID;
    }
    Ok(mode)
}

/// Checks a chown/chgrp; `None` means "leave unchanged" (the `-1` of chown(2)).
///
/// Root may do anything. The owner may "change" the uid only to itself, and the gid only
/// to the current gid or to a group it belongs to. Anything else is `Err(Perm)`,
/// including a non-owner naming the current uid or gid. With both `None` nothing is
/// checked, as in Linux; but see [`chown_checked`], which also refuses the implied mode
/// change such a call makes on a set-user-ID file.
pub fn chown(
    caller: &Caller,
    owner_uid: u32,
    owner_gid: u32,
    new_uid: Option<u32>,
    new_gid: Option<u32>,
) -> Result<()> {
    if caller.is_root() {
        return Ok(());
    }
    let is_owner = caller.uid == owner_uid;
    if let Some(uid) = new_uid
        && !(is_owner && uid == owner_uid)
    {
        return Err(Error::Perm);
    }
    if let Some(gid) = new_gid
        && !(is_owner && (gid == owner_gid || caller.in_group(gid)))
    {
        return Err(Error::Perm);
    }
    Ok(())
}

/// The mode after a successful chown/chgrp (any call, even one that changes nothing).
///
/// Directories keep every bit. For other inodes `S_ISUID` is always cleared and
/// `S_ISGID` is cleared when `S_IXGRP` is set; **root does not keep them** (`chown_common`
/// asks for the kill unconditionally and CAP_FSETID plays no part), so `by_root` does not
/// change the result. `S_ISGID` without `S_IXGRP` is kept; since Linux 6.2 it is also
/// cleared when a non-root caller is not in the file's old group, which needs the caller
/// and is what [`chown_checked`] implements.
pub fn mode_after_chown(mode: u32, is_dir: bool, _by_root: bool) -> u32 {
    if is_dir {
        return mode;
    }
    let mut mode = mode & !S_ISUID;
    if mode & S_IXGRP != 0 {
        mode &= !S_ISGID;
    }
    mode
}

/// [`chown`] and [`mode_after_chown`] in one call with the full Linux 6.2+ rules; returns
/// the mode to store.
///
/// Beyond the two: `S_ISGID` without `S_IXGRP` is cleared when a non-root caller is not
/// in the subject's (old) group (`setattr_should_drop_sgid`), and a non-owner's
/// `chown(-1, -1)`, normally a no-op Linux allows, is `Err(Perm)` when it would clear a
/// bit, because the implied mode change needs ownership (`setattr_prepare`).
pub fn chown_checked(
    caller: &Caller,
    subject: &Subject,
    new_uid: Option<u32>,
    new_gid: Option<u32>,
) -> Result<u32> {
    chown(caller, subject.uid, subject.gid, new_uid, new_gid)?;
    if subject.is_dir {
        return Ok(subject.mode);
    }
    let mut mode = mode_after_chown(subject.mode, false, caller.is_root());
    if !caller.is_root() && !caller.in_group(subject.gid) {
        mode &= !S_ISGID;
    }
    if mode != subject.mode {
        check_owner(caller, subject.uid)?;
    }
    Ok(mode)
}

/// The mode after a write or truncate of a regular file.
///
/// Root (CAP_FSETID) keeps everything. Anyone else loses `S_ISUID`, and `S_ISGID` when
/// `S_IXGRP` is set. Since Linux 6.2 `S_ISGID` without `S_IXGRP` is also cleared when the
/// writer is not in the file's group; that needs the caller: see [`mode_after_write_for`].
pub fn mode_after_write(mode: u32, by_root: bool) -> u32 {
    if by_root {
        return mode;
    }
    let mut mode = mode & !S_ISUID;
    if mode & S_IXGRP != 0 {
        mode &= !S_ISGID;
    }
    mode
}

/// [`mode_after_write`] with the full Linux 6.2+ rule (`setattr_should_drop_suidgid`):
/// also clears `S_ISGID` without `S_IXGRP` when a non-root writer is not in the subject's
/// group. Directories are returned unchanged (the rule is for regular files only).
pub fn mode_after_write_for(caller: &Caller, subject: &Subject) -> u32 {
    if caller.is_root() || subject.is_dir {
        return subject.mode;
    }
    let mut mode = mode_after_write(subject.mode, false);
    if !caller.in_group(subject.gid) {
        mode &= !S_ISGID;
    }
    mode
}

/// Checks a utimes/utimensat call.
///
/// `explicit_times` is true unless both times are "now" (`times == NULL` or both
/// `UTIME_NOW`); note that Linux counts `(UTIME_NOW, UTIME_OMIT)` as explicit. Explicit
/// times need the owner or root, else `Err(Perm)`. Setting both to now is also allowed
/// to anyone with write permission ([`check`]), else `Err(Access)`.
pub fn check_utimes(caller: &Caller, subject: &Subject, explicit_times: bool) -> Result<()> {
    if check_owner(caller, subject.uid).is_ok() {
        return Ok(());
    }
    if explicit_times {
        return Err(Error::Perm);
    }
    check(caller, subject, MAY_WRITE)
}

/// The group and mode of a new inode (`vfs_prepare_mode` + `inode_init_owner`), before
/// ACLs: call it with the requested mode, then pass the returned mode to
/// [`super::acl::on_create`], which applies the umask or the default ACL.
///
/// - The new gid is `parent_gid` if the parent has `S_ISGID`, else `caller.gid`.
/// - mkdir ignores `S_ISUID` and `S_ISGID` in the requested mode (Linux masks it with
///   `0o1777`); a new directory then inherits `S_ISGID` from such a parent.
/// - A non-directory asking for `S_ISGID` together with `S_IXGRP` loses `S_ISGID` when it
///   takes the parent's group, the caller is not root and not in that group
///   (`mode_strip_sgid`). `S_ISGID` without `S_IXGRP` is kept, as in Linux.
///
/// The returned mode keeps only the twelve permission bits.
pub fn initial_gid_and_mode(
    caller: &Caller,
    parent_gid: u32,
    parent_mode: u32,
    is_dir: bool,
    mode: u32,
) -> (u32, u32) {
    let parent_sgid = parent_mode & S_ISGID != 0;
    let gid = if parent_sgid { parent_gid } else { caller.gid };
    let mut mode = mode & MODE_PERM_MASK;
    if is_dir {
        mode &= 0o777 | S_ISVTX;
        if parent_sgid {
            mode |= S_ISGID;
        }
    } else if mode & (S_ISGID | S_IXGRP) == (S_ISGID | S_IXGRP)
        && !caller.is_root()
        && !caller.in_group(gid)
    {
        mode &= !S_ISGID;
    }
    (gid, mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::acl::{AclEntry, AclTag};

    const OWNER: u32 = 1000;
    const GROUP: u32 = 100;

    fn file(mode: u32) -> Subject<'static> {
        Subject {
            uid: OWNER,
            gid: GROUP,
            mode,
            is_dir: false,
            acl: None,
        }
    }

    fn dir(mode: u32) -> Subject<'static> {
        Subject {
            is_dir: true,
            ..file(mode)
        }
    }

    fn owner() -> Caller {
        Caller::new(OWNER, GROUP)
    }

    fn member() -> Caller {
        Caller::new(2000, GROUP)
    }

    fn stranger() -> Caller {
        Caller::new(3000, 300)
    }

    fn allowed(caller: &Caller, subject: &Subject, want: u32) -> bool {
        match check(caller, subject, want) {
            Ok(()) => true,
            Err(Error::Access) => false,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }

    fn acl_bytes(entries: &[(AclTag, u32)]) -> Vec<u8> {
        Acl {
            entries: entries
                .iter()
                .map(|&(tag, perm)| AclEntry { tag, perm })
                .collect(),
        }
        .to_bytes()
    }

    #[test]
    fn caller_constructors_and_groups() {
        let root = Caller::root();
        assert!(root.is_root());
        assert_eq!((root.uid, root.gid, root.umask), (0, 0, 0o022));
        let c = Caller::new(5, 6);
        assert!(!c.is_root());
        assert!(c.groups.is_empty());
        assert_eq!(c.umask, 0o022);
        assert!(c.in_group(6));
        assert!(!c.in_group(7));
        let c = Caller {
            groups: vec![7, 8],
            ..c
        };
        assert!(c.in_group(7) && c.in_group(8) && c.in_group(6));
        assert!(!c.in_group(9));
    }

    #[test]
    fn classic_owner_group_other_matrix() {
        // Each class gets a different single permission so a wrong shift shows up.
        let s = file(0o421);
        let cases = [
            (owner(), [true, false, false]),
            (member(), [false, true, false]),
            (stranger(), [false, false, true]),
        ];
        for (caller, [r, w, x]) in cases {
            assert_eq!(allowed(&caller, &s, MAY_READ), r, "{caller:?} read");
            assert_eq!(allowed(&caller, &s, MAY_WRITE), w, "{caller:?} write");
            assert_eq!(allowed(&caller, &s, MAY_EXEC), x, "{caller:?} exec");
        }
        // Every combination of bits for every class, against a direct computation.
        for mode in 0..0o1000 {
            let s = file(mode);
            for want in 0..8 {
                for (caller, shift) in [(owner(), 6), (member(), 3), (stranger(), 0)] {
                    let bits = (mode >> shift) & 7;
                    assert_eq!(allowed(&caller, &s, want), want & !bits == 0);
                }
            }
        }
    }

    #[test]
    fn want_needs_every_bit_and_ignores_extra_flags() {
        let s = file(0o640);
        assert!(allowed(&owner(), &s, MAY_READ | MAY_WRITE));
        assert!(!allowed(&member(), &s, MAY_READ | MAY_WRITE));
        assert!(allowed(&member(), &s, 0));
        // Bits above MAY_READ (the kernel's MAY_APPEND etc.) are not permissions.
        assert!(allowed(&member(), &s, MAY_READ | 0x100));
    }

    #[test]
    fn owner_and_group_do_not_fall_through_to_other() {
        let s = file(0o007);
        assert!(!allowed(&owner(), &s, MAY_READ));
        assert!(!allowed(&member(), &s, MAY_READ));
        assert!(allowed(&stranger(), &s, MAY_READ));
    }

    #[test]
    fn supplementary_groups_count_as_membership() {
        let s = file(0o040);
        let mut c = Caller::new(2000, 999);
        assert!(!allowed(&c, &s, MAY_READ));
        c.groups = vec![5, GROUP];
        assert!(allowed(&c, &s, MAY_READ));
        // A supplementary member of the group is denied what other would get.
        let s = file(0o004);
        assert!(!allowed(&c, &s, MAY_READ));
    }

    #[test]
    fn root_reads_and_writes_anything_and_executes_only_with_an_x_bit() {
        let root = Caller::root();
        assert!(allowed(&root, &file(0), MAY_READ | MAY_WRITE));
        assert!(!allowed(&root, &file(0o666), MAY_EXEC));
        for x in [0o100, 0o010, 0o001] {
            assert!(allowed(&root, &file(0o600 | x), MAY_EXEC));
        }
        assert!(allowed(&root, &dir(0), MAY_EXEC | MAY_READ | MAY_WRITE));
        // With an ACL the group bits are the mask: an x in the mask is enough.
        let acl = acl_bytes(&[
            (AclTag::UserObj, 6),
            (AclTag::User(5), 7),
            (AclTag::GroupObj, 6),
            (AclTag::Mask, 7),
            (AclTag::Other, 0),
        ]);
        let s = Subject {
            acl: Some(&acl),
            ..file(0o670)
        };
        assert!(allowed(&root, &s, MAY_EXEC));
    }

    #[test]
    fn acl_named_user_is_granted_what_the_mode_denies() {
        let acl = acl_bytes(&[
            (AclTag::UserObj, 6),
            (AclTag::User(3000), 6),
            (AclTag::GroupObj, 4),
            (AclTag::Mask, 6),
            (AclTag::Other, 0),
        ]);
        let s = Subject {
            acl: Some(&acl),
            ..file(0o660)
        };
        assert!(allowed(&stranger(), &s, MAY_READ | MAY_WRITE));
        // Without the ACL the same mode leaves the stranger with nothing.
        assert!(!allowed(&stranger(), &file(0o660), MAY_READ));
        // The owning group is limited by its own entry, not by the mask.
        assert!(allowed(&member(), &s, MAY_READ));
        assert!(!allowed(&member(), &s, MAY_WRITE));
        assert!(!allowed(&Caller::new(4000, 400), &s, MAY_READ));
    }

    #[test]
    fn acl_mask_limits_a_named_user() {
        let acl = acl_bytes(&[
            (AclTag::UserObj, 7),
            (AclTag::User(3000), 7),
            (AclTag::GroupObj, 0),
            (AclTag::Mask, 4),
            (AclTag::Other, 0),
        ]);
        let s = Subject {
            acl: Some(&acl),
            ..file(0o740)
        };
        assert!(allowed(&stranger(), &s, MAY_READ));
        assert!(!allowed(&stranger(), &s, MAY_WRITE));
        assert!(!allowed(&stranger(), &s, MAY_EXEC));
    }

    #[test]
    fn acl_named_group_deny_beats_other() {
        let acl = acl_bytes(&[
            (AclTag::UserObj, 6),
            (AclTag::GroupObj, 4),
            (AclTag::Group(300), 0),
            (AclTag::Mask, 4),
            (AclTag::Other, 4),
        ]);
        let s = Subject {
            acl: Some(&acl),
            ..file(0o644)
        };
        // In group 300: matched a group entry, so "other" is never considered.
        assert!(!allowed(&stranger(), &s, MAY_READ));
        assert!(allowed(&Caller::new(4000, 400), &s, MAY_READ));
        assert!(allowed(&member(), &s, MAY_READ));
    }

    #[test]
    fn acl_any_matching_group_entry_may_grant() {
        let acl = acl_bytes(&[
            (AclTag::UserObj, 6),
            (AclTag::GroupObj, 0),
            (AclTag::Group(7), 4),
            (AclTag::Group(8), 2),
            (AclTag::Mask, 6),
            (AclTag::Other, 0),
        ]);
        let s = Subject {
            acl: Some(&acl),
            ..file(0o660)
        };
        let c = Caller {
            groups: vec![7, 8],
            ..Caller::new(2000, GROUP)
        };
        assert!(allowed(&c, &s, MAY_READ));
        assert!(allowed(&c, &s, MAY_WRITE));
        // No single entry grants both, and permissions are not combined across entries.
        assert!(!allowed(&c, &s, MAY_READ | MAY_WRITE));
    }

    #[test]
    fn acl_is_ignored_for_the_owner() {
        let acl = acl_bytes(&[
            (AclTag::UserObj, 0),
            (AclTag::User(OWNER), 7),
            (AclTag::GroupObj, 7),
            (AclTag::Mask, 7),
            (AclTag::Other, 7),
        ]);
        let s = Subject {
            acl: Some(&acl),
            ..file(0o077)
        };
        assert!(!allowed(&owner(), &s, MAY_READ));
    }

    #[test]
    fn acl_with_empty_mask_falls_back_to_the_mode_like_linux() {
        let acl = acl_bytes(&[
            (AclTag::UserObj, 6),
            (AclTag::User(3000), 6),
            (AclTag::GroupObj, 6),
            (AclTag::Mask, 0),
            (AclTag::Other, 4),
        ]);
        let s = Subject {
            acl: Some(&acl),
            ..file(0o604)
        };
        // POSIX.1e would deny (6 & mask 0); Linux skips the ACL when the group bits
        // are zero and the named user falls through to "other".
        assert!(allowed(&stranger(), &s, MAY_READ));
        assert!(!allowed(&stranger(), &s, MAY_WRITE));
        assert!(!allowed(&member(), &s, MAY_READ));
    }

    #[test]
    fn malformed_acl_denies_non_owners_but_not_the_owner_or_root() {
        let garbage = [2u8, 0, 0, 0, 0xff, 0xff];
        let s = Subject {
            acl: Some(&garbage),
            ..file(0o777)
        };
        assert!(!allowed(&stranger(), &s, MAY_READ));
        assert!(!allowed(&member(), &s, MAY_READ));
        assert!(allowed(&owner(), &s, MAY_READ));
        assert!(allowed(&Caller::root(), &s, MAY_READ));
    }

    #[test]
    fn minimal_acl_uses_the_classic_rule() {
        let acl = Acl::from_mode(0o640).to_bytes();
        let s = Subject {
            acl: Some(&acl),
            ..file(0o640)
        };
        assert!(allowed(&member(), &s, MAY_READ));
        assert!(!allowed(&member(), &s, MAY_WRITE));
        assert!(!allowed(&stranger(), &s, MAY_READ));
    }

    #[test]
    fn sticky_directory_rules() {
        let sticky = 0o1777;
        assert!(check_sticky(&stranger(), OWNER, sticky, 3000).is_ok());
        assert!(check_sticky(&owner(), OWNER, sticky, 3000).is_ok());
        assert!(check_sticky(&Caller::root(), OWNER, sticky, 3000).is_ok());
        assert!(matches!(
            check_sticky(&member(), OWNER, sticky, 3000),
            Err(Error::Perm)
        ));
        assert!(check_sticky(&member(), OWNER, 0o777, 3000).is_ok());
    }

    #[test]
    fn chmod_rules() {
        assert!(matches!(
            chmod(&member(), OWNER, GROUP, false, 0o644),
            Err(Error::Perm)
        ));
        assert_eq!(
            chmod(&owner(), OWNER, GROUP, false, 0o4755).unwrap(),
            0o4755
        );
        assert_eq!(
            chmod(&owner(), OWNER, GROUP, false, 0o2755).unwrap(),
            0o2755
        );
        // File type bits from a raw st_mode are not permission bits.
        assert_eq!(
            chmod(&owner(), OWNER, GROUP, false, 0o100644).unwrap(),
            0o644
        );
        // Owner outside the file's group: S_ISGID silently dropped, for dirs too.
        let outsider = Caller::new(OWNER, 555);
        assert_eq!(
            chmod(&outsider, OWNER, GROUP, false, 0o6755).unwrap(),
            0o4755
        );
        assert_eq!(
            chmod(&outsider, OWNER, GROUP, true, 0o3775).unwrap(),
            0o1775
        );
        let supplementary = Caller {
            groups: vec![GROUP],
            ..outsider
        };
        assert_eq!(
            chmod(&supplementary, OWNER, GROUP, false, 0o2755).unwrap(),
            0o2755
        );
        assert_eq!(
            chmod(&Caller::root(), OWNER, GROUP, false, 0o7777).unwrap(),
            0o7777
        );
    }

    #[test]
    fn chown_rules() {
        let root = Caller::root();
        assert!(chown(&root, OWNER, GROUP, Some(1), Some(2)).is_ok());
        let o = Caller {
            groups: vec![7],
            ..owner()
        };
        assert!(chown(&o, OWNER, GROUP, Some(OWNER), None).is_ok());
        assert!(matches!(
            chown(&o, OWNER, GROUP, Some(1), None),
            Err(Error::Perm)
        ));
        assert!(chown(&o, OWNER, GROUP, None, Some(7)).is_ok());
        assert!(chown(&o, OWNER, GROUP, Some(OWNER), Some(GROUP)).is_ok());
        assert!(matches!(
            chown(&o, OWNER, GROUP, None, Some(8)),
            Err(Error::Perm)
        ));
        // The owner may keep the current group even when not a member of it.
        let outsider = Caller::new(OWNER, 555);
        assert!(chown(&outsider, OWNER, GROUP, None, Some(GROUP)).is_ok());
        assert!(chown(&outsider, OWNER, GROUP, None, Some(555)).is_ok());
        // A non-owner may not even name the current values.
        assert!(matches!(
            chown(&member(), OWNER, GROUP, Some(OWNER), None),
            Err(Error::Perm)
        ));
        assert!(matches!(
            chown(&member(), OWNER, GROUP, None, Some(GROUP)),
            Err(Error::Perm)
        ));
        assert!(chown(&member(), OWNER, GROUP, None, None).is_ok());
    }

    #[test]
    fn mode_after_chown_clears_setid_bits_even_for_root() {
        for by_root in [false, true] {
            assert_eq!(mode_after_chown(0o4755, false, by_root), 0o755);
            assert_eq!(mode_after_chown(0o6755, false, by_root), 0o755);
            // S_ISGID without group exec is the mandatory-locking marker: kept.
            assert_eq!(mode_after_chown(0o2745, false, by_root), 0o2745);
            assert_eq!(mode_after_chown(0o1755, false, by_root), 0o1755);
            assert_eq!(mode_after_chown(0o6775, true, by_root), 0o6775);
        }
    }

    #[test]
    fn chown_checked_applies_the_group_membership_rules() {
        let s = file(0o2745);
        // Owner in the group keeps the locking S_ISGID; an owner outside loses it.
        assert_eq!(chown_checked(&owner(), &s, None, None).unwrap(), 0o2745);
        let outsider = Caller::new(OWNER, 555);
        assert_eq!(
            chown_checked(&outsider, &s, None, Some(555)).unwrap(),
            0o745
        );
        assert_eq!(
            chown_checked(&Caller::root(), &s, Some(1), None).unwrap(),
            0o2745
        );
        assert_eq!(
            chown_checked(&Caller::root(), &file(0o6755), Some(1), None).unwrap(),
            0o755
        );
        assert_eq!(
            chown_checked(&owner(), &dir(0o2775), None, None).unwrap(),
            0o2775
        );
        // A non-owner's no-op chown is fine unless it would strip a bit.
        assert_eq!(
            chown_checked(&member(), &file(0o644), None, None).unwrap(),
            0o644
        );
        assert!(matches!(
            chown_checked(&member(), &file(0o4755), None, None),
            Err(Error::Perm)
        ));
        assert!(matches!(
            chown_checked(&member(), &file(0o644), Some(2000), None),
            Err(Error::Perm)
        ));
    }

    #[test]
    fn write_clears_setid_bits_for_non_root() {
        assert_eq!(mode_after_write(0o4755, false), 0o755);
        assert_eq!(mode_after_write(0o6755, false), 0o755);
        assert_eq!(mode_after_write(0o2745, false), 0o2745);
        assert_eq!(mode_after_write(0o6755, true), 0o6755);
        assert_eq!(mode_after_write(0o1777, false), 0o1777);

        let s = file(0o6745);
        assert_eq!(mode_after_write_for(&member(), &s), 0o2745);
        assert_eq!(mode_after_write_for(&stranger(), &s), 0o745);
        assert_eq!(mode_after_write_for(&Caller::root(), &s), 0o6745);
        assert_eq!(mode_after_write_for(&member(), &file(0o2755)), 0o755);
        assert_eq!(mode_after_write_for(&stranger(), &dir(0o6775)), 0o6775);
    }

    #[test]
    fn utimes_rules() {
        let s = file(0o666);
        assert!(check_utimes(&owner(), &file(0), true).is_ok());
        assert!(check_utimes(&Caller::root(), &file(0), true).is_ok());
        assert!(matches!(
            check_utimes(&member(), &s, true),
            Err(Error::Perm)
        ));
        assert!(check_utimes(&member(), &s, false).is_ok());
        assert!(matches!(
            check_utimes(&member(), &file(0o644), false),
            Err(Error::Access)
        ));
        assert!(check_utimes(&owner(), &file(0), false).is_ok());
    }

    #[test]
    fn new_inode_gid_follows_a_setgid_parent() {
        let c = member();
        assert_eq!(
            initial_gid_and_mode(&c, 77, 0o755, false, 0o644),
            (GROUP, 0o644)
        );
        assert_eq!(
            initial_gid_and_mode(&c, 77, 0o2775, false, 0o644),
            (77, 0o644)
        );
        // New directories inherit S_ISGID only from a setgid parent.
        assert_eq!(
            initial_gid_and_mode(&c, 77, 0o2775, true, 0o755),
            (77, 0o2755)
        );
        assert_eq!(
            initial_gid_and_mode(&c, 77, 0o755, true, 0o755),
            (GROUP, 0o755)
        );
    }

    #[test]
    fn mkdir_ignores_requested_setid_bits_but_keeps_sticky() {
        let c = member();
        assert_eq!(
            initial_gid_and_mode(&c, 77, 0o755, true, 0o7777),
            (GROUP, 0o1777)
        );
        assert_eq!(
            initial_gid_and_mode(&c, 77, 0o2755, true, 0o4777),
            (77, 0o2777)
        );
    }

    #[test]
    fn new_file_loses_setgid_when_caller_is_outside_the_inherited_group() {
        let c = member();
        assert_eq!(
            initial_gid_and_mode(&c, 77, 0o2775, false, 0o2755),
            (77, 0o755)
        );
        // Without group exec it is a locking marker, which Linux keeps.
        assert_eq!(
            initial_gid_and_mode(&c, 77, 0o2775, false, 0o2745),
            (77, 0o2745)
        );
        let insider = Caller {
            groups: vec![77],
            ..member()
        };
        assert_eq!(
            initial_gid_and_mode(&insider, 77, 0o2775, false, 0o2755),
            (77, 0o2755)
        );
        assert_eq!(
            initial_gid_and_mode(&Caller::root(), 77, 0o2775, false, 0o2755),
            (77, 0o2755)
        );
        // In its own group (non-setgid parent) the caller keeps it.
        assert_eq!(
            initial_gid_and_mode(&c, 77, 0o755, false, 0o2755),
            (GROUP, 0o2755)
        );
        assert_eq!(
            initial_gid_and_mode(&c, 77, 0o755, false, 0o4755),
            (GROUP, 0o4755)
        );
    }
}
