// Stylise an image with an exported fast-nst model in Node.js (onnxruntime-node), without Python.
//
//   npm install --ignore-scripts --prefix examples   # the CPU runtime ships inside the package
//   fast-nst export models/mosaic.pt -o mosaic.onnx
//   node examples/node_stylize.mjs mosaic.onnx photo.jpg out.png
//
// The model's convention (ONNX metadata `fast_nst.io`): input and output (batch, 3, height, width)
// float32 RGB in [0, 1]. Reads PNG or JPEG, writes PNG.
import { readFileSync, writeFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";

function decode(path) {
  const bytes = readFileSync(path);
  const isPng = bytes.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  return isPng ? PNG.sync.read(bytes) : jpeg.decode(bytes, { useTArray: true }); // RGBA bytes
}

// RGBA bytes (H, W, 4) <-> planar float RGB (1, 3, H, W) in [0, 1].
function toTensor({ data, width, height }) {
  const plane = width * height;
  const x = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) x[c * plane + i] = data[4 * i + c] / 255;
  }
  return new ort.Tensor("float32", x, [1, 3, height, width]);
}

function toPng(tensor) {
  const [, , height, width] = tensor.dims;
  const plane = width * height;
  const png = new PNG({ width, height });
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      png.data[4 * i + c] = Math.min(255, Math.max(0, Math.round(tensor.data[c * plane + i] * 255)));
    }
    png.data[4 * i + 3] = 255;
  }
  return PNG.sync.write(png);
}

const [model, src, dst] = process.argv.slice(2);
if (!dst) {
  console.error("usage: node node_stylize.mjs MODEL.onnx IN_IMAGE OUT.png");
  process.exit(2);
}
const session = await ort.InferenceSession.create(model);
const feeds = { [session.inputNames[0]]: toTensor(decode(src)) };
const result = await session.run(feeds);
writeFileSync(dst, toPng(result[session.outputNames[0]]));
