use super::*;
use crate::{CodeReloc, JitOptions, RelocKind, RelocTarget};
use vssa::{Graph, Type};

/// A test's scratch folder, removed when the test is done with it.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir =
        std::env::temp_dir().join(format!("vssa-backend-stored-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn key(n: u8) -> SealKey {
    SealKey::from_bytes([n; 32])
}

const TARGET: [u8; 32] = [7; 32];

fn code_key(n: u8) -> Addr {
    Addr([n; 16])
}

fn image(n: u8, len: usize) -> CodeImage {
    CodeImage {
        bytes: vec![n; len],
        align: 16,
        relocs: vec![CodeReloc {
            offset: 0,
            kind: RelocKind::Abs8,
            target: RelocTarget::Host(0),
            addend: 0,
        }],
    }
}

/// A store at `path` holding `entries`, saved under key 1.
fn saved(path: &Path, entries: &[(u8, usize)]) {
    let mut s = CodeStore::open(path, TARGET, DEFAULT_STORE_BYTES, Some(key(1)));
    for &(n, len) in entries {
        s.put(code_key(n), &image(n, len));
    }
    s.save(&key(1));
    assert!(s.take_warnings().is_empty());
}

fn reopen(path: &Path) -> CodeStore {
    CodeStore::open(path, TARGET, DEFAULT_STORE_BYTES, Some(key(1)))
}

#[test]
fn entries_come_back_in_the_next_process() {
    let dir = scratch("round");
    let path = dir.join("p.log.code");
    saved(&path, &[(1, 40), (2, 50)]);
    let mut s = reopen(&path);
    assert_eq!(s.get(&code_key(1)), Some(image(1, 40)));
    assert_eq!(s.get(&code_key(2)), Some(image(2, 50)));
    assert_eq!(s.get(&code_key(3)), None);
    assert_eq!((s.stats().misses, s.stats().rejected), (1, 0));
    assert!(s.take_warnings().is_empty());
}

#[test]
fn an_entry_with_a_flipped_byte_is_not_used_and_is_rewritten() {
    let dir = scratch("flip");
    let path = dir.join("p.log.code");
    saved(&path, &[(1, 40), (2, 50)]);
    let clean = std::fs::read(&path).unwrap();
    // Every byte after the magic, flipped one at a time: no entry that
    // differs from what was stored is ever handed out.
    for at in MAGIC.len()..clean.len() {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let mut s = reopen(&path);
        for n in [1, 2] {
            if let Some(img) = s.get(&code_key(n)) {
                assert_eq!(img, image(n, if n == 1 { 40 } else { 50 }), "byte {at}");
            }
        }
    }
    // A flipped code byte: that entry is rejected, the other still used,
    // and the save writes it anew.
    let mut bytes = clean.clone();
    let first_code = clean.windows(40).position(|w| w == [1u8; 40]).unwrap();
    bytes[first_code + 5] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let mut s = reopen(&path);
    assert_eq!(s.get(&code_key(1)), None);
    assert_eq!(s.stats().rejected, 1);
    assert!(s.take_warnings()[0].contains("seal does not verify"));
    assert_eq!(s.get(&code_key(2)), Some(image(2, 50)));
    s.put(code_key(1), &image(1, 40));
    s.save(&key(1));
    let mut s = reopen(&path);
    assert_eq!(s.get(&code_key(1)), Some(image(1, 40)));
    assert_eq!(s.stats().rejected, 0);
}

#[test]
fn an_entry_sealed_under_another_key_is_not_used() {
    let dir = scratch("otherkey");
    let path = dir.join("p.log.code");
    saved(&path, &[(1, 40)]);
    let mut s = CodeStore::open(&path, TARGET, DEFAULT_STORE_BYTES, Some(key(2)));
    assert_eq!(s.get(&code_key(1)), None);
    assert_eq!(s.stats().rejected, 1);
    // Without any key nothing is used either.
    let mut s = CodeStore::open(&path, TARGET, DEFAULT_STORE_BYTES, None);
    assert_eq!(s.get(&code_key(1)), None);
    // Saving under key 2 drops the entry it cannot verify.
    let mut s = CodeStore::open(&path, TARGET, DEFAULT_STORE_BYTES, Some(key(2)));
    s.put(code_key(3), &image(3, 8));
    s.save(&key(2));
    let sum = summarize(&path, Some(&TARGET), Some(&key(2)))
        .unwrap()
        .unwrap();
    assert_eq!((sum.entries, sum.sealed), (1, 1));
}

#[test]
fn an_entry_for_another_target_is_not_used_but_kept() {
    let dir = scratch("target");
    let path = dir.join("p.log.code");
    saved(&path, &[(1, 40)]);
    let mut s = CodeStore::open(&path, [8; 32], DEFAULT_STORE_BYTES, Some(key(1)));
    assert_eq!(s.get(&code_key(1)), None);
    assert_eq!(s.stats().misses, 1);
    s.put(code_key(1), &image(1, 30));
    s.save(&key(1));
    // Both targets' code is in the file now, each found by its own.
    assert_eq!(reopen(&path).get(&code_key(1)), Some(image(1, 40)));
    let mut other = CodeStore::open(&path, [8; 32], DEFAULT_STORE_BYTES, Some(key(1)));
    assert_eq!(other.get(&code_key(1)), Some(image(1, 30)));
}

#[test]
fn a_truncated_file_keeps_the_entries_before_the_cut() {
    let dir = scratch("trunc");
    let path = dir.join("p.log.code");
    saved(&path, &[(1, 40), (2, 50)]);
    let clean = std::fs::read(&path).unwrap();
    for cut in 0..clean.len() {
        std::fs::write(&path, &clean[..cut]).unwrap();
        let mut s = reopen(&path);
        let found = [1, 2]
            .iter()
            .filter(|&&n| s.get(&code_key(n)).is_some())
            .count();
        assert!(found < 2, "cut {cut}");
        if cut > MAGIC.len() {
            assert!(!s.take_warnings().is_empty() || found == 1, "cut {cut}");
        }
    }
}

#[test]
fn saving_evicts_the_least_recently_used_to_fit_the_budget() {
    let dir = scratch("evict");
    let path = dir.join("p.log.code");
    saved(&path, &[(1, 1000)]);
    saved(&path, &[(2, 1000)]);
    let size = std::fs::metadata(&path).unwrap().len() - MAGIC.len() as u64;
    // Room for two entries: 1 is the older, and goes when 3 comes.
    let budget = size;
    let mut s = CodeStore::open(&path, TARGET, budget, Some(key(1)));
    s.put(code_key(3), &image(3, 1000));
    s.save(&key(1));
    let mut s = reopen(&path);
    assert!(s.get(&code_key(3)).is_some());
    assert!(s.get(&code_key(2)).is_some());
    assert!(s.get(&code_key(1)).is_none());
    // A hit counts as a use: 2 was just used, so it stays when 4 comes.
    let mut s = CodeStore::open(&path, TARGET, budget, Some(key(1)));
    assert!(s.get(&code_key(2)).is_some());
    s.put(code_key(4), &image(4, 1000));
    s.save(&key(1));
    let mut s = reopen(&path);
    assert!(s.get(&code_key(2)).is_some() && s.get(&code_key(4)).is_some());
    assert!(s.get(&code_key(3)).is_none());
}

#[test]
fn saves_merge_what_other_processes_wrote() {
    let dir = scratch("merge");
    let path = dir.join("p.log.code");
    let mut a = reopen(&path);
    let mut b = reopen(&path);
    a.put(code_key(1), &image(1, 10));
    b.put(code_key(2), &image(2, 10));
    a.save(&key(1));
    b.save(&key(1));
    let mut s = reopen(&path);
    assert!(s.get(&code_key(1)).is_some() && s.get(&code_key(2)).is_some());
}

#[test]
fn what_is_not_a_regular_code_cache_file_is_left_alone() {
    use std::os::unix::fs::symlink;
    let dir = scratch("alone");
    // A directory, a link to a cache, a device, and another file.
    let as_dir = dir.join("d.code");
    std::fs::create_dir(&as_dir).unwrap();
    let real = dir.join("real.code");
    saved(&real, &[(1, 10)]);
    let link = dir.join("l.code");
    symlink(&real, &link).unwrap();
    let text = dir.join("t.code");
    std::fs::write(&text, "my notes\n").unwrap();
    for (path, what) in [
        (as_dir.as_path(), "a directory"),
        (link.as_path(), "a symbolic link"),
        (Path::new("/dev/null"), "a character device"),
        (text.as_path(), "not a vssa code cache"),
    ] {
        let mut s = reopen(path);
        let w = s.take_warnings();
        assert!(w.len() == 1 && w[0].contains(what), "{path:?}: {w:?}");
        assert!(s.get(&code_key(1)).is_none());
        s.put(code_key(1), &image(1, 10));
        assert!(!s.is_dirty());
        s.save(&key(1));
    }
    assert!(as_dir.is_dir());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "my notes\n");
    assert!(clear(&text).is_err() && text.exists());
    assert!(clear(&link).is_err());
    assert!(clear(&real).unwrap());
    assert!(!real.exists());
    assert!(!clear(&real).unwrap());
}

