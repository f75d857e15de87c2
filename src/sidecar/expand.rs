//! The streaming `$(NAME)` expander.
//!
//! It accepts input in chunks of any size and produces exactly what a whole-buffer replacement
//! of the regular expression `\$\(([A-Za-z0-9_]+)\)` would: the Go reloader's syntax. `$VAR`
//! and `${VAR}` are left alone and there is no escape syntax. A reference that straddles two
//! chunks is held back (at most [`MAX_NAME_LEN`] bytes) until it is complete. An unset
//! variable is left as literal text and its name recorded.
//!
//! Names longer than [`MAX_NAME_LEN`] bytes are treated as text, never as a reference, so a
//! hostile input cannot make the expander buffer without bound. What is remembered about unset
//! names is bounded too ([`Unset`]): millions of distinct names cost a few hundred kilobytes.

use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{self, Write};

/// The longest variable name that is still looked up.
pub const MAX_NAME_LEN: usize = 1024;

/// How many unset names are kept to show (logs, errors).
pub const MAX_KEPT_NAMES: usize = 10;
/// Distinct unset names are counted exactly up to this many; beyond it the count saturates.
pub const MAX_COUNTED_NAMES: usize = 10_000;

/// The unset variables a config references, remembered within fixed bounds: the first
/// [`MAX_KEPT_NAMES`] distinct names, and the number of distinct names (exact up to
/// [`MAX_COUNTED_NAMES`], then "at least").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unset {
    names: BTreeSet<String>,
    /// Hashes of the distinct names seen, to count them without keeping them.
    seen: HashSet<u64, BuildHasherDefault<DefaultHasher>>,
    saturated: bool,
}

impl Unset {
    /// Records one reference to an unset name.
    pub fn insert(&mut self, name: &str) {
        if self.saturated {
            return;
        }
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(name);
        if self.seen.len() >= MAX_COUNTED_NAMES && !self.seen.contains(&hash) {
            self.saturated = true;
            return;
        }
        if self.seen.insert(hash) && self.names.len() < MAX_KEPT_NAMES {
            self.names.insert(name.to_string());
        }
    }

    /// No unset name was referenced.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// The number of distinct unset names (a lower bound when [`Unset::saturated`]).
    pub fn count(&self) -> usize {
        self.seen.len()
    }

    /// More distinct names were referenced than are counted.
    pub fn saturated(&self) -> bool {
        self.saturated
    }

    /// The first few names (sorted), at most [`MAX_KEPT_NAMES`].
    pub fn names(&self) -> &BTreeSet<String> {
        &self.names
    }

