//! POSIX.1e access control lists in Linux's xattr form, and the ACL rules of
//! `fs/posix_acl.c`: validation, the permission algorithm, inheritance on create, chmod,
//! and the mode update when an ACL is set.
//!
//! Pure functions over xattr values; storing, listing and removing the xattrs is the
//! Volume's job. The general permission rules (owner shortcut, root) are in
//! [`super::access`].
//!
//! Byte map of a `system.posix_acl_access` / `system.posix_acl_default` value:
//!
//! ```text
//! offset  size  field
//! 0       4     version   u32 LE, always 2
//! 4+8i    2     tag       u16 LE: USER_OBJ 0x01, USER 0x02, GROUP_OBJ 0x04,
//!                         GROUP 0x08, MASK 0x10, OTHER 0x20
//! 6+8i    2     perm      u16 LE: r=4, w=2, x=1
//! 8+8i    4     id        u32 LE: uid or gid for USER and GROUP, else 0xFFFFFFFF
//! ```
//!
//! Entries are written sorted by tag, then id.

use super::access::{Caller, S_ISGID, check_owner};
use crate::{Error, Result};

/// The xattr holding a file's access ACL.
pub const XATTR_ACCESS: &[u8] = b"system.posix_acl_access";
/// The xattr holding a directory's default ACL, inherited by new entries.
pub const XATTR_DEFAULT: &[u8] = b"system.posix_acl_default";
/// The id written for entries that name nobody (`ACL_UNDEFINED_ID`).
pub const ACL_UNDEFINED_ID: u32 = 0xFFFF_FFFF;

const VERSION: u32 = 2;
const HEADER_LEN: usize = 4;
const ENTRY_LEN: usize = 8;

const TAG_USER_OBJ: u16 = 0x01;
const TAG_USER: u16 = 0x02;
const TAG_GROUP_OBJ: u16 = 0x04;
const TAG_GROUP: u16 = 0x08;
const TAG_MASK: u16 = 0x10;
const TAG_OTHER: u16 = 0x20;

/// Whom an ACL entry applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclTag {
    /// The file's owner.
    UserObj,
    /// A named user.
    User(u32),
    /// The file's owning group.
    GroupObj,
    /// A named group.
    Group(u32),
    /// The upper bound for named entries and the owning group.
    Mask,
    /// Everyone else.
    Other,
}

impl AclTag {
    fn code(self) -> u16 {
        match self {
            AclTag::UserObj => TAG_USER_OBJ,
            AclTag::User(_) => TAG_USER,
            AclTag::GroupObj => TAG_GROUP_OBJ,
            AclTag::Group(_) => TAG_GROUP,
            AclTag::Mask => TAG_MASK,
            AclTag::Other => TAG_OTHER,
        }
    }

    fn id(self) -> u32 {
        match self {
            AclTag::User(id) | AclTag::Group(id) => id,
            _ => ACL_UNDEFINED_ID,
        }
    }

    fn sort_key(self) -> (u16, u32) {
        (self.code(), self.id())
    }
}

/// One ACL entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// Whom it applies to.
    pub tag: AclTag,
    /// Permission bits, `0..=7` (r=4, w=2, x=1).
    pub perm: u32,
}

/// A POSIX ACL; [`Acl::parse`] returns only valid ones, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// The entries, sorted by tag then id.
    pub entries: Vec<AclEntry>,
}

impl Acl {
    /// Decodes and validates an xattr value.
    ///
    /// `Err(Invalid)` on: a value shorter than its header, a version other than 2, a length
    /// not `4 + 8n`, an unknown tag, a named entry with the undefined id, a permission
    /// above 7, a missing or repeated USER_OBJ, GROUP_OBJ or OTHER, a repeated MASK or
    /// named entry, named entries without a MASK, or no entries at all. Unsorted entries
    /// are accepted (Linux itself would refuse them) and returned sorted.
    pub fn parse(bytes: &[u8]) -> Result<Acl> {
        match decode(bytes)? {
            Some(acl) => validate(acl),
            None => Err(Error::Invalid("posix acl: no entries")),
        }
    }

