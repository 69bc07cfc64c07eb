/**
 * The schema of deploy/values.json, in zod: every key with what it allows and its default,
 * and the rules between keys (thin or thick device classes, StorageClasses naming a device
 * class, one default). docs/schema/values.schema.json is generated from it (npm run schemas)
 * and a test keeps it current. Messages carry the value and what is allowed; values.ts adds
 * the field path.
 */
import { z } from "zod";
import { DISKS_CONFIG_SCHEMA } from "../disks/config.js";
import { ResourceRequirements } from "kubernetes-models/v1/ResourceRequirements";
import { Toleration } from "kubernetes-models/v1/Toleration";
import { DEVICE_CLASS_NAME, DNS_LABEL, DNS_SUBDOMAIN, LABEL_KEY } from "../volumes/names.js";
import { isValidStripeSize, parseStripeSize, STRIPE_SIZE_RULES } from "../volumes/size.js";
import { SIDECARS, type SidecarName, parseImage } from "./sidecars.js";

const VG_OR_LV_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const MOUNT_OPTION = /^[A-Za-z0-9_][A-Za-z0-9_=,.:-]{0,127}$/;
const KUBELET_DIR = /^\/[A-Za-z0-9._/-]*$/;

type Issue = { input: unknown };
const missingOr =
  (message: (input: unknown) => string) =>
  (i: Issue): string =>
    i.input === undefined ? "is required" : message(i.input);

/** A string matching `pattern` within maxLength; anything else is `"<value>" is not <what>`. */
function matching(pattern: RegExp, what: string, maxLength = 63) {
  const error = missingOr((input) => (typeof input === "string" ? `"${input}" is not ${what}` : "must be a string"));
  return z.string({ error }).max(maxLength, { error }).regex(pattern, { error }).describe(what);
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: missingOr((input) =>
      typeof input === "string" ? `"${input}" is not one of ${values.join(", ")}` : "must be a string",
    ),
  });
}

function numberIn(min: number, max: number, integer: boolean) {
  const error = missingOr(() => `must be ${integer ? "a whole number" : "a number"} from ${min} to ${max}`);
  return (integer ? z.int({ error }) : z.number({ error })).min(min, { error }).max(max, { error });
}

const bool = z.boolean({ error: missingOr(() => "must be true or false") });

/** An image reference pinned by tag or digest, never :latest alone. */
const image = z.string({ error: missingOr(() => "must be a string") }).superRefine((reference, context) => {
  const parsed = parseImage(reference);
  const fail = (message: string): void => void context.addIssue({ code: "custom", message });
  if (!parsed) {
    fail(
      `"${reference}" is not an image reference; expected [registry/]path:tag or path@sha256:<64 hex>, e.g. registry.k8s.io/sig-storage/csi-provisioner:v5.2.0`,
    );
  } else if (!parsed.tag && !parsed.digest) fail(`"${reference}" must be pinned with a tag or a digest`);
  else if (parsed.tag === "latest" && !parsed.digest)
    fail(`"${reference}" uses :latest; pin a version so every node runs the same image`);
});

/** A sidecar's image: pinned, and of a version whose flags the generator knows. */
function sidecarImage(name: SidecarName) {
  const sidecar = SIDECARS[name];
  return image
    .superRefine((reference, context) => {
      const tag = parseImage(reference)?.tag;
      if (!tag || !(tag in sidecar.versions)) {
        context.addIssue({
          code: "custom",
          message: `"${reference}" is tagged ${tag ?? "(no tag)"}, a version whose flags the generator does not know; known: ${Object.keys(sidecar.versions).join(", ")} (every argument is checked against the pinned version's flags)`,
        });
      }
    })
    .default(sidecar.defaultImage);
}

/** A Kubernetes-typed value, checked with the API schema of its type; the issue names the field inside it. */
function kubernetes(keys: readonly string[], model: (data: Record<string, unknown>) => { validate(): void }) {
  return z.looseObject({}, { error: missingOr(() => "must be an object") }).superRefine((data, context) => {
    const unknown = Object.keys(data).find((key) => !keys.includes(key));
    if (unknown !== undefined) {
      context.addIssue({
        code: "custom",
        path: [unknown],
        message: `unknown key; allowed keys here: ${keys.join(", ")}`,
      });
      return;
    }
    try {
      model(data).validate();
    } catch (error) {
      const first = (error as Error).message.split(", ")[0] ?? String(error);
      const match = /^data\/?(\S*) (.*)$/.exec(first);
      context.addIssue({ code: "custom", path: match?.[1] ? match[1].split("/") : [], message: match?.[2] ?? first });
    }
  });
}

