// Voice and video calls in the web client (docs/calls.md, docs/webclient.md): WebRTC between the
// two browsers, the media peer to peer (or through the TURN relay of GET /api/ice-servers), the
// signalling over the CIM connection with CIM v1's VOIP commands:
//
//   caller                         server                          callee's devices
//   VOIP_INVITE_REQ {sdp: offer} →
//                                ← VOIP_INVITE_REPLY 100 {channelInfo}: the call's id from now on
//                                  VOIP_INVITE_REQ (push) {sdp, fromNickName, ringTimeout} →
//                                ← VOIP_INVITE_REPLY 180 (ringing), then 200 {sdp: answer}
//   VOIP_INVITE_REPLY_ACK →
//   VOIP_SIGNAL_REQ "candidate" ↔ VOIP_SIGNAL_NOTIFY (trickle ICE, both ways; "offer"/"answer" for
//                                  an ICE restart)
//   VOIP_HEARTBEAT every 30 s while the call lasts (the server drops a silent party: DROPPED)
//   VOIP_BYE_REQ (END / CANCEL / REJECT) → VOIP_BYE_RSP; the other side gets VOIP_BYE_NOTIFY,
//   which also tells NO_ANSWER, BUSY, DROPPED and ANSWERED_ELSEWHERE.
//
// Every call ends as an AVCHAT message (msg_type 10, JSON {hangupUserId, hangupReason, timeLen,
// callType, result}) stored by the server in the conversation: parseCall/callText/decorateCall
// turn it into the history line ("Missed voice call", "Video call, 2:03").
//
// One call at a time; a group call's invite (from another client) is answered peer to peer with
// its caller only (docs/calls.md: a mesh or an SFU is the app's). Local ICE candidates wait until
// the other side has the session description (the caller's until the 200 OK, the callee's until
// its answer is sent), so none is lost to a device that is still ringing. Everything from users
// goes in by textContent.
//
// The call panel exposes its state for tests and styles: data-call-state (starting | calling |
// ringing | incoming | connecting | active | ended), data-ice-state (pc.iceConnectionState),
// data-call-type (voice | video), data-role (caller | callee), data-end-reason.

import { ErrorCode, NoAnswerError, ServerError, base64ToText, num } from "./protocol.js";

export const AVCHAT = 10; // kCIM_MSG_TYPE_AVCHAT
const VOICE = 1; // kCIM_VOIP_INVITE_TYPE_VOICE_CALL
const VIDEO = 2; // kCIM_VOIP_INVITE_TYPE_VIDEO_CALL
const TRYING = 100;
const RINGING = 180;
const ANSWERED = 200;
const BUSY_HERE = 486; // kCIM_VOIP_INVITE_CODE_BUSY
const BYE = { CANCEL: 1, REJECT: 2, END: 3, BUSY: 4, CLIENT_REJECT: 5, NO_ANSWER: 10, DROPPED: 11, ELSEWHERE: 12 };
const HEARTBEAT_EVERY = 30000; // ms (the server's calls heartbeat: a party silent for longer is dropped)
const ENDED_SHOWS = 4000; // ms the ended panel stays before it closes by itself
const CONNECT_TIMEOUT = 30000; // ms from the answer to ICE "connected" before the call is given up
const NO_END_TIMEOUT = 150000; // ms an unanswered outgoing call waits if the server never says it ended
const FAILED_GRACE = 10000; // ms a connection may stay "failed" (or "disconnected") before the call ends
const MAX_QUEUED = 200; // candidates held back per side (bounded: a peer cannot grow it forever)
const MAX_PAYLOAD = 16 * 1024; // the server's limit on a VOIP_SIGNAL_REQ payload
const ICE_FALLBACK_TTL = 300; // s to keep an answer of /api/ice-servers that says no ttl

const CALL_ERRORS = {
  [ErrorCode.ALREADY_IN_CALL]: "You are already in a call (on this or another device).",
  [ErrorCode.CALL_NOT_FOUND]: "This call has ended.",
  [ErrorCode.USER_NOT_EXIST]: "This person does not exist.",
  [ErrorCode.BLOCKED_BY_RECIPIENT]: "You cannot call this person.",
  [ErrorCode.FORBIDDEN]: "You cannot call this person.",
  [ErrorCode.NOT_SUPPORTED]: "This server does not support calls.",
  [ErrorCode.RATE_LIMITED]: "Too many calls: wait a little and try again.",
  [ErrorCode.CALL_TOO_MANY_INVITEES]: "Too many people for one call.",
};

