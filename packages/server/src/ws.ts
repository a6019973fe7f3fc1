/**
 * The websocket hub at /ws?clientId=...: ComfyUI's event stream plus subscriptions.
 *
 * Who receives a prompt's events (text and preview frames):
 *  1. every socket whose clientId submitted the prompt (POST /prompt `client_id`);
 *  2. every socket that subscribed to it: `{type:"subscribe", data:{prompt_id}}` (or `{prompt_ids:[..]}`),
 *     or to everything: `{type:"subscribe", data:{all:true}}`;
 *  3. every socket in "watch" mode: one that has neither subscribed to anything nor submitted a prompt
 *     under its clientId (a freshly opened editor sees whatever runs, like ComfyUI's single-user UI).
 * `status` messages (queue size) go to every socket. `unsubscribe` takes the same data.
 * A malformed message gets `{type:"error", data:{message}}` and the socket stays open.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { PreviewImage } from '@priorgraph/core';
import { WebSocket, WebSocketServer } from 'ws';
import { WsMessage } from './schemas.js';

interface ClientState {
  sid: string;
  subs: Set<string>;
  all: boolean;
  previewMetadata: boolean;
}

/** Above this many buffered bytes a slow client misses preview frames (text events still queue). */
const PREVIEW_BACKPRESSURE_BYTES = 8 * 1024 * 1024;
/** A client that lets this much pile up unread is dropped (it would grow the server's memory). */
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
/** Least time between two flushes of the corked sockets (see cork). */
const FLUSH_GAP_MS = 10;
/** Least time between two status broadcasts (see statusChanged). */
export const STATUS_GAP_MS = 100;

/** Runs `fn` on the next turn of the event loop, or `gap` ms after `last` (a performance.now() time)
 *  when that is later; returns its cancel. */
function afterGap(last: number, gap: number, fn: () => void): () => void {
  const wait = last + gap - performance.now();
  if (wait <= 0) {
    const t = setImmediate(fn);
    return () => clearImmediate(t);
  }
  const t = setTimeout(fn, wait);
  return () => clearTimeout(t);
}

/** The TCP socket under a websocket (ws keeps it as `_socket`). */
interface RawSocket {
  cork(): void;
  uncork(): void;
  write(b: Buffer): boolean;
  destroyed?: boolean;
}

/**
 * One complete, unfragmented websocket message as a server sends it (RFC 6455 §5.2: FIN, opcode 1
 * text or 2 binary, no mask, 7/16/64-bit length). Without extensions (perMessageDeflate is off) these
 * are exactly the bytes ws.send writes, so one buffer serves every socket. A string payload is
 * written as UTF-8 straight into the frame.
 */
export function frame(payload: Buffer | string, binary: boolean): Buffer {
  const len = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + len);
  out[0] = 0x80 | (binary ? 0x02 : 0x01);
  if (len < 126) out[1] = len;
  else if (len < 65536) {
    out[1] = 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  if (typeof payload === 'string') out.write(payload, head, 'utf8');
  else payload.copy(out, head);
  return out;
}

export class WsHub {
  readonly wss: WebSocketServer;
  private readonly clients = new Map<WebSocket, ClientState>();
  /** clientIds that have submitted at least one prompt (they leave watch mode). */
  private readonly submitters = new Set<string>();
  /** prompt id → submitting clientId. */
  private readonly owners = new Map<string, string>();

