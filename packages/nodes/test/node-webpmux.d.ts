/** node-webpmux ships no types: the part the tests read (an animated WebP's frames, delays and EXIF). */
declare module 'node-webpmux' {
  class Image {
    load(source: Buffer | string): Promise<void>;
    readonly hasAnim: boolean;
    readonly width: number | undefined;
    readonly height: number | undefined;
    readonly frames: Array<{ delay: number }> | undefined;
    readonly exif: Buffer | undefined;
  }
  const WebP: { Image: typeof Image };
  export default WebP;
}
