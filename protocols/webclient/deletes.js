// The web client's part of the deletes feature (coffeechat/features/deletes.py, docs/deletes.md):
// "Delete for me" in a message's menu, "Clear history" and "Remove from list" for the open
// conversation, and MSG_DELETE_NOTIFY from the user's other devices. Only this user's view
// changes: the server keeps everything for the others.
//
// app.js calls in here: deleteMenuItem (an item of its message menu), receiveDeleteNotify (its
// featurePush), noteHiddenGaps (each history page), isHidden (its contiguousTop), isRemoved (its
// conversation list), afterConversationList (after each conversation list), wireDeletes and
// renderDeletes (its wire and render).

import { ErrorCode, ServerError, num } from "./protocol.js";
import { $, closeChat, closeMessageMenu, connectionNow, el, fromInfo, openChatState, render, state } from "./app.js";

const ACTION_MESSAGES = 1; // kCIM_DELETE_ACTION_MESSAGES
const ACTION_CLEAR = 2; // kCIM_DELETE_ACTION_CLEAR
const ACTION_REMOVE = 3; // kCIM_DELETE_ACTION_REMOVE
const SINGLE = 1;
const GROUP = 2;
const keyOf = (type, id) => (type === GROUP ? `g${id}` : `u${id}`);

const ERRORS = {
  [ErrorCode.NOT_FOUND]: "This message no longer exists.",
  [ErrorCode.FORBIDDEN]: "You are not in this conversation any more.",
  [ErrorCode.TOO_MANY_DELETES]: "Too many messages deleted here one by one: clear the history instead.",
  [ErrorCode.RATE_LIMITED]: "Too many requests. Wait a moment and try again.",
  [ErrorCode.UNKNOWN_COMMAND]: "This server does not delete messages.",
};
const errorText = (e) =>
  e instanceof ServerError ? ERRORS[e.code] || e.message : "No connection to the server. Try again.";

/** A request whose answer carries result_code: a refusal becomes a ServerError. */
async function ask(cmd, body) {
  const rsp = await connectionNow().request(cmd, body);
  const code = num(rsp.resultCode);
  if (code && code !== ErrorCode.SUCCESS) throw new ServerError(code, rsp.resultString || `error ${code}`, cmd);
  return rsp;
}

// ---- what this user hid, as this page knows it -----------------------------------------------

/** Whether this user deleted (or cleared) message ``seq`` of ``chat``. */
export function isHidden(chat, seq) {
  return seq <= (chat.clearedUpTo || 0) || Boolean(chat.hidden?.has(seq));
}

/** Whether ``chat`` is out of the list (removed, and nothing newer came since). */
export function isRemoved(chat) {
  return chat.removedAt !== undefined && chat.removedAt >= chat.latest && chat.key !== state.openKey;
}

/** After the conversation list (0x0202) came. A conversation this page shows that the server
 * did not list was removed from the list (on this device or another, maybe while we were away):
 * groups always have a message (their notices), so any group not listed is out; a 1:1 chat only
 * if it has messages (one just started here has none yet). The server lists at most 1000. And a
 * listed conversation without a preview has nothing left that we may see (we cleared or deleted
 * it all): it shows, empty, after its latest id (asked for: the list does not say it). */
export function afterConversationList(entries) {
  if (entries.length < 1000) {
    const listed = new Set(entries.map((e) => keyOf(num(e.sessionType) || SINGLE, num(e.sessionId))));
    for (const chat of state.chats.values()) {
      if (listed.has(chat.key) || chat.left || chat.pending.size) continue;
      if (chat.type === GROUP || chat.latest > 0) chat.removedAt = Math.max(chat.removedAt ?? -1, chat.latest);
    }
  }
  for (const entry of entries) {
    const type = num(entry.sessionType) || SINGLE;
    if (num(entry.serverMsgId) || (type !== SINGLE && type !== GROUP)) continue;
    const chat = state.chats.get(keyOf(type, num(entry.sessionId)));
    if (chat && !chat.latest) showEmptied(chat, num(entry.updatedTime)).catch(() => {});
  }
}