    /// The kept names and how many others there are, for a log line or an error:
    /// `A,B,C` or `A,B,C and 997 more`.
    pub fn summary(&self) -> String {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let mut text = names.join(",");
        let others = self.count() - self.names.len();
        if others > 0 || self.saturated {
            let plus = if self.saturated { "+" } else { "" };
            text.push_str(&format!(" and {others}{plus} more"));
        }
        text
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// Saw `$`.
    Dollar,
    /// Saw `$(` and then the bytes in `name`.
    Name,
}

/// Expands `$(NAME)` references in a stream.
pub struct Expander<L> {
    lookup: L,
    state: State,
    name: Vec<u8>,
    unset: Unset,
    expanded: BTreeSet<String>,
}

impl<L, V> Expander<L>
where
    L: Fn(&str) -> Option<V>,
    V: AsRef<[u8]>,
{
    /// An expander resolving names with `lookup`.
    pub fn new(lookup: L) -> Self {
        Self {
            lookup,
            state: State::Text,
            name: Vec::new(),
            unset: Unset::default(),
            expanded: BTreeSet::new(),
        }
    }

    /// Expands one chunk into `out`; partial references are kept for the next chunk.
    pub fn feed(&mut self, mut input: &[u8], out: &mut impl Write) -> io::Result<()> {
        while !input.is_empty() {
            input = match self.state {
                State::Text => match memchr::memchr(b'$', input) {
                    Some(i) => {
                        out.write_all(&input[..i])?;
                        self.state = State::Dollar;
                        &input[i + 1..]
                    }
                    None => {
                        out.write_all(input)?;
                        &[]
                    }
                },
                State::Dollar => {
                    match input[0] {
                        b'(' => {
                            self.state = State::Name;
                            self.name.clear();
                        }
                        b'$' => out.write_all(b"$")?,
                        _ => {
                            out.write_all(b"$")?;
                            self.state = State::Text;
                        }
                    }
                    // A byte other than `(` or `$` is plain text: let the Text state emit it.
                    if self.state == State::Text {
                        input
                    } else {
                        &input[1..]
                    }
                }
                State::Name => self.feed_name(input, out)?,
            };
        }
        Ok(())
    }

    /// Consumes name bytes; returns the rest of the input.
    fn feed_name<'a>(&mut self, input: &'a [u8], out: &mut impl Write) -> io::Result<&'a [u8]> {
        let run = input.iter().take_while(|b| is_name_byte(**b)).count();
        if self.name.len() + run > MAX_NAME_LEN {
            // Too long to be a name: everything so far is text.
            self.flush_partial(out)?;
            out.write_all(&input[..run])?;
            self.state = State::Text;
            return Ok(&input[run..]);
        }
        self.name.extend_from_slice(&input[..run]);
        let rest = &input[run..];
        let Some(&next) = rest.first() else {
            return Ok(rest);
        };
        if next == b')' && !self.name.is_empty() {
            self.substitute(out)?;
            self.state = State::Text;
            return Ok(&rest[1..]);
        }
        // Not a reference: emit what we held back; a `$` may start a new one.
        self.flush_partial(out)?;
        if next == b'$' {
            self.state = State::Dollar;
            return Ok(&rest[1..]);
        }
        self.state = State::Text;
        Ok(rest)
    }

    fn substitute(&mut self, out: &mut impl Write) -> io::Result<()> {
        let name = std::str::from_utf8(&self.name).expect("name bytes are ASCII");
        match (self.lookup)(name) {
            Some(value) => {
                if !self.expanded.contains(name) {
                    self.expanded.insert(name.to_string());
                }
                out.write_all(value.as_ref())
            }
            None => {
                self.unset.insert(name);
                out.write_all(b"$(")?;
                out.write_all(&self.name)?;
                out.write_all(b")")
            }
        }
    }

    fn flush_partial(&mut self, out: &mut impl Write) -> io::Result<()> {
        match self.state {
            State::Text => Ok(()),
            State::Dollar => out.write_all(b"$"),
            State::Name => {
                out.write_all(b"$(")?;
                out.write_all(&self.name)
            }
        }
    }

    /// Ends the stream: a reference left open is emitted as text. Returns the unset names
    /// and the expanded names.
    pub fn finish(mut self, out: &mut impl Write) -> io::Result<(Unset, BTreeSet<String>)> {
        self.flush_partial(out)?;
        Ok((self.unset, self.expanded))
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The whole-buffer reference implementation the streaming expander must equal; used by the
/// property tests and the fuzz target.
pub fn expand_reference<V: AsRef<[u8]>>(
    input: &[u8],
    lookup: impl Fn(&str) -> Option<V>,
) -> (Vec<u8>, BTreeSet<String>) {
    let mut out = Vec::with_capacity(input.len());
    let mut unset = BTreeSet::new();
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'$' && input.get(i + 1) == Some(&b'(') {
            let len = input[i + 2..]
                .iter()
                .take_while(|b| is_name_byte(**b))
                .count();
            let end = i + 2 + len;
            if len > 0 && len <= MAX_NAME_LEN && input.get(end) == Some(&b')') {
                let name = std::str::from_utf8(&input[i + 2..end]).expect("ASCII");
                match lookup(name) {
                    Some(v) => out.extend_from_slice(v.as_ref()),
                    None => {
                        unset.insert(name.to_string());
                        out.extend_from_slice(&input[i..=end]);
                    }
                }
                i = end + 1;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    (out, unset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lookup(name: &str) -> Option<&'static str> {
        match name {
            "POD_NAME" => Some("prometheus-k8s-0"),
            "SHARD" => Some("0"),
            "EMPTY" => Some(""),
            "DOLLAR" => Some("$(SHARD)"),
            _ => None,
        }
    }

    /// The streaming result in the reference's shape: the output, and the unset names (all of
    /// them when at most [`MAX_KEPT_NAMES`]; checked against the reference's count otherwise).
    fn expand_chunked(input: &[u8], chunk: usize) -> (Vec<u8>, BTreeSet<String>) {
        let mut e = Expander::new(lookup);
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            e.feed(c, &mut out).unwrap();
        }
        let (unset, _) = e.finish(&mut out).unwrap();
        let (_, all) = expand_reference(input, lookup);
        assert_eq!(unset.count(), all.len());
        assert!(unset.names().is_subset(&all));
        assert_eq!(unset.names().len(), all.len().min(MAX_KEPT_NAMES));
        let names = if all.len() <= MAX_KEPT_NAMES {
            unset.names().clone()
        } else {
            all
        };
        (out, names)
    }

    fn expand(input: &str) -> (String, Vec<String>) {
        let (out, unset) = expand_chunked(input.as_bytes(), input.len().max(1));
        (String::from_utf8(out).unwrap(), unset.into_iter().collect())
    }

    #[test]
    fn expands_set_variables() {
        assert_eq!(
            expand("replica: $(POD_NAME), shard $(SHARD);").0,
            "replica: prometheus-k8s-0, shard 0;"
        );
        assert_eq!(expand("a$(EMPTY)b").0, "ab");
    }

    #[test]
    fn leaves_other_syntaxes_alone() {
        for s in [
            "$SHARD",
            "${SHARD}",
            "$()",
            "$(",
            "$",
            "$(SH-ARD)",
            "$ (SHARD)",
            "(SHARD)",
        ] {
            assert_eq!(expand(s).0, s);
        }
    }

    #[test]
    fn records_unset_names_and_keeps_their_text() {
        let (out, unset) = expand("$(NOPE) and $(NOPE) and $(ALSO_NOT)");
        assert_eq!(out, "$(NOPE) and $(NOPE) and $(ALSO_NOT)");
        assert_eq!(unset, vec!["ALSO_NOT", "NOPE"]);
    }

    #[test]
    fn unset_names_are_counted_but_only_a_few_kept() {
        let mut unset = Unset::default();
        for i in 0..25_000 {
            unset.insert(&format!("V{i:05}"));
            unset.insert(&format!("V{i:05}"));
        }
        assert_eq!(unset.names().len(), MAX_KEPT_NAMES);
        assert_eq!(unset.count(), MAX_COUNTED_NAMES);
        assert!(unset.saturated());
        assert!(
            unset.summary().ends_with(" and 9990+ more"),
            "{}",
            unset.summary()
        );
        let mut few = Unset::default();
        for name in ["B", "A", "B"] {
            few.insert(name);
        }
        assert_eq!((few.count(), few.summary()), (2, "A,B".to_string()));
    }

    #[test]
    fn dollars_and_nesting_follow_leftmost_matching() {
        assert_eq!(expand("$$(SHARD)").0, "$0");
        assert_eq!(expand("$($(SHARD))").0, "$(0)");
        assert_eq!(expand("$(SHARD$(SHARD))").0, "$(SHARD0)");
        assert_eq!(expand("$(SHARD))").0, "0)");
    }

    #[test]
    fn values_are_not_expanded_again() {
        assert_eq!(expand("$(DOLLAR)").0, "$(SHARD)");
    }

    #[test]
    fn over_long_names_are_text() {
        let long = format!("$({})", "A".repeat(MAX_NAME_LEN + 1));
        let (out, unset) = expand(&long);
        assert_eq!(out, long);
        assert!(unset.is_empty());
        let (out, _) = expand_chunked(long.as_bytes(), 7);
        assert_eq!(out, long.as_bytes());
    }

    #[test]
    fn unterminated_reference_at_end_is_text() {
        assert_eq!(expand("x: $(POD_NAME").0, "x: $(POD_NAME");
    }

    proptest! {
        #[test]
        fn any_chunking_equals_the_reference(
            input in proptest::collection::vec(
                prop_oneof![
                    Just(b'$'), Just(b'('), Just(b')'), Just(b'A'), Just(b'_'),
                    Just(b'x'), Just(b'\n'), Just(0xffu8),
                    Just(b'S'), Just(b'H'), Just(b'R'), Just(b'D'),
                ],
                0..200,
            ),
            chunk in 1usize..17,
        ) {
            let want = expand_reference(&input, lookup);
            prop_assert_eq!(expand_chunked(&input, chunk), want);
        }

        #[test]
        fn any_chunking_of_realistic_text_equals_the_reference(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("$(POD_NAME)".to_string()), Just("$(SHARD)".to_string()),
                    Just("$(UNSET)".to_string()), Just("$(".to_string()), Just("$".to_string()),
                    "[a-z:\\- \n]{0,12}",
                ],
                0..40,
            ),
            chunk in 1usize..64,
        ) {
            let input = parts.concat().into_bytes();
            prop_assert_eq!(expand_chunked(&input, chunk), expand_reference(&input, lookup));
        }
    }
}
