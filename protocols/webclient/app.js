// The CoffeeChat web client: login and registration, the conversation list, one chat view.
//
// Everything shown that came from a user (names, messages) goes into the page through
// textContent or createElement, never innerHTML, so nothing anyone types can run as markup.
// State lives in plain objects below; render functions redraw from it after each change.

import { md5Hex } from "./md5.js";
import {
  ChatConnection,
  ErrorCode,
  NoAnswerError,
  ServerError,
  base64ToText,
  num,
  textToBase64,
  utf8Length,
} from "./protocol.js";

const STORAGE_KEY = "coffeechat.session";
const PAGE_SIZE = 30; // history messages per LIST_MSG_REQ when scrolling back
const CATCH_UP_PAGES = 5; // past this many pages missed, drop the cached history and start anew
const MAX_TEXT_BYTES = 12 * 1024; // the server's default limits.max_text_bytes
const SINGLE = 1; // kCIM_SESSION_TYPE_SINGLE
const TEXT = 1; // kCIM_MSG_TYPE_TEXT
const STATUS_READ = 2; // kCIM_MSG_STATUS_READ
const RES_OK = 1; // kCIM_RES_CODE_OK
const PHONE = window.matchMedia("(max-width: 720px)");
const EMOJI = ["😀", "😂", "😊", "😍", "🤔", "😎", "😢", "😮", "👍", "👎", "🙏", "👏", "🎉", "❤️", "🔥", "☕", "✅", "👋", "🚀", "🍕"];
const TYPE_LABELS = { 2: "File", 3: "Photo", 4: "Voice message", 5: "Video", 6: "Location", 8: "Tip", 10: "Call" };

// ---- state ---------------------------------------------------------------------------------

const state = {
  session: null, // {userId, userName, nickName, token, expiresAt}
  users: new Map(), // userId -> nick name
  chats: new Map(), // peer's userId -> chat (see newChat)
  openPeer: 0, // the conversation in the chat view, 0 = none
  screen: "list", // on a phone only one of "list" and "chat" shows
  notice: "",
};
const outbox = new Map(); // clientMsgId -> {peerId, text, inFlight}: sent, not yet acknowledged
let connection = null;
let activity = 0; // counts conversation updates, to order the list within the same second

function newChat(peerId) {
  return {
    peerId,
    messages: new Map(), // serverMsgId -> message, for the part of the history we hold
    pending: new Map(), // clientMsgId -> own message awaiting its ack
    loaded: false, // holds the newest page (else only the summary from the list is known)
    oldest: 0, // lowest serverMsgId held
    latest: 0, // newest serverMsgId of the conversation that we know of
    myRead: 0, // our read position (unread = latest - myRead, as the server counts)
    peerRead: 0, // the peer's read position: our messages up to it show ✓✓
    preview: null, // {text, time, fromMe, seq}: the newest message, for the list
    touched: 0, // the value of `activity` when the conversation last moved up the list
    loadingOlder: false,
    syncing: null, // the running catch-up, so that two do not overlap
  };
}

function chatFor(peerId) {
  let chat = state.chats.get(peerId);
  if (!chat) {
    chat = newChat(peerId);
    state.chats.set(peerId, chat);
  }
  return chat;
}

const me = () => (state.session ? state.session.userId : 0);
const unreadOf = (chat) => Math.max(0, chat.latest - chat.myRead);
const nameOf = (userId) => state.users.get(userId) || `User ${userId}`;

// ---- DOM helpers -----------------------------------------------------------------------------

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

