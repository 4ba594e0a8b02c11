import { MysqlDialect } from "kysely";
import { createPool } from "mysql2";

/** The only file that imports mysql2. */
export function createMysqlDialect(url: string, poolSize: number): MysqlDialect {
  const pool = createPool({
    uri: url,
    connectionLimit: poolSize,
    // `datetime` values are read as their wall-clock text and converted in DATABASE_TIME_ZONE (db-traits.ts);
    // times are bound as such text too, never as Dates (date-parameter-guard.ts).
    dateStrings: true,
    supportBigNumbers: true,
    charset: "utf8mb4",
    connectTimeout: 5_000,
    enableKeepAlive: true,
  });
  return new MysqlDialect({ pool });
}
