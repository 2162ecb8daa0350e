/**
 * meshgw as a library: `import { MeshgwClient } from 'meshgw'` talks to a running daemon through
 * its API (src/api/meshgw.proto). See README, "Talking to a running daemon".
 */
export {
  MeshgwClient,
  MeshgwStream,
  MeshgwListener,
  MeshgwDatagramSocket,
  MeshgwStrokkur,
  MeshgwApiError,
  MeshgwStreamError,
  MeshgwConnectError,
  AsyncQueue,
  DEFAULT_API_HOST,
  DEFAULT_API_PORT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_STREAM_HIGH_WATER_MARK,
  sidFromHex,
  sidToHex,
  toSid,
} from './api/client.js';
export { meshgwProtoPath } from './api/protocol.js';
export type {
  AirtimeWindow,
  ConnectOptions,
  DaemonStatus,
  Datagram,
  InterfaceStatus,
  MeshgwClientEvents,
  MeshgwEvent,
  MeshgwEventName,
  Neighbour,
  PingResult,
  Route,
  SidInput,
  StreamOptions,
  StrokkurMessage,
  StrokkurProgress,
  StrokkurResult,
  StrokkurSendOptions,
} from './api/client.js';
