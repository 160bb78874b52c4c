export function downgradeToSchema11(_db: unknown): void { throw new Error("not yet"); }
