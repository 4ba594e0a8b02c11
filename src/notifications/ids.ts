/**
 * The domain's ids, in one place. They are JavaScript numbers today; a later change makes user and target
 * ids 64-bit (up to 2^63−1, beyond a number's precision). Every port and domain type names these aliases, so
 * that change alters the representation here and the compiler finds every use.
 */

/** A SmartFlow user (`user_id`): one user, at most one webhook channel. */
export type UserId = number;

/** A notification record (`notification_records.id`, the payload's `notification_id`). */
export type RecordId = number;

/** An outbox row (`*_outbox_messages.id`, the Kafka envelope's `outbox_id`). */
export type OutboxId = number;

/** What a notification is about (`target_id`, e.g. a task). */
export type TargetId = number;
