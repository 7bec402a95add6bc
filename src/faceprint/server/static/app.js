// faceprint web page: plain JavaScript over the /v1 API. No build step, no CDN.
// Everything user-supplied goes into the page through textContent, never innerHTML.
"use strict";

const KEY_STORAGE = "faceprint.apiKey";
const $ = (id) => document.getElementById(id);

const state = { key: null, role: null, people: [], thumbs: new Map() };

// ------------------------------------------------------------------------- API
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
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
    try {
      const data = await response.json();
      if (data && data.error) ({ code, message } = data.error);
    } catch (_) {
      /* not JSON: keep the status line */
    }
    if (response.status === 401 && path !== "/v1/auth/whoami") signOut("Your key was refused; sign in again.");
    throw new ApiError(response.status, code, message);
  }
  return raw ? response : response.json();
}

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

function setStatus(node, text, isError = false) {
  node.textContent = text;
  node.classList.toggle("error", isError);
}

const fmt = (score) => (score < -0.5 ? "–" : score.toFixed(3));

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
  $("signin").hidden = true;
  $("session").hidden = false;
  $("app").hidden = false;
  showTab("identify");
  loadInfo();
  loadPeople();
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = state.role = null;
  for (const url of state.thumbs.values()) if (url) URL.revokeObjectURL(url);
  state.thumbs.clear();
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
    $("footer").textContent =
      `faceprint ${info.version} · ${info.detector} detector · ${info.embedder} embedder · ` +
      `identify threshold ${info.identify_threshold.toFixed(3)} · ${info.identities} people, ${info.templates} photos`;
  } catch (_) {
    /* the footer is optional */
  }
}

