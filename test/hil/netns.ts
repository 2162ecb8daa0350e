/** Network namespaces for the HIL tests: the `ip` command and waiting for a veth's carrier. */
import { spawnSync } from 'node:child_process';

/** Runs `ip`; throws with its stderr (and what it needs) when it fails. */
export function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`\`ip ${args.join(' ')}\` failed: ${r.error?.message ?? r.stderr.trim()}`);
  }
}

/** Waits until `dev` in `ns` has carrier (LOWER_UP): Node lists an interface only once it does. */
export async function waitForCarrier(ns: string, dev: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const r = spawnSync('ip', ['-n', ns, '-o', 'link', 'show', 'dev', dev], { encoding: 'utf8' });
    if (/[<,]LOWER_UP[,>]/.test(r.stdout)) return;
    if (Date.now() > deadline) throw new Error(`${dev} in ${ns} has no carrier after 5 s: ${r.stdout.trim()} ${r.stderr.trim()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
