/** Fuzz targets of the protocols: RFC 5444, mesh frames and the node, Strokkur, MSP. */
import type { FuzzTarget } from '../../harness.js';
import { meshFrameTarget, mspPacketTarget, rfc5444CodecTarget, strokkurChunkTarget } from './codecs.js';
import { strokkurReceiverTarget } from './strokkur-receiver.js';
import { meshNodeTarget } from './mesh-node.js';
import { rfc5444ReaderTarget } from './rfc5444-reader.js';
import { rfc5444CodecTarget as codec } from './codecs.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const protocolTargets: FuzzTarget<any>[] = [rfc5444CodecTarget, rfc5444ReaderTarget(codec.corpus), meshFrameTarget, meshNodeTarget, strokkurChunkTarget, strokkurReceiverTarget, mspPacketTarget];