// What the other side's VOIP_BYE_NOTIFY means here: [data-end-reason, the line shown].
const BYE_TEXT = {
  [BYE.CANCEL]: ["cancelled", "Call cancelled"],
  [BYE.REJECT]: ["declined", "Call declined"],
  [BYE.CLIENT_REJECT]: ["declined", "Call declined"],
  [BYE.END]: ["ended", "Call ended"],
  [BYE.BUSY]: ["busy", "Busy: on another call"],
  [BYE.NO_ANSWER]: ["no-answer", "No answer"],
  [BYE.DROPPED]: ["dropped", "Call dropped: the connection was lost"],
  [BYE.ELSEWHERE]: ["answered-elsewhere", "Answered on another device"],
};

let ctx = null; // {request, send, online, me, nameOf, avatar, token, openPeer}: from app.js
let call = null; // the call shown (see newCall), or null
let iceCache = null; // {servers, until (ms)}
const ui = {}; // the panel's elements
let closeTimer = 0;
const ringer = { audio: null, timer: 0 }; // the ring tone of an incoming call (Web Audio: no file)

// ---- history lines (AVCHAT messages) ------------------------------------------------------------

/** The JSON of an AVCHAT message ({hangupUserId, hangupReason, timeLen, callType, result}), else null. */
export function parseCall(type, data) {
  if (type !== AVCHAT || !data) return null;
  try {
    const content = JSON.parse(base64ToText(data));
    return content && typeof content === "object" && !Array.isArray(content) ? content : null;
  } catch {
    return null;
  }
}

