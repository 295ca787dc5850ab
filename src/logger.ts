/**
 * Structured logging over pino: one JSON object per line, `{ level, time, ...fields, msg }`, with
 * the level as its name and the time as ISO 8601, so that a person can grep the output and a log
 * shipper can parse it. When stdout is a terminal the lines are pretty-printed instead (pino-pretty).
 *
 * The `Logger` interface keeps the call sites' shape (`log.info(msg, fields)`); it is an object
 * created by `main` and passed down, so nothing here is global and tests capture a logger's lines
 * in isolation. Writes to stdout are asynchronous (a coordinator in a mass failure logs thousands
 * of decisions in one tick and must not wait on the terminal); `flush()` before exiting.
 */
import { pino, stdSerializers, stdTimeFunctions, type DestinationStream, type Logger as Pino } from 'pino';
import pretty from 'pino-pretty';

/** Severity of a record, in increasing order. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Every level, least severe first; also the order used for filtering. */
export const logLevels: readonly LogLevel[] = Object.freeze(['debug', 'info', 'warn', 'error']);

/** Extra data of a record. `Error` values under `error` or `err` are serialised with name, message and stack. */
export type LogFields = Readonly<Record<string, unknown>>;

/** Where lines go: `process.stdout` by default, an array-backed sink in tests. */
export interface LogSink {
  write(line: string): unknown;
}

/** A structured logger bound to a minimum level and a set of fields repeated on every record. */
export interface Logger {
  /** The minimum level written; records below it are dropped before any formatting work. */
  readonly level: LogLevel;
  /** Whether a record at `level` would be written; lets callers skip building costly fields. */
  isEnabled(level: LogLevel): boolean;
  /** Detail for debugging; off by default. */
  debug(msg: string, fields?: LogFields): void;
  /** Normal operation worth a line: start-up, failovers, shutdown. */
  info(msg: string, fields?: LogFields): void;
  /** Something is wrong but the service carries on (a failed write that will be retried). */
  warn(msg: string, fields?: LogFields): void;
  /** Something failed and needs an operator. */
  error(msg: string, fields?: LogFields): void;
  /** A logger writing to the same sink at the same level, adding `fields` to every record. */
  child(fields: LogFields): Logger;
  /** Resolves once whatever is buffered is written (await it before `process.exit`). */
  flush(): Promise<void>;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level written (default `info`). */
  readonly level?: LogLevel;
  /** Destination of the lines (default stdout: pretty on a terminal, JSON otherwise). */
  readonly sink?: LogSink;
  /** Fields repeated on every record. */
  readonly fields?: LogFields;
  /** Pretty-print even without a terminal (or JSON even on one); default: whether stdout is a TTY. */
  readonly pretty?: boolean;
}

/** Creates a logger; see {@link LoggerOptions} for the defaults. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.sink ? sinkStream(options.sink) : stdoutStream(options.pretty ?? process.stdout.isTTY === true);
  const base = pino({
    level: options.level ?? 'info',
    base: { ...options.fields },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { error: stdSerializers.err, err: stdSerializers.err },
  }, destination);
  return wrap(base, destination);
}

function wrap(log: Pino, destination: DestinationStream): Logger {
  const write = (at: LogLevel) => (msg: string, fields?: LogFields): void => {
    if (fields === undefined) log[at](msg);
    else log[at](fields, msg);
  };
  return Object.freeze({
    level: log.level as LogLevel,
    isEnabled: (level: LogLevel) => log.isLevelEnabled(level),
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    child: (fields: LogFields) => wrap(log.child(fields), destination),
    flush: () => flush(log, destination),
  });
}

function sinkStream(sink: LogSink): DestinationStream {
  return { write: (line: string) => { sink.write(line); } };
}

function stdoutStream(prettyPrint: boolean): DestinationStream {
  if (prettyPrint) return pretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  return pino.destination({ dest: 1, sync: false });
}

/** Waits for the asynchronous stdout writer, in order; bounded, since stdout may be gone. */
function flush(log: Pino, destination: DestinationStream): Promise<void> {
  if (!('flushSync' in destination)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 2000);
    log.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
