import { createBackoff, databaseRetry } from "../lib/backoff.ts";
import type { Clock } from "../lib/clock.ts";
import { describeError } from "../lib/errors.ts";
import type { EventHub } from "../lib/event-hub.ts";
import { logFailedStep } from "../lib/failed-step-log.ts";
import type { Logger } from "../lib/logger.ts";
import { sleep } from "../lib/sleep.ts";
import type { IncomingMessage, MessageBus } from "../messaging/bus.ts";
import {
  type DeadUnhandled,
  type Decision,
  decideAll,
  toOutcomes,
  type WorkItem,
} from "./consumer-decisions.ts";
import type { MessageOrigin } from "./consumer-tracing.ts";
import { screenCrashes } from "./crash-guard.ts";
import { decodeKafkaEnvelope, type KafkaEnvelope } from "./envelope.ts";
import type { OutboxEvents } from "./outbox-events.ts";
import type { OutboxHandler } from "./outbox-handler.ts";
import { OutboxStatus } from "./outbox-status.ts";
import type { ServiceRoute } from "./routes.ts";
import type { ConsumerStore } from "./store/consumer-store.ts";

export interface ConsumerDeps {
  readonly store: ConsumerStore;
  readonly bus: MessageBus;
  readonly route: ServiceRoute;
  readonly handlers: readonly OutboxHandler[];
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<OutboxEvents>;
  /** OUTBOX_MAX_CRASHES: a row whose handling the process died in this many times is dead (crash-guard.ts). */
  readonly maxCrashes: number;
}

interface Context extends ConsumerDeps {
  readonly byType: ReadonlyMap<string, OutboxHandler>;
}

/**
 * Consumes the route's topic. For each batch of messages: decode them (an unreadable one is logged, counted
 * and, when its outbox id is known, dead), look up their rows, hand the ones whose row is still claimed to
 * their handlers, and write every outcome in one transaction. Only then does the bus commit the offsets: a
 * crash before it redelivers the batch, and the guards make a redelivery harmless. A database outage blocks
 * the partition and retries; it never commits past unrecorded work. Each handling is counted as started
 * before the handler runs and as finished with its outcome, so a row the process keeps dying on while
 * handling it ends dead (crash-guard.ts).
 */
export function createOutboxConsumer(deps: ConsumerDeps) {
  const context: Context = { ...deps, byType: new Map(deps.handlers.map((h) => [h.eventType, h])) };
  const consumeMessages = (messages: readonly IncomingMessage[], signal: AbortSignal) =>
    consumeBatch(context, messages, signal);
  return {
    /** One batch of the bus; resolves `true` once its outcomes are stored (the offsets may move). */
    consumeMessages,
    run(signal: AbortSignal): Promise<void> {
      const { route, logger, bus } = deps;
      logger.info("outbox consumer started", { topic: route.topic, group: route.groupId });
      return bus.subscribe(
        { topic: route.topic, groupId: route.groupId, handleMessages: consumeMessages },
        signal,
      );
    },
  };
}

async function consumeBatch(
  context: Context,
  messages: readonly IncomingMessage[],
  signal: AbortSignal,
): Promise<boolean> {
  const { store, logger } = context;
  const { candidates, unreadable } = decodeMessages(context, messages);
  const states = await untilStored(
    context,
    "load outbox rows",
    () => store.loadStates([...candidates.keys()]),
    signal,
  );
  if (states === undefined) return false;

  const skipped: number[] = [];
  const work: WorkItem[] = [];
  for (const [id, candidate] of candidates) {
    const row = states.get(id);
    // Only a claimed row is waiting for this delivery; anything else is a stale copy (already consumed or
    // dead) or was re-queued and will be published again.
    if (!row || row.status !== OutboxStatus.claimed) skipped.push(id);
    else work.push({ ...candidate, row });
  }
  const { fresh, suspicious, crashed } = screenCrashes(work, context.maxCrashes);
  for (const { id, reason } of crashed)
    logger.error("outbox row crashed the process; dead", { outboxId: id, reason });
  if (suspicious.length > 0) {
    logger.warn("outbox rows were being handled when the process died; handling each alone", {
      outboxIds: suspicious.map((item) => item.row.id),
    });
  }
  // The rows never interrupted go together; then each interrupted one alone, so that a poison row dies (or
  // crashes the process once more) without taking its batch-mates with it. Each round is stored before the
  // next begins.
  if (!(await handleRound(context, fresh, [...unreadable, ...crashed], skipped, signal))) return false;
  for (const item of suspicious) {
    if (!(await handleRound(context, [item], [], [], signal))) return false;
  }
  return true;
}

