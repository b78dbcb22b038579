/**
 * The client against an in-process fake broker (test/fake.ts): the handshake, request ids, commit modes, confirmations,
 * heartbeats, and reconnect with resubscribe where the subscription left off.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import {
  ErrorCode,
  FrameType,
  ZaichikClient,
  ZaichikConnectionError,
  ZaichikError,
  ZaichikTimeoutError,
  encodeFrame,
  reconnectDelay,
  type Frame,
  type ZaichikClientOptions,
  type ZaichikSubscriptionGap,
} from '../src/index.js';
import { FakeServer, ack, delay, message, type FakeSocket } from './fake.js';

type Of<T extends Frame['type']> = Extract<Frame, { type: T }>;

const clients: ZaichikClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) {
    await client.close();
  }
});

async function connect(server: FakeServer, options: ZaichikClientOptions = {}): Promise<ZaichikClient> {
  const client = await ZaichikClient.connect('ws://broker.test/ws', {
    webSocketFactory: server.factory,
    closeTimeoutMs: 50,
    reconnect: { minDelayMs: 5, maxDelayMs: 20 },
    ...options,
  });
  clients.push(client);
  return client;
}

/** Subscribes, answering the Subscribe with an Ack that starts at `start`. */
async function subscribe(
  client: ZaichikClient,
  socket: FakeSocket,
  topic: string,
  options: Parameters<ZaichikClient['subscribe']>[1] = {},
  start = 1n,
) {
  const from = socket.received.length;
  const subscribing = client.subscribe(topic, options);
  const frame = await socket.nextOfType(FrameType.Subscribe, from);
  socket.sendFrames(ack(frame.requestId, start));
  const subscription = await subscribing;
  return { subscription, frame };
}

