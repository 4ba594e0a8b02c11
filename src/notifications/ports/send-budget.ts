/**
 * Feishu's send limits are per destination (one bot, one webhook URL), whichever instance sends. The
 * dispatcher asks this port before it claims records: how many sends each destination may take now.
 * Implemented in process (process-send-budget.ts, one instance) and in the database (sql/sql-send-budget.ts,
 * shared by every instance). Sends granted whose claim is then lost (another instance sent the record) are
 * given back; a give-back that fails, or that another instance has not read yet, only makes the budget stricter
 * for a while, never looser.
 */
export interface SendBudget {
  /**
   * Takes up to `wanted` sends for each destination key (destination-key.ts) at `now`. A destination
   * granted fewer than it wanted says how long until the next send is allowed (`waitMs` > 0).
   */
  take(wanted: ReadonlyMap<string, number>, now: Date): Promise<Map<string, BudgetGrant>>;

  /** Gives back `returned` sends per destination key that a `take` at `takenAt` granted and that never happen. */
  giveBack(returned: ReadonlyMap<string, number>, takenAt: Date): Promise<void>;
}

export interface BudgetGrant {
  readonly granted: number;
  /** 0 when everything wanted was granted; else the ms until one more send is allowed. */
  readonly waitMs: number;
}
