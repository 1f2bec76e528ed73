/**
 * A drawing pad for digits (white on black, like MNIST) and its conversion to a 28x28 sample:
 * crop to the ink, scale the longer side to 20 px, place the centre of mass at the centre,
 * as the MNIST digits were prepared. Pointer events, so mouse, pen and touch all draw.
 */
export const SIDE = 28;
const BOX = 20;

export class DrawingPad {
  private readonly ctx: CanvasRenderingContext2D;
  private drawing = false;
  private last: { x: number; y: number } | null = null;
  private inked = false;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly onChange: () => void = () => {},
  ) {
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    if (!ctx) throw new Error("2D canvas unavailable");
    this.ctx = ctx;
    this.paintBlack();
    canvas.style.touchAction = "none";
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.drawing = true;
      this.last = this.point(e);
      this.stroke(this.last, this.last);
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!this.drawing) return;
      const p = this.point(e);
      this.stroke(this.last ?? p, p);
      this.last = p;
    });
    const end = () => {
      if (this.drawing) this.onChange();
      this.drawing = false;
      this.last = null;
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  get empty(): boolean {
    return !this.inked;
  }

  clear(): void {
    this.paintBlack();
    this.onChange();
  }

  private paintBlack(): void {
    this.ctx.fillStyle = "black";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.inked = false;
  }

  private point(e: PointerEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) / r.width) * this.canvas.width, y: ((e.clientY - r.top) / r.height) * this.canvas.height };
  }

  private stroke(a: { x: number; y: number }, b: { x: number; y: number }): void {
    const ctx = this.ctx;
    ctx.strokeStyle = "white";
    ctx.lineWidth = this.canvas.width / 14;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x + 0.01, b.y);
    ctx.stroke();
    this.inked = true;
  }

  /** The drawing as 784 values in [0, 1], MNIST-style; null when nothing is drawn. */
  toMnist(preview?: HTMLCanvasElement): Float32Array | null {
    if (!this.inked) return null;
    const { width: w, height: h } = this.canvas;
    const px = this.ctx.getImageData(0, 0, w, h).data;
    let minX = w,
      minY = h,
      maxX = -1,
      maxY = -1,
      mass = 0,
      sx = 0,
      sy = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = px[(y * w + x) * 4] ?? 0;
        if (v < 16) continue;
        minX = Math.min(minX, x);
        maxX = Math.max(maxX, x);
        minY = Math.min(minY, y);
        maxY = Math.max(maxY, y);
        mass += v;
        sx += v * x;
        sy += v * y;
      }
    }
    if (maxX < 0 || mass === 0) return null;
    const bw = maxX - minX + 1;
    const bh = maxY - minY + 1;
    const s = BOX / Math.max(bw, bh);
    const cx = sx / mass;
    const cy = sy / mass;
    const small = preview ?? document.createElement("canvas");
    small.width = SIDE;
    small.height = SIDE;
    const sctx = small.getContext("2d", { willReadFrequently: true });
    if (!sctx) return null;
    sctx.fillStyle = "black";
    sctx.fillRect(0, 0, SIDE, SIDE);
    sctx.imageSmoothingEnabled = true;
    sctx.imageSmoothingQuality = "high";
    const dx = SIDE / 2 - (cx - minX) * s;
    const dy = SIDE / 2 - (cy - minY) * s;
    sctx.drawImage(this.canvas, minX, minY, bw, bh, dx, dy, bw * s, bh * s);
    const out = sctx.getImageData(0, 0, SIDE, SIDE).data;
    const x = new Float32Array(SIDE * SIDE);
    for (let i = 0; i < x.length; i++) x[i] = (out[i * 4] ?? 0) / 255;
    return x;
  }
}
