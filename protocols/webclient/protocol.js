// The CIM protocol over WebSocket, JSON flavour ("cim.v1.json"): one text message per frame,
// {"cmd": name or id, "seq": n, "body": {...}} with the body in protobuf's canonical JSON mapping.
//
// ChatConnection owns one socket at a time and keeps it alive: it logs in with the stored token
// on every (re)connect, sends heartbeats, matches answers to requests by seq, hands pushes to the
// app, and reconnects with exponential backoff and jitter when the socket drops. What was missed
// while offline is fetched by the app (see onOnline in app.js): storage is the source of truth.

export const SUBPROTOCOL = "cim.v1.json";

// Command ids (protocols/cim/__init__.py, Cmd). Only names are sent; ids are accepted too.
export const Cmd = Object.freeze({
  LOGIN_AUTH_TOKEN_REQ: 0x0101,
  LOGIN_AUTH_TOKEN_RSP: 0x0102,
  LOGIN_AUTH_LOGOUT_REQ: 0x0103,
  LOGIN_AUTH_LOGOUT_RSP: 0x0104,
  LOGIN_HEARTBEAT: 0x0105,
  LOGIN_AUTH_REQ: 0x0107,
  LOGIN_AUTH_RSP: 0x0108,
  LIST_RECENT_CONTACT_SESSION_REQ: 0x0201,
  LIST_RECENT_CONTACT_SESSION_RSP: 0x0202,
  LIST_MSG_REQ: 0x0205,
  LIST_MSG_RSP: 0x0206,
  MSG_DATA: 0x0301,
  MSG_DATA_ACK: 0x0302,
  MSG_READ_ACK: 0x0303,
  MSG_READ_NOTIFY: 0x0304,
  MSG_GET_LATEST_MSG_ID_REQ: 0x0305,
  MSG_GET_LATEST_MSG_ID_RSP: 0x0306,
  MSG_GET_BY_MSG_ID_REQ: 0x0307,
  MSG_GET_BY_MSG_ID_RSP: 0x0308,
  FRIEND_QUERY_USER_LIST_REQ: 0x0601,
  FRIEND_QUERY_USER_LIST_RSP: 0x0602,
  ERROR_RSP: 0x0801,
  KICKOUT_NOTIFY: 0x0802,
});

const CMD_NAMES = new Map(Object.entries(Cmd).map(([name, id]) => [id, name]));

// The answer each request expects (same seq). ERROR_RSP may answer any of them.
const RESPONSE_OF = {
  LOGIN_AUTH_TOKEN_REQ: "LOGIN_AUTH_TOKEN_RSP",
  LOGIN_AUTH_LOGOUT_REQ: "LOGIN_AUTH_LOGOUT_RSP",
  LOGIN_HEARTBEAT: "LOGIN_HEARTBEAT",
  LIST_RECENT_CONTACT_SESSION_REQ: "LIST_RECENT_CONTACT_SESSION_RSP",
  LIST_MSG_REQ: "LIST_MSG_RSP",
  MSG_DATA: "MSG_DATA_ACK",
  MSG_GET_LATEST_MSG_ID_REQ: "MSG_GET_LATEST_MSG_ID_RSP",
  MSG_GET_BY_MSG_ID_REQ: "MSG_GET_BY_MSG_ID_RSP",
  FRIEND_QUERY_USER_LIST_REQ: "FRIEND_QUERY_USER_LIST_RSP",
};

// Error codes (CIMErrorCode) the client acts on.
export const ErrorCode = Object.freeze({
  SUCCESS: 200,
  LOGIN_INVALID_USER_TOKEN: 2002,
  LOGIN_INVALID_USER_OR_PWD: 2003,
  USER_ALREADY_EXIST: 9000,
  USER_INVALID_PARAMETER: 9001,
  RATE_LIMITED: 10007,
  USER_DISABLED: 10010,
  SESSION_REPLACED: 10014,
});

// Enum names as the JSON mapping may write them; numbers pass through unchanged.
const ENUM_VALUES = {
  kCIM_ERR_UNKNOWN: 0,
  kCIM_ERR_SUCCESS: 200,
  kCIM_ERR_INTERNAL_ERROR: 201,
  kCIM_ERR_LOGIN_INVALID_USER_TOKEN: 2002,
  kCIM_ERR_LOGIN_INVALID_USER_OR_PWD: 2003,
  kCIM_ERROR_USER_NOT_EXIST: 9002,
  kCIM_ERR_RATE_LIMITED: 10007,
  kCIM_ERR_USER_DISABLED: 10010,
  kCIM_ERR_SESSION_REPLACED: 10014,
  kCIM_ERR_SERVER_SHUTDOWN: 10015,
  kCIM_ERR_IDLE_TIMEOUT: 10016,
  kCIM_RES_CODE_UNKNOWN: 0,
  kCIM_RES_CODE_OK: 1,
  kCIM_SESSION_TYPE_SINGLE: 1,
  kCIM_SESSION_TYPE_GROUP: 2,
  kCIM_MSG_TYPE_TEXT: 1,
  kCIM_MSG_TYPE_FILE: 2,
  kCIM_MSG_TYPE_IMAGE: 3,
  kCIM_MSG_TYPE_AUDIO: 4,
  kCIM_MSG_TYPE_VIDEO: 5,
  kCIM_MSG_TYPE_LOCATION: 6,
  kCIM_MSG_STATUS_UNREAD: 1,
  kCIM_MSG_STATUS_READ: 2,
  kCIM_MSG_STATUS_SENT: 5,
};

