import type { Settled } from "../lib/coalescing-writer.ts";
import { AppError } from "../lib/errors.ts";
import type { RequestReceipt } from "./notification-requests.ts";
import type { InRequestTransaction, NewEvent, RequestKey } from "./ports/event-outbox.ts";

/** A validated request, ready to write: its outbox event and its idempotency key's fields. */
export interface PreparedRequest {
  readonly eventId: string;
  readonly dedupeKey: string;
  readonly event: NewEvent;
}

export const duplicateOf = (key: RequestKey): RequestReceipt => ({
  outboxId: key.outboxId,
  duplicate: true,
  dedupeKey: key.dedupeKey,
});

const byEventId = (a: { eventId: string }, b: { eventId: string }) =>
  a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;

/**
 * Writes a batch of requests (distinct event ids) in one transaction: the keys already committed answer as
 * duplicates; the others' events go into the outbox in one multi-row insert and their keys in another,
 * sorted by event id (two batches meeting on the keys' index lock in one order: no deadlock between them).
 *
 * The batch commits whole or not at all. When it fails with a retryable error (the database was out or kept
 * deadlocking past the transient retry), every request hears that error, as each would have alone. Any other
 * failure, such as a twin committed by another instance between the read and the insert, is one request's
 * business: each request is then written alone (`writeOne`, the one-request transaction), so a clash or a
 * fault answers only its own caller and its batch-mates are written as if they had come alone.
 */
export async function writeBatch(
  batch: readonly PreparedRequest[],
  deps: {
    readonly inTransaction: InRequestTransaction;
    readonly now: () => Date;
    readonly writeOne: (request: PreparedRequest) => Promise<RequestReceipt>;
  },
): Promise<Settled<RequestReceipt>[]> {
  try {
    const receipts = await deps.inTransaction(async ({ enqueueMany, keys }) => {
      const existing = await keys.findMany(batch.map((request) => request.eventId).sort());
      const fresh = batch.filter((request) => !existing.has(request.eventId));
      const ids = await enqueueMany(fresh.map((request) => request.event));
      const added = new Map<string, RequestKey>();
      fresh.forEach(({ eventId, dedupeKey }, i) => {
        const outboxId = ids[i];
        if (outboxId === undefined) throw new AppError("internal", `no outbox id for event ${eventId}`);
        added.set(eventId, { eventId, outboxId, dedupeKey });
      });
      await keys.addMany([...added.values()].sort(byEventId), deps.now());
      return batch.map((request): RequestReceipt => {
        const committed = existing.get(request.eventId);
        if (committed) return duplicateOf(committed);
        const key = added.get(request.eventId) as RequestKey;
        return { outboxId: key.outboxId, duplicate: false, dedupeKey: key.dedupeKey };
      });
    });
    return receipts.map((value) => ({ ok: true, value }));
  } catch (error) {
    if (AppError.is(error) && error.retryable) return batch.map(() => ({ ok: false, error }));
    // One at a time: a batch's worth of transactions at once would crowd the pool just when it is contended.
    const settled: Settled<RequestReceipt>[] = [];
    for (const request of batch) {
      settled.push(
        await deps.writeOne(request).then(
          (value): Settled<RequestReceipt> => ({ ok: true, value }),
          (error: unknown): Settled<RequestReceipt> => ({ ok: false, error }),
        ),
      );
    }
    return settled;
  }
}
