/**
 * Writes the example workflows under examples/workflows/: each as a priorgraph document
 * (`<name>.json`, with editor positions) and in ComfyUI's API format (`<name>.api.json`).
 *
 *   node --import tsx tools/examples/make-examples.ts
 *
 * The documents are data; this script only keeps them consistent (same ids, same layout rules).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry, toComfyPrompt, type WorkflowDocument } from '../../packages/core/src/index.ts';
import plugin from '../../packages/nodes/src/index.ts';

const OUT = fileURLToPath(new URL('../../examples/workflows/', import.meta.url));

type Inputs = Record<string, unknown>;
interface Spec {
  type: string;
  inputs: Inputs;
  col: number;
  row: number;
  title?: string;
}
const link = (node: string, output: string) => ({ node, output });

/** Lay nodes out on a grid: columns follow the data flow left to right. */
function document(name: string, description: string, specs: Record<string, Spec>): WorkflowDocument {
  const nodes: Record<string, unknown> = {};
  for (const [id, s] of Object.entries(specs)) {
    nodes[id] = {
      type: `priorgraph.${s.type}`,
      version: 1,
      ...(s.title ? { title: s.title } : {}),
      inputs: s.inputs,
      ui: { pos: [40 + s.col * 275, 40 + s.row * 190], size: [250, 150] },
    };
  }
  return { format: 'priorgraph', version: 1, nodes, meta: { name, description } } as unknown as WorkflowDocument;
}

const guidance = { guidance_rescale: 0, interval_sigma_lo: 0, interval_sigma_hi: 0 };
/** Every example samples 4 images in 30 DDIM steps with a preview every 5. */
const samplerInputs = (guider: string, seed: number) => ({
  guider: link(guider, 'GUIDER'),
  scheduler: link('scheduler', 'SCHEDULER'),
  seed,
  steps: 30,
  denoise: 1,
  batch_size: 4,
  preview_every: 5,
});

function textToImage(priorPath: string, name: string, description: string, priorTitle: string) {
  return document(name, description, {
    load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' }, col: 0, row: 0, title: 'Fine-tuned model' },
    prior: { type: 'UNetLoader', inputs: { unet_path: priorPath }, col: 0, row: 2, title: priorTitle },
    prompt: {
      type: 'CLIPTextEncode',
      inputs: { clip: link('load', 'CLIP'), text: 'a red circle on a light background' },
      col: 1,
      row: 0,
    },
    cond: {
      type: 'Denoiser',
      inputs: { model: link('load', 'MODEL'), conditioning: link('prompt', 'CONDITIONING') },
      col: 2,
      row: 0,
      title: 'Fine-tuned, conditional',
    },
    uncond: {
      type: 'Denoiser',
      inputs: { model: link('load', 'MODEL'), conditioning: link('prompt', 'EMPTY') },
      col: 2,
      row: 1,
      title: 'Fine-tuned, unconditional',
    },
    prior_uncond: {
      type: 'Denoiser',
      inputs: { model: link('prior', 'MODEL') },
      col: 2,
      row: 2,
      title: 'Prior, unconditional',
    },
    cfg: {
      type: 'CFGGuider',
      inputs: { positive: link('cond', 'DENOISER'), negative: link('uncond', 'DENOISER'), cfg: 5, ...guidance },
      col: 3,
      row: 0,
      title: 'Standard CFG',
    },
    swap: {
      type: 'PriorSwapCFGGuider',
      inputs: { model: link('cond', 'DENOISER'), prior: link('prior_uncond', 'DENOISER'), cfg: 5, ...guidance },
      col: 3,
      row: 2,
      title: 'Prior-swap CFG',
    },
    scheduler: {
      type: 'Scheduler',
      inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}', model: link('load', 'MODEL') },
      col: 3,
      row: 1,
    },
    sample_cfg: {
      type: 'Sampler',
      inputs: samplerInputs('cfg', 42),
      col: 4,
      row: 0,
    },
    sample_swap: {
      type: 'Sampler',
      inputs: samplerInputs('swap', 42),
      col: 4,
      row: 2,
    },
    decode_cfg: {
      type: 'VAEDecode',
      inputs: { samples: link('sample_cfg', 'LATENT'), vae: link('load', 'VAE') },
      col: 5,
      row: 0,
    },
    decode_swap: {
      type: 'VAEDecode',
      inputs: { samples: link('sample_swap', 'LATENT'), vae: link('load', 'VAE') },
      col: 5,
      row: 2,
    },
    compare: {
      type: 'ImageCompare',
      inputs: {
        image_a: link('decode_cfg', 'IMAGE'),
        label_a: 'CFG',
        image_b: link('decode_swap', 'IMAGE'),
        label_b: 'PRIOR SWAP',
        label_c: '',
        label_d: '',
      },
      col: 6,
      row: 1,
    },
    save: {
      type: 'SaveImage',
      inputs: { images: link('compare', 'IMAGE'), filename_prefix: name },
      col: 6,
      row: 2,
    },
  });
}