/** "2:03", "1:02:03". */
export function formatCallLength(seconds) {
  const s = Math.max(0, Math.floor(num(seconds)));
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** The line of an AVCHAT message: "Missed voice call", "Video call, 2:03" (also the list's preview). */
export function callText(content) {
  if (!content) return "Call";
  const kind = num(content.callType) === VIDEO ? "video" : "voice";
  const Kind = kind === "video" ? "Video" : "Voice";
  const length = num(content.timeLen);
  switch (content.result) {
    case "missed":
      return `Missed ${kind} call`;
    case "declined":
      return `Declined ${kind} call`;
    case "cancelled":
      return `Cancelled ${kind} call`;
    case "busy":
      return `${Kind} call, busy`;
    case "dropped":
      return length ? `${Kind} call dropped, ${formatCallLength(length)}` : `${Kind} call dropped`;
    case "ended":
      return `${Kind} call, ${formatCallLength(length)}`;
    default:
      return length ? `${Kind} call, ${formatCallLength(length)}` : `${Kind} call`;
  }
}

const UNHAPPY = new Set(["missed", "declined", "cancelled", "busy", "dropped"]);

/** Turn the bubble of an AVCHAT message into its call line, with "Call back" in a 1:1 chat. */
export function decorateCall(chat, message, bubble) {
  const card = bubble.querySelector(".call-line");
  if (message.type !== AVCHAT) {
    card?.remove();
    return;
  }
  const content = message.call || null;
  const text = bubble.querySelector(".text");
  if (text) text.hidden = true;
  const result = content?.result || "";
  const video = num(content?.callType) === VIDEO;
  if (card && card.dataset.result === result) return;
  card?.remove();
  const line = document.createElement("span");
  line.className = `call-line${UNHAPPY.has(result) ? " unhappy" : ""}`;
  line.dataset.testid = "call-line";
  line.dataset.result = result;
  line.dataset.callType = video ? "video" : "voice";
  line.append(icon(video ? CAMERA : PHONE));
  const label = document.createElement("span");
  label.className = "call-line-text";
  label.dataset.testid = "call-line-text";
  label.textContent = callText(content);
  line.append(label);
  if (chat && chat.type === 1 && chat.id !== ctx?.me()) {
    const again = document.createElement("button");
    again.type = "button";
    again.className = "link-button call-back";
    again.dataset.testid = "call-back";
    again.textContent = "Call back";
    again.addEventListener("click", () => startCall(chat.id, video));
    line.append(again);
  }
  bubble.prepend(line);
}

// ---- icons ------------------------------------------------------------------------------------------

const PHONE = ["M5 4h4l2 5-2.5 1.5a11 11 0 0 0 5 5L15 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2"];
const CAMERA = ["M3 7h12v10H3z", "M15 10l6-3v10l-6-3"];
const HANGUP = ["M3 14c5-5 13-5 18 0l-2.5 2.5-3.5-1.5v-2.5a11 11 0 0 0-6 0V15l-3.5 1.5z"];
const MIC = ["M9 3h6v11H9z", "M5 11a7 7 0 0 0 14 0M12 18v3"];
const MIC_OFF = ["M9 3h6v11H9z", "M5 11a7 7 0 0 0 14 0M12 18v3", "M4 4l16 16"];
const CAMERA_OFF = ["M3 7h12v10H3z", "M15 10l6-3v10l-6-3", "M3 4l18 16"];

function icon(paths) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  for (const [name, value] of [["fill", "none"], ["stroke", "currentColor"], ["stroke-width", "2"], ["stroke-linecap", "round"], ["stroke-linejoin", "round"]]) {
    svg.setAttribute(name, value);
  }
  for (const d of paths) {
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

function button(testid, label, paths, cls, onClick) {
  const node = document.createElement("button");
  node.type = "button";
  node.className = `call-button ${cls}`;
  node.dataset.testid = testid;
  node.title = label;
  node.setAttribute("aria-label", label);
  node.append(icon(paths));
  node.addEventListener("click", onClick);
  return node;
}

// ---- set-up -----------------------------------------------------------------------------------------

/** Wire the module to app.js: the header's call buttons and the call panel. */
export function initCalls(shared) {
  ctx = shared;
  const voice = document.querySelector('[data-testid="voice-call-button"]');
  const video = document.querySelector('[data-testid="video-call-button"]');
  voice?.addEventListener("click", () => voice.dataset.peer && startCall(num(voice.dataset.peer), false));
  video?.addEventListener("click", () => video.dataset.peer && startCall(num(video.dataset.peer), true));
  // Closing or reloading the page ends its call at once (else the other side waits for the
  // server's heartbeat timeout).
  window.addEventListener("pagehide", () => {
    if (call && call.state !== "ended" && call.channel) {
      const reason = call.state === "incoming" ? BYE.REJECT : call.answeredAt || call.role === "callee" ? BYE.END : BYE.CANCEL;
      ctx.send("VOIP_BYE_REQ", { userId: String(ctx.me()), channelInfo: call.channel, byeReason: reason });
    }
  });
  const panel = document.querySelector('[data-testid="call-panel"]');
  if (!panel) return;
  ui.panel = panel;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", "Call");
  ui.remoteVideo = media("video", "call-remote-video", "call-remote-video");
  ui.localVideo = media("video", "call-local-video", "call-local-video");
  ui.localVideo.muted = true; // one's own voice is not played back
  ui.remoteAudio = media("audio", "call-remote-audio", "call-remote-audio");
  ui.remoteAudio.hidden = true;
  ui.videos = document.createElement("div");
  ui.videos.className = "call-videos";
  ui.videos.append(ui.remoteVideo, ui.localVideo);
  ui.avatar = document.createElement("span");
  ui.avatar.className = "call-avatar";
  ui.peer = text("call-peer", "call-peer");
  ui.status = text("call-status", "call-status");
  ui.status.setAttribute("role", "status");
  ui.duration = text("call-duration", "call-duration");
  const info = document.createElement("div");
  info.className = "call-info";
  info.append(ui.avatar, ui.peer, ui.status, ui.duration);
  ui.mute = button("call-mute", "Mute", MIC, "toggle", toggleMute);
  ui.camera = button("call-camera", "Turn the camera off", CAMERA, "toggle", toggleCamera);
  ui.accept = button("call-accept", "Accept", PHONE, "accept", () => accept());
  ui.decline = button("call-decline", "Decline", HANGUP, "hangup", () => decline());
  ui.hangup = button("call-hangup", "Hang up", HANGUP, "hangup", () => hangUp());
  ui.close = button("call-close", "Close", ["M6 6l12 12M18 6L6 18"], "toggle", () => closePanel());
  const buttons = document.createElement("div");
  buttons.className = "call-buttons";
  buttons.append(ui.mute, ui.camera, ui.accept, ui.decline, ui.hangup, ui.close);
  panel.replaceChildren(ui.videos, ui.remoteAudio, info, buttons);
  renderCall();
}

function media(tag, cls, testid) {
  const node = document.createElement(tag);
  node.className = cls;
  node.dataset.testid = testid;
  node.autoplay = true;
  node.setAttribute("playsinline", "");
  return node;
}

function text(cls, testid) {
  const node = document.createElement("span");
  node.className = cls;
  node.dataset.testid = testid;
  return node;
}

/** The chat header's call buttons: for a 1:1 chat with someone else, while no call is on. */
export function renderCallButtons(chat) {
  const usable = Boolean(chat && chat.type === 1 && !chat.left && chat.id !== ctx?.me());
  const busy = Boolean(call && call.state !== "ended");
  for (const testid of ["voice-call-button", "video-call-button"]) {
    const node = document.querySelector(`[data-testid="${testid}"]`);
    if (!node) continue;
    node.hidden = !usable;
    node.disabled = busy;
    node.dataset.peer = usable ? String(chat.id) : "";
  }
}

/** Logged out: end the call here (the server drops it when its heartbeats stop). */
export function callsReset() {
  if (call && call.state !== "ended") finish("ended", "Call ended");
  closePanel();
  iceCache = null;
}

// ---- the call -------------------------------------------------------------------------------------

function newCall(role, peer, video) {
  return {
    role, // "caller" | "callee"
    group: false, // a group call's invite (answered peer to peer with its caller only)
    peer, // the other party's user id
    nick: "",
    video, // a video call (else voice only)
    state: "starting",
    channel: null, // the server's channelInfo: names the call in every later command
    offer: "", // the callee: the caller's SDP, until answered
    pc: null,
    local: null, // our MediaStream
    remote: null, // theirs
    remoteQueue: [], // their candidates that came before their session description was set
    localQueue: [], // ours, held until the other side has our session description
    peerReady: false, // the other side has our description: candidates may go
    negotiated: false, // the first offer/answer is done (a later negotiationneeded is an ICE restart)
    restarted: false, // an ICE restart was tried
    answeredAt: 0, // ms
    iceState: "new",
    muted: false,
    cameraOff: false,
    cancelled: false, // hung up before the server's 100 came back
    endReason: "",
    endText: "",
    timers: [],
    ticker: 0,
  };
}

const current = (c) => call === c && c.state !== "ended";
const sameChannel = (c, info) => Boolean(c?.channel && info && (info.channelName || "") === c.channel.channelName);

async function iceServers() {
  if (iceCache && iceCache.until > Date.now()) return iceCache.servers;
  try {
    const response = await fetch("api/ice-servers", { headers: { Authorization: `Bearer ${ctx.token()}` } });
    const answer = await response.json();
    if (!response.ok || !Array.isArray(answer.ice_servers)) throw new Error(answer.error_msg || `HTTP ${response.status}`);
    // A little before the TURN credentials expire, ask again.
    const ttl = num(answer.ttl) || ICE_FALLBACK_TTL;
    iceCache = { servers: answer.ice_servers, until: Date.now() + Math.max(30, ttl - 60) * 1000 };
    return iceCache.servers;
  } catch (e) {
    console.warn("calls: no ICE servers, using direct connections only", e);
    return [];
  }
}

async function userMedia(video) {
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video });
  } catch (e) {
    if (!video) throw e;
    // No camera (or not allowed): the call goes on with sound only.
    return navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  }
}

