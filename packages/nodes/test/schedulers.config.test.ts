/**
 * The scheduler config key policy: every key of each scheduler's diffusers class (read from
 * diffusers' sources by tools/reference/scheduler_config_keys.py) and of the public models'
 * scheduler_config.json files is honoured, inert, supported only at some values (others refused with
 * key and value), ignored as another class's key, metadata, or refused as unknown — never dropped.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Scheduler as SchedulerNode } from '../src/nodes/sampler.ts';
import {
  createScheduler,
  DIFFUSERS_CLASS,
  DIFFUSERS_SCHEDULER_KEYS,
  KEY_RULES,
  parseSchedulerConfigJson,
  readSchedulerConfig,
  SCHEDULER_DEFAULTS,
  SCHEDULER_NAMES,
  type SchedulerConfig,
  type SchedulerName,
  schedulerConfigSchema,
} from '../src/schedulers/index.ts';

const FIX = join(import.meta.dirname, 'fixtures', 'schedulers');
const diffusers = JSON.parse(readFileSync(join(FIX, 'diffusers_config_keys.json'), 'utf8')) as {
  classes: Record<string, Record<string, unknown>>;
};

/** a diffusers default as our config holds it */
function ourValue(v: unknown): unknown {
  if (v && typeof v === 'object' && 'expr' in v) {
    const e = (v as { expr: string }).expr;
    if (e === '-Infinity') return Number.NEGATIVE_INFINITY;
    throw new Error(`unexpected default ${e}`);
  }
  return v;
}

describe('key policy covers every key of each diffusers scheduler class', () => {
  it('every key any diffusers scheduler has is known (others are refused as unknown)', () => {
    const all = new Set(Object.values(diffusers.classes).flatMap((k) => Object.keys(k)));
    expect([...all].filter((k) => !DIFFUSERS_SCHEDULER_KEYS.has(k))).toEqual([]);
    expect([...DIFFUSERS_SCHEDULER_KEYS].filter((k) => !all.has(k))).toEqual([]);
    expect(() => readSchedulerConfig({ not_a_key: 1 })).toThrow('scheduler config key "not_a_key": unknown');
  });

  for (const name of SCHEDULER_NAMES) {
    it(`${name}: each key of ${DIFFUSERS_CLASS[name]} has a rule, and our default is diffusers' default`, () => {
      const keys = diffusers.classes[DIFFUSERS_CLASS[name]];
      expect(keys, DIFFUSERS_CLASS[name]).toBeDefined();
      const rules = KEY_RULES[name];
      for (const [key, def] of Object.entries(keys)) {
        const rule = rules[key as keyof SchedulerConfig];
        expect(rule, `${name}.${key}`).toBeDefined();
        const ours = (SCHEDULER_DEFAULTS[name] as unknown as Record<string, unknown>)[key];
        expect(ours, `${name}.${key} default`).toEqual(ourValue(def));
        if (rule && typeof rule === 'object' && 'only' in rule) {
          expect(rule.only[0], `${name}.${key}: the first supported value is diffusers' default`).toEqual(
            ourValue(def),
          );
        }
      }
      // rules for keys outside the class: the model keys every scheduler honours, and DDIM's η
      const extra = Object.keys(rules).filter((k) => !(k in keys));
      for (const k of extra) expect(['rescale_betas_zero_snr', 'eta', 'sigma_min', 'sigma_max']).toContain(k);
    });
  }
});

/** [key, value, expected]: 'ok' = accepted and held in the config; a RegExp = refused with that message */
type Row = [string, unknown, 'ok' | 'ignored' | RegExp];
const refused = (key: string, value: string) => new RegExp(`scheduler config key "${key}": ${value} is not supported`);