function editing() {
  return document(
    'edit-priorswap',
    'InstructPix2Pix-style editing: a source image made by the text-to-image model, edited by the ' +
      'instruction with the two-condition guidance, once with the editor’s own unconditional branch and once ' +
      'with the base model as the prior (only the fully unconditional term is swapped).',
    {
      load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' }, col: 0, row: 0, title: 'Text-to-image' },
      editor: { type: 'UNetLoader', inputs: { unet_path: 'shapes-edit' }, col: 0, row: 2, title: 'Editor (8-ch)' },
      base: { type: 'UNetLoader', inputs: { unet_path: 'shapes-base' }, col: 0, row: 3, title: 'Base prior' },
      source_prompt: {
        type: 'CLIPTextEncode',
        inputs: { clip: link('load', 'CLIP'), text: 'a green square on a light background' },
        col: 1,
        row: 0,
      },
      instruction: {
        type: 'CLIPTextEncode',
        inputs: { clip: link('load', 'CLIP'), text: 'make it blue' },
        col: 1,
        row: 2,
      },
      cond: {
        type: 'Denoiser',
        inputs: { model: link('load', 'MODEL'), conditioning: link('source_prompt', 'CONDITIONING') },
        col: 2,
        row: 0,
      },
      uncond: {
        type: 'Denoiser',
        inputs: { model: link('load', 'MODEL'), conditioning: link('source_prompt', 'EMPTY') },
        col: 2,
        row: 1,
      },
      base_uncond: { type: 'Denoiser', inputs: { model: link('base', 'MODEL') }, col: 2, row: 3 },
      source_guider: {
        type: 'CFGGuider',
        inputs: { positive: link('cond', 'DENOISER'), negative: link('uncond', 'DENOISER'), cfg: 4, ...guidance },
        col: 3,
        row: 0,
      },
      scheduler: {
        type: 'Scheduler',
        inputs: {
          scheduler: 'ddim',
          use_karras_sigmas: false,
          eta: 0,
          config_json: '{}',
          model: link('load', 'MODEL'),
        },
        col: 3,
        row: 1,
      },
      source: {
        type: 'Sampler',
        inputs: samplerInputs('source_guider', 7),
        col: 4,
        row: 0,
        title: 'Source images',
      },
      source_pixels: {
        type: 'VAEDecode',
        inputs: { samples: link('source', 'LATENT'), vae: link('load', 'VAE') },
        col: 5,
        row: 0,
      },
      source_latent: {
        type: 'VAEEncode',
        inputs: { pixels: link('source_pixels', 'IMAGE'), vae: link('load', 'VAE') },
        col: 5,
        row: 1,
      },
      ip2p: {
        type: 'InstructPix2PixGuider',
        inputs: {
          model: link('editor', 'MODEL'),
          text: link('instruction', 'CONDITIONING'),
          empty: link('instruction', 'EMPTY'),
          image: link('source_latent', 'LATENT'),
          text_scale: 7.5,
          image_scale: 1.5,
          guidance_rescale: 0,
        },
        col: 6,
        row: 1,
        title: 'IP2P guidance (own prior)',
      },
      ip2p_swap: {
        type: 'InstructPix2PixGuider',
        inputs: {
          model: link('editor', 'MODEL'),
          text: link('instruction', 'CONDITIONING'),
          empty: link('instruction', 'EMPTY'),
          image: link('source_latent', 'LATENT'),
          text_scale: 7.5,
          image_scale: 1.5,
          prior: link('base_uncond', 'DENOISER'),
          guidance_rescale: 0,
        },
        col: 6,
        row: 3,
        title: 'IP2P guidance (base prior)',
      },
      edit: {
        type: 'Sampler',
        inputs: samplerInputs('ip2p', 11),
        col: 7,
        row: 1,
      },
      edit_swap: {
        type: 'Sampler',
        inputs: samplerInputs('ip2p_swap', 11),
        col: 7,
        row: 3,
      },
      edit_pixels: {
        type: 'VAEDecode',
        inputs: { samples: link('edit', 'LATENT'), vae: link('load', 'VAE') },
        col: 8,
        row: 1,
      },
      edit_swap_pixels: {
        type: 'VAEDecode',
        inputs: { samples: link('edit_swap', 'LATENT'), vae: link('load', 'VAE') },
        col: 8,
        row: 3,
      },
      compare: {
        type: 'ImageCompare',
        inputs: {
          image_a: link('source_pixels', 'IMAGE'),
          label_a: 'SOURCE',
          image_b: link('edit_pixels', 'IMAGE'),
          label_b: 'IP2P',
          image_c: link('edit_swap_pixels', 'IMAGE'),
          label_c: 'IP2P + PRIOR',
          label_d: '',
        },
        col: 9,
        row: 2,
      },
      save: {
        type: 'SaveImage',
        inputs: { images: link('compare', 'IMAGE'), filename_prefix: 'edit-priorswap' },
        col: 10,
        row: 2,
      },
    },
  );
}

