/**
 * The client against a real broker over its WebSocket listener (see test/broker.ts for how the broker is found),
 * mirroring the .NET end-to-end tests: retention replay, dedup Acks, prefetch and commit, durable resume, consumer
 * groups, tokens, heartbeats against the idle timeout, and reconnect across a broker restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ErrorCode,
  ZaichikClient,
  ZaichikError,
  type WebSocketLike,
  type ZaichikClientOptions,
  type ZaichikMessage,
  type ZaichikSubscription,
  type ZaichikSubscriptionGap,
} from '../src/index.js';
import { Broker, freePort, serverDll, sleep } from './broker.js';

const found = serverDll();
const skip = 'skip' in found ? found.skip : false;
const dll = 'dll' in found ? found.dll : '';

/** What the broker's WebSocket listener sent, as the client saw it. */
class WireLog {
  messages = 0;
  frames = 0;
  mostFramesInOneMessage = 0;
  messagesEndingInsideAFrame = 0;
  largestMessage = 0;
  closes: Array<{ code: number | undefined; reason: string | undefined }> = [];
  private carry = 0;
  private header: number[] = [];

  /** Counts the frames that start and end in a message, without decoding them. */
  observe(bytes: Uint8Array): void {
    this.messages++;
    this.largestMessage = Math.max(this.largestMessage, bytes.length);
    let position = 0;
    let frames = 0;
    while (position < bytes.length) {
      if (this.carry > 0) {
        const n = Math.min(this.carry, bytes.length - position);
        this.carry -= n;
        position += n;
        if (this.carry === 0) frames++;
        continue;
      }
      this.header.push(bytes[position++]!);
      if (this.header.length === 4) {
        this.carry = ((this.header[0]! << 24) >>> 0) + (this.header[1]! << 16) + (this.header[2]! << 8) + this.header[3]!;
        this.header = [];
      }
    }
    if (this.carry > 0 || this.header.length > 0) this.messagesEndingInsideAFrame++;
    this.frames += frames;
    this.mostFramesInOneMessage = Math.max(this.mostFramesInOneMessage, frames);
  }
}

/** The platform WebSocket, with what arrives on it written to a WireLog. */
function recording(log: WireLog) {
  return (url: string): WebSocketLike => {
    const ws = new WebSocket(url);
    const wrapper: WebSocketLike = {
      get binaryType() {
        return ws.binaryType;
      },
      set binaryType(value: string) {
        ws.binaryType = value as BinaryType;
      },
      get readyState() {
        return ws.readyState;
      },
      send: (data) => ws.send(data),
      close: (code, reason) => ws.close(code, reason),
      set onopen(fn: ((event: unknown) => void) | null) {
        ws.onopen = fn;
      },
      get onopen() {
        return ws.onopen as ((event: unknown) => void) | null;
      },
      set onerror(fn: ((event: unknown) => void) | null) {
        ws.onerror = fn;
      },
      get onerror() {
        return ws.onerror as ((event: unknown) => void) | null;
      },
      set onmessage(fn: ((event: { data: unknown }) => void) | null) {
        ws.onmessage =
          fn === null
            ? null
            : (event: MessageEvent) => {
                if (event.data instanceof ArrayBuffer) log.observe(new Uint8Array(event.data));
                fn(event);
              };
      },
      get onmessage() {
        return null;
      },
      set onclose(fn: ((event: { code?: number; reason?: string }) => void) | null) {
        ws.onclose =
          fn === null
            ? null
            : (event: CloseEvent) => {
                log.closes.push({ code: event.code, reason: event.reason });
                fn(event);
              };
      },
      get onclose() {
        return null;
      },
    };
    return wrapper;
  };
}

const wire = new WireLog();

async function read(subscription: ZaichikSubscription, count: number, timeoutMs = 10_000): Promise<ZaichikMessage[]> {
  const messages: ZaichikMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (messages.length < count) {
    const left = deadline - Date.now();
    const message = left > 0 ? await subscription.receive({ timeoutMs: left }) : undefined;
    if (message === undefined) {
      assert.fail(`received ${messages.length} of ${count} messages: ${messages.map((m) => m.sequence).join(', ')}`);
    }
    messages.push(message);
  }
  return messages;
}

