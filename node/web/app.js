// Porpoise web cluster manager. Plain script, no build step, no outside assets: everything
// runs through this node's `POST /api/execute` session (X-Session header), calling the server
// functions DolphinDB's own web manager calls; the Dashboard reads each node's /metrics.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
};

const app = {
  node: null, // GET /health: alias, mode, site
  session: sessionStorage.getItem("porpoise.session"),
  user: sessionStorage.getItem("porpoise.user"),
  timers: [],
};

// ---- talking to the node ----------------------------------------------------------------

class ScriptError extends Error {
  constructor(reply) {
    super(reply.error || "the script failed");
    this.line = reply.line;
    this.column = reply.column;
    this.output = reply.output || [];
  }
}

/** Runs `script` in this page's session; the whole JSON reply. */
async function execute(script) {
  const headers = { "Content-Type": "text/plain" };
  if (app.session) headers["X-Session"] = app.session;
  const r = await fetch("/api/execute", { method: "POST", headers, body: script });
  const reply = await r.json();
  if (reply.sessionId) {
    app.session = reply.sessionId;
    sessionStorage.setItem("porpoise.session", app.session);
  }
  return reply;
}

/** Runs `script`; its result, or throws a ScriptError. */
async function run(script) {
  const reply = await execute(script);
  if (!reply.ok) throw new ScriptError(reply);
  return reply.result;
}

/** A DolphinDB string literal. */
const lit = (s) => '"' + String(s).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") + '"';
const vec = (items) => "[" + items.map(lit).join(", ") + "]";
const truthy = (v) => v === true || v === 1 || v === "true" || v === "1";

/** A table result as an array of row objects. */
function rows(result) {
  if (!result || result.form !== "table") return [];
  const n = result.columns.length ? result.columns[0].value.length : 0;
  const out = [];
  for (let i = 0; i < n; i++) {
    const row = {};
    for (const c of result.columns) row[c.name] = c.value[i];
    out.push(row);
  }
  return out;
}

function show(msgEl, text, isError) {
  msgEl.textContent = text;
  msgEl.classList.toggle("error", !!isError);
}

// ---- log in, and the follower prompt ----------------------------------------------------

async function loggedIn() {
  if (!app.session || !app.user) return false;
  try {
    await run("getClusterDFSDatabases()"); // needs a login
    return true;
  } catch (e) {
    return false;
  }
}

function askLogin() {
  $("login-node").textContent = `${app.node.alias} (${app.node.mode}) at ${location.host}`;
  $("login").hidden = false;
  $("login-password").focus();
  return new Promise((resolve) => {
    $("login-form").onsubmit = async (ev) => {
      ev.preventDefault();
      const user = $("login-user").value, password = $("login-password").value;
      try {
        await run(`login(${lit(user)}, ${lit(password)})`);
        app.user = user;
        sessionStorage.setItem("porpoise.user", user);
        $("login").hidden = true;
        $("login-error").textContent = "";
        resolve();
      } catch (e) {
        $("login-error").textContent = e.message;
      }
    };
  });
}

/** On a controller that is not the Raft leader: offer to go to the leader's site. */
async function followLeader() {
  if (app.node.mode !== "controller") return false;
  try {
    const raft = await (await fetch("/raft")).json();
    if (raft.state === "leader" || !raft.leaderSite) return false;
    const [host, port, alias] = raft.leaderSite.split(":");
    const go = confirm(`${app.node.alias} is not the leader of the Raft group. ` +
      `Go to the leader, ${alias} at ${host}:${port}?`);
    if (go) {
      location.href = `http://${host}:${port}/${location.hash}`;
      return true;
    }
  } catch (e) { /* no answer: stay */ }
  return false;
}

// ---- pages --------------------------------------------------------------------------------

const pages = {};

function route() {
  const allowed = [...document.querySelectorAll("#nav a")].filter((a) => !a.hidden).map((a) => a.dataset.page);
  let page = location.hash.slice(1);
  if (!allowed.includes(page)) page = app.node.mode === "controller" ? "nodes" : allowed.includes("shell") ? "shell" : allowed[0];
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
  for (const s of document.querySelectorAll(".page")) s.hidden = s.id !== "page-" + page;
  for (const t of app.timers) clearInterval(t);
  app.timers = [];
  pages[page]?.();
}

