import { AckPolicy, type AckFrame } from './frames.js';
import type { ZaichikMessage } from './message.js';
import type { ResolvedSubscribeOptions } from './options.js';

/** What a subscription needs from its client. */
export interface SubscriptionOwner {
  commit(message: ZaichikMessage): Promise<void>;
  release(subscription: ZaichikSubscription): Promise<void>;
}

/** Options of {@link ZaichikSubscription.receive}. */
export interface ReceiveOptions {
  /** Give up after this many ms and return undefined. Default: wait until a message comes or the subscription ends. */
  timeoutMs?: number;
  /** Give up when aborted and return undefined. */
  signal?: AbortSignal;
}

interface Waiter {
  resolve(message: ZaichikMessage | undefined): void;
  reject(error: Error): void;
}

/**
 * A live subscription to one topic. Iterate it (`for await (const message of subscription)`) to receive its messages in
 * sequence order (a group member's redeliveries come when they come); call {@link unsubscribe} to end it. Iteration ends
 * when the subscription is unsubscribed or the client closed, and throws {@link ZaichikConnectionError} (after the
 * messages already received) when the connection is lost for good. Leaving a `for await` loop does not unsubscribe.
 * Read it from one consumer at a time.
 */
export class ZaichikSubscription implements AsyncIterable<ZaichikMessage> {
  /**
   * The sequence this subscription starts at, as the server's Subscribe Ack reported it: that of the first message it
   * can deliver (for 'latest', and when nothing is stored at or after the start, the next sequence the topic will
   * assign). -1 if the Ack carried none.
   */
  startSequence = -1;

  /** @internal */ sent = false;
  /** @internal */ acknowledged = false;
  /** @internal */ releasing = false;
  /** @internal The sequence of the last message received, on any connection; 0 before the first. */
  lastReceived = 0;
  /** @internal The highest sequence the application committed on this topic, on any connection. */
  committedUpTo = 0;

  private readonly queue: ZaichikMessage[] = [];
  private queueHead = 0;
  private readonly waiters = new Set<Waiter>();
  private completed = false;
  private failure: Error | null = null;
  private toCommit: ZaichikMessage | null = null;

  /** @internal */
  constructor(
    private readonly owner: SubscriptionOwner,
    /** The subscribed topic. */
    readonly topic: string,
    /** The options it was made with, resolved. */
    readonly options: ResolvedSubscribeOptions,
  ) {}

  /** How many received messages wait to be read. */
  get buffered(): number {
    return this.queue.length - this.queueHead;
  }

  /** True once the subscription has ended (unsubscribed, client closed, or lost); buffered messages may remain. */
  get ended(): boolean {
    return this.completed;
  }

  /**
   * The next message, or undefined when the subscription has ended (or the timeout passed, or the signal aborted).
   * Throws the connection's failure when it ended because the connection was lost for good. With `autoCommit`, the
   * message this returned last time is committed first.
   */
  async receive(options: ReceiveOptions = {}): Promise<ZaichikMessage | undefined> {
    if (this.toCommit !== null) {
      const message = this.toCommit;
      this.toCommit = null;
      try {
        await this.owner.commit(message);
      } catch (error) {
        // Nothing is left to commit on a subscription that has ended (the client closed, it was unsubscribed).
        if (!this.completed) {
          throw error;
        }
      }
    }
    const message = await this.take(options);
    if (message !== undefined && this.options.autoCommit && this.options.ackPolicy === AckPolicy.Explicit) {
      this.toCommit = message;
    }
    return message;
  }

  [Symbol.asyncIterator](): AsyncIterator<ZaichikMessage> {
    return {
      next: async (): Promise<IteratorResult<ZaichikMessage>> => {
        const message = await this.receive();
        return message === undefined ? { done: true, value: undefined } : { done: false, value: message };
      },
      return: async (): Promise<IteratorResult<ZaichikMessage>> => ({ done: true, value: undefined }),
    };
  }

  /** Unsubscribes (when still connected and subscribed) and ends the iteration. Never throws. */
  unsubscribe(): Promise<void> {
    return this.owner.release(this);
  }

  toString(): string {
    return `subscription to ${this.topic}`;
  }

  /** @internal Records the Subscribe Ack's sequence. */
  acknowledge(ack: AckFrame): void {
    this.startSequence = ack.sequence === null ? -1 : Number(ack.sequence);
    this.acknowledged = true;
  }

  /**
   * @internal Where a restored subscription resumes: right after the last message it received, or where it first
   * started when it received none. Null for a durable consumer (Explicit) or a group, which the server resumes.
   */
  resumePoint(): number | null {
    if ((this.options.durableName !== null && this.options.ackPolicy === AckPolicy.Explicit) || this.options.group !== null) {
      return null;
    }
    const last = this.lastReceived;
    return last > 0 ? last + 1 : this.startSequence >= 1 ? this.startSequence : null;
  }

  /** @internal */
  noteCommitted(sequence: number): void {
    if (sequence > this.committedUpTo) {
      this.committedUpTo = sequence;
    }
  }

  /**
   * @internal Hands a message to the reader. False for a message it already received on an earlier connection (a
   * durable consumer's redelivery after a reconnect), which is dropped.
   */
  deliver(message: ZaichikMessage): boolean {
    if (!this.options.redelivers && message.sequence <= this.lastReceived) {
      return false;
    }
    this.lastReceived = Math.max(this.lastReceived, message.sequence);
    if (this.completed) {
      return true;
    }
    const waiter = this.waiters.values().next();
    if (!waiter.done) {
      this.waiters.delete(waiter.value);
      waiter.value.resolve(message);
    } else {
      this.queue.push(message);
    }
    return true;
  }

  /** @internal Ends the subscription: readers get what is buffered, then the end (or `error`). */
  complete(error: Error | null): void {
    if (this.completed) {
      return;
    }
    this.completed = true;
    this.failure = error;
    for (const waiter of this.waiters) {
      if (error === null) {
        waiter.resolve(undefined);
      } else {
        waiter.reject(error);
      }
    }
    this.waiters.clear();
  }

  private take(options: ReceiveOptions): Promise<ZaichikMessage | undefined> {
    if (this.queueHead < this.queue.length) {
      const message = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as unknown as ZaichikMessage;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      } else if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      }
      return Promise.resolve(message);
    }
    if (this.completed) {
      return this.failure === null ? Promise.resolve(undefined) : Promise.reject(this.failure);
    }
    const { timeoutMs, signal } = options;
    if (signal?.aborted) {
      return Promise.resolve(undefined);
    }
    return new Promise<ZaichikMessage | undefined>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const cleanup = (): void => {
        if (timer !== undefined) {
          clearTimeout(timer);
        }
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        resolve: (message) => {
          cleanup();
          resolve(message);
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
      };
      const onAbort = (): void => {
        this.waiters.delete(waiter);
        cleanup();
        resolve(undefined);
      };
      if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
        timer = setTimeout(onAbort, Math.max(0, timeoutMs));
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }
}
