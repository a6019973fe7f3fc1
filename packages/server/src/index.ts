export { openApiDocument, ROUTES } from './openapi.js';
export { type JobFinishedEvent, JobRunner } from './runner.js';
export {
  consoleLogger,
  createServer,
  HOME_DIR,
  isLoopback,
  type PriorgraphServer,
  SERVER_VERSION,
  type ServerOptions,
  silentLogger,
} from './server.js';
export * from './store.js';
export { applyOverrides, normalizeWorkflow } from './workflow.js';
export { WsHub } from './ws.js';
