#!/usr/bin/env node
// Drives the hub's operations dashboard in the system Chromium, as an
// operator and then as a viewer, through the page only (no API shortcuts
// except the one forbidden request a viewer must be refused).
//
//   node dashboard.mjs --url http://127.0.0.1:PORT \
//     --operator USER:PASSWORD --viewer USER:PASSWORD \
//     --trace-message-id ID --dead-letter-message-id ID --screenshots DIR \
//     [--chromium /usr/bin/chromium] [--timeout-seconds 60]
//
// Steps: log in as the operator; see total-received change without a
// reload; trace --trace-message-id and check its timeline has the stages
// accepted, decision and published (trace.png); replay the dead letter of
// --dead-letter-message-id as a dry run (would-forward) and then for real
// (forwarded) (replay.png); log out, log in as the viewer, check the replay
// button is not shown and that the API refuses the viewer a replay with 403
// (viewer.png).
//
// Output: one JSON line per step on stdout, {"step": "...", "ok": true|false,
// ...}, then {"step": "summary", ...}. Exit status: 0 when every step
// passed, 1 when a step failed (the failing step's line says why; a
// failure-<step>.png is saved), 2 for bad arguments or a browser that does
// not start, 3 when the whole run exceeded its time limit. The browser is
// always closed.

import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const USAGE =
  "usage: node dashboard.mjs --url URL --operator USER:PASSWORD --viewer USER:PASSWORD " +
  "--trace-message-id ID --dead-letter-message-id ID --screenshots DIR " +
  "[--chromium PATH] [--timeout-seconds N]";

function parseArgs(argv) {
  const known = new Set([
    "url", "operator", "viewer", "trace-message-id", "dead-letter-message-id",
    "screenshots", "chromium", "timeout-seconds",
  ]);
  const args = { chromium: process.env.CHROMIUM || "/usr/bin/chromium", "timeout-seconds": "60" };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    if (!flag.startsWith("--") || !known.has(flag.slice(2))) throw new Error(`unknown argument ${flag}`);
    const value = argv[i + 1];
    if (value === undefined || value.startsWith("--")) throw new Error(`${flag} needs a value`);
    args[flag.slice(2)] = value;
    i += 1;
  }
  for (const name of ["url", "operator", "viewer", "trace-message-id", "dead-letter-message-id", "screenshots"]) {
    if (!args[name]) throw new Error(`--${name} is required`);
  }
  for (const name of ["operator", "viewer"]) {
    const at = args[name].indexOf(":");
    if (at <= 0) throw new Error(`--${name} must be USER:PASSWORD`);
    args[name] = { user: args[name].slice(0, at), password: args[name].slice(at + 1) };
  }
  args["timeout-seconds"] = Number(args["timeout-seconds"]);
  if (!(args["timeout-seconds"] > 0)) throw new Error("--timeout-seconds must be a positive number");
  return args;
}

