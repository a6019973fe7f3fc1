// A TypeScript worker: type annotations only work when the worker runs under tsx.
import { parentPort, workerData } from 'node:worker_threads';
import { socketsCompatible } from '../../src/api.js';

interface Msg {
  a: number;
  b: number;
}
const data = workerData as { greeting: string };
parentPort!.on('message', (m: Msg) => {
  parentPort!.postMessage({
    sum: m.a + m.b,
    greeting: data.greeting,
    compatible: socketsCompatible('IMAGE,MASK', 'MASK'),
  });
});
