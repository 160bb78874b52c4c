/** What the doctor found: the findings, what every check gets to add them, the summary, the text. */
import type { FsInfo } from "../../storage/networkFs.ts";
import type { DoctorOptions } from "./options.ts";

export type Severity = "problem" | "warning" | "busy";

export interface Finding {
  /** Relative to the data folder. */
  path: string;
  severity: Severity;
  message: string;
  /** Set when --fix repaired it (the message then says what was done). */
  fixed?: boolean;
}

export interface DoctorReport {
  dataDir: string;
  fs: FsInfo;
  networkFs: boolean;
  users: number;
  databases: number;
  findings: Finding[];
}

/** What each check works with. */
export interface CheckContext {
  options: DoctorOptions;
  networkFs: boolean;
  /** Records a finding about `path` (absolute; the report keeps it relative to the data folder). */
  add: (path: string, severity: Severity, message: string, fixed?: boolean) => void;
  report: DoctorReport;
}

export function formatReport(report: DoctorReport, options: DoctorOptions): string[] {
  const lines: string[] = [];
  const fs = report.fs.fsType ? `${report.fs.fsType} on ${report.fs.mountPoint}` : "unknown";
  lines.push(
    `data folder ${report.dataDir} (filesystem ${fs}; ${report.networkFs ? "network filesystem: rollback journals only" : "local"})`,
  );
  lines.push(
    `checked ${report.users} users, ${report.databases} databases, access for ${options.uid}:${options.gid}${options.fix ? " (fixing)" : ""}`,
  );
  for (const f of report.findings) {
    const tag = f.fixed ? "fixed" : f.severity;
    lines.push(`${tag.padEnd(7)} ${f.path}: ${f.message}`);
  }
  const s = summarize(report);
  lines.push(
    s.remaining === 0 && s.busy === 0
      ? `ok: ${s.fixed} fixed, ${s.warnings} warnings`
      : `${s.remaining} problems remain, ${s.busy} users busy, ${s.fixed} fixed, ${s.warnings} warnings` +
          (options.fix || s.remaining === 0 ? "" : " (run with --fix to repair what is safe)"),
  );
  return lines;
}

export function summarize(report: DoctorReport): {
  remaining: number;
  fixed: number;
  busy: number;
  warnings: number;
} {
  const f = report.findings;
  return {
    remaining: f.filter((x) => x.severity === "problem" && !x.fixed).length,
    fixed: f.filter((x) => x.fixed).length,
    busy: f.filter((x) => x.severity === "busy").length,
    warnings: f.filter((x) => x.severity === "warning" && !x.fixed).length,
  };
}
