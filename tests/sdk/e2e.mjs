// End-to-end test: Cloudflare's official TypeScript SDK (npm `cloudflare`, pinned in
// tests/sdk/package.json) against Roster: every endpoint, auto-pagination over a few
// hundred memberships and members, typed errors, and both auth styles.
//
// Run against a fresh `roster serve --demo`, from a directory whose node_modules holds the
// SDK (tests/sdk.rs copies this file into target/sdk-node and runs it there):
//
//     ROSTER_BASE_URL=http://127.0.0.1:8080/client/v4 node e2e.mjs
//
// The last line printed is `N passed, M failed`; the exit status is non-zero on any failure.

import Cloudflare, {
  APIError, BadRequestError, ConflictError, NotFoundError, PermissionDeniedError,
} from 'cloudflare';
import { VERSION } from 'cloudflare/version';
import assert from 'node:assert/strict';

const SDK_VERSION = '7.3.0';
const BASE_URL = process.env.ROSTER_BASE_URL;
const DEMO_ACCOUNT = '023e105f4ecef8ad9ca31a8372d0c353';
const JOHN_DEMO_MEMBERSHIP = '4536bcfad5faccb111b47003c79917fa';
const JOHN_ACME_INVITATION = '4f5f0c14a2a41d5063dd301b2f829f04';
const JANE_ACME_MEMBERSHIP = 'a5c2e0f1d3b4a5968778695a4b3c2d1e';
const ACCOUNT_ADMIN_ROLE = '3536bcfad5faccb999b47003c79917fb';
const JOHN_ID = '7c5dae5552338874e5053f2534d2767a';
const DEMO_RESOURCE_GROUP = '6d7f2f5f5b1d4a0e9081fdc98d432fd1';
const ZONE_READ_GROUP = 'c8fed203ed3043cba015a93ad1616f1f';
const SETTINGS_READ_GROUP = '15b972a8f4cb43e78efbafb322f7dee5';
// The bulk data tests/sdk.rs seeds beside the demo.
const BULK_ACCOUNT = 'b0000000000000000000000000000000';
const PERMISSION_KEYS = [
  'analytics', 'billing', 'cache_purge', 'dns', 'dns_records', 'lb',
  'logs', 'organization', 'ssl', 'waf', 'zone_settings', 'zones',
];

// Every request any client sends, to see pagination and (the absence of) retries.
const requests = [];
const countingFetch = (url, init) => {
  requests.push(`${init?.method ?? 'GET'} ${url}`);
  return fetch(url, init);
};

function client(email, key) {
  return new Cloudflare({ apiEmail: email, apiKey: key, baseURL: BASE_URL, fetch: countingFetch });
}

async function rejects(errorClass, status, promise) {
  let error;
  try {
    const result = await promise;
    assert.fail(`expected ${errorClass.name} (${status}), got ${JSON.stringify(result)}`);
  } catch (e) {
    if (!(e instanceof APIError)) throw e;
    error = e;
  }
  assert.ok(error instanceof errorClass, `expected ${errorClass.name}, got ${error.constructor.name}: ${error.message}`);
  assert.equal(error.status, status);
  assert.equal(error.error?.success, false, 'a v4 error envelope');
  assert.ok(error.errors.length > 0 && Number.isInteger(error.errors[0].code), 'errors carry codes');
  return error;
}

const checks = [];
const check = (name, fn) => checks.push([name, fn]);
const state = {};

check('sdk version', async () => {
  assert.equal(VERSION, SDK_VERSION);
});

