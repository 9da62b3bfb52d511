// The ragtune page: ask with streaming, show cited sources, manage documents.
// Every piece of document or answer text goes through textContent, never innerHTML.
"use strict";

const $ = (id) => document.getElementById(id);
let authRequired = false;
// the conversation so far, sent with each question so that a follow-up ("and the quarter
// before?") is read as one; the server rewrites it and says how (ragtune.rewrite)
let history = [];

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = sessionStorage.getItem("ragtune-key") || $("key").value;
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
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
    throw new Error(message);
  }
  return response;
}

function showSource(c) {
  $("source").hidden = false;
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

function renderCitations(turn, citations) {
  const box = el("div", "cites");
  for (const c of citations) {
    const label = "[" + c.n + "] " + (c.source || c.name) + (c.page ? ", p. " + c.page : "");
    const button = el("button", "cite" + (c.supported ? "" : " unsupported"), label);
    button.type = "button";
    button.addEventListener("click", () => showSource(c));
    box.appendChild(button);
  }
  turn.appendChild(box);
}

async function ask(question) {
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
      if (r.answer) answer.textContent = r.answer;  // with the [n] markers ragtune added
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

async function loadDocuments() {
  const list = $("doc-list");
  const data = (await (await api("/v1/documents")).json()).data;
  list.replaceChildren();
  for (const d of data) {
    const item = el("li");
    item.appendChild(el("span", "doc-name", d.source + " (" + d.chunks + " chunks)"));
    const remove = el("button", "delete", "Delete");
    remove.type = "button";
    remove.title = "Delete " + d.name;
    remove.addEventListener("click", async () => {
      status("deleting…");
      try { await api("/v1/documents/" + encodeURIComponent(d.id), { method: "DELETE" }); }
      catch (error) { status(error.message); return; }
      status("deleted " + d.name);
      loadDocuments();
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
}

async function loadModels() {
  const data = (await (await api("/v1/models")).json()).data;
  const select = $("model");
  select.replaceChildren();
  for (const m of data) select.appendChild(el("option", "", m.id));
}

async function start() {
  const health = await (await fetch("/health")).json();
  authRequired = health.auth;
  $("key-box").hidden = !authRequired;
  $("key").value = sessionStorage.getItem("ragtune-key") || "";
  $("key").addEventListener("change", () => {
    sessionStorage.setItem("ragtune-key", $("key").value);
    refresh();
  });
  $("ask").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("question").value.trim();
    if (q) { $("question").value = ""; ask(q); }
  });
  $("new-chat").addEventListener("click", () => {
    history = [];
    $("log").replaceChildren();
    $("source").hidden = true;
  });
  $("upload").addEventListener("submit", (event) => {
    event.preventDefault();
    if ($("files").files.length) upload($("files").files);
  });
  refresh();
}

async function refresh() {
  try {
    await loadModels();
    await loadDocuments();
    status("");
  } catch (error) {
    status(authRequired ? "enter the API key: " + error.message : error.message);
  }
}

start();
