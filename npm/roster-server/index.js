// Starts `roster serve` for a test suite (node:test, vitest) and drives its control plane.
// The binary comes from a per-platform package (esbuild's layout): npm installs only the
// one whose `os`/`cpu` match, and this file finds it.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const require = createRequire(import.meta.url);

/** `${process.platform} ${process.arch}` → the package holding that platform's binary. */
const PLATFORM_PACKAGES = {
  "linux x64": "@roster-server/linux-x64",
};

/** The `roster` binary: `$ROSTER_BIN`, else the installed platform package's. */
export function binaryPath() {
  if (process.env.ROSTER_BIN) return process.env.ROSTER_BIN;
  const platform = `${process.platform} ${process.arch}`;
  const pkg = PLATFORM_PACKAGES[platform];
  if (!pkg) {
    throw new Error(
      `roster-server has no binary for ${platform} (only ${Object.keys(PLATFORM_PACKAGES).join(", ")}); ` +
        "build it from source (cargo install --locked) and set ROSTER_BIN",
    );
  }
  try {
    return require.resolve(`${pkg}/bin/roster`);
  } catch {
    throw new Error(
      `${pkg} is not installed: it is an optional dependency of roster-server, left out when ` +
        "optional dependencies are (npm install --include=optional), or set ROSTER_BIN",
    );
  }
}

/**
 * Starts a server on a free loopback port with the emulator's control plane.
 * @param {import("./index.js").StartOptions} [options]
 * @returns {Promise<import("./index.js").Roster>}
 */
export async function start(options = {}) {
  const { bin, demo = true, seed, databaseURL, args = [], timeoutMs = 60_000 } = options;
  const dir = mkdtempSync(join(tmpdir(), "roster-"));
  const ready = join(dir, "ready.json");
  const logPath = join(dir, "roster.log");
  const command = [];
  // The server stops when its standard input (a pipe from this process) closes: a test
  // process that dies, however it dies, leaves no server behind.
  command.push("serve", "--emulator", "--listen", "127.0.0.1:0", "--ready-file", ready, "--stop-when-stdin-closes");
  if (!databaseURL) command.push("--ephemeral");
  if (demo) command.push("--demo");
  if (seed) command.push("--seed", resolve(seed));
  // A suite's requests are not rationed; a reset refills the rest.
  command.push("--rate-limit", "0", ...args);

  const env = { ...process.env };
  for (const name of ["ROSTER_DATABASE", "DATABASE_URL", "ROSTER_LISTEN"]) delete env[name];
  // In the environment, not the command line, which any local user can read.
  if (databaseURL) env.DATABASE_URL = databaseURL;
  const log = openSync(logPath, "w");
  const child = spawn(bin ?? binaryPath(), command, { cwd: dir, env, stdio: ["pipe", log, log] });
  closeSync(log);
  // Neither keeps Node running: a suite that forgets stop() still exits, and the server
  // with it (its standard input closes).
  child.unref();
  child.stdin?.on("error", () => {});
  child.stdin?.unref?.();
  let exited = null;
  // A binary that cannot be started emits "error" and never "exit": either ends it.
  const done = new Promise((settle) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      settle(exited);
    });
    child.once("error", (error) => {
      exited = { error };
      settle(exited);
    });
  });
  // Belt and braces with the pipe: killed when this process exits normally.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const logTail = () => {
    try {
      return readFileSync(logPath, "utf8").split("\n").slice(-40).join("\n");
    } catch {
      return "";
    }
  };

  const stop = async () => {
    process.removeListener("exit", killOnExit);
    if (!exited) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await done;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  let said;
  try {
    said = await waitForReady(ready, () => exited, logTail, timeoutMs);
  } catch (error) {
    await stop();
    throw error;
  }

  const control = async (method, path, body, query) => {
    const url = new URL(`${said.url}/_roster${path}`);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    const init = { method };
    if (method !== "GET") {
      // The control plane takes writes only as JSON (a page cannot forge one).
      init.headers = { "content-type": "application/json" };
      if (body !== undefined) init.body = JSON.stringify(body);
    }
    const answer = await fetch(url, init);
    const envelope = await answer.json();
    if (!answer.ok) {
      throw new Error(`${method} /_roster${path}: ${answer.status} ${JSON.stringify(envelope.errors)}`);
    }
    return envelope.result;
  };

  return {
    url: said.url,
    baseURL: said.api,
    email: said.demo?.email,
    apiKey: said.demo?.api_key,
    accountId: said.demo?.account_id,
    reset: () => control("POST", "/reset"),
    snapshot: (name) => control("POST", "/snapshots", { name }),
    restore: (name) => control("POST", `/snapshots/${encodeURIComponent(name)}/restore`),
    advanceClock: (seconds) => control("POST", "/clock", { advance_seconds: seconds }),
    setClock: (iso) => control("POST", "/clock", { now: iso }),
    addFault: async (fields) => (await control("POST", "/faults", fields)).id,
    clearFaults: () => control("DELETE", "/faults"),
    requests: (filters = {}) => control("GET", "/requests", undefined, filters),
    createUser: (email, fields = {}) => control("POST", "/users", { email, ...fields }),
    logTail,
    stop,
  };
}

async function waitForReady(ready, exited, logTail, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let said;
  while (Date.now() < deadline) {
    const status = exited();
    if (status?.error) throw new Error(`roster could not be started: ${status.error.message}`);
    if (status) {
      throw new Error(`roster exited (${status.signal ?? status.code}) before it was ready:\n${logTail()}`);
    }
    if (!said && existsSync(ready)) said = JSON.parse(readFileSync(ready, "utf8"));
    if (said) {
      try {
        if ((await fetch(`${said.url}/_roster/health`)).ok) return said;
      } catch {
        // Not answering yet.
      }
    }
    await sleep(20);
  }
  throw new Error(`roster was not ready within ${timeoutMs} ms:\n${logTail()}`);
}
