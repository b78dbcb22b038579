/**
 * The field encodings of the Zaichik wire protocol (docs/protocol.md, "Field encodings"): big-endian integers, flags,
 * length-prefixed UTF-8 strings, optional values, keys, byte arrays and header blocks. Frames are built from these in
 * frames.ts. Every reader check raises {@link ZaichikProtocolError} with code MalformedFrame.
 */
import { ErrorCode, ZaichikProtocolError } from './errors.js';

/** The protocol version this client speaks, sent in its Hello. */
export const PROTOCOL_VERSION = 8;
/**
 * The oldest protocol version this client accepts from a server. Versions 7 and 8 share every frame layout; a version 7
 * server never sends what 8 added (the Redirect frame, error codes 50 to 52).
 */
export const MIN_PROTOCOL_VERSION = 7;

/** Whether `version` is one this client speaks ({@link MIN_PROTOCOL_VERSION} to {@link PROTOCOL_VERSION}). */
export function isSupportedVersion(version: number): boolean {
  return version >= MIN_PROTOCOL_VERSION && version <= PROTOCOL_VERSION;
}
/** Bytes of the length prefix in front of every frame. */
export const LENGTH_PREFIX_SIZE = 4;
/** The default largest frame body (type byte + fields): 1 MiB + 32 KiB. */
export const DEFAULT_MAX_FRAME_SIZE = 1024 * 1024 + 32 * 1024;
/** The most bytes a string or key can hold (its u16 length prefix). */
export const MAX_STRING_BYTES = 0xffff;
/** The largest sequence: 2^63 − 1. */
export const MAX_SEQUENCE = (1n << 63n) - 1n;
/** The largest u64. */
export const MAX_U64 = (1n << 64n) - 1n;
const MIN_I64 = -(1n << 63n);

const encoder = new TextEncoder();
// fatal: invalid UTF-8 (overlong forms, encoded surrogates, truncated sequences) throws; ignoreBOM: a leading U+FEFF is
// part of the string, not a marker to drop.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes strict UTF-8; throws {@link ZaichikProtocolError} (MalformedFrame) on invalid bytes. */
export function fromUtf8(bytes: Uint8Array, what = 'string'): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw malformed(`${what} is not valid UTF-8`);
  }
}

