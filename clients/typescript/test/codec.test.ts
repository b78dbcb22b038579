/**
 * The codec against docs/protocol.md (version 8): every worked example encodes and decodes byte for byte, frames split
 * across arbitrary chunk boundaries decode, and malformed input raises a typed error.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEFAULT_MAX_FRAME_SIZE,
  ErrorCode,
  FrameDecoder,
  FrameType,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  ZaichikError,
  ZaichikHeaders,
  ZaichikProtocolError,
  decodeFrame,
  decodeHeaderBlock,
  encodeFrame,
  encodeFrames,
  encodeHeaderBlock,
  errorCodeName,
  frameTypeName,
  isSupportedVersion,
  type Frame,
} from '../src/index.js';

function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  assert.equal(clean.length % 2, 0, 'hex has an even number of digits');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  }
  return out;
}

function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(' ');
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The worked examples of docs/protocol.md, in the order the document gives them. */
const examples: Array<{ name: string; bytes: string; frame: Frame }> = [
  {
    name: 'Client Hello, version 8, token orders-writer-01, producer 7001',
    bytes: `00 00 00 22 01 00 08 00 00 00 00 01 00 10
            6F 72 64 65 72 73 2D 77 72 69 74 65 72 2D 30 31
            00 00 00 00 00 00 1B 59`,
    frame: { type: FrameType.Hello, version: 8, idleTimeoutMs: 0, token: 'orders-writer-01', producerId: 7001n },
  },
  {
    name: 'Server Hello, idle timeout 60 s',
    bytes: '00 00 00 10 01 00 08 00 00 EA 60 00 00 00 00 00 00 00 00 00',
    frame: { type: FrameType.Hello, version: 8, idleTimeoutMs: 60_000, token: null, producerId: 0n },
  },
  {
    name: 'Ping, nonce 1',
    bytes: '00 00 00 09 08 00 00 00 00 00 00 00 01',
    frame: { type: FrameType.Ping, nonce: 1n },
  },
  {
    name: 'Pong, nonce 1',
    bytes: '00 00 00 09 09 00 00 00 00 00 00 00 01',
    frame: { type: FrameType.Pong, nonce: 1n },
  },
  {
    name: 'CreateTopic orders, retention 1 day, Interval every 500 ms',
    bytes: `00 00 00 43 02
            00 00 00 00 00 00 00 01
            00 06 6F 72 64 65 72 73
            00 00 00 00 05 26 5C 00
            00 00 00 00 00 00 00 00
            02
            00 00 00 00 00 00 01 F4
            00 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00
            00
            00 00 00 00 00 00 00 00`,
    frame: {
      type: FrameType.CreateTopic,
      requestId: 1n,
      topic: 'orders',
      retentionTtlMs: 86_400_000n,
      compactionWindowMs: 0n,
      durability: 2,
      commitIntervalMs: 500n,
      maxMessages: 0n,
      maxBytes: 0n,
      keepLatestPerKey: false,
      tombstoneRetentionMs: 0n,
    },
  },
  {
    name: 'Publish requestId 7, orders, key a1, payload hello',
    bytes:
      '00 00 00 2B 03 00 00 00 00 00 00 00 07 00 06 6F 72 64 65 72 73 01 00 02 61 31 00 00 00 05 68 65 6C 6C 6F 00 00 00 00 00 00 00 00 00 00 00 00',
    frame: {
      type: FrameType.Publish,
      requestId: 7n,
      topic: 'orders',
      key: text('a1'),
      payload: text('hello'),
      producerSequence: 0n,
      headers: new Uint8Array(0),
    },
  },
  {
    name: 'Ack of the Publish, sequence 1, durable',
    bytes: '00 00 00 14 11 00 00 00 00 00 00 00 07 01 00 00 00 00 00 00 00 01 00 01',
    frame: { type: FrameType.Ack, requestId: 7n, sequence: 1n, duplicate: false, durable: true },
  },
  {
    name: 'Idempotent Publish requestId 8, no key, payload hi, producer sequence 1, header trace=t1',
    bytes: `00 00 00 32 03
            00 00 00 00 00 00 00 08
            00 06 6F 72 64 65 72 73
            00
            00 00 00 02 68 69
            00 00 00 00 00 00 00 01
            00 00 00 0E
            01 00 05 74 72 61 63 65 00 00 00 02 74 31`,
    frame: {
      type: FrameType.Publish,
      requestId: 8n,
      topic: 'orders',
      key: null,
      payload: text('hi'),
      producerSequence: 1n,
      headers: hex('01 00 05 74 72 61 63 65 00 00 00 02 74 31'),
    },
  },
  {
    name: 'Subscribe requestId 2, orders, Retained, prefetch 10, durable billing',
    bytes: `00 00 00 33 04
            00 00 00 00 00 00 00 02
            00 06 6F 72 64 65 72 73
            00
            00 00 00 00 00 00 00 00
            00 00 00 0A
            01 00 07 62 69 6C 6C 69 6E 67
            00
            00
            00 00 00 00
            00 00 00 00
            00`,
    frame: {
      type: FrameType.Subscribe,
      requestId: 2n,
      topic: 'orders',
      from: 0,
      position: 0n,
      prefetch: 10,
      durableName: 'billing',
      ackPolicy: 0,
      group: null,
      ackWaitMs: 0,
      maxDeliver: 0,
      deadLetterTopic: null,
    },
  },
  {
    name: 'Ack of the Subscribe, starting at 1',
    bytes: '00 00 00 14 11 00 00 00 00 00 00 00 02 01 00 00 00 00 00 00 00 01 00 00',
    frame: { type: FrameType.Ack, requestId: 2n, sequence: 1n, duplicate: false, durable: false },
  },
  {
    name: 'Message orders #2 at 2026-11-27T10:00:00Z with header trace=t1',
    bytes: `00 00 00 36 10
            00 06 6F 72 64 65 72 73
            00 00 00 00 00 00 00 02
            00 00 01 A2 1C 72 91 00
            00
            00 00 00 02 68 69
            00 00 00 0E
            01 00 05 74 72 61 63 65
            00 00 00 02 74 31
            00 00 00 01`,
    frame: {
      type: FrameType.Message,
      topic: 'orders',
      sequence: 2n,
      timestampMs: 1_795_773_600_000n,
      key: null,
      payload: text('hi'),
      headers: hex('01 00 05 74 72 61 63 65 00 00 00 02 74 31'),
      deliveryCount: 1,
    },
  },
  {
    name: 'Subscribe from sequence 42, prefetch 1',
    bytes: `00 00 00 2A 04
            00 00 00 00 00 00 00 03
            00 06 6F 72 64 65 72 73
            02
            00 00 00 00 00 00 00 2A
            00 00 00 01
            00 00 00
            00 00 00 00 00 00 00 00
            00`,
    frame: {
      type: FrameType.Subscribe,
      requestId: 3n,
      topic: 'orders',
      from: 2,
      position: 42n,
      prefetch: 1,
      durableName: null,
      ackPolicy: 0,
      group: null,
      ackWaitMs: 0,
      maxDeliver: 0,
      deadLetterTopic: null,
    },
  },
  {
    name: 'Subscribe to the consumer group invoicing with dead letters',
    bytes: `00 00 00 42 04
            00 00 00 00 00 00 00 04
            00 06 6F 72 64 65 72 73
            00
            00 00 00 00 00 00 00 00
            00 00 00 0A
            00
            00
            01 00 09 69 6E 76 6F 69 63 69 6E 67
            00 00 EA 60
            00 00 00 05
            01 00 0B 6F 72 64 65 72 73 2E 64 65 61 64`,
    frame: {
      type: FrameType.Subscribe,
      requestId: 4n,
      topic: 'orders',
      from: 0,
      position: 0n,
      prefetch: 10,
      durableName: null,
      ackPolicy: 0,
      group: 'invoicing',
      ackWaitMs: 60_000,
      maxDeliver: 5,
      deadLetterTopic: 'orders.dead',
    },
  },
  {
    name: 'Single Commit of orders #2',
    bytes: '00 00 00 12 06 02 00 06 6F 72 64 65 72 73 00 00 00 00 00 00 00 02',
    frame: { type: FrameType.Commit, mode: 2, topic: 'orders', sequence: 2n },
  },
  {
    name: 'Nack of orders #3, 5 s',
    bytes: '00 00 00 15 0A 00 06 6F 72 64 65 72 73 00 00 00 00 00 00 00 03 00 00 13 88',
    frame: { type: FrameType.Nack, topic: 'orders', sequence: 3n, delayMs: 5000 },
  },
  {
    name: 'Error refusing a Hello, UnsupportedVersion, v2',
    bytes: '00 00 00 08 12 00 00 01 00 02 76 32',
    frame: { type: FrameType.Error, requestId: null, code: ErrorCode.UnsupportedVersion, text: 'v2' },
  },
  {
    name: 'Bare Commit',
    bytes: '00 00 00 02 06 00',
    frame: { type: FrameType.Commit, mode: 0, topic: null, sequence: 0n },
  },
  {
    name: 'Close',
    bytes: '00 00 00 01 07',
    frame: { type: FrameType.Close },
  },
];

