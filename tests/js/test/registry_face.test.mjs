// The batched `registry` face under jco: plain synchronous calls, completions
// returned in lists. Mirrors tests/tests/semantics.rs for S1-S8, S10, S11, S13.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HOUR, MS, SECOND, U64_MAX, Wire, frames, invalidationEvent, loadPlugin, verdictEvent } from '../lib/host.mjs';

const approved = { tag: 'decided', val: 'approved' };
const denied = { tag: 'decided', val: 'denied' };
const timedOut = { tag: 'timed-out' };

/** The completions of a batch as `waiter -> outcome`. */
function outcomes(batch) {
  return new Map(batch.done.map((c) => [c.waiter, c.outcome]));
}

/** Asserts `fn` throws the component's typed `sink-error` `tag`. */
function throwsSinkError(fn, tag) {
  assert.throws(fn, (e) => e.payload?.tag === tag, `expected sink-error ${tag}`);
}

test('S1/S2: register is synchronous and a verdict resolves the waiter', async () => {
  const { registry, clock } = await loadPlugin();
  clock.advance(5n * SECOND);
  assert.deepEqual(registry.register(1n, 'req-1', SECOND), { tag: 'pending', val: 6n * SECOND });
  assert.equal(registry.stats().waiters, 1, 'counted before any other call');
  const batch = registry.resolve('req-1', 'approved');
  assert.deepEqual(outcomes(batch), new Map([[1n, approved]]));
  assert.equal(batch.nextDeadline, undefined);
  const s = registry.stats();
  assert.equal(s.waiters, 0);
  assert.equal(s.ids, 0);
  assert.equal(s.delivered, 1n);
});

test('S3: a timeout is timed-out, never a denial', async () => {
  const { registry, clock } = await loadPlugin();
  registry.register(1n, 'req-1', SECOND);
  clock.advance(SECOND - 1n);
  assert.deepEqual(registry.expire().done, []);
  clock.advance(1n);
  const batch = registry.expire();
  assert.deepEqual(outcomes(batch), new Map([[1n, timedOut]]));
  assert.equal(registry.stats().timedOut, 1n);
  // The verdict after the timeout finds no waiter: it is cached, not delivered.
  assert.deepEqual(registry.resolve('req-1', 'denied').done, []);
  assert.equal(registry.stats().delivered, 0n);
});

test('S4/S15: an early verdict is remembered, final, bounded by TTL and capacity', async () => {
  const { registry, clock } = await loadPlugin();
  registry.configure({
    maxWaiters: 1000,
    maxRequestIdBytes: 256,
    maxFrameBytes: 65536,
    verdictCacheCapacity: 2,
    verdictCacheTtlNs: 10n * SECOND,
    maxTimeoutNs: 24n * HOUR,
    hashSeed: 0x5eedn,
  });
  assert.deepEqual(registry.resolve('early', 'denied').done, []);
  assert.equal(registry.stats().cachedVerdicts, 1);
  // S15 (changed from consume-once in issue #12): remembered, so every
  // later wait on the id settles with it.
  assert.deepEqual(registry.register(1n, 'early', SECOND), { tag: 'settled', val: denied });
  assert.deepEqual(registry.register(2n, 'early', SECOND), { tag: 'settled', val: denied });

  // Capacity 2: the oldest verdicts go first ('early', then 'a').
  for (const id of ['a', 'b', 'c']) registry.resolve(id, 'approved');
  const s = registry.stats();
  assert.equal(s.cachedVerdicts, 2);
  assert.equal(s.evictions, 2n);
  assert.equal(registry.register(3n, 'a', SECOND).tag, 'pending', 'a was evicted');
  assert.deepEqual(registry.register(4n, 'c', SECOND), { tag: 'settled', val: approved });

  // TTL 10 s: a verdict is still served at exactly its TTL, gone 1 ns later.
  clock.advance(10n * SECOND);
  assert.deepEqual(registry.register(5n, 'b', SECOND), { tag: 'settled', val: approved });
  throwsSinkError(() => registry.resolve('b', 'denied'), 'conflicting-verdict');
  assert.equal(registry.stats().conflicts, 1n, 'the first verdict is final');
  clock.advance(1n);
  assert.equal(registry.register(6n, 'b', SECOND).tag, 'pending', 'b outlived its TTL');
  assert.equal(registry.stats().earlyHits, 4n);
});

test('S5: fan-out to every waiter on the id', async () => {
  const { registry } = await loadPlugin();
  for (const w of [1n, 2n, 3n]) registry.register(w, 'shared', HOUR);
  registry.register(4n, 'other', HOUR);
  const batch = registry.resolve('shared', 'denied');
  assert.deepEqual(outcomes(batch), new Map([[1n, denied], [2n, denied], [3n, denied]]));
  assert.equal(registry.stats().waiters, 1, 'the waiter on another id is untouched');
});

