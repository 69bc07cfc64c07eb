/** The release version, kept in step with package.json by the release checklist (a test compares them). */
export const VERSION = "0.1.0";

// Replaced by scripts/bundle.mjs (esbuild `define`) with the git commit the bundle was built
// from; the tsc output, run unbundled by the host tests, has none and says "unknown".
declare const __LOAM_COMMIT__: string | undefined;

/** The git commit of this build (40 hex digits, "-dirty" when the tree had changes), or "unknown". */
export const COMMIT: string = typeof __LOAM_COMMIT__ === "string" ? __LOAM_COMMIT__ : "unknown";
