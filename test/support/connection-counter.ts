/**
 * A TCP listener on 127.0.0.1 that only counts connections and hangs up: the registry a test must
 * prove Signet never contacts (any connection at all is the failure).
 */
import { createServer, type AddressInfo, type Server } from 'node:net';

/** A running counter. */
export interface ConnectionCounter {
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

export async function startConnectionCounter(): Promise<ConnectionCounter> {
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    port,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
