/**
 * Sealing the channels' stored secrets again with the current key (after SECRETS_KEY changed, or was set
 * over rows stored in plain text). Safe while the service serves and writes, and when several instances run
 * it at once: each value is replaced only while it still holds what was read.
 */
export interface SecretReseal {
  /**
   * Seals again, in batches of `batchSize` rows by primary key, up to `limit` rows: values sealed with another
   * key (SECRETS_KEY_PREVIOUS, or the first format, which names no key) and values in plain text. Stops
   * between batches once `signal` is aborted. A value no configured key opens is an error that names its
   * row; the rows resealed before it stay resealed.
   */
  reseal(options: ResealOptions, signal: AbortSignal): Promise<ResealResult>;
}

export interface ResealOptions {
  readonly batchSize: number;
  readonly limit: number;
}

export interface ResealResult {
  /** Rows this call sealed again (a row another writer changed first is not counted). */
  readonly resealed: number;
  /** Rows that still hold a value not sealed with the current key, counted after this call. */
  readonly remaining: number;
}
