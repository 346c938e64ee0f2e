// The golden vectors of tests/vectors/ (SPEC.md §5), written by the Rust
// modules that own each format, checked against this host's frame encoder
// and against the component's own decoders, reached from JavaScript.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { frames, hex, invalidationEvent, loadPlugin, unhex, vectors, verdictEvent } from '../lib/host.mjs';

test('frames.json: the JS encoder writes the bytes prost writes', async () => {
  for (const c of (await vectors('frames.json')).events) {
    const seq = BigInt(c.seq);
    const logId = BigInt(c.log_id);
    let body;
    if (c.event.approval_resolved) {
      const r = c.event.approval_resolved;
      body = verdictEvent(seq, r.request_id, r.decision, r.reviewer, {
        resolvedAtUnixMs: BigInt(r.resolved_at_unix_ms),
        keyId: r.key_id,
        signature: unhex(r.signature),
        logId,
      });
    } else {
      body = invalidationEvent(seq, c.event.policy_invalidated.agent_id, logId);
    }
    assert.equal(hex(body), c.body, c.name);
    assert.equal(hex(frames(body)), c.frame, c.name);
  }
});

test('signing.json: signed verdicts verify in the guest, tampered ones do not', async () => {
  const v = await vectors('signing.json');
  const { registry } = await loadPlugin();
  registry.setTrustedKeys([{ id: v.key.id, publicKey: unhex(v.key.public_key) }]);
  for (const c of v.verdicts) {
    const frame = unhex(c.frame);
    const tampered = Uint8Array.from(frame);
    tampered[tampered.length - 1] ^= 1; // the signature is the last field
    const refused = registry.applyFrame(tampered);
    assert.deepEqual(refused.errors, [{ tag: 'unauthenticated', val: 'bad-signature' }], c.request_id);
    assert.deepEqual(registry.applyFrame(frame).errors, [], c.request_id);
    const by = registry.decidedBy(c.request_id);
    assert.equal(by.keyId, v.key.id);
    assert.equal(by.decision, c.decision === 1 ? 'approved' : 'denied');
  }
  assert.equal(registry.stats().unauthenticated, BigInt(v.verdicts.length));
});

test('ops.json: the guest applies each buffer as its operations say', async () => {
  for (const c of (await vectors('ops.json')).cases) {
    const { registry } = await loadPlugin();
    const applied = registry.apply(0n, unhex(c.bytes));
    // Only an empty id is refused (S13); every other operation is read.
    const refused = c.ops.flatMap((op, i) => (op.op !== 'cancel' && op.id === '' ? [i] : []));
    assert.deepEqual(
      applied.errors.map((e) => [e.op, e.error.tag]),
      refused.map((i) => [i, 'request-id-empty']),
      c.name,
    );
    const registered = c.ops.filter((op) => op.op === 'register' && op.id !== '');
    const resolved = new Set(c.ops.filter((op) => op.op === 'resolve').map((op) => op.id));
    const pending = registered.filter((op) => !resolved.has(op.id)).length;
    assert.equal(registry.stats().waiters, pending, c.name);
  }
});

test('journal.json: the guest restores the journal it wrote', async () => {
  const v = await vectors('journal.json');
  const { registry } = await loadPlugin();
  const kept = v.entries.filter((e) => e.id !== '');
  assert.equal(registry.restoreVerdicts(unhex(v.bytes)), kept.length);
  for (const e of kept) {
    assert.equal(registry.decidedBy(e.id).decision, e.decision === 1 ? 'approved' : 'denied', e.id);
  }
});

test('default-config: the guest says its own defaults, and accepts them', async () => {
  const { registry } = await loadPlugin();
  const d = registry.defaultConfig();
  assert.ok(d.maxWaiters > 0 && d.maxRequestIdBytes > 0 && d.maxFrameBytes > 0);
  registry.configure({ ...d, hashSeed: 12345n });
});
