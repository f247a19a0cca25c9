// The worker of the build for bundlers (dist/web/worker.js): answers the page's requests.
import { installWorker } from './worker.js';

installWorker();
