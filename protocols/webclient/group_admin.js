// Group administration in the group members panel (docs/group-mutes.md, docs/group-tags.md):
// for the owner and admins, kick a member, make or unmake admins (owner), rename the group and
// change its announcement, mute everyone (mute_model), mute one member for a while; and for
// everyone, the group's tags (edited by the owner and admins) and who is muted until when.
//
// app.js hands this module what it needs once (setupGroupAdmin), calls renderGroupAdmin(group)
// whenever it draws the members panel, and passes it the pushes it knows (groupAdminPush).
// Everything from users goes into the page as text, never markup.

import { ServerError, decodeMsgData, num } from "./protocol.js";

const ROLE_MEMBER = 1;
const ROLE_ADMIN = 2;
const ROLE_OWNER = 3;
const MUTE_ALL = 1; // kCIM_GROUP_MUTE_MODEL_ALL
const DEFAULT_MODEL = 0;
const GROUP = 2;
const MUTE_CHOICES = [
  [600, "10 min"],
  [3600, "1 h"],
  [86400, "1 day"],
];
const ERRORS = {
  10004: "You are not allowed to do that in this group.",
  10009: "That member or group is gone.",
  10011: "That is not a valid value.",
  10007: "Too many requests. Wait a moment and try again.",
};

let app = null; // what app.js lends us (setupGroupAdmin)
const mutes = new Map(); // group id -> Map(user id -> muted until, unix seconds)
const extras = new Map(); // group id -> {tags: [], customFields: "{}", announcement: ""}
const loading = new Set(); // group ids whose mutes and tags are being asked for
let section = null; // the admin/tags block, built once so that what is typed survives renders
let shownGroup = 0;
// group id -> the mute model asked for and not answered yet: a render meanwhile (a push) shows the
// choice just made, not the model it replaces.
const pendingMuteModel = new Map();

/** app: {request, me, openGroup, roleOf, render, el, loadMembers, applyGroupInfo, storeIncoming}. */
export function setupGroupAdmin(lent) {
  app = lent;
}

const now = () => Date.now() / 1000;

function mutedUntil(groupId, userId) {
  const until = mutes.get(groupId)?.get(userId) || 0;
  return until > now() ? until : 0;
}

