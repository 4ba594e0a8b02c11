import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/grpc/health/v1/health_pb.ts";
import { AppError } from "../lib/errors.ts";
import type { ServiceBinding } from "./rpc-binding.ts";

/**
 * The process's serving state: SERVING unless it is draining (shutdown began) or the database does not
 * answer. One state for "" (the whole server) and every served service.
 */
export function createHealthState(services: readonly string[]) {
  let draining = false;
  let databaseUp = true;
  const listeners = new Set<() => void>();
  const known = new Set(["", ...services]);
  const changed = () => {
    for (const listener of listeners) listener();
  };
  return {
    known,
    status(): ServingStatus {
      return !draining && databaseUp ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    },
    /** SERVING, as `Check` answers it (the metrics listener's `/readyz` agrees with it). */
    isServing(): boolean {
      return !draining && databaseUp;
    },
    setDraining() {
      if (draining) return;
      draining = true;
      changed();
    },
    setDatabaseUp(up: boolean) {
      if (databaseUp === up) return;
      databaseUp = up;
      changed();
    },
    onChange(listener: () => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export type HealthState = ReturnType<typeof createHealthState>;

/** `grpc.health.v1.Health/Check` (unary: served by the fast path too). */
export function healthBinding(state: HealthState): ServiceBinding {
  return {
    service: Health,
    errorStyle: "v1",
    requiresToken: false,
    handlers: {
      check: async (request) => {
        const { service } = request as HealthCheckRequest;
        if (!state.known.has(service)) throw new AppError("not_found", `unknown service ${service}`);
        return create(HealthCheckResponseSchema, { status: state.status() });
      },
      list: async () =>
        create(HealthListResponseSchema, {
          statuses: Object.fromEntries(
            [...state.known].map((name) => [
              name,
              create(HealthCheckResponseSchema, { status: state.status() }),
            ]),
          ),
        }),
    },
  };
}

/** `Watch`: the current status at once, then every change, until the client goes away. */
export function healthWatch(state: HealthState): Pick<ServiceImpl<typeof Health>, "watch"> {
  return {
    async *watch(request, context): AsyncGenerator<HealthCheckResponse> {
      const known = state.known.has(request.service);
      let last = known ? state.status() : ServingStatus.SERVICE_UNKNOWN;
      yield create(HealthCheckResponseSchema, { status: last });
      if (!known) return;
      while (!context.signal.aborted) {
        await new Promise<void>((resolve) => {
          const off = state.onChange(() => {
            off();
            resolve();
          });
          context.signal.addEventListener(
            "abort",
            () => {
              off();
              resolve();
            },
            { once: true },
          );
        });
        // A change is sent even when the server is shutting down: NOT_SERVING is what watchers need then.
        const now = state.status();
        if (now !== last) {
          last = now;
          yield create(HealthCheckResponseSchema, { status: now });
        }
      }
    },
  };
}
