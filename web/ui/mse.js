// H.264 cameras played by the browser itself. Where the browser can, the
// page reads api/media instead of api/stream: one connection carrying every
// camera as length-prefixed binary records (docs/PROTOCOL.md), H.264
// cameras as fragmented MP4, JPEG cameras as JPEG shown as before. An H.264
// tile is played by WebCodecs (a VideoDecoder drawing on a canvas) in a
// secure context (HTTPS, or localhost), else by Media Source Extensions
// (the fragments fed to a <video>: plain HTTP on a LAN); elsewhere, or with
// ?player=jpeg in the address, the page reads api/stream, where the server
// decodes H.264 into JPEG (if it can). ?player=mse or ?player=webcodecs
// asks for one.
//
// MSE players drift behind live; each one keeps its playhead near the
// newest picture: it aims at AHEAD frames behind it (Chromium's player
// stalls with fewer decoded ahead), plays 10% faster from NUDGE_S further
// behind until it is back at its aim, and jumps back to its aim when JUMP_S further behind and trims what it has played. A
// WebCodecs tile draws each picture as it is decoded and, when its decoder
// falls behind, skips to the next keyframe. Each tile measures the age of
// the picture it shows (its capture time against the server's clock) and
// keeps the samples: window.camhubMedia.stats() and .ages(id).
//
// A tile never goes blank when its track changes (a quality tier switched,
// the stream reopened, the camera restarted): the new track's player is
// put behind the one shown and replaces it only once it has a picture of
// its own (show). Meanwhile the old one holds its last picture. Each track
// gets a player of its own, so a new resolution is a new SourceBuffer
// (MSE) or a new VideoDecoder (WebCodecs), never a reconfigured one. A new
// player that fails before its first picture (a keyframe it cannot
// decode) is counted and reported on the tile; the old picture stays.
'use strict';

