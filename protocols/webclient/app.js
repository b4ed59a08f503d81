// The CoffeeChat web client: login and registration, the conversation list (people and groups),
// one chat view, group management (create, invite, members, leave), typing indicators, recall,
// deletes for oneself (deletes.js).
//
// Everything shown that came from a user (names, messages, group names) goes into the page
// through textContent or createElement, never innerHTML, so nothing anyone types can run as
// markup. State lives in plain objects below; render functions redraw from it after each change.

import { blockPush, renderBlocks } from "./blocks.js";
import { directoryPush, loadNames, renderDirectory, wantName } from "./directory.js";
import { friendName, friendsOnline, friendsPush, friendsReset, initFriends, presenceDot, showPresence } from "./friends.js";
import { conversationMarks, dndPush, initDnd, loadDnd, pinRank, renderDnd, resetDnd, withPinnedSection } from "./dnd.js";
import { groupRequestsOnline, groupRequestsPush, renderGroupPanelPart, setupGroupRequests } from "./group_requests.js";
import {
  afterConversationList,
  deleteMenuItem,
  isHidden,
  isRemoved,
  noteHiddenGaps,
  receiveDeleteNotify,
  renderDeletes,
  wireDeletes,
} from "./deletes.js";
import { groupAdminPush, renderGroupAdmin, setupGroupAdmin } from "./group_admin.js";
import { initPush, pushOnline, unregisterPush } from "./push.js";
import { md5Hex } from "./md5.js";
import {
  ChatConnection,
  ErrorCode,
  NoAnswerError,
  ServerError,
  base64ToText,
  decodeMsgData,
  num,
  textToBase64,
  utf8Length,
} from "./protocol.js";
import {
  CUSTOM,
  MERGED,
  canForward,
  closeForwardPicker,
  decorateBubble,
  forwardMenuItem,
  parseOrigin,
  parseSpecial,
  specialText,
} from "./forward.js";
import { clearSearch, initSearch } from "./search.js";
import { decorateMedia, initMedia, parseMedia } from "./media.js";
import { AVCHAT, callText, callsPush, callsRefused, callsReset, decorateCall, hangUp, initCalls, parseCall, renderCallButtons } from "./calls.js";
import { initRooms, roomShowing, roomsChatOpened, roomsOnline, roomsPush, roomsReset } from "./rooms.js";

const STORAGE_KEY = "coffeechat.session";
const GROUPS_KEY = "coffeechat.groups."; // + user id: the group info cache (names, versions)
const PAGE_SIZE = 30; // history messages per LIST_MSG_REQ when scrolling back
const SYNC_PAGE = 100; // per page when catching up (the server's default history_page_max)
const CATCH_UP_PAGES = 5; // past this many pages missed, drop the cached history and start anew
const MAX_TEXT_BYTES = 12 * 1024; // the server's default limits.max_text_bytes
const READ_COUNTS_ASKED = 10; // own group messages (the newest) whose read count is asked for
const READ_COUNT_WATCH = 9 * 60 * 1000; // the server notifies changes for 10 minutes after asking
const SINGLE = 1; // kCIM_SESSION_TYPE_SINGLE
const GROUP = 2; // kCIM_SESSION_TYPE_GROUP
const TEXT = 1; // kCIM_MSG_TYPE_TEXT
const NOTIFICATION = 9; // kCIM_MSG_TYPE_NOTIFACATION: group changes, JSON {notificationType, data}
const RECALLED = 11; // kCIM_MSG_TYPE_RECALLED: a recalled message, JSON {recalledBy, recallTime, msgType}
const RECALL_WINDOW = 120; // s: the server's default recall.window (the server decides; this hides the button)
const TYPING_EVERY = 1000; // ms between "typing" notices while typing (the server passes one on per 3 s)
const TYPING_TTL = 6; // s a "typing" shows when the notice does not say (the server's typing.ttl)
const TYPING_PAUSE = 10000; // ms without typing notices for a conversation after RATE_LIMITED
const STATUS_READ = 2; // kCIM_MSG_STATUS_READ
const RES_OK = 1; // kCIM_RES_CODE_OK
const CHANGE_ADD = 1; // kCIM_GROUP_MEMBER_CHANGED_TYPE_ADD
const CHANGE_DEL = 2; // kCIM_GROUP_MEMBER_CHANGED_TYPE_DEL (DEFAULT, 0: a role changed)
const ROLE_MEMBER = 1;
const ROLE_ADMIN = 2;
const ROLE_OWNER = 3;
const MUTE_ALL = 1; // kCIM_GROUP_MUTE_MODEL_ALL: only the owner and admins may write
const JOIN_NEED_AUTH = 1; // kCIM_GROUP_JOIN_MODEL_NEED_AUTH: only the owner and admins may invite
const JOIN_REJECT = 2; // kCIM_GROUP_JOIN_MODEL_REJECT: nobody may
const PHONE = window.matchMedia("(max-width: 720px)");
const EMOJI = ["😀", "😂", "😊", "😍", "🤔", "😎", "😢", "😮", "👍", "👎", "🙏", "👏", "🎉", "❤️", "🔥", "☕", "✅", "👋", "🚀", "🍕"];
const TYPE_LABELS = { 2: "File", 3: "Photo", 4: "Voice message", 5: "Video", 6: "Location", 8: "Tip", 10: "Call" };
const ROLE_LABELS = { [ROLE_OWNER]: "Owner", [ROLE_ADMIN]: "Admin" };

// ---- state ---------------------------------------------------------------------------------

const state = {
  session: null, // {userId, userName, nickName, token, expiresAt}
  users: new Map(), // userId -> nick name
  chats: new Map(), // chat key ("u7" a person, "g3" a group) -> chat (see newChat)
  groups: new Map(), // group id -> group (see groupFor)
  openKey: "", // the conversation in the chat view, "" = none
  screen: "list", // on a phone only one of "list" and "chat" shows
  sidebar: "list", // "list" | "users" (new chat) | "new-group"
  groupPanel: "", // the open group's side panel: "" | "members" | "invite"
  leaving: false, // the leave confirmation shows
  notice: "",
};
const outbox = new Map(); // clientMsgId -> {key, text, mentions, atAll, inFlight}: sent, not acknowledged
const picked = { create: new Set(), invite: new Set() }; // user ids ticked in the two pickers
const composerMentions = new Map(); // userId -> nick picked with "@" for the message being written
const exited = new Set(); // groups left from this device: later pushes about them are ignored
const typers = new Map(); // chat key -> Map(userId -> timer): who is typing there right now
const typingOut = { key: "", at: 0 }; // the conversation we said we are typing in, and when (ms)
const typingRefused = new Map(); // chat key -> until when (ms) not to send typing notices there
const typingSeqs = new Map(); // seq of a typing notice sent -> chat key, to match its refusal
let messageMenu = null; // the open message's actions: {chatKey, seq, busy, error}
let clockSkew = 0; // s the server's clock is ahead of ours (from send acks), for the recall window
let recallsSince = 0; // server time from which to list the recalls missed (0: none to ask)
let lastState = "stopped"; // the connection's state, to see when it stops being online
let recallTimer = null; // re-renders the chat when the next Recall button should go
let connection = null;
let activity = 0; // counts conversation updates, to order the list within the same second

const keyOf = (type, id) => (type === GROUP ? `g${id}` : `u${id}`);

function newChat(type, id) {
  return {
    key: keyOf(type, id),
    type,
    id, // the peer's user id, or the group id
    messages: new Map(), // serverMsgId -> message, for the part of the history we hold
    pending: new Map(), // clientMsgId -> own message awaiting its ack
    loaded: false, // holds the newest page (else only the summary from the list is known)
    startReached: false, // a page came back short: nothing older can be seen
    oldest: 0, // lowest serverMsgId held
    latest: 0, // newest serverMsgId of the conversation that we know of
    myRead: 0, // our read position (unread = latest - myRead, as the server counts)
    peerRead: 0, // 1:1: the peer's read position: our messages up to it show ✓✓
    mentionSeq: 0, // groups: the newest message mentioning us (an "@you" until read past it)
    readCounts: new Map(), // groups: seq of an own message -> {read, members}
    recalls: new Map(), // seq -> {by, time}: recalled, whatever an older copy of it says
    recallClosed: new Set(), // own messages the server said are too old to recall
    askedCounts: new Map(), // groups: own messages whose read count was asked for -> when (ms)
    left: "", // groups: "" a member, "removed" (kicked, dismissed) or "left" (from another device)
    joined: false, // groups: we were just added; the next message is the first we may see
    preview: null, // the newest message, for the list
    touched: 0, // the value of `activity` when the conversation last moved up the list
    loadingOlder: false,
    syncing: null, // the running catch-up, so that two do not overlap
  };
}

function chatFor(type, id) {
  const key = keyOf(type, id);
  let chat = state.chats.get(key);
  if (!chat) {
    chat = newChat(type, id);
    state.chats.set(key, chat);
  }
  return chat;
}

/** What we know of a group; the name comes from GROUP_INFO (cached in localStorage). */
function groupFor(groupId) {
  let group = state.groups.get(groupId);
  if (!group) {
    group = {
      id: groupId,
      name: "",
      version: 0,
      ownerId: 0,
      memberCount: 0,
      muteModel: 0,
      joinModel: 0,
      beInviteModel: 0,
      members: null, // userId -> role, once asked for (GROUP_LIST_MEMBER)
      left: false,
    };
    state.groups.set(groupId, group);
  }
  return group;
}

const me = () => (state.session ? state.session.userId : 0);
const unreadOf = (chat) => Math.max(0, chat.latest - chat.myRead);
const mentionsMe = (chat) => chat.type === GROUP && chat.mentionSeq > chat.myRead;
const nameOf = (userId) => state.users.get(userId) || (wantName(userId), `User ${userId}`);
// Shown for a person (sender, preview, notice): my remark of a friend first.  Not for what is sent
// (an @-mention names the nick everyone sees), so nameOf stays the nick.
const senderName = (userId, nick) => friendName(userId) || nick || nameOf(userId);
const openChatState = () => (state.openKey ? state.chats.get(state.openKey) || null : null);
const openGroup = () => {
  const chat = openChatState();
  return chat && chat.type === GROUP ? groupFor(chat.id) : null;
};

function chatName(chat) {
  if (chat.type !== GROUP) return friendName(chat.id) || nameOf(chat.id);
  return groupFor(chat.id).name || "Group";
}

function roleOf(group, userId) {
  if (group.members?.has(userId)) return group.members.get(userId);
  return userId === group.ownerId ? ROLE_OWNER : 0;
}

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

function avatar(id, name, { group = false, big = false } = {}) {
  // The colour comes from the id so a person (or group) keeps it everywhere; the letter is text.
  const initial = Array.from((name || "?").trim())[0] || "?";
  // Groups take the palette from another starting point: group 1 and user 1 look different.
  const cls = `avatar c${(id + (group ? 3 : 0)) % 8}${group ? " group" : ""}${big ? " big" : ""}`;
  return el("span", { cls, text: initial.toUpperCase(), attrs: { "aria-hidden": "true" } });
}

function chatAvatar(chat) {
  return avatar(chat.id, chatName(chat), { group: chat.type === GROUP });
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
  if (type === RECALLED) return ""; // its content is gone: what shows is recalledText
  if (type === CUSTOM || type === MERGED) return specialText(type, data); // forward.js
  if (type === AVCHAT) return callText(parseCall(type, data)); // "Missed voice call" (calls.js)
  return `[${TYPE_LABELS[type] || "Message"}]`;
}