/** Class-conditional DiT (the paper's Table 3): the fine-tune's label with CFG from its own null class,
 *  beside prior swap with the BASE DiT's null class as the unconditional branch. The VAE is shared. */
function classConditional() {
  const label = (model: string, null_class: boolean, class_id: number) => ({
    class_id,
    null_class,
    model: link(model, 'MODEL'),
  });
  return document(
    'dit-class-priorswap',
    'Class-conditional DiT fine-tuned to a new label set (the colour, on the light pastel fine-tune domain): ' +
      "standard CFG with the fine-tune's own null class beside prior-swap CFG with the base DiT's null class " +
      '(the base was trained on the broad data with the 24 shape-colour classes), γ = 1.5 as in the paper, same seed.',
    {
      ft: {
        type: 'DiffusersLoader',
        inputs: { model_path: 'shapes-dit-class-ft' },
        col: 0,
        row: 0,
        title: 'Fine-tuned DiT (colour labels)',
      },
      base: {
        type: 'UNetLoader',
        inputs: { unet_path: 'shapes-dit-class-base' },
        col: 0,
        row: 2,
        title: 'Base DiT (shape×colour labels)',
      },
      vae: { type: 'VAELoader', inputs: { vae_path: 'shapes-t2i' }, col: 0, row: 3, title: 'Shared VAE' },
      label: { type: 'ClassLabelConditioning', inputs: label('ft', false, 2), col: 1, row: 0, title: 'Class 2 (blue)' },
      ft_null: {
        type: 'ClassLabelConditioning',
        inputs: label('ft', true, 0),
        col: 1,
        row: 1,
        title: 'Fine-tune null',
      },
      base_null: { type: 'ClassLabelConditioning', inputs: label('base', true, 0), col: 1, row: 2, title: 'Base null' },
      cond: {
        type: 'Denoiser',
        inputs: { model: link('ft', 'MODEL'), conditioning: link('label', 'CONDITIONING') },
        col: 2,
        row: 0,
        title: 'Fine-tuned, class',
      },
      uncond: {
        type: 'Denoiser',
        inputs: { model: link('ft', 'MODEL'), conditioning: link('ft_null', 'CONDITIONING') },
        col: 2,
        row: 1,
        title: 'Fine-tuned, null class',
      },
      prior_uncond: {
        type: 'Denoiser',
        inputs: { model: link('base', 'MODEL'), conditioning: link('base_null', 'CONDITIONING') },
        col: 2,
        row: 2,
        title: 'Base, null class',
      },
      cfg: {
        type: 'CFGGuider',
        inputs: { positive: link('cond', 'DENOISER'), negative: link('uncond', 'DENOISER'), cfg: 1.5, ...guidance },
        col: 3,
        row: 0,
        title: 'Standard CFG',
      },
      swap: {
        type: 'PriorSwapCFGGuider',
        inputs: { model: link('cond', 'DENOISER'), prior: link('prior_uncond', 'DENOISER'), cfg: 1.5, ...guidance },
        col: 3,
        row: 2,
        title: 'Prior-swap CFG',
      },
      scheduler: {
        type: 'Scheduler',
        inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}', model: link('ft', 'MODEL') },
        col: 3,
        row: 1,
      },
      sample_cfg: { type: 'Sampler', inputs: samplerInputs('cfg', 42), col: 4, row: 0 },
      sample_swap: { type: 'Sampler', inputs: samplerInputs('swap', 42), col: 4, row: 2 },
      decode_cfg: {
        type: 'VAEDecode',
        inputs: { samples: link('sample_cfg', 'LATENT'), vae: link('vae', 'VAE') },
        col: 5,
        row: 0,
      },
      decode_swap: {
        type: 'VAEDecode',
        inputs: { samples: link('sample_swap', 'LATENT'), vae: link('vae', 'VAE') },
        col: 5,
        row: 2,
      },
      compare: {
        type: 'ImageCompare',
        inputs: {
          image_a: link('decode_cfg', 'IMAGE'),
          label_a: 'CFG',
          image_b: link('decode_swap', 'IMAGE'),
          label_b: 'PRIOR SWAP',
          label_c: '',
          label_d: '',
        },
        col: 6,
        row: 1,
      },
      save: {
        type: 'SaveImage',
        inputs: { images: link('compare', 'IMAGE'), filename_prefix: 'dit-class-priorswap' },
        col: 6,
        row: 2,
      },
    },
  );
}

