import type { Channel } from "./channel.ts";
import { isUsable } from "./delivery-attempt.ts";
import type { DeliveryJob } from "./delivery-queue.ts";
import { destinationKey } from "./destination-key.ts";
import type { UserId } from "./ids.ts";
import type { SendBudget } from "./ports/send-budget.ts";

export interface Budgeted {
  /** Jobs that may be claimed and sent now (a job without a usable channel needs no budget: it is skipped). */
  readonly allowed: DeliveryJob[];
  /** Jobs whose destination's budget is spent, in their picked order: they go back to the queue. */
  readonly deferred: DeliveryJob[];
  /** Users held back, with the wait their destination's budget asked for. */
  readonly throttled: Map<UserId, number>;
  /** The destination key each allowed job was charged to (jobs without a usable channel are not charged). */
  readonly charged: ReadonlyMap<DeliveryJob, string>;
  /** When the budget was taken: what a give-back names. */
  readonly takenAt: Date;
}

/**
 * Splits picked jobs by what their destinations' send budgets allow now: one `take` for all destinations of
 * the batch, jobs granted in their picked order. Several users may share one destination (one group bot),
 * so the budget is per webhook URL (destination-key.ts), never per user.
 */
export async function budgetJobs(
  jobs: readonly DeliveryJob[],
  channelsByUser: ReadonlyMap<UserId, Channel>,
  budget: SendBudget,
  now: Date,
): Promise<Budgeted> {
  const keyOf = new Map<DeliveryJob, string>();
  const wanted = new Map<string, number>();
  for (const job of jobs) {
    const channel = channelsByUser.get(job.userId);
    if (!isUsable(channel)) continue;
    const key = destinationKey(channel.webhookUrl);
    keyOf.set(job, key);
    wanted.set(key, (wanted.get(key) ?? 0) + 1);
  }
  const grants = wanted.size > 0 ? await budget.take(wanted, now) : new Map();
  const left = new Map([...grants].map(([key, grant]) => [key, grant.granted]));
  const allowed: DeliveryJob[] = [];
  const deferred: DeliveryJob[] = [];
  const throttled = new Map<UserId, number>();
  const charged = new Map<DeliveryJob, string>();
  for (const job of jobs) {
    const key = keyOf.get(job);
    if (key === undefined) {
      allowed.push(job);
      continue;
    }
    const remaining = left.get(key) ?? 0;
    if (remaining > 0) {
      left.set(key, remaining - 1);
      allowed.push(job);
      charged.set(job, key);
      continue;
    }
    deferred.push(job);
    throttled.set(job.userId, Math.max(1, grants.get(key)?.waitMs ?? 1));
  }
  return { allowed, deferred, throttled, charged, takenAt: now };
}

/** Gives back the budget charged for `jobs` that will not be sent (their claims were lost). */
export async function giveBackJobs(
  jobs: readonly DeliveryJob[],
  budgeted: Pick<Budgeted, "charged" | "takenAt">,
  budget: SendBudget,
): Promise<void> {
  const returned = new Map<string, number>();
  for (const job of jobs) {
    const key = budgeted.charged.get(job);
    if (key !== undefined) returned.set(key, (returned.get(key) ?? 0) + 1);
  }
  if (returned.size > 0) await budget.giveBack(returned, budgeted.takenAt);
}
