// The README's "Node.js via jco" snippet, kept runnable (test/example.test.mjs).
import { instantiate } from './out/approval-plugin.js';
import { readFile } from 'node:fs/promises';
const now = () => process.hrtime.bigint(); // monotonic ns
const { registry, sink } = await instantiate(
  async (path) => WebAssembly.compile(await readFile(new URL(`./out/${path}`, import.meta.url))),
  {
    'assembly:approval/clock': { now },
    'assembly:approval/timer': {
      sleepUntil: async (deadline) => {
        while (now() < deadline) await new Promise((r) => setTimeout(r, Math.ceil(Number(deadline - now()) / 1e6)));
      },
    },
    'assembly:approval/host-events': { policyInvalidated: (agentId) => console.log('invalidated', agentId) },
    'assembly:approval/types': {},
  },
);
const approval = sink.waitForApproval(1n, 'req-1', 30_000_000_000n); // 30 s
setTimeout(() => registry.resolve('req-1', 'approved'), 50); // or sink.ingest(frames)
console.log(await approval); // { tag: 'decided', val: 'approved' }
console.log(await sink.waitForApproval(2n, 'req-2', 100_000_000n)); // { tag: 'timed-out' } after 100 ms
// The first wait's 30 s timer is still armed: jco does not cancel the host
// side of an async import (`sleep-until`) whose guest task already finished.
process.exit(0);
