#!/usr/bin/env node
// `npx roster ...`: runs the platform package's binary with the same arguments and status.
import { spawnSync } from "node:child_process";
import { binaryPath } from "../index.js";

const ran = spawnSync(binaryPath(), process.argv.slice(2), { stdio: "inherit" });
if (ran.error) {
  console.error(`roster: ${ran.error.message}`);
  process.exit(1);
}
process.exit(ran.status ?? 1);
