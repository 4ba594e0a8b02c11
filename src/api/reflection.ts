import { create, type DescFile, type Registry, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.ts";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.ts";

/**
 * gRPC server reflection, v1 and v1alpha (what grpcurl and `buf curl` ask), answered from the descriptors the
 * server was built with: the same generated files that decode requests, so what reflection describes is what
 * is served. Each file is sent with its transitive dependencies, each at most once per stream.
 */
export function reflectionServices(registry: Registry, services: readonly string[]) {
  const index = createDescriptorIndex(registry);
  const v1Impl: ServiceImpl<typeof v1.ServerReflection> = {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const request of requests) {
        yield create(v1.ServerReflectionResponseSchema, {
          validHost: request.host,
          originalRequest: request,
          messageResponse: answer(
            index,
            services,
            request,
            sent,
          ) as v1.ServerReflectionResponse["messageResponse"],
        });
      }
    },
  };
  const v1alphaImpl: ServiceImpl<typeof v1alpha.ServerReflection> = {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const request of requests) {
        yield create(v1alpha.ServerReflectionResponseSchema, {
          validHost: request.host,
          originalRequest: request,
          messageResponse: answer(
            index,
            services,
            request,
            sent,
          ) as v1alpha.ServerReflectionResponse["messageResponse"],
        });
      }
    },
  };
  return { v1: v1Impl, v1alpha: v1alphaImpl };
}

type DescriptorIndex = ReturnType<typeof createDescriptorIndex>;

/** The registry's files by name and by symbol, and their serialized descriptors (each encoded once). */
function createDescriptorIndex(registry: Registry) {
  const fileBytes = new Map<string, Uint8Array>();
  const bytesOf = (file: DescFile) => {
    let bytes = fileBytes.get(file.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      fileBytes.set(file.name, bytes);
    }
    return bytes;
  };
  const files = new Map<string, DescFile>();
  const addFile = (file: DescFile) => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    for (const dependency of file.dependencies) addFile(dependency);
  };
  for (const type of registry) addFile(type.file);
  return {
    registry,
    fileByName: (name: string) => files.get(name),
    fileOfSymbol(symbol: string): DescFile | undefined {
      const direct = registry.get(symbol);
      if (direct) return direct.file;
      // A method or a field: `pkg.Service.Method`, `pkg.Message.field`.
      const parent = registry.get(symbol.slice(0, Math.max(0, symbol.lastIndexOf("."))));
      return parent?.file;
    },
    /** The file and its dependencies not yet sent on this stream. */
    withDependencies(file: DescFile, sent: Set<string>): Uint8Array[] {
      const out: Uint8Array[] = [];
      const visit = (f: DescFile) => {
        if (sent.has(f.name)) return;
        sent.add(f.name);
        out.push(bytesOf(f));
        for (const dependency of f.dependencies) visit(dependency);
      };
      visit(file);
      return out;
    },
  };
}

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;
const notFound = (errorMessage: string): Answer => ({
  case: "errorResponse",
  value: { errorCode: NOT_FOUND, errorMessage },
});

function answer(
  index: DescriptorIndex,
  services: readonly string[],
  request: Request,
  sent: Set<string>,
): Answer {
  const found = (file: DescFile | undefined, what: string): Answer =>
    file
      ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.withDependencies(file, sent) } }
      : notFound(`${what} not found`);
  const message = request.messageRequest;
  switch (message.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: services.map((name) => ({ name })) } };
    case "fileByFilename":
      return found(index.fileByName(message.value), `file ${message.value}`);
    case "fileContainingSymbol":
      return found(index.fileOfSymbol(message.value), `symbol ${message.value}`);
    case "allExtensionNumbersOfType":
      return index.registry.get(message.value)?.kind === "message"
        ? { case: "allExtensionNumbersResponse", value: { baseTypeName: message.value, extensionNumber: [] } }
        : notFound(`type ${message.value} not found`);
    case "fileContainingExtension":
      return notFound("no extensions are served");
    default:
      return {
        case: "errorResponse",
        value: { errorCode: INVALID_ARGUMENT, errorMessage: "empty reflection request" },
      };
  }
}
