"""Drop-in stand-ins for other face libraries' APIs, computed with faceprint's models.

``faceprint.compat.face_recognition`` replaces the ``face_recognition`` package (1.3.0):
``import faceprint.compat.face_recognition as face_recognition``.
"""
