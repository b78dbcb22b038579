import { ZaichikHeaders } from './headers.js';

const lenient = new TextDecoder();

/** The header that marks a tombstone on a topic that keeps the latest value per key. */
export const TOMBSTONE_HEADER = 'zaichik-tombstone';

/** A message delivered to a subscription. Its key, payload and headers are the client's own copies. */
export class ZaichikMessage {
  private headerBlock: Uint8Array;
  private parsedHeaders: ZaichikHeaders | null = null;

  constructor(
    /** The topic it was published to. */
    readonly topic: string,
    /**
     * Its sequence in the topic: 1 for the topic's first message and one more for each message stored after it, never
     * reused. Commit with it. (Exact up to 2^53 − 1.)
     */
    readonly sequence: number,
    /** When the server accepted it, in Unix milliseconds. */
    readonly timestampMs: number,
    /** The key it was published with, or null for an unkeyed message (an empty key is a key). */
    readonly key: Uint8Array | null,
    /** The body as published. */
    readonly payload: Uint8Array,
    /** Its header block as published (or headers), empty for none. */
    headers: Uint8Array | ZaichikHeaders = new Uint8Array(0),
    /**
     * How many times the server has delivered it to this subscription's consumer (for a consumer group, to any member),
     * this delivery included: 1 the first time, more for a redelivery. Always 1 outside a group or redelivery.
     */
    readonly deliveryCount: number = 1,
  ) {
    if (headers instanceof ZaichikHeaders) {
      this.parsedHeaders = headers;
      this.headerBlock = headers.toBlock();
    } else {
      this.headerBlock = headers;
    }
  }

  /** When the server accepted it. */
  get timestamp(): Date {
    return new Date(this.timestampMs);
  }

  /** The key decoded as UTF-8, or null for an unkeyed message. */
  get keyText(): string | null {
    return this.key === null ? null : lenient.decode(this.key);
  }

  /** The payload decoded as UTF-8. */
  get payloadText(): string {
    return lenient.decode(this.payload);
  }

  /** The payload parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.payloadText) as T;
  }

  /** Its headers (empty when it has none). */
  get headers(): ZaichikHeaders {
    if (this.parsedHeaders === null) {
      this.parsedHeaders = this.headerBlock.length === 0 ? new ZaichikHeaders() : ZaichikHeaders.fromBlock(this.headerBlock);
    }
    return this.parsedHeaders;
  }

  /** The header block as it travelled. */
  get headerBytes(): Uint8Array {
    return this.headerBlock;
  }

  /** A keyed, empty message with the `zaichik-tombstone` header: deletes its key on a latest-value topic. */
  get isTombstone(): boolean {
    return this.key !== null && this.payload.length === 0 && this.headerBlock.length > 0 && this.headers.has(TOMBSTONE_HEADER);
  }

  toString(): string {
    return `${this.topic}#${this.sequence}`;
  }
}
