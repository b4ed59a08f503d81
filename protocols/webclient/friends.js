// Friends and online status in the web client (docs/friends.md): a friends panel (requests in
// and out with accept / decline / withdraw, a request with a message, the friend list with
// remarks to edit, delete), and an online dot or "last seen" for friends and 1:1 partners, in
// the chat header and the lists.  app.js hands over what it shares through initFriends(); the
// server's pushes come in through friendsPush().  Everything from users goes in by textContent.

import { num } from "./protocol.js";

const OK = 200; // kCIM_ERR_SUCCESS
const ONLINE = 1; // kCIM_ONLINE_STATE_ONLINE
const OFFLINE = 2; // kCIM_ONLINE_STATE_OFFLINE
const QUERY_MAX = 100; // the server's default online_status.max_query
const MESSAGE_MAX = 200; // the server's default friends.max_message_length
const REMARK_MAX = 64; // the server's default friends.max_remark_length
const ERRORS = {
  9002: "No such user.",
  10011: "That is not valid.",
  10040: "You are not friends.",
  10041: "Too many friends.",
  10042: "Too many pending requests.",
  10043: "You are friends already.",
  10044: "This user takes no requests from you.",
  10009: "That request is gone.",
};

let ctx = null; // {request, me, nameOf, users, openPeer}
const model = { friends: new Map(), incoming: new Map(), outgoing: new Map(), open: false, error: "" };
const statuses = new Map(); // userId -> {state, lastSeen}
const asked = new Set(); // user ids whose status was asked for on this connection

/** Wire the module to app.js; builds the friends button and panel. */
export function initFriends(shared) {
  ctx = shared;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "icon-button";
  button.dataset.testid = "friends-button";
  button.title = "Friends";
  button.setAttribute("aria-label", "Friends");
  button.append(icon(["M2.5 19.5c0-3.6 2.9-6 6.5-6s6.5 2.4 6.5 6", "M19 8v6M16 11h6"], [9, 8, 3.5]));
  const badge = document.createElement("span");
  badge.className = "friends-badge";
  badge.dataset.testid = "friends-badge";
  badge.hidden = true;
  button.append(badge);
  button.addEventListener("click", () => {
    model.open = !model.open;
    renderFriends();
  });
  const logout = document.querySelector('[data-testid="logout-button"]');
  logout.parentNode.insertBefore(button, logout);
  const panel = document.createElement("section");
  panel.className = "friends-panel";
  panel.dataset.testid = "friends-panel";
  panel.hidden = true;
  document.querySelector(".sidebar").append(panel);
}

