"""Dock widgets (the only package that imports Qt / magicgui / napari.qt)."""
import sys

# torchvision and timm import triton when it is installed (CUDA wheels of torch ship it).
# Triton's bundled LLVM crashes the process once Mesa's llvmpipe (software OpenGL: VMs,
# remote desktops, Xvfb) is loaded in it, i.e. in napari.  The widgets run torch eagerly
# and never need triton, so inside napari it is marked unavailable.
sys.modules.setdefault("triton", None)
