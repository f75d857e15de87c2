//! The streaming `$(VAR)` expander equals the whole-buffer reference for any input and any
//! chunking (the first two bytes choose the chunk sizes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use promreload::sidecar::expand::{Expander, expand_reference};

fn lookup(name: &str) -> Option<&'static [u8]> {
    match name {
        "A" => Some(b"value-a"),
        "SHARD" => Some(b"0"),
        "EMPTY" => Some(b""),
        "DOLLAR" => Some(b"$(A)"),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let (sizes, input) = match data {
        [a, b, rest @ ..] => ([usize::from(*a % 64) + 1, usize::from(*b % 7) + 1], rest),
        _ => return,
    };
    let mut expander = Expander::new(lookup);
    let mut out = Vec::new();
    let mut rest = input;
    let mut turn = 0;
    while !rest.is_empty() {
        let n = sizes[turn % 2].min(rest.len());
        expander.feed(&rest[..n], &mut out).unwrap();
        rest = &rest[n..];
        turn += 1;
    }
    let (unset, _) = expander.finish(&mut out).unwrap();
    let (want, want_unset) = expand_reference(input, lookup);
    assert_eq!(out, want);
    assert_eq!(unset.count(), want_unset.len());
    assert!(unset.names().is_subset(&want_unset));
});
