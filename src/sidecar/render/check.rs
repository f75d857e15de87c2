//! The checks rendered bytes pass, as a stream, before they may replace the last good output:
//! text (UTF-8 without the control characters YAML forbids), and a shape that can be a
//! Prometheus config (a YAML mapping, not empty), judged by the first significant line.

/// A control character YAML forbids: C0 but tab, line feed and carriage return; and DEL.
fn forbidden(b: u8) -> bool {
    (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r') || b == 0x7f
}

/// Why rendered bytes are not text, by byte offset (never the bytes themselves: they can be
/// a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotText {
    /// A control character YAML forbids.
    #[error("control character 0x{byte:02x} at byte {at}")]
    Control {
        /// The character.
        byte: u8,
        /// Its offset in the output.
        at: u64,
    },
    /// Bytes that are not UTF-8.
    #[error("invalid UTF-8 at byte {0}")]
    InvalidUtf8(u64),
    /// A sequence cut by a write boundary that does not continue as UTF-8.
    #[error("invalid UTF-8 near byte {0}")]
    InvalidContinuation(u64),
    /// The output ends inside a UTF-8 sequence.
    #[error("invalid UTF-8 at the end (byte {0})")]
    CutAtEnd(u64),
}

/// Checks, as a stream, that the rendered bytes are UTF-8 without the control characters
/// YAML forbids (all of C0 but tab, line feed and carriage return; and DEL).
#[derive(Default)]
pub(super) struct TextCheck {
    /// The start of a UTF-8 sequence cut by the end of the previous write.
    carry: Vec<u8>,
}

impl TextCheck {
    /// Checks `buf`, which starts at byte `offset` of the output.
    pub(super) fn check(&mut self, buf: &[u8], offset: u64) -> Result<(), NotText> {
        // A branch-free OR over the chunk vectorizes; the position is only needed on failure.
        if buf.iter().fold(0u8, |acc, &b| acc | u8::from(forbidden(b))) != 0 {
            let i = buf.iter().position(|&b| forbidden(b)).unwrap_or(0);
            return Err(NotText::Control {
                byte: buf[i],
                at: offset + i as u64,
            });
        }
        let mut rest = buf;
        if !self.carry.is_empty() {
            // Complete the cut sequence with at most 3 more bytes.
            let take = rest.len().min(4 - self.carry.len());
            self.carry.extend_from_slice(&rest[..take]);
            match std::str::from_utf8(&self.carry) {
                Ok(_) => rest = &rest[take..],
                Err(e) if e.valid_up_to() > 0 => {
                    let used = e.valid_up_to() - (self.carry.len() - take);
                    rest = &rest[used..];
                }
                Err(e) if e.error_len().is_none() && take == rest.len() => return Ok(()),
                Err(_) => return Err(NotText::InvalidContinuation(offset)),
            }
            self.carry.clear();
        }
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                self.carry = rest[e.valid_up_to()..].to_vec();
                Ok(())
            }
            Err(e) => {
                let at = offset + (buf.len() - rest.len() + e.valid_up_to()) as u64;
                Err(NotText::InvalidUtf8(at))
            }
        }
    }

    /// The stream ended: a cut sequence is invalid.
    pub(super) fn finish(&self, bytes: u64) -> Result<(), NotText> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(NotText::CutAtEnd(bytes))
        }
    }
}

/// What the rendered text is, as far as its first significant line tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It can be a Prometheus config (a YAML mapping).
    Config,
    /// Nothing Prometheus would load a scrape job from: what it was instead.
    Empty(&'static str),
    /// Not a YAML mapping: why, by line number.
    NotConfig(String),
}

/// How many bytes of a line are kept to judge it.
const LINE_PREFIX: usize = 256;

/// Judges the rendered text by its first significant line (not blank, not a comment, not a
/// document marker or directive), as a stream. Decides as early as it can, after which it
/// costs nothing; a config's first significant line is usually its first line.
#[derive(Debug, Default)]
pub(super) struct Shape {
    verdict: Option<Verdict>,
    /// The start of the current line.
    line: Vec<u8>,
    /// Lines ended so far.
    lines: u64,
    bytes: u64,
    /// Saw an empty document (`{}`, `null`, `~`).
    empty_document: bool,
}

