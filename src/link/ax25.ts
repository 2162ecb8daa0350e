/**
 * AX.25 UI frames (AX.25 v2.2 §3, §4.3.3.6), for carrying mesh frames over an amateur-radio TNC
 * with the operator's callsign in every frame (station identification).
 *
 *   dest (7) | source (7) | control 0x03 (UI) | PID 0xF0 (no layer 3) | information (the frame)
 *
 * An address is six ASCII characters (upper-case letters and digits, space-padded), each shifted
 * left one bit, then the SSID byte 0b C 1 1 S S S S E: C the command/response bit (set in the
 * destination of a command, clear in the source), SSID 0–15, E set on the last address.
 * Frames with digipeater addresses are accepted on receive (their addresses are skipped).
 */
export const AX25_UI = 0x03;
export const AX25_PID_NO_L3 = 0xf0;
export const AX25_UI_HEADER = 16;

export interface Ax25Address {
  callsign: string;
  ssid: number;
}

export class Ax25AddressError extends RangeError {
  override readonly name = 'Ax25AddressError';
}

/** Parses "N0CALL-7" (SSID optional, default 0). */
export function parseAx25Address(text: string): Ax25Address {
  const m = /^([A-Za-z0-9]{1,6})(?:-(\d{1,2}))?$/.exec(text.trim());
  const ssid = m?.[2] === undefined ? 0 : Number(m[2]);
  if (!m || ssid > 15) {
    throw new Ax25AddressError(`'${text}' is not an AX.25 address: 1–6 letters or digits, optionally -SSID with SSID 0–15`);
  }
  return { callsign: m[1]!.toUpperCase(), ssid };
}

export function formatAx25Address(a: Ax25Address): string {
  return a.ssid === 0 ? a.callsign : `${a.callsign}-${a.ssid}`;
}

function writeAddress(out: Uint8Array, offset: number, a: Ax25Address, command: boolean, last: boolean): void {
  const call = a.callsign.padEnd(6, ' ');
  for (let i = 0; i < 6; i++) out[offset + i] = call.charCodeAt(i) << 1;
  out[offset + 6] = (command ? 0x80 : 0) | 0x60 | (a.ssid << 1) | (last ? 1 : 0);
}

function readAddress(b: Uint8Array, offset: number): Ax25Address {
  let callsign = '';
  for (let i = 0; i < 6; i++) callsign += String.fromCharCode(b[offset + i]! >> 1);
  return { callsign: callsign.trimEnd(), ssid: (b[offset + 6]! >> 1) & 0x0f };
}

/** Wraps `info` in a UI command frame from `source` to `destination` (no FCS: the TNC adds it). */
export function encodeAx25Ui(destination: Ax25Address, source: Ax25Address, info: Uint8Array): Uint8Array {
  const out = new Uint8Array(AX25_UI_HEADER + info.length);
  writeAddress(out, 0, destination, true, false);
  writeAddress(out, 7, source, false, true);
  out[14] = AX25_UI;
  out[15] = AX25_PID_NO_L3;
  out.set(info, AX25_UI_HEADER);
  return out;
}

export type Ax25Decoded =
  | { ok: true; destination: Ax25Address; source: Ax25Address; info: Uint8Array }
  | { ok: false; reason: 'short' | 'not-ui' | 'other-protocol' };

/** Reads a UI frame with PID 0xF0; anything else is reported, never thrown. */
export function decodeAx25Ui(frame: Uint8Array): Ax25Decoded {
  // Addresses end at the first byte with the extension bit; at most 10 addresses.
  let end = -1;
  for (let i = 6; i < Math.min(frame.length, 70); i += 7) {
    if (frame[i]! & 1) {
      end = i + 1;
      break;
    }
  }
  if (end < 14 || frame.length < end + 2) return { ok: false, reason: 'short' };
  if ((frame[end]! & ~0x10) !== AX25_UI) return { ok: false, reason: 'not-ui' };
  if (frame[end + 1] !== AX25_PID_NO_L3) return { ok: false, reason: 'other-protocol' };
  return { ok: true, destination: readAddress(frame, 0), source: readAddress(frame, 7), info: frame.subarray(end + 2) };
}