check('memberships list (auto-pagination) and get', async () => {
  const before = requests.length;
  const all = [];
  for await (const m of john.memberships.list({ per_page: 5 })) all.push(m);
  // Demo Account, Sandbox, and the pending Acme Corp invitation; then the empty page.
  assert.deepEqual(all.map((m) => m.account.name).sort(), ['Acme Corp', 'Demo Account', 'Sandbox']);
  assert.equal(requests.length - before, 2, 'one page of items and the empty page that ends it');
  assert.equal(new Set(all.map((m) => m.id)).size, all.length);
  const pending = [];
  for await (const m of john.memberships.list({ status: 'pending' })) pending.push(m);
  assert.deepEqual(pending.map((m) => [m.id, m.status, m.roles]), [[JOHN_ACME_INVITATION, 'pending', ['Administrator']]]);
  const named = [];
  for await (const m of john.memberships.list({ account: { name: 'Demo Account' } })) named.push(m.id);
  assert.deepEqual(named, [JOHN_DEMO_MEMBERSHIP], 'account.name filter');

  const m = await john.memberships.get(JOHN_DEMO_MEMBERSHIP);
  assert.equal(m.status, 'accepted');
  assert.deepEqual(m.roles, ['Account Administrator']);
  assert.equal(m.account.id, DEMO_ACCOUNT);
  for (const key of PERMISSION_KEYS) assert.deepEqual(m.permissions[key], { read: true, write: true }, key);
  await rejects(NotFoundError, 404, john.memberships.get(JANE_ACME_MEMBERSHIP));
});

check('members list (auto-pagination, filters)', async () => {
  const before = requests.length;
  const members = [];
  for await (const m of john.accounts.members.list({ account_id: DEMO_ACCOUNT, per_page: 5 })) members.push(m);
  assert.equal(members.length, 12);
  assert.equal(requests.length - before, 4, '5 + 5 + 2 members, then the empty page');
  assert.equal(new Set(members.map((m) => m.id)).size, 12, 'no member repeats across pages');
  const me = members.find((m) => m.id === JOHN_DEMO_MEMBERSHIP);
  assert.equal(me.user.email, 'user@example.com');
  assert.equal(me.roles[0].id, ACCOUNT_ADMIN_ROLE);
  assert.equal(me.roles[0].permissions.organization.write, true);
  const page = await john.accounts.members.list({
    account_id: DEMO_ACCOUNT, status: 'pending', order: 'user.email', direction: 'desc',
  });
  assert.deepEqual(page.result.map((m) => m.email),
    ['zone-reader@example.com', 'newhire@example.com', 'jane@example.com']);
});

check('roles list', async () => {
  const roles = [];
  for await (const r of john.accounts.roles.list({ account_id: DEMO_ACCOUNT, per_page: 5 })) roles.push(r);
  const byName = Object.fromEntries(roles.map((r) => [r.name, r]));
  for (const name of ['Super Administrator - All Privileges', 'Administrator', 'Administrator Read Only',
    'DNS', 'Billing', 'Account Administrator']) {
    assert.ok(byName[name], `role ${name}`);
  }
  assert.equal(byName['Account Administrator'].id, ACCOUNT_ADMIN_ROLE);
  assert.deepEqual(byName['Administrator Read Only'].permissions.organization, { read: true, write: false });
  state.roles = Object.fromEntries(roles.map((r) => [r.name, r.id]));
  const role = await john.accounts.roles.get(ACCOUNT_ADMIN_ROLE, { account_id: DEMO_ACCOUNT });
  assert.equal(role.description, 'Administrative access to the entire Account');
});

check('invite, conflict, update, delete a member', async () => {
  const members = john.accounts.members;
  const invited = await members.create({
    account_id: DEMO_ACCOUNT, email: 'ts.invitee@example.com', roles: [state.roles['Administrator Read Only']],
  });
  assert.equal(invited.status, 'pending');
  assert.equal(invited.email, 'ts.invitee@example.com');
  assert.deepEqual(invited.roles.map((r) => r.name), ['Administrator Read Only']);

  const before = requests.length;
  const conflict = await rejects(ConflictError, 409, members.create({
    account_id: DEMO_ACCOUNT, email: 'TS.Invitee@example.com', roles: [state.roles.DNS],
  }));
  assert.equal(requests.length - before, 1, 'a 409 is not retried (x-should-retry: false)');
  assert.match(conflict.errors[0].message.toLowerCase(), /ts\.invitee@example\.com/);

  const updated = await members.update(invited.id, { account_id: DEMO_ACCOUNT, roles: [{ id: state.roles.DNS }] });
  assert.deepEqual(updated.roles.map((r) => r.name), ['DNS']);
  const policies = await members.update(invited.id, {
    account_id: DEMO_ACCOUNT,
    policies: [{
      access: 'allow',
      permission_groups: [{ id: 'c8fed203ed3043cba015a93ad1616f1f' }],
      resource_groups: [{ id: '6d7f2f5f5b1d4a0e9081fdc98d432fd1' }],
    }],
  });
  assert.deepEqual(policies.roles, []);
  assert.equal(policies.policies[0].permission_groups[0].name, 'Zone Read');

  const gone = await members.delete(invited.id, { account_id: DEMO_ACCOUNT });
  assert.equal(gone.id, invited.id);
  await rejects(NotFoundError, 404, members.get(invited.id, { account_id: DEMO_ACCOUNT }));
});

