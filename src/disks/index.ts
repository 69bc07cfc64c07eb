/** `loam disks`: a node's local disks found by rules and made its volume group (docs/disks.md). */
export {
  type DisksConfig,
  DisksConfigError,
  parseDisksConfig,
  readDisksConfig,
  disksJsonSchema,
  WIPE_CONFIRMATION,
} from "./config.js";
export { gatherFacts } from "./gather.js";
export { planDisks, type Plan, type Change, type DiskFacts } from "./plan.js";
export { applyPlan, DisksApplyError } from "./apply.js";
export { planJson, planText, changeText } from "./render.js";
