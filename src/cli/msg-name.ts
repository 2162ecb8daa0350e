/**
 * The file name that `meshgw msg send FILE` gives its message, so that `msg listen --out DIR`
 * can store it under that name. An application-level envelope inside the Strokkur message (the
 * Strokkur wire is unchanged; a receiver that does not know the envelope sees these bytes first):
 *
 *   "MGF1" (4 bytes) | name length N (1 byte, 1..255) | name (N bytes of UTF-8) | the file
 *
 * Names from the air are not trusted: `safeFileName` keeps the last path component's letters,
 * digits, `.`, `-` and `_` (others become `_`), refuses what is empty or all dots once cleaned,
 * never begins with a dot or a dash (no hidden files, no `..`, no option), and keeps at most 100 characters, the
 * extension with them.
 */
const MAGIC = Uint8Array.of(0x4d, 0x47, 0x46, 0x31); // "MGF1"
const MAX_NAME_BYTES = 255;
const MAX_SAFE_LENGTH = 100;

/** The envelope's length for `name` (what it adds to the message). */
export function namedOverhead(name: string): number {
  return MAGIC.length + 1 + Math.min(MAX_NAME_BYTES, Buffer.byteLength(name, 'utf8'));
}

/** `content` with `name` in front (a name over 255 UTF-8 bytes is cut at a character boundary). */
export function wrapNamed(name: string, content: Uint8Array): Uint8Array {
  let nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > MAX_NAME_BYTES) nameBytes = Buffer.from(new TextDecoder().decode(nameBytes.subarray(0, MAX_NAME_BYTES)).replace(/\uFFFD+$/, ''), 'utf8');
  if (nameBytes.length === 0) throw new RangeError('a message name is 1 to 255 bytes of UTF-8');
  const out = new Uint8Array(MAGIC.length + 1 + nameBytes.length + content.length);
  out.set(MAGIC, 0);
  out[MAGIC.length] = nameBytes.length;
  out.set(nameBytes, MAGIC.length + 1);
  out.set(content, MAGIC.length + 1 + nameBytes.length);
  return out;
}

/** The name and the file, or the message as it is (no name) when it carries no valid envelope. */
export function unwrapNamed(message: Uint8Array): { name?: string; content: Uint8Array } {
  const head = MAGIC.length + 1;
  if (message.length < head || !MAGIC.every((b, i) => message[i] === b)) return { content: message };
  const n = message[MAGIC.length]!;
  if (n === 0 || message.length < head + n) return { content: message };
  let name: string;
  try {
    name = new TextDecoder('utf-8', { fatal: true }).decode(message.subarray(head, head + n));
  } catch {
    return { content: message };
  }
  return { name, content: message.subarray(head + n) };
}

/** A name from elsewhere made safe as one file name in one directory, or undefined if nothing is left. */
export function safeFileName(name: string): string | undefined {
  const last = name.split(/[/\\]/).pop() ?? '';
  let safe = last.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[.-]+/, '').replace(/_{2,}/g, '_');
  if (safe.length > MAX_SAFE_LENGTH) {
    const dot = safe.lastIndexOf('.');
    const ext = dot > 0 && safe.length - dot <= 16 ? safe.slice(dot) : '';
    safe = safe.slice(0, MAX_SAFE_LENGTH - ext.length) + ext;
  }
  if (safe === '' || /^[._-]*$/.test(safe)) return undefined;
  return safe;
}
