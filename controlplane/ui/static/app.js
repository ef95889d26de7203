// poolserver dashboard: polls the Agent Pools API with If-None-Match and
// renders pools, agents and updates; no framework, no build step.
// docs/dashboard.md describes what it shows and why.
"use strict";
(() => {
  const TOKEN_KEY = "poolserver.token";
  const API = "/api/v1/agentPools";
  const POLL_MS = 2000; // updates of the selected pool
  const POOLS_EVERY = 2; // the pools list every 2nd poll (it carries every agent)
  const MAX_ROWS = 500; // agents rendered at once; the filters narrow the rest
  const PAGE = 100; // an update's agents fetched per page (limit); "Show more" adds a page
  const MAX_PAGES = 10; // at most this many pages of one update's agents are kept and refreshed
  const TYPES = ["AD", "IWA", "LDAP", "MFA", "OPP", "RUM", "Radius"];
  // The lifecycle actions offered per update status (docs/lifecycle.md);
  // the API stays the judge and its refusals are shown as they come.
  const ACTIONS = {
    Scheduled: ["pause", "stop"], InProgress: ["pause", "stop"], Paused: ["resume", "stop"],
    Failed: ["retry"], Cancelled: ["retry"], Success: [],
  };
  // "rollback" is stop?rollback=true (docs/rollout.md, fleet rollback),
  // offered where the API takes it and no rollback ran yet.
  const ROLLBACK_FROM = ["Scheduled", "InProgress", "Paused", "Failed", "Cancelled"];
  const ACTION_LABEL = { rollback: "Stop and roll back" };
  const COUNTS = ["Success", "InProgress", "Failed", "Cancelled", "Scheduled"];
  // The per-agent list's status filter: a COUNTS key and the statuses it asks the API for.
  const FILTERS = { InProgress: "InProgress,PendingCompletion" };
  // The compliance extension's states (docs/api.md#compliance): the version
  // classes (each agent in one), then the states that overlap them.
  const VERSION_STATES = [["latest", "Latest"], ["updating", "Updating"], ["outdated", "Outdated"], ["unknown", "Version unknown"]];
  const OTHER_STATES = [["belowMinimum", "Below minimum"], ["unreachable", "Unreachable"], ["degraded", "Degraded"]];
  const STATE_WORDS = Object.fromEntries([...VERSION_STATES, ...OTHER_STATES]);

  const $ = (id) => document.getElementById(id);
  const state = { pools: [], selected: sessionStorage.getItem("poolserver.pool") || "", updates: [], settings: null, compliance: null, ticks: 0 };
  const openDetails = new Set();
  // Per update id, its per-agent list: the filter (a COUNTS key, "" for all,
  // undefined until chosen), pages wanted, and the rows and "more" fetched.
  const lists = new Map();
  const etags = new Map(); // GET path -> {etag, data, link}
  let chain = Promise.resolve();
  let busy = 0; // polls queued or running

  // el builds an element; strings become text nodes (never HTML).
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) {
      if (k !== undefined && k !== null && k !== false) e.append(k instanceof Node ? k : String(k));
    }
    return e;
  }

  class ApiError extends Error {
    constructor(status, body, text) {
      super((body && body.errorSummary) || `HTTP ${status}: ${text || "no body"}`);
      this.status = status;
      this.body = body;
    }
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

  // api calls the Agent Pools API with the session's token. A GET sends
  // the ETag of its last reply; a 304 returns that reply with changed=false.
  async function api(method, path, body) {
    const headers = { Authorization: "SSWS " + token(), Accept: "application/json" };
    const cached = method === "GET" ? etags.get(path) : undefined;
    if (cached) headers["If-None-Match"] = cached.etag;
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    if (resp.status === 304 && cached) return { data: cached.data, link: cached.link, changed: false };
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!resp.ok) throw new ApiError(resp.status, data, text);
    const link = resp.headers.get("Link") || "";
    const etag = resp.headers.get("ETag");
    if (method === "GET" && etag) etags.set(path, { etag, data, link });
    return { data, link, changed: true };
  }

  // nextPath returns the path of a Link header's rel="next", or "".
  function nextPath(link) {
    const m = /<([^>]+)>\s*;\s*rel="next"/.exec(link || "");
    if (!m) return "";
    const u = new URL(m[1], location.href);
    return u.pathname + u.search;
  }

  // ---- messages ----

  function say(msg) { $("live").textContent = msg; }

  function showError(err, what) {
    const box = $("error");
    box.replaceChildren();
    const b = err && err.body;
    const head = el("p", {}, el("strong", {}, what ? what + " failed: " : "Error: "), err.message || String(err));
    if (b && b.errorCode) head.append(` (${b.errorCode}, HTTP ${err.status})`);
    box.append(head);
    if (b && Array.isArray(b.errorCauses) && b.errorCauses.length) {
      box.append(el("ul", {}, b.errorCauses.map((c) => el("li", {}, c.errorSummary))));
    }
    box.append(el("button", { type: "button", onclick: clearError }, "Dismiss"));
    box.hidden = false;
  }

  function clearError() {
    $("error").hidden = true;
    $("error").replaceChildren();
  }

  // ---- formatting ----

  function fmtTime(iso) {
    if (!iso) return "never";
    const d = new Date(iso);
    return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }

  function ago(iso) {
    if (!iso) return "";
    const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 60) return `${Math.max(s, 0)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }

  const status = (word) => el("span", { class: "st st-" + (word || "none") }, word || "unknown");

  // skewText renders clockSkewSeconds (server receive time minus the
  // host's timestamp: positive when the host's clock is behind).
  function skewText(s) {
    if (typeof s !== "number") return "unknown";
    const a = Math.abs(s);
    if (a < 1) return "in sync";
    const n = a < 120 ? `${Math.round(a)} s` : a < 7200 ? `${Math.round(a / 60)} min` : a < 172800 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} days`;
    return s > 0 ? `${n} behind` : `${n} ahead`;
  }

  function timeCell(iso) {
    if (!iso) return el("td", {}, "never");
    return el("td", {}, el("time", { datetime: iso }, fmtTime(iso)), " ", el("span", { class: "help" }, `(${ago(iso)})`));
  }

  // ---- focus and open state survive re-rendering ----

  function focusKey() {
    const a = document.activeElement;
    return a && a.dataset ? a.dataset.key || "" : "";
  }

  function restoreFocus(key) {
    if (!key || focusKey() === key) return;
    const e = document.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (e) e.focus();
  }

  // ---- pools and agents ----

  function filters() {
    return {
      type: $("f-type").value, status: $("f-status").value, version: $("f-version").value,
      q: $("f-search").value.trim().toLowerCase(),
    };
  }

  function agentMatches(a, f) {
    return (!f.status || a.operationalStatus === f.status) && (!f.version || a.version === f.version) &&
      (!f.q || (a.name || "").toLowerCase().includes(f.q));
  }

  function fillVersions() {
    const sel = $("f-version");
    const cur = sel.value;
    const versions = new Set();
    for (const p of state.pools) for (const a of p.agents) if (a.version) versions.add(a.version);
    const sorted = [...versions].sort((x, y) => x.localeCompare(y, undefined, { numeric: true }));
    if (cur && !versions.has(cur)) sorted.push(cur);
    sel.replaceChildren(el("option", { value: "" }, "All versions"), ...sorted.map((v) => el("option", { value: v }, v)));
    sel.value = cur;
  }

  function renderPools() {
    const key = focusKey();
    const f = filters();
    const pools = state.pools.filter((p) => !f.type || p.type === f.type);
    const rows = [];
    const agents = [];
    let matching = 0;
    for (const p of pools) {
      const shown = p.agents.filter((a) => agentMatches(a, f));
      matching += shown.length;
      for (const a of shown) if (agents.length < MAX_ROWS) agents.push([p, a]);
      const sel = p.id === state.selected;
      rows.push(el("tr", { "data-id": p.id, class: sel ? "selected" : "" },
        el("th", { scope: "row" }, p.name),
        el("td", {}, p.type),
        el("td", {}, status(p.operationalStatus)),
        el("td", {}, `${shown.length} of ${p.agents.length}`),
        el("td", {}, el("button", {
          type: "button", "data-key": "pool:" + p.id, "aria-pressed": String(sel),
          "aria-label": `Show updates of pool ${p.name}`, onclick: () => selectPool(p.id),
        }, "Show updates"))));
    }
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5 }, state.pools.length ? "No pool matches the filters." : "No pools yet.")));
    $("pools").tBodies[0].replaceChildren(...rows);

    const arows = agents.map(([p, a]) => el("tr", { "data-id": a.id },
      el("th", { scope: "row" }, a.name || a.id),
      el("td", {}, p.name),
      el("td", {}, a.version || "unknown"),
      // operationalMessage: why its host's health watch says it is not well.
      el("td", {}, status(a.operationalStatus), a.operationalMessage ? " " + a.operationalMessage : ""),
      timeCell(a.lastConnection),
      el("td", {}, a.isLatestGAedVersion === true ? "yes" : a.isLatestGAedVersion === false ? "no" : "unknown"),
      el("td", { title: typeof a.clockSkewSeconds === "number" ? `clock skew ${a.clockSkewSeconds} s` : "" }, skewText(a.clockSkewSeconds)),
      el("td", {}, a.updateMessage || "")));
    if (!arows.length) arows.push(el("tr", {}, el("td", { colspan: 8 }, "No agent matches the filters.")));
    $("agents").tBodies[0].replaceChildren(...arows);
    $("agents-note").textContent = matching > MAX_ROWS
      ? `Showing the first ${MAX_ROWS} of ${matching} matching agents; narrow the filters or search to see others.`
      : `${matching} matching agent${matching === 1 ? "" : "s"}.`;
    restoreFocus(key);
  }

  function selectPool(id) {
    state.selected = id;
    sessionStorage.setItem("poolserver.pool", id);
    state.updates = [];
    state.settings = null;
    state.compliance = null;
    renderPools();
    renderCompliance();
    renderUpdates();
    refresh().then(() => $("updates-h").focus());
  }

  // ---- compliance of the selected pool ----

  // renderCompliance draws the pool's compliance extension: the counts of
  // the whole pool and the first page of its non-compliant agents.
  function renderCompliance() {
    const sec = $("compliance-section");
    const pool = state.pools.find((p) => p.id === state.selected);
    if (!state.selected || (!pool && state.pools.length)) {
      sec.hidden = true;
      return;
    }
    sec.hidden = false;
    $("compliance-h").textContent = `Compliance of pool ${pool ? pool.name : state.selected}`;
    const c = state.compliance;
    const counts = (id, states) => $(id).replaceChildren(...(c ? states.map(([k, word]) =>
      el("li", { "data-state": k }, `${word} `, el("strong", {}, String(c.counts[k] || 0)))) : []));
    counts("compliance-version-counts", VERSION_STATES);
    counts("compliance-other-counts", OTHER_STATES);
    if (!c) {
      $("compliance-versions").textContent = "Loading...";
      $("compliance-note").textContent = "";
      $("compliance").tBodies[0].replaceChildren();
      return;
    }
    $("compliance-versions").textContent = `Latest version ${c.latestVersion || "none published"}; ` +
      `minimal supported version ${c.minimalSupportedVersion || "none"}; ${c.counts.total} agent${c.counts.total === 1 ? "" : "s"}.`;
    const n = c.counts.nonCompliant;
    $("compliance-note").textContent = n === 0
      ? `All ${c.counts.total} agents are compliant.`
      : `${n} non-compliant agent${n === 1 ? "" : "s"}` + (c.nonCompliant.length < n ? `; showing the first ${c.nonCompliant.length}.` : ".");
    const rows = c.nonCompliant.map((a) => el("tr", { "data-id": a.id },
      el("th", { scope: "row" }, a.name || a.id),
      el("td", {}, a.version || "unknown"),
      el("td", {}, status(a.operationalStatus)),
      el("td", { class: "compliance-states" }, a.states.map((st) => STATE_WORDS[st] || st).join(", "))));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 4 }, "None.")));
    $("compliance").tBodies[0].replaceChildren(...rows);
  }

  // ---- updates ----

  function scheduleText(sc) {
    if (!sc || !sc.cron) return "none: runs as soon as it is created or resumed";
    const zone = sc.timezone === "host" ? "each host's local time (UTC for a host without a zone)" : (sc.timezone || "UTC");
    const parts = [`cron ${sc.cron}`, zone, `${sc.duration || 120} min window`];
    if (sc.delay) parts.push(`${sc.delay} day${sc.delay === 1 ? "" : "s"} after release`);
    return parts.join(", ");
  }

  // countAgents folds the update's agentCounts (the API's extension: the
  // whole update, whatever page of agents is loaded) into COUNTS.
  function countAgents(u) {
    const c = Object.fromEntries(COUNTS.map((k) => [k, 0]));
    c.total = 0;
    for (const [st, n] of Object.entries(u.agentCounts || {})) {
      const s = st === "PendingCompletion" ? "InProgress" : st;
      if (s in c) c[s] += n;
      c.total += n;
    }
    return c;
  }

  function progress(u) {
    const c = countAgents(u);
    const total = c.total;
    const bar = el("div", { class: "bar", "aria-hidden": "true" },
      COUNTS.filter((k) => c[k]).map((k) => {
        const seg = el("span", { class: "seg seg-" + k });
        seg.style.flexGrow = String(c[k]); // CSSOM: allowed by the CSP, a style attribute is not
        return seg;
      }));
    const summary = el("p", { class: "progress-text" }, `${c.Success} of ${total} agent${total === 1 ? "" : "s"} Success`);
    const list = el("ul", { class: "counts" }, COUNTS.map((k) =>
      el("li", { "data-count": k }, el("span", { class: "key key-" + k, "aria-hidden": "true" }), `${k} `, el("strong", {}, String(c[k])))));
    return [summary, bar, list];
  }

  // agentProgress is a host's own bar: the progress and phase its poolagent
  // last reported (the API's progress/phase extension), 100 once the agent
  // ended, "not started" before its host was handed a job.
  function agentProgress(a) {
    const ended = ["Success", "Failed", "Cancelled"].includes(a.updateStatus);
    if (a.progress === undefined && !ended) return el("td", { class: "agent-progress" }, "not started");
    const pct = ended ? 100 : Math.max(0, Math.min(100, a.progress));
    const text = `${pct}%` + (a.phase && !ended ? ` ${a.phase}` : "");
    return el("td", { class: "agent-progress" },
      el("progress", { max: "100", value: String(pct), "aria-hidden": "true" }), " ", text);
  }

  // zoneWindows lists a host-zoned update's windows, one per zone holding
  // hosts still to update (nextWindow.zones, earliest first).
  function zoneWindows(zones) {
    return el("ul", { class: "zone-windows" }, zones.map((z) => el("li", { "data-zone": z.timezone },
      `${z.timezone}: `, el("time", { datetime: z.start }, fmtTime(z.start)), " to ", el("time", { datetime: z.finish }, fmtTime(z.finish)),
      `${z.open ? ", open" : ""}, ${z.hosts} host${z.hosts === 1 ? "" : "s"} to update`)));
  }

  function updateTitle(u) { return u.name || `Update ${u.id}`; }

  // rolloutFacts shows why an update halted and its fleet rollback's
  // progress: hosts back on their previous version of those it moved.
  function rolloutFacts(u) {
    const r = u.rollout || {};
    const out = [];
    if (r.halted) out.push(el("dt", {}, "Halted"), el("dd", { class: "halted" }, r.halted));
    const rb = r.rollback;
    if (rb) {
      const n = rb.toRevert || 0;
      const pct = n ? Math.round(((rb.reverted || 0) + (rb.failed || 0)) * 100 / n) : 100;
      out.push(el("dt", {}, "Rollback"), el("dd", { class: "rollback", "data-state": rb.state },
        el("progress", { max: "100", value: String(pct), "aria-hidden": "true" }), " ",
        `${rb.state}: ${rb.reverted || 0} of ${n} host${n === 1 ? "" : "s"} back on their previous version, ` +
        `${rb.reverting || 0} reverting, ${rb.failed || 0} failed`));
    }
    return out;
  }

  function actionsOf(u) {
    const list = (ACTIONS[u.status] || []).slice();
    if (ROLLBACK_FROM.includes(u.status) && !(u.rollout && u.rollout.rollback)) list.push("rollback");
    return list;
  }

  function renderUpdate(u) {
    const title = updateTitle(u);
    const hid = "u-" + u.id;
    const nw = u.nextWindow;
    const info = el("dl", { class: "facts" },
      el("dt", {}, "Status"), el("dd", { class: "status" }, status(u.status), u.enabled ? "" : " (deactivated)"),
      el("dt", {}, "Target version"), el("dd", {}, u.targetVersion || "the pool's latest version"),
      el("dt", {}, "Schedule"), el("dd", {}, scheduleText(u.schedule)),
      el("dt", {}, "Next window"), el("dd", { class: "next-window" }, nw
        ? [el("time", { datetime: nw.start }, fmtTime(nw.start)), " to ", el("time", { datetime: nw.finish }, fmtTime(nw.finish)),
          nw.zones ? zoneWindows(nw.zones) : null]
        : (u.schedule ? "none pending" : "always open (no schedule)")),
      u.schedule && u.schedule.lastUpdated ? [el("dt", {}, "Last run finished"), el("dd", {}, fmtTime(u.schedule.lastUpdated))] : null,
      rolloutFacts(u));
    const actions = el("div", { class: "actions" }, actionsOf(u).map((a) => el("button", {
      type: "button", "data-key": `act:${u.id}:${a}`, "data-action": a, "aria-label": `${ACTION_LABEL[a] || cap(a)} update ${title}`,
      onclick: (ev) => act(u, a, ev.currentTarget),
    }, ACTION_LABEL[a] || cap(a))));
    const c = countAgents(u);
    const list = listOf(u);
    const rows = (list.rows || []).map((a) => el("tr", {},
      el("th", { scope: "row" }, a.name || a.id), el("td", {}, a.version || "unknown"),
      el("td", { class: "update-status" }, status(a.updateStatus)), agentProgress(a), el("td", {}, a.updateMessage || "")));
    const matching = list.filter ? c[list.filter] : c.total;
    const empty = list.filter ? `No agent ${list.filter}.` : "No agents.";
    const fid = "flt-" + u.id;
    const filter = el("div", { class: "agent-filter" },
      el("label", { for: fid }, "Show agents"),
      el("select", { id: fid, "data-key": "flt:" + u.id, onchange: (ev) => setFilter(u.id, ev.currentTarget.value) },
        el("option", { value: "", selected: !list.filter }, `All (${c.total})`),
        COUNTS.map((k) => el("option", { value: k, selected: list.filter === k }, `${k} (${c[k]})`))));
    const more = list.more && list.pages < MAX_PAGES
      ? el("button", { type: "button", "data-key": "more:" + u.id, onclick: () => showMore(u.id) }, `Show ${PAGE} more`)
      : null;
    const note = el("p", { class: "help list-note" }, list.rows
      ? `Showing ${rows.length} of ${matching} agent${matching === 1 ? "" : "s"}` + (list.more && !more ? "; narrow the filter to see others." : ".")
      : "Loading the agents...");
    const details = el("details", { "data-key": "det:" + u.id, open: openDetails.has(u.id) },
      el("summary", {}, `Agents (${c.total})`),
      filter, note,
      el("div", { class: "scroll" }, el("table", {},
        el("caption", {}, `Agents of ${title}`),
        el("thead", {}, el("tr", {}, ["Host name", "Version", "Update status", "Progress", "Update message"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows.length || !list.rows ? rows : el("tr", {}, el("td", { colspan: 5 }, empty))))),
      more);
    details.addEventListener("toggle", () => {
      if (details.open && !openDetails.has(u.id)) {
        openDetails.add(u.id);
        refresh(); // fetch its first page now
      } else if (!details.open) {
        openDetails.delete(u.id);
      }
    });
    return el("article", { class: "update", "data-id": u.id, "data-status": u.status, "aria-labelledby": hid },
      el("h3", { id: hid, tabindex: "-1" }, title, " ", el("span", { class: "help" }, `(${u.id})`)),
      info, progress(u), actions, details);
  }

  const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

  // ---- an update's agents, a page at a time ----

  // listOf returns the update's per-agent list state; the filter starts
  // on Failed when some agent failed (what an operator looks for first),
  // else on all agents.
  function listOf(u) {
    let l = lists.get(u.id);
    if (!l) {
      l = { filter: undefined, pages: 1, rows: null, more: false };
      lists.set(u.id, l);
    }
    if (l.filter === undefined) l.filter = (u.agentCounts && u.agentCounts.Failed > 0) ? "Failed" : "";
    return l;
  }

  function setFilter(id, value) {
    const l = lists.get(id);
    Object.assign(l, { filter: value, pages: 1, rows: null, more: false });
    renderUpdates();
    refresh();
  }

  function showMore(id) {
    lists.get(id).pages++;
    refresh();
  }

  // fetchAgents reads the pages wanted of one update's agents (following
  // Link rel="next"), never the whole update: the API's limit and
  // agentStatus parameters. It returns whether anything changed.
  async function fetchAgents(base, u) {
    const l = listOf(u);
    let path = `${base}/${enc(u.id)}?limit=${PAGE}`;
    if (l.filter) path += "&agentStatus=" + enc(FILTERS[l.filter] || l.filter);
    const rows = [];
    let changed = l.rows === null;
    let more = false;
    for (let i = 0; path && i < l.pages; i++) {
      const r = await api("GET", path);
      changed = changed || r.changed;
      rows.push(...(r.data.agents || []));
      path = nextPath(r.link);
      more = path !== "";
    }
    if (lists.get(u.id) !== l) return false; // signed out meanwhile
    if (changed) Object.assign(l, { rows, more });
    return changed;
  }

  function renderUpdates() {
    const sec = $("updates-section");
    const pool = state.pools.find((p) => p.id === state.selected);
    if (!state.selected || (!pool && state.pools.length)) {
      sec.hidden = true;
      return;
    }
    sec.hidden = false;
    const key = focusKey();
    $("updates-h").textContent = `Updates of pool ${pool ? pool.name : state.selected}`;
    const s = state.settings;
    $("settings").textContent = s
      ? `Latest version ${s.latestVersion || "none published"}; channel ${s.releaseChannel}; at most ${s.maxUnavailable || 1} agent(s) updating at once; ` +
        `continue on error: ${s.continueOnError ? "yes" : "no"}.`
      : "";
    const list = state.updates.slice().reverse(); // newest first
    $("updates").replaceChildren(...(list.length ? list.map(renderUpdate) : [el("p", {}, "No updates in this pool.")]));
    restoreFocus(key);
  }

  async function act(u, action, button) {
    clearError();
    button.disabled = true;
    try {
      const path = action === "rollback" ? "stop?rollback=true" : action;
      const r = await api("POST", `${API}/${enc(state.selected)}/updates/${enc(u.id)}/${path}`);
      say(`${ACTION_LABEL[action] || cap(action)}: ${updateTitle(r.data)} is now ${r.data.status}.`);
    } catch (err) {
      showError(err, `${ACTION_LABEL[action] || cap(action)} ${updateTitle(u)}`);
    } finally {
      button.disabled = false;
    }
    await refresh();
    // The button pressed may be gone (Pause becomes Resume): keep the
    // keyboard user on this update's next action, or its heading.
    if (!document.activeElement || document.activeElement === document.body) {
      const next = document.querySelector(`[data-key^="act:${CSS.escape(u.id)}:"]`) || document.getElementById("u-" + u.id);
      if (next) next.focus();
    }
  }

  async function create(ev) {
    ev.preventDefault();
    clearError();
    const form = ev.currentTarget;
    const v = (n) => form.elements[n].value.trim();
    const body = {};
    if (v("targetVersion")) body.targetVersion = v("targetVersion");
    if (v("name")) body.name = v("name");
    if (v("cron")) {
      body.schedule = { cron: v("cron") };
      if (v("timezone")) body.schedule.timezone = v("timezone");
      if (v("duration")) body.schedule.duration = Number(v("duration"));
      if (v("delay")) body.schedule.delay = Number(v("delay"));
    }
    try {
      const r = await api("POST", `${API}/${enc(state.selected)}/updates`, body);
      say(`Created ${updateTitle(r.data)}: ${r.data.status}.`);
      form.reset();
    } catch (err) {
      showError(err, "Create update");
    }
    await refresh();
  }

  const enc = encodeURIComponent;

  // ---- refresh ----

  // refresh runs one poll after any poll in flight, so an action's
  // refresh always sees the action's result.
  function refresh() {
    busy++;
    chain = chain.then(poll).finally(() => { busy--; });
    return chain;
  }

  async function poll() {
    if (!token()) return;
    try {
      if (state.ticks++ % POOLS_EVERY === 0 || !state.pools.length) {
        let path = `${API}?limitPerPoolType=200`;
        const pools = [];
        let changed = false;
        while (path) {
          const r = await api("GET", path);
          changed = changed || r.changed;
          pools.push(...r.data);
          path = nextPath(r.link);
        }
        if (changed) {
          state.pools = pools;
          fillVersions();
          renderPools();
          renderCompliance(); // the pool's name heads it
        }
      }
      if (state.selected) {
        const base = `${API}/${enc(state.selected)}/updates`;
        // The updates with their agentCounts, without agents: an update may
        // name 300,000 of them. The open per-agent lists fetch pages.
        const [u, s] = await Promise.all([api("GET", base + "?agents=none"), api("GET", base + "/settings")]);
        let listsChanged = false;
        for (const upd of u.data) {
          if (openDetails.has(upd.id)) listsChanged = (await fetchAgents(base, upd)) || listsChanged;
        }
        for (const id of lists.keys()) if (!u.data.some((x) => x.id === id)) lists.delete(id);
        // The compliance counts read the whole pool: with the pools list,
        // every second poll (and at once for a newly chosen pool).
        if (state.ticks % POOLS_EVERY === 1 || !state.compliance) {
          const cp = await api("GET", `${API}/${enc(state.selected)}/compliance?limit=${PAGE}`);
          if (cp.changed || !state.compliance) {
            state.compliance = cp.data;
            renderCompliance();
          }
        }
        if (u.changed || s.changed || listsChanged || !$("updates").hasChildNodes()) {
          state.updates = u.data;
          state.settings = s.data;
          renderUpdates();
        }
      }
      $("checked").textContent = `Live: refreshed every ${POLL_MS / 1000} s; last checked ${new Date().toLocaleTimeString()}.`;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        signOut();
        showError(err, "Sign-in");
      } else if (err instanceof ApiError && err.status === 404 && state.selected) {
        state.selected = "";
        sessionStorage.removeItem("poolserver.pool");
        renderCompliance();
        renderUpdates();
      } else {
        $("checked").textContent = `Live refresh failing: ${err.message}`;
      }
    }
  }

  // ---- session ----

  function showApp(on) {
    $("signin").hidden = on;
    $("app").hidden = !on;
    $("session").hidden = !on;
  }

  async function signIn(ev) {
    ev.preventDefault();
    clearError();
    const t = $("token").value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    try {
      await api("GET", `${API}?limitPerPoolType=1`);
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      showError(err, "Sign-in");
      $("token").focus();
      return;
    }
    $("token").value = "";
    showApp(true);
    say("Signed in.");
    await refresh();
    $("pools-h").setAttribute("tabindex", "-1");
    $("pools-h").focus();
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem("poolserver.pool");
    etags.clear();
    lists.clear();
    Object.assign(state, { pools: [], selected: "", updates: [], settings: null, compliance: null, ticks: 0 });
    $("pools").tBodies[0].replaceChildren();
    $("agents").tBodies[0].replaceChildren();
    $("updates").replaceChildren();
    $("updates-section").hidden = true;
    $("compliance-section").hidden = true;
    showApp(false);
    say("Signed out.");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("f-type").append(...TYPES.map((t) => el("option", { value: t }, t)));
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => { clearError(); signOut(); $("token").focus(); });
    $("filters").addEventListener("input", renderPools);
    $("filters").addEventListener("submit", (ev) => ev.preventDefault());
    $("create-form").addEventListener("submit", create);
    if (token()) {
      showApp(true);
      refresh();
    }
    setInterval(() => { if (!document.hidden && busy === 0) refresh(); }, POLL_MS);
  });
})();
