/** upng-js ships no types: the part used here (UPNG.encode: RGBA frames → PNG / APNG bytes). */
declare module 'upng-js' {
  const UPNG: {
    /** frames: RGBA buffers; cnum 0 = lossless; delays: milliseconds per frame */
    encode(frames: ArrayBuffer[], w: number, h: number, cnum: number, delays?: number[]): ArrayBuffer;
  };
  export default UPNG;
}