describe('against a broker', { skip }, () => {
  let broker: Broker;
  const clients: ZaichikClient[] = [];
  const connect = async (options: ZaichikClientOptions = {}): Promise<ZaichikClient> => {
    const client = await ZaichikClient.connect(broker.url, { webSocketFactory: recording(wire), ...options });
    clients.push(client);
    return client;
  };

  before(async () => {
    broker = await Broker.start(dll);
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await broker?.dispose();
  });

  test('retention replay: a new subscriber gets what a retained topic holds', async () => {
    const publisher = await connect();
    await publisher.createTopic('ts.retained', { retentionTtlMs: 3_600_000 });
    assert.equal((await publisher.publish('ts.retained', 'first', { key: 'k1', headers: { trace: 't1' } })).sequence, 1);
    assert.equal((await publisher.publish('ts.retained', new Uint8Array([0, 255]))).sequence, 2);

    const subscriber = await connect();
    const subscription = await subscriber.subscribe('ts.retained', { prefetch: 10 });
    assert.equal(subscription.startSequence, 1);
    const [a, b] = await read(subscription, 2);
    assert.deepEqual([a!.sequence, a!.payloadText, a!.keyText, a!.headers.getText('trace'), a!.deliveryCount], [1, 'first', 'k1', 't1', 1]);
    assert.ok(Math.abs(a!.timestamp.getTime() - Date.now()) < 60_000);
    assert.deepEqual([b!.sequence, [...b!.payload], b!.key], [2, [0, 255], null]);
    await subscriber.commit(b!);
  });

  test('dedup Ack: a keyed publish repeated inside the compaction window is a duplicate of the first', async () => {
    const client = await connect();
    await client.createTopic('ts.dedup', { compactionWindowMs: 60_000 });
    const first = await client.publish('ts.dedup', 'v1', { key: 'same' });
    const second = await client.publish('ts.dedup', 'v2', { key: 'same' });
    assert.deepEqual([first.duplicate, second.duplicate], [false, true]);
    assert.equal(second.sequence, first.sequence);
    const other = await client.publish('ts.dedup', 'v3', { key: 'other' });
    assert.equal(other.sequence, first.sequence + 1, 'a duplicate uses up no sequence');
  });

  test('a server error carries its code: a conflicting CreateTopic, an Unsubscribe of nothing', async () => {
    const client = await connect();
    await client.createTopic('ts.conflict', { retentionTtlMs: 1000 });
    await client.createTopic('ts.conflict', { retentionTtlMs: 1000 });
    await assert.rejects(client.createTopic('ts.conflict', { retentionTtlMs: 2000 }), (e: unknown) => {
      assert.ok(e instanceof ZaichikError);
      assert.equal(e.code, ErrorCode.TopicSettingsConflict);
      assert.equal(e.codeName, 'TopicSettingsConflict');
      return true;
    });
    await assert.rejects(client.unsubscribe('ts.nothing'), (e: unknown) => e instanceof ZaichikError && e.codeName === 'NotSubscribed');
  });

  test('prefetch 1: the second message arrives only after the first is committed', async () => {
    const client = await connect();
    await client.createTopic('ts.prefetch', { retentionTtlMs: 3_600_000 });
    await client.publish('ts.prefetch', 'one');
    await client.publish('ts.prefetch', 'two');
    const subscription = await client.subscribe('ts.prefetch', { prefetch: 1 });
    const [first] = await read(subscription, 1);
    assert.equal(first!.payloadText, 'one');
    assert.equal(await subscription.receive({ timeoutMs: 500 }), undefined, 'nothing more while one is uncommitted');
    await client.commit(first!);
    const [second] = await read(subscription, 1);
    assert.equal(second!.payloadText, 'two');
  });

  test('durable resume: a consumer that committed 2 of 5 gets 3..5 when it subscribes again', async () => {
    const client = await connect();
    await client.createTopic('ts.durable', { retentionTtlMs: 3_600_000 });
    for (let i = 1; i <= 5; i++) await client.publish('ts.durable', `m${i}`);
    const first = await client.subscribe('ts.durable', { durableName: 'billing', prefetch: 5 });
    const all = await read(first, 5);
    assert.deepEqual(all.map((m) => m.sequence), [1, 2, 3, 4, 5]);
    await client.commit(all[1]!);
    await client.confirmCommits();
    await first.unsubscribe();
    assert.equal(first.ended, true);

    const again = await client.subscribe('ts.durable', { durableName: 'billing', prefetch: 5 });
    assert.equal(again.startSequence, 3);
    assert.deepEqual((await read(again, 3)).map((m) => m.payloadText), ['m3', 'm4', 'm5']);
    assert.equal(await again.receive({ timeoutMs: 300 }), undefined);
  });

  test('a consumer group shares a topic between two clients; each message goes to one member', async () => {
    const a = await connect();
    const b = await connect();
    await a.createTopic('ts.jobs', { retentionTtlMs: 3_600_000 });
    const options = { group: 'workers', prefetch: 10, from: 'retained' } as const;
    const sa = await a.subscribe('ts.jobs', options);
    const sb = await b.subscribe('ts.jobs', options);
    const publisher = await connect();
    const count = 40;
    for (let i = 1; i <= count; i++) await publisher.publish('ts.jobs', `job ${i}`);

    const seen = new Map<number, string>();
    const work = async (client: ZaichikClient, subscription: ZaichikSubscription, name: string): Promise<void> => {
      for (;;) {
        const message = await subscription.receive({ timeoutMs: 1500 });
        if (message === undefined) return;
        assert.equal(seen.has(message.sequence), false, `sequence ${message.sequence} delivered twice`);
        seen.set(message.sequence, name);
        await client.commit(message); // mode 2: this message alone
      }
    };
    await Promise.all([work(a, sa, 'a'), work(b, sb, 'b')]);
    assert.deepEqual([...seen.keys()].sort((x, y) => x - y), Array.from({ length: count }, (_, i) => i + 1));
    const byA = [...seen.values()].filter((n) => n === 'a').length;
    assert.ok(byA > 0 && byA < count, `both members worked: a took ${byA} of ${count}`);
  });

  test('a group member Nacks a message and it comes again with a higher delivery count', async () => {
    const client = await connect();
    await client.createTopic('ts.nack', { retentionTtlMs: 3_600_000 });
    await client.publish('ts.nack', 'retry me');
    const subscription = await client.subscribe('ts.nack', { group: 'retry', prefetch: 5 });
    const [first] = await read(subscription, 1);
    assert.equal(first!.deliveryCount, 1);
    await client.nack(first!, 0);
    const [again] = await read(subscription, 1);
    assert.deepEqual([again!.sequence, again!.deliveryCount], [first!.sequence, 2]);
    await client.commit(again!);
  });

  test('a large message, and a burst of publishes whose replies share WebSocket messages', async () => {
    const client = await connect();
    await client.createTopic('ts.burst', { retentionTtlMs: 3_600_000 });
    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const subscription = await client.subscribe('ts.burst', { prefetch: 1000, ackPolicy: 'none' });
    await client.publish('ts.burst', big);
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => client.publish('ts.burst', `burst ${i}`)));
    assert.deepEqual(results.map((r) => r.sequence).sort((x, y) => x - y), Array.from({ length: 500 }, (_, i) => i + 2));
    const messages = await read(subscription, 501);
    assert.deepEqual(messages[0]!.payload, big);
    assert.deepEqual(messages.map((m) => m.sequence), Array.from({ length: 501 }, (_, i) => i + 1));
  });
});