async function showEmptied(chat, time) {
  const rsp = await connectionNow().request("MSG_GET_LATEST_MSG_ID_REQ", {
    sessionType: chat.type,
    sessionId: String(chat.id),
  });
  const latest = num(rsp.latestMsgId);
  if (!latest || chat.latest >= latest) return;
  chat.latest = latest;
  chat.clearedUpTo = Math.max(chat.clearedUpTo || 0, latest);
  chat.myRead = Math.max(chat.myRead, latest);
  chat.oldest = chat.oldest || latest;
  chat.startReached = true;
  if (!chat.preview) {
    chat.preview = { seq: 0, from: 0, type: 0, text: "", notice: null, recall: null, nick: "", time };
    chat.preview.cleared = true;
  }
  render();
}

/** A page of history holds every message we may see between its first and last: the ids missing
 * in between were deleted by us (ids are dense), so the gaps do not look like missed messages. */
export function noteHiddenGaps(chat, page) {
  for (let i = 1; i < page.length; i++) {
    for (let seq = page[i - 1].seq + 1; seq < page[i].seq; seq++) hide(chat, seq);
  }
}

function hide(chat, seq) {
  if (!chat.hidden) chat.hidden = new Set();
  chat.hidden.add(seq);
  chat.messages.delete(seq);
}

/** Take ``seqs`` out of what this page shows of ``chat``. */
export function applyDeleted(chat, seqs) {
  for (const seq of seqs) hide(chat, seq);
  refreshPreview(chat);
}

/** Everything up to ``upTo`` is gone for us: not unread any more either (we tell nobody). */
export function applyCleared(chat, upTo) {
  chat.clearedUpTo = Math.max(chat.clearedUpTo || 0, upTo);
  for (const seq of [...chat.messages.keys()]) if (seq <= upTo) chat.messages.delete(seq);
  if (chat.hidden) for (const seq of [...chat.hidden]) if (seq <= upTo) chat.hidden.delete(seq);
  chat.latest = Math.max(chat.latest, upTo);
  chat.myRead = Math.max(chat.myRead, upTo);
  if (!chat.messages.size) chat.oldest = upTo; // what follows the clear starts the history
  chat.startReached = true;
  refreshPreview(chat);
}

export function applyRemoved(chat, upTo) {
  chat.removedAt = Math.max(chat.removedAt ?? -1, upTo);
  chat.latest = Math.max(chat.latest, upTo);
  chat.myRead = Math.max(chat.myRead, upTo); // the server counts only what comes after as unread
  if (state.openKey === chat.key) {
    state.openKey = "";
    closeChat();
  }
}

/** The list shows the newest message we still have: held here, else asked for. */
function refreshPreview(chat) {
  const preview = chat.preview;
  if (!preview || !preview.seq || !isHidden(chat, preview.seq)) return;
  const held = [...chat.messages.keys()];
  if (held.length) {
    const { seq, from, type, text, notice, recall, nick, time } = chat.messages.get(Math.max(...held));
    chat.preview = { seq, from, type, text, notice, recall, nick, time };
    return;
  }
  chat.preview = { seq: 0, from: 0, type: 0, text: "", notice: null, recall: null, nick: "", time: preview.time };
  chat.preview.cleared = true;
  if (chat.loaded) return; // we hold the newest page: nothing is left
  ask("LIST_MSG_REQ", { sessionType: chat.type, sessionId: String(chat.id), endMsgId: "0", limitCount: 1 })
    .then((rsp) => {
      const info = (rsp.msgList || [])[0];
      if (!info || !chat.preview?.cleared) return;
      const { seq, from, type, text, notice, recall, nick, time } = fromInfo(info);
      chat.preview = { seq, from, type, text, notice, recall, nick, time };
      render();
    })
    .catch(() => {});
}

// ---- "Delete for me" in the message menu -------------------------------------------------------

/** An item of app.js's message menu: offered on every stored message of a conversation we are in. */
export const deleteMenuItem = {
  available: (chat, message) => message.seq > 0 && !chat.left,
  create(chat, message, menu) {
    const button = el(
      "button",
      { cls: "menu-item", testid: "delete-for-me-button", attrs: { type: "button", title: "Delete for me only" } },
      el("span", { text: "Delete for me" }),
    );
    button.addEventListener("click", () => deleteForMe(chat, message.seq, menu()));
    return button;
  },
  update(node, chat, message, menu) {
    node.disabled = Boolean(menu.deleting);
    node.firstChild.textContent = menu.deleting ? "Deleting…" : "Delete for me";
  },
};

