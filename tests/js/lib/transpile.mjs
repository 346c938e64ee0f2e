// Transpiles the approval-plugin component into `out/` with jco.
//
// The component comes from $APPROVAL_PLUGIN_WASM: the Rust test
// `cargo test -p approval-tests --test jco` writes the very bytes the Rust
// suites embed there and sets the variable. By hand:
//   cargo run --bin approval-sink -- export --world plugin -o ../../target/approval-plugin.wasm
//   APPROVAL_PLUGIN_WASM=../../target/approval-plugin.wasm npm test
import { transpile } from '@bytecodealliance/jco';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const input = process.env.APPROVAL_PLUGIN_WASM;
if (!input) {
  console.error(
    'APPROVAL_PLUGIN_WASM is not set: point it at the approval-plugin component ' +
      '(`approval-sink export --world plugin -o FILE`), or run `cargo test -p approval-tests --test jco`.',
  );
  process.exit(2);
}
const out = join(here, '..', 'out');
const component = await readFile(input);
// `async` instantiation: the core modules are compiled by our loader, and the
// async exports (`wait-for-approval`, `ingest`) need JSPI either way.
const { files } = await transpile(component, { name: 'approval-plugin', instantiation: 'async', quiet: true });
await rm(out, { recursive: true, force: true });
for (const [name, bytes] of Object.entries(files)) {
  const path = join(out, name);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}
await writeFile(join(out, 'package.json'), '{ "type": "module" }\n');
console.log(`transpiled ${input} (${component.length} bytes) into ${Object.keys(files).length} files`);