const resources = (fallback: Record<string, Record<string, string>>) =>
  kubernetes(["requests", "limits"], (data) => new ResourceRequirements(data))
    .default(fallback)
    .describe("Kubernetes ResourceRequirements (requests, limits)");

const stripeSize = z.string({ error: missingOr(() => "must be a string") }).superRefine((text, context) => {
  const bytes = parseStripeSize(text);
  if (bytes === undefined) context.addIssue({ code: "custom", message: `"${text}" is not ${STRIPE_SIZE_RULES}` });
  else if (!isValidStripeSize(bytes))
    context.addIssue({ code: "custom", message: `"${text}" is not a power of two from 4Ki to 1Gi` });
});

/** Stripes, stripe size and mirrors, shared by device classes and StorageClasses. */
const LAYOUT = {
  stripes: numberIn(1, 128, true).optional(),
  stripeSize: stripeSize.optional().describe(STRIPE_SIZE_RULES),
  mirrors: numberIn(0, 9, true).optional(),
};

type Context = z.RefinementCtx;
type Layout = { stripes?: number | undefined; stripeSize?: string | undefined; mirrors?: number | undefined };
const addIssue = (context: Context, path: PropertyKey[], message: string): void =>
  void context.addIssue({ code: "custom", path, message });

/** `minStripesForSize`: 2 for a StorageClass whose class does not stripe, 1 for a device class. */
function checkLayout(layout: Layout, context: Context, minStripesForSize: number, at: PropertyKey[] = []): void {
  if (layout.stripeSize !== undefined && (layout.stripes ?? 1) < minStripesForSize)
    addIssue(context, [...at, "stripeSize"], "needs stripes of 2 or more");
  if ((layout.stripes ?? 1) > 1 && (layout.mirrors ?? 0) > 0) {
    addIssue(
      context,
      [...at, "mirrors"],
      "cannot be combined with stripes (loam makes striped or raid1 volumes, not raid10)",
    );
  }
}

const DEVICE_CLASS = z
  .strictObject({
    name: matching(
      DEVICE_CLASS_NAME,
      "lowercase letters, digits and '-', at most 63 (StorageClasses name it in loam.csi.dev/deviceClass)",
    ),
    volumeGroup: matching(VG_OR_LV_NAME, "an LVM volume group name (letters, digits, '+', '_', '.', '-')"),
    type: oneOf(["thick", "thin"]).default("thick"),
    thinPool: matching(VG_OR_LV_NAME, "an LVM logical volume name").optional(),
    overprovisionRatio: numberIn(1, 100, false).optional(),
    dataThresholdPercent: numberIn(1, 100, false).optional(),
    metadataThresholdPercent: numberIn(1, 100, false).optional(),
    spareBytes: numberIn(0, Number.MAX_SAFE_INTEGER, true).optional(),
    ...LAYOUT,
    default: bool.optional(),
  })
  .superRefine((c, context) => {
    if (c.type === "thin") {
      if (c.thinPool === undefined)
        addIssue(context, ["thinPool"], "is required for a thin device class (the thin pool LV in the volume group)");
      for (const key of ["stripes", "stripeSize", "mirrors"] as const) {
        if (c[key] !== undefined)
          addIssue(context, [key], "applies to thick device classes only (a thin pool has its own layout)");
      }
    } else {
      for (const key of [
        "thinPool",
        "overprovisionRatio",
        "dataThresholdPercent",
        "metadataThresholdPercent",
      ] as const) {
        if (c[key] !== undefined) addIssue(context, [key], `applies to thin device classes only; set "type": "thin"`);
      }
      checkLayout(c, context, 1);
    }
  });

const STORAGE_CLASS = z.strictObject({
  name: matching(DNS_SUBDOMAIN, "a Kubernetes object name", 253),
  deviceClass: z.string({ error: missingOr(() => "must be a string") }).describe("the name of one of deviceClasses"),
  fsType: oneOf(["xfs", "ext4"]).default("xfs"),
  ...LAYOUT,
  mountOptions: z
    .array(matching(MOUNT_OPTION, "a mount option such as noatime or logbsize=256k", 128), {
      error: missingOr(() => "must be a list"),
    })
    .optional(),
  reclaimPolicy: oneOf(["Delete", "Retain"]).default("Delete"),
  default: bool.optional(),
  encryption: z
    .strictObject({
      secretName: matching(DNS_SUBDOMAIN, "a Kubernetes Secret name", 253),
      secretNamespace: matching(DNS_LABEL, "a namespace name").optional(),
      pbkdfMemoryKiB: numberIn(32, 4194304, true).optional(),
    })
    .optional()
    .describe(
      "LUKS2 encryption (docs/encryption.md): the Secret holding encryptionPassphrase (node-stage and node-expand), in secretNamespace or the driver's namespace; pbkdfMemoryKiB below the node container's memory limit",
    ),
});

