// faceprint web page: plain JavaScript over the /v1 API. No build step, no CDN.
// Everything user-supplied goes into the page through textContent, never innerHTML.
"use strict";

const KEY_STORAGE = "faceprint.apiKey";
const PEOPLE_PAGE = 100; // identities per request to GET /v1/identities
const CARDS_PAGE = 60; // cards rendered at a time (each fetches a thumbnail)
const TABS = ["identify", "verify", "people", "cluster", "enrol", "liveness"];
const $ = (id) => document.getElementById(id);

const state = { key: null, role: null, info: null, people: [], thumbs: new Map(), cardsShown: CARDS_PAGE, photosOf: null };
// liveness: does the server require a passed challenge, and the latest passed session (single use)
const liveness = { required: false, passed: null };

// ------------------------------------------------------------------------- API
class ApiError extends Error {
  constructor(status, code, message, details) {
    super(pageMessage(code, message));
    this.status = status;
    this.code = code;
    this.details = details || [];
  }
}

// The service's advice names its own control (largest=true); on this page that is the checkbox.
const LARGEST_ADVICE = "(crop the photo, or tick “Use the largest face” below)";

function pageMessage(code, message) {
  if (code !== "multiple_faces" || !message) return message;
  return `${message.replace(/\s*\([^()]*largest[^()]*\)/g, "")} ${LARGEST_ADVICE}`;
}

async function api(path, { method = "GET", json, form, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${state.key}` };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // the browser sets the multipart boundary
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, "network_error", "Cannot reach the server.");
  }
  if (!response.ok) {
    let code = "http_error";
    let message = `${response.status} ${response.statusText}`;
    let details;
    try {
      const data = await response.json();
      if (data && data.error) ({ code, message, details } = data.error);
    } catch (_) {
      /* not JSON: keep the status line */
    }
    if (response.status === 401 && path !== "/v1/auth/whoami") signOut("Your key was refused; sign in again.");
    throw new ApiError(response.status, code, message, details);
  }
  return raw ? response : response.json();
}

const person = (name) => `/v1/identities/${encodeURIComponent(name)}`;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

const button = (text, onclick, cls = "small secondary") => el("button", { type: "button", class: cls, text, onclick });

function setStatus(node, text, isError = false) {
  node.textContent = text;
  node.classList.toggle("error", isError);
}

const fmt = (score) => (score < -0.5 ? "–" : score.toFixed(3));

async function blobUrl(path) {
  const response = await api(path, { raw: true });
  return URL.createObjectURL(await response.blob());
}

function showImage(img, file) {
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(file);
  img.hidden = false;
}

// ---------------------------------------------------------------------- session
async function signIn(key) {
  state.key = key;
  const me = await api("/v1/auth/whoami");
  state.role = me.role;
  sessionStorage.setItem(KEY_STORAGE, key);
  $("whoami").textContent = me.name ? `Key “${me.name}”` : `Key #${me.id}`;
  $("whoami").append(el("span", { class: "role", text: me.role }));
  // read-only keys get no enrol tab and no edit buttons (the API refuses them anyway)
  $("tab-btn-enrol").hidden = me.role !== "admin";
  $("cluster-enrol-hint").hidden = me.role !== "admin";
  $("signin").hidden = true;
  $("session").hidden = false;
  $("app").hidden = false;
  showTab("identify");
  loadInfo();
  loadPeople();
  loadLiveness();
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = state.role = null;
  for (const url of state.thumbs.values()) if (url) URL.revokeObjectURL(url);
  state.thumbs.clear();
  closePhotos();
  clearClusters();
  cameras.forEach((camera) => camera.stop());
  $("app").hidden = true;
  $("session").hidden = true;
  $("signin").hidden = false;
  $("api-key").value = "";
  $("signin-error").textContent = message;
  $("footer").textContent = "";
}

async function loadInfo() {
  try {
    const info = await api("/v1/info");
    state.info = info;
    $("footer").textContent =
      `faceprint ${info.version} · ${info.detector} detector · ${info.embedder} embedder · ` +
      `identify threshold ${info.identify_threshold.toFixed(3)} · ${info.identities} people, ${info.templates} photos`;
  } catch (_) {
    /* the footer is optional */
  }
}

// ------------------------------------------------------------------------- tabs
function showTab(name) {
  for (const tab of TABS) {
    const selected = tab === name;
    $(`tab-btn-${tab}`).setAttribute("aria-selected", String(selected));
    $(`tab-${tab}`).hidden = !selected || (tab === "enrol" && state.role !== "admin");
  }
  cameras.forEach((camera) => camera.stop());
  if (name === "people") loadPeople();
}

// ---------------------------------------------------------------------- dropzones
function dropzone(zone, input, onFiles) {
  for (const ev of ["dragenter", "dragover"]) {
    zone.addEventListener(ev, (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const ev of ["dragleave", "drop"]) zone.addEventListener(ev, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    const files = [...e.dataTransfer.files].filter((f) => f.type.startsWith("image/") || f.type === "");
    if (files.length) onFiles(files);
  });
  input.addEventListener("change", () => {
    if (input.files.length) onFiles([...input.files]);
  });
}

// ------------------------------------------------------------------------ camera
// "Use camera" shows the live video in the panel #PREFIX-camera; "Capture" grabs a frame as a
// JPEG File and hands it on.
const cameras = [];
let captures = 0;

function camera(prefix, statusNode, onCapture, { closeAfterCapture }) {
  const panel = $(`${prefix}-camera`);
  const video = el("video", { muted: "", playsinline: "", "aria-label": "Camera preview" });
  const capture = el("button", { type: "button", id: `${prefix}-camera-capture`, text: panel.dataset.capture });
  const close = el("button", { type: "button", class: "secondary", id: `${prefix}-camera-close`, text: "Close camera" });
  panel.replaceChildren(video, el("div", { class: "actions" }, capture, close));
  video.muted = true;
  const open = $(`${prefix}-camera-open`);
  let stream = null;
  const stop = () => {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    panel.hidden = true;
    open.hidden = false;
  };
  open.addEventListener("click", async () => {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setStatus(statusNode, "This browser gives no camera to this page (it needs https or localhost).", true);
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: "user" },
        audio: false,
      });
    } catch (err) {
      setStatus(statusNode, `No camera: ${err.message || err.name}`, true);
      return;
    }
    video.srcObject = stream;
    panel.hidden = false;
    open.hidden = true;
    setStatus(statusNode, "");
    await video.play().catch(() => {});
  });
  capture.addEventListener("click", async () => {
    if (!stream || !video.videoWidth) return setStatus(statusNode, "The camera is not ready yet.", true);
    let session = null;
    if (liveness.required) {
      // this server wants proof of a live face first: the challenge runs on this camera's video
      capture.disabled = true;
      const view = challengeView(`${prefix}-challenge`);
      panel.insertBefore(view.root, panel.querySelector(".actions"));
      try {
        const s = await runChallenge(video, view, () => !stream);
        if (s.status !== "passed") return setStatus(statusNode, `Liveness check failed: ${s.reason}`, true);
        session = s.id;
      } catch (err) {
        return setStatus(statusNode, `Liveness check: ${err.message}`, true);
      } finally {
        capture.disabled = false;
      }
      if (!stream) return;
    }
    const canvas = el("canvas", { width: video.videoWidth, height: video.videoHeight });
    canvas.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
    if (closeAfterCapture) stop();
    captures += 1;
    const file = new File([blob], `camera-${captures}.jpg`, { type: "image/jpeg" });
    file.livenessSession = session;
    onCapture(file);
  });
  close.addEventListener("click", stop);
  cameras.push({ stop });
}

