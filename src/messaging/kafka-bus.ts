import kafkajs, { type Consumer, type logCreator, type Producer } from "kafkajs";
import { brokerRetry, createBackoff } from "../lib/backoff.ts";
import { AppError, describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { sleep, withTimeout } from "../lib/sleep.ts";
import type { IncomingMessage, MessageBus, Subscription } from "./bus.ts";

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
   * How long the group waits for a silent member before it takes its partitions away (default 30 s). While
   * a batch is being handled the member sends no heartbeat, so this bounds a batch's handling time too.
   */
  readonly sessionTimeoutMs?: number;
}

/**
 * The only file that imports kafkajs. Producer and admin connect lazily and reconnect after a failure, so a
 * broker that is down at startup only delays publishing. Consumers commit an offset only after
 * `handleMessages` resolved `true` for the messages before it.
 */
export function createKafkaBus(options: KafkaBusOptions): MessageBus {
  const { logger } = options;
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectTimeoutMs,
    requestTimeout: 15_000,
    retry: { initialRetryTime: 100, retries: 3, maxRetryTime: 2_000 },
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(logger),
  });
  let producer: Producer | undefined;
  let producerReady: Promise<Producer> | undefined;
  const consumers = new Set<Consumer>();

  const connectedProducer = () => {
    producerReady ??= (async () => {
      const created = kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: true,
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
  };

  return {
    kind: "kafka",

    async ensureTopic(topic, partitions) {
      const admin = kafka.admin();
      try {
        await withTimeout(admin.connect(), options.connectTimeoutMs * 2, "kafka admin connect");
        const existing = await admin.listTopics();
        if (!existing.includes(topic)) {
          await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
          logger.info("kafka topic created", { topic, partitions });
        }
      } catch (error) {
        // A producer's auto-creation (or another instance) may win the race: the topic exists, as wanted.
        if (alreadyExists(error)) return;
        throw classify(error, `could not ensure kafka topic ${topic}`);
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },

    async publish(topic, messages) {
      if (messages.length === 0) return;
      try {
        const connected = await connectedProducer();
        await connected.send({
          topic,
          messages: messages.map((message) => ({
            key: message.key === "" ? null : message.key,
            value: message.value,
            ...(message.headers ? { headers: { ...message.headers } } : {}),
          })),
        });
      } catch (error) {
        throw classify(error, `publish to ${topic} failed`);
      }
    },

    async subscribe(subscription, signal) {
      const backoff = createBackoff(brokerRetry);
      while (!signal.aborted) {
        const outcome = await consumeOnce(subscription, signal);
        if (outcome === "stopped") return;
        const delay = backoff.failed();
        logger.warn("kafka consumer stopped unexpectedly; restarting", {
          topic: subscription.topic,
          group: subscription.groupId,
          error: outcome,
          retryInMs: delay,
        });
        await sleep(delay, signal);
      }
    },

    async close() {
      await Promise.all([...consumers].map((consumer) => consumer.disconnect().catch(() => undefined)));
      await producer?.disconnect().catch(() => undefined);
      producer = undefined;
      producerReady = undefined;
    },
  };

  /** Runs one consumer until the signal aborts ("stopped") or the consumer fails for good (the error). */
  async function consumeOnce(subscription: Subscription, signal: AbortSignal): Promise<"stopped" | Error> {
    const consumer = kafka.consumer({
      groupId: subscription.groupId,
      maxWaitTimeInMs: 250,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      rebalanceTimeout: Math.max(60_000, options.sessionTimeoutMs ?? 0),
      heartbeatInterval: Math.min(3_000, Math.floor((options.sessionTimeoutMs ?? 30_000) / 3)),
      allowAutoTopicCreation: true,
      retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5_000 },
    });
    consumers.add(consumer);
    let onCrash: (error: Error) => void = () => undefined;
    const crashed = new Promise<Error>((resolve) => {
      onCrash = resolve;
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (!event.payload.restart) onCrash(event.payload.error);
    });
    const aborted = new Promise<"stopped">((resolve) => {
      if (signal.aborted) resolve("stopped");
      signal.addEventListener("abort", () => resolve("stopped"), { once: true });
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: subscription.topic, fromBeginning: true });
      await consumer.run({
        partitionsConsumedConcurrently: options.partitionsConcurrently,
        eachBatchAutoResolve: false,
        eachBatch: async ({
          batch,
          resolveOffset,
          heartbeat,
          commitOffsetsIfNecessary,
          isRunning,
          isStale,
        }) => {
          for (let start = 0; start < batch.messages.length; start += options.maxBatch) {
            if (!isRunning() || isStale() || signal.aborted) return;
            const chunk = batch.messages.slice(start, start + options.maxBatch);
            const incoming: IncomingMessage[] = chunk.map((message) => ({
              topic: batch.topic,
              partition: batch.partition,
              offset: message.offset,
              key: message.key === null ? null : message.key.toString("utf8"),
              value: message.value,
            }));
            // The offset is committed only after the handler's database writes have committed: a crash
            // before that redelivers these messages, and the handler's guards make a redelivery harmless.
            if (!(await subscription.handleMessages(incoming, signal))) return;
            const last = chunk[chunk.length - 1];
            if (last) resolveOffset(last.offset);
            await commitOffsetsIfNecessary();
            await heartbeat();
          }
        },
      });
      return await Promise.race([aborted, crashed]);
    } catch (error) {
      return error instanceof Error ? error : new Error(describeError(error));
    } finally {
      await consumer.disconnect().catch((error: unknown) => {
        logger.warn("kafka consumer disconnect failed", { error: describeError(error) });
      });
      consumers.delete(consumer);
    }
  }
}

/**
 * Broker unreachable, timed out or temporarily leaderless → `broker_unavailable`: the relay keeps the rows
 * pending and waits, without spending their retry budget. Anything else (a message too large, an
 * authorization failure) is about the messages: `internal`, not retryable, counted against each row.
 */
function classify(error: unknown, message: string): AppError {
  let innermost: unknown = error;
  for (let depth = 0; depth < 5; depth++) {
    const cause = (innermost as { cause?: unknown } | null)?.cause;
    if (cause === undefined || cause === null) break;
    innermost = cause;
  }
  const name = (innermost as { name?: unknown } | null)?.name;
  const retriable = (innermost as { retriable?: unknown } | null)?.retriable;
  const unavailable = name === "TimeoutError" || retriable === true;
  return new AppError(
    unavailable ? "broker_unavailable" : "internal",
    `${message}: ${describeError(error)}`,
    {
      cause: error,
      retryable: unavailable,
    },
  );
}

function alreadyExists(error: unknown): boolean {
  const errors = (error as { errors?: unknown } | null)?.errors;
  return (
    Array.isArray(errors) &&
    errors.length > 0 &&
    errors.every((e) => (e as { type?: unknown } | null)?.type === "TOPIC_ALREADY_EXISTS")
  );
}

function kafkaLogCreator(logger: Logger): logCreator {
  return () =>
    ({ level, log }) => {
      const { message, ...fields } = log;
      const child = { component: "kafkajs", ...fields };
      if (level === logLevel.ERROR) logger.warn(`kafkajs: ${message}`, child);
      else if (level === logLevel.WARN) logger.info(`kafkajs: ${message}`, child);
      else logger.debug(`kafkajs: ${message}`, child);
    };
}
