import { DEFAULT_MAX_FRAME_SIZE, MAX_STRING_BYTES, utf8 } from './codec.js';
import { defaultWebSocketFactory, type WebSocketFactory } from './connection.js';
import {
  AckPolicy,
  Durability,
  StartKind,
  type AckPolicyValue,
  type DurabilityValue,
  type StartKindValue,
} from './frames.js';

/**
 * How a client reconnects after losing its connection: attempt n waits a random time between half and all of
 * `min(minDelayMs × 2^(n−1), maxDelayMs)` (exponential backoff with jitter).
 */
export interface ReconnectOptions {
  /** Reconnect at all. Default true; false: a lost connection ends the client (every call then fails). */
  enabled?: boolean;
  /** The base of the backoff. Default 100 ms. */
  minDelayMs?: number;
  /** The longest delay between attempts. Default 5000 ms. */
  maxDelayMs?: number;
  /** How many attempts in a row may fail before the client gives up and closes. Default 0: unlimited. */
  maxAttempts?: number;
}

/** Options of {@link ZaichikClient.connect}. Every field is optional. */
export interface ZaichikClientOptions {
  /**
   * More WebSocket URLs of nodes of the same cluster. The client connects to the main URL first; when a connection
   * attempt fails it tries the next of `[url, ...servers]`, round robin. Default none.
   */
  servers?: readonly (string | URL)[];
  /** The token sent in Hello, for a broker that requires authentication. Default none. */
  token?: string | null;
  /**
   * When true (the default), the client announces a producer id and numbers its publishes, so that a publish sent again
   * after a reconnect, because its Ack was lost, is stored at most once. When false, such a publish fails with
   * {@link ZaichikConnectionError} instead: it may or may not have been stored.
   */
  idempotence?: boolean;
  /** The producer id to announce (non-zero, up to 2^64 − 1); default a random one per client. Needs `idempotence`. */
  producerId?: bigint | number;
  /**
   * How long a request (createTopic, publish, subscribe, unsubscribe, confirmCommits) waits for its answer, and a call
   * made while reconnecting waits for the connection. Default 30000; 0 or Infinity: forever.
   */
  requestTimeoutMs?: number;
  /** How long opening the WebSocket and the Hello exchange may take. Default 10000. */
  connectTimeoutMs?: number;
  /** How long close() waits for the server to answer what is in flight and close. Default 5000. */
  closeTimeoutMs?: number;
  /** Reconnect with backoff; see {@link ReconnectOptions}. */
  reconnect?: ReconnectOptions;
  /**
   * How often the client Pings when it sent or received nothing else (at least three times per idle timeout the
   * server announces). Default 15000; 0 or Infinity: off.
   */
  pingIntervalMs?: number;
  /** Ping intervals in a row with nothing from the server before it is declared dead. Default 2. */
  maxPingsOutstanding?: number;
  /** How many requests may be unanswered at once; further ones wait their turn. Default 10000. */
  maxPendingRequests?: number;
  /** The largest frame body sent or accepted. Default 1 MiB + 32 KiB. */
  maxFrameSize?: number;
  /** The largest header block a publish may carry. Default 16384 (the server's default). */
  maxHeadersSize?: number;
  /** Makes the WebSocket; default the platform's `new WebSocket(url)`. For tests and custom transports. */
  webSocketFactory?: WebSocketFactory;
}

export interface ResolvedClientOptions {
  /** The other cluster nodes' URLs, normalized. */
  readonly servers: readonly string[];
  readonly token: string | null;
  readonly idempotence: boolean;
  readonly producerId: bigint | null;
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly reconnect: Required<ReconnectOptions>;
  readonly pingIntervalMs: number;
  readonly maxPingsOutstanding: number;
  readonly maxPendingRequests: number;
  readonly maxFrameSize: number;
  readonly maxHeadersSize: number;
  readonly webSocketFactory: WebSocketFactory;
}

function nonNegative(value: number | undefined, fallback: number, name: string, allowInfinity = false): number {
  if (value === undefined) {
    return fallback;
  }
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (!allowInfinity && !Number.isFinite(value))) {
    throw new RangeError(`${name} must be a number of 0 or more`);
  }
  return value;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const resolved = nonNegative(value, fallback, name);
  if (resolved <= 0) {
    throw new RangeError(`${name} must be positive`);
  }
  return resolved;
}

