// caseextract review: evidence <-> facts, decisions, keyboard. Plain JS, no build step.
"use strict";
(function () {
  const main = document.querySelector("main.review");
  if (!main) return;
  const docN = main.dataset.n;
  const source = document.getElementById("source");
  const factsPane = document.getElementById("facts");
  const editor = document.getElementById("editor");
  const help = document.getElementById("help");
  const addButton = document.getElementById("add-button");
  const statusBox = document.getElementById("status");
  let facts = JSON.parse(document.getElementById("facts-data").textContent);
  let current = -1;
  let editing = null; // {mode: "edit"|"add", path, offset}

  function say(text, bad) {
    statusBox.textContent = text;
    statusBox.className = "show" + (bad ? " bad" : "");
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { statusBox.className = ""; }, 2500);
  }

  function marksOf(n) {
    return Array.from(source.querySelectorAll("mark[data-f]")).filter(
      (m) => m.dataset.f.split(" ").includes(String(n)));
  }

  function select(n, scrollSource, scrollCard) {
    if (n < 0 || n >= facts.length) return;
    current = n;
    factsPane.querySelectorAll("article.fact.current").forEach((a) => a.classList.remove("current"));
    source.querySelectorAll("mark.current").forEach((m) => m.classList.remove("current", "flash"));
    const card = document.getElementById("fact-" + n);
    if (card) {
      card.classList.add("current");
      if (scrollCard) card.scrollIntoView({block: "nearest"});
    }
    const marks = marksOf(n);
    marks.forEach((m) => m.classList.add("current"));
    if (scrollSource && marks.length) {
      marks[0].scrollIntoView({block: "center"});
      marks.forEach((m) => { void m.offsetWidth; m.classList.add("flash"); });
    }
  }

  async function refresh() {
    const keep = current >= 0 && facts[current] ? facts[current].path : null;
    const r = await fetch("/api/doc/" + docN);
    const data = await r.json();
    source.innerHTML = data.source;
    factsPane.innerHTML = data.facts;
    facts = data.data;
    document.getElementById("counts").textContent =
      `${data.counts.facts} facts · ${data.counts.problems} with problems · ${data.counts.undecided || 0} undecided`;
    const again = facts.findIndex((f) => f.path === keep);
    if (again >= 0) select(again, false, false);
  }

  async function post(body) {
    const r = await fetch("/api/doc/" + docN + "/decide", {
      method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await r.json(); } catch (e) { data = {errors: ["the server answered " + r.status]}; }
    return {ok: r.ok, data};
  }

  async function decide(action) {
    if (current < 0) { say("select a fact first (j/k)", true); return; }
    const fact = facts[current];
    const {ok, data} = await post({path: fact.path, action});
    if (!ok) { say((data.errors || [data.error]).join("; "), true); return; }
    say(`${action}ed: ${fact.label}`);
    const next = current;
    await refresh();
    const at = facts.findIndex((f) => f.path === fact.path);
    select(Math.min((at >= 0 ? at : next) + 1, facts.length - 1), true, true);
  }

  function openEditor(mode, value, evidence, extra) {
    editing = Object.assign({mode}, extra || {});
    document.getElementById("editor-title").textContent = mode === "edit" ? "Edit fact" : "Add a missed fact";
    document.getElementById("list-label").hidden = mode !== "add";
    document.getElementById("edit-value").value = JSON.stringify(value, null, 2);
    document.getElementById("edit-evidence").value = evidence.join("\n");
    document.getElementById("edit-errors").innerHTML = "";
    editor.showModal();
    document.getElementById("edit-value").focus();
  }

  function startEdit() {
    if (current < 0) { say("select a fact first (j/k)", true); return; }
    const fact = facts[current];
    const value = Object.assign({}, fact.value);
    const evidence = value.evidence || [];
    delete value.evidence;
    openEditor("edit", value, evidence, {path: fact.path});
  }

  function selectionInSource() {
    const sel = window.getSelection();
    if (!sel || sel.isCollapsed || !sel.rangeCount) return null;
    const range = sel.getRangeAt(0);
    if (!source.contains(range.startContainer) || !source.contains(range.endContainer)) return null;
    const text = sel.toString();
    if (!text.trim()) return null;
    const before = document.createRange();
    before.setStart(source, 0);
    before.setEnd(range.startContainer, range.startOffset);
    return {text, offset: before.toString().length, rect: range.getBoundingClientRect()};
  }

  function startAdd() {
    const picked = selectionInSource();
    if (!picked) { say("select the text that states the fact in the source first", true); return; }
    addButton.hidden = true;
    const name = picked.text.trim().replace(/\s+/g, " ");
    const lists = document.getElementById("list-path");
    const keyOf = () => (lists.selectedOptions[0] ? lists.selectedOptions[0].dataset.key : "name");
    let key = keyOf();
    openEditor("add", {[key]: name}, [picked.text.trim()], {offset: picked.offset});
    lists.onchange = () => {
      // the selected words move to the main field of the newly chosen list's facts
      const box = document.getElementById("edit-value");
      let value;
      try { value = JSON.parse(box.value || "{}"); } catch (e) { return; }
      const next = keyOf();
      if (value[key] === name) { delete value[key]; value[next] = name; }
      key = next;
      box.value = JSON.stringify(value, null, 2);
    };
  }

  async function saveEditor() {
    let value;
    const errors = document.getElementById("edit-errors");
    try {
      value = JSON.parse(document.getElementById("edit-value").value || "{}");
    } catch (e) {
      errors.innerHTML = "";
      const li = document.createElement("li");
      li.textContent = "values: not valid JSON (" + e.message + ")";
      errors.appendChild(li);
      return;
    }
    value.evidence = document.getElementById("edit-evidence").value.split("\n")
      .map((s) => s.trim()).filter(Boolean);
    const body = editing.mode === "edit"
      ? {path: editing.path, action: "edit", value}
      : {path: document.getElementById("list-path").value, action: "add", value, offset: editing.offset};
    const {ok, data} = await post(body);
    if (!ok) {
      errors.innerHTML = "";
      for (const text of data.errors || [data.error]) {
        const li = document.createElement("li");
        li.textContent = text;
        errors.appendChild(li);
      }
      return;
    }
    editor.close();
    const path = data.decision.path;
    say((editing.mode === "edit" ? "edited: " : "added: ") + path);
    editing = null;
    await refresh();
    const at = facts.findIndex((f) => f.path === path);
    if (at >= 0) select(at, true, true);
  }

  document.getElementById("edit-save").addEventListener("click", saveEditor);
  document.getElementById("edit-cancel").addEventListener("click", () => editor.close());
  document.getElementById("help-button").addEventListener("click", () => help.showModal());
  addButton.querySelector("button").addEventListener("mousedown", (e) => e.preventDefault());
  addButton.querySelector("button").addEventListener("click", startAdd);
  editor.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); saveEditor(); }
  });

  source.addEventListener("click", (e) => {
    const mark = e.target.closest("mark[data-f]");
    if (!mark || !window.getSelection().isCollapsed) return;
    const ids = mark.dataset.f.split(" ").map(Number);
    const i = ids.indexOf(current);
    select(i >= 0 ? ids[(i + 1) % ids.length] : ids[0], false, true);
  });
  source.addEventListener("mouseup", () => {
    setTimeout(() => {
      const picked = selectionInSource();
      if (!picked) { addButton.hidden = true; return; }
      addButton.style.left = Math.round(picked.rect.left) + "px";
      addButton.style.top = Math.round(picked.rect.bottom + 6) + "px";
      addButton.hidden = false;
    }, 0);
  });
  factsPane.addEventListener("click", (e) => {
    const card = e.target.closest("article.fact");
    if (!card) return;
    select(Number(card.dataset.n), true, false);
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.action === "edit") startEdit(); else decide(button.dataset.action);
  });

  function go(rel) {
    const link = document.querySelector(`a[data-rel="${rel}"]`);
    if (link) window.location.href = link.href;
  }

  if (facts.length) select(0, true, false); // the first fact (a problem, if any) is ready for a/r/e

  document.addEventListener("keydown", (e) => {
    if (editor.open || help.open || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest("input, textarea, select")) return;
    const keys = {
      j: () => select(Math.min(current + 1, facts.length - 1), true, true),
      k: () => select(Math.max(current - 1, 0), true, true),
      a: () => decide("accept"),
      r: () => decide("reject"),
      e: startEdit,
      n: startAdd,
      "?": () => help.showModal(),
      "[": () => go("previous"),
      "]": () => go("next"),
    };
    const act = keys[e.key];
    if (act) { e.preventDefault(); act(); }
  });
})();
