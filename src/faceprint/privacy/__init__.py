"""Privacy of what the gallery stores: protected templates (:mod:`faceprint.privacy.protect`) and
the modules beside it."""
