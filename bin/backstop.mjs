#!/usr/bin/env node
// Launcher of the `backstop` CLI: registers tsx (TypeScript on the fly) in this Node process, then runs
// cli/main.ts from this package, wherever the command is started from.
import { register } from 'tsx/esm/api';

register();
const { main } = await import(new URL('../cli/main.ts', import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
