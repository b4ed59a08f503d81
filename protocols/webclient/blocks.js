// The block list in the web client (docs/blocks.md): block or unblock the person of the open
// 1:1 chat from its header, and the list of blocked people (from the profile panel) with an
// Unblock button each. BLOCK_CHANGED_NOTIFY keeps the other devices' lists in step.

import { avatar, currentConnection, el, nameOf, openChatState, render, setSidebar, state } from "./app.js";
import { loadNames } from "./directory.js";
import { ErrorCode, num } from "./protocol.js";

const SINGLE = 1;
const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const blocked = new Map(); // user id -> when we blocked them (s)
let loadedFor = null; // the connection whose list we have (a new connection asks again)

async function ask(name, body) {
  const rsp = await currentConnection().request(name, body);
  const code = num(rsp.resultCode);
  if (code !== ErrorCode.SUCCESS) {
    const error = new Error(rsp.resultString || `error ${code}`);
    error.code = code;
    throw error;
  }
  return rsp;
}

async function loadBlocks() {
  const connection = currentConnection();
  if (!connection?.online || loadedFor === connection) return;
  loadedFor = connection;
  try {
    const rsp = await ask("BLOCK_LIST_REQ", {});
    blocked.clear();
    for (const entry of rsp.blocked || []) {
      const userId = num(entry.userId);
      blocked.set(userId, num(entry.blockedTime));
      if (entry.nickName && !state.users.has(userId)) state.users.set(userId, entry.nickName);
    }
    render();
  } catch {
    loadedFor = null; // asked again at the next render
  }
}

async function setBlocked(userId, block) {
  $("block-error").textContent = "";
  try {
    await ask("BLOCK_SET_REQ", { peerId: String(userId), blocked: block });
    if (block) blocked.set(userId, Math.floor(Date.now() / 1000));
    else blocked.delete(userId);
  } catch (e) {
    $("block-error").textContent = e.code ? e.message : "Not changed: offline?";
  }
  render();
}

/** BLOCK_CHANGED_NOTIFY: we blocked or unblocked someone on another device. */
export function blockPush(body) {
  const userId = num(body.peerId);
  if (body.blocked) {
    blocked.set(userId, num(body.changedTime));
    loadNames([userId])
      .then(render)
      .catch(() => {});
  } else blocked.delete(userId);
  render();
}

/** Called by render(): the header's Block button, and the block list panel. */
export function renderBlocks() {
  loadBlocks();
  const chat = openChatState();
  const button = $("block-button");
  const person = chat && chat.type === SINGLE ? chat.id : 0;
  button.hidden = !person;
  if (person) {
    const isBlocked = blocked.has(person);
    button.textContent = isBlocked ? "Unblock" : "Block";
    button.dataset.blocked = String(isBlocked);
    button.title = isBlocked ? `Let ${nameOf(person)} write to you again` : `Refuse ${nameOf(person)}'s messages`;
  }
  $("blocked-note").hidden = !person || !blocked.has(person);
  $("block-panel").hidden = state.sidebar !== "blocks";
  if (state.sidebar !== "blocks") return;
  const ids = [...blocked.keys()].sort((a, b) => blocked.get(b) - blocked.get(a));
  $("blocks-empty").hidden = ids.length > 0;
  const items = ids.map((userId) => {
    const unblock = el("button", {
      cls: "secondary small",
      testid: "unblock-button",
      text: "Unblock",
      attrs: { type: "button" },
    });
    unblock.addEventListener("click", () => setBlocked(userId, false));
    const item = el(
      "li",
      { cls: "user blocked-user", testid: "blocked-item" },
      avatar(userId, nameOf(userId)),
      el("span", { cls: "user-name", testid: "blocked-name", text: nameOf(userId) }),
      unblock,
    );
    item.dataset.userId = String(userId);
    return item;
  });
  $("block-list").replaceChildren(...items);
}

$("block-button").addEventListener("click", () => {
  const chat = openChatState();
  if (chat && chat.type === SINGLE) setBlocked(chat.id, !blocked.has(chat.id));
});
$("block-list-button").addEventListener("click", () => {
  setSidebar("blocks");
  loadNames([...blocked.keys()])
    .then(render)
    .catch(() => {});
});
$("block-panel-close").addEventListener("click", () => setSidebar("profile"));
