/** What a CLI command may touch; injected so tests run commands in-process. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
  exit: (code: number) => void;
  /** Registers signal handlers; returns a function that removes them. */
  onSignal: (signals: NodeJS.Signals[], handler: (signal: NodeJS.Signals) => void) => () => void;
}

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
};
