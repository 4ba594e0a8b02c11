/**
 * The domain's ids, in one place. User and target ids are SmartFlow's int64 (Go's `int`/`int64`, `bigint`
 * columns): they are `bigint` here, 1 … 2^63 − 1 for a user, since a JavaScript number is exact only up to
 * 2^53 − 1. Records and outbox rows are this service's auto-increment keys and stay numbers: an id past
 * `Number.MAX_SAFE_INTEGER` names no row this service will ever have.
 */

/** A SmartFlow user (`user_id`): one user, at most one webhook channel. */
export type UserId = bigint;

/** A notification record (`notification_records.id`, the payload's `notification_id`). */
export type RecordId = number;

/** An outbox row (`*_outbox_messages.id`, the Kafka envelope's `outbox_id`). */
export type OutboxId = number;

/** What a notification is about (`target_id`, e.g. a task). */
export type TargetId = bigint;

/** The largest user or target id (Go's `math.MaxInt64`). */
export const MAX_ID = 2n ** 63n - 1n;

/** Whether `value` is a user id: 1 … 2^63 − 1. */
export const isUserId = (value: bigint): boolean => value > 0n && value <= MAX_ID;
