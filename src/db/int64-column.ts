import { sql } from "kysely";

/**
 * SmartFlow's 64-bit ids (`user_id`, `target_id`) read exactly. They are bound as `bigint` (both drivers
 * write every digit). Read back, better-sqlite3 returns an INTEGER as a JavaScript number (rounded past
 * 2^53) and mysql2 (`supportBigNumbers`) a number, or a string past 2^53; so these columns are selected as
 * text (`cast(… as char)` means the same on both databases), and `toInt64` turns what comes back into a
 * `bigint`. Every other column keeps the type its driver gives it.
 */
export function int64Column<C extends string>(column: C) {
  return sql<string>`cast(${sql.ref(column)} as char)`.as(column);
}

/** A 64-bit id as a driver returns it (text from `int64Column`, a number, a bigint) → `bigint`. */
export function toInt64(value: unknown): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value);
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  throw new TypeError(`not a 64-bit integer column value: ${String(value).slice(0, 40)}`);
}
