/**
 * What every command that talks to a running daemon shares: `--api HOST:PORT` (default
 * 127.0.0.1:7840), `--api-token TOKEN` (or $MESHGW_API_TOKEN), `--json`, and connecting with one
 * clear line when no daemon answers (a runtime failure: exit 1).
 */
import type { Command } from 'commander';
import { DEFAULT_API_HOST, DEFAULT_API_PORT, MeshgwClient, MeshgwConnectError } from '../api/client.js';
import { parseHostPort } from './msg.js';
import { UsageError } from './usage-error.js';

export const DEFAULT_API = `${DEFAULT_API_HOST}:${DEFAULT_API_PORT}`;

export interface ApiOptions {
  api: string;
  apiToken?: string;
}

/** Adds `--api` and `--api-token` to a command. */
export function apiOptions(cmd: Command): Command {
  return cmd
    .option('--api <host:port>', "the daemon's API address", DEFAULT_API)
    .option('--api-token <token>', "the daemon's API token (needed beyond loopback; default $MESHGW_API_TOKEN)");
}

/** Parses `--api`; throws a UsageError naming the option. */
export function parseApiAddress(value: string): { host: string; port: number } {
  try {
    return parseHostPort(value);
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`--api ${e.message}`);
    throw e;
  }
}

/** Connects to the daemon the options name; a failure is one line (Error, exit 1). */
export async function connectApi(opts: ApiOptions): Promise<MeshgwClient> {
  const { host, port } = parseApiAddress(opts.api);
  const token = opts.apiToken ?? process.env['MESHGW_API_TOKEN'];
  try {
    return await MeshgwClient.connect({ host, port, ...(token !== undefined && token !== '' ? { token } : {}) });
  } catch (e) {
    if (e instanceof MeshgwConnectError) throw new Error(e.message);
    throw e;
  }
}

/** Connects, runs `body`, and closes the connection whatever happens. */
export async function withApi<T>(opts: ApiOptions, body: (client: MeshgwClient) => Promise<T>): Promise<T> {
  const client = await connectApi(opts);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}
