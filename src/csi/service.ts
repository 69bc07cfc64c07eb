/**
 * Binds protobuf-es service descriptors to @grpc/grpc-js. Every method of a CSI service
 * is registered: the ones a handler object implements run it, the rest answer
 * UNIMPLEMENTED, so a sidecar probing an optional RPC gets the code the spec expects.
 */
import {
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
  create,
  fromBinary,
  toBinary,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import {
  type Server,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { UnimplementedError, codeName, toStatus } from "./status.js";
import type { Logger } from "../log.js";
import { redactMessage } from "./redact.js";

export interface CallContext {
  /** Aborted when the client cancels or the deadline passes; passed down to every LVM command. */
  signal: AbortSignal;
  method: string;
  requestId: string;
}

type Handler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  context: CallContext,
) => Promise<MessageInitShape<O>>;

export type ServiceHandlers<M extends GenServiceMethods> = {
  [K in keyof M]?: Handler<M[K]["input"], M[K]["output"]>;
};

export interface CallRecord {
  method: string;
  requestId: string;
  durationMs: number;
  code: string;
  volumeId?: string;
  message?: string;
}

export interface ServiceHooks {
  logger: Logger;
  onCall?: (record: CallRecord) => void;
  /** Calls refused because the server is stopping (SIGTERM) see UNAVAILABLE. */
  isStopping?: () => boolean;
}

/**
 * Calls that only describe the plugin, answered from its configuration: sidecars and the
 * kubelet repeat them (the liveness probe's Probe every few seconds), so a successful one is
 * logged at debug, not info. They are still counted in the metrics; a failure is still a warning.
 * Under a load of them the info line per call was a fifth of loam's CPU (a synchronous write
 * each; docs/benchmarks.md, "Native").
 */
const DESCRIPTIVE_METHODS: ReadonlySet<string> = new Set([
  "Identity.GetPluginInfo",
  "Identity.GetPluginCapabilities",
  "Identity.Probe",
  "Controller.ControllerGetCapabilities",
  "Node.NodeGetCapabilities",
  "Node.NodeGetInfo",
]);

/** grpc-js's definition of one unary method: its path and the protobuf-es (de)serialisers of its messages. */
export function unaryDefinition(
  service: GenService<GenServiceMethods>,
  method: GenService<GenServiceMethods>["methods"][number],
): ServiceDefinition[string] {
  const { input, output } = method;
  return {
    path: `/${service.typeName}/${method.name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (message: MessageShape<DescMessage>) => Buffer.from(toBinary(input, message)),
    requestDeserialize: (bytes: Buffer) => fromBinary(input, bytes),
    responseSerialize: (message: MessageShape<DescMessage>) => Buffer.from(toBinary(output, message)),
    responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
    originalName: method.localName,
  };
}

export function addService<M extends GenServiceMethods>(
  server: Server,
  service: GenService<M>,
  handlers: ServiceHandlers<M>,
  hooks: ServiceHooks,
): void {
  const definition: Record<string, ServiceDefinition[string]> = {};
  const implementation: UntypedServiceImplementation = {};
  for (const method of service.methods) {
    if (method.methodKind !== "unary") continue;
    const { input, output } = method;
    definition[method.name] = unaryDefinition(service, method);
    const handler = (handlers as Record<string, Handler<DescMessage, DescMessage> | undefined>)[method.localName];
    const fullName = `${service.typeName.replace(/^csi\.v1\./, "")}.${method.name}`;
    implementation[method.name] = (
      call: ServerUnaryCall<MessageShape<DescMessage>, MessageShape<DescMessage>>,
      callback: sendUnaryData<MessageShape<DescMessage>>,
    ) => {
      const started = performance.now();
      const requestId = randomUUID();
      // The signal is made when the handler first asks for it: the calls that never look at it
      // (the capability RPCs, repeated by every sidecar) then allocate no AbortController.
      let controller: AbortController | undefined;
      let cancelled = false;
      const signalOfCall = (): AbortSignal => {
        if (!controller) {
          controller = new AbortController();
          if (cancelled) controller.abort(cancellation());
        }
        return controller.signal;
      };
      // grpc-js reports "cancelled" after every call it has answered too (notifyOnCancel once the
      // status is sent): the listener goes when the call finishes, so a finished call is never
      // aborted, and no Error (a stack trace) is made per call for nothing (issue 20).
      const onCancelled = (): void => {
        cancelled = true;
        controller?.abort(cancellation());
      };
      call.once("cancelled", onCancelled);
      const volumeId = pickVolumeId(call.request);
      if (hooks.logger.enabled?.("debug")) {
        // Secrets are blanked by the proto's csi_secret option, whatever the method.
        hooks.logger.debug("rpc request", { method: fullName, requestId, request: redactMessage(input, call.request) });
      }
      const finish = (code: status, message?: string): void => {
        call.removeListener("cancelled", onCancelled);
        const record: CallRecord = {
          method: fullName,
          requestId,
          durationMs: Math.round((performance.now() - started) * 1000) / 1000,
          code: codeName(code),
          ...(volumeId ? { volumeId } : {}),
          ...(message ? { message } : {}),
        };
        hooks.onCall?.(record);
        if (code !== status.OK) hooks.logger.warn("rpc", { ...record });
        else if (DESCRIPTIVE_METHODS.has(fullName)) hooks.logger.debug("rpc", { ...record });
        else hooks.logger.info("rpc", { ...record });
      };
      if (hooks.isStopping?.()) {
        const message = "loam is shutting down; retry on the restarted driver";
        finish(status.UNAVAILABLE, message);
        callback({ code: status.UNAVAILABLE, details: message });
        return;
      }
      if (!handler) {
        const message = new UnimplementedError(fullName).message;
        finish(status.UNIMPLEMENTED, message);
        callback({ code: status.UNIMPLEMENTED, details: message });
        return;
      }
      const context: CallContext = {
        get signal() {
          return signalOfCall();
        },
        method: fullName,
        requestId,
      };
      handler(call.request, context).then(
        (reply) => {
          finish(status.OK);
          callback(null, create(output, reply));
        },
        (error: unknown) => {
          const failure = toStatus(error);
          finish(failure.code, failure.message);
          callback({ code: failure.code, details: failure.message });
        },
      );
    };
  }
  server.addService(definition as ServiceDefinition, implementation);
}

function cancellation(): Error {
  return new Error("the client cancelled the call");
}

/** The volume id a request is about, for the log line; never a secret. */
function pickVolumeId(request: unknown): string | undefined {
  if (typeof request !== "object" || request === null) return undefined;
  const record = request as { volumeId?: unknown; sourceVolumeId?: unknown; name?: unknown };
  if (typeof record.volumeId === "string" && record.volumeId) return record.volumeId.slice(0, 200);
  if (typeof record.sourceVolumeId === "string" && record.sourceVolumeId) return record.sourceVolumeId.slice(0, 200);
  return undefined;
}