export function resolveClientOptions(options: ZaichikClientOptions = {}): ResolvedClientOptions {
  const token = options.token ?? null;
  if (token !== null && (typeof token !== 'string' || utf8(token).length > MAX_STRING_BYTES)) {
    throw new RangeError('token must be a string a protocol string can carry (65535 UTF-8 bytes)');
  }
  const idempotence = options.idempotence ?? true;
  let producerId: bigint | null = null;
  if (options.producerId !== undefined) {
    if (!idempotence) {
      throw new RangeError('producerId needs idempotence');
    }
    producerId = BigInt(options.producerId);
    if (producerId < 1n || producerId > (1n << 64n) - 1n) {
      throw new RangeError('producerId must be 1 to 2^64 - 1');
    }
  }
  const reconnect = options.reconnect ?? {};
  const minDelayMs = nonNegative(reconnect.minDelayMs, 100, 'reconnect.minDelayMs');
  const maxDelayMs = positive(reconnect.maxDelayMs, 5000, 'reconnect.maxDelayMs');
  if (maxDelayMs < minDelayMs) {
    throw new RangeError(`reconnect.maxDelayMs (${maxDelayMs}) must not be less than reconnect.minDelayMs (${minDelayMs})`);
  }
  const maxAttempts = nonNegative(reconnect.maxAttempts, 0, 'reconnect.maxAttempts');
  if (!Number.isInteger(maxAttempts)) {
    throw new RangeError('reconnect.maxAttempts must be a whole number (0: unlimited)');
  }
  const maxPingsOutstanding = positive(options.maxPingsOutstanding, 2, 'maxPingsOutstanding');
  const maxPendingRequests = positive(options.maxPendingRequests, 10_000, 'maxPendingRequests');
  const maxFrameSize = positive(options.maxFrameSize, DEFAULT_MAX_FRAME_SIZE, 'maxFrameSize');
  if (maxFrameSize < 1024) {
    throw new RangeError('maxFrameSize must be at least 1024 bytes');
  }
  if (options.servers !== undefined && !Array.isArray(options.servers)) {
    throw new TypeError('servers must be an array of WebSocket URLs');
  }
  const servers = (options.servers ?? []).map((server) => webSocketUrl(server));
  return {
    servers,
    token,
    idempotence,
    producerId,
    requestTimeoutMs: nonNegative(options.requestTimeoutMs, 30_000, 'requestTimeoutMs', true),
    connectTimeoutMs: positive(options.connectTimeoutMs, 10_000, 'connectTimeoutMs'),
    closeTimeoutMs: positive(options.closeTimeoutMs, 5000, 'closeTimeoutMs'),
    reconnect: { enabled: reconnect.enabled ?? true, minDelayMs, maxDelayMs, maxAttempts },
    pingIntervalMs: nonNegative(options.pingIntervalMs, 15_000, 'pingIntervalMs', true),
    maxPingsOutstanding,
    maxPendingRequests,
    maxFrameSize,
    maxHeadersSize: nonNegative(options.maxHeadersSize, 16 * 1024, 'maxHeadersSize'),
    webSocketFactory: options.webSocketFactory ?? defaultWebSocketFactory,
  };
}

/** Parses and normalizes a broker's WebSocket URL: ws://, wss:// (or http://, https://, which WebSocket accepts too). */
export function webSocketUrl(url: string | URL): string {
  const parsed = new URL(String(url));
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(parsed.protocol)) {
    throw new TypeError(`a Zaichik WebSocket URL starts with ws:// or wss://, not ${parsed.protocol}//`);
  }
  return parsed.toString();
}

/** The delay before reconnect attempt `attempt` (1-based), with jitter from `random` (0 ≤ r < 1). */
export function reconnectDelay(reconnect: Required<ReconnectOptions>, attempt: number, random: number = Math.random()): number {
  const exponent = Math.min(attempt - 1, 30);
  const ceiling = Math.min(reconnect.minDelayMs * 2 ** exponent, reconnect.maxDelayMs);
  return ceiling * (0.5 + random / 2);
}

/** Where a subscription starts. */
export type StartPosition =
  | 'retained'
  | 'latest'
  | { readonly sequence: number | bigint }
  | { readonly time: Date | number };

/** Options of {@link ZaichikClient.subscribe}. */
export interface SubscribeOptions {
  /**
   * `'retained'` (the default) delivers every retained, unexpired message first; `'latest'` only messages published after
   * the subscription was acknowledged; `{ sequence }` starts at the first stored message with that sequence or a later
   * one, and `{ time }` (a Date or Unix ms) at the first one accepted at or after that time.
   */
  from?: StartPosition;
  /** How many delivered messages may await a commit before the server pauses delivery. At least 1; default 1. */
  prefetch?: number;
  /** Commit each message (by topic and sequence) when the consumer asks for the next one. Default false. */
  autoCommit?: boolean;
  /**
   * Makes this a durable consumer: the server keeps the sequence it last committed under this name, and a later
   * subscription with the same name resumes right after it (ignoring `from`). 1 to 64 ASCII letters, digits, '.', '-', '_'.
   */
  durableName?: string | null;
  /** `'explicit'` (the default): deliveries wait for a commit within prefetch. `'none'`: nothing to commit. */
  ackPolicy?: 'explicit' | 'none';
  /** Joins the consumer group of this name on the topic: its members share the topic's messages. Not with durableName. */
  group?: string | null;
  /** A delivery not committed within this many ms is delivered again (group, or redelivery of its own). Default: the server's (30 s). */
  ackWaitMs?: number | null;
  /** After this many deliveries without a commit a message goes to deadLetterTopic or is dropped. Default unlimited. */
  maxDeliver?: number | null;
  /** Where messages that reached maxDeliver go. */
  deadLetterTopic?: string | null;
}

