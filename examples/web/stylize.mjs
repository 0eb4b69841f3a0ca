// One forward pass of an exported fast-nst model in ONNX Runtime Web (WebAssembly).
// The model's convention (ONNX metadata `fast_nst.io`): input and output (batch, 3, height, width)
// float32 RGB in [0, 1]; ImageData holds RGBA bytes, row by row.
import * as ort from "../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";

ort.env.wasm.wasmPaths = new URL("../node_modules/onnxruntime-web/dist/", import.meta.url).href;
// Several threads need a cross-origin-isolated page (COOP/COEP headers) that a plain static
// server does not send; one thread works everywhere.
ort.env.wasm.numThreads = 1;

const sessions = new Map();

/** ImageData in, stylised ImageData (same size) out; `model` is the .onnx file's bytes or URL. */
export async function stylize(model, image) {
  const key = typeof model === "string" ? model : model.byteLength + ":" + model.slice(0, 64).join();
  if (!sessions.has(key)) sessions.set(key, await ort.InferenceSession.create(model));
  const session = sessions.get(key);
  const { data, width, height } = image;
  const plane = width * height;
  const x = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) x[c * plane + i] = data[4 * i + c] / 255;
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", x, [1, 3, height, width]) };
  const y = (await session.run(feeds))[session.outputNames[0]].data;
  const out = new ImageData(width, height);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out.data[4 * i + c] = Math.round(Math.min(1, Math.max(0, y[c * plane + i])) * 255);
    out.data[4 * i + 3] = 255;
  }
  return out;
}
