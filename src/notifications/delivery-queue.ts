import type { TraceCarrier } from "../lib/trace-context.ts";
import type { OutboxId, RecordId, UserId } from "./ids.ts";

/** A record to send, and for whom (one user = one webhook; users may share one, and its send budget). */
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
  /** When nothing could be taken: how long until a held user may be picked again. */
  readonly waitMs: number;
}

/**
 * Jobs waiting to be claimed: one FIFO per user, served round-robin; a user whose destination's send budget
 * ran out is held (`hold`) until it may send again. A burst to one webhook therefore waits here, holding no
 * lease and no send slot, and never delays other users. A record is known from its submission until `forget`
 * (its attempt ended or its claim was lost), so submitting it twice meanwhile does nothing.
 */
export function createDeliveryQueue() {
  const queues = new Map<UserId, DeliveryJob[]>();
  const known = new Set<RecordId>();
  const heldUntil = new Map<UserId, number>();
  let turn: UserId[] = [];

  function enqueue(job: DeliveryJob, front: boolean) {
    let queue = queues.get(job.userId);
    if (!queue) {
      queue = [];
      queues.set(job.userId, queue);
      turn.splice(front ? 0 : turn.length, 0, job.userId);
    }
    queue.splice(front ? 0 : queue.length, 0, job);
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

    /** Takes up to `max` jobs of users not held at `nowMs`, one user after another. */
    pick(max: number, nowMs: number): Picked {
      const jobs: DeliveryJob[] = [];
      let waitMs = Number.POSITIVE_INFINITY;
      let progressed = true;
      while (jobs.length < max && progressed && turn.length > 0) {
        progressed = false;
        const next: UserId[] = [];
        for (const userId of turn) {
          const queue = queues.get(userId);
          if (!queue || queue.length === 0) {
            queues.delete(userId);
            heldUntil.delete(userId);
            continue;
          }
          next.push(userId);
          const held = (heldUntil.get(userId) ?? nowMs) - nowMs;
          if (held > 0) waitMs = Math.min(waitMs, held);
          if (jobs.length >= max || held > 0) continue;
          const job = queue.shift();
          if (job) {
            jobs.push(job);
            progressed = true;
          }
        }
        turn = next;
      }
      return { jobs, waitMs: Number.isFinite(waitMs) ? waitMs : 1_000 };
    },

    /** Holds a user's jobs until `untilMs` (their destination's send budget is spent until then). */
    hold: (userId: UserId, untilMs: number) => heldUntil.set(userId, untilMs),

    /** Puts picked jobs back at the front, in order (their claim or their budget could not be had). */
    putBack(jobs: readonly DeliveryJob[]) {
      for (const job of [...jobs].reverse()) enqueue(job, true);
    },

    /** The record's attempt ended, or its claim was lost: it may be submitted again. */
    forget(recordId: RecordId) {
      known.delete(recordId);
    },

    /** Whether a job waits (perhaps held back by its destination's send budget). */
    hasWaiting: () => turn.length > 0,

    /** Jobs waiting or in flight. */
    backlog: () => known.size,
  };
}

export type DeliveryQueue = ReturnType<typeof createDeliveryQueue>;
