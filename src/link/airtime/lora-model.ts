/**
 * The LoRa time-on-air formulas of lora.ts as an AirtimeModel, for one fixed set of radio
 * parameters (those the modem was configured with). The formulas and their sources are in lora.ts.
 */
import { loraAirtime, loraMaxPayloadWithin, validateLoraParams, type LoraParams } from './lora.js';
import type { AirtimeModel } from './model.js';

export class LoraAirtimeModel implements AirtimeModel {
  readonly kind = 'lora';
  /** The LoRa payload length field is one byte. */
  readonly maxBytes = 255;
  /** A frozen copy of the parameters, so a later change to the caller's object has no effect. */
  readonly params: Readonly<LoraParams>;

  /** Throws LoraParamError (a RangeError) for invalid parameters. */
  constructor(params: LoraParams) {
    const copy = { ...params };
    validateLoraParams(copy);
    this.params = Object.freeze(copy);
  }

  /** Exact to the microsecond (see lora.ts). Throws LoraParamError unless bytes is 0..255. */
  airtimeMs(bytes: number): number {
    return loraAirtime(this.params, bytes).airtimeMs;
  }

  maxBytesWithin(limitMs: number): number {
    return loraMaxPayloadWithin(this.params, limitMs);
  }
}
