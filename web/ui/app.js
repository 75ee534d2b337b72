// camhub's grid page. One fetch of api/stream brings the frames of every
// camera shown (browsers allow only six connections to a server, so one
// MJPEG <img> per camera would not do for a grid); api/cams, polled once a
// second, brings fps, frame age, state and cameras that join.
'use strict';

const grid = document.getElementById('grid');
const empty = document.getElementById('empty');
const back = document.getElementById('back');
const notice = document.getElementById('notice');
const rewind = document.getElementById('rewind');

const tiles = new Map(); // camera id -> tile
const state = {
  solo: null, // the camera shown alone, or null
  since: 0, // seconds rewound; 0: live
  at: 0, // ms since 1970: the time played from (timeline.js); 0: none
  speed: 1, // with at
  hold: false, // no stream: the timeline is paused or dragged (timeline.js)
  ctrl: null, // the AbortController of the current stream
  retries: 0,
  // quality tiers: the cameras the stream sends from their small tier
  // (lo=), and the pin: auto (by tile size), main or lo
  lo: '',
  tier: localStorage.getItem('camhub.tier') || 'auto',
};

// rewinding says whether the page shows the past.
function rewinding() { return !!(state.since || state.at || state.hold); }

function fmtAge(ms) {
  if (ms < 1000) return (ms / 1000).toFixed(1) + ' s';
  if (ms < 60000) return Math.round(ms / 1000) + ' s';
  if (ms < 3600000) return Math.round(ms / 60000) + ' min';
  return Math.round(ms / 3600000) + ' h';
}

// loggedOut sends the page to the login page if res says the login is
// over (logged out elsewhere, expired, or the user removed on the hub).
function loggedOut(res) {
  if (res.status !== 401) return false;
  location.href = 'login';
  return true;
}

// whoami shows who is logged in, and the logout button, on a server with
// logins.
async function whoami() {
  try {
    const res = await fetch('api/me', { cache: 'no-store' });
    if (loggedOut(res) || !res.ok) return;
    const me = await res.json();
    if (!me.login) return;
    const who = document.getElementById('who');
    who.textContent = me.user;
    who.hidden = false;
    document.getElementById('logout-form').hidden = false;
  } catch (e) { /* poll reports an unreachable server */ }
}

function say(text, bad) {
  notice.textContent = text || '';
  notice.classList.toggle('bad', !!bad);
}

// tileFor returns the tile of camera id, making it if it is new.
function tileFor(id) {
  let t = tiles.get(id);
  if (t) return t;
  const el = document.createElement('figure');
  el.className = 'tile';
  el.dataset.id = id;
  el.dataset.shown = '0';
  el.innerHTML = '<div class="pic"><img alt=""><div class="note"></div></div>' +
    '<figcaption><span class="name"></span><span class="fps"></span><span class="age"></span>' +
    '<a class="snap" download title="download a snapshot">JPG</a></figcaption>';
  t = {
    id, el,
    img: el.querySelector('img'),
    note: el.querySelector('.note'),
    fps: el.querySelector('.fps'),
    age: el.querySelector('.age'),
    cam: null, // its entry in api/cams
    shown: 0, // frames shown
    busy: false, // a frame is being decoded
    pending: null, // the newest frame that came meanwhile
    url: null, // the object URL shown
    rewound: false, // a rewound frame came since the rewind began
    at: null, // the capture time of the JPEG shown, on this page's clock (ms)
    ages: [], // the age of the JPEG shown, sampled every AGE_TICK_MS
  };
  el.querySelector('.name').textContent = id;
  t.img.alt = id;
  const snap = el.querySelector('.snap');
  snap.href = 'cams/' + encodeURIComponent(id) + '/snapshot.jpg?download=1';
  snap.addEventListener('click', (e) => e.stopPropagation());
  el.addEventListener('click', () => setSolo(state.solo === id ? null : id));
  tiles.set(id, t);
  // keep the tiles sorted by id
  let before = null;
  for (const other of grid.children) {
    if (other.dataset.id > id) { before = other; break; }
  }
  grid.insertBefore(el, before);
  empty.hidden = true;
  if (state.solo === id) el.classList.add('sel');
  label(t);
  return t;
}