const MODES = { 0: "datanode", 1: "agent", 2: "controller", 3: "single", 4: "computenode" };
const MODE_ORDER = { 2: 0, 1: 1, 0: 2, 4: 3, 3: 4 };

// Nodes: getClusterPerf(true), start/stop through the agents.
pages.nodes = () => {
  const table = $("nodes-table"), msg = $("nodes-message");
  const selected = new Set();
  const render = (list) => {
    list.sort((a, b) => (MODE_ORDER[a.mode] - MODE_ORDER[b.mode]) || a.name.localeCompare(b.name));
    const head = el("tr", {}, ...["", "State", "Name", "Mode", "Site", "Connections", "Memory (MB)",
      "CPU %", "Running jobs", "Max connections", "Leader"].map((h) => el("th", {}, h)));
    table.replaceChildren(head, ...list.map((n) => {
      const startable = n.mode === 0 || n.mode === 4;
      const online = truthy(n.state);
      const box = startable ? el("input", { type: "checkbox", "data-node": n.name, checked: selected.has(n.name) }) : "";
      if (box) box.onchange = () => box.checked ? selected.add(n.name) : selected.delete(n.name);
      const name = startable && online
        ? el("a", { href: `http://${n.host}:${n.port}/#shell`, target: "_blank", class: "node-link" }, n.name)
        : n.name;
      return el("tr", { "data-node": n.name, "data-state": online ? "online" : "offline" },
        el("td", {}, box),
        el("td", {}, el("span", { class: "state" + (online ? " online" : ""), title: online ? "online" : "offline" })),
        el("td", {}, name), el("td", {}, MODES[n.mode] || String(n.mode)), el("td", {}, n.site),
        el("td", {}, String(n.connectionNum)), el("td", {}, (Number(n.memoryUsed) / 1048576).toFixed(1)),
        el("td", {}, Number(n.cpuUsage).toFixed(1)), el("td", {}, String(n.runningJobs)),
        el("td", {}, String(n.maxConnections)), el("td", {}, truthy(n.isLeader) ? "★" : ""));
    }));
  };
  const refresh = async () => {
    try {
      render(rows(await run("getClusterPerf(true)")));
    } catch (e) {
      show(msg, e.message, true);
    }
  };
  const act = async (fn) => {
    const names = [...selected];
    if (!names.length) return show(msg, "Select data or compute nodes first", true);
    try {
      await run(`${fn}(${vec(names)})`);
      show(msg, `${fn === "startDataNode" ? "Starting" : "Stopping"} ${names.join(", ")}`);
    } catch (e) {
      show(msg, e.message, true);
    }
    refresh();
  };
  $("nodes-start").onclick = () => act("startDataNode");
  $("nodes-stop").onclick = () => act("stopDataNode");
  $("nodes-refresh").onclick = refresh;
  refresh();
  app.timers.push(setInterval(refresh, 2000));
};