/** "Bob", "Bob and Carol", "Bob, Carol and Dan". */
function joinNames(names) {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

const capitalize = (text) => (text ? text[0].toUpperCase() + text.slice(1) : text);

/**
 * The line a NOTIFICATION message shows ("Alice invited Carol"), from its JSON
 * {notificationType, data} (docs/groups.md); "You"/"you" for the reader.
 */
function noticeText(message) {
  const notice = message.notice;
  if (!notice) return "The group changed";
  const data = notice.data || {};
  const person = (userId, nick, subject) => {
    if (userId && userId === me()) return subject ? "You" : "you";
    return userId ? senderName(userId, nick) : nick || "Someone";
  };
  const people = (ids, nicks) =>
    joinNames((Array.isArray(ids) ? ids : []).map((id, i) => person(num(id), Array.isArray(nicks) ? nicks[i] : "", false)));
  const actorId = message.from;
  const actor = (id = actorId) => person(num(id), num(id) === actorId ? message.nick : "", true);
  switch (num(notice.notificationType)) {
    case 1: {
      const owner = person(num(data.owner) || actorId, data.ownerNick, true);
      const created = `${owner} created the group “${data.groupName || ""}”`;
      const others = people(data.ids, data.nickNames);
      return others ? `${created} with ${others}` : created;
    }
    case 2: // joinType "request": an approved request to join (group_requests.js)
      return `${actor(data.userId || actorId)} ${data.joinType === "request" ? "let in" : "invited"} ${people(data.ids, data.nickNames)}`;
    case 3:
      return `${actor(data.ownerUserId || actorId)} removed ${people(data.ids, data.nickNames)}`;
    case 4: {
      const left = `${capitalize(people(data.ids, data.nickNames))} left`;
      if (!data.owner) return left;
      const owner = num(data.owner);
      return `${left}; ${person(owner, "", false)} ${owner === me() ? "are" : "is"} now the owner`;
    }
    case 5: {
      const who = actor(data.userId || actorId);
      const parts = [];
      if ("groupName" in data) parts.push(`renamed the group to “${data.groupName}”`);
      if ("announcement" in data) parts.push(data.announcement ? "changed the announcement" : "removed the announcement");
      if ("groupIntro" in data) parts.push("changed the group description");
      if ("groupAvatar" in data) parts.push("changed the group picture");
      if ("muteModel" in data) {
        const muted = num(data.muteModel) === MUTE_ALL;
        parts.push(muted ? "allowed only admins to send messages" : "allowed everyone to send messages");
      }
      if ("joinModel" in data || "beInviteModel" in data) parts.push("changed who can add members");
      if (data.owner) parts.push(`handed the group to ${people([data.owner], [data.ownerNick])}`);
      if (Array.isArray(data.adminIds)) {
        parts.push(`made ${people(data.adminIds, [])} ${data.adminIds.length > 1 ? "admins" : "an admin"}`);
      }
      if (Array.isArray(data.memberIds)) parts.push(`removed ${people(data.memberIds, [])} as admin`);
      return `${who} ${parts.length ? joinNames(parts) : "changed the group"}`;
    }
    case 6:
      return `${actor()} dismissed the group`;
    default:
      return "The group changed";
  }
}

function parseNotice(type, data) {
  if (type !== NOTIFICATION) return null;
  try {
    const notice = JSON.parse(base64ToText(data));
    return notice && typeof notice === "object" ? notice : null;
  } catch {
    return null;
  }
}

/** Who recalled a RECALLED message and when, from its JSON {recalledBy, recallTime, msgType}. */
function parseRecall(type, data) {
  if (type !== RECALLED) return null;
  try {
    const body = JSON.parse(base64ToText(data));
    return { by: num(body?.recalledBy), time: num(body?.recallTime) };
  } catch {
    return { by: 0, time: 0 };
  }
}

/** The line a recalled message shows instead of its content ("Alice recalled a message"). */
function recalledText(message) {
  const by = message.recall ? message.recall.by : 0;
  if (!by) return "A message was recalled"; // by an administrator (or we do not know who)
  return `${by === me() ? "You" : nameOf(by)} recalled a message`;
}

/** A message (or preview) as it is once recalled: no content left, only who recalled it. */
const asRecalled = (message, recall) => ({ ...message, type: RECALLED, text: "", notice: null, recall });

/** The text a message shows: its own, a notification's line, or that it was recalled. */
function shownText(message) {
  if (message.type === NOTIFICATION) return noticeText(message);
  return message.type === RECALLED ? recalledText(message) : message.text;
}

/** The server's clock (seconds), as far as the acks of our sends tell it. */
const serverNow = () => Date.now() / 1000 + clockSkew;

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID(); // only in secure contexts (https, localhost)
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---- stored login and group cache ----------------------------------------------------------------

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

/** Group names and versions from the last visit: the list shows names before the server answers,
 * and GROUP_INFO is asked only for groups whose version moved. */
function loadGroupCache() {
  try {
    const saved = JSON.parse(localStorage.getItem(GROUPS_KEY + me()) || "[]");
    for (const item of Array.isArray(saved) ? saved : []) {
      const group = groupFor(num(item.id));
      Object.assign(group, {
        name: String(item.name || ""),
        version: num(item.version),
        ownerId: num(item.ownerId),
        memberCount: num(item.memberCount),
        muteModel: num(item.muteModel),
        joinModel: num(item.joinModel),
        beInviteModel: num(item.beInviteModel),
      });
    }
  } catch {
    // unreadable: asked for again
  }
}

function saveGroupCache() {
  if (!state.session) return;
  const items = [...state.groups.values()]
    .filter((g) => g.name && !g.left)
    .map(({ id, name, version, ownerId, memberCount, muteModel, joinModel, beInviteModel }) => ({
      id,
      name,
      version,
      ownerId,
      memberCount,
      muteModel,
      joinModel,
      beInviteModel,
    }));
  try {
    localStorage.setItem(GROUPS_KEY + me(), JSON.stringify(items));
  } catch {
    // storage full or refused: the cache is only an optimisation
  }
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

const GROUP_ERRORS = {
  [ErrorCode.FORBIDDEN]: "You are not allowed to do that in this group.",
  [ErrorCode.NOT_FOUND]: "This group no longer exists.",
  [ErrorCode.USER_NOT_EXIST]: "One of those people does not exist.",
  [ErrorCode.GROUP_FULL]: "The group is full.",
  [ErrorCode.TOO_MANY_GROUPS]: "Someone is in too many groups already.",
  [ErrorCode.NOT_SUPPORTED]: "This group does not take invitations.",
  [ErrorCode.RATE_LIMITED]: "Too many requests. Wait a moment and try again.",
};

function groupErrorText(error) {
  if (error instanceof ServerError) return GROUP_ERRORS[error.code] || error.message;
  return "No connection to the server. Try again.";
}

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
  await unregisterPush(); // push.js: this browser gets no more notifications for this user
  // calls.js: a call in progress is hung up before the connection goes (the server keeps a call
  // whose device only disconnected until its heartbeats stop: apps reconnect mid-call)
  await Promise.race([hangUp("You signed out"), new Promise((done) => setTimeout(done, 2000))]);
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
  loadGroupCache();
  if (!connection) connection = createConnection();
  connection.start();
  showScreen("main");
  render();
}

/** Back to the login screen, forgetting everything about the account. */
function endSession(message) {
  connection?.stop();
  localStorage.removeItem(STORAGE_KEY);
  if (state.session) localStorage.removeItem(GROUPS_KEY + me());
  state.session = null;
  friendsReset();
  callsReset();
  roomsReset();
  state.users.clear();
  state.chats.clear();
  state.groups.clear();
  state.openKey = "";
  state.screen = "list";
  state.sidebar = "list";
  state.groupPanel = "";
  state.leaving = false;
  outbox.clear();
  exited.clear();
  composerMentions.clear();
  for (const timers of typers.values()) for (const timer of timers.values()) clearTimeout(timer);
  typers.clear();
  typingOut.key = "";
  typingRefused.clear();
  typingSeqs.clear();
  messageMenu = null;
  closeForwardPicker();
  recallsSince = 0;
  resetDnd();
  clearTimeout(recallTimer);
  $("message-list").replaceChildren();
  messageNodes.clear();
  clearSearch();
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
    onState: (current) => {
      // Pushes stop when the socket goes: the next catch-up asks for the recalls since (with a
      // margin for a dead socket noticed late, and for our estimate of the server's clock).
      if (lastState === "online" && current !== "online" && !recallsSince) recallsSince = Math.floor(serverNow()) - 120;
      lastState = current;
      renderStatus();
    },
    onOnline: (userInfo) => {
      if (userInfo.nickName) {
        state.session.nickName = userInfo.nickName;
        state.users.set(me(), userInfo.nickName);
      }
      state.notice = "";
      roomsOnline(); // rooms are joined per connection (rooms.js)
      catchUp().then(() => friendsOnline([...state.chats.values()].filter((c) => c.type === SINGLE).map((c) => c.id)));
    },
    onPush: handlePush,
    onSendError: sendRefused,
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

/** After each (re)connect: names, groups, the conversation list, whatever the held histories
 * missed, then the sends that were waiting for a connection. */
async function catchUp() {
  try {
    await loadUsers();
    await loadGroups().catch((e) => {
      if (e instanceof NoAnswerError) throw e;
      console.warn("the group list failed", e); // 1:1 chats still work
    });
    await loadDnd().catch((e) => console.warn("do-not-disturb and pins failed", e));
    pushOnline().catch((e) => console.warn("push registration failed", e)); // push.js
    const rsp = await connection.request("LIST_RECENT_CONTACT_SESSION_REQ", { latestUpdateTime: 0 });
    // The list comes most recent first: apply it oldest first so ties keep the server's order.
    for (const entry of (rsp.contactSessionList || []).slice().reverse()) applySummary(entry);
    afterConversationList(rsp.contactSessionList || []); // removed or emptied (deletes.js)
    // The user list has our contacts; the senders in groups' previews may be strangers.
    await loadNames([...state.chats.values()].map((c) => c.preview?.from || 0)).catch(() => {});
    render();
    const open = openChatState();
    const fresh = open && !open.loaded && !open.left ? open : null;
    if (fresh) await loadNewest(fresh);
    for (const chat of [...state.chats.values()]) {
      if (!chat.loaded || chat === fresh || chat.left) continue;
      chat.askedCounts.clear(); // the server's read-count watches may have ended meanwhile
      await syncNewest(chat).catch((e) => {
        if (e instanceof NoAnswerError) throw e; // offline again
      });
    }
    if (recallsSince) await syncRecalls();
    if (openGroup()) loadMembers(openGroup().id).catch(() => {});
    flushOutbox();
    groupRequestsOnline();
    markReadIfVisible();
    requestReadCounts(openChatState());
  } catch (e) {
    if (!(e instanceof NoAnswerError)) console.warn("catch-up failed", e);
    // Offline again: the next reconnect catches up anew.
  }
}

/** The recalls made while we were offline (MSG_RECALL_LIST): the pages fetched above show the
 * newest messages as recalled already, this covers the older ones we hold. */
async function syncRecalls() {
  let since = Math.max(0, recallsSince);
  try {
    for (let page = 0; page < 10; page++) {
      const rsp = await connection.request("MSG_RECALL_LIST_REQ", { sinceTime: since, limit: 1000 });
      const recalls = rsp.recalls || [];
      for (const recall of recalls) receiveRecall(recall, false);
      if (!rsp.hasMore || !recalls.length) break;
      since = num(recalls[recalls.length - 1].recallTime);
    }
  } catch (e) {
    if (e instanceof NoAnswerError) throw e; // asked again at the next catch-up
    // refused (a server without recall): nothing to learn
  }
  recallsSince = 0;
  render();
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

/** Send a group request; its answer's body, or ServerError when its resultCode is not 200. */
async function groupRequest(name, body) {
  const rsp = await connection.request(name, body);
  const code = num(rsp.resultCode);
  if (code !== ErrorCode.SUCCESS) throw new ServerError(code, `error ${code}`, name);
  return rsp;
}

/** The user's groups (GROUP_LIST: ids and versions), and the info of those whose version moved.
 * A group no longer listed was left (or we were removed) while we were away. */
async function loadGroups() {
  const rsp = await groupRequest("GROUP_LIST_REQ", {});
  const listed = new Map((rsp.groupVersionList || []).map((v) => [num(v.groupId), num(v.groupVersion)]));
  for (const group of [...state.groups.values()]) {
    if (!listed.has(group.id)) forgetGroup(group.id, "removed");
  }
  const stale = [];
  for (const [groupId, version] of listed) {
    const group = groupFor(groupId);
    group.left = false;
    const chat = chatFor(GROUP, groupId);
    chat.left = "";
    if (!group.name || group.version !== version) stale.push(group);
  }
  if (stale.length) await fetchGroupInfo(stale);
  saveGroupCache();
}

/** GROUP_INFO for these groups; the server answers those whose version differs from ours. */
async function fetchGroupInfo(groups) {
  const rsp = await groupRequest("GROUP_INFO_REQ", {
    groupVersionList: groups.map((g) => ({ groupId: String(g.id), groupVersion: g.name ? g.version : 0 })),
  });
  for (const info of rsp.groupInfoList || []) applyGroupInfo(info);
  saveGroupCache();
}

function applyGroupInfo(info) {
  const group = groupFor(num(info.groupId));
  group.name = info.groupName || group.name || "Group";
  group.version = num(info.groupVersion);
  group.ownerId = num(info.groupOwnerId);
  group.memberCount = num(info.memberCount);
  group.muteModel = num(info.muteModel);
  group.joinModel = num(info.joinModel);
  group.beInviteModel = num(info.beInviteModel);
  group.left = false;
  return group;
}

const infoWanted = new Set(); // group ids whose info to ask for, in one request per turn

/** Ask (soon, batched) for the info of a group whose version moved or whose name we lack. */
function refreshGroupInfo(groupId) {
  infoWanted.add(groupId);
  if (infoWanted.size > 1) return;
  queueMicrotask(() => {
    const groups = [...infoWanted].map(groupFor);
    infoWanted.clear();
    if (!connection?.online) return; // the next catch-up asks
    fetchGroupInfo(groups)
      .then(render)
      .catch(() => {});
  });
}

/** The members and their roles (GROUP_LIST_MEMBER), for the panel, badges and @mentions. */
async function loadMembers(groupId) {
  const rsp = await groupRequest("GROUP_LIST_MEMBER_REQ", { groupId: String(groupId) });
  const group = groupFor(groupId);
  const members = new Map();
  if (rsp.memberList?.length) for (const m of rsp.memberList) members.set(num(m.userId), num(m.role) || ROLE_MEMBER);
  else for (const id of rsp.memberIdList || []) members.set(num(id), num(id) === group.ownerId ? ROLE_OWNER : ROLE_MEMBER);
  group.members = members;
  group.memberCount = members.size;
  for (const [userId, role] of members) if (role === ROLE_OWNER) group.ownerId = userId;
  if ([...members.keys()].some((id) => !state.users.has(id))) await loadNames([...members.keys()]).catch(() => {});
  render();
  return members;
}

/** Drop a group from this device. The open one stays in view, marked as left. */
function forgetGroup(groupId, how) {
  const key = keyOf(GROUP, groupId);
  if (state.openKey === key && how !== "exited") {
    markLeft(groupId, how);
    return;
  }
  state.groups.delete(groupId);
  state.chats.delete(key);
  for (const [clientMsgId, item] of outbox) if (item.key === key) outbox.delete(clientMsgId);
  if (state.openKey === key) {
    state.openKey = "";
    state.screen = "list";
    state.groupPanel = "";
    state.leaving = false;
    $("message-list").replaceChildren();
    messageNodes.clear();
  }
  saveGroupCache();
}

/** We are no longer in a group (removed, or left on another device): it stays, read-only. */
function markLeft(groupId, how) {
  const group = groupFor(groupId);
  group.left = true;
  group.members = null;
  const chat = chatFor(GROUP, groupId);
  chat.left = how;
  if (state.openKey === chat.key) {
    state.groupPanel = "";
    state.leaving = false;
  }
  saveGroupCache();
}

/** One entry of the conversation list: the newest message and the unread count. */
function applySummary(entry) {
  const type = num(entry.sessionType);
  if (type !== SINGLE && type !== GROUP) return;
  const id = num(entry.sessionId);
  if (type === GROUP) {
    const group = groupFor(id);
    if (!group.name) refreshGroupInfo(id);
  }
  const chat = chatFor(type, id);
  const latest = num(entry.serverMsgId);
  chat.latest = Math.max(chat.latest, latest);
  // The server counts unread as latest - read position; keep a position we moved ourselves.
  chat.myRead = Math.max(chat.myRead, latest - num(entry.unreadCnt));
  if (type === GROUP) chat.mentionSeq = entry.atMe ? Math.max(chat.mentionSeq, chat.latest) : 0;
  if (latest && (!chat.preview || latest >= chat.preview.seq)) {
    chat.touched = ++activity;
    const msgType = num(entry.msgType);
    const preview = {
      seq: latest,
      from: num(entry.msgFromUserId),
      type: msgType,
      text: messageText(msgType, entry.msgData),
      notice: parseNotice(msgType, entry.msgData),
      recall: parseRecall(msgType, entry.msgData),
      nick: "",
      time: num(entry.msgTimeStamp) || num(entry.updatedTime),
    };
    // A recall we were told of stands, whatever an older answer says.
    const recall = chat.recalls.get(latest);
    chat.preview = recall && msgType !== RECALLED ? asRecalled(preview, recall) : preview;
  }
}

function fromInfo(info) {
  const type = num(info.msgType);
  return {
    seq: num(info.serverMsgId),
    clientMsgId: info.clientMsgId || "",
    from: num(info.fromUserId),
    nick: info.fromNickName || "",
    time: num(info.createTime),
    type,
    text: messageText(type, info.msgData),
    notice: parseNotice(type, info.msgData),
    recall: parseRecall(type, info.msgData),
    status: num(info.msgStatus),
    origin: parseOrigin(info.forwardOrigin), // a forwarded copy's (forward.js)
    body: parseSpecial(type, info.msgData), // a custom message's or chat record's JSON
    media: parseMedia(type, info.msgData), // an image's, voice note's, video's or file's (media.js)
    call: parseCall(type, info.msgData), // a call's record (calls.js)
  };
}

async function fetchPage(chat, endMsgId, limit) {
  const rsp = await connection.request("LIST_MSG_REQ", {
    sessionType: chat.type,
    sessionId: String(chat.id),
    endMsgId: String(endMsgId),
    limitCount: limit,
  });
  const page = (rsp.msgList || []).map(fromInfo).filter((m) => m.seq > 0);
  page.sort((a, b) => a.seq - b.seq);
  noteHiddenGaps(chat, page); // ids this user deleted are missing from pages
  for (const message of page) addMessage(chat, message);
  // A short page holds everything back to the first message we may see: in a group, the one
  // at which we joined (the server shows nobody what was said before they came).
  if (page.length < limit) chat.startReached = true;
  if (page.some((m) => !state.users.has(m.from))) {
    loadNames(page.map((m) => m.from))
      .then(() => render())
      .catch(() => {});
  }
  return page;
}

const atStart = (chat) => chat.loaded && (chat.startReached || (chat.oldest > 0 && chat.oldest <= 1));

/** The newest page of a conversation we have not held yet. */
async function loadNewest(chat) {
  const page = await fetchPage(chat, 0, PAGE_SIZE);
  chat.loaded = true;
  if (!page.length) chat.oldest = chat.oldest || 1; // nothing there: the history starts here
  render({ toBottom: true });
  requestReadCounts(chat);
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
          chat.startReached = false;
          break;
        }
        const page = await fetchPage(chat, end, SYNC_PAGE);
        if (!page.length || page[0].seq <= top + 1) break;
        end = page[0].seq;
      }
    } finally {
      chat.syncing = null;
    }
    render();
    requestReadCounts(chat);
  })();
  return chat.syncing;
}