/** Image+text → video (DynamiCrafter-like) with the two-condition guider, standard beside prior swap (the
 *  fully unconditional term from the text-to-video base). The first frame is made in the graph by the
 *  text-to-image model (so the example runs anywhere); a LoadImage in its place conditions on your own image. */
function video() {
  const twoCondition = (prior: boolean) => ({
    model: link('i2v', 'MODEL'),
    text: link('motion', 'CONDITIONING'),
    empty: link('motion', 'EMPTY'),
    image: link('first_latent', 'LATENT'),
    text_scale: 7.5,
    image_scale: 1.5,
    ...(prior ? { prior: link('base_uncond', 'DENOISER') } : {}),
    guidance_rescale: 0,
  });
  const videoSampler = (guider: string) => ({
    guider: link(guider, 'GUIDER'),
    scheduler: link('video_scheduler', 'SCHEDULER'),
    seed: 21,
    steps: 50,
    denoise: 1,
    batch_size: 1,
    preview_every: 10,
    latent_image: link('frames', 'LATENT'),
  });
  const save = (images: string, prefix: string) => ({
    images: link(images, 'IMAGE'),
    filename_prefix: prefix,
    fps: 6,
    lossless: true,
    quality: 80,
    method: 'default',
  });
  return document(
    'video-i2v-priorswap',
    'Image + text → video with the DynamiCrafter-like model (8 frames): two-condition guidance (γ_T 7.5, ' +
      'γ_I 1.5, DDIM 50) with its own unconditional branch, beside prior swap, where only the fully ' +
      'unconditional term comes from the text-to-video base it was fine-tuned from. Same seed.',
    {
      load: {
        type: 'DiffusersLoader',
        inputs: { model_path: 'shapes-t2i' },
        col: 0,
        row: 0,
        title: 'Text-to-image (first frame, CLIP, VAE)',
      },
      i2v: {
        type: 'UNetLoader',
        inputs: { unet_path: 'shapes-video-i2v' },
        col: 0,
        row: 2,
        title: 'Image+text → video',
      },
      base: {
        type: 'UNetLoader',
        inputs: { unet_path: 'shapes-video-base' },
        col: 0,
        row: 3,
        title: 'Text → video base (prior)',
      },
      still_prompt: {
        type: 'CLIPTextEncode',
        inputs: { clip: link('load', 'CLIP'), text: 'a red circle on a light background' },
        col: 1,
        row: 0,
      },
      motion: {
        type: 'CLIPTextEncode',
        inputs: { clip: link('load', 'CLIP'), text: 'a red circle moving left' },
        col: 1,
        row: 2,
      },
      cond: {
        type: 'Denoiser',
        inputs: { model: link('load', 'MODEL'), conditioning: link('still_prompt', 'CONDITIONING') },
        col: 2,
        row: 0,
      },
      uncond: {
        type: 'Denoiser',
        inputs: { model: link('load', 'MODEL'), conditioning: link('still_prompt', 'EMPTY') },
        col: 2,
        row: 1,
      },
      base_uncond: {
        type: 'Denoiser',
        inputs: { model: link('base', 'MODEL'), conditioning: link('motion', 'EMPTY') },
        col: 2,
        row: 3,
      },
      still_guider: {
        type: 'CFGGuider',
        inputs: { positive: link('cond', 'DENOISER'), negative: link('uncond', 'DENOISER'), cfg: 4, ...guidance },
        col: 3,
        row: 0,
      },
      scheduler: {
        type: 'Scheduler',
        inputs: {
          scheduler: 'ddim',
          use_karras_sigmas: false,
          eta: 0,
          config_json: '{}',
          model: link('load', 'MODEL'),
        },
        col: 3,
        row: 1,
      },
      first: {
        type: 'Sampler',
        inputs: { ...samplerInputs('still_guider', 7), batch_size: 1 },
        col: 4,
        row: 0,
        title: 'First frame',
      },
      first_pixels: {
        type: 'VAEDecode',
        inputs: { samples: link('first', 'LATENT'), vae: link('load', 'VAE') },
        col: 5,
        row: 0,
      },
      first_latent: {
        type: 'VAEEncode',
        inputs: { pixels: link('first_pixels', 'IMAGE'), vae: link('load', 'VAE') },
        col: 6,
        row: 0,
      },
      two_condition: {
        type: 'InstructPix2PixGuider',
        inputs: twoCondition(false),
        col: 7,
        row: 1,
        title: 'Two conditions (own ∅)',
      },
      two_condition_swap: {
        type: 'InstructPix2PixGuider',
        inputs: twoCondition(true),
        col: 7,
        row: 3,
        title: 'Two conditions (T2V base ∅)',
      },
      video_scheduler: {
        type: 'Scheduler',
        inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}', model: link('i2v', 'MODEL') },
        col: 6,
        row: 2,
      },
      frames: {
        type: 'EmptyVideoLatent',
        inputs: { width: 64, height: 64, frames: 8, batch_size: 1, channels: 4 },
        col: 6,
        row: 4,
      },
      video: { type: 'Sampler', inputs: videoSampler('two_condition'), col: 8, row: 1 },
      video_swap: { type: 'Sampler', inputs: videoSampler('two_condition_swap'), col: 8, row: 3 },
      video_pixels: {
        type: 'VAEDecode',
        inputs: { samples: link('video', 'LATENT'), vae: link('load', 'VAE') },
        col: 9,
        row: 1,
      },
      video_swap_pixels: {
        type: 'VAEDecode',
        inputs: { samples: link('video_swap', 'LATENT'), vae: link('load', 'VAE') },
        col: 9,
        row: 3,
      },
      save: { type: 'SaveAnimatedWEBP', inputs: save('video_pixels', 'video-i2v'), col: 10, row: 1 },
      save_swap: {
        type: 'SaveAnimatedWEBP',
        inputs: save('video_swap_pixels', 'video-i2v-priorswap'),
        col: 10,
        row: 3,
      },
    },
  );
}

