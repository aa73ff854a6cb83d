export * as schema from './generated/envelope.js';
