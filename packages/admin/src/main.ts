#!/usr/bin/env node
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stdin: process.stdin,
  interactive: process.stdin.isTTY === true,
  progress: process.stderr.isTTY === true,
  env: process.env,
});
process.exitCode = code;