describe('handshake', () => {
  test('sends Hello 8 with the token and producer id, and reads the server Hello', async () => {
    const server = new FakeServer({ idleTimeoutMs: 30_000 });
    const client = await connect(server, { token: 'orders-writer-01', producerId: 7001n });
    const hello = server.last.received[0] as Of<0x01>;
    assert.deepEqual(hello, { type: FrameType.Hello, version: 8, idleTimeoutMs: 0, token: 'orders-writer-01', producerId: 7001n });
    assert.equal(server.last.binaryType, 'arraybuffer');
    assert.equal(client.serverProtocolVersion, 8);
    assert.equal(client.serverIdleTimeoutMs, 30_000);
    assert.equal(client.state, 'connected');
    assert.equal(client.producerId, 7001n);
  });

  test('a server that answers version 7 is served, its idle timeout read', async () => {
    const server = new FakeServer({ idleTimeoutMs: 30_000, answerVersion: 7 });
    const client = await connect(server);
    assert.equal((server.last.received[0] as Of<0x01>).version, 8);
    assert.equal(client.serverProtocolVersion, 7);
    assert.equal(client.serverIdleTimeoutMs, 30_000, 'a version 7 Hello has the same fields');
    const publishing = client.publish('orders', 'x');
    const publish = await server.last.nextOfType(FrameType.Publish);
    server.last.sendFrames(ack(publish.requestId, 1n));
    assert.equal((await publishing).sequence, 1);
  });

  test('a server that speaks only version 7 refuses Hello 8: the client connects again with Hello 7', async () => {
    const server = new FakeServer({ idleTimeoutMs: 30_000, onlyVersion: 7 });
    const client = await connect(server);
    assert.deepEqual(server.sockets.map((socket) => (socket.received[0] as Of<0x01>).version), [8, 7]);
    assert.equal(client.serverProtocolVersion, 7);
    assert.equal(client.serverIdleTimeoutMs, 30_000);
    assert.equal(client.state, 'connected');
  });

  for (const version of [6, 9]) {
    test(`a server Hello of version ${version} rejects with UnsupportedVersion, without a second attempt`, async () => {
      const server = new FakeServer({ answerVersion: version });
      await assert.rejects(
        ZaichikClient.connect('ws://broker.test/ws', { webSocketFactory: server.factory }),
        (error: unknown) =>
          error instanceof ZaichikError &&
          error.code === ErrorCode.UnsupportedVersion &&
          error.message.includes(`answered with protocol version ${version}; this client speaks versions 7 to 8`),
      );
      assert.equal(server.sockets.length, 1);
    });
  }

  for (const code of [ErrorCode.NotLeader, 999]) {
    test(`an Error with code ${code} fails the request with its text and the connection stays open`, async () => {
      const server = new FakeServer();
      const client = await connect(server);
      const publishing = client.publish('orders', 'x');
      const publish = await server.last.nextOfType(FrameType.Publish);
      server.last.sendFrames({ type: FrameType.Error, requestId: publish.requestId, code, text: "node n2 leads topic 'orders'; connect to 127.0.0.1:7001" });
      await assert.rejects(
        publishing,
        (error: unknown) =>
          error instanceof ZaichikError && error.code === code && error.serverMessage === "node n2 leads topic 'orders'; connect to 127.0.0.1:7001",
      );
      assert.equal(client.state, 'connected');
      const from = server.last.received.length;
      const again = client.publish('orders', 'y');
      const second = await server.last.nextOfType(FrameType.Publish, from);
      server.last.sendFrames(ack(second.requestId, 1n));
      assert.equal((await again).sequence, 1);
    });
  }

  test('a random non-zero producer id by default, none without idempotence', async () => {
    const server = new FakeServer();
    const a = await connect(server);
    assert.notEqual(a.producerId, 0n);
    const b = await connect(server, { idempotence: false });
    assert.equal(b.producerId, 0n);
    assert.equal((server.last.received[0] as Of<0x01>).producerId, 0n);
  });

  test('an Error instead of Hello rejects with ZaichikError', async () => {
    const server = new FakeServer({ autoHello: false });
    server.handler = (socket, frame) => {
      if (frame.type === FrameType.Hello) {
        socket.sendFrames({ type: FrameType.Error, requestId: null, code: ErrorCode.AuthenticationFailed, text: 'unknown token' });
        socket.serverClose();
      }
    };
    await assert.rejects(
      ZaichikClient.connect('ws://broker.test/ws', { webSocketFactory: server.factory, token: 'wrong-token-000000' }),
      (error: unknown) => error instanceof ZaichikError && error.code === 40 && error.codeName === 'AuthenticationFailed',
    );
  });

  test('an unreachable broker rejects with ZaichikConnectionError', async () => {
    const server = new FakeServer({ down: true });
    await assert.rejects(
      ZaichikClient.connect('ws://broker.test/ws', { webSocketFactory: server.factory }),
      (error: unknown) => error instanceof ZaichikConnectionError && /ECONNREFUSED/.test(error.message),
    );
  });

  test('the Hello and the first frames in one message, split anywhere', async () => {
    const server = new FakeServer({ autoHello: false });
    server.handler = (socket, frame) => {
      if (frame.type === FrameType.Hello) {
        const hello = encodeFrame({ type: FrameType.Hello, version: 7, idleTimeoutMs: 0, token: null, producerId: 0n });
        const ping = encodeFrame({ type: FrameType.Ping, nonce: 5n });
        const both = new Uint8Array(hello.length + ping.length);
        both.set(hello);
        both.set(ping, hello.length);
        socket.sendBytes(both, 3);
      }
    };
    const client = await connect(server);
    assert.equal(client.serverIdleTimeoutMs, null);
    const pong = await server.last.nextOfType(FrameType.Pong);
    assert.equal(pong.nonce, 5n, 'a server Ping is answered with its nonce');
  });

  test('refuses a URL that is not ws, wss, http or https', async () => {
    await assert.rejects(ZaichikClient.connect('ftp://x/ws'), TypeError);
  });
});