describe('against a broker with tokens and a short idle timeout', { skip }, () => {
  let broker: Broker;
  const token = 'writer-secret-0123456789';

  before(async () => {
    broker = await Broker.start(dll, [
      '--Zaichik:Tokens:0:Name', 'writer',
      '--Zaichik:Tokens:0:Token', token,
      '--Zaichik:Tokens:0:Publish:0', '>',
      '--Zaichik:Tokens:0:Subscribe:0', 'public.>',
      '--Zaichik:IdleTimeout', '00:00:01.500',
    ]);
  });

  after(async () => {
    await broker?.dispose();
  });

  test('no token, or an unknown one, is refused with AuthenticationFailed', async () => {
    for (const options of [{}, { token: 'not-a-known-token-000' }]) {
      await assert.rejects(
        ZaichikClient.connect(broker.url, { ...options, webSocketFactory: recording(wire) }),
        (e: unknown) => e instanceof ZaichikError && e.code === ErrorCode.AuthenticationFailed && e.codeName === 'AuthenticationFailed',
      );
    }
  });

  test('a known token connects; its patterns decide (NotAuthorized)', async () => {
    const client = await ZaichikClient.connect(broker.url, { token, webSocketFactory: recording(wire) });
    try {
      await assert.rejects(client.subscribe('private.notes'), (e: unknown) => e instanceof ZaichikError && e.codeName === 'NotAuthorized');
      await client.subscribe('public.news');
      assert.equal((await client.publish('public.news', 'hi')).sequence, 1);
    } finally {
      await client.close();
    }
  });

  test('Pings keep a quiet connection open past the idle timeout', async () => {
    const client = await ZaichikClient.connect(broker.url, { token, webSocketFactory: recording(wire) });
    const lost: Error[] = [];
    client.on('disconnected', (e) => lost.push(e));
    try {
      assert.equal(client.serverIdleTimeoutMs, 1500);
      await sleep(4000);
      assert.deepEqual(lost, []);
      assert.equal(client.isConnected, true);
      assert.equal((await client.publish('public.quiet', 'still here')).sequence, 1);
    } finally {
      await client.close();
    }
  });

  test('without Pings the broker closes an idle connection', async () => {
    const client = await ZaichikClient.connect(broker.url, {
      token,
      pingIntervalMs: 0,
      reconnect: { enabled: false },
      webSocketFactory: recording(wire),
    });
    const errors: ZaichikError[] = [];
    client.on('serverError', (e) => errors.push(e));
    const started = Date.now();
    const lost = await new Promise<Error>((resolve) => client.on('disconnected', resolve));
    assert.ok(Date.now() - started < 5000, 'closed within a few idle timeouts');
    assert.equal(client.state, 'closed');
    // The protocol says the server sends Error IdleTimeout before it closes; over TCP it does. Over WebSocket the broker
    // (at the commit that added the listener) aborts the socket instead (close 1006) and the Error never arrives. Accept
    // both, and check the Error when it comes.
    if (errors.length > 0) {
      assert.equal(errors[0]?.codeName, 'IdleTimeout');
      assert.match(lost.message, /closed by the server: server error IdleTimeout/);
    } else {
      assert.match(lost.message, /closed by the server \(WebSocket close 1006\)/);
    }
  });
});

