import { randomUUID } from "node:crypto";
import { RecordStatus } from "../db/schema.ts";
import { createBackoff, databaseRetry } from "../lib/backoff.ts";
import type { Clock } from "../lib/clock.ts";
import { describeError } from "../lib/errors.ts";
import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import type { RateLimiter } from "../lib/rate-limiter.ts";
import { createWakeup, sleep } from "../lib/sleep.ts";
import type { ChannelRow, ChannelStore } from "./channel-store.ts";
import type { DeliveryChannel, SendResult } from "./delivery-channel.ts";
import type { DeliveryEvents } from "./delivery-events.ts";
import { buildSendRequest } from "./message-composer.ts";
import type { AttemptResult, RecordRow, RecordStore } from "./record-store.ts";

export interface DeliveryJob {
  readonly recordId: number;
  readonly userId: number;
  /** The outbox row the job came from, for the log line; absent for retries. */
  readonly outboxId?: number;
  readonly reused?: boolean;
}

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

export type DeliveryDispatcher = ReturnType<typeof createDeliveryDispatcher>;

/**
 * Sends notification records. Jobs wait in one FIFO per user (one user = one webhook), taken round-robin, and
 * a job is only claimed once its user's rate limit allows a send now: a burst to one bot queues without
 * holding a lease or a send slot, and never delays other users. Claiming is one compare-and-set UPDATE per
 * batch (see `RecordStore.claim`), so a record submitted twice, by two instances or by the retry scan while
 * an event arrives, is sent once. Results are written by a flusher that commits whatever finished meanwhile
 * in one transaction, each write guarded by the claim.
 */
