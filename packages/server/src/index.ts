export { SERVER_VERSION, type ServerOptions } from './context.js';
export { openApiDocument, ROUTES } from './openapi.js';
export { type JobFinishedEvent, JobRunner } from './runner.js';
export {
  consoleLogger,
  createServer,
  HOME_DIR,
  isLoopback,
  type PriorgraphServer,
  silentLogger,
} from './server.js';
export * from './store.js';
export { WORKER_NODE_FLAGS } from './worker/supervisor.js';
export { applyOverrides, normalizeWorkflow } from './workflow.js';
export { WsHub } from './ws.js';
