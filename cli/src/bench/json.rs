//! Flat JSON objects, one a line: written for `--json` and `--save`, read
//! back for `--baseline`. Values are strings, numbers, booleans or null;
//! that is all a bench record holds, so no nesting is supported.

use std::collections::BTreeMap;
use std::fmt::Write;

/// A JSON value of a flat record.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Num(v) => Some(*v),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Builds one object, keys in insertion order.
#[derive(Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    fn key(&mut self, key: &str) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        quote(&mut self.out, key);
        self.out.push(':');
    }
    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.key(key);
        quote(&mut self.out, v);
        self
    }
    /// A number rounded to 6 significant digits; NaN and infinities are null.
    pub fn num(&mut self, key: &str, v: f64) -> &mut Self {
        self.key(key);
        if v.is_finite() {
            // `{:e}` rounds; parsing back and printing with `{}` gives the
            // shortest plain form (JSON accepts either).
            let rounded: f64 = format!("{v:.5e}").parse().unwrap_or(v);
            let _ = write!(self.out, "{rounded}");
        } else {
            self.out.push_str("null");
        }
        self
    }
    pub fn opt_num(&mut self, key: &str, v: Option<f64>) -> &mut Self {
        match v {
            Some(v) => self.num(key, v),
            None => self.null(key),
        }
    }
    pub fn int(&mut self, key: &str, v: u64) -> &mut Self {
        self.key(key);
        let _ = write!(self.out, "{v}");
        self
    }
    pub fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.push_str("null");
        self
    }
    pub fn finish(&mut self) -> String {
        if self.out.is_empty() {
            self.out.push('{');
        }
        self.out.push('}');
        std::mem::take(&mut self.out)
    }
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses one flat object such as the writer produces (any JSON whitespace,
/// escapes included).
pub fn parse_object(text: &str) -> Result<BTreeMap<String, Value>, String> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let mut map = BTreeMap::new();
    p.expect(b'{')?;
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            let key = p.string()?;
            p.expect(b':')?;
            let value = p.value()?;
            map.insert(key, value);
            match p.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(p.error("',' or '}'")),
            }
        }
    }
    if p.peek().is_some() {
        return Err(p.error("end of line"));
    }
    Ok(map)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }
    fn error(&self, wanted: &str) -> String {
        format!("expected {wanted} at byte {}", self.i)
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.next() == Some(c) { Ok(()) } else { Err(self.error(&format!("'{}'", c as char))) }
    }
    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(|c| b"+-.eE".contains(c) || c.is_ascii_digit()) {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.error("a number"))?;
                text.parse().map(Value::Num).map_err(|_| format!("bad number '{text}' at byte {start}"))
            }
            _ => Err(self.error("a value")),
        }
    }
    fn word(&mut self, w: &str, v: Value) -> Result<Value, String> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.error(w))
        }
    }
    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else { return Err(self.error("a closing '\"'")) };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else { return Err(self.error("an escape")) };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or_else(|| self.error("4 hex digits"))?;
                            self.i += 4;
                            let code = std::str::from_utf8(hex)
                                .ok()
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or_else(|| self.error("4 hex digits"))?;
                            // Surrogate pairs never occur in bench records; keep them visible.
                            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                        }
                        _ => return Err(self.error("a valid escape")),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_record() {
        let line = Writer::default()
            .str("name", "a \"quoted\"\\ name\n\u{1}é")
            .num("ms", 0.123456789)
            .num("nan", f64::NAN)
            .int("threads", 2)
            .opt_num("peak_share", None)
            .finish();
        assert!(!line.contains('\n'));
        let m = parse_object(&line).unwrap();
        assert_eq!(m["name"].as_str(), Some("a \"quoted\"\\ name\n\u{1}é"));
        assert_eq!(m["ms"].as_f64(), Some(0.123457));
        assert_eq!(m["nan"], Value::Null);
        assert_eq!(m["threads"].as_f64(), Some(2.0));
        assert_eq!(parse_object("{ \"ok\" : true }").unwrap()["ok"], Value::Bool(true));
        assert_eq!(m["peak_share"], Value::Null);
        assert_eq!(Writer::default().finish(), "{}");
        assert!(parse_object("{}").unwrap().is_empty());
    }

    #[test]
    fn small_and_large_numbers_stay_plain_json() {
        let line = Writer::default().num("a", 1.5e-9).num("b", 3.0e12).finish();
        let m = parse_object(&line).unwrap();
        assert_eq!(m["a"].as_f64(), Some(1.5e-9));
        assert_eq!(m["b"].as_f64(), Some(3.0e12));
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in ["", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1} x", "{\"a\":\"\\q\"}", "[1]"] {
            assert!(parse_object(bad).is_err(), "{bad}");
        }
    }
}