const TABLES: Record<SchedulerName, Row[]> = {
  ddim: [
    ['clip_sample', false, 'ok'],
    ['clip_sample_range', 2, 'ok'],
    ['set_alpha_to_one', false, 'ok'],
    ['rescale_betas_zero_snr', true, 'ok'],
    ['timestep_spacing', 'trailing', 'ok'],
    ['steps_offset', 1, 'ok'],
    ['eta', 0.5, 'ok'],
    ['thresholding', true, refused('thresholding', 'true')],
    ['dynamic_thresholding_ratio', 0.9, 'ok'],
    ['sample_max_value', 2, 'ok'],
    ['use_karras_sigmas', true, 'ignored'],
    ['skip_prk_steps', true, 'ignored'],
    ['solver_order', 3, 'ignored'],
  ],
  euler: [
    ['use_karras_sigmas', true, 'ok'],
    ['sigma_min', 0.1, 'ok'],
    ['sigma_max', 10, 'ok'],
    ['final_sigmas_type', 'sigma_min', 'ok'],
    ['interpolation_type', 'linear', 'ok'],
    ['interpolation_type', 'log_linear', refused('interpolation_type', '"log_linear"')],
    ['use_exponential_sigmas', true, refused('use_exponential_sigmas', 'true')],
    ['use_beta_sigmas', true, refused('use_beta_sigmas', 'true')],
    ['timestep_type', 'continuous', refused('timestep_type', '"continuous"')],
    ['prediction_type', 'sample', 'ok'],
    ['eta', 0.5, refused('eta', '0.5')],
    ['clip_sample', true, 'ignored'],
    ['set_alpha_to_one', false, 'ignored'],
  ],
  euler_ancestral: [
    ['timestep_spacing', 'leading', 'ok'],
    ['rescale_betas_zero_snr', true, 'ok'],
    ['prediction_type', 'v_prediction', 'ok'],
    ['prediction_type', 'sample', refused('prediction_type', '"sample"')],
    ['use_karras_sigmas', true, 'ignored'],
  ],
  dpmpp_2m: [
    ['solver_order', 1, 'ok'],
    ['solver_order', 3, refused('solver_order', '3')],
    ['algorithm_type', 'dpmsolver++', 'ok'],
    ['algorithm_type', 'sde-dpmsolver++', refused('algorithm_type', '"sde-dpmsolver\\+\\+"')],
    ['algorithm_type', 'dpmsolver', refused('algorithm_type', '"dpmsolver"')],
    ['solver_type', 'heun', 'ok'],
    ['lower_order_final', false, 'ok'],
    ['euler_at_final', true, 'ok'],
    ['use_karras_sigmas', true, 'ok'],
    ['use_exponential_sigmas', true, refused('use_exponential_sigmas', 'true')],
    ['use_beta_sigmas', true, refused('use_beta_sigmas', 'true')],
    ['use_lu_lambdas', true, refused('use_lu_lambdas', 'true')],
    ['use_flow_sigmas', true, refused('use_flow_sigmas', 'true')],
    ['use_dynamic_shifting', true, refused('use_dynamic_shifting', 'true')],
    ['flow_shift', 3, 'ok'],
    ['lambda_min_clipped', -5.1, 'ok'],
    ['lambda_min_clipped', Number.NEGATIVE_INFINITY, 'ok'],
    ['variance_type', 'learned_range', 'ok'],
    ['final_sigmas_type', 'sigma_min', 'ok'],
    ['thresholding', true, refused('thresholding', 'true')],
    ['interpolation_type', 'log_linear', 'ignored'],
  ],
  ddpm: [
    ['variance_type', 'fixed_large', 'ok'],
    ['variance_type', 'fixed_small_log', 'ok'],
    ['variance_type', 'learned_range', refused('variance_type', '"learned_range"')],
    ['variance_type', 'fixed_large_log', refused('variance_type', '"fixed_large_log"')],
    ['clip_sample', false, 'ok'],
    ['thresholding', true, refused('thresholding', 'true')],
    ['set_alpha_to_one', false, 'ignored'],
  ],
  lcm: [
    ['original_inference_steps', 25, 'ok'],
    ['timestep_scaling', 5, 'ok'],
    ['clip_sample', true, 'ok'],
    ['set_alpha_to_one', false, 'ok'],
    ['timestep_spacing', 'trailing', 'ok'],
    ['thresholding', true, refused('thresholding', 'true')],
    ['eta', 0.3, refused('eta', '0.3')],
  ],
  pndm: [
    ['skip_prk_steps', true, 'ok'],
    ['set_alpha_to_one', true, 'ok'],
    ['timestep_spacing', 'linspace', 'ok'],
    ['steps_offset', 1, 'ok'],
    ['prediction_type', 'v_prediction', 'ok'],
    ['prediction_type', 'sample', refused('prediction_type', '"sample"')],
    ['rescale_betas_zero_snr', true, 'ok'],
    ['clip_sample', true, 'ignored'],
  ],
};

