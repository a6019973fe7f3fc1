/**
 * Writes the example workflows under examples/workflows/: each as a priorgraph document
 * (`<name>.json`, with editor positions) and in ComfyUI's API format (`<name>.api.json`). The ones
 * for real model families (folders a user exports with optimum / diffusers; not shipped) go to
 * examples/workflows/real/ (README "Bringing real models"; packages/nodes/test/real-examples.test.ts).
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

// ---------------------------------------------------------------------------------------------------
// Real model families (examples/workflows/real/). Each expects folders named as the user's exports
// (listed first in its description); nothing here is shipped, so they run where those folders are.

/** The folders an example expects, stated first in its description. */
const expects = (folders: string[], rest: string) => `Expects model folders: ${folders.join(', ')}. ${rest}`;

interface PairSpec {
  name: string;
  description: string;
  /** loaders and encoders (columns 0–1); must define cond, uncond and prior_uncond's inputs */
  front: Record<string, Spec>;
  cond: Inputs;
  uncond: Inputs;
  priorUncond: Inputs;
  /** the MODEL output the scheduler's config comes from */
  schedulerModel: ReturnType<typeof link>;
  scheduler: string;
  vae: ReturnType<typeof link>;
  cfg: number;
  size: number;
  titles: { cond: string; uncond: string; prior: string };
}

/** Standard CFG (the fine-tune's own unconditional branch) beside prior-swap CFG (the prior's), same
 *  seed, 30 steps, one image each at the model's native size, side by side. */
function realPair(p: PairSpec) {
  const sample = (g: string) => ({
    guider: link(g, 'GUIDER'),
    scheduler: link('scheduler', 'SCHEDULER'),
    seed: 42,
    steps: 30,
    denoise: 1,
    batch_size: 1,
    preview_every: 5,
    latent_image: link('latent', 'LATENT'),
  });
  return document(p.name, p.description, {
    ...p.front,
    cond: { type: 'Denoiser', inputs: p.cond, col: 2, row: 0, title: p.titles.cond },
    uncond: { type: 'Denoiser', inputs: p.uncond, col: 2, row: 1, title: p.titles.uncond },
    prior_uncond: { type: 'Denoiser', inputs: p.priorUncond, col: 2, row: 2, title: p.titles.prior },
    cfg: {
      type: 'CFGGuider',
      inputs: { positive: link('cond', 'DENOISER'), negative: link('uncond', 'DENOISER'), cfg: p.cfg, ...guidance },
      col: 3,
      row: 0,
      title: 'Standard CFG',
    },
    swap: {
      type: 'PriorSwapCFGGuider',
      inputs: { model: link('cond', 'DENOISER'), prior: link('prior_uncond', 'DENOISER'), cfg: p.cfg, ...guidance },
      col: 3,
      row: 2,
      title: 'Prior-swap CFG',
    },
    scheduler: {
      type: 'Scheduler',
      inputs: { scheduler: p.scheduler, use_karras_sigmas: false, eta: 0, config_json: '{}', model: p.schedulerModel },
      col: 3,
      row: 1,
    },
    latent: {
      type: 'EmptyLatentImage',
      inputs: { width: p.size, height: p.size, batch_size: 1, channels: 4 },
      col: 3,
      row: 3,
    },
    sample_cfg: { type: 'Sampler', inputs: sample('cfg'), col: 4, row: 0 },
    sample_swap: { type: 'Sampler', inputs: sample('swap'), col: 4, row: 2 },
    decode_cfg: { type: 'VAEDecode', inputs: { samples: link('sample_cfg', 'LATENT'), vae: p.vae }, col: 5, row: 0 },
    decode_swap: {
      type: 'VAEDecode',
      inputs: { samples: link('sample_swap', 'LATENT'), vae: p.vae },
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
    save: { type: 'SaveImage', inputs: { images: link('compare', 'IMAGE'), filename_prefix: p.name }, col: 6, row: 2 },
  });
}

const SD15_PROMPT = 'a watercolor painting of a lighthouse on a cliff at sunset';

/** 1. An SD 1.5 fine-tune with SD 2.1 as the prior: another text encoder (OpenCLIP ViT-H, 1024-wide,
 *  run on "" for the prior's own unconditional input), v-prediction (converted by the sampling loop)
 *  and another β schedule (matched by closest noise level). */
function sd15PriorSwapSd21() {
  return realPair({
    name: 'sd15-priorswap-sd21',
    description: expects(
      [
        'my-sd15-finetune (an SD 1.5 fine-tune, full export)',
        'stable-diffusion-2-1 (unet/, text_encoder/, tokenizer/, scheduler/)',
      ],
      'An SD 1.5 fine-tune at 512×512, DDIM 30 steps from its own scheduler config: standard CFG (its own ' +
        'unconditional branch) beside prior swap with SD 2.1 as the prior. SD 2.1 has its own text encoder ' +
        '(OpenCLIP), so it gets its own "" encoding; it predicts v, which the sampler converts, and its ' +
        'noise schedule is matched by closest noise level. Both share the SD VAE latent space (4 channels).',
    ),
    front: {
      load: {
        type: 'DiffusersLoader',
        inputs: { model_path: 'my-sd15-finetune' },
        col: 0,
        row: 0,
        title: 'SD 1.5 fine-tune',
      },
      prior: {
        type: 'UNetLoader',
        inputs: { unet_path: 'stable-diffusion-2-1' },
        col: 0,
        row: 2,
        title: 'SD 2.1 UNet (prior, v-prediction)',
      },
      prior_clip: {
        type: 'CLIPLoader',
        inputs: { clip_path: 'stable-diffusion-2-1' },
        col: 0,
        row: 3,
        title: 'SD 2.1 text encoder',
      },
      prompt: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: SD15_PROMPT }, col: 1, row: 0 },
      prior_empty: {
        type: 'CLIPTextEncode',
        inputs: { clip: link('prior_clip', 'CLIP'), text: '' },
        col: 1,
        row: 2,
        title: 'SD 2.1 on ""',
      },
    },
    cond: { model: link('load', 'MODEL'), conditioning: link('prompt', 'CONDITIONING') },
    uncond: { model: link('load', 'MODEL'), conditioning: link('prompt', 'EMPTY') },
    priorUncond: { model: link('prior', 'MODEL'), conditioning: link('prior_empty', 'EMPTY') },
    schedulerModel: link('load', 'MODEL'),
    scheduler: 'ddim',
    vae: link('load', 'VAE'),
    cfg: 7.5,
    size: 512,
    titles: { cond: 'Fine-tune, prompt', uncond: 'Fine-tune, ""', prior: 'SD 2.1, "" (prior)' },
  });
}

