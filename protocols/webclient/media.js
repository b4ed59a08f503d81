// Files and media in the web client (docs/media.md): the composer's attach button uploads a file
// (POST /files with the login token) and sends it as an IMAGE, AUDIO, VIDEO or FILE message
// whose content names the unsigned /files/<id> URL; the record button records a voice note with
// MediaRecorder.  Bubbles of those messages show a thumbnail (a tap opens the reduced copy), a
// player, or the file's name and size with a download link.  The page reads files through signed
// URLs (POST /files/sign, batched, cached until shortly before they expire), so <img>/<audio>
// need no header and a CDN can cache them.
//
// app.js calls initMedia once, parseMedia when it builds a message, and decorateMedia for each
// bubble it draws.

import { base64ToText, num } from "./protocol.js";
import { el } from "./app.js";

export const FILE = 2; // kCIM_MSG_TYPE_FILE
export const IMAGE = 3; // kCIM_MSG_TYPE_IMAGE
export const AUDIO = 4; // kCIM_MSG_TYPE_AUDIO
export const VIDEO = 5; // kCIM_MSG_TYPE_VIDEO
const MEDIA_TYPES = new Set([FILE, IMAGE, AUDIO, VIDEO]);
const TYPE_OF_KIND = { image: IMAGE, audio: AUDIO, video: VIDEO, file: FILE };
const SIGN_BATCH = 100; // the server's limit per POST /files/sign
const EXPIRY_MARGIN = 120; // seconds: a signed URL this close to its expiry is asked for again
const MAX_RECORDING = 5 * 60 * 1000; // a voice note stops by itself after five minutes

let ctx = null; // {token, openChat, send, changed}
const signedUrls = new Map(); // file id -> {url, thumb_url, reduced_url, poster_url, expires}
const waiting = new Map(); // file id -> [resolve] while a sign request is on its way
let signTimer = 0;
const recorder = { media: null, started: 0, chunks: [], timer: 0 };