/** The highest id up to which we hold every message from our oldest one on. */
function contiguousTop(chat) {
  let seq = chat.oldest;
  if (!seq) return 0;
  while (chat.messages.has(seq + 1) || isHidden(chat, seq + 1)) seq++;
  return seq;
}

/** Add (or refresh) one stored message of a conversation. */
function addMessage(chat, incoming) {
  const known = chat.messages.get(incoming.seq);
  let message = known ? { ...known, ...incoming, nick: incoming.nick || known.nick } : incoming;
  // Once recalled, always recalled: a page fetched before the recall, or a push delivered again,
  // does not bring the content back.
  const recall = incoming.recall || chat.recalls.get(incoming.seq) || known?.recall;
  if (recall && message.type !== RECALLED) message = asRecalled(message, recall);
  const mine = message.from === me();
  chat.messages.set(message.seq, message);
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
    const { seq, from, type, text, notice, recall, nick, time } = message;
    chat.preview = { seq, from, type, text, notice, recall, nick, time };
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
  else if (name === "GROUP_MEMBER_CHANGED_NOTIFY") receiveGroupChange(body);
  else if (name === "GROUP_READ_COUNT_NOTIFY") receiveReadCount(body);
  else if (name === "MSG_RECALL_NOTIFY") receiveRecall(body);
  else if (name === "MSG_TYPING_NOTIFY") receiveTyping(body);
  else featurePush(name, body);
}

/** Pushes of the issue-12 feature modules, each handled in its own file (protocols/webclient/*.js):
 * one line per feature, in its own slot. */
function featurePush(name, body) {
  // -- directory and profiles
  if (name === "PROFILE_CHANGED_NOTIFY") directoryPush(body);

  // -- friends and online status
  if (friendsPush(name, body)) return;

  // -- block list
  if (name === "BLOCK_CHANGED_NOTIFY") blockPush(body);

  // -- do-not-disturb and pinned conversations
  if (dndPush(name, body)) return;

  // -- message deletes
  if (name === "MSG_DELETE_NOTIFY") receiveDeleteNotify(body);

  // -- forward and custom messages

  // -- group requests, invitations, ownership transfer
  groupRequestsPush(name, body);

  // -- group member mutes, tags and custom fields
  if (groupAdminPush(name, body)) return;

  // -- search

  // -- files and media (issue 13)

  // -- push notifications

  // -- calls (issue 15)
  if (callsPush(name, body)) return;

  // -- chat rooms (issue 15)
  if (roomsPush(name, body)) return;
}

function receiveMessage(body) {
  const type = num(body.sessionType) || SINGLE;
  const from = num(body.fromUserId);
  const id = type === GROUP || from === me() ? num(body.toSessionId) : from;
  // The delivery ack, first: without it the server sends the message again, then gives up on us.
  connection.send("MSG_DATA_ACK", {
    fromUserId: String(me()),
    toSessionId: String(id),
    clientMsgId: body.clientMsgId || "",
    serverMsgId: String(num(body.serverMsgId)),
    sessionType: type,
    resCode: RES_OK,
  });
  if (type !== SINGLE && type !== GROUP) return;
  storeIncoming(type, id, body);
}

