#!/usr/bin/env python3
"""promreload beside the Go reloaders on identical work (issue: prove the comparison).

    scripts/compare.sh            # builds the anchors (scripts/anchors.sh) and runs this

`compare.py PROMRELOAD ANCHORS swaps` runs each reloader (with its defaults, and the Go
reloaders also with the variant that makes them re-read the file every second) on a
kubelet-style Secret volume: the AtomicWriter's `..data` swap, the old timestamped directory
deleted. A recording endpoint counts reload requests (POST, or VictoriaMetrics' default GET).
SWAPS swaps of a ~1 MB gzipped config come GAP seconds apart; then random bytes and an empty
file, each after a good config. Idle RSS and CPU are read from /proc before the first swap.

`compare.py PROMRELOAD ANCHORS output` measures promreload alone: swap -> reload with its output
file on tmpfs or on disk, with the machine quiet or while another process writes to the disk,
and once under strace to show how long its fsync and rename calls take.

`compare.py PROMRELOAD ANCHORS sizes` starts each reloader (defaults) with a 1, 10 and 100 MB
config already in place and measures the time from start to the complete output file and the
peak RSS (VmHWM) once it is written.

Each mode prints one Markdown table. Output files are on /dev/shm (memory-backed, as the
Pods' emptyDir) unless the mode says otherwise.
"""
import gzip, http.server, os, random, shutil, signal, socket, subprocess, sys, tempfile
import threading, time

