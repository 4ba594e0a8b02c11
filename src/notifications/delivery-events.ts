/** Events of the delivery side; tests await them, the app logs and counts them. */
export interface DeliveryEvents {
  "intake:record": {
    readonly outboxId: number;
    readonly recordId: number;
    readonly status: string;
    readonly reused: boolean;
    readonly queued: boolean;
  };
  "delivery:claimed": { readonly ids: readonly number[] };
  "delivery:result": {
    readonly recordId: number;
    readonly status: string;
    readonly outcome: string;
    readonly errorCode: string | null;
    readonly attemptCount: number;
    readonly written: boolean;
  };
  "retry:scanned": { readonly found: number; readonly killed: number };
  [name: string]: unknown;
}