/** Guided by CFG (the model's own zero conditioning) beside prior swap (shapes-t2i with its null text):
 *  the tail shared by the image-conditioned examples. `cond` is the conditional Denoiser, `neg` the
 *  model's unconditional one; `col` the first free column. */
function cfgBesidePriorSwap(name: string, cfg: number, model: string, col: number, seed: number) {
  return {
    empty: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: '' }, col: col - 1, row: 3 },
    prior_uncond: {
      type: 'Denoiser',
      inputs: { model: link('load', 'MODEL'), conditioning: link('empty', 'CONDITIONING') },
      col,
      row: 3,
      title: 'Prior: shapes-t2i, null text',
    },
    cfg: {
      type: 'CFGGuider',
      inputs: { positive: link('cond', 'DENOISER'), negative: link('neg', 'DENOISER'), cfg, ...guidance },
      col: col + 1,
      row: 0,
      title: 'Standard CFG',
    },
    swap: {
      type: 'PriorSwapCFGGuider',
      inputs: { model: link('cond', 'DENOISER'), prior: link('prior_uncond', 'DENOISER'), cfg, ...guidance },
      col: col + 1,
      row: 2,
      title: 'Prior-swap CFG',
    },
    scheduler: {
      type: 'Scheduler',
      inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}', model: link(model, 'MODEL') },
      col: col + 1,
      row: 1,
    },
    sample_cfg: { type: 'Sampler', inputs: samplerInputs('cfg', seed), col: col + 2, row: 0 },
    sample_swap: { type: 'Sampler', inputs: samplerInputs('swap', seed), col: col + 2, row: 2 },
    decode_cfg: {
      type: 'VAEDecode',
      inputs: { samples: link('sample_cfg', 'LATENT'), vae: link('load', 'VAE') },
      col: col + 3,
      row: 0,
    },
    decode_swap: {
      type: 'VAEDecode',
      inputs: { samples: link('sample_swap', 'LATENT'), vae: link('load', 'VAE') },
      col: col + 3,
      row: 2,
    },
    compare: {
      type: 'ImageCompare',
      inputs: {
        image_a: link('input', 'IMAGE'),
        label_a: 'INPUT',
        image_b: link('decode_cfg', 'IMAGE'),
        label_b: 'CFG',
        image_c: link('decode_swap', 'IMAGE'),
        label_c: 'PRIOR SWAP',
        label_d: '',
      },
      col: col + 4,
      row: 1,
    },
    save: {
      type: 'SaveImage',
      inputs: { images: link('compare', 'IMAGE'), filename_prefix: name },
      col: col + 4,
      row: 2,
    },
  };
}

