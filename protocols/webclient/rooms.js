// Chat rooms in the web client (docs/rooms.md, docs/webclient.md): open rooms for live events,
// which a connection joins and leaves at will. The rooms button (sidebar header) opens the rooms
// panel: the list (ROOM_LIST_REQ, newest first, a page at a time) and a form to create one
// (ROOM_CREATE_REQ; the creator is its owner and joins it). Joining (ROOM_JOIN_REQ) opens the
// room view over the chat: the last messages from the answer, then what ROOM_MSG_NOTIFY brings
// (several messages a batch), the member count (from the join, ROOM_EVENT_NOTIFY's coalesced
// joins and leaves, and ROOM_MEMBERS_REQ every 15 s while the room shows), a composer
// (ROOM_MSG_REQ, acknowledged by ROOM_MSG_RSP) and Leave (ROOM_LEAVE_REQ). The owner and the
// moderators get Mute / Kick / Ban on the members of the sample (ROOM_MODERATE_REQ); the owner
// Close room (ROOM_CLOSE_REQ).
//
// Membership belongs to the connection: after a reconnect the rooms joined are joined again (the
// recent messages of the answer fill what was missed, up to the server's N). Nothing is kept in
// storage, and what is held per room is bounded (MAX_LINES). Everything from users goes in by
// textContent.

import { ErrorCode, NoAnswerError, ServerError, base64ToText, num, textToBase64, utf8Length } from "./protocol.js";

const OK = 200;
const TEXT = 1; // kCIM_MSG_TYPE_TEXT
const PAGE = 30; // rooms per ROOM_LIST_REQ
const MAX_LINES = 300; // messages and notices held per room (the oldest go first)
const MEMBERS_EVERY = 15000; // ms between ROOM_MEMBERS_REQ while a room shows
const SAMPLE = 30; // members asked for in the sample
const MAX_TEXT_BYTES = 12 * 1024;
const ROLE = { MEMBER: 0, MODERATOR: 1, OWNER: 2 };
const ROLE_NAMES = { kCIM_ROOM_ROLE_MEMBER: 0, kCIM_ROOM_ROLE_MODERATOR: 1, kCIM_ROOM_ROLE_OWNER: 2 };
const ACTION = { MUTE: 1, UNMUTE: 2, BAN: 3, UNBAN: 4, KICK: 5, ADD_MODERATOR: 6, REMOVE_MODERATOR: 7, CLOSED: 8 };
const ERRORS = {
  [ErrorCode.ROOM_FULL]: "This room is full.",
  [ErrorCode.ROOM_BANNED]: "You are banned from this room.",
  [ErrorCode.ROOM_NOT_JOINED]: "You are not in this room.",
  [ErrorCode.ROOM_MUTED]: "You are muted in this room.",
  [ErrorCode.TOO_MANY_ROOMS]: "Too many rooms: leave one first (or you own as many as you may).",
  [ErrorCode.ROOM_BUSY]: "The room is busy: your message was dropped. Try again in a moment.",
  [ErrorCode.NOT_FOUND]: "This room no longer exists.",
  [ErrorCode.FORBIDDEN]: "You may not do that in this room.",
  [ErrorCode.INVALID_ARGUMENT]: "That is not valid.",
  [ErrorCode.RATE_LIMITED]: "Too fast: wait a moment.",
  [ErrorCode.NOT_SUPPORTED]: "This server has no chat rooms.",
};

let ctx = null; // {request, online, me, myName, avatar, formatTime, uuid, chatShows}: from app.js
const model = {
  open: false, // the rooms panel shows
  rooms: new Map(), // room id -> CIMRoomInfo (JSON), as listed
  order: [], // room ids, as listed
  hasMore: false,
  loading: false,
  error: "",
  createError: "",
  viewing: 0, // the room shown in the room view (0: none)
};
const joined = new Map(); // room id -> room (see newRoom): the rooms this connection is in
const gone = new Map(); // room id -> why we are out of it (kicked, closed ...), while it still shows
const joining = new Set(); // room ids with a ROOM_JOIN_REQ on its way (a double click joins once)
let creating = false;
let closeAsked = 0; // the room whose "Close room" was clicked once (a second click closes it)
let membersTimer = 0;
const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