    /// Encodes the ACL in the xattr format, entries sorted by tag then id.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut entries: Vec<&AclEntry> = self.entries.iter().collect();
        entries.sort_by_key(|e| e.tag.sort_key());
        let mut out = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * entries.len());
        out.extend_from_slice(&VERSION.to_le_bytes());
        for e in entries {
            out.extend_from_slice(&e.tag.code().to_le_bytes());
            // Permissions are at most 7 in a valid ACL; masking keeps a hand-built one
            // from smuggling other bits into the u16.
            out.extend_from_slice(&((e.perm & 7) as u16).to_le_bytes());
            out.extend_from_slice(&e.tag.id().to_le_bytes());
        }
        out
    }

    /// The minimal ACL equivalent to the `0o777` part of `mode`.
    pub fn from_mode(mode: u32) -> Acl {
        Acl {
            entries: vec![
                AclEntry {
                    tag: AclTag::UserObj,
                    perm: (mode >> 6) & 7,
                },
                AclEntry {
                    tag: AclTag::GroupObj,
                    perm: (mode >> 3) & 7,
                },
                AclEntry {
                    tag: AclTag::Other,
                    perm: mode & 7,
                },
            ],
        }
    }

    /// True when the ACL is exactly USER_OBJ, GROUP_OBJ and OTHER, so the mode says it
    /// all. A MASK makes an ACL non-minimal even without named entries, as in Linux.
    pub fn is_minimal(&self) -> bool {
        self.entries.len() == 3
            && self.find(AclTag::UserObj).is_some()
            && self.find(AclTag::GroupObj).is_some()
            && self.find(AclTag::Other).is_some()
    }

    /// The `0o777` mode bits the ACL implies: owner from USER_OBJ, group from MASK if
    /// present else GROUP_OBJ, other from OTHER (`posix_acl_equiv_mode`).
    pub fn mode_bits(&self) -> u32 {
        let perm = |tag| self.find(tag).map_or(0, |e| e.perm & 7);
        let group = match self.find(AclTag::Mask) {
            Some(mask) => mask.perm & 7,
            None => perm(AclTag::GroupObj),
        };
        (perm(AclTag::UserObj) << 6) | (group << 3) | perm(AclTag::Other)
    }

    /// The ACL after a chmod to `mode` (`posix_acl_chmod`): USER_OBJ, OTHER, and MASK (or
    /// GROUP_OBJ when there is no mask) take the mode's bits; named entries and a masked
    /// GROUP_OBJ keep theirs.
    pub fn with_mode(&self, mode: u32) -> Acl {
        let has_mask = self.find(AclTag::Mask).is_some();
        let mut acl = self.clone();
        for e in &mut acl.entries {
            match e.tag {
                AclTag::UserObj => e.perm = (mode >> 6) & 7,
                AclTag::Mask => e.perm = (mode >> 3) & 7,
                AclTag::GroupObj if !has_mask => e.perm = (mode >> 3) & 7,
                AclTag::Other => e.perm = mode & 7,
                _ => {}
            }
        }
        acl
    }

    /// The POSIX.1e access algorithm (`posix_acl_permission`) for a non-root caller:
    /// the owner gets USER_OBJ; a named user gets its entry limited by the mask; else if
    /// any matching group entry (owning group or named) grants every wanted bit, the
    /// answer is whether the mask does too; a caller matching some group entry but
    /// granted by none is denied; only a caller matching nothing gets OTHER.
    ///
    /// [`super::access::check`] decides when Linux consults the ACL at all.
    pub fn permits(&self, caller: &Caller, owner_uid: u32, owner_gid: u32, want: u32) -> bool {
        let want = want & 7;
        let grants = |perm: u32| perm & want == want;
        let mask = self.find(AclTag::Mask).map_or(7, |e| e.perm);
        if caller.uid == owner_uid {
            return self.find(AclTag::UserObj).is_some_and(|e| grants(e.perm));
        }
        if let Some(e) = self.find(AclTag::User(caller.uid)) {
            return grants(e.perm & mask);
        }
        let mut in_some_group = false;
        for e in &self.entries {
            let matches = match e.tag {
                AclTag::GroupObj => caller.in_group(owner_gid),
                AclTag::Group(gid) => caller.in_group(gid),
                _ => false,
            };
            if matches {
                in_some_group = true;
                if grants(e.perm) {
                    return grants(e.perm & mask);
                }
            }
        }
        !in_some_group && self.find(AclTag::Other).is_some_and(|e| grants(e.perm))
    }

    fn find(&self, tag: AclTag) -> Option<&AclEntry> {
        self.entries.iter().find(|e| e.tag == tag)
    }
}

