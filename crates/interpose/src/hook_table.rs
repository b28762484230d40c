//! Checks of the hook table (`hooks/table.rs`), read here through a
//! `hooks!` macro that lists its entries instead of writing functions.

/// One entry of the table, as written.
struct Entry {
    name: &'static str,
    docs: &'static [&'static str],
    args: &'static [&'static str],
    /// The fortify check's (count, buffer size), when it has one.
    chk: &'static [(&'static str, &'static str)],
    handler: &'static str,
    /// The written call arguments of an alias (empty: the caller's).
    call: &'static [&'static str],
}

macro_rules! hooks {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)?
            $(, chk($n:ident <= $len:ident))?
            => $($h:ident)::+ $(($($e:expr),* $(,)?))?;
    )*) => {
        const TABLE: &[Entry] = &[$(
            Entry {
                name: stringify!($name),
                docs: &[$($doc),*],
                args: &[$(stringify!($a)),*],
                chk: &[$((stringify!($n), stringify!($len)))?],
                handler: stringify!($($h)::+),
                call: &[$(stringify!($($e),*))?],
            },
        )*];
    };
}

include!("hooks/table.rs");

#[test]
fn every_name_once_with_a_doc_line() {
    let mut names: Vec<_> = TABLE.iter().map(|e| e.name).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "a name is in the table twice");
    for e in TABLE {
        assert!(
            e.docs.first().is_some_and(|d| d.trim().len() > 10),
            "{} has no doc line",
            e.name
        );
    }
}

#[test]
fn fortify_checks_compare_the_count_with_the_last_argument() {
    for e in TABLE {
        if let [(n, len)] = e.chk {
            assert!(
                e.name.ends_with("_chk"),
                "{}: a check on a plain name",
                e.name
            );
            assert_eq!(e.args.last(), Some(len), "{}: buffer size", e.name);
            assert!(e.args.contains(n), "{}: count", e.name);
            // The checked call drops the buffer size.
            assert!(!e.call.iter().any(|c| c.contains(len)), "{}", e.name);
        }
    }
    for name in [
        "__read_chk",
        "__pread_chk",
        "__pread64_chk",
        "__readlink_chk",
        "__readlinkat_chk",
    ] {
        let e = TABLE.iter().find(|e| e.name == name).unwrap();
        assert_eq!(e.chk.len(), 1, "{name} lost its fortify check");
    }
}

#[test]
fn a_handler_called_with_the_callers_arguments_has_the_hooks_name() {
    for e in TABLE.iter().filter(|e| e.call.is_empty()) {
        let last = e.handler.rsplit("::").next().unwrap().trim();
        assert_eq!(
            last, e.name,
            "{} forwards unchanged to {}",
            e.name, e.handler
        );
    }
}

#[test]
fn aliases_of_the_open_and_stat_families_reach_one_handler() {
    let target = |name: &str| {
        let e = TABLE.iter().find(|e| e.name == name).unwrap();
        e.handler.rsplit("::").next().unwrap().trim().to_string()
    };
    for a in ["open", "open64", "__open_2", "__open64_2", "creat64"] {
        let t = target(a);
        assert!(t == "open" || t == "creat", "{a} -> {t}");
    }
    for a in [
        "stat",
        "stat64",
        "lstat",
        "lstat64",
        "fstatat",
        "fstatat64",
        "__xstat",
        "__fxstatat64",
    ] {
        assert_eq!(target(a), "stat_at", "{a}");
    }
}
