/**
 * Encoders of the schema 18 blobs (src/storage/collection/convert/proto.ts), for building rows
 * in tests: the server itself only decodes them. They take partial plain objects (bigint
 * accepted for 64-bit fields).
 */
import type { Type } from "protobufjs";
import {
  type DeckCommon,
  type DeckConfigConfig,
  decodeDeckConfigFields,
  type FieldConfig,
  type FilteredDeck,
  messageTypes,
  type NormalDeck,
  type NotetypeConfig,
  type TemplateConfig,
} from "../../src/storage/collection/convert/proto.ts";

function encode(type: Type, value: object): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}

export const encodeNotetypeConfig = (v: Partial<NotetypeConfig>) =>
  encode(messageTypes.notetypeConfig, v);
export const encodeFieldConfig = (v: Partial<FieldConfig>) => encode(messageTypes.fieldConfig, v);
export const encodeTemplateConfig = (v: Partial<TemplateConfig>) =>
  encode(messageTypes.templateConfig, v);
export const encodeDeckCommon = (v: Partial<DeckCommon>) => encode(messageTypes.deckCommon, v);
export const encodeDeckKind = (
  v: { normal: Partial<NormalDeck> } | { filtered: Partial<FilteredDeck> },
) => encode(messageTypes.deckKind, v);
export const encodeDeckConfig = (v: Partial<DeckConfigConfig>) =>
  encode(messageTypes.deckConfig, v);

export const decodeDeckConfig = (b: Uint8Array) => decodeDeckConfigFields(b).value;