describe('requests', () => {
  test('replies are matched by request id, in any order', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    const socket = server.last;
    const first = client.publish('orders', 'a', { key: 'k1' });
    const second = client.publish('orders', new Uint8Array([1, 2]), { headers: { trace: 't1' } });
    const third = client.createTopic('orders', { retentionTtlMs: 86_400_000, durability: 'interval', commitIntervalMs: 500 });
    const p1 = await socket.nextOfType(FrameType.Publish);
    const p2 = await socket.next((f) => f.type === FrameType.Publish && f !== p1) as Of<0x03>;
    const create = await socket.nextOfType(FrameType.CreateTopic);
    assert.notEqual(p1.requestId, p2.requestId);
    assert.equal(p1.producerSequence + 1n, p2.producerSequence, 'publishes are numbered in order');
    assert.deepEqual(p1.key, new TextEncoder().encode('k1'));
    assert.deepEqual([...p2.headers], [1, 0, 5, 0x74, 0x72, 0x61, 0x63, 0x65, 0, 0, 0, 2, 0x74, 0x31]);
    assert.equal(create.retentionTtlMs, 86_400_000n);
    assert.equal(create.durability, 2);
    assert.equal(create.commitIntervalMs, 500n);
    // All three went out in one WebSocket message.
    assert.equal(socket.messages.length, 2, 'Hello, then one batch');
    socket.sendFrames(
      { type: FrameType.Error, requestId: create.requestId, code: ErrorCode.TopicSettingsConflict, text: 'retention 1 h' },
      ack(p2.requestId, 2n, false, true),
      ack(p1.requestId, 1n),
    );
    assert.deepEqual(await first, { sequence: 1, duplicate: false, durable: false });
    assert.deepEqual(await second, { sequence: 2, duplicate: false, durable: true });
    await assert.rejects(third, (error: unknown) => {
      assert.ok(error instanceof ZaichikError);
      assert.equal(error.code, 12);
      assert.equal(error.codeName, 'TopicSettingsConflict');
      assert.equal(error.serverMessage, 'retention 1 h');
      return true;
    });
  });

  test('a request without an answer times out', async () => {
    const server = new FakeServer();
    const client = await connect(server, { requestTimeoutMs: 60 });
    await assert.rejects(client.publish('orders', 'x'), (error: unknown) => error instanceof ZaichikTimeoutError && /Publish request \d+ for 'orders'/.test(error.message));
  });

  test('invalid arguments are refused before anything is sent', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    await assert.rejects(client.publish('.hidden', 'x'), TypeError);
    await assert.rejects(client.publish('a b', 'x'), TypeError);
    await assert.rejects(client.subscribe('t', { prefetch: 0 }), RangeError);
    await assert.rejects(client.subscribe('t', { durableName: 'd', group: 'g' }), TypeError);
    await assert.rejects(client.subscribe('t', { durableName: 'd', ackWaitMs: 1000 }), TypeError);
    await assert.rejects(client.subscribe('t', { group: 'g', ackPolicy: 'none' }), TypeError);
    await assert.rejects(client.createTopic('t', { tombstoneRetentionMs: 5 }), RangeError);
    await assert.rejects(client.createTopic('t', { commitIntervalMs: 5, durability: 'always' }), RangeError);
    await assert.rejects(client.publish('t', 'x', { headers: { big: 'x'.repeat(17_000) } }), RangeError);
    assert.equal(server.last.received.length, 1, 'only the Hello went out');
  });

  test('requests beyond maxPendingRequests wait their turn, in order', async () => {
    const server = new FakeServer();
    const client = await connect(server, { maxPendingRequests: 2 });
    const socket = server.last;
    const results = [1, 2, 3, 4].map((n) => client.publish('t', `p${n}`));
    await delay(5);
    const publishes = () => socket.received.filter((f): f is Of<0x03> => f.type === FrameType.Publish);
    assert.equal(publishes().length, 2);
    socket.sendFrames(ack(publishes()[0]!.requestId, 1n));
    await delay(5);
    assert.equal(publishes().length, 3);
    for (const p of publishes().slice(1)) socket.sendFrames(ack(p.requestId, 2n));
    await delay(5);
    socket.sendFrames(ack(publishes()[3]!.requestId, 4n));
    assert.deepEqual(
      publishes().map((p) => new TextDecoder().decode(p.payload)),
      ['p1', 'p2', 'p3', 'p4'],
    );
    assert.deepEqual(publishes().map((p) => p.producerSequence), [1n, 2n, 3n, 4n]);
    await Promise.all(results);
  });
});

