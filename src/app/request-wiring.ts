import type { Db } from "../db/database.ts";
import {
  createNotificationRequests,
  type NotificationRequests,
} from "../notifications/notification-requests.ts";
import type { InRequestTransaction } from "../notifications/ports/event-outbox.ts";
import { createSqlRequestKeys } from "../notifications/sql/sql-request-keys.ts";
import type { Enqueuer } from "../outbox/enqueue.ts";

/**
 * Requested notifications (the RequestFeishuNotification RPC): the domain's idempotent request, with the
 * outbox's enqueue and the SQL request keys bound to one database transaction.
 */
export function wireNotificationRequests(db: Db, enqueuer: Enqueuer, now: () => Date): NotificationRequests {
  const inTransaction: InRequestTransaction = (work) =>
    db.kysely.transaction().execute((trx) =>
      work({
        enqueue: (event) => enqueuer.enqueue(trx, event),
        keys: createSqlRequestKeys(trx, db.traits),
      }),
    );
  return createNotificationRequests({ keys: createSqlRequestKeys(db.kysely, db.traits), inTransaction, now });
}