// ---------------------------------------------------------------------- liveness
// A challenge (POST /v1/liveness/sessions) reads camera frames the page sends about 10 a second,
// one at a time, each with the time it was taken. Frames are sent as the camera gives them
// (unmirrored: "your left" is the person's left); only the preview is mirrored, by CSS.
const LIVENESS_FPS = 10;
const LIVENESS_WIDTH = 640; // frames are sent at most this wide: the face mesh needs no more
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function loadLiveness() {
  try {
    const info = await api("/v1/liveness/challenge");
    liveness.required = info.required;
  } catch (_) {
    liveness.required = false; // an older server: no challenges
  }
  $("liveness-required-note").hidden = !liveness.required;
}

// The session id to send with an upload: the file's own (captured after a challenge), else the
// latest one passed on the Liveness tab. Each is good for one request.
function takeLivenessSession(files) {
  const own = files.map((f) => f.livenessSession).find(Boolean);
  const id = own || (liveness.passed ? liveness.passed.id : null);
  if (liveness.passed && liveness.passed.id === id) liveness.passed = null;
  return id;
}

function challengeView(id) {
  const root = el("div", { class: "challenge", id });
  const instruction = el("div", { class: "instruction", id: `${id}-instruction` });
  const countdown = el("div", { class: "countdown", id: `${id}-countdown` });
  const progress = el("progress", { max: "1", value: "0" });
  const list = el("ol", { id: `${id}-actions` });
  const verdict = el("div", { class: "verdict-line", id: `${id}-verdict`, role: "status" });
  root.append(instruction, countdown, progress, list, verdict);
  const show = (s) => {
    instruction.textContent = s.status === "running" ? s.instruction : "";
    countdown.textContent = s.status === "running" && s.time_left_s != null ? `${s.time_left_s.toFixed(1)} s left` : "";
    progress.value = s.status === "passed" ? 1 : s.progress;
    list.replaceChildren(
      ...s.actions.map((a, i) => {
        const mark = a.passed === true ? "done" : a.passed === false ? "failed" : i === s.index && s.action ? "now" : "";
        const cls = a.passed === true ? "passed" : a.passed === false ? "failed" : "";
        return el("li", { class: cls, text: `${a.action.replace("_", " ")}${mark ? ` (${mark})` : ""}` });
      }),
    );
    verdict.className = `verdict-line ${s.status}`;
    verdict.textContent =
      s.status === "passed" ? "Passed: a live face." : s.status === "failed" ? `Failed: ${s.reason}` : "";
  };
  return { root, show };
}

