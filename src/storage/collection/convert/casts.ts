/**
 * Width conversions Anki applies when it prints native values into legacy JSON. They
 * are plain Rust `as` casts there, so out-of-range values wrap or saturate instead of
 * failing; reproducing them keeps our legacy output identical to a client's.
 */

/** u32 -> u16: keeps the low 16 bits. */
export function wrapU16(value: number): number {
  return value & 0xffff;
}

/** u32 -> u8: keeps the low 8 bits. */
export function wrapU8(value: number): number {
  return value & 0xff;
}

/** u32 -> i32: same bits, read as signed. */
export function reinterpretI32(value: number): number {
  return value | 0;
}

/** f32 -> unsigned integer: truncates toward zero, saturates, NaN becomes 0. */
export function saturatingUnsigned(value: number, max: number): number {
  if (Number.isNaN(value) || value <= 0) return 0;
  return Math.min(Math.trunc(value), max);
}

export const U16_MAX = 0xffff;
export const U32_MAX = 0xffffffff;