function mediaError(e) {
  if (e?.name === "NotAllowedError") return "The microphone (or camera) is not allowed for this page.";
  if (e?.name === "NotFoundError") return "No microphone found.";
  return "The microphone (or camera) cannot be used.";
}

function peerConnection(c, servers) {
  const pc = new RTCPeerConnection({ iceServers: servers });
  c.pc = pc;
  c.remote = new MediaStream();
  pc.onicecandidate = (event) => {
    if (!current(c) || !event.candidate) return;
    const candidate = event.candidate.toJSON();
    if (c.peerReady) signal(c, "candidate", candidate);
    else if (c.localQueue.length < MAX_QUEUED) c.localQueue.push(candidate);
  };
  pc.ontrack = (event) => {
    if (!current(c)) return;
    if (!c.remote.getTracks().includes(event.track)) c.remote.addTrack(event.track);
    attachMedia(c);
  };
  pc.oniceconnectionstatechange = () => {
    if (!current(c)) return;
    c.iceState = pc.iceConnectionState;
    if (c.iceState === "connected" || c.iceState === "completed") {
      if (c.state === "connecting") c.state = "active";
    } else if (c.iceState === "failed" || c.iceState === "disconnected") {
      // The caller tries one ICE restart (new candidates, e.g. after a network change); if the
      // media does not come back in a while, the call ends (the other side may be gone for good).
      if (c.iceState === "failed" && c.role === "caller" && !c.restarted && c.negotiated) {
        c.restarted = true;
        pc.restartIce();
      }
      const lost = c.iceState;
      c.timers.push(
        setTimeout(() => {
          if (current(c) && c.pc.iceConnectionState === lost) hangUp("Call ended: the connection was lost");
        }, FAILED_GRACE * (lost === "disconnected" ? 2 : 1)),
      );
    }
    renderCall();
  };
  pc.onnegotiationneeded = async () => {
    // ... which needs a new offer; the first negotiation goes with the invite instead.
    if (!current(c) || !c.negotiated || c.role !== "caller") return;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      signal(c, "offer", { type: "offer", sdp: pc.localDescription.sdp });
    } catch (e) {
      console.warn("calls: renegotiation failed", e);
    }
  };
  for (const track of c.local.getTracks()) pc.addTrack(track, c.local);
  return pc;
}

function signal(c, kind, payload) {
  const text = JSON.stringify(payload);
  if (text.length > MAX_PAYLOAD || !c.channel) return;
  ctx.send("VOIP_SIGNAL_REQ", { channelInfo: c.channel, toUserId: String(c.peer), kind, payload: text });
}

/** The other side has our description: send the candidates held back, apply theirs. */
async function peerReady(c) {
  c.peerReady = true;
  c.negotiated = true;
  for (const candidate of c.localQueue.splice(0)) signal(c, "candidate", candidate);
  for (const candidate of c.remoteQueue.splice(0)) await addCandidate(c, candidate);
}

