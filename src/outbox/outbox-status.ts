/**
 * The states of an outbox row. The values are SmartFlow's column values and stay as they are; the names say
 * what they mean here. `published` is set when a relay *claims* a row, before anything is published: a row in
 * it is owned by a relay or waiting in the topic for its consumer, and the sweeper re-queues it when it stays
 * there too long.
 *
 *   pending ──claim──▶ claimed ──consumer──▶ consumed | dead | pending (retry, deferred)
 *      ▲                  │ broker unreachable: released untouched; publish failed: pending with backoff or dead
 *      └── sweeper ───────┘ (stale claim; counts as an attempt)
 */
export const OutboxStatus = {
  pending: "pending",
  /** Claimed by a relay; the column value is SmartFlow's `published`. */
  claimed: "published",
  consumed: "consumed",
  dead: "dead",
} as const;
export type OutboxStatus = (typeof OutboxStatus)[keyof typeof OutboxStatus];
