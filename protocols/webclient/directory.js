// The user directory in the web client (docs/directory.md): the search box of the "New chat"
// panel (USER_SEARCH), the names of people we have not talked to (PROFILE_GET), and the editor
// of one's own profile (PROFILE_UPDATE; PROFILE_CHANGED_NOTIFY from one's other devices).
//
// As everywhere in the client, what users typed goes into the page through textContent only.

import { avatar, currentConnection, el, nameOf, openChat, chatFor, render, setSidebar, state } from "./app.js";
import { ErrorCode, num } from "./protocol.js";

const SINGLE = 1;
const SEARCH_DELAY = 250; // ms after the last keystroke before the search goes out
const PROFILES_PER_REQUEST = 100; // the server's directory.profile_fetch_max

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const search = { query: "", cursor: "", results: [], timer: null, asked: 0 };
let myProfile = null; // the last profile the server gave us (signature, avatar ...)

/** Ask for a request and fail with its result string unless it succeeded. */
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

function remember(profile) {
  const userId = num(profile.userId);
  if (userId) state.users.set(userId, profile.nickName || profile.userName || `User ${userId}`);
  return userId;
}

/** The names of these users that we do not know yet (group members, senders in history). */
export async function loadNames(userIds) {
  const missing = [...new Set(userIds.map(num))].filter((id) => id > 0 && !state.users.has(id));
  for (let i = 0; i < missing.length; i += PROFILES_PER_REQUEST) {
    const rsp = await ask("PROFILE_GET_REQ", { userIdList: missing.slice(i, i + PROFILES_PER_REQUEST).map(String) });
    for (const profile of rsp.profiles || []) remember(profile);
  }
}

const wanted = new Set(); // ids whose names were asked for (once each: some may not exist)
let wantTimer = null;

/** nameOf() met a user we know no name of: fetch it soon (batched), then redraw. */
export function wantName(userId) {
  if (!userId || wanted.has(userId) || !currentConnection()?.online) return;
  wanted.add(userId);
  if (wantTimer) return;
  wantTimer = setTimeout(() => {
    wantTimer = null;
    const ids = [...wanted].filter((id) => !state.users.has(id));
    loadNames(ids)
      .then(() => ids.some((id) => state.users.has(id)) && render())
      .catch(() => ids.forEach((id) => wanted.delete(id))); // offline: ask again later
  }, 0);
}

// ---- search ----------------------------------------------------------------------------------

function searchTyped() {
  clearTimeout(search.timer);
  search.query = $("user-search-input").value.trim();
  if (!search.query) {
    search.asked++; // an answer still on its way is for a query no longer there
    search.results = [];
    search.cursor = "";
    renderSearch();
    return;
  }
  search.timer = setTimeout(() => runSearch(false), SEARCH_DELAY);
}

async function runSearch(more) {
  const query = search.query;
  const asked = ++search.asked;
  $("user-search-status").textContent = "Searching…";
  try {
    const rsp = await ask("USER_SEARCH_REQ", { query, cursor: more ? search.cursor : "", limit: 20 });
    if (asked !== search.asked) return; // a newer search went out meanwhile
    const found = (rsp.users || []).filter((u) => num(u.userId) !== state.session.userId);
    for (const profile of found) remember(profile);
    search.results = more ? [...search.results, ...found] : found;
    search.cursor = rsp.nextCursor || "";
    $("user-search-status").textContent = search.results.length ? "" : `Nobody is called “${query}”.`;
  } catch (e) {
    if (asked === search.asked) $("user-search-status").textContent = e.code ? e.message : "Search failed: offline?";
  }
  renderSearch();
}

/** While there is a query, its results take the place of the contacts. */
function showSearching() {
  const searching = Boolean(search.query);
  $("user-search-results").hidden = !searching;
  $("user-list").hidden = searching;
  if (searching) $("users-empty").hidden = true;
  $("user-search-more").hidden = !searching || !search.cursor;
  if (!searching) $("user-search-status").textContent = "";
}