check('a user without 2FA cannot accept an invitation to a 2FA account', async () => {
  const invited = await john.accounts.members.create({
    account_id: DEMO_ACCOUNT, email: 'bob@example.com', roles: [state.roles.Billing],
  });
  await rejects(PermissionDeniedError, 403, bob.memberships.update(invited.id, { status: 'accepted' }));
  const rejected = await bob.memberships.update(invited.id, { status: 'rejected' });
  assert.equal(rejected.status, 'rejected');
  await john.accounts.members.delete(invited.id, { account_id: DEMO_ACCOUNT });
});

check('user get and edit', async () => {
  const me = await john.user.get();
  assert.equal(me.id, JOHN_ID);
  assert.equal(me.email, 'user@example.com');
  const edited = await john.user.edit({ telephone: '+1 555 0100' });
  assert.equal(edited.telephone, '+1 555 0100');
  await rejects(PermissionDeniedError, 403, client('user@example.com', '0'.repeat(37)).user.get());
});

check('accounts list, get, update', async () => {
  const names = [];
  for await (const a of john.accounts.list({ per_page: 5 })) names.push(a.name);
  assert.ok(names.includes('Demo Account') && names.includes('Sandbox'), names.join());
  const demo = await john.accounts.get({ account_id: DEMO_ACCOUNT });
  assert.equal(demo.name, 'Demo Account');
  const renamed = await john.accounts.update({
    account_id: DEMO_ACCOUNT, id: DEMO_ACCOUNT, name: 'Demo Account (TS)', type: 'standard',
  });
  assert.equal(renamed.name, 'Demo Account (TS)');
  await john.accounts.update({ account_id: DEMO_ACCOUNT, id: DEMO_ACCOUNT, name: 'Demo Account', type: 'standard' });
  await rejects(NotFoundError, 404, john.accounts.get({ account_id: '0'.repeat(32) }));
});

check('permission groups and resource groups', async () => {
  const groups = [];
  for await (const g of john.iam.permissionGroups.list({ account_id: DEMO_ACCOUNT, per_page: 5 })) groups.push(g);
  assert.ok(groups.some((g) => g.id === ZONE_READ_GROUP && g.name === 'Zone Read'));
  const zoneRead = await john.iam.permissionGroups.get(ZONE_READ_GROUP, { account_id: DEMO_ACCOUNT });
  assert.equal(zoneRead.name, 'Zone Read');
  const rg = john.iam.resourceGroups;
  const created = await rg.create({
    account_id: DEMO_ACCOUNT, name: 'TS zones',
    scope: { key: `com.cloudflare.api.account.${DEMO_ACCOUNT}`, objects: [{ key: '*' }] },
  });
  assert.equal(created.name, 'TS zones');
  const listed = [];
  for await (const g of rg.list({ account_id: DEMO_ACCOUNT })) listed.push(g.id);
  assert.ok(listed.includes(created.id) && listed.includes(DEMO_RESOURCE_GROUP));
  const renamed = await rg.update(created.id, { account_id: DEMO_ACCOUNT, name: 'TS zones 2' });
  assert.equal(renamed.name, 'TS zones 2');
  assert.equal((await rg.get(created.id, { account_id: DEMO_ACCOUNT })).name, 'TS zones 2');
  await rg.delete(created.id, { account_id: DEMO_ACCOUNT });
  await rejects(NotFoundError, 404, rg.get(created.id, { account_id: DEMO_ACCOUNT }));
  await rejects(BadRequestError, 400, rg.create({
    account_id: DEMO_ACCOUNT, name: 'bad', scope: { key: 'com.cloudflare.api.account.nope', objects: [{ key: '*' }] },
  }));
});

