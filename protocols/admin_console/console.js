// The admin console (docs/admin-console.md): the dashboard an operator looks at first, and the
// account and group actions, all through the admin REST API with the token typed in at sign-in.
// The token stays in this tab's sessionStorage; every text from the server goes in as textContent.
// The charts are uPlot (bundled: uPlot.iife.min.js, MIT), one x point per UTC day.

const TOKEN_KEY = "coffeechat.admin.token";
const DAY = 86400;
const COLOURS = ["#2f6fde", "#e0631b", "#1f9d55", "#b83280", "#8a6d00", "#0f8a9d", "#6b46c1", "#c53030",
  "#4a5568", "#d69e2e", "#2c7a7b", "#9c4221", "#553c9a", "#276749"];

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem(TOKEN_KEY) || "", charts: {}, days: [], summary: null };
// What the page shows, for whoever looks (the browser test reads the charts' data from here).
window.adminConsole = state;

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error_msg) || `HTTP ${status}`);
    this.status = status;
  }
}

async function request(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    signOut("The admin token was refused.");
    throw new ApiError(401, null);
  }
  const type = response.headers.get("Content-Type") || "";
  const answer = type.startsWith("application/json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

const api = {
  get: (path) => request("GET", path),
  post: (path, body) => request("POST", path, body === undefined ? {} : body),
  del: (path) => request("DELETE", path),
};

// ---- helpers ----------------------------------------------------------------------------------

function isoDay(day) {
  return new Date(day * DAY * 1000).toISOString().slice(0, 10);
}

function dayNumber(iso) {
  return Math.floor(Date.parse(`${iso}T00:00:00Z`) / 1000 / DAY);
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function number(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-GB");
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function button(label, testId, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.testid = testId;
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function say(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function failed(what) {
  return (error) => {
    if (error.status !== 401) say(`${what}: ${error.message}`, true);
  };
}

function range() {
  const days = Number($("range").value);
  const today = state.summary ? dayNumber(state.summary.day) : Math.floor(Date.now() / 1000 / DAY);
  return { from: isoDay(today - days + 1), to: isoDay(today) };
}

// ---- sign in / out ----------------------------------------------------------------------------

function signOut(message) {
  state.token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  $("dashboard").hidden = true;
  $("login").hidden = false;
  const error = $("login-error");
  error.hidden = !message;
  error.textContent = message || "";
}

async function signIn(token) {
  state.token = token;
  try {
    state.summary = await api.get("/admin/stats/summary");
  } catch (error) {
    // 404: the token was good (it is checked first) but the analytics feature is off
    if (error.status !== 404) {
      if (error.status !== 401) signOut(error.status === 403 ? error.message : `Cannot sign in: ${error.message}`);
      return;
    }
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("login").hidden = true;
  $("dashboard").hidden = false;
  await refresh();
  searchUsers();
  searchGroups();
}

// ---- the dashboard ----------------------------------------------------------------------------

async function refresh() {
  try {
    state.summary = await api.get("/admin/stats/summary");
    const { from, to } = range();
    const query = `from=${from}&to=${to}`;
    const [daily, top, nodes] = await Promise.all([
      api.get(`/admin/stats/daily?${query}`),
      api.get(`/admin/stats/top-groups?${query}&limit=10`),
      api.get("/admin/stats/nodes"),
    ]);
    state.days = daily.days;
    showSummary(state.summary);
    showCharts(daily.days);
    showTopGroups(top);
    showNodes(nodes);
    if ($("status").classList.contains("error")) say(""); // a loading error is over
    // on a line of its own: a refresh must not wipe out what an action just reported
    $("updated").textContent =
      `Updated ${new Date().toISOString().slice(11, 19)} UTC (counters are written every ${state.summary.flush_interval} s)`;
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  } catch (error) {
    if (error.status === 404) say("The analytics feature is off ([features] enabled): no figures or charts.", true);
    else failed("Loading the dashboard")(error);
  }
}

function showSummary(s) {
  const set = (id, text) => {
    document.querySelector(`[data-testid="${id}"]`).textContent = text;
  };
  set("online-now", number(s.online_users));
  set("dau", number(s.dau));
  set("mau", number(s.mau));
  set("messages-today", number(s.today.messages));
  set("new-users-today", number(s.today.new_users));
  set("storage-used", bytes(s.totals.storage_bytes));
  set("storage-files", s.totals.storage_files === null ? "not sampled yet" : `${number(s.totals.storage_files)} files`);
}

function chart(key, title, series, data, options) {
  const box = $(`chart-${key}`);
  if (state.charts[key]) state.charts[key].destroy();
  box.textContent = "";
  const width = Math.max(280, box.clientWidth || 600);
  const opts = {
    title,
    width,
    height: 220,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    // half a day either side, so that the first and last bars are whole
    scales: { x: { time: true, range: (u, min, max) => [min - DAY / 2, max + DAY / 2] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{}, { size: 50 }],
    series: [{ label: "day", value: (u, v) => (v === null ? "–" : isoDay(Math.round(v / DAY))) }, ...series],
    ...options,
  };
  const instance = new uPlot(opts, data, box);
  state.charts[key] = instance;
  box.dataset.points = String(data[0].length);
  box.dataset.series = JSON.stringify(series.map((s) => s.label));
}

function showCharts(days) {
  const xs = days.map((d) => dayNumber(d.day) * DAY);
  const line = (label, i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 2, points: { show: true, size: 5 } });
  chart("active", "", [line("DAU", 0), line("MAU", 1)], [xs, days.map((d) => d.active_users), days.map((d) => d.mau)]);

  const types = [...new Set(days.flatMap((d) => Object.keys(d.messages_by_type)))].sort();
  const shown = types.length ? types : ["text"];
  chart(
    "messages",
    "",
    shown.map((t, i) => line(t, i)),
    [xs, ...shown.map((t) => days.map((d) => d.messages_by_type[t] || 0))],
  );

  const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
  chart(
    "new-users",
    "",
    [{ label: "new users", stroke: COLOURS[2], fill: "#1f9d5566", width: 1, paths: bars, points: { show: false } }],
    [xs, days.map((d) => d.new_users)],
  );
}

function showTopGroups(top) {
  $("top-range").textContent = `${top.from} – ${top.to}`;
  const body = document.querySelector('[data-testid="top-groups"] tbody');
  body.textContent = "";
  if (!top.groups.length) {
    const row = body.insertRow();
    cell(row, "no group messages in these days", "muted").colSpan = 3;
  }
  for (const g of top.groups) {
    const row = body.insertRow();
    row.dataset.testid = "top-group";
    row.dataset.groupId = String(g.group_id);
    cell(row, g.name || "(dissolved)");
    cell(row, String(g.group_id), "num");
    cell(row, number(g.messages), "num");
  }
}

function showNodes(info) {
  document.querySelector('[data-testid="storage-health"]').textContent = `storage ${info.storage}`;
  $("node-name").textContent = `node ${info.node}`;
  const body = document.querySelector('[data-testid="nodes"] tbody');
  body.textContent = "";
  for (const n of info.nodes) {
    const row = body.insertRow();
    row.dataset.testid = "node";
    row.dataset.node = n.name;
    cell(row, n.name + (n.this ? " (this)" : ""));
    const health = n.alive ? (n.this && info.storage !== "ok" ? "storage down" : "ok") : "down";
    cell(row, health, health === "ok" ? "ok" : "bad").dataset.testid = "node-health";
    cell(row, number(n.online_users), "num");
    cell(row, number(n.devices), "num");
    cell(row, n.started_at ? new Date(n.started_at * 1000).toISOString().slice(0, 16).replace("T", " ") : "–");
  }
}

async function exportCsv() {
  const { from, to } = range();
  try {
    const response = await fetch(`/admin/stats/daily.csv?from=${from}&to=${to}`, {
      headers: { Authorization: `Bearer ${state.token}` },
    });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    const blob = await response.blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `coffeechat-stats-${from}-${to}.csv`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (error) {
    failed("Export")(error);
  }
}

// ---- accounts ---------------------------------------------------------------------------------

async function searchUsers() {
  const q = encodeURIComponent($("user-q").value.trim());
  try {
    const found = await api.get(`/admin/users/search?q=${q}&limit=50`);
    const body = document.querySelector('[data-testid="users"] tbody');
    body.textContent = "";
    for (const u of found.users) body.appendChild(userRow(u));
  } catch (error) {
    failed("Searching accounts")(error);
  }
}

function userRow(u) {
  const row = document.createElement("tr");
  row.dataset.testid = "user-row";
  row.dataset.userId = String(u.user_id);
  cell(row, String(u.user_id), "num");
  cell(row, u.userName);
  cell(row, u.nickName);
  const stateText = u.deleted ? "deleted" : u.disabled ? "disabled" : "active";
  cell(row, stateText, u.deleted || u.disabled ? "bad" : "ok").dataset.testid = "user-state";
  const actions = cell(row, "");
  if (!u.deleted) {
    const path = `/admin/users/${u.user_id}`;
    const toggle = u.disabled ? "enable" : "disable";
    actions.append(
      button(u.disabled ? "Enable" : "Disable", `user-${toggle}`, () => userAction(u, toggle, () => api.post(`${path}/${toggle}`))),
      button("Kick", "user-kick", () => userAction(u, "kick", () => api.post(`${path}/kick`))),
      button("Delete", "user-delete", () => {
        if (confirm(`Delete ${u.userName} (id ${u.user_id}) and their data? This cannot be undone.`)) {
          userAction(u, "delete", () => api.del(path));
        }
      }, "danger"),
    );
  }
  return row;
}

async function userAction(u, what, call) {
  try {
    const answer = await call();
    const gone = answer.disconnected !== undefined ? `, ${answer.disconnected} device(s) disconnected` : "";
    say(`${u.userName}: ${what} done${gone}`);
    const fresh = await api.get(`/admin/users/${u.user_id}`);
    const row = document.querySelector(`[data-testid="user-row"][data-user-id="${u.user_id}"]`);
    if (row) row.replaceWith(userRow(fresh.user));
    refresh();
  } catch (error) {
    failed(`${u.userName}: ${what}`)(error);
  }
}

// ---- groups -----------------------------------------------------------------------------------

async function searchGroups() {
  const q = encodeURIComponent($("group-q").value.trim());
  try {
    const found = await api.get(`/admin/groups?q=${q}&limit=50`);
    const body = document.querySelector('[data-testid="groups"] tbody');
    body.textContent = "";
    for (const g of found.groups) {
      const row = body.insertRow();
      row.dataset.testid = "group-row";
      row.dataset.groupId = String(g.group_id);
      cell(row, String(g.group_id), "num");
      cell(row, g.name);
      cell(row, String(g.ownerId), "num").dataset.testid = "group-owner";
      cell(row, number(g.memberCount), "num");
      cell(row, "").append(
        button("Owner…", "group-owner-open", () => openGroup(g.group_id)),
        button("Dissolve", "group-dissolve", () => dissolve(g), "danger"),
      );
    }
  } catch (error) {
    failed("Listing groups")(error);
  }
}

async function openGroup(groupId) {
  try {
    const { group, members } = await api.get(`/admin/groups/${groupId}`);
    $("group-detail-title").textContent = `${group.name} (id ${group.group_id}), owner ${group.ownerId}`;
    const select = $("new-owner");
    select.textContent = "";
    for (const m of members.filter((m) => m.user_id !== group.ownerId)) {
      const option = document.createElement("option");
      option.value = String(m.user_id);
      option.textContent = `${m.nickName || "?"} (id ${m.user_id})`;
      select.appendChild(option);
    }
    $("change-owner").disabled = select.options.length === 0;
    $("group-detail").dataset.groupId = String(groupId);
    $("group-detail").hidden = false;
  } catch (error) {
    failed("Opening the group")(error);
  }
}

async function changeOwner() {
  const groupId = $("group-detail").dataset.groupId;
  const userId = Number($("new-owner").value);
  try {
    await api.post(`/admin/groups/${groupId}/owner`, { userId });
    say(`Group ${groupId}: owner is now ${userId}`);
    $("group-detail").hidden = true;
    searchGroups();
  } catch (error) {
    failed(`Group ${groupId}: change owner`)(error);
  }
}

async function dissolve(g) {
  if (!confirm(`Dissolve ${g.name} (id ${g.group_id})? Every member loses it.`)) return;
  try {
    await api.del(`/admin/groups/${g.group_id}`);
    say(`Group ${g.name} dissolved`);
    searchGroups();
    refresh();
  } catch (error) {
    failed(`Group ${g.name}: dissolve`)(error);
  }
}

// ---- wiring -----------------------------------------------------------------------------------

function start() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value.trim());
  });
  $("logout").addEventListener("click", () => signOut(""));
  $("refresh").addEventListener("click", refresh);
  $("range").addEventListener("change", refresh);
  $("export").addEventListener("click", exportCsv);
  $("user-search").addEventListener("submit", (event) => {
    event.preventDefault();
    searchUsers();
  });
  $("group-search").addEventListener("submit", (event) => {
    event.preventDefault();
    searchGroups();
  });
  $("change-owner").addEventListener("click", changeOwner);
  $("close-detail").addEventListener("click", () => {
    $("group-detail").hidden = true;
  });
  window.addEventListener("resize", () => state.days.length && showCharts(state.days));
  setInterval(() => !$("dashboard").hidden && !document.hidden && refresh(), 60_000);
  if (state.token) signIn(state.token);
}

// Modules run after deferred classic scripts, so uPlot is there by now.
start();
