export { ZaichikClient } from './client.js';
export type {
  PublishOptions,
  PublishResult,
  ZaichikClientEvents,
  ZaichikConnectionState,
  ZaichikRedirect,
  ZaichikSubscriptionGap,
} from './client.js';
export { ZaichikSubscription } from './subscription.js';
export type { ReceiveOptions } from './subscription.js';
export { ZaichikMessage, TOMBSTONE_HEADER } from './message.js';
export { ZaichikHeader, ZaichikHeaders } from './headers.js';
export type { ZaichikHeadersInit } from './headers.js';
export {
  ErrorCode,
  errorCodeName,
  ZaichikError,
  ZaichikProtocolError,
  ZaichikConnectionError,
  ZaichikTimeoutError,
} from './errors.js';
export type { ErrorCodeName, ErrorCodeValue } from './errors.js';
export { reconnectDelay, validateTopicName } from './options.js';
export type {
  DurabilityName,
  ReconnectOptions,
  StartPosition,
  SubscribeOptions,
  TopicOptions,
  ZaichikClientOptions,
} from './options.js';
export type { WebSocketFactory, WebSocketLike } from './connection.js';
export {
  AckPolicy,
  CommitMode,
  Durability,
  FrameDecoder,
  FrameType,
  StartKind,
  decodeFrame,
  decodeFrameBody,
  encodeFrame,
  encodeFrames,
  frameTypeName,
} from './frames.js';
export type {
  AckFrame,
  CloseFrame,
  CommitFrame,
  CreateTopicFrame,
  ErrorFrame,
  Frame,
  HelloFrame,
  MessageFrame,
  NackFrame,
  PingFrame,
  PongFrame,
  PublishFrame,
  RedirectFrame,
  SubscribeFrame,
  UnsubscribeFrame,
} from './frames.js';
export {
  DEFAULT_MAX_FRAME_SIZE,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  isSupportedVersion,
  decodeHeaderBlock,
  encodeHeaderBlock,
  validateHeaderBlock,
} from './codec.js';
export type { HeaderEntry } from './codec.js';