function renderSearch() {
  if (!search.query) {
    render(); // the contacts again (and their "nobody yet" line)
    return;
  }
  showSearching();
  const seen = new Set();
  const items = [];
  for (const profile of search.results) {
    const userId = num(profile.userId);
    if (seen.has(userId)) continue; // a user found by both names, on two pages
    seen.add(userId);
    const button = el(
      "button",
      { cls: "user", attrs: { type: "button" } },
      avatar(userId, nameOf(userId)),
      el(
        "span",
        { cls: "user-name" },
        el("span", { testid: "search-result-name", text: nameOf(userId) }),
        el("span", { cls: "muted search-user-name", text: ` @${profile.userName || ""}` }),
      ),
    );
    button.addEventListener("click", () => {
      closeSearch();
      setSidebar("list");
      openChat(chatFor(SINGLE, userId).key);
    });
    const item = el("li", { testid: "search-result" }, button);
    item.dataset.userId = String(userId);
    items.push(item);
  }
  $("user-search-results").replaceChildren(...items);
}

function closeSearch() {
  clearTimeout(search.timer);
  $("user-search-input").value = "";
  search.query = "";
  search.results = [];
  search.cursor = "";
  $("user-search-results").replaceChildren();
  showSearching();
}

// ---- my profile ------------------------------------------------------------------------------

async function openProfile() {
  setSidebar("profile");
  $("profile-error").textContent = "";
  $("profile-status").textContent = "";
  const me = state.session.userId;
  fillProfile(myProfile || { nickName: state.session.nickName, avatarUrl: "", signature: "" });
  // Read-only until the server's copy is in, so a late answer never overwrites what was typed.
  setProfileEditable(false);
  try {
    const rsp = await ask("PROFILE_GET_REQ", { userIdList: [String(me)] });
    const mine = (rsp.profiles || []).find((p) => num(p.userId) === me);
    if (mine) fillProfile((myProfile = mine));
  } catch {
    // offline: edit what we know
  } finally {
    setProfileEditable(true);
  }
}

function setProfileEditable(editable) {
  for (const id of ["profile-nick-input", "profile-avatar-input", "profile-signature-input"]) {
    $(id).readOnly = !editable;
  }
  $("profile-save").disabled = !editable;
}

function fillProfile(profile) {
  $("profile-nick-input").value = profile.nickName || "";
  $("profile-avatar-input").value = profile.avatarUrl || "";
  $("profile-signature-input").value = profile.signature || "";
}

async function saveProfile(event) {
  event.preventDefault();
  const body = {
    nickName: $("profile-nick-input").value.trim(),
    avatarUrl: $("profile-avatar-input").value.trim(),
    signature: $("profile-signature-input").value,
  };
  $("profile-error").textContent = "";
  $("profile-status").textContent = "Saving…";
  $("profile-save").disabled = true;
  try {
    const rsp = await ask("PROFILE_UPDATE_REQ", body);
    applyProfile(rsp.profile);
    $("profile-status").textContent = "Saved.";
  } catch (e) {
    $("profile-status").textContent = "";
    $("profile-error").textContent = e.code ? e.message : "Not saved: offline?";
  } finally {
    $("profile-save").disabled = false;
  }
}

function applyProfile(profile) {
  if (!profile || num(profile.userId) !== state.session.userId) return;
  myProfile = profile;
  state.session.nickName = profile.nickName || state.session.nickName;
  remember(profile);
  render();
}

/** PROFILE_CHANGED_NOTIFY: we changed our profile on another device. */
export function directoryPush(body) {
  applyProfile(body.profile);
  if (state.sidebar === "profile" && myProfile) fillProfile(myProfile);
}

/** Called by render(): what the sidebar shows of ours. */
export function renderDirectory() {
  $("profile-panel").hidden = state.sidebar !== "profile";
  if (state.sidebar !== "users" && search.query) closeSearch();
  else showSearching();
}

$("user-search-input").addEventListener("input", searchTyped);
$("user-search-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    clearTimeout(search.timer);
    if (search.query) runSearch(false);
  }
});
$("user-search-more").addEventListener("click", () => runSearch(true));
$("profile-button").addEventListener("click", openProfile);
$("profile-close").addEventListener("click", () => setSidebar("list"));
$("profile-form").addEventListener("submit", saveProfile);
