"""VisInspect engine: VGG16-CAM training, inference and sources. Never imports Qt."""
__version__ = "0.1.0"
