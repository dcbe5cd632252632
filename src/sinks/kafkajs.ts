/**
 * kafkajs, as sluice's code imports it: after its producer's message grouping has been replaced
 * (kafkajs-linear-grouping.ts), which only works if that happens before kafkajs is first loaded,
 * and with its request queue's negative timer clamped (kafkajs-timer-clamp.ts).
 * Import values from kafkajs here, never from 'kafkajs' directly; type-only imports may.
 */
import './kafkajs-linear-grouping.js';
import { installKafkajsTimerClamp } from './kafkajs-timer-clamp.js';

installKafkajsTimerClamp();

export * from 'kafkajs';
export { default } from 'kafkajs';
