import { createRequire } from 'node:module';
import type { MockBindingInterface, MockPortBinding as MockPort } from '@serialport/binding-mock' with { 'resolution-mode': 'require' };

/*
 * @serialport/binding-mock's package.json "exports" hides its type declarations from ESM
 * resolution, so it is loaded through require, typed from its CommonJS entry.
 */
const require = createRequire(import.meta.url);

export const MockBinding = (require('@serialport/binding-mock') as { MockBinding: MockBindingInterface }).MockBinding;
export type MockPortBinding = MockPort;
