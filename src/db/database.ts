import { Kysely } from "kysely";
import { DateParameterGuard } from "./date-parameter-guard.ts";
import { type DbTraits, mysqlTraits, sqliteTraits } from "./db-traits.ts";
import { createMysqlDialect } from "./mysql-driver.ts";
import type { Database } from "./schema.ts";
import { createSqliteDialect } from "./sqlite-driver.ts";
import { zonedTime } from "./zoned-time.ts";

/** Where the database is: MySQL/MariaDB (production) or a SQLite file (the embedded default). */
export type DatabaseTarget =
  | { readonly kind: "mysql"; readonly url: string }
  | { readonly kind: "sqlite"; readonly path: string };

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly traits: DbTraits;
  /** True when a trivial query succeeds; used by health checks. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * `poolSize`: MySQL connections (SQLite has one writer and needs no pool). `timeZone`: the zone of MySQL's
 * `datetime` wall-clock times (`DATABASE_TIME_ZONE`: `local` or an IANA name; see db-traits.ts).
 */
export function createDb(target: DatabaseTarget, poolSize = 10, timeZone = "local"): Db {
  const kysely =
    target.kind === "mysql"
      ? new Kysely<Database>({
          dialect: createMysqlDialect(target.url, poolSize),
          plugins: [new DateParameterGuard()],
        })
      : new Kysely<Database>({ dialect: createSqliteDialect(target.path) });
  const traits = target.kind === "mysql" ? mysqlTraits(zonedTime(timeZone)) : sqliteTraits;
  return {
    kysely,
    traits,
    async ping() {
      try {
        await kysely.selectNoFrom((eb) => eb.lit(1).as("ok")).execute();
        return true;
      } catch {
        return false;
      }
    },
    close: () => kysely.destroy(),
  };
}