// show puts a frame on a tile. Newest wins here too: while the browser
// decodes one frame, only the newest that arrives meanwhile is kept. at is
// its capture time on this page's clock (ms).
function show(t, blob, at) {
  if (t.busy) {
    t.pending = [blob, at];
    return;
  }
  t.busy = true;
  const url = URL.createObjectURL(blob);
  const done = (e) => {
    if (t.player) camhubMedia.drop(t.id); // an H.264 picture held until this one (mse.js)
    if (t.url) URL.revokeObjectURL(t.url);
    t.url = url;
    t.busy = false;
    t.shown++;
    t.el.dataset.shown = String(t.shown);
    if (e.type === 'load') t.at = at;
    if (t.shown === 1) label(t);
    if (t.pending) {
      const [next, nextAt] = t.pending;
      t.pending = null;
      show(t, next, nextAt);
    }
  };
  t.img.onload = done;
  t.img.onerror = done;
  t.img.src = url;
}

// The age of the JPEG each tile shows (now minus its capture time), as
// mse.js measures its H.264 tiles': sampled every AGE_TICK_MS while shown,
// the last MAX_AGES kept, for window.camhubAges.
const AGE_TICK_MS = 100;
const MAX_AGES = 20000;
setInterval(() => {
  if (document.hidden) return;
  const now = Date.now();
  for (const t of tiles.values()) {
    if (t.player || t.at === null) continue;
    if (t.ages.length >= MAX_AGES) t.ages.splice(0, MAX_AGES / 2);
    t.ages.push(Math.max(0, Math.round(now - t.at)));
  }
}, AGE_TICK_MS);

// camhubAges returns the ages of the picture camera id's tile showed, from
// the from-th sample on: its H.264 player's (mse.js), else its JPEGs'.
// For benchmarks, tests and the curious.
window.camhubAges = (id, from) => {
  const t = tiles.get(id);
  if (!t) return [];
  return t.player ? camhubMedia.ages(id, from) : t.ages.slice(from || 0);
};

// label writes a tile's caption and note from its api/cams entry.
function label(t) {
  const c = t.cam;
  let note = '';
  if (c) {
    // the site, if the camera's agent says where it is: "gate @ farm"
    const name = c.site ? c.id + ' @ ' + c.site : c.id;
    const nameEl = t.el.querySelector('.name');
    if (nameEl.textContent !== name) nameEl.textContent = name;
    if (!t.player) t.fps.textContent = c.rx_fps > 0 ? c.rx_fps.toFixed(1) + ' fps' : '';
    if (!rewinding() && !t.player) t.age.textContent = c.frame_age_ms == null ? '' : fmtAge(c.frame_age_ms);
    if (!rewinding()) {
      if (c.state === 'offline') {
        note = 'offline';
        if (c.last_seen) note += ' \u00b7 last seen ' + new Date(c.last_seen).toLocaleTimeString();
      } else if (c.state !== 'live') {
        note = c.state + (c.error ? ': ' + c.error : '');
      } else if (t.player && t.player.waiting) {
        note = 'waiting for a keyframe\u2026'; // mse.js
      } else if (!c.signal) {
        note = 'no signal';
      }
    }
  }
  if (!note && t.player && t.player.failed) note = 'H.264: ' + t.player.failed; // mse.js
  if (!note && t.shown === 0) note = 'waiting for a picture\u2026';
  if (!note && (state.since || state.at) && !state.hold && !t.rewound) note = 'rewinding\u2026';
  t.note.textContent = note;
  t.el.classList.toggle('down', note !== '');
  t.el.dataset.state = c ? c.state : '';
}

// tierOf says which tier a picture of camera t of width is from: api/media
// does not say (mse.js too), but a picture of the small tier's width is
// one.
function tierOf(t, width) {
  const lo = t.cam && t.cam.lo;
  return lo && width === lo.width && width < t.cam.width ? 'lo' : 'main';
}