/** True when the bytes are valid UTF-8. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

export function malformed(message: string): ZaichikProtocolError {
  return new ZaichikProtocolError(ErrorCode.MalformedFrame, message);
}

/** Writes fields into a growing buffer, big-endian. Throws RangeError for values a field cannot hold. */
export class FieldWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private position = 0;

  constructor(capacity = 64) {
    this.buffer = new Uint8Array(capacity);
    this.view = new DataView(this.buffer.buffer);
  }

  get length(): number {
    return this.position;
  }

  u8(value: number): this {
    checkInteger(value, 0, 0xff, 'u8');
    this.ensure(1);
    this.buffer[this.position++] = value;
    return this;
  }

  flag(value: boolean): this {
    return this.u8(value ? 1 : 0);
  }

  u16(value: number): this {
    checkInteger(value, 0, 0xffff, 'u16');
    this.ensure(2);
    this.view.setUint16(this.position, value);
    this.position += 2;
    return this;
  }

  u32(value: number): this {
    checkInteger(value, 0, 0xffffffff, 'u32');
    this.ensure(4);
    this.view.setUint32(this.position, value);
    this.position += 4;
    return this;
  }

  u64(value: bigint): this {
    if (typeof value !== 'bigint' || value < 0n || value > MAX_U64) {
      throw new RangeError(`${String(value)} does not fit a u64`);
    }
    this.ensure(8);
    this.view.setBigUint64(this.position, value);
    this.position += 8;
    return this;
  }

  /** A u64 holding a sequence: 0 to 2^63 − 1. */
  sequence(value: bigint): this {
    if (typeof value !== 'bigint' || value < 0n || value > MAX_SEQUENCE) {
      throw new RangeError(`sequence ${String(value)} is outside 0..2^63-1`);
    }
    return this.u64(value);
  }

  i64(value: bigint): this {
    if (typeof value !== 'bigint' || value < MIN_I64 || value > MAX_SEQUENCE) {
      throw new RangeError(`${String(value)} does not fit an i64`);
    }
    this.ensure(8);
    this.view.setBigInt64(this.position, value);
    this.position += 8;
    return this;
  }

  raw(bytes: Uint8Array): this {
    this.ensure(bytes.length);
    this.buffer.set(bytes, this.position);
    this.position += bytes.length;
    return this;
  }

  string(value: string): this {
    const bytes = utf8(value);
    if (bytes.length > MAX_STRING_BYTES) {
      throw new RangeError(`a string of ${bytes.length} UTF-8 bytes exceeds the protocol's ${MAX_STRING_BYTES}`);
    }
    return this.u16(bytes.length).raw(bytes);
  }

  optionalString(value: string | null | undefined): this {
    if (value === null || value === undefined) {
      return this.flag(false);
    }
    return this.flag(true).string(value);
  }

  /** A `key`: absent, or present with a u16 length (an empty key is a key). */
  key(value: Uint8Array | null | undefined): this {
    if (value === null || value === undefined) {
      return this.flag(false);
    }
    if (value.length > MAX_STRING_BYTES) {
      throw new RangeError(`a key of ${value.length} bytes exceeds the protocol's ${MAX_STRING_BYTES}`);
    }
    return this.flag(true).u16(value.length).raw(value);
  }

  /** `bytes`: u32 length, then the bytes. */
  bytes(value: Uint8Array): this {
    return this.u32(value.length).raw(value);
  }

  /** Overwrites a u32 already written at `offset`. */
  patchU32(offset: number, value: number): void {
    this.view.setUint32(offset, value);
  }

  /** The bytes written (a copy-free view while the writer is not written to again). */
  finish(): Uint8Array {
    return this.buffer.subarray(0, this.position);
  }

  private ensure(count: number): void {
    const needed = this.position + count;
    if (needed <= this.buffer.length) {
      return;
    }
    let capacity = this.buffer.length * 2;
    while (capacity < needed) {
      capacity *= 2;
    }
    const grown = new Uint8Array(capacity);
    grown.set(this.buffer.subarray(0, this.position));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }
}