/** A message pushed to us, or the notification attached to the answer of our own group change. */
function storeIncoming(type, id, body) {
  const from = num(body.fromUserId);
  const seq = num(body.serverMsgId);
  if (!seq) return;
  if (from !== me() && body.fromNickName) state.users.set(from, body.fromNickName);
  if (type === GROUP) {
    // A notice about a group this device has dropped (we left it here) brings nothing back.
    if (exited.has(id) || (!state.chats.has(keyOf(GROUP, id)) && state.groups.get(id)?.left)) return;
    if (!groupFor(id).name) refreshGroupInfo(id);
  }
  const chat = chatFor(type, id);
  if (chat.joined) {
    // The server put our read position just before the notice of our joining (what was said
    // before is not unread, nor visible): the first message after the ADD.
    chat.joined = false;
    chat.myRead = Math.max(chat.myRead, seq - 1);
  }
  const gap = chat.loaded && seq > contiguousTop(chat) + 1;
  const message = fromInfo({ ...body, msgStatus: 0 });
  remember(chat, message);
  if (from !== me()) stopShowingTyping(chat.key, from); // the message they were typing is here
  if (type === GROUP) {
    const atMe = (body.atUserList || []).some((u) => num(u) === me());
    if (from !== me() && (atMe || body.atAll)) chat.mentionSeq = Math.max(chat.mentionSeq, seq);
    if (message.notice) applyNotice(chat, message);
  }
  render();
  if (gap) syncNewest(chat).catch(() => {}); // ids are dense: we missed some, fetch them
  markReadIfVisible();
  if (from === me()) requestReadCounts(chat); // written on another device
}

/** What a notification says that the info we hold should reflect at once (GROUP_INFO follows). */
function applyNotice(chat, message) {
  const data = message.notice.data || {};
  const group = groupFor(chat.id);
  const kind = num(message.notice.notificationType);
  if (kind === 5 && typeof data.groupName === "string" && data.groupName) group.name = data.groupName;
  if (kind === 5 && "muteModel" in data) group.muteModel = num(data.muteModel);
  if (kind === 6 && chat.left) chat.left = "dismissed";
}

/** MSG_RECALL_NOTIFY (or an item of MSG_RECALL_LIST): a message was recalled. It is found as
 * a MSG_DATA is: the group, or in a 1:1 chat whichever of the two people is not us. */
function receiveRecall(body, redraw = true) {
  const type = num(body.sessionType) || SINGLE;
  const from = num(body.fromUserId);
  const id = type === GROUP || from === me() ? num(body.toSessionId) : from;
  const chat = state.chats.get(keyOf(type, id));
  if (!chat) return; // not held here: its history and the list show it recalled
  applyRecall(chat, num(body.serverMsgId), { by: num(body.recalledBy), time: num(body.recallTime) });
  if (redraw) render();
}

/** Replace a message's content, wherever this page keeps it, by the fact of its recall. */
function applyRecall(chat, seq, recall) {
  if (!seq) return;
  chat.recalls.set(seq, recall);
  const known = chat.messages.get(seq);
  if (known && known.type !== RECALLED) chat.messages.set(seq, asRecalled(known, recall));
  if (chat.preview?.seq === seq && chat.preview.type !== RECALLED) chat.preview = asRecalled(chat.preview, recall);
  chat.readCounts.delete(seq);
  if (messageMenu?.chatKey === chat.key && messageMenu.seq === seq) messageMenu = null;
}

/** MSG_TYPING_NOTIFY: someone is typing (or stopped) in a conversation, for ttl seconds at most. */
function receiveTyping(body) {
  const userId = num(body.userId);
  const type = num(body.sessionType) || SINGLE;
  const key = keyOf(type, num(body.sessionId)); // 1:1: the typer, as we file the chat
  if (!userId || userId === me()) return;
  if (!body.typing) {
    stopShowingTyping(key, userId);
    return;
  }
  let here = typers.get(key);
  if (!here) typers.set(key, (here = new Map()));
  clearTimeout(here.get(userId));
  const ttl = num(body.ttl) || TYPING_TTL;
  here.set(userId, setTimeout(() => stopShowingTyping(key, userId), ttl * 1000));
  renderTyping();
}

function stopShowingTyping(key, userId) {
  const here = typers.get(key);
  if (!here?.has(userId)) return;
  clearTimeout(here.get(userId));
  here.delete(userId);
  if (!here.size) typers.delete(key);
  renderTyping();
}

/** Who is typing in a chat, oldest first; not people who left a group meanwhile. */
function typersOf(chat) {
  if (chat.left) return [];
  const here = typers.get(chat.key);
  if (!here) return [];
  const members = chat.type === GROUP ? groupFor(chat.id).members : null;
  return [...here.keys()].filter((userId) => !members || members.has(userId));
}

/** "Alice is typing…", "Alice and Bob are typing…", "Alice, Bob and 2 others are typing…";
 * in the list of a 1:1 chat (whose name is beside it) only "typing…". */
function typingText(chat, short = false) {
  const ids = typersOf(chat);
  if (!ids.length) return "";
  if (short && chat.type !== GROUP) return "typing…";
  const names = ids.map(nameOf);
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length > 3) return `${names.slice(0, 2).join(", ")} and ${names.length - 2} others are typing…`;
  return `${joinNames(names)} are typing…`;
}

function receiveReadNotify(body) {
  const reader = num(body.userId);
  const seq = num(body.msgId);
  const type = num(body.sessionType) || SINGLE;
  if (reader === me()) {
    // We read it on another device: clear the badge here too.
    const chat = state.chats.get(keyOf(type, num(body.sessionId)));
    if (chat) chat.myRead = Math.max(chat.myRead, seq);
  } else if (type === SINGLE) {
    const chat = chatFor(SINGLE, reader); // the peer read our messages up to seq
    chat.peerRead = Math.max(chat.peerRead, seq);
  }
  render();
}

/** GROUP_MEMBER_CHANGED_NOTIFY: someone joined, left, was removed or got a new role, or the group
 * info changed (empty list). The member list follows at once; GROUP_INFO is asked for when the
 * version moved; if we are the one removed, the group is left. */
function receiveGroupChange(body) {
  const groupId = num(body.groupId);
  if (!groupId) return;
  const version = num(body.groupVersion);
  const changes = (body.changedList || []).map((c) => ({ userId: num(c.userId), type: num(c.type), role: num(c.role) }));
  const group = groupFor(groupId);
  const mine = changes.find((c) => c.userId === me());
  if (mine?.type === CHANGE_DEL) {
    if (exited.has(groupId)) return; // our own exit: its answer removes the group
    if (state.chats.has(keyOf(GROUP, groupId))) markLeft(groupId, num(body.userId) === me() ? "left" : "removed");
    else forgetGroup(groupId, "removed");
    render();
    return;
  }
  if (mine?.type === CHANGE_ADD) {
    exited.delete(groupId); // invited again
    group.left = false;
    const chat = chatFor(GROUP, groupId);
    chat.left = "";
    chat.joined = true;
  }
  if (group.members) {
    for (const change of changes) {
      if (change.type === CHANGE_DEL) group.members.delete(change.userId);
      else group.members.set(change.userId, change.role || ROLE_MEMBER);
      if (change.type !== CHANGE_DEL && change.role === ROLE_OWNER) group.ownerId = change.userId;
    }
    group.memberCount = group.members.size;
  }
  if (version !== group.version || !group.name) refreshGroupInfo(groupId);
  // The open group's members come again from the server: the changes above may race others.
  if (openGroup() === group) loadMembers(groupId).catch(() => {});
  render();
}

function receiveReadCount(body) {
  const chat = state.chats.get(keyOf(GROUP, num(body.groupId)));
  if (!chat) return;
  chat.readCounts.set(num(body.msgId), { read: num(body.readCount), members: num(body.memberCount) });
  if (state.openKey === chat.key) renderMessages({});
}

/** Ask how many members read our newest group messages; the server then tells us as it changes
 * (GROUP_READ_COUNT_NOTIFY, coalesced, for ten minutes). */
function requestReadCounts(chat) {
  if (!chat || chat.type !== GROUP || chat.left || !connection?.online || state.openKey !== chat.key) return;
  const own = [...chat.messages.values()]
    .filter((m) => m.from === me() && m.type !== NOTIFICATION)
    .sort((a, b) => b.seq - a.seq)
    .slice(0, READ_COUNTS_ASKED);
  for (const message of own) {
    const counts = chat.readCounts.get(message.seq);
    if (counts && counts.members && counts.read >= counts.members) continue; // complete
    // The server tells us of changes for ten minutes after we ask; ask again after that.
    if (Date.now() - (chat.askedCounts.get(message.seq) ?? -Infinity) < READ_COUNT_WATCH) continue;
    chat.askedCounts.set(message.seq, Date.now());
    groupRequest("GROUP_READ_COUNT_REQ", { groupId: String(chat.id), msgId: String(message.seq) })
      .then((rsp) => {
        chat.readCounts.set(message.seq, { read: num(rsp.readCount), members: num(rsp.memberCount) });
        if (state.openKey === chat.key) renderMessages({});
      })
      .catch(() => chat.askedCounts.delete(message.seq));
  }
}

// ---- sending and reading -------------------------------------------------------------------------

function sendText(chat, text, mentions = [], atAll = false) {
  const clientMsgId = uuid();
  const time = Math.floor(Date.now() / 1000);
  chat.pending.set(clientMsgId, { seq: 0, clientMsgId, from: me(), time, type: TEXT, text, status: 0 });
  outbox.set(clientMsgId, { key: chat.key, text, mentions, atAll, inFlight: false });
  render({ toBottom: true });
  trySend(clientMsgId);
}

/** What a message of ``msgType`` whose content is the text ``content`` shows. */
function shownContent(msgType, content) {
  const data = textToBase64(content);
  return { type: msgType, text: messageText(msgType, data), media: parseMedia(msgType, data) };
}

/** Send a message of another type (an image, a voice note: media.js) whose content is ``content``. */
function sendContent(chat, msgType, content) {
  const clientMsgId = uuid();
  const time = Math.floor(Date.now() / 1000);
  chat.pending.set(clientMsgId, { seq: 0, clientMsgId, from: me(), time, ...shownContent(msgType, content), status: 0 });
  outbox.set(clientMsgId, { key: chat.key, text: content, msgType, mentions: [], atAll: false, inFlight: false });
  render({ toBottom: true });
  trySend(clientMsgId);
}

async function trySend(clientMsgId) {
  const item = outbox.get(clientMsgId);
  if (!item || item.inFlight || !connection?.online) return; // sent after the next reconnect
  const chat = state.chats.get(item.key);
  if (!chat) {
    outbox.delete(clientMsgId);
    return;
  }
  item.inFlight = true;
  item.tries = (item.tries || 0) + 1;
  const started = Date.now();
  let ack;
  try {
    // Resending the same clientMsgId is safe: the server stores a message once per id.
    const body = {
      fromUserId: String(me()),
      toSessionId: String(chat.id),
      clientMsgId,
      createTime: Math.floor(Date.now() / 1000),
      msgType: item.msgType || TEXT,
      sessionType: chat.type,
      msgData: textToBase64(item.text),
    };
    if (item.mentions.length) body.atUserList = item.mentions.map(String);
    if (item.atAll) body.atAll = true;
    ack = await connection.request("MSG_DATA", body);
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
    // A first try answered promptly was stored just now: its time tells the server's clock.
    if (ack.createTime && item.tries === 1 && Date.now() - started < 5000) clockSkew = time - Date.now() / 1000;
    const shown = item.msgType ? shownContent(item.msgType, item.text) : { type: TEXT, text: item.text };
    const sent = { clientMsgId, from: me(), ...shown, ...pending };
    remember(chat, { ...sent, seq: num(ack.serverMsgId), time, status: 0 });
    chat.pending.delete(clientMsgId);
    render();
    requestReadCounts(chat);
  } else if (num(ack.errorCode) === ErrorCode.RATE_LIMITED) {
    setTimeout(() => trySend(clientMsgId), 2000);
  } else {
    const code = num(ack.errorCode);
    const why = chat.type === GROUP && code === ErrorCode.FORBIDDEN ? "you cannot write in this group" : ack.errorMsg;
    failSend(chat, clientMsgId, why || "not sent");
  }
}