async function addCandidate(c, candidate) {
  try {
    await c.pc.addIceCandidate(candidate);
  } catch (e) {
    console.warn("calls: a candidate was refused", e);
  }
}

function startHeartbeat(c) {
  c.answeredAt = c.answeredAt || Date.now();
  const beat = setInterval(() => current(c) && ctx.send("VOIP_HEARTBEAT", {}), HEARTBEAT_EVERY);
  c.timers.push(beat);
  c.ticker = setInterval(() => current(c) && renderDuration(c), 1000);
  c.timers.push(c.ticker);
  // Answered but never connected (no path between the two): give up rather than ring on.
  c.timers.push(setTimeout(() => current(c) && c.state === "connecting" && hangUp("Could not connect the call"), CONNECT_TIMEOUT));
}

/** Call someone (from the chat header's buttons or a history line's "Call back"). */
export async function startCall(peer, video) {
  if (!ctx || !peer || (call && call.state !== "ended")) return;
  if (!ctx.online()) {
    showEnded(newCall("caller", peer, video), "offline", "You are offline.");
    return;
  }
  const c = newCall("caller", peer, video);
  clearTimeout(closeTimer);
  call = c;
  renderCall();
  try {
    c.local = await userMedia(video);
    if (!current(c)) return stopMedia(c);
    c.video = c.local.getVideoTracks().length > 0;
    attachMedia(c);
    const pc = peerConnection(c, await iceServers());
    if (!current(c)) return stopMedia(c);
    await pc.setLocalDescription(await pc.createOffer());
    if (!current(c)) return stopMedia(c);
    const rsp = await ctx.request("VOIP_INVITE_REQ", {
      creatorUserId: String(ctx.me()),
      inviteUserList: [String(peer)],
      inviteType: c.video ? VIDEO : VOICE,
      sdp: pc.localDescription.sdp,
    });
    const code = num(rsp.rspCode);
    if (rsp.channelInfo) c.channel = rsp.channelInfo;
    if (code === BUSY_HERE) {
      if (call === c) finish("busy", `${ctx.nameOf(peer)} is on another call.`);
      return;
    }
    if (c.cancelled) {
      // Hung up while the invite was on its way: cancel it now that it has a name.
      if (c.channel) bye(c, BYE.CANCEL);
      return;
    }
    if (!current(c)) return;
    c.state = code === RINGING ? "ringing" : "calling";
    c.timers.push(setTimeout(() => current(c) && !c.answeredAt && hangUp("No answer"), NO_END_TIMEOUT));
    renderCall();
  } catch (e) {
    if (call !== c || c.state === "ended") {
      stopMedia(c);
      return;
    }
    if (e instanceof ServerError) finish("refused", CALL_ERRORS[e.code] || `The call was refused (${e.message}).`);
    else if (e instanceof NoAnswerError) finish("offline", "The call could not be placed: no connection.");
    else if (e?.name && /NotAllowed|NotFound|NotReadable|Overconstrained|Security/.test(e.name)) finish("media", mediaError(e));
    else {
      console.warn("calls: the call could not start", e);
      finish("failed", "The call could not start.");
    }
  }
}

/** VOIP_INVITE_REQ pushed to us: someone calls. */
function incoming(body) {
  const channel = body.channelInfo;
  if (!channel?.channelName) return;
  if (call && call.state !== "ended") {
    if (sameChannel(call, channel)) return; // the same invite again (after a reconnect)
    // One call at a time: tell this caller we are busy (the server usually knows already).
    ctx.send("VOIP_INVITE_REPLY", { userId: String(ctx.me()), rspCode: BUSY_HERE, channelInfo: channel });
    return;
  }
  const c = newCall("callee", num(body.creatorUserId), num(body.inviteType) === VIDEO);
  c.channel = channel;
  c.nick = body.fromNickName || "";
  c.group = Boolean(num(body.groupId)) || (body.inviteUserList || []).length > 1;
  c.offer = body.sdp || "";
  c.state = "incoming";
  clearTimeout(closeTimer);
  call = c;
  ctx.send("VOIP_INVITE_REPLY", { userId: String(ctx.me()), rspCode: RINGING, channelInfo: channel });
  // The server ends an unanswered call (NO_ANSWER); this is only in case that notice is lost.
  const ring = num(body.ringTimeout) || 60;
  c.timers.push(setTimeout(() => current(c) && c.state === "incoming" && finish("no-answer", "Missed call"), (ring + 15) * 1000));
  renderCall();
  startRinging();
}

