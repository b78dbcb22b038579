// Fan-out over WebSocket: N subscribers (default 1,000 WebSocket connections, one Node process) on one topic, without
// acks, and one publisher sending M messages (default 2,000) of 100 bytes with 256 in flight. Prints deliveries per second
// (from the first publish to the last delivery), checks every subscriber got every message in order, and stops the broker.
//
//   node --experimental-websocket bench/fanout.mjs [--subscribers N] [--messages M] [--server-dll PATH]
//   (Node 22+: no flag.) The broker is started here from ZAICHIK_SERVER_DLL or --server-dll, default the Release build.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZaichikClient } from '../dist/index.js';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []));
const subscribers = Number(args.subscribers ?? 1000);
const messages = Number(args.messages ?? 2000);
const here = fileURLToPath(new URL('.', import.meta.url));
const dll = args['server-dll'] ?? process.env.ZAICHIK_SERVER_DLL ?? join(here, '../../../Zaichik.Server/bin/Release/net10.0/Zaichik.Server.dll');

const freePort = () => new Promise((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); }); });
const [tcp, ws] = [await freePort(), await freePort()];
const data = mkdtempSync(join(tmpdir(), 'zaichik-fanout-'));
const broker = spawn('dotnet', [dll, '--port', String(tcp), '--admin', 'off', '--data', data, '--websocket', `http://127.0.0.1:${ws}/ws`, '--log', 'warning'], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = `ws://127.0.0.1:${ws}/ws`;

async function connectWithRetry() {
  for (let attempt = 0; ; attempt++) {
    try { return await ZaichikClient.connect(url, { reconnect: { enabled: false } }); } catch (error) { if (attempt > 100) throw error; await new Promise((r) => setTimeout(r, 100)); }
  }
}

const topic = 'fanout';
const payload = new Uint8Array(100);
let delivered = 0;
let outOfOrder = 0;
let lastDeliveryAt = 0;
const clients = [];
try {
  const publisher = await connectWithRetry();
  clients.push(publisher);
  await publisher.createTopic(topic);

  const started = performance.now();
  for (let i = 0; i < subscribers; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, subscribers - i) }, async () => {
      const client = await ZaichikClient.connect(url, { reconnect: { enabled: false } });
      clients.push(client);
      const subscription = await client.subscribe(topic, { from: 'latest', ackPolicy: 'none' });
      (async () => {
        let last = 0;
        for await (const message of subscription) {
          if (message.sequence !== last + 1) outOfOrder++;
          last = message.sequence;
          delivered++;
          lastDeliveryAt = performance.now();
        }
      })();
    }));
  }

  const connectedMs = performance.now() - started;
  const publishStart = performance.now();
  const window = new Set();
  for (let i = 0; i < messages; i++) {
    const sent = publisher.publish(topic, payload).finally(() => window.delete(sent));
    window.add(sent);
    if (window.size >= 256) await Promise.race(window);
  }

  await Promise.all(window);
  const publishedMs = performance.now() - publishStart;
  const expected = subscribers * messages;
  const deadline = performance.now() + 120_000;
  while (delivered < expected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const seconds = (lastDeliveryAt - publishStart) / 1000;
  console.log(`fan-out over WebSocket: ${subscribers} subscribers, ${messages} messages of ${payload.length} bytes (Node ${process.version})`);
  console.log(`  connected and subscribed in ${(connectedMs / 1000).toFixed(2)} s; published in ${(publishedMs / 1000).toFixed(2)} s (${Math.round(messages / (publishedMs / 1000))} msgs/s)`);
  console.log(`  delivered ${delivered} of ${expected} in ${seconds.toFixed(2)} s: ${Math.round(delivered / seconds)} deliveries/s; out of order ${outOfOrder}`);
  process.exitCode = delivered === expected && outOfOrder === 0 ? 0 : 1;
} finally {
  await Promise.allSettled(clients.map((client) => client.close()));
  broker.kill('SIGTERM');
  await new Promise((resolve) => broker.once('exit', resolve));
  rmSync(data, { recursive: true, force: true });
}