const IMAGES = z.strictObject({
  loam: image,
  nodeDriverRegistrar: sidecarImage("nodeDriverRegistrar"),
  provisioner: sidecarImage("provisioner"),
  resizer: sidecarImage("resizer"),
  snapshotter: sidecarImage("snapshotter"),
  livenessProbe: sidecarImage("livenessProbe"),
});

/** An etcd client URL: http or https, a host (name, IPv4 or [IPv6]) and a port. */
const ETCD_URL = /^(https?):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})$/;

const etcdEndpoint = z.string({ error: missingOr(() => "must be a string") }).superRefine((url, context) => {
  const match = ETCD_URL.exec(url);
  if (!match || Number(match[4]) < 1 || Number(match[4]) > 65535) {
    context.addIssue({
      code: "custom",
      message: `"${url}" is not an etcd client URL; expected http(s)://HOST:PORT, e.g. https://etcd-0.etcd.loam-system.svc:2379`,
    });
  }
});

const CLUSTER = z
  .strictObject(
    {
      replicas: numberIn(1, 9, true).default(2).describe("controller replicas, spread across nodes"),
      placement: oneOf(["spread", "binpack"]).default("spread"),
      nodeTimeoutSeconds: numberIn(1, 3600, true).default(60),
      etcd: z.strictObject(
        {
          endpoints: z
            .array(etcdEndpoint, { error: missingOr(() => "must be a list") })
            .min(1, "needs at least one etcd endpoint"),
          tlsSecret: matching(DNS_SUBDOMAIN, "a Secret name (keys ca.crt, tls.crt, tls.key)", 253).optional(),
        },
        { error: missingOr(() => "must be an object") },
      ),
    },
    { error: missingOr(() => "must be an object") },
  )
  .superRefine((cluster, context) => {
    const schemes = new Set(cluster.etcd.endpoints.map((url) => url.split(":")[0]));
    if (schemes.size > 1) {
      addIssue(context, ["etcd", "endpoints"], "mixes http and https endpoints; one etcd cluster uses one scheme");
    } else if (schemes.has("https") && cluster.etcd.tlsSecret === undefined) {
      addIssue(
        context,
        ["etcd", "tlsSecret"],
        "is required for https endpoints (a Secret with ca.crt, tls.crt and tls.key for the etcd client)",
      );
    } else if (schemes.has("http") && cluster.etcd.tlsSecret !== undefined) {
      addIssue(context, ["etcd", "tlsSecret"], "applies to https endpoints only; these are http");
    }
  });

const TOPOLOGIES = z
  .array(oneOf(["distributed", "cluster"]), { error: missingOr(() => "must be a list") })
  .min(1, "needs at least one topology: distributed, cluster")
  .refine((list) => new Set(list).size === list.length, "names a topology twice")
  .default(["distributed"])
  .describe(
    "which topologies npm run manifests renders: distributed (deploy/kubernetes/) and cluster (deploy/kubernetes/cluster/)",
  );

const NODE_SELECTOR = z
  .record(
    z.string().regex(LABEL_KEY, { error: "is not a Kubernetes label key" }),
    z.string({ error: missingOr(() => "must be a string") }).superRefine((text, context) => {
      if (text.length > 63 || !LABEL_VALUE.test(text))
        context.addIssue({ code: "custom", message: `"${text}" is not a Kubernetes label value` });
    }),
    { error: missingOr(() => "must be an object") },
  )
  .default({});

