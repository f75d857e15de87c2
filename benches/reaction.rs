//! Reaction time of the release `promreload` binary, from the kubelet-style `..data` rename to
//! the reload `POST` arriving at a local HTTP endpoint: `REACTION_SWAPS` isolated swaps (default
//! 200) with the default `RELOADER_DELAY_INTERVAL` (1s: swaps are spaced past it) and with 0.
//! Then, with a real Prometheus (Debian's), from the rename to Prometheus serving the new
//! config, polled as fast as its API answers. Run with `cargo bench --bench reaction`
//! (`PROMRELOAD_BIN` measures another build of the binary).

#[path = "../tests/it/support/kubelet.rs"]
#[allow(dead_code)]
mod kubelet;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubelet::KubeletVolume;

/// The binary measured: `PROMRELOAD_BIN` (another build, such as the static one the image
/// ships), else this build's.
fn binary() -> std::path::PathBuf {
    std::env::var_os("PROMRELOAD_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_promreload").into())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn config(i: usize) -> Vec<u8> {
    gzip(
        format!("global:\n  external_labels:\n    seq: \"{i}\"\n    replica: $(POD_NAME)\n")
            .as_bytes(),
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    volume: KubeletVolume,
    output: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let volume = KubeletVolume::new(&dir.path().join("config"));
    let output = dir.path().join("prometheus.env.yaml");
    Setup {
        volume,
        output,
        _dir: dir,
    }
}

fn daemon(s: &Setup, reload_url: &str, delay: &str) -> Child {
    Command::new(binary())
        .env_clear()
        .env("POD_NAME", "prometheus-k8s-0")
        .env(
            "RELOADER_CONFIG_FILE",
            s.volume.key_path("prometheus.yaml.gz"),
        )
        .env("RELOADER_CONFIG_ENVSUBST_FILE", &s.output)
        .env("RELOADER_RELOAD_URL", reload_url)
        .env("RELOADER_DELAY_INTERVAL", delay)
        .env("RELOADER_LISTEN_ADDRESS", "")
        .env("RELOADER_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start promreload")
}

/// Accepts one request, answers 200, returns when its head arrived.
fn accept_reload(listener: &TcpListener) -> Instant {
    let (stream, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let arrived = Instant::now();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
    }
    (&stream)
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    arrived
}

fn percentiles(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "reaction | {name} | n={} median={:.2}ms p99={:.2}ms max={:.2}ms",
        ms.len(),
        at(0.5),
        at(0.99),
        ms[ms.len() - 1]
    );
}

fn to_post(swaps: usize, delay: &str, spacing: Duration) {
    let mut s = setup();
    s.volume.update(&[("prometheus.yaml.gz", &config(0))]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/-/reload", listener.local_addr().unwrap());
    let mut child = daemon(&s, &url, delay);
    accept_reload(&listener);
    let mut samples = Vec::with_capacity(swaps);
    for i in 1..=swaps {
        std::thread::sleep(spacing);
        s.volume.update(&[("prometheus.yaml.gz", &config(i))]);
        let renamed = s.volume.last_swap().unwrap();
        let arrived = accept_reload(&listener);
        samples.push(arrived.duration_since(renamed).as_secs_f64() * 1000.0);
    }
    let _ = child.kill();
    let _ = child.wait();
    percentiles(
        &format!("rename -> reload POST, RELOADER_DELAY_INTERVAL={delay}"),
        samples,
    );
}

fn http_get(port: u16, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body
}

fn to_prometheus(swaps: usize) {
    let Ok(prometheus) = which("prometheus") else {
        println!("reaction | rename -> Prometheus serves it | skipped: no prometheus binary");
        return;
    };
    let mut s = setup();
    s.volume.update(&[("prometheus.yaml.gz", &config(0))]);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status = Command::new(binary())
        .env("POD_NAME", "prometheus-k8s-0")
        .env(
            "RELOADER_CONFIG_FILE",
            s.volume.key_path("prometheus.yaml.gz"),
        )
        .env("RELOADER_CONFIG_ENVSUBST_FILE", &s.output)
        .env("RELOADER_WATCH_INTERVAL", "0")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let storage = tempfile::tempdir().unwrap();
    let mut prom = Command::new(prometheus)
        .arg(format!("--config.file={}", s.output.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--storage.tsdb.path={}", storage.path().display()))
        .arg("--web.enable-lifecycle")
        .arg("--log.level=error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http_get(port, "/-/ready").contains("200 OK") {
        assert!(Instant::now() < deadline, "Prometheus not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut child = daemon(&s, &format!("http://127.0.0.1:{port}/-/reload"), "0");
    let mut samples = Vec::with_capacity(swaps);
    for i in 1..=swaps {
        std::thread::sleep(Duration::from_millis(150));
        s.volume.update(&[("prometheus.yaml.gz", &config(i))]);
        let renamed = s.volume.last_swap().unwrap();
        let marker = format!("seq: \\\"{i}\\\"");
        loop {
            if http_get(port, "/api/v1/status/config").contains(&marker) {
                break;
            }
            assert!(
                renamed.elapsed() < Duration::from_secs(10),
                "config {i} never served"
            );
        }
        samples.push(renamed.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = child.kill();
    let _ = prom.kill();
    let _ = child.wait();
    let _ = prom.wait();
    percentiles(
        "rename -> Prometheus serves the new config (Debian 2.42)",
        samples,
    );
}

fn which(cmd: &str) -> Result<std::path::PathBuf, ()> {
    std::env::split_paths(&std::env::var_os("PATH").ok_or(())?)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
        .ok_or(())
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test` of the benches passes nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let swaps: usize = std::env::var("REACTION_SWAPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    to_post(swaps, "0", Duration::from_millis(30));
    to_post(swaps, "1s", Duration::from_millis(1050));
    to_prometheus(50.min(swaps));
}
