// The Sluice dashboard: every view of the topology, kept live by the query API's
// Server-Sent Events (one stream for all views: a browser opens at most six connections to
// a server, and a stream per view left half the panels waiting for one), and the engine's
// progress from /status.
//
// Window views become charts (a line over time for a view with one key, such as `all`;
// bars of the latest window per key otherwise), table views become tables. What the page
// shows is kept in `window.sluiceDashboard`, so that a browser test can compare it with
// what the API answers.
"use strict";

const MAX_WINDOWS = 30;
const MAX_KEYS = 12;
// A table with more keys (one row per order, say) shows its last ones in key order.
const MAX_ROWS = 50;
const STATUS_EVERY_MS = 1000;

const dashboard = { views: {}, charts: {}, status: null };
window.sluiceDashboard = dashboard;

// An engine run with `--api-token-reads` answers reads only with its token. The page takes
// it from its address's fragment (`/#token=...`: a browser never sends the fragment to a
// server, so it shows in no log), keeps it for the tab, takes it out of the address bar,
// and sends it with every request: as a header on fetches, and as `access_token` on the
// stream, since an EventSource cannot set headers.
const TOKEN_KEY = "sluice-api-token";
const token = (() => {
  const given = new URLSearchParams(location.hash.slice(1)).get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    history.replaceState(null, "", location.pathname + location.search);
    return given;
  }
  return sessionStorage.getItem(TOKEN_KEY);
})();

// A token given to an open page (the user adds `#token=...` after being asked for it)
// starts the page again with it.
window.addEventListener("hashchange", () => {
  if (new URLSearchParams(location.hash.slice(1)).has("token")) location.reload();
});

class NeedsToken extends Error {}

