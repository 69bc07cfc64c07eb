/**
 * The real-LVM suite, bundled into one file (dist/test/vm/suite.mjs) and run inside the
 * throwaway VM by `npm test`: one long-lived process, because starting Node and loading
 * modules over 9p is slow under software emulation.
 */
import { after, before, describe } from "node:test";
import { Harness } from "./harness.js";
import { controllerTests } from "./controller.vm.js";
import { robustnessTests } from "./robustness.vm.js";
import { goClientTests } from "./go-client.vm.js";

let harness: Harness | undefined;
const h = (): Harness => {
  if (!harness) throw new Error("the harness did not start");
  return harness;
};

describe("loam on real LVM", () => {
  before(async () => {
    harness = await Harness.start();
  });
  after(async () => {
    await harness?.stop();
  });
  controllerTests(h);
  robustnessTests(h);
  goClientTests(h);
});
