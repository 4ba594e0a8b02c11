import type { Kysely } from "kysely";
import type { DbTraits } from "../../db/db-traits.ts";
import type { Database } from "../../db/schema.ts";
import type { RecordStore } from "../ports/record-store.ts";
import { createRecordClaims } from "./record-claims.ts";
import { createRecordIntake } from "./record-intake.ts";
import { createRecordQueries } from "./record-queries.ts";
import { createRecordScans } from "./record-scans.ts";

/**
 * The records table on MySQL/MariaDB or SQLite: the four callers' statements over one connection.
 * `sendingLeaseMs` (DELIVERY_SENDING_LEASE_MS) is the lease of a row Go left in `sending` (record-rows.ts).
 */
export function createSqlRecordStore(
  db: Kysely<Database>,
  traits: DbTraits,
  sendingLeaseMs: number,
): RecordStore {
  const table = { db, traits, sendingLeaseMs };
  return {
    ...createRecordIntake(table),
    ...createRecordClaims(table),
    ...createRecordScans(table),
    ...createRecordQueries(table),
  };
}
