// The conformance scenarios of tests/scenarios/ (SPEC.md §12) through the
// JavaScript host: the approval-plugin component under jco, driven through
// its batched `registry` face, replays each file and every expectation in it
// must hold. The Rust and Python hosts replay the same files.
//
// A scenario that needs a capability this host lacks fails, unless it is
// named in EXCEPTIONS with the reason.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { MS, U64_MAX, frames, invalidationEvent, loadPlugin, unhex, verdictEvent } from '../lib/host.mjs';

/** What this host can run beyond the basic operations. */
const CAPABILITIES = new Set();

/** Scenarios this host does not run, each with the reason. */
const EXCEPTIONS = {
  s12_a_trap_ends_every_outstanding_wait_as_reset:
    'jco runs the component bare: replacing a trapped instance (S12) is a host adapter’s job, done by the Rust and Python hosts',
  s18_a_reset_loses_no_verdict:
    'jco runs the component bare: carrying the journal over a reset (S18) is a host adapter’s job, done by the Rust and Python hosts',
};

const dir = new URL('../../scenarios/', import.meta.url);
const json = (url) => JSON.parse(readFileSync(url, 'utf8'));
const vectors = (name) => json(new URL(`../../vectors/${name}`, import.meta.url));
const ns = (ms) => (ms === 'max' ? U64_MAX : BigInt(ms) * MS);
const camel = (name) => name.replace(/_(.)/g, (_, c) => c.toUpperCase());

function eventBytes(e) {
  if (e.hex !== undefined) return unhex(e.hex);
  const seq = BigInt(e.seq ?? 0);
  const logId = BigInt(e.log_id ?? 0);
  if (e.verdict) {
    const v = e.verdict;
    return Uint8Array.from(
      verdictEvent(seq, v.id, v.decision, v.reviewer ?? '', {
        resolvedAtUnixMs: BigInt(v.resolved_at_unix_ms ?? 0),
        keyId: v.key_id ?? '',
        signature: unhex(v.signature ?? ''),
        logId,
      }),
    );
  }
  return Uint8Array.from(invalidationEvent(seq, e.invalidation, logId));
}

function outcomeJson(outcome) {
  if (outcome === undefined) return 'waiting';
  if (outcome.error) return { error: outcome.error };
  return outcome.tag === 'decided' ? outcome.val : outcome.tag;
}