/// The structural half of parsing (Linux's `posix_acl_from_xattr`): header, length,
/// tags, named ids. An empty value or a bare header is `None`, which Linux treats as
/// "no ACL" when setting one.
fn decode(bytes: &[u8]) -> Result<Option<Acl>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(Error::Invalid("posix acl: value shorter than its header"));
    };
    if u32::from_le_bytes(*header) != VERSION {
        return Err(Error::Invalid("posix acl: unsupported version"));
    }
    if body.len() % ENTRY_LEN != 0 {
        return Err(Error::Invalid("posix acl: length is not 4 + 8n bytes"));
    }
    if body.is_empty() {
        return Ok(None);
    }
    let mut entries = Vec::with_capacity(body.len() / ENTRY_LEN);
    for raw in body.chunks_exact(ENTRY_LEN) {
        let tag = u16::from_le_bytes([raw[0], raw[1]]);
        let perm = u16::from_le_bytes([raw[2], raw[3]]);
        let id = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
        let tag = match tag {
            TAG_USER_OBJ => AclTag::UserObj,
            TAG_GROUP_OBJ => AclTag::GroupObj,
            TAG_MASK => AclTag::Mask,
            TAG_OTHER => AclTag::Other,
            TAG_USER | TAG_GROUP if id == ACL_UNDEFINED_ID => {
                return Err(Error::Invalid("posix acl: named entry without an id"));
            }
            TAG_USER => AclTag::User(id),
            TAG_GROUP => AclTag::Group(id),
            _ => return Err(Error::Invalid("posix acl: unknown tag")),
        };
        entries.push(AclEntry {
            tag,
            perm: u32::from(perm),
        });
    }
    Ok(Some(Acl { entries }))
}

/// The semantic half of parsing (Linux's `posix_acl_valid`, plus duplicate named
/// entries, which libacl refuses); sorts the entries.
fn validate(mut acl: Acl) -> Result<Acl> {
    if acl.entries.iter().any(|e| e.perm > 7) {
        return Err(Error::Invalid("posix acl: permission above rwx"));
    }
    acl.entries.sort_by_key(|e| e.tag.sort_key());
    if acl.entries.windows(2).any(|w| w[0].tag == w[1].tag) {
        return Err(Error::Invalid("posix acl: duplicate entry"));
    }
    let has = |tag| acl.find(tag).is_some();
    if !(has(AclTag::UserObj) && has(AclTag::GroupObj) && has(AclTag::Other)) {
        return Err(Error::Invalid(
            "posix acl: USER_OBJ, GROUP_OBJ or OTHER missing",
        ));
    }
    let has_named = acl
        .entries
        .iter()
        .any(|e| matches!(e.tag, AclTag::User(_) | AclTag::Group(_)));
    if has_named && !has(AclTag::Mask) {
        return Err(Error::Invalid("posix acl: named entries need a MASK"));
    }
    Ok(acl)
}

/// What a new inode gets from its parent directory's default ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateAttrs {
    /// The mode to store (permission bits plus the requested special bits).
    pub mode: u32,
    /// The `system.posix_acl_access` value to store, if any.
    pub access_acl: Option<Vec<u8>>,
    /// The `system.posix_acl_default` value to store (directories only), if any.
    pub default_acl: Option<Vec<u8>>,
}

/// The mode and ACLs of a new inode (`posix_acl_create`). Pass the mode returned by
/// [`super::access::initial_gid_and_mode`]. Not for symlinks, which Linux creates
/// `0o777` with no ACL and no umask.
///
/// - No default ACL on the parent (or a malformed one, treated as none; Linux would
///   fail the create with EINVAL): `mode & !umask`, no ACLs.
/// - A default ACL: the umask is **not** applied. The access ACL is the default ACL with
///   USER_OBJ, OTHER and MASK (GROUP_OBJ when there is no mask) limited by the mode's
///   bits (`posix_acl_create_masq`); the mode's permission bits become the ACL's, its
///   special bits pass through. The access ACL is stored only if not minimal. A new
///   directory also gets the parent's default ACL as its own.
pub fn on_create(
    parent_default_acl: Option<&[u8]>,
    mode: u32,
    umask: u32,
    is_dir: bool,
) -> CreateAttrs {
    let Some(default) = parent_default_acl.and_then(|raw| Acl::parse(raw).ok()) else {
        // Linux's umask only ever holds permission bits; special bits are never masked.
        return CreateAttrs {
            mode: mode & !(umask & 0o777),
            access_acl: None,
            default_acl: None,
        };
    };
    let has_mask = default.find(AclTag::Mask).is_some();
    let mut access = default.clone();
    for e in &mut access.entries {
        match e.tag {
            AclTag::UserObj => e.perm &= (mode >> 6) & 7,
            AclTag::Mask => e.perm &= (mode >> 3) & 7,
            AclTag::GroupObj if !has_mask => e.perm &= (mode >> 3) & 7,
            AclTag::Other => e.perm &= mode & 7,
            _ => {}
        }
    }
    CreateAttrs {
        mode: (mode & !0o777) | access.mode_bits(),
        access_acl: (!access.is_minimal()).then(|| access.to_bytes()),
        default_acl: is_dir.then(|| default.to_bytes()),
    }
}