/** 2. InstructPix2Pix on your image, with SD 1.5 (which it was trained from) as the prior of the fully
 *  unconditional term of the two-condition guidance. */
function ip2pSdPrior() {
  const ip2p = (prior: boolean) => ({
    model: link('load', 'MODEL'),
    text: link('instruction', 'CONDITIONING'),
    empty: link('instruction', 'EMPTY'),
    image: link('source_latent', 'LATENT'),
    text_scale: 7.5,
    image_scale: 1.5,
    ...(prior ? { prior: link('prior_uncond', 'DENOISER') } : {}),
    guidance_rescale: 0,
  });
  const sample = (g: string) => ({
    guider: link(g, 'GUIDER'),
    scheduler: link('scheduler', 'SCHEDULER'),
    seed: 11,
    steps: 30,
    denoise: 1,
    batch_size: 1,
    preview_every: 5,
    latent_image: link('latent', 'LATENT'),
  });
  return document(
    'ip2p-sd-prior',
    expects(
      [
        'instruct-pix2pix (full export incl. vae_encoder/)',
        'stable-diffusion-v1-5 (unet/, text_encoder/, tokenizer/, scheduler/)',
      ],
      'Put a 512×512 PNG named source.png in the input folder. InstructPix2Pix edits it by the instruction ' +
        'with the two-condition guidance (text 7.5, image 1.5, Euler 30 steps): once with its own fully ' +
        'unconditional branch, once with SD 1.5 (the model it was fine-tuned from) as the prior of that term ' +
        '(SD 1.5 sees only the 4-channel x_t and its own "" encoding). The source latent is the VAE ' +
        "encoder's mean (diffusers takes the mode).",
    ),
    {
      load: {
        type: 'DiffusersLoader',
        inputs: { model_path: 'instruct-pix2pix' },
        col: 0,
        row: 0,
        title: 'InstructPix2Pix (8-ch)',
      },
      image: { type: 'LoadImage', inputs: { image: 'source.png' }, col: 0, row: 1, title: 'Source image (512×512)' },
      prior: {
        type: 'UNetLoader',
        inputs: { unet_path: 'stable-diffusion-v1-5' },
        col: 0,
        row: 2,
        title: 'SD 1.5 UNet (prior)',
      },
      prior_clip: {
        type: 'CLIPLoader',
        inputs: { clip_path: 'stable-diffusion-v1-5' },
        col: 0,
        row: 3,
        title: 'SD 1.5 text encoder',
      },
      instruction: {
        type: 'CLIPTextEncode',
        inputs: { clip: link('load', 'CLIP'), text: 'turn it into a watercolor painting' },
        col: 1,
        row: 0,
      },
      source_latent: {
        type: 'VAEEncode',
        inputs: { pixels: link('image', 'IMAGE'), vae: link('load', 'VAE') },
        col: 1,
        row: 1,
      },
      prior_empty: {
        type: 'CLIPTextEncode',
        inputs: { clip: link('prior_clip', 'CLIP'), text: '' },
        col: 1,
        row: 2,
        title: 'SD 1.5 on ""',
      },
      prior_uncond: {
        type: 'Denoiser',
        inputs: { model: link('prior', 'MODEL'), conditioning: link('prior_empty', 'EMPTY') },
        col: 2,
        row: 2,
        title: 'SD 1.5, "" (prior)',
      },
      ip2p: { type: 'InstructPix2PixGuider', inputs: ip2p(false), col: 3, row: 0, title: 'IP2P (own ∅,∅)' },
      ip2p_swap: {
        type: 'InstructPix2PixGuider',
        inputs: ip2p(true),
        col: 3,
        row: 2,
        title: 'IP2P (SD 1.5 prior for ∅,∅)',
      },
      scheduler: {
        type: 'Scheduler',
        inputs: {
          scheduler: 'euler',
          use_karras_sigmas: false,
          eta: 0,
          config_json: '{}',
          model: link('load', 'MODEL'),
        },
        col: 3,
        row: 1,
      },
      latent: {
        type: 'EmptyLatentImage',
        inputs: { width: 512, height: 512, batch_size: 1, channels: 4 },
        col: 3,
        row: 3,
        title: 'Size of the source image',
      },
      edit: { type: 'Sampler', inputs: sample('ip2p'), col: 4, row: 0 },
      edit_swap: { type: 'Sampler', inputs: sample('ip2p_swap'), col: 4, row: 2 },
      edit_pixels: {
        type: 'VAEDecode',
        inputs: { samples: link('edit', 'LATENT'), vae: link('load', 'VAE') },
        col: 5,
        row: 0,
      },
      edit_swap_pixels: {
        type: 'VAEDecode',
        inputs: { samples: link('edit_swap', 'LATENT'), vae: link('load', 'VAE') },
        col: 5,
        row: 2,
      },
      compare: {
        type: 'ImageCompare',
        inputs: {
          image_a: link('image', 'IMAGE'),
          label_a: 'SOURCE',
          image_b: link('edit_pixels', 'IMAGE'),
          label_b: 'IP2P',
          image_c: link('edit_swap_pixels', 'IMAGE'),
          label_c: 'IP2P + SD 1.5 PRIOR',
          label_d: '',
        },
        col: 6,
        row: 1,
      },
      save: {
        type: 'SaveImage',
        inputs: { images: link('compare', 'IMAGE'), filename_prefix: 'ip2p-sd-prior' },
        col: 6,
        row: 2,
      },
    },
  );
}

