export { runCli, HELP, EXIT_OK, EXIT_FAILED, EXIT_USAGE, type Io } from './cli.js';
export { renderTable, cellText, toJsonValue, statusJson, renderStatus, ProgressBar } from './format.js';
export { verifyExport, parseStatement, EXPORT_VERSION, type ExportCheck, type ExportFault, type HeadStatement } from './export-format.js';
export { backup, restore, type BackupManifest } from './backup.js';
export { initCluster, readCluster, type ClusterInit, type ReplicaConfig } from './cluster-files.js';
