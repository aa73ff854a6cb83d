/**
 * Durations on the command line: a whole number and a unit, `s`, `m`, `h`, `d` or `w`
 * (`90s`, `15m`, `12h`, `30d`, `2w`), or several run together (`1d12h`).
 *
 * @example parseDurationSeconds('1d12h') === 129_600
 */
const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
const DURATION = /^(\d+[smhdw])+$/;
const PART = /(\d+)([smhdw])/g;

/** Seconds, or null when `text` is not a positive duration within safe integers. */
export function parseDurationSeconds(text: string): number | null {
  if (!DURATION.test(text)) return null;
  let seconds = 0;
  for (const [, amount, unit] of text.matchAll(PART)) seconds += Number(amount) * (UNIT_SECONDS[unit as string] as number);
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds : null;
}
