import type { OutboxId, RecordId, UserId } from "./ids.ts";

/** Events of the delivery side; tests await them (nothing in production subscribes yet). */
export interface DeliveryEvents {
  "intake:record": {
    readonly outboxId: OutboxId;
    readonly recordId: RecordId;
    readonly status: string;
    readonly reused: boolean;
    readonly queued: boolean;
  };
  /**
   * A claim won these records at clock time `at` (ms); `leaseRecovered` of them were `sending` under a lease
   * that had expired (their previous sender died or hung).
   */
  "delivery:claimed": {
    readonly ids: readonly RecordId[];
    readonly at: number;
    readonly leaseRecovered: number;
  };
  /** One attempt finished: the webhook kind (or "none" without a usable channel), its outcome, its duration. */
  "delivery:attempted": { readonly provider: string; readonly outcome: string; readonly durationMs: number };
  /** The rate limit held a user's next job back at clock time `at`, asking it to wait `waitMs`. */
  "delivery:throttled": { readonly userId: UserId; readonly waitMs: number; readonly at: number };
  "delivery:result": {
    readonly recordId: RecordId;
    readonly status: string;
    readonly outcome: string;
    readonly errorCode: string | null;
    readonly attemptCount: number;
    /** False when the claim was lost meanwhile (a stale writer): nothing was written. */
    readonly written: boolean;
  };
  "retry:scanned": { readonly found: number; readonly killed: number; readonly expired: number };
  [name: string]: unknown;
}