/** One JSON line on stdout. */
function report(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const byTestId = (id) => `[data-testid="${id}"]`;
const cssString = (text) => JSON.stringify(String(text));

async function login(page, who) {
  await page.locator(byTestId("login-username")).waitFor({ state: "visible", timeout: 10000 });
  await page.fill(byTestId("login-username"), who.user);
  await page.fill(byTestId("login-password"), who.password);
  await page.click(byTestId("login-submit"));
  const whoami = page.locator(byTestId("whoami"));
  // Logged in (whoami names the user) or refused (the form shows an error).
  await page.waitForFunction(
    (user) =>
      document.querySelector('[data-testid="whoami"]')?.getAttribute("data-user") === user ||
      !document.querySelector('[data-testid="login-error"]')?.hidden,
    who.user,
    { timeout: 10000 },
  ).catch(() => {});
  if ((await whoami.getAttribute("data-user")) !== who.user || !(await whoami.isVisible())) {
    const error = page.locator(byTestId("login-error"));
    const shown = (await error.isVisible()) ? (await error.textContent()).trim() : "";
    throw new Error(`login as ${who.user} did not succeed${shown ? `: the page says "${shown}"` : ""}`);
  }
  return { user: who.user, role: await whoami.getAttribute("data-role") };
}

async function readTotal(page) {
  return (await page.locator(byTestId("total-received")).textContent()).trim();
}

const steps = {
  async "login-operator"(page, args) {
    await page.goto(args.url, { waitUntil: "domcontentloaded" });
    const who = await login(page, args.operator);
    if (who.role !== "operator" && who.role !== "admin") {
      throw new Error(`${who.user} has role ${who.role}, not operator`);
    }
    return who;
  },

  async "live-update"(page) {
    // A marker on the window: it survives in-place updates, not a reload.
    await page.evaluate(() => { window.__lhcieNoReload = true; });
    await page.waitForFunction(
      () => /\d/.test(document.querySelector('[data-testid="total-received"]')?.textContent || ""),
      null, { timeout: 10000 },
    );
    const before = await readTotal(page);
    try {
      await page.waitForFunction(
        (first) => document.querySelector('[data-testid="total-received"]').textContent.trim() !== first,
        before, { timeout: 20000, polling: 250 },
      );
    } catch (error) {
      throw new Error(`total-received stayed ${before} for 20 s`);
    }
    const after = await readTotal(page);
    if (!(await page.evaluate(() => window.__lhcieNoReload === true))) {
      throw new Error("the page reloaded instead of updating in place");
    }
    const live = (await page.locator(byTestId("live-status")).textContent()).trim();
    return { before, after, live };
  },

  async trace(page, args) {
    const id = args["trace-message-id"];
    const result = page.locator(`${byTestId("trace-result")}[data-message-id=${cssString(id)}]`);
    const deadline = Date.now() + 15000;
    for (;;) {
      await page.fill(byTestId("trace-message-id"), id);
      await page.click(byTestId("trace-search"));
      try {
        await result.first().waitFor({ state: "visible", timeout: 2000 });
        break;
      } catch (error) {
        if (Date.now() > deadline) {
          const said = await page.locator(byTestId("trace-message")).textContent();
          throw new Error(`no trace result for ${id} (the page says "${said}")`);
        }
      }
    }
    await result.first().click();
    await page.locator(`${byTestId("timeline-row")}`).first().waitFor({ state: "visible", timeout: 10000 });
    const stages = await page.locator(byTestId("timeline-row")).evaluateAll(
      (rows) => rows.map((row) => row.getAttribute("data-stage")),
    );
    const missing = ["accepted", "decision", "published"].filter((stage) => !stages.includes(stage));
    await page.screenshot({ path: path.join(args.screenshots, "trace.png"), fullPage: true });
    if (missing.length > 0) throw new Error(`the timeline lacks ${missing.join(", ")} (has ${stages.join(", ")})`);
    const patientShown = await page.locator(byTestId("trace-patient")).isVisible();
    return { message_id: id, stages, patient_shown: patientShown };
  },

  async replay(page, args) {
    const messageId = args["dead-letter-message-id"];
    const row = page.locator(`${byTestId("dead-letter-row")}[data-message-id=${cssString(messageId)}]`);
    const deadline = Date.now() + 15000;
    for (;;) {
      await page.click(byTestId("dead-letters-refresh"));
      try {
        await row.first().waitFor({ state: "visible", timeout: 2000 });
        break;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`no pending dead letter for message ${messageId}`);
      }
    }
    const id = await row.first().getAttribute("data-id");
    const outcomeOf = async (dryRun) => {
      const box = page.locator(`${byTestId("dead-letter-checkbox")}[data-id=${cssString(id)}]`);
      await box.check();
      await page.setChecked(byTestId("dry-run-checkbox"), dryRun);
      // Forget earlier results so the answer awaited is this one's.
      await page.evaluate(() => document.querySelector('[data-testid="replay-results"]').setAttribute("hidden", ""));
      await page.click(byTestId("replay-button"));
      const result = page.locator(`${byTestId("replay-result")}[data-id=${cssString(id)}]`);
      await page.locator(byTestId("replay-results")).waitFor({ state: "visible", timeout: 15000 });
      await result.waitFor({ state: "visible", timeout: 5000 });
      return {
        outcome: await result.getAttribute("data-outcome"),
        detail: (await result.locator("td").nth(3).textContent()).trim(),
      };
    };
    const dry = await outcomeOf(true);
    if (dry.outcome !== "would-forward") {
      throw new Error(`the dry run of dead letter ${id} answered ${dry.outcome} ${dry.detail}, not would-forward`);
    }
    const real = await outcomeOf(false);
    await page.screenshot({ path: path.join(args.screenshots, "replay.png"), fullPage: true });
    if (real.outcome !== "forwarded") {
      throw new Error(`the replay of dead letter ${id} answered ${real.outcome} ${real.detail}, not forwarded`);
    }
    return { id, message_id: messageId, dry_run: dry.outcome, replay: real.outcome };
  },

  async viewer(page, args) {
    await page.click(byTestId("logout"));
    await page.locator(byTestId("login-username")).waitFor({ state: "visible", timeout: 10000 });
    const who = await login(page, args.viewer);
    if (who.role !== "viewer") throw new Error(`${who.user} has role ${who.role}, not viewer`);
    // Let the dead letters render, so a replay button would be there by now.
    await page.locator(byTestId("dead-letter-row")).first().waitFor({ state: "attached", timeout: 1500 }).catch(() => {});
    await page.waitForFunction(
      () => /\d/.test(document.querySelector('[data-testid="total-received"]')?.textContent || ""),
      null, { timeout: 5000 },
    ).catch(() => {});
    const replayShown = await page.locator(byTestId("replay-button")).isVisible();
    const checkboxes = await page.locator(byTestId("dead-letter-checkbox")).count();
    const status = await page.evaluate(async () => {
      const response = await fetch("/api/dead-letters/replay", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ids: ["x"], dry_run: true }),
      });
      return response.status;
    });
    await page.screenshot({ path: path.join(args.screenshots, "viewer.png"), fullPage: true });
    if (replayShown) throw new Error("the replay button is shown to a viewer");
    if (checkboxes > 0) throw new Error("dead-letter checkboxes are shown to a viewer");
    if (status !== 403) throw new Error(`a viewer's replay request answered ${status}, not 403`);
    return { user: who.user, replay_button_shown: replayShown, replay_status: status };
  },
};

