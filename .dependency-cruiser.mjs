// Layer rules over src/, checked by `npm run lint` (depcruise src test). Paths are relative to
// the folder depcruise runs in, so test/unit/layers.test.ts runs this same file over the small
// trees under test/fixtures/layers/ and checks each rule reports what it should.
//
// Layers, top to bottom. A module imports its own folder and any lower layer, never a higher
// one, and never another folder of its own layer (so lvm and host do not import each other).
const LAYERS = [["cli", "deploy"], ["csi", "metrics"], ["cluster"], ["disks"], ["volumes"], ["lvm", "host"], ["exec"]];
const LAYERED = LAYERS.flat();
// Modules any layer may import; they import nothing of src but each other.
const SHARED_LEAVES = "^src/(log|version)[.]ts$";
// What does not ship (tools/: bench, demo, scratch disks; test/): src never imports it, and no
// other rule applies to it.
const NOT_SHIPPED = "^(tools|test)/";
// The gRPC transport: only these folders may know about gRPC, protobuf and the generated code.
const TRANSPORT = ["csi", "cli", "gen"];
/** Every folder of src/ the rules know; test/unit/layers.test.ts fails on a folder not placed here. */
export const PLACED_FOLDERS = [...LAYERED, "gen"];

const folders = (names) => `^src/(${names.join("|")})/`;

/** One rule per layer: what its folders must not import (higher layers and their own layer's other folders). */
const layerRules = LAYERS.flatMap((layer, depth) => {
  const higher = LAYERS.slice(0, depth).flat();
  return layer.map((folder) => {
    const forbidden = [...higher, ...layer.filter((other) => other !== folder)];
    return { folder, forbidden };
  });
})
  .filter(({ forbidden }) => forbidden.length > 0)
  .map(({ folder, forbidden }) => ({
    name: `layer-${folder}`,
    comment: `src/${folder} imports only its own folder and lower layers (${LAYERS.map((l) => l.join("/")).join(" > ")}); not ${forbidden.join(", ")}`,
    severity: "error",
    from: { path: folders([folder]) },
    to: { path: folders(forbidden) },
  }));

/** @type {import("dependency-cruiser").IConfiguration} */
export default {
  forbidden: [
    ...layerRules,
    {
      name: "shared-leaves",
      comment:
        "src/log.ts and src/version.ts are imported from every layer, so they import nothing of src but each other",
      severity: "error",
      from: { path: SHARED_LEAVES },
      to: { path: "^src/", pathNot: SHARED_LEAVES },
    },
    {
      name: "grpc-in-transport-only",
      comment: `only src/{${TRANSPORT.join(",")}} import the generated code, @grpc/grpc-js or @bufbuild/protobuf`,
      severity: "error",
      from: { path: "^src/", pathNot: folders(TRANSPORT) },
      to: { path: ["^src/gen/", "(^|/)node_modules/@grpc/grpc-js/", "(^|/)node_modules/@bufbuild/protobuf/"] },
    },
    {
      name: "not-shipped",
      comment: "tools/ and test/ do not ship: nothing in src imports them",
      severity: "error",
      from: { path: "^src/" },
      to: { path: NOT_SHIPPED },
    },
    {
      name: "no-circular",
      comment: "no import cycles, type-only imports included",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "not-to-unresolvable",
      comment: "an import that resolves to nothing would hide an edge from every other rule",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^test/fixtures/" },
    // Count `import type` too: a type-only import is still a dependency of the design.
    tsPreCompilationDeps: true,
    // Package "exports" maps (@bufbuild/protobuf/wkt and the like) and TypeScript's `.js` specifiers.
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types", "typings"],
      extensions: [".ts", ".mjs", ".js", ".json"],
    },
  },
};