async function api(path) {
  const response = await fetch(path, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  if (response.status === 401) throw new NeedsToken((await response.json()).error);
  return response.json();
}

function streamUrl(path) {
  return token ? `${path}?access_token=${encodeURIComponent(token)}` : path;
}

function showError(error) {
  document.getElementById("freshness").textContent = error instanceof NeedsToken
    ? `this engine needs its API token (${error.message}): open ${location.origin}/#token=YOUR_TOKEN`
    : `cannot reach the engine: ${error}`;
}

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A field that holds a point in time rather than an amount (`last_report_ms`): epoch
// milliseconds after 2001 would flatten every amount beside it on a chart.
const EPOCH_MS_FROM = 1e12;

// The numeric fields of a value that a chart plots: the value itself when it is a number.
function numbers(value) {
  if (typeof value === "number") return { value };
  const found = {};
  if (value && typeof value === "object") {
    for (const [field, inner] of Object.entries(value)) {
      if (typeof inner !== "number") continue;
      if (field.endsWith("_ms") && inner >= EPOCH_MS_FROM) continue;
      found[field] = inner;
    }
  }
  return found;
}

// An epoch-millisecond time as the clock reads it, in UTC.
function clock(millis) {
  return new Date(millis).toISOString().slice(11, 16);
}

function formatted(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(2);
  if (value === null || value === undefined) return "";
  // A window's bounds (`current_window`): the minutes it spans.
  if (typeof value === "object" && typeof value.start === "number" && typeof value.end === "number") {
    return `${clock(value.start)}–${clock(value.end)} UTC`;
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function panel(spec, title) {
  const section = element("section", { id: `view-${spec.name}`, "data-view": spec.name });
  const heading = element("h2", {}, spec.name + " ");
  heading.append(element("small", {}, title));
  section.append(heading);
  document.getElementById("panels").append(section);
  return section;
}

// A window view: key -> start -> {end, value, final}.
function followWindows(spec) {
  const section = panel(spec, `${spec.kind} windows by ${spec.key}`);
  const holder = element("div", { class: "chart" });
  const canvas = element("canvas", { "data-chart": spec.name });
  holder.append(canvas);
  section.append(holder);
  const keys = new Map();
  const view = { spec, keys };
  dashboard.views[spec.name] = view;
  let chart = null;
  // A chart of `type`, made again when the type changes (one key became several).
  const chartOf = (type) => {
    if (chart?.config.type !== type) {
      chart?.destroy();
      chart = new Chart(canvas, {
        type,
        data: { labels: [], datasets: [] },
        options: { animation: false, responsive: true, maintainAspectRatio: false,
          scales: {
            y: { beginAtZero: true },
            // Percentages (fields named `..._pct`) on their own axis, beside the counts.
            percent: { position: "right", beginAtZero: true, suggestedMax: 100,
              display: "auto", grid: { drawOnChartArea: false } },
          } },
      });
      dashboard.charts[spec.name] = chart;
    }
    return chart;
  };

  const put = (key, window) => {
    if (!keys.has(key)) keys.set(key, new Map());
    keys.get(key).set(window.start, window);
  };
  const redraw = () => {
    if (keys.size <= 1) {
      // One key: each numeric field over the latest windows.
      const [windows] = keys.values();
      const starts = windows ? [...windows.keys()].sort().slice(-MAX_WINDOWS) : [];
      const fields = new Set();
      for (const start of starts) Object.keys(numbers(windows.get(start).value)).forEach((f) => fields.add(f));
      const chart = chartOf("line");
      chart.data.labels = starts.map((start) => start.slice(11, 16));
      chart.data.datasets = [...fields].map((field) => ({
        label: field,
        yAxisID: field.endsWith("_pct") ? "percent" : "y",
        data: starts.map((start) => numbers(windows.get(start).value)[field] ?? null),
        starts,
      }));
      chart.update("none");
    } else {
      // Many keys: the first numeric field of each key's latest window.
      const latest = [...keys.entries()].map(([key, windows]) => {
        const start = [...windows.keys()].sort().pop();
        const value = numbers(windows.get(start).value);
        const [field] = Object.keys(value);
        return { key, start, field, amount: field === undefined ? 0 : value[field] };
      });
      latest.sort((a, b) => b.amount - a.amount || a.key.localeCompare(b.key));
      const shown = latest.slice(0, MAX_KEYS);
      const chart = chartOf("bar");
      chart.data.labels = shown.map((entry) => entry.key);
      chart.data.datasets = [{
        label: `${shown[0]?.field ?? "value"} in the latest window`,
        data: shown.map((entry) => entry.amount),
        starts: shown.map((entry) => entry.start),
      }];
      chart.update("none");
    }
  };
  follow(spec, (event) => {
    if (event.windows) event.windows.forEach((window) => put(event.key, window));
    if (event.window) put(event.key, event.window);
    if (event.removed) keys.get(event.key)?.delete(event.removed.start);
  }, redraw);
}

// A table view: key -> value, shown as rows of its fields.
function followTable(spec) {
  const section = panel(spec, `table by ${spec.key}`);
  const table = element("table", { "data-table": spec.name });
  section.append(table);
  const rows = new Map();
  dashboard.views[spec.name] = { spec, rows };
  const redraw = () => {
    const fields = new Set();
    for (const value of rows.values()) {
      if (value && typeof value === "object") Object.keys(value).forEach((f) => fields.add(f));
    }
    const columns = fields.size ? [...fields] : ["value"];
    const allKeys = [...rows.keys()].sort();
    const keys = allKeys.slice(-MAX_ROWS);
    const cell = (key, column) => {
      const value = rows.get(key);
      const shown = fields.size ? value?.[column] : value;
      const attributes = { "data-key": key, "data-field": column };
      if (column === "state") attributes.class = `state-${shown}`;
      return element("td", attributes, formatted(shown));
    };
    table.replaceChildren();
    if (keys.length === 1) {
      // One key (a summary such as `all`): a row per field reads better than one wide row.
      for (const column of columns) {
        const row = element("tr");
        row.append(element("th", {}, column), cell(keys[0], column));
        table.append(row);
      }
      return;
    }
    if (allKeys.length > keys.length) {
      table.append(element("caption", {}, `the last ${keys.length} of ${allKeys.length} keys`));
    }
    const head = element("tr");
    head.append(element("th", {}, spec.key));
    columns.forEach((column) => head.append(element("th", {}, column)));
    table.append(head);
    for (const key of keys) {
      const row = element("tr", { "data-key": key });
      row.append(element("td", {}, key));
      columns.forEach((column) => row.append(cell(key, column)));
      table.append(row);
    }
  };
  follow(spec, (event) => {
    if (event.deleted) rows.delete(event.key);
    else if ("value" in event) rows.set(event.key, event.value);
  }, redraw);
}

// Registers a view with the one stream: `entry` events make up its current state, `ready`
// ends it, and each `change` follows. A fresh `entry`..`ready` run (after the stream fell
// behind, or reconnected) replaces everything the view held.
const followers = {};

function follow(spec, apply, redraw) {
  followers[spec.name] = { apply, redraw, resetting: true };
}

// A redraw per view and frame, however many changes a checkpoint brought.
const pendingRedraws = new Set();
function redrawSoon(name) {
  if (pendingRedraws.size === 0) {
    requestAnimationFrame(() => {
      for (const pending of pendingRedraws) followers[pending].redraw();
      pendingRedraws.clear();
    });
  }
  pendingRedraws.add(name);
}

function listen() {
  const source = new EventSource(streamUrl("/stream"));
  const handle = (name, handler) => source.addEventListener(name, (message) => {
    const data = JSON.parse(message.data);
    const follower = followers[data.view];
    if (follower) handler(data, follower, dashboard.views[data.view]);
  });
  handle("entry", (data, follower, view) => {
    if (!follower.resetting) {
      view.keys?.clear();
      view.rows?.clear();
      follower.resetting = true;
    }
    follower.apply(data);
  });
  handle("ready", (data, follower, view) => {
    follower.resetting = false;
    view.checkpoint = data.checkpoint?.id ?? 0;
    redrawSoon(data.view);
  });
  handle("change", (data, follower, view) => {
    follower.apply(data);
    view.checkpoint = data.checkpoint;
    redrawSoon(data.view);
  });
}

function counter(label, value) {
  const box = element("div", { class: "counter", "data-counter": label });
  box.append(element("b", {}, formatted(value)), element("span", {}, label));
  return box;
}

async function refreshStatus() {
  try {
    const status = await api("/status");
    dashboard.status = status;
    const lateBy = {};
    for (const late of status.late_by) {
      const key = `${late.topic}/${late.partition}`;
      lateBy[key] = (lateBy[key] ?? 0) + late.count;
    }
    document.getElementById("counters").replaceChildren(
      counter("processed", status.processed),
      counter("emitted", status.emitted),
      counter("late", status.late),
      counter("dlq", status.dlq),
      counter("checkpoint", status.checkpoint?.id ?? "none"),
    );
    const rows = status.partitions.map((partition) => {
      const row = element("tr", { "data-partition": `${partition.topic}/${partition.partition}` });
      row.append(
        element("td", {}, partition.topic),
        element("td", {}, String(partition.partition)),
        element("td", {}, String(partition.offset)),
        element("td", { "data-field": "lag" }, partition.lag === null ? "?" : String(partition.lag)),
        element("td", {}, partition.watermark ?? "no records"),
        element("td", {}, String(partition.processed)),
        element("td", {}, String(partition.emitted)),
        element("td", {}, String(partition.failed)),
        element("td", {}, String(lateBy[`${partition.topic}/${partition.partition}`] ?? 0)),
      );
      return row;
    });
    document.getElementById("partition-rows").replaceChildren(...rows);
    document.getElementById("freshness").textContent =
      `watermark ${status.watermark ?? "not yet"} · checkpoint ${status.checkpoint?.id ?? "none"}` +
      (status.error ? ` · STOPPED: ${status.error}` : "");
  } catch (error) {
    showError(error);
    // Without the token nothing will change until the page is opened with it.
    if (error instanceof NeedsToken) return;
  }
  setTimeout(refreshStatus, STATUS_EVERY_MS);
}

async function start() {
  let answer;
  try {
    answer = await api("/views");
  } catch (error) {
    showError(error);
    // A missing token needs the user; anything else (the engine restarting) passes.
    if (!(error instanceof NeedsToken)) setTimeout(start, STATUS_EVERY_MS);
    return;
  }
  if (!answer.views) {
    // 503 while the engine starts: the answer says which phase it is in.
    document.getElementById("freshness").textContent = answer.error ?? "waiting for the engine";
    setTimeout(start, STATUS_EVERY_MS);
    return;
  }
  const { views } = answer;
  for (const spec of views) {
    if (spec.kind === "table") followTable(spec);
    else followWindows(spec);
  }
  listen();
  refreshStatus();
}

start();