// Run one challenge on a playing <video>; resolves with the final state. ``stopped()`` ends it early
// (the camera was closed: the server fails the session when its time runs out).
async function runChallenge(video, view, stopped = () => false) {
  const canvas = el("canvas");
  let s = await api("/v1/liveness/sessions", { method: "POST" });
  const t0 = performance.now(); // the session's clock started just before its answer
  const path = `/v1/liveness/sessions/${encodeURIComponent(s.id)}/frames`;
  view.show(s);
  while (s.status === "running" && !stopped()) {
    const started = performance.now();
    if (video.videoWidth) {
      const scale = Math.min(1, LIVENESS_WIDTH / video.videoWidth);
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      const t = (performance.now() - t0) / 1000;
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
      const form = new FormData();
      form.append("frame", blob, "frame.jpg");
      form.append("t", t.toFixed(3));
      s = await api(path, { method: "POST", form });
      view.show(s);
    }
    const wait = 1000 / LIVENESS_FPS - (performance.now() - started);
    if (wait > 0) await sleep(wait);
  }
  if (s.status === "passed") liveness.passed = { id: s.id, at: Date.now() };
  return s;
}

// The Liveness tab: its own camera, one challenge per click.
function livenessTab() {
  const start = $("liveness-start");
  const panel = $("liveness-challenge");
  const status = $("liveness-status");
  let stream = null;
  const stop = () => {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
  };
  start.addEventListener("click", async () => {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return setStatus(status, "This browser gives no camera to this page (it needs https or localhost).", true);
    }
    start.disabled = true;
    setStatus(status, "");
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: "user" },
        audio: false,
      });
      const video = el("video", { muted: "", playsinline: "", "aria-label": "Camera preview", id: "liveness-video" });
      video.muted = true;
      const view = challengeView("liveness-view");
      panel.replaceChildren(video, view.root);
      panel.hidden = false;
      video.srcObject = stream;
      await video.play().catch(() => {});
      const s = await runChallenge(video, view, () => !stream);
      if (s.status === "passed") {
        setStatus(status, "You can now identify or enrol from the camera, or upload a photo of this face (once).");
      }
    } catch (err) {
      const noCamera = err.name === "NotAllowedError" || err.name === "NotFoundError";
      setStatus(status, noCamera ? `No camera: ${err.message}` : err.message, true);
    } finally {
      stop();
      panel.querySelector("video")?.remove(); // the camera is off: keep the result, not a black box
      start.disabled = false;
      start.textContent = "Start again";
    }
  });
  cameras.push({ stop });
}

// ---------------------------------------------------------------------- identify
// One photo, as the multipart field "image" (identify and analyze both take it so)
function postImage(path, file, fields = {}) {
  const form = new FormData();
  form.append("image", file, file.name);
  for (const [name, value] of Object.entries(fields)) if (value) form.append(name, value);
  return api(path, { method: "POST", form });
}

let shown = null; // the identify result on screen, for laying out its labels again on resize

async function identify(file) {
  const status = $("identify-status");
  const img = $("identify-img");
  shown = null;
  $("identify-boxes").replaceChildren();
  $("identify-list").replaceChildren();
  showImage(img, file);
  $("identify-result").hidden = false;
  setStatus(status, `Looking for faces in ${file.name}…`);
  let result;
  try {
    const session = liveness.required ? takeLivenessSession([file]) : null;
    result = await postImage("/v1/identify?top_k=3", file, { liveness_session: session });
  } catch (err) {
    setStatus(status, err.message, true);
    return;
  }
  const known = result.faces.filter((f) => f.identity).length;
  setStatus(
    status,
    result.faces.length === 0
      ? "No faces found in this photo."
      : `${result.faces.length} face(s): ${known} recognised, ${result.faces.length - known} unknown.`,
  );
  shown = result;
  await img.decode().catch(() => {});
  drawFaces();
  const items = result.faces.map((face, i) => {
    const cands = face.candidates.map((c) => `${c.identity} ${fmt(c.score)}`).join(" · ");
    return el(
      "li",
      {},
      el("div", { class: `who${face.identity ? "" : " unknown"}`, text: `${i + 1}. ${face.identity ?? "unknown"}` }),
      el("div", { class: "cands", text: face.identity ? `score ${fmt(face.score)}` : "matches nobody enrolled" }),
      cands ? el("div", { class: "cands", text: `nearest: ${cands}` }) : null,
    );
  });
  $("identify-list").replaceChildren(...items);
  if (result.faces.length) await analyse(file, result, items);
}

// ---------------------------------------------------------------------- analysis
// Each identified face also gets its analysis (POST /v1/analyze on the same photo): expression,
// quality (with the factors that pull it down), head pose, eyes and mouth. The two answers come
// from the same detector, so a face is matched by its box.
const FACTOR_WORDS = {
  sharpness: "blurred",
  exposure: "badly exposed",
  size: "small",
  pose: "turned away",
  eyes_open: "eyes closed",
  occlusion: "eyes or face covered",
  flip_agreement: "unsteady template",
};

const sameBox = (a, b) => a.left === b.left && a.top === b.top && a.right === b.right && a.bottom === b.bottom;
const deg = (v) => `${v > 0 ? "+" : v < 0 ? "−" : ""}${Math.abs(Math.round(v))}°`;

