"""Regenerates tests/fixtures/signing/: small models signed with the real `model_signing`
package (key and certificate modes, shards, BLAKE2b/BLAKE3, a single file, a signature inside
the model), with keys and a test PKI made here for the tests.

usage (offline once the packages are installed; see README.md next to this file):
    python -m venv .venv-sign && .venv-sign/bin/pip install -r support/signing/requirements.txt
    .venv-sign/bin/python support/signing/make_fixtures.py tests/fixtures/signing

Everything it writes is throw-away test material: new keys on every run (so every signature
changes), no private key is kept. Model contents are fixed, so root digests are stable.
"""

import base64
import datetime
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import model_signing

UTC = datetime.timezone.utc
IDENTITY_EMAIL = "ml-release@example.com"
IDENTITY_URI = "https://github.com/example-org/tiny-model/.github/workflows/release.yml@refs/tags/v1.0.0"


def write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def make_model(root: Path) -> None:
    """A tiny Hugging Face-style model. Dotfiles on purpose: .gitattributes and .github/ are
    left out by model_signing's defaults, a nested sub/.gitignore is not."""
    write(root / "config.json", '{"architectures":["TinyNet"],"hidden_size":4,"num_layers":1}\n')
    data = struct.pack("<4f", 0.5, -1.0, 2.0, 0.25)
    hdr = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, len(data)]},
                      "__metadata__": {"format": "pt"}}, separators=(",", ":")).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    write(root / "model.safetensors", struct.pack("<Q", len(hdr)) + hdr + data)
    write(root / "tokenizer" / "vocab.txt", "[PAD]\n[UNK]\nhello\nworld\n" + "token\n" * 20)
    write(root / "README.md", "# tiny-model\nA 4-parameter model used to test signature verification.\n")
    write(root / "empty.txt", b"")
    write(root / "sub" / ".gitignore", "*.tmp\n")
    write(root / ".gitattributes", "*.safetensors binary\n")
    write(root / ".github" / "ci.yml", "name: ci\n")


def ec_key(curve=ec.SECP256R1()):
    return ec.generate_private_key(curve)


def pem_private(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem_public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "modelgate test PKI")])


def cert(subject, subject_key, issuer, issuer_key, start, end, ca, path_len=None, signer=None, sans=None):
    """`signer`: give the certificate a signing key usage (digitalSignature, codeSigning);
    by default only end-entity certificates get it."""
    signer = (not ca) if signer is None else signer
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True))
    b = b.add_extension(x509.KeyUsage(signer, False, False, False, False, ca, ca, False, False), critical=True)
    if signer:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def pem_cert(c) -> bytes:
    return c.public_bytes(serialization.Encoding.PEM)


def cli(*args, cwd):
    """Runs the model_signing command-line tool (the real one)."""
    exe = Path(sys.executable).with_name("model_signing")
    out = subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"model_signing {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")


def api_sign(model: Path, key: Path, sig: Path, hashing) -> None:
    (model_signing.signing.Config().use_elliptic_key_signer(private_key=key)
     .set_hashing_config(hashing).sign(model, sig))


def statement(sig: Path) -> dict:
    b = json.loads(sig.read_text())
    return json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))


