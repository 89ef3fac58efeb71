// The methods: one function per method over (engine, data, config) with TRL-style configs whose defaults are
// AlpacaFarm's, and the file-in/file-out jobs behind each `farm <method>` command.
export * from './common.ts';
export * from './sft.ts';
export * from './reward-model.ts';
export * from './best-of-n.ts';
export * from './expert-iteration.ts';
export * from './feedme.ts';
export * from './reward-conditioning.ts';
export * from './ppo.ts';
export * from './quark.ts';
export * from './dpo.ts';
export * from './checkpoint.ts';
export * from './run-folder.ts';
export * from './jobs.ts';
export * from './treebon.ts';
export * from './rlp.ts';
export * from './multiview-ib.ts';
