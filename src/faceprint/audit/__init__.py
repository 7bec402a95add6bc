"""What the embedding encodes: controlled changes to real faces and how far they move templates.

- :mod:`faceprint.audit.transforms`: the attributes (blur, JPEG, noise, occlusion, ...) as pure
  image functions, each with its strengths
- :mod:`faceprint.audit.subspace`: the identity subspace and the alignment of a template shift with it
- :mod:`faceprint.audit.attributes`: the measurement on an LFW pairs file (shift, alignment, TAR at
  FAR 1e-3 per attribute and strength; accuracy split by the photos' own pose, sharpness, exposure)
- :mod:`faceprint.audit.report`: plots and the self-contained HTML report
- :mod:`faceprint.cli.audit`: ``faceprint audit attributes``
"""