function newRoom(info) {
  return {
    id: num(info.roomId),
    info,
    role: ROLE.MEMBER,
    lines: [], // {kind: "msg" | "event", key, ...} in arrival order
    keys: new Set(), // keys of lines held: a message twice (a rejoin's recent, a resend) shows once
    count: num(info.memberCount),
    sample: [],
    mutedUntil: 0,
    error: "",
    membersOpen: false,
  };
}

const roleOf = (value) => (typeof value === "string" && value in ROLE_NAMES ? ROLE_NAMES[value] : num(value));

async function call(name, body) {
  const rsp = await ctx.request(name, { userId: String(ctx.me()), ...body });
  const code = num(rsp.resultCode);
  if (code && code !== OK) throw new ServerError(code, rsp.resultString || "", name);
  return rsp;
}

function errorText(e) {
  if (e instanceof ServerError) return ERRORS[e.code] || e.message || `Refused (${e.code}).`;
  if (e instanceof NoAnswerError) return "No connection: try again when online.";
  return "Something went wrong.";
}

// ---- set-up ------------------------------------------------------------------------------------------

function el(tag, { cls, testid, text, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (testid) node.dataset.testid = testid;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function icon(paths, circles = []) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  for (const [name, value] of [["fill", "none"], ["stroke", "currentColor"], ["stroke-width", "2"], ["stroke-linecap", "round"], ["stroke-linejoin", "round"]]) {
    svg.setAttribute(name, value);
  }
  for (const [cx, cy, r] of circles) {
    const c = document.createElementNS(NS, "circle");
    c.setAttribute("cx", String(cx));
    c.setAttribute("cy", String(cy));
    c.setAttribute("r", String(r));
    svg.append(c);
  }
  for (const d of paths) {
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

const BACK = ["M15 5l-7 7 7 7"];
const SEND = ["M4 12l16-8-5 16-3-7z", "M12 13l8-9"];
const PEOPLE = ["M2.5 19.5c0-3.6 2.9-6 6.5-6s6.5 2.4 6.5 6", "M16 4.8a3.5 3.5 0 0 1 0 6.4", "M18 13.8c2.1.7 3.5 2.8 3.5 5.7"];
const REFRESH = ["M20 11a8 8 0 1 0-2.3 5.7", "M20 4v7h-7"];

const ui = {};

/** Wire the module to app.js: the rooms button, the rooms panel (sidebar) and the room view (chat). */
export function initRooms(shared) {
  ctx = shared;
  $("rooms-button")?.addEventListener("click", () => {
    model.open = !model.open;
    renderRooms();
    if (model.open) loadRooms(true);
  });
  buildPanel();
  buildView();
  renderRooms();
}

function buildPanel() {
  const panel = $("rooms-panel");
  if (!panel) return;
  const close = el("button", { cls: "icon-button", testid: "rooms-close", attrs: { type: "button", "aria-label": "Back" } }, icon(BACK));
  close.addEventListener("click", () => {
    model.open = false;
    renderRooms();
  });
  const refresh = el("button", { cls: "icon-button", testid: "rooms-refresh", attrs: { type: "button", "aria-label": "Refresh", title: "Refresh" } }, icon(REFRESH));
  refresh.addEventListener("click", () => loadRooms(true));
  const header = el("header", { cls: "panel-header" }, close, el("h2", { text: "Chat rooms" }), refresh);
  ui.name = el("input", { testid: "room-name-input", attrs: { maxlength: "64", placeholder: "Room name", "aria-label": "Room name", autocomplete: "off" } });
  ui.topic = el("input", { testid: "room-topic-input", attrs: { maxlength: "256", placeholder: "Topic (optional)", "aria-label": "Topic", autocomplete: "off" } });
  ui.createError = el("p", { cls: "form-error", testid: "room-create-error", attrs: { role: "alert" } });
  const submit = el("button", { cls: "primary", testid: "room-create-submit", text: "Create room", attrs: { type: "submit" } });
  const form = el("form", { cls: "room-create", testid: "room-create-form", attrs: { novalidate: "" } }, ui.name, ui.topic, ui.createError, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    createRoom();
  });
  ui.list = el("ul", { cls: "list rooms-list", testid: "rooms-list" });
  ui.listStatus = el("p", { cls: "empty", testid: "rooms-status" });
  ui.more = el("button", { cls: "link-button rooms-more", testid: "rooms-more", text: "More rooms", attrs: { type: "button" } });
  ui.more.addEventListener("click", () => loadRooms(false));
  panel.replaceChildren(header, form, ui.list, ui.listStatus, ui.more);
}

function buildView() {
  const view = $("room-view");
  if (!view) return;
  const back = el("button", { cls: "icon-button", testid: "room-back", attrs: { type: "button", "aria-label": "Back", title: "Back (stay in the room)" } }, icon(BACK));
  back.addEventListener("click", () => hideRoom());
  ui.title = el("h2", { cls: "chat-title", testid: "room-title" });
  ui.count = el("span", { cls: "chat-subtitle", testid: "room-member-count" });
  ui.topicLine = el("span", { cls: "chat-subtitle room-topic-line", testid: "room-topic-line" });
  const heading = el("span", { cls: "chat-heading" }, ui.title, ui.count, ui.topicLine);
  ui.membersButton = el("button", { cls: "icon-button", testid: "room-members-button", attrs: { type: "button", "aria-label": "Who is here", title: "Who is here" } }, icon(PEOPLE, [[9, 8, 3.5]]));
  ui.membersButton.addEventListener("click", () => toggleMembers());
  ui.closeRoom = el("button", { cls: "secondary small", testid: "room-close-button", text: "Close room", attrs: { type: "button" } });
  ui.closeRoom.addEventListener("click", () => closeRoom());
  ui.leave = el("button", { cls: "secondary small", testid: "room-leave", text: "Leave", attrs: { type: "button" } });
  ui.leave.addEventListener("click", () => leaveRoom(model.viewing));
  const header = el("header", { cls: "bar chat-header room-header" }, back, heading, ui.membersButton, ui.closeRoom, ui.leave);
  ui.members = el("ul", { cls: "list room-members", testid: "room-members" });
  ui.note = el("p", { cls: "room-note", testid: "room-note", attrs: { role: "status" } });
  ui.messages = el("ol", { cls: "messages room-messages", testid: "room-messages", attrs: { "aria-live": "polite" } });
  ui.input = el("textarea", { testid: "room-input", attrs: { rows: "1", placeholder: "Message the room", "aria-label": "Message the room" } });
  ui.send = el("button", { cls: "send", testid: "room-send", attrs: { type: "submit", "aria-label": "Send" } }, icon(SEND));
  ui.composer = el("form", { cls: "composer room-composer", testid: "room-composer" }, ui.input, ui.send);
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendToRoom();
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendToRoom();
    }
  });
  ui.error = el("p", { cls: "form-error room-error", testid: "room-error", attrs: { role: "alert" } });
  view.replaceChildren(header, ui.members, ui.messages, ui.note, ui.error, ui.composer);
}

