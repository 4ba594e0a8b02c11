import { CompiledQuery, MysqlDialect } from "kysely";
import { createPool } from "mysql2";

/**
 * Every session of this service, as it is opened:
 * - strict SQL mode (`STRICT_TRANS_TABLES` added to the server's mode): a value out of a column's range is
 *   an error, never stored folded onto the range's end (user 2^31 was stored as user 2^31 − 1 before 64-bit ids);
 * - READ COMMITTED: this service's transactions are short and each reads what it locks, so they need no
 *   gap locks, which under REPEATABLE READ made the relay's claim, the consumer's outcomes and the
 *   requests' inserts deadlock each other. With binary logging on, READ COMMITTED needs `binlog_format=ROW`
 *   or `MIXED` (MariaDB's default is MIXED, MySQL 8's ROW); under STATEMENT, writes fail.
 */
const SESSION_SETUP = [
  "set session sql_mode = concat_ws(',', nullif(@@session.sql_mode, ''), 'STRICT_TRANS_TABLES')",
  "set session transaction isolation level read committed",
];

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
  return new MysqlDialect({
    pool,
    async onCreateConnection(connection) {
      for (const statement of SESSION_SETUP) await connection.executeQuery(CompiledQuery.raw(statement));
    },
  });
}
