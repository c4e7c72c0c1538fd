//! `receptive bench` run as a user runs it: suite files with mistakes,
//! `--json` records, `--save` / `--baseline`, `--isa` and `--threads`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

const SMALL: &str = "# two small cases\nsgemm name=tiny m=8 n=8 k=8\nsgemm name=odd m=33 n=17 k=5\n";

/// A fresh scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("receptive-bench-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bench(dir: &PathBuf, suite: &str, args: &[&str]) -> Output {
    let file = dir.join("cases.suite");
    std::fs::write(&file, suite).unwrap();
    Command::new(env!("CARGO_BIN_EXE_receptive"))
        .arg("bench")
        .arg("--suite")
        .arg(&file)
        .args(["--budget-ms", "5"])
        .args(args)
        .env("RECEPTIVE_BENCH_DIR", dir)
        .env_remove("RECEPTIVE_MAX_ISA")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_suite_with_mistakes_names_each_line_and_key() {
    let dir = scratch("mistakes");
    let suite = "sgemm name=a m=4 n=4 k=4\n\nsgemm name=b m=4 n=4 k=4 lda=9\nsgemm name=c m=4 k=4\n\
                 conv name=d n=1 c=1 h=5 w=5 k=1 kh=5 kw=5 dilation=2\n";
    let out = bench(&dir, suite, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("line 3: unknown key 'lda'"), "{err}");
    assert!(err.contains("line 4: missing key 'n'"), "{err}");
    // conv is either not built yet or an impossible shape; both name line 5.
    assert!(err.contains("line 5: "), "{err}");
    assert!(text(&out.stdout).is_empty(), "nothing runs when the suite is bad");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A minimal JSON value, parsed independently of the binary's own writer.
#[derive(Debug, PartialEq)]
enum Json {
    Str(String),
    Num(f64),
    Other,
}

fn parse_line(line: &str) -> BTreeMap<String, Json> {
    let mut chars = line.trim().chars().peekable();
    let mut map = BTreeMap::new();
    let string = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        assert_eq!(chars.next(), Some('"'), "{line}");
        let mut s = String::new();
        loop {
            match chars.next().expect("unterminated string") {
                '"' => return s,
                '\\' => match chars.next().unwrap() {
                    'n' => s.push('\n'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        s.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                    }
                    c => s.push(c),
                },
                c => {
                    assert!(c >= ' ', "raw control character in {line}");
                    s.push(c);
                }
            }
        }
    };
    assert_eq!(chars.next(), Some('{'), "{line}");
    loop {
        let key = string(&mut chars);
        assert_eq!(chars.next(), Some(':'), "{line}");
        let value = match chars.peek() {
            Some('"') => Json::Str(string(&mut chars)),
            _ => {
                let raw: String = std::iter::from_fn(|| chars.next_if(|c| !",}".contains(*c))).collect();
                match raw.as_str() {
                    "null" | "true" | "false" => Json::Other,
                    n => Json::Num(n.parse().unwrap_or_else(|_| panic!("bad number '{n}' in {line}"))),
                }
            }
        };
        assert!(map.insert(key, value).is_none(), "duplicate key in {line}");
        match chars.next() {
            Some(',') => continue,
            Some('}') => break,
            c => panic!("expected , or }} but got {c:?} in {line}"),
        }
    }
    assert_eq!(chars.next(), None, "{line}");
    map
}

fn num(m: &BTreeMap<String, Json>, k: &str) -> f64 {
    match m.get(k) {
        Some(Json::Num(v)) => *v,
        v => panic!("{k} is {v:?}"),
    }
}

fn string<'a>(m: &'a BTreeMap<String, Json>, k: &str) -> &'a str {
    match m.get(k) {
        Some(Json::Str(s)) => s,
        v => panic!("{k} is {v:?}"),
    }
}

#[test]
fn json_lines_carry_every_field() {
    let dir = scratch("json");
    let out = bench(&dir, SMALL, &["--json", "--threads", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let records: Vec<_> = stdout.lines().map(parse_line).collect();
    assert_eq!(records.len(), 2, "one line per case, nothing else:\n{stdout}");
    for (r, name) in records.iter().zip(["tiny", "odd"]) {
        assert_eq!(string(r, "name"), name);
        assert_eq!(string(r, "op"), "sgemm");
        assert!(!string(r, "shape").is_empty() && !string(r, "path").is_empty());
        assert!(!string(r, "isa").is_empty());
        assert_eq!(string(r, "check"), "ok");
        assert_eq!(num(r, "threads"), 1.0);
        let (ms, lo, hi) = (num(r, "ms"), num(r, "min_ms"), num(r, "max_ms"));
        assert!(0.0 < lo && lo <= ms && ms <= hi, "{lo} {ms} {hi}");
        assert!(num(r, "gflops") > 0.0);
        assert!(num(r, "max_abs_err") >= 0.0);
        assert!(r.contains_key("peak_share"), "present even when no peak is known");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_then_compare_with_a_baseline() {
    let dir = scratch("baseline");
    let out = bench(&dir, SMALL, &["--save", "first", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stored = std::fs::read_to_string(dir.join("first.jsonl")).unwrap();
    assert_eq!(stored.lines().count(), 2);
    let out = bench(&dir, SMALL, &["--baseline", "first"]);
    let table = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(table.contains("vs first") && table.contains("  x"), "{table}");
    let out = bench(&dir, SMALL, &["--baseline", "first", "--json"]);
    for r in text(&out.stdout).lines().map(parse_line) {
        assert!(num(&r, "speedup") > 0.0 && num(&r, "baseline_ms") > 0.0);
        assert!(["faster", "slower", "same"].contains(&string(&r, "verdict")));
    }
    let out = bench(&dir, SMALL, &["--baseline", "missing"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot read baseline 'missing'"));
    let out = bench(&dir, SMALL, &["--save", "../escape"]);
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn isa_cap_applies_to_the_whole_run() {
    let dir = scratch("isa");
    let out = bench(&dir, SMALL, &["--isa", "scalar", "--json", "--no-check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for r in text(&out.stdout).lines().map(parse_line) {
        assert_eq!(string(&r, "isa"), "scalar");
        assert_eq!(string(&r, "check"), "skipped");
        assert!(matches!(r.get("max_abs_err"), Some(Json::Other)), "null without a check");
    }
    let out = bench(&dir, SMALL, &["--isa", "sse"]);
    assert!(!out.status.success() && text(&out.stderr).contains("--isa sse"));
    let _ = std::fs::remove_dir_all(&dir);
}
