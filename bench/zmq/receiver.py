#!/usr/bin/python3
"""Receiver (viewer side) of the ZeroMQ baseline (the scheme camhub replaces).

One SUB socket subscribed to everything and connected to every camera's
endpoint.  Messages are processed strictly in arrival order: base64-decode,
cv2.imdecode the JPEG (what a viewer that shows the frame does; skipped with
--no-decode), then the frame "would be shown".  Nothing is skipped, so when
this loop is slower than the cameras a backlog builds in ZeroMQ's queues
(high-water mark 1000 per socket by default) and latency grows.

Measurement (not part of the scheme):
  * latency = time.time() after decoding - capture time carried in the message
  * sequence gaps per camera = frames dropped (ZeroMQ drops on a full queue)
  * the measurement window starts at the first frame and ends after
    --seconds, after --count frames, or when every camera sent its end
    marker, whichever comes first.  Afterwards the receiver drains what is
    still queued (no decoding) until every camera's end marker arrived; the
    number drained is the backlog left at the end of the window.

Prints one JSON line on stdout.
"""
import argparse
import base64
import json
import signal
import sys
import time

import zmq

try:
    import cv2
    import numpy as np
except ImportError:  # only needed with decoding
    cv2 = None
    np = None


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connect", required=True, help="comma-separated endpoints, one per camera")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--seconds", type=float, help="window length, from the first frame")
    g.add_argument("--count", type=int, help="window = this many frames")
    p.add_argument("--no-decode", action="store_true", help="skip cv2.imdecode (pure relay)")
    p.add_argument("--bin", type=float, default=0.5, help="latency time-series bin, seconds")
    p.add_argument("--first-timeout", type=float, default=30.0, help="give up if no frame within this")
    p.add_argument("--drain-timeout", type=float, default=60.0,
                   help="max time to wait for the end markers after the window")
    p.add_argument("--rcvhwm", type=int, default=None,
                   help="ZMQ_RCVHWM (default: leave ZeroMQ's default, 1000)")
    return p.parse_args()


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


def ms(x):
    return None if x is None else round(x * 1000.0, 2)


