// The pod exec port: a command run in a container of a pod, as `kubectl exec` does
// (runtime/pod-exec.ts implements it over the API server's remotecommand WebSocket).

export interface ExecRequest {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  /** argv; no shell unless the command is one. */
  readonly command: readonly string[];
  /** Default 120 s: the whole exec, connection included. */
  readonly timeoutMs?: number;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export type PodExec = (req: ExecRequest) => Promise<ExecResult>;