function failSend(chat, clientMsgId, why) {
  outbox.delete(clientMsgId);
  const pending = chat.pending.get(clientMsgId);
  if (pending) pending.failed = why;
  render();
}

// ---- typing -------------------------------------------------------------------------------------

/** Tell the others in a chat that we are typing (or stopped); false if it did not go out. */
function sendTyping(chat, typing) {
  const seq = connection?.send("MSG_TYPING_REQ", { sessionType: chat.type, sessionId: String(chat.id), typing });
  if (!seq) return false;
  typingSeqs.set(seq, chat.key);
  if (typingSeqs.size > 32) typingSeqs.delete(typingSeqs.keys().next().value);
  return true;
}

/** The composer changed: "typing" at most once a TYPING_EVERY while there is text, "stopped"
 * once it is empty. The server tells the others once per 3 s, and for 6 s. */
function composerTyped() {
  const chat = openChatState();
  if (!$("composer-input").value.trim() || !chat) {
    stopTyping();
    return;
  }
  if (typingOut.key && typingOut.key !== chat.key) stopTyping();
  if (chat.left || !canWrite(chat) || (typingRefused.get(chat.key) ?? 0) > Date.now()) return;
  const now = Date.now();
  if (typingOut.key === chat.key && now - typingOut.at < TYPING_EVERY) return;
  if (sendTyping(chat, true)) Object.assign(typingOut, { key: chat.key, at: now });
}

/** We no longer type where we said we did (the text was sent or cleared, another chat opened). */
function stopTyping() {
  const chat = typingOut.key ? state.chats.get(typingOut.key) : null;
  typingOut.key = "";
  if (chat && (typingRefused.get(chat.key) ?? 0) <= Date.now()) sendTyping(chat, false);
}

/** ERROR_RSP for something sent without waiting: a refused typing notice (NOT_SUPPORTED for a
 * big group, FORBIDDEN ...) means no more of them for that chat; RATE_LIMITED a pause. */
function sendRefused(cmd, code, text, seq) {
  if (callsRefused(cmd, code)) return; // a call's reply, signal or heartbeat (calls.js)
  if (cmd !== "MSG_TYPING_REQ" || !typingSeqs.has(seq)) return;
  const key = typingSeqs.get(seq);
  typingSeqs.delete(seq);
  typingRefused.set(key, code === ErrorCode.RATE_LIMITED ? Date.now() + TYPING_PAUSE : Infinity);
  if (typingOut.key === key) typingOut.key = "";
}

// ---- recall -------------------------------------------------------------------------------------

/** Whether to offer "Recall" on a message: our own while the window lasts (the server decides,
 * with its own clock and setting), any in a group we own or administer. */
function canRecall(chat, message) {
  if (!message.seq || chat.left || message.type === NOTIFICATION || message.type === RECALLED) return false;
  if (chat.type === GROUP && roleOf(groupFor(chat.id), me()) >= ROLE_ADMIN) return true;
  return message.from === me() && !chat.recallClosed.has(message.seq) && recallLeft(message) > 0;
}

/** Seconds left to recall one's own message (by the server's clock as far as we know it). */
const recallLeft = (message) => message.time + RECALL_WINDOW - serverNow();

const RECALL_ERRORS = {
  [ErrorCode.RECALL_TOO_LATE]: "Too late: messages can only be recalled for a short while after sending.",
  [ErrorCode.FORBIDDEN]: "You cannot recall this message.",
  [ErrorCode.NOT_FOUND]: "This message no longer exists.",
  [ErrorCode.NOT_SUPPORTED]: "This server does not let messages be recalled.",
  [ErrorCode.RATE_LIMITED]: "Too many requests. Wait a moment and try again.",
};

/** MSG_RECALL_REQ for a message of the open chat; on success it shows as recalled at once (the
 * other devices and people get MSG_RECALL_NOTIFY), a refusal shows under the message. */
async function recallMessage(chat, seq) {
  if (!messageMenu || messageMenu.busy) return;
  const menu = messageMenu;
  menu.busy = true;
  menu.error = "";
  renderMessages({});
  try {
    const rsp = await connection.request("MSG_RECALL_REQ", {
      sessionType: chat.type,
      sessionId: String(chat.id),
      msgId: String(seq),
    });
    const code = num(rsp.resultCode);
    if (code !== ErrorCode.SUCCESS) throw new ServerError(code, rsp.resultString || `error ${code}`, "MSG_RECALL_REQ");
    applyRecall(chat, seq, { by: me(), time: Math.floor(serverNow()) });
  } catch (e) {
    if (e instanceof ServerError && e.code === ErrorCode.RECALL_TOO_LATE) chat.recallClosed.add(seq);
    menu.recallRefused = true; // its button stays, disabled, beside the reason
    if (e instanceof ServerError) menu.error = RECALL_ERRORS[e.code] || e.message;
    else menu.error = "No connection to the server. Try again.";
  } finally {
    menu.busy = false;
  }
  render();
}

function toggleMessageMenu(chat, seq) {
  const open = messageMenu?.chatKey === chat.key && messageMenu.seq === seq;
  messageMenu = open ? null : { chatKey: chat.key, seq, busy: false, error: "" };
  renderMessages({});
  if (!open) {
    const node = $("message-list").querySelector(".message-menu .menu-item:not([hidden])");
    node?.focus({ preventScroll: true });
    node?.closest("li")?.scrollIntoView({ block: "nearest" });
  }
}

function closeMessageMenu() {
  if (!messageMenu) return;
  messageMenu = null;
  renderMessages({});
}

function flushOutbox() {
  for (const clientMsgId of outbox.keys()) trySend(clientMsgId);
}

/** Tell the server (and so the peer) we read the open conversation, if a person can see it. */
function markReadIfVisible() {
  const chat = openChatState();
  if (!chat || chat.left || !connection?.online || document.visibilityState !== "visible") return;
  if (PHONE.matches && state.screen !== "chat") return;
  if (roomShowing()) return; // a chat room covers the chat (rooms.js)
  if (chat.latest <= chat.myRead) return;
  connection.send("MSG_READ_ACK", { sessionType: chat.type, sessionId: String(chat.id), msgId: String(chat.latest) });
  chat.myRead = chat.latest;
  renderConversations();
}

// ---- groups: create, invite, leave ---------------------------------------------------------------

async function createGroup(event) {
  event.preventDefault();
  const members = [...picked.create];
  if (!members.length) return;
  const button = $("create-group-submit");
  button.disabled = true;
  $("group-create-error").textContent = "";
  try {
    const rsp = await groupRequest("GROUP_CREATE_DEFAULT_REQ", {
      groupName: $("group-name-input").value.trim(),
      memberIdList: members.map(String),
    });
    const group = applyGroupInfo(rsp.groupInfo || {});
    saveGroupCache();
    const notice = decodeMsgData(rsp.attachNotificatinoMsg);
    if (notice) storeIncoming(GROUP, group.id, notice);
    $("group-create-form").reset();
    picked.create.clear();
    state.sidebar = "list";
    openChat(chatFor(GROUP, group.id).key);
  } catch (e) {
    $("group-create-error").textContent = groupErrorText(e);
  } finally {
    renderGroupCreate();
  }
}

async function inviteMembers(event) {
  event.preventDefault();
  const group = openGroup();
  const members = [...picked.invite];
  if (!group || !members.length) return;
  $("invite-submit").disabled = true;
  $("invite-error").textContent = "";
  try {
    const rsp = await groupRequest("GROUP_INVITE_MEMBER_REQ", {
      groupId: String(group.id),
      memberIdList: members.map(String),
    });
    const notice = decodeMsgData(rsp.attachNotificatinoMsg);
    if (notice) storeIncoming(GROUP, group.id, notice);
    picked.invite.clear();
    state.groupPanel = "members";
    await loadMembers(group.id);
  } catch (e) {
    $("invite-error").textContent = groupErrorText(e);
  } finally {
    render();
  }
}

async function leaveGroup() {
  const group = openGroup();
  if (!group) return;
  $("leave-confirm-button").disabled = true;
  $("group-panel-error").textContent = "";
  exited.add(group.id);
  try {
    await groupRequest("GROUP_EXIT_REQ", { groupId: String(group.id) });
    forgetGroup(group.id, "exited");
  } catch (e) {
    if (e instanceof ServerError && (e.code === ErrorCode.FORBIDDEN || e.code === ErrorCode.NOT_FOUND)) {
      forgetGroup(group.id, "exited"); // not in it anyway
    } else {
      exited.delete(group.id);
      $("group-panel-error").textContent = groupErrorText(e);
    }
  } finally {
    $("leave-confirm-button").disabled = false;
    state.leaving = false;
    render();
  }
}

function showGroupPanel(which) {
  const group = openGroup();
  if (!group || group.left) return;
  state.groupPanel = which;
  state.leaving = false;
  $("group-panel-error").textContent = "";
  $("invite-error").textContent = "";
  if (which === "invite") picked.invite.clear();
  render();
  loadMembers(group.id).catch((e) => {
    $("group-panel-error").textContent = groupErrorText(e);
  });
  if (which === "invite") loadUsers().then(render, () => {});
}

function closeGroupPanel() {
  state.groupPanel = "";
  state.leaving = false;
  render();
}

// ---- opening conversations -------------------------------------------------------------------

function openChat(key) {
  roomsChatOpened(); // a room's view makes way (rooms.js)
  if (state.openKey !== key) {
    stopTyping();
    messageMenu = null;
    state.openKey = key;
    state.groupPanel = "";
    state.leaving = false;
    composerMentions.clear();
    $("mention-picker").hidden = true;
    $("message-list").replaceChildren();
    messageNodes.clear();
  }
  state.screen = "chat";
  const chat = state.chats.get(key);
  render({ toBottom: true });
  if (!chat) return;
  if (!chat.loaded && !chat.left && connection?.online) {
    loadNewest(chat)
      .then(() => fillViewport(chat))
      .catch(() => {});
  }
  if (chat.type === GROUP && !chat.left && connection?.online) loadMembers(chat.id).catch(() => {});
  requestReadCounts(chat);
  markReadIfVisible();
  if (!PHONE.matches) $("composer-input").focus(); // on a phone that would cover half the chat with the keyboard
}

function closeChat() {
  stopTyping();
  messageMenu = null;
  state.screen = "list";
  state.groupPanel = "";
  render();
}

/** Load older messages while the view is not yet full enough to scroll. */
async function fillViewport(chat) {
  const list = $("message-list");
  while (state.openKey === chat.key && !atStart(chat) && list.scrollHeight <= list.clientHeight + 40) {
    if (!(await loadOlder(chat))) break;
  }
}

