/**
 * The client against fake cluster nodes (test/fake.ts): Redirect to the leader, NoLeader, failover over `servers`, and
 * two nodes that send the client back and forth.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { redirectTarget } from '../src/client.js';
import {
  ErrorCode,
  FrameType,
  ZaichikClient,
  ZaichikConnectionError,
  ZaichikError,
  ZaichikTimeoutError,
  type Frame,
  type PublishFrame,
  type ZaichikClientOptions,
  type ZaichikRedirect,
} from '../src/index.js';
import { FakeCluster, ack, delay, message, noLeader, redirect, type FakeServer, type FakeSocket } from './fake.js';

const A = 'ws://node-a.test:8891/ws';
const B = 'ws://node-b.test:8891/ws';
const C = 'ws://node-c.test:8891/ws';

const clients: ZaichikClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) {
    await client.close();
  }
});

async function connect(cluster: FakeCluster, url: string, options: ZaichikClientOptions = {}): Promise<ZaichikClient> {
  const client = await ZaichikClient.connect(url, {
    webSocketFactory: cluster.factory,
    closeTimeoutMs: 1000,
    reconnect: { minDelayMs: 5, maxDelayMs: 20 },
    ...options,
  });
  clients.push(client);
  return client;
}

type RequestFrame = Extract<Frame, { type: 0x02 | 0x03 | 0x04 | 0x05 }>;

function isRequest(frame: Frame): frame is RequestFrame {
  return frame.type === FrameType.Publish || frame.type === FrameType.Subscribe || frame.type === FrameType.CreateTopic || frame.type === FrameType.Unsubscribe;
}

/** A node that leads everything: stores each publish it gets (no deduplication, so a repeat would show) and acks every request. */
function lead(server: FakeServer, stored: PublishFrame[] = []): PublishFrame[] {
  server.handler = (socket, frame) => {
    if (frame.type === FrameType.Publish) {
      stored.push(frame);
      socket.sendFrames(ack(frame.requestId, BigInt(stored.length)));
    } else if (isRequest(frame)) {
      socket.sendFrames(ack(frame.requestId, 1n));
    }
  };
  return stored;
}

