/**
 * One WebSocket to the broker: the Hello handshake, the frame stream in both directions and the heartbeat. A
 * ZaichikClient outlives its connections: when one ends it opens the next; everything that must survive (pending
 * requests, subscriptions) lives in the client. A connection reports each frame it reads and, once, its end.
 */
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, isSupportedVersion } from './codec.js';
import { ErrorCode, ZaichikConnectionError, ZaichikError, ZaichikProtocolError } from './errors.js';
import { FrameDecoder, FrameType, concat, encodeFrame, frameTypeName, type Frame, type HelloFrame } from './frames.js';

/** UnsupportedVersion errors the client raised itself (the server's Hello named a version it does not speak): not retried with an older Hello. */
const refusedByClient = new WeakSet<Error>();

/** The part of the WebSocket API the client uses: the platform `WebSocket` (browsers, Node 22+) has it. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code?: number; reason?: string; wasClean?: boolean }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** Makes the WebSocket for a URL. The default is `new WebSocket(url)`. */
export type WebSocketFactory = (url: string) => WebSocketLike;

/** What a connection reports to its owner. */
export interface ConnectionOwner {
  dispatch(connection: Connection, frame: Frame): void;
  onConnectionEnded(connection: Connection, failure: Error | null): void;
  nextPingNonce(): bigint;
}

export interface ConnectionSettings {
  readonly url: string;
  readonly token: string | null;
  readonly producerId: bigint;
  readonly connectTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly maxPingsOutstanding: number;
  readonly maxFrameSize: number;
  readonly webSocketFactory: WebSocketFactory;
}

export function defaultWebSocketFactory(url: string): WebSocketLike {
  const ctor = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (ctor === undefined) {
    throw new TypeError(
      'no WebSocket global: browsers and Node.js 22+ have one; Node.js 20 and 21 need the flag --experimental-websocket',
    );
  }
  return new ctor(url);
}

/** The configured interval, but at least three Pings per server idle timeout so one lost Ping is not fatal. 0: off. */
export function pingIntervalFor(configuredMs: number, serverIdleTimeoutMs: number | null): number {
  if (configuredMs <= 0 || !Number.isFinite(configuredMs)) {
    return 0;
  }
  return serverIdleTimeoutMs !== null && serverIdleTimeoutMs / 3 < configuredMs
    ? Math.max(Math.floor(serverIdleTimeoutMs / 3), 1)
    : configuredMs;
}

function describeClose(event: { code?: number; reason?: string } | undefined): string {
  if (event?.code === undefined) {
    return '';
  }
  return ` (WebSocket close ${event.code}${event.reason ? ` ${event.reason}` : ''})`;
}

function describeError(event: unknown): string | null {
  const e = event as { error?: { message?: string; cause?: { message?: string } }; message?: string } | null;
  const message = e?.error?.cause?.message ?? e?.error?.message ?? e?.message;
  return typeof message === 'string' && message.length > 0 ? message : null;
}

export class Connection {
  readonly url: string;
  readonly serverProtocolVersion: number;
  /** The idle timeout the server announced, or null for none. */
  readonly serverIdleTimeoutMs: number | null;
  /** The last Error without a request id: the server's reason, if it closes the connection. */
  lastServerError: ZaichikError | null = null;

  private readonly ws: WebSocketLike;
  private readonly decoder: FrameDecoder;
  private readonly settings: ConnectionSettings;
  private readonly pingIntervalMs: number;
  private owner: ConnectionOwner | null = null;
  private backlog: Frame[] = [];
  private outbox: Uint8Array[] = [];
  private outboxBytes = 0;
  private flushScheduled = false;
  private ended = false;
  private reported = false;
  private endReason: Error | null = null;
  private closeEvent: { code?: number; reason?: string } | undefined;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private receivedSinceCheck = false;
  private sentSinceCheck = false;
  private silentIntervals = 0;
  private closedWaiters: Array<() => void> = [];
  private gracefulClose: Promise<void> | null = null;

  private constructor(ws: WebSocketLike, decoder: FrameDecoder, settings: ConnectionSettings, hello: HelloFrame) {
    this.ws = ws;
    this.decoder = decoder;
    this.settings = settings;
    this.url = settings.url;
    this.serverProtocolVersion = hello.version;
    this.serverIdleTimeoutMs = hello.idleTimeoutMs === 0 ? null : hello.idleTimeoutMs;
    this.pingIntervalMs = pingIntervalFor(settings.pingIntervalMs, this.serverIdleTimeoutMs);
  }

  get hasEnded(): boolean {
    return this.ended;
  }