// ---- the list ------------------------------------------------------------------------------------------

async function loadRooms(fresh) {
  if (model.loading) return;
  model.loading = true;
  model.error = "";
  renderPanel();
  try {
    const before = fresh || !model.order.length ? 0 : model.order[model.order.length - 1];
    const rsp = await call("ROOM_LIST_REQ", { beforeRoomId: String(before), limit: PAGE });
    if (fresh) {
      model.rooms.clear();
      model.order = [];
    }
    for (const info of rsp.rooms || []) {
      const id = num(info.roomId);
      if (!id) continue;
      if (!model.rooms.has(id)) model.order.push(id);
      model.rooms.set(id, info);
      const room = joined.get(id);
      if (room) room.info = { ...room.info, ...info };
    }
    model.hasMore = Boolean(rsp.hasMore);
  } catch (e) {
    model.error = errorText(e);
  } finally {
    model.loading = false;
    renderPanel();
  }
}

async function createRoom() {
  const name = ui.name.value.trim();
  if (creating) return;
  if (!name) {
    model.createError = "Give the room a name.";
    renderPanel();
    return;
  }
  model.createError = "";
  creating = true;
  renderPanel();
  try {
    const rsp = await call("ROOM_CREATE_REQ", { name, topic: ui.topic.value.trim() });
    ui.name.value = "";
    ui.topic.value = "";
    const info = rsp.room || {};
    const id = num(info.roomId);
    if (id) {
      model.rooms.set(id, info);
      model.order = [id, ...model.order.filter((other) => other !== id)];
      await joinRoom(id);
    }
  } catch (e) {
    model.createError = errorText(e);
  } finally {
    creating = false;
  }
  renderPanel();
}

