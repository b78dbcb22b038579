import { decodeHeaderBlock, encodeHeaderBlock, fromUtf8, utf8, type HeaderEntry } from './codec.js';

/** One header of a message: a key and a value that is either UTF-8 text or raw bytes. */
export class ZaichikHeader implements HeaderEntry {
  constructor(
    /** Its key; keys may repeat, in the order they were added. */
    readonly key: string,
    /** Its value's bytes (UTF-8 for a text value). */
    readonly value: Uint8Array,
    /** True for a text value. */
    readonly isText: boolean,
  ) {}

  /** The value decoded as UTF-8 (a byte value that is not valid UTF-8 gets replacement characters). */
  get text(): string {
    return this.isText ? fromUtf8(this.value) : new TextDecoder().decode(this.value);
  }
}

/**
 * A message's headers: an ordered list of keys with text or byte values, stored and delivered with the message. Keys are
 * case-sensitive and may repeat; the lookups return the first match. Encoded, they must fit in the client's
 * `maxHeadersSize` (and the server's `MaxHeadersSize`, 16 KiB by default).
 */
export class ZaichikHeaders implements Iterable<ZaichikHeader> {
  private readonly entries: ZaichikHeader[] = [];

  /** Headers from a plain object of text values, or a list of `[key, value]` pairs (string: text, Uint8Array: bytes). */
  static from(init: ZaichikHeadersInit): ZaichikHeaders {
    if (init instanceof ZaichikHeaders) {
      return init;
    }
    const headers = new ZaichikHeaders();
    const pairs: Iterable<readonly [string, string | Uint8Array]> =
      Symbol.iterator in init ? (init as Iterable<readonly [string, string | Uint8Array]>) : Object.entries(init);
    for (const [key, value] of pairs) {
      headers.add(key, value);
    }
    return headers;
  }

  /** Reads a header block (as carried by a Message frame). */
  static fromBlock(block: Uint8Array): ZaichikHeaders {
    const headers = new ZaichikHeaders();
    for (const entry of decodeHeaderBlock(block)) {
      headers.entries.push(new ZaichikHeader(entry.key, entry.value, entry.isText));
    }
    return headers;
  }

  /** How many headers there are. */
  get size(): number {
    return this.entries.length;
  }

  /** Adds a header: a string value is text, a Uint8Array value bytes (copied). */
  add(key: string, value: string | Uint8Array): this {
    if (typeof key !== 'string' || key.length === 0) {
      throw new TypeError('a header key must be a non-empty string');
    }
    if (typeof value === 'string') {
      this.entries.push(new ZaichikHeader(key, utf8(value), true));
    } else {
      this.entries.push(new ZaichikHeader(key, value.slice(), false));
    }
    return this;
  }

  /** Replaces the first header with this key (or adds one). */
  set(key: string, value: string | Uint8Array): this {
    const index = this.entries.findIndex((entry) => entry.key === key);
    if (index < 0) {
      return this.add(key, value);
    }
    this.entries[index] =
      typeof value === 'string' ? new ZaichikHeader(key, utf8(value), true) : new ZaichikHeader(key, value.slice(), false);
    return this;
  }

  /** True when a header with this key exists. */
  has(key: string): boolean {
    return this.entries.some((entry) => entry.key === key);
  }

  /** The first header with this key. */
  get(key: string): ZaichikHeader | undefined {
    return this.entries.find((entry) => entry.key === key);
  }

  /** The first value under this key decoded as UTF-8, or undefined. */
  getText(key: string): string | undefined {
    return this.get(key)?.text;
  }

  /** Every header with this key, in order. */
  getAll(key: string): ZaichikHeader[] {
    return this.entries.filter((entry) => entry.key === key);
  }

  /** The header at a position. */
  at(index: number): ZaichikHeader | undefined {
    return this.entries[index];
  }

  [Symbol.iterator](): Iterator<ZaichikHeader> {
    return this.entries[Symbol.iterator]();
  }

  /** The headers as a header block (empty for none). */
  toBlock(): Uint8Array {
    return this.entries.length === 0 ? new Uint8Array(0) : encodeHeaderBlock(this.entries);
  }

  /** Text headers as a plain object (the first value of each key); byte values as UTF-8 decoded text. */
  toObject(): Record<string, string> {
    const result: Record<string, string> = {};
    for (const entry of this.entries) {
      if (!Object.hasOwn(result, entry.key)) {
        result[entry.key] = entry.text;
      }
    }
    return result;
  }

  toString(): string {
    return this.entries.map((h) => (h.isText ? `${h.key}=${h.text}` : `${h.key}=(${h.value.length} bytes)`)).join(', ');
  }
}

/** What `publish` accepts as headers. */
export type ZaichikHeadersInit =
  | ZaichikHeaders
  | Readonly<Record<string, string | Uint8Array>>
  | Iterable<readonly [string, string | Uint8Array]>;
