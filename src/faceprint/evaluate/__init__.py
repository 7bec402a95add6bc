"""Accuracy measurement: LFW verification, open-set identification, threshold calibration.

- :mod:`faceprint.evaluate.metrics`: ROC, AUC, EER, TAR@FAR, k-fold accuracy, CMC, DIR@FPIR (numpy only)
- :mod:`faceprint.evaluate.lfw`: LFW pairs files and the View 2 protocol
- :mod:`faceprint.evaluate.identification`: folder-per-identity gallery/probe splits
- :mod:`faceprint.evaluate.extract`: one template per benchmark image (centre face, fallbacks)
- :mod:`faceprint.evaluate.cache`: templates cached by file content and pipeline
- :mod:`faceprint.cli.evaluate`: ``faceprint evaluate ...`` and ``faceprint calibrate``
"""
