/**
 * Human output for `loam csi`: aligned key/value blocks, tables and binary-unit sizes.
 * Kept apart from the command so the formatting rules can be tested on their own.
 */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** 268435456n → "256 MiB"; 1610612736n → "1.5 GiB". Exact byte counts below 1 KiB. */
export function humanBytes(bytes: bigint | number): string {
  let value = typeof bytes === "bigint" ? bytes : BigInt(Math.trunc(bytes));
  const negative = value < 0n;
  if (negative) value = -value;
  let unit = 0;
  let divisor = 1n;
  while (unit < UNITS.length - 1 && value >= divisor * 1024n) {
    divisor *= 1024n;
    unit++;
  }
  // Two decimals, computed in integers so large sizes do not lose precision.
  const hundredths = (value * 100n + divisor / 2n) / divisor;
  const whole = hundredths / 100n;
  const fraction = (hundredths % 100n).toString().padStart(2, "0").replace(/0+$/, "");
  const text = fraction ? `${whole}.${fraction}` : `${whole}`;
  return `${negative ? "-" : ""}${text} ${UNITS[unit]}`;
}

/** "256 MiB (268435456 bytes)": the readable size and the exact number. */
export function sizeWithBytes(bytes: bigint): string {
  return bytes < 1024n ? `${bytes} B` : `${humanBytes(bytes)} (${bytes} bytes)`;
}

/** Key/value lines with the values aligned; rows whose value is undefined are left out. */
export function keyValues(rows: Array<[string, string | undefined]>): string {
  const shown = rows.filter((row): row is [string, string] => row[1] !== undefined);
  const width = Math.max(0, ...shown.map(([key]) => key.length));
  return shown.map(([key, value]) => `${`${key}:`.padEnd(width + 1)}  ${value}`).join("\n");
}

/** A table with a header row; columns are as wide as their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** `{a: "1", b: "2"}` → "a=1, b=2" (sorted), or "-" when empty. */
export function pairs(map: Readonly<Record<string, string>>): string {
  const keys = Object.keys(map).sort();
  return keys.length === 0 ? "-" : keys.map((k) => `${k}=${map[k]}`).join(", ");
}