// ---- joining, leaving --------------------------------------------------------------------------------

/** Join a room (or show it again, if this connection is in it already). */
export async function joinRoom(id) {
  if (joined.has(id)) {
    showRoom(id);
    return;
  }
  if (joining.has(id)) return;
  joining.add(id);
  gone.delete(id);
  const info = model.rooms.get(id) || { roomId: String(id) };
  const room = newRoom(info);
  try {
    const rsp = await call("ROOM_JOIN_REQ", { roomId: String(id) });
    applyJoin(room, rsp);
    joined.set(id, room);
    showRoom(id);
  } catch (e) {
    model.error = errorText(e);
    renderPanel();
  } finally {
    joining.delete(id);
  }
}

function applyJoin(room, rsp) {
  if (rsp.room) {
    room.info = { ...room.info, ...rsp.room };
    model.rooms.set(room.id, room.info);
    room.count = num(rsp.room.memberCount) || room.count;
  }
  room.role = roleOf(rsp.role);
  room.mutedUntil = num(rsp.mutedUntil);
  addMessages(room, rsp.recent || []);
}

function showRoom(id) {
  model.viewing = id;
  const room = joined.get(id);
  if (room) room.error = "";
  render({ toBottom: true });
  refreshMembers();
  clearInterval(membersTimer);
  membersTimer = setInterval(refreshMembers, MEMBERS_EVERY);
  if (!window.matchMedia("(max-width: 720px)").matches) ui.input?.focus();
}

/** Hide the room view; this connection stays in the room (the rooms panel shows it "Joined"). */
export function hideRoom() {
  if (!model.viewing) return;
  closeAsked = 0;
  if (!joined.has(model.viewing)) gone.delete(model.viewing);
  model.viewing = 0;
  clearInterval(membersTimer);
  render();
  ctx.chatShows?.(); // the chat under it shows again: what is in it now counts as read
}

async function leaveRoom(id) {
  if (!id) return;
  const room = joined.get(id);
  joined.delete(id);
  if (model.viewing === id) hideRoom();
  else render();
  if (!room) return;
  try {
    await call("ROOM_LEAVE_REQ", { roomId: String(id) });
  } catch {
    // not in it any more (closed, kicked) or offline: the connection's end leaves it anyway
  }
  if (model.open) loadRooms(true);
}

async function closeRoom() {
  const room = joined.get(model.viewing);
  if (!room || room.role !== ROLE.OWNER) return;
  if (closeAsked !== room.id) {
    closeAsked = room.id; // asked in the button itself: no browser dialog
    render();
    return;
  }
  closeAsked = 0;
  try {
    await call("ROOM_CLOSE_REQ", { roomId: String(room.id) });
    roomGone(room.id, "You closed this room.");
    model.rooms.delete(room.id);
    model.order = model.order.filter((id) => id !== room.id);
  } catch (e) {
    room.error = errorText(e);
  }
  render();
}

