// Pipelines over the methods, feedback and evaluation: presets, the stage cache, `farm run` and `farm validate`.
export * from './presets.ts';
export * from './stages.ts';
export * from './pipeline.ts';
export * from './run.ts';
export * from './validate.ts';