async function loadOlder(chat) {
  if (chat.loadingOlder || !chat.loaded || atStart(chat) || chat.left || !connection?.online) return false;
  chat.loadingOlder = true;
  renderMessages({});
  try {
    const page = await fetchPage(chat, chat.oldest, PAGE_SIZE);
    return page.length > 0;
  } catch {
    return false;
  } finally {
    chat.loadingOlder = false;
    if (state.openKey === chat.key) renderMessages({ keepAnchor: true });
  }
}

async function showSidebar(which) {
  state.sidebar = which;
  if (which === "new-group") {
    picked.create.clear();
    $("group-create-form").reset();
    $("group-create-error").textContent = "";
  }
  render();
  if (which === "list") return;
  try {
    await loadUsers();
    render();
  } catch {
    // offline: the names we know will do
  }
  if (which === "new-group" && !PHONE.matches) $("group-name-input").focus();
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
  $("main-screen").classList.toggle("show-chat", state.screen === "chat" && state.openKey !== "");
  renderStatus();
  renderSidebar();
  renderChatHeader();
  renderMessages(options);
  renderGroupPanel();
  renderDeletes();
  renderDirectory();
  renderBlocks();
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

function renderSidebar() {
  $("conversation-panel").hidden = state.sidebar !== "list";
  $("user-panel").hidden = state.sidebar !== "users";
  $("group-create-panel").hidden = state.sidebar !== "new-group";
  renderConversations();
  if (state.sidebar === "users") renderUsers();
  if (state.sidebar === "new-group") renderGroupCreate();
}

function sortedChats() {
  return [...state.chats.values()]
    .filter((chat) => !isRemoved(chat))
    .filter((chat) => chat.latest > 0 || chat.key === state.openKey || chat.pending.size > 0 || chat.type === GROUP)
    .sort((a, b) => {
      // Pinned first (docs/dnd.md); then newest first, a conversation without messages yet on top.
      if (pinRank(a) !== pinRank(b)) return pinRank(b) - pinRank(a);
      const byTime = (b.preview ? b.preview.time : Infinity) - (a.preview ? a.preview.time : Infinity);
      return (Number.isNaN(byTime) ? 0 : byTime) || b.touched - a.touched;
    });
}

function previewText(chat) {
  const preview = chat.preview;
  if (!preview || preview.cleared) return "No messages yet";
  if (preview.type === NOTIFICATION) return noticeText(preview);
  if (preview.type === RECALLED) return recalledText(preview);
  const mine = preview.from === me();
  if (chat.type === GROUP) return `${mine ? "You" : senderName(preview.from, preview.nick)}: ${preview.text}`;
  return `${mine ? "You: " : ""}${preview.text}`;
}

function renderConversations() {
  const chats = sortedChats();
  const items = chats.map((chat) => {
    const unread = chat.left ? 0 : unreadOf(chat);
    const name = chatName(chat);
    const typing = typingText(chat, true); // shows instead of the preview while it lasts
    const button = el(
      "button",
      { cls: "conversation", attrs: { type: "button" } },
      chatAvatar(chat),
      el(
        "span",
        { cls: "conversation-body" },
        el(
          "span",
          { cls: "conversation-top" },
          el("span", { cls: "conversation-name", testid: "conversation-name", text: name }),
          el("span", { cls: "conversation-time", text: formatTime(chat.preview?.time) }),
        ),
        el(
          "span",
          { cls: "conversation-bottom" },
          el("span", { cls: "conversation-preview", testid: "conversation-preview", text: previewText(chat) }),
          typing ? el("span", { cls: "conversation-typing", testid: "conversation-typing", text: typing }) : "",
          ...conversationMarks(chat),
          chat.left ? el("span", { cls: "tag", testid: "left-marker", text: "Left" }) : "",
          mentionsMe(chat) && unread ? el("span", { cls: "mention-marker", testid: "mention-marker", text: "@you" }) : "",
          unread ? el("span", { cls: "badge", testid: "unread-badge", text: unread > 99 ? "99+" : String(unread) }) : "",
        ),
      ),
    );
    button.addEventListener("click", () => openChat(chat.key));
    const item = el("li", { testid: "conversation-item" }, button);
    if (chat.type !== GROUP) button.querySelector(".conversation-name").prepend(presenceDot(chat.id));
    item.dataset.sessionType = String(chat.type);
    if (chat.type === GROUP) item.dataset.groupId = String(chat.id);
    else item.dataset.peerId = String(chat.id);
    item.classList.toggle("active", chat.key === state.openKey);
    item.classList.toggle("unread", unread > 0);
    item.classList.toggle("left", Boolean(chat.left));
    item.classList.toggle("typing", Boolean(typing));
    return item;
  });
  $("conversation-list").replaceChildren(...withPinnedSection(items, chats));
  $("conversations-empty").hidden = items.length > 0;
  const total = chats.reduce((sum, chat) => sum + (chat.left ? 0 : unreadOf(chat)), 0);
  document.title = total ? `(${total}) CoffeeChat` : "CoffeeChat";
}

function otherUsers(exclude = new Set()) {
  return [...state.users.keys()]
    .filter((userId) => userId !== me() && !exclude.has(userId))
    .sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
}

function renderUsers() {
  const users = otherUsers();
  const list = $("user-list");
  const signature = JSON.stringify(users.map((userId) => [userId, nameOf(userId)]));
  $("users-empty").hidden = users.length > 0;
  if (list.dataset.signature === signature) return; // unchanged: keep the nodes (and clicks on them)
  list.dataset.signature = signature;
  const items = users.map((userId) => {
    const button = el(
      "button",
      { cls: "user", attrs: { type: "button" } },
      avatar(userId, nameOf(userId)),
      el("span", { cls: "user-name", testid: "user-name", text: nameOf(userId) }),
    );
    button.addEventListener("click", () => {
      state.sidebar = "list";
      openChat(chatFor(SINGLE, userId).key);
    });
    const item = el("li", { testid: "user-item" }, button);
    item.dataset.userId = String(userId);
    return item;
  });
  list.replaceChildren(...items);
}

/** A list of people with checkboxes; `chosen` holds the ticked ids. The items are rebuilt only
 * when the people change, so a redraw (a message arriving) never swallows a click. */
function renderPicker(list, userIds, chosen, onChange) {
  for (const userId of [...chosen]) if (!userIds.includes(userId)) chosen.delete(userId);
  const signature = JSON.stringify(userIds.map((userId) => [userId, nameOf(userId)]));
  if (list.dataset.signature !== signature) {
    list.dataset.signature = signature;
    const items = userIds.map((userId) => {
      const box = el("input", { attrs: { type: "checkbox", "aria-label": nameOf(userId) } });
      box.addEventListener("change", () => {
        if (box.checked) chosen.add(userId);
        else chosen.delete(userId);
        box.closest("li").classList.toggle("picked", box.checked);
        onChange();
      });
      const label = el(
        "label",
        { cls: "user pick" },
        avatar(userId, nameOf(userId)),
        el("span", { cls: "user-name", testid: "pick-name", text: nameOf(userId) }),
        box,
      );
      const item = el("li", { testid: "pick-item" }, label);
      item.dataset.userId = String(userId);
      return item;
    });
    list.replaceChildren(...items);
  }
  for (const item of list.children) {
    const ticked = chosen.has(num(item.dataset.userId));
    item.querySelector("input").checked = ticked;
    item.classList.toggle("picked", ticked);
  }
}

function renderGroupCreate() {
  const users = otherUsers();
  renderPicker($("group-member-picker"), users, picked.create, updateCreateButton);
  $("group-picker-empty").hidden = users.length > 0;
  updateCreateButton();
}

function updateCreateButton() {
  const count = picked.create.size;
  $("create-group-submit").disabled = count === 0;
  $("create-group-submit").textContent = count ? `Create group (${count + 1} members)` : "Create group";
}

function updateInviteButton() {
  const count = picked.invite.size;
  $("invite-submit").disabled = count === 0;
  $("invite-submit").textContent = count ? `Add ${count} ${count === 1 ? "person" : "people"}` : "Add";
}

/** Who is typing: in the open chat's header and in the list. */
function renderTyping() {
  if (!state.session) return;
  renderChatHeader();
  renderConversations();
}

function renderChatHeader() {
  const chat = openChatState();
  const open = chat !== null;
  renderDnd(chat);
  renderCallButtons(chat); // calls.js
  $("chat-empty").hidden = open;
  $("chat-header").hidden = !open;
  $("message-list").hidden = !open;
  const writable = open && !chat.left && canWrite(chat);
  $("composer").hidden = !open || Boolean(chat.left);
  $("left-note").hidden = !open || !chat.left;
  if (!open) {
    $("composer").hidden = true;
    $("typing-indicator").textContent = "";
    return;
  }
  $("chat-title").textContent = chatName(chat);
  showPresence(chat.type === SINGLE ? chat.id : 0);
  $("chat-avatar").replaceChildren(chatAvatar(chat));
  const isGroup = chat.type === GROUP;
  $("group-info-button").hidden = !isGroup || Boolean(chat.left);
  // "Alice is typing…" takes the place of the member count while it lasts.
  const typing = typingText(chat);
  $("typing-indicator").textContent = typing; // always there (empty): a live region must exist to be heard
  $("chat-subtitle").hidden = !isGroup || Boolean(typing);
  if (isGroup) {
    const group = groupFor(chat.id);
    const count = group.members ? group.members.size : group.memberCount;
    $("chat-subtitle").textContent = chat.left ? "Not a member" : count ? `${count} member${count === 1 ? "" : "s"}` : "";
  }
  $("left-note").textContent = {
    left: "You left this group.",
    removed: "You are no longer a member of this group.",
    dismissed: "This group was dismissed.",
  }[chat.left] || "";
  const input = $("composer-input");
  input.disabled = !writable;
  $("send-button").disabled = !writable;
  $("emoji-button").disabled = !writable;
  input.placeholder = writable ? "Message" : "Only admins can send messages";
}

/** Whether we may add people (docs/groups.md: join_model REJECT: nobody; NEED_AUTH: the owner
 * and admins; be_invite_model NEED_AGREE: the invitees are asked, docs/group-requests.md). */
function canInvite(group) {
  if (group.joinModel === JOIN_REJECT) return false;
  return group.joinModel !== JOIN_NEED_AUTH || roleOf(group, me()) >= ROLE_ADMIN;
}

/** Whether we may write in a chat (a group muted for members: only the owner and admins). */
function canWrite(chat) {
  if (chat.type !== GROUP) return true;
  const group = groupFor(chat.id);
  return group.muteModel !== MUTE_ALL || roleOf(group, me()) >= ROLE_ADMIN;
}

const messageNodes = new Map(); // key -> <li>, reused between renders of the open chat

function statusOf(chat, message) {
  if (message.failed) return { text: "!", label: `Not sent: ${message.failed}`, cls: "failed" };
  if (!message.seq) return { text: "🕓", label: "Sending", cls: "sending" };
  if (chat.type === GROUP) {
    const counts = chat.readCounts.get(message.seq);
    if (!counts || counts.members === 0) return { text: "✓", label: "Sent", cls: "sent" };
    if (counts.read >= counts.members) return { text: "✓✓", label: "Read by everyone", cls: "read" };
    return { text: "✓", label: `Read by ${counts.read} of ${counts.members}`, cls: "sent" };
  }
  if (message.seq <= chat.peerRead) return { text: "✓✓", label: "Read", cls: "read" };
  return { text: "✓", label: "Sent", cls: "sent" };
}

function systemNode(message) {
  const key = `s${message.seq}`;
  let node = messageNodes.get(key);
  if (!node) {
    node = el("li", { cls: "system", testid: "system-message" }, el("span"));
    node.dataset.seq = String(message.seq);
    messageNodes.set(key, node);
  }
  node.firstChild.textContent = noticeText(message); // names may have arrived since
  return { key, node };
}

/** A recalled message: a centred line saying who recalled it, never what it said. */
function recalledNode(message) {
  const key = `r${message.seq}`; // not the bubble's key: the bubble goes from the page
  let node = messageNodes.get(key);
  if (!node) {
    node = el("li", { cls: "system recalled", testid: "recalled-message" }, el("span"));
    node.dataset.seq = String(message.seq);
    node.dataset.from = String(message.from);
    messageNodes.set(key, node);
  }
  node.firstChild.textContent = recalledText(message);
  return { key, node };
}

const DOTS_ICON = "M5 12h.01M12 12h.01M19 12h.01";
const RECALL_ICON = "M9 14L4 9l5-5M4 9h10.5a5.5 5.5 0 0 1 0 11H11";
const FORWARD_ICON = "M15 14l5-5-5-5M20 9H9.5A5.5 5.5 0 0 0 4 14.5V20";

/** An inline SVG icon like the page's own (stroked, in the text's colour), built as elements. */
function icon(path, strokeWidth = 2) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  for (const [name, value] of Object.entries({
    class: "icon",
    viewBox: "0 0 24 24",
    "aria-hidden": "true",
    fill: "none",
    stroke: "currentColor",
    "stroke-width": String(strokeWidth),
    "stroke-linecap": "round",
    "stroke-linejoin": "round",
  })) {
    svg.setAttribute(name, value);
  }
  const line = document.createElementNS("http://www.w3.org/2000/svg", "path");
  line.setAttribute("d", path);
  svg.append(line);
  return svg;
}