export function createDeliveryDispatcher(deps: {
  readonly records: RecordStore;
  readonly channels: ChannelStore;
  readonly provider: DeliveryChannel;
  readonly limiter: RateLimiter;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<DeliveryEvents>;
  readonly options: DispatcherOptions;
}) {
  const { records, channels, provider, limiter, clock, logger, events, options } = deps;
  const queues = new Map<number, DeliveryJob[]>();
  const known = new Set<number>();
  let turn: number[] = [];
  let inFlight = 0;
  const pendingResults: {
    result: AttemptResult;
    job: DeliveryJob;
    outcome: SendResult["outcome"];
    attempt: number;
  }[] = [];
  const wakeup = createWakeup();
  const flushWakeup = createWakeup();

  function submit(jobs: readonly DeliveryJob[]) {
    for (const job of jobs) {
      if (known.has(job.recordId)) continue;
      known.add(job.recordId);
      const queue = queues.get(job.userId);
      if (queue) queue.push(job);
      else {
        queues.set(job.userId, [job]);
        turn.push(job.userId);
      }
    }
    if (jobs.length > 0) wakeup.notify();
  }

  /** Takes up to `max` jobs whose user may be sent to now; else says how long until one may. */
  function pick(max: number, nowMs: number): { jobs: DeliveryJob[]; waitMs: number } {
    const jobs: DeliveryJob[] = [];
    let waitMs = Number.POSITIVE_INFINITY;
    let progressed = true;
    while (jobs.length < max && progressed && turn.length > 0) {
      progressed = false;
      const next: number[] = [];
      for (const userId of turn) {
        const queue = queues.get(userId);
        if (!queue || queue.length === 0) {
          queues.delete(userId);
          continue;
        }
        next.push(userId);
        if (jobs.length >= max) continue;
        const wait = limiter.tryTake(String(userId), nowMs);
        if (wait > 0) {
          waitMs = Math.min(waitMs, wait);
          continue;
        }
        const job = queue.shift();
        if (job) {
          jobs.push(job);
          progressed = true;
        }
      }
      turn = next;
    }
    return { jobs, waitMs: Number.isFinite(waitMs) ? waitMs : 1_000 };
  }

  function requeueFront(jobs: readonly DeliveryJob[]) {
    for (const job of [...jobs].reverse()) {
      const queue = queues.get(job.userId);
      if (queue) queue.unshift(job);
      else {
        queues.set(job.userId, [job]);
        turn.unshift(job.userId);
      }
    }
  }

  function toAttemptResult(record: RecordRow, token: string, sent: SendResult, now: Date): AttemptResult {
    const common = {
      id: record.id,
      claimToken: token,
      requestJson: JSON.stringify(sent.requestPayload ?? null),
      responseJson: JSON.stringify(sent.responsePayload ?? null),
    };
    switch (sent.outcome) {
      case "success":
        return {
          ...common,
          status: RecordStatus.sent,
          lastErrorCode: null,
          lastError: null,
          nextRetryAt: null,
          sentAt: now,
          providerMessageId: sent.providerMessageId ?? null,
        };
      case "skipped":
        return {
          ...common,
          status: RecordStatus.skipped,
          lastErrorCode: sent.errorCode ?? "recipient_missing",
          lastError: sent.errorMessage ?? null,
          nextRetryAt: null,
          sentAt: null,
          providerMessageId: null,
        };
      case "permanent_fail":
        return {
          ...common,
          status: RecordStatus.dead,
          lastErrorCode: sent.errorCode ?? "payload_invalid",
          lastError: sent.errorMessage ?? null,
          nextRetryAt: null,
          sentAt: null,
          providerMessageId: null,
        };
      default: {
        const exhausted = record.attemptCount >= record.maxAttempts;
        return {
          ...common,
          status: exhausted ? RecordStatus.dead : RecordStatus.failed,
          lastErrorCode: sent.errorCode ?? "network_error",
          lastError: sent.errorMessage ?? null,
          nextRetryAt: exhausted ? null : new Date(now.getTime() + options.retryDelayMs(record.attemptCount)),
          sentAt: null,
          providerMessageId: null,
        };
      }
    }
  }

  async function attempt(
    record: RecordRow,
    channel: ChannelRow | undefined,
    token: string,
  ): Promise<SendResult> {
    if (!channel) {
      return {
        outcome: "skipped",
        errorCode: "recipient_missing",
        errorMessage: "用户未配置飞书 Webhook 触发器",
        requestPayload: { notification_id: record.id, user_id: record.userId, preview_id: record.previewId },
        responsePayload: { skipped: true, reason: "recipient_missing" },
      };
    }
    if (!channel.enabled || !channel.webhookUrl.trim()) {
      return {
        outcome: "skipped",
        errorCode: "recipient_missing",
        errorMessage: "用户未启用飞书 Webhook 触发器",
        requestPayload: { notification_id: record.id, user_id: record.userId, preview_id: record.previewId },
        responsePayload: { skipped: true, reason: "channel_disabled" },
      };
    }
    try {
      return await provider.send(
        {
          kind: channel.webhookKind,
          url: channel.webhookUrl,
          authType: channel.authType,
          bearerToken: channel.bearerToken,
          signingSecret: channel.signingSecret,
        },
        buildSendRequest(record),
      );
    } catch (error) {
      logger.error("provider threw; the attempt counts as a network error", {
        notificationId: record.id,
        token,
        error: describeError(error),
      });
      return {
        outcome: "temporary_fail",
        errorCode: "network_error",
        errorMessage: describeError(error),
        requestPayload: null,
        responsePayload: null,
      };
    }
  }

  async function sendOne(
    record: RecordRow,
    channel: ChannelRow | undefined,
    job: DeliveryJob,
    token: string,
  ) {
    const sent = await attempt(record, channel, token);
    const result = toAttemptResult(record, token, sent, clock.now());
    pendingResults.push({ result, job, outcome: sent.outcome, attempt: record.attemptCount });
    flushWakeup.notify();
  }

  async function flushOnce(): Promise<boolean> {
    if (pendingResults.length === 0) return true;
    const batch = pendingResults.splice(0, pendingResults.length);
    let written: Set<number>;
    try {
      written = await records.recordResults(
        batch.map((b) => b.result),
        clock.now(),
      );
    } catch (error) {
      pendingResults.unshift(...batch);
      logger.error("cannot record delivery results; retrying", {
        error: describeError(error),
        count: batch.length,
      });
      return false;
    }
    for (const { result, job, outcome, attempt: attemptCount } of batch) {
      known.delete(result.id);
      const ok = written.has(result.id);
      if (!ok) {
        logger.warn("delivery result not recorded: the claim was lost (lease expired and reclaimed)", {
          notification_id: result.id,
          status: result.status,
        });
      }
      logger.info("notification delivery attempt finished", {
        outbox_id: job.outboxId ?? null,
        notification_id: result.id,
        status: result.status,
        delivered: result.status === RecordStatus.sent,
        reused: job.reused ?? false,
        attempt_count: attemptCount,
        error_code: result.lastErrorCode,
      });
      events.emit("delivery:result", {
        recordId: result.id,
        status: result.status,
        outcome,
        errorCode: result.lastErrorCode,
        attemptCount,
        written: ok,
      });
    }
    return true;
  }

  async function runFlusher(stop: AbortSignal) {
    const backoff = createBackoff(databaseRetry);
    while (!stop.aborted || pendingResults.length > 0) {
      if (pendingResults.length === 0) {
        await flushWakeup.wait(1_000, stop);
        continue;
      }
      if (await flushOnce()) backoff.succeeded();
      else {
        const delay = backoff.failed();
        if (stop.aborted && backoff.failures > 3) return;
        await sleep(delay);
      }
    }
  }

  return {
    submit,
    /** Jobs waiting or in flight (queued per user, not yet finished). */
    backlog: () => known.size,
    async run(signal: AbortSignal): Promise<void> {
      const flusherStop = new AbortController();
      const flusher = runFlusher(flusherStop.signal);
      const claimFailures = createBackoff(databaseRetry);
      while (!signal.aborted) {
        // Claim in chunks: waiting until a quarter of the slots are free turns one tiny claim per finished
        // POST into one claim per group of them (a claim is an UPDATE plus two SELECTs).
        const free = options.concurrency - inFlight;
        if (free <= 0 || (inFlight > 0 && free < Math.max(1, Math.floor(options.concurrency / 4)))) {
          await wakeup.wait(1_000, signal);
          continue;
        }
        const now = clock.now();
        const { jobs, waitMs } = pick(Math.min(free, options.claimBatch), now.getTime());
        if (jobs.length === 0) {
          await wakeup.wait(turn.length > 0 ? waitMs : 1_000, signal);
          continue;
        }
        const token = randomUUID();
        let claimed: RecordRow[];
        let channelsByUser: Map<number, ChannelRow>;
        try {
          claimed = await records.claim(
            jobs.map((job) => job.recordId),
            now,
            new Date(now.getTime() + options.leaseMs),
            token,
          );
          channelsByUser = await channels.getMany(claimed.map((record) => record.userId));
          claimFailures.succeeded();
        } catch (error) {
          requeueFront(jobs);
          const delay = claimFailures.failed();
          logger.error("cannot claim notification records", {
            error: describeError(error),
            retryInMs: delay,
          });
          await sleep(delay, signal);
          continue;
        }
        const claimedIds = new Set(claimed.map((record) => record.id));
        for (const job of jobs) if (!claimedIds.has(job.recordId)) known.delete(job.recordId);
        if (claimed.length > 0) events.emit("delivery:claimed", { ids: [...claimedIds] });
        const jobOf = new Map(jobs.map((job) => [job.recordId, job]));
        for (const record of claimed) {
          inFlight++;
          const job = jobOf.get(record.id) ?? { recordId: record.id, userId: record.userId };
          void sendOne(record, channelsByUser.get(record.userId), job, token).finally(() => {
            inFlight--;
            wakeup.notify();
          });
        }
      }
      // Draining: in-flight sends end within the provider timeout; their results are written before return.
      // Jobs still queued were never claimed: their records stay pending for the retry scan.
      const draining = new AbortController().signal;
      while (inFlight > 0) await wakeup.wait(1_000, draining);
      flusherStop.abort();
      await flusher;
    },
  };
}
