// Runs the compiled tests (dist-test/test/*.test.js) with Node's test runner. Node 22+ has the WebSocket global; Node
// 20 and 21 get it with --experimental-websocket, which this adds when needed. `--unit` leaves out the broker tests.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const unitOnly = process.argv.includes('--unit');
const dir = join('dist-test', 'test');
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.test.js'))
  .filter((name) => !unitOnly || !name.startsWith('integration'))
  .sort()
  .map((name) => join(dir, name));
const flags = typeof globalThis.WebSocket === 'undefined' ? ['--experimental-websocket'] : [];
const result = spawnSync(process.execPath, [...flags, '--test', '--test-reporter=spec', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