async function deleteForMe(chat, seq, menu) {
  if (!menu || menu.deleting) return;
  menu.deleting = true;
  menu.error = "";
  render();
  try {
    await ask("MSG_DELETE_REQ", { sessionType: chat.type, sessionId: String(chat.id), msgIds: [String(seq)] });
    applyDeleted(chat, [seq]);
    menu.deleting = false;
    closeMessageMenu();
  } catch (e) {
    menu.error = errorText(e);
  } finally {
    menu.deleting = false;
  }
  render();
}

// ---- "Clear history" and "Remove from list" for the open conversation ---------------------------

const panel = { open: false, busy: false, error: "" };

export function wireDeletes() {
  const header = $("chat-header");
  const label = "Conversation actions";
  const button = el(
    "button",
    {
      cls: "icon-button",
      testid: "chat-actions-button",
      attrs: { type: "button", title: label, "aria-label": label, "aria-expanded": "false" },
    },
    el("span", { text: "⋯", attrs: { "aria-hidden": "true" } }),
  );
  const item = (testid, text) => el("button", { cls: "menu-item", testid, attrs: { type: "button" } }, text);
  const clear = item("chat-clear-button", "Clear history");
  const remove = item("chat-remove-button", "Remove from list");
  const menu = el(
    "div",
    { cls: "chat-actions-menu", testid: "chat-actions-menu", attrs: { role: "menu", hidden: "" } },
    clear,
    remove,
    el("span", { cls: "menu-error", testid: "chat-actions-error", attrs: { role: "alert" } }),
  );
  header.append(button, menu);
  button.addEventListener("click", () => {
    panel.open = !panel.open;
    panel.error = "";
    renderDeletes();
  });
  clear.addEventListener("click", () =>
    act("SESSION_CLEAR_REQ", (chat, rsp) => applyCleared(chat, num(rsp.upToMsgId))),
  );
  remove.addEventListener("click", () =>
    act("SESSION_REMOVE_REQ", (chat, rsp) => applyRemoved(chat, num(rsp.removedAtMsgId))),
  );
  document.addEventListener("click", (event) => {
    if (panel.open && !event.target.closest?.(".chat-actions-menu, [data-testid='chat-actions-button']")) {
      panel.open = false;
      renderDeletes();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && panel.open) {
      panel.open = false;
      renderDeletes();
    }
  });
}

async function act(cmd, apply) {
  const chat = openChatState();
  if (!chat || panel.busy) return;
  panel.busy = true;
  panel.error = "";
  renderDeletes();
  try {
    const rsp = await ask(cmd, { sessionType: chat.type, sessionId: String(chat.id) });
    panel.open = false;
    apply(chat, rsp);
  } catch (e) {
    panel.error = errorText(e);
  } finally {
    panel.busy = false;
  }
  render();
}

/** The header's conversation actions, for the open conversation (none for a group we left). */
export function renderDeletes() {
  const button = $("chat-actions-button");
  if (!button) return;
  const chat = openChatState();
  const usable = Boolean(chat) && !chat.left;
  if (!usable) panel.open = false;
  button.hidden = !usable;
  button.setAttribute("aria-expanded", String(panel.open));
  const menu = $("chat-actions-menu");
  menu.hidden = !panel.open;
  for (const item of menu.querySelectorAll(".menu-item")) item.disabled = panel.busy;
  $("chat-actions-error").textContent = panel.error;
}

// ---- MSG_DELETE_NOTIFY: another device of ours deleted, cleared or removed ----------------------

export function receiveDeleteNotify(body) {
  const type = num(body.sessionType) || SINGLE;
  if (type !== SINGLE && type !== GROUP) return;
  const chat = state.chats.get(keyOf(type, num(body.sessionId)));
  if (!chat) return; // not held here: the list and the history come from the server without it
  const action = num(body.action);
  if (action === ACTION_MESSAGES) applyDeleted(chat, (body.msgIds || []).map(num));
  else if (action === ACTION_CLEAR) applyCleared(chat, num(body.upToMsgId));
  else if (action === ACTION_REMOVE) applyRemoved(chat, num(body.upToMsgId));
  render();
}