// Controller Config and Nodes Config: key=value lines kept in Raft.
function configPage(section, load, save, ownKeys) {
  const table = section.querySelector(".config-table"), msg = section.querySelector(".config-message");
  const row = (key, value, own) => {
    const k = el("input", { class: "config-key", value: key, readonly: own, size: 32 });
    const v = el("input", { class: "config-value", value: value, readonly: own, size: 48 });
    const del = own ? el("span", { class: "muted" }, "this controller's own")
      : el("button", { class: "config-delete", title: "Remove" }, "✕");
    const tr = el("tr", { class: own ? "own" : "" }, el("td", {}, k), el("td", {}, v), el("td", {}, del));
    if (!own) del.onclick = () => tr.remove();
    return tr;
  };
  const reload = async () => {
    try {
      const lines = (await run(`${load}()`)).value || [];
      table.replaceChildren(el("tr", {}, el("th", {}, "Key"), el("th", {}, "Value"), el("th", {}, "")),
        ...lines.map((l) => {
          const i = l.indexOf("=");
          const key = l.slice(0, i), value = l.slice(i + 1);
          return row(key, value, ownKeys.includes(key));
        }));
    } catch (e) {
      show(msg, e.message, true);
    }
  };
  section.querySelector(".config-add").onclick = () => {
    const r = row("", "", false);
    table.append(r);
    r.querySelector(".config-key").focus();
  };
  section.querySelector(".config-reload").onclick = () => { show(msg, ""); reload(); };
  section.querySelector(".config-save").onclick = async () => {
    const lines = [...table.querySelectorAll("tr:not(.own)")]
      .map((tr) => [tr.querySelector(".config-key"), tr.querySelector(".config-value")])
      .filter(([k]) => k && k.value.trim())
      .map(([k, v]) => `${k.value.trim()}=${v.value.trim()}`);
    try {
      await run(`${save}(${vec(lines)})`);
      show(msg, `Saved ${lines.length} keys: every controller's file follows; in effect when a node restarts`);
      reload();
    } catch (e) {
      show(msg, e.message, true);
    }
  };
  reload();
}

pages["controller-config"] = () => configPage($("page-controller-config"), "loadControllerConfigs",
  "saveControllerConfigs", ["localSite", "publicName"]);
pages["nodes-config"] = () => configPage($("page-nodes-config"), "loadClusterNodesConfigs",
  "saveClusterNodesConfigs", []);

// DFS: databases -> partition directories -> each partition's chunk with its replicas.
let dfsPath = "/";
pages.dfs = () => {
  const table = $("dfs-table"), detail = $("dfs-detail");
  const open = async (path) => {
    dfsPath = path;
    $("dfs-path").textContent = "dfs:/" + path;
    detail.replaceChildren();
    let list;
    try {
      list = rows(await run(`getDFSDirectoryContent(${lit(path)})`));
    } catch (e) {
      return detail.replaceChildren(el("p", { class: "error" }, e.message));
    }
    const leaves = list.filter((f) => f.filetype === 4);
    let status = {};
    if (leaves.length) {
      try {
        for (const c of rows(await run("getClusterChunksStatus()"))) status[c.chunkId] = c;
      } catch (e) { /* versions unknown */ }
    }
    table.replaceChildren(
      el("tr", {}, ...["Name", "Type", "Chunk", "Replica sites", "Versions", "State"].map((h) => el("th", {}, h))),
      ...list.map((f) => {
        const dir = f.filetype === 0;
        const chunks = String(f.chunks || "").split(",").filter(Boolean);
        const versions = chunks.map((c) => status[c]?.replicas || "").join(" ");
        const tr = el("tr", { class: dir ? "clickable" : "", "data-name": f.filename },
          el("td", {}, (dir ? "📁 " : "") + f.filename), el("td", {}, dir ? "directory" : "chunk"),
          el("td", {}, chunks.join(", ")), el("td", { class: "sites" }, f.sites || ""),
          el("td", {}, versions.split(",").filter(Boolean).map((r) => {
            const [alias, version] = r.split(":");
            return `${alias} v${version}`;
          }).join(", ")),
          el("td", {}, chunks.map((c) => status[c]?.state || "").join(" ")));
        if (dir) tr.onclick = () => open(path + f.filename + "/");
        return tr;
      }));
  };
  $("dfs-up").onclick = () => {
    const parts = dfsPath.split("/").filter(Boolean);
    parts.pop();
    open(parts.length ? "/" + parts.join("/") + "/" : "/");
  };
  $("dfs-refresh").onclick = () => open(dfsPath);
  open(dfsPath);
};

// Shell: editor, results, Local Variables, databases.
const KEYWORDS = new Set(("def if else for do while return break continue select exec from where group by " +
  "context cgroup csort order asc desc having limit top update set delete insert into values and or not in " +
  "like between as pivot map true false share undef try catch throw const").split(" "));

