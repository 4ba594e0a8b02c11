import { randomUUID } from "node:crypto";
import { type Backoff, createBackoff, databaseRetry } from "../lib/backoff.ts";
import type { Clock } from "../lib/clock.ts";
import { describeError } from "../lib/errors.ts";
import type { EventHub } from "../lib/event-hub.ts";
import { logFailedStep } from "../lib/failed-step-log.ts";
import type { Logger } from "../lib/logger.ts";
import { createWakeup, sleep } from "../lib/sleep.ts";
import { contextOfCarrier, contextOfTraceId, withContext } from "../lib/trace-context.ts";
import type { Channel } from "./channel.ts";
import { attemptDelivery, isUsable } from "./delivery-attempt.ts";
import { type Budgeted, budgetJobs, giveBackJobs } from "./delivery-budgeting.ts";
import type { DeliveryEvents } from "./delivery-events.ts";
import {
  createDeliveryQueue,
  type DeliveryJob,
  type DeliveryQueue,
  type DeliverySubmitter,
} from "./delivery-queue.ts";
import type { UserId } from "./ids.ts";
import type { ChannelStore } from "./ports/channel-store.ts";
import type { DeliveryProvider } from "./ports/delivery-provider.ts";
import type { RecordClaims } from "./ports/record-store.ts";
import type { SendBudget } from "./ports/send-budget.ts";
import type { NotificationRecord } from "./record.ts";
import { attemptResult, SENDING_LEASE_EXPIRED } from "./record-state.ts";
import { createResultFlusher } from "./result-flusher.ts";

export interface DispatcherOptions {
  /** Sends in flight at once. */
  readonly concurrency: number;
  /** Records claimed per UPDATE. */
  readonly claimBatch: number;
  /**
   * How long a claim owns a record. It must outlast the provider timeout by a wide margin: a lease that
   * ends while the POST is still running lets another instance send again (the svix#2181 lesson).
   */
  readonly leaseMs: number;
  /** Delay before the next attempt after `failures` failed ones (5, 10, 20, 30 min + jitter by default). */
  readonly retryDelayMs: (failures: number) => number;
}

export interface DispatcherDeps {
  readonly records: RecordClaims;
  readonly channels: Pick<ChannelStore, "getMany">;
  readonly provider: DeliveryProvider;
  /** Feishu's per-destination limits (5/s, 100/min), in this process or shared by all instances. */
  readonly budget: SendBudget;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<DeliveryEvents>;
  readonly options: DispatcherOptions;
}

export interface DeliveryDispatcher extends DeliverySubmitter {
  /** Jobs waiting or in flight (queued per user, not yet finished). */
  backlog(): number;
  /** Claims and sends until `signal` aborts; resolves once in-flight sends are written. */
  run(signal: AbortSignal): Promise<void>;
}

/**
 * Sends notification records. Submitted jobs wait in the delivery queue (per user); the loop picks a group of
 * them, lets the send budget of each one's destination decide which may go now (the rest wait in the queue,
 * never failed, never charged an attempt: `delivery:throttled`), and claims those with one compare-and-set
 * UPDATE (see `RecordClaims.claim`), so a record submitted twice, by two instances or by the retry scan while
 * an event arrives, is sent once. Each claimed record is
 * sent on its own (up to `concurrency` at once); results are written by the flusher (result-flusher.ts).
 */
export function createDeliveryDispatcher(deps: DispatcherDeps): DeliveryDispatcher {
  const queue = createDeliveryQueue();
  const wakeup = createWakeup();
  const flusher = createResultFlusher({
    ...deps,
    done: ({ result }) => {
      queue.forget(result.id);
      wakeup.notify();
    },
  });
  const dbFailures = createBackoff(databaseRetry);
  const state: LoopState = { ...deps, queue, wakeup, flusher, dbFailures, inFlight: 0 };
  return {
    submit(jobs) {
      if (queue.add(jobs)) wakeup.notify();
    },
    backlog: queue.backlog,
    run: (signal) => runDispatcher(state, signal),
  };
}

interface LoopState extends DispatcherDeps {
  readonly queue: DeliveryQueue;
  readonly wakeup: ReturnType<typeof createWakeup>;
  readonly flusher: ReturnType<typeof createResultFlusher>;
  /** The loop's database steps (read channels and budgets, claim) that failed in a row. */
  readonly dbFailures: Backoff;
  inFlight: number;
}

/** A database step of the loop failed; the loop waits `retryInMs` before the next. */
type DbFailed = { readonly dbFailed: true; readonly retryInMs: number };

/** Counts a failed database step and logs it by how long the failures have lasted (lib/failed-step-log.ts). */
function dbFailed(state: LoopState, msg: string, error: unknown): DbFailed {
  const retryInMs = state.dbFailures.failed();
  logFailedStep(state.logger, state.dbFailures.failures, msg, { error: describeError(error), retryInMs });
  return { dbFailed: true, retryInMs };
}

async function runDispatcher(state: LoopState, signal: AbortSignal): Promise<void> {
  const { options, wakeup, flusher } = state;
  const flusherStop = new AbortController();
  const flushing = flusher.run(flusherStop.signal);
  while (!signal.aborted) {
    // Claim in chunks: waiting until a quarter of the slots are free turns one tiny claim per finished POST
    // into one claim per group of them (a claim is an UPDATE plus a SELECT). Results waiting for their write
    // beyond one `concurrency` take slots too: when the database writes them slower than they are sent, sending
    // slows to its pace instead of piling finished attempts (request and response bodies) up in memory.
    const backlog = Math.max(0, flusher.unwritten() - options.concurrency);
    const free = options.concurrency - state.inFlight - backlog;
    if (free <= 0 || (state.inFlight > 0 && free < Math.max(1, Math.floor(options.concurrency / 4)))) {
      await wakeup.wait(1_000, signal);
      continue;
    }
    const step = await claimAndSend(state, Math.min(free, options.claimBatch));
    // Only a claim that went through ends a run of failures: a round that finds every job held by its send
    // budget writes nothing, so it says nothing of the database.
    if (step === "claimed") state.dbFailures.succeeded();
    else if (typeof step === "number") await wakeup.wait(step, signal);
    else await sleep(step.retryInMs, signal);
  }
  // Draining: in-flight sends end within the provider timeout; their results are written before return.
  // Jobs still queued were never claimed: their records stay pending for the retry scan.
  const draining = new AbortController().signal;
  while (state.inFlight > 0) await wakeup.wait(1_000, draining);
  flusherStop.abort();
  await flushing;
}

