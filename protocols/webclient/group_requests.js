// Group requests in the web client (docs/group-requests.md): "Request to join" a group by its id,
// the pending requests to join (for owners and admins: Approve / Reject), invitations waiting for
// us (Accept / Decline), our own pending ones (Withdraw), the "invitations need my consent"
// setting, and "Transfer ownership" in the group members panel.
//
// app.js hands us what we need once (setupGroupRequests) and calls groupRequestsPush for our
// pushes, groupRequestsOnline after each catch-up and renderGroupPanelPart with the
// members panel. Everything from users goes in as text (el), never as markup.

import { ErrorCode, ServerError, decodeMsgData, num } from "./protocol.js";

const JOIN = 1; // CIMGroupRequest.kind: a request to join
const INVITE = 2; // an invitation
const PENDING = 0;
const ROLE_OWNER = 3;
const MAX_MESSAGE = 200; // the server's default group_requests.max_message
const NEED_AUTH = 1; // kCIM_GROUP_JOIN_MODEL_NEED_AUTH: the group takes requests to join

const ERRORS = {
  [ErrorCode.GROUP_NOT_JOINABLE]: "No group with that id takes requests to join.",
  [ErrorCode.ALREADY_GROUP_MEMBER]: "You are in that group already.",
  [ErrorCode.GROUP_REQUEST_HANDLED]: "Someone else handled it already.",
  [ErrorCode.GROUP_REQUEST_NOT_FOUND]: "That request is gone.",
  [ErrorCode.TOO_MANY_GROUP_REQUESTS]: "Too many requests are waiting already.",
  [ErrorCode.FORBIDDEN]: "You are not allowed to do that.",
  [ErrorCode.GROUP_FULL]: "The group is full.",
  [ErrorCode.INVALID_ARGUMENT]: "That is not valid.",
};

let ctx = null; // {groupRequest, me, nameOf, el, openGroup, roleOf, loadMembers, loadUsers, storeNotice, render}
const pending = new Map(); // request id -> request (as the server sent it)
let consent = false;

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

function errorText(error) {
  if (error instanceof ServerError) return ERRORS[error.code] || error.message;
  return "No connection to the server. Try again.";
}

export function setupGroupRequests(context) {
  ctx = context;
  $("join-group-form").addEventListener("submit", askToJoin);
  $("join-group-message").maxLength = MAX_MESSAGE;
  $("invite-consent-toggle").addEventListener("change", setConsent);
  $("transfer-owner-button").addEventListener("click", transferOwner);
}

/** After each catch-up: the pending list and our setting, as a device that was away must see them. */
export async function groupRequestsOnline() {
  try {
    const rsp = await ctx.groupRequest("GROUP_REQUEST_LIST_REQ", { groupId: "0", limit: 200 });
    pending.clear();
    for (const r of rsp.requests || []) pending.set(num(r.requestId), r);
    const setting = await ctx.groupRequest("GROUP_INVITE_SETTING_REQ", {});
    consent = Boolean(setting.needConsent);
    await ctx.loadUsers().catch(() => {});
    await namesOf([...pending.values()]);
  } catch {
    // offline again: the next catch-up asks anew
  }
  renderGroupRequests();
}

/** GROUP_REQUEST_NOTIFY: a request is new (pending) or was decided (here or elsewhere). */
function groupRequestPush(body) {
  const request = body.request || {};
  const id = num(request.requestId);
  if (!id) return;
  if (num(request.status) === PENDING) pending.set(id, request);
  else pending.delete(id);
  renderGroupRequests();
  namesOf([request]).then(renderGroupRequests);
}

/** The names of the people in these requests: strangers are not in the contact list
 * (0x0601), so ask the directory for them (PROFILE_GET). */
function namesOf(requests) {
  if (!ctx.loadNames) return Promise.resolve();
  return ctx.loadNames(requests.flatMap((r) => [num(r.userId), num(r.actorId)])).catch(() => {});
}

/** GROUP_INVITE_SETTING_NOTIFY: our setting changed on another device. */
function inviteSettingPush(body) {
  consent = Boolean(body.needConsent);
  renderGroupRequests();
}

/** The pushes of this feature (app.js featurePush passes every push it does not know). */
export function groupRequestsPush(name, body) {
  if (name === "GROUP_REQUEST_NOTIFY") groupRequestPush(body);
  else if (name === "GROUP_INVITE_SETTING_NOTIFY") inviteSettingPush(body);
}

async function askToJoin(event) {
  event.preventDefault();
  const status = $("join-group-status");
  const groupId = $("join-group-id").value.trim();
  status.textContent = "";
  if (!/^[1-9][0-9]{0,18}$/.test(groupId)) {
    status.textContent = "Enter a group id (a number).";
    return;
  }
  const button = $("join-group-submit");
  button.disabled = true;
  try {
    const card = await ctx.groupRequest("GROUP_PUBLIC_INFO_REQ", { groupId });
    if (card.isMember) {
      status.textContent = `You are in “${card.groupName}” already.`;
      return;
    }
    const rsp = await ctx.groupRequest("GROUP_JOIN_REQ", { groupId, message: $("join-group-message").value.trim() });
    pending.set(num(rsp.request.requestId), rsp.request);
    status.textContent = `Request sent to “${card.groupName}”. Its admins will decide.`;
    $("join-group-form").reset();
  } catch (e) {
    status.textContent = errorText(e);
  } finally {
    button.disabled = false;
    renderGroupRequests();
  }
}

