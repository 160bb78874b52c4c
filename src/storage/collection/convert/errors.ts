/** Failures of the schema 18 -> 11 conversion; all abort it without changing the file. */

export class UnsupportedSchemaVersionError extends Error {
  constructor(readonly version: number) {
    super(
      `cannot downgrade a collection with schema version ${version}: only 18 (or 11) is handled`,
    );
    this.name = "UnsupportedSchemaVersionError";
  }
}

export class InvalidDeckKindError extends Error {
  constructor(readonly deckId: bigint | null = null) {
    super(
      `invalid deck kind${deckId === null ? "" : ` for deck ${deckId}`}: neither normal nor filtered`,
    );
    this.name = "InvalidDeckKindError";
  }
}

export class InvalidConfigValueError extends Error {
  constructor(
    readonly key: string,
    cause: unknown,
  ) {
    super(`config value of ${JSON.stringify(key)} is not valid JSON`, { cause });
    this.name = "InvalidConfigValueError";
  }
}