/** We are out of a room (kicked, banned, closed): it shows on with a note, read-only. */
function roomGone(id, why) {
  const room = joined.get(id) || gone.get(id)?.room;
  joined.delete(id);
  if (room && model.viewing === id) gone.set(id, { room, why });
  render();
}

// ---- messages ----------------------------------------------------------------------------------------

function msgLine(msg) {
  const msgId = num(msg.msgId);
  return {
    kind: "msg",
    key: msgId ? `m${msgId}` : `c${msg.clientMsgId || ""}`,
    msgId,
    clientMsgId: msg.clientMsgId || "",
    from: num(msg.fromUserId),
    nick: msg.fromNickName || "",
    role: roleOf(msg.fromRole),
    type: num(msg.msgType),
    text: num(msg.msgType) === TEXT || !num(msg.msgType) ? base64ToText(msg.msgData) : "[Message]",
    time: num(msg.createTime),
    failed: "",
  };
}

function pushLine(room, line) {
  room.lines.push(line);
  room.keys.add(line.key);
  while (room.lines.length > MAX_LINES) room.keys.delete(room.lines.shift().key);
}

function addMessages(room, msgs) {
  for (const msg of msgs) {
    const line = msgLine(msg);
    if (room.keys.has(line.key)) continue;
    // Our own message, already showing as sent from here: its ack or the notify, whichever is second.
    if (line.from === ctx.me() && line.clientMsgId) {
      const own = room.lines.find((l) => l.kind === "msg" && l.clientMsgId === line.clientMsgId);
      if (own) {
        if (!own.msgId && line.msgId) {
          room.keys.delete(own.key);
          Object.assign(own, { msgId: line.msgId, key: line.key, time: line.time || own.time, failed: "" });
          room.keys.add(own.key);
        }
        continue;
      }
    }
    pushLine(room, line);
  }
}

async function sendToRoom() {
  const room = joined.get(model.viewing);
  const text = ui.input.value.trim();
  if (!room || !text) return;
  if (utf8Length(text) > MAX_TEXT_BYTES) {
    room.error = "This message is too long.";
    render();
    return;
  }
  ui.input.value = "";
  room.error = "";
  const clientMsgId = ctx.uuid();
  const line = {
    kind: "msg",
    key: `c${clientMsgId}`,
    msgId: 0,
    clientMsgId,
    from: ctx.me(),
    nick: ctx.myName(),
    role: room.role,
    type: TEXT,
    text,
    time: Math.floor(Date.now() / 1000),
    failed: "",
  };
  pushLine(room, line);
  render({ toBottom: true });
  try {
    const rsp = await call("ROOM_MSG_REQ", { roomId: String(room.id), clientMsgId, msgType: TEXT, msgData: textToBase64(text) });
    addMessages(room, [{ ...rsp, roomId: String(room.id), clientMsgId, fromUserId: String(ctx.me()), msgType: TEXT, msgData: textToBase64(text) }]);
  } catch (e) {
    line.failed = errorText(e);
    if (e instanceof ServerError && e.code === ErrorCode.ROOM_NOT_JOINED) roomGone(room.id, "You are no longer in this room.");
  }
  render();
}

// ---- members -------------------------------------------------------------------------------------------

async function refreshMembers() {
  const room = joined.get(model.viewing);
  if (!room || !ctx.online()) return;
  try {
    const rsp = await call("ROOM_MEMBERS_REQ", { roomId: String(room.id), sampleSize: SAMPLE });
    room.count = num(rsp.memberCount);
    room.sample = rsp.sample || [];
    render();
  } catch (e) {
    if (e instanceof ServerError && e.code === ErrorCode.ROOM_NOT_JOINED) roomGone(room.id, "You are no longer in this room.");
  }
}

function toggleMembers() {
  const room = joined.get(model.viewing);
  if (!room) return;
  room.membersOpen = !room.membersOpen;
  render();
  if (room.membersOpen) refreshMembers();
}

async function moderate(room, userId, action, duration = 0) {
  try {
    await call("ROOM_MODERATE_REQ", { roomId: String(room.id), targetUserId: String(userId), action, duration });
    room.error = "";
    refreshMembers();
  } catch (e) {
    room.error = errorText(e);
  }
  render();
}

