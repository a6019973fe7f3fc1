/**
 * What a denoiser network expects, read from its session metadata (never hard-coded): input names,
 * timestep dtype (int64 / float32 / float16), fp16, channel counts (8 = InstructPix2Pix-style
 * x_t ‖ image latent), learned sigma (2C outputs), optional encoder_hidden_states and class_labels.
 */
import type { IoMeta, ModelInfo } from '../runtime/protocol.ts';

export interface DenoiserSignature {
  sampleName: string;
  timestepName: string;
  timestepType: string;
  encoderHiddenStatesName: string | null;
  /** [seq, dim] when fixed in the model */
  encoderHiddenStatesShape: [number | null, number | null] | null;
  classLabelsName: string | null;
  inChannels: number;
  outChannels: number | null;
  /** latent channels C: inChannels, or 4 for an 8-channel (IP2P-style) network */
  latentChannels: number;
  /** a video denoiser (rank-5 sample [B, C, T, h, w]) */
  video: boolean;
  /** T when the video model fixes it (null: any number of frames, or a still model) */
  frames: number | null;
  /** the most frames it takes when the axis is dynamic (null: no stated limit) */
  maxFrames: number | null;
  height: number | null;
  width: number | null;
  fp16: boolean;
  learnedSigma: boolean;
  /** 8-channel input: the image latent is concatenated */
  concatChannels: number;
  /** inputs a conditioning must supply by name (SDXL text_embeds/time_ids, encoder_attention_mask) */
  extraInputs: Array<{ name: string; shape: Array<number | null> }>;
}

/** the names a denoiser's latent input goes by */
export const SAMPLE = ['sample', 'hidden_states', 'x', 'latent_model_input', 'latents'];
const TIMESTEP = ['timestep', 'timesteps', 't'];
const EHS = ['encoder_hidden_states', 'context'];
const CLASS = ['class_labels', 'y', 'class_label'];
/** SDXL's added conditioning and a T5 encoder's attention mask: supplied by the conditioning */
const EXTRA = ['text_embeds', 'time_ids', 'encoder_attention_mask'];

const num = (d: number | string | undefined): number | null => (typeof d === 'number' && d > 0 ? d : null);
const find = (list: IoMeta[], names: string[]) => list.find((i) => names.includes(i.name));

/** Where the session metadata leaves the channel counts open (dynamic axes, as diffusers' convert
 *  script exports): what other evidence says (the model's config.json, its graph). */
export interface ChannelEvidence {
  inChannels?: (sampleName: string) => number | null;
  outChannels?: () => number | null;
  /** the most frames a video model with a dynamic frame axis takes (its config's priorgraph.frames.max) */
  maxFrames?: () => number | null;
}

export function denoiserSignature(info: ModelInfo, file: string, evidence: ChannelEvidence = {}): DenoiserSignature {
  const sample = find(info.inputs, SAMPLE);
  const ts = find(info.inputs, TIMESTEP);
  if (!sample || !ts) {
    throw new Error(
      `${file}: not a denoiser network: expected inputs "sample"/"hidden_states" and "timestep", found ${info.inputs.map((i) => `${i.name}:${i.type}`).join(', ')}`,
    );
  }
  const rank = sample.shape.length;
  if (rank !== 4 && rank !== 5) {
    throw new Error(
      `${file}: input "${sample.name}" has rank ${rank}, expected 4 ([b,c,h,w]) or 5 for a video denoiser ([b,c,t,h,w])`,
    );
  }
  const inC = num(sample.shape[1]) ?? evidence.inChannels?.(sample.name) ?? null;
  if (inC === null) {
    throw new Error(
      `${file}: input "${sample.name}" has no fixed channel count, and neither a config.json next to the model (in_channels) nor its graph says it`,
    );
  }
  const known = new Set([sample.name, ts.name]);
  const ehs = find(info.inputs, EHS);
  const cls = find(info.inputs, CLASS);
  if (ehs) known.add(ehs.name);
  if (cls) known.add(cls.name);
  const extra = info.inputs.filter((i) => EXTRA.includes(i.name));
  for (const e of extra) known.add(e.name);
  const unknown = info.inputs.filter((i) => !known.has(i.name));
  if (unknown.length) throw new Error(`${file}: unsupported denoiser inputs ${unknown.map((i) => i.name).join(', ')}`);
  const out = info.outputs[0];
  const outC = (out ? num(out.shape[1]) : null) ?? evidence.outChannels?.() ?? null;
  const latentC = inC === 8 && (outC === 4 || outC === null) ? 4 : inC;
  return {
    sampleName: sample.name,
    timestepName: ts.name,
    timestepType: ts.type,
    encoderHiddenStatesName: ehs?.name ?? null,
    encoderHiddenStatesShape: ehs ? [num(ehs.shape[1]), num(ehs.shape[2])] : null,
    classLabelsName: cls?.name ?? null,
    inChannels: inC,
    outChannels: outC,
    latentChannels: latentC,
    video: rank === 5,
    frames: rank === 5 ? num(sample.shape[2]) : null,
    maxFrames: rank === 5 ? (evidence.maxFrames?.() ?? null) : null,
    height: num(sample.shape[rank - 2]),
    width: num(sample.shape[rank - 1]),
    fp16: sample.type === 'float16',
    learnedSigma: outC === 2 * latentC,
    concatChannels: inC - latentC,
    extraInputs: extra.map((e) => ({ name: e.name, shape: e.shape.map(num) })),
  };
}

export function describeSignature(s: DenoiserSignature): string {
  const hw = s.height && s.width ? `${s.height}×${s.width}` : 'any size';
  const t = s.video ? `, video (${s.frames ?? (s.maxFrames ? `1 to ${s.maxFrames}` : 'any number of')} frames)` : '';
  return `${s.latentChannels}-channel latents, ${hw}${t}`;
}