check('accept and leave an invitation', async () => {
  const accepted = await john.memberships.update(JOHN_ACME_INVITATION, { status: 'accepted' });
  assert.equal(accepted.status, 'accepted');
  const left = await john.memberships.delete(JOHN_ACME_INVITATION);
  assert.equal(left.id, JOHN_ACME_INVITATION);
  await rejects(NotFoundError, 404, john.memberships.get(JOHN_ACME_INVITATION));
});

check('an invite answered, then the account deleted', async () => {
  const account = await john.accounts.create({ name: 'TS Invites', type: 'standard' });
  const invited = await john.accounts.members.create({
    account_id: account.id, email: 'bob@example.com', roles: [state.roles.DNS],
  });
  const invites = [];
  for await (const i of bob.user.invites.list()) invites.push(i);
  const mine = invites.find((i) => i.id === invited.id);
  assert.equal(mine?.status, 'pending');
  assert.equal(mine.organization_id, account.id);
  assert.ok(new Date(mine.expires_on) > new Date(mine.invited_on), 'it expires after it was made');
  const shown = await bob.user.invites.get(invited.id);
  assert.equal(shown.organization_name, 'TS Invites');
  const accepted = await bob.user.invites.edit(invited.id, { status: 'accepted' });
  assert.equal(accepted.status, 'accepted');
  await rejects(PermissionDeniedError, 403, bob.accounts.delete({ account_id: account.id }));
  const gone = await john.accounts.delete({ account_id: account.id });
  assert.equal(gone.id, account.id);
  await rejects(NotFoundError, 404, bob.memberships.get(invited.id));
});

check('a user group grants a member rights they did not have', async () => {
  const account = (await john.accounts.create({ name: 'TS Groups', type: 'standard' })).id;
  const everything = (await john.iam.resourceGroups.create({
    account_id: account, name: 'everything',
    scope: { key: `com.cloudflare.api.account.${account}`, objects: [{ key: '*' }] },
  })).id;
  const policy = (group) => ({ access: 'allow', permission_groups: [{ id: group }], resource_groups: [{ id: everything }] });
  const member = await john.accounts.members.create({ account_id: account, email: 'bob@example.com', policies: [policy(ZONE_READ_GROUP)] });
  await bob.memberships.update(member.id, { status: 'accepted' });
  await rejects(PermissionDeniedError, 403, bob.accounts.get({ account_id: account }));
  const group = await john.iam.userGroups.create({ account_id: account, name: 'readers', policies: [policy(SETTINGS_READ_GROUP)] });
  assert.equal(group.policies[0].permission_groups[0].name, 'Account Settings Read');
  const added = [];
  for await (const m of john.iam.userGroups.members.create(group.id, { account_id: account, members: [{ id: member.id }] })) added.push(m.id);
  assert.deepEqual(added, [member.id]);
  assert.equal((await bob.accounts.get({ account_id: account })).name, 'TS Groups');
  const groups = [];
  for await (const g of john.iam.userGroups.list({ account_id: account })) groups.push(g.name);
  assert.deepEqual(groups, ['readers']);
  const listed = [];
  for await (const m of john.iam.userGroups.members.list(group.id, { account_id: account })) listed.push(m.email);
  assert.deepEqual(listed, ['bob@example.com']);
  await john.iam.userGroups.members.delete(member.id, { account_id: account, user_group_id: group.id });
  await rejects(PermissionDeniedError, 403, bob.accounts.get({ account_id: account }));
  assert.equal((await john.iam.userGroups.delete(group.id, { account_id: account })).id, group.id);
  await john.accounts.delete({ account_id: account });
});