function highlight(src) {
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const re = /(\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|("(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)|(`[A-Za-z0-9_.`]*)|(\b\d[\d.]*(?:[eE][+-]?\d+)?[a-zA-Z]?\b)|([A-Za-z_][A-Za-z0-9_!]*)/g;
  let out = "", last = 0, m;
  while ((m = re.exec(src))) {
    out += esc(src.slice(last, m.index));
    const [text, com, str, sym, num, word] = m;
    let cls = null;
    if (com) cls = "tok-com";
    else if (str || sym) cls = "tok-str";
    else if (num) cls = "tok-num";
    else if (word) {
      if (KEYWORDS.has(word.toLowerCase())) cls = "tok-kw";
      else if (/^\s*\(/.test(src.slice(re.lastIndex))) cls = "tok-fn";
    }
    out += cls ? `<span class="${cls}">${esc(text)}</span>` : esc(text);
    last = re.lastIndex;
  }
  return out + esc(src.slice(last)) + "\n";
}

const PAGE_ROWS = 20;

/** A result as DOM: a paged table, a vector, a scalar. */
function renderResult(result) {
  if (!result || result.form === "void") return el("div");
  if (result.form === "table") {
    let page = 0;
    const n = result.columns.length ? result.columns[0].value.length : 0;
    const pages = Math.max(1, Math.ceil(n / PAGE_ROWS));
    const grid = el("table", { class: "grid result-table" });
    const info = el("span");
    const draw = () => {
      const from = page * PAGE_ROWS, to = Math.min(n, from + PAGE_ROWS);
      const body = [];
      for (let i = from; i < to; i++)
        body.push(el("tr", {}, ...result.columns.map((c) => el("td", {}, c.value[i] === null ? "" : String(c.value[i])))));
      grid.replaceChildren(el("tr", {}, ...result.columns.map((c) => el("th", { title: c.type }, c.name))), ...body);
      info.textContent = `rows ${n ? from + 1 : 0}–${to} of ${result.rows}` + (result.rows > n ? ` (first ${n} sent)` : "") +
        `, page ${page + 1} of ${pages}`;
    };
    const prev = el("button", { class: "page-prev", onclick: () => { if (page > 0) { page--; draw(); } } }, "‹ Prev");
    const next = el("button", { class: "page-next", onclick: () => { if (page < pages - 1) { page++; draw(); } } }, "Next ›");
    draw();
    return el("div", {}, el("div", { class: "pager" }, prev, next, info), grid);
  }
  if (result.form === "vector" || result.form === "set")
    return el("pre", { class: "result-value" }, `${result.type} ${result.form} (${result.size}): ` +
      "[" + result.value.map((v) => v === null ? "" : String(v)).join(", ") + "]");
  if (result.form === "scalar") return el("pre", { class: "result-value" }, String(result.value));
  return el("pre", { class: "result-value" }, JSON.stringify(result.value ?? result.form, null, 1));
}

pages.shell = () => {
  const editor = $("editor"), hl = $("editor-highlight");
  const sync = () => {
    hl.innerHTML = highlight(editor.value);
    hl.scrollTop = editor.scrollTop;
    hl.scrollLeft = editor.scrollLeft;
    sessionStorage.setItem("porpoise.script", editor.value);
  };
  if (!editor.dataset.ready) {
    editor.dataset.ready = "1";
    editor.value = sessionStorage.getItem("porpoise.script") || "";
    editor.addEventListener("input", sync);
    editor.addEventListener("scroll", sync);
    editor.addEventListener("keydown", (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
        e.preventDefault();
        runEditor();
      } else if (e.key === "Tab") {
        e.preventDefault();
        editor.setRangeText("    ", editor.selectionStart, editor.selectionEnd, "end");
        sync();
      }
    });
    $("shell-run").onclick = () => runEditor();
    $("shell-clear").onclick = () => { $("shell-output").replaceChildren(); $("shell-result").replaceChildren(); };
    $("db-refresh").onclick = () => loadDatabases();
  }
  sync();
  loadVariables();
  loadDatabases();
};

async function runEditor() {
  const editor = $("editor");
  const { selectionStart: a, selectionEnd: b } = editor;
  const script = a !== b ? editor.value.slice(a, b) : editor.value;
  // A selection's line numbers count from the editor's first line.
  const offset = a !== b ? editor.value.slice(0, a).split("\n").length - 1 : 0;
  const status = $("shell-status"), out = $("shell-output"), res = $("shell-result");
  show(status, "Running…");
  $("shell-run").disabled = true;
  const t0 = performance.now();
  try {
    const reply = await execute(script);
    out.replaceChildren(...(reply.output || []).map((l) => el("div", { class: "print" }, l)));
    if (reply.ok) {
      res.replaceChildren(renderResult(reply.result));
      show(status, `Done in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    } else {
      const where = reply.line ? `Line ${reply.line + offset}, column ${reply.column}: ` : "";
      res.replaceChildren(el("pre", { class: "error shell-error" }, where + reply.error));
      show(status, "Failed", true);
    }
  } catch (e) {
    res.replaceChildren(el("pre", { class: "error shell-error" }, String(e)));
    show(status, "Failed", true);
  } finally {
    $("shell-run").disabled = false;
  }
  loadVariables();
  loadDatabases();
}

async function loadVariables() {
  const table = $("vars-table");
  let list = [];
  try {
    list = rows(await run("objs(true)"));
  } catch (e) { /* none */ }
  table.replaceChildren(el("tr", {}, ...["Name", "Type", "Form", "Rows", "Columns", "Bytes"].map((h) => el("th", {}, h))),
    ...list.map((v) => {
      const tr = el("tr", { class: "clickable var", "data-name": v.name },
        ...[v.name, v.type, v.form, v.rows, v.columns, v.bytes].map((x) => el("td", {}, String(x))));
      tr.onclick = async () => {
        try {
          $("shell-result").replaceChildren(el("h4", {}, v.name), renderResult(await run(v.name)));
        } catch (e) {
          $("shell-result").replaceChildren(el("pre", { class: "error" }, e.message));
        }
      };
      return tr;
    }));
}

async function loadDatabases() {
  const tree = $("db-tree");
  let dbs = [], tables = [];
  try {
    dbs = (await run("getClusterDFSDatabases()")).value || [];
    tables = (await run("getClusterDFSTables()")).value || [];
  } catch (e) {
    return tree.replaceChildren(el("li", { class: "muted" }, e.message));
  }
  tree.replaceChildren(...dbs.map((db) => {
    const mine = tables.filter((t) => t.startsWith(db + "/")).map((t) => t.slice(db.length + 1));
    const sub = el("ul", { class: "tree", hidden: true },
      ...mine.map((t) => el("li", { class: "table", "data-table": t, title: `loadTable(${lit(db)}, ${lit(t)})` }, "▦ " + t)));
    const li = el("li", { class: "db", "data-db": db }, el("span", {}, "🗄 " + db), sub);
    li.firstChild.onclick = () => { sub.hidden = !sub.hidden; };
    return li;
  }));
}

// Dashboard: every node's /metrics, sampled.
const SERIES = [
  { key: "cpu", title: "CPU (% of a core)", from: (m, p, dt) => p ? ((m.porpoise_process_cpu_seconds_total - p.porpoise_process_cpu_seconds_total) / dt) * 100 : null },
  { key: "memory", title: "Memory (MB)", from: (m) => m.porpoise_process_resident_memory_bytes / 1048576 },
  { key: "connections", title: "Connections", from: (m) => m.porpoise_connections },
  { key: "queries", title: "Scripts and queries per second", from: (m, p, dt) => p ? (m.porpoise_script_seconds_count - p.porpoise_script_seconds_count) / dt : null },
  { key: "writes", title: "Rows written per second", from: (m, p, dt) => p ? (m.porpoise_prepared_rows_total - p.porpoise_prepared_rows_total) / dt : null },
];
const HISTORY = 60;
const history = {}; // node -> { last: {metrics, t}, points: {series: [values]} }
const COLORS = ["#1f6fb5", "#2fa84f", "#c2185b", "#f57c00", "#6a1b9a", "#00838f", "#5d4037", "#455a64", "#9e9d24", "#d32f2f", "#3949ab", "#00897b"];

/** Prometheus text: sum of each metric's samples by name (labels ignored). */
function parseMetrics(text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) out[m[1]] = (out[m[1]] || 0) + v;
  }
  return out;
}

async function sample() {
  let nodes = [{ name: app.node.alias, url: "/metrics" }];
  try {
    const perf = rows(await run("getClusterPerf(true)"));
    nodes = perf.filter((n) => truthy(n.state)).map((n) => ({
      name: n.name,
      url: `${n.host}:${n.port}` === location.host ? "/metrics" : `http://${n.host}:${n.port}/metrics`,
    }));
  } catch (e) { /* this node alone */ }
  const now = performance.now() / 1000;
  await Promise.all(nodes.map(async (n) => {
    try {
      const m = parseMetrics(await (await fetch(n.url)).text());
      const h = history[n.name] || (history[n.name] = { last: null, points: {} });
      const dt = h.last ? now - h.last.t : 0;
      for (const s of SERIES) {
        const v = s.from(m, h.last && h.last.metrics, dt);
        const pts = h.points[s.key] || (h.points[s.key] = []);
        if (v !== null && Number.isFinite(v)) pts.push(v);
        if (pts.length > HISTORY) pts.shift();
      }
      h.last = { metrics: m, t: now };
    } catch (e) { /* the node did not answer this time */ }
  }));
  drawCharts();
}

function drawCharts() {
  const box = $("charts");
  const names = Object.keys(history).sort();
  for (const s of SERIES) {
    let chart = box.querySelector(`[data-series="${s.key}"]`);
    if (!chart) {
      chart = el("div", { class: "chart", "data-series": s.key }, el("h4", {}, s.title),
        el("canvas", { width: 420, height: 160 }), el("div", { class: "legend" }));
      box.append(chart);
    }
    const canvas = chart.querySelector("canvas"), ctx = canvas.getContext("2d");
    const all = names.flatMap((n) => history[n].points[s.key] || []);
    const max = Math.max(1e-9, ...all) * 1.1;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#d5dde4";
    ctx.strokeRect(30, 5, canvas.width - 35, canvas.height - 20);
    ctx.fillStyle = "#5b6b7a";
    ctx.font = "10px sans-serif";
    ctx.fillText(max.toPrecision(3), 0, 12);
    ctx.fillText("0", 18, canvas.height - 15);
    names.forEach((n, i) => {
      const pts = history[n].points[s.key] || [];
      ctx.strokeStyle = COLORS[i % COLORS.length];
      ctx.beginPath();
      pts.forEach((v, j) => {
        const x = 30 + ((canvas.width - 35) * (j + HISTORY - pts.length)) / (HISTORY - 1);
        const y = 5 + (canvas.height - 20) * (1 - v / max);
        j ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
      });
      ctx.stroke();
    });
    chart.dataset.points = String(all.length);
    chart.querySelector(".legend").replaceChildren(...names.map((n, i) => {
      const pts = history[n].points[s.key] || [];
      const last = pts.length ? pts[pts.length - 1] : null;
      return el("span", { style: `color:${COLORS[i % COLORS.length]}` }, `${n} ${last === null ? "–" : last.toFixed(1)}`);
    }));
  }
}

pages.dashboard = () => {
  sample();
  app.timers.push(setInterval(sample, 2000));
};

// ---- start ------------------------------------------------------------------------------

async function start() {
  app.node = await (await fetch("/health")).json();
  document.title = `Porpoise · ${app.node.alias}`;
  $("node-name").textContent = `${app.node.alias} · ${app.node.mode} · ${location.host}`;
  for (const a of document.querySelectorAll("#nav a")) a.hidden = !a.dataset.modes.split(" ").includes(app.node.mode);
  if (await followLeader()) return;
  // An agent runs no scripts: it shows its own metrics, without a login.
  if (app.node.mode !== "agent" && !(await loggedIn())) await askLogin();
  $("user-name").textContent = app.user;
  $("logout").hidden = false;
  $("logout").onclick = async () => {
    try { await run("logout()"); } catch (e) { /* gone anyway */ }
    sessionStorage.removeItem("porpoise.user");
    app.user = null;
    location.reload();
  };
  window.addEventListener("hashchange", route);
  route();
}

start();
