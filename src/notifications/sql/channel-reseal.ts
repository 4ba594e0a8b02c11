import { type Expression, type Kysely, type SqlBool, sql } from "kysely";
import type { DbTraits } from "../../db/db-traits.ts";
import { int64Column } from "../../db/int64-column.ts";
import type { Database } from "../../db/schema.ts";
import { AppError } from "../../lib/errors.ts";
import type { SecretBox } from "../../lib/secret-box.ts";
import { CHANNEL_NAME } from "../channel.ts";
import type { ResealOptions, ResealResult, SecretReseal } from "../ports/secret-reseal.ts";

const SEALED_COLUMNS = ["webhook_url", "bearer_token", "signing_secret"] as const;
type SealedColumn = (typeof SEALED_COLUMNS)[number];

/** A row as the reseal job read it. */
export interface ResealRow {
  readonly id: number;
  readonly userId: string;
  readonly values: Readonly<Record<SealedColumn, string | null>>;
}

export interface ChannelReseal extends SecretReseal {
  /** The next rows after `afterId` (by primary key) holding a value to seal again. */
  nextBatch(afterId: number, size: number): Promise<ResealRow[]>;
  /** Seals the row's values again, only where they still hold what was read; false when it changed first. */
  resealRow(row: ResealRow): Promise<boolean>;
  /** Rows holding a value to seal again. */
  countRemaining(): Promise<number>;
}

/**
 * The reseal job over `user_notification_channels` (SecretReseal). Values are compared byte for byte (a
 * MySQL text column compares case-insensitively by its collation, so `binary` there).
 */
export function createChannelReseal(db: Kysely<Database>, traits: DbTraits, box: SecretBox): ChannelReseal {
  const exact = (expr: Expression<unknown>) => (traits.dialect === "mysql" ? sql`binary ${expr}` : expr);
  const needsReseal = (prefix: string) =>
    sql<SqlBool>`(${sql.join(
      SEALED_COLUMNS.map(
        (column) =>
          sql`(${sql.ref(column)} <> '' and ${exact(sql`substr(${sql.ref(column)}, 1, ${prefix.length})`)} <> ${prefix})`,
      ),
      sql` or `,
    )})`;
  const current = () => {
    if (!box.currentPrefix) {
      throw new AppError(
        "failed_precondition",
        "SECRETS_KEY is not configured: there is no key to seal with",
      );
    }
    return box.currentPrefix;
  };

  const job: ChannelReseal = {
    async nextBatch(afterId, size) {
      const rows = await db
        .selectFrom("user_notification_channels")
        .select(["id", int64Column("user_id"), ...SEALED_COLUMNS])
        .where("channel", "=", CHANNEL_NAME)
        .where("id", ">", afterId)
        .where(needsReseal(current()))
        .orderBy("id")
        .limit(size)
        .execute();
      return rows.map((row) => ({
        id: Number(row.id),
        userId: String(row.user_id),
        values: {
          webhook_url: row.webhook_url,
          bearer_token: row.bearer_token,
          signing_secret: row.signing_secret,
        },
      }));
    },

    async resealRow(row) {
      const changed = SEALED_COLUMNS.filter((column) => box.needsReseal(row.values[column] ?? ""));
      if (changed.length === 0) return false;
      const set: Partial<Record<SealedColumn, string>> = {};
      for (const column of changed) set[column] = box.seal(openOrExplain(box, row, column));
      let update = db.updateTable("user_notification_channels").set(set).where("id", "=", row.id);
      for (const column of changed) {
        update = update.where(exact(sql.ref(column)), "=", row.values[column] ?? "");
      }
      const result = await update.executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    async countRemaining() {
      const row = await db
        .selectFrom("user_notification_channels")
        .select((eb) => eb.fn.countAll<number | string | bigint>().as("n"))
        .where("channel", "=", CHANNEL_NAME)
        .where(needsReseal(current()))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    reseal(options, signal) {
      current();
      return resealAll(job, options, signal);
    },
  };
  return job;
}

/** Batches by primary key, each row's values replaced at once; then what is left. */
async function resealAll(
  job: ChannelReseal,
  { batchSize, limit }: ResealOptions,
  signal: AbortSignal,
): Promise<ResealResult> {
  let afterId = 0;
  let resealed = 0;
  let left = limit;
  while (left > 0 && !signal.aborted) {
    const rows = await job.nextBatch(afterId, Math.min(batchSize, left));
    if (rows.length === 0) break;
    const done = await Promise.all(rows.map((row) => job.resealRow(row)));
    resealed += done.filter(Boolean).length;
    left -= rows.length;
    afterId = rows.at(-1)?.id ?? afterId;
  }
  return { resealed, remaining: await job.countRemaining() };
}

function openOrExplain(box: SecretBox, row: ResealRow, column: SealedColumn): string {
  try {
    return box.open(row.values[column] ?? "");
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new AppError(
      "failed_precondition",
      `user_notification_channels row ${row.id} (user ${row.userId}), ${column}: ${why}; set SECRETS_KEY_PREVIOUS to the key that sealed it`,
      { cause: error },
    );
  }
}
