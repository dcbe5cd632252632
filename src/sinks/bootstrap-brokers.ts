import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ISocketFactory } from 'kafkajs';

/** kafkajs's own keepalive delay for broker sockets. */
const KEEP_ALIVE_DELAY_MS = 60000;
const STAND_IN = /^sluice-ipv6-(\d+)\.invalid$/;

/**
 * kafkajs reads a bootstrap broker as `host:port` by splitting at ":", so "[::1]:9092" cannot
 * reach it. Such entries go to kafkajs under a stand-in host name, and the socket factory (kafkajs's
 * default one, plus this mapping) connects to the address behind it. Brokers the cluster advertises
 * in its metadata come as host and port already and pass through untouched.
 */
export function kafkajsBrokers(brokers: readonly string[]): { brokers: string[]; socketFactory?: ISocketFactory } {
  const addresses: string[] = [];
  const mapped = brokers.map((b) => {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(b);
    if (!m) return b;
    addresses.push(m[1]!);
    return `sluice-ipv6-${addresses.length - 1}.invalid:${m[2]}`;
  });
  if (addresses.length === 0) return { brokers: mapped };
  const socketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
    const standIn = STAND_IN.exec(host);
    const target = standIn ? addresses[Number(standIn[1])]! : host;
    const socket = ssl
      ? tlsConnect({ host: target, port, ...(isIP(target) ? {} : { servername: target }), ...ssl }, onConnect)
      : netConnect({ host: target, port }, onConnect);
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
    return socket;
  };
  return { brokers: mapped, socketFactory };
}