/** Accept the ringing call. */
export async function accept() {
  const c = call;
  if (!c || c.role !== "callee" || c.state !== "incoming") return;
  c.state = "connecting";
  renderCall();
  ctx.openPeer?.(c.peer);
  try {
    c.local = await userMedia(c.video);
    if (!current(c)) return stopMedia(c);
    attachMedia(c);
    const pc = peerConnection(c, await iceServers());
    if (!current(c)) return stopMedia(c);
    await pc.setRemoteDescription({ type: "offer", sdp: c.offer });
    await pc.setLocalDescription(await pc.createAnswer());
    if (!current(c)) return stopMedia(c);
    ctx.send("VOIP_INVITE_REPLY", {
      userId: String(ctx.me()),
      rspCode: ANSWERED,
      channelInfo: c.channel,
      sdp: pc.localDescription.sdp,
    });
    startHeartbeat(c);
    await peerReady(c);
    renderCall();
  } catch (e) {
    if (!current(c)) return stopMedia(c);
    console.warn("calls: answering failed", e);
    bye(c, BYE.REJECT);
    finish("media", e?.name === "NotAllowedError" || e?.name === "NotFoundError" ? mediaError(e) : "The call could not be answered.");
  }
}

/** Decline the ringing call. */
export function decline() {
  const c = call;
  if (!c || c.state !== "incoming") return;
  const sent = bye(c, BYE.REJECT);
  finish("declined", "You declined the call");
  return sent;
}

/** Hang up (or cancel an outgoing call not answered yet, or decline a ringing one). */
export function hangUp(why = "") {
  const c = call;
  if (!c || c.state === "ended") return;
  if (c.state === "incoming") return decline();
  if (!c.channel) {
    // The invite has not been answered by the server yet: cancelled when it is (startCall).
    c.cancelled = true;
    finish("cancelled", why || "Call cancelled");
    return;
  }
  const answered = Boolean(c.answeredAt);
  const sent = bye(c, answered || c.role === "callee" ? BYE.END : BYE.CANCEL);
  finish(answered ? "ended" : "cancelled", why || (answered ? "Call ended" : "Call cancelled"));
  return sent; // settles when the server has the bye (signing out waits for it)
}

function bye(c, reason) {
  const seconds = c.answeredAt ? Math.round((Date.now() - c.answeredAt) / 1000) : 0;
  return ctx
    .request("VOIP_BYE_REQ", {
      localCallTimeLen: String(seconds),
      userId: String(ctx.me()),
      channelInfo: c.channel,
      byeReason: reason,
    })
    .catch(() => {}); // ended already (CALL_NOT_FOUND) or offline: the server's own timers end it
}

function toggleMute() {
  if (!call?.local) return;
  call.muted = !call.muted;
  for (const track of call.local.getAudioTracks()) track.enabled = !call.muted;
  renderCall();
}

function toggleCamera() {
  if (!call?.local) return;
  call.cameraOff = !call.cameraOff;
  for (const track of call.local.getVideoTracks()) track.enabled = !call.cameraOff;
  renderCall();
}

function stopMedia(c) {
  for (const track of c.local?.getTracks() || []) track.stop();
  try {
    c.pc?.close();
  } catch {
    // closed already
  }
}

/** The call is over here: media off, timers off, the panel says why and closes by itself. */
function finish(reason, line) {
  const c = call;
  if (!c) return;
  for (const timer of c.timers) {
    clearTimeout(timer);
    clearInterval(timer);
  }
  c.timers = [];
  stopMedia(c);
  showEnded(c, reason, line);
}

function showEnded(c, reason, line) {
  c.state = "ended";
  c.endReason = reason;
  c.endText = line;
  call = c;
  if (c.answeredAt) c.length = Math.round((Date.now() - c.answeredAt) / 1000);
  renderCall();
  clearTimeout(closeTimer);
  closeTimer = setTimeout(closePanel, ENDED_SHOWS);
}

function closePanel() {
  clearTimeout(closeTimer);
  if (call && call.state !== "ended") return; // never closes a call that is on
  call = null;
  renderCall();
}

// ---- pushes ---------------------------------------------------------------------------------------

/** The server's call pushes; true when the push was one of them. */
export function callsPush(name, body) {
  if (name === "VOIP_INVITE_REQ") incoming(body);
  else if (name === "VOIP_INVITE_REPLY") reply(body);
  else if (name === "VOIP_INVITE_REPLY_ACK") ackReceived(body);
  else if (name === "VOIP_SIGNAL_NOTIFY") signalled(body);
  else if (name === "VOIP_BYE_NOTIFY") byeReceived(body);
  else if (name === "VOIP_CALL_STATE_NOTIFY") return true; // group calls: not in this client
  else return false;
  return true;
}

/** A refused fire-and-forget call command (VOIP_INVITE_REPLY, VOIP_SIGNAL_REQ, VOIP_HEARTBEAT):
 * true when it was one. CALL_NOT_FOUND: the server has ended the call. */
