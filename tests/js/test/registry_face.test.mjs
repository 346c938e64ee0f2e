// The batched `registry` face under jco: what only this face shows (the
// deadline `register` reports, tickets, the WIT enum at the JS boundary).
// The rules every host shares are the scenarios of tests/scenarios/,
// replayed by scenarios.test.mjs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HOUR, MS, SECOND, U64_MAX, loadPlugin } from '../lib/host.mjs';

const timedOut = { tag: 'timed-out' };

/** The completions of a batch as `waiter -> outcome`. */
function outcomes(batch) {
  return new Map(batch.done.map((c) => [c.waiter, c.outcome]));
}

/** Asserts `fn` throws the component's typed `sink-error` `tag`. */
function throwsSinkError(fn, tag) {
  assert.throws(fn, (e) => e.payload?.tag === tag, `expected sink-error ${tag}`);
}

test('register reports the deadline to arm; deadlines saturate and are capped', async () => {
  const { registry, clock } = await loadPlugin();
  clock.advance(SECOND);
  assert.deepEqual(registry.register(1n, 'forever', U64_MAX), { tag: 'pending', val: SECOND + 24n * HOUR });
  assert.deepEqual(registry.register(2n, 'now', 0n), { tag: 'pending', val: SECOND });
  assert.deepEqual(outcomes(registry.expire()), new Map([[2n, timedOut]]));
  assert.deepEqual(registry.register(3n, 'sooner', HOUR), { tag: 'pending', val: SECOND + HOUR });
});

test('a ticket is cancelled once; a reused or unknown ticket is refused or ignored', async () => {
  const { registry } = await loadPlugin();
  registry.register(1n, 'id', HOUR);
  throwsSinkError(() => registry.register(1n, 'again', HOUR), 'duplicate-waiter');
  assert.equal(registry.cancel(1n), true);
  assert.equal(registry.cancel(1n), false, 'a ticket is cancelled once');
  assert.equal(registry.cancel(99n), false);
  // The WIT enum has no `pending`: jco rejects it while lowering the call.
  assert.throws(() => registry.resolve('id', 'pending'), TypeError);
  assert.deepEqual(registry.resolve('id', 'approved').done, []);
  assert.deepEqual(outcomes(registry.resolve('id', 'approved')), new Map());
  const config = { ...registry.defaultConfig(), hashSeed: 0x5eedn };
  registry.register(2n, 'pending', HOUR);
  throwsSinkError(() => registry.configure(config), 'invalid-config');
});

test('many waiters: 10,000 registered, half resolved, half timed out', async () => {
  const { registry, clock } = await loadPlugin();
  for (let i = 0n; i < 10_000n; i++) registry.register(i, `req-${i}`, (i % 2n === 0n ? 1n : 2n) * SECOND);
  let resolved = 0;
  for (let i = 1n; i < 10_000n; i += 2n) resolved += registry.resolve(`req-${i}`, 'approved').done.length;
  clock.advance(SECOND + MS);
  const expired = registry.expire();
  assert.equal(resolved, 5000);
  assert.equal(expired.done.length, 5000);
  assert.ok(expired.done.every((c) => c.outcome.tag === 'timed-out'));
  assert.equal(registry.stats().waiters, 0);
});
