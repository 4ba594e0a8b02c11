import { type Kysely, sql } from "kysely";
import type { DbTraits } from "./db-traits.ts";

/** SmartFlow's int64 id columns in the tables this service shares with its Go services. */
export const INT64_ID_COLUMNS = [
  ["notification_records", "user_id"],
  ["notification_records", "target_id"],
  ["user_notification_channels", "user_id"],
] as const;

interface ColumnInfo {
  readonly data_type: string;
  readonly column_type: string;
  readonly is_nullable: string;
  readonly column_default: string | null;
  readonly column_comment: string;
}

/**
 * Migration 0005: widens the id columns that this service created as `INT` before (an INT holds
 * up to 2^31 − 1; SmartFlow's ids are int64, `bigint` in the Go services' tables) to `BIGINT`, keeping the
 * column's signedness, NOT NULL, default and comment. A column that is not `int` (bigint already: new
 * installs, tables GORM created) is left alone, so running it again changes nothing. MySQL rebuilds the
 * table to widen a column (writes wait while it copies). SQLite's INTEGER is 64-bit already.
 */
export async function widenIdColumns<DB>(db: Kysely<DB>, traits: DbTraits): Promise<string[]> {
  if (traits.dialect !== "mysql") return [];
  const widened: string[] = [];
  for (const [table, column] of INT64_ID_COLUMNS) {
    const { rows } = await sql<ColumnInfo>`
      select data_type, column_type, is_nullable, column_default, column_comment
      from information_schema.columns
      where table_schema = database() and table_name = ${table} and column_name = ${column}`.execute(db);
    const info = rows[0];
    if (info?.data_type.toLowerCase() !== "int") continue;
    const unsigned = /unsigned/i.test(info.column_type) ? sql` unsigned` : sql``;
    const nullable = info.is_nullable === "YES" ? sql` null` : sql` not null`;
    const fallback = integerDefault(info.column_default);
    const byDefault = fallback === undefined ? sql`` : sql` default ${sql.lit(fallback)}`;
    const comment = info.column_comment ? sql` comment ${sql.lit(info.column_comment)}` : sql``;
    await sql`alter table ${sql.table(table)} modify column ${sql.ref(column)} bigint${unsigned}${nullable}${byDefault}${comment}`.execute(
      db,
    );
    widened.push(`${table}.${column}`);
  }
  return widened;
}

/** An integer column's default as information_schema shows it (MariaDB quotes literals, MySQL does not). */
function integerDefault(value: string | null): number | undefined {
  const match = value === null ? null : /^'?(-?\d+)'?$/.exec(value.trim());
  return match ? Number(match[1]) : undefined;
}