def main():
    a = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    decode = not a.no_decode
    if decode and cv2 is None:
        sys.exit("receiver: cv2/numpy not importable (use /usr/bin/python3)")
    endpoints = [e for e in a.connect.split(",") if e]
    ncams = len(endpoints)

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    if a.rcvhwm is not None:
        sock.setsockopt(zmq.RCVHWM, a.rcvhwm)
    for e in endpoints:
        sock.connect(e)
    sock.setsockopt(zmq.SUBSCRIBE, b"")

    last_seq = {}      # camera -> last sequence seen
    gaps = 0           # frames missing between consecutive sequences (window + drain)
    gap_events = 0
    ended = {}         # camera -> sent count from its end marker
    per_cam = {}       # camera -> frames in window
    lat = []           # (t_rel, latency) per frame in window
    jpeg_bytes = 0
    frames = 0
    decode_errors = 0
    t_first = None
    t_last = None
    error = None

    def track_seq(cam, seq):
        nonlocal gaps, gap_events
        prev = last_seq.get(cam)
        if prev is not None and seq > prev + 1:
            gaps += seq - prev - 1
            gap_events += 1
        elif prev is None and seq > 0:
            gaps += seq  # frames before the first one we saw
            gap_events += 1
        last_seq[cam] = seq

    def on_end(parts):
        ended[parts[0]] = int(parts[2])

    # ---- measurement window ----
    try:
        if not sock.poll(int(a.first_timeout * 1000), zmq.POLLIN):
            error = "no frame within %.0f s" % a.first_timeout
        while error is None:
            if t_first is not None:
                if a.seconds is not None and time.monotonic() - t_first >= a.seconds:
                    break
                if a.count is not None and frames >= a.count:
                    break
            if len(ended) == ncams:
                break
            if t_first is not None and a.seconds is not None:
                left = a.seconds - (time.monotonic() - t_first)
                if not sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
                    continue
            parts = sock.recv_multipart(copy=True)
            if len(parts) == 3 and parts[1] == b"END":
                on_end(parts)
                continue
            cam, cap, seq, b64 = parts
            if t_first is None:
                t_first = time.monotonic()
            jpg = base64.b64decode(b64)
            if decode:
                img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
                if img is None:
                    decode_errors += 1
            now = time.time()
            t_last = time.monotonic()
            # the frame would be shown here
            lat.append((t_last - t_first, now - float(cap)))
            track_seq(cam, int(seq))
            per_cam[cam] = per_cam.get(cam, 0) + 1
            jpeg_bytes += len(jpg)
            frames += 1
    except (KeyboardInterrupt, SystemExit):
        error = error or "interrupted"
    window = (t_last - t_first) if (t_first is not None and t_last is not None) else 0.0
    if a.seconds is not None and t_first is not None and len(ended) < ncams:
        window = max(window, min(a.seconds, time.monotonic() - t_first))

    # ---- drain: count what is still queued until every end marker arrived ----
    drained = 0
    drain_lat_last = None
    t_drain = time.monotonic()
    try:
        while error is None and len(ended) < ncams:
            left = a.drain_timeout - (time.monotonic() - t_drain)
            if left <= 0 or not sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                if time.monotonic() - t_drain >= a.drain_timeout:
                    error = "end markers missing from %d camera(s)" % (ncams - len(ended))
                continue
            parts = sock.recv_multipart()
            if len(parts) == 3 and parts[1] == b"END":
                on_end(parts)
                continue
            drained += 1
            drain_lat_last = time.time() - float(parts[1])
            track_seq(parts[0], int(parts[2]))
    except (KeyboardInterrupt, SystemExit):
        error = error or "interrupted"
    drain_seconds = time.monotonic() - t_drain
    # tell the senders we are done (they stop repeating the end marker)
    try:
        sock.setsockopt(zmq.UNSUBSCRIBE, b"")
    except zmq.ZMQError:
        pass

    # frames dropped after the last frame we saw, up to each camera's end
    tail_drops = 0
    for cam, sent in ended.items():
        tail_drops += max(0, sent - 1 - last_seq.get(cam, -1))
    sent_total = sum(ended.values()) if len(ended) == ncams else None

    lats = sorted(l for _, l in lat)
    series = []
    if lat:
        nb = int(lat[-1][0] // a.bin) + 1
        cnt = [0] * nb
        mx = [0.0] * nb
        for t, l in lat:
            b = int(t // a.bin)
            cnt[b] += 1
            if l > mx[b]:
                mx[b] = l
        series = [{"t": round(i * a.bin, 2), "frames": cnt[i], "max_ms": ms(mx[i])}
                  for i in range(nb) if cnt[i]]
    head = [l for t, l in lat if t < 1.0]
    tail = [l for t, l in lat if t >= window - 1.0]

    out = {
        "role": "receiver",
        "cameras": ncams,
        "decode": decode,
        "frames": frames,
        "seconds": round(window, 3),
        "fps": round(frames / window, 1) if window > 0 else None,
        "jpeg_MBps": round(jpeg_bytes / window / 1e6, 2) if window > 0 else None,
        "mean_jpeg_bytes": int(jpeg_bytes / frames) if frames else None,
        "latency_ms": {"p50": ms(pct(lats, 0.50)), "p99": ms(pct(lats, 0.99)), "max": ms(lats[-1] if lats else None)},
        "latency_first_1s_ms": {"p50": ms(pct(sorted(head), 0.5)), "max": ms(max(head) if head else None)},
        "latency_last_1s_ms": {"p50": ms(pct(sorted(tail), 0.5)), "max": ms(max(tail) if tail else None)},
        "latency_last_frame_ms": ms(lat[-1][1]) if lat else None,
        "series": series,
        "series_bin_s": a.bin,
        "per_camera_frames": {k.decode(): v for k, v in sorted(per_cam.items())},
        "seq_gaps": gaps + tail_drops,
        "seq_gap_events": gap_events,
        "sent_total": sent_total,
        "backlog_frames_at_window_end": drained,
        "drain_seconds": round(drain_seconds, 3),
        "drain_last_latency_ms": ms(drain_lat_last),
        "decode_errors": decode_errors,
    }
    if error:
        out["error"] = error
    print(json.dumps(out), flush=True)
    sock.close(0)
    ctx.term()
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
