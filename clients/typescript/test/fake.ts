/**
 * An in-process stand-in for the broker's WebSocket endpoint, for client tests without a broker: each socket the
 * client opens is a FakeSocket the test drives (read the client's frames, answer, split messages, close).
 */
import { ErrorCode, FrameDecoder, FrameType, encodeFrame, type Frame, type WebSocketLike } from '../src/index.js';

export class FakeSocket implements WebSocketLike {
  binaryType = 'blob';
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code?: number; reason?: string; wasClean?: boolean }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  /** Frames the client sent, in order. */
  readonly received: Frame[] = [];
  /** Binary messages the client sent (each may hold several frames). */
  readonly messages: Uint8Array[] = [];
  private readonly decoder = new FrameDecoder();
  private waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void; from: number }> = [];
  closedByClient: { code?: number; reason?: string } | null = null;

  constructor(
    readonly url: string,
    readonly server: FakeServer,
  ) {}

  send(data: Uint8Array | ArrayBuffer): void {
    if (this.readyState !== 1) {
      if (this.readyState === 0) {
        throw new Error('InvalidStateError: still connecting');
      }
      return;
    }
    const bytes = data instanceof Uint8Array ? data.slice() : new Uint8Array(data.slice(0));
    this.messages.push(bytes);
    this.decoder.push(bytes);
    for (const frame of this.decoder.drain()) {
      this.received.push(frame);
      this.server.onFrame(this, frame);
      for (const waiter of [...this.waiters]) {
        if (waiter.match(frame)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(frame);
        }
      }
    }
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) {
      return;
    }
    this.closedByClient = { code, reason };
    this.readyState = 3;
    setTimeout(() => this.onclose?.({ code: code ?? 1005, reason: reason ?? '', wasClean: true }), 0);
  }

  /** Opens the socket (the client then sends Hello). */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** Sends frames to the client as one binary message. */
  sendFrames(...frames: Frame[]): void {
    const parts = frames.map((f) => encodeFrame(f));
    const total = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    this.sendBytes(out);
  }

  /** Sends raw bytes to the client, split into messages of `chunk` bytes. */
  sendBytes(bytes: Uint8Array, chunk = bytes.length): void {
    for (let i = 0; i < bytes.length; i += Math.max(1, chunk)) {
      const piece = bytes.slice(i, i + Math.max(1, chunk));
      this.onmessage?.({ data: piece.buffer });
    }
  }

  /** The server closes the WebSocket. */
  serverClose(code = 1000, reason = ''): void {
    if (this.readyState >= 2) {
      return;
    }
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }

  /** Resolves with the first frame the client sent at or after index `from` that matches, waiting for it if need be. */
  next(match: (f: Frame) => boolean = () => true, from = 0): Promise<Frame> {
    for (let i = from; i < this.received.length; i++) {
      if (match(this.received[i]!)) {
        return Promise.resolve(this.received[i]!);
      }
    }
    return new Promise((resolve) => this.waiters.push({ match, resolve, from }));
  }

  nextOfType<T extends Frame['type']>(type: T, from?: number): Promise<Extract<Frame, { type: T }>> {
    return this.next((f) => f.type === type, from) as Promise<Extract<Frame, { type: T }>>;
  }
}

export interface FakeServerOptions {
  /** The idle timeout announced in the server's Hello. */
  idleTimeoutMs?: number;
  /** Answer Hello automatically (default true). */
  autoHello?: boolean;
  /** The version the server's Hello announces (default: the client's). */
  answerVersion?: number;
  /** A server that speaks only this version: a Hello of another one gets UnsupportedVersion and the socket closes. */
  onlyVersion?: number;
  /** Answer Pings automatically (default true). */
  autoPong?: boolean;
  /** Refuse connections while true: the socket closes with 1006 before it opens. */
  down?: boolean;
  /** Answer a Close by closing the WebSocket, a moment later (default true), as the broker does once it answered. */
  autoClose?: boolean;
}

/** The broker side: makes a FakeSocket for every connection attempt. */
export class FakeServer {
  readonly sockets: FakeSocket[] = [];
  private socketWaiters: Array<(s: FakeSocket) => void> = [];
  handler: ((socket: FakeSocket, frame: Frame) => void) | null = null;

