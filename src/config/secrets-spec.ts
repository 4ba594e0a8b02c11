import { optional } from "./setting.ts";
import { secretsKey } from "./value-parsers.ts";

/**
 * Rotating `SECRETS_KEY` (`config.secrets`), a group of the spec table (config-spec.ts): the key that sealed
 * values before the current one, still read until the reseal job (ResealSecrets) has sealed them again.
 * Cross-checks in load-config.ts: it needs SECRETS_KEY and must differ from it.
 */
export const secretsSpec = {
  previousKey: optional(
    "SECRETS_KEY_PREVIOUS",
    secretsKey,
    "while rotating SECRETS_KEY: the key it replaces (same format). Values it sealed are still read; the ResealSecrets RPC seals them again with SECRETS_KEY, after which this is removed",
  ),
};
