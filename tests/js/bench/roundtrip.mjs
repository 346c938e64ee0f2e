// Round trips through the component under jco, for BENCHMARKS.md:
//   registry face: register -> resolve (both plain calls)
//   sink face:     wait-for-approval -> (task started) -> resolve -> awaited
// Run: APPROVAL_PLUGIN_WASM=... npm run bench   (transpiles first)
import { HOUR, loadPlugin, untilWaiters } from '../lib/host.mjs';

function perOp(label, n, startNs) {
  const ns = Number(process.hrtime.bigint() - startNs) / n;
  console.log(`${label.padEnd(44)} ${n.toString().padStart(7)} ops  ${(ns / 1000).toFixed(2).padStart(8)} µs/op`);
}

const { registry, sink } = await loadPlugin();

// A new request id per round trip: a verdict is final (S15), so a reused id
// would settle without one. Ids are made before the timed loops.
const ids = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

// Warm up both paths (JIT tiers, jco's task tables).
const warm = ids('warm', 20_000);
for (let i = 0; i < warm.length; i++) {
  registry.register(BigInt(i), warm[i], HOUR);
  registry.resolve(warm[i], 'approved');
}

const n = 200_000;
const req = ids('req', n);
let t = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  registry.register(100_000n + BigInt(i), req[i], HOUR);
  registry.resolve(req[i], 'approved');
}
perOp('registry: register -> resolve', n, t);

const m = 200;
const asyncIds = ids('async', m);
t = process.hrtime.bigint();
for (let i = 0; i < m; i++) {
  const wait = sink.waitForApproval(1_000_000n + BigInt(i), asyncIds[i], HOUR);
  await untilWaiters(registry, 1);
  registry.resolve(asyncIds[i], 'approved');
  await wait;
}
perOp('sink: wait-for-approval -> resolve -> awaited', m, t);

const k = 500;
t = process.hrtime.bigint();
const waits = [];
for (let i = 0n; i < BigInt(k); i++) waits.push(sink.waitForApproval(2_000_000n + i, `c-${i}`, HOUR));
await untilWaiters(registry, k);
perOp(`sink: ${k} concurrent waits started`, k, t);
for (let i = 0n; i < BigInt(k); i++) registry.resolve(`c-${i}`, 'denied');
await Promise.all(waits);
perOp(`sink: ${k} concurrent waits started + resolved`, k, t);
process.exit(0);
