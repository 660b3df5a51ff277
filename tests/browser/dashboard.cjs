// Drives Debian's Chromium with playwright-core (tests/dashboard_browser.rs runs it): loads
// the dashboard of a running `shop`, waits until its charts and tables show what the API
// answers at the same moment, and saves a screenshot. Then every panel of every view: the
// page's state of the view equals a full read of it through the API, and the panel shows
// that state; twice, the second time once every view has moved on, so that each panel is
// seen to stay live.
//
// With a token (an engine run with `--api-token-reads`), it first checks that the page
// opened without it says so and that the API refuses a read without it, then opens the
// page as `/#token=TOKEN`, reads the API with the token, and checks that the page took the
// token out of its address.
//
// Usage: node dashboard.cjs BASE_URL SCREENSHOT_PATH [TOKEN]
// Prints one JSON line of what it compared; exits non-zero on any difference left at the
// deadline, or on a script error in the page.
"use strict";

const { chromium } = require("playwright-core");

const [base, screenshot, token] = process.argv.slice(2);
const DEADLINE_MS = 60_000;

async function api(path, withToken = true) {
  const headers = token && withToken ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(base + path, { headers });
  return { status: response.status, body: await response.json() };
}

// Without the token, the API refuses reads and the page says what it needs.
async function checkRefusedWithoutToken(page) {
  const refused = await api("/views", false);
  if (refused.status !== 401) throw new Error(`a read without the token answered ${refused.status}`);
  await page.goto(base + "/");
  await page.waitForFunction(
    () => document.getElementById("freshness").textContent.includes("needs its API token"),
    null, { timeout: DEADLINE_MS });
}

// What the page shows, read from the charts' data and the tables' cells.
function shown() {
  const dashboard = window.sluiceDashboard;
  const perMinute = dashboard.charts.orders_per_minute;
  const demand = dashboard.charts.item_demand;
  const series = (chart) => Object.fromEntries(
    (chart?.data.datasets ?? []).map((set) => [set.label,
      { starts: set.starts, data: set.data, axis: set.yAxisID }]));
  const cells = {};
  for (const cell of document.querySelectorAll('[data-table="order_totals"] td[data-key="all"][data-field]')) {
    cells[cell.dataset.field] = cell.textContent;
  }
  const stock = {};
  for (const cell of document.querySelectorAll('[data-table="stock_levels"] td[data-field="state"]')) {
    stock[cell.dataset.key] = { state: cell.textContent, colored: cell.className === `state-${cell.textContent}` };
  }
  const partitions = [...document.querySelectorAll("#partition-rows tr")].map((row) => row.dataset.partition);
  const counters = {};
  for (const box of document.querySelectorAll("[data-counter]")) {
    counters[box.dataset.counter] = box.querySelector("b").textContent;
  }
  return {
    perMinute: series(perMinute),
    failureRate: series(dashboard.charts.failure_rate),
    perMinuteType: perMinute?.config.type,
    demand: demand ? { type: demand.config.type, labels: demand.data.labels,
      data: demand.data.datasets[0]?.data ?? [], starts: demand.data.datasets[0]?.starts ?? [] } : null,
    totals: cells,
    stock,
    partitions,
    counters,
  };
}

