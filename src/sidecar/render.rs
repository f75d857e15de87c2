//! Rendering: read the input, gunzip it if it starts with the gzip magic, expand `$(VAR)`,
//! hash the result and write it atomically, all as one stream with fixed-size buffers so peak
//! memory does not depend on the config's size. Output beyond the size cap is an error, which
//! also bounds a gzip bomb.
//!
//! Work is skipped where it can be: an input whose raw bytes are unchanged is not rendered
//! again, and output whose bytes are unchanged does not replace the file.
//!
//! Before rendered bytes may replace the last good output they must look like a Prometheus
//! config, as far as a stream can cheaply tell: text (UTF-8, no control characters YAML
//! forbids), not empty (something besides whitespace, comments and document markers, and not
//! an empty document such as `{}` or `null`), and a YAML mapping (its first line is not a
//! sequence item or a bare word). The decompressed input is capped too, at
//! [`INPUT_CAP_FACTOR`] times the output cap, so references that expand to nothing cannot
//! make the renderer decode without end.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use flate2::bufread::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::expand::{Expander, Unset};
use super::input::aliases;
use super::output::AtomicFile;
use super::source::{Input, InputName};
pub use check::NotText;
use check::{Shape, TextCheck, Verdict};

mod check;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The gzip magic number and the deflate method byte.
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
/// Size of each streaming buffer (read, decode, write).
const BUF_SIZE: usize = 64 * 1024;
/// The decompressed (or plain) input may be at most this many times the output cap.
pub const INPUT_CAP_FACTOR: u64 = 4;

/// Why a config could not be rendered. The last good output is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The input does not exist (yet).
    #[error("{0} does not exist")]
    Missing(InputName),
    /// The input held in memory has not been read yet (API mode, before the first list).
    #[error("{0}: not read yet")]
    Pending(InputName),
    /// The input held in memory is unavailable (the Secret is missing, lacks the key, or
    /// cannot be read through the API).
    #[error("{name}: {reason}")]
    Unavailable {
        /// The input.
        name: InputName,
        /// A short metric label.
        kind: &'static str,
        /// Why.
        reason: String,
    },
    /// The input is a symlink that resolves outside the input's own directory (the mounted
    /// volume): refused, so a crafted link cannot copy another file into the output.
    #[error("config file {path} resolves to {target}, outside {dir}: refused")]
    Escape {
        /// The input.
        path: PathBuf,
        /// Where it resolves.
        target: PathBuf,
        /// The directory it must stay in.
        dir: PathBuf,
    },
    /// The input could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The input.
        path: InputName,
        /// The cause.
        source: io::Error,
    },
    /// The input is empty: refused rather than handing Prometheus an empty config.
    #[error("{0} is empty")]
    Empty(InputName),
    /// The input renders to nothing a Prometheus could use (a gzip of nothing, or variables
    /// that expand to nothing): refused, or Prometheus would load an empty config and drop
    /// every scrape job.
    #[error("{path} renders to an empty config ({what}); refused")]
    EmptyRendered {
        /// The input.
        path: InputName,
        /// What the rendered bytes were.
        what: &'static str,
    },
    /// The rendered text is not a YAML mapping, so it cannot be a Prometheus config.
    #[error("{path} does not render to a Prometheus config: {reason}; refused")]
    NotConfig {
        /// The input.
        path: InputName,
        /// What is wrong, by line number (never the line itself: it may hold a secret).
        reason: String,
    },
    /// The input and the output are the same file, however spelled: writing would destroy
    /// the input.
    #[error("refusing to write the output over the input: {0}")]
    Alias(String),
    /// The gzip stream is corrupt or truncated.
    #[error("decompressing {path}: {source} (corrupt or truncated gzip)")]
    Decode {
        /// The input.
        path: InputName,
        /// The cause.
        source: io::Error,
    },
    /// The rendered output grew over the cap.
    #[error("rendered config exceeds the limit of {limit} bytes (RELOADER_MAX_CONFIG_BYTES)")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The decompressed input grew over its cap (a multiple of the output cap).
    #[error(
        "decompressed config exceeds the limit of {limit} bytes ({INPUT_CAP_FACTOR} x RELOADER_MAX_CONFIG_BYTES)"
    )]
    InputTooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The rendered bytes are not text a YAML parser accepts (invalid UTF-8, or a control
    /// character): garbage is refused before it can replace a good config.
    #[error("rendered config is not text: {0}")]
    NotText(#[from] NotText),
    /// Strict mode: the config references variables that are not set.
    #[error(
        "config references unset environment variables {} (RELOADER_STRICT_ENV=true)",
        .0.summary()
    )]
    UnsetVariables(Unset),
    /// The output could not be written.
    #[error("writing output file {path}: {source}")]
    Write {
        /// The output.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl RenderError {
    /// A short, stable label for failure counters.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Missing(_) => "missing",
            Self::Pending(_) => "pending",
            Self::Unavailable { kind, .. } => kind,
            Self::Escape { .. } => "symlink_escape",
            Self::Read { .. } => "read",
            Self::Empty(_) | Self::EmptyRendered { .. } => "empty",
            Self::NotConfig { .. } => "not_config",
            Self::Alias(_) => "alias",
            Self::Decode { .. } => "decode",
            Self::TooLarge { .. } | Self::InputTooLarge { .. } => "too_large",
            Self::NotText(_) => "not_text",
            Self::UnsetVariables(_) => "unset_variables",
            Self::Write { .. } => "write",
        }
    }
}