check('a few hundred memberships and members, page by page', async () => {
  const bulk = client('bulk@example.com', 'b'.repeat(37));
  const memberships = [];
  for await (const m of bulk.memberships.list({ per_page: 50 })) memberships.push(m.id);
  assert.equal(memberships.length, 251);
  assert.equal(new Set(memberships).size, 251, 'no membership repeats');
  const emails = [];
  for await (const m of bulk.accounts.members.list({ account_id: BULK_ACCOUNT, per_page: 50, order: 'user.email' })) {
    emails.push(m.email);
  }
  assert.equal(emails.length, 300);
  assert.equal(new Set(emails).size, 300, 'no member repeats');
  assert.deepEqual(emails, [...emails].sort((a, b) => a.localeCompare(b, 'en', { sensitivity: 'base' })));
  const error = await rejects(BadRequestError, 400, bulk.accounts.members.list({ account_id: BULK_ACCOUNT, per_page: 3 }));
  assert.match(error.errors[0].message, /per_page/);
});

check('API tokens: create, bearer auth, verify, roll, delete', async () => {
  const groups = [];
  for await (const g of john.user.tokens.permissionGroups.list()) groups.push(g);
  const read = groups.find((g) => g.name === 'Memberships Read');
  assert.ok(read, 'Memberships Read is offered');
  const created = await john.user.tokens.create({
    name: 'ts token',
    policies: [{ effect: 'allow', permission_groups: [{ id: read.id }], resources: { [`com.cloudflare.api.user.${JOHN_ID}`]: '*' } }],
  });
  assert.equal(created.value.length, 40);
  const bearer = new Cloudflare({ apiToken: created.value, baseURL: BASE_URL, maxRetries: 0 });
  const ids = [];
  for await (const m of bearer.memberships.list()) ids.push(m.id);
  assert.ok(ids.includes(JOHN_DEMO_MEMBERSHIP));
  const verified = await bearer.user.tokens.verify();
  assert.deepEqual([verified.id, verified.status], [created.id, 'active']);
  await rejects(PermissionDeniedError, 403, bearer.user.get());
  const listed = [];
  for await (const t of john.user.tokens.list()) listed.push(t.id);
  assert.ok(listed.includes(created.id));
  const rolled = await john.user.tokens.value.update(created.id);
  assert.equal(typeof rolled, 'string');
  await rejects(PermissionDeniedError, 403, bearer.memberships.get(JOHN_DEMO_MEMBERSHIP));
  await john.user.tokens.delete(created.id);
  await rejects(NotFoundError, 404, john.user.tokens.get(created.id));
});

check('an account-owned token as a bearer, outliving its maker', async () => {
  const account = (await john.accounts.create({ name: 'TS Account Tokens', type: 'standard' })).id;
  const groups = [];
  for await (const g of john.accounts.tokens.permissionGroups.list({ account_id: account })) groups.push(g.name);
  assert.ok(groups.includes('Account Settings Read') && !groups.includes('Memberships Read'), groups.join(', '));
  const member = await john.accounts.members.create({
    account_id: account, email: 'bob@example.com', roles: ['795df1c379e2469e89ab15cca71e91a0'],
  });
  await bob.memberships.update(member.id, { status: 'accepted' });
  const policies = [{
    effect: 'allow', permission_groups: [{ id: SETTINGS_READ_GROUP }],
    resources: { [`com.cloudflare.api.account.${account}`]: '*' },
  }];
  const created = await bob.accounts.tokens.create({ account_id: account, name: 'ci', policies });
  assert.equal(created.value.length, 40);
  assert.equal((await john.accounts.tokens.get(created.id, { account_id: account })).creator_email_at_creation, 'bob@example.com');
  const bearer = new Cloudflare({ apiToken: created.value, baseURL: BASE_URL, maxRetries: 0 });
  assert.equal((await bearer.accounts.get({ account_id: account })).name, 'TS Account Tokens');
  const verified = await bearer.accounts.tokens.verify({ account_id: account });
  assert.deepEqual([verified.id, verified.status], [created.id, 'active']);
  await rejects(PermissionDeniedError, 403, bearer.user.get());
  await rejects(NotFoundError, 404, bearer.accounts.get({ account_id: DEMO_ACCOUNT }));
  // Bob leaves: the account's token stays.
  await bob.memberships.delete(member.id);
  await bearer.accounts.get({ account_id: account });
  const listed = [];
  for await (const t of john.accounts.tokens.list({ account_id: account })) listed.push(t.id);
  assert.deepEqual(listed, [created.id]);
  const rolled = await john.accounts.tokens.value.update(created.id, { account_id: account });
  assert.equal(typeof rolled, 'string');
  await rejects(PermissionDeniedError, 403, bearer.accounts.get({ account_id: account }));
  assert.equal((await john.accounts.tokens.delete(created.id, { account_id: account })).id, created.id);
  await john.accounts.delete({ account_id: account });
});

