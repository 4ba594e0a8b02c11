import { type ColumnDataType, type ColumnDefinitionBuilder, type Expression, type Kysely, sql } from "kysely";
import type { DbTraits } from "./db-traits.ts";

/** Schema steps that may meet tables SmartFlow's Go services created: each is "create or add if missing". */

/** The column type of times: `datetime(3)` on MySQL, ISO-like UTC text on SQLite (see db-traits.ts). */
export function timeType(traits: DbTraits): ColumnDataType | Expression<unknown> {
  return traits.dialect === "mysql" ? sql`datetime(3)` : "text";
}

/** ALTER TABLE … ADD COLUMN unless the column exists (the table may predate this service). */
export async function ensureColumn<DB>(
  db: Kysely<DB>,
  traits: DbTraits,
  table: string,
  column: string,
  type: ColumnDataType | Expression<unknown>,
  build: (col: ColumnDefinitionBuilder) => ColumnDefinitionBuilder = (col) => col,
) {
  const exists =
    traits.dialect === "mysql"
      ? Number(
          (
            await sql<{ n: number }>`select count(*) as n from information_schema.columns
              where table_schema = database() and table_name = ${table} and column_name = ${column}`.execute(
              db,
            )
          ).rows[0]?.n ?? 0,
        ) > 0
      : (await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db)).rows.some(
          (row) => row.name === column,
        );
  if (!exists) await db.schema.alterTable(table).addColumn(column, type, build).execute();
}

/** CREATE INDEX unless an index of that name exists (MySQL 8 has no `IF NOT EXISTS` for indexes). */
export async function ensureIndex<DB>(
  db: Kysely<DB>,
  traits: DbTraits,
  table: string,
  name: string,
  columns: string[],
  unique = false,
) {
  if (traits.dialect === "mysql") {
    const { rows } = await sql<{ n: number }>`
      select count(*) as n from information_schema.statistics
      where table_schema = database() and table_name = ${table} and index_name = ${name}`.execute(db);
    if (Number(rows[0]?.n ?? 0) > 0) return;
  }
  // SQLite's index names are global, not per table: qualify them so two outbox tables can coexist.
  let builder = db.schema
    .createIndex(traits.dialect === "sqlite" ? `${table}_${name}` : name)
    .on(table)
    .columns(columns);
  if (unique) builder = builder.unique();
  if (traits.dialect === "sqlite") builder = builder.ifNotExists();
  await builder.execute();
}