// ------------------------------------------------------------------------- tabs
function showTab(name) {
  for (const tab of ["identify", "people", "enrol"]) {
    const selected = tab === name;
    $(`tab-btn-${tab}`).setAttribute("aria-selected", String(selected));
    $(`tab-${tab}`).hidden = !selected || (tab === "enrol" && state.role !== "admin");
  }
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

// ---------------------------------------------------------------------- identify
async function identify(file) {
  const status = $("identify-status");
  const img = $("identify-img");
  const boxes = $("identify-boxes");
  const list = $("identify-list");
  boxes.replaceChildren();
  list.replaceChildren();
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(file);
  $("identify-result").hidden = false;
  setStatus(status, `Looking for faces in ${file.name}…`);
  const form = new FormData();
  form.append("image", file, file.name);
  let result;
  try {
    result = await api("/v1/identify?top_k=3", { method: "POST", form });
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
  result.faces.forEach((face, i) => {
    const { left, top, right, bottom } = face.box;
    const who = face.identity ?? "unknown";
    const label = `${who} ${fmt(face.score)}`;
    // percentages of the decoded (EXIF-rotated) size, so boxes follow the image as it scales
    const box = el("div", { class: `face-box${face.identity ? "" : " unknown"}`, "data-identity": who, title: label });
    box.style.left = `${(100 * left) / result.width}%`;
    box.style.top = `${(100 * top) / result.height}%`;
    box.style.width = `${(100 * (right - left)) / result.width}%`;
    box.style.height = `${(100 * (bottom - top)) / result.height}%`;
    if (top / result.height < 0.08) box.classList.add("label-below");
    box.append(el("span", { class: "face-label", text: `${i + 1}. ${label}` }));
    boxes.append(box);
    const cands = face.candidates.map((c) => `${c.identity} ${fmt(c.score)}`).join(" · ");
    list.append(
      el(
        "li",
        {},
        el("div", { class: `who${face.identity ? "" : " unknown"}`, text: `${i + 1}. ${who}` }),
        el("div", { class: "cands", text: face.identity ? `score ${fmt(face.score)}` : "matches nobody enrolled" }),
        cands ? el("div", { class: "cands", text: `nearest: ${cands}` }) : null,
      ),
    );
  });
}

// ------------------------------------------------------------------------ people
async function thumbnailUrl(name) {
  if (state.thumbs.has(name)) return state.thumbs.get(name);
  let url = null;
  try {
    const response = await api(`/v1/identities/${encodeURIComponent(name)}/thumbnail`, { raw: true });
    url = URL.createObjectURL(await response.blob());
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

async function loadPeople() {
  if (!state.key) return;
  try {
    const data = await api("/v1/identities");
    state.people = data.identities;
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
  const grid = $("people-grid");
  const shown = state.people.filter((p) => p.name.toLowerCase().includes(filter));
  grid.replaceChildren(...shown.map(personCard));
}

function personCard(person) {
  const thumb = el("div", { class: "thumb", "aria-hidden": "true", text: initials(person.name) });
  thumbnailUrl(person.name).then((url) => {
    if (url) thumb.replaceChildren(el("img", { src: url, alt: "" }));
  });
  const nameNode = el("div", { class: "name", text: person.name });
  const card = el(
    "article",
    { class: "person", "data-name": person.name },
    thumb,
    el("div", { class: "meta" }, nameNode, el("div", { class: "count", text: `${person.templates} photo(s)` })),
  );
  if (state.role === "admin") {
    const actions = el(
      "div",
      { class: "actions card-actions" },
      el("button", { type: "button", class: "small secondary", text: "Add photos", onclick: () => addPhotos(person.name) }),
      el("button", { type: "button", class: "small secondary", text: "Rename", onclick: () => startRename(card, person) }),
      el("button", { type: "button", class: "small danger", text: "Remove", onclick: () => removePerson(person) }),
    );
    card.append(actions);
  }
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

function startRename(card, person) {
  const meta = card.querySelector(".meta");
  const input = el("input", { type: "text", value: person.name, "aria-label": `New name for ${person.name}` });
  const error = el("div", { class: "error" });
  const save = async () => {
    const name = input.value.trim();
    if (!name || name === person.name) return renderPeople();
    try {
      await api(`/v1/identities/${encodeURIComponent(person.name)}`, { method: "PATCH", json: { name } });
      forgetThumbnail(person.name);
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
    el(
      "div",
      { class: "actions" },
      el("button", { type: "button", class: "small", text: "Save", onclick: save }),
      el("button", { type: "button", class: "small secondary", text: "Cancel", onclick: renderPeople }),
    ),
  );
  card.querySelector(":scope > .card-actions")?.remove();
  input.focus();
  input.select();
}

async function removePerson(person) {
  if (!confirm(`Remove ${person.name} and their ${person.templates} photo(s) from the gallery?`)) return;
  let message = `Removed ${person.name}.`;
  let failed = false;
  try {
    await api(`/v1/identities/${encodeURIComponent(person.name)}`, { method: "DELETE" });
    forgetThumbnail(person.name);
  } catch (err) {
    [message, failed] = [err.message, true];
  }
  await loadPeople();
  setStatus($("people-status"), message, failed);
  loadInfo();
}

// ------------------------------------------------------------------------- enrol
let enrolFiles = [];

function chooseEnrolFiles(files) {
  enrolFiles = files;
  $("enrol-selected").replaceChildren(...files.map((f) => el("li", { text: f.name })));
}

async function enrol(event) {
  event.preventDefault();
  const name = $("enrol-name").value.trim();
  const status = $("enrol-status");
  const results = $("enrol-results");
  if (!name) return setStatus(status, "Give the person's name.", true);
  if (name.includes("/")) return setStatus(status, "A name cannot contain '/'.", true);
  if (!enrolFiles.length) return setStatus(status, "Choose or drop at least one photo.", true);
  const form = new FormData();
  for (const f of enrolFiles) form.append("files", f, f.name);
  const largest = $("enrol-largest").checked;
  $("enrol-submit").disabled = true;
  setStatus(status, `Enrolling ${enrolFiles.length} photo(s) of ${name}…`);
  results.replaceChildren();
  try {
    const r = await api(`/v1/identities/${encodeURIComponent(name)}/images?create=true&largest=${largest}`, {
      method: "POST",
      form,
    });
    setStatus(
      status,
      `${r.identity}: ${r.added} added, ${r.skipped} already enrolled, ${r.failed} refused (${r.templates} photo(s) in all).`,
    );
    showFileResults(r.files);
    forgetThumbnail(r.identity);
    chooseEnrolFiles([]);
    $("enrol-files").value = "";
  } catch (err) {
    setStatus(status, err.message, true);
  } finally {
    $("enrol-submit").disabled = false;
  }
  loadPeople();
  loadInfo();
}

function showFileResults(files) {
  const label = { added: "added", skipped: "already enrolled", error: "refused" };
  const cls = { added: "added", skipped: "skipped", error: "failed" };
  $("enrol-results").replaceChildren(
    ...files.map((f) =>
      el(
        "li",
        {},
        el("span", { class: cls[f.status], text: label[f.status] }),
        // the message usually starts with the file name already
        ` ${f.file}${f.message ? ` — ${f.message.replace(`${f.file}: `, "")}` : ""}`,
      ),
    ),
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
  $("enrol-form").addEventListener("submit", enrol);
  $("people-filter").addEventListener("input", renderPeople);

  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) signIn(saved).catch(() => signOut("Your saved key was refused; sign in again."));
});
