/*! hero-fast @@VERSION@@ browser client: generated at boot from the servers.websocket config; edits are overwritten. */
// template: The template of actionheroClient.js, rendered at boot by hero_fast.client_js:
// template: each placeholder (a value between a start marker and an end marker comment) and
// template: the version token above are replaced by configured values, and these template
// template: lines are dropped. As it stands it is valid JavaScript (node --check passes).
// ES2017, no library: the browser's native WebSocket speaking hero-fast's PROTOCOL.md.
(function (root, factory) {
  'use strict';
  var Client = factory(root);
  if (typeof module === 'object' && module && module.exports) {
    module.exports = Client;
  }
  if (root) {
    root.ActionheroClient = Client;
    // The name actionhero's own generated client uses, so existing front-ends work unchanged.
    root.ActionheroWebsocketClient = Client;
  }
})(typeof self !== 'undefined' ? self : (typeof window !== 'undefined' ? window : this), function (root) {
  'use strict';

  // The options baked in from config servers.websocket.client (and the upgrade path and
  // fingerprint cookie name); null stands for Infinity in reconnect.max and queueSize.
  var BAKED = /*@@defaults*/{
    pathname: '/primus',
    cookieKey: 'sessionID',
    apiPath: '/api',
    reconnect: { min: 500, max: null, retries: 10, factor: 2 },
    timeout: 10000,
    ping: 25000,
    pong: 10000,
    strategy: ['online', 'timeout', 'disconnect'],
    manual: false,
    websockets: true,
    network: true,
    transport: {},
    queueSize: null
  }/*@@end*/;

  // config servers.websocket.clientUrl: where the client connects (an http(s) or ws(s) URL).
  function configuredUrl () {
    return (
/*@@url*/window.location.origin/*@@end*/
    );
  }

  var OPEN = 1;
  var PRIMUS_PING = 'primus::ping::';
  var PRIMUS_PONG = 'primus::pong::';
  var PRIMUS_SERVER_CLOSE = 'primus::server::close';

  function copy (value) {
    return JSON.parse(JSON.stringify(value));
  }

  function defaults () {
    var options = copy(BAKED);
    try {
      options.url = configuredUrl();
    } catch (e) {
      options.url = null; // no window (e.g. a worker or Node): pass options.url
    }
    return options;
  }

  function mergeOptions (options) {
    var merged = defaults();
    if (options && typeof options === 'object') {
      Object.keys(options).forEach(function (key) {
        var value = options[key];
        if (key === 'reconnect' && value && typeof value === 'object') {
          merged.reconnect = Object.assign({}, merged.reconnect, value);
        } else {
          merged[key] = value;
        }
      });
    }
    return merged;
  }

  function limit (value) {
    return value === null || value === undefined ? Infinity : Number(value);
  }

  // Call user code without letting an exception break the client: report it asynchronously
  // (it still shows in the console and window.onerror) and carry on.
  function safely (fn, self, args) {
    try {
      fn.apply(self, args);
    } catch (e) {
      setTimeout(function () { throw e; }, 0);
    }
  }

  function later (fn) {
    Promise.resolve().then(fn);
  }

  // A method's result: the callback when one is given, else a Promise.
  function deliver (callback, start) {
    if (typeof callback === 'function') {
      start(function (value) { safely(callback, null, [value]); });
      return undefined;
    }
    return new Promise(function (resolve) { start(resolve); });
  }

  function errorResponse (text, messageId, request) {
    var error = 'Error: ' + text;
    return { context: 'response', messageId: messageId, status: error, error: error, data: request };
  }

  /**
   * new ActionheroClient(options): a client of a hero-fast (or actionhero) server.
   * Options default to the values baked in from the server's config; see the .d.ts.
   */
  function ActionheroClient (options) {
    if (!(this instanceof ActionheroClient)) {
      return new ActionheroClient(options);
    }
    this.options = mergeOptions(options);
    this.events = Object.create(null);
    this.callbacks = Object.create(null);
    this.id = null;
    this.fingerprint = null;
    this.details = null;
    this.rooms = [];
    this.state = 'disconnected';
    this.welcomeMessage = null;
    this.messageId = 0;
    this._ws = null;
    this._queue = [];
    this._waiters = [];
    this._timers = Object.create(null);
    this._final = true;
    this._serverClosed = false;
    this._everConnected = false;
    this._attempt = 0;
    this._offline = false;
    this._networkHandlers = null;
    this._openToken = 0;
    // Connection state recovery (servers whose welcome carries `recovery`): the token of this
    // connection, the last offset+epoch per room with history, the last pushSeq, and, while
    // reconnecting, the token of the lost connection (sent in the `recover` request).
    this._token = null;
    this._offsets = Object.create(null);
    this._pushSeq = 0;
    this._resume = null;
    this._awaitWelcome = null;
    this._welcomedWs = null;
    this._handover = null; // the fingerprint of a client without a fingerprint cookie
  }

  var proto = ActionheroClient.prototype;

  // -- events --------------------------------------------------------------------------

  proto.on = function (event, listener) {
    if (typeof listener !== 'function') {
      throw new TypeError('listener must be a function');
    }
    (this.events[event] = this.events[event] || []).push(listener);
    return this;
  };
  proto.addListener = proto.on;

  proto.once = function (event, listener) {
    var self = this;
    function wrapper () {
      self.off(event, wrapper);
      listener.apply(self, arguments);
    }
    wrapper.listener = listener;
    return this.on(event, wrapper);
  };

  proto.off = function (event, listener) {
    var list = this.events[event];
    if (!list) {
      return this;
    }
    if (listener === undefined) {
      delete this.events[event];
      return this;
    }
    this.events[event] = list.filter(function (l) { return l !== listener && l.listener !== listener; });
    if (!this.events[event].length) {
      delete this.events[event];
    }
    return this;
  };
  proto.removeListener = proto.off;

  proto.removeAllListeners = function (event) {
    if (event === undefined) {
      this.events = Object.create(null);
    } else {
      delete this.events[event];
    }
    return this;
  };

  proto.listeners = function (event) {
    return (this.events[event] || []).slice();
  };

  proto.emit = function (event) {
    var list = this.events[event];
    if (!list || !list.length) {
      return false;
    }
    var args = Array.prototype.slice.call(arguments, 1);
    var self = this;
    list.slice().forEach(function (listener) { safely(listener, self, args); });
    return true;
  };

  // -- timers --------------------------------------------------------------------------

  proto._timer = function (name, ms, fn) {
    this._clear(name);
    var self = this;
    this._timers[name] = setTimeout(function () {
      delete self._timers[name];
      fn.call(self);
    }, ms);
  };

  proto._clear = function (name) {
    if (this._timers[name] !== undefined) {
      clearTimeout(this._timers[name]);
      delete this._timers[name];
    }
  };

  proto._setState = function (state) {
    var previous = this.state;
    this.state = state;
    if (state === 'disconnected' && previous !== 'disconnected') {
      this.emit('disconnected');
    }
  };

  // -- connecting ----------------------------------------------------------------------

  /** The WebSocket URL: the client URL as ws(s)://, the upgrade path, the fingerprint hand-off. */
  proto.websocketUrl = function () {
    var url = this.options.url;
    if (typeof url !== 'string' || !url) {
      throw new Error('no server URL: pass options.url (e.g. "https://api.example.com")');
    }
    if (url.indexOf('//') === 0) {
      url = (root && root.location && root.location.protocol === 'https:' ? 'wss:' : 'ws:') + url;
    }
    url = url.replace(/^http(s?):/i, 'ws$1:');
    if (!/^wss?:\/\//i.test(url)) {
      throw new Error('the server URL must be http(s):// or ws(s)://, not ' + JSON.stringify(url));
    }
    var parsed = new URL(url);
    var pathname = String(this.options.pathname || '/primus');
    parsed.pathname = parsed.pathname.replace(/\/+$/, '') + (pathname.charAt(0) === '/' ? '' : '/') + pathname;
    // Recovery is bound to the fingerprint: a client that had no fingerprint cookie (another
    // origin, node) was known by its first connection id, which it hands over when it comes back.
    var fingerprint = this.options.fingerprint || (this._resume ? this._handover : null);
    if (fingerprint) {
      parsed.searchParams.set(this.options.cookieKey || 'sessionID', String(fingerprint));
    }
    parsed.hash = '';
    return parsed.toString();
  };

  /**
   * connect(callback): open the connection; callback(err, details) once it is ready (rooms
   * rejoined, details fetched) or when the client gives up. A Promise without a callback.
   */
  proto.connect = function (callback) {
    var self = this;
    var start = function (done) {
      if (self.state === 'connected' && self._ws) {
        later(function () { done(null, self.details); });
        return;
      }
      self._waiters.push(done);
      if (!self._final) {
        return; // already connecting or reconnecting: one socket at a time
      }
      self._final = false;
      self._serverClosed = false;
      self._everConnected = false;
      self._attempt = 0;
      self._listenToNetwork(true);
      self._setState('connecting');
      // Open on the next microtask: connect() then disconnect() in one go opens no socket.
      var token = ++self._openToken;
      later(function () {
        if (token === self._openToken && !self._final && !self._ws) {
          self._open();
        }
      });
    };
    if (typeof callback === 'function') {
      start(function (err, details) { safely(callback, null, [err, details]); });
      return undefined;
    }
    return new Promise(function (resolve, reject) {
      start(function (err, details) {
        if (err) {
          reject(err);
        } else {
          resolve(details);
        }
      });
    });
  };

  proto._open = function () {
    var self = this;
    this._clear('reconnect');
    var ws;
    try {
      var protocols = this.options.transport && this.options.transport.protocols;
      ws = protocols ? new WebSocket(this.websocketUrl(), protocols) : new WebSocket(this.websocketUrl());
    } catch (e) {
      this.emit('error', e);
      this._stop(e.message);
      return;
    }
    this._ws = ws;
    ws.onopen = function () { self._onOpen(ws); };
    ws.onmessage = function (event) { self._onMessage(ws, event); };
    ws.onclose = function (event) { self._onClose(ws, event); };
    // A browser follows an error with a close event, but node 20's WebSocket fires only the
    // error when a connection is refused: either one ends this socket's attempt (once).
    ws.onerror = function () {
      if (ws === self._ws) {
        self.emit('error', new Error('WebSocket error on ' + ws.url));
        self._onClose(ws, { code: 1006, reason: 'WebSocket error' });
      }
    };
    var timeout = Number(this.options.timeout);
    if (timeout > 0) {
      this._timer('open', timeout, function () {
        this._dead(ws, 'the connection did not open within ' + timeout + ' ms');
      });
    }
  };

  proto._detach = function (ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (ws === this._ws) {
      this._ws = null;
    }
    this._clear('open');
    this._clear('heartbeat');
  };

  proto._onOpen = function (ws) {
    if (ws !== this._ws) {
      return;
    }
    this._heard();
    if (this._resume) {
      // Coming back to a server that offered recovery: its welcome says whether this one
      // does too. The open timeout keeps running until the welcome arrives.
      this._awaitWelcome = ws;
      return;
    }
    this._clear('open');
    this._pushSeq = 0; // a new connection id: its pushes are numbered from 1
    this._rejoin(ws, this.rooms.slice(), null);
  };

  // The first message of a connection that should recover: send `recover` before anything
  // else (rooms, details, the offline queue), or go on as a new connection.
  proto._welcomed = function (ws, welcome) {
    this._awaitWelcome = null;
    this._clear('open');
    var self = this;
    var token = this._resume;
    if (!welcome.recovery) {
      this._resume = null;
      this._pushSeq = 0;
      this._rejoin(ws, this.rooms.slice(), { recovered: false, reason: 'expired', id: null, rooms: [] });
      return;
    }
    var offsets = {};
    this.rooms.forEach(function (room) {
      if (self._offsets[room]) {
        offsets[room] = self._offsets[room];
      }
    });
    this._transmit({ event: 'recover', token: token, offsets: offsets, pushSeq: this._pushSeq }, function (response) {
      if (ws !== self._ws) {
        return; // lost before the answer: the next attempt sends the same token
      }
      self._resume = null;
      var data = response.data;
      var outcome = { recovered: false, reason: 'expired', id: null, rooms: [] };
      if (!response.error && data && typeof data === 'object') {
        outcome = {};
        Object.keys(data).forEach(function (key) {
          if (key !== 'token') {
            outcome[key] = data[key];
          }
        });
        if (typeof data.token === 'string') {
          self._token = data.token;
        }
        if (typeof data.id === 'string') {
          self.id = data.id;
        }
      } else {
        self.emit('error', new Error('recover failed: ' + response.error));
      }
      if (outcome.reason === 'expired') {
        self._pushSeq = 0; // a plain new connection: its pushes are numbered from 1
      }
      var restored = Array.isArray(outcome.rooms) ? outcome.rooms : [];
      restored.forEach(function (room) { self._rememberRoom(room); });
      self._rejoin(ws, self.rooms.filter(function (room) { return restored.indexOf(room) < 0; }), outcome);
    });
  };

  // Join `rooms` again (roomAdd), refresh the details, then the connection is ready.
  proto._rejoin = function (ws, rooms, outcome) {
    var self = this;
    var left = rooms.length;
    var configure = function () {
      self._transmit({ event: 'detailsView' }, function (response) {
        if (ws !== self._ws) {
          return;
        }
        if (response.error) {
          self.emit('error', new Error('detailsView failed: ' + response.error));
        } else {
          self._saveDetails(response);
        }
        if (outcome && outcome.id === null) {
          outcome.id = self.id;
        }
        self._ready(outcome);
      });
    };
    if (!left) {
      configure();
      return;
    }
    rooms.forEach(function (room) {
      self._transmit({ event: 'roomAdd', room: room }, function (response) {
        if (ws !== self._ws) {
          return; // that socket is gone; the next one rejoins
        }
        if (response.error && response.error.indexOf('already in this room') < 0) {
          self._forgetRoom(room);
          self.emit('error', new Error('could not rejoin room ' + JSON.stringify(room) + ': ' + response.error));
        } else {
          self._position(room, response.history);
        }
        if (--left === 0) {
          configure();
        }
      });
    });
  };

  proto._ready = function (outcome) {
    var reconnected = this._everConnected;
    this._everConnected = true;
    this._attempt = 0;
    this.state = 'connected';
    // Requests made while offline go out now, in the order they were made.
    var queue = this._queue;
    this._queue = [];
    var self = this;
    queue.forEach(function (request) {
      self._clear('queued' + request.messageId);
      self._send(request);
    });
    var waiters = this._waiters;
    this._waiters = [];
    var details = this.details;
    waiters.forEach(function (done) { done(null, details); });
    this.emit('connected', details);
    if (reconnected) {
      this.emit('reconnect', details);
    }
    if (outcome) {
      this.emit('recovered', outcome);
    }
  };

  proto._saveDetails = function (response) {
    this.details = response;
    var data = response.data || {};
    this.id = data.id === undefined ? null : data.id;
    this.fingerprint = data.fingerprint === undefined ? null : data.fingerprint;
    // The server falls back to the connection id without a cookie (or the id handed over).
    var own = this.fingerprint !== null && (this.fingerprint === this.id || this.fingerprint === this._handover);
    this._handover = own ? this.fingerprint : null;
    if (Array.isArray(data.rooms)) {
      this.rooms = data.rooms.slice();
    }
  };

  proto._forgetRoom = function (room) {
    var i = this.rooms.indexOf(room);
    if (i >= 0) {
      this.rooms.splice(i, 1);
    }
    delete this._offsets[room];
    if (this.details && this.details.data && Array.isArray(this.details.data.rooms)) {
      this.details.data.rooms = this.rooms.slice();
    }
  };

  proto._rememberRoom = function (room) {
    if (this.rooms.indexOf(room) < 0) {
      this.rooms.push(room);
    }
    if (this.details && this.details.data && Array.isArray(this.details.data.rooms)) {
      this.details.data.rooms = this.rooms.slice();
    }
  };

  // -- recovery bookkeeping ----------------------------------------------------------------

  // Note a room's numbering (offset of epoch); false when the client already had that
  // offset (a duplicate after a reconnect). Another epoch is another numbering: new.
  proto._advance = function (room, offset, epoch) {
    var known = this._offsets[room];
    if (known && known.epoch === epoch && offset <= known.offset) {
      return false;
    }
    this._offsets[room] = { offset: offset, epoch: epoch };
    return true;
  };

  // A roomAdd answer of a room with history says where its numbering is.
  proto._position = function (room, history) {
    if (history && typeof history.offset === 'number') {
      this._advance(room, history.offset, history.epoch);
    }
  };

  // False for a chat message or a push the client already has (replayed after a reconnect).
  proto._isNew = function (message) {
    if (message.context === 'response') {
      return true;
    }
    if (typeof message.pushSeq === 'number') {
      if (message.pushSeq <= this._pushSeq) {
        return false;
      }
      this._pushSeq = message.pushSeq;
    }
    if (message.context === 'user' && typeof message.offset === 'number' && typeof message.room === 'string') {
      return this._advance(message.room, message.offset, message.epoch);
    }
    return true;
  };

  // -- receiving -----------------------------------------------------------------------

  proto._onMessage = function (ws, event) {
    if (ws !== this._ws) {
      return;
    }
    this._heard();
    var message;
    try {
      message = JSON.parse(event.data);
    } catch (e) {
      this.emit('error', new Error('the server sent a message that is not JSON'));
      return;
    }
    if (typeof message === 'string') {
      if (message.indexOf(PRIMUS_PING) === 0) {
        this._raw(JSON.stringify(PRIMUS_PONG + message.slice(PRIMUS_PING.length)));
      } else if (message === PRIMUS_SERVER_CLOSE) {
        this._serverClosed = true; // the close that follows is final: do not reconnect
      }
      return;
    }
    if (!message || typeof message !== 'object') {
      return;
    }
    // The connection's own welcome is its first message (a later push may look like one).
    var welcome = this._welcomedWs !== ws && message.context === 'api' && message.welcome !== undefined;
    if (welcome) {
      this._welcomedWs = ws;
      this._token = message.recovery && typeof message.recovery.token === 'string' ? message.recovery.token : null;
    }
    if (!this._isNew(message)) {
      return;
    }
    this.handleMessage(message);
    if (welcome && this._awaitWelcome === ws && ws === this._ws) {
      this._welcomed(ws, message);
    }
  };

  /** Dispatch one server message by its context (also usable to replay messages). */
  proto.handleMessage = function (message) {
    this.emit('message', message);
    var context = message.context;
    if (context === 'response') {
      var callback = this.callbacks[message.messageId];
      if (callback) {
        delete this.callbacks[message.messageId];
        callback(message);
      }
    } else if (context === 'user') {
      this.emit('say', message);
    } else if (context === 'alert') {
      this.emit('alert', message);
    } else if (context === 'api' && message.welcome !== undefined) {
      this.welcomeMessage = message.welcome;
      this.emit('welcome', message);
    } else {
      this.emit('api', message);
    }
  };

  // -- heartbeat -----------------------------------------------------------------------

  // Anything from the server proves it alive. After `ping` ms of silence the client pings
  // (the server answers "primus::pong::"); after `pong` more ms it gives the server up.
  proto._heard = function () {
    var ping = Number(this.options.ping);
    if (!(ping > 0)) {
      return;
    }
    this._timer('heartbeat', ping, function () {
      var ws = this._ws;
      if (!ws) {
        return;
      }
      this._raw(JSON.stringify(PRIMUS_PING + Date.now()));
      var pong = Math.max(Number(this.options.pong) || 0, 0);
      this._timer('heartbeat', pong, function () {
        this._dead(ws, 'the server sent nothing for ' + (ping + pong) + ' ms');
      });
    });
  };

  // -- losing the connection ---------------------------------------------------------------

  proto._onClose = function (ws, event) {
    if (ws !== this._ws) {
      return;
    }
    this._detach(ws);
    this._lost(false, 'closed (' + event.code + (event.reason ? ' ' + event.reason : '') + ')');
  };

  // Give up on a socket that does not open or went silent: no waiting for its close.
  proto._dead = function (ws, why) {
    if (ws !== this._ws) {
      return;
    }
    this._detach(ws);
    try {
      ws.close(4000, 'timeout'); // 4000: not leaving, the server keeps the state
    } catch (e) { /* already closing */ }
    this.emit('error', new Error('connection timed out: ' + why));
    this._lost(true, why);
  };

  proto._lost = function (timedOut, why) {
    this._awaitWelcome = null;
    if (this._resume === null) {
      this._resume = this._token; // null when the server offers no recovery
    }
    if (this._serverClosed) {
      why = 'the server closed the connection and asked the client not to reconnect';
      this._resume = null;
    }
    this._failInFlight('connection lost before the response arrived (' + why +
      '); the request may or may not have been processed');
    if (this._final) {
      return;
    }
    if (this._serverClosed) {
      this._stop(why);
      return;
    }
    if (!this._strategy(timedOut ? 'timeout' : 'disconnect')) {
      this._stop('connection ' + why + ' and the reconnect strategy does not retry');
      return;
    }
    this._scheduleReconnect();
  };

  proto._strategy = function (name) {
    var strategy = this.options.strategy;
    if (strategy === false || strategy === null) {
      return false;
    }
    if (typeof strategy === 'string') {
      strategy = strategy.split(',');
    }
    return Array.isArray(strategy) && strategy.map(function (s) { return String(s).trim(); }).indexOf(name) >= 0;
  };

  /** The wait before reconnect attempt `attempt` (1, 2, ...): exponential, ±25% jitter, within [min, max]. */
  proto.backoff = function (attempt) {
    var r = this.options.reconnect || {};
    var min = Math.max(Number(r.min) || 0, 0);
    var max = limit(r.max);
    var factor = Math.max(Number(r.factor) || 1, 1);
    var base = min * Math.pow(factor, attempt - 1);
    var jittered = base * (0.75 + Math.random() * 0.5);
    return Math.round(Math.min(Math.max(jittered, min), max));
  };

  proto._scheduleReconnect = function () {
    var retries = limit((this.options.reconnect || {}).retries);
    if (this._attempt >= retries) {
      var text = 'gave up reconnecting after ' + this._attempt + ' attempt' + (this._attempt === 1 ? '' : 's');
      this.emit('error', new Error(text));
      this._stop(text);
      return;
    }
    this.state = 'reconnecting';
    if (this._offline) {
      return; // the browser is offline: wait for its "online" event
    }
    this._attempt += 1;
    var delay = this.backoff(this._attempt);
    this.emit('reconnecting', { attempt: this._attempt, retries: retries, delay: delay });
    this._timer('reconnect', delay, function () { this._open(); });
  };

  // The end: no more reconnecting; whatever waits fails with `why`.
  proto._stop = function (why) {
    this._final = true;
    this._clear('reconnect');
    this._listenToNetwork(false);
    this._failQueue(why);
    var waiters = this._waiters;
    this._waiters = [];
    waiters.forEach(function (done) { done(new Error(why)); });
    this._setState('disconnected');
  };

  /** disconnect(): close for good (no reconnecting); idempotent. connect() may open it again. */
  proto.disconnect = function () {
    this._openToken += 1;
    this._resume = null; // closed on purpose: the server keeps nothing to recover
    var ws = this._ws;
    if (ws) {
      this._detach(ws);
      try {
        ws.close(1000, 'client disconnect');
      } catch (e) { /* already closing */ }
    }
    this._failInFlight('the client disconnected (disconnect() was called) before the response arrived');
    if (!this._final || this.state !== 'disconnected') {
      this._stop('the client disconnected (disconnect() was called)');
    }
  };
  proto.end = proto.disconnect;

  // Browser online/offline events (options.network): offline closes the socket and waits;
  // online reconnects at once (strategy "online").
  proto._listenToNetwork = function (on) {
    var target = root && typeof root.addEventListener === 'function' ? root : null;
    if (!target) {
      return;
    }
    if (on && !this._networkHandlers && this.options.network) {
      var self = this;
      this._networkHandlers = {
        offline: function () { self._wentOffline(); },
        online: function () { self._cameOnline(); }
      };
      target.addEventListener('offline', this._networkHandlers.offline);
      target.addEventListener('online', this._networkHandlers.online);
    } else if (!on && this._networkHandlers) {
      target.removeEventListener('offline', this._networkHandlers.offline);
      target.removeEventListener('online', this._networkHandlers.online);
      this._networkHandlers = null;
    }
    this._offline = false;
  };

  proto._wentOffline = function () {
    if (this._final) {
      return;
    }
    this._offline = true;
    this.emit('offline');
    this._clear('reconnect');
    var ws = this._ws;
    if (ws) {
      this._detach(ws);
      try {
        ws.close(4000, 'browser offline'); // 4000: not leaving, the server keeps the state
      } catch (e) { /* already closing */ }
      this._lost(false, 'lost (the browser went offline)');
    }
  };

  proto._cameOnline = function () {
    if (!this._offline) {
      return;
    }
    this._offline = false;
    this.emit('online');
    if (this._final || this._ws) {
      return;
    }
    if (this._strategy('online')) {
      this._attempt = 0;
      this._clear('reconnect');
      this._open();
    } else {
      this._scheduleReconnect();
    }
  };

  // -- sending -------------------------------------------------------------------------

  proto._raw = function (text) {
    var ws = this._ws;
    if (ws && ws.readyState === OPEN) {
      ws.send(text);
      return true;
    }
    return false;
  };

  // Send now, bypassing the offline queue (used while (re)configuring a fresh socket).
  proto._transmit = function (payload, callback) {
    this.messageId += 1;
    payload.messageId = this.messageId;
    this._send({ messageId: this.messageId, text: JSON.stringify(payload), payload: payload, done: callback });
  };

  proto._send = function (request) {
    this.callbacks[request.messageId] = request.done;
    if (!this._raw(request.text)) {
      delete this.callbacks[request.messageId];
      var done = request.done;
      later(function () { done(errorResponse('not connected', request.messageId, request.payload)); });
    }
  };

  /** send(payload, callback): one request; its response (matched by messageId) goes to callback. */
  proto.send = function (payload, callback) {
    var self = this;
    return deliver(callback, function (done) {
      self.messageId += 1;
      var messageId = self.messageId;
      var request = { messageId: messageId, payload: payload, done: done };
      try {
        payload.messageId = messageId;
        request.text = JSON.stringify(payload);
      } catch (e) {
        later(function () { done(errorResponse('the request cannot be sent as JSON: ' + e.message, messageId, null)); });
        return;
      }
      if (self.state === 'connected' && self._ws && self._ws.readyState === OPEN) {
        self._send(request);
      } else if (self._final) {
        later(function () {
          done(errorResponse('not connected: call connect() first (client state: disconnected)', messageId, payload));
        });
      } else {
        self._enqueue(request);
      }
    });
  };

  // Offline: wait in the queue (at most queueSize requests) for `timeout` ms.
  proto._enqueue = function (request) {
    var size = limit(this.options.queueSize);
    if (this._queue.length >= size) {
      later(function () {
        request.done(errorResponse('not connected, and the offline queue is full (queueSize ' + size +
          '): request not sent', request.messageId, request.payload));
      });
      return;
    }
    this._queue.push(request);
    var timeout = Number(this.options.timeout);
    if (timeout > 0) {
      this._timer('queued' + request.messageId, timeout, function () {
        var i = this._queue.indexOf(request);
        if (i >= 0) {
          this._queue.splice(i, 1);
          request.done(errorResponse('not connected: the request waited ' + timeout +
            ' ms in the offline queue and was not sent', request.messageId, request.payload));
        }
      });
    }
  };

  proto._failQueue = function (why) {
    var queue = this._queue;
    this._queue = [];
    var self = this;
    queue.forEach(function (request) {
      self._clear('queued' + request.messageId);
      request.done(errorResponse(why + '; request not sent', request.messageId, request.payload));
    });
  };

  proto._failInFlight = function (why) {
    var callbacks = this.callbacks;
    this.callbacks = Object.create(null);
    Object.keys(callbacks).forEach(function (messageId) {
      callbacks[messageId](errorResponse(why, Number(messageId), null));
    });
  };

  // -- the verbs -----------------------------------------------------------------------

  /** action(name, params, callback): run an action over the WebSocket; the response carries `error`. */
  proto.action = function (action, params, callback) {
    if (typeof params === 'function' && callback === undefined) {
      callback = params;
      params = null;
    }
    var p = Object.assign({}, params || {});
    p.action = action;
    return this.send({ event: 'action', params: p }, callback);
  };

  /** actionWeb(name, params, callback): the same action over HTTP (GET apiPath?action=...), explicitly. */
  proto.actionWeb = function (action, params, callback) {
    if (typeof params === 'function' && callback === undefined) {
      callback = params;
      params = null;
    }
    var options = this.options;
    return deliver(callback, function (done) {
      var base = String(options.url || '').replace(/\/+$/, '');
      var path = String(options.apiPath || '/api').replace(/\/+$/, '');
      fetch(base + path + '/' + encodeURIComponent(action), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(params || {}),
        credentials: 'same-origin'
      }).then(function (response) {
        return response.json();
      }).then(done, function (e) {
        done({ error: 'Error: HTTP request failed: ' + e.message });
      });
    });
  };

  /** say(room, message, callback): send a chat message (any JSON value) to a room joined. */
  proto.say = function (room, message, callback) {
    return this.send({ event: 'say', room: room, message: message }, callback);
  };

  /** file(name, callback): a file under public/ → {content, context, error, length, messageCount, mime}. */
  proto.file = function (file, callback) {
    return this.send({ event: 'file', file: file }, callback);
  };

  /** detailsView(callback): this connection's details; the answer is also kept on client.details. */
  proto.detailsView = function (callback) {
    var self = this;
    return deliver(callback, function (done) {
      self.send({ event: 'detailsView' }, function (response) {
        if (!response.error) {
          self._saveDetails(response);
        }
        done(response);
      });
    });
  };

  /** roomView(room, callback): the members of a room this connection is in. */
  proto.roomView = function (room, callback) {
    return this.send({ event: 'roomView', room: room }, callback);
  };

  /** roomAdd(room, callback): join a room; it is rejoined after every reconnect. */
  proto.roomAdd = function (room, callback) {
    var self = this;
    return deliver(callback, function (done) {
      self.send({ event: 'roomAdd', room: room }, function (response) {
        if (!response.error || response.error.indexOf('already in this room') >= 0) {
          self._rememberRoom(room);
          self._position(room, response.history);
        }
        done(response);
      });
    });
  };

  /** roomLeave(room, callback): leave a room; it is not rejoined after a reconnect. */
  proto.roomLeave = function (room, callback) {
    this._forgetRoom(room);
    return this.send({ event: 'roomLeave', room: room }, callback);
  };

  /** documentation(callback): every action with its versions and inputs. */
  proto.documentation = function (callback) {
    return this.send({ event: 'documentation' }, callback);
  };

  ActionheroClient.ActionheroClient = ActionheroClient;
  ActionheroClient.ActionheroWebsocketClient = ActionheroClient;
  ActionheroClient.defaults = defaults;
  return ActionheroClient;
});
