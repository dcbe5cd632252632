#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ExitCode } from './cli/exit-codes.js';
import { processIo, type CliIo } from './cli/io.js';
import { loadOrReport } from './cli/load-or-report.js';
import { journalCommand } from './cli/journal-commands.js';
import { runDaemon } from './cli/run.js';
import { statusCommand } from './cli/status.js';
import { configJsonSchema } from './config/schema.js';

const HELP = `sluice — MQTT to Kafka, through a durable journal

Usage:
  sluice run -c FILE [--log-level LEVEL]   run the gateway in the foreground
  sluice check-config -c FILE              validate a config file and exit
  sluice journal check -c FILE [JOURNAL]   check the journal (or a set-aside file) offline;
                                           exit 1 if damaged
  sluice journal salvage -c FILE SET_ASIDE copy what is readable from a set-aside journal
                                           into the live one (stop sluice first)
  sluice status [-c FILE | --url URL] [--json]
                                           ask the running daemon how it is doing
  sluice schema                            print the config's JSON Schema
  sluice --help | --version

Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 invalid config,
            4 status: no daemon answers, 5 status: degraded or not ready,
            70 internal error nothing caught (logged, clean stop),
            130/143 second SIGINT/SIGTERM during shutdown.

SIGHUP (systemctl reload sluice) re-reads the config file; an invalid one is refused.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[], io: CliIo): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        'log-level': { type: 'string' },
        json: { type: 'boolean' },
        url: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (err) {
    io.stderr.write(`sluice: ${(err as Error).message}\n\n${HELP}`);
    return io.exit(ExitCode.usage);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(HELP);
    return io.exit(ExitCode.ok);
  }
  if (values.version) {
    io.stdout.write(`sluice ${version()}\n`);
    return io.exit(ExitCode.ok);
  }
  const [command, ...rest] = positionals;
  if (command === 'journal') return journalCommand(rest[0], rest.slice(1), values.config, io);
  if (rest.length) {
    io.stderr.write(`sluice: unexpected argument ${rest[0]}\n`);
    return io.exit(ExitCode.usage);
  }
  const needConfig = (): string | null => {
    if (values.config) return values.config;
    io.stderr.write(`sluice ${command}: -c FILE is required\n`);
    io.exit(ExitCode.usage);
    return null;
  };
  switch (command) {
    case 'run': {
      const path = needConfig();
      if (!path) return;
      const level = values['log-level'];
      if (level && !['fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(level)) {
        io.stderr.write(`sluice: --log-level must be one of fatal, error, warn, info, debug, trace\n`);
        return io.exit(ExitCode.usage);
      }
      return runDaemon(path, { logLevel: level }, io);
    }
    case 'check-config': {
      const path = needConfig();
      if (!path) return;
      const config = loadOrReport(path, io);
      if (!config) return io.exit(ExitCode.config);
      io.stdout.write(`${path}: ok (gateway ${config.gateway.id}, ${config.mqtt.length} MQTT source(s), ${config.serial.length} serial port(s), ${config.sink.length} sink(s), journal ${config.journal.path})\n`);
      return io.exit(ExitCode.ok);
    }
    case 'status':
      return statusCommand({ config: values.config, url: values.url, json: values.json }, io);
    case 'schema':
      io.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return io.exit(ExitCode.ok);
    case undefined:
      io.stderr.write(HELP);
      return io.exit(ExitCode.usage);
    default:
      io.stderr.write(`sluice: unknown command "${command}"\n\n${HELP}`);
      return io.exit(ExitCode.usage);
  }
}

main(process.argv.slice(2), processIo).catch((err: unknown) => {
  process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(ExitCode.failure);
});