// ---- pushes ----------------------------------------------------------------------------------------------

/** The server's room pushes; true when the push was one of them. */
export function roomsPush(name, body) {
  if (name === "ROOM_MSG_NOTIFY") {
    const room = joined.get(num(body.roomId));
    if (room) {
      addMessages(room, body.msgs || []);
      if (model.viewing === room.id) render();
    }
  } else if (name === "ROOM_EVENT_NOTIFY") {
    const room = joined.get(num(body.roomId));
    if (room) {
      room.count = num(body.memberCount);
      const line = eventLine(body);
      if (line) pushLine(room, line);
      render();
    }
  } else if (name === "ROOM_MODERATE_NOTIFY") {
    moderated(body);
  } else return false;
  return true;
}

let eventSeq = 0;

/** "Alice joined", "Alice, Bob and 3 others joined · Carol left". */
function eventLine(body) {
  const part = (members, count, verb) => {
    // Our own coming and going is not news to us.
    const others = (members || []).filter((m) => num(m.userId) !== ctx.me());
    const total = Math.max(num(count) - ((members || []).length - others.length), others.length);
    if (total <= 0) return "";
    const names = others.map((m) => m.nickName || `User ${num(m.userId)}`).slice(0, 3);
    const rest = total - names.length;
    if (!names.length) return `${total} ${total === 1 ? "person" : "people"} ${verb}`;
    const list = rest > 0 ? [...names, `${rest} other${rest === 1 ? "" : "s"}`] : names;
    const text = list.length === 1 ? list[0] : `${list.slice(0, -1).join(", ")} and ${list[list.length - 1]}`;
    return `${text} ${verb}`;
  };
  const text = [part(body.joined, body.joinedCount, "joined"), part(body.left, body.leftCount, "left")].filter(Boolean).join(" · ");
  return text ? { kind: "event", key: `e${++eventSeq}`, text } : null;
}

function moderated(body) {
  const id = num(body.roomId);
  const room = joined.get(id);
  if (!room) return;
  const action = num(body.action);
  const target = num(body.targetUserId);
  const until = num(body.until);
  if (action === ACTION.CLOSED) {
    roomGone(id, num(body.byUserId) === ctx.me() ? "You closed this room." : "This room was closed.");
    model.rooms.delete(id);
    model.order = model.order.filter((other) => other !== id);
    renderPanel();
    return;
  }
  if (target !== ctx.me()) return;
  const untilText = until ? ` until ${ctx.formatTime(until, true)}` : "";
  if (action === ACTION.MUTE) {
    room.mutedUntil = until || Number.MAX_SAFE_INTEGER;
    pushLine(room, { kind: "event", key: `e${++eventSeq}`, text: `You were muted${untilText}.` });
  } else if (action === ACTION.UNMUTE) {
    room.mutedUntil = 0;
    pushLine(room, { kind: "event", key: `e${++eventSeq}`, text: "You may write again." });
  } else if (action === ACTION.KICK) {
    roomGone(id, "You were removed from this room.");
    return;
  } else if (action === ACTION.BAN) {
    roomGone(id, `You were banned from this room${untilText}.`);
    return;
  } else if (action === ACTION.ADD_MODERATOR) {
    room.role = ROLE.MODERATOR;
  } else if (action === ACTION.REMOVE_MODERATOR) {
    room.role = ROLE.MEMBER;
  }
  render();
}

/** After each (re)connect: rooms are joined per connection, so join again those we were in. */
export async function roomsOnline() {
  for (const [id, room] of [...joined]) {
    try {
      const rsp = await call("ROOM_JOIN_REQ", { roomId: String(id) });
      applyJoin(room, rsp);
    } catch (e) {
      if (e instanceof NoAnswerError) return; // offline again: the next reconnect tries again
      roomGone(id, errorText(e));
    }
  }
  render();
  if (model.open) loadRooms(true);
}

