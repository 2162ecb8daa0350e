/**
 * `meshgw cat SID:PORT` and `meshgw listen PORT [--keep]`: netcat over MSP through a running
 * daemon. stdin goes into the stream, the stream comes out on stdout; EOF on stdin shuts down
 * our sending direction (the peer reads EOF) while we keep reading until the peer ends too.
 *
 * Exit 0 when both directions ended cleanly; 1 with one line on stderr when the stream failed
 * ("meshgw: stream reset by the peer", "meshgw: stream timed out: ...", a lost daemon
 * connection); 2 for a malformed SID:PORT or option.
 */
import type { Command } from 'commander';
import type { Duplex, Readable, Writable } from 'node:stream';
import { MeshgwApiError, MeshgwStreamError, type MeshgwClient, type MeshgwStream } from '../api/client.js';
import { apiOptions, withApi, type ApiOptions } from './api-connect.js';
import { resolveSid } from './ping.js';
import { parseSidPrefix, shortSid } from './sid.js';
import { UsageError, parseIntOption } from './usage-error.js';

export interface CatOptions extends ApiOptions {
  interactive?: boolean;
}

export interface ListenOptions extends CatOptions {
  keep?: boolean;
}

/** Parses `SID:PORT` (SID: full hex or a unique prefix of ≥ 8 digits; PORT 1..65535). */
export function parseSidPort(text: string): { sid: string; port: number } {
  const i = text.lastIndexOf(':');
  if (i < 0) throw new UsageError(`expected SID:PORT (e.g. 3fa9c0de:42), got '${text}'`);
  const sid = parseSidPrefix(text.slice(0, i));
  const port = parseIntOption('PORT', text.slice(i + 1), 1, 65_535);
  return { sid, port };
}