/** Zero-1-to-3 style novel views of a render (examples/workflows/inputs/novel-views-input.png, copy it
 *  into the input folder): the camera turned 120° around the object. */
function novelViews() {
  return document(
    'novel-views-priorswap',
    'Zero-1-to-3 style novel views: the input view (a 3D render; copy examples/workflows/inputs/' +
      'novel-views-input.png into the input folder) is encoded by the image encoder and, with the relative ' +
      'camera pose, projected to the novel-view model’s context; its latent is concatenated to x_t. Standard CFG ' +
      '(zero context and zero latent) beside prior swap (shapes-t2i with its null text), same seed.',
    {
      load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' }, col: 0, row: 0, title: 'VAE + prior' },
      nv: {
        type: 'UNetLoader',
        inputs: { unet_path: 'shapes-novel-views' },
        col: 0,
        row: 2,
        title: 'Novel views (8-ch)',
      },
      clip_vision: {
        type: 'CLIPVisionLoader',
        inputs: { clip_name: 'shapes-image-encoder' },
        col: 0,
        row: 3,
      },
      input: { type: 'LoadImage', inputs: { image: 'novel-views-input.png' }, col: 0, row: 1, title: 'Input view' },
      encode: {
        type: 'CLIPVisionEncode',
        inputs: { clip_vision: link('clip_vision', 'CLIP_VISION'), image: link('input', 'IMAGE'), crop: 'center' },
        col: 1,
        row: 1,
      },
      pose: {
        type: 'Zero123Conditioning',
        inputs: {
          model: link('nv', 'MODEL'),
          clip_vision_output: link('encode', 'CLIP_VISION_OUTPUT'),
          init_image: link('input', 'IMAGE'),
          vae: link('load', 'VAE'),
          elevation: 0,
          azimuth: 120,
          radius: 0,
        },
        col: 2,
        row: 1,
      },
      cond: {
        type: 'Denoiser',
        inputs: {
          model: link('nv', 'MODEL'),
          conditioning: link('pose', 'positive'),
          image_latent: link('pose', 'image_latent'),
        },
        col: 3,
        row: 0,
        title: 'Pose + input view',
      },
      neg: {
        type: 'Denoiser',
        inputs: { model: link('nv', 'MODEL'), conditioning: link('pose', 'negative') },
        col: 3,
        row: 1,
        title: 'Unconditional (zeros)',
      },
      ...cfgBesidePriorSwap('novel-views-priorswap', 5, 'nv', 3, 42),
    },
  );
}

