#!/usr/bin/env node
/**
 * The meshgw command line. Thin: parse, validate, call into the library.
 * Exit codes: 0 success, 1 runtime failure, 2 usage error (one line on stderr, no stack trace).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { UsageError, parseIntOption } from '../src/cli/usage-error.js';
import { decodeToJsonLines, parseDecodeFormat, readDecodeInput } from '../src/cli/decode.js';
import { encodeToHex, parseEncodeFormat, readEncodeInput } from '../src/cli/encode.js';
import { runModemEmulatorCommand, modemEmulatorOptions } from '../src/cli/modem-emulator.js';
import { airtimeOptions, runAirtimeCommand } from '../src/cli/airtime.js';
import { runGateway, runOptions } from '../src/cli/run.js';
import { initCommand } from '../src/cli/init.js';
import { idOptions, runIdCommand } from '../src/cli/id.js';
import { portsOptions, runPortsCommand } from '../src/cli/ports.js';
import { runSimCommand, simOptions } from '../src/cli/sim.js';
import { msgListenOptions, msgSendOptions, runMsgListenCommand, runMsgSendCommand } from '../src/cli/msg.js';
import { messiGenerateOptions, runMessiGenerateCommand } from '../src/cli/messi.js';
import { runNeighboursCommand, runRoutesCommand, runStatusCommand, stateOptions } from '../src/cli/state.js';
import { pingOptions, runPingCommand } from '../src/cli/ping.js';
import { catOptions, listenOptions, runCatCommand, runListenCommand } from '../src/cli/cat.js';
import { receiveOptions, runReceiveCommand, runSendCommand, sendOptions } from '../src/cli/transfer.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command('meshgw')
    .description('gateway for radio mesh networks: KISS/SLIP/LoRa modems, airtime pacing, mesh protocols')
    .version(pkg.version, '-V, --version', 'print the version and exit')
    .showSuggestionAfterError(true)
    // Program options (the daemon's) only before a subcommand, so `airtime --sf` stays airtime's.
    .enablePositionalOptions()
    .exitOverride();

  // The daemon is the program's own action: `meshgw --port /dev/ttyUSB0 --frequency ...`.
  runOptions(program).action(runGateway);

  program
    .command('decode')
    .description('decode a KISS or SLIP byte stream to one JSON line per frame, or an RFC 5444 packet to its JSON')
    .argument('<format>', 'kiss, slip or rfc5444')
    .argument('[input]', 'hex bytes, or - (the default) to read hex from stdin')
    .option('--raw', 'read raw bytes from stdin instead of hex text')
    .option('--max-frame <bytes>', 'largest frame accepted, in bytes', '2048')
    .action(async (format: string, input: string | undefined, opts: { raw?: boolean; maxFrame: string }) => {
      const fmt = parseDecodeFormat(format);
      const maxFrame = parseIntOption('--max-frame', opts.maxFrame, 1, 1 << 24);
      const bytes = await readDecodeInput(input, opts.raw === true);
      const result = decodeToJsonLines(fmt, bytes, maxFrame);
      for (const line of result.lines) process.stdout.write(line + '\n');
      if (result.malformed) process.exitCode = 1;
    });

  program
    .command('encode')
    .description('encode an RFC 5444 packet from its JSON model (as decode prints it) to hex')
    .argument('<format>', 'rfc5444')
    .argument('[input]', 'a JSON file, or - (the default) to read JSON from stdin')
    .action(async (format: string, input: string | undefined) => {
      const fmt = parseEncodeFormat(format);
      process.stdout.write(encodeToHex(fmt, await readEncodeInput(input)) + '\n');
    });

  idOptions(program.command('id').description("print this node's SID (its X25519 public key), creating the key on first use")).action(
    runIdCommand,
  );

  airtimeOptions(
    program.command('airtime').description('time on air of one frame (LoRa or AX.25), and the limits a region sets'),
  ).action(runAirtimeCommand);

  portsOptions(
    program.command('ports').description('list serial ports with their USB ids and a guess of the device behind each'),
  ).action(runPortsCommand);

  simOptions(
    program.command('sim').description('run a mesh scenario (nodes, radios, positions, traffic) in virtual time and print per-node figures'),
  ).action(runSimCommand);

  const msg = program
    .command('msg')
    .description('send and receive Strokkur messages (connectionless, FEC-protected, up to 4 MiB) over plain UDP');
  msgSendOptions(msg.command('send').description('send a file (or stdin) as one message to a listener')).action(runMsgSendCommand);
  msgListenOptions(
    msg.command('listen').description('print (and with --out store) every message received, one JSON line each, until SIGINT/SIGTERM'),
  ).action(runMsgListenCommand);

  const messi = program.command('messi').description('Messi apps: generate TypeScript client and server modules from a .proto');
  messiGenerateOptions(
    messi.command('generate').description('write <package>-messages.ts, -client.ts and -server.ts for a Messi .proto into --out'),
  ).action(runMessiGenerateCommand);

  stateOptions(program.command('status').description("a running daemon's node, version, uptime and interfaces (through its API)")).action(
    runStatusCommand,
  );
  stateOptions(
    program.command('neighbors').alias('neighbours').description("a running daemon's neighbours: link quality and when last heard"),
  ).action(runNeighboursCommand);
  stateOptions(program.command('routes').description("a running daemon's routes: next hop, hops, metric and path MTU")).action(
    runRoutesCommand,
  );
  pingOptions(program.command('ping').description("ping a node's echo service through a running daemon, like ping(8)")).action(
    runPingCommand,
  );
  catOptions(program.command('cat').description('netcat over MSP: stdin into a stream to SID:PORT, the stream out on stdout')).action(runCatCommand);
  listenOptions(program.command('listen').description('netcat over MSP: accept a stream on PORT, stdin into it, it out on stdout')).action(
    runListenCommand,
  );
  sendOptions(program.command('send').description('send a file over MSP to a node running `meshgw receive` (name, size, sha256 checked)')).action(
    runSendCommand,
  );
  receiveOptions(program.command('receive').description('receive one file over MSP into DIR (names sanitised, size capped, sha256 checked)')).action(
    runReceiveCommand,
  );

  modemEmulatorOptions(
    program
      .command('modem-emulator')
      .description('run a simulated LoRa modem (RNode command set) on a serial device or stdio'),
  ).action(runModemEmulatorCommand);

  initCommand(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its one-line message (or the help / version).
      const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
      process.exit(ok ? 0 : 2);
    }
    if (err instanceof UsageError) {
      process.stderr.write(`meshgw: ${err.message}\n`);
      process.exit(2);
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`meshgw: ${message}\n`);
    process.exit(1);
  }
}

await main(process.argv);
