//! Small helpers to read and check untrusted JSON, with messages that name the field.
//! Payloads are taken as raw JSON and checked here so that every bad payload gets a clear
//! error instead of being dropped by a failed typed deserialisation.

use serde_json::{Map, Value};

/// A validation failure: the message says which field and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

pub type Result<T> = std::result::Result<T, Invalid>;

pub fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(Invalid(msg.into()))
}

pub fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| Invalid(format!("{what} must be an object")))
}

/// A required non-empty string of at most `max` characters.
pub fn string(m: &Map<String, Value>, key: &str, max: usize) -> Result<String> {
    match m.get(key) {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Ok(s.clone()),
        Some(Value::String(s)) if s.is_empty() => invalid(format!("{key} must not be empty")),
        Some(Value::String(_)) => invalid(format!("{key} must be at most {max} characters")),
        None | Some(Value::Null) => invalid(format!("{key} is required")),
        Some(_) => invalid(format!("{key} must be a string")),
    }
}

/// An optional string (absent or null is `None`).
pub fn opt_string(m: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => invalid(format!("{key} must be at most {max} characters")),
        Some(_) => invalid(format!("{key} must be a string")),
    }
}

/// An integer in `min..=max` (JSON numbers with a fraction are refused).
pub fn int(v: &Value, key: &str, min: i64, max: i64) -> Result<i64> {
    match v.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => invalid(format!("{key} must be an integer from {min} to {max}")),
    }
}

pub fn opt_int(m: &Map<String, Value>, key: &str, min: i64, max: i64) -> Result<Option<i64>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => int(v, key, min, max).map(Some),
    }
}

pub fn bool(m: &Map<String, Value>, key: &str) -> Result<bool> {
    match m.get(key) {
        Some(Value::Bool(b)) => Ok(*b),
        None | Some(Value::Null) => invalid(format!("{key} is required")),
        Some(_) => invalid(format!("{key} must be a boolean")),
    }
}

/// An id used in a path or a room name: 1..=128 printable characters.
pub fn id(s: &str, what: &str) -> Result<String> {
    if s.is_empty() || s.len() > 128 || s.chars().any(|c| c.is_control()) {
        return invalid(format!("{what} must be 1 to 128 printable characters"));
    }
    Ok(s.to_string())
}

/// `{branchId}` payloads of join/leave and the like.
pub fn branch_id_payload(v: &Value) -> Result<String> {
    let m = object(v, "payload")?;
    let b = string(m, "branchId", 128)?;
    id(&b, "branchId")
}

/// A client-supplied string made safe for the log: control characters (newlines, ANSI
/// escapes) escaped so that nobody can forge log lines, and cut to 120 characters.
pub fn loggable(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(130));
    for (i, c) in s.chars().enumerate() {
        if i == 120 {
            out.push('…');
            break;
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202e}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod loggable_tests {
    #[test]
    fn control_characters_are_escaped_and_long_strings_cut() {
        let forged = "a@b.c\n2026-12-04T20:00:00Z  INFO login ok\u{1b}[31m";
        let shown = super::loggable(forged);
        assert!(!shown.contains('\n') && !shown.contains('\u{1b}'), "{shown}");
        assert!(shown.contains("\\n") && shown.contains("\\u{1b}"), "{shown}");
        assert_eq!(super::loggable("Zoë 東京"), "Zoë 東京");
        assert_eq!(super::loggable(&"x".repeat(500)).chars().count(), 121);
    }
}
