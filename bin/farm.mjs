#!/usr/bin/env node
// The `farm` command: loads the TypeScript CLI through tsx's loader.
import { register } from 'tsx/esm/api';
register();
await import('../ts/cli/main.ts');
