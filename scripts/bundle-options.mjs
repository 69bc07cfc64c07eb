// The esbuild options every bundle of scripts/bundle.mjs is built with, in a module of their
// own so that a host test (test/unit/bundle-etcd3.test.ts) can bundle a probe exactly the same
// way and run it against a real etcd.
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";

const require = createRequire(import.meta.url);

/**
 * etcd3 1.1.2 loads its gRPC protos when it is first imported:
 *   (0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`, { keepCase: true, ... })
 * Inside a bundle __dirname is the bundle's folder and the .proto files are not beside it, so
 * the import throws ENOENT. This plugin parses the protos at bundle time with the protobufjs
 * that @grpc/proto-loader itself uses, and swaps the call for proto-loader's
 * `fromJSON(<descriptor>, options)`: the bundle needs no files at run time. The options object
 * stays as etcd3 wrote it (keepCase is applied here, at parse time; longs, enums, defaults and
 * oneofs are what fromJSON reads). The build fails if etcd3 ever loads its protos differently.
 */
export const etcd3ProtosPlugin = {
  name: "loam-etcd3-protos",
  setup(build) {
    build.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const call = /\(0, (\w+)\.loadSync\)\(`\$\{__dirname\}\/([^`]+\.proto)`, \{\s*keepCase: true,/g;
      const matches = [...source.matchAll(call)];
      if (matches.length !== 1) {
        throw new Error(
          `${args.path}: expected one loadSync(\`\${__dirname}/....proto\`, { keepCase: true, ... }) call, ` +
            `found ${matches.length}; etcd3 changed how it loads its protos, update scripts/bundle-options.mjs`,
        );
      }
      const [whole, loader, relative] = matches[0];
      const descriptor = JSON.stringify(parseProtos(resolve(dirname(args.path), relative)));
      const contents = source.replace(whole, `(0, ${loader}.fromJSON)(${descriptor}, {\n    keepCase: true,`);
      return { contents, loader: "js" };
    });
  },
};

/** The protos as protobufjs JSON, parsed as proto-loader's loadSync does (keepCase, resolveAll). */
function parseProtos(file) {
  const fromProtoLoader = createRequire(require.resolve("@grpc/proto-loader"));
  const protobuf = fromProtoLoader("protobufjs");
  const root = new protobuf.Root().loadSync(file, { keepCase: true });
  root.resolveAll();
  return root.toJSON();
}

export const bundleOptions = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  // grpc-js and friends still call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __loamCreateRequire } from 'node:module'; const require = __loamCreateRequire(import.meta.url);",
  },
  plugins: [etcd3ProtosPlugin],
};

/** The commit `loam --version` prints: HEAD, with "-dirty" when tracked files differ from it. */
export function gitCommit() {
  const git = (...args) => execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const head = git("rev-parse", "HEAD");
    return git("status", "--porcelain", "--untracked-files=no") === "" ? head : `${head}-dirty`;
  } catch {
    return "unknown"; // not a git checkout (a source tarball)
  }
}