/** One line (without "meshgw: ") for a failed stream or request. */
export function streamFailureText(e: unknown): string {
  if (e instanceof MeshgwStreamError) {
    switch (e.code) {
      case 'reset':
        return 'stream reset by the peer';
      case 'timeout':
        return 'stream timed out: nothing heard from the peer within the idle timeout';
      case 'closed':
        return 'stream closed before all data was sent';
      default:
        return `stream closed by the daemon (${e.code}): ${e.message}`;
    }
  }
  if (e instanceof MeshgwApiError) return e.code === 'closed' ? e.message : `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

export function catOptions(cmd: Command): Command {
  return apiOptions(
    cmd
      .argument('<sid:port>', 'the node (its SID or a unique prefix of at least 8 hex digits) and the MSP port')
      .option('--interactive', 'interactive (latency-first) rather than bulk priority'),
  );
}

export function listenOptions(cmd: Command): Command {
  return apiOptions(
    cmd
      .argument('<port>', 'the MSP port to accept a stream on')
      .option('--keep', 'accept one stream after another (until Ctrl-C) instead of exiting after the first')
      .option('--interactive', 'interactive (latency-first) rather than bulk priority'),
  );
}

/** How long we wait, after both directions ended, for the daemon to finish the stream. */
export const CLOSE_LINGER_MS = 30_000;

/**
 * The daemon's end of `stream` (`MeshgwStream.whenClosed`): its error ("" after a clean end of both
 * directions), or undefined after `ms` or when the connection goes. A command waits for it before
 * it disconnects: the daemon resets the streams of a client that goes away, and our last FIN may
 * still be on the air after both directions ended here.
 */
export function daemonClosed(_client: MeshgwClient, stream: MeshgwStream): { wait(ms: number): Promise<string | undefined>; dispose(): void } {
  let timer: NodeJS.Timeout | undefined;
  const dispose = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  return {
    wait: async (ms) => {
      const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
      try {
        return await Promise.race([stream.whenClosed, late]);
      } finally {
        dispose();
      }
    },
    dispose,
  };
}

/** Runs the relay, then waits for the daemon to finish the stream; throws the one-line failure. */
async function relayAndClose(client: MeshgwClient, stream: MeshgwStream, stdin: StdinState): Promise<void> {
  const closed = daemonClosed(client, stream);
  try {
    await relay(stream, process.stdin, process.stdout, stdin);
  } catch (e) {
    closed.dispose();
    throw new Error(streamFailureText(e));
  }
  const error = await closed.wait(CLOSE_LINGER_MS);
  if (error !== undefined && error !== '' && error !== 'closed') throw new Error(streamFailureText(new MeshgwStreamError(error, error)));
}

/** State of our stdin, shared by the streams of `listen --keep`: it can be read only once. */
interface StdinState {
  ended: boolean;
}

/**
 * Pipes `input` into the stream (its EOF ends our direction) and the stream into `output`.
 * Resolves when both directions ended; rejects with the stream's error.
 */
export function relay(stream: Duplex, input: Readable, output: Writable, stdin: StdinState = { ended: false }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let readDone = false;
    let writeDone = false;
    let settled = false;
    const onInputEnd = (): void => {
      stdin.ended = true;
    };
    const onOutputError = (e: Error): void => finish(e);
    const finish = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      output.off('error', onOutputError);
      input.unpipe(stream);
      input.off('end', onInputEnd);
      stream.unpipe(output);
      if (err) {
        if (!stream.destroyed) stream.destroy();
        reject(err instanceof Error ? err : new Error(String(err)));
      } else resolve();
    };
    const check = (): void => {
      if (readDone && writeDone) finish();
    };
    stream.on('error', (e) => finish(e));
    // stdout gone (`| head -1`: EPIPE): nothing more can be delivered.
    output.once('error', onOutputError);
    stream.on('end', () => {
      readDone = true;
      check();
    });
    stream.on('finish', () => {
      writeDone = true;
      check();
    });
    stream.on('close', () => {
      // Closed without both ends seen (and without an error): the daemon ended it for us.
      if (!settled && !(readDone && writeDone)) {
        if (readDone) finish();
        else finish(new MeshgwStreamError('closed', 'the stream closed'));
      }
    });
    stream.pipe(output, { end: false });
    if (stdin.ended) stream.end();
    else {
      input.once('end', onInputEnd);
      input.pipe(stream);
    }
  });
}

function stopStdin(): void {
  // Nothing more is read: let the process exit even if stdin is a terminal still open.
  process.stdin.pause();
  process.stdin.unref?.();
  if (!process.stdin.isTTY) process.stdin.destroy();
}

export async function runCatCommand(target: string, opts: CatOptions): Promise<void> {
  const { sid: sidText, port } = parseSidPort(target); // usage errors before any connection
  try {
    await withApi(opts, async (client) => {
      const sid = await resolveSid(client, sidText);
      let stream: MeshgwStream;
      try {
        stream = await client.openStream(sid, port, { interactive: opts.interactive === true });
      } catch (e) {
        throw new Error(`cannot open a stream to ${shortSid(sid)}:${port}: ${streamFailureText(e)}`);
      }
      await relayAndClose(client, stream, { ended: false });
    });
  } finally {
    stopStdin();
  }
}

export async function runListenCommand(portText: string, opts: ListenOptions): Promise<void> {
  const port = parseIntOption('PORT', portText, 1, 65_535);
  const stdin: StdinState = { ended: false };
  try {
    await withApi(opts, async (client) => {
      let listener;
      try {
        listener = await client.listen(port, { interactive: opts.interactive === true });
      } catch (e) {
        throw new Error(`cannot listen on port ${port}: ${streamFailureText(e)}`);
      }
      process.stderr.write(`listening on port ${port}\n`);
      let stopped = false;
      let current: MeshgwStream | undefined;
      const onSignal = (): void => {
        stopped = true;
        current?.destroy();
        void listener.close();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        for await (const stream of listener) {
          process.stderr.write(`connection from ${shortSid(stream.remote.sid)}:${stream.remote.port}\n`);
          current = stream;
          try {
            await relayAndClose(client, stream, stdin);
          } catch (e) {
            if (!opts.keep) throw e;
            process.stderr.write(`meshgw: ${(e as Error).message}\n`);
            process.exitCode = 1;
          } finally {
            current = undefined;
          }
          if (!opts.keep || stopped) break;
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await listener.close();
      }
    });
  } finally {
    stopStdin();
  }
}
