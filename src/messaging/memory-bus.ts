import { AppError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { createWakeup, sleep, type Wakeup } from "../lib/sleep.ts";
import type { IncomingMessage, MessageBus, OutgoingMessage, Subscription } from "./bus.ts";

interface Partition {
  /** Offset of `log[0]`; messages below the committed offset of every group are trimmed. */
  base: number;
  log: OutgoingMessage[];
  wakeup: Wakeup;
  /** Committed offset per consumer group: where its next subscriber starts. */
  committed: Map<string, number>;
}

export interface MemoryBusOptions {
  readonly logger: Logger;
  readonly defaultPartitions?: number;
  readonly maxBatch?: number;
  readonly redeliveryDelayMs?: number;
}

/**
 * The embedded default's broker: topics with keyed partitions in memory, one consumer per group. It keeps
 * Kafka's guarantees within the process (at least once, commit after handling, per key order). It keeps
 * nothing across restarts: the outbox table is the durable copy, and the sweeper re-queues rows whose
 * message was lost.
 */
export function createMemoryBus(options: MemoryBusOptions): MessageBus {
  const bus: MemoryBus = {
    logger: options.logger,
    defaultPartitions: options.defaultPartitions ?? 3,
    maxBatch: options.maxBatch ?? 500,
    redeliveryDelayMs: options.redeliveryDelayMs ?? 200,
    topics: new Map(),
  };
  const activeGroups = new Set<string>();
  let closed = false;
  return {
    kind: "memory",
    async ensureTopic(topic, partitions) {
      topicOf(bus, topic, partitions);
    },
    async publish(topic, messages) {
      if (closed) throw new AppError("broker_unavailable", "in-process bus is closed");
      const parts = topicOf(bus, topic);
      for (const message of messages) {
        const part = parts[partitionFor(message.key, parts.length)];
        part?.log.push(message);
      }
      for (const part of parts) part.wakeup.notify();
    },
    async subscribe(subscription, signal) {
      const groupKey = `${subscription.groupId}\u0000${subscription.topic}`;
      if (activeGroups.has(groupKey)) {
        throw new AppError(
          "conflict",
          `group ${subscription.groupId} already consumes ${subscription.topic}`,
        );
      }
      activeGroups.add(groupKey);
      try {
        const parts = topicOf(bus, subscription.topic);
        await Promise.all(
          parts.map((part, index) => consumePartition(bus, index, part, subscription, signal)),
        );
      } finally {
        activeGroups.delete(groupKey);
      }
    },
    async close() {
      closed = true;
    },
  };
}

interface MemoryBus {
  readonly logger: Logger;
  readonly defaultPartitions: number;
  readonly maxBatch: number;
  readonly redeliveryDelayMs: number;
  readonly topics: Map<string, Partition[]>;
}

function topicOf(bus: MemoryBus, topic: string, partitions = bus.defaultPartitions): Partition[] {
  let parts = bus.topics.get(topic);
  if (!parts) {
    parts = Array.from<unknown, Partition>({ length: Math.max(1, partitions) }, () => ({
      base: 0,
      log: [],
      wakeup: createWakeup(),
      committed: new Map<string, number>(),
    }));
    bus.topics.set(topic, parts);
  }
  return parts;
}

/** Delivers one partition to one group, in order, committing after each handled batch. */
async function consumePartition(
  bus: MemoryBus,
  index: number,
  part: Partition,
  subscription: Subscription,
  signal: AbortSignal,
) {
  const { topic, groupId: group } = subscription;
  if (!part.committed.has(group)) part.committed.set(group, part.base);
  let committed = part.committed.get(group) ?? part.base;
  while (!signal.aborted) {
    const start = committed - part.base;
    if (start >= part.log.length) {
      await part.wakeup.wait(1_000, signal);
      continue;
    }
    const slice = part.log.slice(start, start + bus.maxBatch);
    const messages: IncomingMessage[] = slice.map((message, i) => ({
      topic,
      partition: index,
      offset: String(committed + i),
      key: message.key,
      value: Buffer.from(message.value, "utf8"),
      headers: { ...message.headers },
    }));
    let done: boolean;
    try {
      done = await subscription.handleMessages(messages, signal);
    } catch (error) {
      bus.logger.warn("memory bus: batch handler failed; redelivering", { topic, partition: index, error });
      await sleep(bus.redeliveryDelayMs, signal);
      continue;
    }
    if (!done) break;
    committed += slice.length;
    part.committed.set(group, committed);
    // Messages every group has committed are gone for good.
    const trimTo = Math.min(...part.committed.values());
    if (trimTo > part.base) {
      part.log.splice(0, trimTo - part.base);
      part.base = trimTo;
    }
  }
}

/** FNV-1a over the key's UTF-16 units: stable, so one key always lands on one partition. */
export function partitionFor(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}
