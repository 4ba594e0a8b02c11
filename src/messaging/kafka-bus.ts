import kafkajs, { type Consumer, type logCreator, type Producer } from "kafkajs";
import { brokerRetry, createBackoff } from "../lib/backoff.ts";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { sleep, untilAborted, withTimeout } from "../lib/sleep.ts";
import type { MessageBus, Subscription } from "./bus.ts";
import { batchHandler } from "./kafka-batches.ts";
import { alreadyExists, classify } from "./kafka-errors.ts";

const { Kafka, Partitioners, logLevel } = kafkajs;

export interface KafkaBusOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly logger: Logger;
  /** Partitions of one topic handled at the same time by this process. */
  readonly partitionsConcurrently: number;
  /** Messages handed to `handleMessages` at most at once; offsets are committed after each. */
  readonly maxBatch: number;
  readonly connectTimeoutMs: number;
  /**
   * How long the group waits for a silent member before it takes its partitions away (default 10 s). The
   * member keeps heartbeating while a batch is being handled, so a handler waiting out a database outage
   * keeps its partitions.
   */
  readonly sessionTimeoutMs?: number;
  /** Told, after each handled chunk, how many messages the partition still holds past it (metrics). */
  readonly onLag?: (topic: string, partition: number, lag: number) => void;
}

/**
 * With kafka-batches.ts, the only files that import kafkajs. Producer and admin connect lazily and reconnect after a failure, so a
 * broker that is down at startup only delays publishing. Consumers commit an offset only after
 * `handleMessages` resolved `true` for the messages before it.
 */
export function createKafkaBus(options: KafkaBusOptions): MessageBus {
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectTimeoutMs,
    requestTimeout: 15_000,
    retry: { initialRetryTime: 100, retries: 3, maxRetryTime: 2_000 },
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(options.logger),
  });
  const context: KafkaContext = { kafka, options, consumers: new Set() };
  const producer = lazyProducer(context);
  return {
    kind: "kafka",
    ensureTopic: (topic, partitions) => ensureTopic(context, topic, partitions),
    async publish(topic, messages, publishOptions = {}) {
      if (messages.length === 0) return;
      let used: Producer | undefined;
      let abandoned = false;
      const send = async () => {
        const connected = await producer.connected();
        if (abandoned) return; // timed out while connecting: never send behind the caller's back
        used = connected;
        await used.send({
          topic,
          messages: messages.map((message) => ({
            key: message.key === "" ? null : message.key,
            value: message.value,
            ...(message.headers ? { headers: { ...message.headers } } : {}),
          })),
        });
      };
      try {
        const { timeoutMs } = publishOptions;
        await (timeoutMs === undefined ? send() : withTimeout(send(), timeoutMs, `publish to ${topic}`));
      } catch (error) {
        abandoned = true;
        // After a failure its batch numbers may not match the broker's (a batch written, not acknowledged),
        // which would take the next publish for a duplicate and drop it: the next publish gets a new producer.
        if (used) producer.retire(used);
        throw classify(error, `publish to ${topic} failed`);
      }
    },
    subscribe: (subscription, signal) => subscribe(context, subscription, signal),
    async close() {
      const consumers = [...context.consumers];
      await Promise.all(consumers.map((consumer) => consumer.disconnect().catch(() => undefined)));
      await producer.disconnect();
    },
  };
}

interface KafkaContext {
  readonly kafka: InstanceType<typeof Kafka>;
  readonly options: KafkaBusOptions;
  /** Consumers running now, disconnected by `close`. */
  readonly consumers: Set<Consumer>;
}

/**
 * One idempotent producer (the broker drops the copies kafkajs sends again after a partial failure, which a
 * plain producer writes twice), connected on first use. A failed connection is forgotten, so the next publish
 * retries it; `retire` drops a producer whose publish failed.
 */
