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
  if (!KEY.test(key) || !BASE64URL.test(encoded) || encoded.length % 4 === 1) return undefined;
  const bytes = Buffer.from(encoded, "base64url");
  // Strict: only the canonical encoding of valid UTF-8 counts as ours.
  if (bytes.toString("base64url") !== encoded) return undefined;
  let value: string;
  try {
    value = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  return { key, value };
}