// The differences between the page and the API, as messages; none means they agree.
function differences(page, perMinute, totals, demand, status, stock) {
  const found = [];
  // Every item's stock state, as the API has it, colored by its state.
  const states = Object.fromEntries(stock.body.entries.map((entry) => [entry.key, entry.value.state]));
  if (Object.keys(states).length === 0) found.push("no stock levels yet");
  for (const [item, state] of Object.entries(states)) {
    const cell = page.stock[item];
    if (!cell || cell.state !== state || !cell.colored) {
      found.push(`stock_levels ${item}: page ${JSON.stringify(cell)} != API ${state}`);
    }
  }
  const windows = perMinute.body.windows.slice(-30);
  const count = page.perMinute.count;
  if (!count) return ["no `count` line in the orders_per_minute chart"];
  const starts = windows.map((window) => window.start);
  if (JSON.stringify(count.starts) !== JSON.stringify(starts)) {
    found.push(`chart windows ${JSON.stringify(count.starts)} != API ${JSON.stringify(starts)}`);
  } else {
    windows.forEach((window, index) => {
      if (count.data[index] !== window.value.count) {
        found.push(`window ${window.start}: chart ${count.data[index]} != API ${window.value.count}`);
      }
      if (page.perMinute.failed?.data[index] !== window.value.failed) {
        found.push(`window ${window.start}: failed ${page.perMinute.failed?.data[index]} != ${window.value.failed}`);
      }
    });
  }
  for (const field of ["total_orders", "failed_orders", "current_orders_per_minute"]) {
    if (page.totals[field] !== String(totals.body.value[field])) {
      found.push(`order_totals ${field}: page ${page.totals[field]} != API ${totals.body.value[field]}`);
    }
  }
  // Each bar is a key's latest window, as the API has it.
  const latest = {};
  for (const entry of demand.body.entries) {
    const last = entry.windows[entry.windows.length - 1];
    latest[entry.key] = last;
  }
  if (!page.demand || page.demand.labels.length === 0) found.push("no bars in item_demand");
  page.demand?.labels.forEach((key, index) => {
    const last = latest[key];
    if (!last || last.value !== page.demand.data[index] || last.start !== page.demand.starts[index]) {
      found.push(`item_demand ${key}: bar ${page.demand.data[index]} != API ${JSON.stringify(last)}`);
    }
  });
  const partitions = status.body.partitions.map((p) => `${p.topic}/${p.partition}`);
  if (JSON.stringify(page.partitions) !== JSON.stringify(partitions)) {
    found.push(`partitions ${JSON.stringify(page.partitions)} != ${JSON.stringify(partitions)}`);
  }
  // The failure rate is on the chart too, on its percent axis.
  const rates = page.failureRate?.failure_rate_pct;
  if (!rates || rates.axis !== "percent") found.push("no failure_rate_pct on the percent axis");
  for (const counter of ["late", "dlq"]) {
    if (page.counters[counter] === undefined) found.push(`no ${counter} counter`);
  }
  return found;
}

// Every entry of a view, read a page at a time: key -> windows (start -> value and
// finality) or key -> value.
async function readView(name) {
  const entries = {};
  let after = null;
  for (;;) {
    const query = after === null ? "" : `&after=${encodeURIComponent(after)}`;
    const { status, body } = await api(`/views/${encodeURIComponent(name)}?limit=1000${query}`);
    if (status !== 200) throw new Error(`/views/${name}: ${status} ${JSON.stringify(body)}`);
    for (const entry of body.entries) {
      entries[entry.key] = entry.windows
        ? Object.fromEntries(entry.windows.map((window) => [window.start, [window.value, window.final]]))
        : entry.value;
    }
    if (body.next === null || body.next === undefined) return entries;
    after = body.next;
  }
}

// In the page: each view's state as the same shape as `readView`, and what its panel
// shows, checked against that state.
function panels() {
  const dashboard = window.sluiceDashboard;
  const found = {};
  for (const [name, view] of Object.entries(dashboard.views)) {
    const state = {};
    const problems = [];
    if (view.keys) {
      for (const [key, windows] of view.keys) {
        state[key] = Object.fromEntries([...windows.entries()].map(([start, window]) => [start, [window.value, window.final]]));
      }
      const chart = dashboard.charts[name];
      const plotted = (chart?.data.datasets ?? []).flatMap((set) => set.data).filter((value) => value !== null);
      if (view.keys.size > 0 && plotted.length === 0) problems.push("the chart is empty");
      // Every bar or point is a number of the view's windows.
      const numbersShown = new Set();
      for (const windows of view.keys.values()) {
        for (const window of windows.values()) {
          Object.values(numbers(window.value)).forEach((number) => numbersShown.add(number));
        }
      }
      const stray = plotted.filter((value) => !numbersShown.has(value));
      if (stray.length > 0) problems.push(`plotted numbers not in the view: ${stray.slice(0, 5)}`);
    } else {
      for (const [key, value] of view.rows) state[key] = value;
      // Each shown cell is the formatted value of its key and field.
      const cells = document.querySelectorAll(`[data-table="${name}"] td[data-key][data-field]`);
      if (view.rows.size > 0 && cells.length === 0) problems.push("the table is empty");
      for (const cell of cells) {
        const value = view.rows.get(cell.dataset.key);
        const field = cell.dataset.field;
        const shown = value !== null && typeof value === "object" ? value[field] : value;
        if (cell.textContent !== formatted(shown)) {
          problems.push(`${cell.dataset.key}.${field}: cell ${cell.textContent} != ${formatted(shown)}`);
        }
        if (typeof shown === "object" && shown !== null && cell.textContent.startsWith("{")) {
          problems.push(`${cell.dataset.key}.${field} shows raw JSON: ${cell.textContent}`);
        }
      }
    }
    found[name] = { state, problems, checkpoint: view.checkpoint ?? null };
  }
  return found;
}

