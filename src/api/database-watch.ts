import { sleep } from "../lib/sleep.ts";
import type { HealthState } from "./health.ts";

/** Health says NOT_SERVING while the database does not answer: pinged every `intervalMs`, until aborted. */
export function createDatabaseWatch(deps: {
  readonly ping: () => Promise<boolean>;
  readonly health: Pick<HealthState, "setDatabaseUp">;
  readonly intervalMs: number;
}) {
  return {
    async run(signal: AbortSignal): Promise<void> {
      while (!signal.aborted) {
        deps.health.setDatabaseUp(await deps.ping());
        await sleep(deps.intervalMs, signal);
      }
    },
  };
}
