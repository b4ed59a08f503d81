// Forward and custom messages in the web client (docs/forward.md, docs/custom-messages.md):
// the "Forward" action of the message menu and its picker of conversations, "Forwarded from X" on
// forwarded copies, merged chat records (tap to expand) and custom messages as cards.
//
// As everywhere in the client, what users wrote goes into the page as text nodes only.

import { ErrorCode, ServerError, base64ToText, num } from "./protocol.js";
import { appState, chatName, connection, el, me, nameOf, render, sortedChats } from "./app.js";
import { friendName } from "./friends.js";

export const MERGED = 12; // kCIM_MSG_TYPE_MERGED: a chat record, JSON {title, count, records}
export const CUSTOM = 100; // kCIM_MSG_TYPE_CUSTOM: an app's own JSON object, "description" its preview
const NOTIFICATION = 9;
const RECALLED = 11;
const SINGLE = 1;
const GROUP = 2;
const RECORD_PREVIEW_LINES = 3; // lines a folded chat record shows
const MAX_TARGETS = 10; // the server's default [forward] max_targets

const FORWARD_ERRORS = {
  [ErrorCode.NOT_FOUND]: "This message cannot be found any more.",
  [ErrorCode.FORBIDDEN]: "You cannot forward from this conversation.",
  [ErrorCode.NOT_FORWARDABLE]: "This message cannot be forwarded.",
  [ErrorCode.FORWARD_TOO_MANY]: "Too many conversations at once.",
  [ErrorCode.RATE_LIMITED]: "Too many messages: wait a moment and try again.",
  [ErrorCode.NOT_SUPPORTED]: "This server does not forward messages.",
};

const expanded = new Set(); // "<chat key>:<seq>" of the chat records shown in full
let picker = null; // the open forward picker: {chat, seq, chosen: Set of keys, busy, error}

/** The JSON body of a custom message or chat record (base64 msgData), or null. */
export function parseSpecial(type, data) {
  if (type !== CUSTOM && type !== MERGED) return null;
  try {
    const body = JSON.parse(base64ToText(data));
    return body && typeof body === "object" && !Array.isArray(body) ? body : null;
  } catch {
    return null;
  }
}

/** A forwarded copy's origin (CIMMsgData/CIMMsgInfo.forward_origin, JSON), or null. */
export function parseOrigin(json) {
  if (!json) return null;
  try {
    const origin = JSON.parse(json);
    return origin && typeof origin === "object" ? origin : null;
  } catch {
    return null;
  }
}

/** The one-line text of a custom message or chat record (previews, the list). */
export function specialText(type, data) {
  const body = parseSpecial(type, data);
  if (type === CUSTOM) {
    const description = typeof body?.description === "string" ? body.description.trim() : "";
    return description || "[Custom message]";
  }
  const title = typeof body?.title === "string" && body.title ? body.title : "Chat history";
  return `[Chat record] ${title}`;
}

/** Whether a message may be offered for forwarding (the server decides in the end). */
export const canForward = (message) => message.seq > 0 && message.type !== NOTIFICATION && message.type !== RECALLED;

/** "Forwarded from Bob" for a forwarded copy (not for a chat record: its card says it). */
export function forwardedText(message) {
  const origin = message.origin;
  if (!origin || origin.merged || message.type === MERGED) return "";
  const from = num(origin.fromUserId);
  const name = from === me() ? "you" : friendName(from) || origin.fromNick || (from ? nameOf(from) : "someone");
  return `Forwarded from ${name}`;
}

/** Add to (or refresh in) a message bubble what forwarding and custom types show: the
 * "Forwarded from" line, a custom message's card, a chat record's card. Idempotent. */
export function decorateBubble(chat, message, bubble) {
  const text = bubble.querySelector(".text");
  const line = forwardedText(message);
  let forwarded = bubble.querySelector(".forwarded-from");
  if (line && !forwarded) {
    forwarded = el("span", { cls: "forwarded-from", testid: "forwarded-from" });
    bubble.insertBefore(forwarded, text);
  }
  if (forwarded) {
    forwarded.hidden = !line;
    forwarded.textContent = line;
  }
  const special = message.type === CUSTOM || message.type === MERGED;
  if (text) text.hidden = special;
  let card = bubble.querySelector(".special-card");
  if (!special) {
    card?.remove();
    return;
  }
  const key = `${chat.key}:${message.seq}`;
  const state = message.type === MERGED ? `m${expanded.has(key)}` : "c";
  if (card && card.dataset.state === state) return;
  const fresh = message.type === CUSTOM ? customCard(message) : recordCard(key, message);
  fresh.dataset.state = state;
  if (card) card.replaceWith(fresh);
  else bubble.insertBefore(fresh, text ? text.nextSibling : null);
}