function analysisLines(face) {
  const lines = [];
  const e = face.expression;
  if (e) {
    const p = e.scores[e.label];
    lines.push(`expression: ${e.label}${p === undefined ? "" : ` (${Math.round(100 * p)}%)`}`);
  }
  const weak = Object.entries(face.quality_factors)
    .filter(([, v]) => v !== null && v < 0.5)
    .map(([k]) => FACTOR_WORDS[k] ?? k);
  lines.push(`quality ${face.quality.toFixed(2)}${weak.length ? `: ${weak.join(", ")}` : ""}`);
  const { yaw, pitch, roll } = face.pose;
  lines.push(`head: yaw ${deg(yaw)}, pitch ${deg(pitch)}, roll ${deg(roll)}`);
  lines.push(`eyes open ${face.eyes_open.toFixed(2)} · mouth open ${face.mouth_open.toFixed(2)}`);
  return lines;
}

async function analyse(file, result, items) {
  let analysed;
  try {
    analysed = await postImage("/v1/analyze", file);
  } catch (err) {
    items.forEach((li) => li.append(el("div", { class: "analysis error", text: `analysis failed: ${err.message}` })));
    return;
  }
  if (shown !== result) return; // another photo came meanwhile
  result.faces.forEach((face, i) => {
    const found = analysed.faces.find((a) => sameBox(a.box, face.box));
    if (!found) return;
    const lines = analysisLines(found).map((text) => el("div", { text }));
    items[i].append(el("div", { class: "analysis", "data-quality": found.quality.toFixed(4) }, ...lines));
  });
}

// Boxes are percentages of the decoded (EXIF-rotated) size, so they follow the image as it
// scales; labels are laid out in pixels, so they are placed again whenever the image resizes.
function drawFaces() {
  const layer = $("identify-boxes");
  const img = $("identify-img");
  layer.replaceChildren();
  if (!shown || !img.clientWidth) return;
  const { width, height, faces } = shown;
  const pct = (v, of) => `${(100 * v) / of}%`;
  for (const face of faces) {
    const { left, top, right, bottom } = face.box;
    const box = el("div", { class: `face-box${face.identity ? "" : " unknown"}`, "data-identity": face.identity ?? "" });
    Object.assign(box.style, {
      left: pct(left, width),
      top: pct(top, height),
      width: pct(right - left, width),
      height: pct(bottom - top, height),
    });
    layer.append(box);
  }
  placeLabels(layer, faces, img.clientWidth / width, img.clientHeight / height, img.clientWidth, img.clientHeight);
}

// ---------------------------------------------------------------- label placement
// Each label goes where it covers no other label and no other face: above its box, else below,
// else inside it; failing that in a shorter form (the name cut to about twice the face's width,
// then the number alone). Small faces get a smaller font, long names are cut with "…", and the
// tooltip always has the whole text.
const HARD = 1e6; // covering another label
const CENTRE = 1e5; // covering another face's centre
const CLEAR = 100; // a place this cheap covers (next to) nothing: take it
const LABEL_MAX = 240; // pixels, however much room there is

function labelTexts(face, i, cut) {
  const name = face.identity ?? "unknown";
  const short = cut >= name.length ? name : `${name.slice(0, Math.max(1, cut - 1)).trimEnd()}…`;
  const score = face.identity ? ` ${fmt(face.score)}` : "";
  return `${i + 1}. ${short}${score}`;
}

function candidates(b, w, h, W, H) {
  const gap = 2;
  const xs = [b.x, b.x + (b.w - w) / 2, b.x + b.w - w];
  const ys = [b.y - h - gap, b.y + b.h + gap, b.y + gap + 2, b.y + b.h - h - gap - 2]; // above, below, inside
  const clamp = (v, hi) => Math.max(0, Math.min(v, hi));
  return ys.flatMap((y) => xs.map((x) => ({ x: clamp(x, W - w), y: clamp(y, H - h), w, h })));
}

const intersection = (a, b) =>
  Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x)) *
  Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));

function cost(r, own, boxes, placed) {
  let total = 0;
  for (const p of placed) if (intersection(r, p) > 0) total += HARD;
  boxes.forEach((b, k) => {
    if (k === own) return;
    const cx = b.x + b.w / 2;
    const cy = b.y + b.h / 2;
    if (r.x < cx && cx < r.x + r.w && r.y < cy && cy < r.y + r.h) total += CENTRE;
    total += 4 * intersection(r, b);
  });
  return total;
}

// The label's text with the name cut (if need be) so that the label is at most maxWidth wide.
function fitLabel(label, face, i, maxWidth) {
  const length = (face.identity ?? "unknown").length;
  label.textContent = labelTexts(face, i, length);
  const width = label.offsetWidth;
  if (width <= maxWidth) return label.textContent;
  let cut = Math.max(4, Math.floor((length * maxWidth) / width));
  label.textContent = labelTexts(face, i, cut);
  while (label.offsetWidth > maxWidth && cut > 4) label.textContent = labelTexts(face, i, --cut);
  return label.textContent;
}