#[test]
fn code_stored_and_placed_runs() {
    let dir = scratch("runs");
    let path = dir.join("p.log.code");
    let mut jit = Jit::new(JitOptions::default()).unwrap();
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let v = g.iconst(Type::I32, 1234).unwrap();
    let r = g.ret(e.ctrl, e.mem, v).unwrap();
    g.finish(&[r]).unwrap();
    let sch = vssa_schedule::schedule(&g).unwrap();
    let code = jit.compile_owned(&g, &sch, &[], "k").unwrap();
    let target = jit.target_id(&[]);
    let mut s = CodeStore::open(&path, target, DEFAULT_STORE_BYTES, Some(key(1)));
    assert!(s.load(&code_key(9), &mut jit, &[], "k").is_none());
    s.put(code_key(9), code.image());
    s.save(&key(1));
    let mut s = CodeStore::open(&path, target, DEFAULT_STORE_BYTES, Some(key(1)));
    let placed = s.load(&code_key(9), &mut jit, &[], "k").unwrap();
    let mut ctx = [0u8; 8];
    // SAFETY: the function reads nothing and calls no host.
    assert_eq!(unsafe { placed.call(ctx.as_mut_ptr()) }, 1234);
    assert_eq!(s.stats().loads, 1);
}

#[test]
fn unit_entries_come_back_and_are_sealed_like_code() {
    let dir = scratch("units");
    let path = dir.join("p.log.code");
    let mut s = reopen(&path);
    assert_eq!(s.get_unit(&code_key(5)), None);
    assert_eq!(s.stats().misses, 0, "a missing unit entry is no miss");
    s.put(code_key(1), &image(1, 40));
    s.put_unit(code_key(5), code_key(1), b"exits".to_vec());
    s.save(&key(1));
    let mut s = reopen(&path);
    assert_eq!(
        s.get_unit(&code_key(5)),
        Some((code_key(1), b"exits".to_vec()))
    );
    // A unit entry is not code, and code is not a unit entry.
    assert_eq!(s.get(&code_key(5)), None);
    assert_eq!(s.get_unit(&code_key(1)), None);
    // Putting it again unchanged writes nothing.
    let mut s = reopen(&path);
    s.get_unit(&code_key(5));
    s.put_unit(code_key(5), code_key(1), b"exits".to_vec());
    assert!(!s.is_dirty());
    let sum = summarize(&path, Some(&TARGET), Some(&key(1)))
        .unwrap()
        .unwrap();
    assert_eq!((sum.entries, sum.units, sum.sealed), (2, 1, 2));
    // Under another key it is not used.
    let mut s = CodeStore::open(&path, TARGET, DEFAULT_STORE_BYTES, Some(key(2)));
    assert_eq!(s.get_unit(&code_key(5)), None);
    assert_eq!(s.stats().rejected, 1);
}
