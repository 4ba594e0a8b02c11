import { create } from "@bufbuild/protobuf";
import {
  type ResealSecretsRequest,
  ResealSecretsResponseSchema,
} from "../gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import type { SecretReseal } from "../notifications/ports/secret-reseal.ts";
import { throwIfAborted } from "./error-mapping.ts";
import { invalid } from "./ops-mapping.ts";
import type { ServiceBinding } from "./rpc-binding.ts";

const DEFAULT_BATCH = 200;
const DEFAULT_LIMIT = 5_000;

/** The operations service's `ResealSecrets` (key rotation), served with the others by ops-handlers.ts. */
export function secretsHandlers(secrets: SecretReseal): ServiceBinding["handlers"] {
  return {
    resealSecrets: async (request, { signal }) => {
      const r = request as ResealSecretsRequest;
      if (r.batchSize < 0 || r.batchSize > 1_000) throw invalid("batch_size", "must be between 0 and 1000");
      if (r.limit < 0 || r.limit > 100_000) throw invalid("limit", "must be between 0 and 100000");
      throwIfAborted(signal);
      const result = await secrets.reseal(
        { batchSize: r.batchSize || DEFAULT_BATCH, limit: r.limit || DEFAULT_LIMIT },
        signal,
      );
      return create(ResealSecretsResponseSchema, {
        resealedCount: BigInt(result.resealed),
        remainingCount: BigInt(result.remaining),
      });
    },
  };
}
