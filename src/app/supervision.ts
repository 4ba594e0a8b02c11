import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";

/** A loop that stopped for good while the process was meant to run (its `run()` rejected or returned). */
export interface LoopFailure {
  readonly loop: string;
  readonly error: string;
}

/** The exit code of a process whose loop failed for good (EX_SOFTWARE): the orchestrator restarts it. */
export const EXIT_LOOP_FAILED = 70;

/**
 * Watches the long-running loops. Transient errors are each loop's to retry; a loop whose `run()` rejects, or
 * returns while the process is not stopping, has failed for good: that is logged once, `onFailure` runs (the
 * app turns health NOT_SERVING) and `failed` resolves, so the process edge stops everything and exits
 * non-zero. Failures after the stop began are logged only: the process is going down anyway.
 */
export function createLoopSupervisor(deps: {
  readonly logger: Logger;
  readonly stopping: AbortSignal;
  readonly onFailure: (failure: LoopFailure) => void;
}) {
  const { logger, stopping } = deps;
  let failure: LoopFailure | undefined;
  let announce: (failure: LoopFailure) => void = () => undefined;
  const failed = new Promise<LoopFailure>((resolve) => {
    announce = resolve;
  });
  const fail = (loop: string, error: unknown) => {
    if (stopping.aborted) {
      logger.error(`${loop} failed while stopping`, { error: describeError(error) });
      return;
    }
    if (failure) {
      logger.error(`${loop} failed too`, { error: describeError(error) });
      return;
    }
    failure = { loop, error: describeError(error) };
    logger.error(`${loop} failed for good: stopping the process (exit ${EXIT_LOOP_FAILED})`, { ...failure });
    deps.onFailure(failure);
    announce(failure);
  };
  return {
    /** Runs `loop` under watch; the returned promise never rejects (for the staged stop's drain). */
    watch(name: string, loop: Promise<void>): Promise<void> {
      return loop.then(
        () => {
          if (!stopping.aborted) fail(name, new Error("the loop ended on its own"));
        },
        (error: unknown) => fail(name, error),
      );
    },
    /** Whether every loop still runs (no failure so far): `/livez`. */
    live: () => failure === undefined,
    /** Resolves with the first failure (never, if none happens). */
    failed,
  };
}

/** What `runUntilStopped` needs of the app. */
export interface Supervised {
  readonly logger: Logger;
  start(): Promise<void>;
  stop(): Promise<void>;
  loopFailed(): Promise<LoopFailure>;
}

/**
 * The process edge's part: starts the app and waits for a stop request (`stopRequested`, from a signal) or a
 * loop's failure. A failure runs the staged stop and yields EXIT_LOOP_FAILED; a failed start yields 1; a
 * requested stop, once complete, yields 0.
 */
export async function runUntilStopped(app: Supervised, stopRequested: Promise<void>): Promise<number> {
  const failure = app.loopFailed().then((f) => ({ kind: "failed" as const, failure: f }));
  try {
    await app.start();
  } catch (error) {
    app.logger.error("startup failed", { error: describeError(error) });
    await app.stop();
    return 1;
  }
  const outcome = await Promise.race([stopRequested.then(() => ({ kind: "stopped" as const })), failure]);
  if (outcome.kind === "stopped") return 0;
  await app.stop();
  app.logger.error("stopped after a loop failed", { ...outcome.failure, exitCode: EXIT_LOOP_FAILED });
  return EXIT_LOOP_FAILED;
}
