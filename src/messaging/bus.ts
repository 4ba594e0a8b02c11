/**
 * Our own broker ports. The outbox sees only these; `kafka-bus.ts` (the one file importing kafkajs) and
 * `memory-bus.ts` implement them with the same guarantees, proven by one contract suite:
 * - at least once: a batch whose handler did not resolve is delivered again;
 * - offsets move only after `handleMessages` resolved for those messages;
 * - per key order within a topic (one key → one partition, partitions delivered in order).
 */
export interface OutgoingMessage {
  readonly key: string;
  readonly value: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface PublishOptions {
  /** The broker must acknowledge within this; the publish rejects with `broker_unavailable` after it. */
  readonly timeoutMs?: number;
}

export interface IncomingMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: Buffer | null;
  /** The message's headers as text (e.g. W3C `traceparent`, `tracestate`); a repeated one's first value. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface Subscription {
  readonly topic: string;
  readonly groupId: string;
  /**
   * Handles messages of one partition, in order. Resolving `true` means every message was dealt with and
   * their offsets may be committed; `false` (only once `signal` aborted) leaves them all for redelivery.
   * Rejecting redelivers the same messages after a pause.
   */
  handleMessages(messages: readonly IncomingMessage[], signal: AbortSignal): Promise<boolean>;
}

export interface MessageBus {
  readonly kind: "kafka" | "memory";
  /** Creates the topic when it is missing; never fails because it exists. */
  ensureTopic(topic: string, partitions: number): Promise<void>;
  /**
   * Publishes in order; rejects with `AppError('broker_unavailable')` when the broker cannot be reached or
   * has not acknowledged within `options.timeoutMs`. A publish that failed or timed out may still land (at
   * least once), but it never makes a later publish's messages be taken for its duplicates.
   */
  publish(topic: string, messages: readonly OutgoingMessage[], options?: PublishOptions): Promise<void>;
  /** Consumes until `signal` aborts; resolves once the in-flight batch has finished. */
  subscribe(subscription: Subscription, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