function placeLabels(layer, faces, sx, sy, W, H) {
  const boxes = faces.map(({ box }) => ({
    x: box.left * sx,
    y: box.top * sy,
    w: (box.right - box.left) * sx,
    h: (box.bottom - box.top) * sy,
  }));
  const placed = [];
  const order = boxes.map((_, i) => i).sort((a, b) => boxes[a].y - boxes[b].y || boxes[a].x - boxes[b].x);
  for (const i of order) {
    const face = faces[i];
    const b = boxes[i];
    const title = `${labelTexts(face, i, Infinity)}${face.identity ? "" : " (matches nobody enrolled)"}`;
    const label = el("span", { class: `face-label${face.identity ? "" : " unknown"}`, title });
    label.style.fontSize = `${Math.max(10, Math.min(13, Math.round(b.h / 5)))}px`;
    layer.append(label);
    const forms = [fitLabel(label, face, i, Math.min(LABEL_MAX, W)), fitLabel(label, face, i, Math.max(2 * b.w, 72))];
    let best = null;
    [...new Set(forms), `${i + 1}.`].forEach((text, form) => {
      if (best && best.cost < CLEAR) return;
      label.textContent = text;
      candidates(b, label.offsetWidth, label.offsetHeight, W, H).forEach((r, rank) => {
        const c = cost(r, i, boxes, placed) + rank + 20 * form;
        if (!best || c < best.cost) best = { cost: c, text, r };
      });
    });
    label.textContent = best.text;
    label.style.left = `${best.r.x}px`;
    label.style.top = `${best.r.y}px`;
    placed.push(best.r);
  }
}

// ------------------------------------------------------------------------ verify
const verifyFiles = { a: null, b: null };

function chooseVerifyFile(side, file) {
  verifyFiles[side] = file;
  showImage($(`verify-img-${side}`), file);
  $("verify-result").hidden = true;
}

async function verify(event) {
  event.preventDefault();
  const status = $("verify-status");
  const result = $("verify-result");
  if (!verifyFiles.a || !verifyFiles.b) return setStatus(status, "Choose or drop both photos.", true);
  const form = new FormData();
  form.append("a", verifyFiles.a, verifyFiles.a.name);
  form.append("b", verifyFiles.b, verifyFiles.b.name);
  $("verify-submit").disabled = true;
  result.hidden = true;
  setStatus(status, "Comparing…");
  try {
    const r = await api("/v1/verify", { method: "POST", form });
    setStatus(status, "");
    result.classList.toggle("same", r.same);
    result.querySelector(".verdict-title").textContent = r.same ? "Same person" : "Different people";
    const numbers = result.querySelector(".numbers");
    numbers.textContent = `score ${fmt(r.score)} · threshold ${fmt(r.threshold)} (the same person scores at or above it)`;
    numbers.dataset.scores = `${r.score} ${r.threshold}`;
    result.hidden = false;
  } catch (err) {
    setStatus(status, err.message, true);
  } finally {
    $("verify-submit").disabled = false;
  }
}

// ------------------------------------------------------------------------ people
async function thumbnailUrl(name) {
  if (state.thumbs.has(name)) return state.thumbs.get(name);
  let url = null;
  try {
    url = await blobUrl(`${person(name)}/thumbnail`);
  } catch (_) {
    /* no thumbnail: initials instead */
  }
  state.thumbs.set(name, url);
  return url;
}

function forgetThumbnail(name) {
  const url = state.thumbs.get(name);
  if (url) URL.revokeObjectURL(url);
  state.thumbs.delete(name);
}

// Everyone, page by page where the service pages its list (it says how many there are in all).
async function fetchPeople() {
  const people = [];
  for (let offset = 0; ; ) {
    const data = await api(`/v1/identities?limit=${PEOPLE_PAGE}&offset=${offset}`);
    people.push(...data.identities);
    const next = data.next_offset ?? (typeof data.total === "number" ? offset + data.identities.length : null);
    if (next == null || next <= offset || !data.identities.length || people.length >= (data.total ?? 0)) break;
    offset = next;
  }
  return people;
}

async function loadPeople() {
  if (!state.key) return;
  try {
    state.people = await fetchPeople();
  } catch (err) {
    setStatus($("people-status"), err.message, true);
    return;
  }
  setStatus($("people-status"), state.people.length ? "" : "Nobody is enrolled yet.");
  $("people-count").textContent = `(${state.people.length})`;
  $("people-names").replaceChildren(...state.people.map((p) => el("option", { value: p.name })));
  renderPeople();
}

function renderPeople() {
  const filter = $("people-filter").value.trim().toLowerCase();
  const matching = state.people.filter((p) => p.name.toLowerCase().includes(filter));
  $("people-grid").replaceChildren(...matching.slice(0, state.cardsShown).map(personCard));
  const more = $("people-more");
  more.hidden = matching.length <= state.cardsShown;
  more.textContent = `Show more (${matching.length - state.cardsShown} not shown)`;
}

// A thumbnail over (or beside) a name and a line of detail: a person's card, one of their photos.
function tile(tag, attrs, thumb, name, detail) {
  const meta = el("div", { class: "meta" }, el("div", { class: "name", text: name }), el("div", { class: "count", text: detail }));
  return el(tag, attrs, thumb, meta);
}

