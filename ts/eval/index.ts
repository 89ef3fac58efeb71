// Evaluation: win-rates with standard errors, length control, leaderboards, ranking validation.
export * from './stats.ts';
export * from './preferences.ts';
export * from './winrate.ts';
export * from './glm.ts';
export * from './length-control.ts';
export * from './difficulty.ts';
export * from './io.ts';
export * from './align.ts';
export * from './evaluate.ts';
export * from './leaderboard.ts';
export * from './ranking.ts';
