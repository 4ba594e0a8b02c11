import type { DeadUnhandled, WorkItem } from "./consumer-decisions.ts";

/**
 * Crash-loop detection, as pg-transactional-outbox does it: the consumer counts each handling of a row as
 * started (committed before the handler runs) and as finished (with the outcome's write). A row whose started
 * attempts exceed its finished ones was being handled when the process died. Such rows are handled again one
 * at a time (a poison row must not take its batch-mates down with it, again and again), and a row that did it
 * `maxCrashes` times is not handled any more: it is `dead` with the count, and the process stays up.
 */
export interface CrashScreen {
  /** Rows never interrupted: handled together. */
  readonly fresh: readonly WorkItem[];
  /** Rows interrupted fewer than `maxCrashes` times: each handled alone. */
  readonly suspicious: readonly WorkItem[];
  /** Rows interrupted `maxCrashes` times or more: dead without being handled. */
  readonly crashed: readonly DeadUnhandled[];
}

export function screenCrashes(work: readonly WorkItem[], maxCrashes: number): CrashScreen {
  const fresh: WorkItem[] = [];
  const suspicious: WorkItem[] = [];
  const crashed: DeadUnhandled[] = [];
  for (const item of work) {
    const { id, startedAttempts, finishedAttempts } = item.row;
    const crashes = startedAttempts - finishedAttempts;
    if (crashes >= maxCrashes)
      crashed.push({ id, reason: crashReason(crashes, item.row, maxCrashes), reasonClass: "crash_loop" });
    else if (crashes > 0) suspicious.push(item);
    else fresh.push(item);
  }
  // Fewest crashes first: a batch-mate caught in someone else's crash goes before the likely culprit.
  const gap = (item: WorkItem) => item.row.startedAttempts - item.row.finishedAttempts;
  suspicious.sort((a, b) => gap(a) - gap(b) || a.row.id - b.row.id);
  return { fresh, suspicious, crashed };
}

function crashReason(
  crashes: number,
  row: { readonly startedAttempts: number; readonly finishedAttempts: number },
  maxCrashes: number,
): string {
  const times = crashes === 1 ? "once" : `${crashes} times`;
  return `handling crashed the process ${times} (started ${row.startedAttempts} times, finished ${row.finishedAttempts}; OUTBOX_MAX_CRASHES is ${maxCrashes}): not handled again`;
}