/** A line icon as the page's others are drawn (a person with a plus: "friends"). */
function icon(paths, circle) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  for (const [name, value] of [["fill", "none"], ["stroke", "currentColor"], ["stroke-width", "2"], ["stroke-linecap", "round"], ["stroke-linejoin", "round"]]) {
    svg.setAttribute(name, value);
  }
  const c = document.createElementNS(NS, "circle");
  c.setAttribute("cx", String(circle[0]));
  c.setAttribute("cy", String(circle[1]));
  c.setAttribute("r", String(circle[2]));
  svg.append(c);
  for (const d of paths) {
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** After each (re)connect: the lists, then the statuses of friends and partners. */
export async function friendsOnline(partnerIds = []) {
  asked.clear();
  try {
    await loadAll();
    await queryStatus([...model.friends.keys(), ...partnerIds]);
  } catch (e) {
    console.warn("friends: loading failed", e);
  }
}

/** Logged out: forget everything. */
export function friendsReset() {
  model.friends.clear();
  model.incoming.clear();
  model.outgoing.clear();
  model.open = false;
  statuses.clear();
  asked.clear();
  renderFriends();
}

async function call(name, body) {
  const rsp = await ctx.request(name, body);
  const code = num(rsp.resultCode);
  if (code !== OK) throw Object.assign(new Error(rsp.resultString || `error ${code}`), { code });
  return rsp;
}

async function loadAll() {
  const [friends, incoming, outgoing] = await Promise.all([
    call("FRIEND_LIST_REQ", { limit: 0 }),
    call("FRIEND_REQUEST_LIST_REQ", { outgoing: false }),
    call("FRIEND_REQUEST_LIST_REQ", { outgoing: true }),
  ]);
  model.friends.clear();
  for (const f of friends.friends || []) model.friends.set(num(f.friendId), f);
  model.incoming.clear();
  for (const r of incoming.requests || []) model.incoming.set(num(r.fromUserId), r);
  model.outgoing.clear();
  for (const r of outgoing.requests || []) model.outgoing.set(num(r.toUserId), r);
  renderFriends();
}

async function queryStatus(ids) {
  const wanted = [...new Set(ids.map(num))].filter((id) => id && id !== ctx.me() && !asked.has(id));
  for (let i = 0; i < wanted.length; i += QUERY_MAX) {
    const chunk = wanted.slice(i, i + QUERY_MAX);
    chunk.forEach((id) => asked.add(id));
    const rsp = await call("ONLINE_STATUS_REQ", { userIds: chunk.map(String) });
    applyStatuses(rsp.statuses || []);
  }
}

function applyStatuses(list) {
  for (const s of list) statuses.set(num(s.userId), { state: num(s.state), lastSeen: num(s.lastSeen) });
  renderPresence();
}

/** A push of ours (true), or not (false). */
export function friendsPush(name, body) {
  if (name === "FRIEND_NOTIFY") {
    applyNotify(body);
    return true;
  }
  if (name === "ONLINE_STATUS_NOTIFY") {
    applyStatuses(body.statuses || []);
    return true;
  }
  return name === "ONLINE_PRIVACY_NOTIFY";
}

const EVENT = { REQUESTED: 1, ACCEPTED: 2, DECLINED: 3, WITHDRAWN: 4, DELETED: 5, REMARK: 6 };

function applyNotify(body) {
  const event = num(body.event);
  const peer = num(body.peerId);
  const request = body.request;
  if (event === EVENT.REQUESTED && request) {
    if (num(request.fromUserId) === ctx.me()) model.outgoing.set(peer, request);
    else model.incoming.set(peer, request);
  } else if (event === EVENT.ACCEPTED || event === EVENT.REMARK) {
    model.incoming.delete(peer);
    model.outgoing.delete(peer);
    if (body.friend) model.friends.set(peer, body.friend);
    if (event === EVENT.ACCEPTED) queryStatus([peer]).catch(() => {});
  } else if (event === EVENT.DECLINED || event === EVENT.WITHDRAWN) {
    model.incoming.delete(peer);
    model.outgoing.delete(peer);
  } else if (event === EVENT.DELETED) {
    model.friends.delete(peer);
  }
  renderFriends();
  ctx.changed?.();
}

/** The name to show for a user: my remark of them, else their nick. */
export function friendName(userId) {
  const friend = model.friends.get(num(userId));
  return friend && friend.remark ? friend.remark : "";
}

function presenceText(userId) {
  const s = statuses.get(num(userId));
  if (!s) return { state: "unknown", text: "" };
  if (s.state === ONLINE) return { state: "online", text: "online" };
  if (s.state === OFFLINE) {
    if (!s.lastSeen) return { state: "offline", text: "offline" };
    const when = new Date(s.lastSeen * 1000);
    const today = new Date().toDateString() === when.toDateString();
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return { state: "offline", text: `last seen ${today ? "" : when.toLocaleDateString() + " "}${time}` };
  }
  return { state: "unknown", text: "" };
}

/** A dot showing a user's status (kept up to date as pushes come). */
export function presenceDot(userId) {
  const dot = document.createElement("span");
  dot.className = "presence-dot";
  dot.dataset.presenceId = String(userId);
  dot.dataset.testid = "presence-dot";
  paintDot(dot);
  return dot;
}

function paintDot(dot) {
  const { state, text } = presenceText(dot.dataset.presenceId);
  dot.dataset.state = state;
  dot.title = text;
}

/** The chat header's status line for a 1:1 chat with ``userId`` (0: none, a group). */
export function showPresence(userId) {
  let line = document.querySelector('[data-testid="chat-presence"]');
  if (!line) {
    line = document.createElement("span");
    line.className = "chat-presence";
    line.dataset.testid = "chat-presence";
    document.querySelector('[data-testid="chat-title"]').after(line);
  }
  line.dataset.presenceId = String(userId || 0);
  paintLine(line);
  if (userId && !asked.has(num(userId))) queryStatus([userId]).catch(() => {});
}

function paintLine(line) {
  const id = num(line.dataset.presenceId);
  const { state, text } = id ? presenceText(id) : { state: "unknown", text: "" };
  line.dataset.state = state;
  line.textContent = text;
  line.hidden = !text;
}

function renderPresence() {
  document.querySelectorAll(".presence-dot").forEach(paintDot);
  const line = document.querySelector('[data-testid="chat-presence"]');
  if (line) paintLine(line);
}

// ---- the panel ---------------------------------------------------------------------------------

function el(tag, { cls, testid, text } = {}, ...children) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (testid) node.dataset.testid = testid;
  if (text !== undefined) node.textContent = text;
  node.append(...children);
  return node;
}

