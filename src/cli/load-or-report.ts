import { configErrorLines, loadConfigFile, type Config } from '../config/load.js';
import { readRegularFile } from '../config/tls-files.js';
import { SluiceError } from '../errors.js';
import type { CliIo } from './io.js';

/** Loads the config, or prints every problem as `dotted.path: message` and returns null. */
export function loadOrReport(path: string, io: CliIo): Config | null {
  try {
    return loadConfigFile(path, { env: io.env, readFile: readRegularFile });
  } catch (err) {
    if (err instanceof SluiceError && (err.code === 'SLUICE_CONFIG_INVALID' || err.code === 'SLUICE_CONFIG_UNREADABLE')) {
      const lines = configErrorLines(err);
      io.stderr.write(`sluice: invalid config ${path} (${lines.length} problem${lines.length > 1 ? 's' : ''}):\n`);
      for (const line of lines) io.stderr.write(`  ${line}\n`);
      return null;
    }
    throw err;
  }
}