function customCard(message) {
  const body = message.body || {};
  const kind = typeof body.type === "string" && body.type ? body.type : "Custom message";
  const description = typeof body.description === "string" && body.description.trim() ? body.description : kind;
  return el(
    "div",
    { cls: "special-card custom-card", testid: "custom-card" },
    el("span", { cls: "card-kind", testid: "custom-kind", text: kind }),
    el("span", { cls: "card-description", testid: "custom-description", text: description }),
  );
}

function recordCard(key, message) {
  const body = message.body || {};
  const records = Array.isArray(body.records) ? body.records : [];
  const open = expanded.has(key);
  const shown = open ? records : records.slice(0, RECORD_PREVIEW_LINES);
  const lines = shown.map((r) => {
    const who = el("span", { cls: "record-nick", text: r?.nick || nameOf(num(r?.senderId)) });
    const parts = [who, el("span", { cls: "record-content", text: typeof r?.content === "string" ? r.content : "" })];
    if (open) {
      const time = num(r?.time) ? new Date(num(r.time) * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "short" }) : "";
      parts.push(el("time", { cls: "record-time", text: time }));
    }
    return el("li", { cls: "record", testid: open ? "chat-record-entry" : "chat-record-line" }, ...parts);
  });
  const count = num(body.count) || records.length;
  const card = el(
    "div",
    {
      cls: `special-card chat-record${open ? " open" : ""}`,
      testid: "chat-record",
      attrs: { role: "button", tabindex: "0", "aria-expanded": String(open) },
    },
    el("span", { cls: "record-title", testid: "chat-record-title", text: typeof body.title === "string" ? body.title : "Chat history" }),
    el("ul", { cls: "record-lines" }, ...lines),
    el("span", {
      cls: "record-footer",
      testid: "chat-record-footer",
      text: `${count} message${count === 1 ? "" : "s"} · ${open ? "Tap to fold" : "Tap to see all"}`,
    }),
  );
  const toggle = () => {
    if (expanded.has(key)) expanded.delete(key);
    else expanded.add(key);
    render();
  };
  card.addEventListener("click", toggle);
  card.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      toggle();
    }
  });
  return card;
}

// ---- the "Forward" action and its picker --------------------------------------------------------

/** The "Forward" item of a message's menu. */
export function forwardMenuItem(chat, message, icon) {
  const item = el(
    "button",
    { cls: "menu-item", testid: "forward-button", attrs: { type: "button", title: "Forward to other chats" } },
    icon,
    el("span", { text: "Forward" }),
  );
  item.hidden = !canForward(message);
  item.addEventListener("click", () => openPicker(chat, message.seq));
  return item;
}

/** Where one may forward to: one's conversations (not groups one left), then other people. */
function targets() {
  const seen = new Set();
  const out = [];
  for (const chat of sortedChats()) {
    if (chat.left || (chat.type === SINGLE && chat.id === me())) continue;
    seen.add(chat.key);
    out.push({ key: chat.key, type: chat.type, id: chat.id, name: chatName(chat) });
  }
  for (const [userId, nick] of appState.users) {
    const key = `u${userId}`;
    if (userId === me() || seen.has(key)) continue;
    out.push({ key, type: SINGLE, id: userId, name: friendName(userId) || nick || nameOf(userId) });
  }
  return out;
}

function openPicker(chat, seq) {
  picker = { chat, seq, chosen: new Set(), busy: false, error: "" };
  renderPicker();
  document.querySelector('[data-testid="forward-picker"] input')?.focus();
}

export function closeForwardPicker() {
  if (!picker) return false;
  picker = null;
  document.querySelector('[data-testid="forward-picker"]')?.remove();
  return true;
}

