// The timeline: a scrub bar over everything the hub's buffer holds
// (api/timeline, read every few seconds as the buffer moves), with the
// time shown.
//
// Dragging it (mouse, pen or finger: pointer events) shows every camera
// at the time under the pointer: api/still?at=T brings each camera's
// picture at T (a JPEG camera's frame, an H.264 camera's keyframe before
// T, which the page decodes itself: mse.js), one request at a time, the
// newest position winning. On release the page shows exactly T (exact=1:
// the H.264 access units from the keyframe up to T) and plays from there
// (api/media or api/stream with at=T), every camera in sync, on into live.
// "live" returns to live.
//
// Keys: left and right step 1 s (with shift 10 s), space pauses and plays,
// L goes live. The motion detector's events (api/events, as the events
// panel reads them) are marks on the bar at their start, of the camera
// shown alone or of all; a click or tap on one shows every camera from
// there (playing on, or paused if the timeline is). Playback runs at 1, 2, 4 or 8 times real time. Each tile says the capture time of the picture it shows in
// data-time (ms since 1970), as the tests read it.
'use strict';

const camhubTimeline = (() => {
  const POLL_MS = 2000;
  const STEP_MS = 1000;
  const BIG_STEP_MS = 10000;
  const EVENTS_MS = 5000;
  const MAX_EVENTS = 1000; // api/events' limit

  const bar = document.getElementById('tl-bar');
  const fill = document.getElementById('tl-fill');
  const head = document.getElementById('tl-head');
  const readout = document.getElementById('tl-time');
  const playBtn = document.getElementById('tl-play');
  const speedSel = document.getElementById('tl-speed');
  const marks = document.getElementById('tl-marks');

  const tl = {
    from: null, // ms: the oldest capture time in the buffer
    to: null, // ms: the newest
    of: null, // the cameras from and to are of: state.solo when read ('' for all)
    pollTimer: 0, // the next poll's timeout
    skew: 0, // the server's clock minus ours, ms
    mode: 'live', // 'live', 'playing', 'paused'
    pos: null, // ms: the time shown, when not live
    playFrom: 0, // ms: where playing started
    playWall: 0, // performance.now() when it did
    dragging: false,
    wasPaused: false, // paused when the drag began
    still: null, // the AbortController of the still being read
    stillAt: null, // and the time it asks for
    wantStill: null, // the time of the next still, null: none
    exact: false, // the next still is exact
    seeks: [], // {at, asked, shown}: how long each still took, for the curious
    events: '', // the events marked, as a key: their ids and starts
    eventsRead: false, // pollEvents is running
  };

  function serverNow() { return Date.now() + tl.skew; }

  // position is the time shown now.
  function position() {
    if (tl.mode === 'live') return serverNow();
    if (tl.mode === 'playing') return tl.playFrom + (performance.now() - tl.playWall) * (state.speed || 1);
    return tl.pos;
  }

  function span() {
    const now = serverNow();
    const from = tl.from === null ? now - 30000 : tl.from;
    const to = Math.max(tl.to === null ? now : tl.to, now);
    return [from, Math.max(to, from + 1000)];
  }

  // clamp keeps t within what the buffer holds of the cameras shown. Until
  // their span is read (the page just opened, or went from one camera to
  // all), the start is the server's to find: a rewind from before its
  // oldest frame starts there.
  function clamp(t) {
    const [from, to] = span();
    const known = tl.from !== null && tl.of === (state.solo || '');
    return Math.min(known ? Math.max(t, from) : t, to);
  }

  function pad(n, w) { return String(n).padStart(w || 2, '0'); }

  function fmtTime(ms) {
    const d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + Math.floor(d.getMilliseconds() / 100);
  }

  // draw puts the head where the time shown is, and says it.
  function draw() {
    const [from, to] = span();
    const t = position();
    const x = Math.min(Math.max((t - from) / (to - from), 0), 1);
    head.style.left = (x * 100) + '%';
    fill.style.left = tl.from === null ? '100%' : '0';
    bar.setAttribute('aria-valuemin', String(Math.round(from)));
    bar.setAttribute('aria-valuemax', String(Math.round(to)));
    bar.setAttribute('aria-valuenow', String(Math.round(t)));
    bar.dataset.pos = String(Math.round(t));
    bar.dataset.from = String(Math.round(from));
    bar.dataset.to = String(Math.round(to));
    let text;
    if (tl.mode === 'live') {
      text = 'live';
    } else {
      const behind = Math.max(0, serverNow() - t);
      text = fmtTime(t) + ' \u00b7 \u2212' + fmtAge(behind) + (tl.mode === 'paused' ? ' \u00b7 paused' : '');
    }
    drawMarks(from, to);
    if (readout.textContent !== text) readout.textContent = text;
    bar.setAttribute('aria-valuetext', text);
    playBtn.textContent = tl.mode === 'paused' ? '\u25b6' : '\u275a\u275a';
    playBtn.title = tl.mode === 'paused' ? 'play (space)' : 'pause (space)';
    document.body.dataset.timeline = tl.mode;
  }

  // poll reads what the buffer holds of the cameras shown, every POLL_MS
  // and at once when they change (camerasChanged).
  async function poll() {
    clearTimeout(tl.pollTimer);
    tl.pollTimer = 0;
    const of = state.solo || '';
    try {
      const p = new URLSearchParams();
      if (of) p.set('cams', of);
      const q = p.toString();
      const res = await fetch('api/timeline' + (q ? '?' + q : ''), { cache: 'no-store' });
      if (of !== (state.solo || '')) {
        poll(); // the cameras shown changed meanwhile: theirs
        return;
      }
      if (res.ok) {
        const b = await res.json();
        tl.skew = Date.parse(b.now) - Date.now();
        // a camera the hub did not answer for in time has an error and no
        // times; with none answered, the range shown stays as it was
        const read = b.cameras.filter((c) => !c.error);
        if (read.length || !b.cameras.length) {
          tl.of = of;
          tl.from = b.from ? Date.parse(b.from) : null;
          tl.to = b.to ? Date.parse(b.to) : null;
          bar.dataset.cams = String(read.length);
        }
        draw();
        if (!tl.eventsRead) { // from the bar's first span on
          tl.eventsRead = true;
          pollEvents();
        }
      }
    } catch (e) { /* app.js reports an unreachable server */ }
    if (!tl.pollTimer) tl.pollTimer = setTimeout(poll, POLL_MS);
  }

  // camerasChanged: the page shows other cameras (app.js: one alone, or all
  // again); their span is read at once.
  function camerasChanged() {
    if (tl.of !== (state.solo || '')) poll();
  }

  // drawMarks puts each event's mark at its start, those of the camera
  // shown alone (or all) that are on the bar.
  function drawMarks(from, to) {
    for (const m of marks.children) {
      const at = Number(m.dataset.start);
      const on = at >= from && at <= to && (!state.solo || m.dataset.camera === state.solo);
      if (m.hidden === on) m.hidden = !on;
      if (on) m.style.left = ((at - from) / (to - from) * 100) + '%';
    }
  }

  // pollEvents reads the events of the span the bar shows.
  async function pollEvents() {
    try {
      const p = new URLSearchParams();
      p.set('since', new Date(span()[0]).toISOString());
      p.set('limit', String(MAX_EVENTS));
      const res = await fetch('api/events?' + p.toString(), { cache: 'no-store' });
      // a server whose hub keeps no events (503) has no marks
      if (res.ok || res.status === 503) setEvents(res.ok ? await res.json() : []);
    } catch (e) { /* app.js reports an unreachable server */ }
    setTimeout(pollEvents, EVENTS_MS);
  }

  // setEvents makes a mark for each event.
  function setEvents(evs) {
    const key = evs.map((e) => e.id + '@' + e.start).join();
    if (key === tl.events) return;
    tl.events = key;
    marks.replaceChildren(...evs.map((e) => {
      const m = document.createElement('span');
      const at = Date.parse(e.start);
      m.className = 'tl-mark';
      m.dataset.id = e.id;
      m.dataset.camera = e.camera;
      m.dataset.start = String(at);
      m.title = e.camera + ' \u00b7 ' + fmtTime(at) + ' \u00b7 ' + (100 * (e.score || 0)).toFixed(1) + '% moved';
      return m;
    }));
    draw();
  }

  // hold stops the stream, keeping the pictures shown.
  function hold() {
    state.hold = true;
    restart(); // app.js: with hold, only stops
  }

  // stillURL is the address of every camera's picture at t.
  function stillURL(t, exact) {
    const p = new URLSearchParams();
    p.set('at', String(Math.round(t)));
    if (exact) p.set('exact', '1');
    if (camhubMedia.mode() === 'jpeg') p.set('jpeg', '1'); // the server decodes H.264, if it can
    if (state.solo) p.set('cams', state.solo);
    return 'api/still?' + p.toString();
  }

  // still shows every camera at t: one request at a time, the newest t
  // winning; exact asks for exactly t (on release), else keyframes do.
  function still(t, exact) {
    tl.wantStill = t;
    tl.exact = exact;
    if (exact && tl.still && tl.stillAt !== t) tl.still.abort(); // the exact one matters
    if (!tl.still) nextStill();
  }

  async function nextStill() {
    if (tl.wantStill === null) return;
    const t = tl.wantStill;
    const exact = tl.exact;
    tl.wantStill = null;
    const ctrl = new AbortController();
    tl.still = ctrl;
    tl.stillAt = t;
    const asked = performance.now();
    try {
      const res = await fetch(stillURL(t, exact), { signal: ctrl.signal, cache: 'no-store' });
      if (loggedOut(res)) return; // app.js
      if (res.ok) {
        // each H.264 camera's newest picture alone: the ones before it are decoded, not shown
        camhubMedia.floor(-1);
        await camhubMedia.read(res.body.getReader());
        tl.seeks.push({ at: t, exact, ms: performance.now() - asked });
        if (tl.seeks.length > 1000) tl.seeks.splice(0, 500);
      } else {
        let msg = res.status + ' ' + res.statusText;
        try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
        say(msg, true); // app.js
      }
    } catch (e) {
      if (!ctrl.signal.aborted) say('cannot show that time: ' + e.message, true);
    }
    if (tl.still === ctrl) tl.still = null;
    if (tl.mode !== 'live') nextStill();
  }

  function stopStills() {
    tl.wantStill = null;
    if (tl.still) tl.still.abort();
    tl.still = null;
  }

  // pause shows t (now, if null) and stays there.
  function pause(t) {
    tl.pos = clamp(t === undefined || t === null ? position() : t);
    const was = tl.mode;
    tl.mode = 'paused';
    rewound(true);
    hold();
    // from live or playing the pictures shown are at the position already
    if (was === 'paused') still(tl.pos, true);
    draw();
  }

  // play plays every camera from t (where it is, if null).
  function play(t) {
    stopStills();
    tl.playFrom = clamp(t === undefined || t === null ? position() : t);
    tl.playWall = performance.now();
    tl.mode = 'playing';
    state.hold = false;
    state.at = tl.playFrom;
    rewound(true);
    restart(); // app.js
    draw();
  }

  function live() {
    stopStills();
    tl.mode = 'live';
    tl.pos = null;
    state.hold = false;
    state.at = 0;
    rewound(false);
    setSince(0); // app.js: restarts the live stream
    draw();
  }

  // rewound marks the grid as showing the past.
  function rewound(on) {
    grid.classList.toggle('rewound', on);
    for (const b of rewind.querySelectorAll('button')) {
      b.classList.toggle('on', !on && Number(b.dataset.since) === 0);
    }
  }

  function step(ms) {
    const t = clamp(position() + ms);
    if (tl.mode === 'playing') {
      play(t);
      return;
    }
    tl.pos = t;
    if (tl.mode === 'live') {
      tl.mode = 'paused';
      rewound(true);
      hold();
    }
    still(t, true);
    draw();
  }

  function toggle() {
    if (tl.mode === 'paused') play(tl.pos);
    else pause();
  }

  // the time under a pointer
  function timeAt(e) {
    const r = bar.getBoundingClientRect();
    const x = Math.min(Math.max((e.clientX - r.left) / r.width, 0), 1);
    const [from, to] = span();
    return from + x * (to - from);
  }

  // a mark: every camera from the event's start; not a drag of the bar
  marks.addEventListener('pointerdown', (e) => {
    if (e.target.closest('.tl-mark')) e.stopPropagation();
  });
  marks.addEventListener('click', (e) => {
    const m = e.target.closest('.tl-mark');
    if (!m) return;
    e.stopPropagation();
    const at = Number(m.dataset.start);
    if (tl.mode === 'paused') {
      tl.pos = clamp(at);
      still(tl.pos, true);
      draw();
    } else {
      play(at);
    }
  });

  bar.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    bar.setPointerCapture(e.pointerId);
    bar.focus({ preventScroll: true });
    tl.dragging = true;
    tl.wasPaused = tl.mode === 'paused';
    tl.mode = 'paused';
    tl.pos = timeAt(e);
    rewound(true);
    hold();
    still(tl.pos, false);
    draw();
  });
  bar.addEventListener('pointermove', (e) => {
    if (!tl.dragging) return;
    tl.pos = timeAt(e);
    still(tl.pos, false);
    draw();
  });
  const release = (e) => {
    if (!tl.dragging) return;
    tl.dragging = false;
    if (e.type === 'pointerup') tl.pos = timeAt(e);
    if (tl.wasPaused) {
      still(tl.pos, true); // exactly there, and stay
      draw();
    } else {
      play(tl.pos);
    }
  };
  bar.addEventListener('pointerup', release);
  bar.addEventListener('pointercancel', release);

  playBtn.addEventListener('click', toggle);
  speedSel.addEventListener('change', () => {
    const p = position();
    state.speed = Number(speedSel.value) || 1;
    if (tl.mode === 'playing') play(p);
  });
  // the rewind buttons: jump back and play, or live
  rewind.addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    e.stopImmediatePropagation();
    const since = Number(b.dataset.since);
    if (!since) live();
    else play(serverNow() - since * 1000);
  }, true);

  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const el = e.target;
    if (el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.isContentEditable)) return;
    switch (e.key) {
      case 'ArrowLeft':
        step(-(e.shiftKey ? BIG_STEP_MS : STEP_MS));
        break;
      case 'ArrowRight':
        step(e.shiftKey ? BIG_STEP_MS : STEP_MS);
        break;
      case ' ':
        toggle();
        break;
      case 'l':
      case 'L':
        live();
        break;
      default:
        return;
    }
    e.preventDefault();
  });

  // A stream that ended a rewind (app.js: an error, back to live).
  function wentLive() {
    if (tl.mode === 'live') return;
    stopStills();
    tl.mode = 'live';
    state.at = 0;
    state.hold = false;
    rewound(false);
    draw();
  }

  // app.js reopens the stream when the tab is shown again: playing, it
  // goes on from where the clock says it is
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && tl.mode === 'playing') state.at = position();
  }, true);

  setInterval(draw, 250);
  draw();
  poll();

  return {
    live, play, pause, step, wentLive, camerasChanged,
    // for tests and the curious
    position, mode: () => tl.mode, seeks: () => tl.seeks.slice(),
    bounds: () => ({ from: tl.from, to: tl.to }),
  };
})();
window.camhubTimeline = camhubTimeline;