function personCard(p) {
  const thumb = el("div", { class: "thumb", "aria-hidden": "true", text: initials(p.name) });
  // one stored, or one the service can cut from a photo file (people enrolled from the command line)
  if (p.thumbnail || p.templates > 0) {
    thumbnailUrl(p.name).then((url) => {
      if (url) thumb.replaceChildren(el("img", { src: url, alt: "" }));
    });
  }
  const card = tile("article", { class: "person", "data-name": p.name }, thumb, p.name, `${p.templates} photo(s)`);
  const actions = el("div", { class: "actions card-actions" }, button("Photos", () => openPhotos(p.name)));
  if (state.role === "admin") {
    actions.append(
      button("Add photos", () => addPhotos(p.name)),
      button("Rename", () => startRename(card, p)),
      button("Remove", () => removePerson(p), "small danger"),
    );
  }
  card.append(actions);
  return card;
}

function initials(name) {
  return name
    .split(/[\s_.-]+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join("");
}

function addPhotos(name) {
  $("enrol-name").value = name;
  showTab("enrol");
  $("enrol-files").focus();
}

function startRename(card, p) {
  const meta = card.querySelector(".meta");
  const input = el("input", { type: "text", value: p.name, "aria-label": `New name for ${p.name}` });
  const error = el("div", { class: "error" });
  const save = async () => {
    const name = input.value.trim();
    if (!name || name === p.name) return renderPeople();
    try {
      await api(person(p.name), { method: "PATCH", json: { name } });
      forgetThumbnail(p.name);
      if (state.photosOf === p.name) closePhotos();
      await loadPeople();
    } catch (err) {
      error.textContent = err.message;
    }
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") save();
    if (e.key === "Escape") renderPeople();
  });
  meta.replaceChildren(
    input,
    error,
    el("div", { class: "actions" }, button("Save", save, "small"), button("Cancel", renderPeople)),
  );
  card.querySelector(":scope > .card-actions")?.remove();
  input.focus();
  input.select();
}

async function removePerson(p) {
  if (!confirm(`Remove ${p.name} and their ${p.templates} photo(s) from the gallery?`)) return;
  let message = `Removed ${p.name}.`;
  let failed = false;
  try {
    await api(person(p.name), { method: "DELETE" });
    forgetThumbnail(p.name);
    if (state.photosOf === p.name) closePhotos();
  } catch (err) {
    [message, failed] = [err.message, true];
  }
  await loadPeople();
  setStatus($("people-status"), message, failed);
  loadInfo();
}

// ------------------------------------------------------------- one person's photos
async function openPhotos(name, message = "") {
  state.photosOf = name;
  const panel = $("photos-panel");
  $("photos-title").textContent = `Photos of ${name}`;
  panel.hidden = false;
  setStatus($("photos-status"), message || "Loading…");
  let data;
  try {
    data = await api(`${person(name)}/photos`);
  } catch (err) {
    setStatus($("photos-status"), err.message, true);
    return;
  }
  if (state.photosOf !== name) return; // another person was opened meanwhile
  setStatus($("photos-status"), message || (data.photos.length ? "" : `${name} has no photos left.`));
  $("photos-list").replaceChildren(...data.photos.map((photo) => photoItem(name, photo)));
  panel.scrollIntoView({ block: "nearest" });
}

function closePhotos() {
  state.photosOf = null;
  $("photos-panel").hidden = true;
  for (const img of $("photos-list").querySelectorAll("img")) URL.revokeObjectURL(img.src);
  $("photos-list").replaceChildren();
}

function photoItem(name, photo) {
  const { left, top, right, bottom } = photo.box;
  const thumb = el("div", { class: "thumb", "aria-hidden": "true" });
  if (photo.thumbnail) {
    blobUrl(`${person(name)}/photos/${photo.id}/thumbnail`)
      .then((url) => thumb.replaceChildren(el("img", { src: url, alt: "" })))
      .catch(() => {});
  }
  const added = photo.created_at ? new Date(photo.created_at).toLocaleString() : "unknown";
  const quality = photo.quality == null ? "" : ` · detector score ${photo.quality.toFixed(2)}`;
  const detail = `added ${added} · face ${right - left}×${bottom - top} px${quality}`;
  const item = tile("li", { class: "photo", "data-id": String(photo.id) }, thumb, photo.source, detail);
  if (state.role === "admin") item.append(button("Delete", () => deletePhoto(name, photo), "small danger"));
  return item;
}

async function deletePhoto(name, photo) {
  if (!confirm(`Delete ${photo.source} from ${name}'s photos?`)) return;
  try {
    const r = await api(`${person(name)}/photos/${photo.id}`, { method: "DELETE" });
    await openPhotos(name, `Deleted ${photo.source} (${r.templates} photo(s) left).`);
  } catch (err) {
    setStatus($("photos-status"), err.message, true);
  }
  loadPeople();
  loadInfo();
}

// ---------------------------------------------------------- people in these photos
// POST /v1/cluster groups the faces of the photos by person; each group can be enrolled under a
// name by sending its photos (the files the user chose, kept here) to the enrol endpoint.
let clusterFiles = []; // the photos of the groups on screen, by the answer's file_index
let clusterRun = 0; // the latest request: an older one's answer, arriving late, is dropped

