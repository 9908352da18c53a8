// caseextract review, two extractions: one key per decision. Plain JS, no build step.
"use strict";
(function () {
  const main = document.querySelector("main.pair-review");
  if (!main) return;
  const docN = main.dataset.n;
  const source = document.getElementById("source");
  const pane = document.getElementById("facts");
  const editor = document.getElementById("editor");
  const help = document.getElementById("help");
  const statusBox = document.getElementById("status");
  let pairs = JSON.parse(document.getElementById("pairs-data").textContent);
  let current = -1;

  function say(text, bad) {
    statusBox.textContent = text;
    statusBox.className = "show" + (bad ? " bad" : "");
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { statusBox.className = ""; }, 2500);
  }

  function select(n, scrollSource, scrollCard) {
    if (n < 0 || n >= pairs.length) return;
    current = n;
    pane.querySelectorAll("article.pair.current").forEach((a) => a.classList.remove("current"));
    source.querySelectorAll("mark.current").forEach((m) => m.classList.remove("current"));
    const card = document.getElementById("pair-" + n);
    if (card) {
      card.classList.add("current");
      if (scrollCard) card.scrollIntoView({block: "nearest"});
    }
    const marks = Array.from(source.querySelectorAll("mark[data-f]")).filter(
      (m) => m.dataset.f.split(" ").includes(String(n)));
    marks.forEach((m) => m.classList.add("current"));
    if (scrollSource && marks.length) marks[0].scrollIntoView({block: "center"});
  }

  async function refresh() {
    const r = await fetch("/api/pair/" + docN);
    const data = await r.json();
    source.innerHTML = data.source;
    pane.innerHTML = data.cards;
    pairs = data.data;
    const c = data.counts;
    document.getElementById("counts").textContent =
      `${c.agreed} agreed · ${c.differs} differ · ${c.only_a} only A · ${c.only_b} only B · ${c.open} to decide`;
  }

  async function post(body) {
    const r = await fetch("/api/pair/" + docN + "/decide", {
      method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body),
    });
    let data = {};
    try { data = await r.json(); } catch (e) { data = {errors: ["the server answered " + r.status]}; }
    return {ok: r.ok, data};
  }

  async function decide(action, value) {
    if (current < 0) { say("select a fact first (j/k)", true); return false; }
    const pair = pairs[current];
    const {ok, data} = await post({key: pair.key, action, value});
    if (!ok) { say((data.errors || [data.error]).join("; "), true); return data; }
    say(`${action === "a" ? "took A" : action === "b" ? "took B" : action + "ed"}: ${pair.label}`);
    const at = current;
    await refresh();
    // the next fact still to decide, else the next one
    const next = pairs.findIndex((p, i) => i > at && p.state === "undecided");
    select(next >= 0 ? next : Math.min(at + 1, pairs.length - 1), true, true);
    return true;
  }

  function startEdit() {
    if (current < 0) { say("select a fact first (j/k)", true); return; }
    const pair = pairs[current];
    document.getElementById("edit-value").value = JSON.stringify(pair.current || pair.a || pair.b || {}, null, 2);
    document.getElementById("edit-errors").innerHTML = "";
    editor.showModal();
    document.getElementById("edit-value").focus();
  }

  async function saveEdit() {
    const errors = document.getElementById("edit-errors");
    errors.innerHTML = "";
    let value;
    try { value = JSON.parse(document.getElementById("edit-value").value || "{}"); } catch (e) {
      const li = document.createElement("li");
      li.textContent = "not valid JSON (" + e.message + ")";
      errors.appendChild(li);
      return;
    }
    const result = await decide("edit", value);
    if (result === true) { editor.close(); return; }
    for (const text of (result && (result.errors || [result.error])) || []) {
      const li = document.createElement("li");
      li.textContent = text;
      errors.appendChild(li);
    }
  }

  document.getElementById("edit-save").addEventListener("click", saveEdit);
  document.getElementById("edit-cancel").addEventListener("click", () => editor.close());
  document.getElementById("help-button").addEventListener("click", () => help.showModal());
  editor.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); saveEdit(); }
  });
  source.addEventListener("click", (e) => {
    const mark = e.target.closest("mark[data-f]");
    if (!mark) return;
    const ids = mark.dataset.f.split(" ").map(Number);
    const i = ids.indexOf(current);
    select(i >= 0 ? ids[(i + 1) % ids.length] : ids[0], false, true);
  });
  pane.addEventListener("click", (e) => {
    const card = e.target.closest("article.pair");
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

  if (pairs.length) select(0, true, false); // the first disagreement is ready for a/b/e/r

  document.addEventListener("keydown", (e) => {
    if (editor.open || help.open || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest("input, textarea, select")) return;
    const keys = {
      j: () => select(Math.min(current + 1, pairs.length - 1), true, true),
      k: () => select(Math.max(current - 1, 0), true, true),
      a: () => decide("a"),
      b: () => decide("b"),
      r: () => decide("reject"),
      e: startEdit,
      "?": () => help.showModal(),
      "[": () => go("previous"),
      "]": () => go("next"),
    };
    const act = keys[e.key];
    if (act) { e.preventDefault(); act(); }
  });
})();
