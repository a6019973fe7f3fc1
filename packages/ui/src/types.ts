/** The priorgraph workflow document (docs/contracts.md §1), as the editor reads and writes it. */

export interface LinkRef {
  node: string;
  output: string;
}

export type InputValue = number | string | boolean | unknown[] | LinkRef | null;

export interface DocNodeUi {
  pos?: [number, number];
  size?: [number, number];
  color?: string;
  bgcolor?: string;
  collapsed?: boolean;
  /** Editor-only: what each seed widget does after a run ("fixed" | "increment" | "decrement" | "randomize"). */
  controls?: Record<string, SeedControl>;
}

export type SeedControl = 'fixed' | 'increment' | 'decrement' | 'randomize';

export interface DocNode {
  type: string;
  version?: number;
  title?: string;
  mode?: 'normal' | 'muted' | 'bypass';
  inputs: Record<string, InputValue>;
  ui?: DocNodeUi;
}

export interface DocGroup {
  title: string;
  bounding: [number, number, number, number];
  color?: string;
}

/** A reroute dot; the links through it are named by their target, `<node id>/<input name>`. */
export interface DocReroute {
  id: number;
  pos: [number, number];
  parentId?: number;
  links: string[];
}

export interface WorkflowDocument {
  format: 'priorgraph';
  version: number;
  nodes: Record<string, DocNode>;
  ui?: {
    groups?: DocGroup[];
    viewport?: { offset: [number, number]; scale: number };
    reroutes?: DocReroute[];
    /** the last reroute each rerouted link passes through, by the link's target */
    linkReroutes?: Record<string, number>;
  };
  meta?: Record<string, unknown>;
}

export function isLinkRef(v: unknown): v is LinkRef {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    typeof (v as LinkRef).node === 'string' &&
    typeof (v as LinkRef).output === 'string'
  );
}

export function isWorkflowDocument(v: unknown): v is WorkflowDocument {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as WorkflowDocument).format === 'priorgraph' &&
    typeof (v as WorkflowDocument).nodes === 'object' &&
    (v as WorkflowDocument).nodes !== null
  );
}
