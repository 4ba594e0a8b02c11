import type { Db } from "../db/database.ts";
import type { RetryTransient } from "../db/transient-retry.ts";
import {
  createNotificationRequests,
  type NotificationRequests,
  type RequestBatching,
} from "../notifications/notification-requests.ts";
import type { InRequestTransaction } from "../notifications/ports/event-outbox.ts";
import { createSqlRequestKeys } from "../notifications/sql/sql-request-keys.ts";
import type { Enqueuer } from "../outbox/enqueue.ts";
import { retryingPort } from "./transient-ports.ts";

/**
 * Requested notifications (the RequestFeishuNotification RPC): the domain's idempotent request, with the
 * outbox's enqueue and the SQL request keys bound to one database transaction. The whole transaction is
 * the unit `retry` re-runs after a deadlock or a lost connection (a re-run that finds its key committed
 * answers as a duplicate of it: the same outbox row). Concurrent requests share such transactions
 * (`batching`, REQUEST_BATCH_*).
 */
export function wireNotificationRequests(
  db: Db,
  enqueuer: Enqueuer,
  now: () => Date,
  retry: RetryTransient,
  batching: RequestBatching,
): NotificationRequests {
  const inTransaction: InRequestTransaction = (work) =>
    retry(() =>
      db.kysely.transaction().execute((trx) =>
        work({
          enqueue: (event) => enqueuer.enqueue(trx, event),
          enqueueMany: (events) => enqueuer.enqueueMany(trx, events),
          keys: createSqlRequestKeys(trx, db.traits),
        }),
      ),
    );
  const keys = retryingPort(createSqlRequestKeys(db.kysely, db.traits), retry);
  return createNotificationRequests({ keys, inTransaction, now, batching });
}