/** Logged out: forget every room. */
export function roomsReset() {
  joined.clear();
  gone.clear();
  model.rooms.clear();
  model.order = [];
  model.open = false;
  model.viewing = 0;
  model.error = model.createError = "";
  clearInterval(membersTimer);
  render();
}

/** Whether a room covers the chat view (its messages are not being read then). */
export const roomShowing = () => Boolean(model.viewing);

/** A conversation was opened: the room view makes way (this connection stays in the room). */
export function roomsChatOpened() {
  hideRoom();
}

// ---- rendering -------------------------------------------------------------------------------------------

function render(options = {}) {
  renderPanel();
  renderView(options);
}

export function renderRooms() {
  render();
}

function countText(count) {
  return `${count} ${count === 1 ? "person" : "people"} here`;
}

function renderPanel() {
  const panel = $("rooms-panel");
  if (!panel || !ui.list) return;
  panel.hidden = !model.open;
  $("rooms-button")?.setAttribute("aria-pressed", String(model.open));
  ui.createError.textContent = model.createError;
  const items = model.order.map((id) => {
    const info = model.rooms.get(id) || {};
    const room = joined.get(id);
    const count = room ? room.count : num(info.memberCount);
    const open = el(
      "button",
      { cls: "room-open", testid: "room-open", attrs: { type: "button" } },
      el("span", { cls: "avatar group room-avatar", text: Array.from((info.name || "#").trim())[0]?.toUpperCase() || "#", attrs: { "aria-hidden": "true" } }),
      el(
        "span",
        { cls: "conversation-body" },
        el(
          "span",
          { cls: "conversation-top" },
          el("span", { cls: "conversation-name", testid: "room-name", text: info.name || `Room ${id}` }),
          room ? el("span", { cls: "tag", testid: "room-joined", text: "Joined" }) : "",
        ),
        el(
          "span",
          { cls: "conversation-bottom" },
          el("span", { cls: "conversation-preview", testid: "room-topic", text: info.topic || "" }),
          el("span", { cls: "room-count", testid: "room-count", text: `${count} here`, attrs: { title: countText(count) } }),
        ),
      ),
    );
    open.addEventListener("click", () => joinRoom(id));
    const item = el("li", { testid: "room-item" }, open);
    item.dataset.roomId = String(id);
    item.classList.toggle("active", model.viewing === id);
    return item;
  });
  ui.list.replaceChildren(...items);
  ui.listStatus.hidden = Boolean(items.length) && !model.error;
  ui.listStatus.textContent = model.error || (model.loading ? "Loading rooms…" : "No rooms yet: create one above.");
  ui.more.hidden = !model.hasMore || model.loading;
}

function renderView({ toBottom = false } = {}) {
  const view = $("room-view");
  if (!view || !ui.messages) return;
  const id = model.viewing;
  const room = joined.get(id) || gone.get(id)?.room || null;
  view.hidden = !room;
  $("main-screen")?.classList.toggle("show-room", Boolean(room));
  if (!room) {
    view.removeAttribute("data-room-id");
    ui.messages.replaceChildren();
    return;
  }
  const out = gone.get(id)?.why || "";
  const list = ui.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  view.dataset.roomId = String(id);
  view.dataset.role = ["member", "moderator", "owner"][room.role] || "member";
  ui.title.textContent = room.info.name || `Room ${id}`;
  ui.count.textContent = countText(room.count);
  ui.count.dataset.count = String(room.count);
  ui.topicLine.textContent = room.info.topic || "";
  ui.topicLine.hidden = !room.info.topic;
  ui.closeRoom.hidden = room.role !== ROLE.OWNER || Boolean(out);
  ui.closeRoom.textContent = closeAsked === id ? "Close it for everyone?" : "Close room";
  ui.leave.hidden = Boolean(out);
  ui.membersButton.hidden = Boolean(out);
  const muted = room.mutedUntil > Date.now() / 1000;
  ui.note.textContent = out || (muted ? `You are muted${room.mutedUntil < Number.MAX_SAFE_INTEGER ? ` until ${ctx.formatTime(room.mutedUntil, true)}` : ""}.` : "");
  ui.note.hidden = !ui.note.textContent;
  ui.error.textContent = room.error;
  ui.composer.hidden = Boolean(out);
  ui.input.disabled = muted;
  ui.send.disabled = muted;
  ui.members.hidden = !room.membersOpen || Boolean(out);
  if (room.membersOpen) ui.members.replaceChildren(...room.sample.map((m) => memberItem(room, m)));
  const nodes = room.lines.map((line) => (line.kind === "event" ? el("li", { cls: "system", testid: "room-event" }, el("span", { text: line.text })) : messageItem(line)));
  if (!room.lines.length) nodes.push(el("li", { cls: "history-edge", testid: "room-empty", text: "No messages yet. Say hello!" }));
  list.replaceChildren(...nodes);
  if (toBottom || atBottom) list.scrollTop = list.scrollHeight;
}