export function callsRefused(cmd, code) {
  if (!["VOIP_INVITE_REPLY", "VOIP_INVITE_REPLY_ACK", "VOIP_SIGNAL_REQ", "VOIP_HEARTBEAT"].includes(cmd)) return false;
  if (code === ErrorCode.CALL_NOT_FOUND && call && call.state !== "ended" && call.channel) finish("ended", "Call ended");
  return true;
}

async function reply(body) {
  const c = call;
  if (!c || c.role !== "caller" || !current(c) || !sameChannel(c, body.channelInfo)) return;
  const code = num(body.rspCode);
  if (code === TRYING) return;
  if (code === RINGING) {
    if (c.state === "calling") c.state = "ringing";
    renderCall();
    return;
  }
  if (code === BUSY_HERE) {
    bye(c, BYE.CANCEL);
    finish("busy", `${ctx.nameOf(c.peer)} is on another call.`);
    return;
  }
  if (code !== ANSWERED || c.answeredAt) return;
  c.state = "connecting";
  startHeartbeat(c);
  renderCall();
  try {
    await c.pc.setRemoteDescription({ type: "answer", sdp: body.sdp || "" });
    if (!current(c)) return;
    ctx.send("VOIP_INVITE_REPLY_ACK", { channelInfo: c.channel });
    await peerReady(c);
  } catch (e) {
    if (!current(c)) return;
    console.warn("calls: the answer could not be used", e);
    hangUp("The call could not connect.");
  }
}

function ackReceived(body) {
  // The caller saw our 200 OK: nothing more to do (the media is already on its way).
  if (call && sameChannel(call, body.channelInfo) && call.state === "connecting") renderCall();
}

async function signalled(body) {
  const c = call;
  if (!current(c) || !sameChannel(c, body.channelInfo) || (num(body.fromUserId) && num(body.fromUserId) !== c.peer)) return;
  let payload;
  try {
    payload = JSON.parse(body.payload || "null");
  } catch {
    return;
  }
  if (!payload || typeof payload !== "object") return;
  const kind = body.kind || "";
  try {
    if (kind === "candidate") {
      if (c.pc && c.pc.remoteDescription && c.peerReady) await addCandidate(c, payload);
      else if (c.remoteQueue.length < MAX_QUEUED) c.remoteQueue.push(payload);
    } else if (kind === "offer" && c.pc && c.negotiated && typeof payload.sdp === "string") {
      // The caller restarts ICE: answer its new offer.
      await c.pc.setRemoteDescription({ type: "offer", sdp: payload.sdp });
      await c.pc.setLocalDescription(await c.pc.createAnswer());
      signal(c, "answer", { type: "answer", sdp: c.pc.localDescription.sdp });
    } else if (kind === "answer" && c.pc && c.negotiated && typeof payload.sdp === "string") {
      await c.pc.setRemoteDescription({ type: "answer", sdp: payload.sdp });
    }
  } catch (e) {
    console.warn(`calls: the ${kind} signal could not be used`, e);
  }
}

function byeReceived(body) {
  const c = call;
  if (!current(c) || !sameChannel(c, body.channelInfo)) return;
  const who = num(body.userId);
  // In a group call others come and go; this page's call is with the caller only.
  if (c.group && who && who !== c.peer && who !== ctx.me()) return;
  const reason = num(body.byeReason);
  let [code, line] = BYE_TEXT[reason] || ["ended", "Call ended"];
  if (c.role === "callee" && !c.answeredAt && (reason === BYE.CANCEL || reason === BYE.NO_ANSWER)) {
    [code, line] = ["missed", `Missed call from ${callerName(c)}`];
  }
  if (reason === BYE.END && c.role === "caller" && !c.answeredAt) [code, line] = ["ended", "Call ended"];
  if (num(body.callTimeLen)) c.answeredAt = Date.now() - num(body.callTimeLen) * 1000;
  finish(code, line);
}

const callerName = (c) => (c.nick && c.nick.trim()) || ctx.nameOf(c.peer);

// ---- the ring tone ------------------------------------------------------------------------------------

/** A two-tone ring (440 + 480 Hz, as telephones do) twice every 3 s while a call rings here. The
 * browser may keep the AudioContext suspended until the page has had a click: then it is silent. */
function startRinging() {
  stopRinging();
  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  if (!AudioCtx) return;
  try {
    const audio = new AudioCtx();
    ringer.audio = audio;
    if (audio.state === "suspended") audio.resume().catch(() => {});
    const ring = () => {
      if (audio.state !== "running") return;
      const t = audio.currentTime;
      const gain = audio.createGain();
      gain.gain.setValueAtTime(0, t);
      for (const start of [0, 0.6]) {
        gain.gain.linearRampToValueAtTime(0.06, t + start + 0.03);
        gain.gain.setValueAtTime(0.06, t + start + 0.4);
        gain.gain.linearRampToValueAtTime(0, t + start + 0.43);
      }
      gain.connect(audio.destination);
      for (const frequency of [440, 480]) {
        const oscillator = audio.createOscillator();
        oscillator.frequency.value = frequency;
        oscillator.connect(gain);
        oscillator.start(t);
        oscillator.stop(t + 1.1);
      }
    };
    ring();
    ringer.timer = setInterval(ring, 3000);
  } catch {
    stopRinging(); // no sound, the panel still rings
  }
}

