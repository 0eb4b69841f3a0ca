// The browser app's logic: one forward pass of an exported fast-nst model per image or camera
// frame, in ONNX Runtime Web (WebAssembly). The models' convention (ONNX metadata `fast_nst.io`):
// input and output (batch, 3, height, width) float32 RGB in [0, 1], any height and width.
import * as ort from "./ort/ort.wasm.min.mjs";

ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
// Several threads need a cross-origin-isolated page: `fast-nst web` sends the COOP/COEP headers
// for it, most static hosts do not. One thread works everywhere.
ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
// Inference in a worker, so the page (buttons, the camera) stays responsive while a frame runs.
ort.env.wasm.proxy = true;

const $ = (id) => document.getElementById(id);
const sessions = new Map(); // a model's URL or File -> promise of its InferenceSession
const ownModels = new Map(); // <option> value -> a model File the user loaded
let source = null; // what is stylised: an ImageBitmap, or the camera's <video>
let sourceName = "image";
let stream = null; // the camera, while it runs
let busy = false;
let again = false; // a setting changed while a pass ran: run once more with it
let frames = 0;

function status(text, state) {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

function session(model) {
  if (!sessions.has(model)) {
    const bytes = model instanceof File ? model.arrayBuffer().then((b) => new Uint8Array(b)) : Promise.resolve(model);
    const created = bytes.then((b) => ort.InferenceSession.create(b));
    created.catch(() => sessions.delete(model)); // let a later attempt try again
    sessions.set(model, created);
  }
  return sessions.get(model);
}

/** RGBA ImageData -> the stylised RGBA ImageData, same size. */
async function stylize(model, { data, width, height }) {
  const s = await session(model);
  const plane = width * height;
  const x = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) x[c * plane + i] = data[4 * i + c] / 255;
  }
  const feeds = { [s.inputNames[0]]: new ort.Tensor("float32", x, [1, 3, height, width]) };
  const output = (await s.run(feeds))[s.outputNames[0]];
  const [, channels, h, w] = output.dims;
  if (channels !== 3 || h !== height || w !== width) {
    throw new Error(`the model gave a ${output.dims.join("x")} output for a 1x3x${height}x${width} image`);
  }
  const y = output.data;
  const out = new ImageData(width, height);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out.data[4 * i + c] = Math.round(Math.min(1, Math.max(0, y[c * plane + i])) * 255);
    out.data[4 * i + 3] = 255;
  }
  return out;
}

/** The source, its long side scaled down to the chosen size, drawn on the input canvas. */
function sourcePixels() {
  const [w0, h0] = source instanceof HTMLVideoElement ? [source.videoWidth, source.videoHeight] : [source.width, source.height];
  const limit = Number($("size").value);
  const scale = limit ? Math.min(1, limit / Math.max(w0, h0)) : 1;
  const canvas = $("input");
  canvas.width = Math.max(1, Math.round(w0 * scale));
  canvas.height = Math.max(1, Math.round(h0 * scale));
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingQuality = "high";
  context.drawImage(source, 0, 0, canvas.width, canvas.height);
  canvas.hidden = false;
  $("hint").hidden = true;
  return context.getImageData(0, 0, canvas.width, canvas.height);
}

async function run() {
  if (!source || !$("style").value) return;
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  try {
    do {
      again = false;
      const option = $("style").selectedOptions[0];
      const pixels = sourcePixels();
      if (!stream) status(`stylising ${pixels.width}×${pixels.height} in ${option.textContent}…`, "busy");
      const start = performance.now();
      const result = await stylize(ownModels.get(option.value) ?? option.value, pixels);
      const output = $("output");
      [output.width, output.height] = [result.width, result.height];
      output.getContext("2d").putImageData(result, 0, 0);
      output.hidden = false;
      $("download").hidden = false;
      const seconds = (performance.now() - start) / 1000;
      if (stream) {
        frames += 1;
        status(`camera: ${result.width}×${result.height}, ${(1 / seconds).toFixed(1)} frames/s`, "camera");
        $("status").dataset.frames = frames;
      } else {
        status(`${option.textContent}: ${result.width}×${result.height} in ${seconds.toFixed(2)} s`, "done");
      }
    } while (again);
  } catch (e) {
    status(e?.message ?? String(e), "error");
    stopCamera();
  } finally {
    busy = false;
  }
  if (stream) requestAnimationFrame(run);
}

async function openImage(file) {
  stopCamera();
  try {
    source = await createImageBitmap(file);
  } catch {
    status(`${file.name}: not an image this browser can read`, "error");
    return;
  }
  sourceName = file.name.replace(/\.[^.]*$/, "");
  run();
}

function addOwnModel(file) {
  const value = `own:${ownModels.size}`;
  ownModels.set(value, file);
  $("style").add(new Option(file.name.replace(/\.onnx$/i, ""), value, true, true));
  run();
}

async function startCamera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (e) {
    status(`camera: ${e.message}`, "error");
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  [source, sourceName, frames] = [video, "camera", 0];
  $("camera").textContent = "Stop camera";
  run();
}

function stopCamera() {
  if (!stream) return;
  stream.getTracks().forEach((track) => track.stop());
  stream = null;
  // The last frame stays, so the style can still change (a copy: the input canvas is redrawn).
  const still = document.createElement("canvas");
  [still.width, still.height] = [$("input").width, $("input").height];
  still.getContext("2d").drawImage($("input"), 0, 0);
  source = still;
  $("camera").textContent = "Camera";
}

function download() {
  const style = $("style").selectedOptions[0].textContent;
  $("output").toBlob((blob) => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${sourceName}-${style}.png`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  }, "image/png");
}

function dropped(event) {
  event.preventDefault();
  $("drop").classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) (file.name.toLowerCase().endsWith(".onnx") ? addOwnModel : openImage)(file);
}

async function init() {
  $("style").onchange = run;
  $("size").onchange = run;
  $("image-file").onchange = (e) => e.target.files[0] && openImage(e.target.files[0]);
  $("model-file").onchange = (e) => e.target.files[0] && addOwnModel(e.target.files[0]);
  $("camera").onclick = () => (stream ? stopCamera() : startCamera());
  $("download").onclick = download;
  $("drop").ondragover = (e) => {
    e.preventDefault();
    $("drop").classList.add("over");
  };
  $("drop").ondragleave = () => $("drop").classList.remove("over");
  $("drop").ondrop = dropped;
  const styles = await (await fetch("styles.json")).json();
  for (const { name, file, about } of styles) {
    const option = new Option(name, file);
    option.title = about;
    $("style").add(option);
  }
  status(styles.length ? "ready" : "no styles in this folder: load your own model (.onnx)", "ready");
}

init().catch((e) => status(`could not start: ${e.message}`, "error"));
