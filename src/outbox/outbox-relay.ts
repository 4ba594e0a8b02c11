import { brokerRetry, createBackoff, databaseRetry } from "../lib/backoff.ts";
import type { Clock } from "../lib/clock.ts";
import { AppError, describeError } from "../lib/errors.ts";
import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import { sleep, TimeoutError, type Wakeup, withTimeout } from "../lib/sleep.ts";
import type { MessageBus, OutgoingMessage } from "../messaging/bus.ts";
import { decodeRowEnvelope, encodeKafkaEnvelope } from "./envelope.ts";
import type { OutboxEvents } from "./outbox-events.ts";
import type { ClaimedRow, OutboxStore } from "./outbox-store.ts";

export interface RelayOptions {
  readonly batchSize: number;
  /** How long an idle relay waits before it looks for due rows again (a local enqueue wakes it at once). */
  readonly pollIntervalMs: number;
  /** Each publish gets this long; a hung broker cannot stall the relay (fix 0.9.68 #3). */
  readonly publishTimeoutMs: number;
}

export interface RelayDeps {
  readonly store: OutboxStore;
  readonly bus: MessageBus;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<OutboxEvents>;
  readonly wakeup: Wakeup;
  readonly options: RelayOptions;
}

type BatchResult = "ok" | "broker_unavailable";

/**
 * Relays due outbox rows to the broker. It starts scanning at once, keeps draining while full batches come
 * back, and polls only when idle. Rows are claimed before publishing (see `OutboxStore.claimDue`), so
 * several relays never publish one row at the same time.
 *
 * Failures: an unreachable broker puts the batch back untouched and pauses the relay with a growing backoff
 * (rows stay `pending` and keep their retry budget); any other publish error counts against the rows
 * (n² s backoff, then `dead` after `max_retry`); an undecodable row is `dead` at once.
 */