  constructor(
    private readonly opts: {
      queueRemaining: () => number;
      maxUploadBytes: number;
      maxMessageBytes?: number;
      /** Least ms between two status broadcasts; default STATUS_GAP_MS. */
      statusGapMs?: number;
    },
  ) {
    // No compression: every socket then gets the same frame bytes (see frame()), made once per event.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxMessageBytes ?? 256 * 1024,
      perMessageDeflate: false,
    });
  }

  get size(): number {
    return this.clients.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, clientId: string | null): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, clientId));
  }

  private onConnection(ws: WebSocket, clientId: string | null): void {
    const sid = clientId && clientId.length <= 256 ? clientId : randomUUID().replace(/-/g, '');
    const state: ClientState = { sid, subs: new Set(), all: false, previewMetadata: false };
    this.clients.set(ws, state);
    ws.on('close', () => this.clients.delete(ws));
    ws.on('error', () => this.clients.delete(ws));
    ws.on('message', (data, isBinary) => this.onMessage(ws, state, data, isBinary));
    this.sendTo(ws, 'status', { status: { exec_info: { queue_remaining: this.opts.queueRemaining() } }, sid });
  }

  private onMessage(ws: WebSocket, state: ClientState, data: unknown, isBinary: boolean): void {
    if (isBinary) {
      this.sendTo(ws, 'error', { message: 'binary messages are not accepted; send JSON text {type, data}' });
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(String(data));
    } catch (e) {
      this.sendTo(ws, 'error', { message: `message is not valid JSON: ${(e as Error).message}` });
      return;
    }
    const r = WsMessage.safeParse(json);
    if (!r.success) {
      const first = r.error.issues[0];
      const field = ['message', ...(first?.path ?? []).map(String)].join('.');
      this.sendTo(ws, 'error', {
        message: `${field}: ${first?.message ?? 'invalid message'} (accepted types: feature_flags, subscribe, unsubscribe)`,
        field,
      });
      return;
    }
    const msg = r.data;
    if (msg.type === 'feature_flags') {
      state.previewMetadata = msg.data.supports_preview_metadata === true;
      this.sendTo(ws, 'feature_flags', {
        supports_preview_metadata: true,
        max_upload_size: this.opts.maxUploadBytes,
      });
      return;
    }
    const d = msg.data;
    const ids = 'prompt_id' in d ? [d.prompt_id] : 'prompt_ids' in d ? d.prompt_ids : [];
    if (msg.type === 'subscribe') {
      if ('all' in d) state.all = true;
      for (const id of ids) state.subs.add(id);
    } else {
      if ('all' in d) {
        state.all = false;
        state.subs.clear();
      }
      for (const id of ids) state.subs.delete(id);
    }
    this.sendTo(ws, msg.type === 'subscribe' ? 'subscribed' : 'unsubscribed', {
      all: state.all,
      prompt_ids: [...state.subs],
    });
  }

  /** Route a prompt's events to its submitter (rule 1) from before it is stored: a runner can start a
   *  job as soon as it is written, before its POST has its answer (the fsync). Returns the undo, for a
   *  POST that fails; a prompt id that already has an owner is left alone. */
  claim(promptId: string, clientId: string | undefined): () => void {
    if (!clientId || this.owners.has(promptId)) return () => {};
    this.owners.set(promptId, clientId);
    return () => {
      if (this.owners.get(promptId) === clientId) this.owners.delete(promptId);
    };
  }

  /** Remember who submitted a prompt (rule 1) and take that clientId out of watch mode. */
  noteSubmission(promptId: string, clientId: string | undefined): void {
    if (!clientId) return;
    this.submitters.add(clientId);
    this.owners.set(promptId, clientId);
  }

  forget(promptId: string): void {
    this.owners.delete(promptId);
  }

  /** Sockets corked since the last flush: their frames leave together, in one write each. */
  private readonly corked = new Set<WebSocket>();
  private lastFlush = Number.NEGATIVE_INFINITY;

  /** Frames are held until the next turn of the event loop, and while busy (a flush less than
   *  FLUSH_GAP_MS ago) until FLUSH_GAP_MS after it: under a burst each socket gets one larger write
   *  per gap instead of one per event, while a lone event still leaves on the next turn. Returns the
   *  socket (corked), or null when the websocket has none (then it is not open). */
  private cork(ws: WebSocket): RawSocket | null {
    const sock = (ws as unknown as { _socket?: RawSocket })._socket;
    if (!sock) return null;
    if (this.corked.has(ws)) return sock;
    sock.cork();
    if (this.corked.size === 0) {
      afterGap(this.lastFlush, FLUSH_GAP_MS, () => this.uncorkAll());
    }
    this.corked.add(ws);
    return sock;
  }

  /** A frame made by frame(), to one open socket: written straight to its (corked) TCP socket, as
   *  ws.send would write it, without ws framing it again for every socket. */
  private sendFrame(ws: WebSocket, bytes: Buffer): void {
    const sock = this.cork(ws);
    if (sock) sock.write(bytes);
  }

  private uncorkAll(): void {
    if (this.corked.size === 0) return;
    this.lastFlush = performance.now();
    for (const ws of this.corked) {
      const sock = (ws as unknown as { _socket?: RawSocket })._socket;
      if (sock && !sock.destroyed) sock.uncork();
    }
    this.corked.clear();
  }

  private wants(state: ClientState, promptId: string): boolean {
    if (state.all || state.subs.has(promptId)) return true;
    if (this.owners.get(promptId) === state.sid) return true;
    return state.subs.size === 0 && !this.submitters.has(state.sid);
  }

  private sendTo(ws: WebSocket, type: string, data: unknown): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ type, data }), (err) => {
      if (err) this.clients.delete(ws);
    });
  }

  /** A prompt's event, to the sockets that follow it. */
  emit(promptId: string, type: string, data: Record<string, unknown>): void {
    // Serialized and framed once for every socket (a text frame).
    const bytes = frame(JSON.stringify({ type, data }), false);
    for (const [ws, state] of this.clients) {
      if (ws.readyState !== WebSocket.OPEN || !this.wants(state, promptId)) continue;
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        ws.terminate();
        this.clients.delete(ws);
        continue;
      }
      this.sendFrame(ws, bytes);
    }
  }

  /** To everyone (queue status). */
  broadcast(type: string, data: Record<string, unknown>): void {
    const bytes = frame(JSON.stringify({ type, data }), false);
    for (const ws of this.clients.keys()) {
      if (ws.readyState === WebSocket.OPEN) this.sendFrame(ws, bytes);
    }
  }

  /** The scheduled status broadcast's cancel, while one is scheduled. */
  private statusPending: (() => void) | undefined;
  private lastStatus = Number.NEGATIVE_INFINITY;

  /** The queue's count changed: a status broadcast with the count of the moment it goes out. Changes
   *  are coalesced in time: the first after a quiet spell goes on the next turn of the event loop
   *  (so a batch of changes in one turn is one broadcast), later ones at most one per statusGapMs,
   *  the last (trailing) one always — a client only needs the latest count, and under a burst of
   *  POSTs and finishing jobs a broadcast per change is a frame per change to every socket. */
  statusChanged(): void {
    if (this.statusPending) return;
    const send = () => {
      this.statusPending = undefined;
      this.lastStatus = performance.now();
      this.broadcastStatus();
    };
    this.statusPending = afterGap(this.lastStatus, this.opts.statusGapMs ?? STATUS_GAP_MS, send);
  }

  broadcastStatus(): void {
    this.broadcast('status', { status: { exec_info: { queue_remaining: this.opts.queueRemaining() } } });
  }

  /** Binary preview: type 1 `[u32 1][u32 format 1=JPEG 2=PNG][image]`, or type 4
   *  `[u32 4][u32 json_len][json][image]` to sockets that announced supports_preview_metadata. */
  preview(promptId: string, nodeId: string, image: PreviewImage): void {
    let legacy: Buffer | null = null;
    let withMeta: Buffer | null = null;
    const data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
    for (const [ws, state] of this.clients) {
      if (ws.readyState !== WebSocket.OPEN || !this.wants(state, promptId)) continue;
      if (ws.bufferedAmount > PREVIEW_BACKPRESSURE_BYTES) continue;
      if (state.previewMetadata) {
        if (!withMeta) {
          const meta = Buffer.from(
            JSON.stringify({
              node_id: nodeId,
              display_node_id: nodeId,
              real_node_id: nodeId,
              parent_node_id: null,
              prompt_id: promptId,
              image_type: image.format === 'png' ? 'image/png' : 'image/jpeg',
            }),
          );
          const head = Buffer.alloc(8);
          head.writeUInt32BE(4, 0);
          head.writeUInt32BE(meta.length, 4);
          withMeta = frame(Buffer.concat([head, meta, data]), true);
        }
        this.sendFrame(ws, withMeta);
      } else {
        if (!legacy) {
          const head = Buffer.alloc(8);
          head.writeUInt32BE(1, 0);
          head.writeUInt32BE(image.format === 'png' ? 2 : 1, 4);
          legacy = frame(Buffer.concat([head, data]), true);
        }
        this.sendFrame(ws, legacy);
      }
    }
  }

  close(): void {
    this.statusPending?.();
    this.statusPending = undefined;
    this.uncorkAll();
    for (const ws of this.clients.keys()) ws.terminate();
    this.clients.clear();
    this.wss.close();
  }
}