/// A setxattr of `system.posix_acl_access` (`posix_acl_update_mode`): validates the value
/// and returns the new mode (`mode`'s special bits | the ACL's mode bits) and the value
/// to store, `None` meaning "remove the xattr" because the mode says it all.
///
/// An empty value or a bare header removes the ACL and leaves the mode alone, as in
/// Linux. This does not check who may set it: see [`on_set_access_acl_by`].
pub fn on_set_access_acl(value: &[u8], mode: u32) -> Result<(u32, Option<Vec<u8>>)> {
    match decode(value)? {
        None => Ok((mode, None)),
        Some(acl) => Ok(update_mode(validate(acl)?, mode)),
    }
}

fn update_mode(acl: Acl, mode: u32) -> (u32, Option<Vec<u8>>) {
    let mode = (mode & !0o777) | acl.mode_bits();
    let stored = (!acl.is_minimal()).then(|| acl.to_bytes());
    (mode, stored)
}

/// [`on_set_access_acl`] with Linux's caller rules: only the owner or root may set or
/// remove an ACL (`Err(Perm)`, checked after the value's structure as Linux does), and
/// setting one clears `S_ISGID` when a non-root caller is not in `owner_gid`.
pub fn on_set_access_acl_by(
    caller: &Caller,
    owner_uid: u32,
    owner_gid: u32,
    value: &[u8],
    mode: u32,
) -> Result<(u32, Option<Vec<u8>>)> {
    let decoded = decode(value)?;
    check_owner(caller, owner_uid)?;
    let Some(acl) = decoded else {
        return Ok((mode, None));
    };
    let (mut mode, stored) = update_mode(validate(acl)?, mode);
    if !caller.is_root() && !caller.in_group(owner_gid) {
        mode &= !S_ISGID;
    }
    Ok((mode, stored))
}