export function createOutboxRelay(deps: RelayDeps) {
  const { store, bus, clock, logger, events, wakeup, options } = deps;
  const route = store.route;

  async function publishBatch(rows: readonly ClaimedRow[]): Promise<BatchResult> {
    const poison: { id: number; reason: string }[] = [];
    const byTopic = new Map<string, { rows: ClaimedRow[]; messages: OutgoingMessage[] }>();
    for (const row of rows) {
      const decoded = decodeRowEnvelope(row.payload);
      if (!decoded.ok) {
        poison.push({ id: row.id, reason: `cannot decode outbox envelope: ${decoded.reason}` });
        continue;
      }
      const envelope = decoded.value;
      const topic = row.topic.trim() || route.topic;
      let group = byTopic.get(topic);
      if (!group) {
        group = { rows: [], messages: [] };
        byTopic.set(topic, group);
      }
      group.rows.push(row);
      group.messages.push({
        key: row.messageKey,
        value: encodeKafkaEnvelope({
          ...envelope,
          outboxId: row.id,
          eventId: envelope.eventId || String(row.id),
          serviceName: row.serviceName.trim() || route.service,
        }),
      });
    }
    for (const { id, reason } of poison)
      await settle(() => store.markDead([id], reason, clock.now()), "mark dead");
    if (poison.length > 0)
      events.emit("relay:dead", { ids: poison.map((p) => p.id), reason: poison[0]?.reason ?? "" });

    const groups = [...byTopic.entries()];
    for (const [index, [topic, group]] of groups.entries()) {
      try {
        await publish(topic, group.rows, group.messages);
      } catch (error) {
        if (isBrokerUnavailable(error)) {
          const unpublished = groups.slice(index).flatMap(([, g]) => g.rows.map((row) => row.id));
          const reason = `broker unavailable: ${describeError(error)}`;
          await release(unpublished, reason);
          events.emit("relay:failed", { ids: unpublished, error: reason, brokerUnavailable: true });
          return "broker_unavailable";
        }
        if (group.rows.length > 1) {
          // One bad message (say, too large) fails its whole batch: publish one by one to find it, so the
          // others are not charged for it.
          const result = await publishOneByOne(topic, group.rows, group.messages);
          if (result === "broker_unavailable") {
            await release(
              groups.slice(index + 1).flatMap(([, g]) => g.rows.map((row) => row.id)),
              "broker unavailable",
            );
            return result;
          }
        } else {
          await failRows(group.rows, error);
        }
      }
    }
    return "ok";
  }

  async function publishOneByOne(
    topic: string,
    rows: readonly ClaimedRow[],
    messages: readonly OutgoingMessage[],
  ): Promise<BatchResult> {
    for (const [i, row] of rows.entries()) {
      const message = messages[i];
      if (!message) continue;
      try {
        await publish(topic, [row], [message]);
      } catch (error) {
        if (isBrokerUnavailable(error)) {
          await release(
            rows.slice(i).map((r) => r.id),
            `broker unavailable: ${describeError(error)}`,
          );
          return "broker_unavailable";
        }
        await failRows([row], error);
      }
    }
    return "ok";
  }

  /** Publishes rows' messages with the publish timeout, and reports them published. */
  async function publish(topic: string, rows: readonly ClaimedRow[], messages: readonly OutgoingMessage[]) {
    await withTimeout(bus.publish(topic, messages), options.publishTimeoutMs, `publish to ${topic}`);
    events.emit("relay:published", { ids: rows.map((row) => row.id), topic });
  }

  /** Puts claimed rows back untouched (the broker is unreachable): they keep their retry budget. */
  function release(ids: readonly number[], reason: string) {
    return settle(() => store.releaseClaimed(ids, reason, clock.now()), "release claimed rows");
  }

  async function failRows(rows: readonly ClaimedRow[], error: unknown) {
    const reason = `publish failed: ${describeError(error)}`;
    logger.warn("outbox publish failed; rows will be retried", { ids: rows.map((r) => r.id), error: reason });
    const result = await settle(() => store.failPublish(rows, reason, clock.now()), "record publish failure");
    events.emit("relay:failed", { ids: rows.map((row) => row.id), error: reason, brokerUnavailable: false });
    if (result && result.exhausted > 0) events.emit("relay:dead", { ids: rows.map((r) => r.id), reason });
  }

  /** Runs a database write after a publish; a failure leaves rows `published` for the sweeper. */
  async function settle<T>(write: () => Promise<T>, what: string): Promise<T | undefined> {
    try {
      return await write();
    } catch (error) {
      logger.error(`outbox relay could not ${what}; the sweeper will re-queue the rows`, {
        error: describeError(error),
      });
      return undefined;
    }
  }

  return {
    async run(signal: AbortSignal): Promise<void> {
      logger.info("outbox relay started", { table: route.table, topic: route.topic });
      const unavailable = createBackoff(brokerRetry);
      const claimFailures = createBackoff(databaseRetry);
      // Pipelined: the next batch is claimed while the previous one is being published, and published only
      // once the previous one is acknowledged, so per-key order holds and the database and the broker work
      // at the same time.
      let publishing: Promise<BatchResult> | undefined;
      const previousResult = async (): Promise<BatchResult | undefined> => {
        const result = publishing ? await publishing : undefined;
        publishing = undefined;
        return result;
      };
      while (!signal.aborted) {
        let rows: ClaimedRow[];
        try {
          rows = await store.claimDue(clock.now(), options.batchSize);
          claimFailures.succeeded();
        } catch (error) {
          await previousResult();
          const delay = claimFailures.failed();
          logger.error("outbox relay cannot claim rows", { error: describeError(error), retryInMs: delay });
          await sleep(delay, signal);
          continue;
        }
        const previous = await previousResult();
        if (previous === "broker_unavailable") {
          await release(
            rows.map((row) => row.id),
            "broker unavailable",
          );
          const delay = unavailable.failed();
          logger.warn("broker unavailable; outbox relay pauses", { retryInMs: delay });
          await sleep(delay, signal);
          continue;
        }
        if (previous === "ok") unavailable.succeeded();
        if (rows.length === 0) {
          await wakeup.wait(options.pollIntervalMs, signal);
          continue;
        }
        publishing = publishBatch(rows);
      }
      await previousResult();
      logger.info("outbox relay stopped");
    },
  };
}

function isBrokerUnavailable(error: unknown): boolean {
  return error instanceof TimeoutError || AppError.is(error, "broker_unavailable");
}