/** Picks jobs the send budgets allow, claims their records and starts their sends; else says how long to wait. */
async function claimAndSend(state: LoopState, max: number): Promise<"claimed" | DbFailed | number> {
  const { queue, records, events, options } = state;
  const now = state.clock.now();
  const allowed = await pickAllowed(state, max, now);
  if (typeof allowed === "number" || "dbFailed" in allowed) return allowed;
  const { jobs, channelsByUser, budgeted } = allowed;
  let claimed: NotificationRecord[];
  const token = randomUUID();
  try {
    const leaseUntil = new Date(now.getTime() + options.leaseMs);
    claimed = await records.claim(
      jobs.map((job) => job.recordId),
      now,
      leaseUntil,
      token,
    );
  } catch (error) {
    queue.putBack(jobs);
    const failed = dbFailed(state, "cannot claim notification records", error);
    // Charged again when picked again: what this claim was charged is given back.
    await giveBack(state, jobs, budgeted);
    return failed;
  }
  const claimedIds = new Set(claimed.map((record) => record.id));
  const lost = jobs.filter((job) => !claimedIds.has(job.recordId));
  for (const job of lost) queue.forget(job.recordId);
  if (claimed.length > 0) {
    const leaseRecovered = claimed.filter((r) => r.lastErrorCode === SENDING_LEASE_EXPIRED).length;
    events.emit("delivery:claimed", { ids: [...claimedIds], at: now.getTime(), leaseRecovered });
  }
  const jobOf = new Map(jobs.map((job) => [job.recordId, job]));
  for (const record of claimed) {
    const job = jobOf.get(record.id) ?? { recordId: record.id, userId: record.userId };
    state.inFlight++;
    void send(state, record, channelsByUser.get(record.userId), job, token).finally(() => {
      state.inFlight--;
      state.wakeup.notify();
    });
  }
  // After the sends have started, so a slow give-back never holds them.
  await giveBack(state, lost, budgeted);
  return "claimed";
}

/** Gives back what `jobs` were charged; a failure only leaves the budget stricter for a while. */
function giveBack(state: LoopState, jobs: readonly DeliveryJob[], budgeted: Budgeted): Promise<void> {
  return giveBackJobs(jobs, budgeted, state.budget).catch((error: unknown) =>
    state.logger.warn("cannot give back the send budget of unsent jobs", { error: describeError(error) }),
  );
}

/**
 * The picked jobs whose destinations' send budgets allow a send now, with their users' channels. Jobs held
 * back go back to the queue and their users wait there (`delivery:throttled`).
 */
async function pickAllowed(
  state: LoopState,
  max: number,
  now: Date,
): Promise<
  { jobs: DeliveryJob[]; channelsByUser: Map<UserId, Channel>; budgeted: Budgeted } | DbFailed | number
> {
  const { queue, channels, budget, events } = state;
  const picked = queue.pick(max, now.getTime());
  if (picked.jobs.length === 0) return queue.hasWaiting() ? picked.waitMs : 1_000;
  let channelsByUser: Map<UserId, Channel>;
  let budgeted: Awaited<ReturnType<typeof budgetJobs>>;
  try {
    channelsByUser = await channels.getMany([...new Set(picked.jobs.map((job) => job.userId))]);
    // Stamped when taken, after the channels' read: the sends go out right after this (their claim aside).
    budgeted = await budgetJobs(picked.jobs, channelsByUser, budget, state.clock.now());
  } catch (error) {
    queue.putBack(picked.jobs);
    return dbFailed(state, "cannot read channels or send budgets", error);
  }
  queue.putBack(budgeted.deferred);
  for (const [userId, waitMs] of budgeted.throttled) {
    queue.hold(userId, now.getTime() + waitMs);
    events.emit("delivery:throttled", { userId, waitMs, at: now.getTime() });
  }
  if (budgeted.allowed.length === 0) return Math.min(...budgeted.throttled.values());
  return { jobs: budgeted.allowed, channelsByUser, budgeted };
}

async function send(
  state: LoopState,
  record: NotificationRecord,
  channel: Channel | undefined,
  job: DeliveryJob,
  token: string,
) {
  const { provider, logger, clock, options, flusher, events } = state;
  const started = clock.now().getTime();
  const sent = await withContext(jobContext(job, record), () =>
    attemptDelivery(record, channel, provider, logger),
  );
  const durationMs = clock.now().getTime() - started;
  const kind = isUsable(channel) ? channel.webhookKind : "none";
  events.emit("delivery:attempted", { provider: kind, outcome: sent.outcome, durationMs });
  const result = attemptResult(record, token, sent, clock.now(), options.retryDelayMs);
  flusher.add({ result, job, outcome: sent.outcome, attemptCount: record.attemptCount });
}

/** The trace a send continues: its event's, else the W3C trace id its record names (a retry), else none. */
export function jobContext(job: DeliveryJob, record: NotificationRecord) {
  return contextOfCarrier(job.trace) ?? contextOfTraceId(record.traceId);
}
