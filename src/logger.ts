/**
 * A tiny structured logger: one JSON object per line, `{ time, level, msg, ...fields }`, so that the
 * output can be grepped by a person and parsed by a log shipper alike. It is an object created by
 * `main` and passed down; nothing here is global, so tests can capture a logger's lines in isolation.
 */

/** Severity of a record, in increasing order. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Every level, least severe first; also the order used for filtering. */
export const logLevels: readonly LogLevel[] = Object.freeze(['debug', 'info', 'warn', 'error']);

/** Extra data of a record. `Error` values anywhere inside are serialised with name, message and stack. */
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
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level written (default `info`). */
  readonly level?: LogLevel;
  /** Destination of the lines (default `process.stdout`). */
  readonly sink?: LogSink;
  /** Fields repeated on every record. */
  readonly fields?: LogFields;
  /** Wall clock for the `time` field; tests pin it. */
  readonly now?: () => Date;
}

const severity: Readonly<Record<LogLevel, number>> = Object.freeze({ debug: 10, info: 20, warn: 30, error: 40 });

/** Creates a logger; see {@link LoggerOptions} for the defaults. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const sink = options.sink ?? process.stdout;
  const now = options.now ?? (() => new Date());
  return build(level, sink, now, options.fields ?? {});
}

function build(level: LogLevel, sink: LogSink, now: () => Date, bound: LogFields): Logger {
  const isEnabled = (wanted: LogLevel): boolean => severity[wanted] >= severity[level];
  const log = (at: LogLevel) => (msg: string, fields?: LogFields): void => {
    if (isEnabled(at)) sink.write(formatRecord(now(), at, msg, { ...bound, ...fields }) + '\n');
  };
  return Object.freeze({
    level,
    isEnabled,
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: (fields: LogFields) => build(level, sink, now, { ...bound, ...fields }),
  });
}

/**
 * Formats one record as a JSON line. `time`, `level` and `msg` come first and cannot be overridden
 * by a field of the same name, so that every line can be parsed the same way. Never throws: a
 * logger that throws turns a logged problem into a crash.
 */
export function formatRecord(time: Date, level: LogLevel, msg: string, fields: LogFields): string {
  const core = { time: time.toISOString(), level, msg };
  try {
    return JSON.stringify(Object.assign({ ...core }, fields, core), replacer);
  } catch (error) {
    // Circular structures are the usual culprit; keep the message and say why the fields are gone.
    const reason = error instanceof Error ? error.message : String(error);
    return JSON.stringify({ ...core, logError: `fields not serialisable: ${reason}` });
  }
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return serializeError(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
 * Turns an error into plain data: its own enumerable properties (such as `code` or `path`), then
 * name, message and stack, and its cause. `JSON.stringify` skips these otherwise, because an
 * error's name, message and stack are not enumerable, which would log `{}`.
 */
export function serializeError(error: Error): Record<string, unknown> {
  const plain: Record<string, unknown> = { ...error, name: error.name, message: error.message, stack: error.stack };
  if (error.cause !== undefined) plain.cause = error.cause;
  if (error instanceof AggregateError) plain.errors = error.errors;
  return plain;
}
