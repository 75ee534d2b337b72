// H.264 cameras played by the browser itself. Where Media Source
// Extensions play H.264 in MP4, the page reads api/media instead of
// api/stream: one connection carrying every camera as length-prefixed
// binary records (docs/PROTOCOL.md), H.264 cameras as fragmented MP4 fed
// to a <video> per tile, JPEG cameras as JPEG shown as before. Elsewhere,
// or with ?player=jpeg in the address, the page reads api/stream, where the
// server decodes H.264 into JPEG (if it can).
//
// MSE players drift behind live; each tile's player keeps its playhead
// near the newest picture (a jump when it is further behind than
// JUMP_S, a slightly faster rate when a little behind) and trims what it
// has played. Each tile measures the age of the picture it shows (its
// capture time against now) and keeps the samples: window.camhubMedia.
'use strict';

const camhubMedia = (() => {
  const KIND_INIT = 1;
  const KIND_FRAGMENT = 2;
  const KIND_JPEG = 3;
  const JUMP_S = 1; // behind the newest buffered picture by more: jump near it
  const TARGET_S = 0.2; // where a jump lands: the player needs a few frames ahead
  const NUDGE_S = 0.4; // behind by more: play 5% faster
  const KEEP_S = 10; // played video kept in the SourceBuffer
  const TICK_MS = 100;
  const MAX_SAMPLES = 20000; // age samples kept per tile
  const MAX_QUEUE = 200; // fragments waiting for the SourceBuffer before the tile restarts
  const PROBE = 'video/mp4; codecs="avc1.42E01E"';

  const players = new Map(); // camera id -> Player
  let skew = null; // the server's clock minus ours, least-delay estimate
  let ticker = null;

  // mode is how the page plays H.264: 'mse', or 'jpeg' (the server decodes).
  function mode() {
    const forced = new URLSearchParams(location.search).get('player');
    if (forced === 'jpeg') return 'jpeg';
    if (window.MediaSource && MediaSource.isTypeSupported(PROBE)) return 'mse';
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
      const pic = t.el.querySelector('.pic');
      pic.insertBefore(this.video, pic.firstChild);
      t.el.classList.add('h264');
      t.player = this;
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
      this.failed = why;
      this.t.note.textContent = 'H.264: ' + why;
      this.t.el.classList.add('down');
    }

    push(data, media, capture) {
      if (this.failed) return;
      if (this.queue.length >= MAX_QUEUE) {
        this.fail('the browser does not keep up');
        return;
      }
      this.queue.push(data);
      if (media !== null) {
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
      if (behind > JUMP_S || v.currentTime < b.start(b.length - 1)) {
        v.currentTime = Math.max(b.start(b.length - 1), end - TARGET_S);
        this.jumps++;
      } else {
        const rate = behind > NUDGE_S ? 1.05 : 1;
        if (v.playbackRate !== rate) v.playbackRate = rate;
      }
      if (v.paused) v.play().catch(() => { /* played at the next tick */ });
      const q = v.getVideoPlaybackQuality();
      const frames = q.totalVideoFrames;
      if (frames > 0 && frames !== t.shown) {
        const first = t.shown === 0;
        t.shown = frames;
        t.el.dataset.shown = String(frames);
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
        t.age.textContent = fmtAge(age);
      }
      // frames shown a second, over the last second
      const ms = performance.now();
      if (!this.rate || ms - this.rate[0] >= 1000) {
        if (this.rate) t.fps.textContent = ((frames - this.rate[1]) * 1000 / (ms - this.rate[0])).toFixed(1) + ' fps';
        this.rate = [ms, frames];
      }
    }

    close() {
      this.failed = 'closed';
      this.video.removeAttribute('src');
      this.video.load();
      this.video.remove();
      URL.revokeObjectURL(this.url);
      this.t.el.classList.remove('h264');
      if (this.t.player === this) this.t.player = null;
    }
  }

  // onRecord takes one record of the stream.
  function onRecord(kind, id, capture, media, sent, seq, width, height, type, payload) {
    const arrival = Date.now();
    skew = skew === null ? sent - arrival : Math.max(skew, sent - arrival);
    if (kind === KIND_JPEG) {
      const p = players.get(id);
      if (p) { // the camera sends JPEG now
        p.close();
        players.delete(id);
      }
      onFrame({ id, seq, width, height, age_ms: Math.max(0, Math.round(now() - capture)) },
        new Blob([payload], { type: 'image/jpeg' }));
      return;
    }
    const t = tileFor(id);
    if (kind === KIND_INIT) {
      const old = players.get(id);
      if (old) old.close();
      const p = new Player(t, type);
      players.set(id, p);
      p.push(payload, null, 0);
      t.el.dataset.seq = String(seq);
      if (!ticker) ticker = setInterval(tickAll, TICK_MS);
      return;
    }
    const p = players.get(id);
    if (!p) return; // a fragment without its init: cannot happen
    t.el.dataset.seq = String(seq);
    p.push(payload, media / 1e6, capture);
  }

  function tickAll() {
    for (const p of players.values()) p.tick();
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

  // reset ends every player: the stream is being reopened.
  function reset() {
    for (const p of players.values()) p.close();
    players.clear();
    skew = null;
    if (ticker) clearInterval(ticker);
    ticker = null;
  }

  // stats describes each H.264 tile for tests and the curious.
  function stats() {
    const out = {};
    for (const [id, p] of players) {
      const q = p.video.getVideoPlaybackQuality();
      out[id] = {
        mime: p.mime, failed: p.failed, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
        jumps: p.jumps, waits: p.waits, queued: p.queue.length, age: p.ages.length ? p.ages[p.ages.length - 1] : null,
        samples: p.ages.length,
        behind: p.video.buffered.length ? p.video.buffered.end(p.video.buffered.length - 1) - p.video.currentTime : null,
      };
    }
    return out;
  }

  // ages returns camera id's age samples from the from-th on.
  function ages(id, from) {
    const p = players.get(id);
    return p ? p.ages.slice(from || 0) : [];
  }

  return { mode, read, reset, stats, ages };
})();
window.camhubMedia = camhubMedia;
