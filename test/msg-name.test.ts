/** The name envelope of `meshgw msg` (src/cli/msg-name.ts): round trip, refusal of what is not one, safe file names. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { safeFileName, unwrapNamed, wrapNamed } from '../src/cli/msg-name.js';

describe('msg name envelope', () => {
  it('round-trips any name and content; a message without the envelope comes back as it is', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 80 }), fc.uint8Array({ maxLength: 300 }), (name, content) => {
        const { name: got, content: back } = unwrapNamed(wrapNamed(name, content));
        expect(got).toBe(name);
        expect(Buffer.compare(Buffer.from(back), Buffer.from(content))).toBe(0);
      }),
    );
    const plain = Uint8Array.from(Buffer.from('hello, not an envelope'));
    expect(unwrapNamed(plain)).toEqual({ content: plain });
    // The magic, then a length past the end, a zero length, or invalid UTF-8: not an envelope.
    for (const bad of [Uint8Array.of(0x4d, 0x47, 0x46, 0x31, 9, 0x41), Uint8Array.of(0x4d, 0x47, 0x46, 0x31, 0, 1), Uint8Array.of(0x4d, 0x47, 0x46, 0x31, 1, 0xff, 1)]) {
      expect(unwrapNamed(bad)).toEqual({ content: bad });
    }
  });

  it('cuts a name over 255 bytes at a character boundary', () => {
    const long = 'é'.repeat(200); // 400 bytes of UTF-8
    const { name } = unwrapNamed(wrapNamed(long, Uint8Array.of(1)));
    expect(Buffer.byteLength(name!, 'utf8')).toBeLessThanOrEqual(255);
    expect(long.startsWith(name!)).toBe(true);
  });

  it('safe file names: one component, safe characters, no leading dot, at most 100 characters with the extension', () => {
    expect(safeFileName('photo.jpg')).toBe('photo.jpg');
    expect(safeFileName('../../etc/passwd')).toBe('passwd');
    expect(safeFileName('C:\\\\Users\\\\x\\\\report 2026.pdf')).toBe('report_2026.pdf');
    expect(safeFileName('.bashrc')).toBe('bashrc');
    expect(safeFileName('..')).toBeUndefined();
    expect(safeFileName('/')).toBeUndefined();
    expect(safeFileName('***')).toBeUndefined();
    const long = safeFileName(`${'a'.repeat(300)}.tar.gz`)!;
    expect(long).toHaveLength(100);
    expect(long.endsWith('.gz')).toBe(true);
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (name) => {
        const safe = safeFileName(name);
        if (safe === undefined) return;
        expect(safe).toMatch(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/);
      }),
    );
  });
});