/** A file id from the unsigned URL of a message ("/files/<id>", absolute or not), else "". */
function fileIdOf(content) {
  if (typeof content?.fileId === "string" && /^[A-Za-z0-9_-]{6,64}$/.test(content.fileId)) return content.fileId;
  const match = /(?:^|\/)files\/([A-Za-z0-9_-]{6,64})(?:[/?#]|$)/.exec(typeof content?.url === "string" ? content.url : "");
  return match ? match[1] : "";
}

/** The JSON content of an image, voice, video or file message ({url, displayName, ...}), else null. */
export function parseMedia(type, data) {
  if (!MEDIA_TYPES.has(type) || !data) return null;
  try {
    const content = JSON.parse(base64ToText(data));
    if (!content || typeof content !== "object" || Array.isArray(content)) return null;
    return { ...content, fileId: fileIdOf(content) };
  } catch {
    return null; // not JSON: the bubble keeps its "[Photo]" text
  }
}

/** "1.2 MB". */
export function formatSize(bytes) {
  const n = num(bytes);
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function formatDuration(seconds) {
  const s = Math.max(0, Math.round(num(seconds)));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// ---- signed URLs ----------------------------------------------------------------------------

function fresh(id) {
  const urls = signedUrls.get(id);
  return urls && urls.expires - Date.now() / 1000 > EXPIRY_MARGIN ? urls : null;
}

/** The signed URLs of a file, from the cache or the next batched POST /files/sign; null if refused. */
function signed(id) {
  const known = fresh(id);
  if (known) return Promise.resolve(known);
  return new Promise((resolve) => {
    const list = waiting.get(id) || [];
    list.push(resolve);
    waiting.set(id, list);
    if (!signTimer) signTimer = setTimeout(flushSign, 0);
  });
}

async function flushSign() {
  signTimer = 0;
  const ids = [...waiting.keys()].slice(0, SIGN_BATCH);
  if (waiting.size > ids.length) signTimer = setTimeout(flushSign, 0);
  let answer = {};
  try {
    const response = await fetch(new URL("files/sign", document.baseURI), {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${ctx.token()}` },
      body: JSON.stringify({ ids }),
    });
    answer = await response.json();
  } catch {
    // offline: the bubbles say the file is unavailable; the next redraw asks again
  }
  for (const id of ids) {
    const urls = answer.files?.[id] || null;
    if (urls) signedUrls.set(id, urls);
    for (const resolve of waiting.get(id) || []) resolve(urls);
    waiting.delete(id);
  }
}

// ---- sending --------------------------------------------------------------------------------

/** Upload one file; its FileInfo (docs/media.md).  ``duration``: seconds, for a voice note;
 * ``progress(fraction)`` as it goes (XMLHttpRequest: fetch reports no upload progress). */
function upload(file, duration = 0, progress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", new URL("files", document.baseURI));
    xhr.setRequestHeader("Authorization", `Bearer ${ctx.token()}`);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.setRequestHeader("X-File-Name", encodeURIComponent(file.name || "file"));
    if (duration > 0) xhr.setRequestHeader("X-Duration", String(Math.round(duration * 10) / 10));
    xhr.upload.addEventListener("progress", (event) => event.lengthComputable && progress(event.loaded / event.total));
    xhr.addEventListener("error", () => reject(new Error("the upload failed (no connection)")));
    xhr.addEventListener("load", () => {
      let answer = {};
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: a proxy's error page
      }
      if (xhr.status !== 200 || answer.error_code !== 0 || !answer.file) {
        reject(new Error(answer.error_msg || `the upload failed (HTTP ${xhr.status})`));
        return;
      }
      if (answer.file.signed) signedUrls.set(answer.file.id, answer.file.signed);
      resolve(answer.file);
    });
    xhr.send(file);
  });
}

/** The message content the CIM v1 conventions give each kind, naming the unsigned URLs. */
export function contentFor(info) {
  const dot = info.name.lastIndexOf(".");
  const common = {
    url: info.url,
    size: info.size,
    displayName: info.name,
    fileExtension: dot > 0 ? info.name.slice(dot + 1).toLowerCase() : "",
    md5: info.md5,
    fileId: info.id,
  };
  const shape = { width: info.width, height: info.height };
  if (info.kind === "image") {
    return { ...common, ...shape, thumbUrl: info.thumb_url, reducedUrl: info.reduced_url, blurhash: info.blurhash };
  }
  if (info.kind === "video") {
    const poster = info.poster_url;
    return { ...common, ...shape, thumbUrl: poster, posterUrl: poster, blurhash: info.blurhash, duration: info.duration };
  }
  if (info.kind === "audio") return { ...common, duration: info.duration };
  return common;
}

function setStatus(text) {
  const status = document.querySelector('[data-testid="media-status"]');
  if (status) {
    status.textContent = text;
    status.hidden = !text;
  }
}

async function sendFile(file, duration = 0) {
  const chat = ctx.openChat();
  if (!chat) return;
  setStatus(`Uploading ${file.name}…`);
  try {
    const info = await upload(file, duration, (part) => setStatus(`Uploading ${file.name}… ${Math.floor(part * 100)}%`));
    ctx.send(chat, TYPE_OF_KIND[info.kind] || FILE, JSON.stringify(contentFor(info)));
    setStatus("");
  } catch (error) {
    setStatus(`${file.name}: ${error.message || error}`);
  }
}

async function toggleRecording(button) {
  if (recorder.media) {
    recorder.media.stop();
    return;
  }
  if (!navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) {
    setStatus("This browser cannot record voice notes.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    setStatus(`No microphone: ${error.message || error}`);
    return;
  }
  const media = new MediaRecorder(stream);
  recorder.media = media;
  recorder.chunks = [];
  recorder.started = Date.now();
  media.addEventListener("dataavailable", (event) => {
    if (event.data.size) recorder.chunks.push(event.data);
  });
  media.addEventListener("stop", () => {
    clearTimeout(recorder.timer);
    for (const track of stream.getTracks()) track.stop();
    const duration = (Date.now() - recorder.started) / 1000;
    const type = (media.mimeType || "audio/webm").split(";")[0];
    const extension = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
    const blob = new Blob(recorder.chunks, { type });
    recorder.media = null;
    button.classList.remove("recording");
    button.setAttribute("aria-pressed", "false");
    setStatus("");
    if (blob.size) sendFile(new File([blob], `voice-${Date.now()}.${extension}`, { type }), duration);
  });
  media.start(1000);
  recorder.timer = setTimeout(() => media.state === "recording" && media.stop(), MAX_RECORDING);
  button.classList.add("recording");
  button.setAttribute("aria-pressed", "true");
  setStatus("Recording… tap the microphone again to send.");
}

// ---- showing --------------------------------------------------------------------------------

function openViewer(urls, content) {
  document.querySelector(".media-viewer")?.remove();
  const image = el("img", {
    testid: "media-viewer-image",
    attrs: { src: urls.reduced_url || urls.url, alt: content.displayName || "Photo" },
  });
  const original = el("a", {
    cls: "media-original",
    testid: "media-original",
    text: "Open the original",
    attrs: { href: urls.url, target: "_blank", rel: "noopener" },
  });
  const viewer = el(
    "div",
    { cls: "media-viewer", testid: "media-viewer", attrs: { role: "dialog", "aria-label": "Photo" } },
    image,
    original,
  );
  viewer.addEventListener("click", (event) => {
    if (event.target !== original) viewer.remove();
  });
  document.addEventListener("keydown", function close(event) {
    if (event.key === "Escape") {
      viewer.remove();
      document.removeEventListener("keydown", close);
    }
  });
  document.body.append(viewer);
}

// Blurhash (https://blurha.sh), decoded into a small canvas: the photo's colours while it loads.
const B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

function decode83(text) {
  let value = 0;
  for (const c of text) {
    const digit = B83.indexOf(c);
    if (digit < 0) throw new Error("not base 83");
    value = value * 83 + digit;
  }
  return value;
}

const toLinear = (v) => {
  const x = v / 255;
  return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
};
const toSrgb = (v) => {
  const x = Math.max(0, Math.min(1, v));
  return Math.round((x <= 0.0031308 ? x * 12.92 : 1.055 * x ** (1 / 2.4) - 0.055) * 255);
};
const signPow = (v, e) => Math.sign(v) * Math.abs(v) ** e;

/** A data: URL of the blurhash painted ``width`` x ``height``, or "" when it is not one. */
export function blurhashImage(hash, width = 32, height = 32) {
  try {
    if (typeof hash !== "string" || hash.length < 6) return "";
    const size = decode83(hash[0]);
    const nx = (size % 9) + 1;
    const ny = Math.floor(size / 9) + 1;
    if (hash.length !== 4 + 2 * nx * ny) return "";
    const maximum = (decode83(hash[1]) + 1) / 166;
    const dc = decode83(hash.slice(2, 6));
    const colours = [[toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]];
    for (let i = 1; i < nx * ny; i++) {
      const ac = decode83(hash.slice(4 + i * 2, 6 + i * 2));
      const q = [Math.floor(ac / 361), Math.floor(ac / 19) % 19, ac % 19];
      colours.push(q.map((v) => signPow((v - 9) / 9, 2) * maximum));
    }
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const paint = canvas.getContext("2d");
    const pixels = paint.createImageData(width, height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const rgb = [0, 0, 0];
        for (let j = 0; j < ny; j++) {
          for (let i = 0; i < nx; i++) {
            const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
            const c = colours[i + j * nx];
            rgb[0] += c[0] * basis;
            rgb[1] += c[1] * basis;
            rgb[2] += c[2] * basis;
          }
        }
        const at = 4 * (x + y * width);
        pixels.data.set([toSrgb(rgb[0]), toSrgb(rgb[1]), toSrgb(rgb[2]), 255], at);
      }
    }
    paint.putImageData(pixels, 0, 0);
    return canvas.toDataURL();
  } catch {
    return "";
  }
}

/** Point ``apply`` at a file's signed URLs, and once more at fresh ones if ``node`` fails to load
 * (the signature expired while the page stayed open). */
function withSigned(card, node, fileId, apply) {
  let retried = false;
  node.addEventListener("error", () => {
    if (retried) return unavailable(card);
    retried = true;
    signedUrls.delete(fileId);
    signed(fileId).then((urls) => (urls ? apply(urls) : unavailable(card)));
  });
  signed(fileId).then((urls) => (urls ? apply(urls) : unavailable(card)));
}

/** A message naming a file elsewhere (an original client's upload): a link, nothing loaded. */
function linkCard(content) {
  const url = typeof content.url === "string" ? content.url : "";
  const safe = /^https?:\/\//i.test(url);
  const link = el("a", {
    cls: "media-file-name",
    testid: "media-link",
    text: content.displayName || url || "Attachment",
    attrs: safe ? { href: url, target: "_blank", rel: "noopener noreferrer" } : {},
  });
  return el("div", { cls: "media-card media-file", testid: "media-card" }, link);
}

function unavailable(card) {
  card.classList.add("unavailable");
  card.querySelector(".media-note")?.replaceChildren("This file is no longer available.");
}

function imageCard(content) {
  const width = num(content.width);
  const height = num(content.height);
  const image = el("img", { testid: "media-image", attrs: { alt: content.displayName || "Photo" } });
  if (width && height) {
    // room reserved before it loads, so the list does not jump
    const scale = Math.min(1, 240 / Math.max(width, height));
    image.width = Math.round(width * scale);
    image.height = Math.round(height * scale);
  }
  const placeholder = blurhashImage(content.blurhash);
  if (placeholder) image.style.backgroundImage = `url("${placeholder}")`;
  const card = el(
    "button",
    { cls: "media-card media-image", testid: "media-card", attrs: { type: "button", "aria-label": "Open photo" } },
    image,
    el("span", { cls: "media-note" }),
  );
  let current = null;
  card.addEventListener("click", () => current && openViewer(current, content));
  image.addEventListener("load", () => image.classList.add("loaded"));
  withSigned(card, image, content.fileId, (urls) => {
    current = urls;
    image.src = urls.thumb_url || urls.reduced_url || urls.url;
  });
  return card;
}

function playerCard(content, video) {
  const player = el(video ? "video" : "audio", {
    testid: video ? "media-video" : "media-audio",
    attrs: { controls: "", preload: "metadata" },
  });
  const note = el("span", {
    cls: "media-note",
    text: content.duration ? formatDuration(content.duration) : video ? "Video" : "Voice message",
  });
  const card = el("div", { cls: `media-card ${video ? "media-video" : "media-audio"}`, testid: "media-card" }, player, note);
  withSigned(card, player, content.fileId, (urls) => {
    if (video && urls.poster_url) player.poster = urls.poster_url;
    player.src = urls.url;
  });
  return card;
}

function fileCard(content) {
  const link = el("a", {
    cls: "media-file-name",
    testid: "media-file-link",
    text: content.displayName || "File",
    attrs: { download: content.displayName || "" },
  });
  const card = el(
    "div",
    { cls: "media-card media-file", testid: "media-card" },
    link,
    el("span", { cls: "media-note", testid: "media-file-size", text: content.size ? formatSize(content.size) : "" }),
  );
  signed(content.fileId).then((urls) => {
    if (!urls) return unavailable(card);
    link.href = urls.url;
  });
  return card;
}

/** Add (once) the card of an image, voice, video or file message to its bubble. */
export function decorateMedia(message, bubble) {
  const content = message.media;
  if (!content || !MEDIA_TYPES.has(message.type)) {
    bubble.querySelector(".media-card")?.remove();
    return;
  }
  if (bubble.querySelector(".media-card")) return;
  const text = bubble.querySelector(".text");
  if (text) text.hidden = true;
  let card;
  if (!content.fileId) card = linkCard(content);
  else if (message.type === IMAGE) card = imageCard(content);
  else if (message.type === AUDIO || message.type === VIDEO) card = playerCard(content, message.type === VIDEO);
  else card = fileCard(content);
  bubble.insertBefore(card, text ? text.nextSibling : null);
}

/** Wire the composer's attach and record buttons.  ``options``: {token() → the login token,
 * openChat() → the open chat or null, send(chat, msgType, content), changed()}. */
export function initMedia(options) {
  ctx = options;
  const input = document.querySelector('[data-testid="attach-input"]');
  const attach = document.querySelector('[data-testid="attach-button"]');
  const record = document.querySelector('[data-testid="record-button"]');
  attach?.addEventListener("click", () => input.click());
  input?.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    sendAll(files);
  });
  record?.addEventListener("click", () => toggleRecording(record));
  // A pasted screenshot, or files dropped on the chat, are sent like picked ones.
  const sendAll = async (files) => {
    for (const file of files) await sendFile(file);
  };
  document.querySelector('[data-testid="composer-input"]')?.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (!files.length) return;
    event.preventDefault();
    sendAll(files);
  });
  const list = document.querySelector('[data-testid="message-list"]');
  list?.addEventListener("dragover", (event) => {
    if ([...(event.dataTransfer?.types || [])].includes("Files")) event.preventDefault();
  });
  list?.addEventListener("drop", (event) => {
    const files = [...(event.dataTransfer?.files || [])];
    if (!files.length) return;
    event.preventDefault();
    sendAll(files);
  });
  if (record && (!navigator.mediaDevices?.getUserMedia || !window.MediaRecorder)) record.hidden = true;
}
