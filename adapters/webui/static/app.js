// chatd web page: a plain-JavaScript client of PROTOCOL.md.
//
// No framework and no build step: the file is served as it is written. It
// never puts text into the page as HTML (no innerHTML anywhere; the page's
// Content-Security-Policy requires Trusted Types, so the browser would
// refuse it anyway): every user-supplied string goes in through
// textContent.
//
// Model: one Map of conversations, each holding the messages loaded so far
// by seq; a Map of unacknowledged sends by client id (kept in
// sessionStorage, so a reload does not lose them); one WebSocket that is
// re-opened with exponential back-off. After every (re)connect the page
// refreshes the conversation list, asks `sync` for every known conversation
// after the last seq it has seen, and resends every unacked send with its
// original id: the server answers a repeated id with the first ack, so a
// send whose ack was lost on the way is never stored twice.
//
// Groups (PROTOCOL.md v1.3) are conversations with a title and members
// instead of a peer; a send to one names the conversation, not a user.
// Edits and recalls arrive as `update` frames numbered by the
// conversation's `rev`; a reconnect asks `sync` for the changes after the
// highest rev seen, so edits made while the page was away still show.
'use strict';

(() => {
  const PAGE_SIZE = 30;
  const MAX_BODY_CHARS = 4096; // PROTOCOL.md: a body of 1-4096 characters
  const USER_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const PING_EVERY_MS = 20000;
  // A connection silent for this long is taken for dead: a browser may not
  // notice a half-open TCP connection for minutes on its own.
  const DEAD_AFTER_MS = 50000;
  const AUTH_KEY = 'chatd.auth';

  const $ = (id) => document.getElementById(id);
  const wideScreen = window.matchMedia('(min-width: 721px)');

  // el builds an element; text goes in as textContent, never as markup.
  function el(tag, opts = {}, ...children) {
    const node = document.createElement(tag);
    if (opts.className) node.className = opts.className;
    if (opts.text !== undefined) node.textContent = opts.text;
    for (const [k, v] of Object.entries(opts.attrs || {})) {
      if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c) node.append(c);
    return node;
  }

  const state = {
    token: null,
    me: null,
    expiresAt: null,
    expiryTimer: null,
    convs: new Map(), // conversation id -> conv (see newConv)
    current: null, // open conversation id
    draftPeer: null, // peer of a conversation that has no message yet
    pending: new Map(), // client id -> {id, to or conversation, body, createdAt, status, error, retriable}
    changing: new Map(), // client id of an edit or recall -> {conversation, seq}
    editing: null, // {conversation, seq} of the own message the composer edits
    lastSendId: null, // the last send written to the socket, for too_large
    ws: null,
    wsOpen: false,
    attempt: 0,
    reconnectTimer: null,
    lastFrameAt: 0,
    pingTimer: null,
    signedIn: false,
    nodes: new Map(), // message list item per key, for the open conversation
    listTimer: null,
    presence: new Map(), // user id -> {online, lastSeen}, from presence frames
    typingTimer: null, // clears the pane's "typing…"
    typingSentAt: 0, // when this page last said it was typing, for the 2 s throttle
  };

  function newConv(id, peer) {
    return {
      id,
      peer,
      kind: peer ? 'direct' : 'group',
      title: '', // a group's
      owner: '',
      members: [], // a group's, in join order
      rev: 0, // highest rev of an edit or recall seen
      lastSeq: 0, // highest seq known to exist
      lastMessage: null,
      myRead: 0, // my read marker
      readSent: 0, // highest upTo this page has sent in a read frame
      unread: 0,
      countedSeq: 0, // highest seq already reflected in unread
      peerDelivered: 0, // the peer's markers: the marks on my messages
      peerRead: 0,
      msgs: new Map(), // seq -> message, only meaningful once loaded
      loaded: false,
      loading: false,
      oldest: 0, // lowest seq loaded
      more: false, // older pages exist
    };
  }

  // ---------- REST ----------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, opts = {}) {
    const headers = { Accept: 'application/json' };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (state.token && !opts.anonymous) headers.Authorization = 'Bearer ' + state.token;
    let res;
    try {
      res = await fetch(path, {
        method: opts.method || 'GET',
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'unavailable', 'The server cannot be reached.');
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const err = new ApiError(res.status, (data && data.code) || 'internal', (data && data.message) || res.statusText);
      if (res.status === 401 && state.signedIn && !opts.anonymous) {
        signOut('Your session has ended. Sign in again.');
      }
      throw err;
    }
    return data;
  }

  // ---------- sign in ----------

  // The sign-in mode is found by trying: the dev token endpoint answers
  // 404 in jwt mode. Probing it ahead with a dummy request would log an
  // error in the console of every visitor, so the page starts in the mode
  // it last saw and switches when the server says otherwise.
  const MODE_KEY = 'chatd.authMode';
  let authMode = sessionStorage.getItem(MODE_KEY) === 'jwt' ? 'jwt' : 'dev';

  function setMode(mode) {
    authMode = mode;
    sessionStorage.setItem(MODE_KEY, mode);
    const dev = mode === 'dev';
    $('signin-user-field').hidden = !dev;
    $('signin-token-field').hidden = dev;
    $('signin-mode').textContent = dev
      ? 'Pick your user id. (Development servers issue a token for any id.)'
      : 'This server uses tokens from your identity provider.';
    $('signin-switch').textContent = dev ? 'I have a token' : 'Use a user id instead';
  }

  function showSigninError(text) {
    const p = $('signin-error');
    p.textContent = text;
    p.hidden = !text;
  }

  async function onSignin(ev) {
    ev.preventDefault();
    showSigninError('');
    const button = $('signin-submit');
    button.disabled = true;
    try {
      if (authMode === 'dev') {
        const userId = $('signin-user').value.trim();
        if (!USER_ID_RE.test(userId)) {
          showSigninError('A user id is 1–64 letters, digits, “_”, “.” or “-”.');
          $('signin-user').focus();
          return;
        }
        try {
          const t = await api('/api/dev/token', { method: 'POST', body: { userId }, anonymous: true });
          startSession({ token: t.token, userId: t.userId, expiresAt: t.expiresAt });
        } catch (e) {
          if (e.status === 404) {
            setMode('jwt');
            showSigninError('This server does not issue tokens: paste one instead.');
            $('signin-token').focus();
            return;
          }
          showSigninError(errorText(e.code, e.message));
        }
      } else {
        const token = $('signin-token').value.trim();
        const claims = jwtClaims(token);
        if (!claims || typeof claims.sub !== 'string') {
          showSigninError('That does not look like a JWT with a user id (sub).');
          $('signin-token').focus();
          return;
        }
        // The server is the judge of a token: try it before going on.
        state.token = token;
        try {
          await api('/api/conversations', { anonymous: false });
        } catch (e) {
          state.token = null;
          showSigninError(e.status === 401 ? 'The server refused this token.' : errorText(e.code, e.message));
          return;
        }
        const exp = typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : null;
        startSession({ token, userId: claims.sub, expiresAt: exp });
      }
    } finally {
      button.disabled = false;
    }
  }

  // jwtClaims decodes a JWT's payload for display only; the server verifies it.
  function jwtClaims(token) {
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    try {
      const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
      const bytes = Uint8Array.from(atob(b64 + '==='.slice((b64.length + 3) % 4)), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      return null;
    }
  }

  function startSession(auth) {
    state.token = auth.token;
    state.me = auth.userId;
    state.expiresAt = auth.expiresAt ? new Date(auth.expiresAt) : null;
    sessionStorage.setItem(AUTH_KEY, JSON.stringify(auth));
    state.signedIn = true;
    loadPending();
    $('signin').hidden = true;
    $('app').hidden = false;
    $('me-name').textContent = state.me;
    scheduleExpiry();
    refreshConversations().catch(() => {});
    connect();
    route();
  }

  // A dev server hands out tokens for the asking, so the page renews its
  // token a minute before exp (halfway, for a short-lived one) and gives it
  // to the live session with `auth` (PROTOCOL.md v1.2), which the server
  // would otherwise close with 4001. A pasted token cannot be renewed here:
  // its session ends at its exp.
  const RENEW_BEFORE_MS = 60 * 1000;

  function scheduleExpiry() {
    clearTimeout(state.expiryTimer);
    if (!state.expiresAt) return;
    const left = state.expiresAt.getTime() - Date.now();
    const renewable = authMode === 'dev' && left > 1000;
    const due = renewable ? left - Math.min(RENEW_BEFORE_MS, left / 2) : left;
    // setTimeout takes at most 2^31-1 ms.
    if (due >= 2 ** 31) return;
    state.expiryTimer = setTimeout(
      renewable ? renewToken : () => signOut('Your session has expired. Sign in again.'),
      Math.max(0, due),
    );
  }

  async function renewToken() {
    try {
      const t = await api('/api/dev/token', { method: 'POST', body: { userId: state.me }, anonymous: true });
      state.token = t.token;
      state.expiresAt = new Date(t.expiresAt);
      sessionStorage.setItem(AUTH_KEY, JSON.stringify({ token: t.token, userId: t.userId, expiresAt: t.expiresAt }));
      // A session that is down now takes the new token when it reconnects.
      sendFrame({ type: 'auth', token: t.token });
    } catch (e) {
      // The old token lives on: scheduleExpiry tries again halfway to its
      // exp, and so on, until a second is left and the session ends.
    }
    scheduleExpiry();
  }

  function signOut(message) {
    state.signedIn = false;
    clearTimeout(state.expiryTimer);
    clearTimeout(state.reconnectTimer);
    clearInterval(state.pingTimer);
    if (state.ws) {
      const ws = state.ws;
      state.ws = null;
      ws.close(1000, 'signed out');
    }
    sessionStorage.removeItem(AUTH_KEY);
    if (state.me) sessionStorage.removeItem(pendingKey());
    Object.assign(state, {
      token: null, me: null, expiresAt: null, current: null, draftPeer: null, wsOpen: false, attempt: 0,
    });
    state.convs.clear();
    state.pending.clear();
    state.nodes.clear();
    $('conv-list').replaceChildren();
    $('message-list').replaceChildren();
    $('app').hidden = true;
    history.replaceState(null, '', location.pathname);
    showSigninError(message || '');
    showSignin();
  }

  // ---------- WebSocket ----------

  function connect() {
    if (!state.signedIn || state.ws) return;
    clearTimeout(state.reconnectTimer);
    setConn('connecting', 'Connecting…');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(scheme + '//' + location.host + '/ws?token=' + encodeURIComponent(state.token));
    state.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (state.ws !== ws) return;
      opened = true;
      state.wsOpen = true;
      state.lastFrameAt = Date.now();
      // The back-off is reset by the first frame the server answers, not
      // by the open itself: a server that accepts and drops at once must
      // still see the delays grow.
      sendFrame({ type: 'ping' });
      clearInterval(state.pingTimer);
      state.pingTimer = setInterval(keepAlive, PING_EVERY_MS);
      setConn('open', 'Online');
      for (const p of state.pending.values()) if (p.status === 'sending') writeSend(p);
      catchUp();
      askPresence();
    };
    ws.onmessage = (ev) => {
      if (state.ws !== ws) return;
      state.lastFrameAt = Date.now();
      state.attempt = 0;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (state.ws !== ws) return;
      dropSocket();
      if (ev.code === 1009) failLastSend('too_large', 'The message was larger than the server accepts.');
      // 4001 is the server ending the session at its token's exp. A page
      // that renewed meanwhile, but whose `auth` frame was lost on a dead
      // link (the browser test cuts bob's network around a renewal), holds
      // a token that still lives: it reconnects with it instead.
      if (ev.code === 4001 && !(state.expiresAt && state.expiresAt.getTime() - Date.now() > 1000)) {
        signOut('Your session has expired. Sign in again.');
        return;
      }
      if (!opened) checkToken();
      scheduleReconnect();
    };
  }

  function dropSocket() {
    const ws = state.ws;
    state.ws = null;
    state.wsOpen = false;
    clearInterval(state.pingTimer);
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close();
      } catch (e) {
        /* already closed */
      }
    }
  }

  // A failed upgrade hides its HTTP status from scripts: ask the REST API
  // whether the token is still good (api() signs out on a 401).
  function checkToken() {
    api('/api/conversations').catch(() => {});
  }

  function scheduleReconnect() {
    if (!state.signedIn) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
    // Jitter keeps many clients of a restarted node from coming back at once.
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    state.attempt++;
    setConn('waiting', 'Reconnecting in ' + Math.max(1, Math.round(delay / 1000)) + ' s');
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function keepAlive() {
    if (!state.wsOpen) return;
    if (Date.now() - state.lastFrameAt > DEAD_AFTER_MS) {
      dropSocket();
      scheduleReconnect();
      return;
    }
    sendFrame({ type: 'ping' });
  }

  function setConn(s, text) {
    const p = $('conn-status');
    p.dataset.state = s;
    p.textContent = text;
  }

  function sendFrame(frame) {
    if (!state.wsOpen || !state.ws) return false;
    state.ws.send(JSON.stringify(frame));
    return true;
  }

  function writeSend(p) {
    const frame = p.conversation
      ? { type: 'send', id: p.id, conversation: p.conversation, body: p.body }
      : { type: 'send', id: p.id, to: p.to, body: p.body };
    if (sendFrame(frame)) state.lastSendId = p.id;
  }

  // catchUp runs after every (re)connect: the session is registered by
  // then, so whatever was stored before it is in the list or in a sync
  // answer, and whatever comes after arrives live.
  async function catchUp() {
    try {
      await refreshConversations();
    } catch (e) {
      /* the syncs below still run for the conversations known */
    }
    for (const c of state.convs.values()) {
      // A loaded conversation continues from what it holds; another needs
      // nothing older than the list's last seq.
      const frame = { type: 'sync', conversation: c.id, after: c.loaded ? topSeq(c) : c.lastSeq, limit: 100 };
      // Only the messages held can be out of date.
      if (c.loaded) frame.changesAfter = c.rev;
      sendFrame(frame);
    }
    markReadIfViewing();
  }

  function topSeq(c) {
    let top = c.oldest ? c.oldest - 1 : 0;
    while (c.msgs.has(top + 1)) top++;
    return top;
  }

  function onFrame(f) {
    switch (f.type) {
      case 'ack':
        return onAck(f);
      case 'message':
        return onMessage(f.message, true);
      case 'messages':
        return onMessages(f);
      case 'receipt':
        return onReceipt(f);
      case 'error':
        return onError(f);
      case 'typing':
        return onTyping(f);
      case 'presence':
        return onPresence(f);
      case 'changed':
        return onChanged(f);
      case 'update':
        return onUpdate(f);
      case 'member':
        return onMember(f);
      case 'authed':
        return undefined; // the renewed token's exp is known from the token endpoint
      default:
        return undefined;
    }
  }

  // The server relays at most one typing frame per 2 s, so "typing…" stays
  // a little longer than that and goes when the next one would be due.
  const TYPING_SHOWN_MS = 3000;

  function onTyping(f) {
    const c = state.convs.get(f.conversation);
    if (!c || f.conversation !== state.current) return;
    const sub = $('pane-sub');
    sub.dataset.typing = 'true';
    sub.dataset.conv = f.conversation;
    sub.textContent = c.kind === 'group' ? f.user + ' is typing…' : 'typing…';
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => {
      sub.dataset.typing = 'false';
      renderPaneHead();
    }, TYPING_SHOWN_MS);
  }

  function onPresence(f) {
    state.presence.set(f.user, { online: !!f.online, lastSeen: f.lastSeen || null });
    for (const dot of document.querySelectorAll('#conv-list [data-peer="' + CSS.escape(f.user) + '"] .presence')) {
      dot.dataset.online = String(!!f.online);
    }
    if (currentPeer() === f.user) {
      // An offline peer types no more.
      if (!f.online) $('pane-sub').dataset.typing = 'false';
      renderPaneHead();
    }
  }

  function onlineOf(peer) {
    const p = state.presence.get(peer);
    return p ? String(p.online) : 'unknown';
  }

  // askPresence asks for the presence of the peers listed (the protocol
  // takes up to 200 a frame); changes after that are pushed unasked.
  function askPresence() {
    const peers = [...new Set([...state.convs.values()].map((c) => c.peer).filter(Boolean))];
    for (let i = 0; i < peers.length; i += 200) sendFrame({ type: 'presence', users: peers.slice(i, i + 200) });
  }

  // sayTyping tells the peer this page types, at most once per 2 s, as the
  // server would drop the rest anyway.
  function sayTyping() {
    const c = state.current && state.convs.get(state.current);
    if (!c || state.draftPeer || Date.now() - state.typingSentAt < 2000) return;
    if (sendFrame({ type: 'typing', conversation: c.id })) state.typingSentAt = Date.now();
  }

  function onAck(a) {
    const p = state.pending.get(a.id);
    if (!p) return;
    state.pending.delete(a.id);
    savePending();
    hidePaneError();
    const c = ensureConv(a.conversation, p.to);
    addMessage(c, {
      messageId: a.messageId, conversation: a.conversation, seq: a.seq, from: state.me, to: p.to, body: p.body, sentAt: a.sentAt,
    });
    if (c.kind === 'group') scheduleReceipts(c);
    if (p.to && state.draftPeer === p.to) {
      location.replace('#/c/' + encodeURIComponent(a.conversation));
    }
    renderAll();
  }

  function onMessage(m, live) {
    // A group's message has no `to`.
    const peer = m.to === undefined ? null : m.from === state.me ? m.to : m.from;
    const known = state.convs.has(m.conversation);
    const c = ensureConv(m.conversation, peer);
    if (!known && c.kind === 'group') scheduleListRefresh(); // for its title and members
    const before = c.lastSeq;
    const added = addMessage(c, m);
    if (!added) return;
    if (live && c.loaded && m.seq > before + 1) {
      // A gap: fill it from the store before going on.
      sendFrame({ type: 'sync', conversation: c.id, after: before, limit: 100 });
    }
    if (m.from !== state.me) {
      if (peer && state.draftPeer === peer) location.replace('#/c/' + encodeURIComponent(c.id));
      const where = c.kind === 'group' ? ' in ' + (c.title || 'a group') : '';
      if (!isViewing(c) || document.visibilityState !== 'visible') {
        announce('New message from ' + m.from + where + ': ' + m.body);
      } else {
        announce(m.from + ': ' + m.body);
      }
    }
    // Members who write have likely read: their markers show on my messages.
    if (c.kind === 'group') scheduleReceipts(c);
    renderAll();
    markReadIfViewing();
  }

  function onMessages(f) {
    const c = state.convs.get(f.conversation);
    if (!c) return;
    let last = 0;
    for (const m of f.messages || []) {
      addMessage(c, m);
      last = Math.max(last, m.seq);
    }
    for (const u of f.updates || []) applyUpdate(c, u);
    if (f.more && last) sendFrame({ type: 'sync', conversation: c.id, after: last, limit: 100 });
    renderAll();
    markReadIfViewing();
  }

  function onReceipt(r) {
    const c = state.convs.get(r.conversation);
    if (!c) {
      scheduleListRefresh();
      return;
    }
    if (r.user === state.me) {
      if (r.readUpTo) {
        c.myRead = Math.max(c.myRead, r.readUpTo);
        // Read on another device: the list knows the exact count.
        if (c.myRead >= c.lastSeq) c.unread = 0;
        else scheduleListRefresh();
      }
    } else if (c.kind === 'group') {
      scheduleReceipts(c);
    } else {
      if (r.deliveredUpTo) c.peerDelivered = Math.max(c.peerDelivered, r.deliveredUpTo);
      if (r.readUpTo) {
        c.peerRead = Math.max(c.peerRead, r.readUpTo);
        c.peerDelivered = Math.max(c.peerDelivered, r.readUpTo);
      }
    }
    renderAll();
  }

  function onError(e) {
    if (e.code === 'unauthorized') {
      signOut('Your session has ended. Sign in again.');
      return;
    }
    if (e.id && state.changing.has(e.id)) {
      state.changing.delete(e.id);
      showPaneError(e.code === 'forbidden' ? 'This message can no longer be changed.' : errorText(e.code, e.message));
      return;
    }
    if (e.code === 'too_large') {
      failLastSend('too_large', e.message);
      return;
    }
    if (e.id && state.pending.has(e.id)) {
      const p = state.pending.get(e.id);
      p.status = 'failed';
      p.code = e.code;
      p.retriable = e.code === 'rate_limited' || e.code === 'unavailable' || e.code === 'internal';
      savePending();
      showPaneError(errorText(e.code, e.message));
      renderAll();
      return;
    }
    // Errors of read or sync frames: nothing the person can do but know.
    if (e.code === 'unavailable' || e.code === 'rate_limited') showPaneError(errorText(e.code, e.message));
  }

  // ---------- edits and recalls ----------

  // onChanged applies this page's own edit or recall: the update frames
  // go to every other session, not to the one that asked.
  function onChanged(f) {
    const asked = state.changing.get(f.id);
    state.changing.delete(f.id);
    const c = state.convs.get(f.conversation);
    if (!asked || !c) return;
    const now = new Date().toISOString();
    applyUpdate(c, asked.body === undefined
      ? { seq: f.seq, rev: f.rev, recalled: true, recalledAt: now }
      : { seq: f.seq, rev: f.rev, body: asked.body, editedAt: now });
    renderAll();
  }

  function onUpdate(f) {
    const c = state.convs.get(f.conversation);
    if (!c) return;
    applyUpdate(c, f);
    renderAll();
  }

  // applyUpdate puts a message's current state, from an update frame or a
  // sync answer's updates, on the copy this page holds of it.
  function applyUpdate(c, u) {
    if (u.rev) c.rev = Math.max(c.rev, u.rev);
    for (const m of [c.msgs.get(u.seq), c.lastMessage && c.lastMessage.seq === u.seq ? c.lastMessage : null]) {
      if (!m) continue;
      if (u.recalled) {
        m.recalled = true;
        m.recalledAt = u.recalledAt;
        delete m.body;
      } else if (u.body !== undefined) {
        m.body = u.body;
        m.editedAt = u.editedAt;
      }
    }
    if (state.editing && state.editing.conversation === c.id && state.editing.seq === u.seq && u.recalled) stopEditing();
  }

  function startEditing(c, m) {
    state.editing = { conversation: c.id, seq: m.seq };
    const input = $('composer-input');
    input.value = m.body;
    $('composer-label').textContent = 'Edit your message';
    $('composer-send').textContent = 'Save';
    $('composer-cancel').hidden = false;
    autoGrow();
    updateCount();
    input.focus();
  }

  function stopEditing() {
    state.editing = null;
    $('composer-input').value = '';
    $('composer-send').textContent = 'Send';
    $('composer-cancel').hidden = true;
    autoGrow();
    updateCount();
    renderPaneHead();
  }

  function change(frame) {
    const id = newClientId();
    if (sendFrame({ id, ...frame })) state.changing.set(id, { conversation: frame.conversation, seq: frame.seq, body: frame.body });
    else showPaneError(errorText('unavailable', ''));
  }

  // ---------- groups ----------

  function onMember(f) {
    if (f.user === state.me && f.change === 'removed') {
      state.convs.delete(f.conversation);
      if (state.current === f.conversation) location.hash = '';
      announce(f.by === state.me ? 'You left a group.' : 'You were removed from a group by ' + f.by + '.');
      renderAll();
      return;
    }
    const c = ensureConv(f.conversation, null);
    if (f.change === 'added' && !c.members.includes(f.user)) c.members.push(f.user);
    if (f.change === 'removed') c.members = c.members.filter((u) => u !== f.user);
    // The group's owner may have changed with it, and a new member needs
    // the title: ask for the group.
    loadGroup(c);
  }

  function setGroup(c, g) {
    c.kind = 'group';
    c.title = g.title;
    c.owner = g.owner || c.owner;
    c.members = g.members || c.members;
  }

  async function loadGroup(c) {
    try {
      setGroup(c, await api('/api/groups/' + encodeURIComponent(c.id)));
    } catch (e) {
      if (e.status === 404) state.convs.delete(c.id);
    }
    renderAll();
  }

  // A group's marks on my messages come from the receipts endpoint: a
  // receipt frame of a group goes only to its own member's sessions. A
  // message is delivered once every other member has it, read once every
  // other member read it.
  function scheduleReceipts(c) {
    clearTimeout(c.receiptsTimer);
    c.receiptsTimer = setTimeout(() => loadReceipts(c), 500);
  }

  async function loadReceipts(c) {
    let receipts;
    try {
      receipts = await api('/api/conversations/' + encodeURIComponent(c.id) + '/receipts');
    } catch (e) {
      return;
    }
    const others = receipts.filter((r) => r.user !== state.me);
    if (!others.length) return;
    c.peerDelivered = Math.max(c.peerDelivered, Math.min(...others.map((r) => Math.max(r.deliveredUpTo, r.readUpTo))));
    c.peerRead = Math.max(c.peerRead, Math.min(...others.map((r) => r.readUpTo)));
    if (state.current === c.id) renderMessages(false);
  }

  function parseMembers(text) {
    return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
  }

  async function onNewGroup(ev) {
    ev.preventDefault();
    const err = $('new-group-error');
    const title = $('new-group-title').value.trim();
    const members = parseMembers($('new-group-members').value);
    let problem = '';
    if (!title) problem = 'Give the group a title.';
    else if (!members.length) problem = 'Name at least one member.';
    else if (members.some((u) => !USER_ID_RE.test(u))) problem = 'A user id is 1–64 letters, digits, “_”, “.” or “-”.';
    if (!problem) {
      try {
        const g = await api('/api/groups', { method: 'POST', body: { title, members } });
        const c = ensureConv(g.conversation, null);
        setGroup(c, g);
        $('new-group-title').value = '';
        $('new-group-members').value = '';
        location.hash = '#/c/' + encodeURIComponent(c.id);
      } catch (e) {
        problem = errorText(e.code, e.message);
      }
    }
    err.textContent = problem;
    err.hidden = !problem;
  }

  async function changeMembers(c, body) {
    try {
      setGroup(c, await api('/api/groups/' + encodeURIComponent(c.id) + '/members', { method: 'POST', body }));
    } catch (e) {
      showPaneError(errorText(e.code, e.message));
      return;
    }
    if (body.remove && body.remove.includes(state.me)) {
      state.convs.delete(c.id);
      location.hash = '';
    }
    renderAll();
  }

  async function onRename(ev) {
    ev.preventDefault();
    const c = state.current && state.convs.get(state.current);
    const title = $('group-title-input').value.trim();
    if (!c || !title) return;
    try {
      setGroup(c, await api('/api/groups/' + encodeURIComponent(c.id), { method: 'PATCH', body: { title } }));
    } catch (e) {
      showPaneError(errorText(e.code, e.message));
      return;
    }
    renderAll();
  }

  function onAddMember(ev) {
    ev.preventDefault();
    const c = state.current && state.convs.get(state.current);
    const add = parseMembers($('group-add-input').value);
    if (!c || !add.length) return;
    $('group-add-input').value = '';
    changeMembers(c, { add });
  }

  // failLastSend: a frame over the limit closes the connection (1009)
  // after an error without an id; the culprit is the last send written. It
  // is not resent, or it would close every new connection too.
  function failLastSend(code, message) {
    const p = state.lastSendId && state.pending.get(state.lastSendId);
    if (p && p.status === 'sending') {
      p.status = 'failed';
      p.code = code;
      p.retriable = false;
      savePending();
      renderAll();
    }
    showPaneError(errorText(code, message));
  }

  function errorText(code, message) {
    switch (code) {
      case 'rate_limited':
        return 'You are sending too fast. Wait a moment, then retry.';
      case 'bad_request':
        return /4096|long|too/i.test(message || '')
          ? 'This message is too long: at most ' + MAX_BODY_CHARS + ' characters.'
          : 'The server refused this: ' + message;
      case 'too_large':
        return 'This is too large to send.';
      case 'unavailable':
        return 'The chat service is unavailable right now. Your message is kept: retry in a moment.';
      case 'forbidden':
        return 'You are not allowed to do that.';
      case 'not_found':
        return 'Not found: ' + message;
      case 'internal':
        return 'Something went wrong on the server. Retry in a moment.';
      default:
        return message || 'Something went wrong.';
    }
  }

  // ---------- model ----------

  function ensureConv(id, peer) {
    let c = state.convs.get(id);
    if (!c) {
      c = newConv(id, peer);
      state.convs.set(id, c);
    }
    return c;
  }

  function convByPeer(peer) {
    for (const c of state.convs.values()) if (c.peer === peer) return c;
    return null;
  }

  // addMessage records m in c and reports whether it was new.
  function addMessage(c, m) {
    if (m.from === state.me && m.status) {
      // History pages tell the marks of my own messages.
      if (m.status === 'read') c.peerRead = Math.max(c.peerRead, m.seq);
      if (m.status === 'read' || m.status === 'delivered') c.peerDelivered = Math.max(c.peerDelivered, m.seq);
    }
    if (c.msgs.has(m.seq) || (c.loaded && m.seq < c.oldest)) return false;
    c.msgs.set(m.seq, m);
    if (m.seq > c.lastSeq) {
      c.lastSeq = m.seq;
      c.lastMessage = m;
    }
    if (m.seq > c.countedSeq) {
      if (m.from !== state.me && m.seq > c.myRead && !isViewing(c)) c.unread++;
      c.countedSeq = m.seq;
    }
    return true;
  }

  async function refreshConversations() {
    const list = await api('/api/conversations');
    for (const item of list) {
      const c = ensureConv(item.conversation, item.peer);
      if (item.kind === 'group') setGroup(c, item);
      c.myRead = Math.max(c.myRead, item.readUpTo || 0);
      if (!c.loaded && item.lastSeq > c.lastSeq) {
        c.lastSeq = item.lastSeq;
        c.lastMessage = item.lastMessage || c.lastMessage;
      } else if (c.loaded && item.lastSeq > topSeq(c)) {
        sendFrame({ type: 'sync', conversation: c.id, after: topSeq(c), limit: 100 });
      }
      if (item.lastSeq >= c.countedSeq) {
        c.unread = isViewing(c) ? 0 : item.unread;
        c.countedSeq = item.lastSeq;
      }
    }
    renderAll();
    askPresence();
  }

  function scheduleListRefresh() {
    clearTimeout(state.listTimer);
    state.listTimer = setTimeout(() => refreshConversations().catch(() => {}), 300);
  }

  // isViewing: the person can see the conversation now, so its messages
  // count as read.
  function isViewing(c) {
    return (
      state.signedIn &&
      state.current === c.id &&
      document.visibilityState === 'visible' &&
      (wideScreen.matches || $('app').classList.contains('show-pane'))
    );
  }

  function markReadIfViewing() {
    const c = state.current && state.convs.get(state.current);
    if (!c || !c.loaded || !isViewing(c)) return;
    let upTo = 0;
    for (const m of c.msgs.values()) if (m.from !== state.me && m.seq > upTo) upTo = m.seq;
    if (upTo > Math.max(c.myRead, c.readSent) && sendFrame({ type: 'read', conversation: c.id, upTo })) {
      c.readSent = upTo;
    }
    if (c.unread) {
      c.unread = 0;
      renderList();
    }
  }

  // ---------- pending sends ----------

  function pendingKey() {
    return 'chatd.pending.' + state.me;
  }

  function loadPending() {
    state.pending.clear();
    try {
      for (const p of JSON.parse(sessionStorage.getItem(pendingKey()) || '[]')) state.pending.set(p.id, p);
    } catch (e) {
      /* a corrupt entry is dropped */
    }
  }

  function savePending() {
    sessionStorage.setItem(pendingKey(), JSON.stringify([...state.pending.values()]));
  }

  function newClientId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return 'w' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function onSend(ev) {
    ev.preventDefault();
    const input = $('composer-input');
    // Leading and trailing blank space is never meant to be sent.
    const body = input.value.trim();
    const peer = currentPeer();
    const c = state.current && state.convs.get(state.current);
    const group = c && c.kind === 'group' ? c : null;
    if ((!peer && !group) || body === '') return;
    if ([...body].length > MAX_BODY_CHARS) {
      showPaneError(errorText('bad_request', 'too long'));
      return;
    }
    hidePaneError();
    if (state.editing) {
      change({ type: 'edit', conversation: state.editing.conversation, seq: state.editing.seq, body });
      stopEditing();
      return;
    }
    const p = group
      ? { id: newClientId(), conversation: group.id, body, createdAt: Date.now(), status: 'sending' }
      : { id: newClientId(), to: peer, body, createdAt: Date.now(), status: 'sending' };
    state.pending.set(p.id, p);
    savePending();
    writeSend(p); // when offline, the reconnect sends it
    input.value = '';
    autoGrow();
    updateCount();
    renderMessages(true);
  }

  function retry(id) {
    const p = state.pending.get(id);
    if (!p) return;
    p.status = 'sending';
    savePending();
    hidePaneError();
    writeSend(p);
    renderMessages(false);
  }

  function editFailed(id) {
    const p = state.pending.get(id);
    if (!p) return;
    state.pending.delete(id);
    savePending();
    const input = $('composer-input');
    input.value = p.body;
    autoGrow();
    updateCount();
    renderMessages(false);
    input.focus();
  }

  // ---------- routing (the hash keeps the open conversation across reloads
  // and gives phones a working back button) ----------

  function route() {
    if (!state.signedIn) return;
    const h = location.hash;
    let m;
    state.nodes.clear();
    $('message-list').replaceChildren();
    hidePaneError();
    if (state.editing) stopEditing();
    if ((m = /^#\/c\/(.+)$/.exec(h))) {
      const id = decodeURIComponent(m[1]);
      state.current = id;
      state.draftPeer = null;
      showPane(true);
      const c = state.convs.get(id);
      if (c && c.loaded) {
        renderAll();
        scrollToBottom();
        markReadIfViewing();
      } else {
        loadLatest(id);
      }
    } else if ((m = /^#\/new\/(.+)$/.exec(h))) {
      const peer = decodeURIComponent(m[1]);
      const existing = convByPeer(peer);
      if (existing) {
        location.replace('#/c/' + encodeURIComponent(existing.id));
        return;
      }
      state.current = null;
      state.draftPeer = peer;
      showPane(true);
      renderAll();
    } else {
      state.current = null;
      state.draftPeer = null;
      showPane(false);
      renderAll();
    }
  }

  function showPane(open) {
    const app = $('app');
    const wasOpen = app.classList.contains('show-pane');
    app.classList.toggle('show-pane', open);
    $('pane-empty').hidden = open;
    $('pane-chat').hidden = !open;
    if (open && wideScreen.matches) {
      $('composer-input').focus();
    } else if (open && !wasOpen) {
      $('pane-title').setAttribute('tabindex', '-1');
      $('pane-title').focus();
    } else if (!open && wasOpen && !wideScreen.matches) {
      const current = document.querySelector('.conv[aria-current="true"]') || $('new-conv-user');
      current.focus();
    }
  }

  function currentPeer() {
    if (state.draftPeer) return state.draftPeer;
    const c = state.current && state.convs.get(state.current);
    return c ? c.peer : null;
  }

  async function loadLatest(id) {
    let c = state.convs.get(id);
    if (c && c.loading) return;
    if (c) c.loading = true;
    $('load-older').hidden = true;
    let page;
    try {
      page = await api('/api/conversations/' + encodeURIComponent(id) + '/messages?limit=' + PAGE_SIZE);
    } catch (e) {
      if (c) c.loading = false;
      if (state.current === id) showPaneError(e.status === 404 || e.status === 403 ? 'No such conversation.' : errorText(e.code, e.message));
      return;
    }
    const msgs = page.messages || [];
    if (!c) {
      const first = msgs[0];
      if (!first) return;
      c = ensureConv(id, first.to === undefined ? null : first.from === state.me ? first.to : first.from);
    }
    c.loading = false;
    if (c.kind === 'group') {
      loadGroup(c);
      loadReceipts(c);
    }
    const oldest = msgs.length ? msgs[0].seq : c.lastSeq + 1;
    // Messages that arrived live before this first page and lie below it
    // would leave a hole: keep only those the page joins up with.
    for (const seq of [...c.msgs.keys()]) if (seq < oldest) c.msgs.delete(seq);
    c.loaded = true;
    c.oldest = oldest;
    c.more = !!page.more;
    for (const m of msgs) addMessage(c, m);
    if (state.current !== id) return;
    renderAll();
    scrollToBottom();
    markReadIfViewing();
    fillViewport(c);
  }

  async function loadOlder(c) {
    if (!c.loaded || c.loading || !c.more) return;
    c.loading = true;
    let page;
    try {
      page = await api('/api/conversations/' + encodeURIComponent(c.id) + '/messages?before=' + c.oldest + '&limit=' + PAGE_SIZE);
    } catch (e) {
      c.loading = false;
      showPaneError(errorText(e.code, e.message));
      return;
    }
    c.loading = false;
    const msgs = page.messages || [];
    if (msgs.length) c.oldest = msgs[0].seq;
    c.more = !!page.more && msgs.length > 0;
    for (const m of msgs) {
      if (m.from === state.me && m.status) addMessage(c, m); // marks
      c.msgs.set(m.seq, m);
    }
    if (state.current !== c.id) return;
    // Prepending must not move what the reader is looking at.
    const box = $('messages');
    const fromBottom = box.scrollHeight - box.scrollTop;
    renderMessages(false);
    box.scrollTop = box.scrollHeight - fromBottom;
    fillViewport(c);
  }

  // fillViewport loads older pages until the pane can scroll, so that
  // scrolling up is always possible when there is more to see.
  function fillViewport(c) {
    const box = $('messages');
    if (c.more && box.scrollHeight <= box.clientHeight + 50) loadOlder(c);
  }

  // ---------- rendering ----------

  function renderAll() {
    renderList();
    renderPaneHead();
    renderMessages(false);
  }

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

  function shortTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : dateFmt.format(d);
  }

  function renderList() {
    const ul = $('conv-list');
    const convs = [...state.convs.values()].sort((a, b) => {
      const ta = a.lastMessage ? Date.parse(a.lastMessage.sentAt) : 0;
      const tb = b.lastMessage ? Date.parse(b.lastMessage.sentAt) : 0;
      return tb - ta;
    });
    $('conv-empty').hidden = convs.length > 0;
    const focusedId = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.conv;
    const items = convs.map((c) => {
      const last = c.lastMessage;
      const who = !last ? '' : last.from === state.me ? 'You: ' : c.kind === 'group' ? last.from + ': ' : '';
      const lastText = last ? who + (last.recalled ? 'message recalled' : last.body) : 'No messages yet';
      const name = c.kind === 'group'
        ? el('span', { className: 'name' }, el('span', { className: 'group-mark', attrs: { 'aria-hidden': 'true' }, text: '#' }), c.title || 'Group')
        : el('span', { className: 'name' }, el('span', { className: 'presence', attrs: { 'data-online': onlineOf(c.peer), 'aria-hidden': 'true' } }), c.peer);
      const button = el(
        'button',
        {
          className: 'conv' + (c.unread ? ' unread' : ''),
          attrs: {
            type: 'button', 'data-conv': c.id, 'data-peer': c.peer, 'data-kind': c.kind, 'aria-current': c.id === state.current ? 'true' : null,
          },
        },
        name,
        el('span', { className: 'time', text: last ? shortTime(last.sentAt) : '' }),
        el('span', { className: 'last', text: lastText.length > 120 ? lastText.slice(0, 120) + '…' : lastText }),
        c.unread
          ? el('span', { className: 'badge', attrs: { 'data-unread': c.unread } }, String(c.unread),
            el('span', { className: 'visually-hidden', text: c.unread === 1 ? ' unread message' : ' unread messages' }))
          : null,
      );
      return el('li', {}, button);
    });
    ul.replaceChildren(...items);
    if (focusedId) {
      const again = ul.querySelector('[data-conv="' + CSS.escape(focusedId) + '"]');
      if (again) again.focus();
    }
  }

  function renderPaneHead() {
    const peer = currentPeer();
    const c = state.current && state.convs.get(state.current);
    const group = c && c.kind === 'group' ? c : null;
    $('pane-peer').textContent = group ? group.title : peer || '';
    if (!state.editing) $('composer-label').textContent = group ? 'Message to ' + group.title : peer ? 'Message to ' + peer : 'Message';
    const sub = $('pane-sub');
    $('pane-title').querySelector('.presence').dataset.online = peer && !state.draftPeer ? onlineOf(peer) : 'unknown';
    // The subtitle shows "typing…" while someone types, else the peer's
    // presence or the group's members.
    if (sub.dataset.conv !== state.current) sub.dataset.typing = 'false';
    if (state.draftPeer) sub.textContent = 'New conversation: say hello.';
    else if (sub.dataset.typing !== 'true') sub.textContent = group ? group.members.join(', ') : presenceText(state.presence.get(peer));
    renderGroupPanel(group);
  }

  // renderGroupPanel lists a group's members: the owner may remove anyone
  // and add people, every member may leave or rename the group.
  function renderGroupPanel(group) {
    const panel = $('group-panel');
    panel.hidden = !group;
    if (!group) return;
    const owner = group.owner === state.me;
    $('group-count').textContent = String(group.members.length);
    $('group-add').hidden = !owner;
    if (document.activeElement !== $('group-title-input')) $('group-title-input').value = group.title;
    const items = group.members.map((u) => {
      const li = el('li', { attrs: { 'data-member': u } }, el('span', { text: u === state.me ? u + ' (you)' : u }));
      if (u === group.owner) li.append(el('span', { className: 'hint', text: ' owner' }));
      if (owner && u !== state.me) {
        const b = el('button', { className: 'link', attrs: { type: 'button', 'aria-label': 'Remove ' + u }, text: 'Remove' });
        b.addEventListener('click', () => changeMembers(group, { remove: [u] }));
        li.append(b);
      }
      return li;
    });
    $('group-members').replaceChildren(...items);
  }

  function presenceText(p) {
    if (!p) return '';
    if (p.online) return 'online';
    return p.lastSeen ? 'last seen ' + shortTime(p.lastSeen) : 'offline';
  }

  function statusOf(c, m) {
    if (m.seq <= c.peerRead) return 'read';
    if (m.seq <= c.peerDelivered) return 'delivered';
    return 'sent';
  }

  const STATUS_LABEL = { sending: 'Sending…', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not sent' };
  const STATUS_MARK = { sent: '✓', delivered: '✓✓', read: '✓✓' };

  function markNode(status) {
    // Ticks for the settled states, words for those that need attention.
    if (status === 'sending' || status === 'failed') {
      return el('span', { className: 'mark', attrs: { 'data-status': status }, text: STATUS_LABEL[status] });
    }
    return el(
      'span',
      { className: 'mark', attrs: { 'data-status': status, title: STATUS_LABEL[status] } },
      el('span', { attrs: { 'aria-hidden': 'true' }, text: STATUS_MARK[status] }),
      el('span', { className: 'visually-hidden', text: STATUS_LABEL[status] }),
    );
  }

  function messageNode(key, m, own, status, pending, c) {
    const meta = el('div', { className: 'meta' });
    meta.append(el('time', { attrs: { datetime: m.sentAt || '' }, text: m.sentAt ? shortTime(m.sentAt) : '' }));
    if (m.editedAt && !m.recalled) meta.append(el('span', { className: 'edited', text: 'edited' }));
    if (own) meta.append(markNode(status));
    if (own && c && m.seq && !m.recalled) {
      // The server decides whether the edit window is still open.
      const edit = el('button', { className: 'link', attrs: { type: 'button', 'data-action': 'edit' }, text: 'Edit' });
      edit.addEventListener('click', () => startEditing(c, m));
      const recall = el('button', { className: 'link', attrs: { type: 'button', 'data-action': 'recall' }, text: 'Recall' });
      recall.addEventListener('click', () => change({ type: 'recall', conversation: c.id, seq: m.seq }));
      meta.append(edit, recall);
    }
    if (pending && pending.status === 'failed') {
      if (pending.retriable) {
        const b = el('button', { className: 'link', attrs: { type: 'button' }, text: 'Retry' });
        b.addEventListener('click', () => retry(pending.id));
        meta.append(b);
      } else {
        const b = el('button', { className: 'link', attrs: { type: 'button' }, text: 'Edit' });
        b.addEventListener('click', () => editFailed(pending.id));
        meta.append(b);
      }
    }
    const li = el(
      'li',
      {
        className: 'msg ' + (own ? 'own' : 'theirs') + (pending && pending.status === 'failed' ? ' failed' : '') + (m.recalled ? ' recalled' : ''),
        attrs: { 'data-key': key, 'data-seq': m.seq || null, 'data-status': own ? status : null },
      },
      el('span', { className: 'visually-hidden', text: (own ? 'You' : m.from) + ': ' }),
      c && c.kind === 'group' && !own ? el('span', { className: 'author', text: m.from }) : null,
      el('div', { className: 'bubble', text: m.recalled ? 'message recalled' : m.body }),
      meta,
    );
    li.dataset.sig = signature(m, status, pending);
    return li;
  }

  // signature is what a message's node shows; a node is rebuilt when it changes.
  function signature(m, status, pending) {
    return [status, pending ? pending.status : '', m.recalled ? 'recalled' : '', m.editedAt || '', m.body || ''].join('|');
  }

  // renderMessages updates the open conversation's list in place, keyed by
  // seq (pending sends by client id), so that focus and scroll survive.
  function renderMessages(forceBottom) {
    const list = $('message-list');
    const box = $('messages');
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const peer = currentPeer();
    const c = state.current && state.convs.get(state.current);
    const wanted = [];
    if (c && c.loaded) {
      for (const seq of [...c.msgs.keys()].sort((a, b) => a - b)) {
        const m = c.msgs.get(seq);
        const own = m.from === state.me;
        wanted.push(['m' + seq, m, own, own ? statusOf(c, m) : '', null]);
      }
    }
    const group = c && c.kind === 'group' ? c : null;
    if ((peer && (state.draftPeer || (c && c.loaded))) || (group && group.loaded)) {
      const mine = (p) => (group ? p.conversation === group.id : p.to === peer);
      const pend = [...state.pending.values()].filter(mine).sort((a, b) => a.createdAt - b.createdAt);
      for (const p of pend) {
        wanted.push(['p' + p.id, { body: p.body, from: state.me, sentAt: new Date(p.createdAt).toISOString() }, true, p.status, p]);
      }
    }
    const nodes = [];
    const keep = new Map();
    for (const [key, m, own, status, p] of wanted) {
      let node = state.nodes.get(key);
      if (!node || node.dataset.sig !== signature(m, status, p)) node = messageNode(key, m, own, status, p, p ? null : c);
      keep.set(key, node);
      nodes.push(node);
    }
    state.nodes = keep;
    const same = nodes.length === list.children.length && nodes.every((n, i) => list.children[i] === n);
    if (!same) list.replaceChildren(...nodes);

    $('load-older').hidden = !(c && c.loaded && c.more);
    $('history-start').hidden = !(c && c.loaded && !c.more && c.msgs.size > 0);
    if (forceBottom || atBottom) scrollToBottom();
  }

  function scrollToBottom() {
    const box = $('messages');
    box.scrollTop = box.scrollHeight;
  }

  // ---------- small UI helpers ----------

  function showPaneError(text) {
    const p = $('pane-error');
    p.textContent = text;
    p.hidden = false;
  }

  function hidePaneError() {
    $('pane-error').hidden = true;
    $('pane-error').textContent = '';
  }

  function announce(text) {
    const region = $('announcer');
    region.append(el('p', { text: text.length > 200 ? text.slice(0, 200) + '…' : text }));
    while (region.children.length > 3) region.firstChild.remove();
  }

  function autoGrow() {
    const t = $('composer-input');
    t.style.height = 'auto';
    t.style.height = Math.min(t.scrollHeight + 2, window.innerHeight * 0.4) + 'px';
  }

  function updateCount() {
    const n = [...$('composer-input').value].length;
    const p = $('composer-count');
    // Only shown near the limit, so it is not read out on every key.
    if (n > MAX_BODY_CHARS - 200) {
      p.textContent = n + ' of ' + MAX_BODY_CHARS + ' characters' + (n > MAX_BODY_CHARS ? ': too long to send' : '');
      p.classList.toggle('over', n > MAX_BODY_CHARS);
    } else if (p.textContent) {
      p.textContent = '';
      p.classList.remove('over');
    }
  }

  function onNewConv(ev) {
    ev.preventDefault();
    const input = $('new-conv-user');
    const err = $('new-conv-error');
    const peer = input.value.trim();
    let problem = '';
    if (!USER_ID_RE.test(peer)) problem = 'A user id is 1–64 letters, digits, “_”, “.” or “-”.';
    else if (peer === state.me) problem = 'That is you: pick someone else.';
    err.textContent = problem;
    err.hidden = !problem;
    input.setAttribute('aria-invalid', problem ? 'true' : 'false');
    if (problem) {
      input.focus();
      return;
    }
    input.value = '';
    const existing = convByPeer(peer);
    location.hash = existing ? '#/c/' + encodeURIComponent(existing.id) : '#/new/' + encodeURIComponent(peer);
  }

  // ---------- wiring ----------

  function init() {
    $('signin-form').addEventListener('submit', onSignin);
    $('signin-switch').addEventListener('click', () => {
      setMode(authMode === 'dev' ? 'jwt' : 'dev');
      showSigninError('');
      $(authMode === 'dev' ? 'signin-user' : 'signin-token').focus();
    });
    $('signout').addEventListener('click', () => signOut(''));
    $('new-conv').addEventListener('submit', onNewConv);
    $('new-group').addEventListener('submit', onNewGroup);
    $('group-rename').addEventListener('submit', onRename);
    $('group-add').addEventListener('submit', onAddMember);
    $('group-leave').addEventListener('click', () => {
      const c = state.current && state.convs.get(state.current);
      if (c) changeMembers(c, { remove: [state.me] });
    });
    $('composer-cancel').addEventListener('click', stopEditing);
    $('composer').addEventListener('submit', onSend);
    $('back').addEventListener('click', () => {
      location.hash = '';
    });
    $('conv-list').addEventListener('click', (ev) => {
      const b = ev.target.closest('button.conv');
      if (b) location.hash = '#/c/' + encodeURIComponent(b.dataset.conv);
    });
    // Arrow keys move between conversations, as in a listbox.
    $('conv-list').addEventListener('keydown', (ev) => {
      if (ev.key !== 'ArrowDown' && ev.key !== 'ArrowUp') return;
      const buttons = [...$('conv-list').querySelectorAll('button.conv')];
      const i = buttons.indexOf(document.activeElement);
      if (i < 0) return;
      const next = buttons[i + (ev.key === 'ArrowDown' ? 1 : -1)];
      if (next) {
        next.focus();
        ev.preventDefault();
      }
    });
    const input = $('composer-input');
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        $('composer').requestSubmit();
      }
    });
    input.addEventListener('input', () => {
      autoGrow();
      updateCount();
      if (input.value) sayTyping();
      // The person is acting on the error; a failed send stays marked on
      // its message.
      hidePaneError();
    });
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && !wideScreen.matches && $('app').classList.contains('show-pane')) location.hash = '';
    });
    $('load-older').addEventListener('click', () => {
      const c = state.current && state.convs.get(state.current);
      if (c) loadOlder(c);
    });
    $('messages').addEventListener('scroll', () => {
      const c = state.current && state.convs.get(state.current);
      if (c && $('messages').scrollTop < 120) loadOlder(c);
    }, { passive: true });
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'visible') return;
      markReadIfViewing();
      // Back from the background: do not wait out a long back-off.
      if (state.signedIn && !state.ws) connect();
    });
    window.addEventListener('online', () => {
      if (state.signedIn && !state.ws) {
        state.attempt = 0;
        connect();
      }
    });
    wideScreen.addEventListener('change', () => markReadIfViewing());

    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(AUTH_KEY) || 'null');
    } catch (e) {
      saved = null;
    }
    if (saved && saved.token && (!saved.expiresAt || Date.parse(saved.expiresAt) > Date.now() + 5000)) {
      startSession(saved);
    } else if (saved && saved.userId && authMode === 'dev') {
      // A reload near the token's exp: the dev server renews it, as the
      // running page would have.
      api('/api/dev/token', { method: 'POST', body: { userId: saved.userId }, anonymous: true })
        .then((t) => startSession({ token: t.token, userId: t.userId, expiresAt: t.expiresAt }))
        .catch(showSignin);
    } else {
      showSignin();
    }
  }

  function showSignin() {
    $('signin').hidden = false;
    setMode(authMode);
    $(authMode === 'dev' ? 'signin-user' : 'signin-token').focus();
  }

  init();
})();
