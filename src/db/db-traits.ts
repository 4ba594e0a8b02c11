/** What differs between the two databases we run on, in one place. */
export interface DbTraits {
  readonly dialect: "mysql" | "sqlite";
  /** Row locking that lets several relays claim disjoint rows (`FOR UPDATE SKIP LOCKED`). */
  readonly skipLocked: boolean;
  /** The value to bind for a time. */
  time(date: Date): Date | string;
  /** A time column's value as a Date. */
  readTime(value: unknown): Date | null;
}

export const mysqlTraits: DbTraits = {
  dialect: "mysql",
  skipLocked: true,
  time: (date) => date,
  readTime: (value) => toDate(value),
};

/**
 * SQLite has no time type: times are stored as `YYYY-MM-DD HH:MM:SS.mmm` in UTC, which sorts and compares
 * correctly as text.
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
  if (typeof value === "string" || typeof value === "number") return new Date(value);
  return null;
}
