/** Failures of the schema conversions; all abort them without changing the file. */

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

/**
 * The 11 -> 18 upgrade met a shape it does not reproduce exactly (serde's leniencies, names
 * Anki would rename, duplicates): the file is sent in schema 11 and the client upgrades it.
 */
export class NotUpgradableError extends Error {
  constructor(reason: string) {
    super(`not upgraded on the server: ${reason}`);
    this.name = "NotUpgradableError";
  }
}
