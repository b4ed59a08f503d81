// Do-not-disturb and pinned conversations in the web client (docs/dnd.md): a bell and a pin
// toggle in the chat header, the muted icon and a "Pinned" section at the top of the conversation
// list, and a settings panel for the global do-not-disturb with its daily window and time zone.
//
// app.js hands this module what it needs (initDnd) and calls back into it at a few places: the
// pushes (dndPush), the catch-up after each connect (loadDnd), the list order (pinRank), the
// list's markers (conversationMarks, withPinnedSection), the header and panel (renderDnd), logout
// (resetDnd).
// Everything a user typed goes into the page through textContent, never innerHTML.

import { ErrorCode, ServerError, num } from "./protocol.js";

const GROUP = 2; // kCIM_SESSION_TYPE_GROUP
const BELL = "M6 16V11a6 6 0 0 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0";
const BELL_OFF = "M6 16V11a6 6 0 0 1 9.5-4.9M18 11v5l2 2H4M10 20a2 2 0 0 0 4 0M3 3l18 18";
const PIN = "M9 3h6l-1 6 4 4H6l4-4zM12 13v8";

const dnd = {
  muted: new Set(), // chat keys whose notifications are muted
  pins: new Map(), // chat key -> {time, order}: the higher the order, the more recently pinned
  settings: { enabled: false, windowStart: 0, windowEnd: 0, timeZone: "", mentionsSilenced: false },
  active: false, // the global setting silences notifications now (as the server last said)
  panelOpen: false,
  busy: false,
  error: "",
};
let ctx = null; // {request, render, openChat, setNotice, sidebar}: from app.js
let topOrder = 0;

const keyOf = (type, id) => (type === GROUP ? `g${id}` : `u${id}`);

export const isMuted = (chat) => Boolean(chat) && dnd.muted.has(chat.key);
export const isPinned = (chat) => Boolean(chat) && dnd.pins.has(chat.key);
/** The list's order among pinned conversations: higher first; 0 for those not pinned. */
export const pinRank = (chat) => dnd.pins.get(chat.key)?.order || 0;

