import '@comfyorg/litegraph/style.css';
import './style.css';
import { App } from './app.ts';

const app = new App();
(window as unknown as { priorgraph: App }).priorgraph = app;
app.start().catch((err: Error) => app.showStartFailure(err));
