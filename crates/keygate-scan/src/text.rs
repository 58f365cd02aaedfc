//! File bytes to text: UTF-8 (invalid bytes replaced) or UTF-16 announced by a
//! byte-order mark, decoded piece by piece, and telling binary files from text.
//!
//! Nothing here prints or touches the file system; `scan` and `doctor` feed it bytes.

/// How much of a file (after its byte-order mark) is looked at to call it binary.
pub(crate) const BINARY_PROBE: usize = 8 * 1024;

/// The encoding of a file, as its first bytes announce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// No byte-order mark, or the UTF-8 one: UTF-8, invalid bytes replaced by U+FFFD.
    Utf8,
    /// The byte-order mark `FF FE`.
    Utf16Le,
    /// The byte-order mark `FE FF`.
    Utf16Be,
}

impl Encoding {
    /// The encoding that the start of a file announces, and the length of its
    /// byte-order mark (skipped, so a mark is never part of the first line).
    pub(crate) fn sniff(start: &[u8]) -> (Self, usize) {
        if start.starts_with(&[0xEF, 0xBB, 0xBF]) {
            (Self::Utf8, 3)
        } else if start.starts_with(&[0xFF, 0xFE]) {
            (Self::Utf16Le, 2)
        } else if start.starts_with(&[0xFE, 0xFF]) {
            (Self::Utf16Be, 2)
        } else {
            (Self::Utf8, 0)
        }
    }
}

/// A decoder that takes a file's bytes in pieces of any size (a character may straddle
/// two pieces) and appends their text to a `String`.
///
/// Decoding is lossy as `String::from_utf8_lossy` is: each maximal invalid UTF-8
/// sequence, each unpaired UTF-16 surrogate and a lone trailing byte become U+FFFD.
#[derive(Debug)]
pub(crate) struct Decoder {
    encoding: Encoding,
    /// UTF-8: the start of a character cut off by the end of the last piece (≤ 3 bytes).
    /// UTF-16: the first byte of a code unit cut off the same way (≤ 1 byte).
    pending: Vec<u8>,
    /// UTF-16: a high surrogate waiting for its low half.
    high: Option<u16>,
    /// How many replacement characters decoding has produced.
    replaced: u64,
}

impl Decoder {
    /// A decoder for text in `encoding`, fed the bytes after the byte-order mark.
    pub(crate) fn new(encoding: Encoding) -> Self {
        Self {
            encoding,
            pending: Vec::new(),
            high: None,
            replaced: 0,
        }
    }

    /// How many U+FFFD decoding has put in for bytes that were not text.
    pub(crate) fn replaced(&self) -> u64 {
        self.replaced
    }

    /// Decodes the next piece of the file, appending to `out`.
    pub(crate) fn push(&mut self, bytes: &[u8], out: &mut String) {
        match self.encoding {
            Encoding::Utf8 => {
                if self.pending.is_empty() {
                    self.utf8(bytes, out);
                } else {
                    let mut joined = std::mem::take(&mut self.pending);
                    joined.extend_from_slice(bytes);
                    self.utf8(&joined, out);
                }
            }
            Encoding::Utf16Le => self.utf16(bytes, out, u16::from_le_bytes),
            Encoding::Utf16Be => self.utf16(bytes, out, u16::from_be_bytes),
        }
    }

    /// The end of the file: whatever is still waiting is an incomplete character.
    pub(crate) fn finish(&mut self, out: &mut String) {
        if !self.pending.is_empty() {
            self.pending.clear();
            self.replace(out);
        }
        if self.high.take().is_some() {
            self.replace(out);
        }
    }

    fn replace(&mut self, out: &mut String) {
        out.push(char::REPLACEMENT_CHARACTER);
        self.replaced += 1;
    }

