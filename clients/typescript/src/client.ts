import { MAX_STRING_BYTES, utf8 } from './codec.js';
import { Connection, type ConnectionOwner } from './connection.js';
import { ErrorCode, ZaichikConnectionError, ZaichikError, ZaichikProtocolError, ZaichikTimeoutError } from './errors.js';
import {
  AckPolicy,
  CommitMode,
  FrameType,
  StartKind,
  encodeFrame,
  frameTypeName,
  type AckFrame,
  type CommitFrame,
  type Frame,
  type NackFrame,
  type RedirectFrame,
} from './frames.js';
import { ZaichikHeaders, type ZaichikHeadersInit } from './headers.js';
import { TOMBSTONE_HEADER, ZaichikMessage } from './message.js';
import {
  checkTopic,
  reconnectDelay,
  resolveClientOptions,
  resolveSubscribeOptions,
  resolveTopicOptions,
  startOf,
  webSocketUrl,
  type ResolvedClientOptions,
  type ResolvedSubscribeOptions,
  type SubscribeOptions,
  type TopicOptions,
  type ZaichikClientOptions,
} from './options.js';
import { ZaichikSubscription, type SubscriptionOwner } from './subscription.js';

/** The server's answer to a publish. */
export interface PublishResult {
  /**
   * The stored message's sequence in its topic (the one its deliveries carry), or, for a duplicate, the sequence of the
   * original it repeats (-1 if the server reported none).
   */
  readonly sequence: number;
  /** True when the topic's compaction window dropped the message as a repeat of its key. */
  readonly duplicate: boolean;
  /** True when the message (or, for a duplicate, the original) was already committed to disk. */
  readonly durable: boolean;
}

/** Options of {@link ZaichikClient.publish}. */
export interface PublishOptions {
  /** The compaction key (a string is sent as UTF-8), or null/undefined for an unkeyed message. */
  key?: Uint8Array | string | null;
  /** The message's headers: a {@link ZaichikHeaders}, a plain object, or `[key, value]` pairs. */
  headers?: ZaichikHeadersInit | null;
}

/**
 * Messages a subscription missed while its client was disconnected: the topic no longer held them when the
 * subscription was restored, so it resumed at `lastMissed + 1`.
 */
export interface ZaichikSubscriptionGap {
  readonly topic: string;
  /** The first sequence it did not receive. */
  readonly firstMissed: number;
  /** The last sequence it did not receive. */
  readonly lastMissed: number;
  /** How many sequences were missed. */
  readonly count: number;
}

/** A cluster node's answer that another node leads a request's topic: the client reconnects there. */
export interface ZaichikRedirect {
  /** The topic the redirected request named. */
  readonly topic: string;
  /** The id of the node that leads it. */
  readonly leaderNode: string;
  /** The leader's WebSocket URL, where the client connects next. */
  readonly url: string;
}

/** The client's events and their listeners. */
export interface ZaichikClientEvents {
  /** The connection ended other than by close(); with reconnect on, the client reconnects next. */
  disconnected: (error: ZaichikConnectionError) => void;
  /** The client reconnected and restored its subscriptions. */
  reconnected: () => void;
  /** The server reported an error that belongs to no request (a Commit naming no subscription, why it closes...). */
  serverError: (error: ZaichikError) => void;
  /** A restored subscription could not resume right after the last message it received. */
  subscriptionGap: (gap: ZaichikSubscriptionGap) => void;
  /** A cluster node redirected a request to the node that leads its topic; `disconnected` and a reconnect there follow. */
  redirected: (redirect: ZaichikRedirect) => void;
}

/** Where the client's connection stands. */
export type ZaichikConnectionState = 'connected' | 'reconnecting' | 'closed';

interface PendingRequest {
  readonly id: number;
  readonly type: number;
  readonly topic: string;
  readonly bytes: Uint8Array;
  readonly deadline: number;
  sent: boolean;
  internal: boolean;
  resolve(ack: AckFrame): void;
  reject(error: Error): void;
  onSent?: () => void;
  onAck?: (ack: AckFrame) => void;
}

interface RequestHooks {
  onSent?: () => void;
  onAck?: (ack: AckFrame) => void;
}

type FrameMaker = (requestId: bigint, producerSequence: bigint) => Frame;

interface QueuedRequest {
  readonly type: number;
  readonly topic: string;
  readonly make: FrameMaker;
  readonly hooks: RequestHooks;
  resolve(ack: AckFrame): void;
  reject(error: Error): void;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A gate nobody waits on must not report an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function newProducerId(): bigint {
  const bytes = new Uint8Array(8);
  let id = 0n;
  while (id === 0n) {
    globalThis.crypto.getRandomValues(bytes);
    id = new DataView(bytes.buffer).getBigUint64(0);
  }
  return id;
}

const requestNames: Record<number, string> = {
  [FrameType.CreateTopic]: 'CreateTopic',
  [FrameType.Publish]: 'Publish',
  [FrameType.Subscribe]: 'Subscribe',
  [FrameType.Unsubscribe]: 'Unsubscribe',
};

/** A failure to connect that another node of the cluster may not have. */
function worthAnotherNode(error: unknown): boolean {
  return (
    error instanceof ZaichikConnectionError ||
    error instanceof ZaichikTimeoutError ||
    (error instanceof ZaichikError &&
      !(error instanceof ZaichikProtocolError) &&
      (error.code === ErrorCode.TooManyConnections || error.code === ErrorCode.ServerShuttingDown))
  );
}

/** Why a connection is being ended by the client to reach another node. */
type RerouteKind = 'redirect' | 'noLeader';

/**
 * A client of a Zaichik broker over WebSocket. Any number of publishes, subscriptions and commits may run at once;
 * they share one connection. When the connection is lost the client opens another (see `reconnect`): calls made
 * meanwhile wait for it, subscriptions are restored where they left off (durable consumers and groups resume
 * server-side), and publishes whose Ack was lost are sent again and stored at most once (see `idempotence`).
 *
 * Against a cluster, the client follows the nodes: a Redirect answer makes it reconnect to the node that leads the
 * request's topic and send the request there; a NoLeader answer makes it reconnect after the backoff and send it again.
 */
export class ZaichikClient implements ConnectionOwner, SubscriptionOwner {
  /** The broker's WebSocket URL (the main one, given to connect). */
  readonly url: string;
  /** The options in force. */
  readonly options: ResolvedClientOptions;
  /** The producer id announced in Hello; 0n without idempotence. */
  readonly producerId: bigint;
  /** The protocol version the server announced in its last Hello. */
  serverProtocolVersion = 0;
  /** The idle timeout the server announced, in ms; null: none. */
  serverIdleTimeoutMs: number | null = null;

