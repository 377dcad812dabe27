'use strict';
// Cedar (cedar-wasm) side of the policy benchmark: one `permit` per statement
// with `principal in Coffer::Role::"rR"`, the action list as `action in [...]`,
// and a `when` clause holding the resource pattern (`like`) and the condition
// (context.kind equality or context.ip.isInRange). The policy set is parsed
// once (preparsePolicySet) and every decision uses statefulIsAuthorized.
//
// Cedar keeps no principal store: the caller passes the entities a request
// needs. Each request therefore carries the slice for its principal (the user
// with its parents: its group and its directly bound roles; the group with its
// roles; the roles; the resource with its path). The 100,000 bindings live in
// this program's memory (a Map, as an application would keep them) and the
// slice is built once per request class, outside the timed call. Usage:
//   node cedar_bench.js OUTDIR [N...]
const fs = require('fs');
const path = require('path');
const cedar = require('@cedar-policy/cedar-wasm/nodejs');
const W = require('./workload');

function policyText(n) {
  const parts = [];
  let i = 0;
  for (const st of W.statements(n)) {
    const acts = st.actions.map((a) => `Coffer::Action::"${a}"`).join(', ');
    const cond = st.kind !== null ? `context.kind == "${st.kind}"`
                                  : `context.ip.isInRange(ip("${st.cidr}"))`;
    parts.push(`@id("s${i++}")\npermit (principal in Coffer::Role::"${st.role}", ` +
               `action in [${acts}], resource)\nwhen { resource.path like "${st.resource}" && ${cond} };`);
  }
  return parts.join('\n');
}

// Role bindings and memberships of the whole workload, as the application's
// directory would hold them: principal -> parents.
function directory(n) {
  const s = W.shape(n);
  const users = new Map(), groups = new Map();
  let bindings = 0;
  for (let u = 0; u < s.U; u++) {
    const roles = W.userRoles(n, u);
    bindings += roles.length;
    users.set(`u${u}`, { roles: roles.map((r) => `r${r}`), group: `g${W.groupOf(u)}` });
  }
  for (let g = 0; g < W.N_GROUPS; g++) {
    const roles = W.groupRoles(n, g);
    bindings += roles.length;
    groups.set(`g${g}`, roles.map((r) => `r${r}`));
  }
  return { users, groups, bindings };
}

const uid = (type, id) => ({ type: `Coffer::${type}`, id });

function slice(dir, user, resource) {
  const u = dir.users.get(user);
  const groupRoles = dir.groups.get(u.group);
  const roles = new Set([...u.roles, ...groupRoles]);
  return [
    { uid: uid('User', user), attrs: {},
      parents: [uid('Group', u.group), ...u.roles.map((r) => uid('Role', r))] },
    { uid: uid('Group', u.group), attrs: {}, parents: groupRoles.map((r) => uid('Role', r)) },
    ...[...roles].map((r) => ({ uid: uid('Role', r), attrs: {}, parents: [] })),
    { uid: uid('Artifact', resource), attrs: { path: resource }, parents: [] },
  ];
}

function main() {
  const out = process.argv[2];
  const sizes = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [10, 1000, 10000];
  fs.mkdirSync(out, { recursive: true });
  console.log(`INFO cedar version ${cedar.getCedarVersion()}, sdk ${cedar.getCedarSDKVersion()}`);
  for (const n of sizes) {
    const text = policyText(n);
    fs.writeFileSync(path.join(out, `cedar_policies_${n}.cedar`), text + '\n');
    const dir = directory(n);
    const t0 = process.hrtime.bigint();
    const pid = `pset${n}`;
    const prep = cedar.preparsePolicySet(pid, { staticPolicies: text });
    const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
    if (prep.type !== 'success') {
      console.log(`SANITY cedar ${n}: policy set rejected: ${JSON.stringify(prep.errors)}`);
      process.exitCode = 1;
      continue;
    }
    console.log(`INFO cedar ${n}: ${n} policies, ${dir.bindings} role bindings in the directory, ` +
                `prepare ${loadMs.toFixed(0)} ms`);
    for (const q of W.requests(n)) {
      const call = {
        principal: uid('User', `u${q.user}`),
        action: uid('Action', q.action),
        resource: uid('Artifact', q.resource),
        context: { kind: q.kind, ip: { __extn: { fn: 'ip', arg: q.ip } } },
        preparsedPolicySetId: pid,
        entities: slice(dir, `u${q.user}`, q.resource),
      };
      const ans = cedar.statefulIsAuthorized(call);
      if (ans.type !== 'success') {
        console.log(`SANITY cedar ${n} ${q.cls}: ${JSON.stringify(ans.errors)}`);
        process.exitCode = 1;
        continue;
      }
      const got = ans.response.decision === 'allow';
      const errs = ans.response.diagnostics.errors.length;
      if (got !== q.expect || errs !== 0) {
        console.log(`SANITY cedar ${n} ${q.cls}: got ${ans.response.decision} (${errs} errors), ` +
                    `expected ${q.expect ? 'allow' : 'deny'}`);
        process.exitCode = 1;
        continue;
      }
      const reason = ans.response.diagnostics.reason.join('+') || '-';
      const samples = W.measure(() => {
        const a = cedar.statefulIsAuthorized(call);
        if (a.type !== 'success') throw new Error('cedar failed during the timed loop');
      });
      W.report('cedar', n, q.cls, samples, `${ans.response.decision}:${reason}`);
    }
  }
}

main();