  /**
   * Opens the WebSocket and exchanges Hello. Rejects with {@link ZaichikConnectionError} when the broker is unreachable
   * or the handshake fails, {@link ZaichikError} when the server refuses (an unsupported version, a token).
   *
   * The Hello announces {@link PROTOCOL_VERSION}; the server answers with the version it speaks from 7 to 8. A server
   * that speaks only version 7 refuses 8 with UnsupportedVersion: the client then opens a connection once more with a
   * version 7 Hello (the frames are the same).
   */
  static async open(settings: ConnectionSettings): Promise<Connection> {
    try {
      return await Connection.openWith(settings, PROTOCOL_VERSION);
    } catch (error) {
      if (
        error instanceof ZaichikError &&
        error.code === ErrorCode.UnsupportedVersion &&
        !refusedByClient.has(error) &&
        MIN_PROTOCOL_VERSION < PROTOCOL_VERSION
      ) {
        return await Connection.openWith(settings, MIN_PROTOCOL_VERSION);
      }
      throw error;
    }
  }

  private static openWith(settings: ConnectionSettings, version: number): Promise<Connection> {
    return new Promise<Connection>((resolve, reject) => {
      const url = settings.url;
      let ws: WebSocketLike;
      try {
        ws = settings.webSocketFactory(url);
      } catch (error) {
        reject(
          error instanceof TypeError
            ? error
            : new ZaichikConnectionError(`could not connect to Zaichik at ${url}: ${(error as Error).message}`, {
                cause: error,
              }),
        );
        return;
      }
      ws.binaryType = 'arraybuffer';
      const decoder = new FrameDecoder(settings.maxFrameSize);
      let settled = false;
      let connection: Connection | null = null;
      let lastError: string | null = null;
      const timer = setTimeout(() => {
        fail(
          new ZaichikConnectionError(
            `could not connect to Zaichik at ${url}: no answer within ${settings.connectTimeoutMs / 1000} s`,
          ),
        );
      }, settings.connectTimeoutMs);

      const fail = (error: Error): void => {
        if (settled) {
          return;
        }
        settled = true;
        clearTimeout(timer);
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        try {
          ws.close();
        } catch {
          // Already closed.
        }
        reject(error);
      };

      ws.onopen = () => {
        try {
          const hello = encodeFrame({
            type: FrameType.Hello,
            version,
            idleTimeoutMs: 0,
            token: settings.token,
            producerId: settings.producerId,
          });
          ws.send(hello);
        } catch (error) {
          fail(new ZaichikConnectionError(`could not connect to Zaichik at ${url}: ${(error as Error).message}`));
        }
      };
      ws.onerror = (event) => {
        lastError = describeError(event) ?? lastError;
      };
      ws.onclose = (event) => {
        if (connection !== null) {
          connection.onClose(event);
          return;
        }
        fail(
          new ZaichikConnectionError(
            lastError !== null
              ? `could not connect to Zaichik at ${url}: ${lastError}`
              : `could not connect to Zaichik at ${url}: the server closed the connection during the handshake${describeClose(event)}`,
          ),
        );
      };
      ws.onmessage = (event) => {
        if (connection !== null) {
          connection.onMessage(event.data);
          return;
        }
        if (settled) {
          return;
        }
        try {
          decoder.push(toBytes(event.data));
          const first = decoder.next();
          if (first === undefined) {
            return;
          }
          if (first.type === FrameType.Error) {
            throw new ZaichikError(first.code, first.text);
          }
          if (first.type !== FrameType.Hello) {
            throw new ZaichikConnectionError(
              `could not connect to Zaichik at ${url}: expected Hello, the server sent ${frameTypeName(first.type)}`,
            );
          }
          if (!isSupportedVersion(first.version)) {
            const refusal = new ZaichikError(
              ErrorCode.UnsupportedVersion,
              `the server at ${url} answered with protocol version ${first.version}; this client speaks versions ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`,
            );
            refusedByClient.add(refusal);
            throw refusal;
          }
          settled = true;
          clearTimeout(timer);
          connection = new Connection(ws, decoder, settings, first);
          // Frames that came in the same message as the Hello wait for start().
          for (const frame of decoder.drain()) {
            connection.backlog.push(frame);
          }
          resolve(connection);
        } catch (error) {
          fail(error as Error);
        }
      };
    });
  }

  /** Starts dispatching frames and the heartbeat. */
  start(owner: ConnectionOwner): void {
    this.owner = owner;
    const backlog = this.backlog;
    this.backlog = [];
    for (const frame of backlog) {
      if (this.ended) {
        break;
      }
      this.handle(frame);
    }
    if (this.ended) {
      this.report();
      return;
    }
    if (this.pingIntervalMs > 0) {
      this.heartbeat = setInterval(() => this.onHeartbeat(), this.pingIntervalMs);
    }
  }

  /**
   * Queues a frame; the frames queued in one turn of the event loop go out as one binary WebSocket message. Throws
   * {@link ZaichikConnectionError} when the connection has ended, RangeError/TypeError when the frame cannot be encoded.
   */
  send(frame: Frame): void {
    this.sendBytes(encodeFrame(frame));
  }