/// What one successful render did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// SHA-256 of the rendered bytes.
    pub output_hash: Hash,
    /// Size of the rendered bytes.
    pub bytes: u64,
    /// Unset variables referenced (left as text).
    pub unset: Unset,
    /// Variables that were expanded (their values are redacted from reload errors).
    pub expanded: BTreeSet<String>,
    /// Whether the output file was replaced by this call.
    pub written: bool,
}

/// Renders one input to one (optional) output, remembering what it last produced.
#[derive(Debug)]
pub struct Renderer {
    input: Input,
    output: Option<PathBuf>,
    max_bytes: u64,
    strict: bool,
    env: HashMap<String, Vec<u8>>,
    /// Raw input fingerprint and result of the last successful render.
    last: Option<(Hash, Rendered)>,
}

impl Renderer {
    /// A renderer of the file `input`, expanding from `env` (a snapshot of the process
    /// environment).
    pub fn new(
        input: PathBuf,
        output: Option<PathBuf>,
        max_bytes: u64,
        strict: bool,
        env: HashMap<String, Vec<u8>>,
    ) -> Self {
        Self::of(Input::File(input), output, max_bytes, strict, env)
    }

    /// A renderer of any [`Input`].
    pub fn of(
        input: Input,
        output: Option<PathBuf>,
        max_bytes: u64,
        strict: bool,
        env: HashMap<String, Vec<u8>>,
    ) -> Self {
        Self {
            input,
            output,
            max_bytes,
            strict,
            env,
            last: None,
        }
    }

    /// Renders if the input changed (or the output went missing) and writes if the output
    /// bytes changed. Blocking: call it from a blocking thread.
    pub fn apply(&mut self) -> Result<Rendered, RenderError> {
        let fingerprint = self.fingerprint()?;
        if let Some((last_fp, last)) = &self.last
            && *last_fp == fingerprint
            && self.output_intact(last.bytes)
        {
            return Ok(Rendered {
                written: false,
                ..last.clone()
            });
        }
        let (fingerprint, mut rendered, file) = self.render()?;
        let unchanged = self.last.as_ref().map(|(_, l)| l.output_hash)
            == Some(rendered.output_hash)
            && self.output_intact(rendered.bytes);
        if let (Some(file), false) = (file, unchanged) {
            file.commit().map_err(|source| self.write_error(source))?;
            rendered.written = true;
        }
        self.last = Some((fingerprint, rendered.clone()));
        Ok(rendered)
    }

