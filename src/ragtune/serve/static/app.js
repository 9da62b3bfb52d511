// The ragtune page: the knowledge base and example questions, ask with streaming, answers
// with inline citation chips that open the cited passage on its page, the conversation.
// Every piece of document or answer text goes through textContent, never innerHTML.
"use strict";

const $ = (id) => document.getElementById(id);
let authRequired = false;
// the conversation so far, sent with each question so that a follow-up ("and the quarter
// before?") is read as one; the server rewrites it and says how (ragtune.rewrite)
let history = [];

const KEY = "ragtune-key";  // kept in sessionStorage: for this browser tab only

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = sessionStorage.getItem(KEY);
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

function status(text) { $("status").textContent = text; }

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({}, options, {
    headers: headers((options || {}).headers) }));
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
    throw new ApiError(message, response.status);
  }
  return response;
}

function showSource(c, chip) {
  for (const b of document.querySelectorAll(".cite.active, .chip.active")) {
    b.classList.remove("active");
  }
  for (const b of document.querySelectorAll('[data-cite="' + c.id + '"]')) {
    b.classList.add("active");
  }
  if (chip) chip.classList.add("active");
  $("source").hidden = false;
  $("app").classList.add("reading");  // a wider source panel, so the page can be read
  // the source as the server names it (docs/guide.md, uploads/alice/notes.md): an upload
  // never looks like a file the operator ingested
  $("source-name").textContent = c.source || c.name;
  $("source-page").textContent = c.page ? "page " + c.page : "";
  $("source-support").textContent = c.supported ? "supports the answer"
    : "does not clearly support the answer";
  // rows of a table come with their header row, so the columns can be read
  $("source-text").textContent = c.header ? c.header + "\n" + c.text : c.text;
  showPage(c);
}

// The cited PDF page, rendered by the server, with the passage's line boxes over it
// (fractions of the page from its top-left corner, so they fit any rendered size).
async function showPage(c) {
  const view = $("source-view");
  view.replaceChildren();
  view.hidden = true;
  if (!c.page || !c.boxes || !c.boxes.length) return;
  let url;
  try {
    const blob = await (await api("/v1/chunks/" + encodeURIComponent(c.id) + "/page.png")).blob();
    url = await new Promise((resolve, reject) => {  // a data: URL, which the page's CSP allows
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(new Error("could not read the page image"));
      reader.readAsDataURL(blob);
    });
  } catch (error) {
    status(error.message);
    return;
  }
  const sheet = el("div", "page");  // the image and its marks, the same size
  const img = el("img");
  img.alt = (c.source || c.name) + ", page " + c.page;
  sheet.appendChild(img);
  for (const [x0, y0, x1, y1] of c.boxes) {
    const mark = el("div", "highlight");
    mark.style.left = (100 * x0) + "%";
    mark.style.top = (100 * y0) + "%";
    mark.style.width = (100 * (x1 - x0)) + "%";
    mark.style.height = (100 * (y1 - y0)) + "%";
    sheet.appendChild(mark);
  }
  view.appendChild(sheet);
  view.hidden = false;
  img.addEventListener("load", () => {
    const first = sheet.querySelector(".highlight");
    view.scrollTop = Math.max(0, first.offsetTop - view.clientHeight / 3);
  }, { once: true });
  img.src = url;
}

function chipFor(c, cls, label) {
  const button = el("button", cls + (c.supported ? "" : " unsupported"), label);
  button.type = "button";
  button.dataset.cite = c.id;
  button.title = (c.source || c.name) + (c.page ? ", page " + c.page : "");
  button.addEventListener("click", () => showSource(c, button));
  return button;
}

// The answer's text with each [n] marker made a chip that opens its source; a marker with
// no citation stays text.
function renderAnswer(answer, text, citations) {
  const byN = new Map(citations.map((c) => [String(c.n), c]));
  answer.replaceChildren();
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const c = byN.get(m[1]);
    if (!c) continue;
    answer.appendChild(document.createTextNode(text.slice(last, m.index)));
    answer.appendChild(chipFor(c, "chip", m[1]));
    last = m.index + m[0].length;
  }
  answer.appendChild(document.createTextNode(text.slice(last)));
}

function renderCitations(turn, citations) {
  if (!citations.length) return;
  const box = el("div", "cites");
  box.appendChild(el("span", "meta", "Sources:"));
  for (const c of citations) {
    const label = "[" + c.n + "] " + (c.source || c.name) + (c.page ? ", p. " + c.page : "");
    box.appendChild(chipFor(c, "cite", label));
  }
  turn.appendChild(box);
}

async function ask(question) {
  $("welcome").hidden = true;
  const turn = el("div", "turn");
  turn.appendChild(el("div", "question", question));
  const answer = el("div", "answer", "");
  turn.appendChild(answer);
  $("log").appendChild(turn);
  $("send").disabled = true;
  status("answering…");
  try {
    const response = await api("/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: $("model").value || "rag", stream: true,
                             messages: history.concat([{ role: "user", content: question }]) })
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let final = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut).trim();
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data:")) continue;
        const data = event.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices[0].delta || {};
        if (delta.content) answer.textContent += delta.content;
        if (chunk.citations) final = chunk;
      }
      $("log").scrollTop = $("log").scrollHeight;
    }
    if (final) {
      const r = final.ragtune || {};
      // with the [n] markers ragtune added, as chips
      renderAnswer(answer, r.answer || answer.textContent, final.citations);
      const rw = r.rewrite;
      if (rw && rw.question !== rw.asked) {
        turn.insertBefore(el("div", "rewrite", "searched for: " + rw.question), answer);
      }
      history.push({ role: "user", content: question },
                   { role: "assistant", content: answer.textContent });
      renderCitations(turn, final.citations);
      const ms = r.timings && r.timings.total_ms ? Math.round(r.timings.total_ms) + " ms" : "";
      turn.appendChild(el("div", "meta", [r.pipeline, ms].filter(Boolean).join(" · ")));
    }
    status("");
  } catch (error) {
    answer.classList.add("error");
    answer.textContent = error.message;
    status("");
  } finally {
    $("send").disabled = false;
  }
}