const camhubMedia = (() => {
  const KIND_INIT = 1;
  const KIND_FRAGMENT = 2;
  const KIND_JPEG = 3;
  const AHEAD = 5; // frames the playhead aims to stay behind the newest
  const NUDGE_S = 0.2; // behind the aim by more: play CATCH_UP times faster until at the aim
  const CATCH_UP = 1.1;
  const JUMP_S = 0.8; // behind the aim by more: jump to it
  const KEEP_S = 10; // played video kept in the SourceBuffer
  const TICK_MS = 100;
  const MAX_SAMPLES = 20000; // age samples kept per tile
  const MAX_QUEUE = 200; // fragments waiting for the SourceBuffer before the tile restarts
  const PROBE = 'video/mp4; codecs="avc1.42E01E"';

  const KEY_WAIT_MS = 10000; // a reopened stream without a keyframe of a camera for this long: said on its tile
  const players = new Map(); // camera id -> the Player or Painter whose picture its tile shows
  const pending = new Map(); // camera id -> a player of a newer track, until it has a picture
  let floorMs = 0; // capture time before which pictures are not shown (a rewind's start)
  const STILL = -1; // floorMs: each fragment's newest picture alone is shown
  let rate = 1; // playback speed: a rewind played faster than real time
  let skew = null; // the server's clock minus ours, least-delay estimate
  let ticker = null;

  // mode is how the page plays H.264: 'webcodecs' (a VideoDecoder drawing
  // on a canvas, in a secure context: HTTPS, or localhost), 'mse' (Media
  // Source Extensions: plain HTTP on a LAN) or 'jpeg' (the server
  // decodes). ?player=mse|webcodecs|jpeg in the address asks for one.
  function mode() {
    const forced = new URLSearchParams(location.search).get('player');
    const mse = !!(window.MediaSource && MediaSource.isTypeSupported(PROBE));
    const wc = !!(window.isSecureContext && window.VideoDecoder && window.EncodedVideoChunk);
    if (forced === 'jpeg') return 'jpeg';
    if (forced === 'mse' && mse) return 'mse';
    // WebCodecs first: pictures are drawn as they are decoded, where an
    // MSE player keeps a few frames ahead (see docs/BENCHMARKS-H264.md)
    if (wc) return 'webcodecs';
    if (mse) return 'mse';
    return 'jpeg';
  }

  // now is the server's clock, as well as the page can tell.
  function now() { return Date.now() + (skew || 0); }

  class Player {
    constructor(t, mime) {
      this.t = t;
      this.mime = mime;
      this.queue = []; // fragments to append, in order
      this.times = []; // [media time s, capture time ms] of fragments, in order
      this.ages = []; // measured ages, ms
      this.jumps = 0;
      this.interval = 1 / 15; // s, measured from the fragments
      this.waits = 0; // stalls: the playhead reached the newest picture
      this.sb = null;
      this.failed = '';
      this.video = document.createElement('video');
      this.video.muted = true;
      this.video.playsInline = true;
      this.video.autoplay = true;
      this.video.disablePictureInPicture = true;
      this.ms = new MediaSource();
      this.url = URL.createObjectURL(this.ms);
      this.ms.addEventListener('sourceopen', () => this.open(), { once: true });
      this.video.addEventListener('waiting', () => { this.waits++; });
      this.video.addEventListener('error', () => this.fail('the browser cannot play it'));
      this.video.src = this.url;
      // behind what the tile shows until it has a picture (show)
      const pic = t.el.querySelector('.pic');
      pic.insertBefore(this.video, pic.firstChild);
      if (this.video.requestVideoFrameCallback) this.video.requestVideoFrameCallback(() => show(this));
    }

    open() {
      if (!MediaSource.isTypeSupported(this.mime)) {
        this.fail('this browser cannot play ' + this.mime);
        return;
      }
      try {
        this.sb = this.ms.addSourceBuffer(this.mime);
        this.sb.mode = 'segments';
      } catch (e) {
        this.fail(e.message);
        return;
      }
      this.sb.addEventListener('updateend', () => this.pump());
      this.pump();
    }

    fail(why) {
      if (this.failed) return;
      if (this.t.player !== this) {
        notShown(this, why);
        return;
      }
      this.failed = why;
      this.t.note.textContent = 'H.264: ' + why;
      this.t.el.classList.add('down');
    }

    push(data, media, capture) {
      if (this.failed) return;
      if (media !== null) {
        this.still = floorMs === STILL;
        this.floor = this.still ? capture : floorMs;
      }
      if (this.queue.length >= MAX_QUEUE) {
        this.fail('the browser does not keep up');
        return;
      }
      this.queue.push(data);
      if (media !== null) {
        const last = this.times[this.times.length - 1];
        if (last && media > last[0]) {
          // the camera's frame interval, smoothed
          this.interval += (Math.min(media - last[0], 1) - this.interval) / 8;
        }
        this.times.push([media, capture]);
        if (this.times.length > 600) this.times.splice(0, 300);
      }
      this.pump();
    }

    pump() {
      const sb = this.sb;
      if (!sb || sb.updating || this.failed || this.ms.readyState !== 'open') return;
      const v = this.video;
      const b = sb.buffered;
      if (b.length && v.currentTime - b.start(0) > 2 * KEEP_S) {
        sb.remove(0, v.currentTime - KEEP_S);
        return;
      }
      if (!this.queue.length) return;
      const data = this.queue.shift();
      try {
        sb.appendBuffer(data);
      } catch (e) {
        if (e.name === 'QuotaExceededError' && b.length && v.currentTime - b.start(0) > 1) {
          // full: drop what was played, then append it
          this.queue.unshift(data);
          sb.remove(0, v.currentTime - 1);
          return;
        }
        this.fail(e.message);
      }
    }

    // tick keeps the playhead near live and measures the age shown.
    tick() {
      const v = this.video;
      const t = this.t;
      const b = v.buffered;
      if (this.failed || !b.length) return;
      const end = b.end(b.length - 1);
      const behind = end - v.currentTime;
      const aim = Math.min(Math.max(AHEAD * this.interval, 0.1), 0.6);
      if (behind > aim + JUMP_S || v.currentTime < b.start(b.length - 1)) {
        v.currentTime = Math.max(b.start(b.length - 1), end - aim);
        this.jumps++;
      } else {
        // faster from NUDGE_S behind the aim until back at it (not
        // merely back within NUDGE_S of it, where it would settle)
        if (behind > aim + NUDGE_S) this.catching = true;
        else if (behind <= aim) this.catching = false;
        const r = this.catching ? rate * CATCH_UP : rate;
        if (v.playbackRate !== r) v.playbackRate = r;
      }
      if (this.floor && this.times.length) {
        // a rewind: from the time asked for, not the keyframe before it;
        // a still: at its newest picture, paused
        const last = this.times[this.times.length - 1];
        const from = last[0] + (this.floor - last[1]) / 1000 + 0.0005;
        if (end >= from && (this.still ? Math.abs(v.currentTime - from) > 0.001 : v.currentTime < from - 0.001)) v.currentTime = from;
      }
      if (this.still) {
        if (!v.paused) v.pause();
      } else if (v.paused) {
        v.play().catch(() => { /* played at the next tick */ });
      }
      const q = v.getVideoPlaybackQuality();
      const frames = q.totalVideoFrames;
      if (t.player !== this) {
        // a browser without requestVideoFrameCallback: decoded is shown
        if (frames > 0 && !v.requestVideoFrameCallback) show(this);
        return;
      }
      if (frames > 0 && this.base + frames !== t.shown) {
        const first = t.shown === 0;
        t.shown = this.base + frames;
        t.el.dataset.shown = String(t.shown);
        if (first) label(t);
      }
      // the capture time of the picture at the playhead, from the
      // fragment at or before it
      let at = null;
      for (let i = this.times.length - 1; i >= 0; i--) {
        if (this.times[i][0] <= v.currentTime + 0.001) {
          at = this.times[i];
          break;
        }
      }
      if (at && frames > 0) {
        const age = Math.max(0, Math.round(now() - (at[1] + (v.currentTime - at[0]) * 1000)));
        if (this.ages.length >= MAX_SAMPLES) this.ages.splice(0, MAX_SAMPLES / 2);
        this.ages.push(age);
        t.el.dataset.age = String(age);
        t.el.dataset.time = String(Math.round(at[1] + (v.currentTime - at[0]) * 1000));
        t.age.textContent = fmtAge(age);
      }
      // frames shown a second, over the last second
      const ms = performance.now();
      if (!this.rate || ms - this.rate[0] >= 1000) {
        if (this.rate) t.fps.textContent = ((frames - this.rate[1]) * 1000 / (ms - this.rate[0])).toFixed(1) + ' fps';
        this.rate = [ms, frames];
      }
    }

    quality() { return this.video.getVideoPlaybackQuality(); }

    close() {
      this.failed = 'closed';
      this.video.removeAttribute('src');
      this.video.load();
      this.video.remove();
      URL.revokeObjectURL(this.url);
      unshow(this);
    }
  }

  // boxes calls f(type, start, end) for each MP4 box in b[from:to]; end
  // is where its payload ends, start where it begins.
  function boxes(b, from, to, f) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let o = from; o + 8 <= to;) {
      let size = dv.getUint32(o);
      let head = 8;
      if (size === 1) {
        size = Number(dv.getBigUint64(o + 8));
        head = 16;
      }
      if (size < head || o + size > to) throw new Error('bad MP4 box');
      f(String.fromCharCode(b[o + 4], b[o + 5], b[o + 6], b[o + 7]), o + head, o + size, dv);
      o += size;
    }
  }

  // samples reads an MP4 fragment (moof, mdat) of one track: each
  // sample's data, presentation time (µs) and whether it is a keyframe.
  function samples(frag) {
    const out = [];
    let moof = -1;
    boxes(frag, 0, frag.length, (type, start, end, dv) => {
      if (type !== 'moof') return;
      moof = start - 8;
      boxes(frag, start, end, (type, start, end) => {
        if (type !== 'traf') return;
        let base = moof;
        let dur = 0;
        let size = 0;
        let sflags = 0;
        let dts = 0;
        boxes(frag, start, end, (type, start) => {
          const v = dv.getUint8(start);
          const flags = dv.getUint32(start) & 0xffffff;
          let o = start + 4;
          if (type === 'tfhd') {
            o += 4; // track id
            if (flags & 0x01) { base = Number(dv.getBigUint64(o)); o += 8; }
            if (flags & 0x02) o += 4;
            if (flags & 0x08) { dur = dv.getUint32(o); o += 4; }
            if (flags & 0x10) { size = dv.getUint32(o); o += 4; }
            if (flags & 0x20) { sflags = dv.getUint32(o); }
          } else if (type === 'tfdt') {
            dts = v === 1 ? Number(dv.getBigUint64(o)) : dv.getUint32(o);
          } else if (type === 'trun') {
            const n = dv.getUint32(o);
            o += 4;
            let data = base;
            if (flags & 0x01) { data = base + dv.getInt32(o); o += 4; }
            let first = null;
            if (flags & 0x04) { first = dv.getUint32(o); o += 4; }
            for (let i = 0; i < n; i++) {
              let d = dur, s = size, f = sflags, cto = 0;
              if (flags & 0x100) { d = dv.getUint32(o); o += 4; }
              if (flags & 0x200) { s = dv.getUint32(o); o += 4; }
              if (flags & 0x400) { f = dv.getUint32(o); o += 4; } else if (i === 0 && first !== null) f = first;
              if (flags & 0x800) { cto = v === 1 ? dv.getInt32(o) : dv.getUint32(o); o += 4; }
              if (data + s > frag.length) throw new Error('bad MP4 fragment');
              out.push({
                data: frag.subarray(data, data + s),
                pts: Math.round((dts + cto) * 1e6 / 90000),
                key: !(f & 0x10000),
              });
              data += s;
              dts += d;
            }
          }
        });
      });
    });
    return out;
  }

  // Painter plays a tile's H.264 with WebCodecs: a VideoDecoder whose
  // pictures are drawn on a canvas as they come (no playhead to drift).
  // Newest wins: a decoder more than MAX_DECODING chunks behind skips to
  // the next keyframe.
  class Painter {
    constructor(t, mime, init, fallback) {
      this.t = t;
      this.fallback = fallback; // called instead of failing before the first picture
      this.mime = mime;
      this.ages = [];
      this.jumps = 0;
      this.waits = 0;
      this.frames = 0;
      this.dropped = 0;
      this.failed = '';
      this.skipping = false; // until the next keyframe
      this.offset = null; // capture time minus presentation time, ms
      this.canvas = document.createElement('canvas');
      this.ctx = this.canvas.getContext('2d');
      this.video = this.canvas; // what stats and tests look at
      // behind what the tile shows until it has a picture (show)
      const pic = t.el.querySelector('.pic');
      pic.insertBefore(this.canvas, pic.firstChild);
      const m = /codecs="([^"]+)"/.exec(mime);
      let avcc = null;
      try {
        boxes(init, 0, init.length, function walk(type, start, end) {
          if (type === 'avcC') avcc = init.slice(start, end);
          else if (type === 'moov' || type === 'trak' || type === 'mdia' || type === 'minf' || type === 'stbl') boxes(init, start, end, walk);
          else if (type === 'stsd') boxes(init, start + 8, end, walk);
          else if (type === 'avc1' || type === 'avc3') boxes(init, start + 78, end, walk);
        });
      } catch (e) { /* reported below */ }
      if (!m || !avcc) {
        this.fail('an init segment without avcC');
        return;
      }
      this.decoder = new VideoDecoder({
        output: (frame) => this.draw(frame),
        error: (e) => this.fail(e.message),
      });
      try {
        this.decoder.configure({ codec: m[1], description: avcc, optimizeForLatency: true });
      } catch (e) {
        this.fail(e.message);
      }
    }

    fail(why) {
      if (this.failed) return;
      if (this.fallback && !this.frames) {
        const f = this.fallback;
        this.failed = 'closed';
        if (this.decoder && this.decoder.state !== 'closed') this.decoder.close();
        this.canvas.remove();
        f();
        return;
      }
      Player.prototype.fail.call(this, why);
    }

    push(data, media, capture) {
      if (this.failed || media === null) return;
      let list;
      try {
        list = samples(data);
      } catch (e) {
        this.fail(e.message);
        return;
      }
      if (!list.length) return;
      const last = list[list.length - 1];
      this.offset = capture - last.pts / 1000;
      this.floor = floorMs === STILL ? capture : floorMs;
      for (const s of list) {
        if (this.decoder.decodeQueueSize > 15) {
          this.skipping = true; // behind: wait for a keyframe
        }
        if (this.skipping && !s.key) {
          this.dropped++;
          continue;
        }
        if (this.skipping) this.jumps++;
        this.skipping = false;
        try {
          this.decoder.decode(new EncodedVideoChunk({ type: s.key ? 'key' : 'delta', timestamp: s.pts, data: s.data }));
        } catch (e) {
          this.fail(e.message);
          return;
        }
      }
    }

    draw(frame) {
      const c = this.canvas;
      if (this.floor && this.offset !== null && frame.timestamp / 1000 + this.offset < this.floor - 1) {
        frame.close(); // before the time asked for: decoded, not shown
        return;
      }
      if (c.width !== frame.displayWidth || c.height !== frame.displayHeight) {
        c.width = frame.displayWidth;
        c.height = frame.displayHeight;
      }
      this.ctx.drawImage(frame, 0, 0, c.width, c.height);
      const pts = frame.timestamp;
      frame.close();
      this.frames++;
      const t = this.t;
      if (t.player !== this) show(this);
      if (t.player !== this) return;
      const first = t.shown === 0;
      t.shown = this.base + this.frames;
      t.el.dataset.shown = String(t.shown);
      if (first) label(t);
      if (this.offset !== null) {
        this.shownAt = pts / 1000 + this.offset;
        t.el.dataset.time = String(Math.round(this.shownAt));
      }
    }

    // tick measures the age of the picture shown, as a Player's does.
    tick() {
      if (this.failed || this.shownAt === undefined || this.t.player !== this) return;
      const age = Math.max(0, Math.round(now() - this.shownAt));
      if (this.ages.length >= MAX_SAMPLES) this.ages.splice(0, MAX_SAMPLES / 2);
      this.ages.push(age);
      this.t.el.dataset.age = String(age);
      this.t.age.textContent = fmtAge(age);
      const ms = performance.now();
      if (!this.rate || ms - this.rate[0] >= 1000) {
        if (this.rate) this.t.fps.textContent = ((this.frames - this.rate[1]) * 1000 / (ms - this.rate[0])).toFixed(1) + ' fps';
        this.rate = [ms, this.frames];
      }
    }

    quality() { return { totalVideoFrames: this.frames, droppedVideoFrames: this.dropped }; }

    close() {
      this.failed = 'closed';
      if (this.decoder && this.decoder.state !== 'closed') this.decoder.close();
      this.canvas.remove();
      unshow(this);
    }
  }

  // show makes p, a player with a picture, the one its tile shows, in
  // place of the one that showed the camera's older track (or JPEG), in
  // one task: the tile is never blank.
  function show(p) {
    const t = p.t;
    if (p.failed || t.player === p) return;
    const id = t.id;
    if (pending.get(id) === p) pending.delete(id);
    const old = players.get(id);
    if (old && old !== p) {
      old.close();
      t.switches = (t.switches || 0) + 1;
    }
    players.set(id, p);
    p.base = t.shown;
    t.player = p;
    t.el.classList.add('h264');
    t.el.dataset.width = String(p.width || 0);
    t.el.dataset.tier = tierOf(t, p.width); // app.js
    label(t);
  }

  // unshow detaches a closed player from its tile.
  function unshow(p) {
    const t = p.t;
    if (t.player === p) {
      t.player = null;
      t.el.classList.remove('h264');
    }
    if (players.get(t.id) === p) players.delete(t.id);
    if (pending.get(t.id) === p) pending.delete(t.id);
  }

  // notShown ends a new track's player that failed before its first
  // picture (a keyframe the browser cannot decode): counted, said on the
  // tile, which keeps the picture it shows.
  function notShown(p, why) {
    const t = p.t;
    t.badTracks = (t.badTracks || 0) + 1;
    p.close();
    p.failed = why;
    console.warn('camhub: camera ' + t.id + ': a new H.264 track cannot be played (' + why + '); the tile keeps its picture until the next one');
    t.note.textContent = 'H.264: ' + why;
  }

  // onRecord takes one record of the stream.
  function onRecord(kind, id, capture, media, sent, seq, width, height, type, payload) {
    const arrival = Date.now();
    skew = skew === null ? sent - arrival : Math.max(skew, sent - arrival);
    if (kind === KIND_JPEG) {
      drop(id); // the camera sends JPEG now
      onFrame({ id, seq, width, height, time: capture, age_ms: Math.max(0, Math.round(now() - capture)) },
        new Blob([payload], { type: 'image/jpeg' }));
      return;
    }
    const t = tileFor(id);
    if (kind === KIND_INIT) {
      // a new track: its player replaces the one shown once it has a
      // picture; one of a still newer track replaces it
      const older = pending.get(id);
      if (older) older.close();
      const start = (p) => {
        p.width = width;
        pending.set(id, p);
        // a tile with nothing to hold shows the new player at once, as
        // does the timeline's still (each is a new track)
        const old = players.get(id);
        if (!t.shown || (old && old.failed) || floorMs === STILL) show(p);
      };
      const mse = () => {
        const p = new Player(t, type);
        start(p);
        p.push(payload, null, 0);
      };
      if (mode() === 'webcodecs') {
        // a camera WebCodecs cannot decode falls back to MSE, if any
        const fallback = window.MediaSource && MediaSource.isTypeSupported(type) ? mse : null;
        const p = new Painter(t, type, payload, fallback);
        if (p.failed !== 'closed') start(p); // else it fell back already
      } else {
        mse();
      }
      t.el.dataset.seq = String(seq);
      if (!ticker) ticker = setInterval(tickAll, TICK_MS);
      return;
    }
    const p = pending.get(id) || players.get(id);
    if (!p || p.stale) return; // a fragment without its init: cannot happen
    t.el.dataset.seq = String(seq);
    p.push(payload, media / 1e6, capture);
  }

  function tickAll() {
    const ms = performance.now();
    for (const p of players.values()) {
      if (!p.stale) {
        p.tick();
        continue;
      }
      // a reopened stream brought no keyframe of the camera yet
      const t = p.t;
      if (!p.waiting && ms - p.stale > KEY_WAIT_MS && t.el.offsetParent !== null && !pending.has(t.id)) {
        p.waiting = true;
        t.keyWaits = (t.keyWaits || 0) + 1;
        console.warn('camhub: camera ' + t.id + ': no H.264 keyframe for ' + KEY_WAIT_MS / 1000 + ' s; the tile holds its last picture');
        label(t); // app.js: says so
      }
    }
    for (const p of pending.values()) p.tick();
  }

  // read parses api/media: records of a 4-byte length and what it says.
  async function read(reader) {
    const dec = new TextDecoder();
    let buf = new Uint8Array(1 << 16);
    let start = 0;
    let end = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (end + value.length > buf.length) {
        const kept = end - start;
        if (kept + value.length > buf.length) {
          const bigger = new Uint8Array(Math.max(2 * buf.length, kept + value.length));
          bigger.set(buf.subarray(start, end));
          buf = bigger;
        } else {
          buf.copyWithin(0, start, end);
        }
        start = 0;
        end = kept;
      }
      buf.set(value, end);
      end += value.length;
      for (;;) {
        if (end - start < 4) break;
        const dv = new DataView(buf.buffer, buf.byteOffset + start, end - start);
        const size = dv.getUint32(0);
        if (size < 40 || size > (64 << 20)) throw new Error('bad media record of ' + size + ' bytes');
        if (end - start < 4 + size) break;
        const kind = dv.getUint8(4);
        const n = dv.getUint8(5);
        const id = dec.decode(buf.subarray(start + 6, start + 6 + n));
        let o = 6 + n;
        const capture = Number(dv.getBigInt64(o)) / 1000; // ms
        const media = Number(dv.getBigInt64(o + 8)); // µs
        const sent = Number(dv.getBigInt64(o + 16)) / 1000; // ms
        const seq = Number(dv.getBigUint64(o + 24));
        const width = dv.getUint16(o + 32);
        const height = dv.getUint16(o + 34);
        const m = dv.getUint16(o + 36);
        o += 38;
        if (o + m > 4 + size) throw new Error('bad media record');
        const type = dec.decode(buf.subarray(start + o, start + o + m));
        // a copy: the buffer is reused, and appendBuffer keeps nothing
        const payload = buf.slice(start + o + m, start + 4 + size);
        start += 4 + size;
        onRecord(kind, id, capture, media, sent, seq, width, height, type, payload);
      }
    }
  }

  // reset stops feeding every player: the stream is being reopened. The
  // tiles hold their pictures until the new stream's tracks have theirs
  // (show), or a JPEG (drop); new tracks not yet shown are ended.
  function reset() {
    for (const p of pending.values()) p.close();
    pending.clear();
    const ms = performance.now();
    for (const p of players.values()) {
      p.stale = ms; // the new stream's wait for a keyframe starts
      p.waiting = false;
    }
    skew = null;
  }

  // drop ends camera id's players: its tile shows a JPEG (app.js).
  function drop(id) {
    for (const m of [pending, players]) {
      const p = m.get(id);
      if (p) p.close();
    }
  }

  // stats describes each H.264 tile for tests and the curious.
  function stats() {
    const out = {};
    for (const [id, p] of players) {
      const q = p.quality();
      const b = p.video.buffered;
      const t = p.t;
      out[id] = {
        player: p instanceof Painter ? 'webcodecs' : 'mse',
        tier: t.el.dataset.tier, width: p.width, stale: !!p.stale, switching: pending.has(id),
        switches: t.switches || 0, badTracks: t.badTracks || 0, keyWaits: t.keyWaits || 0,
        mime: p.mime, failed: p.failed, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
        jumps: p.jumps, waits: p.waits, age: p.ages.length ? p.ages[p.ages.length - 1] : null,
        samples: p.ages.length, behind: b && b.length ? b.end(b.length - 1) - p.video.currentTime : null,
      };
    }
    return out;
  }

  // ages returns camera id's age samples from the from-th on.
  function ages(id, from) {
    const p = players.get(id);
    return p ? p.ages.slice(from || 0) : [];
  }

  // floor: pictures captured before ms (since 1970; 0: none) are decoded
  // but not shown: a rewind starts at the keyframe before the time asked
  // for (timeline.js). -1: only each fragment's newest picture is shown
  // (a still: a keyframe and the access units up to the time asked for).
  function floor(ms) { floorMs = ms || 0; }

  // speed sets how fast MSE players play (a rewind at the speed asked
  // for: the server sends the access units at that pace).
  function speed(s) { rate = s > 0 ? s : 1; }

  return { mode, read, reset, drop, stats, ages, floor, speed };
})();
window.camhubMedia = camhubMedia;