function clock(until) {
  const date = new Date(until * 1000);
  const sameDay = date.toDateString() === new Date().toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${date.toLocaleDateString()} ${time}`;
}

function errorText(error) {
  if (error instanceof ServerError) return ERRORS[error.code] || error.message;
  return "No connection to the server. Try again.";
}

/** Pushes of the group_mutes and group_tags features: true when it was one of ours. */
export function groupAdminPush(name, body) {
  if (name === "GROUP_MUTE_NOTIFY") {
    setMute(num(body.groupId), num(body.memberId), num(body.mutedUntil));
  } else if (name === "GROUP_TAGS_NOTIFY") {
    setTags(num(body.groupId), body.groupTags || {});
  } else {
    return false;
  }
  app?.render();
  return true;
}

function setMute(groupId, userId, until) {
  if (!mutes.has(groupId)) mutes.set(groupId, new Map());
  if (until) mutes.get(groupId).set(userId, until);
  else mutes.get(groupId).delete(userId);
}

function setTags(groupId, tags) {
  const known = extras.get(groupId) || { tags: [], customFields: "{}", announcement: "" };
  known.tags = tags.tags || [];
  known.customFields = tags.customFields || "{}";
  if (tags.groupInfo) known.announcement = tags.groupInfo.announcement || "";
  extras.set(groupId, known);
}

/** The group's mutes and tags (with its announcement), asked for when its panel first shows. */
async function load(groupId) {
  if (loading.has(groupId)) return;
  loading.add(groupId);
  try {
    const [listed, tagged] = await Promise.all([
      app.request("GROUP_MUTE_LIST_REQ", { groupId: String(groupId) }),
      app.request("GROUP_TAGS_GET_REQ", { groupIdList: [String(groupId)] }),
    ]);
    const found = new Map();
    for (const m of listed.mutes || []) found.set(num(m.userId), num(m.mutedUntil));
    mutes.set(groupId, found);
    for (const t of tagged.groupTagsList || []) setTags(num(t.groupId), t);
  } catch {
    // The panel works without them; the next time it opens asks again.
    mutes.delete(groupId);
  } finally {
    loading.delete(groupId);
  }
  app.render();
}

/** Run one administration request from the panel; its failure shows in the panel. */
async function act(group, name, body) {
  const error = section?.querySelector('[data-testid="group-admin-error"]');
  if (error) error.textContent = "";
  try {
    const rsp = await app.request(name, { groupId: String(group.id), ...body });
    const notice = decodeMsgData(rsp.attachNotificatinoMsg);
    if (notice) app.storeIncoming(GROUP, group.id, notice);
    if (rsp.groupInfo) app.applyGroupInfo(rsp.groupInfo);
    return rsp;
  } catch (e) {
    if (error) error.textContent = errorText(e);
    return null;
  } finally {
    app.render();
  }
}

function button(testid, text, onClick, cls = "link-button") {
  const node = app.el("button", { cls, testid, text, attrs: { type: "button" } });
  node.addEventListener("click", onClick);
  return node;
}

// ---- the member list: per member, what we may do to them ---------------------------------------

function memberActions(group, userId, role) {
  const mine = app.roleOf(group, app.me());
  const actions = app.el("div", { cls: "member-actions", testid: "member-actions" });
  const until = mutedUntil(group.id, userId);
  if (until) {
    actions.append(app.el("span", { cls: "muted-mark", testid: "member-muted", text: `Muted until ${clock(until)}` }));
  }
  if (userId === app.me() || mine < ROLE_ADMIN) return actions;
  const outranks = mine === ROLE_OWNER || role < ROLE_ADMIN;
  if (mine === ROLE_OWNER) {
    const admin = role === ROLE_ADMIN;
    actions.append(
      button("member-admin-toggle", admin ? "Remove admin" : "Make admin", () =>
        act(group, "GROUP_SET_ADMIN_REQ", { memberIdList: [String(userId)], isAdmin: !admin }).then(
          (rsp) => rsp && app.loadMembers(group.id),
        ),
      ),
    );
  }
  if (!outranks || role === ROLE_OWNER) return actions;
  if (until) {
    actions.append(button("member-unmute", "Unmute", () => mute(group, userId, 0)));
  } else {
    for (const [seconds, label] of MUTE_CHOICES) {
      const choice = button("member-mute", `Mute ${label}`, () => mute(group, userId, seconds));
      choice.dataset.duration = String(seconds);
      actions.append(choice);
    }
  }
  actions.append(
    button(
      "member-kick",
      "Remove",
      () =>
        act(group, "GROUP_KICK_OUT_MEMBER_REQ", { memberIdList: [String(userId)] }).then(
          (rsp) => rsp && app.loadMembers(group.id),
        ),
      "link-button danger",
    ),
  );
  return actions;
}

async function mute(group, userId, duration) {
  const rsp = await act(group, "GROUP_MUTE_MEMBER_REQ", { memberId: String(userId), duration });
  if (rsp) setMute(group.id, userId, num(rsp.mutedUntil));
  app.render();
}

// ---- the group's settings and tags -------------------------------------------------------------

function field(testid, label, input, submitTestid, submitText, onSubmit) {
  const row = app.el("form", { cls: "admin-row", testid: `${testid}-form` });
  row.append(app.el("label", { cls: "admin-label", text: label }), input);
  const submit = app.el("button", { cls: "secondary", testid: submitTestid, text: submitText, attrs: { type: "submit" } });
  row.append(submit);
  row.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit(input.value);
  });
  return row;
}

function buildSection() {
  const node = app.el("div", { cls: "group-admin", testid: "group-admin" });
  const announcement = app.el("p", { cls: "announcement", testid: "group-announcement" });
  const tagList = app.el("ul", { cls: "group-tags", testid: "group-tags" });
  const settings = app.el("div", { cls: "admin-settings", testid: "group-admin-settings" });
  const rename = app.el("input", { testid: "group-rename-input", attrs: { maxlength: "64", "aria-label": "Group name" } });
  const notice = app.el("textarea", {
    testid: "group-announcement-input",
    attrs: { rows: "2", maxlength: "2048", "aria-label": "Announcement" },
  });
  const tags = app.el("input", {
    testid: "group-tags-input",
    attrs: { placeholder: "hiking, berlin", "aria-label": "Tags, separated by commas" },
  });
  tags.addEventListener("input", () => (tags.dataset.edited = "1"));
  const muteAll = app.el("input", { testid: "group-mute-all", attrs: { type: "checkbox" } });
  const muteAllRow = app.el("label", { cls: "admin-check" }, muteAll, " Only the owner and admins can write");
  const group = () => app.openGroup();
  settings.append(
    field("group-rename", "Name", rename, "group-rename-submit", "Rename", (value) => {
      if (value.trim()) act(group(), "GROUP_UPDATE_REQ", { groupName: value.trim() });
    }),
    field("group-announcement", "Announcement", notice, "group-announcement-submit", "Save", async (value) => {
      const rsp = await act(group(), "GROUP_UPDATE_REQ", { announcement: value.trim() });
      if (rsp) setAnnouncement(group().id, rsp.groupInfo?.announcement || "");
      app.render();
    }),
    field("group-tags", "Tags", tags, "group-tags-submit", "Save", async (value) => {
      const wanted = value.split(",").map((t) => t.trim()).filter(Boolean);
      const rsp = await act(group(), "GROUP_TAGS_SET_REQ", { tags: wanted, setTags: true });
      if (rsp) {
        setTags(group().id, rsp.groupTags || {});
        delete tags.dataset.edited;
        tags.value = (rsp.groupTags?.tags || []).join(", ");
      }
      app.render();
    }),
    muteAllRow,
  );
  muteAll.addEventListener("change", async () => {
    const target = group();
    const wanted = muteAll.checked ? MUTE_ALL : DEFAULT_MODEL;
    pendingMuteModel.set(target.id, wanted);
    try {
      await act(target, "GROUP_UPDATE_REQ", { muteModel: wanted });
    } finally {
      if (pendingMuteModel.get(target.id) === wanted) pendingMuteModel.delete(target.id);
      app.render();
    }
  });
  node.append(
    announcement,
    tagList,
    settings,
    app.el("p", { cls: "form-error", testid: "group-admin-error", attrs: { role: "alert" } }),
  );
  return node;
}

function setAnnouncement(groupId, text) {
  const known = extras.get(groupId) || { tags: [], customFields: "{}", announcement: "" };
  known.announcement = text;
  extras.set(groupId, known);
}

/** Draw our part of the members panel of ``group`` (called by app.js's renderGroupPanel). */
export function renderGroupAdmin(group) {
  if (!app || !group) return;
  if (!section) {
    section = buildSection();
    const summary = document.querySelector('[data-testid="group-members-view"] .group-summary');
    summary.after(section);
  }
  if (!mutes.has(group.id) && !loading.has(group.id)) load(group.id);
  const mine = app.roleOf(group, app.me());
  const manager = mine >= ROLE_ADMIN;
  const known = extras.get(group.id) || { tags: [], announcement: "" };
  const q = (testid) => section.querySelector(`[data-testid="${testid}"]`);
  q("group-announcement").textContent = known.announcement;
  q("group-announcement").hidden = !known.announcement;
  q("group-tags").replaceChildren(...known.tags.map((tag) => app.el("li", { cls: "tag", testid: "group-tag", text: tag })));
  q("group-admin-settings").hidden = !manager;
  if (shownGroup !== group.id) {
    // Another group: its values in the fields (what was typed for the previous one goes).
    shownGroup = group.id;
    q("group-rename-input").value = group.name || "";
    q("group-announcement-input").value = known.announcement;
    q("group-tags-input").value = known.tags.join(", ");
    q("group-admin-error").textContent = "";
  }
  const tagsInput = q("group-tags-input");
  if (document.activeElement !== tagsInput && !tagsInput.dataset.edited) tagsInput.value = known.tags.join(", ");
  const muteModel = pendingMuteModel.has(group.id) ? pendingMuteModel.get(group.id) : group.muteModel;
  q("group-mute-all").checked = muteModel === MUTE_ALL;
  for (const item of document.querySelectorAll('[data-testid="member-list"] [data-testid="member-item"]')) {
    const userId = Number(item.dataset.userId);
    const role = group.members?.get(userId) || ROLE_MEMBER;
    item.dataset.muted = String(Boolean(mutedUntil(group.id, userId)));
    item.append(memberActions(group, userId, role));
  }
}
