#!/usr/bin/python3
"""Driver for the ZeroMQ baseline of the camhub benchmark.

    run.py --frames DIR --scenario relay|latency|overload [--cams N] [--fps F]
           [--seconds S] --json OUT

relay     1 sender at full speed -> 1 receiver --no-decode, then 8 senders
          at full speed -> 1 receiver --no-decode (frames/s, MB/s).
          Default 5 s per part.
latency   N cameras x F fps (default 8 x 30) -> 1 receiver with decode
          (latency p50/p99/max).  Default 10 s.
overload  N cameras x F fps (default 8 x 60, above what one receiver can
          decode; --fps 0 = unpaced) -> 1 receiver with decode for S s
          (default 10): receiver frames/s, latency p50/p99/max, latency at
          the start vs the end (backlog growth), backlog in frames at the end
          and frames dropped at the high-water mark.

Senders are started first on free loopback ports, then the receiver; each
sender waits for the receiver's subscription before sending (no sleeps).
One JSON line per scenario is appended to OUT; a short summary is printed.
All child processes are killed when the driver exits or is interrupted.
"""
import argparse
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"  # Debian's interpreter: python3-zmq, python3-opencv, python3-numpy

CHILDREN = []


def _pdeathsig():
    # children die with the driver even if it is SIGKILLed
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(args):
    p = subprocess.Popen([PY] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=HERE, preexec_fn=_pdeathsig)
    CHILDREN.append(p)
    return p


def kill_all():
    for p in CHILDREN:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    for p in CHILDREN:
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    CHILDREN.clear()


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def run_once(frames, cams, fps, seconds, decode, timeout_margin=90.0):
    """cams senders (fps each, 0 = unpaced) -> one receiver.  Returns a dict."""
    ports = free_ports(cams)
    eps = ["tcp://127.0.0.1:%d" % p for p in ports]
    senders = [spawn(["sender.py", "--frames", frames, "--id", "cam%d" % i, "--endpoint", ep,
                      "--fps", str(fps), "--seconds", str(seconds)])
               for i, ep in enumerate(eps)]
    rargs = ["receiver.py", "--connect", ",".join(eps), "--seconds", str(seconds)]
    if not decode:
        rargs.append("--no-decode")
    receiver = spawn(rargs)
    deadline = time.monotonic() + seconds + timeout_margin
    results, errors = [], []
    for p in [receiver] + senders:
        try:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            errors.append("timeout: %s" % " ".join(p.args[1:3]))
        j = last_json(out.decode(errors="replace"))
        if j is None:
            errors.append("no JSON from %s (rc %s): %s" % (p.args[1], p.returncode,
                                                        err.decode(errors="replace")[-500:]))
        results.append(j)
    kill_all()
    rec, snd = results[0], [s for s in results[1:] if s]
    sent = sum(s.get("sent", 0) for s in snd)
    run = {"cams": cams, "fps_per_cam": fps, "seconds": seconds, "decode": decode,
           "sent_total": sent,
           "sender_fps_total": round(sum(s.get("fps") or 0 for s in snd), 1),
           "receiver": rec, "senders": snd}
    if rec and rec.get("error"):
        errors.append("receiver: " + rec["error"])
    for s in snd:
        if s.get("error"):
            errors.append("sender %s: %s" % (s.get("id"), s["error"]))
    if errors:
        run["errors"] = errors
    return run


def brief(run):
    r = run["receiver"] or {}
    lat = r.get("latency_ms") or {}
    return ("%d cam x %s fps%s: sent %d, received %s in %.1f s = %s fr/s, %s MB/s; "
            "latency p50/p99/max %s/%s/%s ms; drops %s" % (
                run["cams"], run["fps_per_cam"] or "max", "" if run["decode"] else " (no decode)",
                run["sent_total"], r.get("frames"), r.get("seconds") or 0, r.get("fps"),
                r.get("jpeg_MBps"), lat.get("p50"), lat.get("p99"), lat.get("max"), r.get("seq_gaps")))


def machine():
    info = {"host": socket.gethostname(), "cpus": os.cpu_count()}
    try:
        info["loadavg"] = list(os.getloadavg())
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import zmq
        import cv2
        info["pyzmq"], info["libzmq"], info["opencv"] = zmq.__version__, zmq.zmq_version(), cv2.__version__
    except ImportError:
        pass
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", required=True, help="directory of JPEG files (DIR/000.jpg ...)")
    ap.add_argument("--scenario", required=True, choices=["relay", "latency", "overload"])
    ap.add_argument("--cams", type=int, default=None)
    ap.add_argument("--fps", type=float, default=None, help="per camera; 0 = unpaced")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--json", required=True, help="append one JSON line per scenario here")
    ap.add_argument("--note", default=None, help="free text stored with the result")
    a = ap.parse_args()

    def on_term(*_):
        raise SystemExit(143)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    frames = os.path.abspath(a.frames)
    doc = {"bench": "zmq-baseline", "scenario": a.scenario,
           "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "frames_dir": frames, "machine": machine()}
    if a.note:
        doc["note"] = a.note
    lines = []
    try:
        if a.scenario == "relay":
            s = a.seconds or 5.0
            many = a.cams or 8
            runs = [run_once(frames, 1, a.fps or 0, s, decode=False),
                    run_once(frames, many, a.fps or 0, s, decode=False)]
            doc["runs"] = runs
            for r in runs:
                lines.append("relay " + brief(r))
        elif a.scenario == "latency":
            cams = a.cams or 8
            fps = 30.0 if a.fps is None else a.fps
            r = run_once(frames, cams, fps, a.seconds or 10.0, decode=True)
            doc["runs"] = [r]
            lines.append("latency " + brief(r))
        else:
            cams = a.cams or 8
            fps = 60.0 if a.fps is None else a.fps
            r = run_once(frames, cams, fps, a.seconds or 10.0, decode=True)
            doc["runs"] = [r]
            rec = r["receiver"] or {}
            first, last = rec.get("latency_first_1s_ms") or {}, rec.get("latency_last_1s_ms") or {}
            doc["overload"] = {
                "offered_fps": r["sender_fps_total"],
                "receiver_fps": rec.get("fps"),
                "latency_start_ms": first.get("max"),
                "latency_end_ms": last.get("max"),
                "backlog_growth_s": (round((last["max"] - first["max"]) / 1000.0, 3)
                                     if last.get("max") is not None and first.get("max") is not None else None),
                "backlog_frames_at_end": rec.get("backlog_frames_at_window_end"),
                "dropped_frames": rec.get("seq_gaps"),
                "sent_total": r["sent_total"],
            }
            o = doc["overload"]
            lines.append("overload " + brief(r))
            lines.append("overload offered %s fr/s, receiver %s fr/s; latency start %s ms -> end %s ms "
                         "(+%s s); backlog at end %s frames; dropped at HWM %s" % (
                             o["offered_fps"], o["receiver_fps"], o["latency_start_ms"],
                             o["latency_end_ms"], o["backlog_growth_s"], o["backlog_frames_at_end"],
                             o["dropped_frames"]))
    except KeyboardInterrupt:
        kill_all()
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all()
    errs = [e for r in doc.get("runs", []) for e in r.get("errors", [])]
    if errs:
        doc["errors"] = errs
    with open(a.json, "a") as f:
        f.write(json.dumps(doc) + "\n")
    for l in lines:
        print(l)
    for e in errs:
        print("ERROR: " + e, file=sys.stderr)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