function clearClusters() {
  clusterRun += 1;
  clusterFiles = [];
  $("cluster-groups").replaceChildren();
  $("cluster-errors").replaceChildren();
  setStatus($("cluster-status"), "");
}

function tooMany(files) {
  const info = state.info;
  if (!info) return null;
  if (files.length > info.max_cluster_files) {
    return `${files.length} photos: the server takes at most ${info.max_cluster_files} at a time.`;
  }
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  if (bytes > info.max_upload_bytes) {
    const mb = (n) => (n / 1e6).toFixed(1);
    return `These photos come to ${mb(bytes)} MB; the server takes at most ${mb(info.max_upload_bytes)} MB at a time.`;
  }
  return null;
}

async function clusterPhotos(files) {
  const status = $("cluster-status");
  clearClusters();
  const refused = tooMany(files);
  if (refused) return setStatus(status, `${refused} Choose fewer.`, true);
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  setStatus(status, `Looking for faces in ${files.length} photo(s)…`);
  $("cluster-files").value = ""; // the same photos may be chosen again
  const run = clusterRun;
  let result;
  try {
    result = await api("/v1/cluster", { method: "POST", form });
  } catch (err) {
    if (run !== clusterRun) return;
    setStatus(status, err.message, true);
    if (err.details.length) showClusterErrors(err.details);
    return;
  }
  if (run !== clusterRun) return;
  clusterFiles = files;
  const ok = result.files.length - result.failed;
  const refusedText = result.failed ? `; ${result.failed} photo(s) refused` : "";
  setStatus(
    status,
    `${result.faces} face(s) in ${ok} photo(s): ${result.groups.length} group(s)${refusedText}.`,
    result.failed > 0,
  );
  showClusterErrors(result.files.filter((f) => f.status === "error"));
  $("cluster-groups").replaceChildren(...result.groups.map((g) => groupRow(g, result.files)));
}

function showClusterErrors(files) {
  $("cluster-errors").replaceChildren(
    ...files.map((f) =>
      el(
        "li",
        {},
        el("span", { class: "failed", text: "refused" }),
        ` ${f.file} — ${(f.message || f.code).replace(`${f.file}: `, "")}`,
      ),
    ),
  );
}

function groupRow(group, files) {
  const number = group.id + 1;
  const suggestion = el("span", { class: "suggest" });
  const setSuggestion = (text, known) => {
    suggestion.textContent = text;
    suggestion.classList.toggle("known", known);
  };
  if (group.identity) setSuggestion(`looks like ${group.identity} (${fmt(group.score)})`, true);
  else setSuggestion(group.candidates.length ? "matches nobody enrolled" : "", false);
  const head = el(
    "div",
    { class: "group-head" },
    el("span", { class: "group-title", text: `Person ${number}` }),
    el("span", { class: "count", text: `${group.size} face(s) in ${group.photos} photo(s)` }),
    suggestion,
  );
  const strip = el(
    "div",
    { class: "strip" },
    ...group.faces.map((f) =>
      el("img", {
        src: f.thumbnail,
        alt: `Face ${f.face + 1} of ${f.file}`,
        title: `${f.file}, face ${f.face + 1} · similarity to the group ${fmt(f.score)}`,
      }),
    ),
  );
  const row = el("li", { class: "group", "data-group": String(group.id) }, head, strip);
  if (state.role === "admin") {
    const status = el("p", { class: "status group-status", role: "status" });
    const results = el("ul", { class: "results group-results" });
    const name = el("input", {
      type: "text",
      class: "group-name",
      maxlength: "200",
      list: "people-names",
      autocomplete: "off",
      placeholder: "Name",
      "aria-label": `Name for person ${number}`,
    });
    name.value = group.identity ?? "";
    const submit = el("button", { type: "submit", class: "small", text: "Enrol this group" });
    const form = el("form", { class: "group-enrol" }, name, submit);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      submit.disabled = true;
      try {
        const who = await enrolGroup(group, files, name.value.trim(), status, results);
        if (who) setSuggestion(`enrolled as ${who}`, true);
      } finally {
        submit.disabled = false;
      }
    });
    row.append(form, status, results);
  }
  return row;
}

// Boxes of the same face, from two answers (both in the photo's pixels): mostly overlapping.
function sameFace(a, b) {
  const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
  const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  if (w <= 0 || h <= 0) return false;
  const area = (r) => (r.right - r.left) * (r.bottom - r.top);
  return (w * h) / (area(a) + area(b) - w * h) > 0.5;
}