test('S6: timeout and cancel remove only their own token', async () => {
  const { registry, clock } = await loadPlugin();
  registry.register(1n, 'id', SECOND);
  registry.register(2n, 'id', 10n * SECOND);
  clock.advance(SECOND);
  assert.deepEqual(outcomes(registry.expire()), new Map([[1n, timedOut]]));
  registry.register(3n, 'id', HOUR); // newer than the timed-out one
  assert.equal(registry.cancel(2n), true);
  assert.equal(registry.cancel(2n), false, 'a token is cancelled once');
  assert.equal(registry.cancel(99n), false);
  assert.deepEqual(outcomes(registry.resolve('id', 'approved')), new Map([[3n, approved]]));
  assert.equal(registry.stats().cancelled, 1n);
});

test('S8: pending, unspecified and unknown decisions resolve nobody and are counted', async () => {
  const { registry } = await loadPlugin();
  registry.register(1n, 'req', HOUR);
  // The WIT enum has no `pending`: jco rejects it while lowering the call.
  assert.throws(() => registry.resolve('req', 'pending'), TypeError);
  for (const [seq, decision] of [[1, Wire.PENDING], [2, Wire.UNSPECIFIED], [3, 7], [4, -1]]) {
    const report = registry.applyFrame(Uint8Array.from(verdictEvent(seq, 'req', decision)));
    assert.equal(report.rejected, 1, `decision ${decision} is not a verdict`);
    assert.equal(report.events, 0);
    assert.deepEqual(report.batch.done, []);
  }
  const s = registry.stats();
  assert.equal(s.malformed, 4n);
  assert.equal(s.waiters, 1, 'the waiter still waits');
  assert.deepEqual(outcomes(registry.resolve('req', 'approved')), new Map([[1n, approved]]));
});

test('S10: policy invalidations reach the host; an empty id means all agents', async () => {
  const { registry, invalidated } = await loadPlugin();
  const report = registry.ingestFrames(frames(invalidationEvent(1, 'agent-7'), invalidationEvent(2, '')));
  assert.equal(report.events, 2);
  assert.deepEqual(invalidated, ['agent-7', '']);
  assert.equal(registry.stats().invalidations, 2n);
});

test('S11: deadlines saturate and are capped; zero times out at the next check', async () => {
  const { registry, clock } = await loadPlugin();
  clock.advance(SECOND);
  assert.deepEqual(registry.register(1n, 'forever', U64_MAX), { tag: 'pending', val: SECOND + 24n * HOUR });
  assert.deepEqual(registry.register(2n, 'now', 0n), { tag: 'pending', val: SECOND });
  assert.deepEqual(outcomes(registry.expire()), new Map([[2n, timedOut]]));
  clock.advance(24n * HOUR - 1n);
  assert.deepEqual(registry.expire().done, []);
  clock.advance(1n);
  assert.deepEqual(outcomes(registry.expire()), new Map([[1n, timedOut]]));
});

test('S13: bad calls get typed errors and leave other waiters alone', async () => {
  const { registry } = await loadPlugin();
  registry.configure({
    maxWaiters: 2,
    maxRequestIdBytes: 256,
    maxFrameBytes: 65536,
    verdictCacheCapacity: 10,
    verdictCacheTtlNs: 60n * SECOND,
    maxTimeoutNs: 24n * HOUR,
    hashSeed: 0x5eedn,
  });
  registry.register(1n, 'kept', HOUR);
  throwsSinkError(() => registry.register(2n, '', HOUR), 'request-id-empty');
  throwsSinkError(() => registry.register(2n, 'x'.repeat(257), HOUR), 'request-id-too-long');
  throwsSinkError(() => registry.resolve('x'.repeat(257), 'approved'), 'request-id-too-long');
  throwsSinkError(() => registry.register(1n, 'again', HOUR), 'duplicate-waiter');
  registry.register(2n, 'second', HOUR);
  throwsSinkError(() => registry.register(3n, 'third', HOUR), 'too-many-waiters');
  throwsSinkError(
    () =>
      registry.configure({
        maxWaiters: 10,
        maxRequestIdBytes: 256,
        maxFrameBytes: 65536,
        verdictCacheCapacity: 10,
        verdictCacheTtlNs: 60n * SECOND,
        maxTimeoutNs: 24n * HOUR,
        hashSeed: 0x5eedn,
      }),
    'invalid-config',
  );
  assert.equal(registry.stats().waiters, 2);
  assert.deepEqual(outcomes(registry.resolve('kept', 'approved')), new Map([[1n, approved]]));
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
