// node:test against the installed roster-server package's start(), as a user writes it
// (tests/packaging.rs installs the tarballs into an empty project and runs this).
import { test, before, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { start, binaryPath } from "roster-server";

let roster;
before(async () => {
  roster = await start();
});
beforeEach(() => roster.reset());
after(() => roster.stop());

const demo = () => ({ "X-Auth-Email": roster.email, "X-Auth-Key": roster.apiKey });
const api = async (method, path, body) => {
  const answer = await fetch(`${roster.baseURL}${path}`, {
    method,
    headers: { ...demo(), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: answer.status, body: await answer.json() };
};
const members = (query = "") => api("GET", `/accounts/${roster.accountId}/members${query}`);

test("the binary is the platform package's", () => {
  assert.match(binaryPath(), /node_modules\/@roster-server\/linux-x64\/bin\/roster$/);
  assert.match(roster.baseURL, /^http:\/\/127\.0\.0\.1:\d+\/client\/v4$/);
});

test("a reset puts the seeded members back", async () => {
  const before = (await members()).body.result_info.total_count;
  const roles = (await api("GET", `/accounts/${roster.accountId}/roles`)).body.result;
  const admin = roles.find((r) => r.name === "Administrator").id;
  const made = await api("POST", `/accounts/${roster.accountId}/members`, {
    email: "node.test@example.com",
    roles: [admin],
  });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  assert.equal((await members()).body.result_info.total_count, before + 1);
  await roster.reset();
  assert.equal((await members()).body.result_info.total_count, before);
});

test("a fault answers in place of the API and the journal shows it", async () => {
  const id = await roster.addFault({ method: "GET", path: "/client/v4/accounts/*/members", status: 503, times: 1 });
  assert.ok(id);
  assert.equal((await members()).status, 503);
  assert.equal((await members()).status, 200);
  const seen = await roster.requests({ method: "GET", path: "/client/v4/accounts/*/members" });
  assert.deepEqual(
    seen.map((entry) => entry.status),
    [503, 200],
  );
});

test("the clock and snapshots", async () => {
  await roster.snapshot("start");
  const moved = await roster.advanceClock(86_400);
  assert.equal(moved.offset_seconds, 86_400);
  await roster.setClock("2031-01-01T00:00:00Z");
  const roles = (await api("GET", `/accounts/${roster.accountId}/roles`)).body.result;
  await api("POST", `/accounts/${roster.accountId}/members`, {
    email: "snap@example.com",
    roles: [roles[0].id],
  });
  await roster.restore("start");
  const emails = (await members("?per_page=50")).body.result.map((m) => m.user.email);
  assert.ok(!emails.includes("snap@example.com"));
});

test("a binary that cannot start is an error that says why, not a hang", async () => {
  await assert.rejects(start({ bin: "/nonexistent/roster", timeoutMs: 5_000 }), /could not be started: spawn \/nonexistent\/roster ENOENT/);
});

test("a user made through the control plane signs in", async () => {
  const user = await roster.createUser("made.by.node@example.com");
  const me = await fetch(`${roster.baseURL}/user`, {
    headers: { "X-Auth-Email": user.email, "X-Auth-Key": user.api_key },
  });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).result.email, "made.by.node@example.com");
});