/** A node that redirects every request (but those `keep` accepts, which it acks) to the node at `endpoint`. */
function follow(server: FakeServer, leaderNode: string, endpoint: string, keep: (frame: Frame) => boolean = () => false): void {
  server.handler = (socket, frame) => {
    if (!isRequest(frame)) {
      return;
    }
    if (keep(frame)) {
      socket.sendFrames(ack(frame.requestId, 1n));
      return;
    }
    socket.sendFrames(redirect(frame.requestId, frame.topic, leaderNode, endpoint));
  };
}

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe('Redirect', { timeout: 10_000 }, () => {
  for (const idempotence of [true, false]) {
    test(`publishes redirected to the leader all succeed, each stored once there (idempotence ${idempotence})`, async () => {
      const cluster = new FakeCluster();
      follow(cluster.node(A), 'n2', B);
      const stored = lead(cluster.node(B));
      const client = await connect(cluster, A, { idempotence });
      const redirects: ZaichikRedirect[] = [];
      const events: string[] = [];
      client.on('redirected', (r) => redirects.push(r));
      const lost: ZaichikConnectionError[] = [];
      client.on('disconnected', (error) => {
        events.push('disconnected');
        lost.push(error);
      });
      client.on('reconnected', () => events.push('reconnected'));

      const n = 50;
      const results = await Promise.all(Array.from({ length: n }, (_, i) => client.publish('orders', `m${i}`)));

      assert.deepEqual(
        results.map((r) => r.sequence).sort((x, y) => x - y),
        Array.from({ length: n }, (_, i) => i + 1),
        'every publish got its own Ack from the leader',
      );
      assert.deepEqual(stored.map((p) => text(p.payload)), Array.from({ length: n }, (_, i) => `m${i}`), 'each stored once, in order');
      const sentToA = cluster.nodes.get(A)!.sockets[0]!.received.filter((f): f is PublishFrame => f.type === FrameType.Publish);
      assert.equal(sentToA.length, n);
      for (const [i, p] of stored.entries()) {
        assert.equal(p.requestId, sentToA[i]!.requestId, 'sent again with its request id');
        assert.equal(p.producerSequence, sentToA[i]!.producerSequence, 'and its producer sequence');
        assert.equal(p.producerSequence, idempotence ? BigInt(i + 1) : 0n);
      }
      assert.ok(cluster.nodes.get(A)!.sockets[0]!.received.some((f) => f.type === FrameType.Close), 'the follower got Close');
      assert.deepEqual(cluster.attempts, [A, B], 'one reconnect, straight to the leader');
      assert.equal(client.currentUrl, B);
      assert.equal(client.url, A);
      assert.deepEqual(redirects, [{ topic: 'orders', leaderNode: 'n2', url: B }]);
      assert.deepEqual(events, ['disconnected', 'reconnected']);
      assert.match(lost[0]!.message, /^left Zaichik at ws:\/\/node-a\.test:8891\/ws for node n2 at ws:\/\/node-b\.test:8891\/ws, which leads 'orders' \(Publish request 1 for 'orders' was redirected\)$/);
      assert.equal(client.state, 'connected');

      // Later publishes go to the leader directly.
      await client.publish('orders', 'later');
      assert.equal(stored.length, n + 1);
    });
  }

  test('a redirected subscribe is made at the leader; subscriptions the follower had are restored there first', async () => {
    const cluster = new FakeCluster();
    follow(cluster.node(A), 'n2', B, (f) => f.type === FrameType.Subscribe && f.topic === 'audit');
    const leader = cluster.node(B);
    lead(leader);
    const client = await connect(cluster, A);
    const audit = await client.subscribe('audit');
    const nextSocket = leader.nextSocket();
    const subscribing = client.subscribe('orders', { durableName: 'billing' });
    const atLeader = await nextSocket;
    const orders = await subscribing;

    const subscribes = atLeader.received.filter((f) => f.type === FrameType.Subscribe);
    assert.deepEqual(
      subscribes.map((f) => f.topic),
      ['audit', 'orders'],
      'the subscription made at the follower is restored, then the redirected one is made',
    );
    const redirected = cluster.nodes.get(A)!.sockets[0]!.received.find((f) => f.type === FrameType.Subscribe && f.topic === 'orders');
    assert.equal((subscribes[1] as Extract<Frame, { type: 0x04 }>).requestId, (redirected as Extract<Frame, { type: 0x04 }>).requestId);
    assert.equal((subscribes[1] as Extract<Frame, { type: 0x04 }>).durableName, 'billing');

    atLeader.sendFrames(message('orders', 1n, 'o1'), message('audit', 1n, 'a1'));
    assert.equal((await orders.receive({ timeoutMs: 1000 }))?.payloadText, 'o1');
    assert.equal((await audit.receive({ timeoutMs: 1000 }))?.payloadText, 'a1');
    assert.equal(client.currentUrl, B);
  });

  test('later reconnects start at the leader until a connection to it fails, then go round robin', async () => {
    const cluster = new FakeCluster();
    follow(cluster.node(A), 'n2', B);
    const leader = cluster.node(B);
    lead(leader);
    const client = await connect(cluster, A);
    await client.publish('orders', 'x');
    assert.deepEqual(cluster.attempts, [A, B]);

    // The leader's connection drops: the client goes back to it.
    let reconnected = new Promise<void>((resolve) => client.on('reconnected', resolve));
    leader.last.serverClose(1006);
    await reconnected;
    assert.deepEqual(cluster.attempts, [A, B, B]);

    // The leader is gone: after one failed attempt the client goes to its endpoints again (and is redirected anew).
    leader.options.down = true;
    reconnected = new Promise<void>((resolve) => client.on('reconnected', resolve));
    leader.last.serverClose(1006);
    await reconnected;
    assert.deepEqual(cluster.attempts, [A, B, B, B, A]);
    assert.equal(client.currentUrl, A);
  });

  test('an endpoint given as host:port keeps the scheme and path of the connection', async () => {
    assert.equal(redirectTarget('wss://a.test:443/zaichik/ws?x=1', '10.0.0.2:9443'), 'wss://10.0.0.2:9443/zaichik/ws?x=1');
    assert.equal(redirectTarget('ws://a.test/ws', 'ws://b.test:8891/ws'), 'ws://b.test:8891/ws');
    assert.equal(redirectTarget('ws://a.test/ws', 'tcp://b.test:5000'), null);
    assert.equal(redirectTarget('ws://a.test/ws', ''), null);
    assert.equal(redirectTarget('ws://a.test/ws', 'b.test/x'), null);

    const cluster = new FakeCluster();
    follow(cluster.node(A), 'n2', 'node-b.test:8891');
    const stored = lead(cluster.node(B));
    const client = await connect(cluster, A);
    await client.publish('orders', 'x');
    assert.equal(stored.length, 1);
    assert.equal(client.currentUrl, B);
  });

  test('a Redirect without a request id (a Commit) moves the client to the leader', async () => {
    const cluster = new FakeCluster();
    const follower = cluster.node(A);
    const leader = cluster.node(B);
    lead(leader);
    lead(follower);
    const client = await connect(cluster, A);
    const subscription = await client.subscribe('orders');
    follower.last.sendFrames(message('orders', 1n));
    const m = (await subscription.receive())!;
    follower.handler = (socket, frame) => {
      if (frame.type === FrameType.Commit) {
        socket.sendFrames(redirect(null, 'orders', 'n2', B));
      }
    };
    const atLeader = leader.nextSocket();
    await client.commit(m);
    const socket = await atLeader;
    const resubscribe = (await socket.nextOfType(FrameType.Subscribe)) as Extract<Frame, { type: 0x04 }>;
    assert.deepEqual([resubscribe.topic, resubscribe.from, resubscribe.position], ['orders', 2, 2n], 'resumed after what it received');
    await new Promise<void>((resolve) => client.on('reconnected', resolve));
    assert.equal(client.currentUrl, B);
  });

  test('with reconnect off, a redirected request fails naming the leader and the connection stays', async () => {
    const cluster = new FakeCluster();
    follow(cluster.node(A), 'n2', B, (f) => f.type === FrameType.CreateTopic);
    lead(cluster.node(B));
    const client = await connect(cluster, A, { reconnect: { enabled: false } });
    await assert.rejects(
      client.publish('orders', 'x'),
      (e: unknown) => e instanceof ZaichikConnectionError && /redirected to node n2 at ws:\/\/node-b\.test:8891\/ws/.test(e.message),
    );
    await client.createTopic('other');
    assert.deepEqual(cluster.attempts, [A]);
    assert.equal(client.state, 'connected');
  });

  test('two nodes that redirect to each other: the request times out, and the connection attempts stay few', async () => {
    const cluster = new FakeCluster();
    follow(cluster.node(A), 'n2', B);
    follow(cluster.node(B), 'n1', A);
    const requestTimeoutMs = 400;
    const client = await connect(cluster, A, { requestTimeoutMs, reconnect: { minDelayMs: 10, maxDelayMs: 40 } });
    const started = Date.now();
    await assert.rejects(client.publish('orders', 'x'), (e: unknown) => e instanceof ZaichikTimeoutError && /Publish request 1 for 'orders'/.test(e.message));
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= requestTimeoutMs - 5, `failed after ${elapsed} ms, not before the request timeout`);
    const attempts = cluster.attempts.length;
    // The first hop goes at once, the next ones after the backoff (at least 5, 10, 20, 20... ms): within about 450 ms
    // that is at most about 25 hops. Without the backoff it would be hundreds.
    assert.ok(attempts >= 4, `followed the redirects (${attempts} connection attempts)`);
    assert.ok(attempts <= 26, `${attempts} connection attempts in ${elapsed} ms`);
    // With nothing left to redirect, the client stays where it is.
    await delay(150);
    assert.ok(cluster.attempts.length <= attempts + 1, `${cluster.attempts.length - attempts} attempts after the failure`);
    assert.equal(client.state, 'connected');
  });

  test('a successful request ends a series: the next Redirect is followed at once again', async () => {
    const cluster = new FakeCluster();
    follow(cluster.node(A), 'n2', B);
    const stored = lead(cluster.node(B));
    const client = await connect(cluster, A, { reconnect: { minDelayMs: 300, maxDelayMs: 300 } });
    const started = Date.now();
    await client.publish('orders', 'one');
    assert.ok(Date.now() - started < 150, 'the first Redirect is followed without the backoff');
    // The leader steps down and sends the client back to A, which redirects to B again: the second Redirect in a row
    // waits the backoff.
    follow(cluster.nodes.get(B)!, 'n1', A);
    const second = Date.now();
    const publishing = client.publish('orders', 'two');
    await delay(20);
    lead(cluster.nodes.get(B)!, stored);
    await publishing;
    assert.deepEqual(stored.map((p) => text(p.payload)), ['one', 'two']);
    assert.deepEqual(cluster.attempts, [A, B, A, B]);
    const [, , backToA, againToB] = cluster.attemptTimes as [number, number, number, number];
    assert.ok(backToA - second < 100, `after a success, the next Redirect is followed at once (${backToA - second} ms)`);
    assert.ok(againToB - backToA >= 140, `the second Redirect in a row waited the backoff (${againToB - backToA} ms)`);
  });
});