async function run(args, state) {
  fs.mkdirSync(args.screenshots, { recursive: true });
  try {
    state.browser = await chromium.launch({
      executablePath: args.chromium,
      args: ["--headless", "--no-sandbox", "--disable-gpu"],
    });
  } catch (error) {
    report({ step: "launch", ok: false, error: `cannot start ${args.chromium}: ${error.message.split("\n")[0]}` });
    return 2;
  }
  const context = await state.browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy/i.test(message.text())) {
      problems.push(`CSP: ${message.text()}`);
    }
  });
  for (const [name, step] of Object.entries(steps)) {
    const started = Date.now();
    try {
      const details = await step(page, args);
      if (problems.length > 0) throw new Error(`the page reported: ${problems.join(" | ")}`);
      if (state.over) return 3;
      report({ step: name, ok: true, ms: Date.now() - started, ...details });
    } catch (error) {
      if (state.over) return 3; // the time limit already ended the run and said so
      report({ step: name, ok: false, ms: Date.now() - started, error: error.message.split("\n")[0] });
      await page.screenshot({ path: path.join(args.screenshots, `failure-${name}.png`), fullPage: true }).catch(() => {});
      return 1;
    }
  }
  return 0;
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`dashboard.mjs: ${error.message}\n${USAGE}\n`);
    report({ step: "arguments", ok: false, error: error.message });
    return 2;
  }
  const state = { browser: null, over: false };
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => {
      state.over = true;
      report({ step: "timeout", ok: false, error: `the run took longer than ${args["timeout-seconds"]} s` });
      resolve(3);
    }, args["timeout-seconds"] * 1000);
  });
  const started = Date.now();
  let code;
  try {
    code = await Promise.race([run(args, state), timeout]);
  } catch (error) {
    report({ step: "run", ok: false, error: error.message.split("\n")[0] });
    code = 1;
  } finally {
    clearTimeout(timer);
    if (state.browser) await state.browser.close().catch(() => {});
  }
  report({ step: "summary", ok: code === 0, ms: Date.now() - started, exit: code });
  if (code !== 0) process.stderr.write(`dashboard.mjs: FAILED (exit ${code}); see the step lines above\n`);
  return code;
}

const exitCode = await main();
process.stdout.write("", () => process.exit(exitCode));