async function decide(request, accept) {
  const error = $("group-requests-error");
  error.textContent = "";
  const id = num(request.requestId);
  try {
    const rsp = await ctx.groupRequest("GROUP_REQUEST_DECIDE_REQ", { requestId: String(id), accept });
    const notice = decodeMsgData(rsp.attachNotificatinoMsg);
    if (notice) ctx.storeNotice(num(request.groupId), notice);
    pending.delete(id);
  } catch (e) {
    if (e instanceof ServerError && (e.code === ErrorCode.GROUP_REQUEST_HANDLED || e.code === ErrorCode.GROUP_REQUEST_NOT_FOUND)) {
      pending.delete(id);
    }
    error.textContent = errorText(e);
  }
  renderGroupRequests();
  ctx.render();
}

async function setConsent() {
  const wanted = $("invite-consent-toggle").checked;
  try {
    const rsp = await ctx.groupRequest("GROUP_INVITE_SETTING_REQ", { needConsent: wanted });
    consent = Boolean(rsp.needConsent);
  } catch (e) {
    $("group-requests-error").textContent = errorText(e);
  }
  renderGroupRequests();
}

function describe(request) {
  const group = request.groupName || `group ${num(request.groupId)}`;
  const user = num(request.userId);
  const actor = num(request.actorId);
  if (num(request.kind) === INVITE) {
    if (user === ctx.me()) return `${ctx.nameOf(actor)} invites you to “${group}”`;
    return `You invited ${ctx.nameOf(user)} to “${group}”`;
  }
  if (user === ctx.me()) return `You asked to join “${group}”`;
  return `${ctx.nameOf(user)} asks to join “${group}”`;
}

function buttons(request) {
  const mine = num(request.userId) === ctx.me();
  const kind = num(request.kind);
  const button = (testid, text, accept, cls) => {
    const b = ctx.el("button", { cls, testid, text, attrs: { type: "button" } });
    b.addEventListener("click", () => decide(request, accept));
    return b;
  };
  if (kind === JOIN && !mine) return [button("approve-request", "Approve", true, "primary"), button("reject-request", "Reject", false, "secondary")];
  if (kind === INVITE && mine) return [button("accept-invitation", "Accept", true, "primary"), button("decline-invitation", "Decline", false, "secondary")];
  return [button("withdraw-request", "Withdraw", false, "secondary")];
}

export function renderGroupRequests() {
  if (!ctx) return;
  const items = [...pending.values()]
    .sort((a, b) => num(a.createTime) - num(b.createTime) || num(a.requestId) - num(b.requestId))
    .map((request) => {
      const message = request.message ? ctx.el("span", { cls: "request-message", testid: "group-request-message", text: `“${request.message}”` }) : "";
      const item = ctx.el(
        "li",
        { cls: "group-request", testid: "group-request-item" },
        ctx.el("span", { cls: "request-text", testid: "group-request-text", text: describe(request) }),
        message,
        ctx.el("span", { cls: "request-buttons" }, ...buttons(request)),
      );
      item.dataset.requestId = String(num(request.requestId));
      item.dataset.kind = num(request.kind) === INVITE ? "invitation" : "request";
      return item;
    });
  $("group-request-list").replaceChildren(...items);
  $("group-requests-count").textContent = items.length ? `(${items.length})` : "";
  $("invite-consent-toggle").checked = consent;
}

/** Our part of the members panel: the group's id (to share: people ask to join by it) and, for
 * the owner, "Transfer ownership" to any other member. */
export function renderGroupPanelPart(group) {
  const area = $("transfer-area");
  if (!area || !ctx) return;
  const idLine = $("group-id-line");
  idLine.hidden = !group;
  if (group) {
    const askable = group.joinModel === NEED_AUTH ? " · people may ask to join with it" : "";
    idLine.textContent = `Group id ${group.id}${askable}`;
  }
  const members = group?.members;
  const others = members ? [...members.keys()].filter((id) => id !== ctx.me()) : [];
  const show = Boolean(group && !group.left && ctx.roleOf(group, ctx.me()) === ROLE_OWNER && others.length);
  area.hidden = !show;
  if (!show) return;
  const select = $("transfer-owner-select");
  const chosen = select.value;
  const options = others
    .sort((a, b) => ctx.nameOf(a).localeCompare(ctx.nameOf(b)))
    .map((id) => ctx.el("option", { text: ctx.nameOf(id), attrs: { value: String(id) } }));
  select.replaceChildren(...options);
  if (others.includes(Number(chosen))) select.value = chosen;
}

async function transferOwner() {
  const group = ctx.openGroup();
  const error = $("transfer-error");
  error.textContent = "";
  const newOwner = $("transfer-owner-select").value;
  if (!group || !newOwner) return;
  const button = $("transfer-owner-button");
  button.disabled = true;
  try {
    const rsp = await ctx.groupRequest("GROUP_TRANSFER_OWNER_REQ", { groupId: String(group.id), newOwnerId: newOwner });
    const notice = decodeMsgData(rsp.attachNotificatinoMsg);
    if (notice) ctx.storeNotice(group.id, notice);
    group.ownerId = Number(newOwner);
    await ctx.loadMembers(group.id);
  } catch (e) {
    error.textContent = errorText(e);
  } finally {
    button.disabled = false;
    ctx.render();
  }
}
