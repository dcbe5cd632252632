/**
 * MQTT.js, as sluice's code imports it: after `debug` has been made free for disabled namespaces
 * (quiet-debug.ts), which only works if that happens before MQTT.js is first loaded. Import values
 * from MQTT.js here, never from 'mqtt' directly; type-only imports may.
 */
import './quiet-debug.js';

export * from 'mqtt';
export { default } from 'mqtt';