/** 3. A DiT fine-tune (ImageNet class labels) with the base DiT's null class as the prior. */
function ditImagenetPriorSwap() {
  const label = (model: string, null_class: boolean) => ({ class_id: 207, null_class, model: link(model, 'MODEL') });
  return realPair({
    name: 'dit-imagenet-priorswap',
    description: expects(
      [
        'my-dit-finetune (transformer/ and scheduler/ of a DiT fine-tune)',
        'DiT-XL-2-256 (full export: transformer/, vae_decoder/, scheduler/)',
      ],
      'A class-conditional DiT fine-tune at 256×256, DDIM 30 steps, class 207 (golden retriever): standard ' +
        "CFG against its own null class beside prior swap against the base DiT's null class (class id = " +
        "num_embeds_ada_norm from each transformer's config.json, 1000 for ImageNet). Learned σ: only the ε " +
        "half of the output is used. The base's VAE decodes both (a DiT fine-tune keeps the base's VAE).",
    ),
    front: {
      ft: {
        type: 'UNetLoader',
        inputs: { unet_path: 'my-dit-finetune' },
        col: 0,
        row: 0,
        title: 'DiT fine-tune',
      },
      base: {
        type: 'DiffusersLoader',
        inputs: { model_path: 'DiT-XL-2-256' },
        col: 0,
        row: 2,
        title: 'Base DiT-XL/2 256 (prior, VAE)',
      },
      label: { type: 'ClassLabelConditioning', inputs: label('ft', false), col: 1, row: 0, title: 'Class 207' },
      ft_null: {
        type: 'ClassLabelConditioning',
        inputs: label('ft', true),
        col: 1,
        row: 1,
        title: 'Fine-tune null class',
      },
      base_null: {
        type: 'ClassLabelConditioning',
        inputs: label('base', true),
        col: 1,
        row: 2,
        title: 'Base null class',
      },
    },
    cond: { model: link('ft', 'MODEL'), conditioning: link('label', 'CONDITIONING') },
    uncond: { model: link('ft', 'MODEL'), conditioning: link('ft_null', 'CONDITIONING') },
    priorUncond: { model: link('base', 'MODEL'), conditioning: link('base_null', 'CONDITIONING') },
    schedulerModel: link('ft', 'MODEL'),
    scheduler: 'ddim',
    vae: link('base', 'VAE'),
    cfg: 4,
    size: 256,
    titles: { cond: 'Fine-tune, class 207', uncond: 'Fine-tune, null class', prior: 'Base DiT, null class (prior)' },
  });
}

