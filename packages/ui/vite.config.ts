import { defineConfig } from 'vite';

// Static files for the server to serve at `/` (relative asset paths, so a sub-path works too).
// `vite` (dev) proxies the API to a server started with `npm start` on :8188.
const api = process.env.PRIORGRAPH_API ?? 'http://127.0.0.1:8188';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      onwarn(warning, warn) {
        // litegraph 0.17.2 has one `eval` (its legacy widget code path); nothing we can change here.
        if (warning.code === 'EVAL' && warning.id?.includes('@comfyorg/litegraph')) return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: {
      '^/(object_info|prompt|queue|history|view|interrupt|upload|system_stats|api)': api,
      '/ws': { target: api.replace(/^http/, 'ws'), ws: true },
    },
  },
});
