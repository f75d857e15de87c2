//! Rendering: read the input, gunzip it if it starts with the gzip magic, expand `$(VAR)`,
//! hash the result and write it atomically, all as one stream with fixed-size buffers so peak
//! memory does not depend on the config's size. Output beyond the size cap is an error, which
//! also bounds a gzip bomb.
//!
//! Work is skipped where it can be: an input whose raw bytes are unchanged is not rendered
//! again, and output whose bytes are unchanged does not replace the file.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::expand::Expander;
use super::output::AtomicFile;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The gzip magic number and the deflate method byte.
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
/// Size of each streaming buffer (read, decode, write).
const BUF_SIZE: usize = 64 * 1024;

/// Why a config could not be rendered. The last good output is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The input does not exist (yet).
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
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
    #[error("reading config file {path}: {source}")]
    Read {
        /// The input.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The input is empty: refused rather than handing Prometheus an empty config.
    #[error("config file {0} is empty")]
    Empty(PathBuf),
    /// The gzip stream is corrupt or truncated.
    #[error("decompressing config file {path}: {source} (corrupt or truncated gzip)")]
    Decode {
        /// The input.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The rendered output grew over the cap.
    #[error("rendered config exceeds the limit of {limit} bytes (RELOADER_MAX_CONFIG_BYTES)")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The rendered bytes are not text a YAML parser accepts (invalid UTF-8, or a control
    /// character): garbage is refused before it can replace a good config.
    #[error("rendered config is not text: {0}")]
    NotText(String),
    /// Strict mode: the config references variables that are not set.
    #[error("config references unset environment variables {0:?} (RELOADER_STRICT_ENV=true)")]
    UnsetVariables(Vec<String>),
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
            Self::Escape { .. } => "symlink_escape",
            Self::Read { .. } => "read",
            Self::Empty(_) => "empty",
            Self::Decode { .. } => "decode",
            Self::TooLarge { .. } => "too_large",
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
    pub unset: BTreeSet<String>,
    /// Variables that were expanded (their values are redacted from reload errors).
    pub expanded: BTreeSet<String>,
    /// Whether the output file was replaced by this call.
    pub written: bool,
}

/// Renders one input to one (optional) output, remembering what it last produced.
#[derive(Debug)]
pub struct Renderer {
    input: PathBuf,
    output: Option<PathBuf>,
    max_bytes: u64,
    strict: bool,
    env: HashMap<String, Vec<u8>>,
    /// Raw input fingerprint and result of the last successful render.
    last: Option<(Hash, Rendered)>,
}

impl Renderer {
    /// A renderer expanding from `env` (a snapshot of the process environment).
    pub fn new(
        input: PathBuf,
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
        if let Ok(bytes) = io::copy(&mut reader, &mut HashWriter(&mut hasher)) {
            let rendered = Rendered {
                output_hash: hasher.finalize().into(),
                bytes,
                unset: BTreeSet::new(),
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
        let file = self.open_input()?;
        let mut hasher = Sha256::new();
        let mut reader = BufReader::with_capacity(BUF_SIZE, file);
        io::copy(&mut reader, &mut HashWriter(&mut hasher)).map_err(|e| self.read_error(e))?;
        Ok(hasher.finalize().into())
    }

    fn open_input(&self) -> Result<File, RenderError> {
        let not_found = |e: io::Error| match e.kind() {
            io::ErrorKind::NotFound => RenderError::Missing(self.input.clone()),
            _ => self.read_error(e),
        };
        let target = std::fs::canonicalize(&self.input).map_err(not_found)?;
        let dir = match self.input.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = std::fs::canonicalize(dir).map_err(not_found)?;
        if !target.starts_with(&dir) {
            return Err(RenderError::Escape {
                path: self.input.clone(),
                target,
                dir,
            });
        }
        let file = File::open(&target).map_err(not_found)?;
        let meta = file.metadata().map_err(|e| self.read_error(e))?;
        if !meta.is_file() {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
            return Err(self.read_error(e));
        }
        if meta.len() == 0 {
            return Err(RenderError::Empty(self.input.clone()));
        }
        Ok(file)
    }

    /// One streaming pass: returns the fingerprint of exactly the bytes rendered.
    fn render(&self) -> Result<(Hash, Rendered, Option<AtomicFile>), RenderError> {
        let mut source = TeeReader {
            inner: self.open_input()?,
            hasher: Sha256::new(),
            failed: false,
        };
        let mut sink = Sink {
            hasher: Sha256::new(),
            bytes: 0,
            cap: self.max_bytes,
            over_cap: false,
            text: TextCheck::default(),
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
        sink.text.finish(sink.bytes).map_err(RenderError::NotText)?;
        if self.strict && !unset.is_empty() {
            return Err(RenderError::UnsetVariables(unset.into_iter().collect()));
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
    ) -> io::Result<(BTreeSet<String>, BTreeSet<String>)> {
        let mut reader = BufReader::with_capacity(BUF_SIZE, source);
        let head = reader.fill_buf()?;
        if head.is_empty() {
            return Err(io::Error::other(EmptyInput));
        }
        let env = &self.env;
        let mut expander = Expander::new(|name: &str| env.get(name));
        let mut buf = vec![0u8; BUF_SIZE];
        if head.starts_with(&GZIP_MAGIC) {
            pump(MultiGzDecoder::new(reader), &mut buf, &mut expander, sink)?;
        } else {
            pump(reader, &mut buf, &mut expander, sink)?;
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
        } else if let Some(reason) = &sink.text.error {
            RenderError::NotText(reason.clone())
        } else if e.get_ref().is_some_and(|inner| inner.is::<EmptyInput>()) {
            RenderError::Empty(self.input.clone())
        } else if source.failed {
            self.read_error(e)
        } else if e.get_ref().is_some_and(|inner| inner.is::<OutputError>()) {
            self.write_error(e)
        } else {
            RenderError::Decode {
                path: self.input.clone(),
                source: e,
            }
        }
    }

    fn read_error(&self, source: io::Error) -> RenderError {
        RenderError::Read {
            path: self.input.clone(),
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

fn pump<R: Read, L, V>(
    mut reader: R,
    buf: &mut [u8],
    expander: &mut Expander<L>,
    sink: &mut Sink,
) -> io::Result<()>
where
    L: Fn(&str) -> Option<V>,
    V: AsRef<[u8]>,
{
    loop {
        let n = match reader.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        expander.feed(&buf[..n], sink)?;
    }
}

/// Hashes the raw bytes read from the input and remembers whether reading itself failed.
struct TeeReader {
    inner: File,
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

/// A control character YAML forbids: C0 but tab, line feed and carriage return; and DEL.
fn forbidden(b: u8) -> bool {
    (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r') || b == 0x7f
}

/// Checks, as a stream, that the rendered bytes are UTF-8 without the control characters
/// YAML forbids (all of C0 but tab, line feed and carriage return; and DEL).
#[derive(Default)]
struct TextCheck {
    /// The start of a UTF-8 sequence cut by the end of the previous write.
    carry: Vec<u8>,
    /// Why the text was refused.
    error: Option<String>,
}

impl TextCheck {
    /// Checks `buf`, which starts at byte `offset` of the output.
    fn check(&mut self, buf: &[u8], offset: u64) -> Result<(), ()> {
        // A branch-free OR over the chunk vectorizes; the position is only needed on failure.
        if buf.iter().fold(0u8, |acc, &b| acc | u8::from(forbidden(b))) != 0 {
            let i = buf.iter().position(|&b| forbidden(b)).unwrap_or(0);
            return self.fail(format!(
                "control character 0x{:02x} at byte {}",
                buf[i],
                offset + i as u64
            ));
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
                Err(_) => return self.fail(format!("invalid UTF-8 near byte {offset}")),
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
                self.fail(format!("invalid UTF-8 at byte {at}"))
            }
        }
    }

    /// The stream ended: a cut sequence is invalid.
    fn finish(&self, bytes: u64) -> Result<(), String> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(format!("invalid UTF-8 at the end (byte {bytes})"))
        }
    }

    fn fail(&mut self, reason: String) -> Result<(), ()> {
        self.error = Some(reason);
        Err(())
    }
}

/// Counts, caps, checks, hashes and (optionally) writes the rendered bytes.
struct Sink {
    hasher: Sha256,
    bytes: u64,
    cap: u64,
    over_cap: bool,
    text: TextCheck,
    out: Option<BufWriter<AtomicFile>>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes + buf.len() as u64 > self.cap {
            self.over_cap = true;
            return Err(io::Error::other("rendered config over the size cap"));
        }
        if self.text.check(buf, self.bytes).is_err() {
            return Err(io::Error::other("rendered config is not text"));
        }
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

/// Feeds written bytes to a hasher.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// SHA-256 over every regular file directly in `dirs` (relative path and content, sorted),
/// skipping the kubelet's `..`-prefixed entries. A missing directory hashes as a marker, so
/// its disappearance and return are both seen as changes.
pub fn hash_dirs(dirs: &[PathBuf]) -> io::Result<Hash> {
    let mut hasher = Sha256::new();
    for dir in dirs {
        hasher.update(dir.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                hasher.update(b"\0missing\0");
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .filter(|n| !n.as_encoded_bytes().starts_with(b".."))
            .collect();
        names.sort();
        for name in names {
            hash_file(&mut hasher, &dir.join(&name), name.as_encoded_bytes())?;
        }
    }
    Ok(hasher.finalize().into())
}

fn hash_file(hasher: &mut Sha256, path: &Path, name: &[u8]) -> io::Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        // Gone between listing and opening: the next event will settle it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Ok(());
    }
    hasher.update(name);
    hasher.update([0]);
    let mut content = Sha256::new();
    io::copy(&mut BufReader::new(file), &mut HashWriter(&mut content))?;
    hasher.update(content.finalize());
    Ok(())
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
        assert!(
            check.check(b"x", 2).is_err(),
            "a cut sequence must continue correctly"
        );
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
    fn dir_hash_follows_content_not_kubelet_internals() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        fs::create_dir(&rules).unwrap();
        fs::write(rules.join("a.yaml"), "x").unwrap();
        let h1 = hash_dirs(std::slice::from_ref(&rules)).unwrap();
        fs::create_dir(rules.join("..2026_01_01")).unwrap();
        fs::write(rules.join("..data_tmp"), "y").unwrap();
        assert_eq!(h1, hash_dirs(std::slice::from_ref(&rules)).unwrap());
        fs::write(rules.join("a.yaml"), "z").unwrap();
        assert_ne!(h1, hash_dirs(std::slice::from_ref(&rules)).unwrap());
        fs::remove_dir_all(&rules).unwrap();
        assert!(hash_dirs(&[rules]).is_ok());
    }
}
