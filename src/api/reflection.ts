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
  const fileBytes = new Map<string, Uint8Array>();
  const bytesOf = (file: DescFile) => {
    let bytes = fileBytes.get(file.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      fileBytes.set(file.name, bytes);
    }
    return bytes;
  };
  const withDependencies = (file: DescFile, sent: Set<string>): Uint8Array[] => {
    const out: Uint8Array[] = [];
    const visit = (f: DescFile) => {
      if (sent.has(f.name)) return;
      sent.add(f.name);
      out.push(bytesOf(f));
      for (const dependency of f.dependencies) visit(dependency);
    };
    visit(file);
    return out;
  };
  const files = new Map<string, DescFile>();
  const addFile = (file: DescFile) => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    for (const dependency of file.dependencies) addFile(dependency);
  };
  for (const type of registry) addFile(type.file);
  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    const direct = registry.get(symbol);
    if (direct) return direct.file;
    // A method or a field: `pkg.Service.Method`, `pkg.Message.field`.
    const parent = registry.get(symbol.slice(0, Math.max(0, symbol.lastIndexOf("."))));
    return parent?.file;
  };

  type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;
  type Answer =
    | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
    | { case: "listServicesResponse"; value: { service: { name: string }[] } }
    | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
    | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

  const NOT_FOUND = 5;
  const answer = (request: Request, sent: Set<string>): Answer => {
    const found = (file: DescFile | undefined, what: string): Answer =>
      file
        ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(file, sent) } }
        : { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } };
    const message = request.messageRequest;
    switch (message.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: services.map((name) => ({ name })) } };
      case "fileByFilename":
        return found(files.get(message.value), `file ${message.value}`);
      case "fileContainingSymbol":
        return found(fileOfSymbol(message.value), `symbol ${message.value}`);
      case "allExtensionNumbersOfType": {
        const type = registry.get(message.value);
        return type?.kind === "message"
          ? {
              case: "allExtensionNumbersResponse",
              value: { baseTypeName: message.value, extensionNumber: [] },
            }
          : {
              case: "errorResponse",
              value: { errorCode: NOT_FOUND, errorMessage: `type ${message.value} not found` },
            };
      }
      case "fileContainingExtension":
        return {
          case: "errorResponse",
          value: { errorCode: NOT_FOUND, errorMessage: "no extensions are served" },
        };
      default:
        return { case: "errorResponse", value: { errorCode: 3, errorMessage: "empty reflection request" } };
    }
  };

  const v1Impl: ServiceImpl<typeof v1.ServerReflection> = {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const request of requests) {
        yield create(v1.ServerReflectionResponseSchema, {
          validHost: request.host,
          originalRequest: request,
          messageResponse: answer(request, sent) as v1.ServerReflectionResponse["messageResponse"],
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
          messageResponse: answer(request, sent) as v1alpha.ServerReflectionResponse["messageResponse"],
        });
      }
    },
  };
  return { v1: v1Impl, v1alpha: v1alphaImpl };
}
