import assert from "node:assert/strict";
import { test } from "node:test";
import { ERROR_FROM_FAILURES, logFailedStep } from "../../src/lib/failed-step-log.ts";
import { createLogger } from "../../src/lib/logger.ts";

test("a loop's failed step is a warning until it has failed ERROR_FROM_FAILURES times in a row, then an error", () => {
  const lines: { level: string; msg: string; failuresInARow: number; error: string }[] = [];
  const logger = createLogger("debug", (line) => lines.push(JSON.parse(line)));
  for (let failures = 1; failures <= 4; failures++) {
    logFailedStep(logger, failures, "outbox relay cannot claim rows", { error: "Deadlock found" });
  }
  assert.equal(ERROR_FROM_FAILURES, 3);
  assert.deepEqual(
    lines.map((line) => [line.level, line.failuresInARow, line.msg, line.error]),
    [
      ["warn", 1, "outbox relay cannot claim rows", "Deadlock found"],
      ["warn", 2, "outbox relay cannot claim rows", "Deadlock found"],
      ["error", 3, "outbox relay cannot claim rows", "Deadlock found"],
      ["error", 4, "outbox relay cannot claim rows", "Deadlock found"],
    ],
  );
});
