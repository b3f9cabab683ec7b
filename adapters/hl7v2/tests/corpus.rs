//! The third-party corpus (tests/fixtures/corpus, see NOTICE.md there): every
//! file's outcome under `parse_batch` must match `expected.tsv`, every
//! message parsed must render and parse back to itself, and no file nor any
//! truncation of one may panic the parser.

use lhcie_hl7v2::{Message, parse_batch, parse_message};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

/// Every corpus file (relative path → bytes), licence and notice files aside.
fn corpus_files() -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read fixtures dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.parent() != Some(root) {
                let rel = path.strip_prefix(root).expect("under root");
                let rel = rel.to_string_lossy().replace('\\', "/");
                out.insert(rel, std::fs::read(&path).expect("read fixture"));
            }
        }
    }
    let root = corpus_dir();
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

fn outcome(bytes: &[u8]) -> String {
    match parse_batch(bytes) {
        Ok(batch) => format!("ok {}", batch.message_count()),
        Err(e) => format!("error {}", e.kind()),
    }
}

fn assert_round_trip(m: &Message, file: &str) {
    let rendered = m.render();
    let again = parse_message(&rendered).unwrap_or_else(|e| panic!("{file}: re-parse: {e}"));
    assert_eq!(&again, m, "{file}: parse(render(m)) != m");
}

#[test]
fn corpus_outcomes_match_expectations() {
    let files = corpus_files();
    assert!(files.len() >= 80, "fixtures missing: {}", files.len());
    let table = std::fs::read_to_string(corpus_dir().join("expected.tsv")).expect("expected.tsv");
    let expected: BTreeMap<String, String> = table
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (f, o) = l.split_once('\t').expect("file<TAB>outcome");
            (f.to_owned(), o.to_owned())
        })
        .collect();
    let actual: BTreeMap<String, String> =
        files.iter().map(|(f, b)| (f.clone(), outcome(b))).collect();
    if actual != expected {
        let table: String = actual.iter().map(|(f, o)| format!("{f}\t{o}\n")).collect();
        panic!("corpus outcomes differ from expected.tsv; actual table:\n{table}");
    }
    // Every message that parses also round-trips, and a one-message file
    // parses the same as a message.
    for (file, bytes) in &files {
        if let Ok(batch) = parse_batch(bytes) {
            for m in batch.messages() {
                assert_round_trip(m, file);
            }
            if batch.message_count() == 1 && batch.file_header.is_none() {
                let envelope = batch.batches[0].header.is_some();
                if !envelope {
                    let m = parse_message(bytes).expect("single message");
                    assert_eq!(Some(&m), batch.messages().next(), "{file}");
                }
            }
        }
    }
}

#[test]
fn no_panic_on_truncations() {
    for (file, bytes) in corpus_files() {
        let n = bytes.len();
        let mut cuts = vec![
            0,
            1,
            3,
            4,
            5,
            8,
            9,
            n / 4,
            n / 3,
            n / 2,
            2 * n / 3,
            3 * n / 4,
        ];
        cuts.extend(n.checked_sub(1));
        cuts.extend(n.checked_sub(2));
        for cut in cuts.into_iter().filter(|c| *c <= n) {
            let part = &bytes[..cut];
            if let Ok(m) = parse_message(part) {
                assert_round_trip(&m, &file);
            }
            if let Ok(b) = parse_batch(part) {
                b.messages().for_each(|m| assert_round_trip(m, &file));
            }
            // Also the tail, which starts mid-message.
            let _ = parse_batch(&bytes[cut..]);
        }
    }
}
