/**
 * Heavy work that needs none of a user's open state (decompressing, checking and converting an
 * uploaded collection; checking and staging a large media upload). It runs on a task worker
 * (taskPool.ts) instead of the user's pinned worker, so users sharing that worker are not kept
 * waiting.
 */
import { dirname } from "node:path";
import { type PreparedUpload, prepareUpload, type UploadInput } from "../sync/collection/upload.ts";
import {
  type MediaStagingPaths,
  type MediaUploadInput,
  type MediaUploadLimits,
  type StagedMediaUpload,
  stageMediaUpload,
} from "../sync/media/upload.ts";
import { asStorageError } from "../sync/storageErrors.ts";

export type Task =
  | { kind: "prepareUpload"; input: UploadInput }
  | {
      kind: "stageMediaUpload";
      input: MediaUploadInput;
      paths: MediaStagingPaths;
      limits: MediaUploadLimits;
    };

export interface TaskResults {
  prepareUpload: PreparedUpload;
  stageMediaUpload: StagedMediaUpload;
}

export type TaskResult<T extends Task> = TaskResults[T["kind"]];

export async function runTask(task: Task): Promise<unknown> {
  try {
    switch (task.kind) {
      case "prepareUpload":
        return prepareUpload(task.input);
      case "stageMediaUpload":
        return await stageMediaUpload(task.input, task.paths, task.limits);
    }
  } catch (err) {
    const file = task.kind === "prepareUpload" ? task.input.preparedPath : task.input.incomingPath;
    throw asStorageError(err, dirname(file));
  }
}