  /** Queues encoded frames (see {@link send}). */
  sendBytes(bytes: Uint8Array): void {
    if (this.ended) {
      throw new ZaichikConnectionError('connection closed');
    }
    this.outbox.push(bytes);
    this.outboxBytes += bytes.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Sends what is queued now. */
  flush(): void {
    this.flushScheduled = false;
    if (this.outbox.length === 0 || this.ended) {
      this.outbox = [];
      this.outboxBytes = 0;
      return;
    }
    const message = concat(this.outbox, this.outboxBytes);
    this.outbox = [];
    this.outboxBytes = 0;
    try {
      this.ws.send(message);
      this.sentSinceCheck = true;
    } catch (error) {
      this.terminate(new ZaichikConnectionError(`could not send to Zaichik at ${this.url}: ${(error as Error).message}`));
    }
  }

  /** Ends the connection at once; the owner hears of it (with `failure`) in a moment. */
  terminate(failure: Error | null): void {
    if (this.ended) {
      return;
    }
    this.ended = true;
    this.endReason = failure;
    this.stopHeartbeat();
    this.outbox = [];
    try {
      this.ws.close(1000, 'closed');
    } catch {
      // Already closed.
    }
    // The close event may take a while (a dead peer); the owner learns now.
    this.report();
  }

  /**
   * Sends Close and waits up to `timeoutMs` for the server to answer what it read and close the WebSocket. A second
   * call waits for the first one's end and sends nothing.
   */
  closeGracefully(timeoutMs: number): Promise<void> {
    this.gracefulClose ??= this.closeGracefullyOnce(timeoutMs);
    return this.gracefulClose;
  }

  private async closeGracefullyOnce(timeoutMs: number): Promise<void> {
    if (this.ended) {
      return;
    }
    try {
      this.send({ type: FrameType.Close });
      this.flush();
    } catch {
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.closedWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private onMessage(data: unknown): void {
    if (this.ended) {
      return;
    }
    this.receivedSinceCheck = true;
    try {
      if (typeof data === 'string') {
        throw new ZaichikProtocolError(ErrorCode.ProtocolViolation, 'the server sent a text WebSocket message');
      }
      this.decoder.push(toBytes(data));
      for (let frame = this.decoder.next(); frame !== undefined; frame = this.decoder.next()) {
        if (this.owner === null) {
          this.backlog.push(frame);
          continue;
        }
        this.handle(frame);
        if (this.ended) {
          return;
        }
      }
    } catch (error) {
      this.terminate(error as Error);
    }
  }

  private handle(frame: Frame): void {
    if (frame.type === FrameType.Ping) {
      try {
        this.send({ type: FrameType.Pong, nonce: frame.nonce });
      } catch {
        // Ended meanwhile.
      }
      return;
    }
    try {
      this.owner!.dispatch(this, frame);
    } catch (error) {
      this.terminate(error as Error);
    }
  }

  private onClose(event: { code?: number; reason?: string }): void {
    this.closeEvent = event;
    const waiters = this.closedWaiters;
    this.closedWaiters = [];
    for (const wake of waiters) {
      wake();
    }
    if (!this.ended) {
      this.ended = true;
      this.stopHeartbeat();
      if (this.decoder.buffered > 0) {
        this.endReason = new ZaichikConnectionError(
          `connection to Zaichik at ${this.url} ended inside a frame (${this.decoder.buffered} bytes left)`,
        );
      }
    }
    this.report();
  }

  /** The WebSocket close code and reason, when the close event came. */
  describeClose(): string {
    return describeClose(this.closeEvent);
  }

  private report(): void {
    if (this.reported || this.owner === null) {
      return;
    }
    this.reported = true;
    this.owner.onConnectionEnded(this, this.endReason);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== null) {
      clearInterval(this.heartbeat);
      this.heartbeat = null;
    }
  }

  /**
   * Runs every ping interval. Pings when this interval saw nothing sent (so the server's idle timeout does not close a
   * quiet connection) or nothing received (so a live server has something to answer). Declares the server dead after
   * maxPingsOutstanding + 1 intervals in a row with nothing from it.
   */
  private onHeartbeat(): void {
    if (this.ended) {
      return;
    }
    const received = this.receivedSinceCheck;
    this.receivedSinceCheck = false;
    const silent = received ? 0 : ++this.silentIntervals;
    if (received) {
      this.silentIntervals = 0;
    }
    if (silent > this.settings.maxPingsOutstanding) {
      const seconds = (this.pingIntervalMs * silent) / 1000;
      this.terminate(
        new ZaichikConnectionError(
          `connection to Zaichik at ${this.url} is dead: nothing arrived for ${seconds} s and ${silent - 1} Pings went unanswered`,
        ),
      );
      return;
    }
    const sent = this.sentSinceCheck;
    this.sentSinceCheck = false;
    if (!sent || !received) {
      try {
        this.send({ type: FrameType.Ping, nonce: this.owner!.nextPingNonce() });
      } catch {
        // Closed meanwhile; whoever closed it reports why.
      }
    }
  }
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) {
    return new Uint8Array(data);
  }
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  throw new ZaichikProtocolError(ErrorCode.ProtocolViolation, 'the server sent a WebSocket message that is not binary');
}