    /// The values of `names` at least `min_len` bytes long, longest first (for redaction).
    pub fn values(&self, names: &BTreeSet<String>, min_len: usize) -> Vec<String> {
        let mut values: Vec<String> = names
            .iter()
            .filter_map(|n| self.env.get(n))
            .filter(|v| v.len() >= min_len)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        values
    }

    /// Seeds the "last written" state from an existing output file, so a restart does not
    /// rewrite identical bytes.
    pub fn adopt_existing_output(&mut self) {
        let Some(path) = &self.output else { return };
        let Ok(file) = File::open(path) else { return };
        let mut hasher = Sha256::new();
        let mut reader = BufReader::with_capacity(BUF_SIZE, file);
        if let Ok(bytes) = io::copy(&mut reader, &mut hasher) {
            let rendered = Rendered {
                output_hash: hasher.finalize().into(),
                bytes,
                unset: Unset::default(),
                expanded: BTreeSet::new(),
                written: false,
            };
            // No input fingerprint matches this, so the input is still rendered once.
            self.last = Some(([0; 32], rendered));
        }
    }

    fn output_intact(&self, bytes: u64) -> bool {
        match &self.output {
            None => true,
            Some(p) => std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() == bytes),
        }
    }

    /// SHA-256 of the raw input bytes.
    fn fingerprint(&self) -> Result<Hash, RenderError> {
        let mut reader = BufReader::with_capacity(BUF_SIZE, self.input.open()?);
        let mut hasher = Sha256::new();
        io::copy(&mut reader, &mut hasher).map_err(|e| self.read_error(e))?;
        Ok(hasher.finalize().into())
    }

    fn name(&self) -> InputName {
        self.input.name()
    }

    /// One streaming pass: returns the fingerprint of exactly the bytes rendered.
    fn render(&self) -> Result<(Hash, Rendered, Option<AtomicFile>), RenderError> {
        if let (Some(output), Input::File(input)) = (&self.output, &self.input)
            && let Some(why) = aliases(input, output)
        {
            return Err(RenderError::Alias(why));
        }
        let mut source = TeeReader {
            inner: self.input.open()?,
            hasher: Sha256::new(),
            failed: false,
        };
        let mut sink = Sink {
            hasher: Sha256::new(),
            bytes: 0,
            cap: self.max_bytes,
            over_cap: false,
            text: TextCheck::default(),
            not_text: None,
            shape: Shape::default(),
            out: match &self.output {
                Some(p) => Some(BufWriter::with_capacity(
                    BUF_SIZE,
                    AtomicFile::create(p).map_err(|e| self.write_error(e))?,
                )),
                None => None,
            },
        };
        let result = self.stream(&mut source, &mut sink);
        let (unset, expanded) = result.map_err(|e| self.classify(e, &source, &sink))?;
        sink.text.finish(sink.bytes)?;
        match sink.shape.finish() {
            Verdict::Config => {}
            Verdict::Empty(what) => {
                return Err(RenderError::EmptyRendered {
                    path: self.name(),
                    what,
                });
            }
            Verdict::NotConfig(reason) => {
                return Err(RenderError::NotConfig {
                    path: self.name(),
                    reason,
                });
            }
        }
        if self.strict && !unset.is_empty() {
            return Err(RenderError::UnsetVariables(unset));
        }
        let file = match sink.out {
            Some(w) => Some(
                w.into_inner()
                    .map_err(|e| self.write_error(e.into_error()))?,
            ),
            None => None,
        };
        let rendered = Rendered {
            output_hash: sink.hasher.finalize().into(),
            bytes: sink.bytes,
            unset,
            expanded,
            written: false,
        };
        Ok((source.hasher.finalize().into(), rendered, file))
    }

    /// Returns the unset and the expanded variable names.
    fn stream(
        &self,
        source: &mut TeeReader,
        sink: &mut Sink,
    ) -> io::Result<(Unset, BTreeSet<String>)> {
        let mut reader = BufReader::with_capacity(BUF_SIZE, source);
        let head = reader.fill_buf()?;
        if head.is_empty() {
            return Err(io::Error::other(EmptyInput));
        }
        let env = &self.env;
        let mut expander = Expander::new(|name: &str| env.get(name));
        let mut buf = vec![0u8; BUF_SIZE];
        let limit = self.input_limit();
        if head.starts_with(&GZIP_MAGIC) {
            pump(
                MultiGzDecoder::new(reader),
                &mut buf,
                limit,
                &mut expander,
                sink,
            )?;
        } else {
            pump(reader, &mut buf, limit, &mut expander, sink)?;
        }
        let names = expander.finish(sink)?;
        sink.flush()?;
        Ok(names)
    }

    /// Maps a stream error to its cause: the file, the decoder, the cap or the output.
    fn classify(&self, e: io::Error, source: &TeeReader, sink: &Sink) -> RenderError {
        if sink.over_cap {
            RenderError::TooLarge {
                limit: self.max_bytes,
            }
        } else if let Some(reason) = &sink.not_text {
            RenderError::NotText(reason.clone())
        } else if e.get_ref().is_some_and(|inner| inner.is::<EmptyInput>()) {
            RenderError::Empty(self.name())
        } else if e.get_ref().is_some_and(|inner| inner.is::<InputOverCap>()) {
            RenderError::InputTooLarge {
                limit: self.input_limit(),
            }
        } else if source.failed {
            self.read_error(e)
        } else if e.get_ref().is_some_and(|inner| inner.is::<OutputError>()) {
            self.write_error(e)
        } else {
            RenderError::Decode {
                path: self.name(),
                source: e,
            }
        }
    }

    /// The cap on the decompressed (or plain) input.
    fn input_limit(&self) -> u64 {
        self.max_bytes.saturating_mul(INPUT_CAP_FACTOR)
    }

    fn read_error(&self, source: io::Error) -> RenderError {
        RenderError::Read {
            path: self.name(),
            source,
        }
    }

    fn write_error(&self, source: io::Error) -> RenderError {
        RenderError::Write {
            path: self.output.clone().unwrap_or_default(),
            source,
        }
    }
}