  constructor(public options: FakeServerOptions = {}) {}

  readonly factory = (url: string): WebSocketLike => {
    const socket = new FakeSocket(url, this);
    this.sockets.push(socket);
    setTimeout(() => {
      if (this.options.down) {
        socket.readyState = 3;
        socket.onerror?.({ message: 'connect ECONNREFUSED' });
        socket.onclose?.({ code: 1006, reason: '', wasClean: false });
        return;
      }
      socket.open();
      const waiters = this.socketWaiters;
      this.socketWaiters = [];
      for (const w of waiters) w(socket);
    }, 0);
    return socket;
  };

  get last(): FakeSocket {
    return this.sockets[this.sockets.length - 1]!;
  }

  /** Resolves with the next socket that opens. */
  nextSocket(): Promise<FakeSocket> {
    return new Promise((resolve) => this.socketWaiters.push(resolve));
  }

  onFrame(socket: FakeSocket, frame: Frame): void {
    if (frame.type === FrameType.Hello && this.options.autoHello !== false) {
      const only = this.options.onlyVersion;
      if (only !== undefined && frame.version !== only) {
        socket.sendFrames({
          type: FrameType.Error,
          requestId: null,
          code: ErrorCode.UnsupportedVersion,
          text: `protocol version ${frame.version} is not supported; this server speaks version ${only}`,
        });
        setTimeout(() => socket.serverClose(1000, 'unsupported version'), 0);
        return;
      }
      socket.sendFrames({
        type: FrameType.Hello,
        version: this.options.answerVersion ?? frame.version,
        idleTimeoutMs: this.options.idleTimeoutMs ?? 60_000,
        token: null,
        producerId: 0n,
      });
      return;
    }
    if (frame.type === FrameType.Ping && this.options.autoPong !== false) {
      socket.sendFrames({ type: FrameType.Pong, nonce: frame.nonce });
      return;
    }
    this.handler?.(socket, frame);
    if (frame.type === FrameType.Close && this.options.autoClose !== false) {
      setTimeout(() => socket.serverClose(1000, 'closed'), 0);
    }
  }
}

/**
 * Nodes of a fake cluster behind one webSocketFactory, told apart by URL; a URL no node has is refused. `attempts`
 * lists every URL the client tried, in order.
 */
export class FakeCluster {
  readonly nodes = new Map<string, FakeServer>();
  readonly attempts: string[] = [];
  /** When each attempt was made (Date.now()). */
  readonly attemptTimes: number[] = [];
  private readonly nowhere = new FakeServer({ down: true });

  /** Adds a node answering at `url`. */
  node(url: string, options: FakeServerOptions = {}): FakeServer {
    const server = new FakeServer(options);
    this.nodes.set(new URL(url).toString(), server);
    return server;
  }

  readonly factory = (url: string): WebSocketLike => {
    this.attempts.push(url);
    this.attemptTimes.push(Date.now());
    return (this.nodes.get(url) ?? this.nowhere).factory(url);
  };
}

/** A Redirect of a request (null: of a frame without a request id) to the node at `endpoint`. */
export function redirect(requestId: bigint | null, topic: string, leaderNode: string, endpoint: string): Frame {
  return { type: FrameType.Redirect, requestId, topic, leaderNode, endpoint };
}

/** The answer of a node that knows no leader for the request's topic now. */
export function noLeader(requestId: bigint, topic: string): Frame {
  return { type: FrameType.Error, requestId, code: ErrorCode.NoLeader, text: `no leader for '${topic}' now` };
}

export function ack(requestId: bigint, sequence: bigint | null = null, duplicate = false, durable = false): Frame {
  return { type: FrameType.Ack, requestId, sequence, duplicate, durable };
}

export function message(topic: string, sequence: bigint, payload = `m${sequence}`, deliveryCount = 1): Frame {
  return {
    type: FrameType.Message,
    topic,
    sequence,
    timestampMs: 1_795_773_600_000n,
    key: null,
    payload: new TextEncoder().encode(payload),
    headers: new Uint8Array(0),
    deliveryCount,
  };
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
