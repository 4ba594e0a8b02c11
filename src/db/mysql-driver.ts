import { MysqlDialect } from "kysely";
import { createPool } from "mysql2";

/** The only file that imports mysql2. */
export function createMysqlDialect(url: string, poolSize: number): MysqlDialect {
  const pool = createPool({
    uri: url,
    connectionLimit: poolSize,
    // Times are read and written in the process's local zone, as Go's `parseTime=True&loc=Local` does, so
    // rows written by SmartFlow's Go producers compare correctly with ours.
    timezone: "local",
    dateStrings: false,
    supportBigNumbers: true,
    charset: "utf8mb4",
    connectTimeout: 5_000,
    enableKeepAlive: true,
  });
  return new MysqlDialect({ pool });
}
