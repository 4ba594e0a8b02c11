import { migrateToLatest } from "../db/migrations.ts";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { TimeoutError, withTimeout } from "../lib/sleep.ts";
import type { RetentionJob } from "../retention/retention-job.ts";
import type { ApiArea } from "./api-wiring.ts";
import type { DeliveryArea } from "./delivery-wiring.ts";
import type { Infrastructure } from "./infrastructure.ts";
import type { ObservabilityArea } from "./observability-wiring.ts";
import type { OutboxArea } from "./outbox-wiring.ts";
import type { createLoopSupervisor } from "./supervision.ts";
import { warnIfRowsLookAhead } from "./time-zone-check.ts";

/** A created app's areas and its loops, as start and the staged stop (drainAndClose) see them. */
export interface Running {
  readonly infra: Infrastructure;
  readonly delivery: DeliveryArea;
  readonly outbox: OutboxArea;
  readonly api: ApiArea;
  readonly observability: ObservabilityArea;
  readonly supervisor: ReturnType<typeof createLoopSupervisor>;
  readonly retention: RetentionJob;
  readonly loops: AbortController;
  readonly running: Promise<void>[];
}

/** Migrates, starts every loop, then opens the API; returns the API's port. */
export async function start({
  infra,
  delivery,
  outbox,
  api,
  retention,
  loops,
  running,
  supervisor,
}: Running): Promise<number> {
  const { db, route, bus, logger } = infra;
  const applied = await migrateToLatest(db.kysely, db.traits, { outbox: route.table });
  logger.info("database ready", { dialect: db.traits.dialect, migrationsApplied: applied });
  const { config, clock } = infra;
  await warnIfRowsLookAhead(
    db,
    [route.table, "notification_records"],
    clock.now(),
    config.database.timeZone,
    logger,
  );
  const signal = loops.signal;
  const guard = supervisor.watch;
  // The relay never waits on the topic (publishing creates it too); only consuming does.
  const topicReady = outbox.topicKeeper.run(signal);
  running.push(
    guard("outbox relay", outbox.relay.run(signal)),
    guard("outbox sweeper", outbox.sweeper.run(signal)),
    guard("delivery dispatcher", delivery.dispatcher.run(signal)),
    guard("retry loop", delivery.retryLoop.run(signal)),
    guard("database health", api.databaseWatch.run(signal)),
    guard("retention", retention.run(signal)),
    guard(
      "outbox consumer",
      topicReady.then(() => (signal.aborted ? undefined : outbox.consumer.run(signal))),
    ),
  );
  const port = await api.server.listen();
  logger.info("smartflow-notification started", {
    bus: bus.kind,
    table: route.table,
    topic: route.topic,
    group: route.groupId,
  });
  return port;
}

/** What closing the bus, the HTTPS pool and the database may take once the grace time is over. */
export const SHUTDOWN_CLOSE_MARGIN_MS = 2_000;

/**
 * Staged shutdown (weakness 18), one budget: NOT_SERVING at once; the API stops accepting and lets its calls
 * finish while the loops drain theirs, concurrently; at `SHUTDOWN_GRACE_MS` after the start, the API
 * destroys the connections left (an idle one, a half-sent request) and the loops are no longer waited for;
 * the HTTPS pool is destroyed (a webhook that hangs is cut off); then the bus and the database close, each
 * within `SHUTDOWN_CLOSE_MARGIN_MS`. So the whole takes at most the grace time plus that margin (twice).
 * Work that did not finish stays claimable (uncommitted offsets, claimed rows, sending leases).
 */
export async function drainAndClose(run: Running): Promise<void> {
  const { infra, delivery, api, loops, running, observability } = run;
  const { config, logger, bus, db } = infra;
  const graceMs = config.shutdownGraceMs;
  logger.info("shutting down: NOT_SERVING, closing the API, draining loops", { graceMs });
  api.health.setDraining();
  loops.abort();
  const [, drained] = await Promise.all([
    api.server.close(graceMs),
    settlesWithin(Promise.all(running), graceMs),
  ]);
  if (!drained) logger.warn("shutdown grace time ran out; unfinished work stays claimable", { graceMs });
  delivery.httpsClient.close();
  await closeWithin("the bus", bus.close(), logger);
  await closeWithin("the database", db.close(), logger);
  observability.metrics.close();
  await closeWithin("the metrics listener", observability.probes?.close() ?? Promise.resolve(), logger);
  logger.info("shutdown complete");
}

/** Whether `work` settled within `ms` (a rejection counts: it is over); it is not waited for after that. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  try {
    await withTimeout(work, ms, "shutdown step");
    return true;
  } catch (error) {
    return !(error instanceof TimeoutError);
  }
}

async function closeWithin(what: string, closing: Promise<unknown>, logger: Logger) {
  try {
    await withTimeout(closing, SHUTDOWN_CLOSE_MARGIN_MS, `closing ${what}`);
  } catch (error) {
    logger.warn(`${what} did not close cleanly`, { error: describeError(error) });
  }
}
