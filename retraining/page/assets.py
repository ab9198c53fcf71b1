"""The page's style sheet and script, inlined into every page: no CDN, no framework, works offline.

The script keeps the function key from the page's own `?code=` on links, sends it as the
`x-functions-key` header for actions (never written into the HTML), runs the action buttons, and
every few seconds asks the JSON routes what is in progress: it shows the live phase, offers approve
and reject while a run waits for approval, and reloads the page when a run has ended.
"""

STYLE = """
:root { --ok:#2e7d32; --bad:#c62828; --warn:#ef6c00; --dry:#546e7a; --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0; background: #f5f7fa; }
header { background: #243b53; color: #fff; padding: 12px 24px; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 20px; margin: 0; } header a { color: #bcccdc; } header .live { margin-left: auto; font-size: 12px; color: #bcccdc; }
main { padding: 16px 24px; max-width: 1280px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; margin-bottom: 16px; }
h2 { font-size: 16px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.mono, button { white-space: nowrap; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; color: #fff; background: var(--dry); }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); } .badge.warn { background: var(--warn); }
.badge.running { background: #1565c0; } .badge.pending { background: #7b8794; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 16px; }
.card h2 a { color: inherit; }
.muted, .empty { color: var(--muted); } .reason { color: var(--muted); max-width: 420px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px; }
.plot { width: 100%; height: auto; background: #fff; }
.plot .grid { stroke: #eef2f7; } .plot .axis { font-size: 10px; fill: var(--muted); }
.plot .minimum { stroke: var(--bad); stroke-dasharray: 6 4; } .plot .minimum-label { font-size: 10px; fill: var(--bad); }
.plot .champion-line { fill: none; stroke: #243b53; stroke-width: 1.5; opacity: .5; }
.point { fill: #829ab1; } .point.ok { fill: var(--ok); } .point.bad { fill: var(--bad); } .point.warn { fill: var(--warn); }
.point.dry { fill: var(--dry); } .point.champion { stroke: #102a43; stroke-width: 2; }
.badge.skipped { background: #0277bd; } .point.skipped { fill: #0277bd; } .why { font-size: 12px; }
.legend span { margin-right: 12px; font-size: 12px; } .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 4px; }
.traffic rect.s0 { fill: #486581; } .traffic rect.s1 { fill: #f0b429; } .traffic rect.s2 { fill: #8d2b0b; } .traffic rect.s3 { fill: #27ab83; }
.traffic text { font-size: 9px; fill: #fff; }
button { font: inherit; padding: 3px 10px; border-radius: 4px; border: 1px solid #829ab1; background: #fff; cursor: pointer; }
button.primary { background: #2e7d32; border-color: #2e7d32; color: #fff; } button.danger { border-color: var(--bad); color: var(--bad); }
button:disabled { opacity: .5; cursor: default; }
.message { margin: 8px 0; min-height: 1.4em; } .message.bad { color: var(--bad); }
.live-item { padding: 6px 0; border-bottom: 1px dashed var(--line); } .live-item:last-child { border-bottom: 0; }
.awaiting { background: #fff8e1; border: 1px solid #f6bb42; padding: 8px; border-radius: 4px; margin-top: 6px; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  var key = new URLSearchParams(location.search).get("code") || "";
  var body = document.body, api = body.dataset.api, pipeline = body.dataset.pipeline || "";
  var headers = key ? {"x-functions-key": key} : {};

  document.querySelectorAll("a[data-page]").forEach(function (a) {
    if (!key) return;
    var url = new URL(a.getAttribute("href"), location.href);
    url.searchParams.set("code", key);
    a.setAttribute("href", url.pathname + url.search + url.hash);
  });

  function say(text, bad) {
    var el = document.getElementById("message");
    if (el) { el.textContent = text; el.className = bad ? "message bad" : "message"; }
  }

  function button(label, url, extra) {
    var b = document.createElement("button");
    b.textContent = label;
    b.dataset.url = url;
    Object.keys(extra || {}).forEach(function (k) { b.dataset[k] = extra[k]; });
    if (extra && extra.kind) b.className = extra.kind;
    return b;
  }

  async function act(b) {
    var d = b.dataset;
    if (d.confirm && d.armed !== "1") { d.armed = "1"; d.label = b.textContent; b.textContent = d.confirm; return; }
    b.disabled = true;
    var payload = d.body ? JSON.parse(d.body) : {};
    var comment = document.getElementById("comment");
    if (d.comment && comment && comment.value) payload.comment = comment.value;
    try {
      var r = await fetch(d.url, {method: "POST", headers: Object.assign({"Content-Type": "application/json"}, headers),
                                  body: JSON.stringify(payload)});
      var answer = {};
      try { answer = await r.json(); } catch (e) { answer = {}; }
      if (r.ok) say(d.done || "Done."); else say((answer.error && answer.error.message) || ("The app answered " + r.status + "."), true);
    } catch (e) {
      say("The app could not be reached: " + e, true);
    } finally {
      b.disabled = false;
      if (d.armed === "1") { d.armed = ""; b.textContent = d.label; }
    }
    refresh();
  }

  document.addEventListener("click", function (event) {
    var b = event.target.closest("button[data-url]");
    if (b) { event.preventDefault(); act(b); }
  });

  function liveItem(item) {
    var div = document.createElement("div");
    div.className = "live-item";
    div.dataset.request = item.id;
    var p = item.progress || {};
    var badge = document.createElement("span");
    badge.className = "badge " + (item.state === "running" ? "running" : "pending");
    badge.textContent = item.state === "running" ? (p.phase || "running") : "pending";
    div.appendChild(badge);
    var text = document.createElement("span");
    text.textContent = " " + item.action + " (" + item.trigger + ")" + (item.run_id ? " run " + item.run_id : "") +
      (p.elapsed_s !== undefined ? ", " + Math.round(p.elapsed_s) + " s" : "") + (p.job && p.job.polls ? ", " + p.job.polls + " polls" : "");
    div.appendChild(text);
    var run = api + "/pipelines/" + encodeURIComponent(item.pipeline) + "/runs/" + encodeURIComponent(item.run_id || "");
    if (p.phase === "awaiting_approval") {
      var box = document.createElement("div");
      box.className = "awaiting";
      box.appendChild(document.createTextNode("Model " + (p.model || "") + " waits for approval until " + (p.expires_at || "?").slice(0, 19).replace("T", " ") + " UTC. "));
      box.appendChild(button("Approve", run + "/approve", {kind: "primary", comment: "1", done: "Approved: the run goes on to the roll-out.", action: "approve"}));
      box.appendChild(document.createTextNode(" "));
      box.appendChild(button("Reject", run + "/reject", {kind: "danger", comment: "1", done: "Rejected: nothing will be updated.", action: "reject"}));
      div.appendChild(box);
    }
    if (item.state === "running" && item.run_id && p.phase !== "updating" && p.phase !== "recording" && item.action === "retrain") {
      div.appendChild(document.createTextNode(" "));
      div.appendChild(button("Cancel run", run + "/cancel", {confirm: "Click again to cancel", done: "Cancel requested.", action: "cancel"}));
    } else if (item.state === "pending") {
      div.appendChild(document.createTextNode(" "));
      div.appendChild(button("Cancel request", api + "/pipelines/" + encodeURIComponent(item.pipeline) + "/requests/" + item.id + "/cancel",
                             {confirm: "Click again to cancel", done: "Request cancelled.", action: "cancel"}));
    }
    return div;
  }

  function showLive(container, items) {
    var signature = JSON.stringify(items.map(function (i) { var p = i.progress || {}; return [i.id, i.state, p.phase, Math.round((p.elapsed_s || 0) / 5)]; }));
    if (container.dataset.signature === signature) return;
    container.dataset.signature = signature;
    container.textContent = "";
    if (!items.length) { var none = document.createElement("p"); none.className = "muted"; none.textContent = "Nothing runs or waits now."; container.appendChild(none); }
    items.forEach(function (item) { container.appendChild(liveItem(item)); });
  }

  var busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      var url = pipeline ? api + "/pipelines/" + encodeURIComponent(pipeline) + "/runs?limit=1" : api + "/pipelines";
      var r = await fetch(url, {headers: headers});
      if (!r.ok) { say("Live refresh: the app answered " + r.status + ".", true); return; }
      var data = await r.json();
      var views = pipeline ? [data] : data.pipelines;
      var stamp = document.getElementById("live-stamp");
      if (stamp) stamp.textContent = "live, " + new Date().toLocaleTimeString();
      views.forEach(function (view) {
        var name = view.pipeline || view.name;
        var newest = pipeline ? (view.runs[0] && view.runs[0].run_id) : (view.last && view.last.run_id);
        var section = document.querySelector('[data-live="' + name + '"]');
        if (!section) return;
        if ((newest || "") !== (section.dataset.newest || "")) { location.reload(); return; }
        showLive(section, (view.in_progress || []).map(function (i) { i.pipeline = name; return i; }));
      });
    } catch (e) {
      say("Live refresh failed: " + e, true);
    } finally {
      busy = false;
    }
  }
  refresh();
  setInterval(refresh, Number(body.dataset.refresh || 3000));
})();
"""