function el(tag, { cls, testid, text, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (testid) node.dataset.testid = testid;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  node.append(...children.filter((c) => c !== "" && c !== null && c !== undefined));
  return node;
}

function svgIcon(path) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  for (const [name, value] of Object.entries({
    class: "icon",
    viewBox: "0 0 24 24",
    "aria-hidden": "true",
    fill: "none",
    stroke: "currentColor",
    "stroke-width": "2",
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

const toMinutes = (text) => {
  const match = /^(\d{1,2}):(\d{2})$/.exec(text || "");
  return match ? Math.min(23, Number(match[1])) * 60 + Math.min(59, Number(match[2])) : 0;
};
const toTime = (minutes) => `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
const localZone = () => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
};

function errorText(error) {
  if (!(error instanceof ServerError)) return "No connection to the server. Try again.";
  return (
    {
      [ErrorCode.TOO_MANY_PINS]: "You have pinned as many conversations as you can. Unpin one first.",
      [ErrorCode.TOO_MANY_MUTES]: "You have muted as many conversations as you can. Unmute one first.",
      [ErrorCode.DND_BAD_TIME_ZONE]: "That is not a time zone the server knows (e.g. Europe/Berlin).",
      [ErrorCode.FORBIDDEN]: "You are not in that conversation.",
      [ErrorCode.NOT_FOUND]: "That conversation no longer exists.",
    }[error.code] || error.message
  );
}

async function call(name, body) {
  const rsp = await ctx.request(name, body);
  const code = num(rsp.resultCode);
  if (code !== ErrorCode.SUCCESS) throw new ServerError(code, rsp.resultString || `error ${code}`, name);
  return rsp;
}

// ---- state from the server ------------------------------------------------------------------

function setPinned(key, pinned, time) {
  if (!pinned) dnd.pins.delete(key);
  else if (!dnd.pins.has(key)) dnd.pins.set(key, { time, order: ++topOrder });
}

function applySettings(settings) {
  const s = settings || {};
  dnd.settings = {
    enabled: Boolean(s.enabled),
    windowStart: num(s.windowStart),
    windowEnd: num(s.windowEnd),
    timeZone: s.timeZone || "",
    mentionsSilenced: Boolean(s.mentionsSilenced),
  };
}

/** After each connect: the settings, the muted and the pinned conversations. */
export async function loadDnd() {
  const [got, pins] = await Promise.all([call("DND_GET_REQ", {}), call("PIN_LIST_REQ", {})]);
  applySettings(got.settings);
  dnd.active = Boolean(got.active);
  dnd.muted = new Set((got.mutedList || []).map((m) => keyOf(num(m.sessionType), num(m.sessionId))));
  const list = pins.pinList || [];
  dnd.pins = new Map();
  topOrder = list.length;
  list.forEach((p, i) => {
    dnd.pins.set(keyOf(num(p.sessionType), num(p.sessionId)), { time: num(p.pinnedTime), order: list.length - i });
  });
  ctx.render();
}

/** DND_NOTIFY and PIN_NOTIFY: another device of ours changed something. True when handled. */
export function dndPush(name, body) {
  if (name === "DND_NOTIFY") {
    if (body.conversation) {
      const key = keyOf(num(body.conversation.sessionType), num(body.conversation.sessionId));
      if (body.conversation.muted) dnd.muted.add(key);
      else dnd.muted.delete(key);
    }
    if (body.settings) {
      applySettings(body.settings);
      if (dnd.panelOpen && !dnd.busy) fillForm();
    }
  } else if (name === "PIN_NOTIFY") {
    setPinned(keyOf(num(body.sessionType), num(body.sessionId)), Boolean(body.pinned), num(body.pinnedTime));
  } else {
    return false;
  }
  ctx.render();
  return true;
}

// ---- toggles ----------------------------------------------------------------------------------

async function toggleMute() {
  const chat = ctx.openChat();
  if (!chat) return;
  const muted = !isMuted(chat);
  try {
    await call("DND_MUTE_REQ", { sessionType: chat.type, sessionId: chat.id, muted });
    if (muted) dnd.muted.add(chat.key);
    else dnd.muted.delete(chat.key);
  } catch (e) {
    ctx.setNotice(errorText(e));
  }
  ctx.render();
}

async function togglePin() {
  const chat = ctx.openChat();
  if (!chat) return;
  const pinned = !isPinned(chat);
  try {
    const rsp = await call("PIN_REQ", { sessionType: chat.type, sessionId: chat.id, pinned });
    setPinned(chat.key, pinned, num(rsp.pinnedTime));
  } catch (e) {
    ctx.setNotice(errorText(e));
  }
  ctx.render();
}

// ---- rendering --------------------------------------------------------------------------------

/** The markers a conversation shows in the list: a struck bell when muted, a pin when pinned. */
export function conversationMarks(chat) {
  const marks = [];
  if (isPinned(chat)) {
    const pin = el("span", { cls: "dnd-mark pinned-mark", testid: "pinned-icon", attrs: { title: "Pinned" } });
    pin.append(svgIcon(PIN));
    marks.push(pin);
  }
  if (isMuted(chat)) {
    const bell = el("span", { cls: "dnd-mark muted-mark", testid: "muted-icon", attrs: { title: "Muted" } });
    bell.append(svgIcon(BELL_OFF));
    marks.push(bell);
  }
  return marks;
}

/** The list items with a "Pinned" heading above the pinned ones (which come first) and a
 * "Chats" heading above the others, when anything is pinned. */
export function withPinnedSection(items, chats) {
  const pinned = chats.filter(isPinned).length;
  if (!pinned) return items;
  items.forEach((item, i) => item.classList.toggle("pinned", i < pinned));
  const heading = (text, testid) => el("li", { cls: "list-heading", testid, text, attrs: { role: "presentation" } });
  const rest = items.slice(pinned);
  return [heading("Pinned", "pinned-header"), ...items.slice(0, pinned), ...(rest.length ? [heading("Chats", "chats-header")] : []), ...rest];
}

/** The header's bell and pin toggles for the open conversation, and the settings panel (in
 * the place of the conversation list while open). */
export function renderDnd(chat) {
  const panel = field("dnd-panel");
  const show = dnd.panelOpen && ctx.sidebar() === "list";
  if (panel) panel.hidden = !show;
  if (show) field("conversation-panel").hidden = true;
  const mute = document.querySelector('[data-testid="mute-toggle"]');
  const pin = document.querySelector('[data-testid="pin-toggle"]');
  if (!mute || !pin) return;
  mute.hidden = pin.hidden = !chat || Boolean(chat.left);
  if (!chat) return;
  const muted = isMuted(chat);
  mute.replaceChildren(svgIcon(muted ? BELL_OFF : BELL));
  mute.setAttribute("aria-pressed", String(muted));
  mute.title = muted ? "Unmute notifications" : "Mute notifications";
  mute.setAttribute("aria-label", mute.title);
  mute.classList.toggle("on", muted);
  const pinned = isPinned(chat);
  pin.setAttribute("aria-pressed", String(pinned));
  pin.title = pinned ? "Unpin conversation" : "Pin conversation";
  pin.setAttribute("aria-label", pin.title);
  pin.classList.toggle("on", pinned);
  const status = document.querySelector('[data-testid="dnd-settings-button"]');
  if (status) status.classList.toggle("on", dnd.settings.enabled);
}

// ---- the settings panel -----------------------------------------------------------------------

const field = (testid) => document.querySelector(`[data-testid="${testid}"]`);

function fillForm() {
  const s = dnd.settings;
  field("dnd-enabled").checked = s.enabled;
  field("dnd-window").checked = s.windowStart !== s.windowEnd;
  field("dnd-start").value = toTime(s.windowStart !== s.windowEnd ? s.windowStart : 22 * 60);
  field("dnd-end").value = toTime(s.windowStart !== s.windowEnd ? s.windowEnd : 7 * 60);
  field("dnd-time-zone").value = s.timeZone || localZone();
  field("dnd-mentions").checked = !s.mentionsSilenced;
  updateForm();
}

function updateForm() {
  const on = field("dnd-enabled").checked;
  const windowed = field("dnd-window").checked;
  field("dnd-window").disabled = !on;
  for (const id of ["dnd-start", "dnd-end", "dnd-time-zone"]) field(id).disabled = !on || !windowed;
  field("dnd-error").textContent = dnd.error;
  const s = dnd.settings;
  let status = "Notifications are on.";
  if (s.enabled && s.windowStart === s.windowEnd) status = "Do not disturb is on all day.";
  else if (s.enabled) {
    status = `Do not disturb from ${toTime(s.windowStart)} to ${toTime(s.windowEnd)} (${s.timeZone || "UTC"})${dnd.active ? ", now" : ""}.`;
  }
  field("dnd-status").textContent = status;
}

function showPanel(open) {
  dnd.panelOpen = open;
  dnd.error = "";
  if (open) fillForm();
  ctx.render();
}

async function saveSettings(event) {
  event.preventDefault();
  const on = field("dnd-enabled").checked;
  const windowed = on && field("dnd-window").checked;
  let start = windowed ? toMinutes(field("dnd-start").value) : 0;
  const end = windowed ? toMinutes(field("dnd-end").value) : 0;
  if (windowed && start === end) start = (end + 1) % 1440; // an empty window is "all day" to the server
  const settings = {
    enabled: on,
    windowStart: start,
    windowEnd: end,
    timeZone: windowed ? field("dnd-time-zone").value.trim() : dnd.settings.timeZone || localZone(),
    mentionsSilenced: !field("dnd-mentions").checked,
  };
  dnd.busy = true;
  field("dnd-save").disabled = true;
  try {
    const rsp = await call("DND_SET_REQ", { settings });
    applySettings(rsp.settings);
    dnd.active = Boolean(rsp.active);
    dnd.error = "";
  } catch (e) {
    dnd.error = errorText(e);
  } finally {
    dnd.busy = false;
    field("dnd-save").disabled = false;
  }
  updateForm();
  ctx.render();
}

function buildPanel() {
  const check = (testid, text) => {
    const box = el("input", { testid, attrs: { type: "checkbox" } });
    box.addEventListener("change", updateForm);
    return el("label", { cls: "check" }, box, text);
  };
  const close = el("button", { cls: "icon-button", testid: "dnd-close", attrs: { type: "button", "aria-label": "Back" } });
  close.append(svgIcon("M15 5l-7 7 7 7"));
  close.addEventListener("click", () => showPanel(false));
  const form = el(
    "form",
    { cls: "group-form dnd-form", testid: "dnd-form", attrs: { novalidate: "" } },
    el("p", { cls: "hint", testid: "dnd-status" }),
    check("dnd-enabled", "Do not disturb"),
    check("dnd-window", "Only between"),
    el(
      "div",
      { cls: "dnd-times" },
      el("input", { testid: "dnd-start", attrs: { type: "time", "aria-label": "From" } }),
      el("span", { text: "and" }),
      el("input", { testid: "dnd-end", attrs: { type: "time", "aria-label": "Until" } }),
    ),
    el(
      "label",
      { cls: "field" },
      "Time zone",
      el("input", { testid: "dnd-time-zone", attrs: { maxlength: "64", autocomplete: "off", spellcheck: "false" } }),
    ),
    check("dnd-mentions", "@-mentions of me still notify"),
    el("p", { cls: "hint", text: "Messages always arrive; this only silences notifications." }),
    el("p", { cls: "form-error", testid: "dnd-error", attrs: { role: "alert" } }),
    el("button", { cls: "primary", testid: "dnd-save", text: "Save", attrs: { type: "submit" } }),
  );
  form.addEventListener("submit", saveSettings);
  return el(
    "section",
    { cls: "panel", testid: "dnd-panel", attrs: { hidden: "" } },
    el("header", { cls: "panel-header" }, close, el("h2", { text: "Notifications" })),
    form,
  );
}

/** Build the toggles and the panel into the page; ``context`` gives what app.js owns. */
export function initDnd(context) {
  ctx = context;
  const groupInfo = field("group-info-button");
  const mute = el("button", { cls: "icon-button dnd-toggle", testid: "mute-toggle", attrs: { type: "button", hidden: "" } });
  const pin = el("button", { cls: "icon-button dnd-toggle", testid: "pin-toggle", attrs: { type: "button", hidden: "" } });
  pin.append(svgIcon(PIN));
  mute.addEventListener("click", toggleMute);
  pin.addEventListener("click", togglePin);
  groupInfo.before(mute, pin);
  const settings = el("button", {
    cls: "icon-button",
    testid: "dnd-settings-button",
    attrs: { type: "button", title: "Notifications", "aria-label": "Notifications" },
  });
  settings.append(svgIcon(BELL));
  settings.addEventListener("click", () => showPanel(!dnd.panelOpen));
  field("logout-button").before(settings);
  field("conversation-panel").after(buildPanel());
}

/** Forget everything (logout). */
export function resetDnd() {
  dnd.muted = new Set();
  dnd.pins = new Map();
  applySettings(null);
  dnd.active = false;
  if (dnd.panelOpen) showPanel(false);
}