function renderPicker() {
  let overlay = document.querySelector('[data-testid="forward-picker"]');
  if (!picker) {
    overlay?.remove();
    return;
  }
  if (!overlay) {
    overlay = el("div", {
      cls: "forward-overlay",
      testid: "forward-picker",
      attrs: { role: "dialog", "aria-modal": "true", "aria-label": "Forward to" },
    });
    overlay.addEventListener("click", (event) => {
      if (event.target === overlay) closeForwardPicker();
    });
    overlay.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        closeForwardPicker();
      }
    });
    document.body.append(overlay);
  }
  const list = targets().map((t) => {
    const box = el("input", { attrs: { type: "checkbox" } });
    box.checked = picker.chosen.has(t.key);
    box.disabled = picker.busy || (!box.checked && picker.chosen.size >= MAX_TARGETS);
    box.addEventListener("change", () => {
      if (box.checked) picker.chosen.add(t.key);
      else picker.chosen.delete(t.key);
      picker.error = "";
      renderPicker();
    });
    const label = el(
      "label",
      { cls: "forward-target", testid: "forward-target" },
      box,
      el("span", { cls: "forward-target-name", text: t.type === GROUP ? `${t.name} (group)` : t.name }),
    );
    label.dataset.key = t.key;
    label.dataset.sessionType = String(t.type);
    label.dataset.sessionId = String(t.id);
    return el("li", {}, label);
  });
  const close = el("button", { cls: "secondary", testid: "forward-cancel", text: "Cancel", attrs: { type: "button" } });
  close.addEventListener("click", closeForwardPicker);
  const send = el("button", {
    cls: "primary",
    testid: "forward-send",
    text: picker.busy ? "Forwarding…" : picker.chosen.size > 1 ? `Forward to ${picker.chosen.size} chats` : "Forward",
    attrs: { type: "button" },
  });
  send.disabled = picker.busy || picker.chosen.size === 0;
  send.addEventListener("click", () => forward(picker));
  overlay.replaceChildren(
    el(
      "div",
      { cls: "forward-dialog" },
      el("h2", { text: "Forward to" }),
      list.length ? el("ul", { cls: "forward-targets" }, ...list) : el("p", { cls: "empty", text: "No one to forward to yet." }),
      el("p", { cls: "form-error", testid: "forward-error", text: picker.error, attrs: { role: "alert" } }),
      el("div", { cls: "forward-actions" }, close, send),
    ),
  );
}

/** MSG_FORWARD_REQ: the server copies the message to each chosen conversation; the copies come
 * back to this page as MSG_DATA pushes, like a message sent from another device. */
async function forward(current) {
  if (!current || current.busy || !current.chosen.size) return;
  const chosen = targets().filter((t) => current.chosen.has(t.key));
  current.busy = true;
  current.error = "";
  renderPicker();
  try {
    const rsp = await connection.request("MSG_FORWARD_REQ", {
      sessionType: current.chat.type,
      sessionId: String(current.chat.id),
      msgIds: [String(current.seq)],
      targets: chosen.map((t) => ({ sessionType: t.type, sessionId: String(t.id) })),
      clientForwardId: `${me()}-${current.chat.key}-${current.seq}-${Date.now()}`,
    });
    const code = num(rsp.resultCode);
    if (code !== ErrorCode.SUCCESS) throw new ServerError(code, rsp.resultString || `error ${code}`, "MSG_FORWARD_REQ");
    const refused = (rsp.results || []).filter((r) => num(r.resultCode) !== ErrorCode.SUCCESS);
    if (refused.length) {
      const names = refused.map((r) => chosen.find((t) => t.id === num(r.sessionId) && t.type === num(r.sessionType))?.name || "?");
      current.error = `Not forwarded to ${names.join(", ")}: ${refused[0].resultString || "refused"}`;
      current.chosen = new Set(refused.map((r) => (num(r.sessionType) === GROUP ? "g" : "u") + num(r.sessionId)));
    }
  } catch (e) {
    if (e instanceof ServerError) current.error = FORWARD_ERRORS[e.code] || e.message;
    else current.error = "No connection to the server. Try again.";
  } finally {
    current.busy = false;
  }
  if (picker !== current) return;
  if (!current.error) closeForwardPicker();
  else renderPicker();
}
