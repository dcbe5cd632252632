import { pino, type Logger, type LevelWithSilent } from 'pino';

/** JSON lines on stdout (for journald); one root logger per gateway, children per component. */
export function createLogger(level: LevelWithSilent, gatewayId: string, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino(
    {
      level,
      base: { gateway: gatewayId },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Belt and braces: secrets are Secret objects that print as [redacted], but never let a
      // password-like field through even if someone logs a raw options object.
      redact: { paths: ['password', '*.password', '*.*.password', 'sasl.password', 'key', '*.key'], censor: '[redacted]' },
    },
    destination as pino.DestinationStream,
  );
}
