//! Names for reports: the paths that lead to an inode. Names are bytes; they become text
//! only here, for display, and lossily.

use crate::meta::{FileKind, Table};
use crate::types::InodeId;
use std::collections::{HashMap, VecDeque};

/// Paths kept per inode (hard links beyond this are not listed).
const MAX_PATHS_PER_INODE: usize = 4;

/// Every inode reachable from the root with up to four of its paths (bytes), built in
/// one walk of the tree.
pub fn all_paths(table: &Table) -> HashMap<InodeId, Vec<Vec<u8>>> {
    let mut paths: HashMap<InodeId, Vec<Vec<u8>>> = HashMap::new();
    paths.insert(InodeId::ROOT, vec![b"/".to_vec()]);
    let mut queue = VecDeque::from([(InodeId::ROOT, Vec::new())]);
    let mut seen_dirs = std::collections::HashSet::from([InodeId::ROOT]);
    while let Some((dir, prefix)) = queue.pop_front() {
        let Some(d) = table.dirs.get(&dir) else {
            continue;
        };
        let mut names: Vec<(&Vec<u8>, InodeId)> =
            d.entries.iter().map(|(n, e)| (n, e.ino)).collect();
        names.sort();
        for (name, ino) in names {
            let mut path = prefix.clone();
            path.push(b'/');
            path.extend_from_slice(name);
            let list = paths.entry(ino).or_default();
            if list.len() < MAX_PATHS_PER_INODE {
                list.push(path.clone());
            }
            let is_dir = table
                .inodes
                .get(&ino)
                .is_some_and(|i| i.kind == FileKind::Directory);
            if is_dir && seen_dirs.insert(ino) {
                queue.push_back((ino, path));
            }
        }
    }
    paths
}

/// A path as text, lossily.
pub fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// How to name `ino` in a message: its first path, or "inode N" when it has none.
pub fn describe(paths: &HashMap<InodeId, Vec<Vec<u8>>>, ino: InodeId) -> String {
    match paths.get(&ino).and_then(|p| p.first()) {
        Some(path) => format!("inode {ino} ({})", show(path)),
        None => format!("inode {ino}"),
    }
}

/// The path of an entry `name` in directory `dir`, as text.
pub fn entry_path(paths: &HashMap<InodeId, Vec<Vec<u8>>>, dir: InodeId, name: &[u8]) -> String {
    let mut path = match paths.get(&dir).and_then(|p| p.first()) {
        Some(p) if p.as_slice() == b"/" => Vec::new(),
        Some(p) => p.clone(),
        None => format!("<inode {dir}>").into_bytes(),
    };
    path.push(b'/');
    path.extend_from_slice(name);
    show(&path)
}