describe('reconnect across a broker restart', { skip }, () => {
  let broker: Broker;

  before(async () => {
    broker = await Broker.start(dll);
  });

  after(async () => {
    await broker?.dispose();
  });

  test('a subscription resumes right after what it received, without a gap or a duplicate', async () => {
    const client = await ZaichikClient.connect(broker.url, {
      reconnect: { minDelayMs: 100, maxDelayMs: 500 },
      requestTimeoutMs: 60_000,
      webSocketFactory: recording(wire),
    });
    const events: string[] = [];
    const gaps: ZaichikSubscriptionGap[] = [];
    client.on('disconnected', () => events.push('disconnected'));
    client.on('reconnected', () => events.push('reconnected'));
    client.on('subscriptionGap', (gap) => gaps.push(gap));
    const reconnected = new Promise<void>((resolve) => client.on('reconnected', resolve));
    try {
      await client.createTopic('ts.restart', { retentionTtlMs: 3_600_000, durability: 'always' });
      const subscription = await client.subscribe('ts.restart', { prefetch: 10 });
      const durable = await client.subscribe('ts.restart.durable', { durableName: 'keeper', prefetch: 10 });
      for (let i = 1; i <= 3; i++) {
        await client.publish('ts.restart', `before ${i}`);
        await client.publish('ts.restart.durable', `before ${i}`);
      }
      const before = await read(subscription, 3);
      for (const m of before) await client.commit(m);
      const durableBefore = await read(durable, 3);
      await client.commit(durableBefore[1]!); // commits 1..2; 3 is received but not committed
      await client.confirmCommits();

      await broker.stop();
      // A publish made while the broker is down waits for the next connection.
      const during = client.publish('ts.restart', 'during');
      await sleep(300);
      assert.equal(client.state, 'reconnecting');
      await broker.run();
      await reconnected;

      assert.equal((await during).sequence, 4);
      assert.equal((await client.publish('ts.restart', 'after')).sequence, 5);
      const resumed = await read(subscription, 2);
      assert.deepEqual(resumed.map((m) => [m.sequence, m.payloadText]), [[4, 'during'], [5, 'after']]);
      assert.equal(await subscription.receive({ timeoutMs: 300 }), undefined, 'no duplicate');

      // The durable consumer resumes server-side after its last commit (2): 3 comes again, the client drops the
      // repeat it already handed out, so the application sees the next new message.
      await client.publish('ts.restart.durable', 'after 4');
      const [next] = await read(durable, 1);
      assert.deepEqual([next!.sequence, next!.payloadText], [4, 'after 4']);
      assert.deepEqual(gaps, []);
      assert.deepEqual(events, ['disconnected', 'reconnected']);
    } finally {
      await client.close();
    }
  });
});

