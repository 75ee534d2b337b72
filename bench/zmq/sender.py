#!/usr/bin/python3
"""Camera sender of the ZeroMQ baseline (the scheme camhub replaces).

One process per camera: take a frame, JPEG-encode it, base64-encode the
bytes and publish them on a ZeroMQ PUB socket.  Here the frames are JPEG
files already (DIR/*.jpg); they are read once at start and cycled, so the
per-frame work is the base64 encoding and the send, as in the scheme.

Wire format, one multipart message per frame:
    [camera id, capture time, sequence, base64 JPEG]
The capture-time part (time.time() at send, ASCII float seconds) and the
sequence part (ASCII int from 0) are ADDED FOR MEASUREMENT ONLY: they let
the receiver compute latency and count drops.  The scheme itself carries
only the camera id and the base64 JPEG.

Measurement-only control (not part of the scheme):
  * The socket is an XPUB, which sends exactly like PUB (same high-water
    mark, same drop-on-full behaviour) but also reports subscriptions to the
    application.  The sender waits until --subscribers subscriptions have
    arrived before sending the first frame (the PUB/SUB slow-joiner
    problem), so no frame is lost to a late connect and no fixed sleep is
    needed.
  * At the end it publishes an end marker [camera id, b"END", sent count],
    repeating it until the receiver unsubscribes (or --end-timeout passes),
    so the receiver learns the exact number of frames sent even if the
    marker was dropped at the high-water mark on first try.

Prints one JSON line on stdout at exit.
"""
import argparse
import base64
import glob
import json
import os
import signal
import sys
import time

import zmq


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", required=True, help="directory of JPEG files")
    p.add_argument("--id", required=True, help="camera id (first message part)")
    p.add_argument("--endpoint", required=True, help="bind endpoint, e.g. tcp://127.0.0.1:5555")
    p.add_argument("--fps", type=float, default=30.0, help="frames per second; 0 = as fast as possible")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--seconds", type=float, help="send for this long (after the subscriber joined)")
    g.add_argument("--count", type=int, help="send this many frames")
    p.add_argument("--subscribers", type=int, default=1,
                   help="wait for this many subscriptions before sending (default 1)")
    p.add_argument("--join-timeout", type=float, default=30.0,
                   help="give up if no subscriber within this many seconds")
    p.add_argument("--end-timeout", type=float, default=30.0,
                   help="stop repeating the end marker after this many seconds")
    p.add_argument("--sndhwm", type=int, default=None,
                   help="ZMQ_SNDHWM (default: leave ZeroMQ's default, 1000)")
    return p.parse_args()


def load_frames(d):
    paths = sorted(glob.glob(os.path.join(d, "*.jpg")) + glob.glob(os.path.join(d, "*.jpeg")))
    if not paths:
        sys.exit("sender: no *.jpg in %s" % d)
    frames = []
    for path in paths:
        with open(path, "rb") as f:
            frames.append(f.read())
    return frames


def main():
    a = parse_args()
    # SIGTERM from the driver: leave through the normal path (closes the socket).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    frames = load_frames(a.frames)
    cam = a.id.encode()

    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # pass on every subscription, so N receivers can be counted
    sock.setsockopt(zmq.LINGER, 0)
    if a.sndhwm is not None:
        sock.setsockopt(zmq.SNDHWM, a.sndhwm)
    sock.bind(a.endpoint)

    # Slow-joiner handshake: block until the subscription(s) arrived.
    subs = 0
    deadline = time.monotonic() + a.join_timeout
    while subs < a.subscribers:
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(int(left * 1000) + 1, zmq.POLLIN):
            if time.monotonic() >= deadline:
                print(json.dumps({"role": "sender", "id": a.id, "error": "no subscriber"}), flush=True)
                return 2
            continue
        msg = sock.recv()
        if msg[:1] == b"\x01":
            subs += 1

    sent = 0
    start = time.monotonic()
    period = 1.0 / a.fps if a.fps > 0 else 0.0
    end = start + a.seconds if a.seconds is not None else None
    nframes = len(frames)
    late = 0
    interrupted = False
    try:
        while True:
            if a.count is not None and sent >= a.count:
                break
            now = time.monotonic()
            if period:
                # absolute schedule: frame i is due at start + i*period (no drift)
                due = start + sent * period
                if end is not None and due >= end:
                    break
                if due > now:
                    time.sleep(due - now)
                elif now - due > period:
                    late += 1
            elif end is not None and now >= end:
                break
            b64 = base64.b64encode(frames[sent % nframes])
            # capture time and sequence: added for measurement only
            sock.send_multipart([cam, repr(time.time()).encode(), str(sent).encode(), b64], copy=False)
            sent += 1
    except (KeyboardInterrupt, SystemExit):
        interrupted = True
    elapsed = time.monotonic() - start

    # End marker, repeated until the receiver unsubscribes (measurement only).
    got_unsub = False
    end_deadline = time.monotonic() + (0 if interrupted else a.end_timeout)
    marker = [cam, b"END", str(sent).encode()]
    try:
        while time.monotonic() < end_deadline:
            sock.send_multipart(marker)
            if sock.poll(20, zmq.POLLIN):
                while sock.poll(0, zmq.POLLIN):
                    if sock.recv()[:1] == b"\x00":
                        got_unsub = True
                if got_unsub:
                    break
    except (KeyboardInterrupt, SystemExit):
        pass

    print(json.dumps({
        "role": "sender", "id": a.id, "sent": sent, "seconds": round(elapsed, 3),
        "fps": round(sent / elapsed, 1) if elapsed > 0 else None,
        "target_fps": a.fps, "late_frames": late, "frames_in_dir": nframes,
        "end_acknowledged": got_unsub,
        **({"error": "interrupted"} if interrupted else {}),
    }), flush=True)
    sock.close(0)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
