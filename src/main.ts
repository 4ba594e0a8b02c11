import { serve } from "./app/process-edge.ts";
import { describeError } from "./lib/errors.ts";

/** The process: the edge (app/process-edge.ts) runs the service and says which code to exit with. */
serve().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`smartflow-notification: fatal: ${describeError(error)}\n`);
    process.exit(1);
  },
);