/** Items the feature modules add to the message menu: {available(chat, message), create(chat,
 * message, menu) -> node, update(node, chat, message, menu)}; ``menu()`` gives the open menu's
 * state ({chatKey, seq, busy, error}). */
const messageMenuItems = [deleteMenuItem];

/** The "⋯" button beside a message we may recall, forward (or delete for ourselves ...), and
 * its menu (Recall, Forward, the features' items, and a refusal's reason) below the bubble when
 * open. A button, not a hover or a long press: phones and keyboards use it too. */
function updateMessageActions(chat, message, node) {
  const menuOpen = messageMenu?.chatKey === chat.key && messageMenu.seq === message.seq;
  const allowed = canRecall(chat, message);
  const items = messageMenuItems.filter((item) => item.available(chat, message));
  const offered = allowed || canForward(message) || items.length > 0;
  let button = node.querySelector(".message-actions");
  if ((offered || menuOpen) && !button) {
    button = el(
      "button",
      {
        cls: "icon-button small message-actions",
        testid: "message-actions",
        attrs: { type: "button", "aria-label": "Message actions", title: "Message actions" },
      },
      icon(DOTS_ICON, 3.5),
    );
    button.addEventListener("click", () => toggleMessageMenu(chat, message.seq));
    node.append(button);
  } else if (!offered && !menuOpen && button) {
    button.remove();
    button = null;
  }
  button?.setAttribute("aria-expanded", String(menuOpen));
  let menu = node.querySelector(".message-menu");
  if (!menuOpen) {
    menu?.remove();
    return;
  }
  if (!menu) {
    const recall = el(
      "button",
      { cls: "menu-item", testid: "recall-button", attrs: { type: "button" } },
      icon(RECALL_ICON),
      el("span"),
    );
    recall.addEventListener("click", () => recallMessage(chat, message.seq));
    const extra = items.map((item) => {
      const itemNode = item.create(chat, message, () => messageMenu);
      itemNode.menuItem = item;
      return itemNode;
    });
    menu = el(
      "div",
      { cls: "message-menu", testid: "message-menu", attrs: { role: "group", "aria-label": "Message actions" } },
      recall,
      forwardMenuItem(chat, message, icon(FORWARD_ICON)),
      ...extra,
      el("span", { cls: "menu-error", testid: "recall-error", attrs: { role: "alert" } }),
    );
    node.append(menu);
  }
  for (const itemNode of menu.children) itemNode.menuItem?.update(itemNode, chat, message, messageMenu);
  const recall = menu.querySelector(".menu-item");
  recall.hidden = !allowed && !messageMenu.busy && !messageMenu.recallRefused; // others' messages: no Recall
  recall.disabled = messageMenu.busy || !allowed;
  recall.lastChild.textContent = messageMenu.busy ? "Recalling…" : "Recall";
  recall.title = message.from === me() ? "Recall for everyone" : "Recall for everyone (as an admin of the group)";
  menu.querySelector(".menu-error").textContent = messageMenu.error;
}

function messageNode(chat, message) {
  if (message.type === NOTIFICATION) return systemNode(message);
  if (message.type === RECALLED) return recalledNode(message);
  const key = message.seq ? `s${message.seq}` : `c${message.clientMsgId}`;
  const mine = message.from === me();
  let node = messageNodes.get(key);
  if (!node) {
    const meta = el("span", { cls: "meta" }, el("time", { text: formatTime(message.time, true) }));
    const bubble = el("span", { cls: "bubble" });
    if (chat.type === GROUP && !mine) {
      const nick = senderName(message.from, message.nick);
      bubble.append(el("span", { cls: `sender t${message.from % 8}`, testid: "message-sender", text: nick }));
    }
    bubble.append(el("span", { cls: "text", testid: "message-text" }), meta);
    node = el("li", { cls: mine ? "message mine" : "message theirs", testid: "message" }, bubble);
    if (mine && chat.type === GROUP) meta.append(el("span", { cls: "readers", testid: "read-count" }));
    if (mine) meta.append(el("span", { cls: "status", testid: "message-status" }));
    node.dataset.mine = String(mine);
    node.dataset.from = String(message.from);
    if (message.seq) node.dataset.seq = String(message.seq);
    messageNodes.set(key, node);
  }
  const sender = node.querySelector(".sender");
  if (sender) sender.textContent = senderName(message.from, message.nick);
  // The text, with mentions set apart once the members' names are known.
  const textNode = node.querySelector(".text");
  const members = chat.type === GROUP ? groupFor(chat.id).members : null;
  const version = members ? [...members.keys()].join() : "-";
  if (textNode.dataset.members !== version) {
    textNode.dataset.members = version;
    textNode.replaceChildren(...withMentions(chat, message.text));
  }
  if (mine) {
    const status = statusOf(chat, message);
    const span = node.querySelector(".status");
    span.textContent = status.text;
    span.className = `status ${status.cls}`;
    span.title = status.label;
    span.dataset.status = status.cls;
    const readers = node.querySelector(".readers");
    if (readers) {
      const counts = chat.readCounts.get(message.seq);
      const partly = counts && counts.read > 0 && counts.read < counts.members;
      readers.textContent = partly ? `${counts.read}/${counts.members}` : "";
      readers.title = partly ? status.label : "";
    }
  }
  decorateBubble(chat, message, node.querySelector(".bubble")); // forwarded, custom, chat records
  decorateMedia(message, node.querySelector(".bubble")); // images, voice, video, files
  decorateCall(chat, message, node.querySelector(".bubble")); // call history lines (calls.js)
  updateMessageActions(chat, message, node);
  return { key, node };
}

