// The CoffeeChat service worker (docs/push.md): shows the Web Push notifications the server sends
// while this browser has no page open or the page is in the background, and opens the chat when
// one is clicked.  The payload is the server's JSON: {title, body, badge, tag, thread_id, data}.
// Served from /app/sw.js with Service-Worker-Allowed: / so that it is registered for the site.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  const shown = self.registration.showNotification(String(data.title || "CoffeeChat"), {
    body: String(data.body || ""),
    tag: data.tag ? String(data.tag) : undefined, // one per conversation: a newer one replaces it
    renotify: Boolean(data.tag),
    icon: "/app/icon.svg",
    data: { ...(data.data || {}), threadId: data.thread_id || "" },
  });
  const badge = Number(data.badge);
  const badged = self.navigator.setAppBadge && Number.isFinite(badge) ? self.navigator.setAppBadge(badge).catch(() => {}) : null;
  event.waitUntil(Promise.all([shown, badged]));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      for (const client of windows) {
        client.postMessage({ type: "push-open", sessionType: data.session_type, sessionId: data.session_id });
        if ("focus" in client) return client.focus();
      }
      const open = data.session_type && data.session_id ? `#open=${data.session_type}:${data.session_id}` : "";
      return self.clients.openWindow(`/${open}`);
    }),
  );
});
