// The async `sink` face under jco (JSPI): one component task per wait, the
// timeout driven by the JS `timer.sleep-until` on a virtual clock. Mirrors
// tests/tests/plugin_async.rs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HOUR, SECOND, U64_MAX, Wire, frames, loadPlugin, turn, untilWaiters, verdictEvent } from '../lib/host.mjs';

const approved = { tag: 'decided', val: 'approved' };
const denied = { tag: 'decided', val: 'denied' };
const timedOut = { tag: 'timed-out' };

/** Whether `promise` has settled, without waiting for it. */
async function settled(promise) {
  const marker = Symbol('pending');
  await turn();
  return (await Promise.race([promise, Promise.resolve(marker)])) !== marker;
}

test('S2: a verdict resolves the wait', async () => {
  const { registry, sink } = await loadPlugin();
  const wait = sink.waitForApproval(1n, 'req-1', HOUR);
  await untilWaiters(registry, 1);
  assert.deepEqual(registry.resolve('req-1', 'denied').done, [], 'async waiters are woken, not batched');
  assert.deepEqual(await wait, denied);
  assert.equal(registry.stats().waiters, 0);
});

test('S1 under jco: a verdict right after the call (before jco starts the task) still arrives', async () => {
  const { registry, sink } = await loadPlugin();
  const wait = sink.waitForApproval(1n, 'req-1', HOUR);
  // jco enters the export's task a few microtasks after the call returns, so
  // the waiter is not registered yet; the verdict lands in the early cache.
  assert.equal(registry.stats().waiters, 0);
  registry.resolve('req-1', 'approved');
  assert.deepEqual(await wait, approved);
  assert.equal(registry.stats().earlyHits, 1n);
});

test('S3: a timeout resolves to timed-out (the host maps it to Pending), never denied', async () => {
  const { registry, sink, clock } = await loadPlugin();
  const wait = sink.waitForApproval(1n, 'req-1', SECOND);
  await untilWaiters(registry, 1);
  clock.advance(SECOND - 1n);
  assert.equal(await settled(wait), false);
  clock.advance(1n);
  assert.deepEqual(await wait, timedOut);
  assert.equal(registry.stats().timedOut, 1n);
});

test('S4: an early verdict settles a later wait at once', async () => {
  const { registry, sink } = await loadPlugin();
  registry.resolve('early', 'denied');
  assert.deepEqual(await sink.waitForApproval(1n, 'early', HOUR), denied);
  // S15: remembered, not consumed.
  assert.deepEqual(await sink.waitForApproval(2n, 'early', SECOND), denied);
});

test('S5: fan-out across async and batched waiters on one id', async () => {
  const { registry, sink } = await loadPlugin();
  const waits = [1n, 2n, 3n].map((w) => sink.waitForApproval(w, 'shared', HOUR));
  await untilWaiters(registry, 3);
  registry.register(4n, 'shared', HOUR);
  const batch = registry.resolve('shared', 'approved');
  assert.deepEqual(batch.done, [{ waiter: 4n, outcome: approved }]);
  assert.deepEqual(await Promise.all(waits), [approved, approved, approved]);
});

test('S6: one wait timing out leaves the other on the same id waiting', async () => {
  const { registry, sink, clock } = await loadPlugin();
  const short = sink.waitForApproval(1n, 'id', SECOND);
  const long = sink.waitForApproval(2n, 'id', HOUR);
  await untilWaiters(registry, 2);
  clock.advance(SECOND);
  assert.deepEqual(await short, timedOut);
  assert.equal(registry.stats().waiters, 1);
  registry.resolve('id', 'denied');
  assert.deepEqual(await long, denied);
});

test('S7: a host that drops a wait cancels it by ticket; the count returns at once', async () => {
  const { registry, sink } = await loadPlugin();
  const waits = [];
  for (let w = 0n; w < 100n; w++) waits.push(sink.waitForApproval(w, `req-${w % 10n}`, HOUR));
  await untilWaiters(registry, 100);
  for (let w = 0n; w < 100n; w++) assert.equal(registry.cancel(w), true);
  assert.equal(registry.stats().waiters, 0);
  for (const outcome of await Promise.all(waits)) assert.deepEqual(outcome, { tag: 'cancelled' });
  assert.equal(registry.stats().cancelled, 100n);
});

test('S8: a non-verdict frame resolves nobody; the real verdict does', async () => {
  const { registry, sink } = await loadPlugin();
  const wait = sink.waitForApproval(1n, 'req', HOUR);
  await untilWaiters(registry, 1);
  const report = registry.applyFrame(Uint8Array.from(verdictEvent(1, 'req', Wire.PENDING)));
  assert.equal(report.rejected, 1);
  assert.equal(await settled(wait), false);
  registry.ingestFrames(frames(verdictEvent(2, 'req', Wire.APPROVED)));
  assert.deepEqual(await wait, approved);
  assert.equal(registry.stats().malformed, 1n);
});

test('S11: a Duration::MAX-like timeout is capped at 24 h, not forever', async () => {
  const { registry, sink, clock } = await loadPlugin();
  const wait = sink.waitForApproval(1n, 'forever', U64_MAX);
  await untilWaiters(registry, 1);
  clock.advance(24n * HOUR - 1n);
  assert.equal(await settled(wait), false);
  clock.advance(1n);
  assert.deepEqual(await wait, timedOut);
});

test('S13: a bad wait rejects with a typed error; others are untouched', async () => {
  const { registry, sink } = await loadPlugin();
  const kept = sink.waitForApproval(1n, 'kept', HOUR);
  await assert.rejects(sink.waitForApproval(2n, '', HOUR), (e) => e.payload?.tag === 'request-id-empty');
  await assert.rejects(
    sink.waitForApproval(3n, 'x'.repeat(300), HOUR),
    (e) => e.payload?.tag === 'request-id-too-long' && e.payload.val === 300,
  );
  await untilWaiters(registry, 1);
  await assert.rejects(sink.waitForApproval(1n, 'dup', HOUR), (e) => e.payload?.tag === 'duplicate-waiter');
  registry.resolve('kept', 'approved');
  assert.deepEqual(await kept, approved);
});

test('1,000 concurrent waits: half answered, half timed out', async () => {
  const { registry, sink, clock } = await loadPlugin();
  const waits = [];
  for (let w = 0n; w < 1000n; w++) waits.push(sink.waitForApproval(w, `req-${w}`, SECOND));
  await untilWaiters(registry, 1000);
  for (let w = 0n; w < 1000n; w += 2n) registry.resolve(`req-${w}`, 'denied');
  clock.advance(SECOND);
  const outcomes = await Promise.all(waits);
  assert.equal(outcomes.filter((o) => o.tag === 'decided' && o.val === 'denied').length, 500);
  assert.equal(outcomes.filter((o) => o.tag === 'timed-out').length, 500);
  assert.equal(registry.stats().waiters, 0);
});
