import type { LogFields, Logger } from "./logger.ts";

/** From this many failures in a row on, a loop's failed step is logged as an error. */
export const ERROR_FROM_FAILURES = 3;

/**
 * Logs a loop's database step that failed and will be retried (a claim, a read, a write), by how long the
 * failure has lasted. `failuresInARow` counts this one. The first failures in a row are warnings: a deadlock, a
 * lock wait timeout or a dropped connection that the next try gets past is routine under load (the soak saw a
 * few deadlocks every ten minutes). From `ERROR_FROM_FAILURES` on they are errors: the database is down or
 * something is wrong, and an operator who alerts on error lines should hear of it.
 */
export function logFailedStep(logger: Logger, failuresInARow: number, msg: string, fields: LogFields): void {
  const line = { ...fields, failuresInARow };
  if (failuresInARow >= ERROR_FROM_FAILURES) logger.error(msg, line);
  else logger.warn(msg, line);
}