/** Versatile-Diffusion style variations of images the text-to-image model makes in the same graph. */
function imageVariation() {
  return document(
    'image-variation-priorswap',
    'Versatile-Diffusion style image variation: source images made by the text-to-image model are encoded by ' +
      'the image encoder; the variation model is conditioned on that embedding only (no text). Standard CFG (zero ' +
      'embedding) beside prior swap (shapes-t2i with its null text), same seed.',
    {
      load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' }, col: 0, row: 0, title: 'Text-to-image' },
      iv: {
        type: 'UNetLoader',
        inputs: { unet_path: 'shapes-image-variation' },
        col: 0,
        row: 2,
        title: 'Image variation',
      },
      clip_vision: { type: 'CLIPVisionLoader', inputs: { clip_name: 'shapes-image-encoder' }, col: 0, row: 3 },
      prompt: {
        type: 'CLIPTextEncode',
        inputs: { clip: link('load', 'CLIP'), text: 'a purple triangle on a light background' },
        col: 1,
        row: 0,
      },
      src_cond: {
        type: 'Denoiser',
        inputs: { model: link('load', 'MODEL'), conditioning: link('prompt', 'CONDITIONING') },
        col: 2,
        row: 0,
      },
      src_uncond: {
        type: 'Denoiser',
        inputs: { model: link('load', 'MODEL'), conditioning: link('prompt', 'EMPTY') },
        col: 2,
        row: 1,
      },
      src_guider: {
        type: 'CFGGuider',
        inputs: {
          positive: link('src_cond', 'DENOISER'),
          negative: link('src_uncond', 'DENOISER'),
          cfg: 3,
          ...guidance,
        },
        col: 3,
        row: 0,
      },
      src_sched: {
        type: 'Scheduler',
        inputs: {
          scheduler: 'ddim',
          use_karras_sigmas: false,
          eta: 0,
          config_json: '{}',
          model: link('load', 'MODEL'),
        },
        col: 3,
        row: 1,
      },
      source: {
        type: 'Sampler',
        inputs: { ...samplerInputs('src_guider', 7), scheduler: link('src_sched', 'SCHEDULER') },
        col: 4,
        row: 0,
        title: 'Source images',
      },
      input: {
        type: 'VAEDecode',
        inputs: { samples: link('source', 'LATENT'), vae: link('load', 'VAE') },
        col: 5,
        row: 0,
      },
      encode: {
        type: 'CLIPVisionEncode',
        inputs: { clip_vision: link('clip_vision', 'CLIP_VISION'), image: link('input', 'IMAGE'), crop: 'center' },
        col: 6,
        row: 0,
      },
      embed: {
        type: 'ImageEmbedConditioning',
        inputs: { model: link('iv', 'MODEL'), clip_vision_output: link('encode', 'CLIP_VISION_OUTPUT') },
        col: 7,
        row: 0,
      },
      cond: {
        type: 'Denoiser',
        inputs: { model: link('iv', 'MODEL'), conditioning: link('embed', 'positive') },
        col: 8,
        row: 0,
        title: 'Image embedding',
      },
      neg: {
        type: 'Denoiser',
        inputs: { model: link('iv', 'MODEL'), conditioning: link('embed', 'negative') },
        col: 8,
        row: 1,
        title: 'Unconditional (zeros)',
      },
      ...cfgBesidePriorSwap('image-variation-priorswap', 2, 'iv', 8, 42),
    },
  );
}

const registry = new Registry();
registry.register(plugin, '@priorgraph/nodes');
mkdirSync(OUT, { recursive: true });
const examples: Array<[string, WorkflowDocument]> = [
  [
    't2i-cfg-vs-priorswap',
    textToImage(
      'shapes-base',
      't2i-cfg-vs-priorswap',
      'Text-to-image with the fine-tuned model: standard CFG (its own unconditional branch) beside ' +
        'prior-swap CFG (the unconditional branch from the base model it was fine-tuned from), same seed.',
      'Base model (prior)',
    ),
  ],
  ['edit-priorswap', editing()],
  ['novel-views-priorswap', novelViews()],
  ['image-variation-priorswap', imageVariation()],
  [
    'cross-architecture-prior',
    textToImage(
      'shapes-dit',
      'cross-architecture-prior',
      'Prior swap with a prior of another architecture and schedule: a DiT-style transformer trained with a ' +
        'cosine schedule and v-prediction. Its timesteps are matched by closest noise level and its ' +
        'predictions converted before they are combined.',
      'DiT prior (other architecture)',
    ),
  ],
  ['dit-class-priorswap', classConditional()],
  ['video-i2v-priorswap', video()],
];
for (const [name, doc] of examples) {
  writeFileSync(join(OUT, `${name}.json`), `${JSON.stringify(doc, null, 2)}\n`);
  writeFileSync(join(OUT, `${name}.api.json`), `${JSON.stringify(toComfyPrompt(doc, registry), null, 2)}\n`);
  process.stdout.write(`wrote examples/workflows/${name}.json and ${name}.api.json\n`);
}
process.exit(0);