export interface ResolvedSubscribeOptions {
  readonly from: StartPosition;
  readonly fromKind: StartKindValue;
  readonly position: bigint;
  readonly prefetch: number;
  readonly autoCommit: boolean;
  readonly durableName: string | null;
  readonly ackPolicy: AckPolicyValue;
  readonly group: string | null;
  readonly ackWaitMs: number | null;
  readonly maxDeliver: number | null;
  readonly deadLetterTopic: string | null;
  /** A group member, or a subscription with redelivery of its own: deliveries are committed one by one and may come again. */
  readonly redelivers: boolean;
}

/** Null when the name is a valid topic name (1..maxLength of ASCII letters, digits, '.', '-', '_', not starting with '.'). */
export function validateTopicName(name: unknown, maxLength = 200, what = 'topic name'): string | null {
  if (typeof name !== 'string' || name.length === 0) {
    return `${what} is empty`;
  }
  if (name.length > maxLength) {
    return `${what} is ${name.length} characters; the limit is ${maxLength}`;
  }
  if (name[0] === '.') {
    return `${what} must not start with '.'`;
  }
  for (const c of name) {
    if (!/^[A-Za-z0-9._-]$/.test(c)) {
      return `${what} contains '${c}'; allowed are ASCII letters, digits, '.', '-' and '_'`;
    }
  }
  return null;
}

export function checkTopic(topic: unknown, name = 'topic'): asserts topic is string {
  const problem = validateTopicName(topic);
  if (problem !== null) {
    throw new TypeError(`${name}: ${problem}`);
  }
}

export function startOf(from: StartPosition): { kind: StartKindValue; position: bigint } {
  if (from === 'retained') {
    return { kind: StartKind.Retained, position: 0n };
  }
  if (from === 'latest') {
    return { kind: StartKind.Latest, position: 0n };
  }
  if (typeof from === 'object' && from !== null && 'sequence' in from) {
    const sequence = BigInt(from.sequence);
    if (sequence < 1n) {
      throw new RangeError('a start sequence must be at least 1');
    }
    return { kind: StartKind.Sequence, position: sequence };
  }
  if (typeof from === 'object' && from !== null && 'time' in from) {
    const ms = from.time instanceof Date ? from.time.getTime() : from.time;
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError('the start time must not be before the Unix epoch');
    }
    return { kind: StartKind.Time, position: BigInt(Math.trunc(ms)) };
  }
  throw new TypeError(`from must be 'retained', 'latest', { sequence } or { time }`);
}

export function resolveSubscribeOptions(options: SubscribeOptions = {}): ResolvedSubscribeOptions {
  const from = options.from ?? 'retained';
  const { kind, position } = startOf(from);
  const prefetch = options.prefetch ?? 1;
  if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 0xffffffff) {
    throw new RangeError('prefetch must be a whole number of at least 1');
  }
  const ackPolicyName = options.ackPolicy ?? 'explicit';
  if (ackPolicyName !== 'explicit' && ackPolicyName !== 'none') {
    throw new RangeError(`ackPolicy must be 'explicit' or 'none'`);
  }
  const ackPolicy = ackPolicyName === 'explicit' ? AckPolicy.Explicit : AckPolicy.None;
  const durableName = options.durableName ?? null;
  if (durableName !== null) {
    const problem = validateTopicName(durableName, 64, 'durable consumer name');
    if (problem !== null) {
      throw new TypeError(problem);
    }
  }
  const group = options.group ?? null;
  const ackWaitMs = options.ackWaitMs ?? null;
  const maxDeliver = options.maxDeliver ?? null;
  const deadLetterTopic = options.deadLetterTopic ?? null;
  const redelivers = group !== null || ackWaitMs !== null || maxDeliver !== null || deadLetterTopic !== null;
  if (redelivers) {
    if (group !== null) {
      const problem = validateTopicName(group, 64, 'consumer group name');
      if (problem !== null) {
        throw new TypeError(problem);
      }
    }
    if (durableName !== null) {
      throw new TypeError(
        group !== null
          ? 'a subscription is either a durable consumer or a member of a group, not both: a group is durable already'
          : 'a durable consumer with ackWaitMs, maxDeliver or a deadLetterTopic is a consumer group: set group instead of durableName',
      );
    }
    if (ackPolicy !== AckPolicy.Explicit) {
      throw new TypeError(`redelivery (a group, ackWaitMs, maxDeliver) needs ackPolicy 'explicit'`);
    }
    if (ackWaitMs !== null && (typeof ackWaitMs !== 'number' || !(ackWaitMs >= 1) || ackWaitMs > 0xffffffff)) {
      throw new RangeError('ackWaitMs must be 1 ms to about 49.7 days');
    }
    if (maxDeliver !== null && (!Number.isInteger(maxDeliver) || maxDeliver < 1 || maxDeliver > 0xffffffff)) {
      throw new RangeError('maxDeliver must be at least 1 (null for unlimited)');
    }
    if (deadLetterTopic !== null) {
      checkTopic(deadLetterTopic, 'deadLetterTopic');
    }
  }
  return {
    from,
    fromKind: kind,
    position,
    prefetch,
    autoCommit: options.autoCommit ?? false,
    durableName,
    ackPolicy,
    group,
    ackWaitMs,
    maxDeliver,
    deadLetterTopic,
    redelivers,
  };
}