check('the audit log, read after the changes it records', async () => {
  const account = (await john.accounts.create({ name: 'TS Audit', type: 'standard' })).id;
  const invited = await john.accounts.members.create({ account_id: account, email: 'ts-audited@example.com', roles: ['87e7860bc4c445faba075646dac38cca'] });
  await john.accounts.members.delete(invited.id, { account_id: account });
  const v1 = [];
  for await (const e of john.auditLogs.list({ account_id: account, per_page: 2 })) v1.push(`${e.action.type} ${e.resource.type}`);
  assert.deepEqual(v1, ['delete account.member', 'create account.member', 'create account.member', 'create account']);
  const v2 = [];
  for await (const e of john.accounts.logs.audit.list({ account_id: account, since: '2000-01-01', before: '2999-01-01', limit: 3 })) v2.push(e);
  assert.equal(v2.length, 4);
  assert.deepEqual([v2[0].actor.email, v2[0].resource.id], ['user@example.com', invited.id]);
  const mine = [];
  for await (const e of john.user.auditLogs.list({ per_page: 1 })) { mine.push(e); break; }
  assert.equal(mine[0].resource.id, invited.id);
  // The exclusion filters as the SDK sends them (`action_type.not=...`), repeated.
  const window = { account_id: account, since: '2000-01-01', before: '2999-01-01' };
  const left = [];
  for await (const e of john.accounts.logs.audit.list({ ...window, action_type: { not: ['create'] } })) left.push(e.id);
  assert.deepEqual(left, [v2[0].id], 'action_type.not');
  const none = [];
  for await (const e of john.accounts.logs.audit.list({ ...window, resource_type: { not: ['account', 'account.member'] } })) none.push(e.id);
  assert.deepEqual(none, [], 'resource_type.not, two values');
  // The member's history, from its removal's entry; the product categories.
  const history = await john.accounts.logs.audit.history(v2[0].id, { ...window, action_time: v2[0].action.time });
  assert.deepEqual(history.map((e) => `${e.action.type} ${e.resource.id}`), [`delete ${invited.id}`, `create ${invited.id}`]);
  const categories = [];
  for await (const c of john.accounts.logs.audit.productCategories({ account_id: account })) categories.push(c);
  assert.ok(categories.length > 0 && categories[0].products.length > 0, JSON.stringify(categories));
  const inCategory = [];
  for await (const e of john.accounts.logs.audit.list({ ...window, product_category: [categories[0].value] })) inCategory.push(e.id);
  assert.equal(inCategory.length, 4);
  await john.accounts.delete({ account_id: account });
});

if (!BASE_URL) {
  console.error('ROSTER_BASE_URL is not set (e.g. http://127.0.0.1:8080/client/v4)');
  process.exit(2);
}
const john = client('user@example.com', '144c9defac04969c7bfad8efaa8ea194');
const bob = client('bob@example.com', 'b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b');

let passed = 0;
let failed = 0;
const started = Date.now();
for (const [name, fn] of checks) {
  const t0 = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - t0}ms)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}
console.log(`cloudflare ${VERSION} (node ${process.version}) against ${BASE_URL}: ${requests.length} requests in ${Date.now() - started}ms`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
