export { runCli, HELP, EXIT_OK, EXIT_FAILED, EXIT_USAGE, type Io } from './cli.js';
export { renderTable, cellText, toJsonValue, statusJson, renderStatus, ProgressBar } from './format.js';