/// A setxattr of `system.posix_acl_default`: returns the value to store, or `None` for
/// "remove the xattr" (an empty value or a bare header).
///
/// A non-directory refuses a default ACL with `Err(Access)` but accepts its removal;
/// only the owner or root may set one (`Err(Perm)`). Unlike an access ACL, a minimal
/// default ACL is stored: it still replaces the umask for new entries.
pub fn on_set_default_acl(
    caller: &Caller,
    owner_uid: u32,
    is_dir: bool,
    value: &[u8],
) -> Result<Option<Vec<u8>>> {
    let decoded = decode(value)?;
    if !is_dir {
        return match decoded {
            Some(_) => Err(Error::Access),
            None => Ok(None),
        };
    }
    check_owner(caller, owner_uid)?;
    match decoded {
        None => Ok(None),
        Some(acl) => Ok(Some(validate(acl)?.to_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn raw(version: u32, entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut out = version.to_le_bytes().to_vec();
        for &(tag, perm, id) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&perm.to_le_bytes());
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    const U: u32 = ACL_UNDEFINED_ID;

    fn acl(entries: &[(AclTag, u32)]) -> Acl {
        Acl {
            entries: entries
                .iter()
                .map(|&(tag, perm)| AclEntry { tag, perm })
                .collect(),
        }
    }

    fn invalid(bytes: &[u8]) -> &'static str {
        match Acl::parse(bytes) {
            Err(Error::Invalid(why)) => why,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn full() -> Acl {
        acl(&[
            (AclTag::UserObj, 7),
            (AclTag::User(1001), 6),
            (AclTag::User(1002), 4),
            (AclTag::GroupObj, 5),
            (AclTag::Group(50), 4),
            (AclTag::Mask, 6),
            (AclTag::Other, 1),
        ])
    }

    #[test]
    fn parses_the_linux_byte_layout() {
        let bytes = raw(
            2,
            &[
                (0x01, 6, U),
                (0x02, 7, 1001),
                (0x04, 4, U),
                (0x10, 5, U),
                (0x20, 0, U),
            ],
        );
        let parsed = Acl::parse(&bytes).unwrap();
        assert_eq!(
            parsed,
            acl(&[
                (AclTag::UserObj, 6),
                (AclTag::User(1001), 7),
                (AclTag::GroupObj, 4),
                (AclTag::Mask, 5),
                (AclTag::Other, 0),
            ])
        );
        assert_eq!(parsed.to_bytes(), bytes);
    }

    #[test]
    fn parse_rejects_each_malformed_case() {
        let minimal = [(0x01, 6, U), (0x04, 4, U), (0x20, 4, U)];
        assert!(Acl::parse(&raw(2, &minimal)).is_ok());

        assert!(invalid(&[]).contains("no entries"));
        assert!(invalid(&[2, 0, 0]).contains("header"));
        assert!(invalid(&raw(2, &[])).contains("no entries"));
        assert!(invalid(&raw(1, &minimal)).contains("version"));
        let mut truncated = raw(2, &minimal);
        truncated.pop();
        assert!(invalid(&truncated).contains("4 + 8n"));
        assert!(invalid(&raw(2, &[(0x01, 6, U), (0x40, 4, U), (0x20, 4, U)])).contains("tag"));
        assert!(invalid(&raw(2, &[(0x01, 8, U), (0x04, 4, U), (0x20, 4, U)])).contains("rwx"));
        assert!(invalid(&raw(2, &[(0x04, 4, U), (0x20, 4, U)])).contains("missing"));
        assert!(invalid(&raw(2, &[(0x01, 6, U), (0x20, 4, U)])).contains("missing"));
        assert!(invalid(&raw(2, &[(0x01, 6, U), (0x04, 4, U)])).contains("missing"));
        let dup_owner = [(0x01, 6, U), (0x01, 4, U), (0x04, 4, U), (0x20, 4, U)];
        assert!(invalid(&raw(2, &dup_owner)).contains("duplicate"));
        let dup_user = [
            (0x01, 6, U),
            (0x02, 4, 7),
            (0x02, 6, 7),
            (0x04, 4, U),
            (0x10, 6, U),
            (0x20, 4, U),
        ];
        assert!(invalid(&raw(2, &dup_user)).contains("duplicate"));
        let dup_mask = [
            (0x01, 6, U),
            (0x04, 4, U),
            (0x10, 6, U),
            (0x10, 4, U),
            (0x20, 4, U),
        ];
        assert!(invalid(&raw(2, &dup_mask)).contains("duplicate"));
        let no_mask = [(0x01, 6, U), (0x08, 4, 9), (0x04, 4, U), (0x20, 4, U)];
        assert!(invalid(&raw(2, &no_mask)).contains("MASK"));
        let undefined_id = [
            (0x01, 6, U),
            (0x02, 4, U),
            (0x04, 4, U),
            (0x10, 4, U),
            (0x20, 4, U),
        ];
        assert!(invalid(&raw(2, &undefined_id)).contains("id"));
    }

    #[test]
    fn parse_accepts_unsorted_input_and_normalises_unused_ids() {
        let bytes = raw(
            2,
            &[
                (0x20, 4, 0),
                (0x08, 5, 30),
                (0x02, 6, 20),
                (0x10, 7, 123),
                (0x08, 1, 10),
                (0x04, 4, 5),
                (0x02, 2, 10),
                (0x01, 7, 99),
            ],
        );
        let parsed = Acl::parse(&bytes).unwrap();
        assert_eq!(
            parsed,
            acl(&[
                (AclTag::UserObj, 7),
                (AclTag::User(10), 2),
                (AclTag::User(20), 6),
                (AclTag::GroupObj, 4),
                (AclTag::Group(10), 1),
                (AclTag::Group(30), 5),
                (AclTag::Mask, 7),
                (AclTag::Other, 4),
            ])
        );
        let canonical = parsed.to_bytes();
        assert_eq!(&canonical[4..12], &raw(2, &[(0x01, 7, U)])[4..]);
        assert_eq!(Acl::parse(&canonical).unwrap(), parsed);
    }

    #[test]
    fn mask_without_named_entries_is_valid_and_not_minimal() {
        let four = raw(2, &[(0x01, 6, U), (0x04, 4, U), (0x10, 6, U), (0x20, 4, U)]);
        let parsed = Acl::parse(&four).unwrap();
        assert!(!parsed.is_minimal());
        assert_eq!(parsed.mode_bits(), 0o664);
    }

    #[test]
    fn from_mode_is_minimal_and_round_trips() {
        for mode in [0, 0o640, 0o777, 0o4751] {
            let a = Acl::from_mode(mode);
            assert!(a.is_minimal());
            assert_eq!(a.mode_bits(), mode & 0o777);
            assert_eq!(Acl::parse(&a.to_bytes()).unwrap(), a);
        }
        assert!(!full().is_minimal());
    }

    #[test]
    fn mode_bits_take_the_group_class_from_the_mask() {
        assert_eq!(full().mode_bits(), 0o761);
        let mut no_mask = Acl::from_mode(0o751);
        assert_eq!(no_mask.mode_bits(), 0o751);
        no_mask.entries[1].perm = 2;
        assert_eq!(no_mask.mode_bits(), 0o721);
    }

    #[test]
    fn with_mode_rewrites_owner_mask_and_other_only() {
        let changed = full().with_mode(0o4750);
        assert_eq!(
            changed,
            acl(&[
                (AclTag::UserObj, 7),
                (AclTag::User(1001), 6),
                (AclTag::User(1002), 4),
                (AclTag::GroupObj, 5),
                (AclTag::Group(50), 4),
                (AclTag::Mask, 5),
                (AclTag::Other, 0),
            ])
        );
        assert_eq!(changed.mode_bits(), 0o750);
        assert_eq!(
            Acl::from_mode(0o644).with_mode(0o715),
            Acl::from_mode(0o715)
        );
    }

    #[test]
    fn permits_follows_posix_1e() {
        let a = full();
        let owner = Caller::new(1000, 1);
        assert!(a.permits(&owner, 1000, 100, 7));
        // Named user 1001: rw- limited by mask rw-.
        let u1 = Caller::new(1001, 1);
        assert!(a.permits(&u1, 1000, 100, 6));
        assert!(!a.permits(&u1, 1000, 100, 1));
        // Named user 1002 is in group 50 too: the user entry decides, groups are not tried.
        let u2 = Caller {
            groups: vec![50],
            ..Caller::new(1002, 1)
        };
        assert!(a.permits(&u2, 1000, 100, 4));
        assert!(!a.permits(&u2, 1000, 100, 2));
        // Owning group r-x, masked by rw-: read only.
        let g = Caller::new(3000, 100);
        assert!(a.permits(&g, 1000, 100, 4));
        assert!(!a.permits(&g, 1000, 100, 1));
        // Matching groups but none grants write: denied, not sent to other.
        assert!(!a.permits(&g, 1000, 100, 2));
        let other = Caller::new(4000, 400);
        assert!(a.permits(&other, 1000, 100, 1));
        assert!(!a.permits(&other, 1000, 100, 4));
    }

    #[test]
    fn on_create_without_default_acl_applies_the_umask() {
        let attrs = on_create(None, 0o666, 0o022, false);
        assert_eq!(
            attrs,
            CreateAttrs {
                mode: 0o644,
                access_acl: None,
                default_acl: None
            }
        );
        assert_eq!(on_create(None, 0o2777, 0o027, true).mode, 0o2750);
        // A damaged default ACL counts as none.
        let attrs = on_create(Some(&[2, 0, 0, 0, 1]), 0o777, 0o077, true);
        assert_eq!(attrs.mode, 0o700);
        assert_eq!(attrs.default_acl, None);
    }

    #[test]
    fn on_create_with_default_acl_masks_it_by_the_mode_and_ignores_the_umask() {
        let default = acl(&[
            (AclTag::UserObj, 7),
            (AclTag::User(1001), 7),
            (AclTag::GroupObj, 5),
            (AclTag::Mask, 7),
            (AclTag::Other, 5),
        ])
        .to_bytes();
        let attrs = on_create(Some(&default), 0o666, 0o077, false);
        assert_eq!(attrs.mode, 0o664);
        let access = Acl::parse(attrs.access_acl.as_deref().unwrap()).unwrap();
        assert_eq!(
            access,
            acl(&[
                (AclTag::UserObj, 6),
                (AclTag::User(1001), 7),
                (AclTag::GroupObj, 5),
                (AclTag::Mask, 6),
                (AclTag::Other, 4),
            ])
        );
        assert_eq!(attrs.default_acl, None);

        let attrs = on_create(Some(&default), 0o2777, 0o077, true);
        assert_eq!(attrs.mode, 0o2775);
        assert_eq!(attrs.default_acl.as_deref(), Some(&default[..]));
        assert!(attrs.access_acl.is_some());
    }

    #[test]
    fn on_create_with_minimal_default_acl_stores_no_access_acl() {
        let default = Acl::from_mode(0o750).to_bytes();
        let attrs = on_create(Some(&default), 0o4777, 0o022, false);
        assert_eq!(attrs.mode, 0o4750);
        assert_eq!(attrs.access_acl, None);
        assert_eq!(attrs.default_acl, None);
        let attrs = on_create(Some(&default), 0o777, 0o022, true);
        assert_eq!(attrs.mode, 0o750);
        assert_eq!(attrs.default_acl, Some(default));
    }

    #[test]
    fn on_set_access_acl_minimal_vs_not() {
        let minimal = Acl::from_mode(0o640).to_bytes();
        assert_eq!(on_set_access_acl(&minimal, 0o6777).unwrap(), (0o6640, None));
        let bytes = full().to_bytes();
        let (mode, stored) = on_set_access_acl(&bytes, 0o1000).unwrap();
        assert_eq!(mode, 0o1761);
        assert_eq!(stored, Some(bytes));
        // Unsorted input is stored sorted.
        let unsorted = raw(
            2,
            &[
                (0x20, 0, U),
                (0x10, 4, U),
                (0x04, 4, U),
                (0x02, 7, 5),
                (0x01, 6, U),
            ],
        );
        let (mode, stored) = on_set_access_acl(&unsorted, 0).unwrap();
        assert_eq!(mode, 0o640);
        assert_eq!(Acl::parse(&unsorted).unwrap().to_bytes(), stored.unwrap());
        assert!(matches!(
            on_set_access_acl(&raw(2, &[(0x01, 6, U)]), 0o644),
            Err(Error::Invalid(_))
        ));
        // Empty value or bare header: remove, mode unchanged.
        assert_eq!(on_set_access_acl(&[], 0o2755).unwrap(), (0o2755, None));
        assert_eq!(
            on_set_access_acl(&raw(2, &[]), 0o755).unwrap(),
            (0o755, None)
        );
    }

    #[test]
    fn on_set_access_acl_by_checks_the_owner_and_setgid() {
        let bytes = full().to_bytes();
        let owner = Caller::new(1000, 100);
        assert!(matches!(
            on_set_access_acl_by(&Caller::new(7, 100), 1000, 100, &bytes, 0o644),
            Err(Error::Perm)
        ));
        assert!(matches!(
            on_set_access_acl_by(&Caller::new(7, 100), 1000, 100, &[], 0o644),
            Err(Error::Perm)
        ));
        // A structurally broken value is EINVAL whoever asks.
        assert!(matches!(
            on_set_access_acl_by(&Caller::new(7, 100), 1000, 100, &[9], 0o644),
            Err(Error::Invalid(_))
        ));
        let (mode, _) = on_set_access_acl_by(&owner, 1000, 100, &bytes, 0o2000).unwrap();
        assert_eq!(mode, 0o2761);
        let outsider = Caller::new(1000, 555);
        let (mode, _) = on_set_access_acl_by(&outsider, 1000, 100, &bytes, 0o2000).unwrap();
        assert_eq!(mode, 0o761);
        let (mode, _) = on_set_access_acl_by(&Caller::root(), 1000, 100, &bytes, 0o2000).unwrap();
        assert_eq!(mode, 0o2761);
        // Removing keeps the mode as it is.
        assert_eq!(
            on_set_access_acl_by(&outsider, 1000, 100, &[], 0o2755).unwrap(),
            (0o2755, None)
        );
    }

    #[test]
    fn on_set_default_acl_rules() {
        let owner = Caller::new(1000, 100);
        let minimal = Acl::from_mode(0o750).to_bytes();
        assert_eq!(
            on_set_default_acl(&owner, 1000, true, &minimal).unwrap(),
            Some(minimal.clone())
        );
        assert!(matches!(
            on_set_default_acl(&owner, 1000, false, &minimal),
            Err(Error::Access)
        ));
        assert_eq!(on_set_default_acl(&owner, 1000, false, &[]).unwrap(), None);
        assert_eq!(
            on_set_default_acl(&owner, 1000, true, &raw(2, &[])).unwrap(),
            None
        );
        assert!(matches!(
            on_set_default_acl(&Caller::new(7, 7), 1000, true, &minimal),
            Err(Error::Perm)
        ));
        assert!(matches!(
            on_set_default_acl(&owner, 1000, true, &raw(2, &[(0x01, 6, U)])),
            Err(Error::Invalid(_))
        ));
    }

    fn entry_strategy() -> impl Strategy<Value = (u16, u16, u32)> {
        (
            prop::sample::select(vec![0x01u16, 0x02, 0x04, 0x08, 0x10, 0x20]),
            0u16..8,
            prop::sample::select(vec![0u32, 1, 2, 1000, ACL_UNDEFINED_ID]),
        )
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
            // With a valid header prepended the entry decoder sees the random bytes too.
            let mut headed = VERSION.to_le_bytes().to_vec();
            headed.extend_from_slice(&bytes);
            for value in [&bytes, &headed] {
                let _ = Acl::parse(value);
                let _ = on_set_access_acl(value, 0o644);
                let _ = on_set_default_acl(&Caller::new(1, 1), 1, true, value);
                let _ = on_create(Some(value), 0o666, 0o022, true);
            }
        }

        #[test]
        fn valid_acls_round_trip_and_are_order_independent(
            perms in prop::array::uniform4(0u32..8),
            users in prop::collection::btree_map(0u32..5000, 0u32..8, 0..4),
            groups in prop::collection::btree_map(0u32..5000, 0u32..8, 0..4),
            want_mask in any::<bool>(),
            rotate in 0usize..16,
        ) {
            let has_mask = want_mask || !users.is_empty() || !groups.is_empty();
            let mut entries = vec![
                AclEntry { tag: AclTag::UserObj, perm: perms[0] },
                AclEntry { tag: AclTag::GroupObj, perm: perms[1] },
                AclEntry { tag: AclTag::Other, perm: perms[2] },
            ];
            if has_mask {
                entries.push(AclEntry { tag: AclTag::Mask, perm: perms[3] });
            }
            entries.extend(users.iter().map(|(&id, &perm)| AclEntry { tag: AclTag::User(id), perm }));
            entries.extend(groups.iter().map(|(&id, &perm)| AclEntry { tag: AclTag::Group(id), perm }));
            let len = entries.len();
            entries.rotate_left(rotate % len);
            let shuffled = Acl { entries };
            let parsed = Acl::parse(&shuffled.to_bytes()).unwrap();
            prop_assert_eq!(parsed.to_bytes(), shuffled.to_bytes());
            prop_assert_eq!(Acl::parse(&parsed.to_bytes()).unwrap(), parsed.clone());
            prop_assert_eq!(parsed.is_minimal(), !has_mask);
            let group_bits = if has_mask { perms[3] } else { perms[1] };
            prop_assert_eq!(parsed.mode_bits(), (perms[0] << 6) | (group_bits << 3) | perms[2]);
            let mut unsorted = raw(2, &[]);
            for e in &shuffled.entries {
                unsorted.extend_from_slice(&raw(2, &[(e.tag.code(), e.perm as u16, e.tag.id())])[4..]);
            }
            prop_assert_eq!(Acl::parse(&unsorted).unwrap(), parsed);
        }

        #[test]
        fn random_entries_parse_to_canonical_acls(entries in prop::collection::vec(entry_strategy(), 0..10)) {
            let bytes = raw(2, &entries);
            if let Ok(parsed) = Acl::parse(&bytes) {
                let canonical = parsed.to_bytes();
                prop_assert_eq!(Acl::parse(&canonical).unwrap(), parsed.clone());
                prop_assert_eq!(Acl::parse(&canonical).unwrap().to_bytes(), canonical);
                prop_assert!(parsed.mode_bits() <= 0o777);
            }
        }

        #[test]
        fn check_never_panics_on_random_acls(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            mode in 0u32..0o10000,
            uid in 0u32..3,
            want in 0u32..8,
        ) {
            use super::super::access::{Subject, check};
            let subject = Subject { uid: 1, gid: 1, mode, is_dir: false, acl: Some(&bytes) };
            let _ = check(&Caller::new(uid, 1), &subject, want);
        }
    }
}