const canonical = (value) => JSON.stringify(value, (_, inner) =>
  inner && typeof inner === "object" && !Array.isArray(inner)
    ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : inner);

// Waits until every view's panel has matched the API once, each match at a read that
// differs from `before[view]` when that is given (so a live view must have moved on).
// Returns the states matched, or throws with what did not match at the deadline.
async function matchEveryPanel(page, names, before, deadlineMs) {
  const matched = {};
  const deadline = Date.now() + deadlineMs;
  let last = {};
  while (Object.keys(matched).length < names.length) {
    for (const name of names.filter((name) => !(name in matched))) {
      const read = await readView(name);
      const shown = (await page.evaluate(panels))[name];
      const want = canonical(read);
      const moved = before === null || !(name in before.live) || before.states[name] !== want;
      if (shown && shown.problems.length === 0 && canonical(shown.state) === want && Object.keys(read).length > 0 && moved) {
        matched[name] = want;
      } else {
        last[name] = shown ? { problems: shown.problems, keys: Object.keys(shown.state).length,
          api_keys: Object.keys(read).length, equal: canonical(shown.state) === want, moved } : "no panel";
      }
    }
    if (Date.now() > deadline) {
      const missing = names.filter((name) => !(name in matched));
      throw new Error(`panels that never matched the API: ${JSON.stringify(Object.fromEntries(missing.map((name) => [name, last[name]])))}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return matched;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.SLUICE_CHROMIUM || "/usr/bin/chromium",
    // Headless on a machine with no network beyond localhost, as root.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    page.on("pageerror", (error) => errors.push(error.message));
    page.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });
    if (token) {
      await checkRefusedWithoutToken(page);
      // The browser logs the refused fetches as console errors; they were expected.
      errors.length = 0;
      await page.goto(`${base}/#token=${encodeURIComponent(token)}`);
      // The page was open already, so this is a change of its fragment, which it takes as
      // a token given after it asked; it starts again and clears the fragment.
      await page.waitForFunction(() => location.hash === "" && document.readyState === "complete",
        null, { timeout: DEADLINE_MS }).catch(async () => {
        throw new Error(`the token stayed in the address: ${await page.evaluate(() => location.href)}`);
      });
    } else {
      await page.goto(base + "/");
    }
    const deadline = Date.now() + DEADLINE_MS;
    let last = [];
    let compared = 0;
    for (;;) {
      const [perMinute, totals, demand, status, stock] = await Promise.all([
        api("/views/orders_per_minute/all"), api("/views/order_totals/all"),
        api("/views/item_demand?limit=1000"), api("/status"), api("/views/stock_levels")]);
      const page_ = await page.evaluate(shown);
      compared += 1;
      const ready = perMinute.status === 200 && totals.status === 200 && demand.body.entries?.length;
      last = ready ? differences(page_, perMinute, totals, demand, status, stock) : ["the views have no data yet"];
      if (last.length === 0 && errors.length === 0) {
        // Every panel of every view, then again once the views have moved on. Views fed
        // only by the processing reports change at their interval (10 s).
        const names = (await api("/views")).body.views.map((view) => view.name);
        const first = await matchEveryPanel(page, names, null, DEADLINE_MS);
        const firstStatus = (await api("/status")).body;
        const live = Object.fromEntries(names.map((name) => [name, true]));
        // The catalog changes only when a product does, which the demo may not do within
        // the wait: it must match, not move.
        delete live.catalog;
        const second = await matchEveryPanel(page, names, { states: first, live }, 2 * DEADLINE_MS);
        if (errors.length > 0) break;
        await page.screenshot({ path: screenshot, fullPage: true });
        console.log(JSON.stringify({ compared, windows: perMinute.body.windows.length,
          total_orders: totals.body.value.total_orders, bars: page_.demand.labels.length,
          stock_levels: Object.keys(page_.stock).length,
          chart: page_.perMinuteType, panels: Object.keys(second).length,
          checkpoints: [firstStatus.checkpoint?.id, (await api("/status")).body.checkpoint?.id] }));
        return 0;
      }
      if (errors.length > 0 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await page.screenshot({ path: screenshot, fullPage: true });
    console.error(JSON.stringify({ errors, differences: last }));
    return 1;
  } finally {
    await browser.close();
  }
}

main().then((code) => process.exit(code), (error) => { console.error(error); process.exit(2); });