describe('subscriptions and commits', () => {
  test('messages arrive in an async iterator; commit is mode 1 up to the sequence', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    const socket = server.last;
    const { subscription, frame } = await subscribe(client, socket, 'orders', { prefetch: 10, from: { sequence: 42 } });
    assert.equal(frame.from, 2);
    assert.equal(frame.position, 42n);
    assert.equal(frame.prefetch, 10);
    assert.equal(subscription.startSequence, 1);
    socket.sendFrames(message('orders', 1n), message('orders', 2n));
    const seen: number[] = [];
    for await (const m of subscription) {
      seen.push(m.sequence);
      assert.equal(m.topic, 'orders');
      assert.equal(m.payloadText, `m${m.sequence}`);
      assert.equal(m.timestamp.toISOString(), '2026-11-27T10:00:00.000Z');
      assert.equal(m.deliveryCount, 1);
      await client.commit(m);
      if (seen.length === 2) break;
    }
    assert.deepEqual(seen, [1, 2]);
    const commits = socket.received.filter((f): f is Of<0x06> => f.type === FrameType.Commit);
    assert.deepEqual(commits, [
      { type: FrameType.Commit, mode: 1, topic: 'orders', sequence: 1n },
      { type: FrameType.Commit, mode: 1, topic: 'orders', sequence: 2n },
    ]);
    const before = socket.received.length;
    await client.commitAll();
    assert.deepEqual(await socket.nextOfType(FrameType.Commit, before), {
      type: FrameType.Commit,
      mode: 0,
      topic: null,
      sequence: 0n,
    });
  });

  test('a group member commits one sequence (mode 2) and can Nack', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    const socket = server.last;
    const { subscription, frame } = await subscribe(client, socket, 'orders', {
      group: 'invoicing',
      prefetch: 10,
      ackWaitMs: 60_000,
      maxDeliver: 5,
      deadLetterTopic: 'orders.dead',
    });
    assert.deepEqual(
      [frame.group, frame.ackWaitMs, frame.maxDeliver, frame.deadLetterTopic, frame.durableName],
      ['invoicing', 60_000, 5, 'orders.dead', null],
    );
    socket.sendFrames(message('orders', 3n), message('orders', 2n, 'again', 2));
    const a = (await subscription.receive())!;
    const b = (await subscription.receive())!;
    assert.equal(b.deliveryCount, 2, 'a redelivery comes out of order and is handed on');
    await client.commit(b);
    await client.nack(a, 5000);
    assert.deepEqual(await socket.nextOfType(FrameType.Commit), { type: FrameType.Commit, mode: 2, topic: 'orders', sequence: 2n });
    assert.deepEqual(await socket.nextOfType(FrameType.Nack), { type: FrameType.Nack, topic: 'orders', sequence: 3n, delayMs: 5000 });
  });

  test('redelivery without a group also commits one sequence; others may not Nack', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    const socket = server.last;
    const { subscription } = await subscribe(client, socket, 'jobs', { ackWaitMs: 1000 });
    socket.sendFrames(message('jobs', 7n));
    await client.commit((await subscription.receive())!);
    assert.deepEqual(await socket.nextOfType(FrameType.Commit), { type: FrameType.Commit, mode: 2, topic: 'jobs', sequence: 7n });
    const { subscription: plain } = await subscribe(client, socket, 'plain');
    socket.sendFrames(message('plain', 1n));
    const m = (await plain.receive())!;
    await assert.rejects(client.nack(m), /not one/);
    await assert.rejects(client.commitOne('plain', 1), /commits up to a sequence/);
  });

  test('ackPolicy none sends no Commit', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    const socket = server.last;
    const { subscription, frame } = await subscribe(client, socket, 'feed', { ackPolicy: 'none', from: 'latest' });
    assert.equal(frame.ackPolicy, 1);
    assert.equal(frame.from, 1);
    socket.sendFrames(message('feed', 1n));
    await client.commit((await subscription.receive())!);
    await delay(5);
    assert.equal(socket.received.filter((f) => f.type === FrameType.Commit).length, 0);
  });

  test('autoCommit commits the previous message when the next is asked for', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    const socket = server.last;
    const { subscription } = await subscribe(client, socket, 'orders', { autoCommit: true });
    socket.sendFrames(message('orders', 1n));
    const iterator = subscription[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value?.sequence, 1);
    await delay(5);
    assert.equal(socket.received.filter((f) => f.type === FrameType.Commit).length, 0, 'not before the next is asked for');
    const next = iterator.next();
    assert.deepEqual(await socket.nextOfType(FrameType.Commit), { type: FrameType.Commit, mode: 1, topic: 'orders', sequence: 1n });
    socket.sendFrames(message('orders', 2n));
    assert.equal((await next).value?.sequence, 2);
  });

  test('subscribing twice to a topic is AlreadySubscribed; unsubscribe ends the iteration', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    const socket = server.last;
    const { subscription } = await subscribe(client, socket, 'orders');
    await assert.rejects(client.subscribe('orders'), (e: unknown) => e instanceof ZaichikError && e.code === ErrorCode.AlreadySubscribed);
    socket.sendFrames(message('orders', 1n));
    server.handler = (s, frame) => {
      if (frame.type === FrameType.Unsubscribe) s.sendFrames(ack(frame.requestId));
    };
    await subscription.unsubscribe();
    const seen: number[] = [];
    for await (const m of subscription) seen.push(m.sequence);
    assert.deepEqual(seen, [1], 'the messages already received, then the end');
  });

  test('receive with a timeout returns undefined', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    const { subscription } = await subscribe(client, server.last, 'orders');
    const started = Date.now();
    assert.equal(await subscription.receive({ timeoutMs: 30 }), undefined);
    assert.ok(Date.now() - started >= 25);
    const controller = new AbortController();
    const waiting = subscription.receive({ signal: controller.signal });
    controller.abort();
    assert.equal(await waiting, undefined);
  });

  test('confirmCommits waits for the Pong of its Ping; CommitNotDurable before it rejects', async () => {
    const server = new FakeServer({ autoPong: false });
    const client = await connect(server);
    const socket = server.last;
    const confirming = client.confirmCommits();
    const ping = await socket.nextOfType(FrameType.Ping);
    let done = false;
    void confirming.then(() => (done = true));
    await delay(5);
    assert.equal(done, false);
    socket.sendFrames({ type: FrameType.Pong, nonce: ping.nonce });
    await confirming;
    const errors: ZaichikError[] = [];
    client.on('serverError', (e) => errors.push(e));
    const failing = client.confirmCommits();
    const ping2 = await socket.nextOfType(FrameType.Ping, socket.received.indexOf(ping) + 1);
    socket.sendFrames(
      { type: FrameType.Error, requestId: null, code: ErrorCode.CommitNotDurable, text: 'disk full' },
      { type: FrameType.Pong, nonce: ping2.nonce },
    );
    await assert.rejects(failing, (e: unknown) => e instanceof ZaichikError && e.codeName === 'CommitNotDurable');
    assert.equal(errors[0]?.code, ErrorCode.CommitNotDurable);
  });
});

