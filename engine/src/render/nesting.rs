//! A guard against deeply nested JSON, checked before a record is decoded.
//!
//! sonic-rs, which decodes the records, recurses without bound on some inputs: a payload
//! of a million `[` overflowed the stack of the thread decoding it (seen in
//! `source::tests`), and a stack overflow aborts the whole process, again on every
//! restart, since the record is read again. One such record would stop the engine for
//! good. Records nested deeper than [`MAX_NESTING`] (serde_json's own limit) are refused
//! instead, and go to the dead-letter topic like any record that cannot be decoded.

/// The deepest nesting of arrays and objects a record may have.
pub(crate) const MAX_NESTING: usize = 128;

/// Whether `payload` nests arrays and objects deeper than `limit`. Brackets inside strings
/// do not count. Most records hold fewer openers than the limit, and the count settles
/// them in one pass the compiler vectorizes; only the others are scanned with care.
pub(crate) fn nests_deeper_than(payload: &[u8], limit: usize) -> bool {
    let openers = payload
        .iter()
        .filter(|&&byte| byte == b'[' || byte == b'{')
        .count();
    if openers <= limit {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in payload {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(!nests_deeper_than(nested(3).as_bytes(), 3));
        assert!(nests_deeper_than(nested(4).as_bytes(), 3));
        // Many openers side by side are not deep.
        let wide = format!("[{}]", vec!["{}"; 1000].join(","));
        assert!(!nests_deeper_than(wide.as_bytes(), 3));
        // Brackets in strings, escaped quotes included, do not count.
        let quoted = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(50), "{".repeat(50));
        assert!(!nests_deeper_than(quoted.as_bytes(), 3));
        assert!(nests_deeper_than("[".repeat(10).as_bytes(), 3));
    }
}
