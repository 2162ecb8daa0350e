/**
 * The limits one interface's pacer enforces, from the band's rules and the operator's own caps.
 *
 * - The region's duty cycle (EU868: per sub-band, over a sliding hour) becomes one budget.
 * - The operator's airtime cap, like an RNode's ST/LT airtime locks: a short window (default
 *   15 s) and a long one (default 1 h), each a percentage. The LoRa driver also sends the same
 *   percentages to the modem as ST_ALOCK / LT_ALOCK, so the modem enforces them too.
 * - The region's dwell limit (US915: 400 ms per transmission) refuses frames that are too long.
 */
import type { BandRules } from './airtime/regions.js';
import type { BudgetSpec } from './sliding-budget.js';

export interface AirtimeCap {
  /** Percent of the short window, 0 < p ≤ 100. */
  shortPercent?: number;
  shortWindowMs?: number;
  /** Percent of the long window, 0 < p ≤ 100. */
  longPercent?: number;
  longWindowMs?: number;
}

export const DEFAULT_SHORT_WINDOW_MS = 15_000;
export const DEFAULT_LONG_WINDOW_MS = 3_600_000;

export interface AirtimeLimits {
  budgets: BudgetSpec[];
  dwellMs?: number;
}

function checkPercent(name: string, p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`${name} must be a percentage in (0, 100], got ${p}`);
  return p;
}

export function airtimeLimits(rules: BandRules, cap: AirtimeCap = {}): AirtimeLimits {
  const budgets: BudgetSpec[] = [];
  if (rules.dutyCycle) {
    const where = rules.subBand ? ` ${rules.subBand.name} MHz` : '';
    budgets.push({ name: `${rules.region}${where} duty cycle`, windowMs: rules.dutyCycle.windowMs, fraction: rules.dutyCycle.fraction });
  }
  if (cap.shortPercent !== undefined) {
    budgets.push({
      name: 'airtime cap, short window',
      windowMs: cap.shortWindowMs ?? DEFAULT_SHORT_WINDOW_MS,
      fraction: checkPercent('short airtime cap', cap.shortPercent) / 100,
    });
  }
  if (cap.longPercent !== undefined) {
    budgets.push({
      name: 'airtime cap, long window',
      windowMs: cap.longWindowMs ?? DEFAULT_LONG_WINDOW_MS,
      fraction: checkPercent('long airtime cap', cap.longPercent) / 100,
    });
  }
  return rules.dwellMs === undefined ? { budgets } : { budgets, dwellMs: rules.dwellMs };
}