/** Names of the durability modes, for {@link TopicOptions.durability}. */
export type DurabilityName = 'serverDefault' | 'always' | 'interval' | 'memory';

/** Settings of a topic, fixed when it is created. Times are whole milliseconds. */
export interface TopicOptions {
  /** How long each message is kept for subscribers from 'retained'. 0 (default): nothing. */
  retentionTtlMs?: number;
  /** A keyed message within this window after another with the same key is dropped as a duplicate. 0 (default): off. */
  compactionWindowMs?: number;
  /** When messages reach the disk. Default 'serverDefault'. */
  durability?: DurabilityName | DurabilityValue;
  /** For 'interval': the commit period; 0 (default): the server's. */
  commitIntervalMs?: number;
  /** Most messages the topic keeps; 0 (default): no limit. */
  maxMessages?: number;
  /** Most bytes of log the topic keeps; 0 (default): no limit. */
  maxBytes?: number;
  /** Keep only the newest message of each key (log compaction). Default false. */
  keepLatestPerKey?: boolean;
  /** With keepLatestPerKey: how long a tombstone stays; 0 (default): the server's (24 h). */
  tombstoneRetentionMs?: number;
}

const durabilityNames: Record<DurabilityName, DurabilityValue> = {
  serverDefault: Durability.ServerDefault,
  always: Durability.Always,
  interval: Durability.Interval,
  memory: Durability.Memory,
};

function wholeMs(value: number | undefined, name: string): bigint {
  if (value === undefined) {
    return 0n;
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must not be negative`);
  }
  return BigInt(Math.trunc(value));
}

export interface ResolvedTopicOptions {
  readonly retentionTtlMs: bigint;
  readonly compactionWindowMs: bigint;
  readonly durability: DurabilityValue;
  readonly commitIntervalMs: bigint;
  readonly maxMessages: bigint;
  readonly maxBytes: bigint;
  readonly keepLatestPerKey: boolean;
  readonly tombstoneRetentionMs: bigint;
}

export function resolveTopicOptions(options: TopicOptions = {}): ResolvedTopicOptions {
  const durabilityOption = options.durability ?? 'serverDefault';
  const durability =
    typeof durabilityOption === 'string' ? durabilityNames[durabilityOption] : (durabilityOption as DurabilityValue);
  if (durability === undefined || ![0, 1, 2, 3].includes(durability)) {
    throw new RangeError(`durability must be 'serverDefault', 'always', 'interval' or 'memory'`);
  }
  const keepLatestPerKey = options.keepLatestPerKey ?? false;
  const tombstoneRetentionMs = wholeMs(options.tombstoneRetentionMs, 'tombstoneRetentionMs');
  if (tombstoneRetentionMs > 0n && !keepLatestPerKey) {
    throw new RangeError('tombstoneRetentionMs is only for keepLatestPerKey');
  }
  const commitIntervalMs = wholeMs(options.commitIntervalMs, 'commitIntervalMs');
  if (commitIntervalMs > 0n && durability !== Durability.Interval) {
    throw new RangeError(`commitIntervalMs is only for 'interval' durability`);
  }
  return {
    retentionTtlMs: wholeMs(options.retentionTtlMs, 'retentionTtlMs'),
    compactionWindowMs: wholeMs(options.compactionWindowMs, 'compactionWindowMs'),
    durability,
    commitIntervalMs,
    maxMessages: wholeMs(options.maxMessages, 'maxMessages'),
    maxBytes: wholeMs(options.maxBytes, 'maxBytes'),
    keepLatestPerKey,
    tombstoneRetentionMs,
  };
}