function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

async function loadDocuments() {
  const list = $("doc-list");
  const data = (await (await api("/v1/documents")).json()).data;
  list.replaceChildren();
  for (const d of data) {
    const item = el("li");
    const about = el("div", "doc");
    about.appendChild(el("span", "doc-name", d.source));
    const facts = [d.pages ? plural(d.pages, "page") : "", plural(d.chunks, "chunk")];
    const line = el("span", "doc-facts");
    line.appendChild(el("span", "badge " + (d.status === "indexed" ? "ok" : "warn"),
                        d.status || "indexed"));
    line.appendChild(document.createTextNode(" " + facts.filter(Boolean).join(" · ")));
    about.appendChild(line);
    item.appendChild(about);
    if (!canWrite) { list.appendChild(item); continue; }
    const remove = el("button", "delete", "Delete");
    remove.type = "button";
    remove.title = "Delete " + d.name;
    remove.addEventListener("click", async () => {
      status("deleting…");
      try { await api("/v1/documents/" + encodeURIComponent(d.id), { method: "DELETE" }); }
      catch (error) { status(error.message); return; }
      status("deleted " + d.name);
      loadDocuments();
      loadOverview();
    });
    item.appendChild(remove);
    list.appendChild(item);
  }
  if (!data.length) list.appendChild(el("li", "meta", "No documents yet."));
}

async function upload(files) {
  const form = new FormData();
  for (const f of files) form.append("file", f, f.name);
  status("uploading…");
  try {
    const result = await (await api("/v1/documents", { method: "POST", body: form })).json();
    status("ingested: " + result.added + " added, " + result.updated + " updated");
  } catch (error) {
    status(error.message);
  }
  loadDocuments();
  loadOverview();
}

async function loadModels() {
  const data = (await (await api("/v1/models")).json()).data;
  const select = $("model");
  select.replaceChildren();
  for (const m of data) select.appendChild(el("option", "", m.id));
  $("model-box").hidden = data.length < 2;
}

// The knowledge base's name and size, and questions to start with (GET /v1/kb).
async function loadOverview() {
  const kb = await (await api("/v1/kb")).json();
  $("kb-name").textContent = "· " + kb.name;
  $("welcome-name").textContent = kb.name;
  document.title = kb.name + " · ragtune";
  $("kb-summary").textContent = [plural(kb.documents, "document"),
    kb.pages ? plural(kb.pages, "page") : "", plural(kb.chunks, "chunk")]
    .filter(Boolean).join(" · ");
  const box = $("examples");
  box.replaceChildren();
  if (kb.examples.length) box.appendChild(el("p", "meta", "Try one of these:"));
  for (const e of kb.examples) {
    const button = el("button", "example", e.question);
    button.type = "button";
    button.title = "made from " + e.source;
    button.addEventListener("click", () => ask(e.question));
    box.appendChild(button);
  }
  if (!kb.documents) box.appendChild(el("p", "meta", canWrite
    ? "No documents yet: upload some on the right."
    : "No documents yet: ask the server's operator to ingest some."));
}

let canWrite = false;

function showGate(message) {
  $("app").hidden = true;
  $("gate").hidden = false;
  $("gate-error").textContent = message || "";
  $("key").focus();
}

async function start() {
  const health = await (await fetch("/health")).json();
  authRequired = health.auth;
  $("key-box").hidden = !authRequired;
  $("key-box").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (!key) { showGate("Type a key first."); return; }
    sessionStorage.setItem(KEY, key);
    $("key").value = "";
    refresh();
  });
  $("ask").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("question").value.trim();
    if (q) { $("question").value = ""; ask(q); }
  });
  $("new-chat").addEventListener("click", () => {
    history = [];
    for (const t of document.querySelectorAll("#log .turn")) t.remove();
    $("welcome").hidden = false;
    $("source").hidden = true;
    $("app").classList.remove("reading");
  });
  $("source-close").addEventListener("click", () => {
    $("source").hidden = true;
    $("app").classList.remove("reading");
  });
  $("upload").addEventListener("submit", (event) => {
    event.preventDefault();
    if ($("files").files.length) upload($("files").files);
  });
  if (authRequired && !sessionStorage.getItem(KEY)) showGate();
  else refresh();
}

async function refresh() {
  status("loading…");
  try {
    const me = await (await api("/v1/whoami")).json();
    canWrite = me.scope === "write" || me.scope === "admin";
    $("upload").hidden = !canWrite;
    $("key").placeholder = authRequired ? "key in use (" + me.scope + ")" : "";
    await loadModels();
    await loadOverview();
    await loadDocuments();
    $("gate").hidden = true;
    $("app").hidden = false;
    status("");
    $("question").focus();
  } catch (error) {
    status("");
    if (error.status === 401) {  // a wrong key: forget it and say what the server said
      sessionStorage.removeItem(KEY);
      showGate(error.message);
    } else {
      showGate("The server refused: " + error.message);
    }
  }
}

start();