  private readonly pending = new Map<number, PendingRequest>();
  private readonly admission: QueuedRequest[] = [];
  private readonly subscriptions = new Map<string, ZaichikSubscription>();
  private readonly confirmations = new Map<bigint, Deferred<void>>();
  private readonly listeners: { [K in keyof ZaichikClientEvents]: Set<ZaichikClientEvents[K]> } = {
    disconnected: new Set(),
    reconnected: new Set(),
    serverError: new Set(),
    subscriptionGap: new Set(),
    redirected: new Set(),
  };
  private readonly sleeps = new Set<{ timer: ReturnType<typeof setTimeout>; wake: () => void }>();
  private lastRequestId = 0;
  private producerSequence = 0n;
  private pingNonce = 0n;
  private positionFailure: ZaichikError | null = null;
  /** The connection being restored or open; its end is noticed. */
  private current: Connection | null = null;
  /** The connection open to requests. */
  private connection: Connection | null = null;
  private gate = deferred<void>();
  private gateOpen = false;
  private connectionState: ZaichikConnectionState = 'reconnecting';
  private closedReason: (() => Error) | null = null;
  private closing = false;
  private stopped = false;
  private reconnecting: Promise<void> | null = null;
  private closePromise: Promise<void> | null = null;
  private sweep: ReturnType<typeof setInterval> | null = null;
  /** [url, ...servers] without repeats: where connection attempts go, round robin. */
  private readonly endpoints: readonly string[];
  /** The endpoint connection attempts go to while no leader is cached; the next one when an attempt fails. */
  private endpointIndex = 0;
  /** The leader the last Redirect named: connection attempts go there until one fails. */
  private leaderUrl: string | null = null;
  /** The URL of the connection in use, or of the last one. */
  private activeUrl: string;
  /** The connection the client is ending to reach another node, and why. */
  private rerouting: { readonly connection: Connection; readonly reason: ZaichikConnectionError } | null = null;
  /** Connections being ended to reach another node: done once each has ended and its end was handled. */
  private readonly drains = new WeakMap<Connection, Promise<void>>();
  /** What the next reconnect follows: a Redirect (at once, the first of a series) or NoLeader (after the backoff). */
  private reroute: RerouteKind | null = null;
  /** Reroutes in a row without a request answered successfully between: their backoff grows with it. */
  private rerouteStreak = 0;

  private constructor(url: string, options: ResolvedClientOptions) {
    this.url = url;
    this.options = options;
    this.producerId = options.idempotence ? (options.producerId ?? newProducerId()) : 0n;
    this.endpoints = [...new Set([url, ...options.servers])];
    this.activeUrl = url;
  }

  /**
   * Connects to a broker's WebSocket endpoint (`ws://host:port/ws`, `wss://…`) and performs the Hello handshake.
   * With `servers`, tries them in turn when the main URL cannot be reached (see {@link ZaichikClientOptions.servers}).
   * Rejects with {@link ZaichikConnectionError} when the broker is unreachable or closes during the handshake, and
   * {@link ZaichikError} when it refuses (AuthenticationFailed, UnsupportedVersion, TooManyConnections).
   */
  static async connect(url: string | URL, options: ZaichikClientOptions = {}): Promise<ZaichikClient> {
    const client = new ZaichikClient(webSocketUrl(url), resolveClientOptions(options));
    client.adopt(await client.openFirst());
    return client;
  }

  /**
   * The first connection: the main URL, then each of `servers` in turn while the failures are ones another node may not
   * have (unreachable, TooManyConnections, ServerShuttingDown).
   */
  private async openFirst(): Promise<Connection> {
    let lastFailure: unknown = null;
    for (let i = 0; i < this.endpoints.length; i++) {
      try {
        const connection = await Connection.open(this.connectionSettings(this.endpoints[i]!));
        this.endpointIndex = i;
        return connection;
      } catch (error) {
        if (this.endpoints.length === 1 || !worthAnotherNode(error)) {
          throw error;
        }
        lastFailure = error;
      }
    }
    const last = lastFailure as Error;
    throw new ZaichikConnectionError(
      `could not connect to any of the ${this.endpoints.length} Zaichik servers (${this.endpoints.join(', ')}); the last: ${last.message}`,
      { cause: last },
    );
  }

  /** Where the connection stands. */
  get state(): ZaichikConnectionState {
    return this.connectionState;
  }

  /** True while connected. */
  get isConnected(): boolean {
    return this.connectionState === 'connected';
  }

  /**
   * The WebSocket URL of the node the client is connected to; while it reconnects, of the one it was last connected to.
   * It differs from {@link url} after a failover to one of `servers` or a Redirect to a cluster's leader.
   */
  get currentUrl(): string {
    return this.activeUrl;
  }

  /** Adds a listener; returns a function that removes it. Listeners run synchronously: keep them short. */
  on<K extends keyof ZaichikClientEvents>(event: K, listener: ZaichikClientEvents[K]): () => void {
    (this.listeners[event] as Set<ZaichikClientEvents[K]>).add(listener);
    return () => this.off(event, listener);
  }