async function replay(name, scenario) {
  const { registry, clock, invalidated } = await loadPlugin();
  const config = { ...registry.defaultConfig(), hashSeed: 0x5eedn };
  for (const [key, value] of Object.entries(scenario.config ?? {})) {
    if (key.endsWith('_ms')) config[`${camel(key.slice(0, -3))}Ns`] = ns(value);
    else config[camel(key)] = value;
  }
  if (scenario.build_error) {
    assert.throws(() => registry.configure(config), (e) => e.payload?.tag === scenario.build_error, name);
    return;
  }
  registry.configure(config);
  if (scenario.trusted_keys) {
    const key = vectors(scenario.trusted_keys).key;
    registry.setTrustedKeys([{ id: key.id, publicKey: unhex(key.public_key) }]);
  }
  const tickets = new Map();
  const outcomes = new Map();
  let next = 1n;
  const record = (batch) => {
    for (const c of batch.done) outcomes.set(c.waiter, c.outcome);
    return batch.done.length;
  };
  const typed = (fn) => {
    try {
      return { value: fn() };
    } catch (e) {
      if (e.payload?.tag === undefined) throw e;
      return { error: e.payload.tag };
    }
  };
  scenario.steps.forEach((step, i) => {
    const at = `${name} step ${i}`;
    if (step.wait !== undefined) {
      const ticket = next++;
      tickets.set(step.wait, ticket);
      const r = typed(() => registry.register(ticket, step.id, ns(step.timeout_ms)));
      if (r.error) outcomes.set(ticket, { error: r.error });
      else if (r.value.tag === 'settled') outcomes.set(ticket, r.value.val);
    } else if (step.cancel !== undefined) {
      registry.cancel(tickets.get(step.cancel));
    } else if (step.deliver !== undefined) {
      const r = typed(() => registry.resolve(step.deliver, step.decision));
      if (step.error) assert.equal(r.error, step.error, at);
      else assert.equal(record(r.value), step.woken, at);
    } else if (step.frame || step.frame_hex || step.frame_vector) {
      let bytes;
      if (step.frame) bytes = eventBytes(step.frame);
      else if (step.frame_hex) bytes = unhex(step.frame_hex);
      else bytes = unhex(vectors(step.frame_vector.file).verdicts[step.frame_vector.verdict].frame);
      const report = registry.applyFrame(bytes);
      record(report.batch);
      assert.equal(report.errors[0]?.tag ?? report.fatal?.tag, step.error, at);
    } else if (step.stream) {
      const bytes = frames(...step.stream.map(eventBytes));
      if (step.bytewise) {
        for (const b of bytes) record(registry.ingestFrames(Uint8Array.of(b)).batch);
      } else {
        const report = registry.ingestFrames(bytes);
        record(report.batch);
        const got = { events: report.events, duplicates: report.duplicates, rejected: report.rejected };
        // How many errors the report lists (bounded, S20), when named.
        if (step.report.errors !== undefined) got.errors = report.errors.length;
        for (const key of Object.keys(got)) assert.equal(got[key], step.report[key], `${at}: report ${key}`);
      }
    } else if (step.advance_ms !== undefined) {
      clock.advance(ns(step.advance_ms));
      record(registry.expire());
    } else if (step.outcomes) {
      for (const [wait, want] of Object.entries(step.outcomes)) {
        assert.deepEqual(outcomeJson(outcomes.get(tickets.get(wait))), want, `${at}: wait ${wait}`);
      }
    } else if (step.stats) {
      const stats = registry.stats();
      for (const [counter, want] of Object.entries(step.stats)) {
        assert.equal(BigInt(stats[camel(counter)]), BigInt(want), `${at}: counter ${counter}`);
      }
    } else if (step.waiters !== undefined) {
      assert.equal(registry.stats().waiters, step.waiters, at);
    } else if (step.decided_by !== undefined) {
      const by = registry.decidedBy(step.decided_by);
      if (step.is === null) {
        assert.equal(by, undefined, at);
      } else {
        const got = { decision: by.decision, reviewer: by.reviewer || null, key_id: by.keyId || null };
        for (const [key, want] of Object.entries(step.is)) assert.equal(got[key], want, `${at}: ${key}`);
      }
    } else if (step.invalidated) {
      assert.deepEqual(invalidated, step.invalidated, at);
    } else if (step.resume_point) {
      const stats = registry.stats();
      assert.equal(stats.logId, BigInt(step.resume_point.log_id), `${at}: log_id`);
      assert.equal(stats.lastSeq, BigInt(step.resume_point.last_seq), `${at}: last_seq`);
    } else {
      throw new Error(`${at}: unknown step ${JSON.stringify(step)}`);
    }
  });
}

const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

const lacking = (scenario) => (scenario.needs ?? []).filter((need) => !CAPABILITIES.has(need));

test('the scenarios are all there', () => {
  assert.ok(files.length >= 20);
});

test('every exception names a scenario this host cannot run', () => {
  for (const name of Object.keys(EXCEPTIONS)) {
    assert.ok(files.includes(`${name}.json`), `${name} is not a scenario`);
    assert.ok(lacking(json(new URL(`${name}.json`, dir))).length > 0, `${name} runs here: drop the exception`);
  }
});

for (const file of files) {
  const name = file.slice(0, -'.json'.length);
  test(`scenario ${name}`, async (t) => {
    const scenario = json(new URL(file, dir));
    const missing = lacking(scenario);
    if (missing.length > 0) {
      assert.ok(EXCEPTIONS[name], `${name} needs ${missing}, which this host lacks, and is not an exception`);
      // Reported as a skip with its reason; tests/tests/jco.rs expects
      // exactly one skip per exception.
      t.skip(EXCEPTIONS[name]);
      return;
    }
    await replay(name, scenario);
  });
}
