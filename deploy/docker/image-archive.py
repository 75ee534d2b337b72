#!/usr/bin/env python3
"""Writes an image for another architecture as a `docker save` archive, for
`docker load`: what scripts/images.sh makes the arm64 images with, on an
amd64 machine without buildx or a registry (`docker import` cannot set an
image's architecture on a Docker engine that runs only its own).

  image-archive.py --arch arm64 --tag camhub-agent:latest-arm64 \\
      --config-from camhub-agent:latest --layer DIR [--layer DIR ...] >agent.tar

Each --layer DIR becomes one layer holding DIR's tree, owned by root except
var/lib/camhub (uid 10001, gid 44, the images' user), with timestamps of 0:
the same files give the same layer, which `docker load` and a registry then
store once for every image that has it (the shared libraries of the agent,
viewer and detector). The image's settings (user, environment, entry point,
health check, ports) are those of --config-from, an image of this machine's
architecture built from deploy/docker/Dockerfile, so both architectures
behave alike.
"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

OWNED = ("var/lib/camhub",)  # the user's: uid 10001, group video (44)


def layer_tar(root):
    """Returns the bytes of a layer tar of directory root."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                ti = tar.gettarinfo(path, arcname=rel)
                ti.mtime = 0
                ti.uname = ti.gname = ""
                if any(rel == o or rel.startswith(o + "/") for o in OWNED):
                    ti.uid, ti.gid = 10001, 44
                else:
                    ti.uid = ti.gid = 0
                if ti.isreg():
                    with open(path, "rb") as f:
                        tar.addfile(ti, f)
                else:
                    tar.addfile(ti)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", required=True, help="the image's architecture (arm64, arm)")
    ap.add_argument("--variant", default="", help="the architecture's variant (v7 for arm)")
    ap.add_argument("--tag", required=True, help="repository:tag to load it as")
    ap.add_argument("--config-from", required=True, help="a local image whose settings to copy")
    ap.add_argument("--layer", action="append", required=True, help="a directory, one layer (in order)")
    a = ap.parse_args()

    cfg = json.loads(subprocess.check_output(
        ["docker", "image", "inspect", "-f", "{{json .Config}}", a.config_from]))
    cfg.pop("Image", None)
    cfg["Hostname"] = cfg["Domainname"] = ""

    layers = []
    for d in a.layer:
        data = layer_tar(d)
        layers.append((hashlib.sha256(data).hexdigest(), data, d))
    config = {
        "architecture": a.arch,
        "os": "linux",
        "config": cfg,
        "created": "1970-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + h for h, _, _ in layers]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "image-archive.py --layer " + os.path.basename(d.rstrip("/"))}
                    for _, _, d in layers],
    }
    if a.variant:
        config["variant"] = a.variant
    cj = json.dumps(config, sort_keys=True).encode()
    cid = hashlib.sha256(cj).hexdigest()
    manifest = [{"Config": cid + ".json", "RepoTags": [a.tag],
                 "Layers": [h + "/layer.tar" for h, _, _ in layers]}]

    out = sys.stdout.buffer
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        add(cid + ".json", cj)
        for h, data, _ in layers:
            add(h + "/layer.tar", data)
        add("manifest.json", json.dumps(manifest).encode())


if __name__ == "__main__":
    main()
