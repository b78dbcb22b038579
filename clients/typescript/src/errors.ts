/**
 * Error codes carried by an Error frame (docs/protocol.md, "Error codes"). Values are part of the wire format and never
 * change meaning. New codes may be added by a newer server: treat an unknown code like `Unknown`.
 */
export const ErrorCode = {
  /** A failure the server did not classify; the connection is closed. */
  Unknown: 0,
  /** The client's protocol version is not served. The connection is closed. */
  UnsupportedVersion: 1,
  /** A frame could not be parsed. The connection is closed. */
  MalformedFrame: 2,
  /** A frame's declared length exceeds the maximum frame size. The connection is closed. */
  FrameTooLarge: 3,
  /** A frame arrived that is not valid at this point (for example anything before Hello). */
  ProtocolViolation: 4,
  /** The topic name breaks the naming rules. */
  InvalidTopicName: 10,
  /** The topic does not exist and the server does not create topics automatically. */
  TopicNotFound: 11,
  /** CreateTopic named an existing topic with different settings. */
  TopicSettingsConflict: 12,
  /** The message key is longer than the server allows. */
  KeyTooLarge: 13,
  /** A field value is out of range. */
  InvalidArgument: 14,
  /** The connection already subscribes to that topic (or the durable name is held by another connection). */
  AlreadySubscribed: 15,
  /** The connection does not subscribe to that topic. */
  NotSubscribed: 16,
  /** The payload is larger than the server allows. */
  PayloadTooLarge: 17,
  /** A Publish's header block is larger than the server allows. */
  HeadersTooLarge: 19,
  /** The storage layer failed. Without a request id the connection is closed. */
  StorageFailure: 20,
  /** The server is stopping. Without a request id the connection is closed. */
  ServerShuttingDown: 21,
  /** A durable consumer's (or group's) stored position cannot be read. */
  ConsumerPositionLost: 22,
  /** Commits before a Ping could not be written to disk (sent right before its Pong). */
  CommitNotDurable: 23,
  /** The server serves its maximum number of connections. The connection is closed. */
  TooManyConnections: 30,
  /** The connection holds the maximum number of subscriptions. */
  TooManySubscriptions: 31,
  /** The server holds the maximum number of topics. */
  TooManyTopics: 32,
  /** Too many publishes read and not yet answered on this connection; this one was not stored. */
  TooManyPublishesInFlight: 33,
  /** Nothing arrived for the server's idle timeout (or no Hello in time). The connection is closed. */
  IdleTimeout: 34,
  /** The server requires a token and the Hello carried none or an unknown one. The connection is closed. */
  AuthenticationFailed: 40,
  /** The token does not allow this operation on this topic. */
  NotAuthorized: 41,
  /**
   * Cluster nodes only: no leader is known for the request's topic now (an election is running, or a majority of nodes
   * cannot be reached). The request was not carried out. The client keeps it and sends it again after a reconnect.
   */
  NoLeader: 50,
  /** Cluster nodes only: the request is not supported on a cluster yet (its text says which). */
  NotSupportedInCluster: 51,
  /**
   * Cluster nodes only, to a version 7 client (which is never sent Redirect): this node does not lead the request's
   * topic and did not carry it out; the text names the leader and its endpoint. This client speaks version 8 and gets a
   * Redirect instead, unless it talks to a server of version 7.
   */
  NotLeader: 52,
} as const;

/** The name of a known error code. */
export type ErrorCodeName = keyof typeof ErrorCode;

/** A numeric error code: one of {@link ErrorCode}'s values, or a code a newer server added. */
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName];

const names = new Map<number, ErrorCodeName>(
  (Object.keys(ErrorCode) as ErrorCodeName[]).map((name) => [ErrorCode[name], name]),
);

/** The name of a numeric error code, or `Unknown(<n>)` for a code this client does not know. */
export function errorCodeName(code: number): string {
  return names.get(code) ?? `Unknown(${code})`;
}

/**
 * An error with a protocol error code, like the .NET client's ZaichikServerException: the server answered with an Error
 * frame (a request was refused, or the connection was), or, for {@link ZaichikProtocolError}, bytes could not be
 * decoded. `code` is the numeric code, `codeName` its name (`"TopicNotFound"`); `serverMessage` the text without the code.
 */
export class ZaichikError extends Error {
  /** The numeric error code (see {@link ErrorCode}). */
  readonly code: number;
  /** The code's name, e.g. `"NotSubscribed"`; `Unknown(<n>)` for a code this client does not know. */
  readonly codeName: string;
  /** The explanation, without the code (for people and logs; do not parse it). */
  readonly serverMessage: string;

  constructor(code: number, serverMessage: string, options?: { cause?: unknown }) {
    super(`server error ${errorCodeName(code)}: ${serverMessage}`, options);
    this.name = 'ZaichikError';
    this.code = code;
    this.codeName = errorCodeName(code);
    this.serverMessage = serverMessage;
  }
}

/**
 * Bytes that are not a well-formed frame: `code` is {@link ErrorCode.MalformedFrame} or {@link ErrorCode.FrameTooLarge}.
 * Raised by the decoder; a connection whose server sends such bytes is closed with it.
 */
export class ZaichikProtocolError extends ZaichikError {
  constructor(code: number, message: string) {
    super(code, message);
    this.name = 'ZaichikProtocolError';
    this.message = `${errorCodeName(code)}: ${message}`;
  }
}

/** The connection could not be made, or was lost, or the client was closed. */
export class ZaichikConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ZaichikConnectionError';
  }
}

/** No answer within the client's request timeout (or not connected within it). */
export class ZaichikTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ZaichikTimeoutError';
  }
}