describe('worked examples of docs/protocol.md', () => {
  for (const example of examples) {
    test(`encodes: ${example.name}`, () => {
      assert.equal(toHex(encodeFrame(example.frame)), toHex(hex(example.bytes)));
    });
    test(`decodes: ${example.name}`, () => {
      assert.deepEqual(decodeFrame(hex(example.bytes)), example.frame);
    });
  }

  test('the header block example: one text header trace = t1', () => {
    const block = hex('01 00 05 74 72 61 63 65 00 00 00 02 74 31');
    assert.equal(toHex(new ZaichikHeaders().add('trace', 't1').toBlock()), toHex(block));
    assert.equal(toHex(encodeHeaderBlock([{ key: 'trace', value: text('t1'), isText: true }])), toHex(block));
    const [entry, ...rest] = decodeHeaderBlock(block);
    assert.equal(rest.length, 0);
    assert.equal(entry?.key, 'trace');
    assert.equal(entry?.isText, true);
    assert.deepEqual(entry?.value, text('t1'));
    assert.equal(ZaichikHeaders.fromBlock(block).getText('trace'), 't1');
  });

  test('the string "🐇ж" is 6 bytes on the wire', () => {
    const bytes = encodeFrame({ type: FrameType.Unsubscribe, requestId: 0n, topic: '🐇ж' });
    assert.equal(bytes.length, 4 + 1 + 8 + 2 + 6);
    assert.equal(toHex(bytes.subarray(13, 15)), '00 06');
    assert.deepEqual(decodeFrame(bytes), { type: FrameType.Unsubscribe, requestId: 0n, topic: '🐇ж' });
  });
});