// onFrame takes one frame of the stream.
function onFrame(h, blob) {
  const t = tileFor(h.id);
  t.el.dataset.tier = h.tier || tierOf(t, h.width);
  t.el.dataset.width = String(h.width);
  t.el.dataset.age = String(h.age_ms);
  t.el.dataset.seq = String(h.seq);
  // the capture time shown, ms since 1970 (timeline.js, tests)
  t.el.dataset.time = String(typeof h.time === 'number' ? Math.round(h.time) : Date.parse(h.time));
  if (rewinding()) {
    t.age.textContent = '\u2212' + fmtAge(h.age_ms);
    if (!t.rewound) {
      t.rewound = true;
      label(t);
    }
  }
  // its capture time on this page's clock: the age the server gave, or
  // (api/media) the page measured, taken from the arrival
  show(t, blob, Date.now() - h.age_ms);
}

// read parses the stream: a line of JSON, then that many bytes of JPEG, and
// so on.
async function read(reader) {
  const dec = new TextDecoder();
  let buf = new Uint8Array(1 << 16);
  let start = 0;
  let end = 0;
  let head = null;
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
      if (head === null) {
        const nl = buf.subarray(start, end).indexOf(10);
        if (nl < 0) break;
        head = JSON.parse(dec.decode(buf.subarray(start, start + nl)));
        start += nl + 1;
      }
      if (end - start < head.len) break;
      onFrame(head, new Blob([buf.subarray(start, start + head.len)], { type: 'image/jpeg' }));
      start += head.len;
      head = null;
    }
  }
}

// loCams lists the cameras to read at their small tier: JPEG cameras with
// a JPEG small tier, and H.264 cameras with an H.264 one where the page
// plays H.264 itself (mse.js), whose tile shows at most half the camera's
// size in device pixels (or all of them, pinned to lo). Rewinds read the
// main tier.
function loCams() {
  if (rewinding() || state.tier === 'main') return '';
  const dpr = window.devicePixelRatio || 1;
  const h264 = camhubMedia.mode() !== 'jpeg';
  const ids = [];
  for (const t of tiles.values()) {
    const c = t.cam;
    if (!c || !c.lo) continue;
    const jpegs = c.lo.codec === 'jpeg' && (!c.codec || c.codec === 'jpeg');
    if (!jpegs && !(h264 && c.lo.codec === 'h264' && c.codec === 'h264')) continue;
    if (state.solo && state.solo !== t.id) continue;
    const pic = t.img.parentElement;
    const w = pic.clientWidth * dpr;
    const h = pic.clientHeight * dpr;
    if (state.tier === 'lo' || (c.width > 0 && 2 * w <= c.width && 2 * h <= c.height)) ids.push(t.id);
  }
  return ids.sort().join(',');
}

// retier reopens the stream when the tiers it should read changed: the
// tiles keep their pictures until the new stream's first frames, which
// come at once (the server's newest frame of each camera).
function retier() {
  if (loCams() !== state.lo) restart();
}

function streamURL() {
  const p = new URLSearchParams();
  if (state.solo) p.set('cams', state.solo);
  if (state.since) p.set('since', state.since + 's');
  state.lo = loCams();
  if (state.lo) p.set('lo', state.lo);
  // a rewind reopened (the tab shown again, a retry) goes on from where it is
  if (state.at) p.set('at', String(Math.round(window.camhubTimeline ? camhubTimeline.position() : state.at)));
  if (state.at && state.speed !== 1) p.set('speed', String(state.speed));
  const q = p.toString();
  // where the browser plays H.264 itself: api/media (mse.js)
  const path = !state.since && camhubMedia.mode() !== 'jpeg' ? 'api/media' : 'api/stream';
  return path + (q ? '?' + q : '');
}

// restart (re)opens the stream for what is to be shown.
function restart() {
  if (state.ctrl) state.ctrl.abort();
  state.ctrl = null;
  if (state.hold) return; // the timeline shows pictures of its own: keep what is shown (timeline.js)
  camhubMedia.reset(); // mse.js
  camhubMedia.floor(state.at); // H.264 pictures before it are decoded, not shown
  camhubMedia.speed(state.at ? state.speed : 1);
  if (document.hidden) return; // reopened when the page is shown again
  const ctrl = new AbortController();
  state.ctrl = ctrl;
  run(ctrl);
}

