import { Kysely } from "kysely";
import { type DbTraits, mysqlTraits, sqliteTraits } from "./db-traits.ts";
import { createMysqlDialect } from "./mysql-driver.ts";
import type { Database } from "./schema.ts";
import { createSqliteDialect } from "./sqlite-driver.ts";

export type DatabaseConfig =
  | { readonly kind: "mysql"; readonly url: string; readonly poolSize: number }
  | { readonly kind: "sqlite"; readonly path: string };

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly traits: DbTraits;
  /** True when a trivial query succeeds; used by health checks. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export function createDb(config: DatabaseConfig): Db {
  const kysely =
    config.kind === "mysql"
      ? new Kysely<Database>({ dialect: createMysqlDialect(config.url, config.poolSize) })
      : new Kysely<Database>({ dialect: createSqliteDialect(config.path) });
  const traits = config.kind === "mysql" ? mysqlTraits : sqliteTraits;
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
