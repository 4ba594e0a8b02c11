import { type Kysely, sql } from "kysely";
import type { DbTraits } from "../db/db-traits.ts";
import { type Database, RecordStatus } from "../db/schema.ts";
import { truncateCodePoints } from "../lib/text.ts";
import type { FeishuRequestedPayload } from "./feishu-requested-payload.ts";
import type { NormalizedTexts } from "./message-composer.ts";

/** Records use "feishu"; the channels table uses "feishu_webhook" (SmartFlow's two constants, kept). */
export const RECORD_CHANNEL = "feishu";
export const DEFAULT_MAX_ATTEMPTS = 5;
export const SENDING_LEASE_EXPIRED = "sending_lease_expired";

export interface RecordRow {
  readonly id: number;
  readonly userId: number;
  readonly triggerId: string;
  readonly previewId: string;
  readonly triggerType: string;
  readonly targetType: string;
  readonly targetId: number;
  readonly dedupeKey: string;
  readonly targetUrl: string;
  readonly summaryText: string;
  readonly fallbackText: string;
  readonly fallbackUsed: boolean;
  readonly status: string;
  readonly attemptCount: number;
  readonly maxAttempts: number;
  readonly nextRetryAt: Date | null;
  readonly leaseUntil: Date | null;
  readonly lastErrorCode: string | null;
  readonly lastError: string | null;
  readonly providerMessageId: string | null;
  readonly sentAt: Date | null;
  readonly traceId: string;
  readonly createdAt: Date | null;
  readonly updatedAt: Date | null;
}

export interface IntakeItem {
  readonly payload: FeishuRequestedPayload;
  readonly texts: NormalizedTexts;
}

export interface IntakeResult {
  readonly record: RecordRow;
  /** False only for the event whose insert created the record. */
  readonly reused: boolean;
}

/** What one finished attempt writes; applied only while the writer still owns the claim. */
export interface AttemptResult {
  readonly id: number;
  readonly claimToken: string;
  readonly status: RecordStatus;
  readonly lastErrorCode: string | null;
  readonly lastError: string | null;
  readonly nextRetryAt: Date | null;
  readonly sentAt: Date | null;
  readonly providerMessageId: string | null;
  readonly requestJson: string | null;
  readonly responseJson: string | null;
}

export type RecordStore = ReturnType<typeof createRecordStore>;

