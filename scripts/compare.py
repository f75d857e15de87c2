#!/usr/bin/env python3
"""promreload beside the Go reloaders on identical work (issue: prove the comparison).

For each reloader, run with its defaults: a kubelet-style Secret volume (the AtomicWriter's
`..data` swap, the old timestamped directory deleted), a recording reload endpoint, SWAPS
swaps of a ~1 MB gzipped config GAP seconds apart, then one swap of random bytes. Prints one
Markdown table: swaps seen (a reload POST before the next swap), swap -> reload p50/p99, idle
RSS, what the random bytes led to, and the binary's size.

    scripts/compare.sh            # builds the anchors (scripts/anchors.sh) and runs this
"""
import gzip, http.server, os, random, shutil, socket, statistics, subprocess, sys, tempfile
import threading, time

SWAPS = int(os.environ.get("SWAPS", "40"))
GAP = float(os.environ.get("GAP", "3"))


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


class Recorder(http.server.BaseHTTPRequestHandler):
    posts = []
    def do_POST(self):
        Recorder.posts.append(time.monotonic())
        self.send_response(200); self.end_headers()
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def log_message(self, *a):
        pass


def config(i):
    block = f"- job_name: job-{i}\n  static_configs: [{{targets: ['a:9100']}}]\n"
    body = "global:\n  scrape_interval: 30s\nscrape_configs:\n" + block * (1_000_000 // len(block))
    return gzip.compress(body.encode(), mtime=0)


class Volume:
    """A Secret volume updated the way the kubelet's AtomicWriter does it."""
    def __init__(self, root):
        self.root, self.n = root, 0
    def update(self, data):
        self.n += 1
        new = os.path.join(self.root, f"..2026_11_26_00_00_{self.n:02d}.{random.randrange(10**9)}")
        os.mkdir(new)
        with open(os.path.join(new, "prometheus.yaml.gz"), "wb") as f:
            f.write(data)
        data_link = os.path.join(self.root, "..data")
        old = os.path.realpath(data_link) if os.path.islink(data_link) else None
        tmp = os.path.join(self.root, "..data_tmp")
        os.symlink(os.path.basename(new), tmp)
        os.rename(tmp, data_link)
        key = os.path.join(self.root, "prometheus.yaml.gz")
        if not os.path.islink(key):
            os.symlink("..data/prometheus.yaml.gz", key)
        if old:
            shutil.rmtree(old)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))


def run(name, exe, args):
    # Memory-backed, as the Pods' output emptyDir (the same for every reloader).
    work = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    vol = os.path.join(work, "vol"); os.mkdir(vol)
    out = os.path.join(work, "out.yaml")
    Recorder.posts = []
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    volume = Volume(vol)
    volume.update(config(0))
    cmd = [exe] + [a.format(key=os.path.join(vol, "prometheus.yaml.gz"), out=out,
                            url=f"http://127.0.0.1:{port}/-/reload", listen=f"127.0.0.1:{free_port()}")
                   for a in args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(5)
    idle = rss_kib(proc.pid)
    latencies, seen = [], 0
    for i in range(1, SWAPS + 1):
        before = len(Recorder.posts)
        t = time.monotonic()
        volume.update(config(i))
        time.sleep(GAP)
        after = [p for p in Recorder.posts[before:] if p >= t]
        if after:
            seen += 1
            latencies.append((after[0] - t) * 1000)
    # Random bytes, as a broken writer would leave them.
    before, good = len(Recorder.posts), open(out, "rb").read() if os.path.exists(out) else b""
    volume.update(os.urandom(4096))
    time.sleep(GAP + 2)
    now = open(out, "rb").read() if os.path.exists(out) else b""
    reloaded = len(Recorder.posts) > before
    if now == good:
        bad = "output kept, no reload" if not reloaded else "output kept, reloaded"
    else:
        bad = "written and reloaded" if reloaded else "written, not reloaded"
    proc.terminate(); proc.wait(10); server.shutdown()
    shutil.rmtree(work)
    lat = sorted(latencies)
    p = lambda q: f"{lat[min(len(lat) - 1, int(q * len(lat)))]:.1f} ms" if lat else "-"
    size = os.path.getsize(exe) / 1e6
    print(f"| {name} | {seen} of {SWAPS} | {p(0.5)} / {p(0.99)} | {idle / 1024:.1f} MiB | {bad} | {size:.1f} MB |", flush=True)


def main():
    promreload, anchors = sys.argv[1], sys.argv[2]
    print(f"| reloader (defaults) | swaps seen ({GAP:g} s apart) | swap -> reload p50 / p99 | idle RSS | random bytes | binary |")
    print("|---|---|---|---|---|---|")
    run("promreload", promreload,
        ["--config-file={key}", "--config-envsubst-file={out}", "--reload-url={url}", "--listen-address={listen}"])
    run("prometheus-config-reloader v0.94.1", os.path.join(anchors, "prometheus-config-reloader"),
        ["--config-file={key}", "--config-envsubst-file={out}", "--reload-url={url}", "--listen-address={listen}"])
    run("VictoriaMetrics config-reloader v0.74.1", os.path.join(anchors, "vm-config-reloader"),
        ["-config-file={key}", "-config-envsubst-file={out}", "-reload-url={url}", "-http.listenAddr={listen}"])


if __name__ == "__main__":
    main()