SWAPS = int(os.environ.get("SWAPS", "20"))
GAP = float(os.environ.get("GAP", "5"))
IDLE = float(os.environ.get("IDLE", "30"))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records reload requests: any method on /-/reload."""
    reloads = []
    def handle_one(self):
        if self.path.startswith("/-/reload"):
            Recorder.reloads.append(time.monotonic())
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    do_POST = do_GET = do_PUT = handle_one
    def log_message(self, *a):
        pass


def body(i, size):
    block = f"- job_name: job-{i}\n  static_configs: [{{targets: ['a:9100']}}]\n"
    return ("global:\n  scrape_interval: 30s\nscrape_configs:\n" + block * (size // len(block))).encode()


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


def percentile(ordered, q):
    """The q-quantile of sorted milliseconds, as the tables print it ("-" when empty)."""
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.1f}" if ordered else "-"


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class Run:
    """One reloader process on its own volume, output and recording endpoint."""
    def __init__(self, exe, args, first, out_dir=None, wrap=()):
        self.work = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        vol = os.path.join(self.work, "vol"); os.mkdir(vol)
        self.out = os.path.join(out_dir or self.work, "out.yaml")
        Recorder.reloads = []
        port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Recorder)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.volume = Volume(vol)
        self.volume.update(first)
        cmd = [exe] + [a.format(key=os.path.join(vol, "prometheus.yaml.gz"), out=self.out,
                                url=f"http://127.0.0.1:{port}/-/reload",
                                listen=f"127.0.0.1:{free_port()}") for a in args]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(list(wrap) + cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill(); self.proc.wait()
        self.server.shutdown(); self.server.server_close()
        shutil.rmtree(self.work)

    def swap(self, data, wait):
        """Swaps `data` in; returns (ms to the first reload request or None, output after)."""
        before = len(Recorder.reloads)
        t = time.monotonic()
        self.volume.update(data)
        time.sleep(wait)
        after = [r for r in Recorder.reloads[before:] if r >= t]
        return ((after[0] - t) * 1000 if after else None), read(self.out)


def bad_input(run, data, good):
    run.swap(good, GAP)
    kept = read(run.out)
    before = len(Recorder.reloads)
    _, now = run.swap(data, GAP)
    reloaded = len(Recorder.reloads) > before
    if now == kept:
        return "kept, no reload" if not reloaded else "kept, reloaded"
    return "**written, reloaded**" if reloaded else "**written**, no reload"


def swaps(name, exe, args):
    good = lambda i: gzip.compress(body(i, 1_000_000), mtime=0)
    run = Run(exe, args, good(0))
    try:
        time.sleep(5)
        t0, c0 = time.monotonic(), cpu_ticks(run.proc.pid)
        time.sleep(IDLE)
        cpu = (cpu_ticks(run.proc.pid) - c0) / TICK * 1000 / ((time.monotonic() - t0) / 60)
        idle = status(run.proc.pid, "VmRSS")
        lat = sorted(ms for ms, _ in (run.swap(good(i), GAP) for i in range(1, SWAPS + 1)) if ms is not None)
        garbage = bad_input(run, os.urandom(4096), good(SWAPS + 1))
        empty = bad_input(run, b"", good(SWAPS + 2))
        alive = "" if run.proc.poll() is None else f" (exited {run.proc.returncode})"
    finally:
        run.close()
    p = lambda q: percentile(lat, q)
    size = os.path.getsize(exe) / 1e6
    print(f"| {name} | {len(lat)} of {SWAPS} | {p(0.5)} / {p(0.99)} ms | {idle / 1024:.1f} MiB "
          f"| {cpu:.1f} ms/min | {garbage} | {empty}{alive} | {size:.1f} MB |", flush=True)


def sizes(name, exe, args, mb):
    data = body(0, mb * 1_000_000)
    run = Run(exe, args, gzip.compress(data, compresslevel=6, mtime=0))
    try:
        deadline = run.started + 120
        while time.monotonic() < deadline:
            out = read(run.out)
            if out is not None and len(out) == len(data):
                took = f"{(time.monotonic() - run.started) * 1000:.0f} ms"
                break
            if run.proc.poll() is not None:
                took = f"exited {run.proc.returncode}"
                break
            time.sleep(0.002)
        else:
            took = "not written in 120 s"
        time.sleep(1)
        peak = f"{status(run.proc.pid, 'VmHWM') / 1024:.1f} MiB" if run.proc.poll() is None else "-"
    finally:
        run.close()
    return took, peak


def output(label, exe, out_dir, load, wrap=()):
    """promreload's swap -> reload with its output in `out_dir`, with or without disk load."""
    good = lambda i: gzip.compress(body(i, 1_000_000), mtime=0)
    loader = None
    if load:
        # Another tenant of the disk: 256 MB written and flushed, over and over.
        target = os.path.join(out_dir, "load")
        loader = subprocess.Popen(["sh", "-c", f"while :; do dd if=/dev/zero of={target} bs=1M "
                                   "count=256 conv=fdatasync status=none; done"], start_new_session=True)
    run = Run(exe, PROMRELOAD, good(0), out_dir=out_dir, wrap=wrap)
    try:
        time.sleep(3)
        lat = sorted(ms for ms, _ in (run.swap(good(i), OUTPUT_GAP) for i in range(1, OUTPUT_SWAPS + 1))
                     if ms is not None)
    finally:
        run.close()
        if loader:
            os.killpg(loader.pid, signal.SIGTERM); loader.wait()  # the loop and its dd
            try:
                os.remove(os.path.join(out_dir, "load"))
            except FileNotFoundError:
                pass
    print(f"| {label} | {len(lat)} of {OUTPUT_SWAPS} | {percentile(lat, 0.5)} / {percentile(lat, 0.99)} "
          f"/ {percentile(lat, 1.0)} ms |", flush=True)