describe('round trips', () => {
  const extremes: Frame[] = [
    { type: FrameType.Ack, requestId: (1n << 64n) - 1n, sequence: (1n << 63n) - 1n, duplicate: true, durable: true },
    { type: FrameType.Ack, requestId: 0n, sequence: null, duplicate: false, durable: false },
    { type: FrameType.Error, requestId: 5n, code: 41, text: '' },
    {
      type: FrameType.Message,
      topic: 't',
      sequence: 1n,
      timestampMs: -1n,
      key: new Uint8Array(0),
      payload: new Uint8Array(0),
      headers: new ZaichikHeaders().add('a', new Uint8Array([0xff, 0x00])).add('a', 'ж').toBlock(),
      deliveryCount: 0xffffffff,
    },
    {
      type: FrameType.CreateTopic,
      requestId: 9n,
      topic: 'x',
      retentionTtlMs: (1n << 63n) - 1n,
      compactionWindowMs: -(1n << 63n),
      durability: 3,
      commitIntervalMs: 0n,
      maxMessages: 1n,
      maxBytes: 2n,
      keepLatestPerKey: true,
      tombstoneRetentionMs: 3n,
    },
    { type: FrameType.Hello, version: 7, idleTimeoutMs: 0, token: '\uFEFFbom kept', producerId: (1n << 64n) - 1n },
    { type: FrameType.Commit, mode: 1, topic: 'a.b', sequence: 17n },
  ];
  for (const frame of extremes) {
    test(`${JSON.stringify(frame, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)).slice(0, 80)}`, () => {
      assert.deepEqual(decodeFrame(encodeFrame(frame)), frame);
    });
  }

  for (const version of [7, 8]) {
    test(`a Hello of version ${version} carries every field (7 and 8 share the layout)`, () => {
      assert.deepEqual(decodeFrame(hex('00 00 00 14 01 00 0' + version + ' 00 00 EA 60 01 00 02 74 6B 00 00 00 00 00 00 00 2A')), {
        type: FrameType.Hello,
        version,
        idleTimeoutMs: 60_000,
        token: 'tk',
        producerId: 42n,
      });
    });
  }

  test('a Hello of version 9 carries only its version', () => {
    assert.deepEqual(decodeFrame(hex('00 00 00 14 01 00 09 00 00 EA 60 01 00 02 74 6B 00 00 00 00 00 00 00 2A')), {
      type: FrameType.Hello,
      version: 9,
      idleTimeoutMs: 0,
      token: null,
      producerId: 0n,
    });
  });

  test('the client speaks versions 7 to 8', () => {
    assert.equal(PROTOCOL_VERSION, 8);
    assert.equal(MIN_PROTOCOL_VERSION, 7);
    assert.deepEqual([5, 6, 7, 8, 9, 10].filter(isSupportedVersion), [7, 8]);
  });

  test('a Hello of another version carries only its version', () => {
    // A version 2 Hello has no more fields: it is read as version 2, not refused as malformed.
    assert.deepEqual(decodeFrame(hex('00 00 00 03 01 00 02')), {
      type: FrameType.Hello,
      version: 2,
      idleTimeoutMs: 0,
      token: null,
      producerId: 0n,
    });
  });
});