/**
 * Counts the round's rows as started (committed), runs their handlers, and stores the outcomes with the
 * rows counted as finished, in one transaction. Resolves `false` when shutdown interrupted the storing.
 */
async function handleRound(
  context: Context,
  work: readonly WorkItem[],
  dead: readonly DeadUnhandled[],
  skipped: readonly number[],
  signal: AbortSignal,
): Promise<boolean> {
  const { store, clock, logger, events } = context;
  if (work.length > 0) {
    const ids = work.map((item) => item.row.id);
    const started = await untilStored(
      context,
      "count started attempts",
      () => store.markStarted(ids).then(() => true),
      signal,
    );
    if (started === undefined) return false;
  }
  const decisions = await decideAll(context.byType, work, signal);
  const now = clock.now();
  const outcomes = toOutcomes(work, decisions, dead, now);
  for (const { id, reason } of outcomes.dead) logger.warn("outbox message is dead", { outboxId: id, reason });
  for (const { row, reason } of outcomes.retry) {
    logger.warn("outbox handler failed; will retry", {
      outboxId: row.id,
      retryCount: row.retryCount,
      reason,
    });
  }
  const applied = await untilStored(
    context,
    "record outcomes",
    () => store.applyOutcomes(outcomes, now),
    signal,
  );
  if (applied === undefined) return false;
  events.emit("consumer:outcomes", {
    consumed: outcomes.consumed,
    dead: outcomes.dead.map((d) => d.id),
    retried: outcomes.retry.map((r) => r.row.id),
    deferred: outcomes.deferred.map((d) => d.id),
    skipped,
    deadByClass: deadByClass(decisions, dead),
  });
  return true;
}

/** Dead messages by bounded class: the handler's decisions, and those dead before it (unreadable, crash loop). */
function deadByClass(
  decisions: readonly Decision[],
  unhandled: readonly DeadUnhandled[],
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { reasonClass } of unhandled) counts[reasonClass] = (counts[reasonClass] ?? 0) + 1;
  for (const decision of decisions) {
    if (decision.kind === "dead") counts[decision.reasonClass] = (counts[decision.reasonClass] ?? 0) + 1;
  }
  return counts;
}

/** Decodes a batch; nothing is dropped silently (weakness 17). A message seen twice is handled once. */
function decodeMessages({ route, logger, events }: Context, messages: readonly IncomingMessage[]) {
  const unreadable: DeadUnhandled[] = [];
  const candidates = new Map<number, { envelope: KafkaEnvelope; key: string; origin: MessageOrigin }>();
  for (const message of messages) {
    const where = { topic: message.topic, offset: message.offset };
    const decoded = decodeKafkaEnvelope(message.value);
    if (!decoded.ok) {
      logger.warn("outbox consumer: unreadable message", {
        ...where,
        partition: message.partition,
        reason: decoded.reason,
        outboxId: decoded.outboxId,
      });
      events.emit("consumer:dropped", { ...where, reason: decoded.reason });
      if (decoded.outboxId !== undefined)
        unreadable.push({ id: decoded.outboxId, reason: decoded.reason, reasonClass: "unreadable" });
      continue;
    }
    const envelope = decoded.value;
    if (envelope.serviceName !== "" && envelope.serviceName !== route.service) {
      // Its outbox id belongs to another service's table: nothing here may be changed for it.
      const reason = `message belongs to service ${envelope.serviceName}, not ${route.service}`;
      logger.warn("outbox consumer: message for another service", { offset: message.offset, reason });
      events.emit("consumer:dropped", { ...where, reason });
      continue;
    }
    // A row re-published while an earlier copy is still in the topic arrives twice: handle it once.
    if (!candidates.has(envelope.outboxId)) {
      candidates.set(envelope.outboxId, { envelope, key: message.key ?? "", origin: message });
    }
  }
  return { candidates, unreadable };
}

/** Retries a database step until it succeeds; gives up only once shutdown began (returns undefined). */
async function untilStored<T>(
  { logger }: Context,
  what: string,
  step: () => Promise<T>,
  signal: AbortSignal,
): Promise<T | undefined> {
  const backoff = createBackoff(databaseRetry);
  for (;;) {
    try {
      return await step();
    } catch (error) {
      if (signal.aborted) return undefined;
      const delay = backoff.failed();
      logFailedStep(logger, backoff.failures, `outbox consumer cannot ${what}; retrying`, {
        error: describeError(error),
        retryInMs: delay,
      });
      await sleep(delay, signal);
    }
  }
}