impl Shape {
    pub(super) fn feed(&mut self, mut buf: &[u8]) {
        self.bytes += buf.len() as u64;
        while self.verdict.is_none() && !buf.is_empty() {
            let (part, rest, ended) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..i], &buf[i + 1..], true),
                None => (buf, &buf[buf.len()..], false),
            };
            let room = LINE_PREFIX.saturating_sub(self.line.len());
            self.line.extend_from_slice(&part[..part.len().min(room)]);
            if ended {
                self.end_line();
            }
            buf = rest;
        }
    }

    fn end_line(&mut self) {
        self.lines += 1;
        let line = std::mem::take(&mut self.line);
        let truncated = line.len() >= LINE_PREFIX;
        let mut text = line.trim_ascii();
        if let Some(rest) = text.strip_prefix(b"--- ") {
            text = rest.trim_ascii();
        }
        let n = self.lines;
        let skip = text.is_empty()
            || text.starts_with(b"#")
            || text == b"---"
            || text == b"..."
            || text.starts_with(b"%");
        if skip {
            return;
        }
        if [&b"{}"[..], b"{ }", b"null", b"Null", b"NULL", b"~"].contains(&text) {
            self.empty_document = true;
            return;
        }
        self.verdict = Some(
            if text == b"-" || text.starts_with(b"- ") || text.starts_with(b"[") {
                Verdict::NotConfig(format!(
                    "line {n} starts a YAML list, but a Prometheus config is a mapping"
                ))
            } else if truncated
                || text.contains(&b':')
                || text.starts_with(b"{")
                || [b'?', b'!', b'&', b'"', b'\''].contains(&text[0])
            {
                Verdict::Config
            } else {
                Verdict::NotConfig(format!(
                    "line {n} is neither a key nor a comment, but a Prometheus config is a mapping"
                ))
            },
        );
    }

    pub(super) fn finish(mut self) -> Verdict {
        if self.verdict.is_none() && !self.line.is_empty() {
            self.end_line();
        }
        match self.verdict {
            Some(v) => v,
            None if self.bytes == 0 => Verdict::Empty("no bytes"),
            None if self.empty_document => Verdict::Empty("an empty YAML document"),
            None => Verdict::Empty("only whitespace and comments"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_cut_at_any_write_boundary_is_accepted() {
        let text = "\u{e9}\u{20ac}\u{1f600}x".repeat(50);
        for step in 1..9 {
            let mut check = TextCheck::default();
            let mut offset = 0;
            for chunk in text.as_bytes().chunks(step) {
                check.check(chunk, offset).unwrap();
                offset += chunk.len() as u64;
            }
            check.finish(offset).unwrap();
        }
        let mut check = TextCheck::default();
        check.check(&[0xe2, 0x82], 0).unwrap();
        assert_eq!(
            check.check(b"x", 2),
            Err(NotText::InvalidContinuation(2)),
            "a cut sequence must continue correctly"
        );
        assert_eq!(
            TextCheck::default().check(b"ok\x1b[0m", 100),
            Err(NotText::Control {
                byte: 0x1b,
                at: 102
            })
        );
        let mut cut = TextCheck::default();
        cut.check(&[b'a', 0xe2], 0).unwrap();
        assert_eq!(cut.finish(2), Err(NotText::CutAtEnd(2)));
    }

    fn shape(text: &str, chunk: usize) -> Verdict {
        let mut shape = Shape::default();
        for part in text.as_bytes().chunks(chunk.max(1)) {
            shape.feed(part);
        }
        shape.finish()
    }

    #[test]
    fn empty_and_non_mapping_texts_are_told_apart_from_configs() {
        for chunk in [1, 3, 1000] {
            for empty in [
                "",
                "\n \n\t\n",
                "# only a comment\n  # another",
                "---\n...\n",
                "{}\n",
                "--- null\n",
                "%YAML 1.2\n---\n~",
            ] {
                assert!(
                    matches!(shape(empty, chunk), Verdict::Empty(_)),
                    "{empty:?}"
                );
            }
            for config in [
                "global:\n  scrape_interval: 1m\n",
                "# header\n\n---\nscrape_configs: []",
                "{\"global\": {}}",
                "  indented: true",
                "--- # comment\nrule_files: []",
                "\"quoted key\": 1",
            ] {
                assert_eq!(shape(config, chunk), Verdict::Config, "{config:?}");
            }
            for bad in [
                "- job_name: x\n",
                "[1, 2]",
                "# c\njust some words\n",
                "hunter2",
            ] {
                assert!(
                    matches!(shape(bad, chunk), Verdict::NotConfig(_)),
                    "{bad:?}"
                );
            }
        }
        let long_key = format!("{}: 1\n", "k".repeat(LINE_PREFIX * 2));
        assert_eq!(shape(&long_key, 7), Verdict::Config);
        match shape("# c\n\nsecret-value\n", 5) {
            Verdict::NotConfig(why) => {
                assert!(why.contains("line 3") && !why.contains("secret"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}