/** A stream of every example frame, back to back. */
const stream = encodeFrames(examples.map((e) => e.frame));
const expected = examples.map((e) => e.frame);

function decodeChunks(chunks: Uint8Array[]): Frame[] {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    frames.push(...decoder.drain());
  }
  assert.equal(decoder.buffered, 0);
  return frames;
}

/** A small deterministic generator (mulberry32) so that a failure can be reproduced. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Redirect (0x13), from cluster nodes', () => {
  // The fields of Zaichik.Protocol's RedirectFrame, in order: bool hasRequestId, [u64 requestId], string topic,
  // string leaderNode, string endpoint.
  const withId = `00 00 00 2D 13 01 00 00 00 00 00 00 00 07
                  00 06 6F 72 64 65 72 73
                  00 02 6E 32
                  00 15 77 73 3A 2F 2F 31 30 2E 30 2E 30 2E 32 3A 38 38 39 31 2F 77 73`;
  const redirect: Frame = { type: FrameType.Redirect, requestId: 7n, topic: 'orders', leaderNode: 'n2', endpoint: 'ws://10.0.0.2:8891/ws' };

  test('with a request id: encodes and decodes byte for byte', () => {
    assert.equal(toHex(encodeFrame(redirect)), toHex(hex(withId)));
    assert.deepEqual(decodeFrame(hex(withId)), redirect);
  });

  test('without a request id (a Commit): the flag alone', () => {
    const bytes = hex('00 00 00 19 13 00 00 01 74 00 02 6E 31 00 0E 31 32 37 2E 30 2E 30 2E 31 3A 39 30 30 31');
    const frame: Frame = { type: FrameType.Redirect, requestId: null, topic: 't', leaderNode: 'n1', endpoint: '127.0.0.1:9001' };
    assert.deepEqual(decodeFrame(bytes), frame);
    assert.equal(toHex(encodeFrame(frame)), toHex(bytes));
    assert.equal(frameTypeName(0x13), 'Redirect');
  });

  test('a request id of 2^64 - 1 and empty strings round-trip', () => {
    const frame: Frame = { type: FrameType.Redirect, requestId: (1n << 64n) - 1n, topic: '', leaderNode: '', endpoint: '' };
    assert.deepEqual(decodeFrame(encodeFrame(frame)), frame);
  });
});

describe('frames split across message boundaries', () => {
  test('all frames in one message', () => {
    assert.deepEqual(decodeChunks([stream]), expected);
  });

  test('one byte per message', () => {
    assert.deepEqual(
      decodeChunks([...stream].map((b) => new Uint8Array([b]))),
      expected,
    );
  });

  test('split once at every position', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      assert.deepEqual(decodeChunks([stream.subarray(0, cut), stream.subarray(cut)]), expected, `cut at ${cut}`);
    }
  });

  test('split at random positions (200 seeded runs)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed);
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < stream.length; ) {
        const size = 1 + Math.floor(next() * 40);
        chunks.push(stream.slice(i, i + size));
        i += size;
      }
      assert.deepEqual(decodeChunks(chunks), expected, `seed ${seed}`);
    }
  });

  test('the length prefix split across messages, ArrayBuffer chunks', () => {
    const decoder = new FrameDecoder();
    const ping = encodeFrame({ type: FrameType.Ping, nonce: 99n });
    decoder.push(ping.slice(0, 2).buffer);
    assert.equal(decoder.next(), undefined);
    decoder.push(ping.slice(2, 5).buffer);
    assert.equal(decoder.next(), undefined);
    decoder.push(ping.slice(5).buffer);
    assert.deepEqual(decoder.next(), { type: FrameType.Ping, nonce: 99n });
    assert.equal(decoder.next(), undefined);
  });

  test('a large Message split in 64 KiB pieces', () => {
    const payload = new Uint8Array(1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
    const frame: Frame = {
      type: FrameType.Message,
      topic: 'big',
      sequence: 3n,
      timestampMs: 1n,
      key: text('k'),
      payload,
      headers: new Uint8Array(0),
      deliveryCount: 1,
    };
    const bytes = encodeFrame(frame);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 65536) chunks.push(bytes.slice(i, i + 65536));
    assert.deepEqual(decodeChunks(chunks), [frame]);
  });
});

function assertMalformed(bytes: Uint8Array, code: number = ErrorCode.MalformedFrame, pattern?: RegExp): void {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  assert.throws(
    () => decoder.next(),
    (error: unknown) => {
      assert.ok(error instanceof ZaichikProtocolError, `a ZaichikProtocolError, not ${String(error)}`);
      assert.ok(error instanceof ZaichikError);
      assert.equal(error.code, code);
      assert.equal(error.codeName, errorCodeName(code));
      if (pattern !== undefined) assert.match(error.message, pattern);
      return true;
    },
  );
  // The decoder stays failed.
  assert.throws(() => decoder.next(), ZaichikProtocolError);
}

describe('malformed input raises ZaichikProtocolError', () => {
  test('length 0', () => assertMalformed(hex('00 00 00 00 08'), ErrorCode.MalformedFrame, /length is 0/));
  test('unknown type byte', () => assertMalformed(hex('00 00 00 01 0B'), ErrorCode.MalformedFrame, /unknown frame type 0x0B/));
  test('type 0x14 is reserved', () => assertMalformed(hex('00 00 00 01 14'), ErrorCode.MalformedFrame, /unknown frame type 0x14/));
  test('a Redirect without its strings', () => assertMalformed(hex('00 00 00 02 13 00'), ErrorCode.MalformedFrame, /ends inside/));
  test('a Redirect with flag byte 2', () => assertMalformed(hex('00 00 00 08 13 02 00 00 00 00 00 00'), ErrorCode.MalformedFrame, /flag byte is 2/));
  test('body ends inside a field', () => assertMalformed(hex('00 00 00 05 08 00 00 00 00'), ErrorCode.MalformedFrame, /ends inside/));
  test('bytes left after the last field', () =>
    assertMalformed(hex('00 00 00 0A 08 00 00 00 00 00 00 00 01 FF'), ErrorCode.MalformedFrame, /trailing/));
  test('a Close with a field', () => assertMalformed(hex('00 00 00 02 07 00')));
  test('flag byte 2', () => assertMalformed(hex('00 00 00 14 11 00 00 00 00 00 00 00 07 02 00 00 00 00 00 00 00 01 00 01'), ErrorCode.MalformedFrame, /flag byte is 2/));
  test('overlong UTF-8 in a string', () =>
    assertMalformed(hex('00 00 00 0D 05 00 00 00 00 00 00 00 01 00 02 C0 80'), ErrorCode.MalformedFrame, /UTF-8/));
  test('an encoded surrogate in a string', () =>
    assertMalformed(hex('00 00 00 0E 05 00 00 00 00 00 00 00 01 00 03 ED A0 80'), ErrorCode.MalformedFrame, /UTF-8/));
  test('a string running past the frame', () => assertMalformed(hex('00 00 00 0D 05 00 00 00 00 00 00 00 01 00 09 61 62')));
  test('a sequence above 2^63 - 1', () =>
    assertMalformed(hex('00 00 00 14 11 00 00 00 00 00 00 00 07 01 80 00 00 00 00 00 00 00 00 00'), ErrorCode.MalformedFrame, /2\^63/));
  test('Commit mode 3', () => assertMalformed(hex('00 00 00 02 06 03'), ErrorCode.MalformedFrame, /mode 3/));
  test('Subscribe from 4', () => {
    const bytes = encodeFrame(examples[11]!.frame);
    bytes[4 + 1 + 8 + 8] = 4;
    assertMalformed(bytes, ErrorCode.MalformedFrame, /from 4/);
  });
  test('Subscribe ackPolicy 2', () => {
    const bytes = encodeFrame(examples[11]!.frame);
    // type, requestId, topic, from, position, prefetch, durableName flag, then ackPolicy
    bytes[4 + 1 + 8 + 8 + 1 + 8 + 4 + 1] = 2;
    assertMalformed(bytes, ErrorCode.MalformedFrame, /ackPolicy 2/);
  });
  test('CreateTopic durability 4', () => {
    const bytes = encodeFrame(examples[4]!.frame);
    bytes[4 + 1 + 8 + 8 + 8 + 8] = 4;
    assertMalformed(bytes, ErrorCode.MalformedFrame, /durability 4/);
  });
  test('a byte array running past the frame', () =>
    assertMalformed(hex('00 00 00 17 03 00 00 00 00 00 00 00 01 00 01 74 00 00 00 00 FF 00 00 00 00 00 00'), ErrorCode.MalformedFrame, /runs past/));

  describe('header blocks', () => {
    const withBlock = (block: string): Uint8Array => {
      // The encoder carries a block as it is given; the decoder checks it.
      const frame = examples[10]!.frame as Extract<Frame, { type: 0x10 }>;
      return encodeFrame({ ...frame, headers: hex(block) });
    };
    test('kind 2', () => assertMalformed(withBlock('02 00 01 61 00 00 00 00'), ErrorCode.MalformedFrame, /kind 2/));
    test('an empty key', () => assertMalformed(withBlock('01 00 00 00 00 00 00'), ErrorCode.MalformedFrame, /empty key/));
    test('ends inside an entry', () => assertMalformed(withBlock('01 00'), ErrorCode.MalformedFrame, /ends inside/));
    test('a value running past the block', () =>
      assertMalformed(withBlock('01 00 01 61 00 00 00 05 62'), ErrorCode.MalformedFrame, /runs past/));
    test('a text value that is not UTF-8', () =>
      assertMalformed(withBlock('01 00 01 61 00 00 00 01 FF'), ErrorCode.MalformedFrame, /not valid UTF-8/));
    test('a byte value need not be UTF-8', () => {
      const frame = decodeFrame(withBlock('00 00 01 61 00 00 00 01 FF')) as Extract<Frame, { type: 0x10 }>;
      assert.deepEqual(ZaichikHeaders.fromBlock(frame.headers).get('a')?.value, new Uint8Array([0xff]));
    });
  });

  test('FrameTooLarge as soon as the length prefix is known', () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(hex('00 00 04 01'));
    assert.throws(
      () => decoder.next(),
      (error: unknown) => error instanceof ZaichikProtocolError && error.code === ErrorCode.FrameTooLarge && error.codeName === 'FrameTooLarge',
    );
  });

  test('the default limit is 1 MiB + 32 KiB', () => {
    assert.equal(DEFAULT_MAX_FRAME_SIZE, 1_081_344);
    const decoder = new FrameDecoder();
    decoder.push(hex('00 10 80 00'));
    assert.equal(decoder.next(), undefined, 'exactly the limit waits for its body');
    const over = new FrameDecoder();
    over.push(hex('00 10 80 01'));
    assert.throws(() => over.next(), (e: unknown) => e instanceof ZaichikProtocolError && e.code === ErrorCode.FrameTooLarge);
  });

  test('decodeFrame refuses a partial frame and bytes after one', () => {
    assert.throws(() => decodeFrame(hex('00 00 00 09 08 00 00')), ZaichikProtocolError);
    assert.throws(() => decodeFrame(hex('00 00 00 01 07 00')), ZaichikProtocolError);
  });
});

describe('encoding refuses values a field cannot carry', () => {
  test('a sequence above 2^63 - 1', () => {
    assert.throws(() => encodeFrame({ type: FrameType.Commit, mode: 1, topic: 't', sequence: 1n << 63n }), RangeError);
  });
  test('a u32 out of range', () => {
    assert.throws(() => encodeFrame({ type: FrameType.Nack, topic: 't', sequence: 1n, delayMs: 2 ** 32 }), RangeError);
  });
  test('an undefined durability', () => {
    const frame = { ...(examples[4]!.frame as Extract<Frame, { type: 0x02 }>), durability: 4 } as unknown as Frame;
    assert.throws(() => encodeFrame(frame), RangeError);
  });
  test('a string longer than 65535 bytes', () => {
    assert.throws(() => encodeFrame({ type: FrameType.Unsubscribe, requestId: 1n, topic: 'x'.repeat(65536) }), RangeError);
  });
  test('an empty header key', () => {
    assert.throws(() => encodeHeaderBlock([{ key: '', value: new Uint8Array(0), isText: true }]), RangeError);
  });
});

describe('error codes', () => {
  test('codes and names match the protocol table', () => {
    const table: Record<number, string> = {
      0: 'Unknown', 1: 'UnsupportedVersion', 2: 'MalformedFrame', 3: 'FrameTooLarge', 4: 'ProtocolViolation',
      10: 'InvalidTopicName', 11: 'TopicNotFound', 12: 'TopicSettingsConflict', 13: 'KeyTooLarge', 14: 'InvalidArgument',
      15: 'AlreadySubscribed', 16: 'NotSubscribed', 17: 'PayloadTooLarge', 19: 'HeadersTooLarge', 20: 'StorageFailure',
      21: 'ServerShuttingDown', 22: 'ConsumerPositionLost', 23: 'CommitNotDurable', 30: 'TooManyConnections',
      31: 'TooManySubscriptions', 32: 'TooManyTopics', 33: 'TooManyPublishesInFlight', 34: 'IdleTimeout',
      40: 'AuthenticationFailed', 41: 'NotAuthorized', 50: 'NoLeader', 51: 'NotSupportedInCluster', 52: 'NotLeader',
    };
    for (const [code, name] of Object.entries(table)) {
      assert.equal(errorCodeName(Number(code)), name);
      assert.equal(ErrorCode[name as keyof typeof ErrorCode], Number(code));
    }
    assert.equal(Object.keys(ErrorCode).length, Object.keys(table).length);
    assert.equal(errorCodeName(18), 'Unknown(18)');
  });

  test('ZaichikError carries the code and its name', () => {
    const error = new ZaichikError(16, "not subscribed to 'x'");
    assert.equal(error.code, ErrorCode.NotSubscribed);
    assert.equal(error.codeName, 'NotSubscribed');
    assert.equal(error.serverMessage, "not subscribed to 'x'");
    assert.equal(error.message, "server error NotSubscribed: not subscribed to 'x'");
    assert.equal(error.name, 'ZaichikError');
    assert.ok(error instanceof Error);
  });
});