def traced(exe, disk, shm):
    """The disk-under-load row again under strace: the time spent in each call that touches
    the output, per swap (the output file's writes and fsync, the rename, the directory's
    fsync)."""
    log = os.path.join(shm, "strace.log")
    output("disk under that load, traced (below: where the time goes)", exe, disk, True,
           wrap=["strace", "-f", "-T", "-y", "-qq", "-o", log,
                 "-e", "trace=openat,write,fsync,rename,renameat,renameat2"])
    total = {}
    for line in open(log):
        if "<" not in line or " " not in line or "out.yaml" not in line and "fsync" not in line:
            continue
        call = line.split(None, 1)[1]
        name = call.split("(", 1)[0]
        if name == "fsync":
            name = "fsync (file)" if "out.yaml" in call else "fsync (directory)"
        elif "out.yaml" not in call:
            continue
        total.setdefault(name, []).append(float(line.rsplit("<", 1)[1].rstrip(">\n")) * 1000)
    swaps = OUTPUT_SWAPS + 1
    print()
    for name, ts in sorted(total.items(), key=lambda kv: -sum(kv[1])):
        ts.sort()
        print(f"- {name}: {len(ts)} calls, {sum(ts) / swaps:.1f} ms per write of the output on average, "
              f"longest call {ts[-1]:.1f} ms")


OUTPUT_SWAPS = int(os.environ.get("OUTPUT_SWAPS", "40"))
OUTPUT_GAP = float(os.environ.get("OUTPUT_GAP", "1.5"))

PROMRELOAD = ["--config-file={key}", "--config-envsubst-file={out}", "--reload-url={url}",
              "--listen-address={listen}"]
PO = PROMRELOAD
VM = ["-config-file={key}", "-config-envsubst-file={out}", "-reload-url={url}", "-http.listenAddr={listen}"]


def main():
    promreload, anchors, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    po = os.path.join(anchors, "prometheus-config-reloader")
    vm = os.path.join(anchors, "vm-config-reloader")
    if mode == "swaps":
        print(f"| reloader | swaps seen ({GAP:g} s apart) | swap -> reload p50 / p99 | idle RSS | idle CPU "
              "| random bytes | empty file | binary |")
        print("|---|---|---|---|---|---|---|---|")
        swaps("promreload (defaults)", promreload, PROMRELOAD)
        swaps("prometheus-config-reloader v0.94.1 (defaults)", po, PO)
        swaps("prometheus-config-reloader, `--watch-interval=1s`", po, PO + ["--watch-interval=1s"])
        swaps("VictoriaMetrics config-reloader v0.74.1 (defaults)", vm, VM)
        swaps("VictoriaMetrics config-reloader, `-resync-interval=1s`", vm, VM + ["-resync-interval=1s"])
    elif mode == "sizes":
        print("| reloader (defaults) | 1 MB: time to output / peak RSS | 10 MB | 100 MB |")
        print("|---|---|---|---|")
        rows = [("promreload (`--max-config-bytes=128MiB` for 100 MB)", promreload,
                 PROMRELOAD + ["--max-config-bytes=128MiB"]),
                ("prometheus-config-reloader v0.94.1", po, PO),
                ("VictoriaMetrics config-reloader v0.74.1", vm, VM)]
        for name, exe, args in rows:
            cells = [" / ".join(sizes(name, exe, args, mb)) for mb in (1, 10, 100)]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    elif mode == "output":
        disk = tempfile.mkdtemp(dir=os.environ.get("DISK_DIR", "/var/tmp"))
        shm = tempfile.mkdtemp(dir="/dev/shm")
        try:
            print(f"| promreload's output on | swaps seen | swap -> reload p50 / p99 / max |")
            print("|---|---|---|")
            if not os.environ.get("ONLY_TRACED"):
                output("tmpfs (the Pods' emptyDir `medium: Memory`), quiet", promreload, shm, False)
                output("disk, quiet", promreload, disk, False)
                output("tmpfs, while another process writes 256 MB files to disk", promreload, shm, True)
                output("disk, while another process writes 256 MB files to the same disk", promreload, disk, True)
            if shutil.which("strace"):
                traced(promreload, disk, shm)
        finally:
            shutil.rmtree(disk, ignore_errors=True); shutil.rmtree(shm, ignore_errors=True)
    else:
        sys.exit(f"unknown mode {mode!r}: swaps, sizes or output")


if __name__ == "__main__":
    main()