async function run(ctrl) {
  try {
    const res = await fetch(streamURL(), { signal: ctrl.signal, cache: 'no-store' });
    if (loggedOut(res)) return;
    if (!res.ok) {
      let msg = res.status + ' ' + res.statusText;
      try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
      if (state.since || state.at) {
        // nothing to rewind, or too many rewinds: back to live
        say(msg, true);
        setSince(0, true);
        return;
      }
      throw new Error(msg);
    }
    state.retries = 0;
    if (res.headers.get('Content-Type') === 'application/x-camhub-media') {
      await camhubMedia.read(res.body.getReader()); // mse.js
    } else {
      await read(res.body.getReader());
    }
  } catch (e) {
    if (ctrl.signal.aborted) return;
    say('connection lost: ' + e.message + '; retrying', true);
  }
  if (ctrl.signal.aborted || state.ctrl !== ctrl) return;
  const delay = Math.min(500 * 2 ** state.retries++, 10000);
  setTimeout(() => { if (state.ctrl === ctrl) restart(); }, delay);
}

// poll reads the camera list once a second.
async function poll() {
  try {
    const res = await fetch('api/cams', { cache: 'no-store' });
    if (loggedOut(res)) return;
    if (res.ok) {
      for (const c of await res.json()) {
        const t = tileFor(c.id);
        t.cam = c;
        label(t);
      }
      retier();
      if (notice.classList.contains('bad') && state.retries === 0) say('');
    }
  } catch (e) {
    say('cannot reach the server; retrying', true);
  }
  setTimeout(poll, 1000);
}

// setSolo shows camera id alone (null: all), at once: the address's
// hashchange comes later, and finds it done.
function setSolo(id) {
  location.hash = id ? 'cam=' + encodeURIComponent(id) : '';
  applyHash();
}

// applyHash shows the camera named in the address (#cam=ID) alone, or all.
function applyHash() {
  const m = /^#cam=(.+)$/.exec(location.hash);
  const solo = m ? decodeURIComponent(m[1]) : null;
  if (solo === state.solo) return;
  state.solo = solo;
  grid.classList.toggle('solo', solo !== null);
  back.hidden = solo === null;
  for (const t of tiles.values()) t.el.classList.toggle('sel', t.id === solo);
  if (solo) tileFor(solo);
  if (window.camhubTimeline) camhubTimeline.camerasChanged(); // timeline.js
  restart();
}

function setSince(seconds, quiet) {
  state.since = seconds;
  state.at = 0;
  state.hold = false;
  if (window.camhubTimeline) camhubTimeline.wentLive(); // timeline.js
  for (const b of rewind.querySelectorAll('button')) {
    b.classList.toggle('on', Number(b.dataset.since) === seconds);
  }
  grid.classList.toggle('rewound', seconds > 0);
  if (!quiet) say(seconds ? 'rewound ' + seconds + ' s' : '');
  for (const t of tiles.values()) {
    t.rewound = false;
    t.age.textContent = '';
    label(t);
  }
  restart();
}

rewind.addEventListener('click', (e) => {
  const b = e.target.closest('button');
  if (b) setSince(Number(b.dataset.since));
});
back.addEventListener('click', () => setSolo(null));
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && state.solo) setSolo(null);
});
window.addEventListener('hashchange', applyHash);
// A hidden tab receives nothing; it catches up with the newest frames when
// it is shown again.
document.addEventListener('visibilitychange', restart);

// The tier pin: a small button cycling auto, main, lo.
const tierBtn = document.createElement('button');
tierBtn.type = 'button';
tierBtn.id = 'tier';
tierBtn.title = 'quality tier: auto reads a camera\'s small tier for small tiles';
const showTier = () => { tierBtn.textContent = 'tier: ' + state.tier; };
tierBtn.addEventListener('click', () => {
  state.tier = { auto: 'main', main: 'lo', lo: 'auto' }[state.tier] || 'auto';
  localStorage.setItem('camhub.tier', state.tier);
  showTier();
  retier();
});
showTier();
rewind.after(tierBtn);
let resized = null;
window.addEventListener('resize', () => {
  clearTimeout(resized);
  resized = setTimeout(retier, 300);
});

state.solo = undefined; // so that applyHash applies whatever the address says
applyHash();
poll();
whoami();
