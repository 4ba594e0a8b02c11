import type { RateLimiter } from "../lib/rate-limiter.ts";
import type { TraceCarrier } from "../lib/trace-context.ts";
import type { OutboxId, RecordId, UserId } from "./ids.ts";

/** A record to send, and for whom (one user = one webhook = one rate limit). */
export interface DeliveryJob {
  readonly recordId: RecordId;
  readonly userId: UserId;
  /** The outbox row the job came from, for the log line; absent for retries. */
  readonly outboxId?: OutboxId;
  readonly reused?: boolean;
  /** The trace the send continues (the event's); a retry continues the record's `trace_id` when W3C. */
  readonly trace?: TraceCarrier;
}

/** How intake, the retry loop and operators ask for sends; a record already queued or in flight is ignored. */
export interface DeliverySubmitter {
  submit(jobs: readonly DeliveryJob[]): void;
}

export interface Picked {
  readonly jobs: DeliveryJob[];
  /** When nothing could be taken: how long until a waiting user's rate limit allows a send. */
  readonly waitMs: number;
  /** Users whose next job the rate limit held back, with how long it asked them to wait. */
  readonly throttled: ReadonlyMap<UserId, number>;
}

/**
 * Jobs waiting to be claimed: one FIFO per user, served round-robin, and a job is taken only when its user's
 * rate limit allows a send now. A burst to one webhook therefore waits here, holding no lease and no send
 * slot, and never delays other users. A record is known from its submission until `forget` (its attempt
 * ended or its claim was lost), so submitting it twice meanwhile does nothing.
 */
export function createDeliveryQueue(limiter: RateLimiter) {
  const queues = new Map<UserId, DeliveryJob[]>();
  const known = new Set<RecordId>();
  let turn: UserId[] = [];

  function enqueue(job: DeliveryJob, front: boolean) {
    const queue = queues.get(job.userId);
    if (queue) {
      if (front) queue.unshift(job);
      else queue.push(job);
    } else {
      queues.set(job.userId, [job]);
      if (front) turn.unshift(job.userId);
      else turn.push(job.userId);
    }
  }

  return {
    /** Queues the jobs not already known; returns whether any was. */
    add(jobs: readonly DeliveryJob[]): boolean {
      let added = false;
      for (const job of jobs) {
        if (known.has(job.recordId)) continue;
        known.add(job.recordId);
        enqueue(job, false);
        added = true;
      }
      return added;
    },

    /** Takes up to `max` jobs whose users may be sent to at `nowMs`, one user after another. */
    pick(max: number, nowMs: number): Picked {
      const jobs: DeliveryJob[] = [];
      const throttled = new Map<UserId, number>();
      let progressed = true;
      while (jobs.length < max && progressed && turn.length > 0) {
        progressed = false;
        const next: UserId[] = [];
        for (const userId of turn) {
          const queue = queues.get(userId);
          if (!queue || queue.length === 0) {
            queues.delete(userId);
            continue;
          }
          next.push(userId);
          if (jobs.length >= max || throttled.has(userId)) continue;
          const wait = limiter.tryTake(String(userId), nowMs);
          if (wait > 0) {
            throttled.set(userId, wait);
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
      const waitMs = throttled.size > 0 ? Math.min(...throttled.values()) : 1_000;
      return { jobs, waitMs, throttled };
    },

    /** Puts picked jobs back at the front, in order (their claim could not be made). */
    putBack(jobs: readonly DeliveryJob[]) {
      for (const job of [...jobs].reverse()) enqueue(job, true);
    },

    /** The record's attempt ended, or its claim was lost: it may be submitted again. */
    forget(recordId: RecordId) {
      known.delete(recordId);
    },

    /** Whether a job waits (perhaps held back by its rate limit). */
    hasWaiting: () => turn.length > 0,

    /** Jobs waiting or in flight. */
    backlog: () => known.size,
  };
}

export type DeliveryQueue = ReturnType<typeof createDeliveryQueue>;