/** A group message's text with its "@Name"s (members, and @all) set apart: text nodes only. */
function withMentions(chat, text) {
  const group = chat.type === GROUP ? groupFor(chat.id) : null;
  if (!group || !text.includes("@")) return [text];
  const names = [...(group.members ? group.members.keys() : [])].map(nameOf).filter(Boolean);
  names.push("all");
  const escaped = names.sort((a, b) => b.length - a.length).map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(^|\\s)(@(?:${escaped.join("|")}))(?=$|[\\s.,!?:;])`, "g");
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    const start = match.index + match[1].length;
    if (start > last) parts.push(text.slice(last, start));
    parts.push(el("span", { cls: "mention", text: match[2] }));
    last = start + match[2].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

function historyStartText(chat) {
  if (chat.type !== GROUP) return "This is the start of your conversation.";
  return chat.oldest > 1 ? "Messages from before you joined are not shown." : "This is the start of the group.";
}

/** Redraw the open chat's messages, keeping the reader's place: at the bottom when they were at
 * the bottom, on the same message when older ones were added above. */
function renderMessages({ toBottom = false, keepAnchor = false }) {
  const list = $("message-list");
  const chat = openChatState();
  if (!chat) return;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  const before = { height: list.scrollHeight, top: list.scrollTop };

  const ordered = [...chat.messages.values()].sort((a, b) => a.seq - b.seq);
  ordered.push(...chat.pending.values());
  const wanted = new Set();
  const nodes = [];
  if (atStart(chat)) {
    nodes.push(el("li", { cls: "history-edge", testid: "history-start", text: historyStartText(chat) }));
  } else if ((chat.loadingOlder || !chat.loaded) && !chat.left) {
    nodes.push(el("li", { cls: "history-edge", testid: "history-loading", text: "Loading…" }));
  }
  let previous = null;
  const isLine = (m) => m.type === NOTIFICATION || m.type === RECALLED;
  for (const message of ordered) {
    const { key, node } = messageNode(chat, message);
    // In a group, the sender's name shows once above a run of their messages.
    const continued = previous !== null && !isLine(previous) && !isLine(message) && previous.from === message.from;
    node.classList.toggle("continued", continued);
    previous = message;
    wanted.add(key);
    nodes.push(node);
  }
  for (const key of messageNodes.keys()) if (!wanted.has(key)) messageNodes.delete(key);
  list.replaceChildren(...nodes);

  if (keepAnchor) list.scrollTop = before.top + (list.scrollHeight - before.height);
  else if (toBottom || atBottom) list.scrollTop = list.scrollHeight;
  scheduleRecallExpiry(chat, ordered);
}

/** Redraw when the first of our Recall buttons should go (the window has passed). */
function scheduleRecallExpiry(chat, messages) {
  clearTimeout(recallTimer);
  if (chat.type === GROUP && roleOf(groupFor(chat.id), me()) >= ROLE_ADMIN) return; // no window for us
  let next = Infinity;
  for (const message of messages) {
    if (message.from !== me() || !canRecall(chat, message)) continue;
    next = Math.min(next, recallLeft(message));
  }
  if (next === Infinity) return;
  recallTimer = setTimeout(() => {
    if (state.openKey === chat.key) renderMessages({});
  }, next * 1000 + 50);
}

function renderGroupPanel() {
  const chat = openChatState();
  const group = openGroup();
  const show = Boolean(group && state.groupPanel && !chat.left);
  $("group-panel").hidden = !show;
  $("main-screen").classList.toggle("show-panel", show);
  if (!show) return;
  const inviting = state.groupPanel === "invite";
  $("group-members-view").hidden = inviting;
  $("invite-view").hidden = !inviting;
  $("group-panel-title").textContent = inviting ? "Add members" : "Group info";
  $("group-panel-avatar").replaceChildren(avatar(group.id, group.name, { group: true, big: true }));
  $("group-panel-name").textContent = group.name || "Group";
  const members = group.members;
  const count = members ? members.size : group.memberCount;
  $("group-member-count").textContent = count ? `${count} member${count === 1 ? "" : "s"}` : "";
  if (inviting) {
    const users = otherUsers(new Set(members ? members.keys() : []));
    renderPicker($("invite-picker"), users, picked.invite, updateInviteButton);
    $("invite-empty").hidden = users.length > 0 || !members;
    updateInviteButton();
    return;
  }
  // Owner, admins, then members; ourselves first among equals, the others by name.
  const byRank = ([a, ra], [b, rb]) => rb - ra || (b === me()) - (a === me()) || nameOf(a).localeCompare(nameOf(b));
  const ordered = members ? [...members.entries()].sort(byRank) : [];
  const items = ordered.map(([userId, role]) => {
    const label = ROLE_LABELS[role];
    const item = el(
      "li",
      { cls: "member", testid: "member-item" },
      avatar(userId, nameOf(userId)),
      el("span", {
        cls: "member-name",
        testid: "member-name",
        text: userId === me() ? `${nameOf(userId)} (you)` : senderName(userId),
      }),
      label ? el("span", { cls: `role ${label.toLowerCase()}`, testid: "member-role", text: label }) : "",
    );
    item.dataset.userId = String(userId);
    item.dataset.role = label ? label.toLowerCase() : "member";
    return item;
  });
  $("member-list").replaceChildren(...items);
  $("invite-button").hidden = !canInvite(group);
  $("leave-group-button").hidden = state.leaving;
  $("leave-confirm").hidden = !state.leaving;
  const ownerNote = roleOf(group, me()) === ROLE_OWNER && count > 1 ? " The longest-standing member becomes the owner." : "";
  const question = `Leave “${group.name || "this group"}”? You will no longer get its messages.`;
  $("leave-confirm-text").textContent = question + ownerNote;
  renderGroupPanelPart(group);
  renderGroupAdmin(group); // kick, admins, rename, mutes, tags (group_admin.js)
}

// ---- @mentions --------------------------------------------------------------------------------

let mentionQuery = null; // {start, text}: the "@word" before the caret, or null
let mentionActive = 0;

/** The people an "@" in a group message can name: members but us, matching what follows the @. */
function mentionOptions() {
  const group = openGroup();
  if (!group?.members || mentionQuery === null) return [];
  const query = mentionQuery.text.toLowerCase();
  const options = [...group.members.keys()]
    .filter((userId) => userId !== me() && nameOf(userId).toLowerCase().includes(query))
    .sort((a, b) => nameOf(a).localeCompare(nameOf(b)))
    .map((userId) => ({ userId, label: nameOf(userId) }));
  if (roleOf(group, me()) >= ROLE_ADMIN && "everyone all".includes(query)) options.push({ userId: 0, label: "Everyone" });
  return options.slice(0, 8);
}

function updateMentionQuery() {
  const input = $("composer-input");
  const chat = openChatState();
  const before = input.value.slice(0, input.selectionStart ?? input.value.length);
  const match = chat?.type === GROUP ? /(^|\s)@([^\s@]{0,30})$/.exec(before) : null;
  mentionQuery = match ? { start: before.length - match[2].length - 1, text: match[2] } : null;
  mentionActive = 0;
  renderMentionPicker();
}

function renderMentionPicker() {
  const picker = $("mention-picker");
  const options = mentionOptions();
  picker.hidden = options.length === 0;
  if (picker.hidden) return;
  mentionActive = Math.min(mentionActive, options.length - 1);
  picker.replaceChildren(
    ...options.map((option, index) => {
      const button = el(
        "button",
        { cls: "mention-option", testid: "mention-option", attrs: { type: "button", role: "option" } },
        option.userId ? avatar(option.userId, option.label) : el("span", { cls: "avatar all", text: "@" }),
        el("span", { text: option.label }),
      );
      button.dataset.userId = String(option.userId);
      button.setAttribute("aria-selected", String(index === mentionActive));
      button.addEventListener("mousedown", (event) => event.preventDefault()); // keep the caret
      button.addEventListener("click", () => pickMention(option));
      return button;
    }),
  );
}

function pickMention(option) {
  const input = $("composer-input");
  if (mentionQuery === null) return;
  const end = input.selectionStart ?? input.value.length;
  const text = option.userId ? `@${option.label} ` : "@all ";
  input.setRangeText(text, mentionQuery.start, end, "end");
  if (option.userId) composerMentions.set(option.userId, option.label);
  mentionQuery = null;
  $("mention-picker").hidden = true;
  input.focus();
  autoGrow(input);
}

/** Keys for the mention list while it shows; true when the key was used. */
function mentionKey(event) {
  if ($("mention-picker").hidden) return false;
  const options = mentionOptions();
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    mentionActive = (mentionActive + (event.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
    renderMentionPicker();
  } else if ((event.key === "Enter" || event.key === "Tab") && !event.isComposing) {
    pickMention(options[mentionActive]);
  } else if (event.key === "Escape") {
    mentionQuery = null;
    $("mention-picker").hidden = true;
  } else {
    return false;
  }
  event.preventDefault();
  return true;
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
  const chat = openChatState();
  if (!text.trim() || !chat || chat.left) return;
  if (utf8Length(text) > MAX_TEXT_BYTES) {
    setNotice("That message is too long to send.");
    return;
  }
  let mentions = [];
  let atAll = false;
  if (chat.type === GROUP) {
    // Only the names still in the text are mentioned.
    mentions = [...composerMentions].filter(([, nick]) => text.includes(`@${nick}`)).map(([userId]) => userId);
    atAll = /(^|\s)@all(\s|$)/.test(text) && roleOf(groupFor(chat.id), me()) >= ROLE_ADMIN;
  }
  stopTyping(); // before the message: the others' "typing…" goes as it arrives
  sendText(chat, text, mentions, atAll);
  composerMentions.clear();
  input.value = "";
  autoGrow(input);
  $("emoji-picker").hidden = true;
  $("mention-picker").hidden = true;
}

function wire() {
  $("login-tab").addEventListener("click", () => setLoginMode(false));
  $("register-tab").addEventListener("click", () => setLoginMode(true));
  $("login-form").addEventListener("submit", submitLogin);
  $("logout-button").addEventListener("click", logout);
  $("new-chat-button").addEventListener("click", () => showSidebar("users"));
  $("user-list-close").addEventListener("click", () => showSidebar("list"));
  $("new-group-button").addEventListener("click", () => showSidebar("new-group"));
  $("group-create-close").addEventListener("click", () => showSidebar("users"));
  $("group-create-form").addEventListener("submit", createGroup);
  $("back-button").addEventListener("click", closeChat);
  $("group-info-button").addEventListener("click", () => (state.groupPanel ? closeGroupPanel() : showGroupPanel("members")));
  $("group-panel-close").addEventListener("click", () => {
    if (state.groupPanel === "invite") showGroupPanel("members");
    else closeGroupPanel();
  });
  $("invite-button").addEventListener("click", () => showGroupPanel("invite"));
  $("invite-cancel").addEventListener("click", () => showGroupPanel("members"));
  $("invite-view").addEventListener("submit", inviteMembers);
  $("leave-group-button").addEventListener("click", () => {
    state.leaving = true;
    renderGroupPanel();
  });
  $("leave-cancel").addEventListener("click", () => {
    state.leaving = false;
    renderGroupPanel();
  });
  $("leave-confirm-button").addEventListener("click", leaveGroup);
  $("notice-close").addEventListener("click", () => setNotice(""));
  $("composer").addEventListener("submit", submitMessage);
  $("emoji-button").addEventListener("click", () => {
    $("emoji-picker").hidden = !$("emoji-picker").hidden;
  });
  document.addEventListener("click", (event) => {
    if (!$("composer").contains(event.target)) {
      $("emoji-picker").hidden = true;
      $("mention-picker").hidden = true;
    }
    if (messageMenu && !event.target.closest?.(".message-menu, .message-actions")) closeMessageMenu();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    $("emoji-picker").hidden = true;
    if (messageMenu) {
      closeMessageMenu();
      return;
    }
    if (state.groupPanel && $("mention-picker").hidden) closeGroupPanel();
  });
  const input = $("composer-input");
  input.addEventListener("input", () => {
    autoGrow(input);
    updateMentionQuery();
    composerTyped();
  });
  input.addEventListener("click", updateMentionQuery);
  input.addEventListener("keydown", (event) => {
    if (mentionKey(event)) return;
    // Enter sends, Shift+Enter starts a new line; not while an input method is composing.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submitMessage(event);
  });
  $("message-list").addEventListener("scroll", () => {
    const chat = openChatState();
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
  initDnd({ request: (name, body) => connection.request(name, body), render: () => render(), openChat: openChatState, setNotice, sidebar: () => state.sidebar });
  initPush({
    request: (name, body) => connection.request(name, body),
    online: () => Boolean(connection?.online),
    openChat: (type, id) => openChat(chatFor(type, id).key), // a clicked notification's conversation
  });
  setupGroupRequests({
    groupRequest, me, nameOf: (userId) => senderName(userId), el, openGroup, roleOf, loadMembers, loadUsers, loadNames, render,
    storeNotice: (groupId, notice) => storeIncoming(GROUP, groupId, notice),
  });
  initSearch({
    request: (name, body) => connection.request(name, body),
    online: () => Boolean(connection?.online),
    openChat: (type, id) => openChat(chatFor(type, id).key),
    loadUntil: async (type, id, seq) => {
      // older pages of the open conversation until message `seq` is held (at most 20 pages)
      const chat = chatFor(type, id);
      for (let pages = 0; pages < 20 && state.openKey === chat.key; ) {
        if (chat.loaded && chat.oldest > 0 && chat.oldest <= seq) return true;
        if (!chat.loaded || chat.loadingOlder) await new Promise((done) => setTimeout(done, 100));
        else if (atStart(chat) || !(await loadOlder(chat))) return false;
        else pages++;
      }
      return false;
    },
    keyOf,
    chatLabel: (type, id) => (type === GROUP ? groupFor(id).name || "Group" : nameOf(id)),
    senderLabel: (userId) => (userId === me() ? "You" : nameOf(userId)),
    formatTime,
    num,
  });
  wireDeletes();
  setupGroupAdmin({ request: groupRequest, me, openGroup, roleOf, render, el, loadMembers, applyGroupInfo, storeIncoming });
}

// For the feature modules (directory.js, blocks.js, forward.js ...): live bindings, read when
// they run, not at import. deletes.js: $, closeChat, closeMessageMenu, connectionNow, fromInfo,
// openChatState, state.
const connectionNow = () => connection;
const currentConnection = connectionNow;
export {
  $,
  avatar,
  chatFor,
  chatName,
  closeChat,
  closeMessageMenu,
  connection,
  connectionNow,
  currentConnection,
  el,
  fromInfo,
  me,
  nameOf,
  openChat,
  openChatState,
  render,
  showSidebar as setSidebar,
  sortedChats,
  state,
  state as appState,
};

wire();
initMedia({
  token: () => state.session?.token || "",
  openChat: () => {
    const chat = openChatState();
    return chat && !chat.left ? chat : null;
  },
  send: sendContent,
});
initFriends({
  request: (name, body) => connection.request(name, body),
  me,
  nameOf,
  users: () => state.users,
  openPeer: (id) => openChat(chatFor(SINGLE, id).key),
  changed: () => render(),
});
initCalls({
  request: (name, body) => connection.request(name, body),
  send: (name, body) => connection?.send(name, body) || 0,
  online: () => Boolean(connection?.online),
  me,
  nameOf,
  avatar,
  token: () => state.session?.token || "",
  openPeer: (id) => openChat(chatFor(SINGLE, id).key),
});
initRooms({
  request: (name, body) => connection.request(name, body),
  online: () => Boolean(connection?.online),
  me,
  myName: () => state.session?.nickName || "",
  avatar,
  formatTime,
  uuid,
  chatShows: () => markReadIfVisible(),
});
const saved = loadSession();
if (saved) startSession(saved);
else {
  showScreen("login");
  setLoginMode(false);
}