describe('key policy tables', () => {
  for (const name of SCHEDULER_NAMES) {
    it(`${name}`, () => {
      for (const [key, value, want] of TABLES[name]) {
        const make = () => createScheduler(name, readSchedulerConfig({ [key]: value }));
        if (want instanceof RegExp) {
          expect(make, `${name} ${key}=${String(value)}`).toThrow(want);
          continue;
        }
        const s = make();
        const held = (s.config as unknown as Record<string, unknown>)[key];
        if (want === 'ok') expect(held, `${name} ${key}`).toEqual(value);
        // another class's key: diffusers' from_config does not pass it to this class either
        else expect(KEY_RULES[name][key as keyof SchedulerConfig], `${name} ${key}`).toBeUndefined();
      }
    });
  }

  it('refusals name the scheduler, its diffusers class, and what is supported', () => {
    expect(() => createScheduler('dpmpp_2m', { use_exponential_sigmas: true })).toThrow(
      'scheduler config key "use_exponential_sigmas": true is not supported by scheduler dpmpp_2m (DPMSolverMultistepScheduler; supported: false)',
    );
  });
});

describe('public models’ scheduler_config.json', () => {
  const dir = join(FIX, 'model_configs');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

  it('all of them are read (Python-style JSON too), every key accounted for', () => {
    expect(files.length).toBe(7);
    for (const f of files) {
      const json = parseSchedulerConfigJson(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
      const cfg = readSchedulerConfig(json);
      for (const k of Object.keys(json)) {
        if (k.startsWith('_')) continue;
        expect(DIFFUSERS_SCHEDULER_KEYS.has(k), `${f}: ${k}`).toBe(true);
      }
      // every key some scheduler here reads is held, with the published value; the rest are left out
      for (const [k, v] of Object.entries(json)) {
        if (Object.hasOwn(schedulerConfigSchema.shape, k))
          expect(cfg[k as keyof SchedulerConfig], `${f}: ${k}`).toEqual(v);
        else expect(k in cfg, `${f}: ${k}`).toBe(false);
      }
    }
  });

  it("each creates its own class's scheduler with the published values, and the other schedulers", () => {
    const own: Record<string, SchedulerName> = {
      'sd15.json': 'pndm',
      'sd21.json': 'ddim',
      'sd21-zero-snr.json': 'ddim',
      'sdxl.json': 'euler',
      'ip2p.json': 'euler_ancestral',
      'dit.json': 'ddim',
      'pixart-alpha.json': 'dpmpp_2m',
    };
    for (const f of files) {
      const json = parseSchedulerConfigJson(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
      const cfg = readSchedulerConfig(json);
      const s = createScheduler(own[f], cfg);
      for (const [k, v] of Object.entries(json)) {
        if (k.startsWith('_') || KEY_RULES[own[f]][k as keyof SchedulerConfig] === undefined) continue;
        expect((s.config as unknown as Record<string, unknown>)[k], `${f}: ${k}`).toEqual(v ?? null);
      }
      for (const name of SCHEDULER_NAMES) {
        const other = createScheduler(name, cfg);
        other.setTimesteps(name === 'lcm' ? 4 : 10);
        expect(other.timesteps.length, `${f} → ${name}`).toBeGreaterThan(0);
      }
    }
  });

  it('PixArt-α: lambda_min_clipped -Infinity read from Python-style JSON', () => {
    const json = parseSchedulerConfigJson(readFileSync(join(dir, 'pixart-alpha.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(json.lambda_min_clipped).toBe(Number.NEGATIVE_INFINITY);
    expect(createScheduler('dpmpp_2m', readSchedulerConfig(json)).config.lambda_min_clipped).toBe(
      Number.NEGATIVE_INFINITY,
    );
  });
});

describe('createScheduler keeps the configs it resolved', () => {
  it('the same config gives the same frozen config; one that is refused is refused every time; values JSON would merge stay apart', () => {
    const a = createScheduler('dpmpp_2m', { lambda_min_clipped: Number.NEGATIVE_INFINITY });
    const b = createScheduler('dpmpp_2m', { lambda_min_clipped: Number.NEGATIVE_INFINITY });
    expect(b.config).toBe(a.config);
    expect(Object.isFrozen(a.config)).toBe(true);
    expect(a.config.lambda_min_clipped).toBe(Number.NEGATIVE_INFINITY);
    // JSON writes -Infinity as null, and the tag of -Infinity is a string: each is read on its own
    const asNull = { lambda_min_clipped: null } as unknown as Partial<SchedulerConfig>;
    const asTag = { lambda_min_clipped: 'number:-Infinity' } as unknown as Partial<SchedulerConfig>;
    for (let i = 0; i < 2; i++) {
      expect(() => createScheduler('dpmpp_2m', asTag)).toThrow(/"lambda_min_clipped"/);
      expect(() => createScheduler('ddim', { beta_end: Number.NaN })).toThrow(/"beta_end".*\(got NaN\)/);
    }
    let nullRead: unknown;
    try {
      nullRead = createScheduler('dpmpp_2m', asNull).config.lambda_min_clipped;
    } catch (e) {
      nullRead = e;
    }
    expect(nullRead).not.toBe(Number.NEGATIVE_INFINITY);
  });
});

describe('parseSchedulerConfigJson', () => {
  it('reads bare NaN, Infinity, -Infinity outside strings and leaves strings alone', () => {
    const v = parseSchedulerConfigJson('{"a": -Infinity, "b": [NaN, Infinity, 1e3], "c": "NaN -Infinity \\" x"}') as {
      a: number;
      b: number[];
      c: string;
    };
    expect(v.a).toBe(Number.NEGATIVE_INFINITY);
    expect(Number.isNaN(v.b[0])).toBe(true);
    expect(v.b.slice(1)).toEqual([Number.POSITIVE_INFINITY, 1000]);
    expect(v.c).toBe('NaN -Infinity " x');
    expect(() => parseSchedulerConfigJson('{"a": nope}')).toThrow();
  });

  it('a non-finite value where a finite one is needed is refused, naming key and value', () => {
    expect(() => readSchedulerConfig(parseSchedulerConfigJson('{"beta_end": NaN}'))).toThrow(/"beta_end".*\(got NaN\)/);
    expect(() => readSchedulerConfig(parseSchedulerConfigJson('{"lambda_min_clipped": Infinity}'))).toThrow(
      /"lambda_min_clipped".*\(got Infinity\)/,
    );
  });
});

describe('the Scheduler node applies the chosen scheduler’s key rules when validating', () => {
  const host = {} as Parameters<NonNullable<typeof SchedulerNode.validate>>[1];
  const validate = async (inputs: Record<string, unknown>) =>
    (await SchedulerNode.validate?.({ use_karras_sigmas: false, eta: 0, config_json: '{}', ...inputs }, host)) ?? [];

  it('config_json in Python-style JSON; unsupported values and unknown keys name the key', async () => {
    expect(await validate({ scheduler: 'dpmpp_2m', config_json: '{"lambda_min_clipped": -Infinity}' })).toEqual([]);
    const [e] = await validate({ scheduler: 'dpmpp_2m', config_json: '{"use_lu_lambdas": true}' });
    expect(e.input).toBe('config_json');
    expect(e.message).toMatch(/"use_lu_lambdas": true is not supported by scheduler dpmpp_2m/);
    expect((await validate({ scheduler: 'ddim', config_json: '{"foo": 1}' }))[0].message).toMatch(/"foo": unknown/);
  });

  it('the node’s own options: η only for DDIM, Karras σ only where the class has it', async () => {
    expect(await validate({ scheduler: 'ddim', eta: 0.5 })).toEqual([]);
    expect((await validate({ scheduler: 'euler', eta: 0.5 }))[0].message).toMatch(/"eta": 0.5 is not supported/);
    expect(await validate({ scheduler: 'euler', use_karras_sigmas: true })).toEqual([]);
    const [k] = await validate({ scheduler: 'pndm', use_karras_sigmas: true });
    expect(k.input).toBe('use_karras_sigmas');
    expect(k.message).toMatch(/pndm has no Karras/);
  });
});