export const VALUES_SCHEMA = z
  .strictObject({
    namespace: matching(DNS_LABEL, "a Kubernetes namespace name (lowercase letters, digits, '-', at most 63)"),
    driverName: matching(DNS_SUBDOMAIN, "a domain-style CSI driver name such as loam.csi.dev").default("loam.csi.dev"),
    topologyKey: matching(LABEL_KEY, "a Kubernetes label key such as topology.loam.csi.dev/node").default(
      "topology.loam.csi.dev/node",
    ),
    kubeletDir: z
      .string({ error: missingOr(() => "must be a string") })
      .refine((dir) => KUBELET_DIR.test(dir) && !dir.includes("..") && (dir.length === 1 || !dir.endsWith("/")), {
        error: (i) =>
          `"${String(i.input)}" must be an absolute path without '..' or a trailing '/', e.g. /var/lib/kubelet`,
      })
      .default("/var/lib/kubelet"),
    logLevel: oneOf(["debug", "info", "warn", "error"]).default("info"),
    images: IMAGES,
    imagePullPolicy: oneOf(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
    priorityClassName: z
      .union([z.literal(""), matching(DNS_SUBDOMAIN, 'a PriorityClass name, or "" for none', 253)], {
        error: missingOr((input) =>
          typeof input === "string" ? `"${input}" is not a PriorityClass name, or "" for none` : "must be a string",
        ),
      })
      .default("system-node-critical"),
    nodeSelector: NODE_SELECTOR,
    tolerations: z
      .array(
        kubernetes(["key", "operator", "value", "effect", "tolerationSeconds"], (data) => new Toleration(data)),
        { error: missingOr(() => "must be a list") },
      )
      .default([]),
    resources: z
      .strictObject({
        loam: resources({ requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "512Mi" } }),
        sidecars: resources({ requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "256Mi" } }),
      })
      .default({
        loam: { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "512Mi" } },
        sidecars: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "256Mi" } },
      }),
    deviceClasses: z
      .array(DEVICE_CLASS, { error: missingOr(() => "must be a list") })
      .min(1, "needs at least one device class"),
    storageClasses: z.array(STORAGE_CLASS, { error: missingOr(() => "must be a list") }).default([]),
    volumeSnapshotClass: z
      .strictObject({
        name: matching(DNS_SUBDOMAIN, "a Kubernetes object name", 253).default("loam-snapshots"),
        deletionPolicy: oneOf(["Delete", "Retain"]).default("Delete"),
      })
      .default({ name: "loam-snapshots", deletionPolicy: "Delete" }),
    topologies: TOPOLOGIES,
    cluster: CLUSTER.optional(),
    disks: DISKS_CONFIG_SCHEMA.optional().describe(
      "disks.json for every node (docs/disks.md): loam node finds the node's local disks and makes its volume group at start; hostRoot defaults to /proc/1/root in the pod",
    ),
  })
  .superRefine((values, context) => {
    if (values.topologies.includes("cluster") && values.cluster === undefined) {
      addIssue(
        context,
        ["cluster"],
        'is required when topologies has "cluster" (at least cluster.etcd.endpoints, the etcd the controller and agents use)',
      );
    }
    const classes = values.deviceClasses;
    const seen = new Set<string>();
    for (const [i, c] of classes.entries()) {
      if (seen.has(c.name))
        addIssue(context, ["deviceClasses", i, "name"], `"${c.name}" is used by two device classes`);
      seen.add(c.name);
    }
    const defaults = classes.filter((c) => c.default === true).length;
    if (classes.length > 1 && defaults !== 1) {
      addIssue(
        context,
        ["deviceClasses"],
        `exactly one device class must have "default": true when there are several (found ${defaults})`,
      );
    }
    const names = new Set<string>();
    for (const [i, sc] of values.storageClasses.entries()) {
      const at = ["storageClasses", i];
      const target = classes.find((c) => c.name === sc.deviceClass);
      if (!target) {
        addIssue(
          context,
          [...at, "deviceClass"],
          `"${sc.deviceClass}" is not one of the device classes: ${classes.map((c) => c.name).join(", ")}`,
        );
        continue;
      }
      checkLayout(sc, context, target.stripes !== undefined && target.stripes > 1 ? 1 : 2, at);
      if (target.type === "thin") {
        for (const key of ["stripes", "stripeSize", "mirrors"] as const) {
          if (sc[key] !== undefined)
            addIssue(
              context,
              [...at, key],
              `device class "${sc.deviceClass}" is thin; stripes and mirrors apply to thick classes only`,
            );
        }
      }
      if (names.has(sc.name)) addIssue(context, [...at, "name"], `"${sc.name}" is used by two StorageClasses`);
      names.add(sc.name);
    }
    if (values.storageClasses.filter((s) => s.default === true).length > 1) {
      addIssue(context, ["storageClasses"], "at most one StorageClass may be the cluster default");
    }
  });

/** The JSON Schema of deploy/values.json, as written to docs/schema/values.schema.json. */
export function valuesJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(VALUES_SCHEMA, { io: "input", unrepresentable: "any" }),
    $id: "https://loam.csi.dev/schema/values.schema.json",
    title: "loam deploy/values.json",
  };
}
