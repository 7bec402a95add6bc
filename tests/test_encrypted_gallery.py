"""Identification against a gallery stored encrypted (faceprint.privacy.encrypted_gallery): the key
holder gets plaintext search's decisions and scores, while what the gallery side stores and holds is
ciphertexts and public material only: no template, no secret key."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tenseal.sealapi", reason="faceprint[privacy] (TenSEAL) is not installed")

from faceprint import FaceEngine  # noqa: E402
from faceprint.errors import FaceprintError  # noqa: E402
from faceprint.privacy import encrypted as enc  # noqa: E402
from faceprint.privacy.encrypted_gallery import EncryptedGallery, KeyHolder, key_holder_client  # noqa: E402
from faceprint.types import Face  # noqa: E402
from tests.conftest import DEMO, faceprint  # noqa: E402
from tests.test_encrypted_match import (  # noqa: E402, F401 (lfw_faces: the imported fixture)
    assert_same_matches,
    decrypt_with_own_key,
    lfw_faces,
    lfw_recognizer,
    unit_rows,
)
from tests.test_encryption import found_in  # noqa: E402


def holder_of(vectors: np.ndarray, owners: np.ndarray | None = None) -> tuple[KeyHolder, EncryptedGallery]:
    owners = np.arange(len(vectors)) if owners is None else owners
    names = [f"person-{i}" for i in range(int(owners.max()) + 1)] if len(owners) else []
    return KeyHolder.from_rows(vectors, names, owners, "test-model", 0.5)


def assert_noise(got: np.ndarray, true: np.ndarray) -> None:
    """``got`` tells nothing of the true scores (in [-1, 1]): mostly far off them, and uncorrelated."""
    assert np.median(np.abs(got - true)) > 10 and abs(np.corrcoef(got, true)[0, 1]) < 0.3


@pytest.mark.parametrize("rows", [5, 700, 3000])
def test_scores_equal_plaintext(rows: int) -> None:
    vectors, probe = unit_rows(rows), unit_rows(1, seed=1)[0]
    holder, stored = holder_of(vectors)
    layout = stored.layout
    assert len(stored.ciphertexts) == layout.blocks * layout.probe_ciphertexts
    results = stored.score(holder.client.encrypt(probe, layout))
    assert len(results) == layout.blocks
    for data in results:  # relinearised: two polynomials, as a fresh ciphertext
        cipher = enc.seal().Ciphertext()
        enc._load(lambda path, c=cipher: c.load(holder.client.context, path), data)
        assert cipher.size() == 2
    assert np.abs(holder.client.decrypt(results, layout) - vectors @ probe).max() < 1e-4


def test_identity_scores_take_each_identitys_best_row() -> None:
    vectors = unit_rows(9)
    owners = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3])
    holder, stored = holder_of(vectors, owners)
    probe = vectors[4]  # row 4 is identity 1's second view
    names, scores = holder.identifier(stored).scores(probe)
    expected = [max(vectors[owners == i] @ probe) for i in range(4)]
    assert names == holder.names and np.abs(scores - expected).max() < 1e-4 and np.argmax(scores) == 1


def test_files_round_trip_and_pair_up(tmp_path: Path) -> None:
    vectors, probe = unit_rows(300), unit_rows(1, seed=1)[0]
    holder, stored = holder_of(vectors)
    stored.save(tmp_path / "gallery.fpeg")
    holder.save(tmp_path / "holder.key")
    assert stat.S_IMODE((tmp_path / "holder.key").stat().st_mode) == 0o600
    assert (tmp_path / "gallery.fpeg").stat().st_size >= stored.nbytes
    loaded, keys = EncryptedGallery.load(tmp_path / "gallery.fpeg"), KeyHolder.load(tmp_path / "holder.key")
    names, scores = keys.identifier(loaded).scores(probe)
    assert names == holder.names and np.abs(scores - vectors @ probe).max() < 1e-4

    other_holder, other = holder_of(vectors)
    with pytest.raises(FaceprintError, match="export them together"):
        keys.identifier(other)
    # a probe under another key holder's key is read but scores to noise, never to the true scores
    results = other.score(keys.client.encrypt(probe, other.layout))
    assert_noise(keys.client.decrypt(results, other.layout), vectors @ probe)
    assert_noise(other_holder.client.decrypt(results, other.layout), vectors @ probe)

    data = (tmp_path / "gallery.fpeg").read_bytes()
    (tmp_path / "cut.fpeg").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.fpeg").write_bytes(b"not an encrypted gallery")
    for name, message in [("cut.fpeg", "truncated"), ("junk.fpeg", "not a faceprint"), ("none.fpeg", "cannot read")]:
        with pytest.raises(FaceprintError, match=message) as err:
            EncryptedGallery.load(tmp_path / name)
        assert name in str(err.value)
    with pytest.raises(FaceprintError, match="key file"):
        KeyHolder.load(tmp_path / "gallery.fpeg")
    (tmp_path / "damaged.fpeg").write_bytes(data[:-200] + bytes(200))  # the last ciphertext's tail zeroed
    with pytest.raises(FaceprintError, match="damaged"):
        EncryptedGallery.load(tmp_path / "damaged.fpeg").score(keys.client.encrypt(probe, loaded.layout))


def test_gallery_side_holds_no_secret_and_no_template(tmp_path: Path) -> None:
    from tenseal import sealapi as s

    vectors, probe = unit_rows(400), unit_rows(1, seed=1)[0]
    holder, stored = holder_of(vectors)
    stored.save(tmp_path / "gallery.fpeg")
    blob = (tmp_path / "gallery.fpeg").read_bytes()
    assert found_in(list(vectors[::10]), blob) == {"<f2": 0, "<f4": 0, "<f8": 0}  # every 10th: a full scan is slow
    assert holder.client.export_secret_key() not in blob

    loaded = EncryptedGallery.load(tmp_path / "gallery.fpeg")
    results = loaded.score(holder.client.encrypt(probe, loaded.layout))  # loads every SEAL object
    held = [*vars(loaded).values(), *loaded._loaded]  # type: ignore[misc]
    held += [x for v in held if isinstance(v, list) for x in v]
    assert not any(isinstance(v, (s.SecretKey, s.Decryptor, s.KeyGenerator, enc.EncryptedClient)) for v in held)

    # the best the gallery side can do: a key of its own, which decrypts the answer to noise
    recovered = decrypt_with_own_key(loaded._loaded[0], results, loaded.layout)  # type: ignore[index]
    assert_noise(recovered[: len(vectors)], vectors @ probe)


def test_bad_probes_are_refused() -> None:
    holder, stored = holder_of(unit_rows(100))
    probe = unit_rows(1)[0]
    cipher = holder.client.encrypt(probe, stored.layout)
    with pytest.raises(enc.BadEncryptedQuery, match="probe ciphertexts"):
        stored.score(cipher[:-1])
    with pytest.raises(enc.BadEncryptedQuery, match="unreadable"):
        stored.score([b"junk"] * len(cipher))
    plain_mode = enc.EncryptedClient(secret_key=holder.client.export_secret_key())  # the plaintext mode's 2^30 scale
    with pytest.raises(enc.BadEncryptedQuery, match="scale"):
        stored.score(plain_mode.encrypt(probe, stored.layout))
    remote = holder.identifier(stored).remote
    with pytest.raises(enc.BadEncryptedQuery, match="other parameters"):
        remote.query(enc.EncryptedClient(poly_degree=8192, coeff_bits=(60, 40, 60)).public_context(), cipher, 1)
    with pytest.raises(enc.BadEncryptedQuery, match="fold"):
        remote.query(stored.parameters, cipher, stored.layout.fold * 2)
    assert key_holder_client().scale_bits + 27 + 4 + 1 == 60  # probe x gallery scale, headroom, sign: the data prime


@pytest.mark.parametrize("aggregation", ["centroid", "max"])
def test_agrees_with_plaintext_identify_on_lfw(
    tmp_path: Path,
    engine: FaceEngine,
    lfw_faces: tuple[dict[str, list[Face]], dict[str, list[Face]]],  # noqa: F811 (the imported fixture)
    aggregation: str,
) -> None:
    enrol, _ = lfw_faces
    rec, faces = lfw_recognizer(tmp_path / "g.db", engine, lfw_faces, aggregation)
    threshold = 0.93  # decisions both ways on this set
    plain = rec.identify_faces(faces, top_k=3, threshold=threshold)

    holder, stored = KeyHolder.export(rec.gallery, rec.model, rec.identify_threshold)
    stored.save(tmp_path / "gallery.fpeg")
    holder.save(tmp_path / "holder.key")
    templates = [np.asarray(f.embedding) for fs in enrol.values() for f in fs]
    for name in ("gallery.fpeg", "holder.key"):  # neither file holds a template in the clear
        assert found_in(templates, (tmp_path / name).read_bytes()) == {"<f2": 0, "<f4": 0, "<f8": 0}
    assert not any(n.encode() in (tmp_path / "gallery.fpeg").read_bytes() for n in enrol)  # nor a name

    ident = KeyHolder.load(tmp_path / "holder.key").identifier(EncryptedGallery.load(tmp_path / "gallery.fpeg"))
    secret = ident.identify_faces(faces, top_k=3, threshold=threshold)
    assert_same_matches(plain, secret, faces)


def test_cli_export_and_identify_match_plaintext(demo_gallery: Path, tmp_path: Path) -> None:
    photos = [str(DEMO / "photos" / p) for p in ("obama_and_biden.jpg", "kit_with_rose.jpg", "two_people.jpg")]
    stored, key = tmp_path / "gallery.fpeg", tmp_path / "holder.key"
    exported = faceprint(demo_gallery, "gallery", "export-encrypted", str(stored), "--holder-key", str(key), "--json")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["identities"] == 5 and stored.is_file() and key.is_file()
    again = faceprint(demo_gallery, "gallery", "export-encrypted", str(tmp_path / "b.fpeg"), "--holder-key", str(key))
    assert again.returncode == 2 and "never overwritten" in again.stderr

    plain = faceprint(demo_gallery, "identify", "--json", *photos, check=True)
    args = ["identify", "--encrypted", "--encrypted-gallery", str(stored), "--holder-key", str(key), "--json"]
    secret = faceprint(tmp_path / "none.db", *args, *photos)
    assert secret.returncode == 0, secret.stderr
    assert not (tmp_path / "none.db").exists()  # the key holder opens no gallery of templates

    def faces(proc):  # type: ignore[no-untyped-def]
        return [f for line in proc.stdout.splitlines() for f in json.loads(line)["faces"]]

    expected, got = faces(plain), faces(secret)
    assert len(expected) >= 4 and {f["identity"] for f in expected} & {"obama", "biden", "kit_harington"}
    assert [f["identity"] for f in got] == [f["identity"] for f in expected]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(got, expected)) < 0.00011  # 4 decimals printed

    usage = faceprint(demo_gallery, "identify", "--encrypted", "--encrypted-gallery", str(stored), photos[0])
    assert usage.returncode == 2 and "--holder-key" in usage.stderr
    swapped = ["identify", "--encrypted", "--encrypted-gallery", str(key), "--holder-key", str(stored), photos[0]]
    wrong = faceprint(demo_gallery, *swapped)
    assert wrong.returncode == 2 and "not a readable" in wrong.stderr and "Traceback" not in wrong.stderr