    fn utf8(&mut self, bytes: &[u8], out: &mut String) {
        let mut chunks = bytes.utf8_chunks().peekable();
        while let Some(chunk) = chunks.next() {
            out.push_str(chunk.valid());
            let invalid = chunk.invalid();
            if invalid.is_empty() {
                continue;
            }
            // An invalid part is a maximal prefix of a well-formed sequence (or one bad
            // byte). At the very end and shorter than its lead byte says, the next piece
            // may complete it.
            if chunks.peek().is_none() && invalid.len() < utf8_width(invalid[0]) {
                self.pending.extend_from_slice(invalid);
            } else {
                self.replace(out);
            }
        }
    }

    fn utf16(&mut self, bytes: &[u8], out: &mut String, unit_of: fn([u8; 2]) -> u16) {
        let mut rest = bytes;
        if let Some(first) = self.pending.pop() {
            let Some((second, tail)) = rest.split_first() else {
                self.pending.push(first);
                return;
            };
            self.unit(unit_of([first, *second]), out);
            rest = tail;
        }
        let mut pairs = rest.chunks_exact(2);
        for pair in &mut pairs {
            self.unit(unit_of([pair[0], pair[1]]), out);
        }
        self.pending.extend_from_slice(pairs.remainder());
    }

    fn unit(&mut self, unit: u16, out: &mut String) {
        if let Some(high) = self.high.take() {
            if (0xDC00..=0xDFFF).contains(&unit) {
                let code =
                    0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
                match char::from_u32(code) {
                    Some(c) => out.push(c),
                    None => self.replace(out),
                }
                return;
            }
            self.replace(out);
        }
        match unit {
            0xD800..=0xDBFF => self.high = Some(unit),
            0xDC00..=0xDFFF => self.replace(out),
            _ => match char::from_u32(u32::from(unit)) {
                Some(c) => out.push(c),
                None => self.replace(out),
            },
        }
    }
}

/// How many bytes a UTF-8 sequence with this lead byte has (0: not a lead byte).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

