/**
 * Volume metadata kept in LV tags. LVM accepts only [A-Za-z0-9_+.\-/=!:&#] in a tag, so a value
 * travels as unpadded base64url of its UTF-8 bytes, which uses only letters, digits, '-' and
 * '_'. The key stays readable, behind our prefix, so `lvs -o lv_tags` shows what is there.
 */

export const TAG_PREFIX = "loam.csi.dev/";
/** LVM 2.03.16 accepts longer tags, but its metadata area is small and shared by every LV. */
export const MAX_TAG_LENGTH = 1024;

const KEY = /^[a-z0-9](?:[a-z0-9.\-/]*[a-z0-9])?$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
// With the u flag a surrogate pair is one code point, so only unpaired halves match.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const LVM_TAG = /^[A-Za-z0-9_+.\-/=!:&#]+$/;

export class InvalidTagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidTagError";
  }
}

export function isValidTag(tag: string): boolean {
  return tag.length <= MAX_TAG_LENGTH && LVM_TAG.test(tag);
}

export function encodeTag(key: string, value: string): string {
  if (!KEY.test(key))
    throw new InvalidTagError(`tag key "${key.slice(0, 64)}" is not a simple lowercase word of [a-z0-9.-/]`);
  if (LONE_SURROGATE.test(value)) {
    // A lone surrogate would come back as U+FFFD: the value would not survive the round trip.
    throw new InvalidTagError(`tag value for "${key}" is not well-formed Unicode`);
  }
  const tag = `${TAG_PREFIX}${key}=${Buffer.from(value, "utf8").toString("base64url")}`;
  if (tag.length > MAX_TAG_LENGTH) {
    throw new InvalidTagError(
      `tag for "${key}" would be ${tag.length} characters long; LV tags are limited to ${MAX_TAG_LENGTH}`,
    );
  }
  return tag;
}

/** Our key/value pairs among an LV's tags. Tags that are not ours or do not decode are ignored. */
export function decodeTags(tags: readonly string[]): Map<string, string> {
  const decoded = new Map<string, string>();
  for (const tag of tags) {
    const parsed = decodeTag(tag);
    if (parsed) decoded.set(parsed.key, parsed.value);
  }
  return decoded;
}

/** The raw tags carrying `key`, so a caller can remove an old value before adding a new one. */
export function tagsWithKey(tags: readonly string[], key: string): string[] {
  return tags.filter((tag) => decodeTag(tag)?.key === key);
}

function decodeTag(tag: string): { key: string; value: string } | undefined {
  if (!tag.startsWith(TAG_PREFIX)) return undefined;
  const rest = tag.slice(TAG_PREFIX.length);
  const eq = rest.indexOf("=");
  if (eq < 0) return undefined;
  const key = rest.slice(0, eq);
  const encoded = rest.slice(eq + 1);
  if (!KEY.test(key)) return undefined;
  const value = decodeBase64Utf8(encoded);
  return value === undefined ? undefined : { key, value };
}

/** Strict: only the canonical unpadded base64url of valid UTF-8 decodes. */
function decodeBase64Utf8(encoded: string): string | undefined {
  if (!BASE64URL.test(encoded) || encoded.length % 4 === 1) return undefined;
  const bytes = Buffer.from(encoded, "base64url");
  if (bytes.toString("base64url") !== encoded) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Compact tags (issue 20): `loam.csi.dev/<head>` followed by `:key=value` fields, one tag for
 * what took one tag per key. A value of letters, digits and `._+-` (every name loam accepts)
 * is written as it is; any other value as `!` and the unpadded base64url of its UTF-8 bytes.
 * No field holds ':' unencoded, and the old decoder above never takes a compact tag for one
 * of its own: the text before its first '=' holds a ':' (or there is no '='), which its keys never do.
 */
const FIELD_KEY = /^[A-Za-z]{1,4}$/;
const HEAD = /^[a-z0-9]+$/;
const RAW_VALUE = /^[A-Za-z0-9._+-]*$/;

export function encodeFields(head: string, fields: ReadonlyArray<readonly [string, string]>): string {
  if (!HEAD.test(head)) throw new InvalidTagError(`compact tag head "${head.slice(0, 64)}" is not [a-z0-9]+`);
  const seen = new Set<string>();
  let tag = `${TAG_PREFIX}${head}`;
  for (const [key, value] of fields) {
    if (!FIELD_KEY.test(key) || seen.has(key))
      throw new InvalidTagError(`compact tag field "${key.slice(0, 64)}" is not 1-4 letters, or is repeated`);
    seen.add(key);
    if (LONE_SURROGATE.test(value)) throw new InvalidTagError(`tag value for "${key}" is not well-formed Unicode`);
    const text = RAW_VALUE.test(value) ? value : `!${Buffer.from(value, "utf8").toString("base64url")}`;
    tag += `:${key}=${text}`;
  }
  if (tag.length > MAX_TAG_LENGTH) {
    throw new InvalidTagError(
      `tag ${TAG_PREFIX}${head} would be ${tag.length} characters long; LV tags are limited to ${MAX_TAG_LENGTH}`,
    );
  }
  return tag;
}

/** Whether `tag` is a compact tag with this head (its fields may still not decode). */
export function hasHead(tag: string, head: string): boolean {
  const start = `${TAG_PREFIX}${head}`;
  return tag === start || tag.startsWith(`${start}:`);
}

/**
 * The fields of a compact tag with this head, in order; undefined when the tag is not one or
 * anything in it does not decode exactly (a repeated key, a value that is neither raw nor the
 * canonical base64url of valid UTF-8).
 */
export function decodeFields(tag: string, head: string): Map<string, string> | undefined {
  if (!hasHead(tag, head)) return undefined;
  const fields = new Map<string, string>();
  const rest = tag.slice(TAG_PREFIX.length + head.length);
  if (rest === "") return fields;
  for (const field of rest.slice(1).split(":")) {
    const eq = field.indexOf("=");
    const key = field.slice(0, eq);
    const text = field.slice(eq + 1);
    if (eq < 0 || !FIELD_KEY.test(key) || fields.has(key)) return undefined;
    const value = text.startsWith("!") ? decodeBase64Utf8(text.slice(1)) : RAW_VALUE.test(text) ? text : undefined;
    // A value written raw is never written encoded: only one spelling of each value counts.
    if (value === undefined || (text.startsWith("!") && RAW_VALUE.test(value))) return undefined;
    fields.set(key, value);
  }
  return fields;
}