export function createRecordStore({
  db,
  traits,
}: {
  readonly db: Kysely<Database>;
  readonly traits: DbTraits;
}) {
  const t = traits.time;
  const columns = [
    "id",
    "user_id",
    "trigger_id",
    "preview_id",
    "trigger_type",
    "target_type",
    "target_id",
    "dedupe_key",
    "target_url",
    "summary_text",
    "fallback_text",
    "fallback_used",
    "status",
    "attempt_count",
    "max_attempts",
    "next_retry_at",
    "lease_until",
    "last_error_code",
    "last_error",
    "provider_message_id",
    "sent_at",
    "trace_id",
    "created_at",
    "updated_at",
  ] as const;
  type Row = {
    [K in (typeof columns)[number]]: unknown;
  };
  const toRecord = (row: Row): RecordRow => ({
    id: Number(row.id),
    userId: Number(row.user_id),
    triggerId: String(row.trigger_id ?? ""),
    previewId: String(row.preview_id ?? ""),
    triggerType: String(row.trigger_type ?? ""),
    targetType: String(row.target_type ?? ""),
    targetId: Number(row.target_id ?? 0),
    dedupeKey: String(row.dedupe_key ?? ""),
    targetUrl: String(row.target_url ?? ""),
    summaryText: String(row.summary_text ?? ""),
    fallbackText: String(row.fallback_text ?? ""),
    fallbackUsed: Boolean(Number(row.fallback_used)),
    status: String(row.status),
    attemptCount: Number(row.attempt_count),
    maxAttempts: Number(row.max_attempts) > 0 ? Number(row.max_attempts) : DEFAULT_MAX_ATTEMPTS,
    nextRetryAt: traits.readTime(row.next_retry_at),
    leaseUntil: traits.readTime(row.lease_until),
    lastErrorCode: (row.last_error_code as string | null) ?? null,
    lastError: (row.last_error as string | null) ?? null,
    providerMessageId: (row.provider_message_id as string | null) ?? null,
    sentAt: traits.readTime(row.sent_at),
    traceId: String(row.trace_id ?? ""),
    createdAt: traits.readTime(row.created_at),
    updatedAt: traits.readTime(row.updated_at),
  });
  const selectRecords = () => db.selectFrom("notification_records").select(columns);

  return {
    /**
     * Finds or creates the record of each event, by `(channel, dedupe_key)` (the unique key decides races
     * between instances), or by `notification_id` when it names a record with the same key. One SELECT, one
     * multi-row INSERT … IGNORE for the missing keys, one SELECT for what was inserted.
     */
    async intake(items: readonly IntakeItem[], now: Date): Promise<IntakeResult[]> {
      if (items.length === 0) return [];
      const keys = [...new Set(items.map((item) => item.payload.dedupeKey))];
      const namedIds = items.map((item) => item.payload.notificationId).filter((id) => id > 0);
      const found = await selectRecords()
        .where("channel", "=", RECORD_CHANNEL)
        .where((eb) =>
          eb.or([eb("dedupe_key", "in", keys), ...(namedIds.length > 0 ? [eb("id", "in", namedIds)] : [])]),
        )
        .execute();
      const byKey = new Map<string, RecordRow>();
      const byId = new Map<number, RecordRow>();
      for (const row of found.map(toRecord)) {
        byId.set(row.id, row);
        byKey.set(row.dedupeKey, row);
      }
      const existed = new Set(byKey.keys());
      const firstOfKey = new Map<string, IntakeItem>();
      for (const item of items) {
        if (!byKey.has(item.payload.dedupeKey) && !firstOfKey.has(item.payload.dedupeKey)) {
          firstOfKey.set(item.payload.dedupeKey, item);
        }
      }
      if (firstOfKey.size > 0) {
        const stamp = t(now);
        await db
          .insertInto("notification_records")
          .values(
            [...firstOfKey.values()].map(({ payload, texts }) => ({
              channel: RECORD_CHANNEL,
              user_id: payload.userId,
              trigger_id: payload.triggerId,
              preview_id: payload.previewId,
              trigger_type: payload.triggerType,
              target_type: payload.targetType,
              target_id: payload.targetId,
              dedupe_key: payload.dedupeKey,
              target_url: payload.targetUrl,
              summary_text: texts.summaryText,
              fallback_text: texts.fallbackText,
              fallback_used: texts.fallbackUsed ? 1 : 0,
              status: RecordStatus.pending,
              attempt_count: 0,
              max_attempts: DEFAULT_MAX_ATTEMPTS,
              trace_id: payload.traceId,
              created_at: stamp,
              updated_at: stamp,
            })),
          )
          .orIgnore()
          .execute();
        const inserted = await selectRecords()
          .where("channel", "=", RECORD_CHANNEL)
          .where("dedupe_key", "in", [...firstOfKey.keys()])
          .execute();
        for (const row of inserted.map(toRecord)) byKey.set(row.dedupeKey, row);
      }
      const claimedFirst = new Set<string>();
      return items.map((item) => {
        const key = item.payload.dedupeKey;
        const named = byId.get(item.payload.notificationId);
        const record = named && named.dedupeKey === key ? named : byKey.get(key);
        if (!record) throw new Error(`record for dedupe key ${key} vanished during intake`);
        const reused = existed.has(key) || claimedFirst.has(key);
        claimedFirst.add(key);
        return { record, reused };
      });
    },

    /**
     * Claims records for one attempt each: a compare-and-set UPDATE that takes only `pending` rows, `failed`
     * rows that are due, and `sending` rows whose lease has expired, with attempts left. The claim token tells
     * afterwards which rows this claim won; every later write is guarded by it. A reclaimed expired lease is
     * recorded in `last_error_code` (`sending_lease_expired`) until the new attempt ends.
     */
    async claim(ids: readonly number[], now: Date, leaseUntil: Date, token: string): Promise<RecordRow[]> {
      if (ids.length === 0) return [];
      const stamp = t(now);
      // MySQL evaluates SET assignments left to right with already-updated values, SQLite with the old ones:
      // the assignments that read `status` therefore come before the one that changes it.
      await db
        .updateTable("notification_records")
        .set({
          last_error_code: sql`case when status = ${RecordStatus.sending} then ${SENDING_LEASE_EXPIRED} else last_error_code end`,
          last_error: sql`case when status = ${RecordStatus.sending} then ${"the previous attempt's sending lease expired before it finished"} else last_error end`,
          status: RecordStatus.sending,
          attempt_count: sql`attempt_count + 1`,
          max_attempts: sql`case when max_attempts > 0 then max_attempts else ${DEFAULT_MAX_ATTEMPTS} end`,
          next_retry_at: null,
          lease_until: t(leaseUntil),
          claim_token: token,
          updated_at: stamp,
        })
        .where("id", "in", ids)
        .where(
          sql<boolean>`attempt_count < case when max_attempts > 0 then max_attempts else ${DEFAULT_MAX_ATTEMPTS} end`,
        )
        .where((eb) =>
          eb.or([
            eb("status", "=", RecordStatus.pending),
            eb.and([eb("status", "=", RecordStatus.failed), eb("next_retry_at", "<=", stamp)]),
            eb.and([eb("status", "=", RecordStatus.sending), eb("lease_until", "<=", stamp)]),
          ]),
        )
        .execute();
      const rows = await selectRecords().where("id", "in", ids).where("claim_token", "=", token).execute();
      return rows.map(toRecord);
    },

    /** Writes finished attempts in one transaction; returns the ids whose claim was still held. */
    async recordResults(results: readonly AttemptResult[], now: Date): Promise<Set<number>> {
      const written = new Set<number>();
      if (results.length === 0) return written;
      await db.transaction().execute(async (trx) => {
        for (const result of results) {
          const update = await trx
            .updateTable("notification_records")
            .set({
              status: result.status,
              last_error_code: result.lastErrorCode,
              last_error: result.lastError === null ? null : truncateCodePoints(result.lastError, 2000),
              next_retry_at: result.nextRetryAt ? t(result.nextRetryAt) : null,
              ...(result.sentAt ? { sent_at: t(result.sentAt) } : {}),
              ...(result.providerMessageId ? { provider_message_id: result.providerMessageId } : {}),
              provider_request_json: result.requestJson,
              provider_response_json: result.responseJson,
              lease_until: null,
              claim_token: null,
              updated_at: t(now),
            })
            .where("id", "=", result.id)
            .where("status", "=", RecordStatus.sending)
            .where("claim_token", "=", result.claimToken)
            .executeTakeFirst();
          if (Number(update.numUpdatedRows) === 1) written.add(result.id);
        }
      });
      return written;
    },

    /** `sending` rows whose lease expired with no attempts left: dead, keeping the lease marker. */
    async killExhaustedLeases(now: Date): Promise<number> {
      const stamp = t(now);
      const result = await db
        .updateTable("notification_records")
        .set({
          status: RecordStatus.dead,
          last_error_code: SENDING_LEASE_EXPIRED,
          last_error: "the last attempt's sending lease expired and no attempts are left",
          lease_until: null,
          claim_token: null,
          updated_at: stamp,
        })
        .where("status", "=", RecordStatus.sending)
        .where("lease_until", "<=", stamp)
        .where(
          sql<boolean>`attempt_count >= case when max_attempts > 0 then max_attempts else ${DEFAULT_MAX_ATTEMPTS} end`,
        )
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    /**
     * Work that needs a sender: due `failed` rows, `sending` rows whose lease expired, and `pending` rows not
     * touched since `strandedBefore` (weakness 7). Three index-friendly queries, oldest first by id.
     */
    async findDue(now: Date, strandedBefore: Date, limit: number): Promise<{ id: number; userId: number }[]> {
      const stamp = t(now);
      const pick = (query: ReturnType<typeof baseDue>) => query.orderBy("id").limit(limit).execute();
      const baseDue = () => db.selectFrom("notification_records").select(["id", "user_id"]);
      const [failed, expired, stranded] = await Promise.all([
        pick(baseDue().where("status", "=", RecordStatus.failed).where("next_retry_at", "<=", stamp)),
        pick(baseDue().where("status", "=", RecordStatus.sending).where("lease_until", "<=", stamp)),
        pick(
          baseDue().where("status", "=", RecordStatus.pending).where("updated_at", "<=", t(strandedBefore)),
        ),
      ]);
      return [...failed, ...expired, ...stranded]
        .map((row) => ({ id: Number(row.id), userId: Number(row.user_id) }))
        .sort((a, b) => a.id - b.id)
        .slice(0, limit);
    },

    /** A user's records, newest first, after the cursor `beforeId` (exclusive). */
    async listByUser(
      userId: number,
      status: string | undefined,
      limit: number,
      beforeId: number | undefined,
    ) {
      let query = selectRecords().where("user_id", "=", userId).orderBy("id", "desc").limit(limit);
      if (status) query = query.where("status", "=", status);
      if (beforeId !== undefined) query = query.where("id", "<", beforeId);
      return (await query.execute()).map(toRecord);
    },

    /**
     * An operator's retry: a `failed` or `dead` record goes back to `pending` with one more attempt allowed
     * (`max_attempts` raised past `attempt_count`), and the request is recorded in `last_error_code`
     * (`manual_retry`) and `last_error`. Conditional: returns false when the record is in another state.
     */
    async retryNow(id: number, reason: string, now: Date): Promise<boolean> {
      const result = await db
        .updateTable("notification_records")
        .set({
          status: RecordStatus.pending,
          max_attempts: sql`case when attempt_count + 1 > max_attempts then attempt_count + 1 else max_attempts end`,
          next_retry_at: null,
          last_error_code: "manual_retry",
          last_error: truncateCodePoints(reason, 2000),
          lease_until: null,
          claim_token: null,
          updated_at: t(now),
        })
        .where("id", "=", id)
        .where("status", "in", [RecordStatus.failed, RecordStatus.dead])
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async countByStatus(): Promise<Record<string, number>> {
      const rows = await db
        .selectFrom("notification_records")
        .select((eb) => ["status", eb.fn.countAll<number>().as("n")])
        .groupBy("status")
        .execute();
      return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
    },

    async get(id: number): Promise<RecordRow | undefined> {
      const row = await selectRecords().where("id", "=", id).executeTakeFirst();
      return row ? toRecord(row) : undefined;
    },
  };
}
