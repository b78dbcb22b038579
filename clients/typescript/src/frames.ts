/**
 * The frames of the Zaichik wire protocol, version 8 (docs/protocol.md, "Frames"): their shapes, their encoding and a
 * stream decoder that splits bytes into frames by the length prefix, across any chunk boundaries.
 *
 * Every u64/i64 field is a `bigint`, so the codec is exact over the whole range; u8/u16/u32 fields are numbers.
 */
import {
  DEFAULT_MAX_FRAME_SIZE,
  FieldReader,
  FieldWriter,
  LENGTH_PREFIX_SIZE,
  isSupportedVersion,
  malformed,
} from './codec.js';
import { ErrorCode, ZaichikProtocolError } from './errors.js';

/** Frame type bytes. */
export const FrameType = {
  Hello: 0x01,
  CreateTopic: 0x02,
  Publish: 0x03,
  Subscribe: 0x04,
  Unsubscribe: 0x05,
  Commit: 0x06,
  Close: 0x07,
  Ping: 0x08,
  Pong: 0x09,
  Nack: 0x0a,
  Message: 0x10,
  Ack: 0x11,
  Error: 0x12,
  Redirect: 0x13,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

const frameNames = new Map<number, string>(Object.entries(FrameType).map(([name, value]) => [value, name]));

/** The name of a frame type byte (`"Publish"`), or its hex value when unknown. */
export function frameTypeName(type: number): string {
  return frameNames.get(type) ?? `0x${type.toString(16).padStart(2, '0').toUpperCase()}`;
}

/** When a topic's messages reach the disk. */
export const Durability = { ServerDefault: 0, Always: 1, Interval: 2, Memory: 3 } as const;
export type DurabilityValue = (typeof Durability)[keyof typeof Durability];

/** Subscribe's `from`. */
export const StartKind = { Retained: 0, Latest: 1, Sequence: 2, Time: 3 } as const;
export type StartKindValue = (typeof StartKind)[keyof typeof StartKind];

/** Subscribe's `ackPolicy`. */
export const AckPolicy = { Explicit: 0, None: 1 } as const;
export type AckPolicyValue = (typeof AckPolicy)[keyof typeof AckPolicy];

/** Commit's `mode`. */
export const CommitMode = { Bare: 0, UpTo: 1, Single: 2 } as const;
export type CommitModeValue = (typeof CommitMode)[keyof typeof CommitMode];

export interface HelloFrame {
  readonly type: typeof FrameType.Hello;
  /** The sender's protocol version. A Hello of another version carries only this field (the rest is not parsed). */
  readonly version: number;
  readonly idleTimeoutMs: number;
  readonly token: string | null;
  readonly producerId: bigint;
}

export interface CreateTopicFrame {
  readonly type: typeof FrameType.CreateTopic;
  readonly requestId: bigint;
  readonly topic: string;
  readonly retentionTtlMs: bigint;
  readonly compactionWindowMs: bigint;
  readonly durability: DurabilityValue;
  readonly commitIntervalMs: bigint;
  readonly maxMessages: bigint;
  readonly maxBytes: bigint;
  readonly keepLatestPerKey: boolean;
  readonly tombstoneRetentionMs: bigint;
}

export interface PublishFrame {
  readonly type: typeof FrameType.Publish;
  readonly requestId: bigint;
  readonly topic: string;
  readonly key: Uint8Array | null;
  readonly payload: Uint8Array;
  readonly producerSequence: bigint;
  /** The header block; empty for none. */
  readonly headers: Uint8Array;
}

export interface SubscribeFrame {
  readonly type: typeof FrameType.Subscribe;
  readonly requestId: bigint;
  readonly topic: string;
  readonly from: StartKindValue;
  readonly position: bigint;
  readonly prefetch: number;
  readonly durableName: string | null;
  readonly ackPolicy: AckPolicyValue;
  readonly group: string | null;
  readonly ackWaitMs: number;
  readonly maxDeliver: number;
  readonly deadLetterTopic: string | null;
}

export interface UnsubscribeFrame {
  readonly type: typeof FrameType.Unsubscribe;
  readonly requestId: bigint;
  readonly topic: string;
}

export interface CommitFrame {
  readonly type: typeof FrameType.Commit;
  readonly mode: CommitModeValue;
  /** Null for a bare Commit (mode 0). */
  readonly topic: string | null;
  /** 0n for a bare Commit. */
  readonly sequence: bigint;
}

export interface CloseFrame {
  readonly type: typeof FrameType.Close;
}

export interface PingFrame {
  readonly type: typeof FrameType.Ping;
  readonly nonce: bigint;
}

export interface PongFrame {
  readonly type: typeof FrameType.Pong;
  readonly nonce: bigint;
}

export interface NackFrame {
  readonly type: typeof FrameType.Nack;
  readonly topic: string;
  readonly sequence: bigint;
  readonly delayMs: number;
}

export interface MessageFrame {
  readonly type: typeof FrameType.Message;
  readonly topic: string;
  readonly sequence: bigint;
  readonly timestampMs: bigint;
  readonly key: Uint8Array | null;
  readonly payload: Uint8Array;
  /** The header block as published; empty for none. */
  readonly headers: Uint8Array;
  readonly deliveryCount: number;
}

export interface AckFrame {
  readonly type: typeof FrameType.Ack;
  readonly requestId: bigint;
  readonly sequence: bigint | null;
  readonly duplicate: boolean;
  readonly durable: boolean;
}

export interface ErrorFrame {
  readonly type: typeof FrameType.Error;
  readonly requestId: bigint | null;
  readonly code: number;
  readonly text: string;
}

/**
 * Sent by a cluster node that does not lead the topic a request names: the client reconnects to `endpoint` and sends
 * the request there again. Only cluster nodes send it.
 */
export interface RedirectFrame {
  readonly type: typeof FrameType.Redirect;
  /** The redirected request's id, or null for a frame without one (a Commit). */
  readonly requestId: bigint | null;
  /** The topic the request named. */
  readonly topic: string;
  /** The id of the node that leads the topic. */
  readonly leaderNode: string;
  /** Where the leader takes connections: for a WebSocket session its full URL (`ws://host:port/path`, `wss://…`). */
  readonly endpoint: string;
}

/** Any frame. */
export type Frame =
  | HelloFrame
  | CreateTopicFrame
  | PublishFrame
  | SubscribeFrame
  | UnsubscribeFrame
  | CommitFrame
  | CloseFrame
  | PingFrame
  | PongFrame
  | NackFrame
  | MessageFrame
  | AckFrame
  | ErrorFrame
  | RedirectFrame;

function checkEnum(value: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${what} ${String(value)} is not defined (0..${max})`);
  }
}

/** Writes a frame's fields (after its type byte). */
function writeFields(w: FieldWriter, frame: Frame): void {
  switch (frame.type) {
    case FrameType.Hello:
      w.u16(frame.version).u32(frame.idleTimeoutMs).optionalString(frame.token).u64(frame.producerId);
      return;
    case FrameType.CreateTopic:
      checkEnum(frame.durability, 3, 'durability');
      w.u64(frame.requestId)
        .string(frame.topic)
        .i64(frame.retentionTtlMs)
        .i64(frame.compactionWindowMs)
        .u8(frame.durability)
        .i64(frame.commitIntervalMs)
        .i64(frame.maxMessages)
        .i64(frame.maxBytes)
        .flag(frame.keepLatestPerKey)
        .i64(frame.tombstoneRetentionMs);
      return;
    case FrameType.Publish:
      w.u64(frame.requestId)
        .string(frame.topic)
        .key(frame.key)
        .bytes(frame.payload)
        .u64(frame.producerSequence)
        .bytes(frame.headers);
      return;
    case FrameType.Subscribe:
      checkEnum(frame.from, 3, 'from');
      checkEnum(frame.ackPolicy, 1, 'ackPolicy');
      w.u64(frame.requestId)
        .string(frame.topic)
        .u8(frame.from)
        .i64(frame.position)
        .u32(frame.prefetch)
        .optionalString(frame.durableName)
        .u8(frame.ackPolicy)
        .optionalString(frame.group)
        .u32(frame.ackWaitMs)
        .u32(frame.maxDeliver)
        .optionalString(frame.deadLetterTopic);
      return;
    case FrameType.Unsubscribe:
      w.u64(frame.requestId).string(frame.topic);
      return;
    case FrameType.Commit:
      checkEnum(frame.mode, 2, 'Commit mode');
      if (frame.mode === CommitMode.Bare) {
        w.u8(CommitMode.Bare);
        return;
      }
      if (frame.topic === null) {
        throw new TypeError('a Commit of mode 1 or 2 names its topic');
      }
      w.u8(frame.mode).string(frame.topic).sequence(frame.sequence);
      return;
    case FrameType.Close:
      return;
    case FrameType.Ping:
    case FrameType.Pong:
      w.u64(frame.nonce);
      return;
    case FrameType.Nack:
      w.string(frame.topic).sequence(frame.sequence).u32(frame.delayMs);
      return;
    case FrameType.Message:
      w.string(frame.topic)
        .sequence(frame.sequence)
        .i64(frame.timestampMs)
        .key(frame.key)
        .bytes(frame.payload)
        .bytes(frame.headers)
        .u32(frame.deliveryCount);
      return;
    case FrameType.Ack:
      w.u64(frame.requestId);
      if (frame.sequence === null) {
        w.flag(false);
      } else {
        w.flag(true).sequence(frame.sequence);
      }
      w.flag(frame.duplicate).flag(frame.durable);
      return;
    case FrameType.Error:
      if (frame.requestId === null) {
        w.flag(false);
      } else {
        w.flag(true).u64(frame.requestId);
      }
      w.u16(frame.code).string(frame.text);
      return;
    case FrameType.Redirect:
      if (frame.requestId === null) {
        w.flag(false);
      } else {
        w.flag(true).u64(frame.requestId);
      }
      w.string(frame.topic).string(frame.leaderNode).string(frame.endpoint);
      return;
    default: {
      const unknown: never = frame;
      throw new TypeError(`not a frame: ${JSON.stringify(unknown)}`);
    }
  }
}

/** Encodes one frame with its length prefix. Throws RangeError/TypeError for values its fields cannot carry. */
export function encodeFrame(frame: Frame): Uint8Array {
  const w = new FieldWriter(64);
  w.u32(0).u8(frame.type);
  writeFields(w, frame);
  const length = w.length - LENGTH_PREFIX_SIZE;
  w.patchU32(0, length);
  return w.finish();
}

/** Encodes several frames back to back into one buffer (one WebSocket message). */
export function encodeFrames(frames: Iterable<Frame>): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const frame of frames) {
    const bytes = encodeFrame(frame);
    parts.push(bytes);
    total += bytes.length;
  }
  return concat(parts, total);
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[], total = parts.reduce((n, p) => n + p.length, 0)): Uint8Array {
  if (parts.length === 1) {
    return parts[0]!;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Decodes one frame body: the type byte and the fields, without the length prefix. Byte arrays in the result (keys,
 * payloads, header blocks) are views into `body`. Throws {@link ZaichikProtocolError} (MalformedFrame).
 */
export function decodeFrameBody(body: Uint8Array): Frame {
  if (body.length === 0) {
    throw malformed('frame length is 0; a frame holds at least its type byte');
  }
  const type = body[0]!;
  const r = new FieldReader(body.subarray(1));
  let frame: Frame;
  switch (type) {
    case FrameType.Hello: {
      const version = r.u16();
      if (!isSupportedVersion(version)) {
        // Only the version has a fixed place in every version of the protocol; 7 and 8 share the rest.
        r.skipRest();
        frame = { type, version, idleTimeoutMs: 0, token: null, producerId: 0n };
        break;
      }
      frame = { type, version, idleTimeoutMs: r.u32(), token: r.optionalString(), producerId: r.u64() };
      break;
    }
    case FrameType.CreateTopic: {
      const requestId = r.u64();
      const topic = r.string();
      const retentionTtlMs = r.i64();
      const compactionWindowMs = r.i64();
      const durability = r.u8();
      if (durability > 3) {
        throw malformed(`durability ${durability} is not defined; expected 0..3`);
      }
      frame = {
        type,
        requestId,
        topic,
        retentionTtlMs,
        compactionWindowMs,
        durability: durability as DurabilityValue,
        commitIntervalMs: r.i64(),
        maxMessages: r.i64(),
        maxBytes: r.i64(),
        keepLatestPerKey: r.flag(),
        tombstoneRetentionMs: r.i64(),
      };
      break;
    }
    case FrameType.Publish:
      frame = {
        type,
        requestId: r.u64(),
        topic: r.string(),
        key: r.key(),
        payload: r.bytes(),
        producerSequence: r.u64(),
        headers: r.headers(),
      };
      break;
    case FrameType.Subscribe: {
      const requestId = r.u64();
      const topic = r.string();
      const from = r.u8();
      if (from > 3) {
        throw malformed(`from ${from} is not defined; expected 0..3`);
      }
      const position = r.i64();
      const prefetch = r.u32();
      const durableName = r.optionalString();
      const ackPolicy = r.u8();
      if (ackPolicy > 1) {
        throw malformed(`ackPolicy ${ackPolicy} is not defined; expected 0 or 1`);
      }
      frame = {
        type,
        requestId,
        topic,
        from: from as StartKindValue,
        position,
        prefetch,
        durableName,
        ackPolicy: ackPolicy as AckPolicyValue,
        group: r.optionalString(),
        ackWaitMs: r.u32(),
        maxDeliver: r.u32(),
        deadLetterTopic: r.optionalString(),
      };
      break;
    }
    case FrameType.Unsubscribe:
      frame = { type, requestId: r.u64(), topic: r.string() };
      break;
    case FrameType.Commit: {
      const mode = r.u8();
      if (mode === CommitMode.Bare) {
        frame = { type, mode, topic: null, sequence: 0n };
      } else if (mode === CommitMode.UpTo || mode === CommitMode.Single) {
        frame = { type, mode, topic: r.string(), sequence: r.sequence() };
      } else {
        throw malformed(`Commit mode ${mode} is not defined; expected 0, 1 or 2`);
      }
      break;
    }
    case FrameType.Close:
      frame = { type };
      break;
    case FrameType.Ping:
    case FrameType.Pong:
      frame = { type, nonce: r.u64() };
      break;
    case FrameType.Nack:
      frame = { type, topic: r.string(), sequence: r.sequence(), delayMs: r.u32() };
      break;
    case FrameType.Message:
      frame = {
        type,
        topic: r.string(),
        sequence: r.sequence(),
        timestampMs: r.i64(),
        key: r.key(),
        payload: r.bytes(),
        headers: r.headers(),
        deliveryCount: r.u32(),
      };
      break;
    case FrameType.Ack: {
      const requestId = r.u64();
      const sequence = r.flag() ? r.sequence() : null;
      frame = { type, requestId, sequence, duplicate: r.flag(), durable: r.flag() };
      break;
    }
    case FrameType.Error: {
      const requestId = r.flag() ? r.u64() : null;
      frame = { type, requestId, code: r.u16(), text: r.string() };
      break;
    }
    case FrameType.Redirect: {
      const requestId = r.flag() ? r.u64() : null;
      frame = { type, requestId, topic: r.string(), leaderNode: r.string(), endpoint: r.string() };
      break;
    }
    default:
      throw malformed(`unknown frame type ${frameTypeName(type)}`);
  }
  r.end(frameTypeName(type));
  return frame;
}

/**
 * Decodes exactly one whole frame (length prefix included). Throws {@link ZaichikProtocolError} when the bytes are
 * not exactly one well-formed frame.
 */
export function decodeFrame(bytes: Uint8Array, maxFrameSize = DEFAULT_MAX_FRAME_SIZE): Frame {
  const decoder = new FrameDecoder(maxFrameSize);
  decoder.push(bytes);
  const frame = decoder.next();
  if (frame === undefined) {
    throw malformed(`${bytes.length} bytes end inside a frame`);
  }
  if (decoder.buffered !== 0) {
    throw malformed(`${decoder.buffered} bytes follow the frame`);
  }
  return frame;
}

/**
 * Splits a byte stream into frames by the length prefix. Push chunks as they arrive (a chunk may hold several frames,
 * or part of one, split anywhere), then call {@link next} until it returns undefined. A length of 0 is refused as
 * MalformedFrame, and one above `maxFrameSize` as FrameTooLarge as soon as the prefix is known, without waiting for
 * the body. After an error the decoder stays failed.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private head = 0;
  private total = 0;
  private failure: ZaichikProtocolError | null = null;

  constructor(readonly maxFrameSize: number = DEFAULT_MAX_FRAME_SIZE) {
    if (!Number.isInteger(maxFrameSize) || maxFrameSize < 16) {
      throw new RangeError('maxFrameSize must be at least 16');
    }
  }

  /** Bytes received and not yet taken as frames. */
  get buffered(): number {
    return this.total;
  }

  /** Adds received bytes. The decoder keeps a reference: do not change them afterwards. */
  push(chunk: Uint8Array | ArrayBuffer): void {
    const bytes = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk);
    if (bytes.length > 0) {
      this.chunks.push(bytes);
      this.total += bytes.length;
    }
  }

  /** The next whole frame, or undefined when more bytes are needed. Throws {@link ZaichikProtocolError}. */
  next(): Frame | undefined {
    if (this.failure !== null) {
      throw this.failure;
    }
    try {
      const body = this.nextBody();
      return body === undefined ? undefined : decodeFrameBody(body);
    } catch (error) {
      if (error instanceof ZaichikProtocolError) {
        this.failure = error;
      }
      throw error;
    }
  }

  /** Every whole frame buffered now. */
  *drain(): Generator<Frame, void, undefined> {
    for (let frame = this.next(); frame !== undefined; frame = this.next()) {
      yield frame;
    }
  }

  private nextBody(): Uint8Array | undefined {
    if (this.total < LENGTH_PREFIX_SIZE) {
      return undefined;
    }
    const prefix = this.peek(LENGTH_PREFIX_SIZE);
    const length = new DataView(prefix.buffer, prefix.byteOffset, LENGTH_PREFIX_SIZE).getUint32(0);
    if (length === 0) {
      throw malformed('frame length is 0; a frame holds at least its type byte');
    }
    if (length > this.maxFrameSize) {
      throw new ZaichikProtocolError(
        ErrorCode.FrameTooLarge,
        `frame of ${length} bytes exceeds the limit of ${this.maxFrameSize} bytes`,
      );
    }
    if (this.total < LENGTH_PREFIX_SIZE + length) {
      return undefined;
    }
    this.take(LENGTH_PREFIX_SIZE);
    return this.take(length);
  }

  /** The next `count` bytes without consuming them (a view when they lie in one chunk). */
  private peek(count: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length - this.head >= count) {
      return first.subarray(this.head, this.head + count);
    }
    return this.copy(count, false);
  }

  /** Takes `count` bytes (a view when they lie in one chunk, else a copy). */
  private take(count: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length - this.head >= count) {
      const bytes = first.subarray(this.head, this.head + count);
      this.head += count;
      this.total -= count;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      return bytes;
    }
    return this.copy(count, true);
  }

  private copy(count: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(count);
    let copied = 0;
    let index = 0;
    let head = this.head;
    while (copied < count) {
      const chunk = this.chunks[index]!;
      const n = Math.min(count - copied, chunk.length - head);
      out.set(chunk.subarray(head, head + n), copied);
      copied += n;
      head += n;
      if (head === chunk.length) {
        index++;
        head = 0;
      }
    }
    if (consume) {
      this.chunks.splice(0, index);
      this.head = head;
      this.total -= count;
    }
    return out;
  }
}