def main(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "sigs").mkdir(parents=True)
    make_model(out / "model")
    shutil.copytree(out / "model", out / "model-with-sig")
    secrets = Path(tempfile.mkdtemp(prefix="modelgate-sign-keys-"))  # private keys never leave it
    try:
        # Keys: P-256 and P-384 (what `model_signing sign key` uses), and a stranger's key.
        keys = {"p256": ec_key(), "p384": ec_key(ec.SECP384R1()), "other-p256": ec_key()}
        for k, v in keys.items():
            write(out / "keys" / f"{k}.pub", pem_public(v))
            write(secrets / f"{k}.key", pem_private(v))

        # PKI: root -> intermediate -> leaf (valid for a century), an expired leaf, a CA:TRUE
        # leaf (as in model-transparency's fixtures), and an unrelated root.
        t0 = datetime.datetime(2020, 1, 1, tzinfo=UTC)
        t1 = datetime.datetime(2120, 1, 1, tzinfo=UTC)
        rk, ik, lk, ek, ck, ok = (ec_key() for _ in range(6))
        root = cert(name("modelgate test root CA"), rk, name("modelgate test root CA"), rk, t0, t1, True)
        inter = cert(name("modelgate test intermediate CA"), ik, root.subject, rk, t0, t1, True, path_len=0)
        sans = [x509.RFC822Name(IDENTITY_EMAIL), x509.UniformResourceIdentifier(IDENTITY_URI)]
        leaf = cert(name("tiny-model release signer"), lk, inter.subject, ik, t0, t1, False, sans=sans)
        expired = cert(name("expired signer"), ek, inter.subject, ik, t0,
                       datetime.datetime(2021, 1, 1, tzinfo=UTC), False, sans=sans)
        ca_leaf = cert(name("CA:TRUE signer"), ck, inter.subject, ik, t0, t1, True, signer=True, sans=sans)
        other = cert(name("some other root CA"), ok, name("some other root CA"), ok, t0, t1, True)
        for n, c in [("root", root), ("intermediate", inter), ("leaf", leaf), ("expired-leaf", expired),
                     ("ca-leaf", ca_leaf), ("other-root", other)]:
            write(out / "pki" / f"{n}.crt", pem_cert(c))
        for n, k in [("leaf", lk), ("expired-leaf", ek), ("ca-leaf", ck)]:
            write(secrets / f"{n}.key", pem_private(k))

        rel = lambda p: os.path.relpath(p, out)  # noqa: E731
        # Key and certificate mode through the CLI, run from the fixture directory (the CLI
        # resolves --signature and --ignore-paths against the working directory).
        for k in ["p256", "p384"]:
            cli("sign", "key", "model", "--private_key", str(secrets / f"{k}.key"),
                "--signature", f"sigs/model.key-{k}.sig", cwd=out)
        for n in ["leaf", "expired-leaf", "ca-leaf"]:
            cli("sign", "certificate", "model", "--private_key", str(secrets / f"{n}.key"),
                "--signing_certificate", rel(out / "pki" / f"{n}.crt"),
                "--certificate_chain", rel(out / "pki" / "intermediate.crt"),
                "--signature", f"sigs/model.cert-{n}.sig", cwd=out)
        cli("sign", "key", "model/model.safetensors", "--private_key", str(secrets / "p256.key"),
            "--signature", "sigs/single-file.key-p256.sig", cwd=out)
        cli("sign", "key", "model", "--private_key", str(secrets / "p256.key"), "--ignore-paths",
            "model/README.md", "--signature", "sigs/model.ignores-readme.sig", cwd=out)
        cli("sign", "key", "model-with-sig", "--private_key", str(secrets / "p256.key"),
            "--signature", "model-with-sig/model.sig", cwd=out)
        # What the CLI does not expose: shards, BLAKE2b and BLAKE3 (Python API).
        H = model_signing.hashing.Config
        api_sign(out / "model", secrets / "p256.key", out / "sigs" / "model.shards64.sig",
                 H().use_shard_serialization(hashing_algorithm="sha256", shard_size=64))
        api_sign(out / "model", secrets / "p256.key", out / "sigs" / "model.blake3.sig",
                 H().use_file_serialization(hashing_algorithm="blake3"))
        api_sign(out / "model", secrets / "p256.key", out / "sigs" / "model.blake2b.sig",
                 H().use_file_serialization(hashing_algorithm="blake2"))

        # Check every signature with model_signing's own verifier before committing it.
        V = model_signing.verifying.Config
        checks = []
        for sig in sorted((out / "sigs").glob("*.sig")) + [out / "model-with-sig" / "model.sig"]:
            st = statement(sig)
            ser = st["predicate"]["serialization"]
            model = out / "model-with-sig" if sig.parent.name == "model-with-sig" else out / "model"
            if sig.name.startswith("single-file"):
                model = out / "model" / "model.safetensors"
            hashing = H().set_ignored_paths(paths=ser.get("ignore_paths", []), ignore_git_paths=True)
            if ser["method"] == "shards":
                hashing = hashing.use_shard_serialization(hashing_algorithm="sha256", shard_size=int(ser["shard_size"]))
            else:
                alg = {"blake2b": "blake2"}.get(ser["hash_type"], ser["hash_type"])
                hashing = hashing.use_file_serialization(hashing_algorithm=alg)
            if ".cert-" in sig.name:
                v = V().use_certificate_verifier(certificate_chain=[out / "pki" / "root.crt"])
            else:
                curve = "p384" if "p384" in sig.name else "p256"
                v = V().use_elliptic_key_verifier(public_key=out / "keys" / f"{curve}.pub")
            try:
                v.set_hashing_config(hashing).verify(model, sig)
                result = "verifies"
            except Exception as e:  # noqa: BLE001
                result = f"REJECTED: {e}"
            checks.append((rel(sig), rel(model), ser["method"], ser["hash_type"], st["subject"][0]["digest"]["sha256"], result))
        write(out / "model_signing-verify.txt", "".join(
            f"{s}\t{m}\t{meth}\t{h}\tsha256:{d}\t{r}\n" for s, m, meth, h, d, r in checks))
        for c in checks:
            print(*c, sep="  ")
    finally:
        shutil.rmtree(secrets)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
