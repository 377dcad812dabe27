'use strict';
// Casbin (node-casbin) side of the policy benchmark: RBAC (users -> groups ->
// roles through `g`), resource patterns with keyMatch, the statement's action
// list as a regexMatch alternative, and the condition as ABAC terms of the
// matcher (kind equality or ipMatch). One `p` line per statement, so the rule
// count equals the Coffer statement count. Usage:
//   node casbin_bench.js OUTDIR [N...]
const fs = require('fs');
const path = require('path');
const casbin = require('casbin');
const W = require('./workload');

// The matcher tests the resource first (cheap string prefix) and the role
// link second, which is the faster order for Casbin: with the g() call first,
// every rule pays a role-manager lookup. CASBIN_G_FIRST=1 measures the order
// of the Casbin documentation examples instead.
const G_FIRST = process.env.CASBIN_G_FIRST === '1';
const MATCH_TERMS = ['keyMatch(r.obj, p.obj)', 'g(r.sub, p.sub)', 'regexMatch(r.act, p.act)',
  '(p.kind == "*" || r.kind == p.kind)', '(p.cidr == "*" || ipMatch(r.ip, p.cidr))'];
if (G_FIRST) [MATCH_TERMS[0], MATCH_TERMS[1]] = [MATCH_TERMS[1], MATCH_TERMS[0]];
const ENGINE = G_FIRST ? 'casbin-gfirst' : 'casbin';

const MODEL = `[request_definition]
r = sub, obj, act, kind, ip

[policy_definition]
p = sub, obj, act, kind, cidr

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = ${MATCH_TERMS.join(' && ')}
`;

function actRegex(actions) {
  return '^(' + actions.join('|') + ')$';
}

function writePolicy(file, n) {
  const s = W.shape(n);
  const lines = [];
  for (const st of W.statements(n))
    lines.push(`p, ${st.role}, ${st.resource}, ${actRegex(st.actions)}, ${st.kind || '*'}, ` +
               `${st.cidr || '*'}`);
  let gl = 0;
  for (let u = 0; u < s.U; u++) {
    for (const r of W.userRoles(n, u)) { lines.push(`g, u${u}, r${r}`); gl++; }
    lines.push(`g, u${u}, g${W.groupOf(u)}`);
  }
  for (let g = 0; g < W.N_GROUPS; g++)
    for (const r of W.groupRoles(n, g)) { lines.push(`g, g${g}, r${r}`); gl++; }
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return gl;
}

async function main() {
  const out = process.argv[2];
  const sizes = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [10, 1000, 10000];
  fs.mkdirSync(out, { recursive: true });
  const modelFile = path.join(out, G_FIRST ? 'casbin_model_gfirst.conf' : 'casbin_model.conf');
  fs.writeFileSync(modelFile, MODEL);
  for (const n of sizes) {
    const policyFile = path.join(out, `casbin_policy_${n}.csv`);
    const roleBindings = writePolicy(policyFile, n);
    const t0 = process.hrtime.bigint();
    const e = await casbin.newEnforcer(modelFile, policyFile);
    const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
    // getPolicy() spreads the whole array into a call and overflows the
    // stack at 100,000 lines: count through the model instead.
    const pCount = e.getModel().model.get('p').get('p').policy.length;
    const gCount = e.getModel().model.get('g').get('g').policy.length;
    console.log(`INFO ${ENGINE} ${n}: ${pCount} p rules, ${gCount} g lines (${roleBindings} role ` +
                `bindings + ${gCount - roleBindings} group memberships), load ${loadMs.toFixed(0)} ms`);
    for (const q of W.requests(n)) {
      const args = [`u${q.user}`, q.resource, q.action, q.kind, q.ip];
      const got = e.enforceSync(...args);
      if (got !== q.expect) {
        console.log(`SANITY ${ENGINE} ${n} ${q.cls}: got ${got}, expected ${q.expect}`);
        process.exitCode = 1;
        continue;
      }
      const samples = W.measure(() => e.enforceSync(...args));
      W.report(ENGINE, n, q.cls, samples, got ? 'allow' : 'deny');
    }
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
