/** Events the outbox loops emit; tests await them (nothing in production subscribes yet). */
export interface OutboxEvents {
  /** The broker acknowledged these rows; the publish took `durationMs` (clock time). */
  "relay:published": { readonly ids: readonly number[]; readonly topic: string; readonly durationMs: number };
  "relay:failed": {
    readonly ids: readonly number[];
    readonly error: string;
    readonly brokerUnavailable: boolean;
  };
  "relay:dead": { readonly ids: readonly number[]; readonly reason: string };
  "consumer:outcomes": {
    readonly consumed: readonly number[];
    readonly dead: readonly number[];
    readonly retried: readonly number[];
    readonly deferred: readonly number[];
    readonly skipped: readonly number[];
    /** The dead ones by reason class (unreadable, no_handler, version_mismatch, rejected). */
    readonly deadByClass: Readonly<Record<string, number>>;
  };
  "consumer:dropped": { readonly reason: string; readonly topic: string; readonly offset: string };
  "sweeper:requeued": { readonly retried: number; readonly exhausted: number; readonly expired: number };
  [name: string]: unknown;
}
