/**
 * A typed CSI client over a Unix socket, for the `loam csi` command and the tests. It dials
 * `unix:///path` exactly as the Kubernetes sidecars do.
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
import { Client, Metadata, type ServiceError, credentials, status } from "@grpc/grpc-js";

export class CsiCallError extends Error {
  constructor(
    readonly method: string,
    readonly code: status,
    readonly details: string,
  ) {
    super(`${method}: ${status[code] ?? code}: ${details}`);
    this.name = "CsiCallError";
  }
}

export interface CallOptions {
  /** Milliseconds until the call's deadline. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export class CsiClient {
  private readonly client: Client;

  constructor(endpoint: string) {
    const target = endpoint.startsWith("unix:") ? endpoint : `unix://${endpoint}`;
    this.client = new Client(target, credentials.createInsecure(), {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    });
  }

  call<M extends GenServiceMethods, K extends keyof M & string>(
    service: GenService<M>,
    method: K,
    request: MessageInitShape<M[K]["input"]>,
    options: CallOptions = {},
  ): Promise<MessageShape<M[K]["output"]>> {
    const descriptor = service.method[method];
    const input: DescMessage = descriptor.input;
    const output: DescMessage = descriptor.output;
    const path = `/${service.typeName}/${descriptor.name}`;
    const message = create(input, request as MessageInitShape<DescMessage>);
    return new Promise((resolve, reject) => {
      const deadline = options.timeoutMs ? new Date(Date.now() + options.timeoutMs) : undefined;
      const call = this.client.makeUnaryRequest(
        path,
        (value: MessageShape<DescMessage>) => Buffer.from(toBinary(input, value)),
        (bytes: Buffer) => fromBinary(output, bytes),
        message,
        new Metadata(),
        deadline ? { deadline } : {},
        (error: ServiceError | null, reply?: MessageShape<DescMessage>) => {
          if (error) reject(new CsiCallError(`${service.typeName}.${descriptor.name}`, error.code, error.details));
          else resolve(reply as MessageShape<M[K]["output"]>);
        },
      );
      options.signal?.addEventListener("abort", () => call.cancel(), { once: true });
    });
  }

  close(): void {
    this.client.close();
  }
}