function messageItem(line) {
  const mine = line.from === ctx.me();
  const meta = el("span", { cls: "meta" }, el("time", { text: ctx.formatTime(line.time, true) }));
  if (mine) {
    const status = line.failed ? ["!", "failed", `Not sent: ${line.failed}`] : line.msgId ? ["✓", "sent", "Sent"] : ["🕓", "sending", "Sending"];
    const span = el("span", { cls: `status ${status[1]}`, testid: "room-message-status", text: status[0], attrs: { title: status[2] } });
    span.dataset.status = status[1];
    meta.append(span);
  }
  const bubble = el("span", { cls: "bubble" });
  if (!mine) {
    const badge = line.role === ROLE.OWNER ? " · owner" : line.role === ROLE.MODERATOR ? " · moderator" : "";
    bubble.append(el("span", { cls: `sender t${line.from % 8}`, testid: "room-message-sender", text: `${line.nick || `User ${line.from}`}${badge}` }));
  }
  bubble.append(el("span", { cls: "text", testid: "room-message-text", text: line.text }), meta);
  const item = el("li", { cls: mine ? "message mine" : "message theirs", testid: "room-message" }, bubble);
  item.dataset.from = String(line.from);
  if (line.msgId) item.dataset.msgId = String(line.msgId);
  if (line.failed) item.append(el("span", { cls: "menu-error", testid: "room-message-error", text: `Not sent: ${line.failed}` }));
  return item;
}

function memberItem(room, member) {
  const id = num(member.userId);
  const role = roleOf(member.role);
  const name = member.nickName || `User ${id}`;
  const item = el(
    "li",
    { cls: "room-member", testid: "room-member" },
    ctx.avatar ? ctx.avatar(id, name) : "",
    el("span", { cls: "user-name", text: id === ctx.me() ? `${name} (you)` : name }),
    role === ROLE.OWNER ? el("span", { cls: "tag", text: "Owner" }) : role === ROLE.MODERATOR ? el("span", { cls: "tag", text: "Moderator" }) : "",
  );
  item.dataset.userId = String(id);
  // The owner acts on anyone else, a moderator on members only.
  const outranks = id !== ctx.me() && (room.role === ROLE.OWNER || (room.role === ROLE.MODERATOR && role === ROLE.MEMBER));
  if (outranks) {
    const action = (label, testid, act, duration = 0) => {
      const node = el("button", { cls: "link-button", testid, text: label, attrs: { type: "button" } });
      node.addEventListener("click", () => moderate(room, id, act, duration));
      return node;
    };
    item.append(action("Mute 10 min", "room-mute", ACTION.MUTE, 600), action("Kick", "room-kick", ACTION.KICK), action("Ban", "room-ban", ACTION.BAN));
    if (room.role === ROLE.OWNER) {
      item.append(role === ROLE.MODERATOR ? action("Remove moderator", "room-unmod", ACTION.REMOVE_MODERATOR) : action("Make moderator", "room-mod", ACTION.ADD_MODERATOR));
    }
  }
  return item;
}
