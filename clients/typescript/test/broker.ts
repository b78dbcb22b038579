/**
 * Runs a real Zaichik broker as a child process for the integration tests:
 * `dotnet <Zaichik.Server.dll> --port P --data D --admin off --websocket http://127.0.0.1:W/ws`.
 *
 * The broker's path is ZAICHIK_SERVER_DLL, or /tmp/ts-broker/Zaichik.Server/bin/Release/net10.0/Zaichik.Server.dll
 * (a clone built with `dotnet build Zaichik.Server -c Release`). When the variable is unset and that file is missing the
 * tests are skipped; when the variable is set the file must exist.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_SERVER_DLL = '/tmp/ts-broker/Zaichik.Server/bin/Release/net10.0/Zaichik.Server.dll';

/** The broker to run, or a reason to skip. Throws when ZAICHIK_SERVER_DLL names a file that does not exist. */
export function serverDll(): { dll: string } | { skip: string } {
  const configured = process.env['ZAICHIK_SERVER_DLL'];
  if (configured !== undefined && configured !== '') {
    if (!existsSync(configured)) {
      throw new Error(`ZAICHIK_SERVER_DLL is ${configured}, which does not exist`);
    }
    return { dll: configured };
  }
  if (existsSync(DEFAULT_SERVER_DLL)) {
    return { dll: DEFAULT_SERVER_DLL };
  }
  return { skip: `no broker: set ZAICHIK_SERVER_DLL or build one at ${DEFAULT_SERVER_DLL}` };
}

/** A free TCP port on 127.0.0.1 (bound, read and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Broker {
  readonly dataDir: string;
  private process: ChildProcess | null = null;
  private output: string[] = [];

  private constructor(
    readonly dll: string,
    readonly port: number,
    readonly webSocketPort: number,
    readonly extraArgs: readonly string[],
  ) {
    this.dataDir = mkdtempSync(join(tmpdir(), 'zaichik-ts-'));
  }

  /** Starts a broker on free ports with a fresh data folder and waits until its WebSocket accepts. */
  static async start(dll: string, extraArgs: readonly string[] = []): Promise<Broker> {
    const broker = new Broker(dll, await freePort(), await freePort(), extraArgs);
    await broker.run();
    return broker;
  }

  /** The WebSocket URL of the broker. */
  get url(): string {
    return `ws://127.0.0.1:${this.webSocketPort}/ws`;
  }

  /** The broker's last lines of output, for a failure's message. */
  get log(): string {
    return this.output.join('').split('\n').slice(-40).join('\n');
  }

  /** Starts the process (again, on the same ports and data folder) and waits for the WebSocket to accept. */
  async run(): Promise<void> {
    if (this.process !== null) {
      throw new Error('the broker is running');
    }
    const child = spawn(
      'dotnet',
      [
        this.dll,
        '--port',
        String(this.port),
        '--data',
        this.dataDir,
        '--admin',
        'off',
        '--websocket',
        `http://127.0.0.1:${this.webSocketPort}/ws`,
        ...this.extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' } },
    );
    this.process = child;
    const keep = (chunk: Buffer): void => {
      this.output.push(chunk.toString());
      if (this.output.length > 400) this.output.splice(0, 200);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        this.process = null;
        throw new Error(`the broker exited with ${child.exitCode}:\n${this.log}`);
      }
      if (await this.accepts()) {
        return;
      }
      await sleep(100);
    }
    await this.stop();
    throw new Error(`the broker's WebSocket did not accept within 60 s:\n${this.log}`);
  }

  /** Stops the process (SIGTERM: a clean stop that writes what it holds; SIGKILL after 15 s). */
  async stop(): Promise<void> {
    const child = this.process;
    if (child === null) {
      return;
    }
    this.process = null;
    if (child.exitCode !== null || child.signalCode !== null) {
      return;
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(killer);
  }

  /** Stops the broker and removes its data folder. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** True when a WebSocket to the broker opens. */
  private accepts(): Promise<boolean> {
    return new Promise((resolve) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(this.url);
      } catch {
        resolve(false);
        return;
      }
      const timer = setTimeout(() => {
        ws.close();
        resolve(false);
      }, 2000);
      ws.onopen = () => {
        clearTimeout(timer);
        ws.close();
        resolve(true);
      };
      ws.onerror = () => {
        clearTimeout(timer);
        resolve(false);
      };
    });
  }
}
