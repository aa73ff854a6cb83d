/**
 * SQL errors are values: `execute` and `prepare` return them, never throw them. Each has a
 * stable `code` (clients switch on it), the PostgreSQL SQLSTATE where one exists, a message a
 * person understands and, for parse errors, the 1-based line and column in the original text.
 *
 * @example
 *   const r = prepare('SELEC 1');
 *   if (!r.ok) console.log(r.error.code, r.error.line, r.error.column); // 'SyntaxError' 1 1
 */
export const SQL_ERROR_STATES = {
  SyntaxError: '42601',
  UndefinedTable: '42P01',
  UndefinedColumn: '42703',
  UndefinedObject: '42704',
  UndefinedFunction: '42883',
  DuplicateTable: '42P07',
  DuplicateColumn: '42701',
  DuplicateObject: '42710',
  AmbiguousColumn: '42702',
  UniqueViolation: '23505',
  NotNullViolation: '23502',
  TypeMismatch: '42804',
  InvalidTextRepresentation: '22P02',
  InvalidDatetimeFormat: '22007',
  NumericOverflow: '22003',
  DivisionByZero: '22012',
  StringTooLong: '54000',
  Unsupported: '0A000',
  InvalidParameter: '08P01',
  UndefinedParameter: '42P02',
  GroupingError: '42803',
  InvalidTableDefinition: '42P16',
  InvalidColumnReference: '42P10',
  CardinalityViolation: '21000',
  DependentObjects: '2BP01',
  InvalidRowCount: '2201W',
  InvalidOffset: '2201X',
  TooManyRows: '54000',
  InvalidCatalog: 'XX001',
  InvalidAsOf: '22023',
} as const;

export type SqlErrorCode = keyof typeof SQL_ERROR_STATES;

export interface SqlError {
  readonly code: SqlErrorCode;
  readonly sqlState: string;
  readonly message: string;
  /** 1-based, for errors tied to a place in the SQL text. */
  readonly line?: number;
  readonly column?: number;
}

export function sqlError(code: SqlErrorCode, message: string, where?: { line: number; column: number }): SqlError {
  const base = { code, sqlState: SQL_ERROR_STATES[code], message };
  return where === undefined ? base : { ...base, line: where.line, column: where.column };
}

/** Internal control flow only: deep evaluation code raises a user error by throwing this, and
 * the public entry points (`prepare`, `execute`) catch it and return its `error` as a value. */
export class SqlFault extends Error {
  override readonly name = 'SqlFault';
  readonly error: SqlError;
  constructor(error: SqlError) {
    super(error.message);
    this.error = error;
  }
}

export function fail(code: SqlErrorCode, message: string): never {
  throw new SqlFault(sqlError(code, message));
}

export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: SqlError };

/** 1-based line and column of a 0-based offset in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(offset, 0), text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}
