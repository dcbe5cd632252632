/** What a CLI command may touch; injected so tests run commands in-process. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
  exit: (code: number) => void;
  /** Registers signal handlers; returns a function that removes them. */
  onSignal: (signals: NodeJS.Signals[], handler: (signal: NodeJS.Signals) => void) => () => void;
  /** Registers the last-resort handler for errors nothing caught; returns a function that removes it. */
  onUncaught?: (handler: (err: unknown, kind: UncaughtKind) => void) => () => void;
}

export type UncaughtKind = 'uncaughtException' | 'unhandledRejection';

export const processIo: CliIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  exit: (code) => process.exit(code),
  onSignal: (signals, handler) => {
    for (const s of signals) process.on(s, handler);
    return () => {
      for (const s of signals) process.off(s, handler);
    };
  },
  onUncaught: (handler) => {
    const onException = (err: unknown): void => handler(err, 'uncaughtException');
    const onRejection = (err: unknown): void => handler(err, 'unhandledRejection');
    process.on('uncaughtException', onException);
    process.on('unhandledRejection', onRejection);
    return () => {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
    };
  },
};
