/**
 * The load's note change, shared by the load generator (loadclient.ts) and its in-process
 * micro (micro/manyUsers.ts): a template note row (the wire's column order) with its first
 * field set to `text`, its mod and usn as the client sends them, and sfld/csum left for the
 * server to fill in.
 */
export function editedNoteRow(row: unknown[], text: string, mod: number, usn: number): unknown[] {
  const fields = (row[6] as string).split("\x1f");
  fields[0] = text;
  return [row[0], row[1], row[2], mod, usn, row[5], fields.join("\x1f"), "", "", row[9], row[10]];
}
