//! Suite files (DESIGN.md §8): one case a line, `#` comments. Every line is
//! validated before anything runs, and each error names its line.

use super::ops::Spec;
use crate::case::Case;

/// The suite `receptive bench` runs without `--suite`.
pub const DEFAULT: &str = include_str!("../../suites/default.suite");

/// Parses and validates a suite; `origin` names it in messages. All errors
/// are reported together, one a line.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Spec>, String> {
    let mut specs: Vec<(usize, Spec)> = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("");
        let case = match Case::parse_line(content) {
            Ok(None) => continue,
            Ok(Some(case)) => case,
            Err(e) => {
                errors.push(format!("{origin} line {line}: {e}"));
                continue;
            }
        };
        if let Some((first, _)) = specs.iter().find(|(_, s)| s.case.name == case.name) {
            errors.push(format!("{origin} line {line}: case name '{}' is already used on line {first}", case.name));
            continue;
        }
        match Spec::new(case) {
            Ok(spec) => specs.push((line, spec)),
            Err(e) => errors.push(format!("{origin} line {line}: {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    if specs.is_empty() {
        return Err(format!("{origin}: no cases to run"));
    }
    Ok(specs.into_iter().map(|(_, s)| s).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Op;

    #[test]
    fn the_default_suite_parses() {
        let s = parse(DEFAULT, "default").unwrap();
        let count = |op| s.iter().filter(|s| s.case.op == op).count();
        assert_eq!((count(Op::Conv), count(Op::Sgemm), s.len()), (10, 8, 23), "and 5 pooling cases");
    }

    #[test]
    fn good_lines_with_comments_and_blanks() {
        let s = parse("# a comment\n\n  sgemm name=a m=1 n=2 k=3  # trailing\nsgemm m=4 n=4 k=4\n", "t").unwrap();
        let names: Vec<_> = s.iter().map(|s| s.case.name.as_str()).collect();
        assert_eq!(names, ["a", "sgemm"]);
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let text = "sgemm name=a m=1 n=2 k=3\nsgemm name=b m=1 n=2 k=3 lda=4\nsgemm name=c m=1 k=3\n\
                    sgemm name=a m=1 n=1 k=1\nsgemm name=d m=0 n=1 k=1\nblur name=e\nsgemm name=f m=x n=1 k=1";
        let e = parse(text, "my.suite").unwrap_err();
        let lines: Vec<_> = e.lines().collect();
        assert_eq!(lines.len(), 6, "{e}");
        assert!(lines[0].starts_with("my.suite line 2: unknown key 'lda'"), "{e}");
        assert!(lines[1].starts_with("my.suite line 3: missing key 'n'"), "{e}");
        assert!(lines[2].starts_with("my.suite line 4: case name 'a' is already used on line 1"), "{e}");
        assert!(lines[3].starts_with("my.suite line 5: key 'm' = 0 must be at least 1"), "{e}");
        assert!(lines[4].starts_with("my.suite line 6: unknown op 'blur'"), "{e}");
        assert!(lines[5].starts_with("my.suite line 7: key 'm': 'x' is not a non-negative integer"), "{e}");
        assert!(parse("# nothing\n", "empty").unwrap_err().contains("no cases"));
    }

    #[test]
    fn impossible_shapes_name_their_line() {
        let text = "conv name=a n=1 c=1 h=5 w=5 k=1 kh=5 kw=5 dilation=2\nmaxpool name=b c=1 h=5 w=5 kh=2 kw=2 pad=2";
        let e = parse(text, "s").unwrap_err();
        assert!(e.contains("s line 1: kernel 5 with dilation 2 spans 9 rows"), "{e}");
        assert!(e.contains("s line 2: pooling padding before (rows) = 2"), "{e}");
    }
}
