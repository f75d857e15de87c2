//! Render throughput on the real code path: `Renderer::apply` reading a gzipped config with
//! many `$(VAR)`s, gunzipping, expanding, checking, hashing and writing it atomically (output
//! on /dev/shm, like the memory-backed emptyDir of a Pod). Throughput is of rendered bytes.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use promreload::sidecar::render::Renderer;

/// A config of `mb` MB shaped like prometheus-operator's output, with `$(VAR)`s throughout.
fn config(mb: usize) -> String {
    let block = "- job_name: serviceMonitor/monitoring/node-exporter/0\n  honor_labels: false\n  relabel_configs:\n  - source_labels: [__meta_kubernetes_service_label_app]\n    regex: (node-exporter);true\n    action: keep\n  - target_label: replica\n    replacement: $(POD_NAME)\n  - source_labels: [__tmp_hash, __tmp_disable_sharding]\n    regex: $(SHARD);|.+;.+\n    action: keep\n";
    let mut s = String::from(
        "global:\n  external_labels:\n    prometheus_replica: $(POD_NAME)\nscrape_configs:\n",
    );
    while s.len() < mb << 20 {
        s.push_str(block);
    }
    s
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

fn env() -> HashMap<String, Vec<u8>> {
    HashMap::from([
        ("POD_NAME".to_string(), b"prometheus-k8s-0".to_vec()),
        ("SHARD".to_string(), b"0".to_vec()),
    ])
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for mb in [10usize, 100] {
        let dir = scratch();
        let input: PathBuf = dir.path().join("prometheus.yaml.gz");
        let output = dir.path().join("prometheus.env.yaml");
        std::fs::write(&input, gzip(config(mb).as_bytes())).unwrap();
        let bytes = Renderer::new(input.clone(), Some(output.clone()), 1 << 30, false, env())
            .apply()
            .unwrap()
            .bytes;
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(format!("{mb}MB gzip -> expand -> hash -> write"), |b| {
            b.iter(|| {
                let mut r =
                    Renderer::new(input.clone(), Some(output.clone()), 1 << 30, false, env());
                let rendered = r.apply().unwrap();
                assert!(rendered.written);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
