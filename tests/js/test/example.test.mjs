// The README's embedding snippet runs as written, on the real clock.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

test("the README's jco snippet prints a verdict and a timeout", async () => {
  const example = new URL('../example.mjs', import.meta.url);
  const { stdout } = await promisify(execFile)(process.execPath, [example.pathname]);
  assert.equal(stdout, "{ tag: 'decided', val: 'approved' }\n{ tag: 'timed-out' }\n");
});