/// Whether the decoded start of a file (at most [`BINARY_PROBE`] bytes of it) looks
/// binary rather than text. `replaced` is how many replacement characters its
/// decoding produced.
///
/// Binary means: more than one NUL, and NULs over 1 % of the characters; or over 30 %
/// of the characters "odd" (NUL, other control characters than tab, line feed,
/// vertical tab, form feed, carriage return and escape, and bytes that did not decode),
/// which is Perl's `-B` rule. A stray NUL in a text file is not enough, and a UTF-16
/// file with its byte-order mark is judged on its characters, not on its zero bytes.
pub(crate) fn looks_binary(probe: &str, replaced: u64) -> bool {
    let (mut total, mut nul, mut odd) = (0u64, 0u64, replaced);
    for c in probe.chars() {
        total += 1;
        match c {
            '\0' => {
                nul += 1;
                odd += 1;
            }
            '\t' | '\n' | '\x0B' | '\x0C' | '\r' | '\x1B' => {}
            c if c.is_ascii_control() => odd += 1,
            _ => {}
        }
    }
    (nul > 1 && nul * 100 > total) || odd * 10 > total * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `bytes` (BOM included) fed in pieces of `size` bytes.
    fn decode_in_pieces(bytes: &[u8], size: usize) -> (String, u64) {
        let (encoding, bom) = Encoding::sniff(bytes);
        let mut decoder = Decoder::new(encoding);
        let mut out = String::new();
        for piece in bytes[bom..].chunks(size) {
            decoder.push(piece, &mut out);
        }
        decoder.finish(&mut out);
        (out, decoder.replaced())
    }

    const SAMPLES: &[&[u8]] = &[
        b"plain ascii\n",
        "é ß € 𝄞 mixed\n".as_bytes(),
        b"bad \xFF byte, lone \x80 continuation, cut \xE2\x82 then text",
        b"overlong \xC0\xAF and surrogate \xED\xA0\x80 and \xF4\x90\x80\x80 too big",
        b"ends cut \xF0\x9F\x98",
        b"\xEF\xBB\xBFwith a UTF-8 mark \xE2\x82\xAC",
    ];

    #[test]
    fn utf8_in_any_pieces_is_from_utf8_lossy() {
        for sample in SAMPLES {
            let body = sample.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(sample);
            let want = String::from_utf8_lossy(body);
            let want_replaced = want.matches(char::REPLACEMENT_CHARACTER).count() as u64;
            for size in 1..=body.len() + 1 {
                let (got, replaced) = decode_in_pieces(sample, size);
                assert_eq!(got, want, "{sample:?} in pieces of {size}");
                assert_eq!(replaced, want_replaced, "{sample:?} in pieces of {size}");
            }
        }
    }

    fn utf16(units: &[u16], big_endian: bool) -> Vec<u8> {
        let mut bytes = if big_endian {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for u in units {
            bytes.extend_from_slice(&if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            });
        }
        bytes
    }

    #[test]
    fn utf16_in_any_pieces_is_from_utf16_lossy() {
        let text: Vec<u16> = "KEY=é𝄞€ x\r\nline 2\n".encode_utf16().collect();
        let mut broken = text.clone();
        // An unpaired low surrogate, an unpaired high one, and a high one at the end.
        broken.splice(2..2, [0xDC01, 0xD801, 0x41, 0xD802]);
        for units in [&text, &broken] {
            let want = String::from_utf16_lossy(units);
            for big_endian in [false, true] {
                let bytes = utf16(units, big_endian);
                for size in 1..=bytes.len() {
                    let (got, _) = decode_in_pieces(&bytes, size);
                    assert_eq!(got, want, "big endian {big_endian}, pieces of {size}");
                }
            }
        }
        let (_, replaced) = decode_in_pieces(&utf16(&broken, false), 3);
        assert_eq!(replaced, 3);
        // A lone last byte is an incomplete unit.
        let mut odd = utf16(&text, true);
        odd.push(0x41);
        let (got, replaced) = decode_in_pieces(&odd, 5);
        assert_eq!(got, format!("{}\u{FFFD}", String::from_utf16_lossy(&text)));
        assert_eq!(replaced, 1);
    }

    #[test]
    fn byte_order_marks() {
        assert_eq!(Encoding::sniff(b"\xFF\xFEk\0"), (Encoding::Utf16Le, 2));
        assert_eq!(Encoding::sniff(b"\xFE\xFF\0k"), (Encoding::Utf16Be, 2));
        assert_eq!(Encoding::sniff(b"\xEF\xBB\xBFk"), (Encoding::Utf8, 3));
        assert_eq!(Encoding::sniff(b"k"), (Encoding::Utf8, 0));
        assert_eq!(Encoding::sniff(b""), (Encoding::Utf8, 0));
    }

    #[test]
    fn binary_or_text() {
        let prose = "a line of text\n".repeat(100);
        assert!(!looks_binary(&prose, 0));
        // One NUL in text, or two in a long text, is a stray byte.
        assert!(!looks_binary(&format!("{prose}\0{prose}"), 0));
        assert!(!looks_binary(&format!("\0{prose}\0{prose}"), 0));
        // Many NULs, as in an executable's header.
        let elf = "\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0";
        assert!(looks_binary(&format!("{elf}{}", "a".repeat(200)), 0));
        assert!(looks_binary(&"\0".repeat(8192), 0));
        // Mostly bytes that are not text, and no NUL (compressed data).
        assert!(looks_binary("\x01\x02\x03\x04abc", 0));
        assert!(looks_binary("ab", 1));
        assert!(!looks_binary(&"Latin-1 caf\u{FFFD} ".repeat(10), 10));
        // Escape sequences of coloured logs are text.
        assert!(!looks_binary(&"\x1B[31merror\x1B[0m\r\n".repeat(10), 0));
        assert!(!looks_binary("", 0));
    }
}
