/**
 * The daemon's log (src/gateway/log.ts): JSON lines with levels off a terminal, short human lines
 * on one, the level threshold, and repeats held back and summed up per window (virtual clock).
 */
import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { createDaemonLog } from '../src/gateway/log.js';

function capture(): { stream: PassThrough; lines: () => string[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (b: Buffer) => (text += b.toString()));
  return { stream, lines: () => text.split('\n').filter((l) => l !== '') };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('the daemon log', () => {
  it('writes JSON records with levels from the line prefixes, above the threshold only', async () => {
    const out = capture();
    const log = createDaemonLog({ stream: out.stream, pretty: false, level: 'info' });
    log.line('udp0: up (127.0.0.1:4269)');
    log.line('warning: udp0: cannot bind 127.0.0.1:4269');
    log.line('error: something broke');
    log.write('debug', 'not written at info');
    log.write('info', 'with fields', { interface: 'udp0', frames: 3 });
    log.close();
    await settle();
    const records = out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => [r.level, r.msg])).toEqual([
      [30, 'udp0: up (127.0.0.1:4269)'],
      [40, 'udp0: cannot bind 127.0.0.1:4269'],
      [50, 'something broke'],
      [30, 'with fields'],
    ]);
    expect(records[3]).toMatchObject({ interface: 'udp0', frames: 3 });
    expect(typeof records[0]!.time).toBe('number');
  });

  it('on a terminal: time, level and message on one short line', async () => {
    const out = capture();
    const log = createDaemonLog({ stream: out.stream, pretty: true });
    log.line('warning: lora0: modem sent garbage');
    log.close();
    await settle();
    expect(out.lines()).toHaveLength(1);
    expect(out.lines()[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  lora0: modem sent garbage$/);
  });

  it('holds back repeats of one line (digits aside) within a window and sums them up', async () => {
    const out = capture();
    let now = 0;
    const log = createDaemonLog({ stream: out.stream, pretty: false, repeatWindowMs: 10_000, now: () => now });
    for (let i = 0; i < 513; i++) log.line(`warning: lora0: bad frame ${i} from the modem`);
    log.line('udp0: up');
    now = 10_500;
    log.line('warning: lora0: bad frame 9999 from the modem'); // a new window: written, after the summary
    log.close();
    await settle();
    const msgs = out.lines().map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs).toEqual([
      'lora0: bad frame 0 from the modem',
      'udp0: up',
      '… 512 more in the last 11 s: lora0: bad frame 0 from the modem',
      'lora0: bad frame 9999 from the modem',
    ]);
  });
});