/** createElement with a class, a data-testid and text (as text, never markup). */
function el(tag, { cls, testid, text, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (testid) node.dataset.testid = testid;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function avatar(userId, name) {
  // The colour comes from the id so a person keeps it everywhere; the letter is text.
  const initial = Array.from((name || "?").trim())[0] || "?";
  return el("span", { cls: `avatar c${userId % 8}`, text: initial.toUpperCase(), attrs: { "aria-hidden": "true" } });
}

function formatTime(seconds, withDate = false) {
  if (!seconds) return "";
  const date = new Date(seconds * 1000);
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === today.toDateString()) return time;
  const day = date.toLocaleDateString([], { month: "short", day: "numeric" });
  return withDate ? `${day} ${time}` : day;
}

function messageText(type, data) {
  if (type === TEXT || type === 0) return base64ToText(data);
  return `[${TYPE_LABELS[type] || "Message"}]`;
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID(); // only in secure contexts (https, localhost)
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---- stored login ----------------------------------------------------------------------------

function loadSession() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    if (saved && saved.token && saved.userId && (!saved.expiresAt || saved.expiresAt * 1000 > Date.now())) return saved;
  } catch {
    // unreadable: log in again
  }
  localStorage.removeItem(STORAGE_KEY);
  return null;
}

function saveSession(session) {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

// ---- HTTP: register, log in, log out -----------------------------------------------------------

async function postJson(path, body, token, signal) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  // Relative to the page, so the client also works behind a proxy under a sub-path.
  const url = new URL(path, document.baseURI);
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), signal });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok && answer.error_code === undefined) answer.error_code = response.status;
  return answer;
}

const LOGIN_ERRORS = {
  [ErrorCode.LOGIN_INVALID_USER_OR_PWD]: "Wrong user name or password.",
  [ErrorCode.USER_ALREADY_EXIST]: "That user name is taken.",
  [ErrorCode.RATE_LIMITED]: "Too many attempts. Wait a minute and try again.",
  [ErrorCode.USER_DISABLED]: "This account is disabled.",
};

const NAME_PATTERN = /^[A-Za-z0-9_.@-]{5,32}$/;

let registering = false;

function setLoginMode(register) {
  registering = register;
  $("login-screen").classList.toggle("registering", register);
  $("login-tab").setAttribute("aria-selected", String(!register));
  $("register-tab").setAttribute("aria-selected", String(register));
  $("login-submit").textContent = register ? "Create account" : "Log in";
  $("login-nickname").required = register;
  $("login-username").placeholder = register ? "5 to 32 letters, digits or _ . @ -" : "";
  $("login-password").autocomplete = register ? "new-password" : "current-password";
  showLoginError("");
}

function showLoginError(text) {
  $("login-error").textContent = text;
}

