// camhub's events panel: the motion events of the cameras this login sees
// (api/events), newest first, each with its thumbnail, camera, start,
// duration and score; a click plays its clip: an H.264 camera's as MP4 in
// a <video>, a JPEG camera's as MJPEG in an <img>. While the panel is open
// the list is polled every few seconds (one request, at most 50 events);
// while it is closed, now and then, to count what is new.
'use strict';
(() => {
  const OPEN_POLL_MS = 5000;
  const CLOSED_POLL_MS = 30000;
  const LIMIT = 50;

  const btn = document.getElementById('events-btn');
  const panel = document.getElementById('events');
  if (!btn || !panel) return;
  const list = panel.querySelector('.ev-list');
  const player = panel.querySelector('.ev-player');
  const status = panel.querySelector('.ev-status');
  const badge = btn.querySelector('.ev-new');

  const items = new Map(); // event id -> {el, ev, thumbTries}
  let timer = null;
  let busy = false;
  let seen = ''; // the id of the newest event shown while the panel was open
  let playing = null; // {id, el}

  function fmtStart(iso) {
    const d = new Date(iso);
    const today = new Date().toDateString() === d.toDateString();
    const opts = today ? { hour: '2-digit', minute: '2-digit', second: '2-digit' }
      : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
    return d.toLocaleString([], opts);
  }

  function fmtDuration(ev) {
    if (!ev.end) return 'ongoing';
    const s = Math.max(0, (new Date(ev.end) - new Date(ev.start)) / 1000);
    if (s < 60) return Math.round(s) + ' s';
    return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  }

  function say(text, bad) {
    status.textContent = text || '';
    status.classList.toggle('bad', !!bad);
  }

  // itemFor returns the list entry of event ev, made if it is new.
  function itemFor(ev) {
    let it = items.get(ev.id);
    if (it) return it;
    const el = document.createElement('li');
    el.className = 'ev';
    el.dataset.id = ev.id;
    el.tabIndex = 0;
    el.innerHTML = '<img class="ev-thumb" alt="" width="160" height="120">' +
      '<div class="ev-text"><span class="ev-cam"></span><span class="ev-start"></span>' +
      '<span class="ev-meta"><span class="ev-dur"></span> · <span class="ev-score"></span></span></div>';
    it = { el, ev, thumbTries: 0 };
    const img = el.querySelector('img');
    img.addEventListener('error', () => { img.removeAttribute('src'); img.classList.add('none'); });
    img.addEventListener('load', () => img.classList.remove('none'));
    el.addEventListener('click', () => play(it.ev));
    el.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); play(it.ev); } });
    items.set(ev.id, it);
    return it;
  }

  // update fills in an entry; a thumbnail that was not there yet (an event
  // that has just started) is asked for again, a few times.
  function update(it, ev) {
    it.ev = ev;
    const el = it.el;
    el.querySelector('.ev-cam').textContent = ev.camera;
    el.querySelector('.ev-start').textContent = fmtStart(ev.start);
    el.querySelector('.ev-start').title = ev.start;
    el.querySelector('.ev-dur').textContent = fmtDuration(ev);
    el.querySelector('.ev-score').textContent = (ev.score * 100).toFixed(1) + '% moved';
    el.classList.toggle('open', !ev.end);
    const img = el.querySelector('img');
    if (!img.getAttribute('src') && it.thumbTries < 3) {
      it.thumbTries++;
      img.src = ev.thumb_url + (it.thumbTries > 1 ? '?try=' + it.thumbTries : '');
    }
  }

  function render(evs) {
    const keep = new Set();
    let prev = null;
    for (const ev of evs) {
      const it = itemFor(ev);
      update(it, ev);
      keep.add(ev.id);
      // newest first, in the server's order
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== it.el) list.insertBefore(it.el, want);
      prev = it.el;
    }
    for (const [id, it] of items) {
      if (!keep.has(id) && !(playing && playing.id === id)) {
        it.el.remove();
        items.delete(id);
      }
    }
    panel.dataset.count = String(evs.length);
    if (!evs.length) say('No events in the last 24 hours.');
    else say('');
  }

  function isOpen() { return !panel.hidden; }

  function newCount(evs) {
    if (!seen) return 0;
    const i = evs.findIndex((e) => e.id === seen);
    return i < 0 ? evs.length : i;
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const res = await fetch('api/events?limit=' + LIMIT, { cache: 'no-store' });
      if (res.status === 401) { location.href = 'login'; return; }
      const body = await res.json();
      if (!res.ok) {
        say(body.error || ('events: HTTP ' + res.status), true);
        return;
      }
      if (isOpen()) {
        render(body);
        seen = body.length ? body[0].id : seen;
        badge.textContent = '';
      } else {
        const n = newCount(body);
        badge.textContent = n ? String(n) : '';
        if (!seen && body.length) seen = body[0].id;
      }
    } catch (e) {
      say('events: the server did not answer', true);
    } finally {
      busy = false;
    }
  }

  function schedule() {
    clearTimeout(timer);
    if (document.hidden) return; // visibilitychange starts it again
    timer = setTimeout(async () => { await refresh(); schedule(); }, isOpen() ? OPEN_POLL_MS : CLOSED_POLL_MS);
  }

  function stop() {
    if (!playing) return;
    const m = playing.media;
    if (m.tagName === 'VIDEO') {
      m.pause();
      m.removeAttribute('src');
      m.load();
    } else {
      m.src = 'data:,'; // ends the MJPEG stream
    }
    playing.item?.el.classList.remove('playing');
    player.replaceChildren();
    player.hidden = true;
    playing = null;
  }

  function play(ev) {
    stop();
    const video = ev.clip_type.startsWith('video/');
    const m = document.createElement(video ? 'video' : 'img');
    m.className = 'ev-media';
    if (video) {
      m.controls = true;
      m.muted = true;
      m.playsInline = true;
      m.autoplay = true;
    } else {
      m.alt = 'clip of ' + ev.camera;
    }
    m.src = ev.clip_url;
    const cap = document.createElement('div');
    cap.className = 'ev-caption';
    const title = document.createElement('span');
    title.textContent = ev.camera + ' · ' + fmtStart(ev.start) + ' · ' + fmtDuration(ev);
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'ev-close';
    close.textContent = 'close';
    close.addEventListener('click', stop);
    cap.append(title, close);
    player.replaceChildren(m, cap);
    player.hidden = false;
    player.dataset.id = ev.id;
    const item = items.get(ev.id);
    item?.el.classList.add('playing');
    playing = { id: ev.id, media: m, item };
    player.scrollIntoView({ block: 'nearest' });
  }

  function setOpen(open) {
    panel.hidden = !open;
    btn.classList.toggle('on', open);
    btn.setAttribute('aria-expanded', String(open));
    if (!open) stop();
    refresh();
    schedule();
  }

  btn.addEventListener('click', () => setOpen(panel.hidden));
  panel.querySelector('.ev-hide').addEventListener('click', () => setOpen(false));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && isOpen()) {
      if (playing) stop(); else setOpen(false);
    }
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
    schedule();
  });
  refresh();
  schedule();
})();
