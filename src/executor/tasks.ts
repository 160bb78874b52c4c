/**
 * Heavy work that needs none of a user's open state (decompressing, checking and converting an
 * uploaded collection; checking and staging a large media upload). It runs on a task worker
 * (taskPool.ts) instead of the user's pinned worker, so users sharing that worker are not kept
 * waiting.
 *
 * Each kind's code is loaded when a task of that kind first comes (or is announced, `preload`),
 * not when the thread starts: the collection conversion's modules take ~70 ms of CPU to load
 * (protobufjs and its schema), the media staging's ~40 ms, and a thread needs only one of them
 * for the burst it serves.
 */
import { dirname } from "node:path";
import type { ReadyBody, ReadySource } from "../sync/collection/readyDownload.ts";
import type { PreparedUpload, UploadInput } from "../sync/collection/upload.ts";
import type {
  MediaStagingPaths,
  MediaUploadInput,
  MediaUploadLimits,
  StagedMediaUpload,
} from "../sync/media/upload.ts";
import { asStorageError } from "../sync/storageErrors.ts";
import type { UnpackOutcome, UnpackTaskInput } from "./unpackOnTask.ts";

export type Task =
  | { kind: "unpackUpload"; input: UnpackTaskInput }
  | { kind: "prepareUpload"; input: UploadInput }
  | {
      kind: "stageMediaUpload";
      input: MediaUploadInput;
      paths: MediaStagingPaths;
      limits: MediaUploadLimits;
    }
  /** A full download made ahead after a full upload (sync/collection/readyDownload.ts). */
  | { kind: "makeReadyDownload"; input: ReadySource }
  /** One made from the upload as received, once that upload is installed. */
  | { kind: "publishReadyBody"; input: PublishReadyInput };

export interface PublishReadyInput {
  collection: string;
  body: ReadyBody;
  fingerprint: string;
}

export interface TaskResults {
  unpackUpload: UnpackOutcome;
  prepareUpload: PreparedUpload;
  stageMediaUpload: StagedMediaUpload;
  makeReadyDownload: boolean;
  publishReadyBody: undefined;
}

export type TaskResult<T extends Task> = TaskResults[T["kind"]];

const loaders = {
  unpackUpload: () => import("./unpackOnTask.ts"),
  prepareUpload: () => import("../sync/collection/prepareUpload.ts"),
  stageMediaUpload: () => import("../sync/media/upload.ts"),
  makeReadyDownload: () => import("../sync/collection/readyDownload.ts"),
  publishReadyBody: () => import("../sync/collection/readyDownload.ts"),
};

/** Loads the code of tasks of `kind` ahead of the first one. */
export async function preload(kind: Task["kind"]): Promise<void> {
  const code = await loaders[kind]();
  if ("warmUp" in code) code.warmUp();
}

export async function runTask(task: Task): Promise<unknown> {
  try {
    switch (task.kind) {
      case "unpackUpload":
        return await (await loaders.unpackUpload()).unpackFromPort(task.input);
      case "prepareUpload":
        return (await loaders.prepareUpload()).prepareUpload(task.input);
      case "stageMediaUpload": {
        const { stageMediaUpload } = await loaders.stageMediaUpload();
        return await stageMediaUpload(task.input, task.paths, task.limits);
      }
      case "makeReadyDownload":
        return await (await loaders.makeReadyDownload()).makeReadyDownload(task.input);
      case "publishReadyBody": {
        const { collection, body, fingerprint } = task.input;
        (await loaders.publishReadyBody()).publishReadyBody(collection, body, fingerprint);
        return undefined;
      }
    }
  } catch (err) {
    throw asStorageError(err, dirname(taskFile(task)));
  }
}

/** The file a task works on, for its errors. */
function taskFile(task: Task): string {
  switch (task.kind) {
    case "unpackUpload":
      return task.input.path;
    case "prepareUpload":
      return task.input.preparedPath;
    case "stageMediaUpload":
      return task.input.incomingPath;
    case "makeReadyDownload":
    case "publishReadyBody":
      return task.input.collection;
  }
}
