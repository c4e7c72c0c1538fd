//! `--save NAME` / `--baseline NAME`: runs stored as JSON lines (the
//! `--json` records) in `$RECEPTIVE_BENCH_DIR` or `target/receptive-bench/`,
//! and the comparison of a new run against a stored one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::json::parse_object;

/// The smallest change reported as faster or slower, whatever the spreads.
const MIN_CHANGE: f64 = 0.03;

/// The stored timing of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub ms: f64,
    /// Relative inter-quartile range of that run.
    pub spread: f64,
    pub threads: Option<f64>,
    pub isa: Option<String>,
}

fn dir() -> PathBuf {
    std::env::var_os("RECEPTIVE_BENCH_DIR").map_or_else(|| PathBuf::from("target/receptive-bench"), PathBuf::from)
}

/// The file of a stored run; names are plain words so they stay inside the directory.
pub fn file(name: &str) -> Result<PathBuf, String> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !plain {
        return Err(format!("run name '{name}' must be letters, digits, '-', '_' or '.', not starting with '.'"));
    }
    Ok(dir().join(format!("{name}.jsonl")))
}

pub fn save(name: &str, lines: &[String]) -> Result<PathBuf, String> {
    let path = file(name)?;
    let parent = path.parent().unwrap_or(&path);
    std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The stored run `name`, by case name.
pub fn load(name: &str) -> Result<BTreeMap<String, Record>, String> {
    let path = file(name)?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!("cannot read baseline '{name}' ({}): {e}; store one with --save {name}", path.display())
    })?;
    let mut runs = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |e: String| format!("{}:{}: {e}", path.display(), i + 1);
        let obj = parse_object(line).map_err(at)?;
        let num = |k: &str| obj.get(k).and_then(|v| v.as_f64());
        let (Some(name), Some(ms)) = (obj.get("name").and_then(|v| v.as_str()), num("ms")) else {
            return Err(at("a record needs a string 'name' and a number 'ms'".into()));
        };
        let spread = match (num("q1_ms"), num("q3_ms")) {
            (Some(q1), Some(q3)) if ms > 0.0 => (q3 - q1) / ms,
            _ => 0.0,
        };
        let isa = obj.get("isa").and_then(|v| v.as_str()).map(String::from);
        runs.insert(name.to_string(), Record { ms, spread, threads: num("threads"), isa });
    }
    Ok(runs)
}

/// How a new time compares with the stored one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Faster,
    Slower,
    /// Within the noise of the two runs.
    Same,
}

/// `(speedup, verdict)`: speedup is `baseline ms / new ms` (above 1 is
/// faster). A change counts only beyond the noise: the two runs' relative
/// inter-quartile ranges added, and at least [`MIN_CHANGE`].
pub fn compare(base: &Record, ms: f64, spread: f64) -> (f64, Verdict) {
    let speedup = base.ms / ms;
    let band = 1.0 + (base.spread + spread).max(MIN_CHANGE);
    let verdict = if speedup > band {
        Verdict::Faster
    } else if speedup < 1.0 / band {
        Verdict::Slower
    } else {
        Verdict::Same
    };
    (speedup, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_directory() {
        assert!(file("main-2024.1_a").unwrap().ends_with("main-2024.1_a.jsonl"));
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(file(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn noise_decides_the_verdict() {
        let base = Record { ms: 10.0, spread: 0.02, threads: None, isa: None };
        assert_eq!(compare(&base, 10.2, 0.01), (10.0 / 10.2, Verdict::Same));
        assert_eq!(compare(&base, 12.0, 0.01).1, Verdict::Slower);
        assert_eq!(compare(&base, 8.0, 0.01).1, Verdict::Faster);
        // A noisy run needs a bigger change to count.
        assert_eq!(compare(&base, 12.0, 0.30).1, Verdict::Same);
    }
}
