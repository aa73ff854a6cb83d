#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { loadConfig } from './config.js';

/**
 * `vdb-server`: parses the configuration (exit 2 with a one-line reason if it is wrong), starts
 * the server (exit 1 if that fails, e.g. a locked data dir or a port in use), and stops it
 * gracefully on SIGTERM or SIGINT (exit 0).
 */
async function main(): Promise<void> {
  const outcome = loadConfig({ argv: process.argv.slice(2), env: process.env, readFile: (path) => readFileSync(path, 'utf8') });
  if (outcome.kind === 'help') {
    process.stdout.write(`${outcome.text}\n`);
    return;
  }
  if (outcome.kind === 'error') {
    process.stderr.write(`vdb-server: ${outcome.message}\n`);
    process.exitCode = 2;
    return;
  }
  // Loaded only now, so that --help and configuration errors answer without loading the engine.
  const [{ createLogger }, { VerityServer }] = await Promise.all([import('./logger.js'), import('./server.js')]);
  const logger = createLogger();
  let server: import('./server.js').VerityServer;
  try {
    server = await VerityServer.start(outcome.config, logger);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logger.fatal({ err: error }, 'cannot start');
    process.stderr.write(`vdb-server: ${message}\n`);
    process.exitCode = 1;
    return;
  }
  const shutdown = (signal: string): void => {
    logger.info({ signal }, 'signal received');
    server.stop().then(() => process.exit(process.exitCode ?? 0), (error: unknown) => {
      logger.fatal({ err: error }, 'stop failed');
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

void main();