function stopRinging() {
  clearInterval(ringer.timer);
  ringer.timer = 0;
  ringer.audio?.close().catch(() => {});
  ringer.audio = null;
}

// ---- rendering --------------------------------------------------------------------------------------

function attachMedia(c) {
  if (!ui.panel || call !== c) return;
  if (c.local && ui.localVideo.srcObject !== c.local) ui.localVideo.srcObject = c.local;
  const target = c.video ? ui.remoteVideo : ui.remoteAudio;
  const other = c.video ? ui.remoteAudio : ui.remoteVideo;
  if (c.remote && target.srcObject !== c.remote) {
    target.srcObject = c.remote;
    other.srcObject = null;
  }
  for (const node of [ui.localVideo, target]) {
    if (node.srcObject && node.paused) node.play().catch(() => {}); // autoplay may wait for a gesture
  }
}

function renderDuration(c) {
  if (!ui.duration) return;
  const seconds = c.state === "ended" ? c.length || 0 : c.answeredAt ? (Date.now() - c.answeredAt) / 1000 : 0;
  ui.duration.textContent = c.answeredAt && (c.state === "active" || c.state === "ended") ? formatCallLength(seconds) : "";
}

function statusLine(c) {
  const kind = c.video ? "video" : "voice";
  switch (c.state) {
    case "starting":
      return "Starting…";
    case "calling":
      return "Calling…";
    case "ringing":
      return "Ringing…";
    case "incoming":
      return `Incoming ${kind} call`;
    case "connecting":
      return "Connecting…";
    case "active":
      return c.iceState === "disconnected" ? "Reconnecting…" : c.muted ? "Muted" : `${c.video ? "Video" : "Voice"} call`;
    default:
      return c.endText || "Call ended";
  }
}

function renderCall() {
  const c = call;
  const panel = ui.panel;
  if (!c || c.state !== "incoming") stopRinging();
  if (panel) {
    panel.hidden = !c;
    if (!c) {
      for (const key of ["callState", "iceState", "callType", "role", "endReason"]) delete panel.dataset[key];
      for (const node of [ui.localVideo, ui.remoteVideo, ui.remoteAudio]) node.srcObject = null;
    } else {
      const name = c.role === "callee" ? callerName(c) : ctx.nameOf(c.peer);
      panel.dataset.callState = c.state;
      panel.dataset.iceState = c.iceState;
      panel.dataset.callType = c.video ? "video" : "voice";
      panel.dataset.role = c.role;
      panel.dataset.endReason = c.endReason;
      panel.classList.toggle("video", c.video && c.state !== "ended");
      ui.peer.textContent = name;
      ui.avatar.replaceChildren(ctx.avatar ? ctx.avatar(c.peer, name) : "");
      ui.status.textContent = statusLine(c);
      renderDuration(c);
      const on = c.state !== "ended";
      ui.accept.hidden = c.state !== "incoming";
      ui.decline.hidden = c.state !== "incoming";
      ui.hangup.hidden = !on || c.state === "incoming";
      ui.mute.hidden = !on || c.state === "incoming" || !c.local;
      ui.camera.hidden = ui.mute.hidden || !c.video;
      ui.close.hidden = on;
      ui.mute.setAttribute("aria-pressed", String(c.muted));
      ui.mute.replaceChildren(icon(c.muted ? MIC_OFF : MIC));
      ui.mute.title = c.muted ? "Unmute" : "Mute";
      ui.mute.setAttribute("aria-label", ui.mute.title);
      ui.camera.setAttribute("aria-pressed", String(c.cameraOff));
      ui.camera.replaceChildren(icon(c.cameraOff ? CAMERA_OFF : CAMERA));
      ui.camera.title = c.cameraOff ? "Turn the camera on" : "Turn the camera off";
      ui.camera.setAttribute("aria-label", ui.camera.title);
      ui.videos.hidden = !c.video || !on || !c.local; // while it rings, no black boxes
      if (on) attachMedia(c);
      else for (const node of [ui.localVideo, ui.remoteVideo, ui.remoteAudio]) node.srcObject = null;
    }
  }
  // The header's buttons follow (disabled while a call is on).
  const open = document.querySelector('[data-testid="voice-call-button"]');
  if (open && open.dataset.peer) {
    const busy = Boolean(c && c.state !== "ended");
    for (const testid of ["voice-call-button", "video-call-button"]) {
      const node = document.querySelector(`[data-testid="${testid}"]`);
      if (node) node.disabled = busy;
    }
  }
}
