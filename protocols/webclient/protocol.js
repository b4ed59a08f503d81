// The CIM protocol over WebSocket, JSON flavour ("cim.v1.json"): one text message per frame,
// {"cmd": name or id, "seq": n, "body": {...}} with the body in protobuf's canonical JSON mapping.
//
// ChatConnection owns one socket at a time and keeps it alive: it logs in with the stored token
// on every (re)connect, sends heartbeats, matches answers to requests by seq, hands pushes to the
// app, and reconnects with exponential backoff and jitter when the socket drops. What was missed
// while offline is fetched by the app (see onOnline in app.js): storage is the source of truth.

// The protocol table comes from the server (/app/protocol-table.js, generated from cim.proto):
// command ids, the answer each request expects, and every enum's values by name. Nothing about
// the protocol is written twice.
import { Cmd as TABLE_CMD, ENUMS, RESPONSE_OF as TABLE_RESPONSE_OF } from "./protocol-table.js";

export const SUBPROTOCOL = "cim.v1.json";

// Command ids by name (CIMCmdID without kCIM_CID_). Only names are sent; ids are accepted too.
export const Cmd = TABLE_CMD;

const CMD_NAMES = new Map(Object.entries(Cmd).map(([name, id]) => [id, name]));

// The answer each request expects (same seq). ERROR_RSP may answer any of them.
const RESPONSE_OF = TABLE_RESPONSE_OF;

// Error codes (CIMErrorCode) by short name: ErrorCode.NOT_FOUND = 10009.
export const ErrorCode = Object.freeze(
  Object.fromEntries(
    Object.entries(ENUMS.CIMErrorCode).map(([name, value]) => [name.replace(/^kCIM_ERR(OR)?_/, ""), value]),
  ),
);

// Enum names as the JSON mapping may write them; numbers pass through unchanged.
const ENUM_VALUES = Object.assign({}, ...Object.values(ENUMS));

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

// ---- the one protobuf message read in the browser ----------------------------------------------

/**
 * A serialized CIMMsgData (a group command's answer carries the NOTIFICATION message it caused,
 * attachNotificatinoMsg, as protobuf bytes, base64 in JSON) in the JSON mapping's shape, as a
 * MSG_DATA push would carry it; null if it cannot be read.
 */
export function decodeMsgData(base64) {
  let bytes;
  try {
    bytes = Uint8Array.from(atob((base64 || "").replace(/-/g, "+").replace(/_/g, "/")), (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
  if (!bytes.length) return null;
  let pos = 0;
  const varint = () => {
    // Numbers, not BigInt: ids stay far below 2^53. Multiplying keeps bits above 31.
    let value = 0;
    for (let scale = 1; pos < bytes.length; scale *= 128) {
      const byte = bytes[pos++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
    }
    throw new RangeError("truncated varint");
  };
  const chunk = () => {
    const length = varint();
    if (pos + length > bytes.length) throw new RangeError("truncated field");
    pos += length;
    return bytes.subarray(pos - length, pos);
  };
  const toBase64 = (part) => btoa(Array.from(part, (b) => String.fromCharCode(b)).join(""));
  const text = (part) => new TextDecoder("utf-8").decode(part);
  const out = { atUserList: [] };
  try {
    while (pos < bytes.length) {
      const key = varint();
      const field = Math.floor(key / 8);
      const wire = key % 8;
      if (wire === 0) {
        const value = varint();
        const names = { 1: "fromUserId", 3: "toSessionId", 5: "serverMsgId", 6: "createTime", 7: "msgType", 8: "sessionType" };
        if (field === 10) out.atUserList.push(String(value));
        else if (field === 11) out.atAll = value !== 0;
        else if (names[field]) out[names[field]] = [1, 3, 5].includes(field) ? String(value) : value;
      } else if (wire === 2) {
        const part = chunk();
        if (field === 2) out.fromNickName = text(part);
        else if (field === 4) out.clientMsgId = text(part);
        else if (field === 9) out.msgData = toBase64(part);
        else if (field === 10) {
          // packed repeated uint64
          const end = pos;
          pos -= part.length;
          while (pos < end) out.atUserList.push(String(varint()));
        }
      } else if (wire === 5) pos += 4;
      else if (wire === 1) pos += 8;
      else throw new RangeError(`wire type ${wire}`);
    }
  } catch {
    return null;
  }
  return out;
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
 * options.onSendError(cmd, code, text, seq)  ERROR_RSP for a send() (no request waits for it)
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

  /** Send something that gets no answer on success (delivery and read acks, typing notices): its
   * seq, or 0 if offline. A refusal (ERROR_RSP with that seq) goes to options.onSendError. */
  send(cmd, body = {}) {
    if (!this._isOpen()) return 0;
    const seq = this._nextSeq();
    this._write(cmdName(cmd), seq, body);
    return seq;
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
    if (name === "ERROR_RSP") {
      // The refusal of a fire-and-forget send (a typing notice to a group too big for them ...).
      this.options.onSendError?.(cmdName(num(body.cmdId)), num(body.errorCode), body.errorMsg || "", seq);
      return;
    }
    if (name === "LOGIN_HEARTBEAT") return; // the answer to a heartbeat that timed out
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
