/** Messi: framing (both versions), protobuf codec, keep-alive, TCP server and client. See SPEC.md. */
export * from './framing.js';
export * from './codec.js';
export * from './keepalive.js';
export * from './server.js';
export * from './client.js';