describe('heartbeats', () => {
  test('pings a quiet connection, at least three times per server idle timeout', async () => {
    const server = new FakeServer({ idleTimeoutMs: 90 });
    await connect(server, { pingIntervalMs: 15_000 });
    const socket = server.last;
    await delay(100);
    const pings = socket.received.filter((f) => f.type === FrameType.Ping).length;
    assert.ok(pings >= 2, `${pings} pings in 100 ms with a 90 ms idle timeout`);
  });

  test('declares a silent server dead', async () => {
    const server = new FakeServer({ autoPong: false, idleTimeoutMs: 0 });
    const client = await connect(server, { pingIntervalMs: 20, reconnect: { enabled: false } });
    const lost = new Promise<ZaichikConnectionError>((resolve) => client.on('disconnected', resolve));
    const error = await lost;
    assert.match(error.message, /is dead: nothing arrived/);
    assert.equal(client.state, 'closed');
    await assert.rejects(client.publish('t', 'x'), ZaichikConnectionError);
  });
});

describe('connection loss', () => {
  test('a malformed frame from the server ends the connection with the protocol error', async () => {
    const server = new FakeServer();
    const client = await connect(server, { reconnect: { enabled: false } });
    const lost = new Promise<ZaichikConnectionError>((resolve) => client.on('disconnected', resolve));
    const { subscription } = await subscribe(client, server.last, 'orders');
    server.last.sendBytes(new Uint8Array([0, 0, 0, 1, 0x0b]));
    const error = await lost;
    assert.match(error.message, /MalformedFrame: unknown frame type 0x0B/);
    await assert.rejects(subscription.receive(), ZaichikConnectionError, 'the subscription ends with the failure');
  });

  test('without reconnect, pending requests fail with the loss', async () => {
    const server = new FakeServer();
    const client = await connect(server, { reconnect: { enabled: false } });
    const publishing = client.publish('t', 'x');
    await server.last.nextOfType(FrameType.Publish);
    server.last.sendFrames({ type: FrameType.Error, requestId: null, code: ErrorCode.ServerShuttingDown, text: 'stopping' });
    server.last.serverClose(1000, 'closed');
    await assert.rejects(publishing, (e: unknown) => e instanceof ZaichikConnectionError && /closed by the server: server error ServerShuttingDown: stopping/.test(e.message));
  });

  test('reconnects, resubscribes where each subscription left off, and resends unanswered requests', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    const first = server.last;
    const plain = await subscribe(client, first, 'plain', {}, 1n);
    const durable = await subscribe(client, first, 'durable', { durableName: 'billing' }, 1n);
    const group = await subscribe(client, first, 'group', { group: 'workers' }, 1n);
    const fresh = await subscribe(client, first, 'fresh', { from: 'latest' }, 10n);
    first.sendFrames(message('plain', 1n), message('plain', 2n), message('durable', 1n), message('group', 1n));
    const p1 = (await plain.subscription.receive())!;
    await client.commit(p1);
    await plain.subscription.receive();
    await client.commit((await durable.subscription.receive())!);
    await group.subscription.receive();

    const publishing = client.publish('plain', 'after');
    const lostPublish = (await first.nextOfType(FrameType.Publish)) as Of<0x03>;
    const events: string[] = [];
    const gaps: ZaichikSubscriptionGap[] = [];
    client.on('disconnected', () => events.push('disconnected'));
    client.on('reconnected', () => events.push('reconnected'));
    client.on('subscriptionGap', (gap) => gaps.push(gap));

    const next = server.nextSocket();
    first.serverClose(1006);
    const second = await next;
    assert.equal(client.state, 'reconnecting');
    // Subscriptions are restored one after another, each once the last is acknowledged.
    const starts: Record<string, bigint> = { plain: 5n, durable: 2n, group: 2n, fresh: 10n };
    const subscribes = new Map<string, Of<0x04>>();
    for (let i = 0; i < 4; i++) {
      const frame = (await second.next((f) => f.type === FrameType.Subscribe && !subscribes.has(f.topic))) as Of<0x04>;
      subscribes.set(frame.topic, frame);
      // The publish whose Ack was lost waits until the subscriptions are restored.
      assert.equal(second.received.filter((f) => f.type === FrameType.Publish).length, 0);
      second.sendFrames(ack(frame.requestId, starts[frame.topic]!));
    }
    const s = (topic: string) => subscribes.get(topic)!;
    assert.deepEqual([s('plain').from, s('plain').position], [2, 3n], 'an ordinary subscription resumes after the last message it received');
    assert.deepEqual([s('durable').from, s('durable').durableName], [0, 'billing'], 'a durable consumer resumes server-side');
    assert.deepEqual([s('group').from, s('group').group], [0, 'workers'], 'a group resumes server-side');
    assert.deepEqual([s('fresh').from, s('fresh').position], [2, 10n], 'one that received nothing resumes where it started');
    const resent = (await second.nextOfType(FrameType.Publish)) as Of<0x03>;
    assert.equal(resent.requestId, lostPublish.requestId, 'the same request id');
    assert.equal(resent.producerSequence, lostPublish.producerSequence, 'the same producer sequence: stored at most once');
    second.sendFrames(ack(resent.requestId, 3n));
    assert.deepEqual(await publishing, { sequence: 3, duplicate: false, durable: false });
    await delay(5);
    assert.deepEqual(events, ['disconnected', 'reconnected']);
    assert.deepEqual(gaps, [{ topic: 'plain', firstMissed: 3, lastMissed: 4, count: 2 }]);
    assert.equal(client.state, 'connected');

    // A durable consumer's redelivery of what the application committed is dropped and committed again.
    second.sendFrames(message('durable', 1n), message('durable', 2n), message('plain', 5n));
    assert.equal((await durable.subscription.receive())?.sequence, 2);
    assert.deepEqual(await second.nextOfType(FrameType.Commit), { type: FrameType.Commit, mode: 1, topic: 'durable', sequence: 1n });
    assert.equal((await plain.subscription.receive())?.sequence, 5);
  });

  test('a durable name still held by the old connection is retried', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    await subscribe(client, server.last, 'orders', { durableName: 'billing' });
    const next = server.nextSocket();
    server.last.serverClose(1006);
    const second = await next;
    const attempt1 = await second.nextOfType(FrameType.Subscribe);
    second.sendFrames({ type: FrameType.Error, requestId: attempt1.requestId, code: ErrorCode.AlreadySubscribed, text: 'held' });
    const attempt2 = (await second.next((f) => f.type === FrameType.Subscribe && f !== attempt1)) as Of<0x04>;
    assert.notEqual(attempt2.requestId, attempt1.requestId);
    second.sendFrames(ack(attempt2.requestId, 1n));
    await new Promise<void>((resolve) => client.on('reconnected', resolve));
  });

  test('a commit made while reconnecting goes out on the next connection', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    const { subscription } = await subscribe(client, server.last, 'orders');
    server.last.sendFrames(message('orders', 1n));
    const m = (await subscription.receive())!;
    const next = server.nextSocket();
    server.last.serverClose(1006);
    const committing = client.commit(m);
    const second = await next;
    const resubscribe = await second.nextOfType(FrameType.Subscribe);
    second.sendFrames(ack(resubscribe.requestId, 2n));
    await committing;
    assert.deepEqual(await second.nextOfType(FrameType.Commit), { type: FrameType.Commit, mode: 1, topic: 'orders', sequence: 1n });
  });

  test('gives up after maxAttempts and fails what waits', async () => {
    const server = new FakeServer();
    const client = await connect(server, { reconnect: { minDelayMs: 1, maxDelayMs: 2, maxAttempts: 2 } });
    const { subscription } = await subscribe(client, server.last, 'orders');
    server.options.down = true;
    const publishing = client.publish('x', 'y');
    server.last.serverClose(1006);
    await assert.rejects(publishing, (e: unknown) => e instanceof ZaichikConnectionError && /gave up connecting .* after 2 attempts/.test(e.message));
    await assert.rejects(subscription.receive(), ZaichikConnectionError);
    assert.equal(client.state, 'closed');
    assert.equal(server.sockets.length, 3);
  });

  test('the backoff doubles from minDelayMs up to maxDelayMs, with jitter between half and all', () => {
    const options = { enabled: true, minDelayMs: 100, maxDelayMs: 5000, maxAttempts: 0 };
    assert.equal(reconnectDelay(options, 1, 0), 50);
    assert.equal(reconnectDelay(options, 1, 0.999999), 99.99995);
    assert.equal(reconnectDelay(options, 3, 1), 400);
    assert.equal(reconnectDelay(options, 10, 1), 5000);
    assert.equal(reconnectDelay(options, 100, 0), 2500);
  });
});

describe('close', () => {
  test('sends Close, fails what is unanswered, ends subscriptions quietly', async () => {
    const server = new FakeServer();
    const client = await connect(server);
    const socket = server.last;
    const { subscription } = await subscribe(client, socket, 'orders');
    const publishing = client.publish('orders', 'x');
    await socket.nextOfType(FrameType.Publish);
    await client.close();
    assert.deepEqual(socket.received.at(-1), { type: FrameType.Close });
    await assert.rejects(publishing, /connection closed/);
    assert.equal(await subscription.receive(), undefined);
    assert.equal(client.state, 'closed');
    await client.close();
    await assert.rejects(client.publish('orders', 'y'), /connection closed/);
  });
});