// Enrol the group's photos as ``name``. Photos with one face go first: the enrol endpoint picks
// the subject of a photo with several faces against the person's photos enrolled before it.
async function enrolGroup(group, files, name, status, results) {
  const problem = nameProblem(name);
  if (problem) return setStatus(status, problem, true);
  const faceIn = new Map();
  for (const f of group.faces) if (!faceIn.has(f.file_index)) faceIn.set(f.file_index, f);
  const order = [...faceIn.keys()].sort((a, b) => (files[a].faces > 1) - (files[b].faces > 1) || a - b);
  const form = new FormData();
  for (const i of order) form.append("files", clusterFiles[i], clusterFiles[i].name);
  setStatus(status, `Enrolling ${order.length} photo(s) of ${name}…`);
  results.replaceChildren();
  // an added photo whose enrolled face is not this group's face (another person in a group photo)
  const note = (f, i) =>
    f.status === "added" && f.box && !sameFace(f.box, faceIn.get(order[i]).box)
      ? " (not the face of this group: check this photo)"
      : "";
  let who = null;
  try {
    const r = await api(`${person(name)}/images?create=true`, { method: "POST", form });
    setStatus(status, enrolSummary(r));
    showFileResults(results, r.files, note);
    forgetThumbnail(r.identity);
    who = r.identity;
  } catch (err) {
    setStatus(status, err.message, true);
    if (err.details.length > 1) showFileResults(results, err.details);
  }
  loadPeople();
  loadInfo();
  return who;
}

// ------------------------------------------------------------------------- enrol
let enrolFiles = [];

// What the page checks before sending a name (the service applies the whole naming rule).
function nameProblem(name) {
  if (!name) return "Give the person's name.";
  if (name.includes("/")) return "A name cannot contain '/'.";
  return null;
}

const enrolSummary = (r) =>
  `${r.identity}: ${r.added} added, ${r.skipped} already enrolled, ${r.failed} refused (${r.templates} photo(s) in all).`;

function chooseEnrolFiles(files) {
  enrolFiles = files;
  $("enrol-selected").replaceChildren(...files.map((f) => el("li", { text: f.name })));
}

async function enrol(event) {
  event.preventDefault();
  const name = $("enrol-name").value.trim();
  const status = $("enrol-status");
  const results = $("enrol-results");
  const problem = nameProblem(name);
  if (problem) return setStatus(status, problem, true);
  if (!enrolFiles.length) return setStatus(status, "Choose, drop or capture at least one photo.", true);
  const form = new FormData();
  for (const f of enrolFiles) form.append("files", f, f.name);
  const session = liveness.required ? takeLivenessSession(enrolFiles) : null;
  if (session) form.append("liveness_session", session);
  const largest = $("enrol-largest").checked;
  $("enrol-submit").disabled = true;
  setStatus(status, `Enrolling ${enrolFiles.length} photo(s) of ${name}…`);
  results.replaceChildren();
  try {
    const r = await api(`${person(name)}/images?create=true&largest=${largest}`, { method: "POST", form });
    setStatus(status, enrolSummary(r));
    showFileResults($("enrol-results"), r.files);
    forgetThumbnail(r.identity);
    chooseEnrolFiles([]);
    $("enrol-files").value = "";
  } catch (err) {
    setStatus(status, err.message, true);
    if (err.details.length > 1) showFileResults($("enrol-results"), err.details);
  } finally {
    $("enrol-submit").disabled = false;
  }
  loadPeople();
  loadInfo();
}

// One line per file of an enrolment: added (which face and why), already enrolled, or refused
// (why). ``note(f, i)`` may add a word about file i.
function showFileResults(target, files, note = () => "") {
  const label = { added: "added", skipped: "already enrolled", error: "refused" };
  const cls = { added: "added", skipped: "skipped", error: "failed" };
  target.replaceChildren(
    ...files.map((f, i) => {
      // the message usually starts with the file name already
      const message = f.message ? ` — ${pageMessage(f.code, f.message).replace(`${f.file}: `, "")}` : "";
      const reason = f.reason ? ` — ${f.reason}` : "";
      const line = `${f.file}${message}${reason}${note(f, i)}`;
      return el("li", {}, el("span", { class: cls[f.status], text: label[f.status] }), ` ${line}`);
    }),
  );
}

// -------------------------------------------------------------------------- start
document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    $("signin-submit").disabled = true;
    $("signin-error").textContent = "";
    try {
      await signIn(key);
    } catch (err) {
      signOut(err.status === 401 ? "That key was not accepted." : err.message);
    } finally {
      $("signin-submit").disabled = false;
    }
  });
  $("signout").addEventListener("click", () => signOut());
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  dropzone($("identify-drop"), $("identify-file"), (files) => identify(files[0]));
  dropzone($("enrol-drop"), $("enrol-files"), chooseEnrolFiles);
  dropzone($("cluster-drop"), $("cluster-files"), clusterPhotos);
  for (const side of ["a", "b"]) {
    dropzone($(`verify-drop-${side}`), $(`verify-${side}`), (files) => chooseVerifyFile(side, files[0]));
  }
  camera("identify", $("identify-status"), identify, { closeAfterCapture: true });
  camera("enrol", $("enrol-status"), (file) => chooseEnrolFiles([...enrolFiles, file]), { closeAfterCapture: false });
  livenessTab();
  $("verify-form").addEventListener("submit", verify);
  $("enrol-form").addEventListener("submit", enrol);
  $("people-filter").addEventListener("input", () => {
    state.cardsShown = CARDS_PAGE;
    renderPeople();
  });
  $("people-more").addEventListener("click", () => {
    state.cardsShown += CARDS_PAGE;
    renderPeople();
  });
  $("photos-close").addEventListener("click", closePhotos);
  new ResizeObserver(() => drawFaces()).observe($("identify-img"));

  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) signIn(saved).catch(() => signOut("Your saved key was refused; sign in again."));
});