/** A number from a JSON field: uint64 arrive as strings, enums possibly as names, defaults absent. */
export function num(value) {
  if (value === undefined || value === null || value === "") return 0;
  if (typeof value === "string" && Object.hasOwn(ENUM_VALUES, value)) return ENUM_VALUES[value];
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

/** The readable name of a command id or name ("MSG_DATA"), or "" for an unknown one. */
export function cmdName(cmd) {
  if (typeof cmd === "string") return Object.hasOwn(Cmd, cmd) ? cmd : /^\d+$/.test(cmd) ? cmdName(Number(cmd)) : "";
  return CMD_NAMES.get(cmd) || "";
}

// ---- text <-> base64 (message bodies are bytes: UTF-8 text for text messages) ----------------

export function textToBase64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function base64ToText(data) {
  if (!data) return "";
  try {
    // The JSON mapping may use the URL-safe alphabet; atob wants the standard one.
    const binary = atob(data.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
    return new TextDecoder("utf-8").decode(bytes);
  } catch {
    return "";
  }
}

export function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}

// ---- errors --------------------------------------------------------------------------------

/** The server refused a request (ERROR_RSP, or a login answer with a failing result code). */
export class ServerError extends Error {
  constructor(code, message, cmd = "") {
    super(message || `error ${code}`);
    this.name = "ServerError";
    this.code = code;
    this.cmd = cmd;
  }
}

/** The request got no answer: the socket closed, or the timeout passed. */
export class NoAnswerError extends Error {
  constructor(message) {
    super(message);
    this.name = "NoAnswerError";
  }
}

// ---- the connection --------------------------------------------------------------------------

const DEFAULTS = {
  requestTimeout: 15000, // ms an answer may take before the request fails
  heartbeatInterval: 30000, // the server closes connections silent for 60 s
  backoffBase: 1000, // first reconnect delay (ms), doubled on each failure ...
  backoffMax: 30000, // ... up to this
  connectTimeout: 10000, // a socket that has not opened (or logged in) by then is given up
};

/**
 * One logical connection to the server that survives socket drops.
 *
 * options.url            ws(s):// URL of the endpoint
 * options.credentials()  -> {userId, token} or null (no stored login: stay offline)
 * options.onPush(name, body, seq)   a server push (MSG_DATA, MSG_READ_NOTIFY, ...)
 * options.onOnline(userInfo)        logged in on a fresh socket: time to catch up
 * options.onState(state, detail)    "connecting" | "online" | "offline" | "stopped"
 * options.onAuthFailed(code, text)  the token was refused: no reconnecting until a new login
 * options.onKickout(code, reason)   the server said why it is closing
 */
export class ChatConnection {
  constructor(options) {
    this.options = { ...DEFAULTS, ...options };
    this.socket = null;
    this.state = "stopped";
    this.seq = 0;
    this.pending = new Map(); // seq -> {cmd, expect, resolve, reject, timer}
    this.attempt = 0; // failed connects in a row, for the backoff
    this.reconnectTimer = null;
    this.heartbeatTimer = null;
    this.connectTimer = null;
    this.stopped = true;
  }

  /** Connect (and keep reconnecting) until stop(). */
  start() {
    this.stopped = false;
    this.attempt = 0;
    this._connect();
  }

  /** Close for good: no reconnect until start() again. */
  stop() {
    this.stopped = true;
    this._cancelReconnect();
    this._dropSocket("stopped");
    this._setState("stopped");
  }

  /** Reconnect now (e.g. the browser says the network is back) instead of waiting for the backoff. */
  reconnectNow() {
    if (this.stopped || this.state === "online" || this.state === "connecting") return;
    this._cancelReconnect();
    this.attempt = 0;
    this._connect();
  }

  get online() {
    return this.state === "online";
  }

  /** Send a request and wait for its answer's body; rejects with ServerError or NoAnswerError. */
  request(cmd, body = {}, { timeout } = {}) {
    const name = cmdName(cmd);
    const expect = RESPONSE_OF[name];
    if (!expect) return Promise.reject(new Error(`${name || cmd} is not a request`));
    if (!this._isOpen()) return Promise.reject(new NoAnswerError("not connected"));
    return new Promise((resolve, reject) => {
      const seq = this._nextSeq();
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new NoAnswerError(`no answer to ${name} in time`));
        // No answer at all usually means a dead socket the browser has not noticed yet.
        if (name === "LOGIN_HEARTBEAT") this._lost("heartbeat timeout");
      }, timeout ?? this.options.requestTimeout);
      this.pending.set(seq, { cmd: name, expect, resolve, reject, timer });
      this._write(name, seq, body);
    });
  }

  /** Send something that gets no answer (delivery acks, read acks); false if offline. */
  send(cmd, body = {}) {
    if (!this._isOpen()) return false;
    this._write(cmdName(cmd), this._nextSeq(), body);
    return true;
  }

  // -- internals

  _isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  _nextSeq() {
    // 1..65535, skipping seqs still waiting for an answer.
    do {
      this.seq = (this.seq % 65535) + 1;
    } while (this.pending.has(this.seq));
    return this.seq;
  }

  _write(name, seq, body) {
    this.socket.send(JSON.stringify({ cmd: name, seq, body }));
  }

  _setState(state, detail = "") {
    if (this.state === state) return;
    this.state = state;
    this.options.onState?.(state, detail);
  }

  _connect() {
    const credentials = this.options.credentials();
    this._cancelReconnect();
    this._dropSocket("reconnect");
    if (this.stopped || !credentials) return;
    this._setState("connecting");
    let socket;
    try {
      socket = new WebSocket(this.options.url, SUBPROTOCOL);
    } catch (e) {
      this._scheduleReconnect(String(e));
      return;
    }
    this.socket = socket;
    // A socket that neither opens nor logs in within the timeout is abandoned and retried.
    this.connectTimer = setTimeout(() => {
      if (this.socket === socket && this.state !== "online") this._lost("connect timeout");
    }, this.options.connectTimeout);
    socket.onopen = () => this._login(socket, credentials);
    socket.onmessage = (event) => this._received(socket, event.data);
    socket.onclose = (event) => {
      if (socket === this.socket) this._lost(`closed (${event.code})`);
    };
    socket.onerror = () => {}; // onclose follows with what there is to know
  }

  async _login(socket, credentials) {
    let rsp;
    try {
      rsp = await this.request("LOGIN_AUTH_TOKEN_REQ", {
        userId: String(credentials.userId),
        userToken: credentials.token,
        clientType: 3, // kCIM_CLIENT_TYPE_WEB
        clientVersion: "coffeechat-web/1",
      });
    } catch {
      return; // the socket dropped or the server did not answer: onclose/timeout reconnect
    }
    if (socket !== this.socket) return;
    const code = num(rsp.resultCode);
    if (code !== ErrorCode.SUCCESS) {
      // A refused token will be refused again: stop and let the user log in anew.
      this.stop();
      this.options.onAuthFailed?.(code, rsp.resultString || "login refused");
      return;
    }
    clearTimeout(this.connectTimer);
    this.attempt = 0;
    this._setState("online");
    this._startHeartbeat();
    this.options.onOnline?.(rsp.userInfo || {});
  }

  _startHeartbeat() {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      this.request("LOGIN_HEARTBEAT", {}, { timeout: 10000 }).catch(() => {});
    }, this.options.heartbeatInterval);
  }

  _received(socket, data) {
    if (socket !== this.socket || typeof data !== "string") return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    const name = cmdName(frame.cmd);
    const body = frame.body || {};
    const seq = num(frame.seq);
    const waiting = this.pending.get(seq);
    // Pushes use the server's own seq counter, so a seq alone does not make an answer: the
    // command must be the one the request expects (or ERROR_RSP naming the request).
    if (waiting && (name === waiting.expect || (name === "ERROR_RSP" && cmdName(num(body.cmdId)) === waiting.cmd))) {
      this.pending.delete(seq);
      clearTimeout(waiting.timer);
      if (name === "ERROR_RSP") waiting.reject(new ServerError(num(body.errorCode), body.errorMsg, waiting.cmd));
      else waiting.resolve(body);
      return;
    }
    if (name === "KICKOUT_NOTIFY") {
      this._kickedOut(num(body.reasonCode), body.reason || "");
      return;
    }
    if (name === "ERROR_RSP" || name === "LOGIN_HEARTBEAT") return; // answers to fire-and-forget sends
    this.options.onPush?.(name, body, seq);
  }

  _kickedOut(code, reason) {
    this.options.onKickout?.(code, reason);
    // Reconnecting would only repeat these (and a replaced session would kick the other device).
    if (code === ErrorCode.SESSION_REPLACED || code === ErrorCode.USER_DISABLED) this.stop();
  }

  /** The socket is gone or useless: forget it and try again later. */
  _lost(why) {
    this._dropSocket(why);
    this._scheduleReconnect(why);
  }

  /** Forget the current socket: fail its requests, stop its timers, close it. */
  _dropSocket(why) {
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.connectTimer);
    const socket = this.socket;
    this.socket = null;
    for (const [, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new NoAnswerError(why));
    }
    this.pending.clear();
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) socket.close();
    }
  }

  _scheduleReconnect(why) {
    if (this.stopped || this.reconnectTimer !== null) return;
    this._setState("offline", why);
    // Exponential backoff with jitter (a random delay in [half, full]): after a server restart,
    // clients do not all come back in the same instant.
    const ceiling = Math.min(this.options.backoffMax, this.options.backoffBase * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt = Math.min(this.attempt + 1, 10);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this._connect();
    }, delay);
  }

  _cancelReconnect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }
}
