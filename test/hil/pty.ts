/**
 * Real pseudo-terminal pairs from socat, for tests that go through the real serialport binding.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PtyPair {
  /** The end the host (meshgw) opens. */
  host: string;
  /** The end the modem (emulator) opens. */
  modem: string;
  socat: ChildProcess;
  close(): void;
}

export function requireSocat(): void {
  const probe = spawnSync('socat', ['-V'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    throw new Error('socat is required for the serial HIL tests: install it with `apt-get install -y socat`');
  }
}

export async function openPtyPair(name: string): Promise<PtyPair> {
  requireSocat();
  const dir = mkdtempSync(join(tmpdir(), `meshgw-pty-${name}-`));
  const host = join(dir, 'host');
  const modem = join(dir, 'modem');
  const socat = spawn('socat', [`pty,raw,echo=0,link=${host}`, `pty,raw,echo=0,link=${modem}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  socat.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const deadline = Date.now() + 5_000;
  while (!(existsSync(host) && existsSync(modem))) {
    if (socat.exitCode !== null || Date.now() > deadline) {
      socat.kill();
      throw new Error(`socat did not create the pty pair ${host} <-> ${modem}: ${stderr.trim() || 'no output'}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { host, modem, socat, close: () => void socat.kill() };
}