  /** Removes a listener. */
  off<K extends keyof ZaichikClientEvents>(event: K, listener: ZaichikClientEvents[K]): void {
    (this.listeners[event] as Set<ZaichikClientEvents[K]>).delete(listener);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Topics and publishing

  /**
   * Creates a topic, or confirms one that already exists with the same settings. Rejects with {@link ZaichikError}
   * (for example TopicSettingsConflict) when the server refuses.
   */
  async createTopic(topic: string, options: TopicOptions = {}): Promise<void> {
    checkTopic(topic);
    const o = resolveTopicOptions(options);
    await this.request(FrameType.CreateTopic, topic, (requestId) => ({
      type: FrameType.CreateTopic,
      requestId,
      topic,
      ...o,
    }));
  }

  /**
   * Publishes one message and resolves when the server has stored it (or dropped it as a duplicate within the topic's
   * compaction window). A string payload is sent as UTF-8. The payload must not change until the promise settles.
   */
  async publish(topic: string, payload: Uint8Array | string, options: PublishOptions = {}): Promise<PublishResult> {
    checkTopic(topic);
    const body = typeof payload === 'string' ? utf8(payload) : payload;
    if (!(body instanceof Uint8Array)) {
      throw new TypeError('payload must be a Uint8Array or a string');
    }
    const key = options.key === null || options.key === undefined ? null : typeof options.key === 'string' ? utf8(options.key) : options.key;
    const headers =
      options.headers === null || options.headers === undefined ? new Uint8Array(0) : ZaichikHeaders.from(options.headers).toBlock();
    this.checkMessageSize(topic, key, body, headers);
    const ack = await this.request(FrameType.Publish, topic, (requestId, producerSequence) => ({
      type: FrameType.Publish,
      requestId,
      topic,
      key,
      payload: body,
      producerSequence,
      headers,
    }));
    return {
      sequence: ack.sequence === null ? -1 : Number(ack.sequence),
      duplicate: ack.duplicate,
      durable: ack.durable,
    };
  }

  /**
   * Deletes a key from a topic that keeps the latest value per key: publishes a tombstone (an empty message with that
   * key and the header `zaichik-tombstone`). On other topics it is an ordinary message.
   */
  publishTombstone(topic: string, key: Uint8Array | string): Promise<PublishResult> {
    return this.publish(topic, new Uint8Array(0), { key, headers: [[TOMBSTONE_HEADER, '']] });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Subscriptions

  /**
   * Subscribes this connection to a topic and resolves when the server has acknowledged it, so a message published
   * afterwards is delivered to it. Iterate the returned subscription to read messages. One subscription per topic.
   * Rejects with {@link ZaichikError}: AlreadySubscribed, TopicNotFound, ConsumerPositionLost, NotAuthorized…
   */
  async subscribe(topic: string, options: SubscribeOptions = {}): Promise<ZaichikSubscription> {
    checkTopic(topic);
    const resolved = resolveSubscribeOptions(options);
    this.throwIfClosed();
    if (this.subscriptions.has(topic)) {
      throw new ZaichikError(ErrorCode.AlreadySubscribed, `this connection already subscribes to '${topic}'`);
    }
    // Registered before the Subscribe goes out, so no message that follows the Ack finds it missing.
    const subscription = new ZaichikSubscription(this, topic, resolved);
    this.subscriptions.set(topic, subscription);
    try {
      await this.request(
        FrameType.Subscribe,
        topic,
        (requestId) => subscribeFrame(requestId, topic, resolved, resolved.fromKind, resolved.position),
        { onSent: () => (subscription.sent = true), onAck: (ack) => subscription.acknowledge(ack) },
      );
      return subscription;
    } catch (error) {
      this.forget(subscription);
      if (subscription.sent && error instanceof ZaichikTimeoutError) {
        // The server may subscribe after all; tell it not to. Its answer matches no pending request.
        this.trySend({ type: FrameType.Unsubscribe, requestId: 0n, topic });
      }
      throw error;
    }
  }

  /**
   * Unsubscribes from a topic and resolves when the server has acknowledged it; the subscription's iteration then ends
   * after the messages already received. Rejects with {@link ZaichikError} NotSubscribed.
   */
  async unsubscribe(topic: string): Promise<void> {
    checkTopic(topic);
    try {
      await this.request(FrameType.Unsubscribe, topic, (requestId) => ({ type: FrameType.Unsubscribe, requestId, topic }));
    } catch (error) {
      if (error instanceof ZaichikError && error.code === ErrorCode.NotSubscribed) {
        this.forgetTopic(topic);
      }
      throw error;
    }
    this.forgetTopic(topic);
  }

  /** @internal Unsubscribes on behalf of {@link ZaichikSubscription.unsubscribe}; never throws. */
  async release(subscription: ZaichikSubscription): Promise<void> {
    if (this.subscriptions.get(subscription.topic) === subscription && this.closedReason === null && !this.closing) {
      // Not restored if the connection is lost meanwhile.
      subscription.releasing = true;
      try {
        await this.unsubscribe(subscription.topic);
      } catch {
        // Lost connection, timeout or NotSubscribed: either way this subscription is over.
      }
    }
    this.forget(subscription);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Commit, Nack, confirm

  /**
   * Acknowledges a message and every earlier delivery of its topic (Commit mode 1); for a consumer group member or a
   * subscription with ackWaitMs/maxDeliver/deadLetterTopic, that message alone (mode 2). Commit has no answer: the
   * promise resolves once the Commit is queued (waiting for a connection while the client reconnects).
   */
  async commit(message: ZaichikMessage): Promise<void> {
    return this.isRedelivering(message.topic)
      ? this.commitOne(message.topic, message.sequence)
      : this.commitUpTo(message.topic, message.sequence);
  }

  /** Acknowledges every message delivered on this connection so far, across all subscriptions (a bare Commit). */
  async commitAll(): Promise<void> {
    for (const subscription of this.subscriptions.values()) {
      subscription.noteCommitted(subscription.lastReceived);
    }
    return this.sendAckLike({ type: FrameType.Commit, mode: CommitMode.Bare, topic: null, sequence: 0n });
  }

  /**
   * Acknowledges the deliveries of a topic up to and including a sequence (mode 1); for a durable consumer also the
   * position the server stores. Nothing is sent for a subscription with ackPolicy 'none'.
   */
  async commitUpTo(topic: string, sequence: number): Promise<void> {
    checkTopic(topic);
    checkSequence(sequence);
    const subscription = this.subscriptions.get(topic);
    if (subscription !== undefined) {
      if (subscription.options.ackPolicy === AckPolicy.None) {
        // Nothing to commit: the server would answer InvalidArgument.
        return;
      }
      subscription.noteCommitted(sequence);
    }
    return this.sendAckLike({ type: FrameType.Commit, mode: CommitMode.UpTo, topic, sequence: BigInt(sequence) });
  }

  /** Group members and subscriptions with redelivery: acknowledges exactly one delivery (mode 2), in any order. */
  async commitOne(topic: string, sequence: number): Promise<void> {
    checkTopic(topic);
    checkSequence(sequence);
    if (!this.isRedelivering(topic)) {
      throw new Error(`only a consumer group member commits one sequence; the subscription to '${topic}' commits up to a sequence`);
    }
    return this.sendAckLike({ type: FrameType.Commit, mode: CommitMode.Single, topic, sequence: BigInt(sequence) });
  }

  /**
   * Group members and subscriptions with redelivery: gives a message back; it is delivered again (with its delivery
   * count one higher) once `delayMs` has passed. A Nack of a message no longer in flight is reported as a serverError.
   */
  async nack(message: ZaichikMessage, delayMs = 0): Promise<void> {
    if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > 0xffffffff) {
      throw new RangeError('a Nack delay must be a whole number of ms from 0 to about 49.7 days');
    }
    if (!this.isRedelivering(message.topic)) {
      throw new Error(`only a consumer group member gives a message back; the subscription to '${message.topic}' is not one`);
    }
    return this.sendAckLike({ type: FrameType.Nack, topic: message.topic, sequence: BigInt(message.sequence), delayMs });
  }

  /**
   * Resolves once the server has handled every Commit sent before the call: for a durable consumer on an 'always'
   * topic, once the positions are on disk. Sends a Ping, which the server answers only then. Rejects with
   * {@link ZaichikError} CommitNotDurable when the server could not write them, {@link ZaichikTimeoutError}, or
   * {@link ZaichikConnectionError} when the connection ends first.
   */
  async confirmCommits(): Promise<void> {
    this.throwIfClosed();
    const nonce = this.nextPingNonce();
    const answered = deferred<void>();
    this.confirmations.set(nonce, answered);
    try {
      const connection = await this.waitForConnection();
      connection.send({ type: FrameType.Ping, nonce });
      await this.withTimeout(
        answered.promise,
        () => new ZaichikTimeoutError(`the server did not confirm the Commits within ${this.timeoutText()}`),
      );
    } finally {
      this.confirmations.delete(nonce);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Close

  /**
   * Stops reconnecting, sends Close, waits up to closeTimeoutMs for the server to answer what is in flight and close,
   * then closes the WebSocket. Requests still unanswered fail with {@link ZaichikConnectionError} ("connection
   * closed"); subscriptions end. Safe to call more than once.
   */
  close(): Promise<void> {
    this.closePromise ??= this.closeOnce();
    return this.closePromise;
  }

  private async closeOnce(): Promise<void> {
    this.closing = true;
    this.stop();
    const connection = this.current;
    if (connection !== null && !connection.hasEnded) {
      await connection.closeGracefully(this.options.closeTimeoutMs);
    }
    this.shutdown(() => new ZaichikConnectionError('connection closed'), true);
    await this.reconnecting?.catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // ConnectionOwner

  /** @internal */
  nextPingNonce(): bigint {
    this.pingNonce = (this.pingNonce + 1n) & ((1n << 64n) - 1n);
    return this.pingNonce;
  }

  /** @internal Handles one frame a connection read (Pings are answered by the connection). */
  dispatch(connection: Connection, frame: Frame): void {
    switch (frame.type) {
      case FrameType.Ack:
        this.complete(Number(frame.requestId), frame, null);
        return;
      case FrameType.Message: {
        // A message for a topic no longer subscribed here raced the Unsubscribe; it has nowhere to go.
        const subscription = this.subscriptions.get(frame.topic);
        if (subscription === undefined) {
          return;
        }
        const message = new ZaichikMessage(
          frame.topic,
          Number(frame.sequence),
          Number(frame.timestampMs),
          frame.key === null ? null : frame.key.slice(),
          frame.payload.slice(),
          frame.headers.slice(),
          frame.deliveryCount,
        );
        if (
          !subscription.deliver(message) &&
          subscription.committedUpTo >= message.sequence &&
          subscription.options.ackPolicy === AckPolicy.Explicit &&
          this.usable(connection)
        ) {
          // A durable consumer's redelivery of a message the application already committed on the last connection:
          // commit it again here so the server's window moves on.
          try {
            connection.send({ type: FrameType.Commit, mode: CommitMode.UpTo, topic: frame.topic, sequence: frame.sequence });
          } catch {
            // That connection is gone; the next one restores the subscription.
          }
        }
        return;
      }
      case FrameType.Error: {
        if (frame.requestId !== null && frame.code === ErrorCode.NoLeader && this.noLeader(connection, frame.requestId, frame.text)) {
          return;
        }
        const error = new ZaichikError(frame.code, frame.text);
        if (frame.requestId !== null) {
          this.complete(Number(frame.requestId), null, error);
          return;
        }
        if (frame.code === ErrorCode.CommitNotDurable) {
          // Reported right before the Pong that would have confirmed the Commits.
          this.positionFailure = error;
        }
        connection.lastServerError = error;
        this.emit('serverError', error);
        return;
      }
      case FrameType.Pong:
        this.confirmed(frame.nonce);
        return;
      case FrameType.Redirect:
        this.redirected(connection, frame);
        return;
      default:
        throw new ZaichikProtocolError(
          ErrorCode.ProtocolViolation,
          `the server sent a ${frameTypeName(frame.type)} frame, which only clients send`,
        );
    }
  }

  /** @internal Called once per connection when it ends. */
  onConnectionEnded(connection: Connection, failure: Error | null): void {
    const rerouted = this.rerouting?.connection === connection ? this.rerouting : null;
    if (rerouted !== null) {
      this.rerouting = null;
    }
    if (connection !== this.current) {
      return;
    }
    this.current = null;
    this.connection = null;
    if (this.closedReason === null && !this.closing) {
      this.connectionState = 'reconnecting';
      this.closeGate();
    }
    if (this.closing || this.closedReason !== null) {
      return;
    }
    const lost = rerouted?.reason ?? this.connectionLost(connection, failure);
    this.emit('disconnected', lost);
    if (!this.options.reconnect.enabled) {
      this.shutdown(() => this.connectionLost(connection, failure), false);
      return;
    }
    this.requestsDisconnected(
      () => new ZaichikConnectionError(`${lost.message}; the request was sent, and whether the server handled it is unknown`, { cause: lost.cause }),
    );
    this.failConfirmations(new ZaichikConnectionError(`${lost.message}; the Commits could not be confirmed`, { cause: lost.cause }));
    if (this.reconnecting === null) {
      const loop: Promise<void> = this.reconnectLoop(lost).finally(() => {
        if (this.reconnecting === loop) {
          this.reconnecting = null;
        }
      });
      this.reconnecting = loop;
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Requests

  /**
   * Sends one request and resolves with its Ack; an Error answer rejects with {@link ZaichikError}. Requests are
   * admitted first come, first served; while the client reconnects a request is registered and waits, unsent, for the
   * next connection.
   */
  private request(type: number, topic: string, make: FrameMaker, hooks: RequestHooks = {}): Promise<AckFrame> {
    this.throwIfClosed();
    if (this.admission.length === 0 && this.pending.size < this.options.maxPendingRequests) {
      return new Promise<AckFrame>((resolve, reject) => this.stage(type, topic, make, hooks, resolve, reject));
    }
    return new Promise<AckFrame>((resolve, reject) => this.admission.push({ type, topic, make, hooks, resolve, reject }));
  }

  /** Registers a request under a fresh id and sends it when there is a connection. Publishes get their producer sequence here. */
  private stage(
    type: number,
    topic: string,
    make: FrameMaker,
    hooks: RequestHooks,
    resolve: (ack: AckFrame) => void,
    reject: (error: Error) => void,
  ): void {
    const id = this.lastRequestId + 1;
    const producerSequence = type === FrameType.Publish && this.producerId !== 0n ? this.producerSequence + 1n : 0n;
    // Encoding errors reach the caller before anything is registered.
    const bytes = encodeFrame(make(BigInt(id), producerSequence));
    this.lastRequestId = id;
    if (producerSequence !== 0n) {
      this.producerSequence = producerSequence;
    }
    const request: PendingRequest = {
      id,
      type,
      topic,
      bytes,
      deadline: this.deadline(),
      sent: false,
      internal: false,
      resolve,
      reject,
      ...hooks,
    };
    this.pending.set(id, request);
    this.startSweep();
    const connection = this.connection;
    if (connection !== null) {
      try {
        connection.sendBytes(bytes);
        request.sent = true;
        request.onSent?.();
      } catch (error) {
        if (!(error instanceof ZaichikConnectionError) || !this.options.reconnect.enabled || this.closedReason !== null || this.closing) {
          this.pending.delete(id);
          throw error;
        }
        // The connection ended a moment ago; the request waits for the next one.
      }
    }
  }

  private admitNext(): void {
    while (this.admission.length > 0 && this.pending.size < this.options.maxPendingRequests) {
      const next = this.admission.shift()!;
      try {
        this.stage(next.type, next.topic, next.make, next.hooks, next.resolve, next.reject);
      } catch (error) {
        next.reject(error as Error);
      }
    }
  }

  private complete(id: number, ack: AckFrame | null, error: Error | null): void {
    const request = this.pending.get(id);
    if (request === undefined) {
      return;
    }
    this.pending.delete(id);
    if (ack !== null) {
      if (!request.internal) {
        // The node answering is the right one for this request: the next Redirect starts a new series.
        this.rerouteStreak = 0;
      }
      request.onAck?.(ack);
      request.resolve(ack);
    } else {
      request.reject(error!);
    }
    this.admitNext();
  }

  private deadline(): number {
    const timeout = this.options.requestTimeoutMs;
    return timeout > 0 && Number.isFinite(timeout) ? Date.now() + timeout : Number.POSITIVE_INFINITY;
  }

  private startSweep(): void {
    const timeout = this.options.requestTimeoutMs;
    if (this.sweep !== null || !(timeout > 0 && Number.isFinite(timeout)) || this.stopped) {
      return;
    }
    const interval = Math.min(Math.max(timeout / 8, 10), 1000);
    this.sweep = setInterval(() => this.expireOverdue(), interval);
  }

  private expireOverdue(): void {
    if (this.pending.size === 0) {
      if (this.sweep !== null) {
        clearInterval(this.sweep);
        this.sweep = null;
      }
      return;
    }
    const now = Date.now();
    const overdue = [...this.pending.values()].filter((request) => request.deadline <= now);
    for (const request of overdue) {
      this.pending.delete(request.id);
      request.reject(
        new ZaichikTimeoutError(
          `${requestNames[request.type] ?? frameTypeName(request.type)} request ${request.id} for '${request.topic}' got no answer within ${this.timeoutText()}`,
        ),
      );
    }
    if (overdue.length > 0) {
      this.admitNext();
    }
  }

  /**
   * The connection that carried the sent requests ended and another will follow. Requests that can be sent again
   * safely (idempotent publishes, CreateTopic, a Subscribe not yet answered) become unsent; an Unsubscribe is done (the
   * next connection starts without the subscription); the rest fail: a publish without idempotence and the client's
   * own requests.
   */
  private requestsDisconnected(lost: () => Error): void {
    for (const request of [...this.pending.values()]) {
      if (!request.sent) {
        continue;
      }
      if (request.internal || (request.type === FrameType.Publish && !this.options.idempotence)) {
        this.pending.delete(request.id);
        request.reject(lost());
      } else if (request.type === FrameType.Unsubscribe) {
        this.pending.delete(request.id);
        request.resolve({ type: FrameType.Ack, requestId: BigInt(request.id), sequence: null, duplicate: false, durable: false });
      } else {
        request.sent = false;
      }
    }
    this.admitNext();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Commits and Nacks: frames without a reply, sent on whatever connection is current

  private async sendAckLike(frame: CommitFrame | NackFrame): Promise<void> {
    this.throwIfClosed();
    const bytes = encodeFrame(frame);
    for (;;) {
      const open = this.connection;
      const connection = open !== null && !open.hasEnded ? open : await this.waitForConnection();
      try {
        connection.sendBytes(bytes);
        return;
      } catch (error) {
        if (!(error instanceof ZaichikConnectionError) || !this.options.reconnect.enabled || this.closedReason !== null || this.closing) {
          throw error;
        }
        // Lost a moment ago: wait for the next connection.
      }
    }
  }

  private trySend(frame: Frame): void {
    try {
      this.connection?.send(frame);
    } catch {
      // Nothing to undo on a connection that is gone.
    }
  }

  private confirmed(nonce: bigint): void {
    const failure = this.positionFailure;
    this.positionFailure = null;
    const answered = this.confirmations.get(nonce);
    if (answered !== undefined) {
      this.confirmations.delete(nonce);
      if (failure === null) {
        answered.resolve();
      } else {
        answered.reject(failure);
      }
    }
  }

  private failConfirmations(reason: Error): void {
    for (const [nonce, answered] of [...this.confirmations]) {
      this.confirmations.delete(nonce);
      answered.reject(reason);
    }
  }

  private isRedelivering(topic: string): boolean {
    return this.subscriptions.get(topic)?.options.redelivers ?? false;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Connections

  private connectionSettings(url: string) {
    return {
      url,
      token: this.options.token,
      producerId: this.producerId,
      connectTimeoutMs: this.options.connectTimeoutMs,
      pingIntervalMs: this.options.pingIntervalMs,
      maxPingsOutstanding: this.options.maxPingsOutstanding,
      maxFrameSize: this.options.maxFrameSize,
      webSocketFactory: this.options.webSocketFactory,
    };
  }

  private adopt(connection: Connection): void {
    this.current = connection;
    this.activeUrl = connection.url;
    this.connection = connection;
    this.connectionState = 'connected';
    this.serverProtocolVersion = connection.serverProtocolVersion;
    this.serverIdleTimeoutMs = connection.serverIdleTimeoutMs;
    connection.start(this);
    this.openGate();
  }

  private openGate(): void {
    this.gateOpen = true;
    this.gate.resolve();
  }

  /** Calls made from now on wait for the next connection (a gate that never opened stays the one they wait on). */
  private closeGate(): void {
    if (this.gateOpen) {
      this.gate = deferred<void>();
      this.gateOpen = false;
    }
  }

  /** Waits until connected; throws when the client closes or the request timeout passes. */
  private async waitForConnection(): Promise<Connection> {
    const timeout = this.options.requestTimeoutMs;
    const limited = timeout > 0 && Number.isFinite(timeout);
    const started = Date.now();
    for (;;) {
      this.throwIfClosed();
      if (this.connection !== null && !this.connection.hasEnded) {
        return this.connection;
      }
      const left = limited ? timeout - (Date.now() - started) : Number.POSITIVE_INFINITY;
      if (left <= 0) {
        throw new ZaichikTimeoutError(`not connected to Zaichik at ${this.activeUrl} within ${this.timeoutText()}`);
      }
      const gate = this.gate.promise;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        gate.then(() => false),
        new Promise<boolean>((resolve) => {
          if (Number.isFinite(left)) {
            timer = setTimeout(() => resolve(true), left);
          }
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        throw new ZaichikTimeoutError(`not connected to Zaichik at ${this.activeUrl} within ${this.timeoutText()}`);
      }
    }
  }

  private async withTimeout<T>(promise: Promise<T>, timeoutError: () => Error): Promise<T> {
    const timeout = this.options.requestTimeoutMs;
    if (!(timeout > 0 && Number.isFinite(timeout))) {
      return promise;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(timeoutError()), timeout);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Opens connections until one is restored: waits the backoff, connects, restores the subscriptions, sends again what
   * is pending, in the order it was made, and only then lets new requests through. Attempts go to the leader a Redirect
   * named, else to the endpoints round robin (the next one after an attempt that failed).
   */
  private async reconnectLoop(lost: Error): Promise<void> {
    const reconnect = this.options.reconnect;
    let lastFailure: Error = lost;
    let failures = 0;
    while (!this.stopped) {
      const maxAttempts = reconnect.enabled ? reconnect.maxAttempts : 1;
      if (maxAttempts > 0 && failures >= maxAttempts) {
        const failure = lastFailure;
        const message = `gave up connecting to Zaichik at ${this.endpoints.join(', ')} after ${maxAttempts} attempt${maxAttempts === 1 ? '' : 's'}: ${failure.message}`;
        this.shutdown(() => new ZaichikConnectionError(message, { cause: failure }), false);
        return;
      }
      await this.sleep(this.rerouteDelay() ?? reconnectDelay(reconnect, failures + 1));
      if (this.stopped) {
        return;
      }
      const url = this.leaderUrl ?? this.endpoints[this.endpointIndex]!;
      try {
        const connection = await Connection.open(this.connectionSettings(url));
        if ((await this.restore(connection)) && this.usable(connection)) {
          // From here on, the end of this connection starts another loop.
          this.reconnecting = null;
          this.emit('reconnected');
          return;
        }
        // Lost, or being left for another node (a Redirect, NoLeader): this loop goes on once that end is handled.
        await this.drains.get(connection);
        if (this.reroute === null) {
          failures++;
          lastFailure = new ZaichikConnectionError(`connection to Zaichik at ${url} was lost while it was being restored`);
        }
      } catch (error) {
        if (this.stopped) {
          return;
        }
        if (error instanceof ZaichikError && error.code === ErrorCode.UnsupportedVersion) {
          this.shutdown(() => new ZaichikConnectionError(`could not connect to Zaichik at ${url}: ${error.message}`, { cause: error }), false);
          return;
        }
        if (!(error instanceof ZaichikError) && !(error instanceof ZaichikConnectionError) && !(error instanceof ZaichikTimeoutError)) {
          this.shutdown(() => error as Error, false);
          return;
        }
        failures++;
        this.attemptFailed(url);
        lastFailure = error;
      }
    }
  }

  /** An attempt to connect to `url` failed: the cached leader is forgotten, or the round robin moves on. */
  private attemptFailed(url: string): void {
    if (this.leaderUrl !== null) {
      if (this.leaderUrl === url) {
        this.leaderUrl = null;
      }
      return;
    }
    if (this.endpoints[this.endpointIndex] === url) {
      this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
    }
  }

  /**
   * The wait before following a reroute, or null when the reconnect follows none: no wait for the first Redirect of a
   * series, then the backoff of the series' length; NoLeader always waits the backoff.
   */
  private rerouteDelay(): number | null {
    const kind = this.reroute;
    this.reroute = null;
    if (kind === null) {
      return null;
    }
    const streak = Math.max(this.rerouteStreak, 1);
    if (kind === 'redirect') {
      return streak === 1 ? 0 : reconnectDelay(this.options.reconnect, streak - 1);
    }
    return reconnectDelay(this.options.reconnect, streak);
  }

  /**
   * A cluster node answered that another node leads the request's topic. The request was not carried out: it stays
   * pending (even a publish without idempotence) and goes to the leader, where the client reconnects now. With reconnect
   * off the request fails instead.
   */
  private redirected(connection: Connection, frame: RedirectFrame): void {
    const request = frame.requestId === null ? undefined : this.pending.get(Number(frame.requestId));
    if (frame.requestId !== null && request === undefined) {
      // Its request is over (timed out): nothing to carry there.
      return;
    }
    const target = redirectTarget(connection.url, frame.endpoint);
    const what = request === undefined ? `a request for '${frame.topic}'` : `${describeRequest(request)}`;
    if (!this.options.reconnect.enabled) {
      if (request !== undefined) {
        this.pending.delete(request.id);
        request.reject(
          new ZaichikConnectionError(
            `${what} was redirected to node ${frame.leaderNode} at ${frame.endpoint}, which leads '${frame.topic}'; reconnect is off, so the client does not follow`,
          ),
        );
        this.admitNext();
      }
      return;
    }
    this.keepForRetry(request);
    if (target === null) {
      // An endpoint the client cannot use: as if no leader were known.
      this.leaderUrl = null;
      this.leaveNode(
        connection,
        'noLeader',
        `left Zaichik at ${connection.url}: ${what} was redirected to node ${frame.leaderNode} at '${frame.endpoint}', which is not a WebSocket URL`,
      );
      return;
    }
    this.leaderUrl = target;
    if (this.rerouting?.connection !== connection) {
      // Once per connection left: the Redirects of the requests in flight with it follow.
      this.emit('redirected', { topic: frame.topic, leaderNode: frame.leaderNode, url: target });
    }
    this.leaveNode(
      connection,
      'redirect',
      `left Zaichik at ${connection.url} for node ${frame.leaderNode} at ${target}, which leads '${frame.topic}' (${what} was redirected)`,
    );
  }

  /**
   * A cluster node knows no leader for the request's topic now. The request was not carried out: it stays pending and is
   * sent again after a reconnect, with backoff, to the next endpoint. False when the answer is an ordinary error (no such
   * request any more, or reconnect is off).
   */
  private noLeader(connection: Connection, requestId: bigint, text: string): boolean {
    const request = this.pending.get(Number(requestId));
    if (request === undefined || !this.options.reconnect.enabled) {
      return false;
    }
    this.keepForRetry(request);
    this.leaderUrl = null;
    if (this.endpoints[this.endpointIndex] === connection.url) {
      this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
    }
    this.leaveNode(
      connection,
      'noLeader',
      `left Zaichik at ${connection.url}, which knows no leader for '${request.topic}' now (${describeRequest(request)}: ${text})`,
    );
    return true;
  }

  /**
   * Marks a redirected request to be sent again on the next connection. The client's own (a subscription being
   * restored) fail with the connection and are made anew; an Unsubscribe is done with it (the next connection starts
   * without the subscription).
   */
  private keepForRetry(request: PendingRequest | undefined): void {
    if (request !== undefined && !request.internal && request.type !== FrameType.Unsubscribe) {
      request.sent = false;
    }
  }

  /**
   * Leaves a node for another: nothing more is sent on the connection; it gets Close, so the node answers what it read
   * (Acks, or more Redirects) before it closes; then the client reconnects.
   */
  private leaveNode(connection: Connection, kind: RerouteKind, why: string): void {
    if (connection !== this.current || this.closing || this.closedReason !== null || this.rerouting?.connection === connection) {
      return;
    }
    this.rerouting = { connection, reason: new ZaichikConnectionError(why) };
    this.reroute = kind;
    this.rerouteStreak++;
    if (this.connection === connection) {
      this.connection = null;
    }
    this.connectionState = 'reconnecting';
    this.closeGate();
    const reason = this.rerouting.reason;
    this.drains.set(
      connection,
      connection.closeGracefully(this.options.closeTimeoutMs).then(() => connection.terminate(reason)),
    );
  }

  /** True while requests may go out on the connection. */
  private usable(connection: Connection): boolean {
    return !connection.hasEnded && this.current === connection && this.rerouting?.connection !== connection;
  }

  /** Brings a new connection to where the last one was. False when it ended meanwhile (the loop tries again). */
  private async restore(connection: Connection): Promise<boolean> {
    if (this.closedReason !== null || this.closing) {
      connection.terminate(null);
      return false;
    }
    this.current = connection;
    this.activeUrl = connection.url;
    this.serverProtocolVersion = connection.serverProtocolVersion;
    this.serverIdleTimeoutMs = connection.serverIdleTimeoutMs;
    connection.start(this);
    for (const subscription of [...this.subscriptions.values()]) {
      if (!subscription.acknowledged || subscription.releasing) {
        // One still being made is sent again as the pending request it is; one being released is not wanted.
        continue;
      }
      if (!(await this.resubscribe(connection, subscription))) {
        return false;
      }
    }
    return this.sendPendingAndOpen(connection);
  }

  /** Subscribes again on the new connection where the subscription left off. False when the connection ended. */
  private async resubscribe(connection: Connection, subscription: ZaichikSubscription): Promise<boolean> {
    const resume = subscription.resumePoint();
    const start = resume !== null ? { kind: StartKind.Sequence, position: BigInt(resume) } : startOf(subscription.options.from);
    const started = Date.now();
    for (;;) {
      if (this.stopped || !this.usable(connection)) {
        return false;
      }
      const id = ++this.lastRequestId;
      const bytes = encodeFrame(subscribeFrame(BigInt(id), subscription.topic, subscription.options, start.kind, start.position));
      const answered = new Promise<AckFrame>((resolve, reject) => {
        this.pending.set(id, {
          id,
          type: FrameType.Subscribe,
          topic: subscription.topic,
          bytes,
          deadline: this.deadline(),
          sent: true,
          internal: true,
          resolve,
          reject,
        });
      });
      this.startSweep();
      try {
        connection.sendBytes(bytes);
      } catch {
        this.pending.delete(id);
        return false;
      }
      try {
        const ack = await answered;
        const first = ack.sequence === null ? -1 : Number(ack.sequence);
        if (
          resume !== null &&
          first > resume &&
          (subscription.options.durableName === null || subscription.options.ackPolicy === AckPolicy.None)
        ) {
          this.emit('subscriptionGap', { topic: subscription.topic, firstMissed: resume, lastMissed: first - 1, count: first - resume });
        }
        return true;
      } catch (error) {
        const timeout = this.options.requestTimeoutMs;
        const retryFor = Math.min(timeout > 0 && Number.isFinite(timeout) ? timeout : 60_000, 60_000);
        if (error instanceof ZaichikError && error.code === ErrorCode.AlreadySubscribed && Date.now() - started < retryFor) {
          // The server has not yet noticed that the old connection is gone and still holds the durable name.
          await this.sleep(reconnectDelay(this.options.reconnect, 1));
          continue;
        }
        if (error instanceof ZaichikError && !(error instanceof ZaichikProtocolError)) {
          // The server no longer allows it (a token changed, the topic is quarantined...): that subscription ends.
          if (this.subscriptions.get(subscription.topic) === subscription) {
            this.subscriptions.delete(subscription.topic);
          }
          subscription.complete(error);
          return true;
        }
        return false;
      }
    }
  }

  /** Sends every request that waits for a connection, oldest first, then opens the connection to new ones. */
  private sendPendingAndOpen(connection: Connection): boolean {
    if (!this.usable(connection) || this.closedReason !== null) {
      return false;
    }
    // A Map iterates in insertion order, which is id order: the order the requests were made.
    for (const request of this.pending.values()) {
      if (request.sent) {
        continue;
      }
      try {
        connection.sendBytes(request.bytes);
      } catch {
        return false;
      }
      request.sent = true;
      request.onSent?.();
    }
    this.connection = connection;
    this.connectionState = 'connected';
    this.openGate();
    return true;
  }

  private connectionLost(connection: Connection, failure: Error | null): ZaichikConnectionError {
    if (failure instanceof ZaichikConnectionError) {
      return failure;
    }
    if (connection.lastServerError !== null) {
      return new ZaichikConnectionError(
        `connection to Zaichik at ${connection.url} was closed by the server: ${connection.lastServerError.message}`,
        { cause: connection.lastServerError },
      );
    }
    return failure === null
      ? new ZaichikConnectionError(`connection to Zaichik at ${connection.url} was closed by the server${connection.describeClose()}`)
      : new ZaichikConnectionError(`connection to Zaichik at ${connection.url} was lost: ${failure.message}`, { cause: failure });
  }

  /**
   * Ends the client for good, once: refuses new calls, fails pending requests, ends subscriptions (with the error
   * unless the client closed it), stops the connection. The first caller's reason wins.
   */
  private shutdown(reason: () => Error, graceful: boolean): void {
    if (this.closedReason !== null) {
      return;
    }
    this.closedReason = reason;
    this.connectionState = 'closed';
    const connection = this.current;
    this.current = null;
    this.connection = null;
    this.stop();
    connection?.terminate(null);
    for (const request of [...this.pending.values()]) {
      request.reject(reason());
    }
    this.pending.clear();
    for (const queued of this.admission.splice(0)) {
      queued.reject(reason());
    }
    this.failConfirmations(reason());
    this.openGate();
    const error = graceful ? null : reason();
    for (const subscription of [...this.subscriptions.values()]) {
      this.subscriptions.delete(subscription.topic);
      subscription.complete(error);
    }
  }

  private stop(): void {
    this.stopped = true;
    if (this.sweep !== null) {
      clearInterval(this.sweep);
      this.sweep = null;
    }
    for (const sleep of [...this.sleeps]) {
      clearTimeout(sleep.timer);
      sleep.wake();
    }
    this.sleeps.clear();
  }

  /** Waits, or less when the client stops. */
  private sleep(ms: number): Promise<void> {
    if (this.stopped) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.sleeps.delete(entry);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.sleeps.add(entry);
    });
  }

  private throwIfClosed(): void {
    if (this.closedReason !== null) {
      throw this.closedReason();
    }
    if (this.closing) {
      throw new ZaichikConnectionError('connection closed');
    }
  }

  private forgetTopic(topic: string): void {
    const subscription = this.subscriptions.get(topic);
    if (subscription !== undefined) {
      this.subscriptions.delete(topic);
      subscription.complete(null);
    }
  }

  private forget(subscription: ZaichikSubscription): void {
    if (this.subscriptions.get(subscription.topic) === subscription) {
      this.subscriptions.delete(subscription.topic);
    }
    subscription.complete(null);
  }

  private emit<K extends keyof ZaichikClientEvents>(event: K, ...args: Parameters<ZaichikClientEvents[K]>): void {
    for (const listener of [...this.listeners[event]]) {
      try {
        (listener as (...a: Parameters<ZaichikClientEvents[K]>) => void)(...args);
      } catch {
        // A listener's failure must not take down the connection or the reconnect.
      }
    }
  }

  private timeoutText(): string {
    return `${this.options.requestTimeoutMs / 1000} s`;
  }

  private checkMessageSize(topic: string, key: Uint8Array | null, payload: Uint8Array, headers: Uint8Array): void {
    if (key !== null && key.length > MAX_STRING_BYTES) {
      throw new RangeError(`key of ${key.length} bytes exceeds the limit of ${MAX_STRING_BYTES}`);
    }
    if (headers.length > this.options.maxHeadersSize) {
      throw new RangeError(`headers of ${headers.length} bytes exceed maxHeadersSize (${this.options.maxHeadersSize})`);
    }
    // Type, request id, topic, key flag (+ length + bytes), payload (length + bytes), producer sequence, headers.
    const frameSize = 1 + 8 + 2 + topic.length + 1 + (key !== null ? 2 + key.length : 0) + 4 + payload.length + 8 + 4 + headers.length;
    if (frameSize > this.options.maxFrameSize) {
      throw new RangeError(
        `message of ${payload.length} payload bytes makes a frame of ${frameSize} bytes; maxFrameSize is ${this.options.maxFrameSize}`,
      );
    }
  }
}

function checkSequence(sequence: number): void {
  if (!Number.isInteger(sequence) || sequence < 1) {
    throw new RangeError('a sequence is a whole number of at least 1');
  }
}

function subscribeFrame(
  requestId: bigint,
  topic: string,
  options: ResolvedSubscribeOptions,
  from: number,
  position: bigint,
): Frame {
  return {
    type: FrameType.Subscribe,
    requestId,
    topic,
    from: from as 0 | 1 | 2 | 3,
    position,
    prefetch: options.prefetch,
    durableName: options.durableName,
    ackPolicy: options.ackPolicy,
    group: options.group,
    ackWaitMs: options.ackWaitMs === null ? 0 : Math.max(1, Math.trunc(options.ackWaitMs)),
    maxDeliver: options.maxDeliver ?? 0,
    deadLetterTopic: options.deadLetterTopic,
  };
}

function describeRequest(request: { readonly id: number; readonly type: number; readonly topic: string }): string {
  return `${requestNames[request.type] ?? frameTypeName(request.type)} request ${request.id} for '${request.topic}'`;
}

/**
 * The WebSocket URL a Redirect's endpoint names: a full URL as it is; `host:port` with the scheme, path and query of
 * the connection that was redirected. Null for neither.
 */
export function redirectTarget(from: string, endpoint: string): string | null {
  try {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint)) {
      return webSocketUrl(endpoint);
    }
    if (endpoint.length === 0 || /[/?#@\s]/.test(endpoint)) {
      return null;
    }
    const base = new URL(from);
    return webSocketUrl(`${base.protocol}//${endpoint}${base.pathname}${base.search}`);
  } catch {
    return null;
  }
}