/** 4. PixArt-α as a cross-architecture prior for an SD 1.5 fine-tune. */
function sd15PixartPrior() {
  return realPair({
    name: 'sd15-pixart-prior',
    description: expects(
      [
        'my-sd15-finetune (an SD 1.5 fine-tune, full export)',
        'PixArt-XL-2-512x512 (transformer/, text_encoder/ (T5), tokenizer/ (tokenizer.json), scheduler/)',
      ],
      'Cross-architecture prior: an SD 1.5 fine-tune (UNet, CLIP) at 512×512, DDIM 30 steps, with PixArt-α ' +
        '(a DiT with T5 cross-attention) as the prior of its unconditional branch: PixArt gets its own T5 ' +
        'encoding of "" with the attention mask. The two share the SD VAE latent space (4 channels); PixArt ' +
        "predicts ε with learned σ (the ε half is used) on a linear β schedule, matched to SD's scaled-linear " +
        'one by closest noise level. The fine-tune drives the sampler, scheduler and VAE.',
    ),
    front: {
      load: {
        type: 'DiffusersLoader',
        inputs: { model_path: 'my-sd15-finetune' },
        col: 0,
        row: 0,
        title: 'SD 1.5 fine-tune',
      },
      prior: {
        type: 'UNetLoader',
        inputs: { unet_path: 'PixArt-XL-2-512x512' },
        col: 0,
        row: 2,
        title: 'PixArt-α transformer (prior)',
      },
      prior_t5: {
        type: 'CLIPLoader',
        inputs: { clip_path: 'PixArt-XL-2-512x512' },
        col: 0,
        row: 3,
        title: 'PixArt-α T5 encoder',
      },
      prompt: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: SD15_PROMPT }, col: 1, row: 0 },
      prior_empty: {
        type: 'T5TextEncode',
        inputs: { clip: link('prior_t5', 'CLIP'), text: '', max_length: 120 },
        col: 1,
        row: 2,
        title: 'T5 on "" (with mask)',
      },
    },
    cond: { model: link('load', 'MODEL'), conditioning: link('prompt', 'CONDITIONING') },
    uncond: { model: link('load', 'MODEL'), conditioning: link('prompt', 'EMPTY') },
    priorUncond: { model: link('prior', 'MODEL'), conditioning: link('prior_empty', 'EMPTY') },
    schedulerModel: link('load', 'MODEL'),
    scheduler: 'ddim',
    vae: link('load', 'VAE'),
    cfg: 7.5,
    size: 512,
    titles: { cond: 'Fine-tune, prompt', uncond: 'Fine-tune, ""', prior: 'PixArt-α, "" (prior)' },
  });
}