async function submitLogin(event) {
  event.preventDefault();
  const userName = $("login-username").value.trim();
  const password = $("login-password").value;
  const nickName = $("login-nickname").value.trim();
  if (!NAME_PATTERN.test(userName)) {
    showLoginError("A user name is 5 to 32 letters, digits or _ . @ -");
    return;
  }
  if (!password) {
    showLoginError("Enter a password.");
    return;
  }
  const button = $("login-submit");
  button.disabled = true;
  try {
    const userPwd = md5Hex(password); // what every CIM client sends instead of the password
    if (registering) {
      const answer = await postJson("user/register", { userName, userNickName: nickName || userName, userPwd });
      if (answer.error_code !== ErrorCode.SUCCESS) {
        showLoginError(LOGIN_ERRORS[answer.error_code] || answer.error_msg || "Registration failed.");
        return;
      }
    }
    const answer = await postJson("api/login", { userName, userPwd });
    if (answer.error_code !== ErrorCode.SUCCESS) {
      showLoginError(LOGIN_ERRORS[answer.error_code] || answer.error_msg || "Login failed.");
      return;
    }
    const session = {
      userId: num(answer.user_id),
      userName,
      nickName: answer.nick_name || userName,
      token: answer.token,
      expiresAt: num(answer.expires_at),
    };
    saveSession(session);
    $("login-form").reset();
    startSession(session);
  } catch {
    showLoginError("The server cannot be reached. Try again.");
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  const token = state.session?.token;
  connection?.stop();
  if (token) {
    // Revoke the token on the server too, so a copy of it is worth nothing. A server that does
    // not answer soon does not keep the user here: the token expires by itself.
    await postJson("api/logout", {}, token, AbortSignal.timeout(5000)).catch(() => {});
  }
  endSession("");
}

// ---- session lifecycle -------------------------------------------------------------------------

function startSession(session) {
  state.session = session;
  state.users.set(session.userId, session.nickName);
  state.notice = "";
  if (!connection) connection = createConnection();
  connection.start();
  showScreen("main");
  render();
}

/** Back to the login screen, forgetting everything about the account. */
function endSession(message) {
  connection?.stop();
  localStorage.removeItem(STORAGE_KEY);
  state.session = null;
  state.users.clear();
  state.chats.clear();
  state.openPeer = 0;
  state.screen = "list";
  outbox.clear();
  $("message-list").replaceChildren();
  messageNodes.clear();
  showScreen("login");
  setLoginMode(false);
  showLoginError(message);
}

function createConnection() {
  const url = new URL("ws", document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return new ChatConnection({
    url: url.href,
    credentials: () => (state.session ? { userId: state.session.userId, token: state.session.token } : null),
    onState: () => renderStatus(),
    onOnline: (userInfo) => {
      if (userInfo.nickName) {
        state.session.nickName = userInfo.nickName;
        state.users.set(me(), userInfo.nickName);
      }
      state.notice = "";
      catchUp();
    },
    onPush: handlePush,
    onAuthFailed: () => endSession("Your session has expired. Please log in again."),
    onKickout: (code, reason) => {
      if (code === ErrorCode.USER_DISABLED) endSession("This account has been disabled.");
      else if (code === ErrorCode.SESSION_REPLACED) setNotice("Signed out here because you signed in on too many devices.");
      else if (reason) setNotice(`Disconnected: ${reason}. Reconnecting…`);
    },
  });
}

function setNotice(text) {
  state.notice = text;
  renderStatus();
}

// ---- catching up -------------------------------------------------------------------------------

/** After each (re)connect: names, the conversation list, whatever the held histories missed,
 * then the sends that were waiting for a connection. */
async function catchUp() {
  try {
    await loadUsers();
    const rsp = await connection.request("LIST_RECENT_CONTACT_SESSION_REQ", { latestUpdateTime: 0 });
    // The list comes most recent first: apply it oldest first so ties keep the server's order.
    for (const entry of (rsp.contactSessionList || []).slice().reverse()) applySummary(entry);
    render();
    const open = state.openPeer ? chatFor(state.openPeer) : null;
    const fresh = open && !open.loaded ? open : null;
    if (fresh) await loadNewest(fresh);
    for (const chat of state.chats.values()) if (chat.loaded && chat !== fresh) await syncNewest(chat);
    flushOutbox();
    markReadIfVisible();
  } catch (e) {
    if (!(e instanceof NoAnswerError)) console.warn("catch-up failed", e);
    // Offline again: the next reconnect catches up anew.
  }
}

async function loadUsers() {
  const rsp = await connection.request("FRIEND_QUERY_USER_LIST_REQ", {});
  const users = [];
  for (const info of rsp.userInfoList || []) {
    const userId = num(info.userId);
    state.users.set(userId, info.nickName || `User ${userId}`);
    users.push(userId);
  }
  return users;
}

/** One entry of the conversation list: the newest message and the unread count. */
function applySummary(entry) {
  if (num(entry.sessionType) !== SINGLE) return; // groups are not supported yet
  const chat = chatFor(num(entry.sessionId));
  const latest = num(entry.serverMsgId);
  chat.latest = Math.max(chat.latest, latest);
  // The server counts unread as latest - read position; keep a position we moved ourselves.
  chat.myRead = Math.max(chat.myRead, latest - num(entry.unreadCnt));
  if (latest && (!chat.preview || latest >= chat.preview.seq)) {
    chat.touched = ++activity;
    chat.preview = {
      seq: latest,
      text: messageText(num(entry.msgType), entry.msgData),
      time: num(entry.msgTimeStamp) || num(entry.updatedTime),
      fromMe: num(entry.msgFromUserId) === me(),
    };
  }
}

function fromInfo(info) {
  return {
    seq: num(info.serverMsgId),
    clientMsgId: info.clientMsgId || "",
    from: num(info.fromUserId),
    time: num(info.createTime),
    type: num(info.msgType),
    text: messageText(num(info.msgType), info.msgData),
    status: num(info.msgStatus),
  };
}

async function fetchPage(chat, endMsgId, limit) {
  const rsp = await connection.request("LIST_MSG_REQ", {
    sessionType: SINGLE,
    sessionId: String(chat.peerId),
    endMsgId: String(endMsgId),
    limitCount: limit,
  });
  const page = (rsp.msgList || []).map(fromInfo).filter((m) => m.seq > 0);
  page.sort((a, b) => a.seq - b.seq);
  for (const message of page) addMessage(chat, message);
  return page;
}

/** The newest page of a conversation we have not held yet. */
async function loadNewest(chat) {
  const page = await fetchPage(chat, 0, PAGE_SIZE);
  chat.loaded = true;
  if (!page.length) chat.oldest = 1; // nothing there: the history starts here
  render({ toBottom: true });
}

/** Page backwards from the newest message until we meet what we already hold (a gap in the
 * dense ids, or messages missed while offline). Also refreshes read states of the newest page. */
function syncNewest(chat) {
  if (chat.syncing) return chat.syncing;
  chat.syncing = (async () => {
    try {
      const top = contiguousTop(chat);
      let end = 0;
      for (let pages = 0; ; pages++) {
        if (pages === CATCH_UP_PAGES) {
          // Too much missed to page through: keep only the newest pages (scrolling back loads more).
          for (const seq of chat.messages.keys()) if (seq <= top) chat.messages.delete(seq);
          chat.oldest = Math.min(...chat.messages.keys());
          break;
        }
        const page = await fetchPage(chat, end, 100);
        if (!page.length || page[0].seq <= top + 1) break;
        end = page[0].seq;
      }
    } finally {
      chat.syncing = null;
    }
    render();
  })();
  return chat.syncing;
}

/** The highest id up to which we hold every message from our oldest one on. */
function contiguousTop(chat) {
  let seq = chat.oldest;
  if (!seq) return 0;
  while (chat.messages.has(seq + 1)) seq++;
  return seq;
}

/** Add (or refresh) one stored message of a conversation. */
function addMessage(chat, message) {
  const mine = message.from === me();
  const known = chat.messages.get(message.seq);
  chat.messages.set(message.seq, known ? { ...known, ...message } : message);
  chat.oldest = chat.oldest ? Math.min(chat.oldest, message.seq) : message.seq;
  chat.latest = Math.max(chat.latest, message.seq);
  if (mine) {
    chat.pending.delete(message.clientMsgId);
    chat.myRead = Math.max(chat.myRead, message.seq); // one has read what one wrote
    if (message.status === STATUS_READ) chat.peerRead = Math.max(chat.peerRead, message.seq);
  } else {
    chat.peerRead = Math.max(chat.peerRead, message.seq); // the peer has read what they wrote
    if (message.status === STATUS_READ) chat.myRead = Math.max(chat.myRead, message.seq);
  }
  if (!chat.preview || message.seq > chat.preview.seq) chat.touched = ++activity;
  if (!chat.preview || message.seq >= chat.preview.seq) {
    chat.preview = { seq: message.seq, text: message.text, time: message.time, fromMe: mine };
  }
}

/** Add a message that arrived live. A conversation whose history is not loaded keeps only its
 * summary: holding stray messages would leave holes once its newest page is loaded. */
function remember(chat, message) {
  addMessage(chat, message);
  if (!chat.loaded) {
    chat.messages.clear();
    chat.oldest = 0;
  }
}

// ---- pushes --------------------------------------------------------------------------------------

function handlePush(name, body) {
  if (name === "MSG_DATA") receiveMessage(body);
  else if (name === "MSG_READ_NOTIFY") receiveReadNotify(body);
}

function receiveMessage(body) {
  const from = num(body.fromUserId);
  const peerId = from === me() ? num(body.toSessionId) : from;
  const seq = num(body.serverMsgId);
  // The delivery ack, first: without it the server sends the message again, then gives up on us.
  connection.send("MSG_DATA_ACK", {
    fromUserId: String(me()),
    toSessionId: String(peerId),
    clientMsgId: body.clientMsgId || "",
    serverMsgId: String(seq),
    sessionType: num(body.sessionType) || SINGLE,
    resCode: RES_OK,
  });
  if (num(body.sessionType) !== SINGLE && num(body.sessionType) !== 0) return;
  if (from !== me() && body.fromNickName) state.users.set(from, body.fromNickName);
  const chat = chatFor(peerId);
  const gap = chat.loaded && seq > contiguousTop(chat) + 1;
  remember(chat, fromInfo({ ...body, msgStatus: 0 }));
  render();
  if (gap) syncNewest(chat).catch(() => {}); // ids are dense: we missed some, fetch them
  markReadIfVisible();
}

function receiveReadNotify(body) {
  const reader = num(body.userId);
  const seq = num(body.msgId);
  if (reader === me()) {
    // We read it on another device: clear the badge here too.
    const chat = chatFor(num(body.sessionId));
    chat.myRead = Math.max(chat.myRead, seq);
  } else {
    const chat = chatFor(reader); // the peer read our messages up to seq
    chat.peerRead = Math.max(chat.peerRead, seq);
  }
  render();
}

// ---- sending and reading -------------------------------------------------------------------------

function sendText(peerId, text) {
  const clientMsgId = uuid();
  const chat = chatFor(peerId);
  const time = Math.floor(Date.now() / 1000);
  chat.pending.set(clientMsgId, { seq: 0, clientMsgId, from: me(), time, type: TEXT, text, status: 0 });
  outbox.set(clientMsgId, { peerId, text, inFlight: false });
  render({ toBottom: true });
  trySend(clientMsgId);
}

async function trySend(clientMsgId) {
  const item = outbox.get(clientMsgId);
  if (!item || item.inFlight || !connection?.online) return; // sent after the next reconnect
  item.inFlight = true;
  const chat = chatFor(item.peerId);
  let ack;
  try {
    // Resending the same clientMsgId is safe: the server stores a message once per id.
    ack = await connection.request("MSG_DATA", {
      fromUserId: String(me()),
      toSessionId: String(item.peerId),
      clientMsgId,
      createTime: Math.floor(Date.now() / 1000),
      msgType: TEXT,
      sessionType: SINGLE,
      msgData: textToBase64(item.text),
    });
  } catch (e) {
    item.inFlight = false;
    if (e instanceof ServerError) failSend(chat, clientMsgId, e.message);
    return; // no answer: kept in the outbox for the next connection
  }
  item.inFlight = false;
  if (num(ack.resCode) === RES_OK) {
    outbox.delete(clientMsgId);
    const pending = chat.pending.get(clientMsgId);
    const time = num(ack.createTime) || pending?.time || 0;
    const sent = { clientMsgId, from: me(), type: TEXT, text: item.text, ...pending };
    remember(chat, { ...sent, seq: num(ack.serverMsgId), time, status: 0 });
    chat.pending.delete(clientMsgId);
    render();
  } else if (num(ack.errorCode) === ErrorCode.RATE_LIMITED) {
    setTimeout(() => trySend(clientMsgId), 2000);
  } else {
    failSend(chat, clientMsgId, ack.errorMsg || "not sent");
  }
}

function failSend(chat, clientMsgId, why) {
  outbox.delete(clientMsgId);
  const pending = chat.pending.get(clientMsgId);
  if (pending) pending.failed = why;
  render();
}

function flushOutbox() {
  for (const clientMsgId of outbox.keys()) trySend(clientMsgId);
}

/** Tell the server (and so the peer) we read the open conversation, if a person can see it. */
function markReadIfVisible() {
  const chat = state.openPeer ? state.chats.get(state.openPeer) : null;
  if (!chat || !connection?.online || document.visibilityState !== "visible") return;
  if (PHONE.matches && state.screen !== "chat") return;
  if (chat.latest <= chat.myRead) return;
  connection.send("MSG_READ_ACK", { sessionType: SINGLE, sessionId: String(chat.peerId), msgId: String(chat.latest) });
  chat.myRead = chat.latest;
  renderConversations();
}

// ---- opening conversations -------------------------------------------------------------------

function openChat(peerId) {
  if (state.openPeer !== peerId) {
    state.openPeer = peerId;
    $("message-list").replaceChildren();
    messageNodes.clear();
  }
  state.screen = "chat";
  const chat = chatFor(peerId);
  render({ toBottom: true });
  if (!chat.loaded && connection?.online) {
    loadNewest(chat)
      .then(() => fillViewport(chat))
      .catch(() => {});
  }
  markReadIfVisible();
  if (!PHONE.matches) $("composer-input").focus(); // on a phone that would cover half the chat with the keyboard
}

function closeChat() {
  state.screen = "list";
  render();
}

/** Load older messages while the view is not yet full enough to scroll. */
async function fillViewport(chat) {
  const list = $("message-list");
  while (state.openPeer === chat.peerId && chat.oldest > 1 && list.scrollHeight <= list.clientHeight + 40) {
    if (!(await loadOlder(chat))) break;
  }
}

async function loadOlder(chat) {
  if (chat.loadingOlder || !chat.loaded || chat.oldest <= 1 || !connection?.online) return false;
  chat.loadingOlder = true;
  renderMessages({});
  try {
    const page = await fetchPage(chat, chat.oldest, PAGE_SIZE);
    if (!page.length) chat.oldest = 1; // ids are dense, so this only happens if history was deleted
    return page.length > 0;
  } catch {
    return false;
  } finally {
    chat.loadingOlder = false;
    if (state.openPeer === chat.peerId) renderMessages({ keepAnchor: true });
  }
}

async function showUserList() {
  $("user-panel").hidden = false;
  $("conversation-panel").hidden = true;
  renderUsers([...state.users.keys()]);
  try {
    renderUsers(await loadUsers());
  } catch {
    // offline: the names we know will do
  }
}

function hideUserList() {
  $("user-panel").hidden = true;
  $("conversation-panel").hidden = false;
}

// ---- rendering ---------------------------------------------------------------------------------

function showScreen(which) {
  $("login-screen").hidden = which !== "login";
  $("main-screen").hidden = which !== "main";
  if (which === "login") $("login-username").focus();
}

function render(options = {}) {
  if (!state.session) return;
  $("me-name").textContent = state.session.nickName;
  $("me-user-name").textContent = `@${state.session.userName}`;
  $("me-avatar").replaceChildren(avatar(me(), state.session.nickName));
  $("main-screen").classList.toggle("show-chat", state.screen === "chat" && state.openPeer !== 0);
  renderStatus();
  renderConversations();
  renderChatHeader();
  renderMessages(options);
}

const STATE_LABELS = { online: "Online", connecting: "Connecting…", offline: "Offline, reconnecting…", stopped: "Offline" };

function renderStatus() {
  const status = $("conn-status");
  const current = connection ? connection.state : "stopped";
  status.dataset.state = current;
  status.textContent = STATE_LABELS[current] || current;
  const notice = $("notice");
  notice.hidden = !state.notice;
  $("notice-text").textContent = state.notice;
}

function sortedChats() {
  return [...state.chats.values()]
    .filter((chat) => chat.latest > 0 || chat.peerId === state.openPeer || chat.pending.size > 0)
    .sort((a, b) => {
      // Newest first; a conversation without messages yet (just started) on top.
      const byTime = (b.preview ? b.preview.time : Infinity) - (a.preview ? a.preview.time : Infinity);
      return (Number.isNaN(byTime) ? 0 : byTime) || b.touched - a.touched;
    });
}

function renderConversations() {
  const chats = sortedChats();
  const items = chats.map((chat) => {
    const unread = unreadOf(chat);
    const name = nameOf(chat.peerId);
    const preview = chat.preview;
    const button = el(
      "button",
      { cls: "conversation", attrs: { type: "button" } },
      avatar(chat.peerId, name),
      el(
        "span",
        { cls: "conversation-body" },
        el(
          "span",
          { cls: "conversation-top" },
          el("span", { cls: "conversation-name", testid: "conversation-name", text: name }),
          el("span", { cls: "conversation-time", text: formatTime(preview?.time) }),
        ),
        el(
          "span",
          { cls: "conversation-bottom" },
          el("span", {
            cls: "conversation-preview",
            testid: "conversation-preview",
            text: preview ? `${preview.fromMe ? "You: " : ""}${preview.text}` : "No messages yet",
          }),
          unread ? el("span", { cls: "badge", testid: "unread-badge", text: unread > 99 ? "99+" : String(unread) }) : "",
        ),
      ),
    );
    button.addEventListener("click", () => openChat(chat.peerId));
    const item = el("li", { testid: "conversation-item" }, button);
    item.dataset.peerId = String(chat.peerId);
    item.classList.toggle("active", chat.peerId === state.openPeer);
    item.classList.toggle("unread", unread > 0);
    return item;
  });
  $("conversation-list").replaceChildren(...items);
  $("conversations-empty").hidden = items.length > 0;
  const total = chats.reduce((sum, chat) => sum + unreadOf(chat), 0);
  document.title = total ? `(${total}) CoffeeChat` : "CoffeeChat";
}

function renderUsers(userIds) {
  const items = userIds
    .filter((userId) => userId !== me())
    .sort((a, b) => nameOf(a).localeCompare(nameOf(b)))
    .map((userId) => {
      const button = el(
        "button",
        { cls: "user", attrs: { type: "button" } },
        avatar(userId, nameOf(userId)),
        el("span", { cls: "user-name", testid: "user-name", text: nameOf(userId) }),
      );
      button.addEventListener("click", () => {
        hideUserList();
        openChat(userId);
      });
      const item = el("li", { testid: "user-item" }, button);
      item.dataset.userId = String(userId);
      return item;
    });
  $("user-list").replaceChildren(...items);
  $("users-empty").hidden = items.length > 0;
}

function renderChatHeader() {
  const open = state.openPeer !== 0;
  $("chat-empty").hidden = open;
  $("chat-header").hidden = !open;
  $("composer").hidden = !open;
  $("message-list").hidden = !open;
  if (!open) return;
  $("chat-title").textContent = nameOf(state.openPeer);
  $("chat-avatar").replaceChildren(avatar(state.openPeer, nameOf(state.openPeer)));
}

const messageNodes = new Map(); // key -> <li>, reused between renders of the open chat

function statusOf(chat, message) {
  if (message.failed) return { text: "!", label: `Not sent: ${message.failed}`, cls: "failed" };
  if (!message.seq) return { text: "🕓", label: "Sending", cls: "sending" };
  if (message.seq <= chat.peerRead) return { text: "✓✓", label: "Read", cls: "read" };
  return { text: "✓", label: "Sent", cls: "sent" };
}

function messageNode(chat, message) {
  const key = message.seq ? `s${message.seq}` : `c${message.clientMsgId}`;
  const mine = message.from === me();
  let node = messageNodes.get(key);
  if (!node) {
    const meta = el("span", { cls: "meta" }, el("time", { text: formatTime(message.time, true) }));
    node = el(
      "li",
      { cls: mine ? "message mine" : "message theirs", testid: "message" },
      el("span", { cls: "bubble" }, el("span", { cls: "text", testid: "message-text", text: message.text }), meta),
    );
    if (mine) meta.append(el("span", { cls: "status", testid: "message-status" }));
    node.dataset.mine = String(mine);
    if (message.seq) node.dataset.seq = String(message.seq);
    messageNodes.set(key, node);
  }
  if (mine) {
    const status = statusOf(chat, message);
    const span = node.querySelector(".status");
    span.textContent = status.text;
    span.className = `status ${status.cls}`;
    span.title = status.label;
    span.dataset.status = status.cls;
  }
  return { key, node };
}

/** Redraw the open chat's messages, keeping the reader's place: at the bottom when they were at
 * the bottom, on the same message when older ones were added above. */
function renderMessages({ toBottom = false, keepAnchor = false }) {
  const list = $("message-list");
  const chat = state.openPeer ? state.chats.get(state.openPeer) : null;
  if (!chat) return;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  const before = { height: list.scrollHeight, top: list.scrollTop };

  const ordered = [...chat.messages.values()].sort((a, b) => a.seq - b.seq);
  ordered.push(...chat.pending.values());
  const wanted = new Set();
  const nodes = [];
  if (chat.loaded && chat.oldest <= 1) {
    nodes.push(el("li", { cls: "history-edge", testid: "history-start", text: "This is the start of your conversation." }));
  } else if (chat.loadingOlder || !chat.loaded) {
    nodes.push(el("li", { cls: "history-edge", testid: "history-loading", text: "Loading…" }));
  }
  for (const message of ordered) {
    const { key, node } = messageNode(chat, message);
    wanted.add(key);
    nodes.push(node);
  }
  for (const key of messageNodes.keys()) if (!wanted.has(key)) messageNodes.delete(key);
  list.replaceChildren(...nodes);

  if (keepAnchor) list.scrollTop = before.top + (list.scrollHeight - before.height);
  else if (toBottom || atBottom) list.scrollTop = list.scrollHeight;
}

// ---- wiring ------------------------------------------------------------------------------------

function buildEmojiPicker() {
  const picker = $("emoji-picker");
  for (const emoji of EMOJI) {
    const button = el("button", { cls: "emoji", testid: "emoji", text: emoji, attrs: { type: "button" } });
    button.addEventListener("click", () => {
      insertAtCursor($("composer-input"), emoji);
      picker.hidden = true;
    });
    picker.append(button);
  }
}

function insertAtCursor(input, text) {
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? input.value.length;
  input.setRangeText(text, start, end, "end");
  input.focus();
  autoGrow(input);
}

function autoGrow(input) {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
}

function submitMessage(event) {
  event.preventDefault();
  const input = $("composer-input");
  const text = input.value.replace(/^\s*\n|\s+$/g, "");
  if (!text.trim() || !state.openPeer) return;
  if (utf8Length(text) > MAX_TEXT_BYTES) {
    setNotice("That message is too long to send.");
    return;
  }
  sendText(state.openPeer, text);
  input.value = "";
  autoGrow(input);
  $("emoji-picker").hidden = true;
}

function wire() {
  $("login-tab").addEventListener("click", () => setLoginMode(false));
  $("register-tab").addEventListener("click", () => setLoginMode(true));
  $("login-form").addEventListener("submit", submitLogin);
  $("logout-button").addEventListener("click", logout);
  $("new-chat-button").addEventListener("click", showUserList);
  $("user-list-close").addEventListener("click", hideUserList);
  $("back-button").addEventListener("click", closeChat);
  $("notice-close").addEventListener("click", () => setNotice(""));
  $("composer").addEventListener("submit", submitMessage);
  $("emoji-button").addEventListener("click", () => {
    $("emoji-picker").hidden = !$("emoji-picker").hidden;
  });
  document.addEventListener("click", (event) => {
    if (!$("composer").contains(event.target)) $("emoji-picker").hidden = true;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") $("emoji-picker").hidden = true;
  });
  const input = $("composer-input");
  input.addEventListener("input", () => autoGrow(input));
  input.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter starts a new line; not while an input method is composing.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submitMessage(event);
  });
  $("message-list").addEventListener("scroll", () => {
    const chat = state.openPeer ? state.chats.get(state.openPeer) : null;
    if (chat && $("message-list").scrollTop < 120) loadOlder(chat);
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    connection?.reconnectNow();
    markReadIfVisible();
  });
  window.addEventListener("online", () => connection?.reconnectNow());
  PHONE.addEventListener("change", () => render());
  buildEmojiPicker();
}

wire();
const saved = loadSession();
if (saved) startSession(saved);
else {
  showScreen("login");
  setLoginMode(false);
}
