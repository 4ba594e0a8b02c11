import { setting } from "./setting.ts";
import { integer } from "./value-parsers.ts";

/**
 * The outbox's guards against events that cannot be carried or handled (`config.outbox.guards`), a group of
 * the spec table (config-spec.ts), passed by src/app/outbox-wiring.ts.
 */
export const crashSpec = {
  maxCrashes: setting(
    "OUTBOX_MAX_CRASHES",
    "3",
    integer(1, 1_000),
    "an outbox row whose handling was started this many times more than it finished (the process died while handling it) is `dead`, not handled again",
  ),
  maxMessageBytes: setting(
    "OUTBOX_MAX_MESSAGE_BYTES",
    "921600",
    integer(1_024, 2 ** 31 - 1),
    "the relay never publishes a message larger than this (key and value): its row is `dead` with its size (Kafka's default `message.max.bytes` is 1 MiB)",
  ),
};