describe('NoLeader', { timeout: 10_000 }, () => {
  test('NoLeader twice, then success: the request is kept, sent again after the backoff, to the next endpoint', async () => {
    const cluster = new FakeCluster();
    const answers: Array<{ at: string; time: number; sequence: bigint; requestId: bigint }> = [];
    let refusals = 0;
    const stored: PublishFrame[] = [];
    for (const url of [A, B]) {
      cluster.node(url).handler = (socket: FakeSocket, frame: Frame) => {
        if (frame.type !== FrameType.Publish) {
          return;
        }
        answers.push({ at: url, time: Date.now(), sequence: frame.producerSequence, requestId: frame.requestId });
        if (refusals < 2) {
          refusals++;
          socket.sendFrames(noLeader(frame.requestId, frame.topic));
          return;
        }
        stored.push(frame);
        socket.sendFrames(ack(frame.requestId, 7n));
      };
    }
    const minDelayMs = 40;
    // Without idempotence too: the node did not carry the request out.
    const client = await connect(cluster, A, { servers: [B], idempotence: false, reconnect: { minDelayMs, maxDelayMs: 200 } });
    const result = await client.publish('orders', 'x');
    assert.equal(result.sequence, 7);
    assert.equal(stored.length, 1);
    assert.deepEqual(answers.map((a) => a.at), [A, B, A], 'to the next endpoint after each NoLeader');
    assert.equal(new Set(answers.map((a) => a.requestId)).size, 1, 'the same request each time');
    assert.deepEqual(cluster.attempts, [A, B, A]);
    for (let i = 1; i < answers.length; i++) {
      const waited = answers[i]!.time - answers[i - 1]!.time;
      assert.ok(waited >= minDelayMs / 2 - 1, `waited the backoff before trying again (${waited} ms)`);
    }
  });

  test('a request that only ever gets NoLeader fails when the request timeout passes', async () => {
    const cluster = new FakeCluster();
    cluster.node(A).handler = (socket, frame) => {
      if (isRequest(frame)) {
        socket.sendFrames(noLeader(frame.requestId, frame.topic));
      }
    };
    const client = await connect(cluster, A, { requestTimeoutMs: 250, reconnect: { minDelayMs: 10, maxDelayMs: 40 } });
    await assert.rejects(client.createTopic('orders'), ZaichikTimeoutError);
    assert.ok(cluster.attempts.length >= 3, 'it kept trying');
    assert.ok(cluster.attempts.length <= 30, `${cluster.attempts.length} attempts`);
  });

  test('with reconnect off, NoLeader is an ordinary error', async () => {
    const cluster = new FakeCluster();
    cluster.node(A).handler = (socket, frame) => {
      if (isRequest(frame)) {
        socket.sendFrames(noLeader(frame.requestId, frame.topic));
      }
    };
    const client = await connect(cluster, A, { reconnect: { enabled: false } });
    await assert.rejects(client.publish('orders', 'x'), (e: unknown) => e instanceof ZaichikError && e.code === ErrorCode.NoLeader && e.codeName === 'NoLeader');
    assert.equal(client.state, 'connected');
  });
});