function checkInteger(value: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${String(value)} does not fit a ${what}`);
  }
}

/** Reads the fields of one frame body, refusing anything the protocol calls malformed. */
export class FieldReader {
  private readonly view: DataView;
  private position = 0;

  constructor(private readonly body: Uint8Array) {
    this.view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  }

  get remaining(): number {
    return this.body.length - this.position;
  }

  u8(): number {
    this.require(1, 'byte');
    return this.body[this.position++]!;
  }

  flag(): boolean {
    const value = this.u8();
    if (value === 0) return false;
    if (value === 1) return true;
    throw malformed(`flag byte is ${value}; expected 0 or 1`);
  }

  u16(): number {
    this.require(2, 'u16');
    const value = this.view.getUint16(this.position);
    this.position += 2;
    return value;
  }

  u32(): number {
    this.require(4, 'u32');
    const value = this.view.getUint32(this.position);
    this.position += 4;
    return value;
  }

  u64(): bigint {
    this.require(8, 'u64');
    const value = this.view.getBigUint64(this.position);
    this.position += 8;
    return value;
  }

  i64(): bigint {
    this.require(8, 'i64');
    const value = this.view.getBigInt64(this.position);
    this.position += 8;
    return value;
  }

  /** A u64 sequence; above 2^63 − 1 is malformed. */
  sequence(): bigint {
    const value = this.u64();
    if (value > MAX_SEQUENCE) {
      throw malformed(`sequence ${value} exceeds the largest sequence, 2^63 - 1`);
    }
    return value;
  }

  string(): string {
    const length = this.u16();
    this.require(length, 'string');
    const bytes = this.body.subarray(this.position, this.position + length);
    this.position += length;
    return fromUtf8(bytes);
  }

  optionalString(): string | null {
    return this.flag() ? this.string() : null;
  }

  key(): Uint8Array | null {
    if (!this.flag()) {
      return null;
    }
    const length = this.u16();
    this.require(length, 'key');
    const key = this.body.subarray(this.position, this.position + length);
    this.position += length;
    return key;
  }

  bytes(): Uint8Array {
    const length = this.u32();
    if (length > this.remaining) {
      throw malformed(`byte array of ${length} bytes runs past the end of the frame (${this.remaining} left)`);
    }
    const bytes = this.body.subarray(this.position, this.position + length);
    this.position += length;
    return bytes;
  }

  /** A header block carried as `bytes`, checked to be well formed. */
  headers(): Uint8Array {
    const block = this.bytes();
    const problem = validateHeaderBlock(block);
    if (problem !== null) {
      throw malformed(problem);
    }
    return block;
  }

  skipRest(): void {
    this.position = this.body.length;
  }

  /** Throws when bytes are left after the last field. */
  end(frameName: string): void {
    if (this.position !== this.body.length) {
      throw malformed(`${frameName} frame has ${this.body.length - this.position} unexpected trailing bytes`);
    }
  }

  private require(count: number, what: string): void {
    if (count > this.body.length - this.position) {
      throw malformed(`frame ends inside a ${what} field (needs ${count} bytes, ${this.body.length - this.position} left)`);
    }
  }
}

/** One entry of a header block. */
export interface HeaderEntry {
  /** The key: 1 or more bytes of UTF-8. */
  readonly key: string;
  /** The value's bytes (UTF-8 for a text value). */
  readonly value: Uint8Array;
  /** True for a text value (kind 1), false for raw bytes (kind 0). */
  readonly isText: boolean;
}

const BYTES_KIND = 0;
const TEXT_KIND = 1;

/** Encodes header entries as a header block (empty for none). */
export function encodeHeaderBlock(entries: Iterable<HeaderEntry>): Uint8Array {
  const writer = new FieldWriter(64);
  for (const entry of entries) {
    const key = utf8(entry.key);
    if (key.length === 0 || key.length > MAX_STRING_BYTES) {
      throw new RangeError(`a header key must be 1 to ${MAX_STRING_BYTES} bytes of UTF-8; this one is ${key.length}`);
    }
    writer.u8(entry.isText ? TEXT_KIND : BYTES_KIND).u16(key.length).raw(key).bytes(entry.value);
  }
  return writer.finish().slice();
}

/** Null when the block is well formed, otherwise what is wrong with it. */
export function validateHeaderBlock(block: Uint8Array): string | null {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  let position = 0;
  let index = 0;
  while (position < block.length) {
    const rest = block.length - position;
    if (rest < 3) {
      return `header ${index} ends inside its kind and key length`;
    }
    const kind = block[position]!;
    if (kind !== BYTES_KIND && kind !== TEXT_KIND) {
      return `header ${index} has kind ${kind}; expected 0 (bytes) or 1 (text)`;
    }
    const keyLength = view.getUint16(position + 1);
    if (keyLength === 0) {
      return `header ${index} has an empty key`;
    }
    if (rest < 3 + keyLength + 4) {
      return `header ${index} ends inside its key or value length`;
    }
    if (!isValidUtf8(block.subarray(position + 3, position + 3 + keyLength))) {
      return `header ${index} has a key that is not valid UTF-8`;
    }
    const valueLength = view.getUint32(position + 3 + keyLength);
    if (valueLength > rest - 7 - keyLength) {
      return `header ${index} has a value of ${valueLength} bytes that runs past the end of the block`;
    }
    const valueStart = position + 7 + keyLength;
    if (kind === TEXT_KIND && !isValidUtf8(block.subarray(valueStart, valueStart + valueLength))) {
      return `header ${index} is marked as text but its value is not valid UTF-8`;
    }
    position = valueStart + valueLength;
    index++;
  }
  return null;
}

/** Reads the entries of a header block; throws {@link ZaichikProtocolError} when it is not well formed. */
export function decodeHeaderBlock(block: Uint8Array): HeaderEntry[] {
  const problem = validateHeaderBlock(block);
  if (problem !== null) {
    throw malformed(problem);
  }
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const entries: HeaderEntry[] = [];
  let position = 0;
  while (position < block.length) {
    const kind = block[position]!;
    const keyLength = view.getUint16(position + 1);
    const key = fromUtf8(block.subarray(position + 3, position + 3 + keyLength));
    const valueLength = view.getUint32(position + 3 + keyLength);
    const valueStart = position + 7 + keyLength;
    entries.push({ key, value: block.subarray(valueStart, valueStart + valueLength), isText: kind === TEXT_KIND });
    position = valueStart + valueLength;
  }
  return entries;
}