/// Marks an input with no bytes at all.
#[derive(Debug, thiserror::Error)]
#[error("input is empty")]
struct EmptyInput;

/// Marks a decompressed input over its cap.
#[derive(Debug, thiserror::Error)]
#[error("decompressed input over its cap")]
struct InputOverCap;

/// Feeds the (decompressed) input through the expander into the sink, at most `limit` bytes.
fn pump<R: Read, L, V>(
    mut reader: R,
    buf: &mut [u8],
    limit: u64,
    expander: &mut Expander<L>,
    sink: &mut Sink,
) -> io::Result<()>
where
    L: Fn(&str) -> Option<V>,
    V: AsRef<[u8]>,
{
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if total > limit {
            return Err(io::Error::other(InputOverCap));
        }
        expander.feed(&buf[..n], sink)?;
    }
}

/// Hashes the raw bytes read from the input and remembers whether reading itself failed.
struct TeeReader {
    inner: Box<dyn Read + Send>,
    hasher: Sha256,
    failed: bool,
}

impl Read for TeeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                self.failed = e.kind() != io::ErrorKind::Interrupted;
                Err(e)
            }
        }
    }
}

/// Marks an error that came from writing the output.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct OutputError(io::Error);

/// Counts, caps, checks, hashes and (optionally) writes the rendered bytes.
struct Sink {
    hasher: Sha256,
    bytes: u64,
    cap: u64,
    over_cap: bool,
    text: TextCheck,
    /// Why the bytes were refused as text, once they were.
    not_text: Option<NotText>,
    shape: Shape,
    out: Option<BufWriter<AtomicFile>>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes + buf.len() as u64 > self.cap {
            self.over_cap = true;
            return Err(io::Error::other("rendered config over the size cap"));
        }
        if let Err(reason) = self.text.check(buf, self.bytes) {
            self.not_text = Some(reason);
            return Err(io::Error::other("rendered config is not text"));
        }
        self.shape.feed(buf);
        if let Some(out) = &mut self.out {
            out.write_all(buf)
                .map_err(|e| io::Error::other(OutputError(e)))?;
        }
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush().map_err(|e| io::Error::other(OutputError(e))),
            None => Ok(()),
        }
    }
}

