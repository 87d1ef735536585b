"""Procedural benchmark of synthetic wire-bonded devices (the embedded data set).

It stands in for the proprietary two-light AOI images of the paper: a die with
bond pads sits in an irregular epoxy die-attach fillet on a substrate; thin
gold wires loop from balls on the pads to wedges (stitch bonds) on lead-frame
fingers. Each image has two grey-scale buffers:

* ``buffer0`` - diffuse ring light: mid-grey die, substrate and leads, wires
  dark and of low contrast with a faint soft shadow, epoxy bright and matte;
* ``buffer1`` - coaxial light: flat metal (pads, leads, wedges, the die's
  mirror-like silicon) bright, a specular highlight along each wire's
  centre line that fades on the steep parts of the loop, balls a dark disc
  with a bright spot and ring, matte epoxy dark.

Most images show the device on a black (exactly zero) background frame, sizes
vary per image (width and height independently), and every image carries
sensor noise, a mild blur, vignetting and gain/contrast changes.

Labels are multi-label, classes in the order of
:data:`aoissl_mm.datasets.metainfo.AOI_CLASSES` (``('wire', 'ball', 'wedge',
'epoxy')``): the wire mask lies on top of the ball, wedge and epoxy masks,
which stay set underneath, so pixels carry several bits. Class pixel shares
follow the paper's Fig. 3: epoxy >> wire > ball > wedge.

A *family* (:func:`make_family_layout`) fixes one device design; its renderings
(:func:`render_sample`) differ by pose (shift, small rotation and scale),
frame, unit-to-unit variation of the epoxy outline and wire bends, lighting,
blur and noise. :func:`generate_synthetic_aoi` writes the on-disk layout read
by :class:`~aoissl_mm.datasets.AOIDataset` and
:class:`~aoissl_mm.datasets.AOIPretrainDataset`::

    <out_root>/images/{train,val,test}/<stem>_buffer0.png, <stem>_buffer1.png
    <out_root>/labels/{train,val,test}/<stem>.png          (bit c <=> class c)
    <out_root>/pretrain/<family>/<stem>_buffer0.png, <stem>_buffer1.png
    <out_root>/synthetic_aoi.json                          (manifest, written last)

Modules: ``layout`` (device families), ``drawing`` (polygons, curves,
compositing), ``render`` (one image and its labels), ``camera`` (optics and
sensor), ``stats`` (class shares and overlaps), ``generate`` (the on-disk
benchmark, generation on first use).
"""
from .generate import (
                       LABELLED_SPLITS,
                       MANIFEST_NAME,
                       MANIFEST_VERSION,
                       ensure_synthetic_aoi,
                       generate_synthetic_aoi,
                       maybe_generate_synthetic,
)
from .layout import FamilyLayout, make_family_layout
from .render import BALL, EPOXY, WEDGE, WIRE, render_sample
from .stats import overlap_stats

__all__ = ['FamilyLayout', 'make_family_layout', 'render_sample', 'overlap_stats',
           'generate_synthetic_aoi', 'ensure_synthetic_aoi', 'maybe_generate_synthetic',
           'MANIFEST_NAME', 'MANIFEST_VERSION', 'LABELLED_SPLITS', 'WIRE', 'BALL', 'WEDGE',
           'EPOXY']
