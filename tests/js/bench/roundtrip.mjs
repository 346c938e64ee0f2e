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

// Warm up both paths (JIT tiers, jco's task tables).
for (let i = 0n; i < 20_000n; i++) {
  registry.register(i, 'warm', HOUR);
  registry.resolve('warm', 'approved');
}

const n = 200_000;
let t = process.hrtime.bigint();
for (let i = 0n; i < BigInt(n); i++) {
  registry.register(i, 'req', HOUR);
  registry.resolve('req', 'approved');
}
perOp('registry: register -> resolve', n, t);

const m = 200;
t = process.hrtime.bigint();
for (let i = 0n; i < BigInt(m); i++) {
  const wait = sink.waitForApproval(1_000_000n + i, 'async', HOUR);
  await untilWaiters(registry, 1);
  registry.resolve('async', 'approved');
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