/** 5. An SDXL fine-tune with the SDXL base as the prior (both encoders, pooled embeds, time_ids). */
function sdxlPriorSwap() {
  return realPair({
    name: 'sdxl-priorswap',
    description: expects(
      [
        'my-sdxl-finetune (unet/ and scheduler/ of an SDXL fine-tune)',
        'stable-diffusion-xl-base-1.0 (full export: unet/, text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/, vae_decoder/, scheduler/)',
      ],
      "An SDXL fine-tune at 1024×1024, Euler 30 steps: standard CFG beside prior swap with the SDXL base's " +
        "unconditional branch. Both encoders of the base encode the prompt (an SDXL fine-tune keeps the base's " +
        'text encoders and VAE); the unconditional input is zeros with the same pooled shape and time_ids, ' +
        "as diffusers' force_zeros_for_empty_prompt.",
    ),
    front: {
      ft: { type: 'UNetLoader', inputs: { unet_path: 'my-sdxl-finetune' }, col: 0, row: 0, title: 'SDXL fine-tune' },
      base: {
        type: 'DiffusersLoader',
        inputs: { model_path: 'stable-diffusion-xl-base-1.0' },
        col: 0,
        row: 2,
        title: 'SDXL base (prior, CLIPs, VAE)',
      },
      prompt: {
        type: 'CLIPTextEncodeSDXL',
        inputs: {
          clip: link('base', 'CLIP'),
          text: 'a watercolor painting of a lighthouse on a cliff at sunset',
          text_2: '',
          width: 1024,
          height: 1024,
          crop_w: 0,
          crop_h: 0,
          target_width: 1024,
          target_height: 1024,
        },
        col: 1,
        row: 0,
      },
      zero: {
        type: 'ConditioningZeroOut',
        inputs: { conditioning: link('prompt', 'EMPTY') },
        col: 1,
        row: 1,
        title: 'Zeros (unconditional)',
      },
    },
    cond: { model: link('ft', 'MODEL'), conditioning: link('prompt', 'CONDITIONING') },
    uncond: { model: link('ft', 'MODEL'), conditioning: link('zero', 'CONDITIONING') },
    priorUncond: { model: link('base', 'MODEL'), conditioning: link('zero', 'CONDITIONING') },
    schedulerModel: link('ft', 'MODEL'),
    scheduler: 'euler',
    vae: link('base', 'VAE'),
    cfg: 5,
    size: 1024,
    titles: { cond: 'Fine-tune, prompt', uncond: 'Fine-tune, zeros', prior: 'SDXL base, zeros (prior)' },
  });
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
const realExamples: Array<[string, WorkflowDocument]> = [
  ['sd15-priorswap-sd21', sd15PriorSwapSd21()],
  ['ip2p-sd-prior', ip2pSdPrior()],
  ['dit-imagenet-priorswap', ditImagenetPriorSwap()],
  ['sd15-pixart-prior', sd15PixartPrior()],
  ['sdxl-priorswap', sdxlPriorSwap()],
];
mkdirSync(join(OUT, 'real'), { recursive: true });
for (const [name, doc] of [...examples, ...realExamples.map(([n, d]) => [`real/${n}`, d] as const)]) {
  writeFileSync(join(OUT, `${name}.json`), `${JSON.stringify(doc, null, 2)}\n`);
  writeFileSync(join(OUT, `${name}.api.json`), `${JSON.stringify(toComfyPrompt(doc, registry), null, 2)}\n`);
  process.stdout.write(`wrote examples/workflows/${name}.json and ${name}.api.json\n`);
}
process.exit(0);
