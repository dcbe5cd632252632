import { createRequire } from 'node:module';
import type { OpenOptions, SerialPortStream } from '@serialport/stream';

const require = createRequire(import.meta.url);

/** The serialport binding (hardware access); tests pass @serialport/binding-mock's MockBinding. */
export type SerialBinding = OpenOptions['binding'];

// Loaded on first use, not at start-up: serialport and its native binding cost ~1 MB of heap and
// several MB of RSS that a gateway without [[serial]] or Modbus RTU never needs.

/** The platform's serial binding (serialport's native one). */
export function defaultSerialBinding(): SerialBinding {
  return (require('serialport') as typeof import('serialport')).SerialPort.binding;
}

/** A port stream on `binding`, not opened yet. */
export function createSerialPortStream(options: OpenOptions): SerialPortStream {
  const { SerialPortStream: Stream } = require('@serialport/stream') as typeof import('@serialport/stream');
  return new Stream(options);
}
