// Drives Debian's Chromium with playwright-core (tests/dashboard_browser.rs runs it): loads
// the dashboard of a running `shop`, waits until its charts and tables show what the API
// answers at the same moment, and saves a screenshot.
//
// Usage: node dashboard.cjs BASE_URL SCREENSHOT_PATH
// Prints one JSON line of what it compared; exits non-zero on any difference left at the
// deadline, or on a script error in the page.
"use strict";

const { chromium } = require("playwright-core");

const [base, screenshot] = process.argv.slice(2);
const DEADLINE_MS = 60_000;

async function api(path) {
  const response = await fetch(base + path);
  return { status: response.status, body: await response.json() };
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
    await page.goto(base + "/");
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
        await page.screenshot({ path: screenshot, fullPage: true });
        console.log(JSON.stringify({ compared, windows: perMinute.body.windows.length,
          total_orders: totals.body.value.total_orders, bars: page_.demand.labels.length,
          stock_levels: Object.keys(page_.stock).length,
          chart: page_.perMinuteType }));
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
