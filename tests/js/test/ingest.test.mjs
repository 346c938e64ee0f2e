// Frames in: `registry.ingest-frames` (chunks of the byte stream) and the
// async `sink.ingest(stream<u8>)`, with prost-compatible frames built in JS.
// Mirrors tests/tests/stream.rs and the corpus checks of bytes_fuzz.rs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  HOUR,
  Wire,
  corpus,
  frames,
  invalidationEvent,
  loadPlugin,
  untilWaiters,
  verdictEvent,
} from '../lib/host.mjs';

const approved = { tag: 'decided', val: 'approved' };
const denied = { tag: 'decided', val: 'denied' };

test('the JS frame encoder writes the bytes prost writes (corpus files)', async () => {
  assert.deepEqual(frames(verdictEvent(1, 'req-1', Wire.APPROVED)), new Uint8Array(await corpus('valid-approved.bin')));
  assert.deepEqual(
    frames(verdictEvent(1, 'req-1', Wire.APPROVED), verdictEvent(2, 'req-2', Wire.DENIED)),
    new Uint8Array(await corpus('valid-two-frames.bin')),
  );
});

test('ingest-frames: a frame split at every byte boundary is applied once', async () => {
  const bytes = frames(verdictEvent(1, 'req-a', Wire.APPROVED, 'reviewer@example'), verdictEvent(2, 'req-b', Wire.DENIED));
  for (let cut = 0; cut <= bytes.length; cut++) {
    const { registry } = await loadPlugin();
    registry.register(1n, 'req-a', HOUR);
    registry.register(2n, 'req-b', HOUR);
    const first = registry.ingestFrames(bytes.subarray(0, cut));
    const second = registry.ingestFrames(bytes.subarray(cut));
    assert.equal(first.events + second.events, 2, `cut at ${cut}`);
    const done = [...first.batch.done, ...second.batch.done];
    assert.deepEqual(
      done.sort((x, y) => Number(x.waiter - y.waiter)),
      [
        { waiter: 1n, outcome: approved },
        { waiter: 2n, outcome: denied },
      ],
    );
    assert.equal(second.lastSeq, 2n);
  }
});

test('duplicates are ignored, garbage is skipped and counted, framing loss is fatal', async () => {
  const { registry, invalidated } = await loadPlugin();
  registry.register(1n, 'req-1', HOUR);
  const garbage = [0xff, 0xff, 0xff]; // a frame whose body is not protobuf
  const report = registry.ingestFrames(
    frames(
      verdictEvent(5, 'req-1', Wire.APPROVED),
      verdictEvent(5, 'req-1', Wire.DENIED), // replayed seq
      verdictEvent(3, 'req-1', Wire.DENIED), // older seq
      garbage,
      invalidationEvent(6, 'agent-1'),
    ),
  );
  assert.equal(report.events, 2);
  assert.equal(report.duplicates, 2);
  assert.equal(report.rejected, 1);
  assert.equal(report.errors[0].tag, 'malformed-frame');
  assert.equal(report.fatal, undefined);
  assert.equal(report.lastSeq, 6n);
  assert.deepEqual(report.batch.done, [{ waiter: 1n, outcome: approved }]);
  assert.deepEqual(invalidated, ['agent-1']);

  // An 11-byte length prefix: framing is lost, buffered bytes are dropped.
  const fatal = registry.ingestFrames(new Uint8Array(await corpus('never-ending-varint.bin')));
  assert.ok(fatal.fatal, 'framing is lost');
  // A reopened source starts clean and resumes after last-seq.
  registry.resetStream();
  registry.register(2n, 'req-2', HOUR);
  const resumed = registry.ingestFrames(frames(verdictEvent(6, 'req-2', Wire.DENIED), verdictEvent(7, 'req-2', Wire.DENIED)));
  assert.equal(resumed.duplicates, 1);
  assert.deepEqual(resumed.batch.done, [{ waiter: 2n, outcome: denied }]);

  const s = registry.stats();
  assert.equal(s.duplicates, 3n);
  assert.equal(s.malformed, 2n, 'the garbage frame and the lost framing');
  assert.equal(s.lastSeq, 7n);
  assert.equal(s.invalidations, 1n);
});

test('sink.ingest: a byte stream resolves async and batched waiters', async () => {
  const { registry, sink, invalidated } = await loadPlugin();
  const waits = [1n, 2n].map((w) => sink.waitForApproval(w, `req-${w}`, HOUR));
  await untilWaiters(registry, 2);
  registry.register(3n, 'req-3', HOUR);
  const bytes = frames(
    verdictEvent(1, 'req-1', Wire.APPROVED),
    verdictEvent(2, 'req-2', Wire.DENIED),
    verdictEvent(2, 'req-2', Wire.APPROVED), // duplicate
    [0x0a, 0x01], // truncated body: malformed
    invalidationEvent(3, ''),
    verdictEvent(4, 'req-3', Wire.APPROVED),
  );
  const applied = await sink.ingest(bytes); // a Uint8Array is an iterable of u8
  assert.equal(applied, 4n);
  assert.deepEqual(await Promise.all(waits), [approved, denied]);
  assert.deepEqual(invalidated, ['']);
  // The batched waiter finished by the stream is reported by the next batch.
  assert.deepEqual(registry.expire().done, [{ waiter: 3n, outcome: approved }]);
  const s = registry.stats();
  assert.equal(s.duplicates, 1n);
  assert.equal(s.malformed, 1n);
  assert.equal(s.lastSeq, 4n);
  assert.equal(s.delivered, 3n);
});

test('sink.ingest: an async source yielding one byte at a time', async () => {
  const { registry, sink } = await loadPlugin();
  const wait = sink.waitForApproval(1n, 'slow', HOUR);
  await untilWaiters(registry, 1);
  const bytes = frames(verdictEvent(1, 'other', Wire.DENIED), verdictEvent(2, 'slow', Wire.APPROVED));
  async function* trickle() {
    for (const b of bytes) {
      await new Promise((resolve) => setImmediate(resolve));
      yield b;
    }
  }
  assert.equal(await sink.ingest(trickle()), 2n);
  assert.deepEqual(await wait, approved);
  // S15: both verdicts are remembered, delivered or early.
  assert.equal(registry.stats().cachedVerdicts, 2, "'other' early, 'slow' delivered");
});

test('sink.ingest: a corrupt length prefix rejects the stream with a typed error', async () => {
  const { registry, sink } = await loadPlugin();
  const bytes = new Uint8Array(await corpus('oversized-prefix.bin'));
  await assert.rejects(sink.ingest(bytes), (e) => e.payload?.tag === 'frame-too-large');
  assert.equal(registry.stats().waiters, 0);
});
