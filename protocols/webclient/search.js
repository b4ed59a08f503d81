// Message search in the sidebar (docs/search.md): a search box above the conversation list; while
// it holds a query the list gives way to the results, newest first, each with its conversation,
// sender, time and a snippet whose matched words are marked. Clicking a result opens its
// conversation, loads older pages until it holds that message (up to 20 pages), scrolls to it
// and flashes it.
//
// Everything from the server goes into the page as text (textContent, createElement), never markup:
// the highlights are built as <mark> elements around slices of the snippet.

const SEARCH_DELAY = 300; // ms after the last keystroke before searching
const PAGE = 20;
const MAX_QUERY = 100; // the server's default search.max_query_chars

let deps = null; // what app.js lends us (initSearch)
let timer = null;
let current = { query: "", cursor: "", hits: [], more: false, busy: false, error: "", token: 0 };

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

function el(tag, { cls, testid, text } = {}, ...children) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (testid) node.dataset.testid = testid;
  if (text !== undefined) node.textContent = text;
  node.append(...children);
  return node;
}

/** The snippet with its highlights (code point ranges, as the server counts) as <mark>s. */
export function highlighted(snippet, highlights) {
  const chars = Array.from(snippet || "");
  const ranges = (highlights || [])
    .map((r) => [Number(r.start || 0), Number(r.length || 0)])
    .filter(([, n]) => n > 0)
    .sort((a, b) => a[0] - b[0]);
  const out = [];
  let at = 0;
  for (const [start, length] of ranges) {
    if (start < at || start >= chars.length) continue;
    if (start > at) out.push(document.createTextNode(chars.slice(at, start).join("")));
    out.push(el("mark", { testid: "search-highlight", text: chars.slice(start, start + length).join("") }));
    at = start + length;
  }
  if (at < chars.length) out.push(document.createTextNode(chars.slice(at).join("")));
  return out;
}

function searching() {
  return current.query.trim() !== "";
}

function render() {
  const sidebar = $("search-input").closest(".sidebar");
  sidebar.classList.toggle("searching", searching());
  $("search-panel").hidden = !searching();
  $("search-clear").hidden = !searching();
  const list = $("search-results");
  list.replaceChildren(
    ...current.hits.map((hit) => {
      const item = el(
        "li",
        { cls: "search-hit", testid: "search-hit" },
        el(
          "div",
          { cls: "search-hit-head" },
          el("span", { cls: "search-hit-chat", testid: "search-hit-chat", text: hit.chat }),
          el("span", { cls: "search-hit-time", text: hit.time }),
        ),
        el("div", { cls: "search-hit-from", testid: "search-hit-from", text: hit.from }),
        el("div", { cls: "search-hit-snippet", testid: "search-hit-snippet" }, ...highlighted(hit.snippet, hit.highlights)),
      );
      item.tabIndex = 0;
      item.dataset.chatKey = hit.key;
      item.dataset.seq = String(hit.seq);
      const open = () => openHit(hit);
      item.addEventListener("click", open);
      item.addEventListener("keydown", (event) => {
        if (event.key === "Enter") open();
      });
      return item;
    }),
  );
  const status = $("search-status");
  status.textContent = current.error
    ? current.error
    : current.busy && !current.hits.length
      ? "Searching…"
      : !current.hits.length
        ? "No messages found."
        : "";
  status.hidden = status.textContent === "";
  $("search-more").hidden = !current.more || current.busy;
}

function describe(hit) {
  const type = deps.num(hit.sessionType);
  const sessionId = deps.num(hit.sessionId);
  const msg = hit.msg || {};
  return {
    key: deps.keyOf(type, sessionId),
    type,
    sessionId,
    seq: deps.num(msg.serverMsgId),
    chat: deps.chatLabel(type, sessionId),
    from: deps.senderLabel(deps.num(msg.fromUserId)),
    time: deps.formatTime(deps.num(msg.createTime), true),
    snippet: hit.snippet || "",
    highlights: hit.highlights || [],
  };
}

const REASONS = {
  10070: "Type a word to search for.",
  10071: "That search is too long.",
};

async function run(more = false) {
  const query = current.query.trim();
  if (!query) return;
  const token = ++current.token;
  current.busy = true;
  current.error = "";
  render();
  try {
    if (!deps.online()) throw new Error("offline");
    const rsp = await deps.request("MSG_SEARCH_REQ", { query, limit: PAGE, cursor: more ? current.cursor : "" });
    if (token !== current.token) return; // a newer search replaced this one
    const code = deps.num(rsp.resultCode);
    if (code !== 200) {
      current.hits = more ? current.hits : [];
      current.more = false;
      current.error = REASONS[code] || rsp.resultString || `Search failed (${code}).`;
    } else {
      const hits = (rsp.hits || []).map(describe);
      current.hits = more ? current.hits.concat(hits) : hits;
      current.cursor = rsp.nextCursor || "";
      current.more = Boolean(rsp.hasMore);
    }
  } catch (e) {
    if (token !== current.token) return;
    current.error = e.message === "offline" ? "Search needs a connection." : "Search failed. Try again.";
  } finally {
    if (token === current.token) {
      current.busy = false;
      render();
    }
  }
}

async function openHit(hit) {
  deps.openChat(hit.type, hit.sessionId);
  // Older pages until the message is held (a bounded number), then scroll to it and flash it.
  try {
    await deps.loadUntil(hit.type, hit.sessionId, hit.seq);
  } catch {
    // offline or refused: the conversation is open all the same
  }
  let tries = 0;
  const find = () => {
    const node = $("message-list")?.querySelector(`li[data-seq="${hit.seq}"]`);
    if (node) {
      node.scrollIntoView({ block: "center" });
      node.classList.add("search-flash");
      setTimeout(() => node.classList.remove("search-flash"), 2000);
    } else if (++tries < 20) {
      setTimeout(find, 100);
    }
  };
  find();
}

export function clearSearch() {
  clearTimeout(timer);
  current = { query: "", cursor: "", hits: [], more: false, busy: false, error: "", token: current.token + 1 };
  $("search-input").value = "";
  render();
}

/** Wire the search box. ``app`` lends: request(name, body), online(), openChat(type, id),
 * loadUntil(type, id, seq) (older pages until that message is held), keyOf(type, id), chatLabel(type, id), senderLabel(userId), formatTime(s, withDate), num(v). */
export function initSearch(app) {
  deps = app;
  const input = $("search-input");
  input.maxLength = MAX_QUERY;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    current.query = input.value;
    current.cursor = "";
    current.hits = [];
    current.more = false;
    current.error = "";
    current.token++;
    render();
    if (searching()) timer = setTimeout(() => run(false), SEARCH_DELAY);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      clearTimeout(timer);
      run(false);
    } else if (event.key === "Escape") {
      clearSearch();
    }
  });
  $("search-clear").addEventListener("click", clearSearch);
  $("search-more").addEventListener("click", () => run(true));
  render();
}
