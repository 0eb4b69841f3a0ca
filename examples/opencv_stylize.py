"""Stylise an image with an exported fast-nst model in OpenCV's DNN module, without fast-nst.

    pip install opencv-python-headless
    fast-nst export models/mosaic.pt -o mosaic.onnx
    python examples/opencv_stylize.py mosaic.onnx photo.jpg out.png

The model's convention (ONNX metadata `fast_nst.io`): input and output (batch, 3, height, width)
float32 RGB in [0, 1]. OpenCV reads BGR 0-255, hence swapRB and the 1/255 scale.
"""

import sys

import cv2
import numpy as np


def stylize(model: str, image: np.ndarray) -> np.ndarray:
    """BGR uint8 (H, W, 3) in, BGR uint8 out, as OpenCV holds images."""
    net = cv2.dnn.readNetFromONNX(model)
    net.setInput(cv2.dnn.blobFromImage(image, scalefactor=1 / 255, swapRB=True))
    rgb = net.forward()[0].transpose(1, 2, 0)  # (H, W, 3) RGB in [0, 1]
    return cv2.cvtColor(np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python opencv_stylize.py MODEL.onnx IN_IMAGE OUT_IMAGE")
    model, src, dst = sys.argv[1:]
    image = cv2.imread(src, cv2.IMREAD_COLOR)
    if image is None:
        sys.exit(f"{src}: cannot read image")
    try:
        out = stylize(model, image)
    except cv2.error as e:  # a missing or damaged model: OpenCV's message, without its traceback
        sys.exit(f"{model}: OpenCV cannot run it ({str(e).strip().splitlines()[-1][:200]})")
    if not cv2.imwrite(dst, out):
        sys.exit(f"{dst}: cannot write image")
