//! Text from a client or a model, bounded before it reaches a log line.
//!
//! A log pipeline splits or drops long lines (Docker's json-file splits at 16 KiB; Loki and
//! CloudWatch Logs cap an event near 256 KiB), and a line as long as a request body lets any caller
//! write a megabyte of log per request. Every field that carries such text is cut here, at a
//! character boundary, and its original length logged beside it when it was cut.

/// The longest prefix of `text` of at most `max_bytes` bytes that ends at a character boundary.
pub fn bounded(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        let text = "é".repeat(200);
        let cut = bounded(&text, 255);
        assert_eq!(cut.len(), 254);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded("short", 255), "short");
    }
}
