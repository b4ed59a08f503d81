// Offline push in the web client (docs/push.md): once the user allows notifications, the page
// registers the service worker (sw.js), subscribes to Web Push with the server's VAPID key
// (GET /push/vapid) and registers the subscription (PUSH_REGISTER_REQ, platform "webpush") on
// every connection (a target is bound to the connection that registered it).  A hidden tab tells
// the server it is in the background (APP_STATE_REQ), so it is notified like an offline device.
// The profile panel gets a small control: notifications on, and whether they show the text.
//
// app.js calls initPush once (with request, online and openChat) and pushOnline after each connect.
// A clicked notification opens its conversation (sw.js tells the page, or opens it with #open=).

const push = {
  available: "serviceWorker" in navigator && "PushManager" in window && "Notification" in window,
  registered: false,
  showPreview: true,
  status: "",
};
let ctx = null; // {request, online}
let controls = null;
let pendingOpen = null; // a notification's conversation, opened at the first connect

function base64UrlToBytes(text) {
  const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function setStatus(text) {
  push.status = text;
  if (controls) controls.status.textContent = text;
}

async function subscription() {
  const registration = await navigator.serviceWorker.register("/app/sw.js", { scope: "/" });
  await navigator.serviceWorker.ready;
  const existing = await registration.pushManager.getSubscription();
  if (existing) return existing;
  const answer = await (await fetch("/push/vapid")).json();
  if (answer.error_code !== 200 || !answer.public_key) throw new Error("this server does not send Web Push");
  return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(answer.public_key) });
}

/** Register this browser's subscription for this connection (when notifications are allowed). */
export async function registerPush() {
  if (!push.available || Notification.permission !== "granted" || !ctx?.online()) return false;
  try {
    const json = (await subscription()).toJSON();
    await ctx.request("PUSH_REGISTER_REQ", {
      platform: "webpush",
      token: json.endpoint,
      locale: navigator.language || "",
      extra: { p256dh: json.keys.p256dh, auth: json.keys.auth },
    });
    push.registered = true;
    setStatus("Notifications are on");
    return true;
  } catch (error) {
    push.registered = false;
    setStatus(`Notifications are unavailable: ${error.message || error}`);
    return false;
  }
}

async function loadSettings() {
  const rsp = await ctx.request("PUSH_SETTINGS_REQ", { set: false });
  push.showPreview = rsp.settings ? Boolean(rsp.settings.showPreview) : true;
  if (controls) controls.preview.checked = push.showPreview;
}

/** After each connect: the settings, the registration, and the tab's state. */
export async function pushOnline() {
  if (!ctx) return;
  pushOpened();
  await loadSettings().catch(() => {});
  await registerPush();
  if (document.visibilityState !== "visible") tellState();
}

function tellState() {
  if (!ctx?.online() || !push.registered) return;
  ctx.request("APP_STATE_REQ", { background: document.visibilityState !== "visible" }).catch(() => {});
}

async function enable() {
  if (!push.available) return setStatus("This browser cannot receive notifications");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return setStatus("Notifications are blocked in this browser");
  await registerPush();
}

async function setPreview(show) {
  try {
    const rsp = await ctx.request("PUSH_SETTINGS_REQ", { set: true, settings: { showPreview: show, showSender: true } });
    push.showPreview = Boolean(rsp.settings?.showPreview);
    setStatus(show ? "Notifications show the message" : "Notifications say only \u201cNew message\u201d");
  } catch (error) {
    controls.preview.checked = push.showPreview;
    setStatus(`Could not save: ${error.message || error}`);
  }
}

function buildControls() {
  const anchor = document.querySelector('[data-testid="block-list-button"]');
  if (!anchor) return;
  const box = document.createElement("fieldset");
  box.className = "push-settings";
  box.dataset.testid = "push-settings";
  const legend = document.createElement("legend");
  legend.textContent = "Notifications";
  const enableButton = document.createElement("button");
  enableButton.type = "button";
  enableButton.className = "link-button";
  enableButton.dataset.testid = "push-enable";
  enableButton.textContent = "Turn on notifications";
  enableButton.addEventListener("click", () => enable());
  const label = document.createElement("label");
  label.className = "push-preview";
  const preview = document.createElement("input");
  preview.type = "checkbox";
  preview.checked = push.showPreview;
  preview.dataset.testid = "push-preview";
  preview.addEventListener("change", () => setPreview(preview.checked));
  label.append(preview, " Show the message text");
  const status = document.createElement("p");
  status.className = "muted";
  status.dataset.testid = "push-status";
  status.setAttribute("role", "status");
  box.append(legend, enableButton, label, status);
  anchor.before(box);
  controls = { preview, status };
}

/** At logout: forget this connection's targets on the server (at most 3 s) and the browser's
 * subscription, so that the next user of this browser does not get the last one's notifications. */
export async function unregisterPush() {
  if (!push.registered || !ctx?.online()) return;
  push.registered = false;
  const timeout = new Promise((resolve) => setTimeout(resolve, 3000));
  await Promise.race([ctx.request("PUSH_UNREGISTER_REQ", {}).catch(() => {}), timeout]);
  try {
    const registration = await navigator.serviceWorker.getRegistration("/");
    const sub = await registration?.pushManager.getSubscription();
    await sub?.unsubscribe();
  } catch {
    // the server forgot it already: a stale subscription only gets nothing
  }
  setStatus("");
}

/** The conversation a clicked notification names: {sessionType, sessionId} from the service
 * worker's message, or from "#open=<type>:<id>" when it had to open a new window. */
function openFromNotification(sessionType, sessionId) {
  const type = Number(sessionType);
  const id = Number(sessionId);
  if ((type === 1 || type === 2) && Number.isSafeInteger(id) && id > 0) ctx.openChat?.(type, id);
}

export function initPush(context) {
  ctx = context;
  buildControls();
  document.addEventListener("visibilitychange", tellState);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data?.type === "push-open") openFromNotification(event.data.sessionType, event.data.sessionId);
    });
  }
  const wanted = /^#open=(\d+):(\d+)$/.exec(location.hash);
  if (wanted) {
    history.replaceState(null, "", location.pathname + location.search);
    pendingOpen = [wanted[1], wanted[2]];
  }
}

/** Open the chat a notification that opened this page named (once, at the first connect). */
function pushOpened() {
  if (!pendingOpen) return;
  const [type, id] = pendingOpen;
  pendingOpen = null;
  openFromNotification(type, id);
}
