//! The decode path (sniff, gunzip, expand, check, cap, write) never panics, never writes more
//! than the cap, never replaces the output with anything on failure, and never accepts a
//! config that is empty (only whitespace and comments).
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use promreload::sidecar::render::Renderer;

const CAP: u64 = 64 * 1024;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fuzz_target!(|data: &[u8]| {
    let (input, output) = (dir().join("in"), dir().join("out"));
    std::fs::write(&input, data).unwrap();
    std::fs::write(&output, b"last good\n").unwrap();
    let env = HashMap::from([("A".to_string(), b"value".to_vec())]);
    let mut renderer = Renderer::new(input, Some(output.clone()), CAP, false, env);
    let after = renderer.apply();
    let written = std::fs::read(&output).unwrap();
    match after {
        Ok(r) => {
            assert!(r.bytes <= CAP);
            assert_eq!(written.len() as u64, r.bytes);
            // What replaces a good config is never empty: something besides whitespace and
            // comments is in it.
            let text = String::from_utf8(written).expect("accepted output is UTF-8");
            assert!(
                text.lines()
                    .map(str::trim)
                    .any(|l| !l.is_empty() && !l.starts_with('#')),
                "an empty config was accepted"
            );
        }
        Err(_) => assert_eq!(written, b"last good\n"),
    }
});