/// Hex form of a hash, for logs and `/status`.
pub fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::fs;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn env() -> HashMap<String, Vec<u8>> {
        HashMap::from([("POD_NAME".to_string(), b"pod-0".to_vec())])
    }

    struct Fixture {
        dir: tempfile::TempDir,
        renderer: Renderer,
    }

    fn fixture(max: u64, strict: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let renderer = Renderer::new(
            dir.path().join("in"),
            Some(dir.path().join("out")),
            max,
            strict,
            env(),
        );
        Fixture { dir, renderer }
    }

    impl Fixture {
        fn input(&self, bytes: &[u8]) {
            fs::write(self.dir.path().join("in"), bytes).unwrap();
        }
        fn output(&self) -> Vec<u8> {
            fs::read(self.dir.path().join("out")).unwrap()
        }
    }

    #[test]
    fn gzip_and_plain_inputs_render_the_same() {
        let mut f = fixture(1 << 20, false);
        f.input(&gzip(b"replica: $(POD_NAME)\n"));
        let r = f.renderer.apply().unwrap();
        assert!(r.written);
        assert_eq!(f.output(), b"replica: pod-0\n");
        f.input(b"replica: $(POD_NAME)\n");
        let r2 = f.renderer.apply().unwrap();
        assert!(!r2.written, "same output bytes are not rewritten");
        assert_eq!(r.output_hash, r2.output_hash);
    }

    #[test]
    fn unchanged_input_is_not_rendered_again_unless_output_vanished() {
        let mut f = fixture(1 << 20, false);
        f.input(b"a: 1\n");
        assert!(f.renderer.apply().unwrap().written);
        assert!(!f.renderer.apply().unwrap().written);
        fs::remove_file(f.dir.path().join("out")).unwrap();
        assert!(f.renderer.apply().unwrap().written);
        assert_eq!(f.output(), b"a: 1\n");
    }

    #[test]
    fn bad_inputs_keep_the_last_good_output() {
        let mut f = fixture(1000, true);
        f.input(b"good: $(POD_NAME)\n");
        f.renderer.apply().unwrap();
        let good = gzip(b"x: 1\n");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "empty"),
            (good[..good.len() - 4].to_vec(), "decode"),
            (good[..12].to_vec(), "decode"),
            (gzip(&vec![b'a'; 5000]), "too_large"),
            (b"v: $(NOT_SET)\n".to_vec(), "unset_variables"),
        ];
        for (input, label) in cases {
            f.input(&input);
            let err = f.renderer.apply().unwrap_err();
            assert_eq!(err.metric_label(), label, "{err}");
            assert_eq!(f.output(), b"good: pod-0\n");
        }
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 0xff;
        f.input(&bad_crc);
        assert_eq!(f.renderer.apply().unwrap_err().metric_label(), "decode");
        assert_eq!(
            fs::read_dir(f.dir.path()).unwrap().count(),
            2,
            "no temp file left"
        );
    }

    #[test]
    fn missing_and_non_file_inputs_are_named() {
        let mut f = fixture(1000, false);
        let err = f.renderer.apply().unwrap_err();
        assert_eq!(err.metric_label(), "missing");
        fs::create_dir(f.dir.path().join("in")).unwrap();
        let err = f.renderer.apply().unwrap_err();
        assert_eq!(err.metric_label(), "read");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn symlinks_may_not_leave_the_input_directory() {
        let mut f = fixture(1000, false);
        let outside = tempfile::NamedTempFile::new().unwrap();
        fs::write(outside.path(), "secret: 1\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), f.dir.path().join("in")).unwrap();
        let err = f.renderer.apply().unwrap_err();
        assert_eq!(err.metric_label(), "symlink_escape", "{err}");
        assert!(!f.dir.path().join("out").exists());
        // The kubelet's own layout stays inside and is fine.
        fs::remove_file(f.dir.path().join("in")).unwrap();
        fs::create_dir(f.dir.path().join("..2026")).unwrap();
        fs::write(f.dir.path().join("..2026/in"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink("..2026", f.dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/in", f.dir.path().join("in")).unwrap();
        assert!(f.renderer.apply().unwrap().written);
    }

    #[test]
    fn binary_garbage_and_invalid_utf8_are_refused() {
        let mut f = fixture(1 << 20, false);
        f.input(b"good: 1\n");
        f.renderer.apply().unwrap();
        for bad in [
            &b"\x00\x01\x02binary"[..],
            b"a: \xff\xfe\n",
            b"a: \xe2\x82",
            b"a: 1\x1b[0m\n",
        ] {
            f.input(bad);
            let err = f.renderer.apply().unwrap_err();
            assert_eq!(err.metric_label(), "not_text", "{err}");
            assert_eq!(f.output(), b"good: 1\n");
        }
        f.input("ok: \"caf\u{e9} \u{1f600}\"\t\r\n".as_bytes());
        assert!(f.renderer.apply().unwrap().written);
    }

    #[test]
    fn concatenated_gzip_members_are_all_decoded() {
        let mut f = fixture(1000, false);
        let mut two = gzip(b"a: 1\n");
        two.extend(gzip(b"b: 2\n"));
        f.input(&two);
        f.renderer.apply().unwrap();
        assert_eq!(f.output(), b"a: 1\nb: 2\n");
    }

    #[test]
    fn restart_adopts_identical_output_without_rewriting() {
        let mut f = fixture(1000, false);
        f.input(b"a: 1\n");
        f.renderer.apply().unwrap();
        let mut again = Renderer::new(
            f.dir.path().join("in"),
            Some(f.dir.path().join("out")),
            1000,
            false,
            env(),
        );
        again.adopt_existing_output();
        assert!(!again.apply().unwrap().written);
    }

    #[test]
    fn inputs_that_render_to_nothing_keep_the_last_good_output() {
        let mut f = fixture(1 << 20, false);
        f.input(b"good: $(POD_NAME)\n");
        f.renderer.apply().unwrap();
        f.renderer.env.insert("EMPTY".into(), Vec::new());
        for (input, label) in [
            (gzip(b""), "empty"),
            (b"$(EMPTY)".to_vec(), "empty"),
            (b"$(EMPTY)\n  \n# nothing\n".to_vec(), "empty"),
            (gzip(b"{}\n"), "empty"),
            (b"- a\n- b\n".to_vec(), "not_config"),
            (b"plain words\n".to_vec(), "not_config"),
        ] {
            f.input(&input);
            let err = f.renderer.apply().unwrap_err();
            assert_eq!(err.metric_label(), label, "{err}");
            assert_eq!(f.output(), b"good: pod-0\n");
        }
    }

    #[test]
    fn decompressed_input_is_capped_even_when_it_expands_to_nothing() {
        let mut f = fixture(1000, false);
        f.input(b"good: 1\n");
        f.renderer.apply().unwrap();
        f.renderer.env.insert("EMPTY".into(), Vec::new());
        let mut text = b"a: 1\n".to_vec();
        text.extend(b"$(EMPTY)".repeat(1000));
        f.input(&gzip(&text));
        let err = f.renderer.apply().unwrap_err();
        assert!(
            matches!(err, RenderError::InputTooLarge { limit: 4000 }),
            "{err}"
        );
        assert_eq!(f.output(), b"good: 1\n");
    }

    #[test]
    fn an_output_that_aliases_the_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("in"), "a: 1\n").unwrap();
        let mut r = Renderer::new(
            dir.path().join("in"),
            Some(dir.path().join("sub/../in")),
            1000,
            false,
            env(),
        );
        assert_eq!(r.apply().unwrap_err().metric_label(), "alias");
        assert_eq!(fs::read(dir.path().join("in")).unwrap(), b"a: 1\n");
    }
}
