// The reference 64x64 generator, run in the reader's browser with onnxruntime-web (WebAssembly,
// one thread: no SharedArrayBuffer needed). The model and the runtime are served from the book's
// own _static folder. window.dcganLive reports the state for scripts/check_pages.py.
(function () {
  "use strict";
  const base = document.currentScript.src.replace(/live\/live\.js.*$/, "");
  const LATENT = 100, SIZE = 64, GRID = 8;
  const live = (window.dcganLive = { state: "loading", renders: 0, error: null });
  let session = null;
  let queue = Promise.resolve();
  let seed = 1;
  let z0 = null, z1 = null;

  function rng(s) {  // mulberry32: a small seeded generator, so that the first grid is fixed
    return function () {
      s = (s + 0x6d2b79f5) | 0;
      let t = Math.imul(s ^ (s >>> 15), 1 | s);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function normal(n, s) {  // n standard normal draws (Box-Muller)
    const u = rng(s), out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - u())), a = 2 * Math.PI * u();
      out[i] = r * Math.cos(a);
      if (i + 1 < n) out[i + 1] = r * Math.sin(a);
    }
    return out;
  }

  function slerp(a, b, t) {  // spherical interpolation: z keeps the norm of a Gaussian draw
    let dot = 0, na = 0, nb = 0;
    for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
    const omega = Math.acos(Math.min(1, Math.max(-1, dot / Math.sqrt(na * nb))));
    const so = Math.sin(omega), out = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) {
      out[i] = so < 1e-6 ? (1 - t) * a[i] + t * b[i]
        : (Math.sin((1 - t) * omega) / so) * a[i] + (Math.sin(t * omega) / so) * b[i];
    }
    return out;
  }

  async function generate(z, n) {  // z: n x LATENT -> Float32Array of n images NCHW in [-1, 1]
    const feeds = { z: new ort.Tensor("float32", z, [n, LATENT]) };
    const out = await session.run(feeds);
    return out.images.data;
  }

  function draw(canvas, images, n, cols) {  // n images NCHW -> a grid of cols columns
    const ctx = canvas.getContext("2d");
    const tile = ctx.createImageData(SIZE, SIZE), plane = SIZE * SIZE;
    const scale = canvas.width / (cols * SIZE);
    const tmp = document.createElement("canvas");
    tmp.width = tmp.height = SIZE;
    for (let k = 0; k < n; k++) {
      for (let p = 0; p < plane; p++) {
        for (let c = 0; c < 3; c++) {
          const v = images[k * 3 * plane + c * plane + p];
          tile.data[4 * p + c] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
        }
        tile.data[4 * p + 3] = 255;
      }
      tmp.getContext("2d").putImageData(tile, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(tmp, (k % cols) * SIZE * scale, Math.floor(k / cols) * SIZE * scale,
                    SIZE * scale, SIZE * scale);
    }
  }

  function later(job) {  // one inference at a time, in order
    queue = queue.then(job).then(() => { live.renders += 1; }).catch(fail);
    return queue;
  }

  function status(text) { document.getElementById("live-status").textContent = text; }

  function fail(err) {
    live.state = "error";
    live.error = String(err && err.message ? err.message : err);
    status("The generator could not run: " + live.error);
    console.error("dcgan live page:", err);
  }

  function newGrid() {
    const s = seed++;
    return later(async () => {
      const t0 = performance.now();
      const images = await generate(normal(GRID * GRID * LATENT, s), GRID * GRID);
      draw(document.getElementById("live-grid"), images, GRID * GRID, GRID);
      status(`${GRID * GRID} new samples (z seed ${s}) in ${Math.round(performance.now() - t0)} ms.`);
    });
  }

  function walk() {
    const t = Number(document.getElementById("live-slider").value) / 100;
    return later(async () => {
      draw(document.getElementById("live-walk"), await generate(slerp(z0, z1, t), 1), 1, 1);
      document.getElementById("live-t").textContent = t.toFixed(2);
    });
  }

  async function start() {
    try {
      if (typeof ort === "undefined") throw new Error("onnxruntime-web (ort.wasm.min.js) did not load");
      ort.env.wasm.wasmPaths = base + "ort/";
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      session = await ort.InferenceSession.create(base + "live/dcgan64.onnx",
                                                  { executionProviders: ["wasm"] });
    } catch (err) {
      fail(err);
      return;
    }
    z0 = normal(LATENT, 1001);
    z1 = normal(LATENT, 1002);
    document.getElementById("live-button").addEventListener("click", newGrid);
    document.getElementById("live-slider").addEventListener("input", walk);
    document.getElementById("live-button").disabled = false;
    document.getElementById("live-slider").disabled = false;
    await newGrid();
    await walk();
    if (live.state !== "error") live.state = "ready";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
