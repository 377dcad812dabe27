'use strict';
// Policy-decision workload shared by the peer benchmarks. The same rules are
// implemented in C in bench/authz_bench.c (workload_*); keep the two in step.
//
//   N statements (10, 1000, 10000) in R = N/10 roles "rR", 10 statements each.
//   Statement j of role r:
//     resource pattern  projR/eJ/*
//     actions           j even: artifact:Read, artifact:Download
//                       j odd:  artifact:Download, artifact:Write, artifact:Share
//     condition         j even: ResourceKind == "model"
//                       j odd:  SourceIp in 10.J.0.0/16
//   500 groups "gG", each bound to kg = min(2, R) roles (R/2 + G + k) mod R.
//   Users "uU", each bound to ku = min(4, R) roles (U + k*step) mod R with
//   step = (R-1)/(ku-1), and a member of group U mod 500. The user count makes
//   the role bindings add up to exactly 100,000.
//   The requests come from u0 (roles 0, step, 2*step, R-1; group g0):
//     early: artifact:Download proj0/e0/a,      kind model,   ip 10.0.0.7   -> allow (first statement of the first role)
//     late:  artifact:Download projR-1/e9/a,    kind model,   ip 10.9.3.4   -> allow (last statement of the last role)
//     none:  artifact:Download projR-1/e9/a,    kind dataset, ip 192.0.2.1  -> deny (nothing matches)

const N_GROUPS = 500;
const N_BINDINGS = 100000;

function shape(n) {
  const R = n / 10;
  const kg = Math.min(2, R);
  const ku = Math.min(4, R);
  const U = (N_BINDINGS - N_GROUPS * kg) / ku;
  const step = ku > 1 ? Math.floor((R - 1) / (ku - 1)) : 0;
  return { R, kg, ku, U, step };
}

function statement(r, j) {
  const even = j % 2 === 0;
  return {
    role: 'r' + r,
    resource: `proj${r}/e${j}/*`,
    actions: even ? ['artifact:Read', 'artifact:Download']
                  : ['artifact:Download', 'artifact:Write', 'artifact:Share'],
    kind: even ? 'model' : null,
    cidr: even ? null : `10.${j}.0.0/16`,
  };
}

function* statements(n) {
  const { R } = shape(n);
  for (let r = 0; r < R; r++)
    for (let j = 0; j < 10; j++) yield statement(r, j);
}

function userRoles(n, u) {
  const { R, ku, step } = shape(n);
  const out = [];
  for (let k = 0; k < ku; k++) out.push((u + k * step) % R);
  return out;
}

function groupRoles(n, g) {
  const { R, kg } = shape(n);
  const out = [];
  for (let k = 0; k < kg; k++) out.push((Math.floor(R / 2) + g + k) % R);
  return out;
}

function groupOf(u) {
  return u % N_GROUPS;
}

function requests(n) {
  const { R } = shape(n);
  const last = R - 1;
  return [
    { cls: 'early', user: 0, action: 'artifact:Download', resource: 'proj0/e0/a', kind: 'model',
      ip: '10.0.0.7', expect: true },
    { cls: 'late', user: 0, action: 'artifact:Download', resource: `proj${last}/e9/a`, kind: 'model',
      ip: '10.9.3.4', expect: true },
    { cls: 'none', user: 0, action: 'artifact:Download', resource: `proj${last}/e9/a`,
      kind: 'dataset', ip: '192.0.2.1', expect: false },
  ];
}

// Times fn() one call at a time: warm-up, then until budgetMs has passed or
// maxIter calls were made (at least minIter). Returns sorted samples in ns.
function measure(fn, { budgetMs = 3000, minIter = 10, maxIter = 20000, warm = 20 } = {}) {
  const w0 = process.hrtime.bigint();
  for (let i = 0; i < warm; i++) {
    fn();
    if (Number(process.hrtime.bigint() - w0) > budgetMs * 1e6 / 3) break;
  }
  const samples = [];
  const start = process.hrtime.bigint();
  while (samples.length < maxIter) {
    const t0 = process.hrtime.bigint();
    fn();
    const t1 = process.hrtime.bigint();
    samples.push(Number(t1 - t0));
    if (samples.length >= minIter && Number(t1 - start) > budgetMs * 1e6) break;
  }
  samples.sort((a, b) => a - b);
  return samples;
}

function pct(sorted, p) {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

// One machine-readable line per measurement, read by bench/authz.sh.
function report(engine, n, cls, samples, extra) {
  const sum = samples.reduce((a, b) => a + b, 0);
  const p50 = pct(samples, 50), p99 = pct(samples, 99);
  const dps = samples.length / (sum / 1e9);
  console.log(`RESULT ${engine} ${n} ${cls} ${p50.toFixed(0)} ${p99.toFixed(0)} ${dps.toFixed(1)} ` +
              `${samples.length} ${extra || '-'}`);
}

module.exports = {
  N_GROUPS, N_BINDINGS, shape, statement, statements, userRoles, groupRoles, groupOf, requests,
  measure, pct, report,
};
