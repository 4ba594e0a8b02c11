import type { RecordId, UserId } from "../ids.ts";
import type { AttemptResult, DueRecord, IntakeItem, IntakeResult, NotificationRecord } from "../record.ts";

/**
 * The records table, as each caller needs it. The SQL adapter (notifications/sql) implements all four; the
 * rules they apply are record-state.ts's. Every state change is a conditional update.
 */

/** The feishu.requested handler's. */
export interface RecordIntake {
  /**
   * Finds or creates the record of each event, by `(channel, dedupe_key)` (the unique key decides races
   * between instances), or by `notification_id` when it names a record with the same key. Results are in the
   * order of `items`.
   */
  intake(items: readonly IntakeItem[], now: Date): Promise<IntakeResult[]>;
}

/** The dispatcher's. */
export interface RecordClaims {
  /**
   * Claims records for one attempt each (`isClaimable`), tagged with `token`, owning them until `leaseUntil`;
   * returns the records this claim won, their `attemptCount` including the new attempt. A reclaimed expired
   * lease is marked `sending_lease_expired` until the new attempt ends.
   */
  claim(ids: readonly RecordId[], now: Date, leaseUntil: Date, token: string): Promise<NotificationRecord[]>;
  /**
   * Writes finished attempts in one transaction, each only while its claim still holds (a writer whose lease
   * expired and was reclaimed writes nothing); returns the ids written.
   */
  recordResults(results: readonly AttemptResult[], now: Date): Promise<Set<RecordId>>;
}

/** The retry loop's. */
export interface RecordScans {
  /** `sending` records whose lease expired with no attempts left become `dead` (`sending_lease_expired`). */
  killExhaustedLeases(now: Date): Promise<number>;
  /**
   * What `findDue` would find, but created at or before `createdBefore`, becomes `dead` with `expired` and
   * `reason` instead of being sent; an operator's retry (`manual_retry`) is exempt. Returns how many.
   */
  expireOld(now: Date, strandedBefore: Date, createdBefore: Date, reason: string): Promise<number>;
  /**
   * Work no sender holds, oldest first: due `failed` records, `sending` ones whose lease expired (judged from
   * `updated_at` on rows Go left without a lease), and `pending` ones untouched since `strandedBefore`
   * (weakness 7).
   */
  findDue(now: Date, strandedBefore: Date, limit: number): Promise<DueRecord[]>;
}

/** The operations API's. */
export interface RecordQueries {
  get(id: RecordId): Promise<NotificationRecord | undefined>;
  /** A user's records, newest first, after the cursor `beforeId` (exclusive). */
  listByUser(
    userId: UserId,
    status: string | undefined,
    limit: number,
    beforeId: RecordId | undefined,
  ): Promise<NotificationRecord[]>;
  /**
   * An operator's retry: a `failed` or `dead` record goes back to `pending` with one more attempt allowed,
   * recorded as `manual_retry` with `reason`. Returns false when the record is in another state.
   */
  retryNow(id: RecordId, reason: string, now: Date): Promise<boolean>;
  countByStatus(): Promise<Record<string, number>>;
}

export type RecordStore = RecordIntake & RecordClaims & RecordScans & RecordQueries;
