import { setting } from "./setting.ts";
import { integer } from "./value-parsers.ts";

/**
 * How concurrent RequestFeishuNotification calls share transactions (`config.api.requestBatch`), a group of
 * the spec table (config-spec.ts), passed by src/app/request-wiring.ts to the domain's requests
 * (src/notifications/notification-requests.ts).
 */
export const requestBatchSpec = {
  maxBatch: setting(
    "REQUEST_BATCH_MAX_SIZE",
    "128",
    integer(1, 1_000),
    "RequestFeishuNotification: concurrent requests written in one transaction at most (1: one transaction per request)",
  ),
  maxWaitMs: setting(
    "REQUEST_BATCH_MAX_WAIT_MS",
    "0",
    integer(0, 50),
    "how long a request may wait for others to share its transaction when one could start at once (0: those of the same event-loop turn); while batches are being written, requests wait for the next one anyway",
  ),
  maxInFlight: setting(
    "REQUEST_BATCH_CONCURRENCY",
    "2",
    integer(1, 64),
    "request transactions written at once at most (each holds a database connection)",
  ),
};
