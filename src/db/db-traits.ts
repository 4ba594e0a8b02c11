import { type ZonedTime, zonedTime } from "./zoned-time.ts";

/** What differs between the two databases we run on, in one place. */
export interface DbTraits {
  readonly dialect: "mysql" | "sqlite";
  /** Row locking that lets several relays claim disjoint rows (`FOR UPDATE SKIP LOCKED`). */
  readonly skipLocked: boolean;
  /** The value to bind for a time: every time this service writes or compares goes through here. */
  time(date: Date): string;
  /** A time column's value as a Date. */
  readTime(value: unknown): Date | null;
}

/**
 * MySQL `datetime` holds a wall-clock time without a zone. SmartFlow's Go services write theirs in their
 * process's local zone (`loc=Local`), so this service reads and writes the same wall clock in `zone`
 * (`DATABASE_TIME_ZONE`), whatever its own process's zone: times are bound as `YYYY-MM-DD HH:MM:SS.mmm` text
 * in that zone, and read as text (mysql2 `dateStrings`, mysql-driver.ts) and converted back.
 */
export function mysqlTraits(zone: ZonedTime = zonedTime("local")): DbTraits {
  return {
    dialect: "mysql",
    skipLocked: true,
    time: (date) => zone.format(date),
    readTime: (value) => (typeof value === "string" ? zone.parse(value) : toDate(value)),
  };
}

/**
 * SQLite has no time type: times are stored as `YYYY-MM-DD HH:MM:SS.mmm` in UTC, which sorts and compares
 * correctly as text. Go never writes to it, so its zone is ours to choose.
 */
export const sqliteTraits: DbTraits = {
  dialect: "sqlite",
  skipLocked: false,
  time: (date) => date.toISOString().replace("T", " ").replace("Z", ""),
  readTime: (value) => (typeof value === "string" ? new Date(`${value.replace(" ", "T")}Z`) : toDate(value)),
};

function toDate(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  if (typeof value === "number") return new Date(value);
  return null;
}