describe('servers', { timeout: 10_000 }, () => {
  test('connects to the main URL first, then round robin over [url, ...servers] when an attempt fails', async () => {
    const cluster = new FakeCluster();
    // A refuses (no node there).
    const b = cluster.node(B);
    const c = cluster.node(C);
    lead(b);
    lead(c);
    const client = await connect(cluster, A, { servers: [B, C] });
    assert.deepEqual(cluster.attempts, [A, B]);
    assert.equal(client.currentUrl, B);
    await client.publish('orders', 'x');

    // B stops: the client tries B again, then C.
    b.options.down = true;
    let reconnected = new Promise<void>((resolve) => client.on('reconnected', resolve));
    b.last.serverClose(1006);
    await reconnected;
    assert.deepEqual(cluster.attempts, [A, B, B, C]);
    assert.equal(client.currentUrl, C);

    // C stops too, B is back: C, then A (refused), then B.
    c.options.down = true;
    b.options.down = false;
    reconnected = new Promise<void>((resolve) => client.on('reconnected', resolve));
    c.last.serverClose(1006);
    await reconnected;
    assert.deepEqual(cluster.attempts, [A, B, B, C, C, A, B]);
    assert.equal(client.currentUrl, B);
    await client.publish('orders', 'y');
  });

  test('when no server answers, connect rejects naming them all', async () => {
    const cluster = new FakeCluster();
    await assert.rejects(
      ZaichikClient.connect(A, { webSocketFactory: cluster.factory, servers: [B] }),
      (e: unknown) => e instanceof ZaichikConnectionError && e.message.includes(A) && e.message.includes(B) && /ECONNREFUSED/.test(e.message),
    );
    assert.deepEqual(cluster.attempts, [A, B]);
  });

  test('a refusal that every node would give is not retried elsewhere', async () => {
    const cluster = new FakeCluster();
    for (const url of [A, B]) {
      const node = cluster.node(url, { autoHello: false });
      node.handler = (socket, frame) => {
        if (frame.type === FrameType.Hello) {
          socket.sendFrames({ type: FrameType.Error, requestId: null, code: ErrorCode.AuthenticationFailed, text: 'unknown token' });
          socket.serverClose();
        }
      };
    }
    await assert.rejects(
      ZaichikClient.connect(A, { webSocketFactory: cluster.factory, servers: [B] }),
      (e: unknown) => e instanceof ZaichikError && e.code === ErrorCode.AuthenticationFailed,
    );
    assert.deepEqual(cluster.attempts, [A]);
  });

  test('servers must be WebSocket URLs', async () => {
    await assert.rejects(ZaichikClient.connect(A, { servers: ['tcp://node-b.test:5000'] }), TypeError);
    await assert.rejects(ZaichikClient.connect(A, { servers: ['not a url'] }), TypeError);
  });
});
