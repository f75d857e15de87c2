#!/usr/bin/env python3
"""Writes a one-layer OCI image archive from host files, without a registry or Docker, for
`ctr images import` (scripts/node.sh image). Used by the real-node tests for the images
around promreload's (pause, Prometheus, Alertmanager); promreload's own is the Dockerfile's,
built by scripts/dockerfile.sh.

    image.py --name docker.io/local/prometheus:test --out prometheus.tar \\
        --add /path/to/prometheus=/bin/prometheus --shell /path/to/busybox \\
        --entrypoint /bin/prometheus

A dynamically linked file gets the shared libraries `ldd` lists, at the same paths. With
--busybox, the host's /bin/busybox goes in, with /bin/sh; with --shell PATH, that busybox
goes in as /bin/sh and /bin/wget, as in the real images of Prometheus and Alertmanager, whose
exec probes need them. The name must be the full, normalized one (`docker.io/...`): that is
how the kubelet asks containerd for it. Layers are reproducible (mtime 0, sorted).
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile


def libraries(path):
    """The shared libraries of an ELF file (none for a static one)."""
    run = subprocess.run(["ldd", path], capture_output=True, text=True)
    found = []
    for line in run.stdout.splitlines():
        target = line.split("=>", 1)[-1].split("(")[0].strip()
        if target.startswith("/"):
            found.append(target)
    return found


def layer(files, links):
    """A tar of `files` (dest -> src) and `links` (dest -> target), with their directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = {"tmp", "etc", "proc", "sys", "dev"}
        for dest in list(files) + list(links):
            parts = dest.split("/")[:-1]
            dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for dest in sorted(files):
            with open(files[dest], "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(dest)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        for dest in sorted(links):
            info = tarfile.TarInfo(dest)
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, links[dest], 0o777
            tar.addfile(info)
        passwd = b"root:x:0:0:root:/:/bin/sh\nnonroot:x:65532:65532:nonroot:/:/bin/false\n"
        group = b"root:x:0:\nnonroot:x:65532:\n"
        for name, data in [("etc/passwd", passwd), ("etc/group", group)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name")
    ap.add_argument("--out")
    ap.add_argument("--shell", help="Debian's busybox (scripts/busybox.sh) as /bin/sh and "
                    "/bin/wget")
    ap.add_argument("--add", action="append", default=[], metavar="SRC=DEST")
    ap.add_argument("--link", action="append", default=[], metavar="DEST=TARGET")
    ap.add_argument("--busybox", action="store_true")
    ap.add_argument("--user")
    ap.add_argument("--entrypoint", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    if not (args.name and args.out):
        ap.error("--name and --out are required")

    files, links = {}, {}
    for spec in args.add:
        src, _, dest = spec.partition("=")
        files[dest.lstrip("/")] = src
        for lib in libraries(src):
            files.setdefault(lib.lstrip("/"), lib)
    if args.shell:
        # As in the Prometheus and Alertmanager images: a shell and wget for exec probes.
        files["bin/busybox"] = args.shell
        for lib in libraries(args.shell):
            files.setdefault(lib.lstrip("/"), lib)
        links["bin/sh"] = "busybox"
        links["bin/wget"] = "busybox"
    if args.busybox:
        files["bin/busybox"] = "/bin/busybox"
        for lib in libraries("/bin/busybox"):
            files.setdefault(lib.lstrip("/"), lib)
        links["bin/sh"] = "busybox"
    for spec in args.link:
        dest, _, target = spec.partition("=")
        links[dest.lstrip("/")] = target
    raw = layer(files, links)
    # Fast over small: the archive is imported once, on this machine.
    gz = gzip.compress(raw, compresslevel=1, mtime=0)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin:/"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [digest(raw)]},
    }
    if args.entrypoint:
        config["config"]["Entrypoint"] = args.entrypoint
    if args.user:
        config["config"]["User"] = args.user
    config_b = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config_b), "size": len(config_b)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest(gz), "size": len(gz)}],
    }
    manifest_b = json.dumps(manifest, sort_keys=True).encode()
    tag = args.name.rsplit(":", 1)[1] if ":" in args.name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(manifest_b), "size": len(manifest_b),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": args.name,
                            "org.opencontainers.image.ref.name": tag},
        }],
    }
    blobs = [config_b, manifest_b, gz]
    tmp = args.out + ".tmp"
    with tarfile.open(tmp, "w") as tar:
        def put(name, data):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        put("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        put("index.json", json.dumps(index, sort_keys=True).encode())
        for blob in blobs:
            put("blobs/sha256/" + digest(blob).split(":", 1)[1], blob)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