function button(text, testid, onClick, cls = "") {
  const b = el("button", { cls, testid, text });
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

async function act(fn) {
  model.error = "";
  try {
    await fn();
  } catch (e) {
    model.error = ERRORS[e.code] || e.message || "That did not work.";
  }
  renderFriends();
}

function findUser(text) {
  const wanted = text.trim();
  if (/^\d+$/.test(wanted)) return Number(wanted);
  for (const [id, nick] of ctx.users()) if (nick === wanted || nick.toLowerCase() === wanted.toLowerCase()) return id;
  return 0;
}

function renderFriends() {
  const panel = document.querySelector('[data-testid="friends-panel"]');
  if (!panel) return;
  const badge = document.querySelector('[data-testid="friends-badge"]');
  badge.hidden = model.incoming.size === 0;
  badge.textContent = String(model.incoming.size);
  panel.hidden = !model.open;
  if (!model.open) return;
  const close = button("✕", "friends-close", () => {
    model.open = false;
    renderFriends();
  }, "icon-button small");
  const who = el("input", { testid: "friend-add-user" });
  who.placeholder = "Nick name or user id";
  const message = el("input", { testid: "friend-add-message" });
  message.placeholder = "A short message";
  message.maxLength = MESSAGE_MAX;
  const form = el("form", { cls: "friend-add", testid: "friend-add-form" }, who, message, el("button", { cls: "primary", testid: "friend-add-submit", text: "Send request" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = findUser(who.value);
    if (!id) {
      model.error = "No such user.";
      renderFriends();
      return;
    }
    act(async () => {
      await call("FRIEND_REQUEST_REQ", { toUserId: String(id), message: message.value });
      await loadAll();
    });
  });
  const incoming = [...model.incoming.entries()].map(([id, r]) =>
    el(
      "li",
      { cls: "friend-row", testid: `friend-request-in-${id}` },
      el("span", { cls: "friend-name", text: r.fromNickName || ctx.nameOf(id) }),
      el("span", { cls: "friend-message", testid: "friend-request-message", text: r.message || "" }),
      button("Accept", `friend-accept-${id}`, () => act(() => call("FRIEND_ANSWER_REQ", { fromUserId: String(id), accept: true }).then(loadAll)), "primary"),
      button("Decline", `friend-decline-${id}`, () => act(() => call("FRIEND_ANSWER_REQ", { fromUserId: String(id), accept: false }).then(loadAll))),
    ),
  );
  const outgoing = [...model.outgoing.entries()].map(([id, r]) =>
    el(
      "li",
      { cls: "friend-row", testid: `friend-request-out-${id}` },
      el("span", { cls: "friend-name", text: r.toNickName || ctx.nameOf(id) }),
      el("span", { cls: "friend-message", text: r.message || "" }),
      button("Withdraw", `friend-withdraw-${id}`, () => act(() => call("FRIEND_WITHDRAW_REQ", { toUserId: String(id) }).then(loadAll))),
    ),
  );
  const friends = [...model.friends.entries()].map(([id, f]) => friendRow(id, f));
  panel.replaceChildren(
    el("header", { cls: "bar" }, el("h2", { text: "Friends" }), close),
    form,
    el("p", { cls: "form-error", testid: "friends-error", text: model.error }),
    el("h3", { text: `Requests for you (${incoming.length})` }),
    el("ul", { cls: "list", testid: "friend-requests-in" }, ...incoming),
    el("h3", { text: `Sent (${outgoing.length})` }),
    el("ul", { cls: "list", testid: "friend-requests-out" }, ...outgoing),
    el("h3", { text: `Friends (${friends.length})` }),
    el("ul", { cls: "list", testid: "friend-list" }, ...friends),
  );
}

function friendRow(id, f) {
  const name = el("button", { cls: "friend-name link", testid: `friend-name-${id}`, text: f.remark || f.nickName || ctx.nameOf(id) });
  name.type = "button";
  name.addEventListener("click", () => {
    model.open = false;
    renderFriends();
    ctx.openPeer(id);
  });
  const row = el("li", { cls: "friend-row", testid: `friend-${id}` }, presenceDot(id), name);
  if (f.remark) row.append(el("span", { cls: "friend-nick", text: f.nickName || "" }));
  const remark = el("input", { testid: `friend-remark-input-${id}` });
  remark.value = f.remark || "";
  remark.placeholder = "Remark";
  remark.maxLength = REMARK_MAX;
  row.append(
    remark,
    button("Save", `friend-remark-save-${id}`, () =>
      act(async () => {
        const rsp = await call("FRIEND_REMARK_REQ", { friendId: String(id), remark: remark.value });
        model.friends.set(id, { ...f, remark: rsp.remark || "" });
        ctx.changed?.();
      }),
    ),
    button("Delete", `friend-delete-${id}`, () =>
      act(async () => {
        await call("FRIEND_DELETE_REQ", { friendId: String(id) });
        model.friends.delete(id);
        ctx.changed?.();
      }),
    ),
  );
  return row;
}