function lazyProducer({ kafka, options }: KafkaContext) {
  let producer: Producer | undefined;
  let producerReady: Promise<Producer> | undefined;
  return {
    connected(): Promise<Producer> {
      producerReady ??= (async () => {
        const created = kafka.producer({
          createPartitioner: Partitioners.DefaultPartitioner,
          allowAutoTopicCreation: true,
          idempotent: true,
          retry: { initialRetryTime: 100, retries: 2, maxRetryTime: 1_000 },
        });
        try {
          await withTimeout(created.connect(), options.connectTimeoutMs * 2, "kafka producer connect");
        } catch (error) {
          await created.disconnect().catch(() => undefined);
          throw error;
        }
        producer = created;
        return created;
      })();
      producerReady.catch(() => {
        producerReady = undefined;
      });
      return producerReady;
    },
    retire(used: Producer) {
      if (producer !== used) return;
      producer = undefined;
      producerReady = undefined;
      used.disconnect().catch(() => undefined);
    },
    async disconnect() {
      await producer?.disconnect().catch(() => undefined);
      producer = undefined;
      producerReady = undefined;
    },
  };
}

async function ensureTopic({ kafka, options }: KafkaContext, topic: string, partitions: number) {
  const admin = kafka.admin();
  try {
    await withTimeout(admin.connect(), options.connectTimeoutMs * 2, "kafka admin connect");
    const existing = await admin.listTopics();
    if (!existing.includes(topic)) {
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
      options.logger.info("kafka topic created", { topic, partitions });
    }
  } catch (error) {
    // A producer's auto-creation (or another instance) may win the race: the topic exists, as wanted.
    if (alreadyExists(error)) return;
    throw classify(error, `could not ensure kafka topic ${topic}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Consumes until the signal aborts; a consumer that fails for good is replaced after a backoff. */
async function subscribe(context: KafkaContext, subscription: Subscription, signal: AbortSignal) {
  const backoff = createBackoff(brokerRetry);
  while (!signal.aborted) {
    const outcome = await consumeOnce(context, subscription, signal);
    if (outcome === "stopped") return;
    const delay = backoff.failed();
    context.options.logger.warn("kafka consumer stopped unexpectedly; restarting", {
      topic: subscription.topic,
      group: subscription.groupId,
      error: outcome,
      retryInMs: delay,
    });
    await sleep(delay, signal);
  }
}

/** Runs one consumer until the signal aborts ("stopped") or the consumer fails for good (the error). */
async function consumeOnce(
  { kafka, options, consumers }: KafkaContext,
  subscription: Subscription,
  signal: AbortSignal,
): Promise<"stopped" | Error> {
  const sessionTimeout = options.sessionTimeoutMs ?? 10_000;
  const heartbeatInterval = Math.max(100, Math.min(1_000, Math.floor(sessionTimeout / 10)));
  const consumer = kafka.consumer({
    groupId: subscription.groupId,
    maxWaitTimeInMs: 250,
    sessionTimeout,
    rebalanceTimeout: Math.max(60_000, sessionTimeout),
    // A member is declared dead after the session timeout, and kafkajs (no static membership) rejoins a
    // restarted process as a new member, so the group waits one session timeout for the old one: keep it
    // short and heartbeat often.
    heartbeatInterval,
    allowAutoTopicCreation: true,
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5_000 },
  });
  consumers.add(consumer);
  const crashed = new Promise<Error>((resolve) => {
    consumer.on(consumer.events.CRASH, (event) => {
      if (!event.payload.restart) resolve(event.payload.error);
    });
  });
  const aborted = untilAborted(signal).then(() => "stopped" as const);
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: subscription.topic, fromBeginning: true });
    await consumer.run({
      partitionsConsumedConcurrently: options.partitionsConcurrently,
      eachBatchAutoResolve: false,
      eachBatch: batchHandler(options, heartbeatInterval, subscription, signal),
    });
    return await Promise.race([aborted, crashed]);
  } catch (error) {
    return error instanceof Error ? error : new Error(describeError(error));
  } finally {
    await consumer.disconnect().catch((error: unknown) => {
      options.logger.warn("kafka consumer disconnect failed", { error: describeError(error) });
    });
    consumers.delete(consumer);
  }
}

function kafkaLogCreator(logger: Logger): logCreator {
  return () =>
    ({ level, log }) => {
      const { message, ...fields } = log;
      if (message.startsWith("Limiting retries for the idempotent producer")) return; // see lazyProducer
      const child = { component: "kafkajs", ...fields };
      if (level === logLevel.ERROR) logger.warn(`kafkajs: ${message}`, child);
      else if (level === logLevel.WARN) logger.info(`kafkajs: ${message}`, child);
      else logger.debug(`kafkajs: ${message}`, child);
    };
}
