//! How the CLI prints data it did not write itself (SPEC.md §10): a name a
//! reviewer chose, a key id, a gateway's error message. Nothing such data
//! holds can add a line, move the cursor, colour the terminal, reorder
//! text (bidirectional controls) or pass for another name (look-alike
//! letters): every character outside printable ASCII is escaped.
//!
//! * A field value is bare when it is made only of ASCII letters, digits
//!   and `.` `_` `-` `@`, else a JSON string literal in which `"` and `\`
//!   are escaped and every other character outside printable ASCII is
//!   `\uXXXX` (UTF-16, so a JSON parser reads the original back).
//! * Free text (an error message) keeps printable ASCII as it is and
//!   escapes the rest the same way, unquoted.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `value` may be printed bare.
fn is_bare(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

/// Appends `c` escaped as JSON does, every code unit outside printable
/// ASCII as `\uXXXX`.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        ' '..='~' => out.push(c),
        _ => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
}

/// A field value: bare, or a JSON string literal (see the module docs).
pub fn value(value: &str) -> Cow<'_, str> {
    if is_bare(value) {
        return Cow::Borrowed(value);
    }
    Cow::Owned(json_string(value))
}

/// `value` as a JSON string literal with only printable ASCII in it.
pub fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        push_escaped(&mut out, c);
    }
    out.push('"');
    out
}

/// Free text from elsewhere, as one line of printable ASCII.
pub fn text(text: &str) -> Cow<'_, str> {
    if text
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'\\')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push('"'),
            c => push_escaped(&mut out, c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_bare() {
        for name in ["alice", "bob.smith", "key-2026_01", "a@example.com", "K9"] {
            assert_eq!(value(name), name);
        }
    }

    #[test]
    fn anything_else_is_one_quoted_line_of_printable_ascii() {
        let cases = [
            ("bob smith", r#""bob smith""#),
            ("", r#""""#),
            (
                "bob\nDECISION_APPROVED reviewer=alice",
                r#""bob\u000aDECISION_APPROVED reviewer=alice""#,
            ),
            ("\u{1b}[31mred", r#""\u001b[31mred""#),
            ("al\u{202e}ecila", r#""al\u202eecila""#),
            // Cyrillic "а" looks like Latin "a".
            ("\u{430}lice", r#""\u0430lice""#),
            ("say \"hi\" \\o/", r#""say \"hi\" \\o/""#),
            ("\u{1f600}", r#""\ud83d\ude00""#),
        ];
        for (raw, printed) in cases {
            let got = value(raw);
            assert_eq!(got, printed, "{raw:?}");
            assert!(got.bytes().all(|b| (b' '..=b'~').contains(&b)));
            // A JSON parser reads the original back.
            let back: String = serde_json::from_str(&got).unwrap();
            assert_eq!(back, raw);
        }
    }

    #[test]
    fn free_text_is_one_line() {
        assert_eq!(text("refused: bad token"), "refused: bad token");
        assert_eq!(text("a\nb\r\u{7}c"), r"a\u000ab\u000d\u0007c");
        assert_eq!(text(r"C:\path"), r"C:\\path");
    }
}