describe('what the WebSocket listener sent', { skip }, () => {
  test('is recorded', () => {
    // Not a check of the broker: a record for whoever reads the test output.
    console.log(
      `WebSocket messages ${wire.messages}, frames ${wire.frames}, most frames in one message ${wire.mostFramesInOneMessage}, ` +
        `messages ending inside a frame ${wire.messagesEndingInsideAFrame}, largest message ${wire.largestMessage} bytes, ` +
        `close codes ${JSON.stringify(wire.closes)}`,
    );
    assert.ok(wire.messages > 0);
  });
});

describe('against a three-node cluster', { skip }, () => {
  const brokers: Broker[] = [];
  const clients: ZaichikClient[] = [];

  before(async () => {
    const raftPorts = [await freePort(), await freePort(), await freePort()];
    const peers = raftPorts.map((port, i) => `n${i + 1}=127.0.0.1:${port}`).join(',');
    brokers.push(
      ...(await Promise.all(
        [0, 1, 2].map((i) =>
          Broker.start(dll, [
            '--node',
            `n${i + 1}`,
            '--peers',
            peers,
            '--Zaichik:Cluster:ElectionTimeoutMin',
            '00:00:01',
            '--Zaichik:Cluster:ElectionTimeoutMax',
            '00:00:02',
          ]),
        ),
      )),
    );
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(brokers.map((broker) => broker.dispose()));
  });

  /** Creates the topic, again until it is acknowledged: nodes answer NoLeader until a leader is elected and known. */
  async function createWhenLed(client: ZaichikClient, topic: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await client.createTopic(topic, { retentionTtlMs: 3_600_000, compactionWindowMs: 3_600_000 });
        await client.publish(topic, 'probe');
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(100);
      }
    }
  }

  test('a browser client is redirected to the leader, every publish lands once, and it follows a new leader', async () => {
    const urls = brokers.map((broker) => broker.url);
    const client = await ZaichikClient.connect(urls[0]!, { servers: urls.slice(1), requestTimeoutMs: 30_000 });
    clients.push(client);
    await createWhenLed(client, 'ts.cluster');
    const leader = brokers.findIndex((broker) => broker.url === client.currentUrl);
    assert.ok(leader >= 0, `the client ends on one of the nodes, not ${client.currentUrl}`);

    const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => client.publish('ts.cluster', `m${i}`, { key: `k${i}` })));
    assert.deepEqual(
      acks.map((ack) => ack.sequence),
      Array.from({ length: 50 }, (_, i) => i + 2),
    );

    // The leader stops; the client is sent to whichever node leads next and goes on, with the same sequences.
    await brokers[leader]!.stop();
    const after = await client.publish('ts.cluster', 'after the leader left', { key: 'late' });
    assert.equal(after.sequence, 52);
    assert.notEqual(client.currentUrl, urls[leader]);
    const repeat = await client.publish('ts.cluster', 'again', { key: 'k7' });
    assert.deepEqual([repeat.sequence, repeat.duplicate], [9, true], 'the new leader has the key window');

    const subscription = await client.subscribe('ts.cluster', { from: 'retained', prefetch: 100 });
    const messages = await read(subscription, 52);
    assert.deepEqual(
      messages.map((message) => message.payloadText),
      ['probe', ...Array.from({ length: 50 }, (_, i) => `m${i}`), 'after the leader left'],
    );
  });
});
